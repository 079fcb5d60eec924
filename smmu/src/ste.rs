//! Stream table entries (Arm IHI 0070, 5.2): 64 bytes per stream ID.
//!
//! Cellblock uses two kinds: *abort* (V = 1, Config = 0b000: every
//! transaction of the stream is terminated, no event recorded) and
//! *stage-2 only* (Config = 0b110: stage 1 bypassed, stage 2 translated by
//! the owner cell's tables under its VMID, faults recorded).

use aarch64_cpu::registers::VTCR_EL2;
use tock_registers::{register_bitfields, LocalRegisterCopy};

register_bitfields! {u64,
    /// STE word 0.
    pub STE0 [
        V OFFSET(0) NUMBITS(1) [],
        CONFIG OFFSET(1) NUMBITS(3) [
            Abort = 0b000,
            Bypass = 0b100,
            Stage1 = 0b101,
            Stage2 = 0b110,
            Nested = 0b111
        ],
        S1FMT OFFSET(4) NUMBITS(2) [],
        S1CONTEXTPTR OFFSET(6) NUMBITS(46) [],
        S1CDMAX OFFSET(59) NUMBITS(5) []
    ],
    /// STE word 1.
    pub STE1 [
        S1DSS OFFSET(0) NUMBITS(2) [],
        EATS OFFSET(28) NUMBITS(2) [],
        STRW OFFSET(30) NUMBITS(2) [],
        SHCFG OFFSET(44) NUMBITS(2) [NonShareable = 0, Incoming = 1, Outer = 2, Inner = 3]
    ],
    /// STE word 2: the stage-2 configuration. Bits [50:32] hold the same
    /// fields, in the same order, as VTCR_EL2[18:0].
    pub STE2 [
        S2VMID OFFSET(0) NUMBITS(16) [],
        S2T0SZ OFFSET(32) NUMBITS(6) [],
        S2SL0 OFFSET(38) NUMBITS(2) [],
        S2IR0 OFFSET(40) NUMBITS(2) [],
        S2OR0 OFFSET(42) NUMBITS(2) [],
        S2SH0 OFFSET(44) NUMBITS(2) [],
        S2TG OFFSET(46) NUMBITS(2) [Granule4K = 0, Granule64K = 1, Granule16K = 2],
        S2PS OFFSET(48) NUMBITS(3) [],
        S2AA64 OFFSET(51) NUMBITS(1) [],
        S2ENDI OFFSET(52) NUMBITS(1) [],
        S2AFFD OFFSET(53) NUMBITS(1) [],
        S2PTW OFFSET(54) NUMBITS(1) [],
        S2HD OFFSET(55) NUMBITS(1) [],
        S2HA OFFSET(56) NUMBITS(1) [],
        S2S OFFSET(57) NUMBITS(1) [],
        S2R OFFSET(58) NUMBITS(1) []
    ],
    /// STE word 3.
    pub STE3 [
        S2TTB OFFSET(4) NUMBITS(48) []
    ]
}

/// What a cell's stage 2 looks like to the SMMU: the same tables, VMID and
/// VTCR_EL2 value the CPUs use for that cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S2Config {
    /// Physical address of the stage-2 root table (VTTBR_EL2.BADDR).
    pub root_pa: u64,
    /// The cell's VMID.
    pub vmid: u16,
    /// The VTCR_EL2 value the CPUs use for the cell. T0SZ, SL0, IRGN0,
    /// ORGN0, SH0, TG0 and PS are taken from it.
    pub vtcr: u64,
}

/// One stream table entry, as the SMMU reads it from memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Ste(pub [u64; 8]);

impl Ste {
    /// Size of an entry in the stream table.
    pub const SIZE: usize = 64;

    /// Terminates every transaction of the stream, records no event.
    pub fn abort() -> Self {
        let mut words = [0; 8];
        words[0] = (STE0::V::SET + STE0::CONFIG::Abort).value;
        Self(words)
    }

    /// Stage 1 bypassed, stage 2 through `cfg`'s tables. `ps` is the output
    /// size field (VTCR_EL2.PS encoding) the SMMU is given, which the driver
    /// clamps to what the SMMU supports.
    pub fn stage2(cfg: &S2Config, ps: u64) -> Self {
        let vtcr = LocalRegisterCopy::<u64, VTCR_EL2::Register>::new(cfg.vtcr);
        let mut words = [0; 8];
        words[0] = (STE0::V::SET + STE0::CONFIG::Stage2).value;
        words[1] = STE1::SHCFG::Incoming.value;
        words[2] = (STE2::S2VMID.val(u64::from(cfg.vmid))
            + STE2::S2T0SZ.val(vtcr.read(VTCR_EL2::T0SZ))
            + STE2::S2SL0.val(vtcr.read(VTCR_EL2::SL0))
            + STE2::S2IR0.val(vtcr.read(VTCR_EL2::IRGN0))
            + STE2::S2OR0.val(vtcr.read(VTCR_EL2::ORGN0))
            + STE2::S2SH0.val(vtcr.read(VTCR_EL2::SH0))
            + STE2::S2TG.val(vtcr.read(VTCR_EL2::TG0))
            + STE2::S2PS.val(ps)
            + STE2::S2AA64::SET
            + STE2::S2R::SET)
            .value;
        words[3] = STE3::S2TTB.val(cfg.root_pa >> 4).value;
        Self(words)
    }

