//! The shipped configs (configs/*.toml, configs/cells/*.toml) parse,
//! validate, combine, and survive the binary round trip.

use std::path::{Path, PathBuf};

use hv_core::blob::{decode_cell, decode_system, encode_cell, encode_system};
use hv_core::config::{CellConfig, SystemConfig};
use hv_core::memmap::CellMemoryMap;
use hv_core::validate::{validate_cell, validate_cell_alone, validate_system};

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn systems() -> Vec<(PathBuf, SystemConfig)> {
    let files = toml_files(&configs_dir());
    assert!(files.len() >= 2, "system configs missing: {files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let sys = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, sys)
        })
        .collect()
}

fn cells() -> Vec<(PathBuf, CellConfig)> {
    let files = toml_files(&configs_dir().join("cells"));
    assert!(!files.is_empty());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let cell = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, cell)
        })
        .collect()
}

#[test]
fn systems_validate_and_round_trip() {
    for (path, sys) in systems() {
        if let Err(e) = validate_system(&sys) {
            panic!("{}:\n{e}", path.display());
        }
        assert_eq!(decode_system(&encode_system(&sys)).unwrap(), sys);
        CellMemoryMap::new(&sys.root_cell).unwrap();
    }
}

/// Whether a cell config is meant for a board: `cells/<board>-*.toml` goes
/// with `<board>.toml`; `cells/qemu-*.toml` with every `qemu-*.toml`.
fn belongs(system: &Path, cell: &Path) -> bool {
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let (s, c) = (stem(system), stem(cell));
    c.starts_with(&format!("{s}-")) || (s.starts_with("qemu-") && c.starts_with("qemu-"))
}

/// The cells meant for a system; cells with SMMU streams only go with a
/// system that has an SMMU.
fn cells_for(system: &Path, sys: &SystemConfig) -> Vec<(PathBuf, CellConfig)> {
    let cells: Vec<_> = cells()
        .into_iter()
        .filter(|(p, c)| {
            belongs(system, p) && (c.streams.is_empty() || sys.platform.smmu.is_some())
        })
        .collect();
    assert!(!cells.is_empty(), "no demo cell for {}", system.display());
    cells
}

#[test]
fn each_cell_validates_as_boot_cell() {
    for (spath, sys) in systems() {
        for (cpath, cell) in cells_for(&spath, &sys) {
            validate_cell_alone(&cell).unwrap_or_else(|e| panic!("{}:\n{e}", cpath.display()));
            validate_cell(&sys, &cell, &[])
                .unwrap_or_else(|e| panic!("{} in {}:\n{e}", cpath.display(), spath.display()));
            let mut with = sys.clone();
            with.boot_cells.push(cell.clone());
            validate_system(&with)
                .unwrap_or_else(|e| panic!("{} in {}:\n{e}", cpath.display(), spath.display()));
            assert_eq!(decode_cell(&encode_cell(&cell)).unwrap(), cell);
            assert_eq!(decode_system(&encode_system(&with)).unwrap(), with);
        }
    }
}

/// Every cell of a board beside the others, but for alternatives: a cell
/// whose CPUs an earlier cell already has (ivshmem-demo and gic-demo on
/// CPU 3, the probes on CPU 2) is left out, and must validate alone
/// (`each_cell_validates_as_boot_cell`).
#[test]
fn all_cells_together() {
    for (path, mut sys) in systems() {
        for (cpath, cell) in cells_for(&path, &sys) {
            let clash = sys
                .boot_cells
                .iter()
                .any(|c| c.cpus.iter().any(|x| cell.cpus.contains(x)));
            if clash {
                continue;
            }
            sys.boot_cells.push(cell);
            validate_system(&sys)
                .unwrap_or_else(|e| panic!("{} with {}:\n{e}", path.display(), cpath.display()));
        }
    }
}

#[test]
fn demo_cell_map_uses_a_block() {
    let (_, cell) = cells()
        .into_iter()
        .find(|(_, c)| c.name == "gic-demo")
        .expect("gic-demo cell config");
    let map = CellMemoryMap::new(&cell).unwrap();
    // 2 MiB of RAM at PA 0x7e000000 / IPA 0x40200000: one 2 MiB block.
    assert_eq!(map.block_counts(), (0, 1, 1));
    let (pa, access, _) = map.translate(0x0900_0000).unwrap();
    assert_eq!(pa, 0x0904_0000);
    assert!(!access.exec);
}
