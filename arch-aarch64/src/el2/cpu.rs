//! Per-CPU state: which cell a CPU runs, whether it is parked, its mailbox
//! for PSCI CPU_ON and its statistics.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::Mutex;

use super::boot::MAX_CPUS;
use super::sysregs::{read_sysreg, write_sysreg};
use hv_core::abi::{CpuStat, CpuState, NUM_CPU_STATS};

/// No cell.
pub const NO_CELL: usize = usize::MAX;

/// A request to start the cell's code on a parked CPU (PSCI CPU_ON).
#[derive(Clone, Copy, Debug)]
pub struct StartRequest {
    pub entry: u64,
    pub context: u64,
}

pub struct PerCpu {
    pub mpidr: AtomicU64,
    pub present: AtomicBool,
    pub cell: AtomicUsize,
    state: AtomicU8,
    pub mailbox: Mutex<Option<StartRequest>>,
    /// Set by another CPU that wants this one parked (its cell failed or is
    /// being destroyed); acted upon at the next entry to EL2.
    pub park_request: AtomicBool,
    /// The CPU waits in the hypervisor for a start request (parked).
    pub waiting: AtomicBool,
    pub stats: [AtomicU64; NUM_CPU_STATS],
}

#[allow(clippy::declare_interior_mutable_const)]
const PER_CPU_INIT: PerCpu = PerCpu {
    mpidr: AtomicU64::new(0),
    present: AtomicBool::new(false),
    cell: AtomicUsize::new(NO_CELL),
    state: AtomicU8::new(CpuState::Parked as u8),
    mailbox: Mutex::new(None),
    park_request: AtomicBool::new(false),
    waiting: AtomicBool::new(false),
    stats: [const { AtomicU64::new(0) }; NUM_CPU_STATS],
};

pub static CPUS: [PerCpu; MAX_CPUS] = [PER_CPU_INIT; MAX_CPUS];

impl PerCpu {
    pub fn state(&self) -> CpuState {
        match self.state.load(Ordering::Acquire) {
            0 => CpuState::Running,
            2 => CpuState::Failed,
            _ => CpuState::Parked,
        }
    }

    pub fn set_state(&self, s: CpuState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Counts one event. Only the CPU itself counts its statistics, so a
    /// plain load and store suffice (no atomic read-modify-write on the
    /// interrupt path); other CPUs only read them.
    pub fn count(&self, stat: CpuStat) {
        let s = &self.stats[stat as usize];
        s.store(s.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Records the calling CPU's logical id (kept in TPIDR_EL2).
pub fn set_current(id: usize) {
    write_sysreg!("tpidr_el2", id as u64);
}

/// Logical id of the calling CPU.
pub fn current_id() -> usize {
    read_sysreg!("tpidr_el2") as usize
}

pub fn current() -> &'static PerCpu {
    &CPUS[current_id() % MAX_CPUS]
}

/// MPIDR affinity bits (Aff3..Aff0) of the calling CPU.
pub fn own_mpidr() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff_00ff_ffff
}

/// Posts a start request to a parked CPU; the caller wakes it.
pub fn post_start(target: &PerCpu, req: StartRequest) {
    *target.mailbox.lock() = Some(req);
}
