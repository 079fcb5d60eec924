//! The inmate's console: the PL011 or the hypervisor's debug console, and
//! the `print!`/`println!` macros writing to it. Output is unbuffered and
//! `\n` becomes `\r\n`.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::{hypercall, uart};

/// Where `print!` output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// The polled PL011 at [`uart::PL011_BASE`].
    Uart,
    /// Hypercall 8, debug_console_putc: for cells without a UART.
    Hypercall,
}

static CONSOLE: AtomicU8 = AtomicU8::new(Console::Uart as u8);

/// Selects the console; initialises the UART when it is chosen.
pub fn set(console: Console) {
    if console == Console::Uart {
        uart::init();
    }
    CONSOLE.store(console as u8, Relaxed);
}

/// The console in use.
pub fn get() -> Console {
    if CONSOLE.load(Relaxed) == Console::Hypercall as u8 {
        Console::Hypercall
    } else {
        Console::Uart
    }
}

/// Writes one byte to the console as is.
pub fn putc(byte: u8) {
    match get() {
        Console::Uart => uart::putc(byte),
        Console::Hypercall => {
            // Nothing better to do with a failed putc than to drop the byte.
            let _ = hypercall::debug_console_putc(byte);
        }
    }
}

/// `fmt::Write` onto the console.
pub struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Writer never fails.
    let _ = fmt::Write::write_fmt(&mut Writer, args);
}

/// Prints to the inmate console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints to the inmate console, with a newline.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}
