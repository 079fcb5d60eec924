//! Stage-2 translation tables of a cell (IPA → PA), built with
//! `aarch64-paging`: 4 KiB granule, a level-1 root (39-bit IPA space),
//! 1 GiB and 2 MiB blocks wherever both addresses and the size allow.

use aarch64_paging::descriptor::{PhysicalAddress, Stage2Attributes};
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{Constraints, MemoryRegion, Stage2};
use aarch64_paging::{MapError, Mapping};
use core::fmt;

/// Root level of every cell's stage-2 table: level 1 covers 2^39 bytes.
pub const ROOT_LEVEL: usize = 1;
/// Size of the IPA space a cell can use.
pub const IPA_BITS: u32 = 39;

/// Access rights of a stage-2 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// Memory type of a stage-2 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Normal write-back cacheable RAM.
    Normal,
    /// Device-nGnRE MMIO.
    Device,
}

/// Why a mapping could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage2Error {
    /// Address or size not 4 KiB aligned.
    Unaligned { ipa: u64, pa: u64, size: u64 },
    /// The IPA range leaves the 39-bit IPA space.
    OutOfRange { ipa: u64, size: u64 },
    /// The IPA range is already (partly) mapped.
    Overlap { ipa: u64, size: u64 },
    /// The table library refused.
    Map(MapError),
    /// The hypervisor's memory pool is exhausted.
    OutOfMemory,
}

impl fmt::Display for Stage2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { ipa, pa, size } => write!(
                f,
                "IPA {ipa:#x} / PA {pa:#x} / size {size:#x} not 4 KiB aligned"
            ),
            Self::OutOfRange { ipa, size } => {
                write!(
                    f,
                    "IPA range {ipa:#x}+{size:#x} exceeds the {IPA_BITS}-bit IPA space"
                )
            }
            Self::Overlap { ipa, size } => {
                write!(
                    f,
                    "IPA range {ipa:#x}+{size:#x} overlaps an existing mapping"
                )
            }
            Self::Map(e) => write!(f, "page table error: {e}"),
            Self::OutOfMemory => write!(f, "out of hypervisor memory"),
        }
    }
}

/// One translation found by [`Stage2Table::translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: u64,
    pub access: Access,
    pub kind: MemKind,
    /// Table level of the descriptor: 1 = 1 GiB block, 2 = 2 MiB block, 3 = page.
    pub level: usize,
}

/// A cell's stage-2 table.
pub struct Stage2Table {
    mapping: Mapping<IdTranslation<Stage2Attributes>, Stage2>,
}

const PAGE: u64 = 4096;

fn attributes(access: Access, kind: MemKind) -> Stage2Attributes {
    let mut a = Stage2Attributes::VALID | Stage2Attributes::ACCESS_FLAG;
    a |= match kind {
        MemKind::Normal => {
            Stage2Attributes::MEMATTR_NORMAL_INNER_WB
                | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
                | Stage2Attributes::SH_INNER
        }
        MemKind::Device => Stage2Attributes::MEMATTR_DEVICE_nGnRE,
    };
    a |= match (access.read, access.write) {
        (true, true) => Stage2Attributes::S2AP_ACCESS_RW,
        (true, false) => Stage2Attributes::S2AP_ACCESS_RO,
        (false, true) => Stage2Attributes::S2AP_ACCESS_WO,
        (false, false) => Stage2Attributes::S2AP_ACCESS_NONE,
    };
    if !access.exec || kind == MemKind::Device {
        a |= Stage2Attributes::XN;
    }
    a
}

fn decode(attrs: Stage2Attributes) -> (Access, MemKind) {
    let ap = attrs & Stage2Attributes::S2AP_ACCESS_RW;
    let access = Access {
        read: ap.contains(Stage2Attributes::S2AP_ACCESS_RO),
        write: ap.contains(Stage2Attributes::S2AP_ACCESS_WO),
        exec: !attrs.contains(Stage2Attributes::XN),
    };
    let kind = if attrs.contains(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB) {
        MemKind::Normal
    } else {
        MemKind::Device
    };
    (access, kind)
}

impl Default for Stage2Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage2Table {
    /// An empty table (every IPA faults).
    pub fn new() -> Self {
        Self {
            mapping: Mapping::new(IdTranslation::new(), ROOT_LEVEL, Stage2),
        }
    }

    /// Physical address of the root table, for VTTBR_EL2.
    pub fn root_pa(&self) -> u64 {
        self.mapping.root_address().0 as u64
    }

