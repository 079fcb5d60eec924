//! GICv3 redistributor (GICR) emulation.

use crate::access::{check_basic, CellView, CpuId, Denied, Family, MmioAccess, RegIo, WriteKind};
use crate::gicd::private_allowed;
use crate::regs::{gicr, GICR_CTLR, GICR_TYPER};

const fn family(base: u64, bits: u32, kind: WriteKind, bytes: bool) -> Family {
    Family {
        base,
        bits,
        irqs: 32,
        kind,
        bytes,
    }
}

/// SGI_base registers for INTIDs 0..31 (no extended PPIs).
const FAMILIES: [Family; 10] = [
    family(gicr::IGROUPR0, 1, WriteKind::Rmw, false),
    family(gicr::ISENABLER0, 1, WriteKind::SetClear, false),
    family(gicr::ICENABLER0, 1, WriteKind::SetClear, false),
    family(gicr::ISPENDR0, 1, WriteKind::SetClear, false),
    family(gicr::ICPENDR0, 1, WriteKind::SetClear, false),
    family(gicr::ISACTIVER0, 1, WriteKind::SetClear, false),
    family(gicr::ICACTIVER0, 1, WriteKind::SetClear, false),
    family(gicr::IPRIORITYR, 8, WriteKind::Rmw, true),
    // ICFGR0 (SGIs, read-only in hardware) and ICFGR1 (PPIs).
    family(gicr::ICFGR0, 2, WriteKind::Rmw, false),
    family(gicr::IGRPMODR0, 1, WriteKind::Rmw, false),
];

/// Emulates one access of the cell in `view` to the redistributor frame
/// pair (RD_base + SGI_base) of `frame_cpu`; `acc.offset` is relative to
/// that pair's base and `hw` addresses the same pair.
///
/// The cell's own CPUs' frames pass through, except LPI configuration
/// (PROPBASER, PENDBASER, EnableLPIs: RAZ/WI), GICR_WAKER writes (the
/// hypervisor keeps its redistributors awake) and the hypervisor's reserved
/// private interrupts. Other CPUs' frames: GICR_TYPER, GICR_IIDR and the ID
/// registers read through (Linux scans every frame to find its own),
/// everything else is RAZ/WI.
pub fn gicr_access(
    view: &CellView,
    frame_cpu: CpuId,
    acc: &MmioAccess,
    hw: &mut impl RegIo,
) -> Result<u64, Denied> {
    check_basic(acc)?;
    let off = acc.offset;
    let own = view.owns_cpu(&frame_cpu);

    // Readable in every frame.
    if off == gicr::TYPER || off == gicr::TYPER + 4 {
        if acc.size != 4 && !(acc.size == 8 && off == gicr::TYPER) {
            return Err(width(acc));
        }
        // No LPIs for cells: hide the capability; Last and the affinity
        // read as hardware says.
        let hidden = GICR_TYPER::PLPIS::SET + GICR_TYPER::DirectLPI::SET;
        let hidden = if off == gicr::TYPER {
            u64::from(hidden.value)
        } else {
            0
        };
        return Ok(read_only(acc, hw) & !hidden);
    }
    if off == gicr::IIDR || (gicr::ID..gicr::RD_SIZE).contains(&off) {
        require_word(acc)?;
        return Ok(read_only(acc, hw));
    }
    match off {
        gicr::CTLR | gicr::WAKER => require_word(acc)?,
        gicr::PROPBASER | gicr::PENDBASER if acc.size != 4 && acc.size != 8 => {
            return Err(width(acc));
        }
        _ => {}
    }
    if !own {
        return Ok(0);
    }

    match off {
        gicr::CTLR => Ok(match acc.write {
            None => hw.read(off, 4),
            Some(v) => {
                // No LPIs for cells: never let EnableLPIs through.
                hw.write(off, 4, GICR_CTLR::EnableLPIs.val(0).modify(v as u32).into());
                0
            }
        }),
        // Reads show the real (awake) state; a cell must not put the
        // redistributor the hypervisor relies on to sleep.
        gicr::WAKER => Ok(read_only(acc, hw)),
        _ => {
            if let Some(fam) = FAMILIES.iter().find(|f| f.contains(off)) {
                fam.check_width(acc)?;
                let mask = fam.mask(off, acc.size, private_allowed);
                return Ok(fam.perform(acc, mask, hw));
            }
            // PROPBASER/PENDBASER, STATUSR, LPI registers, NSACR,
            // extended PPIs, reserved space: RAZ/WI.
            Ok(0)
        }
    }
}

fn width(acc: &MmioAccess) -> Denied {
    Denied::Width {
        offset: acc.offset,
        size: acc.size,
    }
}

fn require_word(acc: &MmioAccess) -> Result<(), Denied> {
    if acc.size == 4 {
        Ok(())
    } else {
        Err(width(acc))
    }
}

/// Reads through; writes ignored.
fn read_only(acc: &MmioAccess, hw: &mut impl RegIo) -> u64 {
    match acc.write {
        None => hw.read(acc.offset, acc.size),
        Some(_) => 0,
    }
}
