//! The event queue (Arm IHI 0070, 7.3): 32-byte records the SMMU writes
//! when a transaction faults or a configuration is wrong, decoded into
//! [`Event`]s.

use core::fmt;
use core::ptr::read_volatile;

use tock_registers::register_bitfields;

use crate::queue::QueuePtr;
use crate::regs::{Reg32, SmmuRegs, EVTQ_BASE, EVTQ_CONS, EVTQ_PROD};

register_bitfields! {u64,
    /// Event record word 0.
    pub EVT0 [
        EVENT_ID OFFSET(0) NUMBITS(8) [],
        SSV OFFSET(11) NUMBITS(1) [],
        SUBSTREAM_ID OFFSET(12) NUMBITS(20) [],
        STREAM_ID OFFSET(32) NUMBITS(32) []
    ],
    /// Event record word 1 (fault records).
    pub EVT1 [
        STAG OFFSET(0) NUMBITS(16) [],
        STALL OFFSET(31) NUMBITS(1) [],
        PNU OFFSET(33) NUMBITS(1) [],
        IND OFFSET(34) NUMBITS(1) [],
        RNW OFFSET(35) NUMBITS(1) [],
        NSIPA OFFSET(38) NUMBITS(1) [],
        S2 OFFSET(39) NUMBITS(1) [],
        CLASS OFFSET(40) NUMBITS(2) [Cd = 0, Tt = 1, In = 2]
    ],
    /// Event record word 3.
    pub EVT3 [
        /// F_TRANSLATION..F_PERMISSION at stage 2: the IPA (51:12).
        IPA OFFSET(12) NUMBITS(40) [],
        /// F_STE_FETCH, F_CD_FETCH, F_WALK_EABT, F_VMS_FETCH: the
        /// address of the fetch that failed (51:3).
        FETCH_ADDR OFFSET(3) NUMBITS(49) []
    ]
}

/// What happened, by the specification's event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// F_UUT (0x01): unsupported upstream transaction.
    UnsupportedTransaction,
    /// C_BAD_STREAMID (0x02): the stream ID is beyond the stream table.
    BadStreamId,
    /// F_STE_FETCH (0x03): reading the STE faulted.
    SteFetch,
    /// C_BAD_STE (0x04): the STE is invalid or malformed.
    BadSte,
    /// F_BAD_ATS_TREQ (0x05).
    BadAtsRequest,
    /// F_STREAM_DISABLED (0x06).
    StreamDisabled,
    /// F_TRANSL_FORBIDDEN (0x07).
    TranslationForbidden,
    /// C_BAD_SUBSTREAMID (0x08).
    BadSubstreamId,
    /// F_CD_FETCH (0x09).
    CdFetch,
    /// C_BAD_CD (0x0a).
    BadCd,
    /// F_WALK_EABT (0x0b): a table walk hit an external abort.
    WalkExternalAbort,
    /// F_TRANSLATION (0x10): no mapping for the address.
    Translation,
    /// F_ADDR_SIZE (0x11): the address or a table address is out of range.
    AddressSize,
    /// F_ACCESS (0x12): access flag fault.
    Access,
    /// F_PERMISSION (0x13): the mapping forbids the access.
    Permission,
    /// F_TLB_CONFLICT (0x20).
    TlbConflict,
    /// F_CFG_CONFLICT (0x21).
    ConfigConflict,
    /// E_PAGE_REQUEST (0x24).
    PageRequest,
    /// F_VMS_FETCH (0x25).
    VmsFetch,
    /// Another event type (reserved or IMPLEMENTATION DEFINED).
    Other(u8),
}

impl EventKind {
    fn from_id(id: u8) -> Self {
        match id {
            0x01 => Self::UnsupportedTransaction,
            0x02 => Self::BadStreamId,
            0x03 => Self::SteFetch,
            0x04 => Self::BadSte,
            0x05 => Self::BadAtsRequest,
            0x06 => Self::StreamDisabled,
            0x07 => Self::TranslationForbidden,
            0x08 => Self::BadSubstreamId,
            0x09 => Self::CdFetch,
            0x0a => Self::BadCd,
            0x0b => Self::WalkExternalAbort,
            0x10 => Self::Translation,
            0x11 => Self::AddressSize,
            0x12 => Self::Access,
            0x13 => Self::Permission,
            0x20 => Self::TlbConflict,
            0x21 => Self::ConfigConflict,
            0x24 => Self::PageRequest,
            0x25 => Self::VmsFetch,
            other => Self::Other(other),
        }
    }

