//! The driver: probing, bring-up, stream configuration, invalidation,
//! event and global error reporting.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

use aarch64_cpu::registers::VTCR_EL2;
use tock_registers::{LocalRegisterCopy, RegisterLongName};

use crate::cmdq::{CmdQueue, Command, CommandError};
use crate::evtq::{Event, EventQueue};
use crate::queue::QueuePtr;
use crate::regs::{
    Reg32, Reg64, SmmuRegs, CR0, CR1, CR2, GBPA, GERROR, IDR0, IDR1, IDR5, IRQ_CTRL, STRTAB_BASE,
    STRTAB_BASE_CFG,
};
use crate::ste::{S2Config, Ste};

/// Memory the SMMU reads and writes: the stream table and the queues.
///
/// # Safety
///
/// A successful `alloc_zeroed(size, align)` returns `(virt, phys)` where
/// `virt` is valid for reads and writes of `size` bytes, zeroed, aligned to
/// `align`, never freed nor reused and reached by nothing else, and the
/// SMMU reaches the same bytes at physical address `phys` coherently with
/// the CPU (the driver programs write-back, inner-shareable accesses and
/// does no cache maintenance).
pub unsafe trait DmaMemory {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<(*mut u8, u64)>;
}

/// What [`probe`] found in the ID registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// IDR0.S1P: stage-1 translation (unused by Cellblock).
    pub stage1: bool,
    /// IDR0.ST_LEVEL: a two-level stream table is supported.
    pub two_level: bool,
    /// IDR0.VMID16: 16 or 8 VMID bits.
    pub vmid_bits: u32,
    /// IDR1.SIDSIZE: stream ID bits.
    pub sid_bits: u32,
    /// IDR1.CMDQS: log2 of the largest command queue.
    pub cmdq_log2: u32,
    /// IDR1.EVENTQS: log2 of the largest event queue.
    pub evtq_log2: u32,
    /// IDR5.OAS, in the encoding of VTCR_EL2.PS.
    pub oas: u64,
    /// IDR5.OAS in bits.
    pub oas_bits: u32,
    /// IDR5.GRAN4K / GRAN16K / GRAN64K.
    pub gran4k: bool,
    pub gran16k: bool,
    pub gran64k: bool,
}

/// What the driver waited for when it gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// SMMU_CR0ACK to match SMMU_CR0.
    Cr0Ack,
    /// SMMU_GBPA.UPDATE to clear.
    Gbpa,
    /// SMMU_IRQ_CTRLACK to match SMMU_IRQ_CTRL.
    IrqCtrlAck,
    /// Room in the command queue (SMMU_CMDQ_CONS to advance).
    CmdqSpace,
    /// A CMD_SYNC to be consumed.
    CmdSync,
}

/// A structure the driver allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    StreamTable,
    CommandQueue,
    EventQueue,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StreamTable => "stream table",
            Self::CommandQueue => "command queue",
            Self::EventQueue => "event queue",
        })
    }
}

