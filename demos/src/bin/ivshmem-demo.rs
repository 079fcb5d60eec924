//! ivshmem-demo: the bare-metal end of ivshmem link 0
//! (configs/cells/qemu-ivshmem-demo.toml, docs/ivshmem.md). On each
//! doorbell from the root cell it reads the sequence number in
//! `msg::TO_PEER`, checks that it is the previous one plus 1 (1 starts a
//! new run), copies it to `msg::FROM_PEER` and rings back. Every 1000
//! messages it prints `ivshmem-demo: N messages, E errors` on its UART.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use demos::console::{self, Console};
use demos::ivshmem::{msg, Link, Seen, Sequence};
use demos::{exceptions, gic, println};

demos::entry!(main);

/// Link 0 as the cell config places it.
const LINK: Link = Link {
    regs: 0x0c10_0000,
    shmem: 0x0c20_0000,
    irq: 109,
};
/// Messages between two progress lines.
const REPORT_EVERY: u64 = 1000;

/// The [`Sequence`] fields, as relaxed atomics (one CPU, see the crate
/// documentation): last number, received, errors.
static LAST: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    console::set(Console::Uart);
    if let Err(e) = gic::init() {
        println!("ivshmem-demo: GIC set-up failed: {e}");
        demos::halt();
    }
    exceptions::set_irq_handler(on_irq);
    if let Err(e) = LINK.enable_irq() {
        println!("ivshmem-demo: {e}");
        demos::halt();
    }
    println!(
        "ivshmem-demo: link {} ready (peer {}), IRQ {}",
        LINK.id(),
        if LINK.peer_up() { "up" } else { "down" },
        LINK.irq
    );
    exceptions::unmask_irqs();
    demos::halt()
}

/// One doorbell: check the message, echo it, ring back.
fn on_irq(intid: u32) {
    if intid != LINK.irq {
        return;
    }
    let got = LINK.read_slot(msg::TO_PEER);
    let mut seq = Sequence::resume(
        LAST.load(Relaxed),
        RECEIVED.load(Relaxed),
        ERRORS.load(Relaxed),
    );
    let seen = seq.record(got);
    LAST.store(seq.last(), Relaxed);
    RECEIVED.store(seq.received, Relaxed);
    ERRORS.store(seq.errors, Relaxed);
    LINK.write_slot(msg::FROM_PEER, got);
    LINK.ring();
    match seen {
        Seen::InOrder => {}
        Seen::Duplicate => println!("ivshmem-demo: message {got} duplicated"),
        Seen::Lost { expected } => println!("ivshmem-demo: got {got}, expected {expected}: lost"),
        Seen::Reordered { expected } => {
            println!("ivshmem-demo: got {got}, expected {expected}: reordered")
        }
    }
    if seq.received.is_multiple_of(REPORT_EVERY) {
        println!(
            "ivshmem-demo: {} messages, {} errors",
            seq.received, seq.errors
        );
    }
}
