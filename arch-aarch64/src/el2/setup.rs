//! The boot flow (DESIGN.md, "Boot and life of a cell"), CPU parking and
//! cell entry, and stopping a failed cell.

use aarch64_cpu::registers::{ELR_EL2, ID_AA64MMFR0_EL1, SPSR_EL2, VTCR_EL2, VTTBR_EL2};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch_aarch64::stage2;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use hv_core::abi::{CellState, CpuState};
use hv_core::config::{MemFlag, PsciConduit, SystemConfig, UartKind};
use hv_core::pack::Pack;
use tock_registers::interfaces::{Readable, Writeable};

use super::boot::{secondary_entry, stack_top, vcpu_enter, TrapFrame, MAX_CPUS};
use super::cell::{self, Cell, Fault, CELLS};
use super::cpu::{self, PerCpu, StartRequest, CPUS, NO_CELL};
use super::panic::halt;
use super::sysregs::*;
use super::{console, gicglue, heap, iommu, ivshmem, mmu};

unsafe extern "C" {
    static __hv_start: u8;
    static __hv_image_end: u8;
}

static PA_RANGE: AtomicU64 = AtomicU64::new(0);
static SYSTEM: spin::Once<SystemConfig> = spin::Once::new();

/// ID_AA64MMFR0_EL1.PARange of the CPUs.
pub fn pa_range() -> u64 {
    PA_RANGE.load(Ordering::Relaxed)
}

/// The system config the hypervisor booted with.
pub fn system() -> &'static SystemConfig {
    SYSTEM.get().expect("system config read at boot")
}
/// 0 = SMC, 1 = HVC: how the firmware's PSCI is reached.
static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// A DTB's size from its header, if the magic is right.
fn dtb_size(dtb: u64) -> Option<usize> {
    // SAFETY: firmware passes the DTB address in x0; the header is 8 bytes
    // of RAM that nothing else writes during boot.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
    if header[0..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return None;
    }
    Some(u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize)
}

/// Console and RAM from the DTB, before the system config is read.
fn early_platform(dtb: &[u8]) -> Vec<(u64, u64)> {
    let Ok(fdt) = fdt::Fdt::new(dtb) else {
        return Vec::new();
    };
    // `stdout-path` is a path or an alias, optionally followed by
    // `:options` (`serial0:115200n8`), which `Fdt::chosen().stdout()` does
    // not strip (and `chosen()` panics without a /chosen node).
    let stdout = fdt
        .find_node("/chosen")
        .and_then(|c| c.property("stdout-path"))
        .and_then(|p| p.as_str())
        .and_then(|s| fdt.find_node(s.split(':').next().unwrap_or(s)));
    if let Some(node) = stdout {
        let compatible: Vec<&str> = node
            .compatible()
            .map(|c| c.all().collect())
            .unwrap_or_default();
        if let Some(reg) = node.reg().and_then(|mut r| r.next()) {
            // Unknown UARTs are tried as 16550s until the config names one.
            let kind =
                hv_core::board::uart_kind(&compatible, None, None).unwrap_or(UartKind::Ns16550);
            console::init(reg.starting_address as u64, kind);
        }
    }
    fdt.memory()
        .regions()
        .filter_map(|r| {
            let start = r.starting_address as u64;
            Some((start, start.checked_add(r.size? as u64)?))
        })
        .collect()
}

