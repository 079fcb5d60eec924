//! gic-demo: the EL1 virtual timer at 10 Hz; each firing prints how late it
//! came against its deadline (Jailhouse's gic-demo line, so existing scripts
//! keep working). Runs in a cell and bare on QEMU `virt` for a baseline.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use demos::console::{self, Console};
use demos::fmt::ld6;
use demos::jitter::{ticks_to_ns, Tracker};
use demos::{exceptions, gic, println, timer};

demos::entry!(main);

/// Timer firings per second.
const RATE_HZ: u64 = 10;

/// Counter ticks between two firings.
static PERIOD: AtomicU64 = AtomicU64::new(0);
/// Counter frequency, Hz.
static FREQ: AtomicU64 = AtomicU64::new(0);
/// Deadline the pending firing was programmed for.
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static JITTER: Tracker = Tracker::new();

fn main() -> ! {
    console::set(Console::Uart);
    println!("Initializing the GIC ({})...", gic::detect());
    if let Err(e) = gic::init() {
        println!("gic-demo: GIC set-up failed: {e}");
        demos::halt();
    }
    let freq = timer::frequency();
    println!("Initializing the timer ({freq} Hz counter, {RATE_HZ} Hz)...");
    if freq < RATE_HZ {
        println!("gic-demo: CNTFRQ_EL0 is {freq}: counter frequency not set");
        demos::halt();
    }
    let period = freq / RATE_HZ;
    FREQ.store(freq, Relaxed);
    PERIOD.store(period, Relaxed);

    exceptions::set_irq_handler(on_irq);
    if let Err(e) = gic::enable_irq(timer::VIRTUAL_TIMER_INTID) {
        println!("gic-demo: {e}");
        demos::halt();
    }
    let deadline = timer::counter() + period;
    DEADLINE.store(deadline, Relaxed);
    timer::set_deadline(deadline);
    timer::enable();
    exceptions::unmask_irqs();
    demos::halt()
}

/// Measures the firing, re-arms one period after the previous deadline (so
/// that lateness never accumulates), then reports.
fn on_irq(intid: u32) {
    if intid != timer::VIRTUAL_TIMER_INTID {
        return;
    }
    let now = timer::counter();
    let expected = DEADLINE.load(Relaxed);
    let next = expected.wrapping_add(PERIOD.load(Relaxed));
    DEADLINE.store(next, Relaxed);
    timer::set_deadline(next);

    // Two's complement difference: a firing before its deadline (which
    // the architecture rules out) would show as negative, not as huge.
    let late_ticks = now.wrapping_sub(expected) as i64;
    let s = JITTER.record(ticks_to_ns(late_ticks, FREQ.load(Relaxed)));
    println!(
        "Timer fired, jitter: {} ns, min: {} ns, max: {} ns",
        ld6(s.jitter),
        ld6(s.min),
        ld6(s.max)
    );
}
