//! Distributor (GICD) emulation: a cell's trapped accesses, filtered by
//! ownership and performed on the physical distributor.

use crate::access::{
    check_basic, size_mask, write_masked, CellView, Denied, Family, MmioAccess, RegIo, WriteKind,
};
use crate::regs::{gicd, GICD_IROUTER, GICD_TYPER_V3};
use crate::sgi::filter_sgir_v2;
use crate::GicVersion;

/// The maintenance interrupt (PPI 9), which list-register refill depends
/// on.
pub const MAINTENANCE_INTID: u32 = 25;

/// The SGI the hypervisor keeps for its own signalling between CPUs (park
/// and wake requests). Cells can neither send it nor configure it.
pub const HV_SGI: u32 = 15;

/// Bit mask (bit n = INTID n) of the private interrupts (SGIs, PPIs) the
/// hypervisor keeps for itself: a cell neither sees nor changes their
/// configuration on its CPUs ([`MAINTENANCE_INTID`], [`HV_SGI`]).
pub const HV_RESERVED_PRIVATE: u32 = (1 << MAINTENANCE_INTID) | (1 << HV_SGI);

/// Whether a cell may touch private interrupt `intid` (< 32) of one of its
/// own CPUs.
pub(crate) fn private_allowed(intid: u32) -> bool {
    intid < 32 && HV_RESERVED_PRIVATE & (1 << intid) == 0
}

const fn family(base: u64, bits: u32, kind: WriteKind, bytes: bool) -> Family {
    Family {
        base,
        bits,
        irqs: 1024,
        kind,
        bytes,
    }
}

/// The per-IRQ register families of the distributor, both versions.
const FAMILIES: [Family; 9] = [
    family(gicd::IGROUPR, 1, WriteKind::Rmw, false),
    family(gicd::ISENABLER, 1, WriteKind::SetClear, false),
    family(gicd::ICENABLER, 1, WriteKind::SetClear, false),
    family(gicd::ISPENDR, 1, WriteKind::SetClear, false),
    family(gicd::ICPENDR, 1, WriteKind::SetClear, false),
    family(gicd::ISACTIVER, 1, WriteKind::SetClear, false),
    family(gicd::ICACTIVER, 1, WriteKind::SetClear, false),
    family(gicd::IPRIORITYR, 8, WriteKind::Rmw, true),
    family(gicd::ICFGR, 2, WriteKind::Rmw, false),
];

/// GICv3 only.
const IGRPMODR: Family = family(gicd::IGRPMODR, 1, WriteKind::Rmw, false);
/// GICv2 only.
const ITARGETSR: Family = family(gicd::ITARGETSR, 8, WriteKind::Rmw, true);
/// GICv3: `GICD_IROUTER<n>`, n = 0..1023 (0..31 reserved).
const IROUTER_END: u64 = gicd::IROUTER_BASE + 8 * 1024;

