//! Fakes shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use gic::{CpuId, IrqSet, ListRegs, Lr, RegIo};

/// Byte-addressed register memory that logs every access.
#[derive(Default)]
pub struct FakeRegs {
    mem: HashMap<u64, u8>,
    pub writes: Vec<(u64, u8, u64)>,
    pub reads: Vec<(u64, u8)>,
}

impl FakeRegs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Presets a value without logging it.
    pub fn set(&mut self, offset: u64, size: u8, value: u64) {
        for i in 0..u64::from(size) {
            self.mem.insert(offset + i, (value >> (8 * i)) as u8);
        }
    }

    /// Reads a value without logging it.
    pub fn get(&self, offset: u64, size: u8) -> u64 {
        (0..u64::from(size)).fold(0, |v, i| {
            v | u64::from(*self.mem.get(&(offset + i)).unwrap_or(&0)) << (8 * i)
        })
    }
}

impl RegIo for FakeRegs {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.reads.push((offset, size));
        self.get(offset, size)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.writes.push((offset, size, value));
        self.set(offset, size, value);
    }
}

/// List registers in memory.
pub struct FakeLrs {
    pub lrs: Vec<Lr>,
    pub underflow: bool,
}

impl FakeLrs {
    pub fn new(n: usize) -> Self {
        Self {
            lrs: vec![Lr::INVALID; n],
            underflow: false,
        }
    }

    pub fn vintids(&self) -> Vec<u32> {
        self.lrs
            .iter()
            .filter(|l| l.state != gic::LrState::Invalid)
            .map(|l| l.vintid)
            .collect()
    }
}

impl ListRegs for FakeLrs {
    fn num_lrs(&self) -> usize {
        self.lrs.len()
    }
    fn read_lr(&self, i: usize) -> Lr {
        self.lrs[i]
    }
    fn write_lr(&mut self, i: usize, lr: Lr) {
        self.lrs[i] = lr;
    }
    fn set_underflow_irq(&mut self, on: bool) {
        self.underflow = on;
    }
}

/// CPU `index` with MPIDR `mpidr` and the QEMU GICv2 target bit.
pub fn cpu(index: u32, mpidr: u64) -> CpuId {
    CpuId {
        index,
        mpidr,
        v2_target: 1 << index,
    }
}

pub fn spis(list: &[u32]) -> IrqSet {
    let mut s = IrqSet::new();
    for &i in list {
        s.insert(i).unwrap();
    }
    s
}
