//! Register offsets and field layouts.
//!
//! Offsets of the distributor, redistributor and GICv2 CPU interface come
//! from `arm-gic`'s `#[repr(C)]` register blocks (`offset_of!`), so they are
//! defined once, by a crate that drives real hardware; the tests below pin
//! the values this crate relies on. Register fields are `tock-registers`
//! bitfields; the ICH_LR layout is `aarch64-cpu`'s.

use core::mem::offset_of;

use arm_gic::gicv2::registers::{Gicc as V2Gicc, Gicd as V2Gicd};
use arm_gic::gicv3::registers::{Gicd as V3Gicd, Gicr, GicrSgi};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

/// `offset_of!` as a `u64`, for comparing with trapped MMIO offsets.
macro_rules! off {
    ($t:ty, $($f:tt)+) => {
        offset_of!($t, $($f)+) as u64
    };
}

/// GICD offsets (the parts that GICv2 and GICv3 share are at the same place).
pub mod gicd {
    use super::*;

    pub const CTLR: u64 = off!(V3Gicd, ctlr);
    pub const TYPER: u64 = off!(V3Gicd, typer);
    pub const IIDR: u64 = off!(V3Gicd, iidr);
    /// GICv3 only.
    pub const TYPER2: u64 = off!(V3Gicd, typer2);
    pub const IGROUPR: u64 = off!(V3Gicd, igroupr);
    pub const ISENABLER: u64 = off!(V3Gicd, isenabler);
    pub const ICENABLER: u64 = off!(V3Gicd, icenabler);
    pub const ISPENDR: u64 = off!(V3Gicd, ispendr);
    pub const ICPENDR: u64 = off!(V3Gicd, icpendr);
    pub const ISACTIVER: u64 = off!(V3Gicd, isactiver);
    pub const ICACTIVER: u64 = off!(V3Gicd, icactiver);
    pub const IPRIORITYR: u64 = off!(V3Gicd, ipriorityr);
    /// GICv2 only (RES0 on GICv3 with affinity routing).
    pub const ITARGETSR: u64 = off!(V2Gicd, itargetsr);
    pub const ICFGR: u64 = off!(V3Gicd, icfgr);
    /// GICv3 only.
    pub const IGRPMODR: u64 = off!(V3Gicd, igrpmodr);
    /// GICv2 only.
    pub const SGIR: u64 = off!(V2Gicd, sgir);
    /// GICv3: `GICD_IROUTER<n>` is at `IROUTER_BASE + 8 * n`, n = 32..1019;
    /// `arm-gic`'s array starts at n = 32.
    pub const IROUTER_BASE: u64 = off!(V3Gicd, irouter) - 8 * 32;
    /// GICv3 identification registers (PIDR4..CIDR3).
    pub const V3_ID: u64 = off!(V3Gicd, id_registers0);
    /// GICv2 identification registers: `arm-gic`'s GICv2 block stops at
    /// GICD_SGIR, so this one is the architectural value.
    pub const V2_ID: u64 = 0xfd0;
    /// End of the identification registers (both versions: the frame's
    /// last 0x30 bytes).
    pub const ID_LEN: u64 = 0x30;
}

/// GICR offsets within one frame pair (RD_base, then SGI_base).
pub mod gicr {
    use super::*;

    pub const CTLR: u64 = off!(GicrSgi, gicr.ctlr);
    pub const IIDR: u64 = off!(GicrSgi, gicr.iidr);
    pub const TYPER: u64 = off!(GicrSgi, gicr.typer);
    pub const WAKER: u64 = off!(GicrSgi, gicr.waker);
    pub const PROPBASER: u64 = off!(GicrSgi, gicr.propbaser);
    pub const PENDBASER: u64 = off!(GicrSgi, gicr.pendbaser);
    pub const ID: u64 = off!(GicrSgi, gicr.id_registers0);
    /// Size of RD_base (= offset of SGI_base).
    pub const RD_SIZE: u64 = core::mem::size_of::<Gicr>() as u64;
    /// Size of a frame pair (the redistributor stride without VLPI frames).
    pub const FRAME_SIZE: u64 = core::mem::size_of::<GicrSgi>() as u64;
    pub const IGROUPR0: u64 = off!(GicrSgi, sgi.igroupr);
    pub const ISENABLER0: u64 = off!(GicrSgi, sgi.isenabler);
    pub const ICENABLER0: u64 = off!(GicrSgi, sgi.icenabler);
    pub const ISPENDR0: u64 = off!(GicrSgi, sgi.ispendr);
    pub const ICPENDR0: u64 = off!(GicrSgi, sgi.icpendr);
    pub const ISACTIVER0: u64 = off!(GicrSgi, sgi.isactiver);
    pub const ICACTIVER0: u64 = off!(GicrSgi, sgi.icactiver);
    pub const IPRIORITYR: u64 = off!(GicrSgi, sgi.ipriorityr);
    pub const ICFGR0: u64 = off!(GicrSgi, sgi.icfgr);
    pub const IGRPMODR0: u64 = off!(GicrSgi, sgi.igrpmodr);
}

