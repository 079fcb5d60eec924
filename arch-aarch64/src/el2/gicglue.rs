//! The hypervisor's side of the GIC: physical interrupt entry, injection
//! into the running cell's list registers, emulated distributor and
//! redistributor frames, and SGIs. Policy lives in the `gic` crate; this
//! file connects it to the hardware and the cells.

use alloc::vec::Vec;
use gic::{CellView, CpuId, Denied, GicVersion, Lr, LrState, MmioAccess, PendingQueue, RegIo};
use hv_core::abi::CpuStat;
use hv_core::config::GicConfig;
use spin::{Mutex, Once};

use super::boot::MAX_CPUS;
use super::cell::Cell;
use super::sysregs::{read_sysreg, write_sysreg};
use super::{boot, cpu, iommu};
use core::sync::atomic::Ordering;

/// The SGI the hypervisor keeps for itself (park requests, wake-ups);
/// cells cannot send it.
pub const HV_SGI: u32 = gic::HV_SGI;
/// Priority given to interrupts injected into cells.
pub const VIRQ_PRIORITY: u8 = 0xa0;
const GICD_SIZE: u64 = 0x1_0000;
const GICR_STRIDE: u64 = 0x2_0000;

struct Plat {
    ver: GicVersion,
    cfg: GicConfig,
    cpus: Vec<CpuId>,
    /// GICv3: bit i set for each implemented list register.
    lr_mask: u64,
}

static PLAT: Once<Plat> = Once::new();
/// Serialises read-modify-write sequences on the distributor and
/// redistributors.
static GIC_LOCK: Mutex<()> = Mutex::new(());
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_QUEUE: Mutex<Option<PendingQueue>> = Mutex::new(None);
static QUEUES: [Mutex<Option<PendingQueue>>; MAX_CPUS] = [EMPTY_QUEUE; MAX_CPUS];

fn plat() -> &'static Plat {
    PLAT.get().expect("GIC used before init")
}

/// A physical GIC frame of the platform config.
fn frame(base: u64) -> gic::Mmio {
    // SAFETY: every base passed here is a GIC frame named in the validated
    // platform config (checked against the DTB), identity mapped as device
    // memory in EL2; the gic crate only uses offsets inside the frame.
    unsafe { gic::Mmio::new(base as usize) }
}

/// Records the platform's GIC and CPUs (`mpidrs` by logical id) and sets up
/// the distributor. Boot CPU only, before any other CPU starts.
pub fn init(cfg: &GicConfig, mpidrs: &[u64]) {
    let ver = if cfg.version == 2 {
        GicVersion::V2
    } else {
        GicVersion::V3
    };
    let cpus = mpidrs
        .iter()
        .enumerate()
        .map(|(i, &m)| CpuId {
            index: i as u32,
            mpidr: m,
            v2_target: 1u8.checked_shl(i as u32).unwrap_or(0),
        })
        .collect();
    let lr_mask = match ver {
        GicVersion::V3 => (1u64 << gic::ListRegs::num_lrs(&gic::IchSysregs)) - 1,
        GicVersion::V2 => 0,
    };
    PLAT.call_once(|| Plat {
        ver,
        cfg: *cfg,
        cpus,
        lr_mask,
    });
    if ver == GicVersion::V3 {
        boot::IRQ_FAST_LR_MASK.store(lr_mask, Ordering::Relaxed);
        boot::IRQ_FAST_ON.store(1, Ordering::Release);
    }
    if gic::init_distributor(ver, cfg.gicd as usize).is_err() {
        println!("GIC distributor did not settle (RWP); continuing");
    }
}

