//! A small runtime for Cellblock inmates: bare-metal programs that run in a
//! cell at EL1 (or bare on QEMU `virt`, for a baseline).
//!
//! It provides the ARM64 Image header and entry code (dropping from EL2 to
//! EL1 when started bare with `virtualization=on`), exception vectors, a
//! polled PL011 driver, the hypervisor's debug console, GICv2/GICv3 CPU-side
//! setup, the virtual timer, `print!`/`println!` and the communication
//! region through which the hypervisor asks a cell to shut down ([`comm`]).
//!
//! ```no_run
//! #![no_std]
//! #![no_main]
//!
//! use demos::{console, println, timer};
//!
//! demos::entry!(main);
//!
//! fn main() -> ! {
//!     console::set(console::Console::Uart);
//!     println!("counter runs at {} Hz", timer::frequency());
//!     demos::halt()
//! }
//! ```
//!
//! # Memory model
//!
//! The entry code turns the stage-1 MMU on with a fixed identity map (see
//! `entry.rs`): RAM at 1..2 GiB is Normal write-back memory, the device
//! range below 1 GiB is Device-nGnRnE. Device registers are only touched
//! through `read_volatile`/`write_volatile` of 32 bits (64 for
//! GICD_IROUTER), i.e. single `ldr`/`str`, which a hypervisor can decode
//! when it traps them. Shared state uses atomics with relaxed `load`/`store`
//! (plain `ldr`/`str`); the inmates run on one CPU, so nothing needs
//! read-modify-write atomics.

#![cfg_attr(not(test), no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod comm;
pub mod edu;
pub mod fmt;
pub mod gic;
pub mod ivshmem;
pub mod jitter;
pub mod mmu;
pub mod pci;

#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod console;
#[cfg(all(target_arch = "aarch64", not(test)))]
mod entry;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod exceptions;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod hypercall;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod timer;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod uart;

#[cfg(all(target_arch = "aarch64", not(test)))]
pub use entry::started_at_el2;

/// Defines the inmate's entry point: `entry!(main)` makes `main: fn() -> !`
/// the function the runtime calls once the stack, BSS and exception vectors
/// are set up, at EL1 with interrupts masked.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by the runtime's `rust_entry`.
        #[unsafe(no_mangle)]
        pub extern "C" fn __cellblock_inmate_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }
    };
}

/// Waits for interrupts forever.
#[cfg(all(target_arch = "aarch64", not(test)))]
pub fn halt() -> ! {
    loop {
        // SAFETY: `wfi` only waits; it touches no memory or registers.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(all(target_arch = "aarch64", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    exceptions::mask_irqs();
    println!("inmate panic: {}", info);
    halt()
}
