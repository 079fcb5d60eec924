//! A set of interrupt IDs.

use core::fmt;

/// Number of INTIDs an [`IrqSet`] can hold (0..1020: SGIs, PPIs, SPIs).
pub const MAX_INTID: u32 = 1020;

const WORDS: usize = (MAX_INTID as usize).div_ceil(64);

/// A bitmap of INTIDs 0..1020 (the SPIs a cell owns, for instance).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IrqSet {
    bits: [u64; WORDS],
}

/// An INTID outside 0..1020 was given to [`IrqSet::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntIdOutOfRange(pub u32);

impl fmt::Display for IntIdOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "irq {}: INTID out of range (an SPI, PPI or SGI is below {MAX_INTID})",
            self.0
        )
    }
}

impl IrqSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self { bits: [0; WORDS] }
    }

    /// Adds `intid`; fails when it is not below [`MAX_INTID`].
    pub fn insert(&mut self, intid: u32) -> Result<(), IntIdOutOfRange> {
        if intid >= MAX_INTID {
            return Err(IntIdOutOfRange(intid));
        }
        self.bits[intid as usize / 64] |= 1 << (intid % 64);
        Ok(())
    }

    /// Removes `intid` (no effect when absent or out of range).
    pub fn remove(&mut self, intid: u32) {
        if intid < MAX_INTID {
            self.bits[intid as usize / 64] &= !(1 << (intid % 64));
        }
    }

    /// Whether `intid` is in the set (false for anything out of range).
    pub fn contains(&self, intid: u32) -> bool {
        intid < MAX_INTID && self.bits[intid as usize / 64] & (1 << (intid % 64)) != 0
    }

    /// The INTIDs in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..MAX_INTID).filter(move |&i| self.contains(i))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
}

impl fmt::Debug for IrqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_iter() {
        let mut s = IrqSet::new();
        assert!(s.is_empty());
        s.insert(32).unwrap();
        s.insert(1019).unwrap();
        s.insert(63).unwrap();
        s.insert(64).unwrap();
        assert!(s.contains(32) && s.contains(63) && s.contains(64) && s.contains(1019));
        assert!(!s.contains(33) && !s.contains(1020) && !s.contains(u32::MAX));
        assert_eq!(s.iter().collect::<alloc::vec::Vec<_>>(), [32, 63, 64, 1019]);
        s.remove(63);
        assert!(!s.contains(63));
    }

    #[test]
    fn out_of_range_is_refused() {
        let mut s = IrqSet::new();
        assert_eq!(s.insert(1020), Err(IntIdOutOfRange(1020)));
        assert_eq!(
            IntIdOutOfRange(1020).to_string(),
            "irq 1020: INTID out of range (an SPI, PPI or SGI is below 1020)"
        );
        assert!(s.is_empty());
    }
}
