//! Host fakes: DMA memory backed by heap blocks, and an SMMU register file
//! that models what the driver drives (CR0ACK following CR0, GBPA.UPDATE,
//! the command queue consumed from memory, events written to memory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::vec;
use std::vec::Vec;

use crate::cmdq::Command;
use crate::driver::DmaMemory;
use crate::regs::{Reg32, Reg64, SmmuRegs};
use crate::ste::Ste;

/// Physical addresses the fake hands out start here, apart from the host
/// addresses, so that a driver mixing up the two is caught; they stay
/// below QEMU's 44-bit output size.
pub const PHYS_BASE: u64 = 0x10_0000_0000;

/// Every block handed out by any `FakeMem`: (phys, host address, size).
/// Physical addresses are never reused, so entries outliving their block
/// cannot alias.
static BLOCKS: Mutex<Vec<(u64, usize, usize)>> = Mutex::new(Vec::new());
static NEXT_PHYS: AtomicU64 = AtomicU64::new(PHYS_BASE);

/// SMMU_IDR0/1/5 of QEMU 10.0.2's `virt,iommu=smmuv3`, as read by
/// qemu-probe: S2P, S1P (QEMU 10 advertises both stages whatever
/// `-global arm-smmuv3.stage` says), TTF = AArch64, COHACC, ASID16,
/// VMID16, TTENDIAN = little, STALL_MODEL = terminate only, TERM_MODEL,
/// ST_LEVEL = 2-level.
pub const QEMU_IDR0: u32 = 0x0d44_101b;
/// SIDSIZE = 16, EVENTQS = CMDQS = 19.
pub const QEMU_IDR1: u32 = 0x0273_0010;
/// OAS = 44 bits, 4K, 16K and 64K granules.
pub const QEMU_IDR5: u32 = 0x74;

#[derive(Default)]
pub struct FakeMem {
    pub blocks: Vec<Vec<u8>>,
    /// Allocations that succeed before the next fails.
    pub budget: Option<usize>,
    /// Added to the physical address handed out (to test misalignment).
    pub phys_skew: u64,
}

// SAFETY: each block is a zeroed heap allocation that lives as long as the
// `FakeMem` (tests keep it alive longer than the driver) and is handed out
// once; `virt` is aligned as asked; the fake SMMU reaches it through
// `PHYS_OFFSET`.
unsafe impl DmaMemory for FakeMem {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<(*mut u8, u64)> {
        if let Some(budget) = &mut self.budget {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
        }
        let mut block = vec![0u8; size + align];
        let start = block.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(align);
        let virt = block[aligned - start..].as_mut_ptr();
        self.blocks.push(block);
        let span = (size + align) as u64;
        let phys = NEXT_PHYS
            .fetch_add(span, Ordering::Relaxed)
            .next_multiple_of(align as u64);
        BLOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((phys, virt as usize, size));
        Some((virt, phys + self.phys_skew))
    }
}

/// The host address of a physical address some `FakeMem` handed out.
fn virt(phys: u64) -> *mut u8 {
    let blocks = BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let (base, host, _) = blocks
        .iter()
        .find(|(base, _, size)| (*base..*base + *size as u64).contains(&phys))
        .expect("the fake SMMU was given a physical address no FakeMem handed out");
    (host + (phys - base) as usize) as *mut u8
}

