//! What a trapped access is, what a cell owns, and the register-file
//! abstraction the emulation performs accesses on.

use core::fmt;

use crate::irqset::IrqSet;
use crate::regs::AFFINITY_MASK;

/// One decoded MMIO access of a cell to an emulated GIC frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Offset from the frame's base.
    pub offset: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// `Some(value)` for a write, `None` for a read.
    pub write: Option<u64>,
}

impl MmioAccess {
    /// A read of `size` bytes at `offset`.
    pub const fn read(offset: u64, size: u8) -> Self {
        Self {
            offset,
            size,
            write: None,
        }
    }

    /// A write of `value` (`size` bytes) at `offset`.
    pub const fn write(offset: u64, size: u8, value: u64) -> Self {
        Self {
            offset,
            size,
            write: Some(value),
        }
    }
}

/// A register file addressed by offset: the real GIC frame (see
/// `Mmio` on aarch64) or a fake in tests.
pub trait RegIo {
    /// Reads `size` bytes (1, 2, 4 or 8) at `offset`.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// Writes the low `size` bytes of `value` at `offset`.
    fn write(&mut self, offset: u64, size: u8, value: u64);
}

impl<T: RegIo + ?Sized> RegIo for &mut T {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        (**self).read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        (**self).write(offset, size, value)
    }
}

/// A physical CPU as the GIC addresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuId {
    /// Logical CPU id (index into the platform's CPU list).
    pub index: u32,
    /// MPIDR affinity (Aff3 at bits 39:32, Aff2..Aff0 at bits 23:0).
    pub mpidr: u64,
    /// GICv2 CPU interface bit (ITARGETSR / SGIR target list), `1 << index`
    /// on QEMU.
    pub v2_target: u8,
}

impl CpuId {
    /// The affinity fields of `mpidr`, other bits cleared.
    pub const fn affinity(&self) -> u64 {
        self.mpidr & AFFINITY_MASK
    }
}

/// What the cell on the current CPU may touch.
#[derive(Clone, Copy, Debug)]
pub struct CellView<'a> {
    /// The SPIs the cell owns.
    pub spis: &'a IrqSet,
    /// The cell's CPUs.
    pub cpus: &'a [CpuId],
    /// The CPU the access comes from (one of `cpus`).
    pub current: CpuId,
}

impl CellView<'_> {
    /// Whether `cpu` belongs to the cell (compared by logical index).
    pub fn owns_cpu(&self, cpu: &CpuId) -> bool {
        self.cpus.iter().any(|c| c.index == cpu.index)
    }

    /// Whether the cell owns SPI `intid` (false for SGIs and PPIs).
    pub fn owns_spi(&self, intid: u32) -> bool {
        intid >= 32 && self.spis.contains(intid)
    }

    /// The cell's CPUs as a GICv2 target mask.
    pub fn v2_mask(&self) -> u8 {
        self.cpus.iter().fold(0, |m, c| m | c.v2_target)
    }
}

/// An access that cannot be performed; the caller fails the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The register does not support an access of this size.
    Width { offset: u64, size: u8 },
    /// The offset is not a multiple of the access size.
    Unaligned { offset: u64 },
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Width { offset, size } => write!(
                f,
                "GIC register at offset {offset:#x}: {size}-byte access not supported"
            ),
            Denied::Unaligned { offset } => {
                write!(f, "GIC register at offset {offset:#x}: unaligned access")
            }
        }
    }
}

/// Checks size and alignment common to every GIC register.
pub(crate) fn check_basic(acc: &MmioAccess) -> Result<(), Denied> {
    if !matches!(acc.size, 1 | 2 | 4 | 8) {
        return Err(Denied::Width {
            offset: acc.offset,
            size: acc.size,
        });
    }
    if acc.offset & (u64::from(acc.size) - 1) != 0 {
        return Err(Denied::Unaligned { offset: acc.offset });
    }
    Ok(())
}

/// All ones in the low `size` bytes.
pub(crate) const fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size as u32 * 8)) - 1
    }
}

/// How writes to a per-IRQ register family behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    /// Write-1-to-set / write-1-to-clear: zeros have no effect, so the
    /// masked value is written as is.
    SetClear,
    /// Plain read/write: other cells' bits are kept by read-modify-write.
    Rmw,
}

