//! ARM64 Image header and boot code.
//!
//! The image starts with the header Linux's `booti` protocol defines
//! (Documentation/arm64/booting.rst), so QEMU `-kernel` and the hypervisor's
//! loader treat it like a kernel Image: code0 branches to the entry code,
//! text_offset 0, image_size covers BSS and stack, flags = little endian,
//! 4K pages, anywhere in memory.
//!
//! Entered at EL2 (bare QEMU with `virtualization=on`), the code makes EL1
//! usable without a hypervisor (AArch64 EL1, EL1 access to the physical
//! counter and timer, no virtual counter offset, no stage 2, GICv3 system
//! registers enabled for EL1, MIDR/MPIDR passed through), installs a tiny EL2
//! vector table that answers hypercalls (debug-console putc goes to the
//! PL011, everything else returns -ENOSYS) and drops to EL1h at the same
//! code. At EL1 (in a cell, or QEMU without EL2) it enables FP/SIMD, turns
//! on the MMU and caches with the identity map [`IDENTITY_MAP`], points SP at
//! the stack in BSS, zeroes BSS, installs VBAR_EL1 and calls [`rust_entry`].
//!
//! Why a stage-1 map at all: with the MMU off every data access is
//! Device-nGnRnE, uncached. On hardware that would put the IRQ entry's
//! 720-byte register frame and the handler's stack traffic into gic-demo's
//! measurement (microseconds, not the hypervisor's cost) and would forbid
//! unaligned accesses and exclusives. One level-1 table of 1 GiB blocks is
//! enough for every address an inmate uses, so the cost is four
//! descriptors.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// MAIR_EL1: attribute 0 = Device-nGnRnE, attribute 1 = Normal memory,
/// inner and outer write-back, read- and write-allocate.
const MAIR_EL1: u64 = 0xff << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;

/// TCR_EL1: T0SZ = 32 (4 GiB of VA, walks start at level 1), table walks
/// inner/outer write-back cacheable and inner shareable, 4 KiB granule,
/// TTBR1 walks disabled (EPD1), IPS = 32 bits.
const TCR_EL1: u64 = 32 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23);

/// Level-1 block descriptor bits: valid block, access flag.
const BLOCK: u64 = 0b01 | (1 << 10);
/// Inner shareable (Normal memory).
const INNER_SHAREABLE: u64 = 3 << 8;
/// Neither EL0 nor EL1 may execute (device memory, the comm region).
const EXECUTE_NEVER: u64 = (1 << 54) | (1 << 53);

/// The level-1 table: 0..1 GiB (GIC, UART and every other device of QEMU
/// `virt` and of the cell configs) as Device-nGnRnE, never executable;
/// 1..2 GiB (RAM, where the image runs) as Normal write-back memory; 2..3
/// GiB as Normal write-back memory, never executable, for the
/// communication region at 0x8000_0000 (ordinary RAM the hypervisor shares
/// with the cell, so both sides see it cacheable; [`crate::comm::region`]
/// reads it only inside a non-root cell); the rest unmapped, so a stray
/// access faults and is reported. The probe's 0x5000_0000 lies in the
/// Normal GiB: it is still a single `ldr`, whose stage-2 abort the
/// hypervisor decodes.
#[repr(C, align(4096))]
struct Level1Table([u64; 4]);

static IDENTITY_MAP: Level1Table = Level1Table([
    BLOCK | ATTR_DEVICE | EXECUTE_NEVER,
    0x4000_0000 | BLOCK | ATTR_NORMAL | INNER_SHAREABLE,
    0x8000_0000 | BLOCK | ATTR_NORMAL | INNER_SHAREABLE | EXECUTE_NEVER,
    0,
]);

static STARTED_AT_EL2: AtomicBool = AtomicBool::new(false);

/// Runtime entry from the assembly above, on the BSS stack at EL1 with
/// interrupts masked; `el2` tells whether the image was entered at EL2.
extern "C" fn rust_entry(el2: u64) -> ! {
    STARTED_AT_EL2.store(el2 != 0, Relaxed);
    extern "C" {
        fn __cellblock_inmate_main() -> !;
    }
    // SAFETY: every inmate binary defines this symbol with `demos::entry!`,
    // as a safe `extern "C" fn() -> !`; the runtime calls it exactly once.
    unsafe { __cellblock_inmate_main() }
}

/// Whether the image was entered at EL2, i.e. runs bare without a
/// hypervisor underneath (with `virtualization=on`).
pub fn started_at_el2() -> bool {
    STARTED_AT_EL2.load(Relaxed)
}

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       1f                      // code0
    .word   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size, BSS and stack included
    .quad   0b1010                  // flags: LE, 4K pages, anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .word   0                       // res5

