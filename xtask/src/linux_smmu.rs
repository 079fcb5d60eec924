//! The Linux root cell with its PCI devices behind the SMMUv3:
//! `target/cellblock/linux-smmu-gicv3.img` (docs/linux-root.md).
//!
//! The same kernel as `linux-gicv3.img`, with
//! `configs/qemu-arm64-gicv3-linux-smmu.toml` (the SMMU owned by the
//! hypervisor, stream 0x8 = the virtio-blk-pci disk at 00:01.0 in the root
//! cell), a root DTB of its own and an initramfs of its own:
//! - `root-smmu-gicv3.dtb`: QEMU's DTB (with `iommu=smmuv3`) through
//!   `dt-cellgen root-dtb`, less the SMMU node (and the `iommu-map` naming
//!   it), the ITS (and the `msi-map`), the second PL011 (gic-demo's) and the
//!   host bridge's 64-bit window (beyond the root cell's IPA space: Linux
//!   must not place BARs there); the command line adds `cellblock.virtio=1`.
//! - `initramfs-smmu.cpio`: `initramfs.cpio` followed by a second newc
//!   archive (the kernel unpacks both) with Debian's virtio PCI and
//!   virtio-blk modules in `/lib/modules` and their load order in
//!   `/lib/modules/cellblock.order`, which /init reads with
//!   `cellblock.virtio=1`.

