//! Cells created, loaded, started, shut down and destroyed at run time, on
//! the root cell's request (hypercalls 1-4, 9-11).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch_aarch64::cellmap::access_of;
use arch_aarch64::stage2::{Access, MemKind};
use core::sync::atomic::Ordering;
use hv_core::abi::{CellState, CpuState, Errno};
use hv_core::config::{CellConfig, MemFlag, MemoryRegion};
use hv_core::mgmt::{comm, CellInfo, FaultInfo};

use super::cell::{self, Cell, Fault, CELLS};
use super::cpu::{StartRequest, CPUS};
use super::sysregs::*;
use super::{console, gicglue, iommu, ivshmem, mgmt, setup, traps};

/// Most cells at a time, the root cell included.
pub const MAX_CELLS: usize = 32;
/// How long a cell may take to answer a shutdown request.
const SHUTDOWN_TIMEOUT_MS: u64 = 2000;
/// How long a CPU may take to reach the hypervisor when asked to park.
const PARK_TIMEOUT_MS: u64 = 1000;

fn now_ms() -> u64 {
    let cnt = read_sysreg!("cntpct_el0");
    let frq = read_sysreg!("cntfrq_el0").max(1);
    cnt / (frq / 1000).max(1)
}

fn root() -> Result<Arc<Cell>, Errno> {
    cell::get(0).ok_or(Errno::NoEnt)
}

fn caller_is_root() -> Result<(), Errno> {
    if traps::current_cell().id == 0 {
        Ok(())
    } else {
        Err(Errno::Perm)
    }
}

/// Refuses reconfiguration while a cell is running/locked (it wrote that
/// state into its comm region, as Jailhouse's cells do).
fn unlocked() -> Result<(), Errno> {
    let locked = CELLS
        .read()
        .iter()
        .flatten()
        .find(|c| c.state() == CellState::RunningLocked)
        .cloned();
    match locked {
        Some(c) => {
            println!("cell \"{}\" is locked: no reconfiguration", c.name());
            Err(Errno::Perm)
        }
        None => Ok(()),
    }
}

/// A non-root cell by id, for the root cell, if no cell is locked.
fn target(id: usize) -> Result<Arc<Cell>, Errno> {
    caller_is_root()?;
    unlocked()?;
    if id == 0 {
        return Err(Errno::Perm);
    }
    cell::get(id).ok_or(Errno::NoEnt)
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> Option<(u64, u64)> {
    let s = a.0.max(b.0);
    let e = a.1.min(b.1);
    (s < e).then_some((s, e))
}

fn phys(r: &MemoryRegion) -> (u64, u64) {
    (r.phys_start, r.phys_start + r.size)
}

/// The parts of the root cell's address space backed by `cell`'s own
/// (non-shared) regions: `(root IPA, PA, size, root region)`.
fn root_overlaps<'a>(root: &'a Cell, cell: &CellConfig) -> Vec<(u64, u64, u64, &'a MemoryRegion)> {
    let mut out = Vec::new();
    for c in cell.memory.iter().filter(|r| !r.has(MemFlag::Shared)) {
        for r in &root.config.memory {
            if let Some((s, e)) = overlap(phys(r), phys(c)) {
                out.push((r.virt_start + (s - r.phys_start), s, e - s, r));
            }
        }
    }
    out
}

/// Regions the root cell may write between set-loadable and start: those
/// flagged `loadable`, or every RAM region if none is.
fn loadable_regions(config: &CellConfig) -> Vec<(u64, u64)> {
    let ram = config.memory.iter().filter(|r| !r.has(MemFlag::Io));
    let flagged: Vec<_> = ram
        .clone()
        .filter(|r| r.has(MemFlag::Loadable))
        .map(|r| (r.phys_start, r.size))
        .collect();
    if flagged.is_empty() {
        ram.map(|r| (r.phys_start, r.size)).collect()
    } else {
        flagged
    }
}

fn refuse(offset: u64, msg: String) -> Errno {
    println!("cell create refused: {msg}");
    mgmt::write_message(offset, &msg);
    Errno::Inval
}