    /// The specification's name of the event.
    pub fn name(self) -> &'static str {
        match self {
            Self::UnsupportedTransaction => "F_UUT",
            Self::BadStreamId => "C_BAD_STREAMID",
            Self::SteFetch => "F_STE_FETCH",
            Self::BadSte => "C_BAD_STE",
            Self::BadAtsRequest => "F_BAD_ATS_TREQ",
            Self::StreamDisabled => "F_STREAM_DISABLED",
            Self::TranslationForbidden => "F_TRANSL_FORBIDDEN",
            Self::BadSubstreamId => "C_BAD_SUBSTREAMID",
            Self::CdFetch => "F_CD_FETCH",
            Self::BadCd => "C_BAD_CD",
            Self::WalkExternalAbort => "F_WALK_EABT",
            Self::Translation => "F_TRANSLATION",
            Self::AddressSize => "F_ADDR_SIZE",
            Self::Access => "F_ACCESS",
            Self::Permission => "F_PERMISSION",
            Self::TlbConflict => "F_TLB_CONFLICT",
            Self::ConfigConflict => "F_CFG_CONFLICT",
            Self::PageRequest => "E_PAGE_REQUEST",
            Self::VmsFetch => "F_VMS_FETCH",
            Self::Other(_) => "unknown event",
        }
    }

    /// Records of this type carry the transaction's input address, its
    /// direction and (for walks) the stage flag.
    fn has_transaction(self) -> bool {
        matches!(
            self,
            Self::UnsupportedTransaction
                | Self::TranslationForbidden
                | Self::WalkExternalAbort
                | Self::Translation
                | Self::AddressSize
                | Self::Access
                | Self::Permission
        )
    }

    fn has_fetch_addr(self) -> bool {
        matches!(
            self,
            Self::SteFetch | Self::CdFetch | Self::WalkExternalAbort | Self::VmsFetch
        )
    }

    fn is_translation_fault(self) -> bool {
        matches!(
            self,
            Self::Translation | Self::AddressSize | Self::Access | Self::Permission
        )
    }
}

/// Direction of the faulting transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// One decoded event record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The device's stream ID (for PCI: its requester ID).
    pub stream: u32,
    /// The substream ID, if the transaction had one.
    pub substream: Option<u32>,
    /// The transaction's input address: with stage-2-only streams, the
    /// address the device used, i.e. an IPA of its owner cell.
    pub addr: Option<u64>,
    /// Read or write, where the record says.
    pub direction: Option<Direction>,
    /// The fault arose at stage 2 (translation faults and walk aborts).
    pub stage2: bool,
    /// Translation faults at stage 2: the IPA (page granular) the record
    /// reports.
    pub ipa: Option<u64>,
    /// Fetch faults: the address of the structure or table being fetched.
    pub fetch_addr: Option<u64>,
    /// The record's four words as the SMMU wrote them.
    pub raw: [u64; 4],
}

impl Event {
    /// Size of an event queue record.
    pub const SIZE: usize = 32;

    /// Decodes a record. Any bit pattern decodes; unknown types become
    /// [`EventKind::Other`].
    pub fn decode(raw: [u64; 4]) -> Self {
        let kind = EventKind::from_id(EVT0::EVENT_ID.read(raw[0]) as u8);
        let stream = EVT0::STREAM_ID.read(raw[0]) as u32;
        let substream = EVT0::SSV
            .is_set(raw[0])
            .then(|| EVT0::SUBSTREAM_ID.read(raw[0]) as u32);
        let transaction = kind.has_transaction();
        let stage2 = transaction && EVT1::S2.is_set(raw[1]);
        Self {
            kind,
            stream,
            substream,
            addr: transaction.then_some(raw[2]),
            direction: transaction.then(|| {
                if EVT1::RNW.is_set(raw[1]) {
                    Direction::Read
                } else {
                    Direction::Write
                }
            }),
            stage2,
            ipa: (stage2 && kind.is_translation_fault()).then(|| EVT3::IPA.read(raw[3]) << 12),
            fetch_addr: kind
                .has_fetch_addr()
                .then(|| EVT3::FETCH_ADDR.read(raw[3]) << 3),
            raw,
        }
    }
}