#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb_addr: u64) -> ! {
    heap::init_early();
    cpu::set_current(MAX_CPUS - 1);
    let Some(size) = dtb_size(dtb_addr) else {
        // No console known: nothing can be printed.
        halt()
    };
    // SAFETY: the DTB occupies `size` bytes at `dtb_addr` per its header.
    let dtb = unsafe { core::slice::from_raw_parts(dtb_addr as *const u8, size) };
    let ram = early_platform(dtb);
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    PA_RANGE.store(pa_range, Ordering::Relaxed);
    if let Err(e) = mmu::init_primary(&ram, pa_range) {
        println!("boot refused: cannot build the EL2 page tables: {e}");
        halt();
    }
    println!(
        "version {} on CPU {:#x}, DTB at {:#x}",
        env!("CARGO_PKG_VERSION"),
        cpu::own_mpidr(),
        dtb_addr
    );
    match boot(dtb, dtb_addr, &ram) {
        Ok(()) => park_current(),
        Err(reason) => {
            println!("boot refused: {reason}");
            println!("nothing was started; halting");
            halt()
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(id: u64) -> ! {
    let id = id as usize;
    cpu::set_current(id);
    mmu::init_secondary(PA_RANGE.load(Ordering::Relaxed));
    gicglue::init_cpu(id);
    CPUS[id].present.store(true, Ordering::Release);
    park_current()
}

fn boot(dtb: &[u8], dtb_addr: u64, ram: &[(u64, u64)]) -> Result<(), String> {
    // Linker symbols: only their addresses are used.
    let (hv_start, pack_start) = (
        core::ptr::addr_of!(__hv_start) as u64,
        core::ptr::addr_of!(__hv_image_end) as u64,
    );
    let bank_end = ram
        .iter()
        .find(|&&(s, e)| pack_start >= s && pack_start < e)
        .map(|&(_, e)| e)
        .ok_or("the boot image does not lie in RAM the DTB describes")?;
    // SAFETY: the pack follows the image in RAM loaded by the firmware; the
    // slice ends with the RAM bank, and Pack::parse checks every offset.
    let bytes = unsafe {
        core::slice::from_raw_parts(pack_start as *const u8, (bank_end - pack_start) as usize)
    };
    let pack = Pack::parse(bytes).map_err(|e| format!("{e}"))?;
    let blob = pack.config_blob().map_err(|e| format!("{e}"))?;
    let sys = hv_core::blob::decode_system(blob).map_err(|e| format!("system config: {e}"))?;
    hv_core::validate::validate_system(&sys).map_err(|e| format!("system config: {e}"))?;
    let board = hv_core::board::BoardInfo::from_dtb(dtb).map_err(|e| format!("board DTB: {e}"))?;
    hv_core::board::check_against_board(&sys, &board)
        .map_err(|e| format!("system config does not match the board DTB: {e}"))?;
    if sys.platform.cpus.len() > MAX_CPUS {
        return Err(format!(
            "platform.cpus: {} CPUs, this build supports {MAX_CPUS}",
            sys.platform.cpus.len()
        ));
    }
    let hv = sys.hypervisor.memory;
    let hv_end = hv.start + hv.size;
    let pack_end = pack_start + pack.len();
    if hv_start < hv.start || pack_end > hv_end {
        return Err(format!(
            "hypervisor.memory {:#x}+{:#x} does not hold the boot image ({hv_start:#x}..{pack_end:#x})",
            hv.start, hv.size
        ));
    }
    console::init(sys.hypervisor.console.base, sys.hypervisor.console.kind);
    let sys = SYSTEM.call_once(|| sys);
    CONDUIT.store(
        u8::from(sys.platform.psci.conduit == PsciConduit::Hvc),
        Ordering::Relaxed,
    );

    // The heap grows by the hypervisor memory after the pack, minus the DTB.
    let heap_start = (pack_end + 0xfff) & !0xfff;
    let dtb_end = dtb_addr + dtb.len() as u64;
    if dtb_addr < hv_end && dtb_end > heap_start {
        heap::add_region(heap_start, dtb_addr & !0xfff);
        heap::add_region((dtb_end + 0xfff) & !0xfff, hv_end);
    } else {
        heap::add_region(heap_start, hv_end);
    }

    let cells = create_cells(sys)?;
    for (i, c) in cells.iter().enumerate() {
        for entry in pack.images(i as u32) {
            let data = pack.data(entry);
            let pa = c.ram_range_to_phys(entry.addr, data.len() as u64).ok_or_else(|| {
                format!(
                    "boot pack: image for cell \"{}\" at {:#x} ({} bytes) is not inside a RAM region of the cell",
                    c.name(),
                    entry.addr,
                    data.len()
                )
            })?;
            // SAFETY: `pa` is RAM of this cell (validated, identity mapped,
            // not the hypervisor's and not running yet).
            unsafe {
                core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len());
            }
            clean_dcache_and_invalidate_icache(pa, data.len() as u64);
        }
    }

    let me = sys
        .platform
        .cpus
        .iter()
        .position(|&m| m == cpu::own_mpidr())
        .ok_or("the boot CPU is not in platform.cpus")?;
    for (i, &m) in sys.platform.cpus.iter().enumerate() {
        CPUS[i].mpidr.store(m, Ordering::Relaxed);
    }
    cpu::set_current(me);
    gicglue::init(&sys.platform.gic, &sys.platform.cpus);
    gicglue::init_cpu(me);
    CPUS[me].present.store(true, Ordering::Release);

    for c in &cells {
        for cpu in c.cpus() {
            CPUS[cpu].cell.store(c.id, Ordering::Release);
        }
        gicglue::route_spis(c);
    }
    *CELLS.write() = cells.iter().cloned().map(Some).collect();
    iommu::init(sys, &cells)?;

    for (i, &mpidr) in sys.platform.cpus.iter().enumerate() {
        if i == me {
            continue;
        }
        let entry = secondary_entry as *const () as u64;
        let r = if CONDUIT.load(Ordering::Relaxed) == 1 {
            smccc::psci::cpu_on::<smccc::Hvc>(mpidr, entry, i as u64)
        } else {
            smccc::psci::cpu_on::<smccc::Smc>(mpidr, entry, i as u64)
        };
        if let Err(e) = r {
            println!("CPU {i} (MPIDR {mpidr:#x}) did not start: {e:?}");
        }
    }
    for c in &cells {
        let cpus = c.cpus();
        let Some(&first) = cpus.first() else {
            continue;
        };
        c.set_state(CellState::Running);
        println!(
            "cell \"{}\" (id {}) starts on CPUs {:?} at {:#x}",
            c.name(),
            c.id,
            cpus,
            c.config.entry
        );
        start_cpu(
            first,
            StartRequest {
                entry: c.config.entry,
                context: c.config.entry_x0.unwrap_or(0),
            },
        );
    }
    Ok(())
}

/// Builds the root cell and the boot cells. What a boot cell takes (CPUs,
/// SPIs, memory) is removed from the root cell.
fn create_cells(sys: &SystemConfig) -> Result<Vec<Arc<Cell>>, String> {
    let hv = sys.hypervisor.memory;
    let mut taken: Vec<(u64, u64)> = Vec::new();
    taken.push((hv.start, hv.start + hv.size));
    let mut taken_cpus = Vec::new();
    let mut taken_spis = Vec::new();
    let mut taken_streams = Vec::new();
    for c in &sys.boot_cells {
        for r in c.memory.iter().filter(|r| !r.has(MemFlag::Shared)) {
            taken.push((r.phys_start, r.phys_start + r.size));
        }
        taken_cpus.extend(c.cpus.iter().map(|&x| x as usize));
        taken_spis.extend(c.irqs.iter().copied());
        taken_spis.extend(c.ivshmem.iter().map(|l| l.irq));
        taken_streams.extend(c.streams.iter().copied());
    }
    let hv_only = [(hv.start, hv.start + hv.size)];
    let mut cells = Vec::new();
    let all = core::iter::once(&sys.root_cell).chain(sys.boot_cells.iter());
    for (id, config) in all.enumerate() {
        let root = id == 0;
        let cpus: Vec<usize> = config
            .cpus
            .iter()
            .map(|&c| c as usize)
            .filter(|c| !root || !taken_cpus.contains(c))
            .collect();
        let mut spis = gic::IrqSet::new();
        for &irq in config
            .irqs
            .iter()
            .filter(|i| !root || !taken_spis.contains(i))
        {
            spis.insert(irq)
                .map_err(|_| format!("cell \"{}\": IRQ {irq} out of range", config.name))?;
        }
        ivshmem::add_spis(config, &mut spis)
            .map_err(|irq| format!("cell \"{}\": IRQ {irq} out of range", config.name))?;
        let t: &[(u64, u64)] = if root { &taken } else { &hv_only };
        let streams = config
            .streams
            .iter()
            .copied()
            .filter(|s| !root || !taken_streams.contains(s))
            .collect();
        let res = cell::Resources {
            cpus,
            spis,
            streams,
        };
        let cell = build_cell(id, config.clone(), res, t)?;
        if root {
            if let Some(m) = sys.hypervisor.management {
                let rw = stage2::Access {
                    read: true,
                    write: true,
                    exec: false,
                };
                let b = m.buffer;
                cell.stage2
                    .lock()
                    .map(b.start, b.start, b.size, rw, stage2::MemKind::Normal)
                    .map_err(|e| format!("hypervisor.management.buffer: {e}"))?;
            }
        }
        cells.push(Arc::new(cell));
    }
    Ok(cells)
}

/// Builds a cell's stage-2 tables and state; `taken` are physical ranges
/// its regions may not map.
pub fn build_cell(
    id: usize,
    config: hv_core::config::CellConfig,
    res: cell::Resources,
    taken: &[(u64, u64)],
) -> Result<Cell, String> {
    let sys = system();
    let gicv2 = match (
        sys.platform.gic.version,
        sys.platform.gic.gicc,
        sys.platform.gic.gicv,
    ) {
        (2, Some(gicc), Some(gicv)) => Some((gicc, gicv)),
        _ => None,
    };
    let ipa_bits = stage2::ipa_bits(PA_RANGE.load(Ordering::Relaxed));
    let name = config.name.clone();
    let cell = cell::build(id, config, res, taken, gicv2, ipa_bits)
        .map_err(|e| format!("cell \"{name}\": stage-2 tables: {e}"))?;
    ivshmem::map_links(&cell)
        .map_err(|e| format!("cell \"{name}\": ivshmem shared memory: {e}"))?;
    Ok(cell)
}

/// Parks the calling CPU until its cell starts it (PSCI CPU_ON from the
/// cell, or the hypervisor at boot), then enters the cell.
pub fn park_current() -> ! {
    let me = cpu::current();
    gicglue::reset_vcpu_interface();
    loop {
        let req = wait_for_start(me);
        me.park_request.store(false, Ordering::Release);
        let id = me.cell.load(Ordering::Acquire);
        if id == NO_CELL {
            continue;
        }
        if let Some(c) = cell::get(id) {
            if c.state().is_running() {
                enter_cell(c, req)
            }
        }
    }
}

/// Waits, in WFI, for a start request. The CPU's timers are stopped so that
/// nothing fires while it waits; whoever posts a request sends the
/// hypervisor's SGI, which wakes the WFI and is consumed here. The CPU
/// reads as parked (a failed one stays failed) only once it waits, so
/// that whoever sees it parked (`cell create` after the CLI polled the
/// CPU's state) finds it waiting too.
fn wait_for_start(me: &PerCpu) -> StartRequest {
    write_sysreg!("cntv_ctl_el0", 0);
    write_sysreg!("cntp_ctl_el0", 0);
    me.waiting.store(true, Ordering::Release);
    if me.state() != CpuState::Failed {
        me.set_state(CpuState::Parked);
    }
    loop {
        if let Some(req) = me.mailbox.lock().take() {
            me.waiting.store(false, Ordering::Release);
            return req;
        }
        wfi();
        gicglue::drain_pending();
    }
}

/// Posts a start request to CPU `target` and wakes it.
pub fn start_cpu(target: usize, req: StartRequest) {
    cpu::post_start(&CPUS[target], req);
    if target != cpu::current_id() {
        gicglue::send_hv_sgi(target);
    }
}

/// HCR_EL2 while a cell runs: stage 2 on (VM), set/way invalidation as
/// clean+invalidate (SWIO), physical FIQ/IRQ/SError to EL2 (FMO, IMO, AMO),
/// SMC trapped (TSC), EL1 is AArch64 (RW).
const HCR_CELL: u64 = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 19) | (1 << 31);

