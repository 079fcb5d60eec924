//! The Linux root cell: Debian's arm64 kernel, an initramfs with busybox,
//! the `cellblock` CLI and the demo cells, the root DTB, and the boot images
//! `target/cellblock/linux-gicv3.img` and `linux-gicv2.img`
//! (docs/linux-root.md).
//!
//! Layout (as in `configs/qemu-arm64-gicv*-linux.toml`): the root cell's RAM
//! is 0x4400_0000..0x7e00_0000 (identity); the Image is loaded at
//! 0x4400_0000, the root DTB at 0x4800_0000, the initramfs at 0x4820_0000.

use crate::build::BootImage;
use crate::cpio::Archive;
use crate::debian::{self, Apt};
use crate::dtbs;
use crate::qemu::Machine;
use crate::setup::Tools;
use crate::util::{cargo, out_dir, rel, root, run, Context, Error, Result};
use loader::linux::ImageHeader;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The GIC versions a Linux boot image is built for.
pub const GICS: [u32; 2] = [3, 2];
/// Where the root cell's kernel, DTB and initramfs are loaded (IPA = PA).
pub const KERNEL_ADDR: u64 = 0x4400_0000;
pub const DTB_ADDR: u64 = 0x4800_0000;
pub const INITRD_ADDR: u64 = 0x4820_0000;
/// End of the root cell's RAM.
pub const ROOT_RAM_END: u64 = 0x6e00_0000;
/// QEMU loads the boot image here; the hypervisor's memory ends at
/// `HV_END`, so the whole boot image has to fit in between.
const BOOT_IMAGE_ADDR: u64 = 0x4020_0000;
const HV_END: u64 = 0x4400_0000;
/// The management page: named in the root DTB.
pub const MGMT_PAGE: &str = "0x0c000000";

/// Kernel command line of the root cell.
pub const BOOTARGS: &str = "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init";
/// What /init prints once userspace runs (the tests wait for it).
pub const USERSPACE_MARKER: &str = "Cellblock root cell: Linux userspace up";

/// The CLI for the root cell: static, for aarch64 Linux.
const MUSL_TARGET: &str = "aarch64-unknown-linux-musl";
/// Cell configs compiled to `.cell` for /opt/cellblock.
const QEMU_CELLS: [&str; 4] = [
    "qemu-gic-demo",
    "qemu-probe",
    "qemu-ivshmem-demo",
    "qemu-ivshmem-intruder",
];
/// Busybox applets linked in the initramfs (init runs
/// `busybox --install -s` for the rest).
const APPLETS: [&str; 12] = [
    "sh", "mount", "mkdir", "cat", "echo", "ls", "setsid", "cttyhack", "sleep", "grep", "ln",
    "poweroff",
];

/// The Linux boot image for `gic`.
pub fn linux_image(gic: u32) -> PathBuf {
    out_dir().join(format!("linux-gicv{gic}.img"))
}

pub fn system_config(gic: u32) -> String {
    format!("configs/qemu-arm64-gicv{gic}-linux.toml")
}

/// The boot images [`build`] packs (for `cellblock pack`).
pub fn boot_images() -> [BootImage; 2] {
    [
        BootImage {
            file: "linux-gicv3.img",
            gic: 3,
            cells: &[],
        },
        BootImage {
            file: "linux-gicv2.img",
            gic: 2,
            cells: &[],
        },
    ]
}

