//! The hypervisor's own EL2 translation tables: an identity map, RAM as
//! normal write-back memory, everything else below 512 GiB as device memory.

use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use aarch64_paging::descriptor::El23Attributes;
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{El2, MemoryRegion};
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::interfaces::{ReadWriteable, Writeable};

use super::sysregs::{dsb_sy, isb};

const ROOT_LEVEL: usize = 1;
const VA_TOP: usize = 1 << 39;

const DEVICE: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_0)
    .union(El23Attributes::ACCESSED)
    .union(El23Attributes::XN);
const NORMAL: El23Attributes = El23Attributes::VALID
    .union(El23Attributes::ATTRIBUTE_INDEX_1)
    .union(El23Attributes::INNER_SHAREABLE)
    .union(El23Attributes::ACCESSED);

/// Root of the tables every CPU loads into TTBR0_EL2.
static ROOT: AtomicU64 = AtomicU64::new(0);

/// Builds the identity map for the RAM banks `ram` (start, end) and turns the
/// MMU on for the calling CPU.
pub fn init_primary(ram: &[(u64, u64)], pa_range: u64) -> Result<(), aarch64_paging::MapError> {
    let mut map = IdMap::new(ROOT_LEVEL, El2);
    map.map_range(&MemoryRegion::new(0, VA_TOP), DEVICE)?;
    for &(start, end) in ram {
        let end = end.min(VA_TOP as u64);
        if start < end {
            map.map_range(&MemoryRegion::new(start as usize, end as usize), NORMAL)?;
        }
    }
    ROOT.store(map.root_address().0 as u64, Ordering::SeqCst);
    // The tables live for ever.
    core::mem::forget(map);
    enable(pa_range);
    Ok(())
}

/// Turns the MMU on for a secondary CPU with the tables the primary built.
pub fn init_secondary(pa_range: u64) {
    enable(pa_range);
}

fn enable(pa_range: u64) {
    // Attr0: Device-nGnRnE; Attr1: normal, inner/outer write-back non-transient.
    MAIR_EL2.set(0xff << 8);
    // Bits 31 and 23 of TCR_EL2 are RES1 when HCR_EL2.E2H is 0.
    let fields = TCR_EL2::T0SZ.val(64 - 39)
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::PS.val(pa_range.min(5));
    TCR_EL2.set(fields.value | (1 << 31) | (1 << 23));
    TTBR0_EL2.set(ROOT.load(Ordering::SeqCst));
    dsb_sy();
    // SAFETY: invalidating EL2 TLB entries before enabling translation.
    unsafe { core::arch::asm!("tlbi alle2", "dsb sy", options(nostack)) };
    isb();
    SCTLR_EL2.modify(SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable);
    isb();
}
