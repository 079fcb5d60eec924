//! The hypervisor's physical CPU interface at EL2.
//!
//! Scheme, both versions: the hypervisor acknowledges a physical interrupt
//! (IAR) and drops its priority at once (EOIR, split EOI mode); the
//! interrupt stays active until the cell deactivates the virtual one that a
//! HW=1 list register links to it, or until the hypervisor deactivates it
//! itself (DIR) for interrupts it keeps (SGIs, maintenance).
//!
//! GICv3 registers of the hypervisor's own interface are the ICC_*_EL1
//! system registers accessed from EL2; `aarch64-cpu` provides the EL2-only
//! ones (ICC_SRE_EL2, ICH_*), the rest are a single `mrs`/`msr` each.

use core::arch::asm;

use aarch64_cpu::registers::{
    Writeable, ICC_SRE_EL2, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_VMCR_EL2,
};

use crate::access::RegIo;
use crate::hw::{IchSysregs, Mmio};
use crate::lr::Lr;
use crate::regs::{gicc, gicd, gich, GICC_CTLR, GICD_SGIR, GICH_HCR, ICC_CTLR};
use crate::virq::ListRegs;

/// Enables the GICv3 system-register interface for EL2 and lower levels,
/// unmasks every priority, enables Group 1 with split EOI, and enables the
/// virtual CPU interface with empty list registers. Call on each CPU.
pub fn init_v3_el2() {
    ICC_SRE_EL2.write(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
    isb();
    let ctlr: u64;
    // SAFETY: reading ICC_CTLR_EL1 has no side effects; SRE is enabled.
    unsafe { asm!("mrs {}, ICC_CTLR_EL1", out(reg) ctlr, options(nomem, nostack)) };
    let ctlr = ICC_CTLR::EOImode::SET.modify(ctlr);
    // SAFETY: the hypervisor owns the physical CPU interface; these writes
    // configure only interrupt delivery to EL2 and touch no memory.
    unsafe {
        asm!(
            "msr ICC_PMR_EL1, {pmr}",
            "msr ICC_BPR1_EL1, xzr",
            "msr ICC_CTLR_EL1, {ctlr}",
            "msr ICC_IGRPEN1_EL1, {one}",
            pmr = in(reg) 0xffu64,
            ctlr = in(reg) ctlr,
            one = in(reg) 1u64,
            options(nomem, nostack),
        );
    }
    let mut lrs = IchSysregs;
    for i in 0..lrs.num_lrs() {
        lrs.write_lr(i, Lr::INVALID);
    }
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    // The cell programs its own virtual priority mask and group enables.
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.write(ICH_HCR_EL2::En::SET);
    isb();
}

/// Acknowledges the highest-priority pending Group 1 interrupt; returns
/// its INTID (1023: none).
pub fn ack_v3() -> u32 {
    let v: u64;
    // SAFETY: acknowledging changes only GIC state the hypervisor owns.
    unsafe { asm!("mrs {}, ICC_IAR1_EL1", out(reg) v, options(nomem, nostack)) };
    v as u32 & 0xff_ffff
}

/// Priority drop of `intid` (split EOI: it stays active).
pub fn eoi_v3(intid: u32) {
    // SAFETY: as in `ack_v3`.
    unsafe { asm!("msr ICC_EOIR1_EL1, {}", in(reg) u64::from(intid), options(nomem, nostack)) };
}

/// Deactivates `intid` (ICC_DIR_EL1), for interrupts no cell deactivates.
pub fn deactivate_v3(intid: u32) {
    // SAFETY: as in `ack_v3`.
    unsafe { asm!("msr ICC_DIR_EL1, {}", in(reg) u64::from(intid), options(nomem, nostack)) };
}

/// Writes ICC_SGI1R_EL1 (values from [`crate::filter_sgi1r`]).
pub fn send_sgi1r(v: u64) {
    // SAFETY: sending an SGI touches no memory; the barrier before it makes
    // earlier stores visible to the target CPUs first.
    unsafe {
        asm!(
            "dsb ishst",
            "msr ICC_SGI1R_EL1, {}",
            "isb",
            in(reg) v,
            options(nostack),
        )
    };
}

fn isb() {
    // SAFETY: a barrier has no effect besides ordering.
    unsafe { asm!("isb", options(nomem, nostack)) };
}

fn mmio(base: usize) -> Mmio {
    // SAFETY: callers pass the hypervisor-owned GIC frames, mapped as
    // device memory in the EL2 tables (the functions' documented contract).
    unsafe { Mmio::new(base) }
}

/// GICv2: enables the current CPU's interface at `gicc` (all priorities,
/// binary point 0, the hypervisor's group, split EOI) and its virtual
/// interface at `gich` (enabled, list registers empty). Both addresses are
/// the hypervisor's device mappings of the frames.
pub fn init_v2_el2(gicc: usize, gich: usize) {
    let mut c = mmio(gicc);
    c.write32(gicc::PMR, 0xff);
    c.write32(gicc::BPR, 0);
    c.write32(
        gicc::CTLR,
        (GICC_CTLR::Enable::SET + GICC_CTLR::EOImode::SET).value,
    );
    // SAFETY: as in `mmio`.
    let mut lrs = unsafe { crate::hw::GichMmio::new(gich) };
    for i in 0..lrs.num_lrs() {
        lrs.write_lr(i, Lr::INVALID);
    }
    let mut h = mmio(gich);
    // The cell programs its own virtual priority mask and group enables.
    h.write32(gich::VMCR, 0);
    h.write32(gich::HCR, GICH_HCR::En::SET.value);
}

/// GICv2: acknowledges an interrupt; returns GICC_IAR as read (INTID in
/// bits 9:0, source CPU of an SGI in bits 12:10). Pass the same value to
/// [`eoi_v2`] and [`deactivate_v2`].
pub fn ack_v2(gicc: usize) -> u32 {
    mmio(gicc).read32(gicc::IAR)
}

/// GICv2: priority drop (GICC_EOIR) of an acknowledged `iar` value.
pub fn eoi_v2(gicc: usize, iar: u32) {
    mmio(gicc).write32(gicc::EOIR, iar);
}

/// GICv2: deactivation (GICC_DIR) of an acknowledged `iar` value.
pub fn deactivate_v2(gicc: usize, iar: u32) {
    mmio(gicc).write32(gicc::DIR, iar);
}

/// GICv2: sends SGI `sgi` (0..15) to the CPUs in `target_mask`
/// (CPU-interface bits) through GICD_SGIR at `gicd`.
pub fn send_sgi_v2(gicd: usize, target_mask: u8, sgi: u32) {
    let v = GICD_SGIR::TargetListFilter::List
        + GICD_SGIR::CPUTargetList.val(u32::from(target_mask))
        + GICD_SGIR::SGIINTID.val(sgi);
    // SAFETY: a barrier only orders earlier stores before the SGI.
    unsafe { asm!("dsb ishst", options(nostack)) };
    mmio(gicd).write(gicd::SGIR, 4, u64::from(v.value));
}