use crate::cpio::Archive;
use crate::debian::{self, Apt};
use crate::linux::{BOOTARGS, DTB_ADDR, INITRD_ADDR, MGMT_PAGE, ROOT_RAM_END};
use crate::qemu::Machine;
use crate::setup::Tools;
use crate::util::{out_dir, rel, root, run, Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const SYSTEM: &str = "configs/qemu-arm64-gicv3-linux-smmu.toml";
/// The boot image, in `target/cellblock/`.
pub const IMAGE: &str = "linux-smmu-gicv3.img";
/// The root DTB and initramfs the system config names.
const ROOT_DTB: &str = "root-smmu-gicv3.dtb";
const INITRAMFS: &str = "initramfs-smmu.cpio";
/// QEMU's own DTB of the machine with the SMMU.
const BOARD_DTB: &str = "qemu-virt-smmu-gicv3.dtb";
/// The QEMU options that add the SMMUv3 (stage 2) to `virt`.
pub const SMMU_MACHINE: [&str; 4] = ["-machine", "iommu=smmuv3", "-global", "arm-smmuv3.stage=2"];
/// What the root DTB leaves out: the SMMU (the hypervisor's), the ITS (MSIs
/// are not partitioned between cells), gic-demo's PL011 is disabled, and
/// the PCIe 64-bit window (0x80_0000_0000, beyond the 39-bit IPA space).
const DELETE: [&str; 2] = ["/smmuv3@9050000", "/intc@8000000/its@8080000"];
const DISABLE: &str = "/pl011@9040000";
const DROP_RANGE: &str = "/pcie@10000000:0x8000000000";
/// The drivers the root cell loads (their dependencies come first).
const MODULES: [&str; 2] = ["virtio_pci", "virtio_blk"];
/// Where Debian's kernel package keeps the modules we take (tar patterns).
const MODULE_PATTERNS: [&str; 2] = [
    "*/kernel/drivers/virtio/*.ko",
    "*/kernel/drivers/block/*.ko",
];
/// The initramfs file /init reads the load order from.
const ORDER_FILE: &str = "lib/modules/cellblock.order";
/// The cells whose TOML `linux::build` checks too (they run on this image).
const CELLS: [&str; 2] = [
    "configs/cells/qemu-gic-demo.toml",
    "configs/cells/qemu-probe.toml",
];

/// The kernel command line of this image's root cell.
pub fn bootargs() -> String {
    format!("{BOOTARGS} cellblock.virtio=1")
}

/// Builds `linux-smmu-gicv3.img`; `crate::linux::build` has made the
/// kernel, `initramfs.cpio`, the CLIs and dt-cellgen.
pub fn build(tools: &Tools) -> Result {
    let out = out_dir();
    let kernel = crate::linux::kernel()?;
    let version = crate::linux::kernel_version(&kernel)?;
    let modules = modules(&version)?;

    let base = out.join("initramfs.cpio");
    let mut initramfs = fs::read(&base).context(|| format!("cannot read {}", rel(&base)))?;
    initramfs.extend(modules_archive(&modules)?);
    let initrd = out.join(INITRAMFS);
    fs::write(&initrd, &initramfs).context(|| format!("cannot write {}", rel(&initrd)))?;

    let board = out.join(BOARD_DTB);
    dump_dtb(tools, &board)?;
    let root_dtb = out.join(ROOT_DTB);
    let dt_cellgen = root().join("target").join("debug").join("dt-cellgen");
    let mut cmd = Command::new(&dt_cellgen);
    cmd.current_dir(root())
        .arg("root-dtb")
        .arg(&board)
        .args(["--system", SYSTEM, "--mgmt", MGMT_PAGE])
        .args(["--bootargs", &bootargs(), "--initrd"])
        .arg(format!("{INITRD_ADDR:#x}"))
        .arg(format!("{:#x}", initramfs.len()))
        .args(["--disable", DISABLE, "--drop-range", DROP_RANGE]);
    for node in DELETE {
        cmd.args(["--delete", node]);
    }
    run(cmd.arg("-o").arg(&root_dtb))?;
    let dtb_len = fs::metadata(&root_dtb)
        .context(|| format!("cannot read {}", rel(&root_dtb)))?
        .len();
    check_layout(dtb_len, initramfs.len() as u64)?;

    let cli = root().join("target").join("debug").join("cellblock");
    run(Command::new(&cli)
        .current_dir(root())
        .args(["config", "check", "--dtb"])
        .arg(&board)
        .arg(SYSTEM)
        .args(CELLS))?;
    let img = out.join(IMAGE);
    run(Command::new(&cli)
        .current_dir(root())
        .args([
            "pack",
            "--hv",
            "target/cellblock/cellblock.bin",
            "--system",
            SYSTEM,
        ])
        .args(["--image-dir", "target/cellblock", "-o"])
        .arg(&img))?;
    let size = fs::metadata(&img)
        .context(|| format!("cannot read {}", rel(&img)))?
        .len();
    println!(
        "xtask: {} ({:.1} MiB; modules {})",
        rel(&img),
        size as f64 / (1024.0 * 1024.0),
        modules
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// The DTB and the initramfs fit between their load address and the next.
fn check_layout(dtb_len: u64, initrd_len: u64) -> Result {
    if DTB_ADDR + dtb_len > INITRD_ADDR {
        return Err(Error(format!(
            "{ROOT_DTB} ({dtb_len} bytes) at {DTB_ADDR:#x} overlaps the initramfs at {INITRD_ADDR:#x}"
        )));
    }
    if INITRD_ADDR + initrd_len > ROOT_RAM_END {
        return Err(Error(format!(
            "{INITRAMFS} ({initrd_len} bytes) runs past the root cell's RAM ({ROOT_RAM_END:#x})"
        )));
    }
    Ok(())
}

/// QEMU's DTB of the hypervisor's machine with the SMMU.
fn dump_dtb(tools: &Tools, to: &Path) -> Result {
    let mut args = Machine::hypervisor(3).args();
    if let Some(m) = args.iter().position(|a| a == "-M").map(|i| i + 1) {
        args[m].push_str(&format!(",dumpdtb={}", to.display()));
    }
    run(Command::new(&tools.qemu)
        .args(args)
        .args(SMMU_MACHINE)
        .args(["-nodefaults", "-display", "none"])
        .args(["-serial", "null", "-serial", "null"]))
}

/// The `.ko` files of [`MODULES`] and their dependencies, in load order:
/// `(file name, contents)`.
fn modules(version: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = modules_dir(version, "linux-modules", &MODULE_PATTERNS)?;
    modules_from(&dir, version, &MODULES)
}

/// The input drivers that turn the root cell's ivshmem doorbells into
/// input events (docs/ivshmem.md), for every root initramfs.
const INPUT_MODULES: [&str; 2] = ["gpio_keys", "evdev"];
const INPUT_PATTERNS: [&str; 2] = [
    "*/kernel/drivers/input/evdev.ko",
    "*/kernel/drivers/input/keyboard/gpio_keys.ko",
];

/// The `.ko` files of [`INPUT_MODULES`] of kernel `version` and their
/// dependencies, in load order.
pub fn input_modules(version: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = modules_dir(version, "linux-input-modules", &INPUT_PATTERNS)?;
    modules_from(&dir, version, &INPUT_MODULES)
}

/// `wanted` and their dependencies from the `.ko` files in `dir`.
fn modules_from(dir: &Path, version: &str, wanted: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
    let available: Vec<PathBuf> = fs::read_dir(dir)
        .context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = available
            .iter()
            .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(name))
            .ok_or_else(|| {
                Error(format!(
                    "module {name} is not among {} (kernel {version})",
                    dir.display()
                ))
            })?;
        fs::read(path).context(|| format!("cannot read {}", path.display()))
    };
    load_order(wanted, |name| {
        let data = read(name)?;
        let deps = depends(&data).map_err(|e| Error(format!("{name}.ko: {e}")))?;
        Ok((data, deps))
    })
}

/// A module's contents and the names of the modules it depends on.
type ModuleInfo = (Vec<u8>, Vec<String>);

/// `wanted` and their dependencies (from `info(name)`), each after what it
/// depends on.
fn load_order(
    wanted: &[&str],
    mut info: impl FnMut(&str) -> Result<ModuleInfo>,
) -> Result<Vec<(String, Vec<u8>)>> {
    /// Deeper chains than this are a loop (Debian's are 3 or 4 deep).
    const MAX_DEPTH: usize = 16;
    fn visit(
        name: &str,
        depth: usize,
        info: &mut dyn FnMut(&str) -> Result<ModuleInfo>,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result {
        let file = format!("{name}.ko");
        if out.iter().any(|(f, _)| *f == file) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(Error(format!("module dependencies loop at {name}")));
        }
        let (data, deps) = info(name)?;
        for d in &deps {
            visit(d, depth + 1, info, out)?;
        }
        out.push((file, data));
        Ok(())
    }
    let mut out = Vec::new();
    for name in wanted {
        visit(name, 0, &mut info, &mut out)?;
    }
    Ok(out)
}

/// The `depends=` entry of a module's `.modinfo` (comma-separated names;
/// may be empty).
fn depends(ko: &[u8]) -> std::result::Result<Vec<String>, &'static str> {
    if ko.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file");
    }
    const KEY: &[u8] = b"\0depends=";
    let at = ko
        .windows(KEY.len())
        .position(|w| w == KEY)
        .ok_or("no depends= in its .modinfo")?;
    let value = &ko[at + KEY.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let text = std::str::from_utf8(&value[..end]).map_err(|_| "depends= is not UTF-8")?;
    Ok(text
        .split(',')
        .filter(|s| !s.is_empty())
        // Module names use `-` and `_` interchangeably; files use `_` here.
        .map(|s| s.replace('-', "_"))
        .collect())
}

