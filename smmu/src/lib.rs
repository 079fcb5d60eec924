//! Cellblock's Arm SMMUv3 driver. The hypervisor owns the SMMU; every
//! device stream is translated by its owner cell's stage-2 tables (the
//! same tables, VMID and VTCR_EL2 value the cell's CPUs use), and every
//! stream no cell owns aborts. Stage 1 is never used.
//!
//! ```no_run
//! use smmu::{DmaMemory, Mmio, S2Config, Smmu};
//! # struct Pool;
//! # unsafe impl DmaMemory for Pool {
//! #     fn alloc_zeroed(&mut self, _: usize, _: usize) -> Option<(*mut u8, u64)> { None }
//! # }
//! # fn main() -> Result<(), smmu::SmmuError> {
//! # let mut pool = Pool;
//! // SAFETY: QEMU virt's SMMUv3 register window, mapped as device memory.
//! let regs = unsafe { Mmio::new(0x0905_0000) };
//! let mut smmu = Smmu::new(regs)?; // probe: stage 2, AArch64 tables, ...
//! smmu.init(&mut pool, 0xffff)?; // every stream aborts
//!
//! // Stream 0x8 (PCI 00:01.0) belongs to the cell with VMID 2.
//! let vtcr = (1 << 31) | (4 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 25;
//! smmu.set_stream(0x8, Some(S2Config { root_pa: 0x4012_3000, vmid: 2, vtcr }))?;
//!
//! // Later: report what went wrong.
//! for event in smmu.poll_events() {
//!     // e.g. "F_TRANSLATION on stream 0x8: DMA write to 0x42000000 (stage 2)"
//!     let _ = event.stream;
//! }
//! if let Some(err) = smmu.gerror() {
//!     let _ = err.is_fatal();
//! }
//!
//! // Cell destroyed: its streams abort again, its TLB entries go.
//! smmu.set_stream(0x8, None)?;
//! smmu.invalidate_vmid(2)?;
//! # Ok(()) }
//! ```
//!
//! # How the hypervisor uses it
//!
//! - Boot, before any cell runs (and before the root cell's devices can
//!   DMA): [`Smmu::new`] on [`Mmio`] at `platform.smmu.base`,
//!   [`Smmu::init`] with the largest stream ID a cell may ever name (the
//!   linear stream table covers `0..=max_sid` rounded up to a power of
//!   two, 64 bytes per entry, aligned to its size; streams beyond it abort
//!   and are reported as C_BAD_STREAMID), then [`Smmu::set_stream`] for
//!   each of the root cell's `streams` with the root's stage 2. Any error
//!   is a boot refusal.
//! - Cell create: for each stream of the new cell, `set_stream(sid,
//!   Some(new cell))` (a stream taken from the root moves in one call).
//!   The root's stage 2 lost the new cell's memory: after unmapping it and
//!   the CPUs' TLB invalidation, [`Smmu::invalidate_vmid`] of the root's
//!   VMID, before the new cell's memory is loaded.
//! - Cell destroy: `set_stream(sid, None)` for each of its streams (or
//!   `Some(root)` to give them back), then `invalidate_vmid(cell's VMID)`
//!   before the VMID or the memory is used again.
//! - Any other change that removes or narrows a stage-2 mapping of a cell
//!   with streams: `invalidate_vmid` of that cell (the SMMU does not
//!   listen to the CPUs' TLB invalidations: CR2.PTM is set).
//! - Reporting: drain [`Smmu::poll_events`] and check [`Smmu::gerror`]
//!   from a periodic tick, or from the SMMU's wired interrupts after
//!   [`Smmu::set_irqs`] (QEMU virt: edge SPIs 74 "eventq" and 77
//!   "gerror", INTIDs 106 and 109; keep them out of every cell). An
//!   event's owner cell: `smmu.stream(event.stream)` and [`Ste::vmid`]
//!   (VMID = cell id + 1); C_BAD_STREAMID streams have no owner.
//!   [`GError::is_fatal`] means the SMMU stopped translating for everyone.
//! - Hypervisor shutdown: [`Smmu::disable`].
//!
//! All of it runs under one lock. The driver never panics on what the
//! hardware returns; every wait is bounded ([`Smmu::set_poll_limit`]).
//! It needs an SMMU with stage 2, AArch64 little-endian table walks and
//! coherent table and queue accesses (IDR0.COHACC); it programs
//! write-back inner-shareable accesses and does no cache maintenance.

#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(test)]
extern crate std;

mod cmdq;
mod driver;
mod evtq;
mod queue;
mod regs;
mod ste;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use cmdq::{CmdErrorKind, Command, CommandError};
pub use driver::{
    probe, stream_table_log2, DmaMemory, Events, GError, Info, Smmu, SmmuError, Structure, Wait,
    CMDQ_LOG2_MAX, DEFAULT_POLL_LIMIT, EVTQ_LOG2_MAX,
};
pub use evtq::{Direction, Event, EventKind};
pub use regs::{Mmio, Reg32, Reg64, SmmuRegs, WINDOW_SIZE};
pub use ste::{S2Config, Ste};

/// Register field definitions (tock-registers), for implementations of
/// [`SmmuRegs`] and for tests.
pub mod fields {
    pub use crate::cmdq::{CMD0, CMD1};
    pub use crate::evtq::{EVT0, EVT1, EVT3};
    pub use crate::regs::{
        CMDQ_BASE, CMDQ_CONS, CMDQ_PROD, CR0, CR1, CR2, EVTQ_BASE, EVTQ_CONS, EVTQ_PROD, GBPA,
        GERROR, IDR0, IDR1, IDR5, IRQ_CTRL, STRTAB_BASE, STRTAB_BASE_CFG,
    };
    pub use crate::ste::{STE0, STE1, STE2, STE3};
}
