//! Aligned 64-bit volatile accesses to memory mapped from `/dev/mem`.
//!
//! Linux maps what is not its RAM through `/dev/mem` as Device memory:
//! unaligned accesses fault there, and the management page is emulated by
//! the hypervisor, which decodes only single loads and stores (ESR ISV=1).
//! So every access here is one aligned 64-bit load or store; on aarch64 it
//! is written in assembly as a plain `ldr`/`str` with a base register, so
//! the compiler can pick neither a pair nor a writeback form. Bytes are
//! moved with whole words: a partial word at either end of a range is read,
//! merged and written back, so the bytes around the range keep their value.

/// Reads the 64-bit word at `p`.
///
/// # Safety
/// `p` is 8-byte aligned and valid for a volatile 64-bit read.
#[inline]
pub unsafe fn load64(p: *const u64) -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: the caller guarantees `p` is aligned and readable; one
        // `ldr` with a plain base register.
        unsafe {
            core::arch::asm!("ldr {v}, [{p}]", v = out(reg) v, p = in(reg) p,
                options(nostack, preserves_flags, readonly));
        }
        v
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller guarantees `p` is aligned and readable.
    unsafe {
        p.read_volatile()
    }
}

/// Writes the 64-bit word `v` at `p`.
///
/// # Safety
/// `p` is 8-byte aligned and valid for a volatile 64-bit write.
#[inline]
pub unsafe fn store64(p: *mut u64, v: u64) {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller guarantees `p` is aligned and writable; one `str`
    // with a plain base register.
    unsafe {
        core::arch::asm!("str {v}, [{p}]", v = in(reg) v, p = in(reg) p,
            options(nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller guarantees `p` is aligned and writable.
    unsafe {
        p.write_volatile(v)
    }
}

/// Reads the 32-bit word at `p` (an emulated 32-bit register, e.g. an
/// ivshmem register page).
///
/// # Safety
/// `p` is 4-byte aligned and valid for a volatile 32-bit read.
#[inline]
pub unsafe fn load32(p: *const u32) -> u32 {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u32;
        // SAFETY: the caller guarantees `p` is aligned and readable; one
        // `ldr` of a W register with a plain base register.
        unsafe {
            core::arch::asm!("ldr {v:w}, [{p}]", v = out(reg) v, p = in(reg) p,
                options(nostack, preserves_flags, readonly));
        }
        v
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller guarantees `p` is aligned and readable.
    unsafe {
        p.read_volatile()
    }
}

/// Writes the 32-bit word `v` at `p`.
///
/// # Safety
/// `p` is 4-byte aligned and valid for a volatile 32-bit write.
#[inline]
pub unsafe fn store32(p: *mut u32, v: u32) {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller guarantees `p` is aligned and writable; one `str`
    // of a W register with a plain base register.
    unsafe {
        core::arch::asm!("str {v:w}, [{p}]", v = in(reg) v, p = in(reg) p,
            options(nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    // SAFETY: the caller guarantees `p` is aligned and writable.
    unsafe {
        p.write_volatile(v)
    }
}

/// Waits until earlier memory accesses have completed (`dsb sy`), so the
/// hypervisor sees the buffer written before a command and the CLI sees
/// what it wrote after one.
#[inline]
pub fn barrier() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier has no operands and touches no memory.
    unsafe {
        core::arch::asm!("dsb sy", options(nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// The words `[first, end)` that bytes `[offset, offset + len)` touch.
pub fn word_span(offset: usize, len: usize) -> Option<(usize, usize)> {
    let end = offset.checked_add(len)?;
    Some((offset / 8, end.div_ceil(8)))
}

/// Copies `data` to byte `offset` from `base` with aligned 64-bit volatile
/// stores; the partial words at either end are read and merged first.
///
/// # Safety
/// `base` is 8-byte aligned and valid for volatile reads and writes of the
/// words [`word_span`]`(offset, data.len())` names.
pub unsafe fn copy_in(base: *mut u64, offset: usize, data: &[u8]) {
    let Some((first, end)) = word_span(offset, data.len()) else {
        return;
    };
    if data.is_empty() {
        return;
    }
    let stop = offset + data.len();
    for w in first..end {
        let start = w * 8;
        // SAFETY: `w` is inside the span the caller guarantees.
        let p = unsafe { base.add(w) };
        let word = if start >= offset && start + 8 <= stop {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&data[start - offset..start - offset + 8]);
            u64::from_ne_bytes(bytes)
        } else {
            // SAFETY: as above.
            let mut bytes = unsafe { load64(p) }.to_ne_bytes();
            for (i, b) in bytes.iter_mut().enumerate() {
                let at = start + i;
                if at >= offset && at < stop {
                    *b = data[at - offset];
                }
            }
            u64::from_ne_bytes(bytes)
        };
        // SAFETY: as above.
        unsafe { store64(p, word) };
    }
}

/// Copies `len` bytes from byte `offset` from `base` with aligned 64-bit
/// volatile loads.
///
/// # Safety
/// `base` is 8-byte aligned and valid for volatile reads of the words
/// [`word_span`]`(offset, len)` names.
pub unsafe fn copy_out(base: *const u64, offset: usize, len: usize) -> Vec<u8> {
    let Some((first, end)) = word_span(offset, len) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(len);
    let stop = offset + len;
    for w in first..end {
        // SAFETY: `w` is inside the span the caller guarantees.
        let bytes = unsafe { load64(base.add(w)) }.to_ne_bytes();
        let start = w * 8;
        for (i, b) in bytes.into_iter().enumerate() {
            let at = start + i;
            if at >= offset && at < stop {
                out.push(b);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn spans() {
        assert_eq!(word_span(0, 0), Some((0, 0)));
        assert_eq!(word_span(0, 8), Some((0, 1)));
        assert_eq!(word_span(3, 6), Some((0, 2)));
        assert_eq!(word_span(8, 1), Some((1, 2)));
        assert_eq!(word_span(usize::MAX, 2), None);
    }

    #[test]
    fn copy_in_keeps_the_neighbours() {
        for offset in 0..17 {
            for len in 0..30 {
                let mut words = vec![u64::MAX; 8];
                let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) + 1).collect();
                // SAFETY: 8 words cover offset + len <= 46 bytes.
                unsafe { copy_in(words.as_mut_ptr(), offset, &data) };
                let got = bytes_of(&words);
                let mut want = vec![0xffu8; 64];
                want[offset..offset + len].copy_from_slice(&data);
                assert_eq!(got, want, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn copy_out_reads_exactly() {
        let words: Vec<u64> = (0..8u64).map(|i| 0x0101_0101_0101_0101 * (i + 1)).collect();
        let all = bytes_of(&words);
        for offset in 0..17 {
            for len in 0..30 {
                // SAFETY: 8 words cover the range.
                let got = unsafe { copy_out(words.as_ptr(), offset, len) };
                assert_eq!(got, &all[offset..offset + len]);
            }
        }
    }

    #[test]
    fn registers() {
        let mut w = 0u64;
        // SAFETY: a local, aligned word.
        unsafe {
            store64(&mut w, 0x1234_5678_9abc_def0);
            assert_eq!(load64(&w), 0x1234_5678_9abc_def0);
        }
        barrier();
    }
}
