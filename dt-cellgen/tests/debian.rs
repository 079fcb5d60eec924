//! Every DTB of Debian's arm64 kernel package through `dt-cellgen system`:
//! no panic; each yields a config that `hv_core::validate` accepts, or an
//! error stating why. The counts per reason are printed.
//!
//! The DTBs are fetched (never committed) by `dt-cellgen fetch-debian-dtbs`,
//! which prints the directory to put in `CELLBLOCK_DEBIAN_DTBS`. Without that
//! variable the test is skipped locally and fails in CI.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use dt_cellgen::board::Board;
use dt_cellgen::debian::{list_dtbs, DTBS_ENV};
use dt_cellgen::dtb::{root_dtb, RootOptions};
use dt_cellgen::output::system_toml;
use dt_cellgen::system::{generate_system, SystemOptions};
use dt_cellgen::tree::Tree;
use hv_core::config::SystemConfig;

fn dtb_dir() -> Option<PathBuf> {
    match std::env::var_os(DTBS_ENV) {
        Some(d) => Some(PathBuf::from(d)),
        None if std::env::var_os("CI").is_some() => panic!(
            "{DTBS_ENV} is not set: run `cargo run -p dt-cellgen -- fetch-debian-dtbs` and \
             export {DTBS_ENV}=<the directory it prints>"
        ),
        None => {
            eprintln!("{DTBS_ENV} not set: Debian DTB test skipped (it is required in CI)");
            None
        }
    }
}

/// What happened to one DTB.
enum Outcome {
    /// A valid config; `board_check`: hv-core's check against the DTB
    /// (`cellblock config check --dtb`) agrees too.
    Ok {
        board_check: bool,
    },
    Refused(&'static str, String),
}

fn one(bytes: &[u8]) -> Outcome {
    let board = match Board::from_dtb(bytes) {
        Ok(b) => b,
        Err(e) => return Outcome::Refused(e.reason(), e.to_string()),
    };
    let (sys, notes) = match generate_system(&board, &SystemOptions::default()) {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(e.reason(), e.to_string()),
    };
    if let Err(e) = dt_cellgen::check_system(&sys) {
        return Outcome::Refused(e.reason(), e.to_string());
    }
    let text = system_toml(&sys, &board, &notes);
    let back: SystemConfig = toml::from_str(&text).expect("generated TOML parses back");
    assert_eq!(back, sys, "TOML round trip");
    let root = root_dtb(&board, &sys, &[], &RootOptions::default()).expect("root DTB");
    Tree::parse(&root).expect("root DTB parses back");
    match hv_core::board::BoardInfo::from_dtb(bytes) {
        Ok(info) => match hv_core::board::check_against_board(&sys, &info) {
            Ok(()) => Outcome::Ok { board_check: true },
            Err(_) => Outcome::Ok { board_check: false },
        },
        Err(_) => Outcome::Ok { board_check: false },
    }
}

#[test]
fn every_debian_dtb_yields_a_valid_config_or_a_stated_reason() {
    let Some(dir) = dtb_dir() else { return };
    let dtbs = list_dtbs(&dir).expect("DTB directory readable");
    assert!(
        dtbs.len() > 500,
        "expected Debian's ~577 DTBs in {}",
        dir.display()
    );

    let mut ok = Vec::new();
    let mut board_check_differs = Vec::new();
    let mut reasons: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut panics = Vec::new();
    for path in &dtbs {
        let bytes = std::fs::read(path).expect("readable DTB");
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        match catch_unwind(AssertUnwindSafe(|| one(&bytes))) {
            Ok(Outcome::Ok { board_check }) => {
                if !board_check {
                    board_check_differs.push(name.clone());
                }
                ok.push(name)
            }
            Ok(Outcome::Refused(reason, msg)) => reasons
                .entry(reason)
                .or_default()
                .push(format!("{name}: {msg}")),
            Err(_) => panics.push(name),
        }
    }

    println!("Debian DTBs: {} total, {} ok", dtbs.len(), ok.len());
    println!(
        "  of those, hv-core's board check disagrees on {}: {:?}",
        board_check_differs.len(),
        board_check_differs
    );
    for (reason, list) in &reasons {
        println!("  {:>4}  {reason}   e.g. {}", list.len(), list[0]);
    }
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    // What dt-cellgen generates, hv-core's board check (the hypervisor's at
    // boot, `cellblock config check --dtb`) accepts on the same DTB.
    assert!(
        board_check_differs.is_empty(),
        "hv-core's board check refuses dt-cellgen's config on {board_check_differs:?}"
    );
    for board in [
        "nvidia/tegra210-p2371-2180.dtb",
        "hisilicon/hi6220-hikey.dtb",
        "arm/juno.dtb",
    ] {
        assert!(ok.iter().any(|n| n == board), "{board} must yield a config");
    }
    assert!(ok.len() >= 40, "only {} DTBs yield a config", ok.len());
}