/// Hypercall 1: creates a cell from the `.cell` blob at `offset` in the
/// management buffer. Its CPUs must be the root cell's and offline there.
pub fn create(offset: u64, len: u64) -> Result<u64, Errno> {
    caller_is_root()?;
    unlocked()?;
    let blob = mgmt::read_buffer(offset, len)?;
    let config = hv_core::blob::decode_cell(&blob).map_err(|e| refuse(offset, format!("{e}")))?;
    let sys = setup::system();
    let existing: Vec<Arc<Cell>> = CELLS
        .read()
        .iter()
        .flatten()
        .filter(|c| c.id != 0)
        .cloned()
        .collect();
    let others: Vec<&CellConfig> = existing.iter().map(|c| &c.config).collect();
    hv_core::validate::validate_cell(sys, &config, &others)
        .map_err(|e| refuse(offset, format!("{e}")))?;
    if let Some(m) = sys.hypervisor.management {
        let buf = (m.buffer.start, m.buffer.start + m.buffer.size);
        for (i, r) in config.memory.iter().enumerate() {
            if overlap(phys(r), buf).is_some() {
                return Err(refuse(
                    offset,
                    format!("memory[{i}]: overlaps the management buffer"),
                ));
            }
        }
    }
    let root = root()?;
    let cpus: Vec<usize> = config.cpus.iter().map(|&c| c as usize).collect();
    {
        let res = root.resources();
        for &c in &cpus {
            if !res.cpus.contains(&c) {
                return Err(refuse(
                    offset,
                    format!("cpus: CPU {c} is not the root cell's to give"),
                ));
            }
            if !CPUS[c].waiting.load(Ordering::Acquire) {
                return Err(refuse(
                    offset,
                    format!(
                        "cpus: CPU {c} is still online in the root cell (take it offline first)"
                    ),
                ));
            }
        }
        if res.cpus.iter().all(|c| cpus.contains(c)) {
            return Err(refuse(
                offset,
                String::from("cpus: the root cell would keep no CPU"),
            ));
        }
    }
    let mut spis = gic::IrqSet::new();
    for &irq in &config.irqs {
        spis.insert(irq)
            .map_err(|_| refuse(offset, format!("irqs: {irq} out of range")))?;
    }
    ivshmem::add_spis(&config, &mut spis)
        .map_err(|irq| refuse(offset, format!("ivshmem: IRQ {irq} out of range")))?;
    let id = {
        let cells = CELLS.read();
        (1..MAX_CELLS)
            .find(|&i| cells.get(i).is_none_or(|c| c.is_none()))
            .ok_or_else(|| refuse(offset, format!("at most {MAX_CELLS} cells")))?
    };
    let hv = sys.hypervisor.memory;
    let streams = config.streams.clone();
    let res = cell::Resources {
        cpus: cpus.clone(),
        spis: spis.clone(),
        streams: streams.clone(),
    };
    let built = setup::build_cell(id, config, res, &[(hv.start, hv.start + hv.size)])
        .map_err(|e| refuse(offset, e))?;
    let cell = Arc::new(built);

    // Take the memory, CPUs and interrupts from the root cell.
    {
        let mut t = root.stage2.lock();
        let mut dma = root.dma.as_ref().map(|d| d.lock());
        for (ipa, _, size, _) in root_overlaps(&root, &cell.config) {
            let _ = t.unmap(ipa, size);
            if let Some(d) = dma.as_mut() {
                let _ = d.unmap(ipa, size);
            }
        }
    }
    tlbi_current_vmid();
    iommu::invalidate(&root);
    iommu::set_streams(&cell, true);
    {
        let mut res = root.resources();
        res.cpus.retain(|c| !cpus.contains(c));
        for irq in spis.iter() {
            res.spis.remove(irq);
        }
        res.streams.retain(|s| !streams.contains(s));
    }
    for &c in &cpus {
        CPUS[c].cell.store(id, Ordering::Release);
        // `cell stats` counts from here on, not what the root cell did.
        for s in &CPUS[c].stats {
            s.store(0, Ordering::Relaxed);
        }
        super::boot::IRQ_FAST_COUNT[c].store(0, Ordering::Relaxed);
    }
    gicglue::disable_spis(&cell);
    gicglue::route_spis(&cell);
    {
        let mut cells = CELLS.write();
        if cells.len() <= id {
            cells.resize(id + 1, None);
        }
        cells[id] = Some(cell.clone());
    }
    println!(
        "cell \"{}\" created (id {id}), CPUs {:?}",
        cell.name(),
        cpus
    );
    Ok(id as u64)
}