/// Builds the Linux pieces and boot images; `crate::build::build` has made
/// `cellblock.bin`, the inmates and the host CLI (`target/debug/cellblock`).
pub fn build(tools: &Tools) -> Result {
    let out = out_dir();
    let kernel = kernel()?;
    copy_if_changed(&kernel, &out.join("Image"))?;
    let kernel_bytes = fs::read(&kernel).context(|| format!("cannot read {}", kernel.display()))?;
    let busybox = busybox()?;

    run(cargo().args([
        "build",
        "--release",
        "-p",
        "loader",
        "--bin",
        "cellblock",
        "--target",
        MUSL_TARGET,
    ]))?;
    let musl_cli = out.join("cellblock-aarch64-linux");
    run(Command::new(&tools.objcopy)
        .arg("--strip-all")
        .arg(
            root()
                .join("target")
                .join(MUSL_TARGET)
                .join("release")
                .join("cellblock"),
        )
        .arg(&musl_cli))?;

    let host_cli = root().join("target").join("debug").join("cellblock");
    for cell in QEMU_CELLS {
        run(Command::new(&host_cli).current_dir(root()).args([
            "config",
            "compile",
            &format!("configs/cells/{cell}.toml"),
            "--system",
            &system_config(3),
            "-o",
            &format!("target/cellblock/{cell}.cell"),
        ]))?;
    }

    let input = crate::linux_smmu::input_modules(&kernel_version(&kernel)?)?;
    let guest = guest_initramfs(&busybox, &musl_cli, &input)?;
    let guest_path = out.join("linux-cell-initramfs.cpio");
    fs::write(&guest_path, &guest).context(|| format!("cannot write {}", guest_path.display()))?;
    let kernel_gz = gzipped_kernel(&out.join("Image"))?;
    let initramfs = initramfs(
        &busybox,
        &musl_cli,
        &input,
        &[
            (LINUX_CELL_KERNEL, kernel_gz.as_slice()),
            (LINUX_CELL_INITRD, guest.as_slice()),
        ],
    )?;
    let initrd_path = out.join("initramfs.cpio");
    fs::write(&initrd_path, &initramfs)
        .context(|| format!("cannot write {}", initrd_path.display()))?;

    run(cargo().args(["build", "-q", "-p", "dt-cellgen", "--bin", "dt-cellgen"]))?;
    let dt_cellgen = root().join("target").join("debug").join("dt-cellgen");
    for image in boot_images() {
        let gic = image.gic;
        let board = out.join(format!("qemu-virt-gicv{gic}.dtb"));
        dump_dtb(tools, gic, &board)?;
        let root_dtb = out.join(format!("root-gicv{gic}.dtb"));
        let mut cmd = Command::new(&dt_cellgen);
        cmd.current_dir(root())
            .arg("root-dtb")
            .arg(&board)
            .args(["--system", &system_config(gic), "--mgmt", MGMT_PAGE])
            .args(["--bootargs", BOOTARGS, "--initrd"])
            .arg(format!("{INITRD_ADDR:#x}"))
            .arg(format!("{:#x}", initramfs.len()))
            .args(["--disable", "/pl011@9040000"])
            // Not the root's (beyond the 39-bit IPA space): no BARs there.
            .args(["--drop-range", "/pcie@10000000:0x8000000000", "--delete"])
            .arg(if gic == 3 {
                "/intc@8000000/its@8080000"
            } else {
                "/intc@8000000/v2m@8020000"
            })
            .arg("-o")
            .arg(&root_dtb);
        run(&mut cmd)?;
        let dtb_len = fs::metadata(&root_dtb)
            .context(|| format!("cannot read {}", root_dtb.display()))?
            .len();
        check_layout(&kernel_bytes, dtb_len, initramfs.len())?;

        // Cells that run at the same time are checked together:
        // ivshmem-demo takes gic-demo's CPU and UART, the Linux cells
        // those and CPU 2.
        for group in [
            &QEMU_CELLS[..2],
            &QEMU_CELLS[2..],
            &["qemu-linux"],
            &["qemu-linux-ivshmem"],
        ] {
            run(Command::new(&host_cli)
                .current_dir(root())
                .args(["config", "check", "--dtb"])
                .arg(&board)
                .arg(system_config(gic))
                .args(group.iter().map(|c| format!("configs/cells/{c}.toml"))))?;
        }
        let img = out.join(image.file);
        run(Command::new(&host_cli)
            .current_dir(root())
            .args(["pack", "--hv", "target/cellblock/cellblock.bin", "--system"])
            .arg(system_config(gic))
            .args(["--image-dir", "target/cellblock", "-o"])
            .arg(format!("target/cellblock/{}", image.file)))?;
        let size = fs::metadata(&img)
            .context(|| format!("cannot read {}", img.display()))?
            .len();
        if BOOT_IMAGE_ADDR + size > HV_END {
            return Err(Error(format!(
                "{} is {size} bytes: loaded at {BOOT_IMAGE_ADDR:#x} it runs past the \
                 hypervisor's memory (end {HV_END:#x})",
                rel(&img)
            )));
        }
        println!("xtask: {} ({:.1} MiB)", rel(&img), mib(size));
    }
    println!(
        "xtask: Linux root cell: Image {:.1} MiB, initramfs {:.1} MiB",
        mib(kernel_bytes.len() as u64),
        mib(initramfs.len() as u64)
    );
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn copy_if_changed(from: &Path, to: &Path) -> Result {
    let same = match (fs::metadata(from), fs::metadata(to)) {
        (Ok(a), Ok(b)) => a.len() == b.len() && fs::read(from).ok() == fs::read(to).ok(),
        _ => false,
    };
    if !same {
        fs::copy(from, to)
            .context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// The root cell's images fit where the config loads them: the kernel
/// (with its bss, `image_size` of the Image header) below the DTB, the DTB
/// below the initramfs, the initramfs inside the root's RAM.
fn check_layout(kernel: &[u8], dtb_len: u64, initrd_len: usize) -> Result {
    let header = ImageHeader::read(kernel)?;
    let kernel_end = KERNEL_ADDR + header.text_offset + header.image_size.max(kernel.len() as u64);
    if kernel_end > DTB_ADDR {
        return Err(Error(format!(
            "the kernel ({:#x} bytes in memory) at {KERNEL_ADDR:#x} overlaps the DTB at {DTB_ADDR:#x}",
            header.image_size
        )));
    }
    if DTB_ADDR + dtb_len > INITRD_ADDR {
        return Err(Error(format!(
            "the root DTB ({dtb_len} bytes) at {DTB_ADDR:#x} overlaps the initramfs at {INITRD_ADDR:#x}"
        )));
    }
    if INITRD_ADDR + initrd_len as u64 > ROOT_RAM_END {
        return Err(Error(format!(
            "the initramfs ({initrd_len} bytes) runs past the root cell's RAM ({ROOT_RAM_END:#x})"
        )));
    }
    Ok(())
}

/// A raw arm64 Image from a `vmlinuz`: as it is, or gunzipped (the CLI's
/// `cell linux` reads kernels the same way).
fn raw_image(vmlinuz: Vec<u8>) -> Result<Vec<u8>> {
    Ok(loader::linux::kernel_image(vmlinuz)?.0)
}

/// Debian's arm64 kernel as a raw Image, cached as
/// `$CELLBLOCK_CACHE/linux-kernel/<version>/Image`. It comes from the same
/// package (and download) as the DTBs `cargo xtask dtbs` fetches.
pub fn kernel() -> Result<PathBuf> {
    let cache = debian::cache_dir()?;
    let kernels = cache.join("linux-kernel");
    if let Some(image) = newest_cached_kernel(&kernels) {
        println!("xtask: kernel (cached): {}", image.display());
        return Ok(image);
    }
    let (_, dtb_dir) = dtbs::fetch_debian_dtbs()?;
    let version = dtb_dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("linux-image-"))
        .ok_or_else(|| {
            Error(format!(
                "{} is not a usr/lib/linux-image-VERSION directory",
                dtb_dir.display()
            ))
        })?
        .to_owned();
    // dt-cellgen unpacks the whole package: its boot/ is beside usr/.
    let unpacked = dtb_dir
        .ancestors()
        .nth(3)
        .map(|d| d.join("boot").join(format!("vmlinuz-{version}")));
    let vmlinuz = match unpacked.filter(|p| p.is_file()) {
        Some(p) => fs::read(&p).context(|| format!("cannot read {}", p.display()))?,
        None => {
            let apt = Apt::new(&cache)?;
            let deb = apt.download(&format!("linux-image-{version}"))?;
            let tmp = cache.join("linux-kernel.tmp");
            debian::extract(&deb, &tmp)?;
            let p = tmp.join("boot").join(format!("vmlinuz-{version}"));
            let data = fs::read(&p).context(|| format!("cannot read {}", p.display()))?;
            let _ = fs::remove_dir_all(&tmp);
            data
        }
    };
    let image = raw_image(vmlinuz)?;
    let dir = kernels.join(&version);
    fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("Image");
    let tmp = dir.join("Image.tmp");
    fs::write(&tmp, &image).context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &path).context(|| format!("cannot write {}", path.display()))?;
    println!("xtask: kernel {version}: {}", path.display());
    Ok(path)
}

/// The version of a cached kernel: the name of its directory
/// (`linux-kernel/VERSION/Image`).
pub fn kernel_version(kernel: &Path) -> Result<String> {
    kernel
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error(format!("{}: no version directory", kernel.display())))
}

