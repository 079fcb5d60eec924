//! The board configs in configs/ that dt-cellgen generated: each validates,
//! its demo cell validates beside it, and (with the Debian DTBs at hand)
//! each is exactly what dt-cellgen generates today with the options
//! docs/boards.md gives.

use std::path::{Path, PathBuf};

use dt_cellgen::board::Board;
use dt_cellgen::debian::DTBS_ENV;
use dt_cellgen::dtb::{guest_dtb, root_dtb, GuestOptions, RootOptions};
use dt_cellgen::output::system_toml;
use dt_cellgen::system::{generate_system, Placement, SystemOptions};
use dt_cellgen::tree::Tree;
use hv_core::config::{CellConfig, MemFlag, SystemConfig};

struct BoardConfig {
    file: &'static str,
    dtb: &'static str,
    hv_at: Placement,
    ram: &'static [(u64, u64)],
}

const MIB64: u64 = 64 << 20;

const BOARDS: &[BoardConfig] = &[
    BoardConfig {
        file: "jetson-tx1",
        dtb: "nvidia/tegra210-p2371-2180.dtb",
        hv_at: Placement::Bottom,
        ram: &[],
    },
    BoardConfig {
        file: "hikey",
        dtb: "hisilicon/hi6220-hikey.dtb",
        hv_at: Placement::Top,
        ram: &[],
    },
    BoardConfig {
        file: "hikey960",
        dtb: "hisilicon/hi3660-hikey960.dtb",
        hv_at: Placement::Top,
        ram: &[(0x0, 0x3210_0000), (0x3220_0000, 0x8de0_0000)],
    },
    BoardConfig {
        file: "rk3399-rockpro64",
        dtb: "rockchip/rk3399-rockpro64.dtb",
        hv_at: Placement::Top,
        ram: &[(0x20_0000, 0x7fe0_0000)],
    },
    BoardConfig {
        file: "zcu102",
        dtb: "xilinx/zynqmp-zcu102-rev1.0.dtb",
        hv_at: Placement::Top,
        ram: &[],
    },
];

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn read<T: serde::de::DeserializeOwned>(p: &Path) -> T {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn board_configs_and_demo_cells_validate() {
    for b in BOARDS {
        let sys: SystemConfig = read(&configs().join(format!("{}.toml", b.file)));
        dt_cellgen::check_system(&sys).unwrap_or_else(|e| panic!("{}: {e}", b.file));
        assert_eq!(sys.name, b.file);
        let cell: CellConfig = read(&configs().join(format!("cells/{}-demo.toml", b.file)));
        dt_cellgen::check_cell(&sys, &cell, &[]).unwrap_or_else(|e| panic!("{} demo: {e}", b.file));
        assert_eq!(cell.entry, 0x4020_0000);
    }
}

#[test]
fn board_configs_are_what_dt_cellgen_generates() {
    let Some(dir) = std::env::var_os(DTBS_ENV) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{DTBS_ENV} must be set in CI (dt-cellgen fetch-debian-dtbs)"
        );
        eprintln!("{DTBS_ENV} not set: regeneration check skipped");
        return;
    };
    for b in BOARDS {
        let dtb = std::fs::read(Path::new(&dir).join(b.dtb)).expect("board DTB");
        let board = Board::from_dtb(&dtb).expect("board reads");
        let opts = SystemOptions {
            hv_at: b.hv_at,
            cell_mem: MIB64,
            name: Some(b.file.to_string()),
            ram: b.ram.to_vec(),
            ..Default::default()
        };
        let (sys, notes) = generate_system(&board, &opts).expect("generates");
        if b.ram.is_empty() {
            // The boot-time check against the board's DTB (boards whose
            // RAM comes from --ram have none in the DTB to check against).
            let info = hv_core::board::BoardInfo::from_dtb(&dtb).expect("hv-core reads it");
            hv_core::board::check_against_board(&sys, &info)
                .unwrap_or_else(|e| panic!("{}: {e}", b.file));
        }
        let text = system_toml(&sys, &board, &notes);
        let committed =
            std::fs::read_to_string(configs().join(format!("{}.toml", b.file))).unwrap();
        check_cell_dtbs(b.file, &board, &sys);
        assert!(
            committed == text,
            "configs/{}.toml differs from what dt-cellgen generates now; regenerate it (docs/boards.md)",
            b.file
        );
    }
}

fn cpu_count(t: &Tree) -> usize {
    let cpus = t.find("/cpus").expect("/cpus");
    t.node(cpus)
        .children
        .iter()
        .filter(|&&c| t.str_prop(c, "device_type").ok().flatten() == Some("cpu"))
        .count()
}

fn memory(t: &Tree) -> Vec<(u64, u64)> {
    t.node(t.root())
        .children
        .iter()
        .filter(|&&c| t.str_prop(c, "device_type").ok().flatten() == Some("memory"))
        .flat_map(|&c| t.raw_reg(c).unwrap())
        .collect()
}

/// The root and guest DTBs for the board's demo cell, parsed back.
fn check_cell_dtbs(file: &str, board: &Board, sys: &SystemConfig) {
    let cell: CellConfig = read(&configs().join(format!("cells/{file}-demo.toml")));
    let root = root_dtb(
        board,
        sys,
        std::slice::from_ref(&cell),
        &RootOptions::default(),
    )
    .expect("root DTB");
    let t = Tree::parse(&root).expect("root DTB parses back");
    assert_eq!(cpu_count(&t), board.cpus.len() - 1, "{file}: root CPUs");
    let cell_ram = cell.memory.iter().find(|r| !r.has(MemFlag::Io)).unwrap();
    let hv = sys.hypervisor.memory;
    for (s, z) in memory(&t) {
        for (bs, bz) in [(cell_ram.phys_start, cell_ram.size), (hv.start, hv.size)] {
            assert!(
                s + z <= bs || s >= bs + bz,
                "{file}: root RAM {s:#x}+{z:#x}"
            );
        }
    }
    for r in cell.memory.iter().filter(|r| r.has(MemFlag::Io)) {
        let dev = r.comment.as_deref().unwrap();
        let n = t.find(dev).expect("device still in the root DTB");
        assert_eq!(
            t.str_prop(n, "status").unwrap(),
            Some("disabled"),
            "{file}: {dev}"
        );
    }
    let guest = guest_dtb(board, sys, &cell, &GuestOptions::default()).expect("guest DTB");
    let g = Tree::parse(&guest).expect("guest DTB parses back");
    assert_eq!(cpu_count(&g), 1, "{file}: guest CPUs");
    assert_eq!(memory(&g), vec![(cell_ram.virt_start, cell_ram.size)]);
    let want: Vec<String> = cell
        .memory
        .iter()
        .filter(|r| r.has(MemFlag::Io))
        .map(|r| {
            format!(
                "/{}",
                r.comment.as_deref().unwrap().rsplit('/').next().unwrap()
            )
        })
        .collect();
    let gic = format!("/interrupt-controller@{:x}", board.gic.gicd.0);
    assert!(g.find(&gic).is_some(), "{file}: guest GIC");
    if want.is_empty() {
        // No UART: the cell prints through the hypervisor's debug console.
        return;
    }
    let gb = Board::from_dtb(&guest).expect("guest DTB is a board");
    assert_eq!(gb.gic.gicd, board.gic.gicd);
    let devices: Vec<&str> = gb
        .devices
        .iter()
        .filter(|d| d.role == dt_cellgen::board::Role::Device && !d.mmio.is_empty())
        .map(|d| gb.path(d.node))
        .collect();
    assert_eq!(devices, want, "{file}: guest devices");
}