/// Hypercall 3: maps the cell's loadable regions into the root cell
/// (identity), so that the root can write images there.
pub fn set_loadable(id: usize) -> Result<u64, Errno> {
    let cell = target(id)?;
    if cell.state().is_running() {
        return Err(Errno::Busy);
    }
    if cell.loadable.swap(true, Ordering::AcqRel) {
        return Ok(0);
    }
    stop_cpus(&cell, CellState::ShutDown, None);
    let root = root()?;
    let mut t = root.stage2.lock();
    let rw = Access {
        read: true,
        write: true,
        exec: false,
    };
    for (pa, size) in loadable_regions(&cell.config) {
        if t.map(pa, pa, size, rw, MemKind::Normal).is_err() {
            return Err(Errno::Busy);
        }
    }
    Ok(0)
}

fn clear_loadable(cell: &Cell) {
    if !cell.loadable.swap(false, Ordering::AcqRel) {
        return;
    }
    if let Ok(root) = root() {
        let mut t = root.stage2.lock();
        for (pa, size) in loadable_regions(&cell.config) {
            let _ = t.unmap(pa, size);
        }
    }
    tlbi_current_vmid();
}

/// Hypercall 2: starts (or restarts) a cell at its entry.
pub fn start(id: usize) -> Result<u64, Errno> {
    let cell = target(id)?;
    if cell.state().is_running() {
        return Err(Errno::Busy);
    }
    if !stop_cpus(&cell, cell.state(), None) {
        return Err(Errno::Busy);
    }
    launch(&cell)
}

/// Starts `cell`, whose CPUs are parked (or about to park: the calling
/// one), at its entry on its first CPU.
fn launch(cell: &Cell) -> Result<u64, Errno> {
    let cpus = cell.cpus();
    clear_loadable(cell);
    for r in cell.config.memory.iter().filter(|r| !r.has(MemFlag::Io)) {
        clean_invalidate_dcache(r.phys_start, r.size);
    }
    if let Some(c) = &cell.comm {
        c.write(comm::OFF_MSG_TO_CELL, comm::MSG_NONE);
        c.write(comm::OFF_REPLY_FROM_CELL, comm::REPLY_NONE);
    }
    cell.shutdown_requested_at.store(0, Ordering::Release);
    *cell.fault.lock() = None;
    for &c in &cpus {
        CPUS[c].set_state(CpuState::Parked);
    }
    gicglue::route_spis(cell);
    iommu::set_streams(cell, true);
    cell.set_state(CellState::Running);
    let Some(&first) = cpus.first() else {
        return Err(Errno::Inval);
    };
    println!(
        "cell \"{}\" (id {}) starts on CPUs {cpus:?} at {:#x}",
        cell.name(),
        cell.id,
        cell.config.entry
    );
    setup::start_cpu(
        first,
        StartRequest {
            entry: cell.config.entry,
            context: cell.config.entry_x0.unwrap_or(0),
        },
    );
    Ok(0)
}

/// PSCI SYSTEM_OFF or SYSTEM_RESET from a non-root cell: that cell alone
/// shuts down (state `shut down`, as after `cell shutdown`) or restarts
/// at its entry, as `cell start` would; the machine and the other cells
/// run on. The calling CPU parks on its way out of EL2.
pub fn power_off_calling_cell(reset: bool) {
    let cell = traps::current_cell();
    let me = super::cpu::current_id();
    println!(
        "cell \"{}\" requests {} (PSCI)",
        cell.name(),
        if reset { "a restart" } else { "power-off" }
    );
    iommu::set_streams(&cell, false);
    if !stop_cpus(&cell, CellState::ShutDown, Some(me)) {
        setup::fail_cell(
            &cell,
            Fault {
                what: String::from("CPUs did not stop for the power-off"),
                ipa: 0,
                esr: 0,
                pc: 0,
                cpu: me,
            },
        );
    } else if reset {
        let _ = launch(&cell);
    } else {
        println!("cell \"{}\" shut down", cell.name());
    }
    CPUS[me].park_request.store(true, Ordering::Release);
}