/// `linux-kernel/6.1.0-NN-arm64/Image` with the highest NN.
fn newest_cached_kernel(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let abi: u32 = name
                .strip_prefix("6.1.0-")?
                .strip_suffix("-arm64")?
                .parse()
                .ok()?;
            let image = e.path().join("Image");
            image.is_file().then_some((abi, image))
        })
        .max()
        .map(|(_, p)| p)
}

/// Where the root's initramfs keeps the Linux cell's kernel (gzipped, so
/// that the boot image stays within the hypervisor's memory) and initramfs.
pub const LINUX_CELL_KERNEL: &str = "opt/cellblock/linux-cell/Image.gz";
pub const LINUX_CELL_INITRD: &str = "opt/cellblock/linux-cell/initramfs.cpio";

/// `image` gzipped, kept as `image.gz` beside it while newer than `image`.
fn gzipped_kernel(image: &Path) -> Result<Vec<u8>> {
    use std::io::Write;
    let gz_path = image.with_extension("gz");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(gz), Some(raw)) = (modified(&gz_path), modified(image)) {
        if gz >= raw {
            return fs::read(&gz_path).context(|| format!("cannot read {}", gz_path.display()));
        }
    }
    let raw = fs::read(image).context(|| format!("cannot read {}", image.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw)
        .and_then(|_| gz.finish())
        .context(|| format!("cannot gzip {}", image.display()))
        .and_then(|bytes| {
            fs::write(&gz_path, &bytes)
                .context(|| format!("cannot write {}", gz_path.display()))?;
            Ok(bytes)
        })
}

