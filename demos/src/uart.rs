//! Polled PL011 UART at 0x0900_0000 (QEMU `virt`'s first UART; a cell's
//! config maps its own PL011 at that address).
//!
//! Registers are accessed with single 32-bit volatile loads and stores
//! (plain `ldr`/`str`, no writeback), so a trapped access is decodable.

use core::ptr::{read_volatile, write_volatile};

/// Base address of the PL011 as the inmate sees it.
pub const PL011_BASE: usize = 0x0900_0000;

const DR: usize = 0x00;
const FR: usize = 0x18;
const IBRD: usize = 0x24;
const FBRD: usize = 0x28;
const LCR_H: usize = 0x2c;
const CR: usize = 0x30;

const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
const LCR_H_FEN: u32 = 1 << 4;
const LCR_H_WLEN_8: u32 = 0b11 << 5;

fn read(offset: usize) -> u32 {
    // SAFETY: PL011_BASE is the UART's MMIO page in every inmate's address
    // space; `offset` is one of the register offsets above, 4-byte aligned.
    unsafe { read_volatile((PL011_BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; PL011 register writes have no memory effects
    // beyond the device.
    unsafe { write_volatile((PL011_BASE + offset) as *mut u32, value) }
}

/// Makes the UART usable. If it is already enabled (firmware, the root
/// cell's kernel or the hypervisor set it up), its settings are kept;
/// otherwise it is programmed for 115200 8N1 from a 24 MHz clock (QEMU's
/// and most boards' PL011 reference clock) and enabled.
pub fn init() {
    if read(CR) & CR_UARTEN != 0 {
        return;
    }
    write(CR, 0);
    // 24 MHz / (16 * 115200) = 13.02: IBRD 13, FBRD round(0.02 * 64) = 1.
    write(IBRD, 13);
    write(FBRD, 1);
    write(LCR_H, LCR_H_WLEN_8 | LCR_H_FEN);
    write(CR, CR_UARTEN | CR_TXE | CR_RXE);
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn putc(byte: u8) {
    while read(FR) & FR_TXFF != 0 {
        core::hint::spin_loop();
    }
    write(DR, u32::from(byte));
}

/// Waits until everything written has left the transmitter.
pub fn flush() {
    while read(FR) & FR_BUSY != 0 {
        core::hint::spin_loop();
    }
}