/// Why the driver refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmmuError {
    /// SMMU_IDR0.S2P = 0.
    NoStage2,
    /// SMMU_IDR0.TTF lacks the AArch64 table format.
    NoAArch64Tables { ttf: u32 },
    /// SMMU_IDR0.TTENDIAN says big-endian tables only.
    BigEndianTables,
    /// SMMU_IDR0.COHACC = 0: table and queue accesses would need cache
    /// maintenance, which the driver does not do.
    NotCoherent,
    /// SMMU_IDR0.STALL_MODEL = 0b10: faulting transactions always stall.
    StallForced,
    /// SMMU_IDR1.TABLES_PRESET or QUEUES_PRESET: fixed table or queue
    /// addresses.
    Preset,
    /// SMMU_IDR5.OAS holds a reserved value.
    UnknownOas { oas: u32 },
    /// `init`'s `max_sid` needs more than SMMU_IDR1.SIDSIZE bits.
    StreamIdTooLarge { sid: u32, sid_bits: u32 },
    /// A stream ID beyond the stream table `init` made.
    StreamNotInTable { sid: u32, entries: u64 },
    /// The DMA memory allocator had nothing.
    OutOfMemory { what: Structure, size: usize },
    /// The allocator returned memory the SMMU cannot use (misaligned or
    /// beyond the SMMU's output address size).
    BadDmaMemory { what: Structure, phys: u64 },
    /// The SMMU did not respond within the poll limit.
    Timeout(Wait),
    /// The SMMU refused a command.
    Command(CommandError),
    /// The VMID does not fit in SMMU_IDR0.VMID16's VMID size.
    VmidTooLarge { vmid: u16, vmid_bits: u32 },
    /// VTCR_EL2.TG0 names a granule the SMMU lacks (SMMU_IDR5.GRANxx).
    GranuleUnsupported { tg0: u64 },
    /// VTCR_EL2.T0SZ gives an IPA size outside 25 bits ..= the SMMU's
    /// output size.
    IpaSize { ipa_bits: u32, oas_bits: u32 },
    /// VTCR_EL2.SL0 = 0b11 (reserved for the 4 KiB and 16 KiB granules
    /// without FEAT_TTST).
    StartLevel { sl0: u64 },
    /// The stage-2 root is not granule aligned or beyond the output size.
    RootTable { root_pa: u64 },
    /// `init` has not run (or failed).
    NotInitialized,
    /// `init` ran already (or the SMMU was disabled).
    AlreadyInitialized,
}

impl fmt::Display for SmmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStage2 => write!(f, "SMMU_IDR0.S2P = 0: the SMMU has no stage-2 translation"),
            Self::NoAArch64Tables { ttf } => write!(
                f,
                "SMMU_IDR0.TTF = {ttf:#b}: the SMMU cannot walk AArch64 translation tables"
            ),
            Self::BigEndianTables => {
                write!(f, "SMMU_IDR0.TTENDIAN: the SMMU walks big-endian tables only")
            }
            Self::NotCoherent => write!(
                f,
                "SMMU_IDR0.COHACC = 0: the SMMU's table and queue accesses are not coherent"
            ),
            Self::StallForced => write!(
                f,
                "SMMU_IDR0.STALL_MODEL = 0b10: the SMMU stalls faulting transactions, which the driver does not resume"
            ),
            Self::Preset => write!(
                f,
                "SMMU_IDR1.TABLES_PRESET/QUEUES_PRESET: fixed table or queue addresses are not supported"
            ),
            Self::UnknownOas { oas } => write!(f, "SMMU_IDR5.OAS = {oas:#b} is reserved"),
            Self::StreamIdTooLarge { sid, sid_bits } => write!(
                f,
                "stream ID {sid:#x} needs more than the SMMU's {sid_bits} stream ID bits (SMMU_IDR1.SIDSIZE)"
            ),
            Self::StreamNotInTable { sid, entries } => write!(
                f,
                "stream ID {sid:#x} is beyond the stream table ({entries} entries)"
            ),
            Self::OutOfMemory { what, size } => {
                write!(f, "no memory for the SMMU {what} ({size:#x} bytes)")
            }
            Self::BadDmaMemory { what, phys } => write!(
                f,
                "memory for the SMMU {what} at PA {phys:#x} is misaligned or beyond the SMMU's output size"
            ),
            Self::Timeout(wait) => match wait {
                Wait::Cr0Ack => write!(f, "SMMU time-out: SMMU_CR0ACK did not follow SMMU_CR0"),
                Wait::Gbpa => write!(f, "SMMU time-out: SMMU_GBPA.UPDATE did not clear"),
                Wait::IrqCtrlAck => {
                    write!(f, "SMMU time-out: SMMU_IRQ_CTRLACK did not follow SMMU_IRQ_CTRL")
                }
                Wait::CmdqSpace => {
                    write!(f, "SMMU time-out: the command queue stayed full (SMMU_CMDQ_CONS)")
                }
                Wait::CmdSync => {
                    write!(f, "SMMU time-out: CMD_SYNC not consumed (SMMU_CMDQ_CONS)")
                }
            },
            Self::Command(e) => write!(f, "SMMU command error: {e}"),
            Self::VmidTooLarge { vmid, vmid_bits } => write!(
                f,
                "VMID {vmid} does not fit the SMMU's {vmid_bits}-bit VMIDs (SMMU_IDR0.VMID16)"
            ),
            Self::GranuleUnsupported { tg0 } => write!(
                f,
                "VTCR_EL2.TG0 = {tg0}: the SMMU does not support that granule (SMMU_IDR5)"
            ),
            Self::IpaSize { ipa_bits, oas_bits } => write!(
                f,
                "VTCR_EL2.T0SZ: a {ipa_bits}-bit IPA space is outside 25..={oas_bits} bits (SMMU_IDR5.OAS)"
            ),
            Self::StartLevel { sl0 } => write!(f, "VTCR_EL2.SL0 = {sl0:#b} is reserved"),
            Self::RootTable { root_pa } => write!(
                f,
                "stage-2 root table at PA {root_pa:#x} is not granule aligned or beyond the SMMU's output size"
            ),
            Self::NotInitialized => write!(f, "the SMMU is not initialised"),
            Self::AlreadyInitialized => write!(f, "the SMMU is already initialised"),
        }
    }
}