/// Per-CPU setup at EL2: physical CPU interface, the hypervisor's SGI and
/// the maintenance interrupt.
pub fn init_cpu(id: usize) {
    let p = plat();
    *QUEUES[id].lock() = Some(PendingQueue::new());
    match p.ver {
        GicVersion::V3 => {
            let frame = (p.cfg.gicr.unwrap_or(0) + id as u64 * GICR_STRIDE) as usize;
            if gic::redistributor_wake(frame).is_err() {
                println!("CPU {id}: redistributor did not wake up");
            }
            gic::init_private(p.ver, frame);
            gic::cpu_if::init_v3_el2();
        }
        GicVersion::V2 => {
            gic::init_private(p.ver, p.cfg.gicd as usize);
            gic::cpu_if::init_v2_el2(
                p.cfg.gicc.unwrap_or(0) as usize,
                p.cfg.gich.unwrap_or(0) as usize,
            );
        }
    }
}

fn gich_lrs(p: &Plat) -> gic::GichMmio {
    // SAFETY: GICH is the platform's virtual interface control frame (this
    // CPU's banked view), identity mapped as device memory.
    unsafe { gic::GichMmio::new(p.cfg.gich.unwrap_or(0) as usize) }
}

fn cpu_id(id: usize) -> CpuId {
    plat().cpus[id]
}

/// Clears the calling CPU's list registers and pending queue and enables the
/// virtual CPU interface, before entering a cell.
pub fn reset_vcpu_interface() {
    let p = plat();
    let me = cpu::current_id();
    let mut q = QUEUES[me].lock();
    let Some(queue) = q.as_mut() else { return };
    match p.ver {
        GicVersion::V3 => {
            let mut lrs = gic::IchSysregs;
            gic::clear(&mut lrs, queue);
            // ICH_HCR_EL2.En enables the virtual CPU interface.
            write_sysreg!("ich_vmcr_el2", 0);
            write_sysreg!("ich_hcr_el2", 1);
        }
        GicVersion::V2 => {
            let mut lrs = gich_lrs(p);
            gic::clear(&mut lrs, queue);
            let mut gich = frame(p.cfg.gich.unwrap_or(0));
            gich.write(gic::regs::gich::VMCR, 4, 0);
            gich.write(gic::regs::gich::HCR, 4, 1); // En
        }
    }
}

/// An emulated GIC frame an address falls in.
#[derive(Clone, Copy, Debug)]
pub enum Region {
    Dist(u64),
    Redist { cpu: usize, offset: u64 },
}

pub fn mmio_region(ipa: u64) -> Option<Region> {
    let p = plat();
    if ipa >= p.cfg.gicd && ipa < p.cfg.gicd + GICD_SIZE {
        return Some(Region::Dist(ipa - p.cfg.gicd));
    }
    if let (GicVersion::V3, Some(gicr)) = (p.ver, p.cfg.gicr) {
        let size = p.cpus.len() as u64 * GICR_STRIDE;
        if ipa >= gicr && ipa < gicr + size {
            let off = ipa - gicr;
            return Some(Region::Redist {
                cpu: (off / GICR_STRIDE) as usize,
                offset: off % GICR_STRIDE,
            });
        }
    }
    None
}

fn with_view<R>(cell: &Cell, f: impl FnOnce(&CellView) -> R) -> R {
    let res = cell.resources().clone();
    let cpus: Vec<CpuId> = res.cpus.iter().map(|&c| cpu_id(c)).collect();
    let view = CellView {
        spis: &res.spis,
        cpus: &cpus,
        current: cpu_id(cpu::current_id()),
    };
    f(&view)
}

/// Performs a cell's access to an emulated GIC frame.
pub fn emulate(cell: &Cell, region: Region, size: u8, write: Option<u64>) -> Result<u64, Denied> {
    let p = plat();
    with_view(cell, |view| {
        let _guard = GIC_LOCK.lock();
        match region {
            Region::Dist(offset) => {
                let acc = MmioAccess {
                    offset,
                    size,
                    write,
                };
                gic::gicd_access(p.ver, view, &acc, &mut frame(p.cfg.gicd))
            }
            Region::Redist { cpu, offset } => {
                let acc = MmioAccess {
                    offset,
                    size,
                    write,
                };
                let base = p.cfg.gicr.unwrap_or(0) + cpu as u64 * GICR_STRIDE;
                gic::gicr_access(view, cpu_id(cpu), &acc, &mut frame(base))
            }
        }
    })
}

