//! Decoding of ESR_EL2, the syndrome of an exception taken to EL2.

use core::fmt;

/// Exception classes (ESR_EL2.EC) that Cellblock handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// WFI or WFE (only if trapped).
    Wfx,
    /// HVC executed in AArch64 state.
    Hvc64,
    /// SMC executed in AArch64 state (trapped by HCR_EL2.TSC).
    Smc64,
    /// MSR/MRS/system instruction trapped.
    SysReg,
    /// Instruction abort from a lower exception level (stage-2 fault).
    InstructionAbortLower,
    /// Data abort from a lower exception level (stage-2 fault).
    DataAbortLower,
    /// Anything else, with the raw class.
    Other(u8),
}

/// A decoded ESR_EL2 value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    pub fn ec_raw(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    pub fn class(self) -> ExceptionClass {
        match self.ec_raw() {
            0x01 => ExceptionClass::Wfx,
            0x16 => ExceptionClass::Hvc64,
            0x17 => ExceptionClass::Smc64,
            0x18 => ExceptionClass::SysReg,
            0x20 => ExceptionClass::InstructionAbortLower,
            0x24 => ExceptionClass::DataAbortLower,
            other => ExceptionClass::Other(other),
        }
    }

    /// Instruction-specific syndrome.
    pub fn iss(self) -> u32 {
        (self.0 & 0x01ff_ffff) as u32
    }

    /// Whether the trapped instruction was 32 bits long (IL).
    pub fn il32(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// The immediate of an HVC or SMC.
    pub fn imm16(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// The data-abort view of the syndrome.
    pub fn data_abort(self) -> DataAbort {
        DataAbort(self.iss())
    }

    /// The system-register view of the syndrome (EC 0x18).
    pub fn sysreg(self) -> SysRegAccess {
        let iss = self.iss();
        SysRegAccess {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 != 0,
        }
    }
}

impl fmt::Debug for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Esr({:#x})", self.0)
    }
}

/// ISS of a data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort(pub u32);

/// A load or store that the syndrome describes completely (ISV=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedAccess {
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Whether it is a write.
    pub write: bool,
    /// The general-purpose register transferred (31 = xzr).
    pub reg: u8,
    /// Sign-extend a load (SSE).
    pub sign_extend: bool,
    /// The register is 64 bits wide (SF).
    pub sixty_four: bool,
}

/// Why a data abort cannot be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UndecodableAccess {
    /// ISV=0: load/store pair, writeback, SIMD or similar; the syndrome does
    /// not say what to emulate.
    NoSyndrome,
    /// The fault is not a translation/permission fault but, for example, an
    /// external abort.
    NotTranslationOrPermission { dfsc: u8 },
}

impl fmt::Display for UndecodableAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSyndrome => write!(
                f,
                "access not decodable (ISV=0: pair, writeback or SIMD access)"
            ),
            Self::NotTranslationOrPermission { dfsc } => {
                write!(f, "unexpected fault status {dfsc:#x}")
            }
        }
    }
}

impl DataAbort {
    /// Data fault status code.
    pub fn dfsc(self) -> u8 {
        (self.0 & 0x3f) as u8
    }

    /// Whether the fault was on a write (WnR).
    pub fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Translation fault (DFSC 0b0001LL) or permission fault (0b0011LL) or
    /// access flag fault (0b0010LL) at any level.
    pub fn is_translation_or_permission(self) -> bool {
        matches!(self.dfsc() >> 2, 0b0001..=0b0011)
    }

    /// Decodes a single load or store for emulation.
    pub fn decode(self) -> Result<DecodedAccess, UndecodableAccess> {
        if !self.is_translation_or_permission() {
            return Err(UndecodableAccess::NotTranslationOrPermission { dfsc: self.dfsc() });
        }
        if self.0 & (1 << 24) == 0 {
            return Err(UndecodableAccess::NoSyndrome);
        }
        Ok(DecodedAccess {
            size: 1 << ((self.0 >> 22) & 3),
            sign_extend: self.0 & (1 << 21) != 0,
            reg: ((self.0 >> 16) & 0x1f) as u8,
            sixty_four: self.0 & (1 << 15) != 0,
            write: self.is_write(),
        })
    }
}

impl DecodedAccess {
    /// The value a load puts into its register, from the `size`-byte `raw`
    /// value read from the device.
    pub fn load_value(&self, raw: u64) -> u64 {
        let bits = u32::from(self.size) * 8;
        let raw = if bits == 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        let value = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((raw << shift) as i64) >> shift) as u64
        } else {
            raw
        };
        if self.sixty_four {
            value
        } else {
            value & 0xffff_ffff
        }
    }

    /// The value a store writes, from the full register.
    pub fn store_value(&self, reg: u64) -> u64 {
        match self.size {
            8 => reg,
            n => reg & ((1u64 << (u32::from(n) * 8)) - 1),
        }
    }
}

/// A trapped MSR/MRS (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    pub rt: u8,
    /// MRS (read) rather than MSR.
    pub read: bool,
}

impl SysRegAccess {
    /// ICC_SGI1R_EL1: op0=3, op1=0, CRn=12, CRm=11, op2=5.
    pub fn is_icc_sgi1r(&self) -> bool {
        (self.op0, self.op1, self.crn, self.crm, self.op2) == (3, 0, 12, 11, 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(Esr(0x5a00_4a48).class(), ExceptionClass::Hvc64);
        assert_eq!(Esr(0x5a00_4a48).imm16(), 0x4a48);
        assert_eq!(Esr(0x5e00_0000).class(), ExceptionClass::Smc64);
        assert_eq!(Esr(0x9200_0000).class(), ExceptionClass::DataAbortLower);
        assert_eq!(Esr(0x0000_0000).class(), ExceptionClass::Other(0));
    }

    #[test]
    fn decodes_32bit_store_from_w3() {
        // EC=0x24, IL, ISV=1, SAS=2 (word), SRT=3, WnR=1, DFSC=translation L3.
        let esr =
            Esr((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (3 << 16) | (1 << 6) | 0x07);
        let acc = esr.data_abort().decode().unwrap();
        assert_eq!(
            acc,
            DecodedAccess {
                size: 4,
                write: true,
                reg: 3,
                sign_extend: false,
                sixty_four: false
            }
        );
        assert_eq!(acc.store_value(0xdead_beef_1234_5678), 0x1234_5678);
    }

    #[test]
    fn sign_extending_byte_load() {
        let iss = (1 << 24) | (1 << 21) | (5 << 16) | (1 << 15) | 0x07;
        let acc = DataAbort(iss).decode().unwrap();
        assert_eq!(acc.size, 1);
        assert_eq!(acc.load_value(0x80), 0xffff_ffff_ffff_ff80);
    }

    #[test]
    fn pair_access_is_refused() {
        assert_eq!(
            DataAbort(0x07 | (1 << 6)).decode(),
            Err(UndecodableAccess::NoSyndrome)
        );
        assert_eq!(
            DataAbort((1 << 24) | 0x10).decode(),
            Err(UndecodableAccess::NotTranslationOrPermission { dfsc: 0x10 })
        );
    }

    #[test]
    fn sgi1r_recognised() {
        // MSR ICC_SGI1R_EL1, x2
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (2 << 5) | (11 << 1);
        let esr = Esr((0x18 << 26) | (1 << 25) | iss);
        let s = esr.sysreg();
        assert!(s.is_icc_sgi1r());
        assert_eq!(s.rt, 2);
        assert!(!s.read);
    }
}
