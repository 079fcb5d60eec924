//! Image header, entry points, exception vectors and the guest entry path.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

/// Stack of each CPU's EL2 context.
pub const STACK_SIZE: usize = 0x8000;
/// Most CPUs the image supports.
pub const MAX_CPUS: usize = 8;

#[repr(C, align(16))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CPUS + 1]);

/// Slot 0 is the boot stack; CPU `n` uses slot `n + 1`.
#[unsafe(no_mangle)]
pub static mut CPU_STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS + 1]);

/// Top of CPU `cpu`'s stack.
pub fn stack_top(cpu: usize) -> u64 {
    // Only the address is taken; nothing is read or written here.
    let base = core::ptr::addr_of!(CPU_STACKS) as u64;
    base + ((cpu + 2) * STACK_SIZE) as u64
}

/// Registers of a lower EL saved on entry to EL2, in the order the vectors
/// store them.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 272);

unsafe extern "C" {
    /// Enters the cell on this CPU: SP_EL2 := `stack_top`, x0 := `x0`,
    /// other GPRs cleared, then ERET to ELR_EL2/SPSR_EL2 set by the caller.
    pub fn vcpu_enter(x0: u64, stack_top: u64) -> !;
    /// Entry of secondary CPUs started through firmware PSCI (x0 = logical id).
    pub fn secondary_entry();
}

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    b       primary_entry
    .long   0
    .quad   0x200000            // text_offset
    .quad   __hv_image_size     // image_size, bss included
    .quad   0xa                 // flags: little endian, 4 KiB pages, anywhere in RAM
    .quad   __hv_start          // res2: the link address, checked by `cellblock pack`
    .quad   0, 0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    mov     x19, x0
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    1f
    // Runs only where it is linked (CELLBLOCK_HV_BASE): else stop here,
    // before any absolute address is used.
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    1f
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  adrp    x1, CPU_STACKS
    add     x1, x1, :lo12:CPU_STACKS
    add     x1, x1, #{stack}
    mov     sp, x1
    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x19
    bl      primary_main
1:  wfe
    b       1b

.global secondary_entry
secondary_entry:
    mov     x19, x0
    adrp    x1, CPU_STACKS
    add     x1, x1, :lo12:CPU_STACKS
    add     x2, x19, #2
    mov     x3, #{stack}
    madd    x1, x2, x3, x1
    mov     sp, x1
    adrp    x1, el2_vectors
    add     x1, x1, :lo12:el2_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x19
    bl      secondary_main
4:  wfe
    b       4b

.global vcpu_enter
vcpu_enter:
    mov     sp, x1
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    mov     x4, xzr
    mov     x5, xzr
    mov     x6, xzr
    mov     x7, xzr
    mov     x8, xzr
    mov     x9, xzr
    mov     x10, xzr
    mov     x11, xzr
    mov     x12, xzr
    mov     x13, xzr
    mov     x14, xzr
    mov     x15, xzr
    mov     x16, xzr
    mov     x17, xzr
    mov     x18, xzr
    mov     x19, xzr
    mov     x20, xzr
    mov     x21, xzr
    mov     x22, xzr
    mov     x23, xzr
    mov     x24, xzr
    mov     x25, xzr
    mov     x26, xzr
    mov     x27, xzr
    mov     x28, xzr
    mov     x29, xzr
    mov     x30, xzr
    eret

.macro SAVE_FRAME
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    SAVE_REST
.endm

