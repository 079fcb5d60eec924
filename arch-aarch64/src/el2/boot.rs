//! Image header, entry points, exception vectors and the guest entry path.

use core::arch::global_asm;

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
    .quad   0x2                 // flags: little endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    mov     x19, x0
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
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
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

el2_vector_common:
    bl      handle_exception
    RESTORE_FRAME_ERET
"#,
    stack = const STACK_SIZE,
);
