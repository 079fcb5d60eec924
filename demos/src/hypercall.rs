//! Cellblock hypercalls (`hvc #0x4a48`, x0 = code, x1/x2 = arguments,
//! result in x0; negative values are errno codes). See docs/abi.md.

/// Per-CPU statistics readable with `cpu_get_info` (defined in hv-core).
pub use hv_core::abi::CpuStat;
use hv_core::abi::CPU_STAT_BASE;

/// Hypercall codes the inmates use.
pub mod code {
    use hv_core::abi::Hypercall;
    /// `cpu_get_info(cpu, what)`.
    pub const CPU_GET_INFO: u64 = Hypercall::CpuGetInfo as u64;
    /// `debug_console_putc(byte)`.
    pub const DEBUG_CONSOLE_PUTC: u64 = Hypercall::DebugConsolePutc as u64;
}

/// `cpu_get_info` selector of statistic `n` (1000 + n).
pub const CPU_INFO_STAT_BASE: u64 = CPU_STAT_BASE;

/// Issues hypercall `code` with arguments `arg1`, `arg2`; returns x0.
pub fn call(code: u64, arg1: u64, arg2: u64) -> i64 {
    let ret: u64;
    // SAFETY: the hypercall traps to the hypervisor, which reads x0-x2 and
    // writes x0; all other registers the C ABI lets a callee change are
    // declared clobbered, and no memory is shared with the hypervisor.
    unsafe {
        core::arch::asm!(
            "hvc #0x4a48",
            inlateout("x0") code => ret,
            in("x1") arg1,
            in("x2") arg2,
            clobber_abi("C"),
            options(nostack),
        );
    }
    // x0 carries a signed result.
    ret as i64
}

/// Writes one byte to the hypervisor's debug console.
pub fn debug_console_putc(byte: u8) -> i64 {
    call(code::DEBUG_CONSOLE_PUTC, u64::from(byte), 0)
}

/// Reads statistic `stat` of CPU `cpu`; negative on error (e.g. -EINVAL
/// for a CPU that does not exist).
pub fn cpu_stat(cpu: u64, stat: CpuStat) -> i64 {
    call(code::CPU_GET_INFO, cpu, CPU_INFO_STAT_BASE + stat as u64)
}
