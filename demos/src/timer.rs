//! The EL1 virtual timer (CNTV_*) and the virtual counter (CNTVCT_EL0).
//!
//! In a cell the hypervisor owns CNTVOFF_EL2; bare at EL2 the entry code
//! sets it to zero. Its interrupt is PPI [`VIRTUAL_TIMER_INTID`].

/// INTID of the EL1 virtual timer's PPI.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

const CTL_ENABLE: u64 = 1 << 0;

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn frequency() -> u64 {
    let freq: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack, preserves_flags))
    };
    freq
}

/// The virtual counter (CNTVCT_EL0), read after an `isb` so that it is not
/// sampled ahead of the code before it.
pub fn counter() -> u64 {
    let now: u64;
    // SAFETY: `isb` and reading CNTVCT_EL0 have no side effects on memory.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) now, options(nomem, nostack, preserves_flags))
    };
    now
}

/// Programs the compare value: the timer condition is met once the
/// virtual counter reaches `deadline` (CNTV_CVAL_EL0). Writing a deadline
/// in the future also withdraws a pending timer interrupt.
pub fn set_deadline(deadline: u64) {
    // SAFETY: writes the EL1 virtual timer's compare value only.
    unsafe {
        core::arch::asm!("msr cntv_cval_el0, {}", "isb", in(reg) deadline, options(nomem, nostack, preserves_flags))
    };
}

/// Enables the virtual timer with its interrupt unmasked (CNTV_CTL_EL0).
pub fn enable() {
    // SAFETY: writes the EL1 virtual timer's control register only.
    unsafe {
        core::arch::asm!("msr cntv_ctl_el0, {}", "isb", in(reg) CTL_ENABLE, options(nomem, nostack, preserves_flags))
    };
}

/// Stops the virtual timer.
pub fn disable() {
    // SAFETY: writes the EL1 virtual timer's control register only.
    unsafe {
        core::arch::asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Busy-waits until the virtual counter reaches `deadline`.
pub fn wait_until(deadline: u64) {
    while counter() < deadline {
        core::hint::spin_loop();
    }
}

/// Busy-waits for `ms` milliseconds of counter time.
pub fn delay_ms(ms: u64) {
    let ticks = frequency().saturating_mul(ms) / 1000;
    wait_until(counter().saturating_add(ticks));
}
