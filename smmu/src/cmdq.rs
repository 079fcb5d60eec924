//! The command queue (Arm IHI 0070, 3.5 and 4): 16-byte commands the
//! driver produces and the SMMU consumes, and the few commands Cellblock
//! needs.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

use tock_registers::{register_bitfields, LocalRegisterCopy};

use crate::driver::{SmmuError, Wait};
use crate::queue::QueuePtr;
use crate::regs::{Reg32, SmmuRegs, CMDQ_BASE, CMDQ_CONS, GERROR};

register_bitfields! {u64,
    /// Command word 0.
    pub CMD0 [
        OPCODE OFFSET(0) NUMBITS(8) [
            CfgiSte = 0x03,
            CfgiSteRange = 0x04,
            TlbiS12Vmall = 0x28,
            TlbiNsnhAll = 0x30,
            Sync = 0x46
        ],
        /// CMD_SYNC completion signal: 0 = none (software polls CONS).
        CS OFFSET(12) NUMBITS(2) [None = 0, Irq = 1, Sev = 2],
        /// CMD_CFGI_STE(_RANGE): the stream ID.
        SID OFFSET(32) NUMBITS(32) [],
        /// CMD_TLBI_S12_VMALL: the VMID.
        VMID OFFSET(32) NUMBITS(16) []
    ],
    /// Command word 1.
    pub CMD1 [
        /// CMD_CFGI_STE: invalidate the STE only (no level-1 descriptor).
        LEAF OFFSET(0) NUMBITS(1) [],
        /// CMD_CFGI_STE_RANGE: 2^(Range + 1) stream IDs; 31 = all.
        RANGE OFFSET(0) NUMBITS(5) []
    ]
}

/// One command as it sits in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Command(pub [u64; 2]);

impl Command {
    /// Size of a command queue entry.
    pub const SIZE: usize = 16;

    /// CMD_CFGI_STE: forget any cached copy of stream `sid`'s STE.
    pub fn cfgi_ste(sid: u32) -> Self {
        Self([
            (CMD0::OPCODE::CfgiSte + CMD0::SID.val(u64::from(sid))).value,
            CMD1::LEAF::SET.value,
        ])
    }

    /// CMD_CFGI_ALL (CMD_CFGI_STE_RANGE with Range = 31): forget every
    /// cached configuration.
    pub fn cfgi_all() -> Self {
        Self([CMD0::OPCODE::CfgiSteRange.value, CMD1::RANGE.val(31).value])
    }

    /// CMD_TLBI_S12_VMALL: invalidate every TLB entry of `vmid`.
    pub fn tlbi_s12_vmall(vmid: u16) -> Self {
        Self([
            (CMD0::OPCODE::TlbiS12Vmall + CMD0::VMID.val(u64::from(vmid))).value,
            0,
        ])
    }

    /// CMD_TLBI_NSNH_ALL: invalidate every non-secure, non-EL2 TLB entry.
    pub fn tlbi_nsnh_all() -> Self {
        Self([CMD0::OPCODE::TlbiNsnhAll.value, 0])
    }

    /// CMD_SYNC without a completion signal: complete once the SMMU's
    /// consumer index has passed it.
    pub fn sync() -> Self {
        Self([(CMD0::OPCODE::Sync + CMD0::CS::None).value, 0])
    }

    /// The opcode (bits 7:0 of word 0).
    pub fn opcode(&self) -> u8 {
        CMD0::OPCODE.read(self.0[0]) as u8
    }
}

/// Why the SMMU stopped consuming commands (SMMU_CMDQ_CONS.ERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdErrorKind {
    /// CERROR_ILL: an illegal or unsupported command.
    Illegal,
    /// CERROR_ABT: the command fetch aborted.
    FetchAbort,
    /// CERROR_ATC_INV_SYNC: an ATS invalidation did not complete.
    AtcInvSync,
    /// Another value.
    Other(u8),
}

