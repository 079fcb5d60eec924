//! The hypervisor's console: a polled UART shared by all CPUs under a lock.

use core::fmt::{self, Write};
use hv_core::config::UartKind;
use spin::Mutex;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_structs! {
    /// ARM PrimeCell PL011 (the registers the console uses).
    Pl011Regs {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32>),
        (0x01c => @END),
    }
}

register_structs! {
    /// 8250/16550 with a 32-bit register stride (THR at 0, LSR at 5).
    Ns16550Regs {
        (0x000 => thr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x014 => lsr: ReadOnly<u32>),
        (0x018 => @END),
    }
}

register_structs! {
    /// Cadence UART (Xilinx Zynq/ZynqMP): channel status and TX/RX FIFO.
    CadenceRegs {
        (0x000 => _reserved0),
        (0x02c => sr: ReadOnly<u32>),
        (0x030 => fifo: ReadWrite<u32>),
        (0x034 => @END),
    }
}

const PL011_FR_TXFF: u32 = 1 << 5;
const NS16550_LSR_THRE: u32 = 1 << 5;
const CADENCE_SR_TXFULL: u32 = 1 << 4;

struct Uart {
    base: usize,
    kind: UartKind,
}

impl Uart {
    fn putb(&self, b: u8) {
        match self.kind {
            UartKind::Pl011 => {
                // SAFETY: `base` is the console UART's MMIO base, identity
                // mapped as device memory by the hypervisor's tables (or the
                // MMU is off), and only this lock's holder touches it.
                let regs = unsafe { &*(self.base as *const Pl011Regs) };
                while regs.fr.get() & PL011_FR_TXFF != 0 {}
                regs.dr.set(u32::from(b));
            }
            UartKind::Ns16550 => {
                // SAFETY: as above, for an 8250-style UART.
                let regs = unsafe { &*(self.base as *const Ns16550Regs) };
                while regs.lsr.get() & NS16550_LSR_THRE == 0 {}
                regs.thr.set(u32::from(b));
            }
            UartKind::Cadence => {
                // SAFETY: as above, for a Cadence UART.
                let regs = unsafe { &*(self.base as *const CadenceRegs) };
                while regs.sr.get() & CADENCE_SR_TXFULL != 0 {}
                regs.fifo.set(u32::from(b));
            }
        }
    }
}

static CONSOLE: Mutex<Option<Uart>> = Mutex::new(None);

const LOG_SIZE: usize = 16 * 1024;

/// The last [`LOG_SIZE`] bytes printed, for `cellblock console`.
struct Log {
    buf: [u8; LOG_SIZE],
    /// Bytes ever written.
    written: usize,
}

static LOG: Mutex<Log> = Mutex::new(Log {
    buf: [0; LOG_SIZE],
    written: 0,
});

fn log_byte(log: &mut Log, b: u8) {
    log.buf[log.written % LOG_SIZE] = b;
    log.written += 1;
}

/// Copies the log, oldest byte first, into `out`; returns the length.
pub fn read_log(out: &mut [u8]) -> usize {
    let log = LOG.lock();
    let len = log.written.min(LOG_SIZE).min(out.len());
    let start = log.written - len;
    for (i, o) in out.iter_mut().take(len).enumerate() {
        *o = log.buf[(start + i) % LOG_SIZE];
    }
    len
}

/// Points the console at a UART (first from the DTB's stdout-path, then from
/// the system config).
pub fn init(base: u64, kind: UartKind) {
    *CONSOLE.lock() = Some(Uart {
        base: base as usize,
        kind,
    });
}

struct Writer<'a>(Option<&'a Uart>);

impl Writer<'_> {
    fn put(&mut self, b: u8) {
        if let Some(uart) = self.0 {
            if b == b'\n' {
                uart.putb(b'\r');
            }
            uart.putb(b);
        }
        if let Some(mut log) = LOG.try_lock() {
            log_byte(&mut log, b);
        }
    }
}

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.put(b));
        Ok(())
    }
}

pub fn print(args: fmt::Arguments) {
    let guard = CONSOLE.lock();
    let _ = Writer(guard.as_ref()).write_fmt(args);
}

/// Writes one byte for a cell's debug-console hypercall.
pub fn putc(b: u8) {
    let guard = CONSOLE.lock();
    Writer(guard.as_ref()).put(b);
}

/// Prints without taking the lock, for the panic path (the lock may be held
/// by the CPU that panicked).
pub fn print_unlocked(args: fmt::Arguments) {
    if CONSOLE.is_locked() {
        // SAFETY: the holder may be the CPU that is panicking and will never
        // release it; worst case the output interleaves with another CPU's.
        unsafe { CONSOLE.force_unlock() };
    }
    print(args);
}

macro_rules! println {
    () => { $crate::el2::console::print(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::el2::console::print(format_args!("Cellblock: {}\n", format_args!($($arg)*)))
    };
}