pub struct FakeSmmu {
    pub idr0: u32,
    pub idr1: u32,
    pub idr5: u32,
    pub cr0: u32,
    pub cr0ack: u32,
    pub cr1: u32,
    pub cr2: u32,
    pub gbpa: u32,
    pub irq_ctrl: u32,
    pub gerror: u32,
    pub gerrorn: u32,
    pub strtab_base: u64,
    pub strtab_cfg: u32,
    pub cmdq_base: u64,
    pub cmdq_prod: u32,
    pub cmdq_cons: u32,
    pub evtq_base: u64,
    pub evtq_prod: u32,
    pub evtq_cons: u32,
    /// CR0ACK follows CR0 (false: the SMMU never acknowledges).
    pub ack_cr0: bool,
    /// GBPA.UPDATE clears (false: stuck).
    pub gbpa_updates: bool,
    /// Commands are consumed (false: the SMMU is stuck).
    pub consume: bool,
    /// Commands with this opcode are refused with CERROR_ILL.
    pub refuse: Option<u8>,
    /// Commands consumed, in order.
    pub commands: Vec<Command>,
    /// At each CMD_CFGI_STE: the stream and its entry in memory then.
    pub ste_seen: Vec<(u32, Ste)>,
    /// Register writes, in order: (offset, value).
    pub writes: Vec<(usize, u64)>,
}

impl FakeSmmu {
    pub fn qemu() -> Self {
        Self::with_ids(QEMU_IDR0, QEMU_IDR1, QEMU_IDR5)
    }