/// Asks every CPU of `cell` but `except` (the calling one, which parks on
/// its way out of EL2) to park and waits until they have; the cell takes
/// state `state` first so that none re-enters it. Returns whether all of
/// them arrived in time.
fn stop_cpus(cell: &Cell, state: CellState, except: Option<usize>) -> bool {
    cell.set_state(state);
    let cpus: Vec<usize> = cell
        .cpus()
        .into_iter()
        .filter(|&c| Some(c) != except)
        .collect();
    for &c in &cpus {
        *CPUS[c].mailbox.lock() = None;
        if !CPUS[c].waiting.load(Ordering::Acquire) {
            CPUS[c].park_request.store(true, Ordering::Release);
            gicglue::send_hv_sgi(c);
        }
    }
    let deadline = now_ms() + PARK_TIMEOUT_MS;
    while !cpus
        .iter()
        .all(|&c| CPUS[c].waiting.load(Ordering::Acquire))
    {
        if now_ms() > deadline {
            println!("cell \"{}\": CPUs did not park in time", cell.name());
            return false;
        }
    }
    gicglue::disable_spis(cell);
    true
}

/// Hypercall 9: the shutdown handshake through the comm region.
pub fn shutdown(id: usize) -> Result<u64, Errno> {
    let cell = target(id)?;
    let Some(c) = &cell.comm else {
        return Err(Errno::Perm);
    };
    if !cell.state().is_running() {
        return Ok(0);
    }
    if cell.config.passive_comm {
        // Nobody would answer: stopped at once, as if approved.
        stop_cpus(&cell, CellState::ShutDown, None);
        println!(
            "cell \"{}\" shut down (passive communication region)",
            cell.name()
        );
        return Ok(0);
    }
    let asked = cell.shutdown_requested_at.load(Ordering::Acquire);
    if asked == 0 {
        c.write(comm::OFF_REPLY_FROM_CELL, comm::REPLY_NONE);
        // The cell must see the cleared reply before the request.
        dmb_ish();
        c.write(comm::OFF_MSG_TO_CELL, comm::MSG_SHUTDOWN_REQUEST);
        cell.shutdown_requested_at
            .store(now_ms().max(1), Ordering::Release);
        return Err(Errno::Busy);
    }
    match c.read(comm::OFF_REPLY_FROM_CELL) {
        comm::REPLY_APPROVED => {
            c.write(comm::OFF_MSG_TO_CELL, comm::MSG_NONE);
            cell.shutdown_requested_at.store(0, Ordering::Release);
            stop_cpus(&cell, CellState::ShutDown, None);
            println!("cell \"{}\" shut down", cell.name());
            Ok(0)
        }
        comm::REPLY_DENIED => {
            c.write(comm::OFF_MSG_TO_CELL, comm::MSG_NONE);
            cell.shutdown_requested_at.store(0, Ordering::Release);
            println!("cell \"{}\" refused to shut down", cell.name());
            Err(Errno::Perm)
        }
        _ if now_ms().saturating_sub(asked) > SHUTDOWN_TIMEOUT_MS => {
            c.write(comm::OFF_MSG_TO_CELL, comm::MSG_NONE);
            cell.shutdown_requested_at.store(0, Ordering::Release);
            *cell.fault.lock() = Some(Fault {
                what: String::from("no answer to the shutdown request"),
                ipa: 0,
                esr: 0,
                pc: 0,
                cpu: cell.cpus().first().copied().unwrap_or(0),
            });
            stop_cpus(&cell, CellState::Failed, None);
            for c in cell.cpus() {
                CPUS[c].set_state(CpuState::Failed);
            }
            println!("cell \"{}\" failed: no answer to the shutdown request in {SHUTDOWN_TIMEOUT_MS} ms; stopped", cell.name());
            Err(Errno::TimedOut)
        }
        _ => Err(Errno::Busy),
    }
}