/// A command the SMMU refused; the driver replaced it with a CMD_SYNC and
/// acknowledged the error, so the queue runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandError {
    pub kind: CmdErrorKind,
    /// Queue index of the refused command.
    pub index: u32,
    /// Its opcode.
    pub opcode: u8,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            CmdErrorKind::Illegal => "illegal command (CERROR_ILL)",
            CmdErrorKind::FetchAbort => "command fetch abort (CERROR_ABT)",
            CmdErrorKind::AtcInvSync => "ATC invalidation time-out (CERROR_ATC_INV_SYNC)",
            CmdErrorKind::Other(_) => "unknown SMMU_CMDQ_CONS.ERR",
        };
        write!(
            f,
            "{why} for opcode {:#04x} at command queue index {}",
            self.opcode, self.index
        )?;
        if let CmdErrorKind::Other(code) = self.kind {
            write!(f, " (ERR = {code:#x})")?;
        }
        Ok(())
    }
}

/// The command queue in memory and the driver's producer index.
pub(crate) struct CmdQueue {
    entries: *mut [u64; 2],
    phys: u64,
    log2size: u32,
    prod: QueuePtr,
}

impl CmdQueue {
    /// A queue of `2^log2size` entries at `virt` (seen by the SMMU at
    /// `phys`).
    ///
    /// # Safety
    ///
    /// `virt` is valid for reads and writes of `2^log2size * 16` bytes,
    /// 16-byte aligned, for as long as the queue lives, and reached by
    /// nothing but this queue and the SMMU.
    pub(crate) unsafe fn new(virt: *mut u8, phys: u64, log2size: u32) -> Self {
        Self {
            entries: virt.cast(),
            phys,
            log2size,
            prod: QueuePtr::new(log2size),
        }
    }

    /// SMMU_CMDQ_BASE.
    pub(crate) fn base_reg(&self) -> u64 {
        (CMDQ_BASE::RA::SET
            + CMDQ_BASE::ADDR.val(self.phys >> 5)
            + CMDQ_BASE::LOG2SIZE.val(u64::from(self.log2size)))
        .value
    }

    fn slot(&self, index: usize) -> *mut [u64; 2] {
        // SAFETY: `index` < 2^log2size (a `QueuePtr` index), inside the
        // allocation `new` was given.
        unsafe { self.entries.add(index) }
    }

    fn cons(&self, regs: &mut impl SmmuRegs) -> QueuePtr {
        QueuePtr::from_reg(self.log2size, regs.read32(Reg32::CmdqCons))
    }

    /// Adds `cmds` and tells the SMMU; waits (at most `limit` polls per
    /// command) while the queue is full.
    pub(crate) fn submit(
        &mut self,
        regs: &mut impl SmmuRegs,
        cmds: &[Command],
        limit: u32,
    ) -> Result<(), SmmuError> {
        for cmd in cmds {
            if QueuePtr::is_full(self.prod, self.cons(regs)) {
                // Let the SMMU consume what is queued, then wait for room.
                regs.write32(Reg32::CmdqProd, self.prod.value());
                let mut polls = 0;
                while QueuePtr::is_full(self.prod, self.cons(regs)) {
                    self.check_error(regs)?;
                    polls += 1;
                    if polls > limit {
                        return Err(SmmuError::Timeout(Wait::CmdqSpace));
                    }
                }
            }
            let slot = self.slot(self.prod.index());
            // SAFETY: `slot` lies in the queue (see `slot`); the SMMU does
            // not read it until PROD passes it.
            unsafe {
                write_volatile(&raw mut (*slot)[0], cmd.0[0]);
                write_volatile(&raw mut (*slot)[1], cmd.0[1]);
            }
            self.prod = self.prod.next();
        }
        regs.write32(Reg32::CmdqProd, self.prod.value());
        Ok(())
    }

    /// Adds a CMD_SYNC and waits (at most `limit` polls) until the SMMU has
    /// consumed it, i.e. completed every command before it.
    pub(crate) fn sync(&mut self, regs: &mut impl SmmuRegs, limit: u32) -> Result<(), SmmuError> {
        self.submit(regs, &[Command::sync()], limit)?;
        for _ in 0..=limit {
            if QueuePtr::is_empty(self.prod, self.cons(regs)) {
                return Ok(());
            }
            self.check_error(regs)?;
        }
        Err(SmmuError::Timeout(Wait::CmdSync))
    }