    pub fn with_ids(idr0: u32, idr1: u32, idr5: u32) -> Self {
        Self {
            idr0,
            idr1,
            idr5,
            cr0: 0,
            cr0ack: 0,
            cr1: 0,
            cr2: 0,
            // QEMU's reset value: SHCFG = use incoming.
            gbpa: 0x1000,
            irq_ctrl: 0,
            gerror: 0,
            gerrorn: 0,
            strtab_base: 0,
            strtab_cfg: 0,
            cmdq_base: 0,
            cmdq_prod: 0,
            cmdq_cons: 0,
            evtq_base: 0,
            evtq_prod: 0,
            evtq_cons: 0,
            ack_cr0: true,
            gbpa_updates: true,
            consume: true,
            refuse: None,
            commands: Vec::new(),
            ste_seen: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Offsets of the logged writes.
    pub fn write_offsets(&self) -> Vec<usize> {
        self.writes.iter().map(|(off, _)| *off).collect()
    }

    fn cmdq_log2(&self) -> u32 {
        (self.cmdq_base & 0x1f) as u32
    }

    fn evtq_log2(&self) -> u32 {
        (self.evtq_base & 0x1f) as u32
    }

    fn cmdq_error_pending(&self) -> bool {
        (self.gerror ^ self.gerrorn) & 1 != 0
    }

    /// Consumes commands from CONS to PROD, as the SMMU would.
    fn run_commands(&mut self) {
        if !self.consume || self.cr0 & 0x8 == 0 || self.cmdq_error_pending() {
            return;
        }
        self.cmdq_cons &= 0xf_ffff; // error handled: ERR clears
        let log2 = self.cmdq_log2();
        let mask = (2u32 << log2) - 1;
        let base = virt(self.cmdq_base & 0x000f_ffff_ffff_ffe0).cast::<[u64; 2]>();
        while self.cmdq_cons & mask != self.cmdq_prod & mask {
            let index = (self.cmdq_cons & ((1 << log2) - 1)) as usize;
            // SAFETY: the driver programmed CMDQ_BASE with memory of
            // 2^log2 commands from `FakeMem`, which outlives the fake.
            let cmd = Command(unsafe { base.add(index).read_volatile() });
            if Some(cmd.opcode()) == self.refuse {
                self.cmdq_cons |= 1 << 24; // CERROR_ILL
                self.gerror ^= 1;
                return;
            }
            if cmd.opcode() == 0x03 && self.strtab_base != 0 {
                let sid = (cmd.0[0] >> 32) as u32;
                let table = virt(self.strtab_base & 0x000f_ffff_ffff_ffc0).cast::<[u64; 8]>();
                // SAFETY: as above, for the stream table; the driver only
                // invalidates streams inside it.
                let ste = Ste(unsafe { table.add(sid as usize).read_volatile() });
                self.ste_seen.push((sid, ste));
            }
            self.commands.push(cmd);
            self.cmdq_cons = (self.cmdq_cons + 1) & mask;
        }
    }

    /// The SMMU records an event; on a full queue it sets the overflow
    /// flag instead. Returns whether the record was written.
    pub fn inject(&mut self, record: [u64; 4]) -> bool {
        let log2 = self.evtq_log2();
        let mask = (2u32 << log2) - 1;
        let (prod, cons) = (self.evtq_prod & mask, self.evtq_cons & mask);
        let index_mask = (1 << log2) - 1;
        if prod & index_mask == cons & index_mask && prod != cons {
            self.evtq_prod ^= 1 << 31;
            return false;
        }
        let base = virt(self.evtq_base & 0x000f_ffff_ffff_ffe0).cast::<[u64; 4]>();
        // SAFETY: the driver programmed EVTQ_BASE with memory of 2^log2
        // records from `FakeMem`, which outlives the fake.
        unsafe {
            base.add((prod & index_mask) as usize)
                .write_volatile(record)
        };
        self.evtq_prod = (self.evtq_prod & (1 << 31)) | ((prod + 1) & mask);
        true
    }
}

impl SmmuRegs for FakeSmmu {
    fn read32(&mut self, reg: Reg32) -> u32 {
        match reg {
            Reg32::Idr0 => self.idr0,
            Reg32::Idr1 => self.idr1,
            Reg32::Idr5 => self.idr5,
            Reg32::Cr0 => self.cr0,
            Reg32::Cr0Ack => self.cr0ack,
            Reg32::Cr1 => self.cr1,
            Reg32::Cr2 => self.cr2,
            Reg32::Gbpa => self.gbpa,
            Reg32::IrqCtrl | Reg32::IrqCtrlAck => self.irq_ctrl,
            Reg32::GError => self.gerror,
            Reg32::GErrorN => self.gerrorn,
            Reg32::StrtabBaseCfg => self.strtab_cfg,
            Reg32::CmdqProd => self.cmdq_prod,
            Reg32::CmdqCons => {
                self.run_commands();
                self.cmdq_cons
            }
            Reg32::EvtqProd => self.evtq_prod,
            Reg32::EvtqCons => self.evtq_cons,
        }
    }

    fn write32(&mut self, reg: Reg32, value: u32) {
        self.writes.push((reg.offset(), u64::from(value)));
        match reg {
            Reg32::Cr0 => {
                self.cr0 = value;
                if self.ack_cr0 {
                    self.cr0ack = value;
                }
            }
            Reg32::Cr1 => self.cr1 = value,
            Reg32::Cr2 => self.cr2 = value,
            Reg32::Gbpa => {
                if value & (1 << 31) != 0 {
                    self.gbpa = if self.gbpa_updates {
                        value & !(1 << 31)
                    } else {
                        value
                    };
                }
            }
            Reg32::IrqCtrl => self.irq_ctrl = value,
            Reg32::GErrorN => self.gerrorn = value,
            Reg32::StrtabBaseCfg => self.strtab_cfg = value,
            Reg32::CmdqProd => {
                self.cmdq_prod = value;
                self.run_commands();
            }
            Reg32::CmdqCons => self.cmdq_cons = value,
            Reg32::EvtqProd => self.evtq_prod = value,
            Reg32::EvtqCons => self.evtq_cons = value,
            Reg32::Idr0 | Reg32::Idr1 | Reg32::Idr5 | Reg32::Cr0Ack | Reg32::IrqCtrlAck => {}
            Reg32::GError => {}
        }
    }

    fn write64(&mut self, reg: Reg64, value: u64) {
        self.writes.push((reg.offset(), value));
        match reg {
            Reg64::StrtabBase => self.strtab_base = value,
            Reg64::CmdqBase => self.cmdq_base = value,
            Reg64::EvtqBase => self.evtq_base = value,
            Reg64::GErrorIrqCfg0 | Reg64::EvtqIrqCfg0 => {}
        }
    }
}