/// Enters cell `c` on the calling CPU. Takes the cell by value so that no
/// reference count stays on the abandoned EL2 stack.
fn enter_cell(c: Arc<Cell>, req: StartRequest) -> ! {
    let id = cpu::current_id();
    let vttbr = c.vttbr();
    drop(c);
    write_sysreg!("hcr_el2", HCR_CELL);
    VTCR_EL2.set(stage2::vtcr(PA_RANGE.load(Ordering::Relaxed)));
    VTTBR_EL2.set(vttbr);
    tlbi_current_vmid();
    let mpidr = read_sysreg!("mpidr_el1");
    write_sysreg!("vmpidr_el2", mpidr);
    let midr = read_sysreg!("midr_el1");
    write_sysreg!("vpidr_el2", midr);
    write_sysreg!("sctlr_el1", SCTLR_EL1_RESET);
    write_sysreg!("cptr_el2", CPTR_EL2_NO_TRAPS);
    // EL1 may use the physical counter and timer.
    write_sysreg!("cnthctl_el2", 3);
    write_sysreg!("cntvoff_el2", 0);
    gicglue::reset_vcpu_interface();
    ELR_EL2.set(req.entry);
    SPSR_EL2.set(SPSR_EL1H_MASKED);
    isb();
    cpu::current().set_state(CpuState::Running);
    // SAFETY: the cell's stage 2, EL1 state and the return state are set;
    // the EL2 stack restarts empty, nothing on it is live any more.
    unsafe { vcpu_enter(req.context, stack_top(id)) }
}