/// Global errors that were active (SMMU_GERROR differing from
/// SMMU_GERRORN); [`Smmu::gerror`] acknowledged them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GError {
    /// The active SMMU_GERROR bits.
    pub active: u32,
    /// CMDQ_ERR: the command the SMMU refused (replaced by a CMD_SYNC).
    pub command: Option<CommandError>,
}

impl GError {
    /// SFM_ERR: the SMMU entered service failure mode and terminates every
    /// transaction until reset.
    pub fn is_fatal(&self) -> bool {
        GERROR::SFM_ERR.is_set(self.active)
    }
}

const GERROR_NAMES: [(u32, &str); 9] = [
    (0, "CMDQ_ERR (command queue error)"),
    (2, "EVENTQ_ABT_ERR (event queue write aborted)"),
    (3, "PRIQ_ABT_ERR (PRI queue write aborted)"),
    (4, "MSI_CMDQ_ABT_ERR"),
    (5, "MSI_EVENTQ_ABT_ERR"),
    (6, "MSI_PRIQ_ABT_ERR"),
    (7, "MSI_GERROR_ABT_ERR"),
    (
        8,
        "SFM_ERR (service failure mode: the SMMU stopped translating)",
    ),
    (9, "CMDQP_ERR"),
];

impl fmt::Display for GError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SMMU global error")?;
        let mut sep = ": ";
        for (bit, name) in GERROR_NAMES {
            if self.active & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                if bit == 0 {
                    if let Some(cmd) = &self.command {
                        write!(f, ": {cmd}")?;
                    }
                }
                sep = ", ";
            }
        }
        let known = GERROR_NAMES.iter().fold(0, |m, (bit, _)| m | (1 << bit));
        if self.active & !known != 0 {
            write!(f, "{sep}unknown bits {:#x}", self.active & !known)?;
        }
        Ok(())
    }
}

fn oas_bits(oas: u32) -> Option<u32> {
    Some(match oas {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        _ => return None,
    })
}

fn reg<R: RegisterLongName>(value: u32) -> LocalRegisterCopy<u32, R> {
    LocalRegisterCopy::new(value)
}

