//! The SMMUv3, owned by the hypervisor: each DMA stream a cell owns is
//! translated by that cell's DMA table (its `dma` regions); every other
//! stream goes through a table that maps nothing, so its DMA aborts and
//! is reported (once per stream). A DMA fault stops the cell that owns the
//! stream.

use alloc::alloc::{alloc_zeroed, Layout};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch_aarch64::stage2;
use core::sync::atomic::{AtomicU32, Ordering};
use hv_core::config::SystemConfig;
use smmu::{DmaMemory, Event, Mmio, S2Config, Smmu};
use spin::Mutex;

use super::cell::{Cell, Fault, CELLS};
use super::{cpu, gicglue, setup};

static SMMU: Mutex<Option<Smmu<Mmio>>> = Mutex::new(None);
/// The SMMU's event-queue interrupt (0 = none: events are polled).
static EVENT_IRQ: AtomicU32 = AtomicU32::new(0);
/// Stream IDs the stream table covers at least (PCI bus 0).
const MIN_STREAMS: u32 = 0xff;
/// The VMID of the streams of no cell (cells have 1..=MAX_CELLS).
const NO_CELL_VMID: u16 = 0;
/// Size and alignment of the stage-2 root table that maps nothing (one
/// 4 KiB table: the IPA space is at most 39 bits, starting at level 1).
const EMPTY_TABLE: usize = 4096;
/// Streams of no cell that have been reported once; their further faults
/// are only counted.
static REPORTED: Mutex<alloc::collections::BTreeSet<u32>> =
    Mutex::new(alloc::collections::BTreeSet::new());

/// Stream tables and queues come from the hypervisor's heap, which is
/// identity mapped, and live for ever.
struct Pool;

// SAFETY: `alloc_zeroed` returns zeroed memory of the requested size and
// alignment that nothing else uses, with its physical (= virtual) address.
unsafe impl DmaMemory for Pool {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<(*mut u8, u64)> {
        let layout = Layout::from_size_align(size, align).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        (!p.is_null()).then_some((p, p as u64))
    }
}

fn s2(cell: &Cell) -> Option<S2Config> {
    cell.dma.as_ref().map(|t| S2Config {
        root_pa: t.lock().root_pa(),
        vmid: cell.vmid,
        vtcr: stage2::vtcr(setup::pa_range()),
    })
}

/// Takes the SMMU at boot: every stream aborts, then the cells' streams
/// are translated by their DMA tables.
pub fn init(sys: &SystemConfig, cells: &[Arc<Cell>]) -> Result<(), alloc::string::String> {
    let Some(cfg) = sys.platform.smmu else {
        return Ok(());
    };
    // SAFETY: the SMMU's register window from the validated platform
    // config, identity mapped as device memory; no cell maps it.
    let regs = unsafe { Mmio::new(cfg.base as usize) };
    let mut s = Smmu::new(regs).map_err(|e| format!("platform.smmu: {e}"))?;
    let max_sid = cells
        .iter()
        .flat_map(|c| c.config.streams.iter().copied())
        .chain(
            sys.boot_cells
                .iter()
                .flat_map(|c| c.streams.iter().copied()),
        )
        .max()
        .unwrap_or(0)
        .max(MIN_STREAMS);
    // Streams of no cell: a stage 2 that maps nothing, so that a device
    // nobody owns is seen (its DMA faults and is recorded) as well as
    // stopped.
    let (_, empty) = Pool
        .alloc_zeroed(EMPTY_TABLE, EMPTY_TABLE)
        .ok_or("platform.smmu: no memory for the empty stage-2 table")?;
    let nobody = S2Config {
        root_pa: empty,
        vmid: NO_CELL_VMID,
        vtcr: stage2::vtcr(setup::pa_range()),
    };
    s.init_reporting(&mut Pool, max_sid, Some(nobody))
        .map_err(|e| format!("platform.smmu: {e}"))?;
    let mut translated = 0;
    for c in cells {
        for sid in c.streams() {
            s.set_stream(sid, s2(c))
                .map_err(|e| format!("cell \"{}\": stream {sid:#x}: {e}", c.name()))?;
            translated += 1;
        }
    }
    if let Some(irq) = cfg.event_irq {
        s.enable_irqs().map_err(|e| format!("platform.smmu: {e}"))?;
        EVENT_IRQ.store(irq, Ordering::Release);
        super::boot::IRQ_FAST_HV_SPI.store(irq, Ordering::Release);
        gicglue::enable_hv_spi(irq, cpu::current_id());
    }
    *SMMU.lock() = Some(s);
    println!(
        "SMMUv3 at {:#x}: {translated} stream(s) translated, all others abort",
        cfg.base
    );
    Ok(())
}

