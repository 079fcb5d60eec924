//! Cellblock's interrupt controller support: the hypervisor owns the
//! physical GIC (v2 or v3); cells reach the distributor and redistributors
//! only through trapped accesses that this crate filters by ownership, and
//! receive their interrupts through the virtual CPU interface's list
//! registers.
//!
//! ```no_run
//! use gic::{gicd_access, inject, CellView, CpuId, GicVersion, IrqSet, Lr, MmioAccess, RegIo};
//! # struct Hw; impl RegIo for Hw {
//! #     fn read(&mut self, _: u64, _: u8) -> u64 { 0 }
//! #     fn write(&mut self, _: u64, _: u8, _: u64) {}
//! # }
//! # let mut gicd_hw = Hw;
//! let mut spis = IrqSet::new();
//! spis.insert(40).unwrap();
//! let cpu = CpuId { index: 2, mpidr: 2, v2_target: 1 << 2 };
//! let view = CellView { spis: &spis, cpus: &[cpu], current: cpu };
//!
//! // A trapped 32-bit write enabling SPIs 32..63: only SPI 40 reaches the
//! // hardware.
//! let acc = MmioAccess { offset: 0x104, size: 4, write: Some(u64::MAX) };
//! gicd_access(GicVersion::V3, &view, &acc, &mut gicd_hw).unwrap();
//!
//! // A physical SPI 40 taken at EL2 is handed to the cell's CPU.
//! # struct Lrs; impl gic::ListRegs for Lrs {
//! #     fn num_lrs(&self) -> usize { 4 }
//! #     fn read_lr(&self, _: usize) -> Lr { Lr::INVALID }
//! #     fn write_lr(&mut self, _: usize, _: Lr) {}
//! #     fn set_underflow_irq(&mut self, _: bool) {}
//! # }
//! # let mut lrs = Lrs;
//! let mut queue = gic::PendingQueue::new();
//! let lr = Lr::pending_for(GicVersion::V3, 40, Some(40), gic::DEFAULT_PRIORITY);
//! inject(&mut lrs, &mut queue, lr).unwrap();
//! ```
//!
//! # How the hypervisor uses it
//!
//! - Boot CPU: `init_distributor`. Each CPU: GICv3 `redistributor_wake`
//!   then `init_private` on its GICR frame and `cpu_if::init_v3_el2`;
//!   GICv2 `init_private` on GICD (banked) and `cpu_if::init_v2_el2`.
//!   A cell's SPIs: `route_spi` to one of its CPUs.
//! - Physical IRQ at EL2: acknowledge (`ack_v3`/`ack_v2`), priority drop
//!   (`eoi_*`) at once. An SPI/PPI of the running cell: [`inject`] with
//!   `pintid: Some(intid)` (the cell's deactivation deactivates it); on
//!   [`QueueFull`] deactivate it yourself. A forwarded SGI: deactivate, then
//!   inject with `pintid: None`. [`MAINTENANCE_INTID`]: [`refill`], then
//!   deactivate. [`HV_SGI`]: the hypervisor's own, deactivate.
//! - Trapped GICD/GICR access: [`gicd_access`] / [`gicr_access`] under one
//!   lock for all CPUs; `Err(Denied)` fails the cell. Trapped
//!   ICC_SGI1R_EL1 write: [`filter_sgi1r`], then `cpu_if::send_sgi1r` for
//!   each value. GICv2 cells send SGIs through GICD_SGIR, which
//!   [`gicd_access`] filters and performs.
//! - CPU leaving a cell: [`clear`].
//!
//! # Policy beyond "RAZ/WI what the cell does not own"
//!
//! - [`HV_RESERVED_PRIVATE`]: the maintenance interrupt and [`HV_SGI`] are
//!   invisible to cells on their own CPUs; cells cannot send [`HV_SGI`].
//! - No LPIs: GICR PROPBASER/PENDBASER RAZ/WI, GICR_CTLR.EnableLPIs never
//!   set, and the LPI / message-based-SPI capability bits of GICD_TYPER and
//!   GICR_TYPER read as 0 so guests do not try.
//! - GICR_WAKER reads through but writes are ignored: the hypervisor keeps
//!   every redistributor awake.
//! - Routing writes naming a CPU outside the cell are ignored (IROUTER:
//!   the whole write; ITARGETSR: that byte).
//!
//! Hardware access (`Mmio`, `IchSysregs`, `GichMmio`, `cpu_if`,
//! `init_distributor`, ...) is compiled only for aarch64 outside tests;
//! the logic behind it is generic over [`RegIo`] / [`ListRegs`] and tested
//! on the host against fakes (`*_on` variants for the set-up functions).

#![cfg_attr(not(test), no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod access;
mod dist;
mod gicd;
mod gicr;
mod irqset;
mod lr;
pub mod regs;
mod sgi;
mod virq;

#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod cpu_if;
#[cfg(all(target_arch = "aarch64", not(test)))]
mod hw;

pub use access::{CellView, CpuId, Denied, MmioAccess, RegIo};
pub use dist::{
    init_distributor_on, init_private_on, redistributor_wake_on, route_spi_on, set_spi_pending_on,
    WakeTimeout, DEFAULT_PRIORITY,
};
pub use gicd::{gicd_access, HV_RESERVED_PRIVATE, HV_SGI, MAINTENANCE_INTID};
pub use gicr::gicr_access;
pub use irqset::{IntIdOutOfRange, IrqSet, MAX_INTID};
pub use lr::{Lr, LrState};
pub use sgi::{filter_sgi1r, filter_sgir_v2};
pub use virq::{clear, inject, refill, ListRegs, PendingQueue, QueueFull, QUEUE_CAPACITY};

#[cfg(all(target_arch = "aarch64", not(test)))]
pub use dist::{init_distributor, init_private, redistributor_wake, route_spi, set_spi_pending};
#[cfg(all(target_arch = "aarch64", not(test)))]
pub use hw::{GichMmio, IchSysregs, Mmio};

/// GIC architecture version of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}