/// Reads the ID registers and checks that the SMMU can do what Cellblock
/// needs: stage-2 translation with AArch64 little-endian tables, coherent
/// table and queue accesses, no forced stalls, programmable table and
/// queue addresses.
pub fn probe(regs: &mut impl SmmuRegs) -> Result<Info, SmmuError> {
    let idr0 = reg::<IDR0::Register>(regs.read32(Reg32::Idr0));
    let idr1 = reg::<IDR1::Register>(regs.read32(Reg32::Idr1));
    let idr5 = reg::<IDR5::Register>(regs.read32(Reg32::Idr5));
    if !idr0.is_set(IDR0::S2P) {
        return Err(SmmuError::NoStage2);
    }
    let ttf = idr0.read(IDR0::TTF);
    if ttf & 0b10 == 0 {
        return Err(SmmuError::NoAArch64Tables { ttf });
    }
    if idr0.matches_all(IDR0::TTENDIAN::Big) {
        return Err(SmmuError::BigEndianTables);
    }
    if !idr0.is_set(IDR0::COHACC) {
        return Err(SmmuError::NotCoherent);
    }
    if idr0.matches_all(IDR0::STALL_MODEL::StallForced) {
        return Err(SmmuError::StallForced);
    }
    if idr1.is_set(IDR1::TABLES_PRESET) || idr1.is_set(IDR1::QUEUES_PRESET) {
        return Err(SmmuError::Preset);
    }
    let oas = idr5.read(IDR5::OAS);
    let oas_bits = oas_bits(oas).ok_or(SmmuError::UnknownOas { oas })?;
    Ok(Info {
        stage1: idr0.is_set(IDR0::S1P),
        two_level: idr0.matches_all(IDR0::ST_LEVEL::TwoLevel),
        vmid_bits: if idr0.is_set(IDR0::VMID16) { 16 } else { 8 },
        // SIDSIZE is at most 32; larger values are reserved.
        sid_bits: idr1.read(IDR1::SIDSIZE).min(32),
        cmdq_log2: idr1.read(IDR1::CMDQS).min(19),
        evtq_log2: idr1.read(IDR1::EVENTQS).min(19),
        oas: u64::from(oas),
        oas_bits,
        gran4k: idr5.is_set(IDR5::GRAN4K),
        gran16k: idr5.is_set(IDR5::GRAN16K),
        gran64k: idr5.is_set(IDR5::GRAN64K),
    })
}

/// log2 of the number of entries of a linear stream table that holds
/// `max_sid`: the bits `max_sid` needs, at least 1, at most `sid_bits`.
pub fn stream_table_log2(max_sid: u32, sid_bits: u32) -> Result<u32, SmmuError> {
    let needed = (u32::BITS - max_sid.leading_zeros()).max(1);
    let log2 = needed.min(sid_bits);
    if u64::from(max_sid) >> log2 != 0 {
        return Err(SmmuError::StreamIdTooLarge {
            sid: max_sid,
            sid_bits,
        });
    }
    Ok(log2)
}

/// Largest command queue the driver makes (2^8 commands, 4 KiB).
pub const CMDQ_LOG2_MAX: u32 = 8;
/// Largest event queue the driver makes (2^7 records, 4 KiB).
pub const EVTQ_LOG2_MAX: u32 = 7;
/// Default bound on register polls of one wait.
pub const DEFAULT_POLL_LIMIT: u32 = 1_000_000;

const CR0_FIELDS: u32 = 0x1df; // SMMUEN..ATSCHK, VMW

struct Running {
    strtab: *mut [u64; 8],
    strtab_log2: u32,
    cmdq: CmdQueue,
    evtq: EventQueue,
}

impl Running {
    fn entries(&self) -> u64 {
        1 << self.strtab_log2
    }

    fn ste(&self, sid: u32) -> *mut [u64; 8] {
        // SAFETY: callers check `sid` < `entries()`, inside the table.
        unsafe { self.strtab.add(sid as usize) }
    }

    fn write_word(&self, sid: u32, word: usize, value: u64) {
        let ste = self.ste(sid);
        // SAFETY: `ste` is a valid entry (see `ste`) and `word` < 8.
        unsafe { write_volatile(&raw mut (*ste)[word], value) }
    }

    fn read(&self, sid: u32) -> Ste {
        // SAFETY: as in `write_word`.
        Ste(unsafe { read_volatile(self.ste(sid)) })
    }
}

/// An SMMUv3 owned by the hypervisor.
pub struct Smmu<R: SmmuRegs> {
    regs: R,
    info: Info,
    poll_limit: u32,
    run: Option<Running>,
    disabled: bool,
    /// What a stream of no cell gets: abort without an event (`None`), or
    /// a stage 2 that maps nothing, so that its accesses fault and are
    /// recorded (see [`Smmu::init_reporting`]).
    unowned: Option<Ste>,
}

// SAFETY: the raw pointers in `Running` refer to memory that `DmaMemory`
// handed to this driver alone; moving the driver to another CPU moves that
// ownership with it.
unsafe impl<R: SmmuRegs + Send> Send for Smmu<R> {}

impl<R: SmmuRegs> Smmu<R> {
    /// Probes the SMMU (see [`probe`]); touches no control register.
    pub fn new(mut regs: R) -> Result<Self, SmmuError> {
        let info = probe(&mut regs)?;
        Ok(Self {
            regs,
            info,
            poll_limit: DEFAULT_POLL_LIMIT,
            run: None,
            disabled: false,
            unowned: None,
        })
    }

