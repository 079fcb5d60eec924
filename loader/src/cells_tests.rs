//! The runtime commands against the in-memory hypervisor of `fake.rs`, with
//! a temporary directory standing in for `/sys/devices/system/cpu`.

use std::path::{Path, PathBuf};

use clap::Parser;
use hv_core::abi::Hypercall;
use hv_core::cell::CellState;

use super::*;
use crate::cli::{Cli, Command};
use crate::fake::{Answer, FakeHv};
use crate::testutil::scratch;

const BUFFER: usize = 64 * 1024;

fn gic_demo_toml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cells/qemu-gic-demo.toml")
}

fn fast() -> Timing {
    Timing {
        park_timeout: Duration::from_millis(50),
        park_poll: Duration::from_millis(1),
        shutdown_timeout: Duration::from_millis(50),
        shutdown_poll: Duration::from_millis(1),
    }
}

/// A scratch dir with a fake hypervisor of 4 CPUs whose sysfs is in it.
fn setup(name: &str) -> (PathBuf, FakeHv) {
    let dir = scratch(name);
    let hv = FakeHv::new(4, BUFFER, CpuSysfs::new(dir.join("sys-cpu")));
    (dir, hv)
}

/// Runs a command line (without the program name) on `hv`.
fn run(hv: &mut FakeHv, args: &[&str]) -> Result<Vec<String>, Error> {
    let cli = Cli::try_parse_from(std::iter::once("cellblock").chain(args.iter().copied()))
        .map_err(|e| Error::new("usage", e.to_string()))?;
    let sysfs = CpuSysfs::new(hv.sysfs_root());
    let mut rt = Runtime::new(hv, sysfs, fast());
    match &cli.command {
        Command::Cell { action } => rt.cell(action),
        Command::Console => rt.console(),
        Command::Info => rt.info(),
        other => panic!("not a runtime command: {other:?}"),
    }
}

#[track_caller]
fn ok(hv: &mut FakeHv, args: &[&str]) -> Vec<String> {
    match run(hv, args) {
        Ok(lines) => lines,
        Err(e) => panic!("{args:?} failed:\n{e}"),
    }
}

#[track_caller]
fn fails(hv: &mut FakeHv, args: &[&str]) -> String {
    match run(hv, args) {
        Ok(lines) => panic!("{args:?} succeeded: {lines:?}"),
        Err(e) => e.to_string(),
    }
}