/// A cell's write to ICC_SGI1R_EL1 (GICv3): forwarded to its own CPUs only.
pub fn sgi1r_write(cell: &Cell, value: u64) {
    let sgis = with_view(cell, |view| gic::filter_sgi1r(view, value));
    for v in sgis {
        if (v >> 24) & 0xf == u64::from(HV_SGI) {
            continue;
        }
        cpu::current().count(CpuStat::Vsgi);
        gic::cpu_if::send_sgi1r(v);
    }
}

/// Sends the hypervisor's SGI to CPU `target`.
pub fn send_hv_sgi(target: usize) {
    let p = plat();
    let t = cpu_id(target);
    match p.ver {
        GicVersion::V3 => {
            let aff = t.mpidr;
            let value = (((aff >> 32) & 0xff) << 48)
                | (((aff >> 16) & 0xff) << 32)
                | (u64::from(HV_SGI) << 24)
                | (((aff >> 8) & 0xff) << 16)
                | (1u64 << (aff & 0xf));
            gic::cpu_if::send_sgi1r(value);
        }
        GicVersion::V2 => gic::cpu_if::send_sgi_v2(p.cfg.gicd as usize, t.v2_target, HV_SGI),
    }
}

/// Routes the cell's SPIs to its first CPU.
pub fn route_spis(cell: &Cell) {
    let p = plat();
    let res = cell.resources().clone();
    let Some(&first) = res.cpus.first() else {
        return;
    };
    let _guard = GIC_LOCK.lock();
    for intid in res.spis.iter() {
        gic::route_spi(p.ver, p.cfg.gicd as usize, intid, cpu_id(first));
    }
}

/// Routes SPI `intid` (one the hypervisor keeps for itself, e.g. the
/// SMMU's event interrupt) to CPU `cpu` as an edge-triggered interrupt and
/// enables it.
pub fn enable_hv_spi(intid: u32, cpu: usize) {
    let p = plat();
    let _guard = GIC_LOCK.lock();
    gic::route_spi(p.ver, p.cfg.gicd as usize, intid, cpu_id(cpu));
    let mut d = frame(p.cfg.gicd);
    let icfgr = gic::regs::gicd::ICFGR + u64::from(intid / 16) * 4;
    let edge = 2u64 << (2 * (intid % 16));
    let v = d.read(icfgr, 4);
    d.write(icfgr, 4, v | edge);
    let isenabler = gic::regs::gicd::ISENABLER + u64::from(intid / 32) * 4;
    d.write(isenabler, 4, 1u64 << (intid % 32));
}

/// Makes SPI `intid` pending in the physical distributor (an ivshmem
/// doorbell); the GIC then delivers it to the CPU it is routed to, whose
/// cell owns it.
pub fn set_spi_pending(intid: u32) {
    gic::set_spi_pending(plat().cfg.gicd as usize, intid);
}

/// Disables the cell's SPIs (its CPUs are being stopped).
pub fn disable_spis(cell: &Cell) {
    let p = plat();
    let _guard = GIC_LOCK.lock();
    let mut d = frame(p.cfg.gicd);
    for intid in cell.spis().iter() {
        let reg = gic::regs::gicd::ICENABLER + u64::from(intid / 32) * 4;
        d.write(reg, 4, 1u64 << (intid % 32));
    }
}

struct Ack {
    intid: u32,
    raw: u32,
}

fn ack() -> Ack {
    match plat().ver {
        GicVersion::V3 => {
            let raw = gic::cpu_if::ack_v3();
            Ack {
                intid: raw & 0xff_ffff,
                raw,
            }
        }
        GicVersion::V2 => {
            let raw = gic::cpu_if::ack_v2(plat().cfg.gicc.unwrap_or(0) as usize);
            Ack {
                intid: raw & 0x3ff,
                raw,
            }
        }
    }
}

fn priority_drop(a: &Ack) {
    match plat().ver {
        GicVersion::V3 => gic::cpu_if::eoi_v3(a.raw),
        GicVersion::V2 => gic::cpu_if::eoi_v2(plat().cfg.gicc.unwrap_or(0) as usize, a.raw),
    }
}

