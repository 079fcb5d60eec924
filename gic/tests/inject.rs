//! Injection through list registers, the overflow queue and refill.

mod common;

use common::FakeLrs;
use gic::{inject, refill, Lr, LrState, PendingQueue, QueueFull, QUEUE_CAPACITY};

#[test]
fn free_list_register_is_used() {
    let mut lrs = FakeLrs::new(4);
    let mut q = PendingQueue::new();
    inject(&mut lrs, &mut q, Lr::pending(27, Some(27), 0xa0)).unwrap();
    assert_eq!(lrs.lrs[0], Lr::pending(27, Some(27), 0xa0));
    assert!(q.is_empty() && !lrs.underflow);
}

#[test]
fn no_duplicate_injection() {
    let mut lrs = FakeLrs::new(4);
    let mut q = PendingQueue::new();
    inject(&mut lrs, &mut q, Lr::pending(40, Some(40), 0xa0)).unwrap();
    inject(&mut lrs, &mut q, Lr::pending(40, Some(40), 0xa0)).unwrap();
    assert_eq!(lrs.vintids(), [40]);
    // Queued ones are not queued twice either.
    let mut full = FakeLrs::new(1);
    inject(&mut full, &mut q, Lr::pending(1, None, 0xa0)).unwrap();
    inject(&mut full, &mut q, Lr::pending(2, None, 0xa0)).unwrap();
    inject(&mut full, &mut q, Lr::pending(2, None, 0xa0)).unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn active_sgi_becomes_pending_and_active() {
    let mut lrs = FakeLrs::new(4);
    let mut q = PendingQueue::new();
    lrs.lrs[2] = Lr {
        state: LrState::Active,
        ..Lr::pending(3, None, 0x80)
    };
    inject(&mut lrs, &mut q, Lr::pending(3, None, 0x80)).unwrap();
    assert_eq!(lrs.lrs[2].state, LrState::PendingActive);
    assert_eq!(lrs.vintids(), [3]);
}

#[test]
fn full_list_registers_queue_and_set_underflow() {
    let mut lrs = FakeLrs::new(2);
    let mut q = PendingQueue::new();
    for v in [32, 33, 34, 35] {
        inject(&mut lrs, &mut q, Lr::pending(v, Some(v), 0xa0)).unwrap();
    }
    assert_eq!(lrs.vintids(), [32, 33]);
    assert_eq!(q.iter().map(|l| l.vintid).collect::<Vec<_>>(), [34, 35]);
    assert!(lrs.underflow);
}

#[test]
fn refill_drains_the_queue_and_clears_underflow() {
    let mut lrs = FakeLrs::new(2);
    let mut q = PendingQueue::new();
    for v in [32, 33, 34, 35, 36] {
        inject(&mut lrs, &mut q, Lr::pending(v, Some(v), 0xa0)).unwrap();
    }
    // The cell handled 32 and 33.
    lrs.lrs[0].state = LrState::Invalid;
    lrs.lrs[1].state = LrState::Invalid;
    refill(&mut lrs, &mut q);
    assert_eq!(lrs.vintids(), [34, 35]);
    assert!(lrs.underflow, "36 still waits");
    lrs.lrs[1].state = LrState::Invalid;
    refill(&mut lrs, &mut q);
    assert_eq!(lrs.vintids(), [34, 36]);
    assert!(q.is_empty() && !lrs.underflow);
}

#[test]
fn urgent_interrupt_takes_the_place_of_a_less_urgent_pending_one() {
    let mut lrs = FakeLrs::new(2);
    let mut q = PendingQueue::new();
    inject(&mut lrs, &mut q, Lr::pending(40, Some(40), 0xa0)).unwrap();
    inject(&mut lrs, &mut q, Lr::pending(41, Some(41), 0xc0)).unwrap();
    inject(&mut lrs, &mut q, Lr::pending(27, Some(27), 0x20)).unwrap();
    assert_eq!(lrs.vintids(), [40, 27]);
    assert_eq!(q.iter().map(|l| l.vintid).collect::<Vec<_>>(), [41]);
    // Refill places the most urgent first.
    inject(&mut lrs, &mut q, Lr::pending(42, Some(42), 0x90)).unwrap();
    assert_eq!(lrs.vintids(), [42, 27]);
    lrs.lrs[0].state = LrState::Invalid;
    refill(&mut lrs, &mut q);
    assert_eq!(lrs.vintids(), [40, 27]);
}

#[test]
fn active_hardware_interrupt_waits_in_the_queue() {
    let mut lrs = FakeLrs::new(4);
    let mut q = PendingQueue::new();
    lrs.lrs[0] = Lr {
        state: LrState::Active,
        ..Lr::pending(40, Some(40), 0xa0)
    };
    inject(&mut lrs, &mut q, Lr::pending(40, Some(40), 0xa0)).unwrap();
    assert_eq!(
        lrs.vintids(),
        [40],
        "never two list registers for one vINTID"
    );
    assert_eq!(q.len(), 1);
    refill(&mut lrs, &mut q);
    assert_eq!(q.len(), 1);
    // Deactivated by the cell: now it goes in.
    lrs.lrs[0].state = LrState::Invalid;
    refill(&mut lrs, &mut q);
    assert!(q.is_empty() && !lrs.underflow);
    assert_eq!(lrs.lrs[0], Lr::pending(40, Some(40), 0xa0));
}

#[test]
fn queue_full_is_reported() {
    let mut lrs = FakeLrs::new(1);
    let mut q = PendingQueue::new();
    inject(&mut lrs, &mut q, Lr::pending(0, None, 0xa0)).unwrap();
    for v in 0..QUEUE_CAPACITY as u32 {
        inject(&mut lrs, &mut q, Lr::pending(100 + v, None, 0xa0)).unwrap();
    }
    assert_eq!(
        inject(&mut lrs, &mut q, Lr::pending(999, None, 0xa0)),
        Err(QueueFull { vintid: 999 })
    );
    assert_eq!(q.len(), QUEUE_CAPACITY);
    assert_eq!(
        QueueFull { vintid: 999 }.to_string(),
        "virtual irq 999: list registers and pending queue (64) full"
    );
}

#[test]
fn clear_empties_everything() {
    let mut lrs = FakeLrs::new(1);
    let mut q = PendingQueue::new();
    inject(&mut lrs, &mut q, Lr::pending(1, None, 0xa0)).unwrap();
    inject(&mut lrs, &mut q, Lr::pending(2, None, 0xa0)).unwrap();
    gic::clear(&mut lrs, &mut q);
    assert!(lrs.vintids().is_empty() && q.is_empty() && !lrs.underflow);
}