fn online(hv: &FakeHv, cpu: u32) -> bool {
    CpuSysfs::new(hv.sysfs_root()).is_online(cpu).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn create_gic_demo(hv: &mut FakeHv) {
    let out = ok(hv, &["cell", "create", gic_demo_toml().to_str().unwrap()]);
    assert_eq!(out, ["Cell \"gic-demo\" created (id 1)"]);
}

#[test]
fn whole_life_of_a_cell() {
    let (dir, mut hv) = setup("life");
    let before = ok(&mut hv, &["cell", "list"]);
    assert_eq!(
        before,
        [
            "ID  Name              State    Assigned CPUs  Failed CPUs",
            "0   qemu-arm64-linux  running  0-3",
        ]
    );

    create_gic_demo(&mut hv);
    assert!(!online(&hv, 3), "CPU 3 is taken from Linux");
    assert!(online(&hv, 2));
    assert_eq!(
        ok(&mut hv, &["cell", "list"]),
        [
            "ID  Name              State      Assigned CPUs  Failed CPUs",
            "0   qemu-arm64-linux  running    0-2",
            "1   gic-demo          shut down  3",
        ]
    );

    let image: Vec<u8> = (0..100u8).collect();
    let img = write(&dir, "gic-demo.bin", &image);
    let out = ok(
        &mut hv,
        &["cell", "load", "gic-demo", &img, "-s", "hello@0x40300000"],
    );
    assert_eq!(
        out,
        [
            format!("Cell \"gic-demo\": {img} (100 bytes) loaded at 0x40200000 (PA 0x7e000000)"),
            "Cell \"gic-demo\": string \"hello\" (6 bytes) loaded at 0x40300000 (PA 0x7e100000)"
                .to_string(),
        ]
    );
    assert_eq!(
        hv.memory,
        [(0x7e00_0000, image), (0x7e10_0000, b"hello\0".to_vec())]
    );
    assert!(hv.by_name("gic-demo").unwrap().loadable);

    assert_eq!(
        ok(&mut hv, &["cell", "start", "1"]),
        ["Cell \"gic-demo\" started"]
    );
    assert_eq!(hv.by_name("gic-demo").unwrap().state, CellState::Running);
    assert!(ok(&mut hv, &["cell", "list"])[2].contains("running"));

    assert_eq!(
        ok(&mut hv, &["cell", "shutdown", "gic-demo"]),
        ["Cell \"gic-demo\" shut down"]
    );
    // The fake cell approves on the third request: two -EBUSY first.
    assert_eq!(hv.count(Hypercall::CellShutdown), 3);

    assert_eq!(
        ok(&mut hv, &["cell", "destroy", "gic-demo"]),
        ["Cell \"gic-demo\" destroyed"]
    );
    assert!(online(&hv, 3), "CPU 3 is Linux's again");
    assert_eq!(ok(&mut hv, &["cell", "list"]), before);

    // And again.
    create_gic_demo(&mut hv);
    ok(&mut hv, &["cell", "load", "gic-demo", &img]);
    ok(&mut hv, &["cell", "start", "gic-demo"]);
    ok(&mut hv, &["cell", "shutdown", "gic-demo"]);
    ok(&mut hv, &["cell", "destroy", "gic-demo"]);
    assert!(online(&hv, 3));
}

#[test]
fn create_from_a_blob() {
    let (dir, mut hv) = setup("create-blob");
    let cell = crate::files::load_cell(&gic_demo_toml()).unwrap();
    let path = write(&dir, "gic-demo.cell", &blob::encode_cell(&cell));
    assert_eq!(
        ok(&mut hv, &["cell", "create", &path]),
        ["Cell \"gic-demo\" created (id 1)"]
    );
    // The blob went through the buffer at offset 0.
    let call = hv
        .calls
        .iter()
        .find(|c| c.0 == Hypercall::CellCreate)
        .unwrap();
    let len = blob::encode_cell(&cell).len() as u64;
    assert_eq!((call.1, call.2), (0, len));
    assert_eq!(hv.by_name("gic-demo").unwrap().config, cell);
}

#[test]
fn refused_create_gives_the_cpus_back() {
    let (dir, mut hv) = setup("create-refused");
    create_gic_demo(&mut hv);
    // Another cell on CPU 1 and 2 whose RAM overlaps gic-demo's.
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("name = \"gic-demo\"", "name = \"overlap\"")
        .replace("cpus = [3]", "cpus = [1, 2]");
    let path = write(&dir, "overlap.toml", text.as_bytes());
    let list = ok(&mut hv, &["cell", "list"]);
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        "cell \"overlap\": refused by the hypervisor: resource busy (EBUSY)"
    );
    assert!(online(&hv, 1) && online(&hv, 2), "CPUs back in Linux");
    assert!(!online(&hv, 3));
    assert_eq!(ok(&mut hv, &["cell", "list"]), list);

    // With a reason left in the buffer (the hypervisor's -EINVAL).
    hv.create_reason = Some("memory[0]: overlaps cell \"gic-demo\"\ncpus[0]: taken".into());
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        "cell \"overlap\": refused by the hypervisor (EBUSY): memory[0]: overlaps cell \"gic-demo\"; cpus[0]: taken"
    );
    assert!(online(&hv, 1) && online(&hv, 2));
}

#[test]
fn bad_configs_change_nothing() {
    let (dir, mut hv) = setup("create-bad");
    let path = write(&dir, "bad.toml", b"name = \"x\"\ncpus = [1,\n");
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert!(e.starts_with(&format!("{path}: line ")), "{e}");
    // An invalid region: not page aligned.
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("size = 0x00200000", "size = 0x00200010");
    let path = write(&dir, "unaligned.toml", text.as_bytes());
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert!(e.starts_with(&format!("{path}: memory[0]")), "{e}");
    let e = fails(&mut hv, &["cell", "create", "/nonexistent.toml"]);
    assert!(e.starts_with("/nonexistent.toml: "), "{e}");
    assert_eq!(hv.count(Hypercall::CellCreate), 0);
    assert!((0..4).all(|c| online(&hv, c)));
}