/// Stops a cell: records and reports the fault, asks its other CPUs to park
/// and disables its interrupts. The calling CPU parks afterwards.
pub fn fail_cell(c: &Cell, fault: Fault) {
    c.set_state(CellState::Failed);
    // A failed cell's devices must not go on writing memory.
    iommu::set_streams(c, false);
    println!(
        "cell \"{}\" failed: {} at IPA {:#x}, ESR {:#x}, PC {:#x} (CPU {})",
        c.name(),
        fault.what,
        fault.ipa,
        fault.esr,
        fault.pc,
        fault.cpu
    );
    *c.fault.lock() = Some(fault);
    let me = cpu::current_id();
    let cpus = c.cpus();
    for &other in &cpus {
        CPUS[other].set_state(CpuState::Failed);
        if other != me {
            CPUS[other].park_request.store(true, Ordering::Release);
            gicglue::send_hv_sgi(other);
        }
    }
    gicglue::disable_spis(c);
    println!("cell \"{}\" stopped, CPUs {:?} parked", c.name(), cpus);
}

/// An SMC of the root cell passed to the firmware as it is: x0..x17 in,
/// x0..x17 back (SMCCC 1.1 preserves the rest).
pub fn forward_to_firmware(frame: &mut TrapFrame) {
    let fid = frame.x[0] as u32;
    let mut args = [0u64; 17];
    args.copy_from_slice(&frame.x[1..18]);
    let ret = if CONDUIT.load(Ordering::Relaxed) == 1 {
        smccc::hvc64(fid, args)
    } else {
        smccc::smc64(fid, args)
    };
    frame.x[..18].copy_from_slice(&ret);
}

/// PSCI SYSTEM_OFF / SYSTEM_RESET from the root cell: passed to firmware.
pub fn system_off_or_reset(reset: bool) -> i64 {
    println!(
        "root cell requests system {}",
        if reset { "reset" } else { "off" }
    );
    let r = match (CONDUIT.load(Ordering::Relaxed), reset) {
        (1, false) => smccc::psci::system_off::<smccc::Hvc>(),
        (1, true) => smccc::psci::system_reset::<smccc::Hvc>(),
        (_, false) => smccc::psci::system_off::<smccc::Smc>(),
        (_, true) => smccc::psci::system_reset::<smccc::Smc>(),
    };
    match r {
        Ok(()) => 0,
        Err(e) => i64::from(e),
    }
}
