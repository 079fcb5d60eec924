//! A small runtime for Cellblock inmates: bare-metal programs that run in a
//! cell at EL1 (or bare on QEMU `virt`, for a baseline).
//!
//! It provides the ARM64 Image header and entry code (dropping from EL2 to
//! EL1 when started bare with `virtualization=on`), exception vectors, a
//! polled PL011 driver, the hypervisor's debug console, GICv2/GICv3 CPU-side
//! setup, the virtual timer and `print!`/`println!`.
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
//! The inmates run with the stage-1 MMU off. Every data access is then
//! Device-nGnRnE: no unaligned accesses (the target is built with
//! `+strict-align`, so the compiler emits none) and no load/store-exclusive
//! pairs (whether exclusives work on Device memory is implementation
//! defined). Shared state therefore uses atomics with relaxed `load`/`store`
//! only, which compile to plain `ldr`/`str`; no read-modify-write atomics are
//! used anywhere. This keeps the entry code free of page tables, and the demos
//! do nothing that needs caches: gic-demo measures interrupt latency, which the
//! hypervisor's path dominates.

#![cfg_attr(not(test), no_std)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod fmt;
pub mod gic;
pub mod jitter;

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