#[test]
fn create_checks_names_and_cpus_first() {
    let (dir, mut hv) = setup("create-checks");
    create_gic_demo(&mut hv);
    let e = fails(
        &mut hv,
        &["cell", "create", gic_demo_toml().to_str().unwrap()],
    );
    assert_eq!(e, "cell \"gic-demo\": a cell of that name exists (id 1)");

    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("name = \"gic-demo\"", "name = \"other\"")
        .replace("cpus = [3]", "cpus = [2, 3]")
        .replace("0x7e000000", "0x7e200000");
    let path = write(&dir, "other.toml", text.as_bytes());
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        "cell \"other\": CPU 3 belongs to cell \"gic-demo\" (id 1)"
    );

    let path = write(
        &dir,
        "nine.toml",
        text.replace("cpus = [2, 3]", "cpus = [9]").as_bytes(),
    );
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        "cell \"other\": CPU 9 is not the root cell's (it has CPUs 0-2)"
    );
    assert!(online(&hv, 2));
    assert_eq!(hv.count(Hypercall::CellCreate), 1);
}

#[test]
fn cpu_without_online_file() {
    let (dir, mut hv) = setup("create-cpu0");
    std::fs::remove_file(hv.sysfs_root().join("cpu0/online")).unwrap();
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("cpus = [3]", "cpus = [3, 0]");
    let path = write(&dir, "cpu0.toml", text.as_bytes());
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        format!(
            "{}: CPU 0 cannot be switched off and on by Linux (no such file)",
            hv.sysfs_root().join("cpu0/online").display()
        )
    );
    assert!(online(&hv, 3), "checked before CPU 3 was touched");
}

#[test]
fn cpu_that_does_not_park() {
    let (dir, mut hv) = setup("create-stuck");
    hv.stuck = vec![3];
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("cpus = [3]", "cpus = [2, 3]");
    let path = write(&dir, "stuck.toml", text.as_bytes());
    let e = fails(&mut hv, &["cell", "create", &path]);
    assert_eq!(
        e,
        "cell \"gic-demo\": CPU 3 is not parked 50ms after Linux switched it off (still running)"
    );
    assert!(online(&hv, 2) && online(&hv, 3));
    assert_eq!(hv.count(Hypercall::CellCreate), 0);
}

#[test]
fn cpu_already_offline_stays_offline() {
    let (dir, mut hv) = setup("create-offline");
    CpuSysfs::new(hv.sysfs_root()).set_online(2, false).unwrap();
    create_gic_demo(&mut hv);
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("name = \"gic-demo\"", "name = \"two\"")
        .replace("cpus = [3]", "cpus = [1, 2]");
    let path = write(&dir, "two.toml", text.as_bytes());
    fails(&mut hv, &["cell", "create", &path]);
    assert!(online(&hv, 1), "taken by the CLI, given back");
    assert!(!online(&hv, 2), "was offline before, left so");
}

#[test]
fn unknown_cells() {
    let (_dir, mut hv) = setup("unknown");
    let list = ok(&mut hv, &["cell", "list"]);
    for verb in ["start", "shutdown", "destroy", "stats"] {
        assert_eq!(
            fails(&mut hv, &["cell", verb, "nope"]),
            "cell \"nope\": no such cell"
        );
        assert_eq!(fails(&mut hv, &["cell", verb, "7"]), "cell 7: no such cell");
    }
    assert_eq!(
        fails(&mut hv, &["cell", "load", "nope", "x.bin"]),
        "cell \"nope\": no such cell"
    );
    assert_eq!(ok(&mut hv, &["cell", "list"]), list);
}