    /// V = 1 and Config says stage-2 translation.
    pub fn is_stage2(&self) -> bool {
        let w0 = LocalRegisterCopy::<u64, STE0::Register>::new(self.0[0]);
        w0.is_set(STE0::V) && w0.matches_all(STE0::CONFIG::Stage2)
    }

    /// V = 1 and Config = abort.
    pub fn is_abort(&self) -> bool {
        let w0 = LocalRegisterCopy::<u64, STE0::Register>::new(self.0[0]);
        w0.is_set(STE0::V) && w0.matches_all(STE0::CONFIG::Abort)
    }

    /// The VMID of a stage-2 entry.
    pub fn vmid(&self) -> Option<u16> {
        self.is_stage2()
            .then(|| STE2::S2VMID.read(self.0[2]) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VTCR_EL2 as arch-aarch64's `stage2::vtcr(pa_range)` builds it for a
    /// CPU with a 44-bit PA range (PARange = 4): T0SZ = 25 (39-bit IPA),
    /// SL0 = 1 (level-1 root), IRGN0 = ORGN0 = 1 (WB-WA), SH0 = 3 (inner
    /// shareable), TG0 = 0 (4 KiB), PS = 4, RES1 bit 31.
    const VTCR_44: u64 = (1 << 31) | (4 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 25;

    #[test]
    fn layout() {
        assert_eq!(core::mem::size_of::<Ste>(), 64);
        assert_eq!(core::mem::align_of::<Ste>(), 64);
    }

    #[test]
    fn abort_entry() {
        let ste = Ste::abort();
        // V (bit 0) = 1, Config (bits 3:1) = 0b000, nothing else.
        assert_eq!(ste.0, [0x1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(ste.is_abort());
        assert!(!ste.is_stage2());
        assert_eq!(ste.vmid(), None);
    }

    #[test]
    fn stage2_entry_bit_by_bit() {
        let cfg = S2Config {
            root_pa: 0x4012_3000,
            vmid: 2,
            vtcr: VTCR_44,
        };
        let ste = Ste::stage2(&cfg, 4);
        // Word 0: V = 1, Config = 0b110 in bits 3:1 -> 0b1101.
        assert_eq!(ste.0[0], 0xd);
        // Word 1: SHCFG (bits 45:44) = 0b01, use incoming shareability.
        assert_eq!(ste.0[1], 0x0000_1000_0000_0000);
        // Word 2: S2VMID = 2 (15:0); S2T0SZ = 25 (37:32); S2SL0 = 1 (39:38);
        // S2IR0 = 1 (41:40); S2OR0 = 1 (43:42); S2SH0 = 3 (45:44);
        // S2TG = 0 (47:46); S2PS = 4 (50:48); S2AA64 (51); S2R (58).
        let expected = 2
            | (25 << 32)
            | (1 << 38)
            | (1 << 40)
            | (1 << 42)
            | (3 << 44)
            | (4 << 48)
            | (1 << 51)
            | (1 << 58);
        assert_eq!(expected, 0x040c_3559_0000_0002);
        assert_eq!(ste.0[2], expected);
        // Word 3: S2TTB (51:4) = the root's address, in place.
        assert_eq!(ste.0[3], 0x4012_3000);
        assert_eq!(&ste.0[4..], &[0; 4]);
        assert!(ste.is_stage2());
        assert_eq!(ste.vmid(), Some(2));
    }

    #[test]
    fn stage2_takes_the_vtcr_fields_as_they_are() {
        // VTCR_EL2[18:0] and STE word 2 [50:32] share one layout.
        let vtcr = VTCR_44;
        let ste = Ste::stage2(
            &S2Config {
                root_pa: 0,
                vmid: 0xffff,
                vtcr,
            },
            4,
        );
        assert_eq!((ste.0[2] >> 32) & 0x7_ffff, vtcr & 0x7_ffff);
        assert_eq!(ste.0[2] & 0xffff, 0xffff);
        // The PS passed in wins over VTCR_EL2.PS.
        let clamped = Ste::stage2(
            &S2Config {
                root_pa: 0,
                vmid: 1,
                vtcr: VTCR_44 | (5 << 16),
            },
            2,
        );
        assert_eq!((clamped.0[2] >> 48) & 7, 2);
        // VTCR_EL2 bits above PS (VS, HA, HD, RES1) do not leak into the STE.
        assert_eq!(clamped.0[2] & (0x7f << 52), 1 << 58);
    }
}