    /// What the ID registers said.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Bounds every wait to `polls` register reads.
    pub fn set_poll_limit(&mut self, polls: u32) {
        self.poll_limit = polls;
    }

    pub fn regs(&self) -> &R {
        &self.regs
    }

    pub fn regs_mut(&mut self) -> &mut R {
        &mut self.regs
    }

    /// Number of stream table entries (stream IDs `0..streams()`), 0 before
    /// `init`.
    pub fn streams(&self) -> u64 {
        self.run.as_ref().map_or(0, Running::entries)
    }

    /// Brings the SMMU up with every stream aborting: transactions abort
    /// while it is off (GBPA.ABORT), a linear stream table for stream IDs
    /// `0..=max_sid` (rounded up to a power of two) of abort entries, a
    /// command and an event queue, then CMDQEN, EVENTQEN and SMMUEN, with
    /// cached configuration and TLBs invalidated. On error the SMMU is left
    /// off with GBPA.ABORT set, or as `init` found it if the error came
    /// before that.
    pub fn init(&mut self, mem: &mut impl DmaMemory, max_sid: u32) -> Result<(), SmmuError> {
        self.init_reporting(mem, max_sid, None)
    }

    /// [`Smmu::init`], but with `unowned` (a stage 2 whose tables map
    /// nothing) every stream that no cell has, at first and whenever
    /// [`Smmu::set_stream`] takes one away, faults instead of aborting: its
    /// transactions still end in an abort, and each is recorded in the
    /// event queue with its stream ID (F_TRANSLATION), so a device that
    /// belongs to no cell shows up.
    pub fn init_reporting(
        &mut self,
        mem: &mut impl DmaMemory,
        max_sid: u32,
        unowned: Option<S2Config>,
    ) -> Result<(), SmmuError> {
        if self.run.is_some() || self.disabled {
            return Err(SmmuError::AlreadyInitialized);
        }
        let unowned = unowned.map(|c| self.stage2_entry(&c)).transpose()?;
        let strtab_log2 = stream_table_log2(max_sid, self.info.sid_bits)?;

        self.update_gbpa(true)?;
        self.write_cr0(0)?;
        // Interrupts off while setting up; wired (not MSI) when enabled.
        self.write_irq_ctrl(0)?;
        self.regs.write64(Reg64::GErrorIrqCfg0, 0);
        self.regs.write64(Reg64::EvtqIrqCfg0, 0);
        self.regs.write32(
            Reg32::Cr1,
            (CR1::TABLE_SH::Inner
                + CR1::TABLE_OC::WriteBack
                + CR1::TABLE_IC::WriteBack
                + CR1::QUEUE_SH::Inner
                + CR1::QUEUE_OC::WriteBack
                + CR1::QUEUE_IC::WriteBack)
                .value,
        );
        // Record C_BAD_STREAMID events; only commands invalidate the TLBs.
        self.regs
            .write32(Reg32::Cr2, (CR2::RECINVSID::SET + CR2::PTM::SET).value);

        let (strtab, strtab_pa) = self.alloc(mem, Structure::StreamTable, 6, strtab_log2)?;
        let cmdq_log2 = self.info.cmdq_log2.min(CMDQ_LOG2_MAX);
        let (cmdq, cmdq_pa) = self.alloc(mem, Structure::CommandQueue, 4, cmdq_log2)?;
        let evtq_log2 = self.info.evtq_log2.min(EVTQ_LOG2_MAX);
        let (evtq, evtq_pa) = self.alloc(mem, Structure::EventQueue, 5, evtq_log2)?;
        // SAFETY: `alloc` checked that the allocator's memory has the size
        // and alignment each structure needs; `DmaMemory` gives it to this
        // driver alone, for good.
        let mut run = unsafe {
            Running {
                strtab: strtab.cast(),
                strtab_log2,
                cmdq: CmdQueue::new(cmdq, cmdq_pa, cmdq_log2),
                evtq: EventQueue::new(evtq, evtq_pa, evtq_log2),
            }
        };
        // The SMMU is off: whole entries may be written in any order.
        let first = unowned.unwrap_or(Ste::abort());
        for sid in 0..run.entries() {
            // Entries number at most 2^32 (SIDSIZE <= 32).
            for word in 0..8 {
                run.write_word(sid as u32, word, first.0[word]);
            }
        }

        self.regs.write64(
            Reg64::StrtabBase,
            (STRTAB_BASE::RA::SET + STRTAB_BASE::ADDR.val(strtab_pa >> 6)).value,
        );
        self.regs.write32(
            Reg32::StrtabBaseCfg,
            (STRTAB_BASE_CFG::FMT::Linear + STRTAB_BASE_CFG::LOG2SIZE.val(strtab_log2)).value,
        );
        self.regs.write64(Reg64::CmdqBase, run.cmdq.base_reg());
        self.regs.write32(Reg32::CmdqProd, 0);
        self.regs.write32(Reg32::CmdqCons, 0);
        self.regs.write64(Reg64::EvtqBase, run.evtq.base_reg());
        self.regs.write32(Reg32::EvtqProd, 0);
        self.regs.write32(Reg32::EvtqCons, 0);

        let cmdqen = CR0::CMDQEN::SET.value;
        self.write_cr0(cmdqen)?;
        let limit = self.poll_limit;
        run.cmdq.submit(
            &mut self.regs,
            &[Command::cfgi_all(), Command::tlbi_nsnh_all()],
            limit,
        )?;
        run.cmdq.sync(&mut self.regs, limit)?;
        let evtqen = cmdqen | CR0::EVENTQEN::SET.value;
        self.write_cr0(evtqen)?;
        self.write_cr0(evtqen | CR0::SMMUEN::SET.value)?;
        self.run = Some(run);
        self.unowned = unowned;
        Ok(())
    }

