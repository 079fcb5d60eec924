//! GIC register accesses for this CPU.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

use super::*;

const GICD_CTLR: usize = 0x0000;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ITARGETSR: usize = 0x0800;
const GICD_IROUTER: usize = 0x6000;
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_V2_ENABLE: u32 = 1 << 0;
/// EnableGrp1 (single security state) / EnableGrp1A (non-secure view).
const GICD_CTLR_V3_ENABLE_GRP1: u32 = 1 << 1;
/// ARE (single security state) / ARE_NS (non-secure view).
const GICD_CTLR_V3_ARE: u32 = 1 << 4;
const GICR_WAKER: usize = 0x0014;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// SGI_base frame, after RD_base.
const GICR_SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = 0x0080;
const GICR_ISENABLER0: usize = 0x0100;
const GICC_CTLR: usize = 0x0000;
const GICC_PMR: usize = 0x0004;
const GICC_IAR: usize = 0x000c;
const GICC_EOIR: usize = 0x0010;
/// Polls of a status bit before giving up.
const POLL_LIMIT: u32 = 1_000_000;
/// SGIs and PPIs are INTIDs 0..32, banked per CPU.
const PRIVATE_INTIDS: u32 = 32;

/// 0 before `init`, else 2 or 3.
static VERSION: AtomicU8 = AtomicU8::new(0);
/// RD_base of this CPU's redistributor (GICv3).
static REDIST: AtomicUsize = AtomicUsize::new(0);