/// A newc archive with `modules` in /lib/modules and their load order.
fn modules_archive(modules: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut a = Archive::new();
    a.dir("lib/modules", 0o755)?;
    let mut order = String::new();
    for (file, data) in modules {
        a.file(&format!("lib/modules/{file}"), 0o644, data)?;
        order.push_str(file);
        order.push('\n');
    }
    a.file(ORDER_FILE, 0o644, order.as_bytes())?;
    Ok(a.finish())
}

/// The modules of kernel `version` that `patterns` name, unpacked once
/// from Debian's kernel package into `$CELLBLOCK_CACHE/<cache>/<version>/`
/// (flat).
fn modules_dir(version: &str, cache_name: &str, patterns: &[&str]) -> Result<PathBuf> {
    let cache = debian::cache_dir()?;
    let dir = cache.join(cache_name).join(version);
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(dir);
    }
    let apt = Apt::new(&cache)?;
    let deb = apt.download(&format!("linux-image-{version}"))?;
    let tmp = cache.join(format!("{cache_name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).context(|| format!("cannot create {}", tmp.display()))?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .context(|| "cannot run dpkg-deb".to_owned())?;
    let tar_in = dpkg
        .stdout
        .take()
        .ok_or_else(|| Error("dpkg-deb: no output".into()))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&tmp)
        .arg("--wildcards")
        .args(patterns)
        .stdin(tar_in)
        .status()
        .context(|| "cannot run tar".to_owned())?;
    let dpkg = dpkg.wait().context(|| "dpkg-deb".to_owned())?;
    if !tar.success() || !dpkg.success() {
        return Err(Error(format!(
            "unpacking the modules of {} failed (dpkg-deb {dpkg}, tar {tar})",
            deb.display()
        )));
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    let mut n = 0;
    collect_ko(&tmp, &dir, &mut n, 0)?;
    if n == 0 {
        return Err(Error(format!("no modules in {}", deb.display())));
    }
    let _ = fs::remove_dir_all(&tmp);
    fs::write(&done, b"").context(|| format!("cannot write {}", done.display()))?;
    println!("xtask: {n} modules of {version}: {}", dir.display());
    Ok(dir)
}

/// Moves the `.ko` files under `from` into `to`.
fn collect_ko(from: &Path, to: &Path, n: &mut usize, depth: usize) -> Result {
    if depth > 12 {
        return Ok(());
    }
    for e in fs::read_dir(from)
        .context(|| format!("cannot read {}", from.display()))?
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            collect_ko(&p, to, n, depth + 1)?;
        } else if p.extension().is_some_and(|x| x == "ko") {
            let name = e.file_name();
            fs::rename(&p, to.join(&name))
                .context(|| format!("cannot move {} to {}", p.display(), to.display()))?;
            *n += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ko(depends: &str) -> Vec<u8> {
        let mut k = b"\x7fELF\x02\x01".to_vec();
        k.extend_from_slice(b"\0license=GPL\0depends=");
        k.extend_from_slice(depends.as_bytes());
        k.extend_from_slice(b"\0vermagic=6.1.0-56-arm64 SMP\0");
        k
    }

    #[test]
    fn depends_reads_the_modinfo_entry() {
        assert_eq!(
            depends(&ko("virtio_pci_modern_dev,virtio_pci_legacy_dev")).unwrap(),
            ["virtio_pci_modern_dev", "virtio_pci_legacy_dev"]
        );
        assert!(depends(&ko("")).unwrap().is_empty());
        assert_eq!(depends(&ko("a-b")).unwrap(), ["a_b"]);
        assert_eq!(depends(b"#!/bin/sh"), Err("not an ELF file"));
        assert!(depends(b"\x7fELF no modinfo").is_err());
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let deps = |n: &str| -> Vec<String> {
            match n {
                "virtio_pci" => vec!["modern".into(), "legacy".into()],
                "modern" => vec!["common".into()],
                "legacy" => vec!["common".into()],
                _ => vec![],
            }
        };
        let order = load_order(&["virtio_pci", "virtio_blk"], |n| Ok((vec![], deps(n)))).unwrap();
        let names: Vec<&str> = order.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "common.ko",
                "modern.ko",
                "legacy.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
        let e = load_order(&["a"], |_| Ok((vec![], vec!["a".into()]))).unwrap_err();
        assert!(e.0.contains("loop"), "{e}");
        let e = load_order(&["x"], |n| Err(Error(format!("module {n} missing")))).unwrap_err();
        assert!(e.0.contains("module x"), "{e}");
    }

    #[test]
    fn the_archive_lists_the_load_order() {
        let a =
            modules_archive(&[("a.ko".into(), b"A".to_vec()), ("b.ko".into(), vec![])]).unwrap();
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("lib/modules/a.ko"));
        assert!(text.contains("a.ko\nb.ko\n"), "{text}");
        assert!(text.contains("TRAILER!!!"));
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn layout_is_checked() {
        assert!(check_layout(8192, 4 << 20).is_ok());
        assert!(check_layout(INITRD_ADDR - DTB_ADDR + 1, 1)
            .unwrap_err()
            .0
            .contains("overlaps"));
        assert!(check_layout(1, ROOT_RAM_END - INITRD_ADDR + 1)
            .unwrap_err()
            .0
            .contains("past the root cell's RAM"));
    }
}
