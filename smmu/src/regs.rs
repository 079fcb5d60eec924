//! SMMUv3 programming interface: register offsets, their fields, and the
//! [`SmmuRegs`] trait through which the driver reaches them.
//!
//! Offsets and fields follow the SMMUv3 architecture specification
//! (Arm IHI 0070), chapter 6. Register page 0 starts at the SMMU's base;
//! page 1 (the event and PRI queue pointers) at base + 64 KiB.

use core::ptr::{read_volatile, write_volatile};

use tock_registers::register_bitfields;

/// A 32-bit register the driver uses (value = byte offset from the base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Reg32 {
    Idr0 = 0x0000,
    Idr1 = 0x0004,
    Idr5 = 0x0014,
    Cr0 = 0x0020,
    Cr0Ack = 0x0024,
    Cr1 = 0x0028,
    Cr2 = 0x002c,
    Gbpa = 0x0044,
    IrqCtrl = 0x0050,
    IrqCtrlAck = 0x0054,
    GError = 0x0060,
    GErrorN = 0x0064,
    StrtabBaseCfg = 0x0088,
    CmdqProd = 0x0098,
    CmdqCons = 0x009c,
    /// Page 1.
    EvtqProd = 0x1_00a8,
    /// Page 1.
    EvtqCons = 0x1_00ac,
}

/// A 64-bit register the driver uses (value = byte offset from the base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Reg64 {
    /// MSI address of the global error interrupt (0: wired interrupt).
    GErrorIrqCfg0 = 0x0068,
    StrtabBase = 0x0080,
    CmdqBase = 0x0090,
    EvtqBase = 0x00a0,
    /// MSI address of the event queue interrupt (0: wired interrupt).
    EvtqIrqCfg0 = 0x00b0,
}

impl Reg32 {
    /// Byte offset from the SMMU's base.
    pub const fn offset(self) -> usize {
        self as usize
    }
}

impl Reg64 {
    /// Byte offset from the SMMU's base.
    pub const fn offset(self) -> usize {
        self as usize
    }
}

/// Size of the register window the driver touches: pages 0 and 1.
pub const WINDOW_SIZE: usize = 0x2_0000;

/// Access to an SMMU's registers.
///
/// Implementations must make every memory write the CPU did before a
/// register write visible to the SMMU before that register write takes
/// effect (the driver writes stream table entries and commands to memory,
/// then tells the SMMU through a register), and must complete a register
/// read before later memory reads (the driver reads event records after
/// reading the producer index). [`Mmio`] does both with barriers.
pub trait SmmuRegs {
    fn read32(&mut self, reg: Reg32) -> u32;
    fn write32(&mut self, reg: Reg32, value: u32);
    fn write64(&mut self, reg: Reg64, value: u64);
}

/// The SMMU's register pages, reached with volatile loads and stores.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// Registers at `base` (page 0; page 1 follows at `base + 0x10000`).
    ///
    /// # Safety
    ///
    /// `[base, base + WINDOW_SIZE)` is an SMMUv3's register window, mapped as
    /// device memory in the current translation regime, `base` 64 KiB
    /// aligned, and nothing else treats that memory as Rust objects.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    /// The base address given to [`Mmio::new`].
    pub const fn base(&self) -> usize {
        self.base
    }
}

