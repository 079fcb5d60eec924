//! The communication region: the page Cellblock maps into every non-root
//! cell at [`COMM_REGION_IPA`], through which the hypervisor asks the cell
//! to shut down and the cell answers.
//!
//! Layout (mirrors `hv_core::mgmt::comm`; every field a little-endian `u32`
//! accessed with one aligned 32-bit load or store):
//!
//! | offset | field | written by |
//! | --- | --- | --- |
//! | 0x00 | signature, "CBCM" | hypervisor |
//! | 0x04 | revision | hypervisor |
//! | 0x08 | cell_state | hypervisor |
//! | 0x0c | msg_to_cell | hypervisor (cleared by the cell when it replies) |
//! | 0x10 | reply_from_cell | cell |
//!
//! The handshake is Jailhouse's: the hypervisor sets `reply_from_cell` to
//! [`REPLY_NONE`], then posts a message in `msg_to_cell` and polls
//! `reply_from_cell`. The cell, when it sees the message, clears
//! `msg_to_cell` to [`MSG_NONE`], orders that store before the next, and
//! writes its reply ([`CommRegion::reply`]). Clearing the message means a
//! cell polling [`CommRegion::pending_message`] sees each request once.
//!
//! `region()` only ever touches the page when the inmate runs in a
//! non-root Cellblock cell: bare on QEMU the address is RAM beyond the
//! first GiB or no memory at all, and the root cell has no such page. See
//! [`is_non_root_cell`] for the test.

use core::ptr::{read_volatile, write_volatile};

// The layout is defined once, in hv-core (docs/abi.md).
pub use hv_core::comm::{
    COMM_REGION_IPA, MSG_NONE, MSG_SHUTDOWN_REQUEST, REPLY_APPROVED, REPLY_DENIED, REPLY_NONE,
    REPLY_UNKNOWN, REVISION, SIGNATURE,
};

/// Byte offsets of the 32-bit fields, as indices for this library.
pub const OFF_SIGNATURE: usize = hv_core::comm::OFF_SIGNATURE as usize;
pub const OFF_REVISION: usize = hv_core::comm::OFF_REVISION as usize;
pub const OFF_CELL_STATE: usize = hv_core::comm::OFF_CELL_STATE as usize;
pub const OFF_MSG_TO_CELL: usize = hv_core::comm::OFF_MSG_TO_CELL as usize;
pub const OFF_REPLY_FROM_CELL: usize = hv_core::comm::OFF_REPLY_FROM_CELL as usize;
/// Bytes of the page the fields occupy.
pub const FIELDS_SIZE: usize = OFF_REPLY_FROM_CELL + 4;

/// How an inmate answers shutdown requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownPolicy {
    /// Agree, then stop.
    Approve,
    /// Refuse and keep running (a "locked" cell).
    Deny,
}

/// What to do about a message from the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// No message: nothing to answer.
    Idle,
    /// Shutdown approved: reply [`REPLY_APPROVED`] and stop.
    ShutDown,
    /// Shutdown refused: reply [`REPLY_DENIED`] and carry on.
    Refuse,
    /// A message this library does not know: reply [`REPLY_UNKNOWN`].
    Unknown(u32),
}

impl Response {
    /// The reply to write, if any.
    pub fn reply(self) -> Option<u32> {
        match self {
            Self::Idle => None,
            Self::ShutDown => Some(REPLY_APPROVED),
            Self::Refuse => Some(REPLY_DENIED),
            Self::Unknown(_) => Some(REPLY_UNKNOWN),
        }
    }
}

/// Decides how to answer `message` under `policy`.
pub fn respond(message: u32, policy: ShutdownPolicy) -> Response {
    match (message, policy) {
        (MSG_NONE, _) => Response::Idle,
        (MSG_SHUTDOWN_REQUEST, ShutdownPolicy::Approve) => Response::ShutDown,
        (MSG_SHUTDOWN_REQUEST, ShutdownPolicy::Deny) => Response::Refuse,
        (other, _) => Response::Unknown(other),
    }
}

/// A communication region whose signature has been checked.
#[derive(Clone, Copy, Debug)]
pub struct CommRegion {
    base: *mut u32,
}