/// GICv2 CPU interface (GICC) offsets.
pub mod gicc {
    use super::*;

    pub const CTLR: u64 = off!(V2Gicc, ctlr);
    pub const PMR: u64 = off!(V2Gicc, pmr);
    pub const BPR: u64 = off!(V2Gicc, bpr);
    pub const IAR: u64 = off!(V2Gicc, iar);
    pub const EOIR: u64 = off!(V2Gicc, eoir);
    pub const DIR: u64 = off!(V2Gicc, dir);
}

register_bitfields! {u32,
    /// GICv2 GICD_CTLR (bit 0 enables the group of the accessing security
    /// state: Group 0 without Security Extensions, Group 1 from Non-secure).
    pub GICD_CTLR_V2 [
        Enable OFFSET(0) NUMBITS(1) [],
    ],
    /// GICv3 GICD_CTLR as a Non-secure (or only) security state sees it
    /// (`arm-gic`'s flags are the Secure view, with ARE_NS at bit 5).
    pub GICD_CTLR_V3 [
        EnableGrp1 OFFSET(0) NUMBITS(1) [],
        EnableGrp1A OFFSET(1) NUMBITS(1) [],
        ARE OFFSET(4) NUMBITS(1) [],
        RWP OFFSET(31) NUMBITS(1) [],
    ],
    /// GICv2 GICC_CTLR as seen by the only or the Non-secure security
    /// state: the bit positions of "enable my group" and "split EOI for my
    /// group" coincide in both views.
    pub GICC_CTLR [
        Enable OFFSET(0) NUMBITS(1) [],
        EOImode OFFSET(9) NUMBITS(1) [],
    ],
    /// GICv2 GICD_TYPER.
    pub GICD_TYPER [
        ITLinesNumber OFFSET(0) NUMBITS(5) [],
        SecurityExtn OFFSET(10) NUMBITS(1) [],
    ],
    /// GICv2 GICD_SGIR.
    pub GICD_SGIR [
        SGIINTID OFFSET(0) NUMBITS(4) [],
        NSATT OFFSET(15) NUMBITS(1) [],
        CPUTargetList OFFSET(16) NUMBITS(8) [],
        TargetListFilter OFFSET(24) NUMBITS(2) [
            List = 0,
            AllButSelf = 1,
            SelfOnly = 2,
        ],
    ],
    /// GICv2 `GICH_LR<n>`.
    pub GICH_LR [
        VirtualID OFFSET(0) NUMBITS(10) [],
        PhysicalID OFFSET(10) NUMBITS(10) [],
        Priority OFFSET(23) NUMBITS(5) [],
        State OFFSET(28) NUMBITS(2) [
            Invalid = 0,
            Pending = 1,
            Active = 2,
            PendingActive = 3,
        ],
        Grp1 OFFSET(30) NUMBITS(1) [],
        HW OFFSET(31) NUMBITS(1) [],
    ],
    /// GICv2 GICH_HCR.
    pub GICH_HCR [
        En OFFSET(0) NUMBITS(1) [],
        UIE OFFSET(1) NUMBITS(1) [],
    ],
    /// GICv2 GICH_VTR.
    pub GICH_VTR [
        ListRegs OFFSET(0) NUMBITS(6) [],
    ],
    /// GICv2 GICH_VMCR.
    pub GICH_VMCR [
        VENG0 OFFSET(0) NUMBITS(1) [],
        VENG1 OFFSET(1) NUMBITS(1) [],
        VPMR OFFSET(27) NUMBITS(5) [],
    ],
    /// GICv3 GICD_TYPER: the LPI and message-based-SPI capabilities that
    /// cells do not get.
    pub GICD_TYPER_V3 [
        MBIS OFFSET(16) NUMBITS(1) [],
        LPIS OFFSET(17) NUMBITS(1) [],
        DVIS OFFSET(18) NUMBITS(1) [],
    ],
    /// GICv3 GICR_TYPER (low word): the LPI capabilities cells do not get.
    pub GICR_TYPER [
        PLPIS OFFSET(0) NUMBITS(1) [],
        DirectLPI OFFSET(3) NUMBITS(1) [],
        Last OFFSET(4) NUMBITS(1) [],
    ],
    /// GICv3 GICR_WAKER.
    pub GICR_WAKER [
        ProcessorSleep OFFSET(1) NUMBITS(1) [],
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
    ],
    /// GICv3 GICR_CTLR.
    pub GICR_CTLR [
        EnableLPIs OFFSET(0) NUMBITS(1) [],
    ]
}