/// A block of per-IRQ registers: `bits` bits per INTID from `base` on,
/// covering INTIDs `0..irqs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Family {
    pub base: u64,
    pub bits: u32,
    pub irqs: u32,
    pub kind: WriteKind,
    /// Byte accesses allowed (IPRIORITYR, ITARGETSR); otherwise 32-bit only.
    pub bytes: bool,
}

impl Family {
    pub const fn len(&self) -> u64 {
        (self.irqs as u64 * self.bits as u64) / 8
    }

    pub const fn contains(&self, offset: u64) -> bool {
        offset >= self.base && offset < self.base + self.len()
    }

    /// Checks the access width for this family.
    pub fn check_width(&self, acc: &MmioAccess) -> Result<(), Denied> {
        match acc.size {
            4 => Ok(()),
            1 if self.bytes => Ok(()),
            _ => Err(Denied::Width {
                offset: acc.offset,
                size: acc.size,
            }),
        }
    }

    /// First INTID covered by an access at `offset`.
    pub fn first_irq(&self, offset: u64) -> u32 {
        ((offset - self.base) * 8 / u64::from(self.bits)) as u32
    }

    /// The bits of an access at `offset` of `size` bytes that belong to
    /// INTIDs for which `allowed` holds.
    pub fn mask(&self, offset: u64, size: u8, allowed: impl Fn(u32) -> bool) -> u64 {
        let first = self.first_irq(offset);
        let count = u32::from(size) * 8 / self.bits;
        let field = (1u64 << self.bits) - 1;
        (0..count)
            .filter(|&i| allowed(first + i))
            .fold(0, |m, i| m | field << (i * self.bits))
    }

    /// Performs `acc` on `hw`, restricted to the bits in `mask`.
    pub fn perform(&self, acc: &MmioAccess, mask: u64, hw: &mut impl RegIo) -> u64 {
        match acc.write {
            None if mask == 0 => 0,
            None => hw.read(acc.offset, acc.size) & mask,
            Some(v) => {
                write_masked(self.kind, acc, v, mask, hw);
                0
            }
        }
    }
}

/// Writes `value` to the bits in `mask` only.
pub(crate) fn write_masked(
    kind: WriteKind,
    acc: &MmioAccess,
    value: u64,
    mask: u64,
    hw: &mut impl RegIo,
) {
    let full = size_mask(acc.size);
    let value = value & full;
    let mask = mask & full;
    if mask == 0 {
        return;
    }
    match kind {
        WriteKind::SetClear => {
            if value & mask != 0 {
                hw.write(acc.offset, acc.size, value & mask);
            }
        }
        WriteKind::Rmw if mask == full => hw.write(acc.offset, acc.size, value),
        WriteKind::Rmw => {
            let old = hw.read(acc.offset, acc.size);
            let new = (old & !mask) | (value & mask);
            if new != old {
                hw.write(acc.offset, acc.size, new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_mask_covers_the_right_fields() {
        let prio = Family {
            base: 0x400,
            bits: 8,
            irqs: 1020,
            kind: WriteKind::Rmw,
            bytes: true,
        };
        // Word at 0x420 = INTIDs 32..35; allow 33 and 35.
        assert_eq!(prio.mask(0x420, 4, |i| i == 33 || i == 35), 0xff00_ff00);
        // Byte at 0x423 = INTID 35.
        assert_eq!(prio.mask(0x423, 1, |i| i == 35), 0xff);
        let cfg = Family {
            base: 0xc00,
            bits: 2,
            irqs: 1020,
            kind: WriteKind::Rmw,
            bytes: false,
        };
        // Word at 0xc08 = INTIDs 32..47; allow 47.
        assert_eq!(cfg.mask(0xc08, 4, |i| i == 47), 0xc000_0000);
        assert!(cfg.contains(0xcfc) && !cfg.contains(0xd00));
    }

    #[test]
    fn basic_checks() {
        assert_eq!(
            check_basic(&MmioAccess::read(0x102, 4)),
            Err(Denied::Unaligned { offset: 0x102 })
        );
        assert_eq!(
            check_basic(&MmioAccess::read(0x100, 3)),
            Err(Denied::Width {
                offset: 0x100,
                size: 3
            })
        );
        assert_eq!(check_basic(&MmioAccess::read(0x100, 8)), Ok(()));
    }
}
