//! System registers that `aarch64-cpu` does not model, and barriers.

use core::arch::asm;

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no side effects beyond
        // returning its value.
        unsafe { core::arch::asm!(concat!("mrs {0}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Writes a system register by name.
macro_rules! write_sysreg {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: the callers write EL2 or cell-context registers with values
        // the architecture defines for them; each call site says why.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {0}"), in(reg) v, options(nostack)) };
    }};
}

pub(crate) use {read_sysreg, write_sysreg};

/// CPTR_EL2 with nothing trapped (RES1 bits 13:12, 9:0; TFP = 0): the cells
/// own the FP/SIMD registers, the hypervisor never uses them.
pub const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;

/// SCTLR_EL1 at cell entry: RES1 bits only, MMU and caches off.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// SPSR_EL2 for entering a cell: EL1h with D, A, I, F masked.
pub const SPSR_EL1H_MASKED: u64 = 0x3c5;

pub fn isb() {
    // SAFETY: a barrier.
    unsafe { asm!("isb", options(nostack)) };
}

pub fn dmb_ish() {
    // SAFETY: a barrier.
    unsafe { asm!("dmb ish", options(nostack)) };
}

pub fn dsb_sy() {
    // SAFETY: a barrier.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidates all stage-1 and stage-2 TLB entries of the VMID in VTTBR_EL2,
/// on all CPUs of the inner shareable domain.
pub fn tlbi_current_vmid() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Cleans `[start, start + len)` from the data cache to the point of
/// coherency and invalidates the instruction cache, so that a cell that
/// starts with its MMU off sees the image the hypervisor copied.
pub fn clean_dcache_and_invalidate_icache(start: u64, len: u64) {
    for addr in dcache_lines(start, len) {
        // SAFETY: cache maintenance by VA on memory the hypervisor maps.
        unsafe { asm!("dc cvac, {0}", in(reg) addr, options(nostack)) };
    }
    // SAFETY: barriers and I-cache invalidation have no memory effects.
    unsafe { asm!("dsb sy", "ic ialluis", "dsb sy", "isb", options(nostack)) };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt; no memory effects.
    unsafe { asm!("wfi", options(nostack)) };
}

/// Cleans and invalidates `[start, start + len)` from the data cache to the
/// point of coherency (before a cell starts on memory others wrote).
pub fn clean_invalidate_dcache(start: u64, len: u64) {
    for addr in dcache_lines(start, len) {
        // SAFETY: cache maintenance by VA on memory the hypervisor maps.
        unsafe { asm!("dc civac, {0}", in(reg) addr, options(nostack)) };
    }
    dsb_sy();
}

/// The addresses of the data cache lines (CTR_EL0.DminLine) that cover
/// `[start, start + len)`.
fn dcache_lines(start: u64, len: u64) -> impl Iterator<Item = u64> {
    let ctr = read_sysreg!("ctr_el0");
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let end = start.saturating_add(len);
    (start & !(line - 1)..end).step_by(line as usize)
}