impl fmt::Display for Event {
    /// For example `F_TRANSLATION on stream 0x8: DMA write to 0x42000000
    /// (stage 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.name())?;
        if let EventKind::Other(id) = self.kind {
            write!(f, " {id:#04x}")?;
        }
        write!(f, " on stream {:#x}", self.stream)?;
        if let Some(ss) = self.substream {
            write!(f, " substream {ss:#x}")?;
        }
        if let Some(addr) = self.addr {
            match self.direction {
                Some(Direction::Write) => write!(f, ": DMA write to {addr:#x}")?,
                _ => write!(f, ": DMA read from {addr:#x}")?,
            }
            if self.stage2 {
                write!(f, " (stage 2)")?;
            }
        }
        if let Some(fetch) = self.fetch_addr {
            write!(f, ", fetch from {fetch:#x} failed")?;
        }
        Ok(())
    }
}

/// The event queue in memory and the driver's consumer index.
pub(crate) struct EventQueue {
    records: *const [u64; 4],
    phys: u64,
    log2size: u32,
    cons: QueuePtr,
    /// SMMU_EVENTQ_CONS.OVACKFLG as last written.
    ov_ack: bool,
}

impl EventQueue {
    /// A queue of `2^log2size` records at `virt` (seen by the SMMU at
    /// `phys`).
    ///
    /// # Safety
    ///
    /// `virt` is valid for reads of `2^log2size * 32` bytes, 32-byte
    /// aligned, for as long as the queue lives, and written by nothing but
    /// the SMMU.
    pub(crate) unsafe fn new(virt: *mut u8, phys: u64, log2size: u32) -> Self {
        Self {
            records: virt.cast_const().cast(),
            phys,
            log2size,
            cons: QueuePtr::new(log2size),
            ov_ack: false,
        }
    }

    /// SMMU_EVENTQ_BASE.
    pub(crate) fn base_reg(&self) -> u64 {
        (EVTQ_BASE::WA::SET
            + EVTQ_BASE::ADDR.val(self.phys >> 5)
            + EVTQ_BASE::LOG2SIZE.val(u64::from(self.log2size)))
        .value
    }

    /// Reads the producer index: how many records are waiting, and
    /// whether the queue overflowed since the last acknowledgement (which
    /// this acknowledges).
    pub(crate) fn start(&mut self, regs: &mut impl SmmuRegs) -> (QueuePtr, bool) {
        let prod_reg = regs.read32(Reg32::EvtqProd);
        let mut prod = QueuePtr::from_reg(self.log2size, prod_reg);
        // A producer more than a queue ahead is impossible; read one queue.
        let size = 1 << self.log2size;
        if QueuePtr::distance(prod, self.cons) > size {
            prod = self.cons.advance(size);
        }
        let ovflg = EVTQ_PROD::OVFLG.is_set(prod_reg);
        let overflowed = ovflg != self.ov_ack;
        self.ov_ack = ovflg;
        (prod, overflowed)
    }

    /// The next record before `prod`, consumed (CONS advanced).
    pub(crate) fn pop(&mut self, regs: &mut impl SmmuRegs, prod: QueuePtr) -> Option<Event> {
        if QueuePtr::is_empty(prod, self.cons) {
            return None;
        }
        // SAFETY: the index is < 2^log2size, inside the queue; the SMMU
        // wrote the record before advancing PROD past it and does not
        // overwrite it before CONS passes it.
        let raw = unsafe { read_volatile(self.records.add(self.cons.index())) };
        self.cons = self.cons.next();
        let ack = if self.ov_ack {
            EVTQ_CONS::OVACKFLG::SET.value
        } else {
            0
        };
        regs.write32(Reg32::EvtqCons, self.cons.value() | ack);
        Some(Event::decode(raw))
    }

    /// Writes the overflow acknowledgement without consuming a record.
    pub(crate) fn ack_overflow(&mut self, regs: &mut impl SmmuRegs) {
        let ack = if self.ov_ack {
            EVTQ_CONS::OVACKFLG::SET.value
        } else {
            0
        };
        regs.write32(Reg32::EvtqCons, self.cons.value() | ack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<[u64; 4]>(), Event::SIZE);
    }

