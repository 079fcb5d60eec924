//! Hardware implementations: MMIO register files, the GICv3 list registers
//! (system registers) and the GICv2 ones (GICH).

use core::ptr::{read_volatile, write_volatile};

use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR10_EL2, ICH_LR11_EL2,
    ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_LR1_EL2, ICH_LR2_EL2, ICH_LR3_EL2,
    ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2, ICH_VTR_EL2,
};
use tock_registers::LocalRegisterCopy;

use crate::access::RegIo;
use crate::lr::Lr;
use crate::regs::{gich, GICH_HCR, GICH_VTR};
use crate::virq::ListRegs;

/// A GIC frame accessed with single, naturally aligned volatile loads and
/// stores of the requested width.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// A register file at `base`.
    ///
    /// # Safety
    ///
    /// `base` is the address of a GIC frame (GICD, a GICR frame pair, GICC
    /// or GICH) mapped as device memory in the current translation regime,
    /// large enough for every offset used on it; nothing else treats that
    /// memory as Rust objects.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    /// The frame's base address.
    pub const fn base(&self) -> usize {
        self.base
    }

    pub(crate) fn read32(&mut self, offset: u64) -> u32 {
        self.read(offset, 4) as u32
    }

    pub(crate) fn write32(&mut self, offset: u64, value: u32) {
        self.write(offset, 4, u64::from(value));
    }
}

impl RegIo for Mmio {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let addr = self.base + offset as usize;
        // SAFETY: `new`'s contract: `addr` lies in a device-memory GIC frame;
        // callers use offsets aligned to `size`.
        unsafe {
            match size {
                1 => u64::from(read_volatile(addr as *const u8)),
                2 => u64::from(read_volatile(addr as *const u16)),
                4 => u64::from(read_volatile(addr as *const u32)),
                _ => read_volatile(addr as *const u64),
            }
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let addr = self.base + offset as usize;
        // SAFETY: as in `read`.
        unsafe {
            match size {
                1 => write_volatile(addr as *mut u8, value as u8),
                2 => write_volatile(addr as *mut u16, value as u16),
                4 => write_volatile(addr as *mut u32, value as u32),
                _ => write_volatile(addr as *mut u64, value),
            }
        }
    }
}

/// The GICv3 virtual CPU interface's list registers (`ICH_LR<n>_EL2`) of the
/// current CPU.
#[derive(Debug, Default, Clone, Copy)]
pub struct IchSysregs;

impl IchSysregs {
    fn read_raw(i: usize) -> u64 {
        match i {
            0 => ICH_LR0_EL2.get(),
            1 => ICH_LR1_EL2.get(),
            2 => ICH_LR2_EL2.get(),
            3 => ICH_LR3_EL2.get(),
            4 => ICH_LR4_EL2.get(),
            5 => ICH_LR5_EL2.get(),
            6 => ICH_LR6_EL2.get(),
            7 => ICH_LR7_EL2.get(),
            8 => ICH_LR8_EL2.get(),
            9 => ICH_LR9_EL2.get(),
            10 => ICH_LR10_EL2.get(),
            11 => ICH_LR11_EL2.get(),
            12 => ICH_LR12_EL2.get(),
            13 => ICH_LR13_EL2.get(),
            14 => ICH_LR14_EL2.get(),
            15 => ICH_LR15_EL2.get(),
            _ => 0,
        }
    }

    fn write_raw(i: usize, v: u64) {
        match i {
            0 => ICH_LR0_EL2.set(v),
            1 => ICH_LR1_EL2.set(v),
            2 => ICH_LR2_EL2.set(v),
            3 => ICH_LR3_EL2.set(v),
            4 => ICH_LR4_EL2.set(v),
            5 => ICH_LR5_EL2.set(v),
            6 => ICH_LR6_EL2.set(v),
            7 => ICH_LR7_EL2.set(v),
            8 => ICH_LR8_EL2.set(v),
            9 => ICH_LR9_EL2.set(v),
            10 => ICH_LR10_EL2.set(v),
            11 => ICH_LR11_EL2.set(v),
            12 => ICH_LR12_EL2.set(v),
            13 => ICH_LR13_EL2.set(v),
            14 => ICH_LR14_EL2.set(v),
            15 => ICH_LR15_EL2.set(v),
            _ => {}
        }
    }
}

impl ListRegs for IchSysregs {
    fn num_lrs(&self) -> usize {
        (ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1).min(16)
    }

    fn read_lr(&self, i: usize) -> Lr {
        Lr::from_v3(Self::read_raw(i))
    }

    fn write_lr(&mut self, i: usize, lr: Lr) {
        Self::write_raw(i, lr.to_v3());
    }

    fn used_lrs(&self) -> u64 {
        let elrsr: u64;
        // SAFETY: reading ICH_ELRSR_EL2 (empty list register status) has no
        // side effects.
        unsafe {
            core::arch::asm!("mrs {0}, ich_elrsr_el2", out(reg) elrsr, options(nomem, nostack))
        };
        !elrsr & ((1u64 << self.num_lrs()) - 1)
    }

    fn set_underflow_irq(&mut self, on: bool) {
        ICH_HCR_EL2.modify(if on {
            ICH_HCR_EL2::UIE::SET
        } else {
            ICH_HCR_EL2::UIE::CLEAR
        });
    }
}

/// List registers a GICH frame has room for.
const GICH_LRS: usize = 64;

/// The GICv2 virtual interface control block (GICH) of the current CPU.
#[derive(Debug)]
pub struct GichMmio {
    base: usize,
}

impl GichMmio {
    /// The GICH frame at `base`.
    ///
    /// # Safety
    ///
    /// As for [`Mmio::new`]: `base` is the GICH frame (the current CPU's
    /// banked view), mapped as device memory.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    fn mmio(&self) -> Mmio {
        // SAFETY: `new`'s contract covers the same frame.
        unsafe { Mmio::new(self.base) }
    }
}

impl ListRegs for GichMmio {
    fn num_lrs(&self) -> usize {
        let vtr = LocalRegisterCopy::<u32, GICH_VTR::Register>::new(self.mmio().read32(gich::VTR));
        (vtr.read(GICH_VTR::ListRegs) as usize + 1).min(GICH_LRS)
    }

    fn read_lr(&self, i: usize) -> Lr {
        if i >= GICH_LRS {
            return Lr::INVALID;
        }
        Lr::from_v2(self.mmio().read32(gich::LR + 4 * i as u64))
    }

    fn write_lr(&mut self, i: usize, lr: Lr) {
        if i >= GICH_LRS {
            return;
        }
        self.mmio().write32(gich::LR + 4 * i as u64, lr.to_v2());
    }

    fn set_underflow_irq(&mut self, on: bool) {
        let mut io = self.mmio();
        let hcr = io.read32(gich::HCR);
        let uie = if on {
            GICH_HCR::UIE::SET
        } else {
            GICH_HCR::UIE::CLEAR
        };
        io.write32(gich::HCR, uie.modify(hcr));
    }
}