register_bitfields! {u64,
    /// GICv3 `GICD_IROUTER<n>`.
    pub GICD_IROUTER [
        Aff0 OFFSET(0) NUMBITS(8) [],
        Aff1 OFFSET(8) NUMBITS(8) [],
        Aff2 OFFSET(16) NUMBITS(8) [],
        InterruptRoutingMode OFFSET(31) NUMBITS(1) [],
        Aff3 OFFSET(32) NUMBITS(8) [],
    ],
    /// ICC_SGI1R_EL1.
    pub ICC_SGI1R [
        TargetList OFFSET(0) NUMBITS(16) [],
        Aff1 OFFSET(16) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        Aff2 OFFSET(32) NUMBITS(8) [],
        IRM OFFSET(40) NUMBITS(1) [],
        RS OFFSET(44) NUMBITS(4) [],
        Aff3 OFFSET(48) NUMBITS(8) [],
    ],
    /// MPIDR_EL1 affinity fields.
    pub MPIDR [
        Aff0 OFFSET(0) NUMBITS(8) [],
        Aff1 OFFSET(8) NUMBITS(8) [],
        Aff2 OFFSET(16) NUMBITS(8) [],
        Aff3 OFFSET(32) NUMBITS(8) [],
    ],
    /// ICC_CTLR_EL1 (aarch64-cpu's definition is read-only and lacks EOImode).
    pub ICC_CTLR [
        EOImode OFFSET(1) NUMBITS(1) [],
    ],
    /// ICH_VMCR_EL2.
    pub ICH_VMCR [
        VENG0 OFFSET(0) NUMBITS(1) [],
        VENG1 OFFSET(1) NUMBITS(1) [],
        VPMR OFFSET(24) NUMBITS(8) [],
    ]
}

/// `ICH_LR<n>_EL2` fields (`aarch64-cpu` defines them once, for every n).
pub use aarch64_cpu::registers::ICH_LR0_EL2 as ICH_LR;

register_structs! {
    /// GICv2 virtual interface control block (GICH).
    pub GichRegs {
        (0x000 => pub hcr: ReadWrite<u32, GICH_HCR::Register>),
        (0x004 => pub vtr: ReadOnly<u32, GICH_VTR::Register>),
        (0x008 => pub vmcr: ReadWrite<u32, GICH_VMCR::Register>),
        (0x00c => _reserved0),
        (0x010 => pub misr: ReadOnly<u32>),
        (0x014 => _reserved1),
        (0x020 => pub eisr: [ReadOnly<u32>; 2]),
        (0x028 => _reserved2),
        (0x030 => pub elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved3),
        (0x0f0 => pub apr: ReadWrite<u32>),
        (0x0f4 => _reserved4),
        (0x100 => pub lr: [ReadWrite<u32, GICH_LR::Register>; 64]),
        (0x200 => @END),
    }
}

/// GICH offsets.
pub mod gich {
    use super::*;

