//! Cells as the hypervisor holds them: config, stage-2 table, VMID, owned
//! CPUs and interrupts, state and the fault that stopped it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch_aarch64::cellmap;
use arch_aarch64::stage2::{self, Access, MemKind, Stage2Error, Stage2Table};
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hv_core::abi::CellState;
use hv_core::config::{CellConfig, MemFlag};
use hv_core::mgmt::comm;
use spin::{Mutex, RwLock};

/// A fault that stopped a cell.
#[derive(Clone, Debug)]
pub struct Fault {
    pub what: String,
    pub ipa: u64,
    pub esr: u64,
    pub pc: u64,
    pub cpu: usize,
}

/// What a cell owns that can move between cells at run time.
#[derive(Clone)]
pub struct Resources {
    /// Logical CPU ids.
    pub cpus: Vec<usize>,
    /// Shared peripheral interrupts.
    pub spis: gic::IrqSet,
    /// SMMU stream IDs.
    pub streams: Vec<u32>,
}

pub struct Cell {
    pub id: usize,
    pub config: CellConfig,
    pub stage2: Mutex<Stage2Table>,
    /// What the cell's DMA streams may reach (its `dma` regions), for the
    /// SMMU; only for cells with streams.
    pub dma: Option<Mutex<Stage2Table>>,
    pub vmid: u16,
    res: Mutex<Resources>,
    state: AtomicU64,
    pub fault: Mutex<Option<Fault>>,
    /// Whether the cell's loadable regions are mapped into the root cell.
    pub loadable: AtomicBool,
    /// The communication region page (non-root cells).
    pub comm: Option<CommPage>,
    /// Counter value when a shutdown request was posted (0 = none).
    pub shutdown_requested_at: AtomicU64,
}

/// One zeroed, page-aligned page of hypervisor memory.
pub struct CommPage(NonNull<u8>);

// SAFETY: the page is plain memory owned by the CommPage; accesses go
// through volatile reads and writes of naturally aligned u32s.
unsafe impl Send for CommPage {}
// SAFETY: as above; concurrent volatile u32 accesses are benign.
unsafe impl Sync for CommPage {}

const PAGE_LAYOUT: Layout = match Layout::from_size_align(4096, 4096) {
    Ok(l) => l,
    Err(_) => panic!("page layout"),
};

impl CommPage {
    pub fn new() -> Option<Self> {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(PAGE_LAYOUT) };
        NonNull::new(p).map(Self)
    }

    pub fn pa(&self) -> u64 {
        self.0.as_ptr() as u64
    }

    pub fn read(&self, offset: u64) -> u32 {
        // SAFETY: offset is one of the comm layout's u32 fields, inside the page.
        unsafe { core::ptr::read_volatile(self.0.as_ptr().add(offset as usize) as *const u32) }
    }

    pub fn write(&self, offset: u64, v: u32) {
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(self.0.as_ptr().add(offset as usize) as *mut u32, v) }
    }
}

impl Drop for CommPage {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout, freed once.
        unsafe { alloc::alloc::dealloc(self.0.as_ptr(), PAGE_LAYOUT) };
    }
}

impl Cell {
    /// The CPUs the cell owns now.
    pub fn cpus(&self) -> Vec<usize> {
        self.res.lock().cpus.clone()
    }

    /// The SPIs the cell owns now.
    pub fn spis(&self) -> gic::IrqSet {
        self.res.lock().spis.clone()
    }

    /// The SMMU streams the cell owns now.
    pub fn streams(&self) -> Vec<u32> {
        self.res.lock().streams.clone()
    }

    pub fn resources(&self) -> spin::MutexGuard<'_, Resources> {
        self.res.lock()
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The cell's state; a running cell reads "running/locked" while it has
    /// written that state into its comm region.
    pub fn state(&self) -> CellState {
        let s =
            CellState::try_from(self.state.load(Ordering::Acquire)).unwrap_or(CellState::Failed);
        let locked = self
            .comm
            .as_ref()
            .is_some_and(|c| c.read(comm::OFF_CELL_STATE) == CellState::RunningLocked as u32);
        if s == CellState::Running && locked {
            CellState::RunningLocked
        } else {
            s
        }
    }

    pub fn set_state(&self, s: CellState) {
        self.state.store(s as u64, Ordering::Release);
        if let Some(c) = &self.comm {
            c.write(comm::OFF_CELL_STATE, s as u32);
        }
    }

    pub fn vttbr(&self) -> u64 {
        stage2::vttbr(self.stage2.lock().root_pa(), self.vmid)
    }

    /// Translates an address range the cell sees to physical memory, if one
    /// RAM region of its config holds all of it.
    pub fn ram_range_to_phys(&self, ipa: u64, len: u64) -> Option<u64> {
        let end = ipa.checked_add(len)?;
        self.config.memory.iter().find_map(|r| {
            let r_end = r.virt_start.checked_add(r.size)?;
            (!r.has(MemFlag::Io) && ipa >= r.virt_start && end <= r_end)
                .then(|| r.phys_start + (ipa - r.virt_start))
        })
    }
}

/// All cells; index = cell id. Destroyed cells leave `None`.
pub static CELLS: RwLock<Vec<Option<Arc<Cell>>>> = RwLock::new(Vec::new());

pub fn get(id: usize) -> Option<Arc<Cell>> {
    CELLS.read().get(id).cloned().flatten()
}

/// Builds a cell: its stage-2 table from the config's regions (minus
/// `taken`) plus, on GICv2, the virtual CPU interface at the cell's GICC
/// address.
pub fn build(
    id: usize,
    config: CellConfig,
    res: Resources,
    taken: &[(u64, u64)],
    gicv2_cpu_if: Option<(u64, u64)>,
    ipa_bits: u32,
) -> Result<Cell, Stage2Error> {
    let mut t = Stage2Table::new();
    cellmap::map_config(&mut t, &config, taken, ipa_bits)?;
    let dma = if config.streams.is_empty() {
        None
    } else {
        let mut dma_only = config.clone();
        dma_only
            .memory
            .retain(|r| r.has(MemFlag::Dma) && !r.has(MemFlag::Io));
        let mut d = Stage2Table::new();
        cellmap::map_config(&mut d, &dma_only, taken, ipa_bits)?;
        Some(Mutex::new(d))
    };
    let rw = Access {
        read: true,
        write: true,
        exec: false,
    };
    if let Some((gicc, gicv)) = gicv2_cpu_if {
        t.map(gicc, gicv, 0x2000, rw, MemKind::Device)?;
    }
    let comm_page = if id != 0 {
        let page = CommPage::new().ok_or(Stage2Error::OutOfMemory)?;
        page.write(comm::OFF_SIGNATURE, comm::SIGNATURE);
        page.write(comm::OFF_REVISION, comm::REVISION);
        page.write(comm::OFF_CELL_STATE, CellState::ShutDown as u32);
        t.map(
            comm::COMM_REGION_IPA,
            page.pa(),
            0x1000,
            rw,
            MemKind::Normal,
        )?;
        Some(page)
    } else {
        None
    };
    Ok(Cell {
        id,
        vmid: (id + 1) as u16,
        config,
        stage2: Mutex::new(t),
        dma,
        res: Mutex::new(res),
        state: AtomicU64::new(CellState::ShutDown as u64),
        fault: Mutex::new(None),
        loadable: AtomicBool::new(false),
        comm: comm_page,
        shutdown_requested_at: AtomicU64::new(0),
    })
}