#[test]
fn root_cell_is_refused() {
    let (_dir, mut hv) = setup("root");
    for (verb, word) in [
        ("start", "started"),
        ("shutdown", "shut down"),
        ("destroy", "destroyed"),
    ] {
        assert_eq!(
            fails(&mut hv, &["cell", verb, "0"]),
            format!("cell \"qemu-arm64-linux\": is the root cell, which cannot be {word}")
        );
    }
    assert!(fails(&mut hv, &["cell", "load", "qemu-arm64-linux", "x"]).contains("root cell"));
    assert_eq!(hv.count(Hypercall::CellDestroy), 0);
    // Stats of the root cell are fine.
    assert_eq!(ok(&mut hv, &["cell", "stats", "0"]).len(), 11);
}

#[test]
fn load_checks_everything_first() {
    let (dir, mut hv) = setup("load-errors");
    create_gic_demo(&mut hv);
    let small = write(&dir, "small.bin", &[1; 16]);
    let big = write(&dir, "big.bin", &vec![0; 0x20_0001]);
    let e = fails(
        &mut hv,
        &[
            "cell",
            "load",
            "gic-demo",
            &big,
            &format!("{small}@0x40400000"),
            &format!("{small}@0x9000000"),
            &format!("{small}@zz"),
            "/nonexistent.bin",
            "-s",
            "no-address",
            "-s",
            "tail@0x403ffffc",
        ],
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{small}@zz: expected IMAGE or IMAGE@ADDR (ADDR: 0x... or decimal)"),
            "/nonexistent.bin: No such file or directory (os error 2)".to_string(),
            "-s no-address: expected STRING@ADDR (ADDR: 0x... or decimal)".to_string(),
        ]
    );
    let e = fails(
        &mut hv,
        &[
            "cell",
            "load",
            "gic-demo",
            &big,
            &format!("{small}@0x40400000"),
            &format!("{small}@0x9000000"),
            "-s",
            "tail@0x403ffffc",
        ],
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{big}: 2097153 bytes at 0x40200000 do not fit one RAM (non-io) region of cell \"gic-demo\""),
            format!("{small}: 16 bytes at 0x40400000 do not fit one RAM (non-io) region of cell \"gic-demo\""),
            // The UART is an io region: never loaded into.
            format!("{small}: 16 bytes at 0x9000000 do not fit one RAM (non-io) region of cell \"gic-demo\""),
            "string \"tail\": 5 bytes at 0x403ffffc do not fit one RAM (non-io) region of cell \"gic-demo\"".to_string(),
        ]
    );
    assert_eq!(hv.count(Hypercall::CellSetLoadable), 0);
    assert!(hv.memory.is_empty());
    // Nothing to load at all: a usage error from clap.
    assert!(fails(&mut hv, &["cell", "load", "gic-demo"]).starts_with("usage: "));
}

#[test]
fn load_prefers_loadable_regions() {
    let (dir, mut hv) = setup("load-loadable");
    let text = std::fs::read_to_string(gic_demo_toml()).unwrap()
        + r#"
[[memory]]
comment = "load window"
phys_start = 0x7e400000
virt_start = 0x50000000
size = 0x10000
flags = ["read", "write", "loadable"]
"#;
    let path = write(&dir, "loadable.toml", text.as_bytes());
    ok(&mut hv, &["cell", "create", &path]);
    let img = write(&dir, "a.bin", b"abc");
    let e = fails(&mut hv, &["cell", "load", "gic-demo", &img]);
    assert_eq!(
        e,
        format!("{img}: 3 bytes at 0x40200000 do not fit one loadable region of cell \"gic-demo\"")
    );
    let out = ok(
        &mut hv,
        &["cell", "load", "gic-demo", &format!("{img}@0x5000fffd")],
    );
    assert!(
        out[0].ends_with("loaded at 0x5000fffd (PA 0x7e40fffd)"),
        "{out:?}"
    );
    assert_eq!(hv.memory, [(0x7e40_fffd, b"abc".to_vec())]);
}

