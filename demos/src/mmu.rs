//! Additions to the runtime's stage-1 identity map, and data cache
//! maintenance for DMA buffers.
//!
//! The entry code maps the first 4 GiB only (TCR_EL1.T0SZ = 32, 32-bit
//! output addresses). A device above that, such as QEMU `virt`'s PCI ECAM
//! at 0x40_1000_0000, needs a larger map: [`map_device`] switches to a
//! level-1 table of 512 GiB (T0SZ = 25, 40-bit output addresses) that
//! starts as a copy of the current one, plus identity-mapped 1 GiB
//! Device-nGnRnE blocks, execute-never. Everything mapped before keeps its
//! address and attributes, so the switch is safe while running from it.

use core::fmt;

/// Bytes mapped by one level-1 block.
pub const BLOCK_SIZE: u64 = 1 << 30;
/// Level-1 entries of the extended map (T0SZ = 25: 2^39 bytes).
pub const ENTRIES: usize = 512;
/// Virtual (and physical) addresses the extended map covers.
pub const VA_LIMIT: u64 = BLOCK_SIZE * ENTRIES as u64;
/// TCR_EL1.T0SZ of the extended map.
pub const T0SZ: u64 = 64 - 39;

/// Level-1 block descriptor: valid block, access flag.
const BLOCK: u64 = 0b01 | (1 << 10);
/// Neither EL0 nor EL1 may execute.
const EXECUTE_NEVER: u64 = (1 << 54) | (1 << 53);
/// MAIR encoding of Device-nGnRnE.
const MAIR_DEVICE_NGNRNE: u8 = 0x00;

/// Why a window could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Empty, or reaching beyond [`VA_LIMIT`].
    OutOfRange { start: u64, size: u64 },
    /// The 1 GiB block at `addr` is already mapped differently.
    Conflict { addr: u64 },
    /// MAIR_EL1 has no Device-nGnRnE attribute to use.
    NoDeviceAttribute,
    /// The CPU's physical address range (ID_AA64MMFR0_EL1.PARange) is
    /// below 40 bits.
    PhysicalRange { parange: u8 },
    /// The running map does not start at level 1 (TCR_EL1.T0SZ).
    UnsupportedMap { t0sz: u8 },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { start, size } => write!(
                f,
                "window {start:#x}+{size:#x}: empty or beyond the map's {VA_LIMIT:#x}"
            ),
            Self::Conflict { addr } => {
                write!(f, "the block at {addr:#x} is already mapped differently")
            }
            Self::NoDeviceAttribute => write!(f, "MAIR_EL1 has no Device-nGnRnE attribute"),
            Self::PhysicalRange { parange } => write!(
                f,
                "ID_AA64MMFR0_EL1.PARange {parange}: fewer than 40 physical address bits"
            ),
            Self::UnsupportedMap { t0sz } => {
                write!(
                    f,
                    "TCR_EL1.T0SZ {t0sz}: the running map does not start at level 1"
                )
            }
        }
    }
}

/// Level-1 indices of the 1 GiB blocks covering `start..start + size`.
pub fn block_indices(start: u64, size: u64) -> Result<core::ops::Range<usize>, MapError> {
    let err = MapError::OutOfRange { start, size };
    let end = start.checked_add(size).ok_or(err)?;
    if size == 0 || end > VA_LIMIT {
        return Err(err);
    }
    let first = start / BLOCK_SIZE;
    let last = end.div_ceil(BLOCK_SIZE);
    Ok(first as usize..last as usize)
}

/// The first MAIR_EL1 attribute index holding Device-nGnRnE.
pub fn device_attr_index(mair: u64) -> Option<u8> {
    (0..8u8).find(|i| (mair >> (8 * i)) as u8 == MAIR_DEVICE_NGNRNE)
}

/// Identity block descriptor of the 1 GiB block at level-1 `index`,
/// device memory with MAIR attribute `attr`.
pub fn device_block(index: usize, attr: u8) -> u64 {
    (index as u64 * BLOCK_SIZE) | BLOCK | u64::from(attr & 7) << 2 | EXECUTE_NEVER
}

/// Level-1 entries a running map with TCR_EL1.T0SZ = `t0sz` has, if it
/// starts at level 1 and fits the extended map.
pub fn level1_entries(t0sz: u8) -> Option<usize> {
    (25..=33)
        .contains(&t0sz)
        .then(|| 1usize << (64 - 30 - u32::from(t0sz)))
}