    /// Maps `[ipa, ipa + size)` to `[pa, pa + size)`. Refuses ranges that are
    /// unaligned, out of range or already mapped.
    pub fn map(
        &mut self,
        ipa: u64,
        pa: u64,
        size: u64,
        access: Access,
        kind: MemKind,
    ) -> Result<(), Stage2Error> {
        if !ipa.is_multiple_of(PAGE)
            || !pa.is_multiple_of(PAGE)
            || !size.is_multiple_of(PAGE)
            || size == 0
        {
            return Err(Stage2Error::Unaligned { ipa, pa, size });
        }
        let end = ipa
            .checked_add(size)
            .filter(|e| *e <= 1u64 << IPA_BITS)
            .ok_or(Stage2Error::OutOfRange { ipa, size })?;
        if self.any_mapped(ipa, size) {
            return Err(Stage2Error::Overlap { ipa, size });
        }
        let region = MemoryRegion::new(ipa as usize, end as usize);
        self.mapping
            .map_range(
                &region,
                PhysicalAddress(pa as usize),
                attributes(access, kind),
                Constraints::empty(),
            )
            .map_err(Stage2Error::Map)
    }

    /// Removes `[ipa, ipa + size)`; the caller invalidates the TLB for the
    /// cell's VMID afterwards.
    pub fn unmap(&mut self, ipa: u64, size: u64) -> Result<(), Stage2Error> {
        let end = ipa
            .checked_add(size)
            .filter(|e| *e <= 1u64 << IPA_BITS)
            .ok_or(Stage2Error::OutOfRange { ipa, size })?;
        let region = MemoryRegion::new(ipa as usize, end as usize);
        self.mapping
            .map_range(
                &region,
                PhysicalAddress(0),
                Stage2Attributes::empty(),
                Constraints::empty(),
            )
            .map_err(Stage2Error::Map)?;
        self.mapping.compact_subtables();
        Ok(())
    }

    fn any_mapped(&self, ipa: u64, size: u64) -> bool {
        let mut found = false;
        let region = MemoryRegion::new(ipa as usize, (ipa + size) as usize);
        let _ = self.mapping.walk_range(&region, &mut |_, d, _| {
            if d.is_valid() {
                found = true;
            }
            Ok(())
        });
        found
    }

    /// Looks `ipa` up as the MMU would.
    pub fn translate(&self, ipa: u64) -> Option<Translation> {
        let mut out = None;
        let region = MemoryRegion::new(ipa as usize, ipa as usize + 1);
        self.mapping
            .walk_range(&region, &mut |mr, d, level| {
                if d.is_valid() && (level == 3 || !d.is_table_or_page()) {
                    let offset = ipa - mr.start().0 as u64;
                    let block = mr.start().0 as u64 & !(granule(level) - 1);
                    let offset = offset + (mr.start().0 as u64 - block);
                    let (access, kind) = decode(d.flags());
                    out = Some(Translation {
                        pa: d.output_address().0 as u64 + offset,
                        access,
                        kind,
                        level,
                    });
                }
                Ok(())
            })
            .ok()?;
        out
    }
}

fn granule(level: usize) -> u64 {
    1 << (12 + 9 * (3 - level as u32))
}

