//! A cell's stage-2 table built from its config: what `cell create` and
//! the boot path map, host-tested on the shipped configs.

use crate::stage2::{Access, MemKind, Stage2Error, Stage2Table};
use alloc::vec;
use alloc::vec::Vec;
use hv_core::config::{CellConfig, MemFlag, MemoryRegion};

/// Access rights and memory type a region's flags ask for. MMIO is never
/// executable.
pub fn access_of(r: &MemoryRegion) -> (Access, MemKind) {
    let io = r.has(MemFlag::Io);
    (
        Access {
            read: r.has(MemFlag::Read),
            write: r.has(MemFlag::Write),
            exec: r.has(MemFlag::Execute) && !io,
        },
        if io { MemKind::Device } else { MemKind::Normal },
    )
}

/// `[start, end)` minus every range in `taken`.
pub fn subtract(start: u64, end: u64, taken: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut pieces = vec![(start, end)];
    for &(ts, te) in taken {
        let mut next = Vec::new();
        for (s, e) in pieces {
            if te <= s || ts >= e {
                next.push((s, e));
                continue;
            }
            if s < ts {
                next.push((s, ts));
            }
            if te < e {
                next.push((te, e));
            }
        }
        pieces = next;
    }
    pieces
}

/// Maps every region of `config` into `t`, leaving out the physical ranges
/// in `taken` (what other cells or the hypervisor own). Regions must lie
/// below `1 << ipa_bits` in the cell's address space.
pub fn map_config(
    t: &mut Stage2Table,
    config: &CellConfig,
    taken: &[(u64, u64)],
    ipa_bits: u32,
) -> Result<(), Stage2Error> {
    for r in &config.memory {
        if r.virt_start.saturating_add(r.size) > 1u64 << ipa_bits {
            return Err(Stage2Error::OutOfRange {
                ipa: r.virt_start,
                size: r.size,
            });
        }
        let (access, kind) = access_of(r);
        let end = r.phys_start.saturating_add(r.size);
        for (s, e) in subtract(r.phys_start, end, taken) {
            t.map(r.virt_start + (s - r.phys_start), s, e - s, access, kind)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::path::Path;

    fn load(rel: &str) -> CellConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn gic_demo_config_translates_as_configured() {
        let cell = load("configs/cells/qemu-gic-demo.toml");
        let mut t = Stage2Table::new();
        map_config(&mut t, &cell, &[], 39).unwrap();
        for r in &cell.memory {
            let (access, kind) = access_of(r);
            for off in [0, r.size / 2, r.size - 1] {
                let tr = t.translate(r.virt_start + off).unwrap();
                assert_eq!(tr.pa, r.phys_start + off, "region {:?}", r.comment);
                assert_eq!((tr.access, tr.kind), (access, kind));
            }
            assert!(t
                .translate(r.virt_start + r.size)
                .is_none_or(|tr| tr.pa != r.phys_start + r.size));
        }
        // 2 MiB of RAM, 2 MiB aligned on both sides: one block.
        assert_eq!(t.translate(0x4020_0000).unwrap().level, 2);
        // The UART: a device page, never executable.
        let uart = t.translate(0x0900_0000).unwrap();
        assert_eq!(
            (uart.pa, uart.kind, uart.access.exec),
            (0x0904_0000, MemKind::Device, false)
        );
        assert!(t.translate(0x5000_0000).is_none(), "unlisted memory faults");
    }

    #[test]
    fn taken_ranges_are_left_out() {
        let cell = load("configs/cells/qemu-gic-demo.toml");
        let mut t = Stage2Table::new();
        // Pretend another cell owns the middle 4 KiB of the RAM region.
        map_config(&mut t, &cell, &[(0x7e10_0000, 0x7e10_1000)], 39).unwrap();
        assert!(t.translate(0x4030_0000).is_none());
        assert_eq!(t.translate(0x4030_1000).unwrap().pa, 0x7e10_1000);
        assert_eq!(t.translate(0x402f_f000).unwrap().pa, 0x7e0f_f000);
    }

    #[test]
    fn overlapping_regions_refused() {
        let mut cell = load("configs/cells/qemu-gic-demo.toml");
        let mut dup = cell.memory[0].clone();
        dup.phys_start += 0x1000;
        cell.memory.push(dup);
        let mut t = Stage2Table::new();
        assert!(matches!(
            map_config(&mut t, &cell, &[], 39),
            Err(Stage2Error::Overlap { .. })
        ));
    }

    #[test]
    fn ipa_space_bounded_by_the_cpu() {
        let cell = load("configs/cells/qemu-gic-demo.toml");
        let mut t = Stage2Table::new();
        // A 32-bit PA CPU cannot hold IPA 0x8000_0000+.
        let mut high = cell.clone();
        high.memory[0].virt_start = 0x1_0000_0000;
        assert!(matches!(
            map_config(&mut t, &high, &[], 32),
            Err(Stage2Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn subtract_cases() {
        assert_eq!(subtract(0, 10, &[]), vec![(0, 10)]);
        assert_eq!(subtract(0, 10, &[(3, 5)]), vec![(0, 3), (5, 10)]);
        assert_eq!(subtract(0, 10, &[(0, 10)]), vec![]);
        assert_eq!(subtract(0, 10, &[(8, 20), (0, 2)]), vec![(2, 8)]);
    }
}
