//! The CPU side of the GIC for an inmate: GICv3 through the system register
//! interface plus this CPU's redistributor, or GICv2 through the memory-
//! mapped CPU interface; in both cases the distributor for SPIs.
//!
//! Every GIC register access is one 32-bit volatile load or store (64-bit
//! for GICD_IROUTER) with a plain base+offset address: in a cell the
//! hypervisor traps GICD/GICR accesses and decodes them from the syndrome,
//! which has no room for pairs, writeback or SIMD.
//!
//! Set-up that firmware or the root cell's kernel normally does (waking the
//! redistributor, enabling the distributor and Group 1, putting an interrupt
//! in Group 1) is done only when a read shows it missing. Bare on QEMU those
//! writes happen; in a cell the hypervisor's emulation already reports them
//! done and is never asked to change shared state.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

/// Distributor (v2 and v3).
pub const GICD_BASE: usize = 0x0800_0000;
/// GICv2 CPU interface (in a cell: backed by the virtual CPU interface).
pub const GICC_BASE: usize = 0x0801_0000;
/// First GICv3 redistributor frame.
pub const GICR_BASE: usize = 0x080a_0000;

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

const GICR_TYPER_LO: usize = 0x0008;
const GICR_TYPER_HI: usize = 0x000c;
const GICR_WAKER: usize = 0x0014;
const GICR_TYPER_VLPIS: u32 = 1 << 1;
const GICR_TYPER_LAST: u32 = 1 << 4;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// SGI_base frame, after RD_base.
const GICR_SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = 0x0080;
const GICR_ISENABLER0: usize = 0x0100;
/// Frames of a GICv3 redistributor (RD_base + SGI_base).
const GICR_STRIDE: usize = 0x2_0000;
/// GICv4 adds the VLPI frames.
const GICR_STRIDE_VLPI: usize = 0x4_0000;
/// Upper bound on redistributors scanned, in case no frame says Last.
const GICR_MAX_FRAMES: usize = 512;

const GICC_CTLR: usize = 0x0000;
const GICC_PMR: usize = 0x0004;
const GICC_IAR: usize = 0x000c;
const GICC_EOIR: usize = 0x0010;

/// Polls of a status bit before giving up.
const POLL_LIMIT: u32 = 1_000_000;
/// INTIDs from 1020 up are special (1023: spurious).
const FIRST_SPECIAL_INTID: u32 = 1020;
/// SGIs and PPIs are INTIDs 0..32, banked per CPU.
const PRIVATE_INTIDS: u32 = 32;

/// Which GIC architecture the CPU interface speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Memory-mapped CPU interface at [`GICC_BASE`].
    V2,
    /// System-register CPU interface, redistributors from [`GICR_BASE`].
    V3,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V2 => "v2",
            Version::V3 => "v3",
        })
    }
}

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No redistributor frame's GICR_TYPER affinity matches this CPU.
    NoRedistributor {
        /// This CPU's affinity in GICR_TYPER[63:32] layout.
        affinity: u32,
    },
    /// The redistributor kept GICR_WAKER.ChildrenAsleep set.
    RedistributorAsleep {
        /// Address of the redistributor's RD_base frame.
        frame: usize,
    },
    /// ICC_SRE_EL1.SRE stayed 0: EL2 does not let EL1 use the system
    /// register interface.
    SystemRegistersDisabled,
    /// An INTID that is special (1020..) or beyond what the GIC supports.
    BadIntid(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRedistributor { affinity } => write!(
                f,
                "no GICR frame from 0x{GICR_BASE:x} has GICR_TYPER affinity 0x{affinity:08x} (this CPU)"
            ),
            Error::RedistributorAsleep { frame } => {
                write!(f, "GICR_WAKER at 0x{frame:x}: ChildrenAsleep stays set")
            }
            Error::SystemRegistersDisabled => {
                f.write_str("ICC_SRE_EL1.SRE: cannot enable the GICv3 system register interface")
            }
            Error::BadIntid(intid) => write!(f, "INTID {intid}: not an SGI, PPI or SPI"),
        }
    }
}

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

/// The affinity of `mpidr` as GICR_TYPER[63:32] holds it:
/// Aff3:Aff2:Aff1:Aff0.
pub fn gicr_affinity(mpidr: u64) -> u32 {
    // Both masks keep the value within 32 bits.
    ((mpidr & 0x00ff_ffff) | ((mpidr >> 8) & 0xff00_0000)) as u32
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

    let rd = find_redistributor(gicr_affinity(mpidr()))?;
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

/// Scans the redistributor frames from [`GICR_BASE`] for the one whose
/// GICR_TYPER affinity is `affinity`, up to the frame marked Last.
fn find_redistributor(affinity: u32) -> Result<usize, Error> {
    let mut frame = GICR_BASE;
    for _ in 0..GICR_MAX_FRAMES {
        let typer_lo = read32(frame + GICR_TYPER_LO);
        if read32(frame + GICR_TYPER_HI) == affinity {
            return Ok(frame);
        }
        if typer_lo & GICR_TYPER_LAST != 0 {
            break;
        }
        frame += if typer_lo & GICR_TYPER_VLPIS != 0 {
            GICR_STRIDE_VLPI
        } else {
            GICR_STRIDE
        };
    }
    Err(Error::NoRedistributor { affinity })
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

/// Whether an INTID is a special one (1020..1023: nothing to handle).
pub fn is_spurious(intid: u32) -> bool {
    (FIRST_SPECIAL_INTID..FIRST_SPECIAL_INTID + 4).contains(&intid)
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
