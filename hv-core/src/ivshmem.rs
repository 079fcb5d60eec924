//! ivshmem: shared memory between two cells with doorbells
//! (docs/ivshmem.md). Defined once here for the hypervisor, the `cellblock`
//! CLI and the inmates.
//!
//! Each end of a link has a 4 KiB *register page* that the hypervisor
//! emulates (32-bit registers, one aligned 32-bit load or store each):
//!
//! | offset | register | access |
//! | --- | --- | --- |
//! | 0x00 | [`reg::ID`]: the link id | read |
//! | 0x04 | [`reg::PEER`]: 1 while the peer cell exists and runs, else 0 | read |
//! | 0x08 | [`reg::DOORBELL`]: any value raises the peer's interrupt | write |
//!
//! Other offsets read as 0 and ignore writes.
//!
//! The message protocol of `cellblock ivshmem ping` and `ivshmem-demo`
//! ([`msg`]) is a convention of those two programs, not of the hypervisor:
//! the initiator (the root cell) writes a sequence number into
//! [`msg::TO_PEER`] and rings; the responder checks it ([`Sequence`]),
//! copies it to [`msg::FROM_PEER`] and rings back.

/// Size of a register page.
pub const REGS_SIZE: u64 = 0x1000;

// The slots sit in separate 64-byte lines; the registers in the page.
const _: () = assert!(msg::FROM_PEER >= msg::TO_PEER + 64 && msg::FROM_PEER + 8 <= msg::SIZE);
const _: () = assert!(reg::DOORBELL < REGS_SIZE);

/// Register offsets in the register page.
pub mod reg {
    /// Read: the link id (`ivshmem[].id`).
    pub const ID: u64 = 0x00;
    /// Read: 1 while the peer cell exists and runs, else 0.
    pub const PEER: u64 = 0x04;
    /// Write: rings the peer (any value).
    pub const DOORBELL: u64 = 0x08;
}

/// The ping protocol's layout of the shared memory: 64-bit slots, each in
/// its own 64-byte line.
pub mod msg {
    /// Initiator → responder: the sequence number of the message.
    pub const TO_PEER: u64 = 0x00;
    /// Responder → initiator: the sequence number it received.
    pub const FROM_PEER: u64 = 0x40;
    /// Bytes of shared memory the protocol needs.
    pub const SIZE: u64 = 0x80;
}

/// What a responder saw in one message, against the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The next number (or 1: the initiator started a new run).
    InOrder,
    /// The same number again.
    Duplicate,
    /// A number was skipped (`expected` < `got`).
    Lost { expected: u64 },
    /// An older number (`got` < `expected`, not 1).
    Reordered { expected: u64 },
}

/// The responder's view of the sequence numbers it has received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    last: u64,
    /// Messages received.
    pub received: u64,
    /// Messages out of sequence.
    pub errors: u64,
}

impl Sequence {
    pub const fn new() -> Self {
        Self {
            last: 0,
            received: 0,
            errors: 0,
        }
    }

    /// The state after `received` messages, the last one `last`, `errors`
    /// of them out of sequence (for a caller that keeps the fields apart).
    pub const fn resume(last: u64, received: u64, errors: u64) -> Self {
        Self {
            last,
            received,
            errors,
        }
    }

    /// The last number received (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Records message `got`.
    pub fn record(&mut self, got: u64) -> Seen {
        let expected = self.last.wrapping_add(1);
        let seen = if got == expected || got == 1 {
            Seen::InOrder
        } else if got == self.last {
            Seen::Duplicate
        } else if got > expected {
            Seen::Lost { expected }
        } else {
            Seen::Reordered { expected }
        };
        self.received += 1;
        if seen != Seen::InOrder {
            self.errors += 1;
        }
        self.last = got;
        seen
    }
}

/// The initiator's check of one answer: the responder must echo `sent`.
pub fn check_echo(sent: u64, got: u64) -> Seen {
    if got == sent {
        Seen::InOrder
    } else if got.wrapping_add(1) == sent {
        // The previous answer again: this round trip's was never written.
        Seen::Duplicate
    } else if got < sent {
        Seen::Reordered { expected: sent }
    } else {
        Seen::Lost { expected: sent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_in_order_and_restarts() {
        let mut s = Sequence::new();
        for n in 1..=5 {
            assert_eq!(s.record(n), Seen::InOrder);
        }
        assert_eq!(s.record(1), Seen::InOrder);
        assert_eq!(s.record(2), Seen::InOrder);
        assert_eq!((s.received, s.errors), (7, 0));
    }

    #[test]
    fn sequence_errors() {
        let mut s = Sequence::new();
        s.record(1);
        s.record(2);
        assert_eq!(s.record(2), Seen::Duplicate);
        assert_eq!(s.record(4), Seen::Lost { expected: 3 });
        assert_eq!(s.record(3), Seen::Reordered { expected: 5 });
        assert_eq!((s.received, s.errors), (5, 3));
        let mut r = Sequence::resume(s.last(), s.received, s.errors);
        assert_eq!(r.record(4), Seen::InOrder);
        assert_eq!(r, Sequence::resume(4, 6, 3));
    }

    #[test]
    fn echo_check() {
        assert_eq!(check_echo(7, 7), Seen::InOrder);
        assert_eq!(check_echo(7, 6), Seen::Duplicate);
        assert_eq!(check_echo(7, 3), Seen::Reordered { expected: 7 });
        assert_eq!(check_echo(7, 9), Seen::Lost { expected: 7 });
    }
}
