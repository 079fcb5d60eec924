//! Timer-jitter bookkeeping for gic-demo: counter ticks to nanoseconds and
//! the running minimum/maximum.
//!
//! The tracker is written from the timer interrupt handler only (one writer
//! on one CPU), so relaxed atomic loads and stores suffice; they compile to
//! plain `ldr`/`str` (see the crate documentation on the memory model).

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Converts a signed number of counter ticks at `freq_hz` to nanoseconds,
/// saturating at the `i64` range. A zero frequency (an unprogrammed
/// CNTFRQ_EL0) yields 0 rather than a division fault.
pub fn ticks_to_ns(ticks: i64, freq_hz: u64) -> i64 {
    if freq_hz == 0 {
        return 0;
    }
    let ns = i128::from(ticks) * 1_000_000_000 / i128::from(freq_hz);
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// One timer firing as gic-demo prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Lateness of this firing against its deadline, in ns.
    pub jitter: i64,
    /// Smallest jitter seen so far, first firing excluded (0 until then).
    pub min: i64,
    /// Largest jitter seen so far, first firing excluded (0 until then).
    pub max: i64,
}

/// Running minimum and maximum of the jitter. The first firing is left out
/// of both: it follows the demo's own set-up (console output, GIC
/// initialisation) rather than a steady-state period.
pub struct Tracker {
    samples: AtomicU64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub const fn new() -> Self {
        Self {
            samples: AtomicU64::new(0),
            min: AtomicI64::new(0),
            max: AtomicI64::new(0),
        }
    }

    /// Records one firing's jitter (ns) and returns what to print.
    pub fn record(&self, jitter: i64) -> Sample {
        let seen = self.samples.load(Relaxed);
        self.samples.store(seen.saturating_add(1), Relaxed);
        let (min, max) = match seen {
            0 => (0, 0),
            1 => (jitter, jitter),
            _ => (
                self.min.load(Relaxed).min(jitter),
                self.max.load(Relaxed).max(jitter),
            ),
        };
        self.min.store(min, Relaxed);
        self.max.store(max, Relaxed);
        Sample { jitter, min, max }
    }

    /// Number of firings recorded.
    pub fn samples(&self) -> u64 {
        self.samples.load(Relaxed)
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks_at_common_frequencies() {
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(1, 62_500_000), 16);
        assert_eq!(ticks_to_ns(-625, 62_500_000), -10_000);
        assert_eq!(ticks_to_ns(3, 1_000_000_000), 3);
        assert_eq!(ticks_to_ns(24, 24_000_000), 1_000);
    }

    #[test]
    fn conversion_saturates_and_survives_zero_frequency() {
        assert_eq!(ticks_to_ns(i64::MAX, 1), i64::MAX);
        assert_eq!(ticks_to_ns(i64::MIN, 1), i64::MIN);
        assert_eq!(ticks_to_ns(1000, 0), 0);
    }

    #[test]
    fn first_firing_is_left_out_of_min_and_max() {
        let t = Tracker::new();
        assert_eq!(
            t.record(900_000),
            Sample {
                jitter: 900_000,
                min: 0,
                max: 0
            }
        );
        assert_eq!(
            t.record(500),
            Sample {
                jitter: 500,
                min: 500,
                max: 500
            }
        );
        assert_eq!(
            t.record(200),
            Sample {
                jitter: 200,
                min: 200,
                max: 500
            }
        );
        assert_eq!(
            t.record(800),
            Sample {
                jitter: 800,
                min: 200,
                max: 800
            }
        );
        assert_eq!(
            t.record(300),
            Sample {
                jitter: 300,
                min: 200,
                max: 800
            }
        );
        assert_eq!(t.samples(), 5);
    }

    #[test]
    fn negative_jitter_is_tracked() {
        let t = Tracker::default();
        t.record(0);
        t.record(-50);
        assert_eq!(
            t.record(10),
            Sample {
                jitter: 10,
                min: -50,
                max: 10
            }
        );
    }
}