/// Whether `intid` is the SMMU's event interrupt.
pub fn is_event_irq(intid: u32) -> bool {
    intid != 0 && EVENT_IRQ.load(Ordering::Acquire) == intid
}

/// Points the cell's streams at its DMA table (`on`) or makes them abort,
/// and drops what the SMMU cached for the cell.
pub fn set_streams(cell: &Cell, on: bool) {
    let streams = cell.streams();
    if streams.is_empty() {
        return;
    }
    let mut guard = SMMU.lock();
    let Some(s) = guard.as_mut() else { return };
    let cfg = if on { s2(cell) } else { None };
    for &sid in &streams {
        if let Err(e) = s.set_stream(sid, cfg) {
            println!("SMMU: stream {sid:#x} of cell \"{}\": {e}", cell.name());
        }
    }
    let _ = s.invalidate_vmid(cell.vmid);
}

/// Drops what the SMMU cached for a cell after its DMA table changed.
pub fn invalidate(cell: &Cell) {
    if let Some(s) = SMMU.lock().as_mut() {
        let _ = s.invalidate_vmid(cell.vmid);
    }
}

/// Reads the event queue and global errors; each DMA fault is reported
/// with the cell that owns the stream, and that cell is stopped.
pub fn handle_events() {
    let (events, gerror): (Vec<Event>, _) = {
        let mut guard = SMMU.lock();
        let Some(s) = guard.as_mut() else { return };
        let events = s.poll_events().collect();
        (events, s.gerror())
    };
    if let Some(g) = gerror {
        println!("SMMU: global error: {g}");
    }
    // Faults of a cell already stopped are counted, not printed one by one
    // (a device may fault once per word).
    let mut quiet = 0usize;
    for ev in events {
        let owner = CELLS
            .read()
            .iter()
            .flatten()
            .find(|c| c.streams().contains(&ev.stream))
            .cloned();
        let Some(cell) = owner else {
            if REPORTED.lock().insert(ev.stream) {
                println!("SMMU: {ev} (stream of no cell: blocked; later faults of it are counted)");
            } else {
                quiet += 1;
            }
            continue;
        };
        if !cell.state().is_running() {
            quiet += 1;
            continue;
        }
        println!("SMMU: {ev} (cell \"{}\")", cell.name());
        set_streams(&cell, false);
        let cpus = cell.cpus();
        setup::fail_cell(
            &cell,
            Fault {
                what: format!("DMA fault: {ev}"),
                ipa: ev.addr.or(ev.ipa).unwrap_or(0),
                esr: 0,
                pc: 0,
                cpu: cpus.first().copied().unwrap_or(0),
            },
        );
        if cpus.contains(&cpu::current_id()) {
            cpu::current().park_request.store(true, Ordering::Release);
        }
    }
    if quiet > 0 {
        println!("SMMU: {quiet} more fault(s) from streams of stopped cells or of no cell");
    }
}

/// Without an event interrupt, events are read whenever the hypervisor
/// handles a hypercall.
pub fn poll_if_no_irq() {
    if EVENT_IRQ.load(Ordering::Relaxed) == 0 && SMMU.lock().is_some() {
        handle_events();
    }
}
