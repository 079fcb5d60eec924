//! The hypervisor's own set-up of the physical distributor and
//! redistributors, and SPI routing.
//!
//! Interrupt configuration, consistent across versions: every interrupt is
//! in the group the Non-secure hypervisor handles (GICv3: Group 1 NS; GICv2
//! without Security Extensions: Group 0, with them: whatever firmware set,
//! Non-secure accesses cannot change it), default priority
//! [`DEFAULT_PRIORITY`]. The hypervisor acknowledges with IAR and drops
//! priority with EOIR (split EOI), the cell deactivates through its HW=1
//! list register.

use core::fmt;

use tock_registers::LocalRegisterCopy;

use crate::access::{CpuId, RegIo};
use crate::gicd::MAINTENANCE_INTID;
use crate::regs::{field_bits32, gicd, gicr, GICD_CTLR_V2, GICD_CTLR_V3, GICD_TYPER, GICR_WAKER};
use crate::GicVersion;

/// Priority the hypervisor gives every interrupt at start.
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// Bounded polling of a GIC status bit.
const POLL_LIMIT: u32 = 1_000_000;

/// A GIC status bit did not settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeTimeout(pub &'static str);

impl fmt::Display for WakeTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GIC: timed out waiting for {}", self.0)
    }
}

fn all(bytes: u8) -> u64 {
    u64::from(u32::from_ne_bytes([bytes; 4]))
}