/// Hypercall 4: stops a cell, scrubs its memory and gives its memory, CPUs
/// and interrupts back to the root cell.
pub fn destroy(id: usize) -> Result<u64, Errno> {
    let cell = target(id)?;
    let root = root()?;
    if !stop_cpus(&cell, CellState::ShutDown, None) {
        return Err(Errno::Busy);
    }
    clear_loadable(&cell);
    for r in cell
        .config
        .memory
        .iter()
        .filter(|r| !r.has(MemFlag::Io) && !r.has(MemFlag::Shared))
    {
        // SAFETY: the cell's own RAM (validated, identity mapped at EL2);
        // its CPUs are parked and the root cell does not map it.
        unsafe { core::ptr::write_bytes(r.phys_start as *mut u8, 0, r.size as usize) };
        clean_invalidate_dcache(r.phys_start, r.size);
    }
    iommu::set_streams(&cell, false);
    {
        let mut t = root.stage2.lock();
        let mut dma = root.dma.as_ref().map(|d| d.lock());
        for (ipa, pa, size, r) in root_overlaps(&root, &cell.config) {
            let (access, kind) = access_of(r);
            let _ = t.map(ipa, pa, size, access, kind);
            if let Some(d) = dma.as_mut().filter(|_| r.has(MemFlag::Dma)) {
                let _ = d.map(ipa, pa, size, access, kind);
            }
        }
    }

    // Drop the destroyed cell's translations (its VMID), then the root's.
    let root_vttbr = read_sysreg!("vttbr_el2");
    write_sysreg!("vttbr_el2", cell.vttbr());
    isb();
    tlbi_current_vmid();
    write_sysreg!("vttbr_el2", root_vttbr);
    isb();
    tlbi_current_vmid();

    let cpus = cell.cpus();
    let spis = cell.spis();
    {
        let mut res = root.resources();
        res.cpus.extend(cpus.iter().copied());
        res.cpus.sort_unstable();
        // Interrupts and streams the root cell's config lists go back to
        // it; others (a UART only the cell had, a link's doorbell) to
        // nobody.
        for irq in spis.iter().filter(|&i| root.config.lists_irq(i)) {
            let _ = res.spis.insert(irq);
        }
        let back = cell
            .streams()
            .into_iter()
            .filter(|s| root.config.streams.contains(s));
        res.streams.extend(back);
    }
    for &c in &cpus {
        CPUS[c].cell.store(0, Ordering::Release);
        CPUS[c].set_state(CpuState::Parked);
    }
    gicglue::route_spis(&root);
    iommu::set_streams(&root, true);
    if let Some(slot) = CELLS.write().get_mut(id) {
        *slot = None;
    }
    println!(
        "cell \"{}\" destroyed, CPUs {cpus:?} back to the root cell",
        cell.name()
    );
    Ok(0)
}

/// Hypercall 10: the cell's [`CellInfo`] into the management buffer.
pub fn info(id: usize, offset: u64) -> Result<u64, Errno> {
    let cell = cell::get(id).ok_or(Errno::NoEnt)?;
    let cpus = cell.cpus();
    let info = CellInfo {
        id: id as u32,
        name: String::from(cell.name()),
        state: cell.state() as u64,
        cpus: cpus.iter().map(|&c| c as u32).collect(),
        failed_cpus: cpus
            .iter()
            .filter(|&&c| CPUS[c].state() == CpuState::Failed)
            .map(|&c| c as u32)
            .collect(),
        loadable: cell.loadable.load(Ordering::Acquire),
        fault: cell.fault.lock().as_ref().map(|f| FaultInfo {
            what: f.what.clone(),
            ipa: f.ipa,
            esr: f.esr,
            pc: f.pc,
            cpu: f.cpu as u32,
        }),
        config: cell.config.clone(),
    };
    let bytes = postcard::to_allocvec(&info).map_err(|_| Errno::NoMem)?;
    mgmt::write_buffer(offset, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Hypercall 11: the hypervisor's console log into the management buffer.
pub fn console_read(offset: u64, room: u64) -> Result<u64, Errno> {
    let mut tmp = alloc::vec![0u8; room.min(64 * 1024) as usize];
    let n = console::read_log(&mut tmp);
    mgmt::write_buffer(offset, &tmp[..n])?;
    Ok(n as u64)
}