fn deactivate(a: &Ack) {
    match plat().ver {
        GicVersion::V3 => gic::cpu_if::deactivate_v3(a.raw),
        GicVersion::V2 => gic::cpu_if::deactivate_v2(plat().cfg.gicc.unwrap_or(0) as usize, a.raw),
    }
}

/// ICH_HCR_EL2.UIE: the underflow interrupt is on while IRQs wait in the
/// queue.
const ICH_HCR_UIE: u64 = 1 << 1;

fn inject(lr: Lr) -> bool {
    let p = plat();
    if p.ver == GicVersion::V3 {
        // Fast path: nothing queued and every list register empty, so the
        // interrupt cannot be a duplicate and LR0 takes it.
        let queued = read_sysreg!("ich_hcr_el2") & ICH_HCR_UIE != 0;
        let empty = read_sysreg!("ich_elrsr_el2");
        if !queued && empty & p.lr_mask == p.lr_mask {
            gic::ListRegs::write_lr(&mut gic::IchSysregs, 0, lr);
            return true;
        }
    }
    let me = cpu::current_id();
    let mut q = QUEUES[me].lock();
    let Some(queue) = q.as_mut() else {
        return false;
    };
    match p.ver {
        GicVersion::V3 => gic::inject(&mut gic::IchSysregs, queue, lr).is_ok(),
        GicVersion::V2 => {
            let mut lrs = gich_lrs(p);
            gic::inject(&mut lrs, queue, lr).is_ok()
        }
    }
}

fn refill() {
    let p = plat();
    let me = cpu::current_id();
    let mut q = QUEUES[me].lock();
    let Some(queue) = q.as_mut() else { return };
    match p.ver {
        GicVersion::V3 => gic::refill(&mut gic::IchSysregs, queue),
        GicVersion::V2 => gic::refill(&mut gich_lrs(p), queue),
    }
}

/// Acknowledges and drops whatever is pending on a parked CPU (the
/// hypervisor's wake-up SGI; a parked CPU owns no other interrupt).
pub fn drain_pending() {
    loop {
        let a = ack();
        if a.intid >= 1020 {
            return;
        }
        priority_drop(&a);
        deactivate(&a);
    }
}

/// A physical interrupt while a cell runs: the hypervisor's own SGI and the
/// maintenance interrupt are handled here, everything else goes to the cell
/// (hardware interrupts with the HW bit, so the cell's EOI deactivates them).
pub fn handle_irq() {
    handle(ack());
}

/// [`handle_irq`] for an interrupt already acknowledged (by the assembly
/// fast path, GICv3).
pub fn handle_acked(raw: u32) {
    handle(Ack {
        intid: raw & 0xff_ffff,
        raw,
    });
}

fn handle(a: Ack) {
    let me = cpu::current();
    me.count(CpuStat::Total);
    if a.intid >= 1020 {
        return;
    }
    let p = plat();
    let group1 = p.ver == GicVersion::V3;
    priority_drop(&a);
    if a.intid == HV_SGI {
        deactivate(&a);
    } else if iommu::is_event_irq(a.intid) {
        deactivate(&a);
        iommu::handle_events();
    } else if a.intid == p.cfg.maintenance_irq {
        me.count(CpuStat::MaintenanceIrq);
        refill();
        deactivate(&a);
    } else if a.intid < 16 {
        // An SGI from another CPU of the cell: deactivate the physical one,
        // inject a purely virtual one.
        me.count(CpuStat::Virq);
        deactivate(&a);
        inject(Lr {
            vintid: a.intid,
            pintid: None,
            priority: VIRQ_PRIORITY,
            state: LrState::Pending,
            group1,
        });
    } else {
        me.count(CpuStat::Virq);
        let ok = inject(Lr {
            vintid: a.intid,
            pintid: Some(a.intid),
            priority: VIRQ_PRIORITY,
            state: LrState::Pending,
            group1,
        });
        if !ok {
            deactivate(&a);
        }
    }
}