    /// Points stream `sid` at a cell's stage 2 (`Some`) or makes it abort
    /// (`None`; with [`Smmu::init_reporting`], fault and be recorded), then
    /// invalidates the SMMU's cached copy of the entry.
    ///
    /// Update order, so that the SMMU never sees a half-written entry: an
    /// entry that translates is first made to abort (word 0) and
    /// invalidated; the new entry's words 1-7 are written and invalidated,
    /// then word 0 (V, Config) last, invalidated again. On error the entry
    /// aborts, unless the error came from the last invalidation (then the
    /// SMMU may or may not use the new entry yet).
    pub fn set_stream(&mut self, sid: u32, cfg: Option<S2Config>) -> Result<(), SmmuError> {
        let new = cfg
            .map(|cfg| self.stage2_entry(&cfg))
            .transpose()?
            .or(self.unowned);
        let limit = self.poll_limit;
        let run = self.run.as_mut().ok_or(SmmuError::NotInitialized)?;
        if u64::from(sid) >= run.entries() {
            return Err(SmmuError::StreamNotInTable {
                sid,
                entries: run.entries(),
            });
        }
        let abort = Ste::abort();
        let sync_ste = |run: &mut Running, regs: &mut R| {
            run.cmdq.submit(regs, &[Command::cfgi_ste(sid)], limit)?;
            run.cmdq.sync(regs, limit)
        };
        if !run.read(sid).is_abort() {
            run.write_word(sid, 0, abort.0[0]);
            sync_ste(run, &mut self.regs)?;
        }
        let ste = new.unwrap_or(abort);
        for word in 1..8 {
            run.write_word(sid, word, ste.0[word]);
        }
        if new.is_some() {
            sync_ste(run, &mut self.regs)?;
            run.write_word(sid, 0, ste.0[0]);
            sync_ste(run, &mut self.regs)?;
        }
        Ok(())
    }

    /// The entry of stream `sid` as it is in memory.
    pub fn stream(&self, sid: u32) -> Option<Ste> {
        let run = self.run.as_ref()?;
        (u64::from(sid) < run.entries()).then(|| run.read(sid))
    }

