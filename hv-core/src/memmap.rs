//! Each cell's memory map: what the arch turns into stage-2 tables.
//!
//! Built from a [`CellConfig`]'s regions (checked for size, alignment,
//! overflow and overlap in the cell's address space), sorted by IPA.

use alloc::vec::Vec;

use crate::config::{CellConfig, MemFlag, MemoryRegion};
use crate::validate::{check_regions_local, ConfigErrors};

/// 4 KiB page.
pub const SIZE_4K: u64 = 0x1000;
/// 2 MiB block (level 2 with a 4 KiB granule).
pub const SIZE_2M: u64 = 0x20_0000;
/// 1 GiB block (level 1 with a 4 KiB granule).
pub const SIZE_1G: u64 = 0x4000_0000;

/// Access permissions of a mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Normal, cacheable memory.
    Normal,
    /// Device memory (nGnRE), never executable.
    Device,
}

/// One mapping: `[ipa, ipa + size)` in the cell to `[pa, pa + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
    pub access: Access,
    pub kind: Kind,
    /// Index of the region in the cell config.
    pub region: usize,
}

impl Mapping {
    fn from_region(index: usize, r: &MemoryRegion) -> Self {
        let io = r.has(MemFlag::Io);
        Self {
            ipa: r.virt_start,
            pa: r.phys_start,
            size: r.size,
            access: Access {
                read: r.has(MemFlag::Read),
                write: r.has(MemFlag::Write),
                exec: r.has(MemFlag::Execute) && !io,
            },
            kind: if io { Kind::Device } else { Kind::Normal },
            region: index,
        }
    }

    /// One past the last IPA (a valid map has no overflow).
    pub fn ipa_end(&self) -> u64 {
        self.ipa + self.size
    }

    /// Splits the mapping into the largest naturally aligned 1 GiB, 2 MiB
    /// and 4 KiB chunks, as `(ipa, size)`: a chunk is a block only where both
    /// its IPA and its PA are aligned to the block size.
    pub fn block_plan(&self) -> BlockPlan {
        BlockPlan {
            ipa: self.ipa,
            pa: self.pa,
            left: self.size,
        }
    }
}

/// Iterator returned by [`Mapping::block_plan`].
#[derive(Clone, Debug)]
pub struct BlockPlan {
    ipa: u64,
    pa: u64,
    left: u64,
}

impl Iterator for BlockPlan {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.left == 0 {
            return None;
        }
        let size = [SIZE_1G, SIZE_2M]
            .into_iter()
            .find(|&b| self.ipa.is_multiple_of(b) && self.pa.is_multiple_of(b) && self.left >= b)
            .unwrap_or(SIZE_4K.min(self.left));
        let chunk = (self.ipa, size);
        self.ipa += size;
        self.pa += size;
        self.left -= size;
        Some(chunk)
    }
}

/// A cell's mappings, sorted by IPA, non-overlapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellMemoryMap {
    mappings: Vec<Mapping>,
}

