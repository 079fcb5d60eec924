//! Runs the `cellblock` binary on the shipped configs and on broken ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hv_core::blob::{decode_cell, decode_system};
use hv_core::config::{CellConfig, SystemConfig};
use hv_core::pack::{image_size_from_header, Pack, PackKind};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(rel: &str) -> PathBuf {
    root().join("configs").join(rel)
}

fn fixture_dtb(version: u8) -> PathBuf {
    root().join(format!(
        "hv-core/tests/fixtures/qemu-virt-gicv{version}.dtb"
    ))
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cellblock<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellblock"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// Asserts exit code 1 and that stderr is exactly `lines`.
#[track_caller]
fn assert_fails(o: &Output, lines: &[String]) {
    assert_eq!(o.status.code(), Some(1), "stderr:\n{}", stderr(o));
    let got: Vec<&str> = std::str::from_utf8(&o.stderr).unwrap().lines().collect();
    assert_eq!(got, lines);
}

fn read_system(path: &Path) -> SystemConfig {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read_cell(path: &Path) -> CellConfig {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn check_shipped_configs() {
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        config("qemu-arm64-gicv3.toml").as_os_str(),
        config("qemu-arm64-gicv2.toml").as_os_str(),
        config("cells/qemu-gic-demo.toml").as_os_str(),
        config("cells/qemu-probe.toml").as_os_str(),
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().all(|l| l.contains(": ok (")), "{out}");
}

#[test]
fn check_against_qemu_dtbs() {
    for v in [2, 3] {
        let sys = config(&format!("qemu-arm64-gicv{v}.toml"));
        let o = cellblock(&[
            "config".as_ref(),
            "check".as_ref(),
            sys.as_os_str(),
            "--dtb".as_ref(),
            fixture_dtb(v).as_os_str(),
        ]);
        assert_ok(&o);
        assert!(stdout(&o).contains("matches the board"));
    }
    // GICv3 config on the GICv2 board.
    let sys = config("qemu-arm64-gicv3.toml");
    let dtb = fixture_dtb(2);
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        sys.as_os_str(),
        "--dtb".as_ref(),
        dtb.as_os_str(),
    ]);
    assert_fails(
        &o,
        &[format!(
            "cellblock: {} (board {}): platform.gic.version: GIC version 3 configured, the board has version 2",
            sys.display(),
            dtb.display()
        )],
    );
}

#[test]
fn system_option_checked_against_board() {
    let sys = config("qemu-arm64-gicv2.toml");
    let dtb = fixture_dtb(3);
    let cell = config("cells/qemu-probe.toml");
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        cell.as_os_str(),
        "--system".as_ref(),
        sys.as_os_str(),
        "--dtb".as_ref(),
        dtb.as_os_str(),
    ]);
    assert_fails(
        &o,
        &[format!(
            "cellblock: {} (board {}): platform.gic.version: GIC version 2 configured, the board has version 3",
            sys.display(),
            dtb.display()
        )],
    );
}

#[test]
fn cell_needs_a_system() {
    let cell = config("cells/qemu-probe.toml");
    let o = cellblock(&["config".as_ref(), "check".as_ref(), cell.as_os_str()]);
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: a cell config is checked against a system config: give --system SYS.toml or a system config among the files",
            cell.display()
        )],
    );
    let sys = config("qemu-arm64-gicv3.toml");
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        cell.as_os_str(),
        "--system".as_ref(),
        sys.as_os_str(),
    ]);
    assert_ok(&o);
}

