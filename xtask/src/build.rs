//! `cargo xtask build`: the EL2 image, the inmates and the boot images.
//!
//! Everything lands in `target/cellblock/`: `cellblock.bin`, one `.bin` per
//! inmate, and the boot images that `qemu -kernel` loads; then the Linux
//! root cell's pieces and boot images ([`crate::linux`]).

use crate::setup::Tools;
use crate::util::{cargo, out_dir, rel, root, run, Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

pub const BARE_TARGET: &str = "aarch64-unknown-none";
/// The EL2 image's target: no FP/SIMD code, so the hypervisor never touches
/// the registers that belong to the cells.
pub const HV_TARGET: &str = "aarch64-unknown-none-softfloat";
/// The inmate binaries of package `demos`.
pub const INMATES: [&str; 4] = ["gic-demo", "gic-demo-locked", "uart-demo", "probe"];

/// A boot image that `build` packs.
pub struct BootImage {
    pub file: &'static str,
    pub gic: u32,
    /// Cell configs (besides the root cell) started at boot.
    pub cells: &'static [&'static str],
}

pub const BOOT_IMAGES: [BootImage; 4] = [
    BootImage {
        file: "boot-gicv3.img",
        gic: 3,
        cells: &["configs/cells/qemu-gic-demo.toml"],
    },
    BootImage {
        file: "boot-gicv2.img",
        gic: 2,
        cells: &["configs/cells/qemu-gic-demo.toml"],
    },
    BootImage {
        file: "probe-gicv3.img",
        gic: 3,
        cells: &[
            "configs/cells/qemu-gic-demo.toml",
            "configs/cells/qemu-probe.toml",
        ],
    },
    BootImage {
        file: "probe-gicv2.img",
        gic: 2,
        cells: &[
            "configs/cells/qemu-gic-demo.toml",
            "configs/cells/qemu-probe.toml",
        ],
    },
];

/// The boot image with uart-demo as root cell and gic-demo as second cell.
pub fn boot_image(gic: u32) -> PathBuf {
    out_dir().join(format!("boot-gicv{gic}.img"))
}

/// The boot image that adds the probe cell.
pub fn probe_image(gic: u32) -> PathBuf {
    out_dir().join(format!("probe-gicv{gic}.img"))
}

/// Builds everything; see the module doc.
pub fn build(tools: &Tools) -> Result {
    let out = out_dir();
    fs::create_dir_all(&out).context(|| format!("cannot create {}", out.display()))?;
    let elf_dir = root().join("target").join(BARE_TARGET).join("release");

    run(cargo().args([
        "build",
        "--release",
        "-p",
        "arch-aarch64",
        "--bin",
        "cellblock-hv",
        "--target",
        HV_TARGET,
    ]))?;
    let hv_elf_dir = root().join("target").join(HV_TARGET).join("release");
    objcopy(
        tools,
        &hv_elf_dir.join("cellblock-hv"),
        &out.join("cellblock.bin"),
    )?;

    run(cargo().args([
        "build",
        "--release",
        "-p",
        "demos",
        "--target",
        BARE_TARGET,
        "--bins",
    ]))?;
    for inmate in INMATES {
        objcopy(
            tools,
            &elf_dir.join(inmate),
            &out.join(format!("{inmate}.bin")),
        )?;
    }

    run(cargo().args(["build", "-p", "loader", "--bin", "cellblock"]))?;
    let cli = root().join("target").join("debug").join("cellblock");
    for image in &BOOT_IMAGES {
        let mut cmd = Command::new(&cli);
        cmd.current_dir(root())
            .args(["pack", "--hv", "target/cellblock/cellblock.bin", "--system"])
            .arg(format!("configs/qemu-arm64-gicv{}.toml", image.gic));
        for cell in image.cells {
            cmd.args(["--cell", cell]);
        }
        cmd.args(["--image-dir", "target/cellblock", "-o"])
            .arg(format!("target/cellblock/{}", image.file));
        run(&mut cmd)?;
    }
    crate::linux::build(tools)?;
    println!("xtask: images in {}/", rel(&out));
    Ok(())
}

fn objcopy(tools: &Tools, elf: &std::path::Path, bin: &std::path::Path) -> Result {
    run(Command::new(&tools.objcopy)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(bin))
}