impl CommRegion {
    /// Checks the signature at `base` with one 32-bit volatile read; the
    /// region if it matches.
    ///
    /// # Safety
    ///
    /// `base` is 4-byte aligned and, for as long as the returned handle or
    /// a copy of it is used, valid for volatile 32-bit reads and writes of
    /// [`FIELDS_SIZE`] bytes, which nothing else in the program accesses
    /// except through such handles.
    pub unsafe fn new(base: *mut u32) -> Option<Self> {
        let region = Self { base };
        (region.read(OFF_SIGNATURE) == SIGNATURE).then_some(region)
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: base is aligned and valid for
        // FIELDS_SIZE bytes, and offset is one of the OFF_* fields below it.
        unsafe { read_volatile(self.base.add(offset / 4)) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as for `read`.
        unsafe { write_volatile(self.base.add(offset / 4), value) }
    }

    /// The layout revision the hypervisor wrote.
    pub fn revision(&self) -> u32 {
        self.read(OFF_REVISION)
    }

    /// The cell's state as the hypervisor sees it (0 running, 1 running and
    /// locked, 2 shut down, 3 failed).
    pub fn cell_state(&self) -> u32 {
        self.read(OFF_CELL_STATE)
    }

    /// Locks (or unlocks) the cell: while its state reads "running/locked"
    /// the hypervisor refuses every reconfiguration (creating, loading,
    /// starting, shutting down or destroying cells), like Jailhouse.
    pub fn set_locked(&self, locked: bool) {
        // CellState::RunningLocked = 1, Running = 0 (docs/abi.md).
        self.write(OFF_CELL_STATE, u32::from(locked));
        store_barrier();
    }

    /// The message waiting for an answer, [`MSG_NONE`] if there is none.
    pub fn pending_message(&self) -> u32 {
        self.read(OFF_MSG_TO_CELL)
    }

    /// Answers the pending message: clears `msg_to_cell`, then writes
    /// `reply` to `reply_from_cell`, with a barrier between the two stores
    /// and one after the reply (so it is out before the CPU, say, waits in
    /// WFI).
    pub fn reply(&self, reply: u32) {
        self.write(OFF_MSG_TO_CELL, MSG_NONE);
        store_barrier();
        self.write(OFF_REPLY_FROM_CELL, reply);
        store_barrier();
    }
}

/// Orders earlier stores before later ones, as other CPUs (the
/// hypervisor's) observe them.
fn store_barrier() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a data barrier only orders memory accesses. No `nomem`, so
    // the compiler keeps memory accesses on their side of it too.
    unsafe {
        core::arch::asm!("dmb ishst", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Hypercall codes, items and errno values [`is_non_root_cell`] uses.
pub mod probe {
    use hv_core::abi::{Hypercall, InfoItem};

    /// `hypervisor_get_info(item)`.
    pub const HYPERVISOR_GET_INFO: u64 = Hypercall::HypervisorGetInfo as u64;
    /// Its item "number of cells, the root cell included".
    pub const INFO_NUM_CELLS: u64 = InfoItem::NumCells as u64;
    /// `cpu_get_info(cpu, item)`.
    pub const CPU_GET_INFO: u64 = Hypercall::CpuGetInfo as u64;
    /// Its item "CPU state".
    pub const CPU_INFO_STATE: u64 = 0;
    /// What a non-root cell gets asking about a CPU it does not own.
    pub const EPERM: i64 = -hv_core::abi::EPERM;
    /// CPU ids tried when looking for one the cell does not own.
    pub const MAX_CPUS: u64 = 64;
}

/// Whether the inmate runs in a non-root Cellblock cell, i.e. whether a
/// communication region is mapped at [`COMM_REGION_IPA`]. `started_at_el2`
/// says where the image was entered; `hvc(code, arg1, arg2)` issues a
/// hypercall. Three tests, each needed:
///
/// 1. Entered at EL1: entered at EL2, the inmate runs bare (QEMU
///    `virtualization=on`) and makes no hypercall at all.
/// 2. `hypervisor_get_info(number of cells)` ≥ 2: a non-root cell implies
///    the root cell beside it. Bare at EL1 QEMU answers `hvc` as a PSCI call
///    and returns -1 (NOT_SUPPORTED), which fails this test, so step 3
///    never sees QEMU's -1.
/// 3. `cpu_get_info(cpu, state)` answers -EPERM for some CPU id: the root
///    cell may ask about every CPU, a non-root cell about its own only, and
///    the root cell owns at least one CPU. A root cell thus never reads the
///    page it does not have.
///
/// A hypervisor that answers otherwise makes this `false`: the inmate then
/// does without the region, but never faults on it.
pub fn is_non_root_cell(started_at_el2: bool, mut hvc: impl FnMut(u64, u64, u64) -> i64) -> bool {
    use probe::*;
    if started_at_el2 || hvc(HYPERVISOR_GET_INFO, INFO_NUM_CELLS, 0) < 2 {
        return false;
    }
    (0..MAX_CPUS).any(|cpu| hvc(CPU_GET_INFO, cpu, CPU_INFO_STATE) == EPERM)
}

#[cfg(all(target_arch = "aarch64", not(test)))]
mod cell {
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

    use super::{is_non_root_cell, CommRegion, COMM_REGION_IPA};

    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;

    /// What the first [`region`] call found.
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// The cell's communication region, `None` when running bare or in the
    /// root cell (or if the signature does not match). The first call finds
    /// out with a few hypercalls and, only in a non-root cell, one 32-bit
    /// read of the signature; later calls return the cached answer without
    /// touching the hypervisor or the page. Call it once before enabling
    /// interrupts so that the hypercalls stay out of interrupt handlers.
    pub fn region() -> Option<CommRegion> {
        let base = COMM_REGION_IPA as *mut u32;
        match STATE.load(Relaxed) {
            // Stored only once `CommRegion::new` found the signature there.
            PRESENT => return Some(CommRegion { base }),
            ABSENT => return None,
            _ => {}
        }
        let found = if is_non_root_cell(crate::started_at_el2(), crate::hypercall::call) {
            // SAFETY: in a non-root cell the hypervisor maps its
            // communication page at COMM_REGION_IPA (page-aligned), as
            // ordinary RAM that the entry code's identity map covers
            // (Normal memory, GiB 2); only `CommRegion` accesses it.
            unsafe { CommRegion::new(base) }
        } else {
            None
        };
        STATE.store(if found.is_some() { PRESENT } else { ABSENT }, Relaxed);
        found
    }
}

#[cfg(all(target_arch = "aarch64", not(test)))]
pub use cell::region;

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A fake page: the five fields.
    fn page(signature: u32) -> [u32; FIELDS_SIZE / 4] {
        [signature, REVISION, 0, MSG_NONE, REPLY_NONE]
    }

    #[test]
    fn constants_match_the_hypervisor_abi() {
        assert_eq!(&SIGNATURE.to_le_bytes(), b"CBCM");
        assert_eq!(COMM_REGION_IPA, 0x8000_0000);
        assert_eq!(
            [
                OFF_SIGNATURE,
                OFF_REVISION,
                OFF_CELL_STATE,
                OFF_MSG_TO_CELL,
                OFF_REPLY_FROM_CELL
            ],
            [0x00, 0x04, 0x08, 0x0c, 0x10]
        );
        assert_eq!((MSG_NONE, MSG_SHUTDOWN_REQUEST), (0, 1));
        assert_eq!(
            (REPLY_NONE, REPLY_UNKNOWN, REPLY_DENIED, REPLY_APPROVED),
            (0, 1, 2, 3)
        );
    }

    #[test]
    fn shutdown_request_is_approved_or_denied_by_policy() {
        use ShutdownPolicy::*;
        assert_eq!(respond(MSG_SHUTDOWN_REQUEST, Approve), Response::ShutDown);
        assert_eq!(respond(MSG_SHUTDOWN_REQUEST, Deny), Response::Refuse);
        assert_eq!(Response::ShutDown.reply(), Some(REPLY_APPROVED));
        assert_eq!(Response::Refuse.reply(), Some(REPLY_DENIED));
    }

    #[test]
    fn no_message_needs_no_reply() {
        for policy in [ShutdownPolicy::Approve, ShutdownPolicy::Deny] {
            assert_eq!(respond(MSG_NONE, policy), Response::Idle);
            assert_eq!(Response::Idle.reply(), None);
        }
    }

    #[test]
    fn unknown_message_gets_reply_unknown_whatever_the_policy() {
        for policy in [ShutdownPolicy::Approve, ShutdownPolicy::Deny] {
            assert_eq!(respond(7, policy), Response::Unknown(7));
        }
        assert_eq!(Response::Unknown(7).reply(), Some(REPLY_UNKNOWN));
    }

    #[test]
    fn wrong_signature_gives_no_region() {
        let mut mem = page(u32::from_le_bytes(*b"CBMG"));
        // SAFETY: `mem` is aligned, FIELDS_SIZE bytes, used only here.
        assert!(unsafe { CommRegion::new(mem.as_mut_ptr()) }.is_none());
        let mut mem = page(0);
        // SAFETY: as above.
        assert!(unsafe { CommRegion::new(mem.as_mut_ptr()) }.is_none());
    }

    #[test]
    fn fields_read_at_their_offsets() {
        let mut mem = page(SIGNATURE);
        mem[OFF_CELL_STATE / 4] = 1;
        mem[OFF_MSG_TO_CELL / 4] = MSG_SHUTDOWN_REQUEST;
        // SAFETY: `mem` is aligned, FIELDS_SIZE bytes, used only through
        // the handle until the asserts on it below.
        let comm = unsafe { CommRegion::new(mem.as_mut_ptr()) }.expect("signature");
        assert_eq!(comm.revision(), REVISION);
        assert_eq!(comm.cell_state(), 1);
        assert_eq!(comm.pending_message(), MSG_SHUTDOWN_REQUEST);
    }

    #[test]
    fn reply_clears_the_message_and_writes_the_reply_only() {
        let mut mem = page(SIGNATURE);
        mem[OFF_CELL_STATE / 4] = 0;
        mem[OFF_MSG_TO_CELL / 4] = MSG_SHUTDOWN_REQUEST;
        // SAFETY: as in `fields_read_at_their_offsets`.
        let comm = unsafe { CommRegion::new(mem.as_mut_ptr()) }.expect("signature");
        let response = respond(comm.pending_message(), ShutdownPolicy::Deny);
        comm.reply(response.reply().expect("a reply"));
        // Seen once: the next poll finds nothing.
        assert_eq!(
            respond(comm.pending_message(), ShutdownPolicy::Deny),
            Response::Idle
        );
        assert_eq!(mem, [SIGNATURE, REVISION, 0, MSG_NONE, REPLY_DENIED]);
    }

    /// A fake hypervisor for `is_non_root_cell`: records the calls.
    struct Hv {
        cells: i64,
        /// CPU ids that exist, and which of them the caller owns.
        cpus: u64,
        own: &'static [u64],
        root: bool,
        calls: Vec<(u64, u64, u64)>,
    }

    impl Hv {
        fn call(&mut self, code: u64, a1: u64, a2: u64) -> i64 {
            self.calls.push((code, a1, a2));
            match code {
                probe::HYPERVISOR_GET_INFO if a1 == probe::INFO_NUM_CELLS => self.cells,
                probe::CPU_GET_INFO if a1 >= self.cpus => -22,
                probe::CPU_GET_INFO if self.root || self.own.contains(&a1) => 0,
                probe::CPU_GET_INFO => probe::EPERM,
                _ => -38,
            }
        }
    }

    fn hv(cells: i64, root: bool, own: &'static [u64]) -> Hv {
        Hv {
            cells,
            cpus: 4,
            own,
            root,
            calls: Vec::new(),
        }
    }

    #[test]
    fn non_root_cell_is_recognised() {
        let mut h = hv(2, false, &[3]);
        assert!(is_non_root_cell(false, |c, a, b| h.call(c, a, b)));
        // Stops at the first foreign CPU.
        assert_eq!(h.calls.len(), 2);
    }

    #[test]
    fn non_root_cell_on_cpu_0_finds_a_foreign_cpu_further_up() {
        let mut h = hv(3, false, &[0, 1]);
        assert!(is_non_root_cell(false, |c, a, b| h.call(c, a, b)));
    }

    #[test]
    fn root_cell_is_not_a_non_root_cell() {
        let mut h = hv(2, true, &[]);
        assert!(!is_non_root_cell(false, |c, a, b| h.call(c, a, b)));
        let mut alone = hv(1, true, &[]);
        assert!(!is_non_root_cell(false, |c, a, b| alone.call(c, a, b)));
        // Alone, it does not even look at the CPUs.
        assert_eq!(alone.calls.len(), 1);
    }

    #[test]
    fn bare_at_el2_makes_no_hypercall() {
        let mut calls = 0;
        assert!(!is_non_root_cell(true, |_, _, _| {
            calls += 1;
            0
        }));
        assert_eq!(calls, 0);
    }

    #[test]
    fn bare_at_el1_qemu_psci_answer_is_no_cell() {
        // QEMU without EL2 answers every `hvc` as PSCI: NOT_SUPPORTED (-1),
        // the same number as -EPERM; it must not count as a foreign CPU.
        let mut calls = Vec::new();
        assert!(!is_non_root_cell(false, |c, a, b| {
            calls.push((c, a, b));
            -1
        }));
        assert_eq!(
            calls,
            [(probe::HYPERVISOR_GET_INFO, probe::INFO_NUM_CELLS, 0)]
        );
    }

    #[test]
    fn hypervisor_without_get_info_is_no_cell() {
        assert!(!is_non_root_cell(false, |_, _, _| -38));
    }
}