/// Emulates one access of the cell in `view` to the distributor.
///
/// Returns the value for reads (0 for writes). The caller holds the lock
/// that serialises distributor emulation across CPUs (read-modify-write
/// registers are shared between cells).
pub fn gicd_access(
    ver: GicVersion,
    view: &CellView,
    acc: &MmioAccess,
    hw: &mut impl RegIo,
) -> Result<u64, Denied> {
    check_basic(acc)?;
    let off = acc.offset;

    // Identification and control: read through, writes ignored.
    let id_base = match ver {
        GicVersion::V2 => gicd::V2_ID,
        GicVersion::V3 => gicd::V3_ID,
    };
    let passthrough = matches!(off, gicd::CTLR | gicd::TYPER | gicd::IIDR)
        || (ver == GicVersion::V3 && off == gicd::TYPER2)
        || (id_base..id_base + gicd::ID_LEN).contains(&off);
    if passthrough {
        require_word(acc)?;
        return Ok(match acc.write {
            // No LPIs or message-based SPIs for cells (their registers are
            // RAZ/WI): say so, rather than let a guest set them up.
            None if off == gicd::TYPER && ver == GicVersion::V3 => {
                let hidden =
                    GICD_TYPER_V3::MBIS::SET + GICD_TYPER_V3::LPIS::SET + GICD_TYPER_V3::DVIS::SET;
                hw.read(off, 4) & !u64::from(hidden.value)
            }
            None => hw.read(off, 4),
            Some(_) => 0,
        });
    }

    let allowed = |intid: u32| match ver {
        // Affinity routing: SGIs and PPIs live in the redistributors.
        GicVersion::V3 => view.owns_spi(intid),
        // Banked: the current CPU's own private interrupts.
        GicVersion::V2 => view.owns_spi(intid) || private_allowed(intid),
    };

    if let Some(fam) = FAMILIES.iter().find(|f| f.contains(off)) {
        fam.check_width(acc)?;
        let mask = fam.mask(off, acc.size, allowed);
        return Ok(fam.perform(acc, mask, hw));
    }

    match ver {
        GicVersion::V3 => {
            if IGRPMODR.contains(off) {
                IGRPMODR.check_width(acc)?;
                let mask = IGRPMODR.mask(off, acc.size, allowed);
                return Ok(IGRPMODR.perform(acc, mask, hw));
            }
            if (gicd::IROUTER_BASE..IROUTER_END).contains(&off) {
                return irouter(view, acc, hw);
            }
        }
        GicVersion::V2 => {
            if ITARGETSR.contains(off) {
                ITARGETSR.check_width(acc)?;
                return Ok(itargetsr(view, acc, allowed, hw));
            }
            if off == gicd::SGIR {
                require_word(acc)?;
                if let Some(v) = acc.write {
                    if let Some(phys) = filter_sgir_v2(view, v as u32) {
                        hw.write(gicd::SGIR, 4, u64::from(phys));
                    }
                }
                return Ok(0);
            }
        }
    }

    // Everything else (STATUSR, NSACR, message-based SPIs, SGI pending
    // registers, extended SPI ranges, reserved space): RAZ/WI.
    Ok(0)
}

fn require_word(acc: &MmioAccess) -> Result<(), Denied> {
    if acc.size == 4 {
        Ok(())
    } else {
        Err(Denied::Width {
            offset: acc.offset,
            size: acc.size,
        })
    }
}

/// GICv2 GICD_ITARGETSR: reads masked to allowed INTIDs (0..31 read back
/// the current CPU's own bit); writes to owned SPIs only, and a byte that
/// names a CPU outside the cell is ignored.
fn itargetsr(
    view: &CellView,
    acc: &MmioAccess,
    allowed: impl Fn(u32) -> bool,
    hw: &mut impl RegIo,
) -> u64 {
    let first = ITARGETSR.first_irq(acc.offset);
    let Some(value) = acc.write else {
        let mask = ITARGETSR.mask(acc.offset, acc.size, allowed);
        return ITARGETSR.perform(acc, mask, hw);
    };
    let cell_mask = view.v2_mask();
    let mut mask = 0u64;
    for i in 0..u32::from(acc.size) {
        let intid = first + i;
        let byte = (value >> (8 * i)) as u8;
        // INTIDs 0..31 are read-only; a target outside the cell is refused.
        if view.owns_spi(intid) && byte & !cell_mask == 0 {
            mask |= 0xff << (8 * i);
        }
    }
    write_masked(WriteKind::Rmw, acc, value, mask, hw);
    0
}

/// GICv3 `GICD_IROUTER<n>`: owned SPIs only; routing mode forced to 0
/// (targeted) and a target outside the cell ignored.
fn irouter(view: &CellView, acc: &MmioAccess, hw: &mut impl RegIo) -> Result<u64, Denied> {
    if acc.size != 8 && acc.size != 4 {
        return Err(Denied::Width {
            offset: acc.offset,
            size: acc.size,
        });
    }
    let reg = acc.offset & !7;
    let intid = ((reg - gicd::IROUTER_BASE) / 8) as u32;
    if !view.owns_spi(intid) {
        return Ok(0);
    }
    let Some(value) = acc.write else {
        return Ok(hw.read(acc.offset, acc.size));
    };
    let new = if acc.size == 8 {
        value
    } else {
        // A 32-bit half: merge with the other half to see the whole route.
        let shift = (acc.offset & 4) * 8;
        let old = hw.read(reg, 8);
        (old & !(size_mask(4) << shift)) | ((value & size_mask(4)) << shift)
    };
    let new = GICD_IROUTER::InterruptRoutingMode.val(0).modify(new);
    let target = new & crate::regs::AFFINITY_MASK;
    if view.cpus.iter().any(|c| c.affinity() == target) {
        hw.write(reg, 8, new);
    }
    Ok(0)
}