/// Orders all earlier memory accesses before what follows.
#[inline]
fn barrier_full() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a data synchronization barrier touches no memory and no
    // register the compiler allocates.
    unsafe {
        core::arch::asm!("dsb sy", options(nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Orders an earlier load before later memory accesses.
#[inline]
fn barrier_load() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as in `barrier_full`.
    unsafe {
        core::arch::asm!("dsb ld", options(nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
}

impl SmmuRegs for Mmio {
    fn read32(&mut self, reg: Reg32) -> u32 {
        // SAFETY: `new`'s contract: the offset lies in the register window
        // and is 4-byte aligned (every `Reg32` offset is).
        let value = unsafe { read_volatile((self.base + reg.offset()) as *const u32) };
        barrier_load();
        value
    }

    fn write32(&mut self, reg: Reg32, value: u32) {
        barrier_full();
        // SAFETY: as in `read32`.
        unsafe { write_volatile((self.base + reg.offset()) as *mut u32, value) }
    }

    fn write64(&mut self, reg: Reg64, value: u64) {
        barrier_full();
        // SAFETY: `new`'s contract; every `Reg64` offset is 8-byte aligned
        // and the SMMU accepts 64-bit accesses to its 64-bit registers.
        unsafe { write_volatile((self.base + reg.offset()) as *mut u64, value) }
    }
}

register_bitfields! {u32,
    /// SMMU_IDR0: features.
    pub IDR0 [
        S2P OFFSET(0) NUMBITS(1) [],
        S1P OFFSET(1) NUMBITS(1) [],
        TTF OFFSET(2) NUMBITS(2) [AArch32 = 1, AArch64 = 2, Both = 3],
        COHACC OFFSET(4) NUMBITS(1) [],
        BTM OFFSET(5) NUMBITS(1) [],
        HYP OFFSET(9) NUMBITS(1) [],
        ATS OFFSET(10) NUMBITS(1) [],
        MSI OFFSET(13) NUMBITS(1) [],
        VMID16 OFFSET(18) NUMBITS(1) [],
        TTENDIAN OFFSET(21) NUMBITS(2) [Mixed = 0, Little = 2, Big = 3],
        STALL_MODEL OFFSET(24) NUMBITS(2) [StallAndTerminate = 0, TerminateOnly = 1, StallForced = 2],
        TERM_MODEL OFFSET(26) NUMBITS(1) [],
        ST_LEVEL OFFSET(27) NUMBITS(2) [Linear = 0, TwoLevel = 1]
    ],
    /// SMMU_IDR1: table and queue sizes.
    pub IDR1 [
        SIDSIZE OFFSET(0) NUMBITS(6) [],
        SSIDSIZE OFFSET(6) NUMBITS(5) [],
        PRIQS OFFSET(11) NUMBITS(5) [],
        EVENTQS OFFSET(16) NUMBITS(5) [],
        CMDQS OFFSET(21) NUMBITS(5) [],
        REL OFFSET(28) NUMBITS(1) [],
        QUEUES_PRESET OFFSET(29) NUMBITS(1) [],
        TABLES_PRESET OFFSET(30) NUMBITS(1) []
    ],
    /// SMMU_IDR5: granules and output address size.
    pub IDR5 [
        OAS OFFSET(0) NUMBITS(3) [],
        GRAN4K OFFSET(4) NUMBITS(1) [],
        GRAN16K OFFSET(5) NUMBITS(1) [],
        GRAN64K OFFSET(6) NUMBITS(1) [],
        VAX OFFSET(10) NUMBITS(2) []
    ],
    /// SMMU_CR0 and SMMU_CR0ACK.
    pub CR0 [
        SMMUEN OFFSET(0) NUMBITS(1) [],
        PRIQEN OFFSET(1) NUMBITS(1) [],
        EVENTQEN OFFSET(2) NUMBITS(1) [],
        CMDQEN OFFSET(3) NUMBITS(1) [],
        ATSCHK OFFSET(4) NUMBITS(1) [],
        VMW OFFSET(6) NUMBITS(3) []
    ],
    /// SMMU_CR1: memory attributes of table and queue accesses.
    pub CR1 [
        QUEUE_IC OFFSET(0) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
        QUEUE_OC OFFSET(2) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
        QUEUE_SH OFFSET(4) NUMBITS(2) [NonShareable = 0, Outer = 2, Inner = 3],
        TABLE_IC OFFSET(6) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
        TABLE_OC OFFSET(8) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
        TABLE_SH OFFSET(10) NUMBITS(2) [NonShareable = 0, Outer = 2, Inner = 3]
    ],
    /// SMMU_CR2.
    pub CR2 [
        E2H OFFSET(0) NUMBITS(1) [],
        RECINVSID OFFSET(1) NUMBITS(1) [],
        PTM OFFSET(2) NUMBITS(1) []
    ],
    /// SMMU_GBPA: what happens to transactions while SMMUEN = 0.
    pub GBPA [
        MEMATTR OFFSET(0) NUMBITS(4) [],
        MTCFG OFFSET(4) NUMBITS(1) [],
        ALLOCCFG OFFSET(8) NUMBITS(4) [],
        SHCFG OFFSET(12) NUMBITS(2) [],
        PRIVCFG OFFSET(16) NUMBITS(2) [],
        INSTCFG OFFSET(18) NUMBITS(2) [],
        ABORT OFFSET(20) NUMBITS(1) [],
        UPDATE OFFSET(31) NUMBITS(1) []
    ],
    /// SMMU_IRQ_CTRL and SMMU_IRQ_CTRLACK.
    pub IRQ_CTRL [
        GERROR_IRQEN OFFSET(0) NUMBITS(1) [],
        PRIQ_IRQEN OFFSET(1) NUMBITS(1) [],
        EVENTQ_IRQEN OFFSET(2) NUMBITS(1) []
    ],
    /// SMMU_GERROR and SMMU_GERRORN: an error is active while the two bits
    /// differ; software acknowledges by toggling its GERRORN bit.
    pub GERROR [
        CMDQ_ERR OFFSET(0) NUMBITS(1) [],
        EVENTQ_ABT_ERR OFFSET(2) NUMBITS(1) [],
        PRIQ_ABT_ERR OFFSET(3) NUMBITS(1) [],
        MSI_CMDQ_ABT_ERR OFFSET(4) NUMBITS(1) [],
        MSI_EVENTQ_ABT_ERR OFFSET(5) NUMBITS(1) [],
        MSI_PRIQ_ABT_ERR OFFSET(6) NUMBITS(1) [],
        MSI_GERROR_ABT_ERR OFFSET(7) NUMBITS(1) [],
        SFM_ERR OFFSET(8) NUMBITS(1) [],
        CMDQP_ERR OFFSET(9) NUMBITS(1) []
    ],
    /// SMMU_STRTAB_BASE_CFG.
    pub STRTAB_BASE_CFG [
        LOG2SIZE OFFSET(0) NUMBITS(6) [],
        SPLIT OFFSET(6) NUMBITS(5) [],
        FMT OFFSET(16) NUMBITS(2) [Linear = 0, TwoLevel = 1]
    ],
    /// SMMU_CMDQ_PROD (WR: index with the wrap bit at LOG2SIZE).
    pub CMDQ_PROD [
        WR OFFSET(0) NUMBITS(20) []
    ],
    /// SMMU_CMDQ_CONS.
    pub CMDQ_CONS [
        RD OFFSET(0) NUMBITS(20) [],
        ERR OFFSET(24) NUMBITS(7) [None = 0, Illegal = 1, Abort = 2, AtcInvSync = 3]
    ],
    /// SMMU_EVENTQ_PROD (page 1).
    pub EVTQ_PROD [
        WR OFFSET(0) NUMBITS(20) [],
        OVFLG OFFSET(31) NUMBITS(1) []
    ],
    /// SMMU_EVENTQ_CONS (page 1).
    pub EVTQ_CONS [
        RD OFFSET(0) NUMBITS(20) [],
        OVACKFLG OFFSET(31) NUMBITS(1) []
    ]
}

register_bitfields! {u64,
    /// SMMU_STRTAB_BASE.
    pub STRTAB_BASE [
        ADDR OFFSET(6) NUMBITS(46) [],
        RA OFFSET(62) NUMBITS(1) []
    ],
    /// SMMU_CMDQ_BASE.
    pub CMDQ_BASE [
        LOG2SIZE OFFSET(0) NUMBITS(5) [],
        ADDR OFFSET(5) NUMBITS(47) [],
        RA OFFSET(62) NUMBITS(1) []
    ],
    /// SMMU_EVENTQ_BASE.
    pub EVTQ_BASE [
        LOG2SIZE OFFSET(0) NUMBITS(5) [],
        ADDR OFFSET(5) NUMBITS(47) [],
        WA OFFSET(62) NUMBITS(1) []
    ]
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn offsets_follow_the_specification() {
        // Arm IHI 0070, 6.2 (page 0) and 6.3 (page 1).
        let page0 = [
            (Reg32::Idr0, 0x00),
            (Reg32::Idr1, 0x04),
            (Reg32::Idr5, 0x14),
            (Reg32::Cr0, 0x20),
            (Reg32::Cr0Ack, 0x24),
            (Reg32::Cr1, 0x28),
            (Reg32::Cr2, 0x2c),
            (Reg32::Gbpa, 0x44),
            (Reg32::IrqCtrl, 0x50),
            (Reg32::IrqCtrlAck, 0x54),
            (Reg32::GError, 0x60),
            (Reg32::GErrorN, 0x64),
            (Reg32::StrtabBaseCfg, 0x88),
            (Reg32::CmdqProd, 0x98),
            (Reg32::CmdqCons, 0x9c),
            (Reg32::EvtqProd, 0x10000 + 0xa8),
            (Reg32::EvtqCons, 0x10000 + 0xac),
        ];
        for (reg, off) in page0 {
            assert_eq!(reg.offset(), off, "{reg:?}");
            assert!(reg.offset() + 4 <= WINDOW_SIZE);
        }
        assert_eq!(Reg64::GErrorIrqCfg0.offset(), 0x68);
        assert_eq!(Reg64::StrtabBase.offset(), 0x80);
        assert_eq!(Reg64::EvtqIrqCfg0.offset(), 0xb0);
        assert_eq!(Reg64::CmdqBase.offset(), 0x90);
        assert_eq!(Reg64::EvtqBase.offset(), 0xa0);
    }

    #[test]
    fn mmio_accesses_land_at_the_offsets() {
        let mut window = vec![0u64; WINDOW_SIZE / 8];
        let base = window.as_mut_ptr() as usize;
        // SAFETY: `window` is WINDOW_SIZE bytes, 8-byte aligned, and only
        // reached through `regs` until it is read back below.
        let mut regs = unsafe { Mmio::new(base) };
        regs.write32(Reg32::Cr0, 0xd);
        regs.write32(Reg32::EvtqCons, 0x8000_0003);
        regs.write64(Reg64::CmdqBase, 0x1234_5678_9abc_def0);
        assert_eq!(regs.read32(Reg32::Cr0), 0xd);
        assert_eq!(regs.base(), base);
        assert_eq!(window[0x20 / 8] & 0xffff_ffff, 0xd);
        assert_eq!(window[0x100a8 / 8] >> 32, 0x8000_0003);
        assert_eq!(window[0x90 / 8], 0x1234_5678_9abc_def0);
    }

    #[test]
    fn field_positions() {
        assert_eq!(IDR0::ST_LEVEL.shift, 27);
        assert_eq!(
            (CR0::SMMUEN::SET + CR0::EVENTQEN::SET + CR0::CMDQEN::SET).value,
            0xd
        );
        assert_eq!(GBPA::ABORT::SET.value, 1 << 20);
        assert_eq!(GBPA::UPDATE::SET.value, 1 << 31);
        assert_eq!(
            (CR1::TABLE_SH::Inner + CR1::TABLE_OC::WriteBack + CR1::TABLE_IC::WriteBack).value,
            0xd40
        );
        assert_eq!(
            (CR1::QUEUE_SH::Inner + CR1::QUEUE_OC::WriteBack + CR1::QUEUE_IC::WriteBack).value,
            0x35
        );
        assert_eq!(CMDQ_CONS::ERR.shift, 24);
        assert_eq!(
            STRTAB_BASE::ADDR.mask << STRTAB_BASE::ADDR.shift,
            0x000f_ffff_ffff_ffc0
        );
        assert_eq!(
            CMDQ_BASE::ADDR.mask << CMDQ_BASE::ADDR.shift,
            0x000f_ffff_ffff_ffe0
        );
    }
}