// Everything but x0-x3, which are already in the frame; leaves x0 = frame.
.macro SAVE_REST
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x30, x1, [sp, #240]
    str     x2, [sp, #256]
    mov     x0, sp
.endm

.macro RESTORE_FRAME_ERET
    ldp     x30, x1, [sp, #240]
    ldr     x2, [sp, #256]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #272
    eret
.endm

.macro VECTOR kind
.balign 0x80
    SAVE_FRAME
    mov     x1, #\kind
    b       el2_vector_common
.endm

.section .text.vectors, "ax"
.balign 0x800
el2_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
.balign 0x80
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    b       irq_fast
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

el2_vector_common:
    bl      handle_exception
    RESTORE_FRAME_ERET

// Physical IRQ from a cell, GICv3: the common case (a device interrupt of
// the running cell, no list register in use, nothing queued) is handled
// here with four registers: acknowledge, priority drop, one list register
// with the HW bit, eret. Everything else goes to Rust with the full frame.
irq_fast:
    adrp    x0, IRQ_FAST_ON
    ldrb    w0, [x0, :lo12:IRQ_FAST_ON]
    cbz     w0, 1f
    mrs     x0, icc_iar1_el1
    and     x1, x0, #0xffffff
    cmp     x1, #1020
    b.hs    3f                          // spurious: nothing to do
    cmp     x1, #16
    b.lo    2f                          // SGI: the hypervisor's or a sibling's
    cmp     x1, #{maint}
    b.eq    2f                          // maintenance interrupt
    adrp    x2, IRQ_FAST_HV_SPI
    ldr     w2, [x2, :lo12:IRQ_FAST_HV_SPI]
    cmp     x1, x2
    b.eq    2f                          // an interrupt the hypervisor keeps
    mrs     x2, ich_hcr_el2
    tbnz    x2, #1, 2f                  // UIE: interrupts wait in the queue
    mrs     x2, ich_elrsr_el2
    adrp    x3, IRQ_FAST_LR_MASK
    ldr     x3, [x3, :lo12:IRQ_FAST_LR_MASK]
    and     x2, x2, x3
    cmp     x2, x3
    b.ne    2f                          // a list register is in use
    msr     icc_eoir1_el1, x0           // priority drop (EOImode 1)
    movz    x2, #{lr_high}, lsl #48     // pending, HW, group 1, priority
    orr     x2, x2, x1                  // vINTID
    orr     x2, x2, x1, lsl #32         // pINTID
    msr     ich_lr0_el2, x2
    mrs     x3, tpidr_el2
    adrp    x2, IRQ_FAST_COUNT
    add     x2, x2, :lo12:IRQ_FAST_COUNT
    ldr     x0, [x2, x3, lsl #3]
    add     x0, x0, #1
    str     x0, [x2, x3, lsl #3]
3:  ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    add     sp, sp, #272
    eret
1:  SAVE_REST
    mov     x1, #9
    b       el2_vector_common
2:  mov     x3, x0                      // acknowledged, not yet dropped
    SAVE_REST                           // (leaves x3 alone; the cell's is saved)
    mov     x1, x3
    bl      handle_irq_acked
    RESTORE_FRAME_ERET
"#,
    stack = const STACK_SIZE,
    maint = const gic::MAINTENANCE_INTID,
    lr_high = const IRQ_LR_HIGH,
);

/// Bits 63:48 of a list register for a pending, hardware (HW), group 1
/// interrupt at the injection priority.
const IRQ_LR_HIGH: u64 = (1 << 14) | (1 << 13) | (1 << 12) | super::gicglue::VIRQ_PRIORITY as u64;

/// The assembly fast path is on (GICv3 only).
#[unsafe(no_mangle)]
pub static IRQ_FAST_ON: AtomicU8 = AtomicU8::new(0);
/// Implemented list registers (bit mask).
#[unsafe(no_mangle)]
pub static IRQ_FAST_LR_MASK: AtomicU64 = AtomicU64::new(0);
/// An SPI the hypervisor keeps (the SMMU's event interrupt), or 1023.
#[unsafe(no_mangle)]
pub static IRQ_FAST_HV_SPI: AtomicU32 = AtomicU32::new(1023);
/// Interrupts each CPU injected on the fast path (added to its EL2 entry
/// and vIRQ statistics when they are read).
#[unsafe(no_mangle)]
pub static IRQ_FAST_COUNT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