1:  msr     daifset, #0xf
    mrs     x19, CurrentEL
    ubfx    x19, x19, #2, #2
    cmp     x19, #1
    b.eq    3f
    cmp     x19, #2
    b.ne    2f

    // EL2, no hypervisor: prepare EL1 and drop to it.
    mov     x9, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64
    msr     hcr_el2, x9
    mov     x9, #3                  // CNTHCTL_EL2.EL1PCEN | EL1PCTEN
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    msr     vttbr_el2, xzr
    msr     hstr_el2, xzr
    mov     x9, #0x33ff             // CPTR_EL2: RES1 bits, no FP/SIMD trap
    msr     cptr_el2, x9
    mrs     x9, midr_el1
    msr     vpidr_el2, x9
    mrs     x9, mpidr_el1
    msr     vmpidr_el2, x9
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4         // GIC system register interface?
    cbz     x9, 4f
    mov     x9, #0xf                // ICC_SRE_EL2: SRE, DFB, DIB, Enable
    msr     icc_sre_el2, x9
4:  adrp    x9, cellblock_inmate_el2_vectors
    add     x9, x9, :lo12:cellblock_inmate_el2_vectors
    msr     vbar_el2, x9
    movz    x9, #0x1808             // SCTLR_EL1: RES1 bits, I, SA;
    movk    x9, #0x30d0, lsl #16    // MMU, D-cache, alignment check off
    msr     sctlr_el1, x9
    mov     x9, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x9
    adr     x9, 3f
    msr     elr_el2, x9
    isb
    eret

2:  wfe                             // EL3 or EL0: not supported
    b       2b

    // EL1.
3:  mov     x9, #(3 << 20)          // CPACR_EL1.FPEN: no FP/SIMD trap
    msr     cpacr_el1, x9
    movz    x9, #0x1808             // SCTLR_EL1: RES1 bits, I, SA;
    movk    x9, #0x30d0, lsl #16    // MMU, D-cache, alignment check off
    msr     sctlr_el1, x9
    isb
    adrp    x9, {identity_map}      // stage 1: identity map, see IDENTITY_MAP
    add     x9, x9, :lo12:{identity_map}
    msr     ttbr0_el1, x9
    mov     x9, #{mair}
    msr     mair_el1, x9
    movz    x9, #{tcr_lo}
    movk    x9, #{tcr_hi}, lsl #16
    msr     tcr_el1, x9
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    movz    x9, #0x180d             // SCTLR_EL1 as above plus M and C
    movk    x9, #0x30d0, lsl #16
    msr     sctlr_el1, x9
    isb
    adrp    x9, __stack_top
    add     x9, x9, :lo12:__stack_top
    mov     sp, x9
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
5:  cmp     x9, x10
    b.hs    6f
    str     xzr, [x9], #8
    b       5b
6:  adrp    x9, cellblock_inmate_el1_vectors
    add     x9, x9, :lo12:cellblock_inmate_el1_vectors
    msr     vbar_el1, x9
    isb
    cmp     x19, #2
    cset    x0, eq
    bl      {rust_entry}
    b       2b

    // Stand-in for a hypervisor when the image runs bare at EL2. Only
    // lower-EL AArch64 synchronous exceptions (offset 0x400) are expected;
    // anything else parks the CPU.
    .section .text.el2_vectors, "ax"
    .balign 2048
cellblock_inmate_el2_vectors:
    .rept 8
    .balign 0x80
    b       .
    .endr
    .balign 0x80
    b       cellblock_el2_lower_sync
    .rept 7
    .balign 0x80
    b       .
    .endr

cellblock_el2_lower_sync:
    msr     tpidr_el2, x2
    mrs     x2, esr_el2
    lsr     x2, x2, #26
    cmp     x2, #0x16               // HVC from AArch64
    b.ne    .
    cmp     x0, #8                  // debug_console_putc
    b.ne    2f
    movz    x0, #0x0900, lsl #16    // PL011 at 0x0900_0000
1:  ldr     w2, [x0, #0x18]         // UARTFR
    tbnz    w2, #5, 1b              // TXFF
    str     w1, [x0]                // UARTDR
    mov     x0, #0
    mrs     x2, tpidr_el2
    eret
2:  mov     x0, #-38                // -ENOSYS
    mrs     x2, tpidr_el2
    eret
    "#,
    rust_entry = sym rust_entry,
    identity_map = sym IDENTITY_MAP,
    mair = const MAIR_EL1,
    tcr_lo = const TCR_EL1 & 0xffff,
    tcr_hi = const TCR_EL1 >> 16,
);