    /// Forgets every TLB entry of `vmid` (CMD_TLBI_S12_VMALL, CMD_SYNC):
    /// after a cell's stage-2 tables lost a mapping, before the memory is
    /// used elsewhere.
    pub fn invalidate_vmid(&mut self, vmid: u16) -> Result<(), SmmuError> {
        self.check_vmid(vmid)?;
        let limit = self.poll_limit;
        let run = self.run.as_mut().ok_or(SmmuError::NotInitialized)?;
        run.cmdq
            .submit(&mut self.regs, &[Command::tlbi_s12_vmall(vmid)], limit)?;
        run.cmdq.sync(&mut self.regs, limit)
    }

    /// The events the SMMU recorded since the last call, oldest first; each
    /// is consumed as the iterator yields it. At most one queue's worth per
    /// call, so a device that faults without pause cannot hold the caller.
    pub fn poll_events(&mut self) -> Events<'_, R> {
        let (prod, overflowed) = match self.run.as_mut() {
            Some(run) => {
                let (prod, overflowed) = run.evtq.start(&mut self.regs);
                if overflowed {
                    run.evtq.ack_overflow(&mut self.regs);
                }
                (Some(prod), overflowed)
            }
            None => (None, false),
        };
        Events {
            smmu: self,
            prod,
            overflowed,
        }
    }

    /// Turns on the wired event-queue and global-error interrupts, for a
    /// caller that takes them instead of polling: `set_irqs(true, true)`.
    pub fn enable_irqs(&mut self) -> Result<(), SmmuError> {
        self.set_irqs(true, true)
    }

    /// Active global errors, acknowledged; a refused command is replaced by
    /// a CMD_SYNC so the command queue runs on.
    pub fn gerror(&mut self) -> Option<GError> {
        let command = match self.run.as_mut() {
            Some(run) => run.cmdq.recover(&mut self.regs),
            None => None,
        };
        let gerror = self.regs.read32(Reg32::GError);
        let gerrorn = self.regs.read32(Reg32::GErrorN);
        let mut active = gerror ^ gerrorn;
        if active != 0 {
            self.regs.write32(Reg32::GErrorN, gerrorn ^ active);
        }
        if command.is_some() {
            active |= GERROR::CMDQ_ERR::SET.value;
        }
        (active != 0).then_some(GError { active, command })
    }

    /// Enables or disables the SMMU's wired interrupts: the event queue
    /// interrupt (a record was written) and the global error interrupt.
    /// The hypervisor then drains [`Smmu::poll_events`] and
    /// [`Smmu::gerror`] from its handler. Off after `init`.
    pub fn set_irqs(&mut self, events: bool, gerror: bool) -> Result<(), SmmuError> {
        let mut value = 0;
        if events {
            value |= IRQ_CTRL::EVENTQ_IRQEN::SET.value;
        }
        if gerror {
            value |= IRQ_CTRL::GERROR_IRQEN::SET.value;
        }
        self.write_irq_ctrl(value)
    }

    /// Turns translation off (hypervisor shutdown): DMA of every stream
    /// then aborts, or passes untranslated if `bypass` (only for handing
    /// the whole machine back to an OS that owns all memory). The tables
    /// stay allocated; `init` cannot run again.
    pub fn disable(&mut self, bypass: bool) -> Result<(), SmmuError> {
        self.write_cr0(0)?;
        if bypass {
            self.update_gbpa(false)?;
        }
        self.run = None;
        self.disabled = true;
        Ok(())
    }

    fn write_irq_ctrl(&mut self, value: u32) -> Result<(), SmmuError> {
        let all =
            IRQ_CTRL::GERROR_IRQEN::SET + IRQ_CTRL::PRIQ_IRQEN::SET + IRQ_CTRL::EVENTQ_IRQEN::SET;
        self.regs.write32(Reg32::IrqCtrl, value);
        self.wait(Reg32::IrqCtrlAck, all.mask(), value, Wait::IrqCtrlAck)
    }

    fn check_vmid(&self, vmid: u16) -> Result<(), SmmuError> {
        if u32::from(vmid) >> self.info.vmid_bits != 0 {
            return Err(SmmuError::VmidTooLarge {
                vmid,
                vmid_bits: self.info.vmid_bits,
            });
        }
        Ok(())
    }

    /// Checks `cfg` against the SMMU and encodes it, with the output size
    /// clamped to SMMU_IDR5.OAS.
    fn stage2_entry(&self, cfg: &S2Config) -> Result<Ste, SmmuError> {
        self.check_vmid(cfg.vmid)?;
        let vtcr = LocalRegisterCopy::<u64, VTCR_EL2::Register>::new(cfg.vtcr);
        let tg0 = vtcr.read(VTCR_EL2::TG0);
        let granule: u64 = match tg0 {
            0 if self.info.gran4k => 4 << 10,
            1 if self.info.gran64k => 64 << 10,
            2 if self.info.gran16k => 16 << 10,
            _ => return Err(SmmuError::GranuleUnsupported { tg0 }),
        };
        let ipa_bits = 64 - vtcr.read(VTCR_EL2::T0SZ) as u32;
        if !(25..=self.info.oas_bits).contains(&ipa_bits) {
            return Err(SmmuError::IpaSize {
                ipa_bits,
                oas_bits: self.info.oas_bits,
            });
        }
        let sl0 = vtcr.read(VTCR_EL2::SL0);
        if sl0 == 0b11 && tg0 != 1 {
            return Err(SmmuError::StartLevel { sl0 });
        }
        if !cfg.root_pa.is_multiple_of(granule) || cfg.root_pa >> self.info.oas_bits != 0 {
            return Err(SmmuError::RootTable {
                root_pa: cfg.root_pa,
            });
        }
        let ps = vtcr.read(VTCR_EL2::PS).min(self.info.oas);
        Ok(Ste::stage2(cfg, ps))
    }

    /// `2^log2` entries of `2^entry_log2` bytes, aligned to their size.
    fn alloc(
        &self,
        mem: &mut impl DmaMemory,
        what: Structure,
        entry_log2: u32,
        log2: u32,
    ) -> Result<(*mut u8, u64), SmmuError> {
        let size = 1usize
            .checked_shl(entry_log2 + log2)
            .ok_or(SmmuError::OutOfMemory {
                what,
                size: usize::MAX,
            })?;
        let (virt, phys) = mem
            .alloc_zeroed(size, size)
            .ok_or(SmmuError::OutOfMemory { what, size })?;
        let align = size as u64;
        if virt.is_null()
            || !(virt as usize).is_multiple_of(size)
            || !phys.is_multiple_of(align)
            || phys >> self.info.oas_bits != 0
        {
            return Err(SmmuError::BadDmaMemory { what, phys });
        }
        Ok((virt, phys))
    }

    /// Sets or clears GBPA.ABORT, keeping the other fields.
    fn update_gbpa(&mut self, abort: bool) -> Result<(), SmmuError> {
        let update = GBPA::UPDATE::SET.value;
        self.wait(Reg32::Gbpa, update, 0, Wait::Gbpa)?;
        let gbpa = self.regs.read32(Reg32::Gbpa);
        let field = if abort {
            GBPA::ABORT::SET
        } else {
            GBPA::ABORT::CLEAR
        };
        self.regs.write32(Reg32::Gbpa, field.modify(gbpa) | update);
        self.wait(Reg32::Gbpa, update, 0, Wait::Gbpa)
    }

    fn write_cr0(&mut self, value: u32) -> Result<(), SmmuError> {
        self.regs.write32(Reg32::Cr0, value);
        self.wait(Reg32::Cr0Ack, CR0_FIELDS, value, Wait::Cr0Ack)
    }

    /// Polls `reg` until `reg & mask == value`.
    fn wait(&mut self, reg: Reg32, mask: u32, value: u32, what: Wait) -> Result<(), SmmuError> {
        for _ in 0..=self.poll_limit {
            if self.regs.read32(reg) & mask == value {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(SmmuError::Timeout(what))
    }
}

/// Events of one [`Smmu::poll_events`] call.
pub struct Events<'a, R: SmmuRegs> {
    smmu: &'a mut Smmu<R>,
    prod: Option<QueuePtr>,
    overflowed: bool,
}

impl<R: SmmuRegs> Events<'_, R> {
    /// The event queue overflowed since the previous call: events were
    /// lost.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl<R: SmmuRegs> Iterator for Events<'_, R> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let prod = self.prod?;
        let Smmu { regs, run, .. } = &mut *self.smmu;
        run.as_mut()?.evtq.pop(regs, prod)
    }
}
