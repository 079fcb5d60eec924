//! Cells as the hypervisor holds them: config, stage-2 table, VMID, owned
//! CPUs and interrupts, state and the fault that stopped it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch_aarch64::stage2::{self, Access, MemKind, Stage2Error, Stage2Table};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_core::abi::CellState;
use hv_core::config::{CellConfig, MemFlag};
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

pub struct Cell {
    pub id: usize,
    pub config: CellConfig,
    pub stage2: Mutex<Stage2Table>,
    pub vmid: u16,
    /// Logical CPU ids the cell owns now.
    pub cpus: Vec<usize>,
    /// SPIs the cell owns now.
    pub spis: gic::IrqSet,
    state: AtomicU64,
    pub fault: Mutex<Option<Fault>>,
}

impl Cell {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn state(&self) -> CellState {
        CellState::try_from(self.state.load(Ordering::Acquire)).unwrap_or(CellState::Failed)
    }

    pub fn set_state(&self, s: CellState) {
        self.state.store(s as u64, Ordering::Release);
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

fn access_of(flags: &[MemFlag]) -> (Access, MemKind) {
    let io = flags.contains(&MemFlag::Io);
    (
        Access {
            read: flags.contains(&MemFlag::Read),
            write: flags.contains(&MemFlag::Write),
            exec: flags.contains(&MemFlag::Execute) && !io,
        },
        if io { MemKind::Device } else { MemKind::Normal },
    )
}

/// Physical ranges `(start, end)` that a cell may not map even though its
/// config lists them (taken by other cells).
pub type Taken<'a> = &'a [(u64, u64)];

/// Maps `[phys, phys + size)` at `ipa` except for the parts in `taken`.
fn map_except(
    t: &mut Stage2Table,
    ipa: u64,
    phys: u64,
    size: u64,
    access: Access,
    kind: MemKind,
    taken: Taken,
) -> Result<(), Stage2Error> {
    let mut pieces = alloc::vec![(phys, phys + size)];
    for &(ts, te) in taken {
        let mut next = Vec::new();
        for (s, e) in pieces {
            if te <= s || ts >= e {
                next.push((s, e));
                continue;
            }
            if s < ts {
                next.push((s, ts));
            }
            if te < e {
                next.push((te, e));
            }
        }
        pieces = next;
    }
    for (s, e) in pieces {
        t.map(ipa + (s - phys), s, e - s, access, kind)?;
    }
    Ok(())
}

/// Builds a cell: its stage-2 table from the config's regions (minus
/// `taken`) plus, on GICv2, the virtual CPU interface at the cell's GICC
/// address.
pub fn build(
    id: usize,
    config: CellConfig,
    cpus: Vec<usize>,
    spis: gic::IrqSet,
    taken: Taken,
    gicv2_cpu_if: Option<(u64, u64)>,
    ipa_bits: u32,
) -> Result<Cell, Stage2Error> {
    let mut t = Stage2Table::new();
    for r in &config.memory {
        if r.virt_start.saturating_add(r.size) > 1u64 << ipa_bits {
            return Err(Stage2Error::OutOfRange {
                ipa: r.virt_start,
                size: r.size,
            });
        }
        let (access, kind) = access_of(&r.flags);
        map_except(
            &mut t,
            r.virt_start,
            r.phys_start,
            r.size,
            access,
            kind,
            taken,
        )?;
    }
    if let Some((gicc, gicv)) = gicv2_cpu_if {
        let rw = Access {
            read: true,
            write: true,
            exec: false,
        };
        t.map(gicc, gicv, 0x2000, rw, MemKind::Device)?;
    }
    Ok(Cell {
        id,
        vmid: (id + 1) as u16,
        config,
        stage2: Mutex::new(t),
        cpus,
        spis,
        state: AtomicU64::new(CellState::ShutDown as u64),
        fault: Mutex::new(None),
    })
}
