//! QEMU's `edu` teaching device (vendor 0x1234, device 0x11e8): a PCI
//! function with a 4 KiB buffer that it copies to and from memory by DMA.
//!
//! Registers in BAR0 (1 MiB), little endian:
//!
//! | offset | size | register |
//! | --- | --- | --- |
//! | 0x00 | 32 | identification, 0x010000ed for version 1.0 |
//! | 0x04 | 32 | liveness: reads back the bitwise inverse of what was written |
//! | 0x80 | 64 | DMA source address |
//! | 0x88 | 64 | DMA destination address |
//! | 0x90 | 64 | DMA count (bytes) |
//! | 0x98 | 64 | DMA command: bit 0 start (clears when done), bit 1 direction, bit 2 raise an interrupt when done |
//!
//! The device's buffer sits at device address [`BUFFER_ADDR`]. Direction 0
//! copies memory → buffer (source = a bus address, destination inside the
//! buffer), direction 1 buffer → memory. QEMU runs the copy about 100 ms
//! of virtual time after the start bit, and stops the whole machine if a
//! transfer leaves the buffer, so [`Edu::start_dma`] refuses such a
//! transfer. The device addresses memory with its `dma_mask` property
//! (default 28 bits: `-device edu,dma_mask=0xffffffffffffffff` for more).
//!
//! Registers below 0x80 take 32-bit accesses only; the DMA registers are
//! written with single 64-bit stores and read with 32-bit loads.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

/// PCI vendor ID.
pub const VENDOR_ID: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x11e8;
/// Device address of the DMA buffer.
pub const BUFFER_ADDR: u64 = 0x4_0000;
/// Bytes in the DMA buffer.
pub const BUFFER_SIZE: u64 = 0x1000;

pub const REG_ID: usize = 0x00;
pub const REG_LIVENESS: usize = 0x04;
pub const REG_DMA_SRC: usize = 0x80;
pub const REG_DMA_DST: usize = 0x88;
pub const REG_DMA_COUNT: usize = 0x90;
pub const REG_DMA_CMD: usize = 0x98;
/// Bytes of BAR0 the driver touches.
pub const REGS_SIZE: usize = 0xa0;

pub const CMD_START: u64 = 1 << 0;
/// Buffer → memory (set) or memory → buffer (clear).
pub const CMD_TO_MEMORY: u64 = 1 << 1;
pub const CMD_IRQ: u64 = 1 << 2;

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Memory → the device's buffer.
    ToDevice,
    /// The device's buffer → memory.
    ToMemory,
}

/// Why a DMA was not started or did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EduError {
    /// `offset + len` leaves the 4 KiB buffer (or `len` is 0).
    OutsideBuffer { offset: u64, len: u64 },
    /// A transfer is still running.
    Busy,
    /// The start bit did not clear in time.
    Timeout,
}

impl fmt::Display for EduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutsideBuffer { offset, len } => write!(
                f,
                "transfer of {len:#x} bytes at buffer offset {offset:#x} leaves the {BUFFER_SIZE:#x}-byte buffer"
            ),
            Self::Busy => write!(f, "a DMA transfer is still running"),
            Self::Timeout => write!(f, "the DMA command did not complete in time"),
        }
    }
}

/// Source, destination and command of a transfer of `len` bytes between
/// bus address `memory` and buffer offset `offset`.
pub fn dma_registers(
    direction: Direction,
    memory: u64,
    offset: u64,
    len: u64,
) -> Result<(u64, u64, u64), EduError> {
    let inside = len != 0
        && offset
            .checked_add(len)
            .is_some_and(|end| end <= BUFFER_SIZE);
    if !inside {
        return Err(EduError::OutsideBuffer { offset, len });
    }
    let buffer = BUFFER_ADDR + offset;
    Ok(match direction {
        Direction::ToDevice => (memory, buffer, CMD_START),
        Direction::ToMemory => (buffer, memory, CMD_START | CMD_TO_MEMORY),
    })
}

/// The device's registers.
#[derive(Debug)]
pub struct Edu {
    base: usize,
}

impl Edu {
    /// The device whose BAR0 is mapped at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the virtual address of an `edu` BAR0 (or memory
    /// standing in for its first [`REGS_SIZE`] bytes, 8-byte aligned),
    /// mapped as device memory for as long as the value is used, and the
    /// caller must own the device: its DMA writes wherever it is told.
    pub unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    fn read32(&self, reg: usize) -> u32 {
        // SAFETY: `reg` is a register offset below REGS_SIZE, 4-byte
        // aligned; `new`'s caller guaranteed the mapping.
        unsafe { read_volatile((self.base + reg) as *const u32) }
    }

    fn write32(&self, reg: usize, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { write_volatile((self.base + reg) as *mut u32, value) }
    }

    fn write64(&self, reg: usize, value: u64) {
        // SAFETY: `reg` is one of the 8-byte aligned DMA registers, which
        // take 64-bit accesses; `new`'s caller guaranteed the mapping.
        unsafe { write_volatile((self.base + reg) as *mut u64, value) }
    }

    /// The identification register (0x010000ed: version 1.0).
    pub fn id(&self) -> u32 {
        self.read32(REG_ID)
    }

    /// Writes `value` to the liveness register and tells whether its
    /// inverse reads back.
    pub fn is_alive(&self, value: u32) -> bool {
        self.write32(REG_LIVENESS, value);
        self.read32(REG_LIVENESS) == !value
    }