/// Puts identity device blocks for `indices` into `table`; a block that
/// is already valid must hold exactly that descriptor.
pub fn add_device_blocks(
    table: &mut [u64; ENTRIES],
    indices: core::ops::Range<usize>,
    attr: u8,
) -> Result<(), MapError> {
    for i in indices.clone() {
        let old = table[i];
        if old & 1 != 0 && old != device_block(i, attr) {
            return Err(MapError::Conflict {
                addr: i as u64 * BLOCK_SIZE,
            });
        }
    }
    for i in indices {
        table[i] = device_block(i, attr);
    }
    Ok(())
}

#[cfg(all(target_arch = "aarch64", not(test)))]
pub use hw::{clean_dcache, clean_invalidate_dcache, invalidate_dcache, map_device};

#[cfg(all(target_arch = "aarch64", not(test)))]
mod hw {
    use core::arch::asm;
    use core::cell::UnsafeCell;

    use super::{add_device_blocks, block_indices, device_attr_index, level1_entries};
    use super::{MapError, ENTRIES, T0SZ};

    #[repr(C, align(4096))]
    struct Table(UnsafeCell<[u64; ENTRIES]>);

    // SAFETY: the inmates run on one CPU and only `map_device` touches the
    // table, with interrupts unable to re-enter it (it is not called from
    // handlers).
    unsafe impl Sync for Table {}

    static TABLE: Table = Table(UnsafeCell::new([0; ENTRIES]));

    const TCR_T0SZ_MASK: u64 = 0x3f;
    const TCR_IPS_SHIFT: u64 = 32;
    const TCR_IPS_MASK: u64 = 0b111 << TCR_IPS_SHIFT;
    /// IPS / PARange encoding of 40 bits.
    const PA_40_BITS: u64 = 0b010;
    const TTBR_BADDR_MASK: u64 = 0x0000_ffff_ffff_fffe;