#[test]
fn refused_commands() {
    let (dir, mut hv) = setup("refused");
    create_gic_demo(&mut hv);
    let img = write(&dir, "a.bin", b"abc");
    hv.refuse = vec![
        (Hypercall::CellSetLoadable, Errno::Busy),
        (Hypercall::CellStart, Errno::Inval),
        (Hypercall::CellDestroy, Errno::Perm),
    ];
    assert_eq!(
        fails(&mut hv, &["cell", "load", "gic-demo", &img]),
        "cell \"gic-demo\": set-loadable refused: resource busy (EBUSY)"
    );
    assert!(hv.memory.is_empty());
    assert_eq!(
        fails(&mut hv, &["cell", "start", "gic-demo"]),
        "cell \"gic-demo\": start refused: invalid argument (EINVAL)"
    );
    assert_eq!(
        fails(&mut hv, &["cell", "destroy", "gic-demo"]),
        "cell \"gic-demo\": destroy refused: operation not permitted (EPERM)"
    );
    assert!(!online(&hv, 3), "CPU 3 stays with the cell");
    hv.refuse = vec![(Hypercall::CellGetInfo, Errno::Inval)];
    assert_eq!(
        fails(&mut hv, &["cell", "list"]),
        "hypervisor: cell_get_info: invalid argument (EINVAL)"
    );
    hv.refuse = vec![(Hypercall::CellShutdown, Errno::Inval)];
    assert_eq!(
        fails(&mut hv, &["cell", "shutdown", "1"]),
        "cell \"gic-demo\": shutdown refused: invalid argument (EINVAL)"
    );
    hv.refuse = vec![(Hypercall::ConsoleRead, Errno::NoSys)];
    assert_eq!(
        fails(&mut hv, &["console"]),
        "console: console_read: unknown hypercall (ENOSYS)"
    );
    hv.refuse = vec![(Hypercall::HypervisorGetInfo, Errno::NoSys)];
    assert_eq!(
        fails(&mut hv, &["info"]),
        "hypervisor: hypervisor_get_info(memory pool pages): unknown hypercall (ENOSYS)"
    );
}

#[test]
fn shutdown_answers() {
    let (_dir, mut hv) = setup("shutdown");
    hv.answer = Answer::Deny;
    create_gic_demo(&mut hv);
    ok(&mut hv, &["cell", "start", "gic-demo"]);
    assert_eq!(
        fails(&mut hv, &["cell", "shutdown", "gic-demo"]),
        "cell \"gic-demo\": the cell denied the shutdown request (EPERM)"
    );
    assert_eq!(hv.by_name("gic-demo").unwrap().state, CellState::Running);

    hv.cells[0].answer = Answer::Silent {
        hv_gives_up_after: 3,
    };
    assert_eq!(
        fails(&mut hv, &["cell", "shutdown", "gic-demo"]),
        "cell \"gic-demo\": the cell did not answer the shutdown request in time: the hypervisor stopped it and marked it failed (ETIMEDOUT)"
    );
    assert_eq!(
        ok(&mut hv, &["cell", "list"])[2],
        "1   gic-demo          failed   3              3"
    );
    // A failed cell can be destroyed; its CPU goes back to Linux.
    ok(&mut hv, &["cell", "destroy", "gic-demo"]);
    assert!(online(&hv, 3));

    hv.answer = Answer::Forever;
    create_gic_demo(&mut hv);
    ok(&mut hv, &["cell", "start", "gic-demo"]);
    assert_eq!(
        fails(&mut hv, &["cell", "shutdown", "gic-demo"]),
        "cell \"gic-demo\": no answer to the shutdown request after 50ms (the request stays pending)"
    );
    assert!(hv.count(Hypercall::CellShutdown) > 5);
}

#[test]
fn destroy_reports_cpus_linux_does_not_take_back() {
    let (_dir, mut hv) = setup("destroy-cpu");
    create_gic_demo(&mut hv);
    std::fs::remove_file(hv.sysfs_root().join("cpu3/online")).unwrap();
    let e = fails(&mut hv, &["cell", "destroy", "gic-demo"]);
    assert_eq!(
        e,
        format!(
            "cell \"gic-demo\": destroyed, but CPU 3 is not back online in Linux: {}: CPU 3 cannot be switched off and on by Linux (no such file)",
            hv.sysfs_root().join("cpu3/online").display()
        )
    );
    assert!(hv.cells.is_empty());
}

