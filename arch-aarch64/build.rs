//! Links the EL2 image with `linker.ld` at the board's load address:
//! `CELLBLOCK_HV_BASE` (default 0x4020_0000, QEMU `virt`: RAM base + 2 MiB,
//! where QEMU and U-Boot put an ARM64 Image). The image runs identity
//! mapped, so it must be linked where it is loaded.

use std::fs;
use std::path::PathBuf;

const DEFAULT_BASE: u64 = 0x4020_0000;

fn parse(v: &str) -> Option<u64> {
    let v = v.trim().replace('_', "");
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=CELLBLOCK_HV_BASE");
    println!("cargo:rerun-if-changed=linker.ld");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.starts_with("aarch64-unknown-none") {
        return;
    }
    let base = match std::env::var("CELLBLOCK_HV_BASE") {
        Ok(v) => match parse(&v) {
            Some(b) if b % 0x1000 == 0 => b,
            _ => panic!("CELLBLOCK_HV_BASE={v}: not a 4 KiB aligned address"),
        },
        Err(_) => DEFAULT_BASE,
    };
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let script = fs::read_to_string(dir.join("linker.ld")).unwrap_or_default();
    let script = script.replace("HV_BASE = 0x40200000;", &format!("HV_BASE = {base:#x};"));
    let path = out.join("linker.ld");
    if fs::write(&path, script).is_err() {
        panic!("cannot write {}", path.display());
    }
    println!("cargo:rustc-link-arg-bins=-T{}", path.display());
}
