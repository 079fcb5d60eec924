//! The gic-demo program, shared by `gic-demo` (approves shutdown requests)
//! and `gic-demo-locked` (denies them).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use demos::comm::{self, CommRegion, Response, ShutdownPolicy};
use demos::console::{self, Console};
use demos::fmt::ld6;
use demos::jitter::{ticks_to_ns, Tracker};
use demos::{exceptions, gic, println, timer};

/// Timer firings per second.
const RATE_HZ: u64 = 10;

/// Counter ticks between two firings.
static PERIOD: AtomicU64 = AtomicU64::new(0);
/// Counter frequency, Hz.
static FREQ: AtomicU64 = AtomicU64::new(0);
/// Deadline the pending firing was programmed for.
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static JITTER: Tracker = Tracker::new();
/// Whether shutdown requests are refused ([`ShutdownPolicy::Deny`]).
static DENY_SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Sets up the GIC and the timer, then waits for interrupts forever.
/// `lock`: also lock the cell (running/locked) against reconfiguration.
pub fn run(policy: ShutdownPolicy, lock: bool) -> ! {
    DENY_SHUTDOWN.store(policy == ShutdownPolicy::Deny, Relaxed);
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
    // Look for the communication region now, so that its hypercalls stay
    // out of the timer interrupt; later calls return the cached answer.
    // gic-demo-locked also locks the cell against reconfiguration.
    if let Some(c) = comm::region() {
        if lock {
            c.set_locked(true);
            println!("gic-demo: cell locked against reconfiguration");
        }
    }

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
/// that lateness never accumulates), reports, then answers the hypervisor's
/// message if one is pending.
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

    if let Some(comm) = comm::region() {
        answer(comm);
    }
}

/// Answers the pending message. An approved shutdown stops the timer
/// before the reply goes out: once the hypervisor reads the reply it may
/// park this CPU at any moment, and the CPU then only waits in WFI in
/// `run`'s final halt.
fn answer(comm: CommRegion) {
    let policy = if DENY_SHUTDOWN.load(Relaxed) {
        ShutdownPolicy::Deny
    } else {
        ShutdownPolicy::Approve
    };
    let response = comm::respond(comm.pending_message(), policy);
    match response {
        Response::Idle => return,
        Response::ShutDown => {
            timer::disable();
            println!("gic-demo: shutdown approved");
        }
        Response::Refuse => println!("gic-demo: shutdown denied"),
        Response::Unknown(msg) => println!("gic-demo: unknown message {msg} from the hypervisor"),
    }
    if let Some(reply) = response.reply() {
        comm.reply(reply);
    }
}