#[test]
fn list_stops_at_the_number_of_cells() {
    let (dir, mut hv) = setup("list-count");
    create_gic_demo(&mut hv);
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("name = \"gic-demo\"", "name = \"b\"")
        .replace("cpus = [3]", "cpus = [2]")
        .replace("0x7e000000", "0x7e200000");
    let path = write(&dir, "b.toml", text.as_bytes());
    ok(&mut hv, &["cell", "create", &path]);
    hv.calls.clear();
    let out = ok(&mut hv, &["cell", "list"]);
    assert_eq!(out.len(), 4);
    assert!(out[3].starts_with("2   b "), "{out:?}");
    let ids: Vec<u64> = hv
        .calls
        .iter()
        .filter(|c| c.0 == Hypercall::CellGetInfo)
        .map(|c| c.1)
        .collect();
    assert_eq!(ids, [0, 1, 2]);

    // Cell 1 gone: ids are not reused while 2 lives, the listing skips 1.
    ok(&mut hv, &["cell", "destroy", "gic-demo"]);
    let out = ok(&mut hv, &["cell", "list"]);
    assert_eq!(out.len(), 3);
    assert!(out[2].starts_with("2   b "), "{out:?}");
}

#[test]
fn stats_table() {
    let (dir, mut hv) = setup("stats");
    let text = std::fs::read_to_string(gic_demo_toml())
        .unwrap()
        .replace("cpus = [3]", "cpus = [3, 1]");
    let path = write(&dir, "two.toml", text.as_bytes());
    ok(&mut hv, &["cell", "create", &path]);
    let out = ok(&mut hv, &["cell", "stats", "gic-demo"]);
    // The fake counts cpu * 100 + statistic + 1.
    assert_eq!(
        out,
        [
            "Statistics of cell \"gic-demo\" (id 1), CPUs 1,3",
            "Statistic            CPU 1  CPU 3  Total",
            "EL2 entries (total)    101    301    402",
            "MMIO                   102    302    404",
            "management             103    303    406",
            "hypercall              104    304    408",
            "maintenance IRQ        105    305    410",
            "vIRQ                   106    306    412",
            "vSGI                   107    307    414",
            "PSCI                   108    308    416",
            "sysreg                 109    309    418",
        ]
    );
}

#[test]
fn console_and_info() {
    let (_dir, mut hv) = setup("console");
    assert_eq!(
        ok(&mut hv, &["console"]),
        ["Cellblock: hello", "Cellblock: root cell running"]
    );
    let call = hv.calls.last().unwrap();
    assert_eq!(
        (call.0, call.1, call.2),
        (Hypercall::ConsoleRead, 0, BUFFER as u64)
    );
    assert_eq!(
        ok(&mut hv, &["info"]),
        [
            "Memory pool: 4096 pages (16384 KiB), 100 used (400 KiB)",
            "Cells: 1"
        ]
    );
}

#[test]
fn helpers() {
    assert_eq!(parse_number("0x4020_0000"), Some(0x4020_0000));
    assert_eq!(parse_number("0X10"), Some(16));
    assert_eq!(parse_number("4096"), Some(4096));
    assert_eq!(parse_number("0xzz"), None);
    assert_eq!(parse_number(""), None);
    assert_eq!(split_at_addr("a@b@0x10"), Some(("a@b", 16)));
    assert_eq!(split_at_addr("a@b"), None);

    assert_eq!(
        reason_in_buffer(b"bad thing\0junk"),
        Some("bad thing".into())
    );
    assert_eq!(reason_in_buffer(b"CBLK\x01\x00\x02\x00"), None);
    assert_eq!(reason_in_buffer(b"\0"), None);
    assert_eq!(reason_in_buffer(b"no terminator"), None);
    assert_eq!(reason_in_buffer(b"\x01\x02\0"), None);
    assert_eq!(
        reason_in_buffer(b"two\nlines\n\0"),
        Some("two\nlines".into())
    );
    assert_eq!(reason_in_buffer(b"\xff\xfe\0"), None);
}

