//! EL1 exception vectors.
//!
//! IRQs from the current EL are acknowledged at the GIC, handed to the
//! handler registered with [`set_irq_handler`] and completed (EOI). The
//! interrupted context is saved in full, general-purpose and SIMD registers
//! alike, because the compiler uses SIMD registers for ordinary code. Every
//! other exception (synchronous aborts, undefined instructions, FIQ,
//! SError) prints the syndrome and halts the CPU: an inmate has no business
//! recovering from them.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::{console, gic, println};

/// Called with the INTID of each interrupt, in interrupt context with IRQs
/// masked.
pub type IrqHandler = fn(intid: u32);

/// The registered handler, as an address (0: none). Relaxed loads and
/// stores only, see the crate documentation.
static IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Set while an unexpected exception is being reported, so that a fault in
/// the reporting itself halts quietly instead of recursing.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Registers the function that handles interrupts. Replaces any earlier one.
pub fn set_irq_handler(handler: IrqHandler) {
    IRQ_HANDLER.store(handler as usize, Relaxed);
}

/// Unmasks IRQs at this CPU (PSTATE.I = 0).
pub fn unmask_irqs() {
    // SAFETY: only changes PSTATE.I; the vectors are installed at entry.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags)) };
}

/// Masks IRQs at this CPU (PSTATE.I = 1).
pub fn mask_irqs() {
    // SAFETY: only changes PSTATE.I.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
}

/// IRQ from the current EL: acknowledge one interrupt, dispatch, EOI.
extern "C" fn handle_irq() {
    let ack = gic::ack();
    let intid = gic::intid(ack);
    if gic::is_spurious(intid) {
        return;
    }
    let handler = IRQ_HANDLER.load(Relaxed);
    if handler != 0 {
        // SAFETY: the only non-zero value ever stored is an `IrqHandler`
        // cast to usize by `set_irq_handler`; fn pointers and usize have the
        // same size and representation on aarch64.
        let handler: IrqHandler = unsafe { core::mem::transmute::<usize, IrqHandler>(handler) };
        handler(intid);
    }
    gic::eoi(ack);
}

const KINDS: [&str; 16] = [
    "synchronous (EL1t)",
    "IRQ (EL1t)",
    "FIQ (EL1t)",
    "SError (EL1t)",
    "synchronous",
    "IRQ",
    "FIQ",
    "SError",
    "synchronous (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "synchronous (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];

/// ESR_ELx.EC of an unknown instruction, which is what `hvc` raises at EL1
/// when no EL2 is implemented.
const EC_UNKNOWN: u64 = 0;

/// Any exception but a current-EL IRQ: report and halt.
extern "C" fn unexpected_exception(kind: u64) -> ! {
    mask_irqs();
    if REPORTING.load(Relaxed) {
        crate::halt();
    }
    REPORTING.store(true, Relaxed);
    let (esr, far, elr, spsr): (u64, u64, u64, u64);
    // SAFETY: reading EL1 exception syndrome registers has no side effects.
    unsafe {
        core::arch::asm!(
            "mrs {esr}, esr_el1",
            "mrs {far}, far_el1",
            "mrs {elr}, elr_el1",
            "mrs {spsr}, spsr_el1",
            esr = out(reg) esr,
            far = out(reg) far,
            elr = out(reg) elr,
            spsr = out(reg) spsr,
            options(nomem, nostack, preserves_flags),
        );
    }
    // A failed hypercall cannot report itself through the hypercall console.
    if esr >> 26 == EC_UNKNOWN && console::get() == console::Console::Hypercall {
        console::set(console::Console::Uart);
    }
    let what = usize::try_from(kind)
        .ok()
        .and_then(|k| KINDS.get(k))
        .unwrap_or(&"unknown");
    println!(
        "inmate exception: {what}, ESR 0x{esr:08x}, FAR 0x{far:016x}, ELR 0x{elr:016x}, SPSR 0x{spsr:x}; halted"
    );
    crate::halt()
}

core::arch::global_asm!(
    r#"
    .section .text.el1_vectors, "ax"

    // Entry `n` that reports and halts.
    .macro unexpected n
    .balign 0x80
    mov     x0, #\n
    b       {unexpected}
    .endm

    .balign 2048
    .global cellblock_inmate_el1_vectors
cellblock_inmate_el1_vectors:
    unexpected 0
    unexpected 1
    unexpected 2
    unexpected 3
    unexpected 4
    .balign 0x80
    b       cellblock_el1_irq
    unexpected 6
    unexpected 7
    unexpected 8
    unexpected 9
    unexpected 10
    unexpected 11
    unexpected 12
    unexpected 13
    unexpected 14
    unexpected 15

    // Frame: x0-x18, x29, x30, ELR, SPSR, FPCR, FPSR and a pad (26 slots
    // of 8 bytes), then q0-q31 (512 bytes): 720 bytes, a multiple of 16.
cellblock_el1_irq:
    sub     sp, sp, #720
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #160]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #176]
    mrs     x0, fpsr
    str     x0, [sp, #192]
    add     x0, sp, #208
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]

    bl      {handle_irq}

    add     x0, sp, #208
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x0, [sp, #192]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #176]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #720
    eret
    "#,
    unexpected = sym unexpected_exception,
    handle_irq = sym handle_irq,
);