    #[test]
    fn stage2_translation_fault_on_write() {
        // F_TRANSLATION (0x10), StreamID 0x8; word 1: S2 (39) = 1, RnW (35) =
        // 0 (write), CLASS (41:40) = IN (2); InputAddr 0x4220_0040; IPA
        // (51:12) 0x42200.
        let raw = [
            0x0000_0008_0000_0010,
            (1 << 39) | (2 << 40),
            0x4220_0040,
            0x4220_0000,
        ];
        let e = Event::decode(raw);
        assert_eq!(e.kind, EventKind::Translation);
        assert_eq!(e.stream, 8);
        assert_eq!(e.substream, None);
        assert_eq!(e.addr, Some(0x4220_0040));
        assert_eq!(e.direction, Some(Direction::Write));
        assert!(e.stage2);
        assert_eq!(e.ipa, Some(0x4220_0000));
        assert_eq!(e.fetch_addr, None);
        assert_eq!(
            format!("{e}"),
            "F_TRANSLATION on stream 0x8: DMA write to 0x42200040 (stage 2)"
        );
    }

    #[test]
    fn permission_access_and_address_size_faults_on_read() {
        for (id, kind, name) in [
            (0x13, EventKind::Permission, "F_PERMISSION"),
            (0x12, EventKind::Access, "F_ACCESS"),
            (0x11, EventKind::AddressSize, "F_ADDR_SIZE"),
        ] {
            let e = Event::decode([(0x10u64 << 32) | id, (1 << 35) | (1 << 39), 0x1000, 0]);
            assert_eq!(e.kind, kind);
            assert_eq!(e.direction, Some(Direction::Read));
            assert_eq!(
                format!("{e}"),
                format!("{name} on stream 0x10: DMA read from 0x1000 (stage 2)")
            );
        }
    }

    #[test]
    fn configuration_events_have_no_address() {
        // C_BAD_STREAMID for stream 0x1_0000 with substream 5 (SSV, bit 11).
        let e = Event::decode([
            (0x1_0000u64 << 32) | (5 << 12) | (1 << 11) | 0x02,
            !0,
            !0,
            !0,
        ]);
        assert_eq!(e.kind, EventKind::BadStreamId);
        assert_eq!(e.stream, 0x1_0000);
        assert_eq!(e.substream, Some(5));
        assert_eq!(e.addr, None);
        assert_eq!(e.direction, None);
        assert!(!e.stage2);
        assert_eq!(e.ipa, None);
        assert_eq!(
            format!("{e}"),
            "C_BAD_STREAMID on stream 0x10000 substream 0x5"
        );
        let e = Event::decode([(3u64 << 32) | 0x04, 0, 0, 0]);
        assert_eq!(e.kind, EventKind::BadSte);
        assert_eq!(format!("{e}"), "C_BAD_STE on stream 0x3");
    }

    #[test]
    fn fetch_faults_name_the_fetch_address() {
        // F_STE_FETCH: FetchAddr in word 3 (51:3); low 3 bits ignored.
        let e = Event::decode([(1u64 << 32) | 0x03, 0, 0, 0xfff0_0000_4000_0107]);
        assert_eq!(e.kind, EventKind::SteFetch);
        assert_eq!(e.fetch_addr, Some(0x0000_0000_4000_0100));
        assert_eq!(
            format!("{e}"),
            "F_STE_FETCH on stream 0x1, fetch from 0x40000100 failed"
        );
        // F_WALK_EABT carries both the transaction and the fetch address.
        let e = Event::decode([0x0b, 1 << 39, 0x8000, 0x4100_0008]);
        assert_eq!(e.kind, EventKind::WalkExternalAbort);
        assert_eq!(e.addr, Some(0x8000));
        assert_eq!(e.fetch_addr, Some(0x4100_0008));
        assert!(e.stage2);
        assert_eq!(e.ipa, None);
    }

    #[test]
    fn unknown_types_decode() {
        for id in 0..=255u64 {
            let e = Event::decode([id, !0, !0, !0]);
            let _ = format!("{e}");
        }
        let e = Event::decode([0xe3, 0, 0, 0]);
        assert_eq!(e.kind, EventKind::Other(0xe3));
        assert_eq!(format!("{e}"), "unknown event 0xe3 on stream 0x0");
    }
}
