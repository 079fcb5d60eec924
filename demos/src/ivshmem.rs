//! ivshmem for an inmate (docs/ivshmem.md): one end of a link, i.e. the
//! shared memory, the register page the hypervisor emulates, and the SPI
//! the peer's doorbell raises here.
//!
//! Every access is one aligned volatile load or store: 32 bits for the
//! registers (the hypervisor decodes them from the syndrome), 64 bits for
//! the protocol's slots ([`hv_core::ivshmem::msg`]). Place both below
//! 1 GiB in the cell's address space, where the runtime maps Device
//! memory: the root cell's Linux maps the shared RAM through `/dev/mem`
//! uncached, so both ends must bypass the caches.
//!
//! ```no_run
//! use demos::ivshmem::Link;
//! let link = Link { regs: 0x0c10_0000, shmem: 0x0c20_0000, irq: 109 };
//! link.enable_irq().unwrap();
//! link.write_slot(hv_core::ivshmem::msg::FROM_PEER, 1);
//! link.ring();
//! ```

use core::ptr::{read_volatile, write_volatile};

pub use hv_core::ivshmem::{msg, reg, Seen, Sequence};

/// One end of an ivshmem link, at the addresses the cell config gives.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// The register page (`ivshmem[].regs`).
    pub regs: usize,
    /// The shared memory (`ivshmem[].virt_start`).
    pub shmem: usize,
    /// The SPI raised here (`ivshmem[].irq`).
    pub irq: u32,
}

#[cfg(all(target_arch = "aarch64", not(test)))]
impl Link {
    fn reg(&self, offset: u64) -> *mut u32 {
        (self.regs + offset as usize) as *mut u32
    }

    /// The link id (register ID).
    pub fn id(&self) -> u32 {
        // SAFETY: the register page is the link's, given by the cell config;
        // ID is an aligned 32-bit register in it.
        unsafe { read_volatile(self.reg(reg::ID)) }
    }

    /// Whether the peer cell exists and runs (register PEER).
    pub fn peer_up(&self) -> bool {
        // SAFETY: as in `id`.
        unsafe { read_volatile(self.reg(reg::PEER)) == 1 }
    }

    /// Rings the peer's doorbell. Earlier stores to the shared memory are
    /// complete first.
    pub fn ring(&self) {
        // SAFETY: `dsb` only orders memory accesses.
        unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
        // SAFETY: as in `id`; a write to DOORBELL has no effect here.
        unsafe { write_volatile(self.reg(reg::DOORBELL), 1) }
    }

    /// The 64-bit slot at byte `offset` of the shared memory.
    pub fn read_slot(&self, offset: u64) -> u64 {
        // SAFETY: `offset` is one of `msg`'s 8-byte aligned slots, inside
        // the link's shared memory (at least `msg::SIZE` bytes).
        unsafe { read_volatile((self.shmem + offset as usize) as *const u64) }
    }

    /// Writes the 64-bit slot at byte `offset` of the shared memory.
    pub fn write_slot(&self, offset: u64, value: u64) {
        // SAFETY: as in `read_slot`.
        unsafe { write_volatile((self.shmem + offset as usize) as *mut u64, value) }
    }

    /// Configures the link's SPI as edge-triggered (each ring is one
    /// interrupt) and enables it, routed to this CPU. Call after
    /// [`crate::gic::init`].
    pub fn enable_irq(&self) -> Result<(), crate::gic::Error> {
        const GICD_ICFGR: usize = 0xc00;
        let icfgr = crate::gic::GICD_BASE + GICD_ICFGR + 4 * (self.irq / 16) as usize;
        let edge = 2u32 << (2 * (self.irq % 16));
        // SAFETY: GICD_ICFGR of an SPI the cell owns: the hypervisor lets
        // the cell change its bits; one aligned 32-bit access each.
        unsafe {
            let v = read_volatile(icfgr as *const u32);
            write_volatile(icfgr as *mut u32, v | edge);
        }
        crate::gic::enable_irq(self.irq)
    }
}