#[test]
fn bad_toml() {
    let dir = scratch("bad-toml");
    let path = dir.join("broken.toml");
    let text = std::fs::read_to_string(config("cells/qemu-probe.toml"))
        .unwrap()
        .replace("cpus = [2]", "cpus = [2");
    std::fs::write(&path, text).unwrap();
    let o = cellblock(&["config".as_ref(), "check".as_ref(), path.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    let prefix = format!("cellblock: {}: line ", path.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains("expected"), "{err}");
}

#[test]
fn unknown_field_value() {
    let dir = scratch("bad-flag");
    let path = dir.join("flag.toml");
    let text = std::fs::read_to_string(config("cells/qemu-probe.toml"))
        .unwrap()
        .replace("\"execute\"", "\"exec\"");
    std::fs::write(&path, text).unwrap();
    let o = cellblock(&["config".as_ref(), "compile".as_ref(), path.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("unknown variant `exec`"), "{err}");
    assert!(!dir.join("flag.cell").exists());
}

#[test]
fn overlapping_region() {
    // Move the root cell's UART window onto its RAM in the cell's address space.
    let dir = scratch("overlap");
    let path = dir.join("overlap.toml");
    let text = std::fs::read_to_string(config("qemu-arm64-gicv3.toml"))
        .unwrap()
        .replace("virt_start = 0x09000000", "virt_start = 0x40fff000");
    std::fs::write(&path, text).unwrap();
    let o = cellblock(&["config".as_ref(), "check".as_ref(), path.as_os_str()]);
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: root_cell.memory[1]: overlaps memory[0] in the cell's address space (0x40fff000..0x41000000)",
            path.display()
        )],
    );
}

#[test]
fn cells_overlapping_each_other() {
    let dir = scratch("cell-overlap");
    let path = dir.join("probe.toml");
    let text = std::fs::read_to_string(config("cells/qemu-probe.toml"))
        .unwrap()
        .replace("phys_start = 0x7e200000", "phys_start = 0x7e100000")
        .replace("cpus = [2]", "cpus = [3]");
    std::fs::write(&path, text).unwrap();
    let sys = config("qemu-arm64-gicv3.toml");
    let demo = config("cells/qemu-gic-demo.toml");
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        sys.as_os_str(),
        demo.as_os_str(),
        path.as_os_str(),
    ]);
    let p = path.display();
    assert_fails(
        &o,
        &[
            format!("cellblock: {p}: memory[0]: physical range 0x7e100000..0x7e300000 overlaps memory[0] of cell \"gic-demo\" (only regions both flagged shared may overlap)"),
            format!("cellblock: {p}: cpus[0]: CPU 3 is already given to cell \"gic-demo\""),
        ],
    );
}

#[test]
fn missing_file() {
    let o = cellblock(&["config", "check", "/nonexistent/x.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("cellblock: /nonexistent/x.toml: No such file or directory"));
}

#[test]
fn compile_round_trips() {
    let dir = scratch("compile");
    // System config.
    let sys_toml = config("qemu-arm64-gicv3.toml");
    let sys_cell = dir.join("sys.cell");
    let o = cellblock(&[
        "config".as_ref(),
        "compile".as_ref(),
        sys_toml.as_os_str(),
        "-o".as_ref(),
        sys_cell.as_os_str(),
    ]);
    assert_ok(&o);
    let bytes = std::fs::read(&sys_cell).unwrap();
    assert_eq!(&bytes[..4], b"CBLK");
    assert_eq!(decode_system(&bytes).unwrap(), read_system(&sys_toml));

    // Cell config, checked against the system.
    let cell_toml = config("cells/qemu-gic-demo.toml");
    let cell_out = dir.join("gic-demo.cell");
    let o = cellblock(&[
        "config".as_ref(),
        "compile".as_ref(),
        cell_toml.as_os_str(),
        "--system".as_ref(),
        sys_toml.as_os_str(),
        "-o".as_ref(),
        cell_out.as_os_str(),
    ]);
    assert_ok(&o);
    let bytes = std::fs::read(&cell_out).unwrap();
    assert_eq!(decode_cell(&bytes).unwrap(), read_cell(&cell_toml));

    // The compiled files are accepted by `config check` too.
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        sys_cell.as_os_str(),
        cell_out.as_os_str(),
    ]);
    assert_ok(&o);

    // A corrupted .cell is refused with the checksum message.
    let mut bad = std::fs::read(&cell_out).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let bad_path = dir.join("bad.cell");
    std::fs::write(&bad_path, &bad).unwrap();
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        bad_path.as_os_str(),
        "--system".as_ref(),
        sys_cell.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let prefix = format!(
        "cellblock: {}: config blob: checksum mismatch (stored 0x",
        bad_path.display()
    );
    assert!(err.starts_with(&prefix), "{err}");
}

