//! Hypercalls (`hvc #0x4a48`, x0 = code; or a command on the management
//! page): the management ABI of docs/abi.md.

use core::sync::atomic::Ordering;
use hv_core::abi::{CpuInfoItem, CpuStat, Errno, Hypercall, InfoItem};

use super::boot::TrapFrame;
use super::cell::{self, CELLS};
use super::cpu::CPUS;
use super::{console, heap, iommu, lifecycle, traps};

/// A hypercall from the calling CPU's cell: x0 = code, x1..x3 = arguments.
pub fn dispatch(frame: &mut TrapFrame) {
    frame.x[0] = call(frame.x[0], frame.x[1], frame.x[2], frame.x[3]);
}

/// Runs hypercall `code`; returns x0 (a value or a negative errno).
pub fn call(code: u64, a1: u64, a2: u64, _a3: u64) -> u64 {
    iommu::poll_if_no_irq();
    let id = |v: u64| usize::try_from(v).map_err(|_| Errno::NoEnt);
    let result: Result<u64, Errno> = match Hypercall::try_from(code) {
        Ok(Hypercall::HypervisorGetInfo) => get_info(a1),
        Ok(Hypercall::CellGetState) => match id(a1).ok().and_then(cell::get) {
            Some(c) => Ok(c.state() as u64),
            None => Err(Errno::NoEnt),
        },
        Ok(Hypercall::CpuGetInfo) => cpu_info(a1, a2),
        Ok(Hypercall::DebugConsolePutc) => {
            console::putc(a1 as u8);
            Ok(0)
        }
        Ok(Hypercall::CellCreate) => lifecycle::create(a1, a2),
        Ok(Hypercall::CellSetLoadable) => id(a1).and_then(lifecycle::set_loadable),
        Ok(Hypercall::CellStart) => id(a1).and_then(lifecycle::start),
        Ok(Hypercall::CellShutdown) => id(a1).and_then(lifecycle::shutdown),
        Ok(Hypercall::CellDestroy) => id(a1).and_then(lifecycle::destroy),
        Ok(Hypercall::CellGetInfo) => id(a1).and_then(|c| lifecycle::info(c, a2)),
        Ok(Hypercall::ConsoleRead) => lifecycle::console_read(a1, a2),
        Ok(Hypercall::Disable) | Err(_) => Err(Errno::NoSys),
    };
    match result {
        Ok(v) => v,
        Err(e) => e.to_ret(),
    }
}

fn get_info(item: u64) -> Result<u64, Errno> {
    let (total, used) = heap::usage();
    match InfoItem::try_from(item) {
        Ok(InfoItem::MemPoolPages) => Ok((total / 4096) as u64),
        Ok(InfoItem::MemPoolUsedPages) => Ok(used.div_ceil(4096) as u64),
        Ok(InfoItem::NumCells) => Ok(CELLS.read().iter().flatten().count() as u64),
        Err(_) => Err(Errno::Inval),
    }
}

/// Any CPU for the root cell; a non-root cell may ask about its own only.
fn cpu_info(cpu_id: u64, item: u64) -> Result<u64, Errno> {
    let id = usize::try_from(cpu_id).map_err(|_| Errno::NoEnt)?;
    let target = CPUS.get(id).filter(|c| c.present.load(Ordering::Acquire));
    let target = target.ok_or(Errno::NoEnt)?;
    let cell = traps::current_cell();
    if cell.id != 0 && !cell.cpus().contains(&id) {
        return Err(Errno::Perm);
    }
    match CpuInfoItem::try_from(item) {
        Ok(CpuInfoItem::State) => Ok(target.state() as u64),
        Ok(CpuInfoItem::Stat(s)) => {
            let counted = target.stats[s as usize].load(Ordering::Relaxed);
            // Interrupts injected by the assembly fast path count as EL2
            // entries and as vIRQs.
            let fast = match s {
                CpuStat::Total | CpuStat::Virq => {
                    super::boot::IRQ_FAST_COUNT[id].load(Ordering::Relaxed)
                }
                _ => 0,
            };
            Ok(counted + fast)
        }
        Err(_) => Err(Errno::Inval),
    }
}