    fn check_error(&mut self, regs: &mut impl SmmuRegs) -> Result<(), SmmuError> {
        match self.recover(regs) {
            Some(e) => Err(SmmuError::Command(e)),
            None => Ok(()),
        }
    }

    /// If SMMU_GERROR.CMDQ_ERR is active: replaces the refused command with
    /// a CMD_SYNC, acknowledges the error and says what was refused.
    pub(crate) fn recover(&mut self, regs: &mut impl SmmuRegs) -> Option<CommandError> {
        let gerror = regs.read32(Reg32::GError);
        let gerrorn = regs.read32(Reg32::GErrorN);
        if !GERROR::CMDQ_ERR.is_set(gerror ^ gerrorn) {
            return None;
        }
        let cons_reg =
            LocalRegisterCopy::<u32, CMDQ_CONS::Register>::new(regs.read32(Reg32::CmdqCons));
        let cons = QueuePtr::from_reg(self.log2size, cons_reg.get());
        let slot = self.slot(cons.index());
        // SAFETY: `slot` lies in the queue; the SMMU has stopped consuming
        // at it until the error is acknowledged.
        let opcode = unsafe {
            let op = CMD0::OPCODE.read(read_volatile(&raw const (*slot)[0])) as u8;
            let sync = Command::sync();
            write_volatile(&raw mut (*slot)[0], sync.0[0]);
            write_volatile(&raw mut (*slot)[1], sync.0[1]);
            op
        };
        let kind = match cons_reg.read(CMDQ_CONS::ERR) {
            1 => CmdErrorKind::Illegal,
            2 => CmdErrorKind::FetchAbort,
            3 => CmdErrorKind::AtcInvSync,
            other => CmdErrorKind::Other(other as u8),
        };
        let ack = gerrorn ^ GERROR::CMDQ_ERR::SET.value;
        regs.write32(Reg32::GErrorN, ack);
        Some(CommandError {
            kind,
            index: cons.index() as u32,
            opcode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<Command>(), Command::SIZE);
    }

    #[test]
    fn encodings() {
        // CMD_CFGI_STE: opcode 0x03 (7:0), StreamID (63:32); Leaf (word 1 bit 0).
        assert_eq!(Command::cfgi_ste(0x1234).0, [0x0000_1234_0000_0003, 0x1]);
        assert_eq!(Command::cfgi_ste(u32::MAX).0, [0xffff_ffff_0000_0003, 0x1]);
        // CMD_CFGI_ALL: CMD_CFGI_STE_RANGE (0x04), Range (word 1, 4:0) = 31.
        assert_eq!(Command::cfgi_all().0, [0x04, 31]);
        // CMD_TLBI_S12_VMALL: opcode 0x28, VMID (47:32).
        assert_eq!(Command::tlbi_s12_vmall(3).0, [0x0000_0003_0000_0028, 0]);
        assert_eq!(
            Command::tlbi_s12_vmall(0xffff).0,
            [0x0000_ffff_0000_0028, 0]
        );
        // CMD_TLBI_NSNH_ALL: opcode 0x30.
        assert_eq!(Command::tlbi_nsnh_all().0, [0x30, 0]);
        // CMD_SYNC: opcode 0x46, CS (13:12) = SIG_NONE, no MSI.
        assert_eq!(Command::sync().0, [0x46, 0]);
        assert_eq!(Command::sync().opcode(), 0x46);
    }

    #[test]
    fn error_display() {
        let e = CommandError {
            kind: CmdErrorKind::Illegal,
            index: 7,
            opcode: 0x28,
        };
        assert_eq!(
            std::format!("{e}"),
            "illegal command (CERROR_ILL) for opcode 0x28 at command queue index 7"
        );
        let e = CommandError {
            kind: CmdErrorKind::Other(0x55),
            index: 0,
            opcode: 3,
        };
        assert!(std::format!("{e}").ends_with("(ERR = 0x55)"));
    }
}