#[test]
fn compile_default_output_name() {
    let dir = scratch("compile-default");
    let toml_path = dir.join("probe.toml");
    std::fs::copy(config("cells/qemu-probe.toml"), &toml_path).unwrap();
    let o = cellblock(&["config".as_ref(), "compile".as_ref(), toml_path.as_os_str()]);
    assert_ok(&o);
    let bytes = std::fs::read(dir.join("probe.cell")).unwrap();
    assert_eq!(decode_cell(&bytes).unwrap().name, "probe");
}

/// A fake hypervisor binary: an ARM64 Image header with `image_size`,
/// text_offset 2 MiB and linked at QEMU virt's 0x4020_0000.
fn fake_hv(len: usize, image_size: u64) -> Vec<u8> {
    let mut hv = vec![0x11u8; len];
    hv[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
    hv[16..24].copy_from_slice(&image_size.to_le_bytes());
    hv[32..40].copy_from_slice(&0x4020_0000u64.to_le_bytes());
    hv[56..60].copy_from_slice(b"ARM\x64");
    hv
}

#[test]
fn pack_refuses_a_hypervisor_linked_elsewhere() {
    let dir = scratch("pack-link");
    let mut image = fake_hv(0x1000, 0x2000);
    image[32..40].copy_from_slice(&0x8020_0000u64.to_le_bytes());
    let hv = dir.join("cellblock.bin");
    std::fs::write(&hv, image).unwrap();
    let out = dir.join("boot.img");
    let sys = config("qemu-arm64-gicv3.toml");
    let o = cellblock(&pack_args(&dir, &hv, &sys, &[], &out));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("linked at 0x80200000")
            && err.contains("puts it at 0x40200000")
            && err.contains("CELLBLOCK_HV_BASE=0x40200000"),
        "{err}"
    );
    assert!(!out.exists());
}

fn pack_args(
    dir: &Path,
    hv: &Path,
    sys: &Path,
    cells: &[PathBuf],
    out: &Path,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "pack".into(),
        "--hv".into(),
        hv.into(),
        "--system".into(),
        sys.into(),
    ];
    for c in cells {
        args.push("--cell".into());
        args.push(c.into());
    }
    args.extend(["--image-dir".into(), dir.into(), "-o".into(), out.into()]);
    args
}

#[test]
fn pack_boot_image() {
    let dir = scratch("pack");
    let hv_path = dir.join("cellblock.bin");
    std::fs::write(&hv_path, fake_hv(0x1234, 0x20000)).unwrap();
    let uart: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let gic: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let probe = vec![0x5au8; 100];
    std::fs::write(dir.join("uart-demo.bin"), &uart).unwrap();
    std::fs::write(dir.join("gic-demo.bin"), &gic).unwrap();
    std::fs::write(dir.join("probe.bin"), &probe).unwrap();

    let sys = config("qemu-arm64-gicv3.toml");
    let cells = [
        config("cells/qemu-gic-demo.toml"),
        config("cells/qemu-probe.toml"),
    ];
    let out = dir.join("boot.img");
    let o = cellblock(&pack_args(&dir, &hv_path, &sys, &cells, &out));
    assert_ok(&o);

    let img = std::fs::read(&out).unwrap();
    let image_size = image_size_from_header(&img).unwrap();
    assert_eq!(image_size, 0x20000);
    assert_eq!(&img[..0x1234], &fake_hv(0x1234, 0x20000)[..]);
    assert!(
        img[0x1234..0x20000].iter().all(|&b| b == 0),
        "padding is zero"
    );

    let pack = Pack::parse(&img[0x20000..]).unwrap();
    let sys_cfg = decode_system(pack.config_blob().unwrap()).unwrap();
    let mut expected = read_system(&sys);
    expected.boot_cells = cells.iter().map(|c| read_cell(c)).collect();
    assert_eq!(sys_cfg, expected);

    let images: Vec<_> = pack
        .entries()
        .iter()
        .filter(|e| e.kind == PackKind::Image)
        .collect();
    assert_eq!(images.len(), 3);
    let all_cells: Vec<&CellConfig> = std::iter::once(&expected.root_cell)
        .chain(&expected.boot_cells)
        .collect();
    for (cell, data) in [(0, &uart), (1, &gic), (2, &probe)] {
        let e: Vec<_> = pack.images(cell).collect();
        assert_eq!(e.len(), 1, "cell {cell}");
        assert_eq!(e[0].addr, all_cells[cell as usize].images[0].addr);
        assert_eq!(pack.data(e[0]), data.as_slice());
    }
}

