//! The `dt-cellgen` binary end to end on QEMU's DTB: system → cell →
//! root-dtb and guest-dtb, with files, as a person runs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use dt_cellgen::tree::Tree;
use hv_core::config::{CellConfig, MemFlag, SystemConfig};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dt-cellgen"))
        .args(args)
        .output()
        .expect("dt-cellgen runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dt-cellgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn system_cell_root_and_guest_from_the_command_line() {
    let dtb = fixture_path("qemu-virt-gicv3.dtb");
    let dtb = dtb.to_str().unwrap();
    let system = tmp("system.toml");
    let report = tmp("report.txt");
    let (ok, err) = run(&[
        "system",
        dtb,
        "--cell-mem",
        "64M",
        "--mgmt-page",
        "0x0c000000",
        "--report",
        report.to_str().unwrap(),
        "-o",
        system.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let sys: SystemConfig = toml::from_str(&std::fs::read_to_string(&system).unwrap()).unwrap();
    let mgmt = sys.hypervisor.management.expect("management configured");
    assert_eq!(mgmt.page, 0x0c00_0000);
    assert_eq!(mgmt.buffer.size, 2 << 20);
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("/pl011@9040000"));

    let cell = tmp("cell.toml");
    let (ok, err) = run(&[
        "cell",
        "--system",
        system.to_str().unwrap(),
        "--name",
        "uart-cell",
        "--cpus",
        "2-3",
        "--mem",
        "8M",
        "--device",
        "/pl011@9040000",
        "-o",
        cell.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let c: CellConfig = toml::from_str(&std::fs::read_to_string(&cell).unwrap()).unwrap();
    assert_eq!(c.cpus, vec![2, 3]);
    assert_eq!(c.irqs, vec![40]);
    assert!(std::fs::read_to_string(&cell)
        .unwrap()
        .contains("40, # SPI 8 /pl011@9040000"));
    // The cell's RAM is neither the management buffer nor the root's.
    let ram = c.memory.iter().find(|r| !r.has(MemFlag::Io)).unwrap();
    assert!(
        ram.phys_start + ram.size <= mgmt.buffer.start
            || ram.phys_start >= mgmt.buffer.start + mgmt.buffer.size
    );

    let root = tmp("root.dtb");
    let (ok, err) = run(&[
        "root-dtb",
        dtb,
        "--system",
        system.to_str().unwrap(),
        "--cell",
        cell.to_str().unwrap(),
        "-o",
        root.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let t = Tree::parse(&std::fs::read(&root).unwrap()).unwrap();
    let mgmt_node = t.find("/cellblock-mgmt@c000000").expect("management node");
    assert_eq!(t.raw_reg(mgmt_node).unwrap(), vec![(0x0c00_0000, 0x1000)]);
    let cpus = t.find("/cpus").unwrap();
    assert_eq!(
        t.node(cpus)
            .children
            .iter()
            .filter(|&&c| t.str_prop(c, "device_type").ok().flatten() == Some("cpu"))
            .count(),
        2
    );
    // The root's /memory holds neither the buffer nor the cell's RAM.
    let mem = t.find("/memory").unwrap();
    for (s, z) in t.raw_reg(mem).unwrap() {
        for (bs, bz) in [
            (mgmt.buffer.start, mgmt.buffer.size),
            (ram.phys_start, ram.size),
        ] {
            assert!(
                s + z <= bs || s >= bs + bz,
                "{s:#x}+{z:#x} overlaps {bs:#x}+{bz:#x}"
            );
        }
    }

    let guest = tmp("guest.dtb");
    let (ok, err) = run(&[
        "guest-dtb",
        dtb,
        "--system",
        system.to_str().unwrap(),
        "--cell",
        cell.to_str().unwrap(),
        "--bootargs",
        "console=ttyAMA0 earlycon",
        "--initrd",
        "0x40800000",
        "1M",
        "-o",
        guest.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let g = Tree::parse(&std::fs::read(&guest).unwrap()).unwrap();
    let chosen = g.find("/chosen").unwrap();
    assert_eq!(
        g.str_prop(chosen, "bootargs").unwrap(),
        Some("console=ttyAMA0 earlycon")
    );
    let _ = std::fs::remove_dir_all(system.parent().unwrap());
}

#[test]
fn errors_name_the_problem_and_fail() {
    let bad = tmp("bad.dtb");
    std::fs::write(&bad, b"not a device tree at all, just text").unwrap();
    let out = tmp("out.toml");
    let (ok, err) = run(&["system", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a DTB: magic"), "{err}");
    let dtb = fixture_path("qemu-virt-gicv3.dtb");
    let (ok, err) = run(&[
        "system",
        dtb.to_str().unwrap(),
        "--hv-mem",
        "lots",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("\"lots\": not a number"), "{err}");
    assert!(!out.exists());
}
