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
pub const INMATES: [&str; 8] = [
    "gic-demo",
    "gic-demo-locked",
    "gic-demo-deny",
    "uart-demo",
    "probe",
    "edu-dma",
    "ivshmem-demo",
    "ivshmem-intruder",
];

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
    build_edu(tools, &cli)?;
    crate::linux::build(tools)?;
    crate::linux_smmu::build(tools)?;
    println!("xtask: images in {}/", rel(&out));
    Ok(())
}

/// The SMMU system config and its boot images: the edu-dma cell (a PCI
/// device's DMA) beside gic-demo.
pub const SMMU_SYSTEM: &str = "configs/qemu-arm64-gicv3-smmu.toml";
/// `edu-gicv3.img`: edu-dma's first stray DMA targets gic-demo's RAM.
pub const EDU_IMAGE: &str = "edu-gicv3.img";
/// `edu-hv-gicv3.img`: the same, but the first stray DMA targets the
/// hypervisor's RAM (a second build of edu-dma with its targets swapped).
pub const EDU_HV_IMAGE: &str = "edu-hv-gicv3.img";
/// Where edu-dma's targets sit in the QEMU configs.
pub const EDU_FOREIGN: u64 = 0x7e00_0000;
pub const EDU_HYPERVISOR: u64 = 0x4010_0000;

fn build_edu(tools: &Tools, cli: &std::path::Path) -> Result {
    let out = out_dir();
    let hv_dir = out.join("edu-hv");
    fs::create_dir_all(&hv_dir).context(|| format!("cannot create {}", hv_dir.display()))?;
    let target_dir = root().join("target").join("edu-hv");
    run(cargo()
        .args([
            "build",
            "--release",
            "-p",
            "demos",
            "--bin",
            "edu-dma",
            "--target",
        ])
        .arg(BARE_TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("EDU_DMA_FOREIGN", format!("{EDU_HYPERVISOR:#x}"))
        .env("EDU_DMA_HYPERVISOR", format!("{EDU_FOREIGN:#x}")))?;
    objcopy(
        tools,
        &target_dir.join(BARE_TARGET).join("release").join("edu-dma"),
        &hv_dir.join("edu-dma.bin"),
    )?;
    for other in ["gic-demo.bin", "uart-demo.bin"] {
        fs::copy(out.join(other), hv_dir.join(other))
            .context(|| format!("cannot copy {other} to {}", hv_dir.display()))?;
    }
    for (image, dir) in [(EDU_IMAGE, out.clone()), (EDU_HV_IMAGE, hv_dir)] {
        run(Command::new(cli)
            .current_dir(root())
            .args([
                "pack",
                "--hv",
                "target/cellblock/cellblock.bin",
                "--system",
                SMMU_SYSTEM,
            ])
            .args(["--cell", "configs/cells/qemu-gic-demo.toml"])
            .args(["--cell", "configs/cells/qemu-edu-dma.toml"])
            .arg("--image-dir")
            .arg(&dir)
            .arg("-o")
            .arg(out.join(image)))?;
    }
    Ok(())
}

fn objcopy(tools: &Tools, elf: &std::path::Path, bin: &std::path::Path) -> Result {
    run(Command::new(&tools.objcopy)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(bin))
}