    macro_rules! sysreg {
        ($name:literal) => {{
            let value: u64;
            // SAFETY: reading this system register has no side effects.
            unsafe {
                asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags))
            };
            value
        }};
    }

    /// Identity-maps `start..start + size` (rounded out to 1 GiB blocks)
    /// as Device-nGnRnE, execute-never, switching to the 512 GiB map on
    /// the first call. Must not be called from an interrupt handler.
    pub fn map_device(start: u64, size: u64) -> Result<(), MapError> {
        let indices = block_indices(start, size)?;
        let attr = device_attr_index(sysreg!("mair_el1")).ok_or(MapError::NoDeviceAttribute)?;
        let parange = (sysreg!("id_aa64mmfr0_el1") & 0xf) as u8;
        if u64::from(parange) < PA_40_BITS {
            return Err(MapError::PhysicalRange { parange });
        }
        let table_addr = TABLE.0.get() as u64;
        let ttbr = sysreg!("ttbr0_el1");
        let tcr = sysreg!("tcr_el1");
        let switched = ttbr & TTBR_BADDR_MASK == table_addr;

        // SAFETY: TABLE is only touched here; see its `Sync` impl.
        let table = unsafe { &mut *TABLE.0.get() };
        let mut new = *table;
        if !switched {
            let t0sz = (tcr & TCR_T0SZ_MASK) as u8;
            let old_entries = level1_entries(t0sz).ok_or(MapError::UnsupportedMap { t0sz })?;
            let old = (ttbr & TTBR_BADDR_MASK) as *const u64;
            for (i, entry) in new.iter_mut().enumerate() {
                *entry = if i < old_entries {
                    // SAFETY: the running level-1 table lies in RAM the
                    // identity map covers (the entry code's static), and
                    // has `old_entries` descriptors.
                    unsafe { old.add(i).read_volatile() }
                } else {
                    0
                };
            }
        }
        add_device_blocks(&mut new, indices, attr)?;
        *table = new;

        if switched {
            // New blocks replace invalid entries only: no TLB entry can
            // hold them, so the stores need only be visible to the walker.
            // SAFETY: barriers only.
            unsafe { asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
            return Ok(());
        }
        let ips = ((tcr & TCR_IPS_MASK) >> TCR_IPS_SHIFT).max(PA_40_BITS);
        let new_tcr = (tcr & !(TCR_T0SZ_MASK | TCR_IPS_MASK)) | T0SZ | ips << TCR_IPS_SHIFT;
        // SAFETY: the new table maps everything the old one did to the
        // same addresses with the same attributes (and more), so the code,
        // stack and data in use stay where they are across the switch; the
        // TLB is invalidated afterwards so no entry of the old regime
        // survives. Walks are cacheable (TCR_EL1 IRGN/ORGN), so `dsb ishst`
        // makes the table stores visible to them.
        unsafe {
            asm!(
                "dsb ishst",
                "msr ttbr0_el1, {ttbr}",
                "msr tcr_el1, {tcr}",
                "isb",
                "tlbi vmalle1",
                "dsb nsh",
                "isb",
                ttbr = in(reg) table_addr,
                tcr = in(reg) new_tcr,
                options(nostack, preserves_flags),
            )
        };
        Ok(())
    }

    /// Smallest data cache line (CTR_EL0.DminLine), in bytes.
    fn line_size() -> usize {
        4 << ((sysreg!("ctr_el0") >> 16) & 0xf)
    }

    macro_rules! dcache_op {
        ($(#[$doc:meta])* $name:ident, $op:literal) => {
            $(#[$doc])*
            pub fn $name(addr: usize, len: usize) {
                let line = line_size();
                let mut at = addr & !(line - 1);
                let end = addr.saturating_add(len);
                while at < end {
                    // SAFETY: data cache maintenance by VA to the point of
                    // coherency changes no memory contents as seen by this
                    // CPU; the caller names memory it owns.
                    unsafe { asm!(concat!("dc ", $op, ", {}"), in(reg) at, options(nostack, preserves_flags)) };
                    at += line;
                }
                // SAFETY: barrier only: completes the maintenance before
                // the device is told to access the memory.
                unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
            }
        };
    }

    dcache_op!(
        /// Writes dirty lines of `addr..addr + len` back to the point of
        /// coherency (before a device reads the memory by DMA).
        clean_dcache,
        "cvac"
    );
    dcache_op!(
        /// Writes back and drops the lines of `addr..addr + len` (after a
        /// device wrote the memory by DMA, so that the CPU reads what it
        /// wrote; also before, so that no dirty line overwrites it later).
        clean_invalidate_dcache,
        "civac"
    );

    /// Same as [`clean_invalidate_dcache`]: `dc ivac` could discard
    /// neighbouring data that shares a line with the buffer, so the
    /// inmates never use it.
    pub fn invalidate_dcache(addr: usize, len: usize) {
        clean_invalidate_dcache(addr, len)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    /// The entry code's MAIR_EL1: Device-nGnRnE at 0, Normal WB at 1.
    const RUNTIME_MAIR: u64 = 0xff << 8;

    #[test]
    fn block_indices_cover_the_window() {
        // QEMU virt's ECAM: one block at 0x40_0000_0000 (index 256).
        assert_eq!(block_indices(0x40_1000_0000, 0x1000_0000), Ok(256..257));
        assert_eq!(block_indices(0x3fff_ffff, 2), Ok(0..2));
        assert_eq!(block_indices(VA_LIMIT - 1, 1), Ok(511..512));
        for (start, size) in [(0, 0), (VA_LIMIT, 1), (u64::MAX, 2), (VA_LIMIT - 1, 2)] {
            assert_eq!(
                block_indices(start, size),
                Err(MapError::OutOfRange { start, size })
            );
        }
    }

    #[test]
    fn device_attr_and_descriptor() {
        assert_eq!(device_attr_index(RUNTIME_MAIR), Some(0));
        assert_eq!(device_attr_index(0x00ff), Some(1));
        assert_eq!(device_attr_index(u64::MAX), None);
        // Same bits as the entry code's device block, at 256 GiB.
        assert_eq!(
            device_block(256, 0),
            0x40_0000_0000 | 0b01 | 1 << 10 | 1 << 54 | 1 << 53
        );
    }

    #[test]
    fn level1_entries_for_t0sz() {
        assert_eq!(level1_entries(32), Some(4));
        assert_eq!(level1_entries(25), Some(512));
        assert_eq!(level1_entries(24), None);
        assert_eq!(level1_entries(34), None);
    }

    #[test]
    fn add_device_blocks_keeps_the_old_map_and_refuses_conflicts() {
        let mut table = [0u64; ENTRIES];
        table[1] = 0x4000_0000 | BLOCK | 1 << 2;
        add_device_blocks(&mut table, 256..257, 0).unwrap();
        assert_eq!(table[256], device_block(256, 0));
        assert_eq!(table[1], 0x4000_0000 | BLOCK | 1 << 2);
        // Mapping the same window again is fine; over RAM it is not.
        add_device_blocks(&mut table, 256..257, 0).unwrap();
        assert_eq!(
            add_device_blocks(&mut table, 0..2, 0),
            Err(MapError::Conflict { addr: 0x4000_0000 })
        );
        assert_eq!(table[0], 0, "nothing written on conflict");
    }
}