fn read32(addr: usize) -> u32 {
    // SAFETY: callers pass GIC register addresses (GICD, GICC or a GICR
    // frame found by scanning), 4-byte aligned, which every inmate maps.
    unsafe { read_volatile(addr as *const u32) }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`; the write affects only the device.
    unsafe { write_volatile(addr as *mut u32, value) }
}

fn write64(addr: usize, value: u64) {
    // SAFETY: as in `read32`; only used for 8-byte aligned GICD_IROUTER.
    unsafe { write_volatile(addr as *mut u64, value) }
}

/// Polls until `read32(addr) & mask == 0`; false on time-out.
fn wait_clear(addr: usize, mask: u32) -> bool {
    for _ in 0..POLL_LIMIT {
        if read32(addr) & mask == 0 {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading an identification or GIC CPU interface register
        // that the caller names; no memory is accessed.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value,
                options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: writing a GIC CPU interface register of this CPU, followed
        // by `isb`; no memory is accessed.
        unsafe {
            core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) value,
                options(nomem, nostack, preserves_flags))
        };
    }};
}

/// This CPU's MPIDR_EL1 (in a cell: the value the hypervisor presents).
pub fn mpidr() -> u64 {
    read_sysreg!("mpidr_el1")
}

/// GICv3 if ID_AA64PFR0_EL1.GIC says the system register interface is
/// implemented, else GICv2.
pub fn detect() -> Version {
    if (read_sysreg!("id_aa64pfr0_el1") >> 24) & 0xf != 0 {
        Version::V3
    } else {
        Version::V2
    }
}

/// The version chosen by [`init`], if it ran.
pub fn version() -> Option<Version> {
    match VERSION.load(Relaxed) {
        2 => Some(Version::V2),
        3 => Some(Version::V3),
        _ => None,
    }
}

/// Prepares this CPU to take Group 1 interrupts through the detected GIC:
/// finds and wakes its redistributor (v3), makes sure the distributor
/// forwards Group 1, sets the priority mask to let every priority through and
/// enables the CPU interface. Interrupts stay masked in PSTATE.
pub fn init() -> Result<Version, Error> {
    let version = detect();
    match version {
        Version::V3 => init_v3()?,
        Version::V2 => init_v2(),
    }
    VERSION.store(
        match version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        Relaxed,
    );
    Ok(version)
}

fn init_v3() -> Result<(), Error> {
    if read_sysreg!("icc_sre_el1") & 1 == 0 {
        write_sysreg!("icc_sre_el1", read_sysreg!("icc_sre_el1") | 1);
        if read_sysreg!("icc_sre_el1") & 1 == 0 {
            return Err(Error::SystemRegistersDisabled);
        }
    }

    let rd = find_redistributor(gicr_affinity(mpidr()), read32)?;
    let waker = read32(rd + GICR_WAKER);
    if waker & GICR_WAKER_PROCESSOR_SLEEP != 0 {
        write32(rd + GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
        if !wait_clear(rd + GICR_WAKER, GICR_WAKER_CHILDREN_ASLEEP) {
            return Err(Error::RedistributorAsleep { frame: rd });
        }
    }
    REDIST.store(rd, Relaxed);

    let want = GICD_CTLR_V3_ARE | GICD_CTLR_V3_ENABLE_GRP1;
    let ctlr = read32(GICD_BASE + GICD_CTLR);
    if ctlr & want != want {
        write32(GICD_BASE + GICD_CTLR, ctlr | want);
        // A distributor that never finishes is reported by silence later.
        wait_clear(GICD_BASE + GICD_CTLR, GICD_CTLR_RWP);
    }

    write_sysreg!("icc_ctlr_el1", 0); // EOImode 0: EOI also deactivates
    write_sysreg!("icc_pmr_el1", 0xff);
    write_sysreg!("icc_igrpen1_el1", 1);
    Ok(())
}

fn init_v2() {
    let ctlr = read32(GICD_BASE + GICD_CTLR);
    if ctlr & GICD_CTLR_V2_ENABLE == 0 {
        write32(GICD_BASE + GICD_CTLR, ctlr | GICD_CTLR_V2_ENABLE);
    }
    write32(GICC_BASE + GICC_PMR, 0xff);
    write32(GICC_BASE + GICC_CTLR, 1);
}

/// Sets bit `intid % 32` of the Group register at `igroupr` if it is clear.
fn ensure_group1(igroupr: usize, intid: u32) {
    let bit = 1 << (intid % 32);
    let groups = read32(igroupr);
    if groups & bit == 0 {
        write32(igroupr, groups | bit);
    }
}

/// Enables `intid` (an SGI or PPI of this CPU, or an SPI routed to this
/// CPU) in Group 1. Call after [`init`].
pub fn enable_irq(intid: u32) -> Result<(), Error> {
    if intid >= FIRST_SPECIAL_INTID {
        return Err(Error::BadIntid(intid));
    }
    let word = 4 * (intid / 32) as usize;
    let bit = 1u32 << (intid % 32);
    match version() {
        Some(Version::V3) if intid < PRIVATE_INTIDS => {
            let sgi = REDIST.load(Relaxed) + GICR_SGI_BASE;
            ensure_group1(sgi + GICR_IGROUPR0, intid);
            write32(sgi + GICR_ISENABLER0, bit);
        }
        Some(Version::V3) => {
            ensure_group1(GICD_BASE + GICD_IGROUPR + word, intid);
            // Aff3 in [39:32], Aff2..Aff0 in [23:0], Interrupt_Routing_Mode 0.
            write64(
                GICD_BASE + GICD_IROUTER + 8 * intid as usize,
                mpidr() & 0xff_00ff_ffff,
            );
            write32(GICD_BASE + GICD_ISENABLER + word, bit);
        }
        Some(Version::V2) => {
            if intid >= PRIVATE_INTIDS {
                // ITARGETSR0 reads as this CPU's interface mask.
                let me = read32(GICD_BASE + GICD_ITARGETSR) & 0xff;
                let reg = GICD_BASE + GICD_ITARGETSR + 4 * (intid / 4) as usize;
                let shift = 8 * (intid % 4);
                let targets = read32(reg) & !(0xff << shift);
                write32(reg, targets | (me << shift));
            }
            write32(GICD_BASE + GICD_ISENABLER + word, bit);
        }
        None => return Err(Error::BadIntid(intid)),
    }
    Ok(())
}

/// Acknowledges the highest-priority pending interrupt; returns the raw
/// acknowledge value to pass to [`eoi`] (see [`intid`]).
pub fn ack() -> u32 {
    match version() {
        Some(Version::V3) => {
            // INTIDs are 24 bits at most; the upper bits are RES0.
            (read_sysreg!("icc_iar1_el1") & 0x00ff_ffff) as u32
        }
        Some(Version::V2) => read32(GICC_BASE + GICC_IAR),
        None => 1023,
    }
}

/// The INTID in an acknowledge value (GICv2 adds the source CPU of SGIs).
pub fn intid(ack: u32) -> u32 {
    match version() {
        Some(Version::V2) => ack & 0x3ff,
        _ => ack,
    }
}

/// Signals the end of handling an interrupt (priority drop and
/// deactivation) for the value [`ack`] returned.
pub fn eoi(ack: u32) {
    match version() {
        Some(Version::V3) => write_sysreg!("icc_eoir1_el1", u64::from(ack)),
        Some(Version::V2) => write32(GICC_BASE + GICC_EOIR, ack),
        None => {}
    }
}