/// Physical address bits for an ID_AA64MMFR0_EL1.PARange value.
pub fn pa_bits(pa_range: u64) -> u32 {
    match pa_range {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

/// IPA bits a cell gets on a CPU with this PARange: the PA size, at most
/// [`IPA_BITS`] (what a level-1 root covers).
pub fn ipa_bits(pa_range: u64) -> u32 {
    pa_bits(pa_range).min(IPA_BITS)
}

/// VTCR_EL2 for a level-1 root and 4 KiB granule, given
/// ID_AA64MMFR0_EL1.PARange (which becomes VTCR_EL2.PS and bounds the IPA
/// size).
pub fn vtcr(pa_range: u64) -> u64 {
    let t0sz = 64 - u64::from(ipa_bits(pa_range));
    let sl0 = 1; // start at level 1
    let irgn0 = 1; // write-back write-allocate
    let orgn0 = 1;
    let sh0 = 3; // inner shareable
    let tg0 = 0; // 4 KiB
    let ps = pa_range.min(5) & 7;
    (1 << 31)
        | (ps << 16)
        | (tg0 << 14)
        | (sh0 << 12)
        | (orgn0 << 10)
        | (irgn0 << 8)
        | (sl0 << 6)
        | t0sz
}

/// VTTBR_EL2 for a table root and VMID (8-bit VMIDs).
pub fn vttbr(root_pa: u64, vmid: u16) -> u64 {
    (u64::from(vmid & 0xff) << 48) | root_pa
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    const RW: Access = Access {
        read: true,
        write: true,
        exec: false,
    };
    const RWX: Access = Access {
        read: true,
        write: true,
        exec: true,
    };
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn ram_translates_with_blocks_where_aligned() {
        let mut t = Stage2Table::new();
        // 2 MiB aligned on both sides, 6 MiB + 8 KiB long.
        t.map(
            0x4020_0000,
            0x4200_0000,
            6 * MIB + 0x2000,
            RWX,
            MemKind::Normal,
        )
        .unwrap();
        let tr = t.translate(0x4020_0000).unwrap();
        assert_eq!(tr.pa, 0x4200_0000);
        assert_eq!(tr.level, 2, "2 MiB block expected");
        assert_eq!(tr.access, RWX);
        assert_eq!(tr.kind, MemKind::Normal);
        let tr = t.translate(0x4020_0000 + 5 * MIB + 0x123).unwrap();
        assert_eq!(tr.pa, 0x4200_0000 + 5 * MIB + 0x123);
        let tail = t.translate(0x4020_0000 + 6 * MIB + 0x1008).unwrap();
        assert_eq!(tail.pa, 0x4200_0000 + 6 * MIB + 0x1008);
        assert_eq!(tail.level, 3, "unaligned tail uses pages");
        assert!(t.translate(0x4020_0000 + 6 * MIB + 0x2000).is_none());
        assert!(t.translate(0x4000_0000).is_none());
    }

    #[test]
    fn gib_blocks() {
        let mut t = Stage2Table::new();
        t.map(GIB, 2 * GIB, 2 * GIB, RW, MemKind::Normal).unwrap();
        let tr = t.translate(GIB + 12345).unwrap();
        assert_eq!(tr.level, 1);
        assert_eq!(tr.pa, 2 * GIB + 12345);
    }

    #[test]
    fn misaligned_pa_falls_back_to_pages() {
        let mut t = Stage2Table::new();
        t.map(0x4020_0000, 0x4200_1000, 2 * MIB, RW, MemKind::Normal)
            .unwrap();
        let tr = t.translate(0x4020_0000).unwrap();
        assert_eq!(tr.level, 3);
        assert_eq!(tr.pa, 0x4200_1000);
    }

    #[test]
    fn device_is_never_executable_and_permissions_hold() {
        let mut t = Stage2Table::new();
        t.map(0x0900_0000, 0x0904_0000, 0x1000, RWX, MemKind::Device)
            .unwrap();
        let ro = Access {
            read: true,
            write: false,
            exec: false,
        };
        t.map(0x5000_0000, 0x5000_0000, 0x1000, ro, MemKind::Normal)
            .unwrap();
        let tr = t.translate(0x0900_0010).unwrap();
        assert_eq!(tr.pa, 0x0904_0010);
        assert_eq!(tr.kind, MemKind::Device);
        assert!(!tr.access.exec);
        assert_eq!(t.translate(0x5000_0000).unwrap().access, ro);
    }

    #[test]
    fn overlaps_and_bad_ranges_refused() {
        let mut t = Stage2Table::new();
        t.map(0x4020_0000, 0x4200_0000, 2 * MIB, RW, MemKind::Normal)
            .unwrap();
        assert_eq!(
            t.map(0x4030_0000, 0x4300_0000, 0x1000, RW, MemKind::Normal),
            Err(Stage2Error::Overlap {
                ipa: 0x4030_0000,
                size: 0x1000
            })
        );
        assert!(matches!(
            t.map(0x123, 0, 0x1000, RW, MemKind::Normal),
            Err(Stage2Error::Unaligned { .. })
        ));
        assert!(matches!(
            t.map(1 << 39, 0, 0x1000, RW, MemKind::Normal),
            Err(Stage2Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn unmap_removes_part_of_a_block() {
        let mut t = Stage2Table::new();
        t.map(0x4020_0000, 0x4200_0000, 4 * MIB, RW, MemKind::Normal)
            .unwrap();
        t.unmap(0x4040_0000, 0x1000).unwrap();
        assert!(t.translate(0x4040_0000).is_none());
        assert_eq!(t.translate(0x4040_1000).unwrap().pa, 0x4220_1000);
        assert_eq!(t.translate(0x4020_0000).unwrap().pa, 0x4200_0000);
    }

    #[test]
    fn vtcr_fields() {
        let v = vtcr(2); // 40-bit PA
        assert_eq!(v & 0x3f, 25);
        assert_eq!(vtcr(1) & 0x3f, 64 - 36, "36-bit PA bounds the IPA space");
        assert_eq!((vtcr(0) >> 16) & 7, 0);
        assert_eq!((v >> 6) & 3, 1);
        assert_eq!((v >> 16) & 7, 2);
        assert_eq!(vttbr(0x4100_0000, 3), (3 << 48) | 0x4100_0000);
    }
}