#[test]
fn pack_refuses_invalid_cells() {
    let dir = scratch("pack-invalid");
    let hv_path = dir.join("cellblock.bin");
    std::fs::write(&hv_path, fake_hv(0x1000, 0x10000)).unwrap();
    std::fs::write(dir.join("uart-demo.bin"), [0u8; 16]).unwrap();
    std::fs::write(dir.join("probe.bin"), [0u8; 16]).unwrap();
    let probe = dir.join("probe.toml");
    let text = std::fs::read_to_string(config("cells/qemu-probe.toml"))
        .unwrap()
        .replace("cpus = [2]", "cpus = [7]");
    std::fs::write(&probe, text).unwrap();
    let out = dir.join("boot.img");
    let o = cellblock(&pack_args(
        &dir,
        &hv_path,
        &config("qemu-arm64-gicv3.toml"),
        std::slice::from_ref(&probe),
        &out,
    ));
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: boot_cells[0](probe).cpus[0]: CPU 7 does not exist (platform.cpus lists 4, ids 0..4)",
            probe.display()
        )],
    );
    assert!(!out.exists());
}

#[test]
fn pack_refuses_missing_and_oversized_images() {
    let dir = scratch("pack-images");
    let hv_path = dir.join("cellblock.bin");
    std::fs::write(&hv_path, fake_hv(0x1000, 0x10000)).unwrap();
    // uart-demo.bin is missing; gic-demo.bin is larger than its 2 MiB region.
    std::fs::write(dir.join("gic-demo.bin"), vec![0u8; 0x20_0001]).unwrap();
    let sys = config("qemu-arm64-gicv3.toml");
    let demo = config("cells/qemu-gic-demo.toml");
    let out = dir.join("boot.img");
    let o = cellblock(&pack_args(
        &dir,
        &hv_path,
        &sys,
        std::slice::from_ref(&demo),
        &out,
    ));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "cellblock: {}: root_cell.images[0].file: {}: ",
            sys.display(),
            dir.join("uart-demo.bin").display()
        )),
        "{err}"
    );
    let addr = read_cell(&demo).images[0].addr;
    assert_eq!(
        lines[1],
        format!(
            "cellblock: {}: boot_cells[0](gic-demo).images[0].addr: image at {addr:#x} (0x200001 bytes) is not inside one writable or loadable RAM region of the cell",
            demo.display()
        )
    );
}

#[test]
fn pack_refuses_bad_hypervisor() {
    let dir = scratch("pack-hv");
    let hv_path = dir.join("cellblock.bin");
    std::fs::write(&hv_path, vec![0u8; 100]).unwrap();
    let out = dir.join("boot.img");
    let o = cellblock(&pack_args(
        &dir,
        &hv_path,
        &config("qemu-arm64-gicv3.toml"),
        &[],
        &out,
    ));
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: ARM64 Image header: bad magic \"\\x00\\x00\\x00\\x00\" at offset 56 (expected \"ARM\\x64\")",
            hv_path.display()
        )],
    );
    // image_size smaller than the file.
    std::fs::write(&hv_path, fake_hv(0x2000, 0x1000)).unwrap();
    let o = cellblock(&pack_args(
        &dir,
        &hv_path,
        &config("qemu-arm64-gicv3.toml"),
        &[],
        &out,
    ));
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: image_size 0x1000 in its header is smaller than the file (0x2000 bytes)",
            hv_path.display()
        )],
    );
}