impl CellMemoryMap {
    /// Builds the map of `cell`, refusing regions of size 0, not 4 KiB
    /// aligned, overflowing, or overlapping in the cell's address space.
    /// Fields in errors are relative to the cell (`memory[1].size`).
    pub fn new(cell: &CellConfig) -> Result<Self, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        check_regions_local(cell, "", &mut errs);
        errs.into_result()?;
        let mut mappings: Vec<Mapping> = cell
            .memory
            .iter()
            .enumerate()
            .map(|(i, r)| Mapping::from_region(i, r))
            .collect();
        mappings.sort_by_key(|m| m.ipa);
        Ok(Self { mappings })
    }

    /// Mappings sorted by IPA.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The mapping that holds `ipa`.
    pub fn find(&self, ipa: u64) -> Option<&Mapping> {
        let i = self.mappings.partition_point(|m| m.ipa_end() <= ipa);
        self.mappings.get(i).filter(|m| m.ipa <= ipa)
    }

    /// Physical address, access and kind of `ipa`, if mapped.
    pub fn translate(&self, ipa: u64) -> Option<(u64, Access, Kind)> {
        self.find(ipa)
            .map(|m| (m.pa + (ipa - m.ipa), m.access, m.kind))
    }

    /// Whether every byte of `[ipa, ipa + size)` is mapped (across adjacent
    /// mappings too). An empty range is contained if `ipa` is mapped.
    pub fn contains_ipa_range(&self, ipa: u64, size: u64) -> bool {
        let Some(end) = ipa.checked_add(size.max(1)) else {
            return false;
        };
        let mut at = ipa;
        while at < end {
            match self.find(at) {
                Some(m) => at = m.ipa_end(),
                None => return false,
            }
        }
        true
    }

    /// See [`Mapping::block_plan`].
    pub fn block_plan(&self, mapping: &Mapping) -> BlockPlan {
        mapping.block_plan()
    }

    /// Number of 1 GiB blocks, 2 MiB blocks and 4 KiB pages over all mappings.
    pub fn block_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for (_, size) in self.mappings.iter().flat_map(Mapping::block_plan) {
            match size {
                SIZE_1G => counts.0 += 1,
                SIZE_2M => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Image;
    use alloc::string::{String, ToString};
    use alloc::vec;

    fn region(phys: u64, virt: u64, size: u64, flags: &[MemFlag]) -> MemoryRegion {
        MemoryRegion {
            phys_start: phys,
            virt_start: virt,
            size,
            flags: flags.to_vec(),
            comment: None,
        }
    }

    fn cell(memory: Vec<MemoryRegion>) -> CellConfig {
        CellConfig {
            name: "t".to_string(),
            cpus: vec![0],
            memory,
            irqs: vec![],
            entry: 0,
            entry_x0: None,
            streams: Vec::new(),
            ivshmem: Vec::new(),
            passive_comm: false,
            images: Vec::<Image>::new(),
        }
    }

    const RWX: &[MemFlag] = &[MemFlag::Read, MemFlag::Write, MemFlag::Execute];

    fn demo() -> CellMemoryMap {
        CellMemoryMap::new(&cell(vec![
            region(
                0x0904_0000,
                0x0900_0000,
                0x1000,
                &[MemFlag::Read, MemFlag::Write, MemFlag::Io],
            ),
            region(0x4200_0000, 0x4000_0000, 0x20_0000, RWX),
        ]))
        .unwrap()
    }

    #[test]
    fn sorted_and_translated() {
        let map = demo();
        // Config order was io first; the map is sorted by IPA anyway.
        let ipas: Vec<u64> = map.mappings().iter().map(|m| m.ipa).collect();
        assert_eq!(ipas, [0x0900_0000, 0x4000_0000]);

        let (pa, access, kind) = map.translate(0x4000_1234).unwrap();
        assert_eq!(pa, 0x4200_1234);
        assert_eq!(
            access,
            Access {
                read: true,
                write: true,
                exec: true
            }
        );
        assert_eq!(kind, Kind::Normal);
        let (pa, access, kind) = map.translate(0x0900_0ffc).unwrap();
        assert_eq!(pa, 0x0904_0ffc);
        assert!(access.read && access.write && !access.exec);
        assert_eq!(kind, Kind::Device);

        assert_eq!(map.translate(0x0900_1000), None);
        assert_eq!(map.translate(0x3fff_ffff), None);
        assert_eq!(map.translate(0x4020_0000), None);
        assert_eq!(map.translate(0), None);
    }

    #[test]
    fn every_page_translates() {
        let map = demo();
        for m in map.mappings() {
            let mut off = 0;
            while off < m.size {
                let (pa, access, kind) = map.translate(m.ipa + off).unwrap();
                assert_eq!(pa, m.pa + off);
                assert_eq!((access, kind), (m.access, m.kind));
                off += SIZE_4K;
            }
        }
    }

    #[test]
    fn contains_ranges() {
        let map = CellMemoryMap::new(&cell(vec![
            region(0x4100_0000, 0x4000_0000, 0x1000, RWX),
            region(0x4300_0000, 0x4000_1000, 0x1000, RWX),
        ]))
        .unwrap();
        assert!(map.contains_ipa_range(0x4000_0000, 0x2000));
        assert!(map.contains_ipa_range(0x4000_0ff0, 0x20));
        assert!(!map.contains_ipa_range(0x4000_0000, 0x2001));
        assert!(!map.contains_ipa_range(0x3fff_f000, 0x2000));
        assert!(map.contains_ipa_range(0x4000_1fff, 0));
        assert!(!map.contains_ipa_range(u64::MAX, 2));
    }

    #[test]
    fn overlaps_refused() {
        let errs = CellMemoryMap::new(&cell(vec![
            region(0x4100_0000, 0x4000_0000, 0x2000, RWX),
            region(0x4300_0000, 0x4000_1000, 0x1000, RWX),
        ]))
        .unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            ["memory[1]: overlaps memory[0] in the cell's address space (0x40001000..0x40002000)"]
        );
    }

    #[test]
    fn unaligned_refused() {
        let errs = CellMemoryMap::new(&cell(vec![region(0x4100_0000, 0x4000_0000, 0x10, RWX)]))
            .unwrap_err();
        assert_eq!(
            errs.to_string(),
            "memory[0].size: 0x10 is not 4 KiB aligned"
        );
    }

    fn plan(pa: u64, ipa: u64, size: u64) -> Vec<(u64, u64)> {
        let map = CellMemoryMap::new(&cell(vec![region(pa, ipa, size, RWX)])).unwrap();
        map.block_plan(&map.mappings()[0]).collect()
    }

    #[test]
    fn blocks_where_aligned() {
        // 2 MiB aligned on both sides: one block.
        assert_eq!(
            plan(0x4200_0000, 0x4000_0000, SIZE_2M),
            [(0x4000_0000, SIZE_2M)]
        );
        // 1 GiB + 2 MiB + 4 KiB, all aligned.
        assert_eq!(
            plan(0x8000_0000, 0x4000_0000, SIZE_1G + SIZE_2M + SIZE_4K),
            [
                (0x4000_0000, SIZE_1G),
                (0x8000_0000, SIZE_2M),
                (0x8020_0000, SIZE_4K)
            ]
        );
        // Starts 4 KiB before a 2 MiB boundary: a page, then a block.
        assert_eq!(
            plan(0x421f_f000, 0x401f_f000, SIZE_2M + SIZE_4K),
            [(0x401f_f000, SIZE_4K), (0x4020_0000, SIZE_2M)]
        );
    }

    #[test]
    fn no_block_when_pa_misaligned() {
        // IPA 2 MiB aligned but PA only 1 MiB aligned: pages only.
        let chunks = plan(0x4210_0000, 0x4000_0000, SIZE_2M);
        assert_eq!(chunks.len(), 512);
        assert!(chunks.iter().all(|&(_, s)| s == SIZE_4K));
        let total: u64 = chunks.iter().map(|c| c.1).sum();
        assert_eq!(total, SIZE_2M);
    }

    #[test]
    fn plan_covers_mapping_contiguously() {
        let chunks = plan(0x4000_0000, 0x4000_0000, 0x4060_3000);
        let mut at = 0x4000_0000;
        for (ipa, size) in chunks {
            assert_eq!(ipa, at);
            assert_eq!(ipa % size, 0);
            at += size;
        }
        assert_eq!(at, 0x4000_0000 + 0x4060_3000);
    }

    #[test]
    fn counts() {
        let map = CellMemoryMap::new(&cell(vec![region(
            0x4000_0000,
            0x4000_0000,
            SIZE_1G + 2 * SIZE_2M + 3 * SIZE_4K,
            RWX,
        )]))
        .unwrap();
        assert_eq!(map.block_counts(), (1, 2, 3));
    }
}