    /// Whether a transfer is running (command bit 0).
    pub fn dma_busy(&self) -> bool {
        u64::from(self.read32(REG_DMA_CMD)) & CMD_START != 0
    }

    /// Starts a transfer of `len` bytes between bus address `memory` (for
    /// a device behind an SMMU: an address in its owner's DMA space) and
    /// offset `offset` of the device's buffer. The caller makes the memory
    /// side coherent (cleans it before `ToDevice`, invalidates it after
    /// `ToMemory`) where the device does not snoop caches.
    pub fn start_dma(
        &self,
        direction: Direction,
        memory: u64,
        offset: u64,
        len: u64,
    ) -> Result<(), EduError> {
        let (src, dst, cmd) = dma_registers(direction, memory, offset, len)?;
        if self.dma_busy() {
            return Err(EduError::Busy);
        }
        self.write64(REG_DMA_SRC, src);
        self.write64(REG_DMA_DST, dst);
        self.write64(REG_DMA_COUNT, len);
        self.write64(REG_DMA_CMD, cmd);
        Ok(())
    }

    /// Polls the start bit until it clears or `expired()` says to give up.
    pub fn wait_dma(&self, mut expired: impl FnMut() -> bool) -> Result<(), EduError> {
        loop {
            if !self.dma_busy() {
                return Ok(());
            }
            if expired() {
                return Err(EduError::Timeout);
            }
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// Register memory standing in for BAR0, reached only through one
    /// raw pointer (the driver's), so test pokes and driver accesses never
    /// alias a reference.
    struct Fake {
        regs: *mut [u64; REGS_SIZE / 8],
        edu: Edu,
    }

    impl Fake {
        fn new() -> Self {
            let regs = std::boxed::Box::into_raw(std::boxed::Box::new([0u64; REGS_SIZE / 8]));
            // SAFETY: `regs` is REGS_SIZE bytes of 8-byte aligned memory,
            // freed only when the `Fake` (and its `Edu`) is dropped.
            let edu = unsafe { Edu::new(regs as usize) };
            Self { regs, edu }
        }

        fn get32(&self, reg: usize) -> u32 {
            // SAFETY: in bounds of the live allocation, 4-byte aligned.
            unsafe { read_volatile((self.regs as *const u8).add(reg) as *const u32) }
        }

        fn set32(&self, reg: usize, value: u32) {
            // SAFETY: in bounds of the live allocation, 4-byte aligned.
            unsafe { write_volatile((self.regs as *mut u8).add(reg) as *mut u32, value) }
        }

        fn get64(&self, reg: usize) -> u64 {
            u64::from(self.get32(reg)) | u64::from(self.get32(reg + 4)) << 32
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            // SAFETY: allocated by `Box::into_raw` in `new`, freed once.
            drop(unsafe { std::boxed::Box::from_raw(self.regs) });
        }
    }

    #[test]
    fn dma_registers_per_direction() {
        assert_eq!(
            dma_registers(Direction::ToDevice, 0x4020_1000, 0, 0x1000),
            Ok((0x4020_1000, 0x4_0000, CMD_START))
        );
        assert_eq!(
            dma_registers(Direction::ToMemory, 0x7e00_0000, 0x800, 0x800),
            Ok((0x4_0800, 0x7e00_0000, CMD_START | CMD_TO_MEMORY))
        );
    }

    #[test]
    fn dma_registers_refuse_leaving_the_buffer() {
        for (offset, len) in [(0, 0), (0, 0x1001), (0xfff, 2), (u64::MAX, 2)] {
            assert_eq!(
                dma_registers(Direction::ToDevice, 0, offset, len),
                Err(EduError::OutsideBuffer { offset, len })
            );
        }
    }

    #[test]
    fn start_dma_writes_the_registers_command_last() {
        let fake = Fake::new();
        let edu = &fake.edu;
        edu.start_dma(Direction::ToMemory, 0x1_2345_6000, 0x100, 0x80)
            .unwrap();
        assert_eq!(fake.get64(REG_DMA_SRC), 0x4_0100);
        assert_eq!(fake.get64(REG_DMA_DST), 0x1_2345_6000);
        assert_eq!(fake.get64(REG_DMA_COUNT), 0x80);
        assert_eq!(fake.get64(REG_DMA_CMD), CMD_START | CMD_TO_MEMORY);
        // The fake never clears the start bit: busy, and a second start
        // is refused.
        assert!(edu.dma_busy());
        assert_eq!(
            edu.start_dma(Direction::ToDevice, 0, 0, 4),
            Err(EduError::Busy)
        );
    }

    #[test]
    fn wait_dma_gives_up_when_told() {
        let fake = Fake::new();
        let edu = &fake.edu;
        fake.set32(REG_DMA_CMD, CMD_START as u32);
        let mut polls = 0;
        let result = edu.wait_dma(|| {
            polls += 1;
            polls == 3
        });
        assert_eq!(result, Err(EduError::Timeout));
        assert_eq!(polls, 3);
        fake.set32(REG_DMA_CMD, 0);
        assert_eq!(edu.wait_dma(|| true), Ok(()));
    }

    #[test]
    fn liveness_and_id() {
        let fake = Fake::new();
        let edu = &fake.edu;
        fake.set32(REG_ID, 0x0100_00ed);
        assert_eq!(edu.id(), 0x0100_00ed);
        // Plain memory does not invert.
        assert!(!edu.is_alive(0x1234_5678));
        assert_eq!(fake.get32(REG_LIVENESS), 0x1234_5678);
    }
}
