//! probe: an isolation check. It has no UART, so it talks through the
//! hypervisor's debug console; after about 1.5 s it reads 0x5000_0000, which
//! its cell does not own. The hypervisor must stop the cell there: the
//! second line must never appear.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::ptr::read_volatile;

use demos::console::{self, Console};
use demos::{println, timer};

demos::entry!(main);

/// Outside every cell's RAM in the QEMU configs (root 0x4100_0000 + 16 MiB,
/// demo cells at 0x4200_0000 and 0x4220_0000).
const FOREIGN: usize = 0x5000_0000;

fn main() -> ! {
    console::set(Console::Hypercall);
    timer::delay_ms(1500);
    println!("probe: reading 0x{FOREIGN:08x}, which this cell does not own");
    // SAFETY: this read is the point of the probe: FOREIGN is not mapped
    // for this cell, and a correct hypervisor stops the cell on it. Bare, it
    // is ordinary RAM. A single 32-bit `ldr` keeps the abort decodable.
    let _ = unsafe { read_volatile(FOREIGN as *const u32) };
    println!("probe: still running, isolation is broken");
    demos::halt()
}
