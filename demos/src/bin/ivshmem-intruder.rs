//! ivshmem-intruder: an isolation check for ivshmem
//! (configs/cells/qemu-ivshmem-intruder.toml). Its cell is not named in
//! link 0, yet after about 1 s it reads the link's shared memory at its
//! physical address. It has no mapping there, so the hypervisor must stop
//! the cell: the second line must never appear.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::ptr::read_volatile;

use demos::console::{self, Console};
use demos::{println, timer};

demos::entry!(main);

/// Link 0's shared memory in the QEMU Linux configs.
const SHMEM: usize = 0x7ec0_0000;

fn main() -> ! {
    console::set(Console::Hypercall);
    timer::delay_ms(1000);
    println!("ivshmem-intruder: reading 0x{SHMEM:08x}, the shared memory of link 0");
    // SAFETY: this read is the point of the check: the address is not
    // mapped for this cell, and a correct hypervisor stops the cell on it.
    // A single 32-bit `ldr` keeps the abort decodable.
    let v = unsafe { read_volatile(SHMEM as *const u32) };
    println!("ivshmem-intruder: read {v:#x}, isolation is broken");
    demos::halt()
}