#[test]
fn region_lookup() {
    let cell = crate::files::load_cell(&gic_demo_toml()).unwrap();
    let (regions, kind) = load_regions(&cell);
    assert_eq!(kind, "RAM (non-io)");
    assert_eq!(regions.len(), 1);
    assert_eq!(
        cell_to_phys(&regions, 0x4020_0000, 0x20_0000),
        Some(0x7e00_0000)
    );
    assert_eq!(cell_to_phys(&regions, 0x4020_0000, 0x20_0001), None);
    assert_eq!(cell_to_phys(&regions, 0x403f_ffff, 0), Some(0x7e1f_ffff));
    assert_eq!(cell_to_phys(&regions, 0x4040_0000, 0), None);
    assert_eq!(cell_to_phys(&regions, u64::MAX, 1), None);
}

/// A tiny arm64 Image: the header (magic, `image_size`) and some code.
fn tiny_image() -> Vec<u8> {
    let mut img = vec![0u8; 0x1000];
    img[16..24].copy_from_slice(&0x2_0000u64.to_le_bytes());
    img[0x38..0x3c].copy_from_slice(b"ARM\x64");
    img
}

fn linux_args(dir: &Path) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![
        "cell".into(),
        "linux".into(),
        root.join("configs/cells/qemu-linux.toml")
            .display()
            .to_string(),
        write(dir, "Image", &tiny_image()),
        "--initrd".into(),
        write(dir, "initrd", b"070701 an initramfs"),
        "--board-dtb".into(),
        root.join("dt-cellgen/tests/fixtures/qemu-virt-gicv3.dtb")
            .display()
            .to_string(),
    ]
}

#[test]
fn cell_linux_creates_loads_and_starts_at_the_stub() {
    let (dir, mut hv) = setup("cell-linux");
    let args = linux_args(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(&mut hv, &args);
    assert_eq!(out[0], "Cell \"linux\" created (id 1)");
    assert!(
        out.last().unwrap().contains("Linux at 0x6e000000"),
        "{out:?}"
    );
    let cell = hv.by_name("linux").unwrap();
    assert_eq!(cell.state, CellState::Running);
    assert!(
        cell.config.passive_comm,
        "Linux does not answer shutdown requests"
    );
    // Entry: the stub at the boot area, x0 its copy list.
    let boot = cell.config.entry;
    assert_eq!(
        cell.config.entry_x0,
        Some(boot + crate::linux::BLOCK_OFFSET)
    );
    assert_eq!(boot % 0x20_0000, 0);
    assert!(boot > 0x6e00_0000 && boot < 0x7e00_0000);
    let stub = hv.memory.iter().find(|(pa, _)| *pa == boot).expect("stub");
    assert_eq!(&stub.1[..4], &crate::linux::STUB[0].to_le_bytes());
    // The kernel and initrd are in the boot area (identity-mapped cell).
    let image = tiny_image();
    assert!(hv.memory.iter().any(|(pa, d)| *pa > boot && *d == image));
    assert!(!online(&hv, 2) && !online(&hv, 3));
}

#[test]
fn cell_linux_undoes_the_create_when_start_fails() {
    let (dir, mut hv) = setup("cell-linux-refused");
    hv.refuse.push((Hypercall::CellStart, Errno::Busy));
    let args = linux_args(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = fails(&mut hv, &args);
    assert!(e.contains("start refused"), "{e}");
    assert!(hv.by_name("linux").is_none(), "the cell is destroyed again");
    assert!(online(&hv, 2) && online(&hv, 3), "CPUs back in Linux");

    // A kernel that is no arm64 Image changes nothing.
    let mut bad = linux_args(&dir);
    bad[3] = write(&dir, "vmlinux", b"\x7fELF...");
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let e = fails(&mut hv, &bad);
    assert!(e.contains("not an arm64 Image"), "{e}");
    assert_eq!(hv.count(Hypercall::CellCreate), 1);
}