    pub const HCR: u64 = off!(GichRegs, hcr);
    pub const VTR: u64 = off!(GichRegs, vtr);
    pub const VMCR: u64 = off!(GichRegs, vmcr);
    pub const LR: u64 = off!(GichRegs, lr);
}

/// The bits of field `f` in its register.
pub const fn field_bits32<R: tock_registers::RegisterLongName>(
    f: tock_registers::fields::Field<u32, R>,
) -> u32 {
    f.mask << f.shift
}

/// Mask of the affinity fields of an MPIDR (Aff3, Aff2, Aff1, Aff0) and of
/// the same fields in GICD_IROUTER.
pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gicd_offsets_match_the_architecture() {
        assert_eq!(gicd::CTLR, 0x0);
        assert_eq!(gicd::TYPER, 0x4);
        assert_eq!(gicd::IIDR, 0x8);
        assert_eq!(gicd::TYPER2, 0xc);
        assert_eq!(gicd::IGROUPR, 0x80);
        assert_eq!(gicd::ISENABLER, 0x100);
        assert_eq!(gicd::ICENABLER, 0x180);
        assert_eq!(gicd::ISPENDR, 0x200);
        assert_eq!(gicd::ICPENDR, 0x280);
        assert_eq!(gicd::ISACTIVER, 0x300);
        assert_eq!(gicd::ICACTIVER, 0x380);
        assert_eq!(gicd::IPRIORITYR, 0x400);
        assert_eq!(gicd::ITARGETSR, 0x800);
        assert_eq!(gicd::ICFGR, 0xc00);
        assert_eq!(gicd::IGRPMODR, 0xd00);
        assert_eq!(gicd::SGIR, 0xf00);
        assert_eq!(gicd::IROUTER_BASE, 0x6000);
        assert_eq!(gicd::V3_ID, 0xffd0);
        // The GICv2 block agrees with the GICv3 one where they overlap.
        assert_eq!(off!(V2Gicd, isenabler), gicd::ISENABLER);
        assert_eq!(off!(V2Gicd, ipriorityr), gicd::IPRIORITYR);
        assert_eq!(off!(V2Gicd, icfgr), gicd::ICFGR);
    }

    #[test]
    fn gicr_offsets_match_the_architecture() {
        assert_eq!(gicr::CTLR, 0x0);
        assert_eq!(gicr::IIDR, 0x4);
        assert_eq!(gicr::TYPER, 0x8);
        assert_eq!(gicr::WAKER, 0x14);
        assert_eq!(gicr::PROPBASER, 0x70);
        assert_eq!(gicr::PENDBASER, 0x78);
        assert_eq!(gicr::ID, 0xffd0);
        assert_eq!(gicr::RD_SIZE, 0x1_0000);
        assert_eq!(gicr::FRAME_SIZE, 0x2_0000);
        assert_eq!(gicr::IGROUPR0, 0x1_0080);
        assert_eq!(gicr::ISENABLER0, 0x1_0100);
        assert_eq!(gicr::ICENABLER0, 0x1_0180);
        assert_eq!(gicr::ISPENDR0, 0x1_0200);
        assert_eq!(gicr::ICPENDR0, 0x1_0280);
        assert_eq!(gicr::ISACTIVER0, 0x1_0300);
        assert_eq!(gicr::ICACTIVER0, 0x1_0380);
        assert_eq!(gicr::IPRIORITYR, 0x1_0400);
        assert_eq!(gicr::ICFGR0, 0x1_0c00);
        assert_eq!(gicr::IGRPMODR0, 0x1_0d00);
    }

    #[test]
    fn gicc_offsets_match_the_architecture() {
        assert_eq!(gicc::CTLR, 0x0);
        assert_eq!(gicc::PMR, 0x4);
        assert_eq!(gicc::BPR, 0x8);
        assert_eq!(gicc::IAR, 0xc);
        assert_eq!(gicc::EOIR, 0x10);
        assert_eq!(gicc::DIR, 0x1000);
    }

    #[test]
    fn gich_block_layout() {
        assert_eq!(core::mem::size_of::<GichRegs>(), 0x200);
        assert_eq!(gich::HCR, 0x0);
        assert_eq!(gich::VTR, 0x4);
        assert_eq!(gich::VMCR, 0x8);
        assert_eq!(gich::LR, 0x100);
    }
}