/// The Linux cell's initramfs: busybox, `guestfs/` (its /init), the CLI
/// (`cellblock counter`, `cellblock ivshmem`) and the input modules for
/// ivshmem doorbells.
fn guest_initramfs(busybox: &Path, cli: &Path, input: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut a = Archive::new();
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root",
    ] {
        a.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    a.char_dev("dev/console", 0o600, 5, 1)?;
    a.char_dev("dev/null", 0o666, 1, 3)?;
    let busybox = fs::read(busybox).context(|| format!("cannot read {}", busybox.display()))?;
    check_aarch64_elf(&busybox).map_err(Error::from)?;
    a.file("bin/busybox", 0o755, &busybox)?;
    for applet in APPLETS {
        a.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    a.file(
        "usr/bin/cellblock",
        0o755,
        &fs::read(cli).context(|| format!("cannot read {}", cli.display()))?,
    )?;
    add_tree(&mut a, &root().join("guestfs"), "")?;
    if !a.contains("init") {
        return Err("guestfs/init is missing".into());
    }
    add_input_modules(&mut a, input)?;
    Ok(a.finish())
}

/// Debian's static arm64 busybox, cached as `$CELLBLOCK_CACHE/busybox-static/busybox`.
pub fn busybox() -> Result<PathBuf> {
    let cache = debian::cache_dir()?;
    let dir = cache.join("busybox-static");
    let path = dir.join("busybox");
    if path.is_file() {
        println!("xtask: busybox (cached): {}", path.display());
        return Ok(path);
    }
    let apt = Apt::new(&cache)?;
    let deb = apt.download("busybox-static")?;
    let tmp = cache.join("busybox-static.tmp");
    debian::extract(&deb, &tmp)?;
    let bin = tmp.join("bin").join("busybox");
    let data = fs::read(&bin).context(|| format!("cannot read {}", bin.display()))?;
    check_aarch64_elf(&data).map_err(|e| Error(format!("{}: {e}", bin.display())))?;
    fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    fs::write(&path, &data).context(|| format!("cannot write {}", path.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    println!("xtask: busybox: {}", path.display());
    Ok(path)
}

/// A 64-bit little-endian ELF for AArch64 (e_machine 183).
fn check_aarch64_elf(data: &[u8]) -> std::result::Result<(), &'static str> {
    if data.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file");
    }
    if data.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF");
    }
    if data.get(18..20) != Some(183u16.to_le_bytes().as_slice()) {
        return Err("not an AArch64 ELF");
    }
    Ok(())
}

