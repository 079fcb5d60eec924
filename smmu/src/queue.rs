//! Queue indices as the SMMU's PROD/CONS registers hold them: the entry
//! index in the low `log2size` bits and a wrap flag just above, which
//! tells a full queue (same index, different wrap) from an empty one.

/// A producer or consumer position in a queue of `2^log2size` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueuePtr {
    log2size: u32,
    value: u32,
}

impl QueuePtr {
    /// Position 0 of a queue of `2^log2size` entries (`log2size` <= 19).
    pub(crate) fn new(log2size: u32) -> Self {
        Self { log2size, value: 0 }
    }

    /// The position a register value names; bits above the wrap flag
    /// (such as CMDQ_CONS.ERR or EVENTQ_PROD.OVFLG) are ignored.
    pub(crate) fn from_reg(log2size: u32, reg: u32) -> Self {
        Self {
            log2size,
            value: reg & Self::mask(log2size),
        }
    }

    fn mask(log2size: u32) -> u32 {
        (2u32 << log2size) - 1
    }

    /// Register value (index and wrap flag).
    pub(crate) fn value(self) -> u32 {
        self.value
    }

    /// Entry index.
    pub(crate) fn index(self) -> usize {
        (self.value & ((1 << self.log2size) - 1)) as usize
    }

    fn wrap(self) -> bool {
        self.value >> self.log2size & 1 == 1
    }

    /// The next position (wrapping, toggling the wrap flag).
    pub(crate) fn next(self) -> Self {
        Self {
            log2size: self.log2size,
            value: self.value.wrapping_add(1) & Self::mask(self.log2size),
        }
    }

    /// Entries from `cons` up to `prod`. More than `2^log2size` only if the
    /// register values are inconsistent.
    pub(crate) fn distance(prod: Self, cons: Self) -> u32 {
        prod.value.wrapping_sub(cons.value) & Self::mask(prod.log2size)
    }

    /// `n` positions further on.
    pub(crate) fn advance(self, n: u32) -> Self {
        Self {
            log2size: self.log2size,
            value: self.value.wrapping_add(n) & Self::mask(self.log2size),
        }
    }

    /// No entry between `cons` and `prod`.
    pub(crate) fn is_empty(prod: Self, cons: Self) -> bool {
        prod.value == cons.value
    }

    /// Every entry between `cons` and `prod` is in use.
    pub(crate) fn is_full(prod: Self, cons: Self) -> bool {
        prod.index() == cons.index() && prod.wrap() != cons.wrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_toggles() {
        let mut p = QueuePtr::new(2);
        for _ in 0..4 {
            p = p.next();
        }
        assert_eq!(p.index(), 0);
        assert_eq!(p.value(), 0b100);
        for _ in 0..4 {
            p = p.next();
        }
        assert_eq!(p.value(), 0);
    }

    #[test]
    fn full_and_empty() {
        let cons = QueuePtr::new(2);
        let mut prod = cons;
        assert!(QueuePtr::is_empty(prod, cons));
        for _ in 0..3 {
            prod = prod.next();
            assert!(!QueuePtr::is_full(prod, cons));
            assert!(!QueuePtr::is_empty(prod, cons));
        }
        prod = prod.next();
        assert!(QueuePtr::is_full(prod, cons));
        assert!(!QueuePtr::is_empty(prod, cons));
    }

    #[test]
    fn distance_across_the_wrap() {
        let cons = QueuePtr::from_reg(2, 0b011);
        let prod = QueuePtr::from_reg(2, 0b101);
        assert_eq!(QueuePtr::distance(prod, cons), 2);
        assert_eq!(cons.advance(2), prod);
        assert_eq!(QueuePtr::distance(cons, cons), 0);
        assert_eq!(QueuePtr::distance(cons.advance(4), cons), 4);
        // Impossible but representable: seven ahead in a queue of four.
        assert_eq!(QueuePtr::distance(cons.advance(7), cons), 7);
    }

    #[test]
    fn register_bits_above_the_wrap_flag_are_ignored() {
        let p = QueuePtr::from_reg(3, 0x8100_000d);
        assert_eq!(p.value(), 0xd);
        assert_eq!(p.index(), 5);
        // A zero-sized log2 (one entry) still works.
        let one = QueuePtr::new(0);
        assert_eq!(one.next().index(), 0);
        assert!(QueuePtr::is_full(one.next(), one));
        assert_eq!(QueuePtr::from_reg(19, u32::MAX).value(), 0xf_ffff);
    }
}