fn wait_clear(
    hw: &mut impl RegIo,
    offset: u64,
    mask: u32,
    what: &'static str,
) -> Result<(), WakeTimeout> {
    for _ in 0..POLL_LIMIT {
        if hw.read(offset, 4) as u32 & mask == 0 {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(WakeTimeout(what))
}

/// Number of interrupt lines (INTIDs) the distributor implements, ≤ 1020.
fn lines(hw: &mut impl RegIo) -> u32 {
    let typer = LocalRegisterCopy::<u32, GICD_TYPER::Register>::new(hw.read(gicd::TYPER, 4) as u32);
    (32 * (typer.read(GICD_TYPER::ITLinesNumber) + 1)).min(1020)
}

/// Initialises the distributor behind `hw`: disabled, every SPI in the
/// hypervisor's group, priority [`DEFAULT_PRIORITY`], disabled, not
/// pending, not active; then enabled (GICv3: affinity routing + Group 1
/// NS; GICv2: Enable). SPIs are routed later with [`route_spi_on`].
pub fn init_distributor_on(ver: GicVersion, hw: &mut impl RegIo) -> Result<(), WakeTimeout> {
    hw.write(gicd::CTLR, 4, 0);
    if ver == GicVersion::V3 {
        wait_clear(
            hw,
            gicd::CTLR,
            field_bits32(GICD_CTLR_V3::RWP),
            "GICD_CTLR.RWP",
        )?;
    }
    let lines = lines(hw);
    let typer = LocalRegisterCopy::<u32, GICD_TYPER::Register>::new(hw.read(gicd::TYPER, 4) as u32);
    for first in (32..lines).step_by(32) {
        let bit_reg = u64::from(first / 8);
        match ver {
            GicVersion::V3 => {
                hw.write(gicd::IGROUPR + bit_reg, 4, all(0xff));
                hw.write(gicd::IGRPMODR + bit_reg, 4, 0);
            }
            GicVersion::V2 if !typer.is_set(GICD_TYPER::SecurityExtn) => {
                hw.write(gicd::IGROUPR + bit_reg, 4, 0);
            }
            GicVersion::V2 => {}
        }
        hw.write(gicd::ICENABLER + bit_reg, 4, all(0xff));
        hw.write(gicd::ICPENDR + bit_reg, 4, all(0xff));
        hw.write(gicd::ICACTIVER + bit_reg, 4, all(0xff));
    }
    for first in (32..lines).step_by(4) {
        hw.write(
            gicd::IPRIORITYR + u64::from(first),
            4,
            all(DEFAULT_PRIORITY),
        );
    }
    match ver {
        GicVersion::V3 => {
            let ctlr = GICD_CTLR_V3::ARE::SET
                + GICD_CTLR_V3::EnableGrp1A::SET
                + GICD_CTLR_V3::EnableGrp1::SET;
            hw.write(gicd::CTLR, 4, u64::from(ctlr.value));
            wait_clear(
                hw,
                gicd::CTLR,
                field_bits32(GICD_CTLR_V3::RWP),
                "GICD_CTLR.RWP",
            )
        }
        GicVersion::V2 => {
            hw.write(gicd::CTLR, 4, u64::from(GICD_CTLR_V2::Enable::SET.value));
            Ok(())
        }
    }
}

/// Routes SPI `intid` to `cpu` (GICv3: GICD_IROUTER, targeted; GICv2: the
/// byte of GICD_ITARGETSR). INTIDs that are not SPIs are ignored.
pub fn route_spi_on(ver: GicVersion, hw: &mut impl RegIo, intid: u32, cpu: CpuId) {
    if !(32..1020).contains(&intid) {
        return;
    }
    match ver {
        GicVersion::V3 => hw.write(gicd::IROUTER_BASE + 8 * u64::from(intid), 8, cpu.affinity()),
        GicVersion::V2 => hw.write(
            gicd::ITARGETSR + u64::from(intid),
            1,
            u64::from(cpu.v2_target),
        ),
    }
}

/// Makes SPI `intid` pending through GICD_ISPENDR (the same offset on
/// GICv2 and GICv3): a software-raised interrupt, e.g. an ivshmem
/// doorbell. The write sets only that bit, so no lock is needed.
/// INTIDs that are not SPIs are ignored.
pub fn set_spi_pending_on(hw: &mut impl RegIo, intid: u32) {
    if !(32..1020).contains(&intid) {
        return;
    }
    hw.write(
        gicd::ISPENDR + 4 * u64::from(intid / 32),
        4,
        1u64 << (intid % 32),
    );
}

/// Wakes the redistributor of one CPU (`hw` = its RD_base): clears
/// GICR_WAKER.ProcessorSleep and waits for ChildrenAsleep to clear.
pub fn redistributor_wake_on(hw: &mut impl RegIo) -> Result<(), WakeTimeout> {
    let waker = hw.read(gicr::WAKER, 4) as u32;
    let waker = GICR_WAKER::ProcessorSleep.val(0).modify(waker);
    hw.write(gicr::WAKER, 4, u64::from(waker));
    wait_clear(
        hw,
        gicr::WAKER,
        field_bits32(GICR_WAKER::ChildrenAsleep),
        "GICR_WAKER.ChildrenAsleep",
    )
}

/// Sets up the private interrupts (SGIs and PPIs) of the current CPU:
/// `hw` is the CPU's GICR frame pair (GICv3) or the distributor (GICv2,
/// banked). Group as in the module docs, priority [`DEFAULT_PRIORITY`],
/// SGIs (including [`HV_SGI`](crate::HV_SGI)) and the maintenance interrupt enabled, other PPIs disabled (the
/// cell enables those it uses), nothing pending or active.
pub fn init_private_on(ver: GicVersion, hw: &mut impl RegIo) {
    let (igroupr, icenabler, isenabler, icpendr, icactiver, ipriorityr) = match ver {
        GicVersion::V3 => (
            gicr::IGROUPR0,
            gicr::ICENABLER0,
            gicr::ISENABLER0,
            gicr::ICPENDR0,
            gicr::ICACTIVER0,
            gicr::IPRIORITYR,
        ),
        GicVersion::V2 => (
            gicd::IGROUPR,
            gicd::ICENABLER,
            gicd::ISENABLER,
            gicd::ICPENDR,
            gicd::ICACTIVER,
            gicd::IPRIORITYR,
        ),
    };
    match ver {
        GicVersion::V3 => hw.write(igroupr, 4, all(0xff)),
        GicVersion::V2 => {
            let typer =
                LocalRegisterCopy::<u32, GICD_TYPER::Register>::new(hw.read(gicd::TYPER, 4) as u32);
            if !typer.is_set(GICD_TYPER::SecurityExtn) {
                hw.write(igroupr, 4, 0);
            }
        }
    }
    hw.write(icactiver, 4, all(0xff));
    hw.write(icpendr, 4, all(0xff));
    for first in (0..32).step_by(4) {
        hw.write(ipriorityr + first, 4, all(DEFAULT_PRIORITY));
    }
    let sgis = 0xffffu64;
    let maintenance = 1u64 << MAINTENANCE_INTID;
    hw.write(icenabler, 4, !(sgis | maintenance) & 0xffff_ffff);
    hw.write(isenabler, 4, sgis | maintenance);
}

#[cfg(all(target_arch = "aarch64", not(test)))]
mod hw_entry {
    use super::*;
    use crate::hw::Mmio;

    /// Initialises the physical distributor at `gicd_base` (see
    /// [`init_distributor_on`]). `gicd_base` must be the distributor's
    /// address, mapped as device memory in the hypervisor's tables.
    pub fn init_distributor(ver: GicVersion, gicd_base: usize) -> Result<(), WakeTimeout> {
        // SAFETY: the caller passes the GIC distributor, which the
        // hypervisor owns and maps as device memory; no Rust object aliases it.
        let mut hw = unsafe { Mmio::new(gicd_base) };
        init_distributor_on(ver, &mut hw)
    }

    /// Routes SPI `intid` to `cpu` on the distributor at `gicd_base` (see
    /// [`route_spi_on`]).
    pub fn route_spi(ver: GicVersion, gicd_base: usize, intid: u32, cpu: CpuId) {
        // SAFETY: as in `init_distributor`.
        let mut hw = unsafe { Mmio::new(gicd_base) };
        route_spi_on(ver, &mut hw, intid, cpu);
    }

    /// Makes SPI `intid` pending on the distributor at `gicd_base` (see
    /// [`set_spi_pending_on`]).
    pub fn set_spi_pending(gicd_base: usize, intid: u32) {
        // SAFETY: as in `init_distributor`.
        let mut hw = unsafe { Mmio::new(gicd_base) };
        set_spi_pending_on(&mut hw, intid);
    }

    /// Wakes the redistributor whose frame pair starts at `gicr_frame_base`
    /// (see [`redistributor_wake_on`]).
    pub fn redistributor_wake(gicr_frame_base: usize) -> Result<(), WakeTimeout> {
        // SAFETY: the caller passes a GICR frame of the hypervisor-owned
        // GIC, mapped as device memory.
        let mut hw = unsafe { Mmio::new(gicr_frame_base) };
        redistributor_wake_on(&mut hw)
    }

    /// Sets up the current CPU's SGIs and PPIs (see [`init_private_on`]):
    /// `base` is the current CPU's GICR frame pair (GICv3) or the
    /// distributor (GICv2). Call on each CPU, after [`redistributor_wake`]
    /// on GICv3.
    pub fn init_private(ver: GicVersion, base: usize) {
        // SAFETY: the caller passes a GIC frame of the hypervisor-owned
        // GIC, mapped as device memory.
        let mut hw = unsafe { Mmio::new(base) };
        init_private_on(ver, &mut hw);
    }
}

#[cfg(all(target_arch = "aarch64", not(test)))]
pub use hw_entry::{
    init_distributor, init_private, redistributor_wake, route_spi, set_spi_pending,
};