/// Where the root initramfs keeps the input modules (gpio_keys, evdev:
/// ivshmem doorbells as input events) and the file /init reads their load
/// order from.
const INPUT_MODULES_DIR: &str = "lib/modules/input";
const INPUT_ORDER_FILE: &str = "lib/modules/cellblock-input.order";

/// The initramfs: `rootfs/` (init and friends), busybox, the CLI, device
/// nodes the kernel needs before devtmpfs, /opt/cellblock, the input
/// modules `input` (in load order) and `extra` files (path, contents).
fn initramfs(
    busybox: &Path,
    cli: &Path,
    input: &[(String, Vec<u8>)],
    extra: &[(&str, &[u8])],
) -> Result<Vec<u8>> {
    let read = |p: &Path| fs::read(p).context(|| format!("cannot read {}", p.display()));
    let mut a = Archive::new();
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "root", "etc",
        "mnt",
    ] {
        a.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    // The kernel opens /dev/console for init before anything is mounted.
    a.char_dev("dev/console", 0o600, 5, 1)?;
    a.char_dev("dev/null", 0o666, 1, 3)?;
    let busybox = read(busybox)?;
    check_aarch64_elf(&busybox).map_err(Error::from)?;
    a.file("bin/busybox", 0o755, &busybox)?;
    for applet in APPLETS {
        a.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    let cli = read(cli)?;
    check_aarch64_elf(&cli).map_err(Error::from)?;
    a.file("usr/bin/cellblock", 0o755, &cli)?;
    add_tree(&mut a, &root().join("rootfs"), "")?;
    if !a.contains("init") {
        return Err("rootfs/init is missing".into());
    }

    for (path, data) in extra {
        a.file(path, 0o644, data)?;
    }
    let out = out_dir();
    for cell in QEMU_CELLS {
        let f = out.join(format!("{cell}.cell"));
        a.file(&format!("opt/cellblock/{cell}.cell"), 0o644, &read(&f)?)?;
    }
    for inmate in crate::build::INMATES {
        let f = out.join(format!("{inmate}.bin"));
        a.file(&format!("opt/cellblock/{inmate}.bin"), 0o644, &read(&f)?)?;
    }
    let cells = root().join("configs").join("cells");
    let mut tomls: Vec<PathBuf> = fs::read_dir(&cells)
        .context(|| format!("cannot read {}", cells.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    tomls.sort();
    for f in tomls.iter() {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        a.file(&format!("opt/cellblock/cells/{name}"), 0o644, &read(f)?)?;
    }
    for gic in GICS {
        let f = root().join(system_config(gic));
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        a.file(&format!("opt/cellblock/{name}"), 0o644, &read(&f)?)?;
    }
    add_input_modules(&mut a, input)?;
    Ok(a.finish())
}

/// The input modules (in load order) and their order file, which /init
/// (the root's and the Linux cell's) reads.
fn add_input_modules(a: &mut Archive, input: &[(String, Vec<u8>)]) -> Result {
    a.dir(INPUT_MODULES_DIR, 0o755)?;
    let mut order = String::new();
    for (file, data) in input {
        a.file(&format!("{INPUT_MODULES_DIR}/{file}"), 0o644, data)?;
        order.push_str(file);
        order.push('\n');
    }
    a.file(INPUT_ORDER_FILE, 0o644, order.as_bytes())
}

/// Adds the files under `dir` (sorted, keeping their permission bits) at
/// `prefix` in the archive.
fn add_tree(a: &mut Archive, dir: &Path, prefix: &str) -> Result {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = e
            .metadata()
            .context(|| format!("cannot stat {}", e.path().display()))?;
        if meta.is_dir() {
            a.dir(&path, 0o755)?;
            add_tree(a, &e.path(), &path)?;
        } else {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let data =
                fs::read(e.path()).context(|| format!("cannot read {}", e.path().display()))?;
            a.file(&path, mode, &data)?;
        }
    }
    Ok(())
}

/// Writes QEMU's own DTB for the machine the hypervisor runs on (both
/// UARTs present, as in the demo and the tests).
fn dump_dtb(tools: &Tools, gic: u32, to: &Path) -> Result {
    let mut args = Machine::hypervisor(gic).args();
    if let Some(m) = args.iter().position(|a| a == "-M").map(|i| i + 1) {
        args[m].push_str(&format!(",dumpdtb={}", to.display()));
    }
    run(Command::new(&tools.qemu)
        .args(args)
        .args(["-nodefaults", "-display", "none"])
        .args(["-serial", "null", "-serial", "null"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64) -> Vec<u8> {
        let mut img = vec![0u8; 0x1000];
        img[8..16].copy_from_slice(&text_offset.to_le_bytes());
        img[16..24].copy_from_slice(&image_size.to_le_bytes());
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        img
    }

    #[test]
    fn layout_checks_name_the_overlap() {
        assert!(check_layout(&image(0, 0x201_0000), 8192, 8 << 20).is_ok());
        let e = check_layout(&image(0, 0x400_1000), 8192, 1).unwrap_err();
        assert!(e.0.contains("overlaps the DTB"), "{e}");
        let e = check_layout(&image(0, 0x10_0000), 0x20_0001, 1).unwrap_err();
        assert!(e.0.contains("overlaps the initramfs"), "{e}");
        let e = check_layout(&image(0, 0x10_0000), 1, 0x3600_0000).unwrap_err();
        assert!(e.0.contains("past the root cell's RAM"), "{e}");
    }

    #[test]
    fn elf_check() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert!(check_aarch64_elf(&elf).is_ok());
        elf[18] = 62;
        assert_eq!(check_aarch64_elf(&elf), Err("not an AArch64 ELF"));
        assert!(check_aarch64_elf(b"#!/bin/sh").is_err());
    }

    #[test]
    fn cached_kernels_newest_first() {
        let dir = std::env::temp_dir().join(format!("xtask-kernels-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(newest_cached_kernel(&dir), None);
        for abi in [9, 56, 12] {
            let d = dir.join(format!("6.1.0-{abi}-arm64"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("Image"), b"").unwrap();
        }
        fs::create_dir_all(dir.join("6.1.0-99-arm64")).unwrap(); // no Image
        assert_eq!(
            newest_cached_kernel(&dir),
            Some(dir.join("6.1.0-56-arm64/Image"))
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
