//! C-`printf`-style integer formatting without `core::fmt`'s padding
//! machinery: `%6ld` is [`Ld::new(v, 6)`](Ld) (or [`ld6`]).

use core::fmt;

/// Longest decimal rendering of an `i64`: `-9223372036854775808`.
const MAX_DIGITS: usize = 20;

/// Writes `value` in decimal, right-aligned in at least `width` characters
/// (spaces on the left), like C's `%<width>ld`, into `buf`; returns the
/// formatted text. Widths beyond the buffer are clamped to it.
pub fn format_ld(value: i64, width: usize, buf: &mut [u8; 32]) -> &str {
    let mut digits = [0u8; MAX_DIGITS];
    let mut n = 0;
    // unsigned_abs covers i64::MIN, whose magnitude has no i64.
    let mut magnitude = value.unsigned_abs();
    loop {
        // `magnitude % 10` is below 10, so the cast cannot truncate.
        digits[n] = b'0' + (magnitude % 10) as u8;
        n += 1;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    let sign = usize::from(value < 0);
    let len = (n + sign).max(width.min(buf.len()));
    let pad = len - n - sign;
    buf[..pad].fill(b' ');
    if sign == 1 {
        buf[pad] = b'-';
    }
    for (i, d) in digits[..n].iter().rev().enumerate() {
        buf[pad + sign + i] = *d;
    }
    // Only ASCII spaces, '-' and digits were written.
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// A signed 64-bit value shown as C's `%<width>ld`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ld {
    value: i64,
    width: usize,
}

impl Ld {
    /// `value` right-aligned in `width` characters.
    pub const fn new(value: i64, width: usize) -> Self {
        Self { value, width }
    }
}

/// `value` as C's `%6ld`.
pub const fn ld6(value: i64) -> Ld {
    Ld::new(value, 6)
}

impl fmt::Display for Ld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        f.write_str(format_ld(self.value, self.width, &mut buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(value: i64, width: usize) -> String {
        let mut buf = [0u8; 32];
        format_ld(value, width, &mut buf).to_string()
    }

    #[test]
    fn pads_like_printf_ld() {
        assert_eq!(ld(0, 6), "     0");
        assert_eq!(ld(42, 6), "    42");
        assert_eq!(ld(-42, 6), "   -42");
        assert_eq!(ld(123456, 6), "123456");
        assert_eq!(ld(-12345, 6), "-12345");
    }

    #[test]
    fn never_truncates_wide_values() {
        assert_eq!(ld(1234567, 6), "1234567");
        assert_eq!(ld(-123456, 6), "-123456");
        assert_eq!(ld(i64::MAX, 6), "9223372036854775807");
        assert_eq!(ld(i64::MIN, 6), "-9223372036854775808");
        assert_eq!(ld(7, 0), "7");
    }

    #[test]
    fn matches_core_width_formatting() {
        for v in [0, 1, -1, 9, 10, 99999, 100000, -99999, -100000, 1 << 40] {
            for w in 0..12 {
                assert_eq!(ld(v, w), format!("{v:w$}"), "value {v} width {w}");
            }
        }
    }

    #[test]
    fn clamps_width_to_buffer() {
        assert_eq!(ld(5, 100).len(), 32);
        assert!(ld(5, 100).ends_with('5'));
    }

    #[test]
    fn display_uses_the_width() {
        assert_eq!(format!("[{}]", ld6(-3)), "[    -3]");
        assert_eq!(format!("[{}]", Ld::new(12, 3)), "[ 12]");
    }
}
