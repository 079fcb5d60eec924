//! The hypervisor's own faults: print CPU, ESR, FAR, ELR and park the CPU.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2};
use core::panic::PanicInfo;
use tock_registers::interfaces::Readable;

use super::boot::TrapFrame;
use super::console::print_unlocked;
use super::cpu;

/// Stops the calling CPU for good (interrupts masked, waiting in WFI).
pub fn halt() -> ! {
    loop {
        // SAFETY: masks interrupts and waits; the CPU stays parked.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfi", options(nostack)) };
    }
}

/// An exception taken from EL2 itself: a hypervisor bug.
pub fn el2_exception(frame: &TrapFrame, kind: u64) -> ! {
    print_unlocked(format_args!(
        "Cellblock: PANIC on CPU {}: exception at EL2 (vector {}), ESR {:#010x}, FAR {:#x}, ELR {:#x}\n",
        cpu::current_id(),
        kind,
        ESR_EL2.get(),
        FAR_EL2.get(),
        frame.elr
    ));
    halt()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    print_unlocked(format_args!(
        "Cellblock: PANIC on CPU {}: {}, ESR {:#010x}, FAR {:#x}, ELR {:#x}\n",
        cpu::current_id(),
        info,
        ESR_EL2.get(),
        FAR_EL2.get(),
        aarch64_cpu::registers::ELR_EL2.get()
    ));
    halt()
}
