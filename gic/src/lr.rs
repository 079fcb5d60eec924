//! List-register contents and their GICv3 (`ICH_LR<n>_EL2`) and GICv2
//! (`GICH_LR<n>`) encodings.

use tock_registers::LocalRegisterCopy;

use crate::regs::{GICH_LR, ICH_LR};
use crate::GicVersion;

/// State of a virtual interrupt in a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    Invalid,
    Pending,
    Active,
    PendingActive,
}

impl LrState {
    const fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }

    const fn bits(self) -> u64 {
        match self {
            LrState::Invalid => 0,
            LrState::Pending => 1,
            LrState::Active => 2,
            LrState::PendingActive => 3,
        }
    }

    /// Pending or pending-and-active.
    pub const fn is_pending(self) -> bool {
        matches!(self, LrState::Pending | LrState::PendingActive)
    }
}

/// One list register's worth of virtual interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lr {
    /// Virtual INTID the cell sees.
    pub vintid: u32,
    /// `Some(p)`: a hardware interrupt (HW=1); the cell's deactivation of
    /// `vintid` deactivates physical INTID `p`.
    pub pintid: Option<u32>,
    /// Priority (GICv2 keeps the top 5 bits).
    pub priority: u8,
    pub state: LrState,
    /// Group 1 (what Linux and the demos use) rather than Group 0.
    pub group1: bool,
}

impl Lr {
    /// A pending Group 1 interrupt (GICv3 guests; see [`Lr::pending_for`]).
    pub const fn pending(vintid: u32, pintid: Option<u32>, priority: u8) -> Self {
        Self {
            vintid,
            pintid,
            priority,
            state: LrState::Pending,
            group1: true,
        }
    }

    /// A pending interrupt in the group a guest of GIC version `ver`
    /// enables: Group 1 on GICv3 (ICC_IGRPEN1_EL1), Group 0 on GICv2 (a
    /// guest's GICC_CTLR bit 0 enables virtual Group 0 only).
    pub const fn pending_for(
        ver: GicVersion,
        vintid: u32,
        pintid: Option<u32>,
        priority: u8,
    ) -> Self {
        Self {
            vintid,
            pintid,
            priority,
            state: LrState::Pending,
            group1: matches!(ver, GicVersion::V3),
        }
    }

    /// An empty list register.
    pub const INVALID: Lr = Lr {
        vintid: 0,
        pintid: None,
        priority: 0,
        state: LrState::Invalid,
        group1: false,
    };

    /// `ICH_LR<n>_EL2` value: vINTID \[31:0\], pINTID \[44:32\], Priority
    /// \[55:48\], Group \[60\], HW \[61\], State \[63:62\].
    pub fn to_v3(&self) -> u64 {
        let mut v = ICH_LR::vINTID.val(u64::from(self.vintid))
            + ICH_LR::Priority.val(u64::from(self.priority))
            + ICH_LR::Group.val(u64::from(self.group1))
            + ICH_LR::State.val(self.state.bits());
        if let Some(p) = self.pintid {
            v += ICH_LR::HW::SET + ICH_LR::pINTID.val(u64::from(p));
        }
        v.value
    }

    /// Decodes an `ICH_LR<n>_EL2` value.
    pub fn from_v3(raw: u64) -> Self {
        let r = LocalRegisterCopy::<u64, ICH_LR::Register>::new(raw);
        Self {
            vintid: r.read(ICH_LR::vINTID) as u32,
            pintid: r.is_set(ICH_LR::HW).then(|| r.read(ICH_LR::pINTID) as u32),
            priority: r.read(ICH_LR::Priority) as u8,
            state: LrState::from_bits(r.read(ICH_LR::State)),
            group1: r.is_set(ICH_LR::Group),
        }
    }

    /// `GICH_LR<n>` value: VirtualID \[9:0\], PhysicalID \[19:10\], Priority
    /// \[27:23\] (top 5 bits), State \[29:28\], Grp1 \[30\], HW \[31\]. INTIDs are
    /// truncated to 10 bits (GICv2 has no more).
    pub fn to_v2(&self) -> u32 {
        let mut v = GICH_LR::VirtualID.val(self.vintid)
            + GICH_LR::Priority.val(u32::from(self.priority >> 3))
            + GICH_LR::Grp1.val(u32::from(self.group1))
            + GICH_LR::State.val(self.state.bits() as u32);
        if let Some(p) = self.pintid {
            v += GICH_LR::HW::SET + GICH_LR::PhysicalID.val(p);
        }
        v.value
    }

    /// Decodes a `GICH_LR<n>` value.
    pub fn from_v2(raw: u32) -> Self {
        let r = LocalRegisterCopy::<u32, GICH_LR::Register>::new(raw);
        Self {
            vintid: r.read(GICH_LR::VirtualID),
            pintid: r.is_set(GICH_LR::HW).then(|| r.read(GICH_LR::PhysicalID)),
            priority: (r.read(GICH_LR::Priority) << 3) as u8,
            state: LrState::from_bits(u64::from(r.read(GICH_LR::State))),
            group1: r.is_set(GICH_LR::Grp1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> [Lr; 4] {
        [
            Lr::pending(27, Some(27), 0xa0),
            Lr {
                vintid: 3,
                pintid: None,
                priority: 0x80,
                state: LrState::PendingActive,
                group1: true,
            },
            Lr {
                vintid: 1019,
                pintid: Some(1019),
                priority: 0xf8,
                state: LrState::Active,
                group1: false,
            },
            Lr::INVALID,
        ]
    }

    #[test]
    fn v3_round_trip() {
        for lr in samples() {
            assert_eq!(Lr::from_v3(lr.to_v3()), lr);
        }
    }

    #[test]
    fn v3_encoding_bits() {
        let raw = Lr::pending(40, Some(72), 0xa0).to_v3();
        assert_eq!(
            raw,
            (1 << 62) | (1 << 61) | (1 << 60) | (0xa0 << 48) | (72 << 32) | 40
        );
        // A software interrupt leaves HW and pINTID clear.
        let raw = Lr::pending(5, None, 0).to_v3();
        assert_eq!(raw, (1 << 62) | (1 << 60) | 5);
    }

    #[test]
    fn v2_round_trip() {
        for lr in samples() {
            assert_eq!(Lr::from_v2(lr.to_v2()), lr);
        }
    }

    #[test]
    fn v2_encoding_bits() {
        let raw = Lr::pending(40, Some(72), 0xa0).to_v2();
        assert_eq!(
            raw,
            (1 << 31) | (1 << 30) | (1 << 28) | ((0xa0 >> 3) << 23) | (72 << 10) | 40
        );
        // Low priority bits do not fit.
        assert_eq!(
            Lr::from_v2(Lr::pending(1, None, 0xa7).to_v2()).priority,
            0xa0
        );
    }
}