#[test]
fn pack_needs_a_system_config() {
    let dir = scratch("pack-kind");
    let hv_path = dir.join("cellblock.bin");
    std::fs::write(&hv_path, fake_hv(0x1000, 0x10000)).unwrap();
    let cell = config("cells/qemu-probe.toml");
    let o = cellblock(&pack_args(
        &dir,
        &hv_path,
        &cell,
        &[],
        &dir.join("boot.img"),
    ));
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: is a cell config, a system config (with [platform]) is needed here",
            cell.display()
        )],
    );
}

#[test]
fn runtime_commands_need_cellblock() {
    // On a build host there is no management page: one line, exit 1. (The
    // commands themselves are tested against an in-memory hypervisor in the
    // library's unit tests.)
    for args in [
        &["cell", "list"][..],
        &["info"],
        &["console"],
        &["cell", "start", "x"],
    ] {
        let o = cellblock(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("cellblock: "), "{err}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn load_needs_something_to_load() {
    let o = cellblock(&["cell", "load", "gic-demo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("IMAGE[@ADDR]"), "{}", stderr(&o));
    let o = cellblock(&["cell", "load", "gic-demo", "-s", "x@0x40300000"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[cfg(feature = "config-create")]
#[test]
fn config_create_from_qemu_dtb() {
    let dir = scratch("create");
    let dtb = fixture_dtb(3);
    let out = dir.join("system.toml");
    let report = dir.join("devices.txt");
    let o = cellblock(&[
        "config".as_ref(),
        "create".as_ref(),
        dtb.as_os_str(),
        "--cell-mem".as_ref(),
        "64M".as_ref(),
        "--name".as_ref(),
        "qemu-virt".as_ref(),
        "--report".as_ref(),
        report.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_ok(&o);
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            format!(
                "{}: system \"qemu-virt\" written to {}",
                dtb.display(),
                out.display()
            ),
            format!("device report written to {}", report.display()),
        ]
    );
    // What it wrote validates, describes the board, and is dt-cellgen's
    // own output for the same options.
    let sys = read_system(&out);
    hv_core::validate::validate_system(&sys).expect("generated config validates");
    assert_eq!(sys.name, "qemu-virt");
    assert_eq!(sys.platform.cpus, [0, 1, 2, 3]);
    assert_eq!(sys.platform.gic.version, 3);
    assert_eq!(sys.hypervisor.console.base, 0x0900_0000);
    let opts = dt_cellgen::system::SystemOptions {
        cell_mem: 64 << 20,
        name: Some("qemu-virt".into()),
        ..Default::default()
    };
    let lib = dt_cellgen::system_from_dtb(&std::fs::read(&dtb).unwrap(), &opts, true).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), lib.toml);
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        lib.report.unwrap()
    );
    let o = cellblock(&[
        "config".as_ref(),
        "check".as_ref(),
        out.as_os_str(),
        "--dtb".as_ref(),
        dtb.as_os_str(),
    ]);
    assert_ok(&o);
    assert!(stdout(&o).contains("matches the board"), "{}", stdout(&o));
}

#[cfg(feature = "config-create")]
#[test]
fn config_create_refusals() {
    let dir = scratch("create-refusals");
    let out = dir.join("system.toml");
    let not_dtb = dir.join("board.dtb");
    std::fs::write(&not_dtb, "not a device tree").unwrap();
    let o = cellblock(&[
        "config".as_ref(),
        "create".as_ref(),
        not_dtb.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails(
        &o,
        &[format!(
            "cellblock: {}: not a DTB: magic is 0x6e6f7420, expected 0xd00dfeed",
            not_dtb.display()
        )],
    );
    let dtb = fixture_dtb(2);
    let o = cellblock(&[
        "config".as_ref(),
        "create".as_ref(),
        dtb.as_os_str(),
        "--hv-at".as_ref(),
        "middle".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails(
        &o,
        &["cellblock: --hv-at: \"middle\" is neither bottom nor top".to_string()],
    );
    let o = cellblock(&[
        "config".as_ref(),
        "create".as_ref(),
        dtb.as_os_str(),
        "--cell-mem".as_ref(),
        "2G".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("cellblock: {}: no free", dtb.display()))
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists(), "nothing written on refusal");
}
