//! QEMU `virt` DTBs (tests/fixtures): system config, a cell, the root and
//! guest DTBs, each checked on parsed values.

mod common;

use common::fixture;
use dt_cellgen::board::Board;
use dt_cellgen::cell::{device_from_board, device_from_system, generate_cell, CellRequest};
use dt_cellgen::dtb::{
    fit_guest_dtb, guest_dtb, guest_dtb_on, root_dtb, GuestOptions, GuestPlatform, RootOptions,
    MGMT_COMPATIBLE,
};
use dt_cellgen::output::system_toml;
use dt_cellgen::system::{generate_system, SystemOptions};
use dt_cellgen::tree::Tree;
use hv_core::config::{MemFlag, PsciConduit, SystemConfig, UartKind};

fn system(name: &str, cell_mem: u64) -> (Board, SystemConfig, String) {
    let board = Board::from_dtb(&fixture(name)).expect("QEMU DTB reads");
    let opts = SystemOptions {
        cell_mem,
        ..Default::default()
    };
    let (sys, notes) = generate_system(&board, &opts).expect("system config");
    dt_cellgen::check_system(&sys).expect("hv_core::validate accepts it");
    // What `cellblock config check --dtb` runs at boot and on the host.
    let info = hv_core::board::BoardInfo::from_dtb(&fixture(name)).expect("hv-core reads it");
    hv_core::board::check_against_board(&sys, &info).expect("config matches the board");
    let text = system_toml(&sys, &board, &notes);
    (board, sys, text)
}

#[test]
fn gicv3_system_config() {
    let (_, sys, text) = system("qemu-virt-gicv3.dtb", 0);
    assert_eq!(sys.platform.cpus, vec![0, 1, 2, 3]);
    assert_eq!(sys.platform.ram.len(), 1);
    assert_eq!(sys.platform.ram[0].start, 0x4000_0000);
    assert_eq!(sys.platform.ram[0].size, 0x4000_0000);
    let gic = sys.platform.gic;
    assert_eq!(gic.version, 3);
    assert_eq!(gic.gicd, 0x0800_0000);
    assert_eq!(gic.gicr, Some(0x080a_0000));
    assert_eq!(gic.gicc, None);
    assert_eq!(gic.maintenance_irq, 25);
    assert_eq!(sys.platform.psci.conduit, PsciConduit::Smc);
    assert_eq!(sys.hypervisor.console.base, 0x0900_0000);
    assert_eq!(sys.hypervisor.console.kind, UartKind::Pl011);
    assert_eq!(sys.hypervisor.memory.start, 0x4000_0000);
    assert_eq!(sys.hypervisor.memory.size, 16 << 20);
    // The root cell: every CPU, the RAM above the hypervisor, the UARTs and
    // their SPIs (PL011 SPI 1 and 8), never the GIC.
    assert_eq!(sys.root_cell.cpus, vec![0, 1, 2, 3]);
    let ram: Vec<_> = sys
        .root_cell
        .memory
        .iter()
        .filter(|r| !r.has(MemFlag::Io))
        .collect();
    assert_eq!(ram.len(), 1);
    assert_eq!(ram[0].phys_start, 0x4100_0000);
    assert_eq!(ram[0].size, 0x3f00_0000);
    assert!(sys.root_cell.irqs.contains(&33));
    assert!(sys.root_cell.irqs.contains(&40));
    let io = |addr: u64| {
        sys.root_cell
            .memory
            .iter()
            .find(|r| r.has(MemFlag::Io) && r.phys_start == addr)
    };
    let uart = io(0x0900_0000).expect("console UART");
    assert!(uart.has(MemFlag::Shared));
    assert_eq!(
        uart.comment.as_deref(),
        Some("/pl011@9000000 irqs 33 (shared with the hypervisor console)")
    );
    assert!(io(0x0904_0000).is_some());
    assert!(
        sys.root_cell
            .memory
            .iter()
            .all(|r| r.phys_start >= 0x0810_0000
                || r.phys_start + r.size <= 0x0800_0000
                || !r.has(MemFlag::Io)),
        "GIC frames stay with the hypervisor"
    );
    // The text parses back to the same config and says where things came from.
    let back: SystemConfig = toml::from_str(&text).expect("generated TOML parses");
    assert_eq!(back, sys);
    assert!(text.contains("gicd = 0x8000000"));
    assert!(text.contains("# /intc@8000000 (GICv3)"));
    assert!(text.contains("33, # SPI 1 /pl011@9000000"));
    assert!(text.contains("# /psci (PSCI 1.0)"));
}

#[test]
fn gicv2_system_config() {
    let (_, sys, _) = system("qemu-virt-gicv2.dtb", 0);
    let gic = sys.platform.gic;
    assert_eq!(gic.version, 2);
    assert_eq!(gic.gicd, 0x0800_0000);
    assert_eq!(gic.gicc, Some(0x0801_0000));
    assert_eq!(gic.gich, Some(0x0803_0000));
    assert_eq!(gic.gicv, Some(0x0804_0000));
    assert_eq!(gic.gicr, None);
    assert_eq!(gic.maintenance_irq, 25);
}

#[test]
fn smmuv3_pci_and_its_are_reported() {
    let (board, sys, text) = system("qemu-virt-gicv3-smmuv3.dtb", 0);
    assert_eq!(board.iommus.len(), 1);
    assert_eq!(board.iommus[0].kind, "SMMUv3");
    assert_eq!(board.path(board.iommus[0].node), "/smmuv3@9050000");
    assert_eq!(board.gic.its.len(), 1);
    assert_eq!(board.pci.len(), 1);
    let pci = &board.pci[0];
    assert_eq!(pci.ecam, Some((0x40_1000_0000, 0x1000_0000)));
    assert_eq!(pci.bus_range, (0, 255));
    assert!(pci
        .windows
        .iter()
        .any(|w| w.0 == 0x1000_0000 && w.2 == "mem32"));
    assert!(pci
        .windows
        .iter()
        .any(|w| w.0 == 0x80_0000_0000 && w.2 == "mem64"));
    // INTx A..D are SPIs 3..6.
    let intx: Vec<u32> = pci.intx.iter().filter_map(|i| i.spi()).collect();
    for i in 35..=38 {
        assert!(intx.contains(&i), "INTx INTID {i}");
        assert!(sys.root_cell.irqs.contains(&i));
    }
    let host = board.device("/pcie@10000000").expect("PCI host listed");
    assert_eq!(host.streams.len(), 1);
    assert_eq!(host.streams[0].map, Some((0, 0, 0x10000)));
    assert_eq!(
        sys.platform.smmu,
        Some(hv_core::config::SmmuConfig {
            base: 0x0905_0000,
            size: 0x2_0000,
            event_irq: None,
        })
    );
    // The 64-bit PCI window lies beyond the 39-bit IPA space: not mapped.
    assert!(!sys
        .root_cell
        .memory
        .iter()
        .any(|r| r.phys_start >= 0x80_0000_0000));
    assert!(text.contains("lies beyond the 39-bit IPA space; left out"));
    // Bus 0's requester IDs map 1:1 to stream IDs.
    assert_eq!(sys.root_cell.streams, (0..256).collect::<Vec<u32>>());
    // The SMMU stays with the hypervisor: not in the root cell.
    assert!(!sys
        .root_cell
        .memory
        .iter()
        .any(|r| r.phys_start == 0x0905_0000));
    assert!(text.contains("IOMMU /smmuv3@9050000 (SMMUv3)"));
    assert!(text.contains("ECAM 0x4010000000+0x10000000"));
    assert!(sys
        .platform
        .mmio
        .iter()
        .any(|w| w.start <= 0x40_1000_0000 && w.start + w.size >= 0x40_2000_0000));
}

fn demo_cell(sys: &SystemConfig, board: &Board) -> hv_core::config::CellConfig {
    let req = CellRequest {
        name: "gic-demo".into(),
        cpus: vec![3],
        mem: 2 << 20,
        devices: vec!["/pl011@9040000".into()],
        ipa: None,
    };
    let dev = device_from_board(board, "/pl011@9040000").expect("device");
    assert_eq!(
        dev,
        device_from_system(sys, "/pl011@9040000").expect("from comments")
    );
    let cell = generate_cell(sys, &[], &req, &[dev]).expect("cell");
    dt_cellgen::check_cell(sys, &cell, &[]).expect("hv_core::validate accepts the cell");
    cell
}

#[test]
fn cell_takes_its_cpu_ram_and_device() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let cell = demo_cell(&sys, &board);
    assert_eq!(cell.cpus, vec![3]);
    assert_eq!(cell.irqs, vec![40]);
    let ram = &cell.memory[0];
    assert_eq!(ram.virt_start, 0x4000_0000);
    assert_eq!(ram.size, 2 << 20);
    assert!(
        ram.phys_start >= 0x7c00_0000,
        "from the cells' reservation at the top"
    );
    let uart = cell.memory.iter().find(|r| r.has(MemFlag::Io)).unwrap();
    assert_eq!((uart.phys_start, uart.size), (0x0904_0000, 0x1000));

    // A second cell gets other RAM and cannot take CPU 3 again.
    let req = CellRequest {
        name: "second".into(),
        cpus: vec![3],
        mem: 2 << 20,
        ..Default::default()
    };
    assert!(generate_cell(&sys, &[&cell], &req, &[]).is_err());
    let req = CellRequest {
        cpus: vec![2],
        ..req
    };
    let second = generate_cell(&sys, &[&cell], &req, &[]).expect("second cell");
    assert_ne!(second.memory[0].phys_start, cell.memory[0].phys_start);
    dt_cellgen::check_cell(&sys, &second, &[&cell]).expect("validates beside the first");
    // Without a reservation there is no RAM for cells.
    let (_, sys0, _) = system("qemu-virt-gicv3.dtb", 0);
    assert!(generate_cell(&sys0, &[], &req, &[]).is_err());
}

fn cpu_regs(t: &Tree) -> Vec<u32> {
    let cpus = t.find("/cpus").unwrap();
    t.node(cpus)
        .children
        .iter()
        .filter(|&&c| t.str_prop(c, "device_type").ok().flatten() == Some("cpu"))
        .map(|&c| t.u32_prop(c, "reg").unwrap().unwrap())
        .collect()
}

fn memory_regs(t: &Tree) -> Vec<(u64, u64)> {
    t.node(t.root())
        .children
        .iter()
        .filter(|&&c| t.str_prop(c, "device_type").ok().flatten() == Some("memory"))
        .flat_map(|&c| t.raw_reg(c).unwrap())
        .collect()
}

#[test]
fn root_dtb_leaves_out_what_the_cell_takes() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let cell = demo_cell(&sys, &board);
    let bytes = root_dtb(
        &board,
        &sys,
        std::slice::from_ref(&cell),
        &RootOptions::default(),
    )
    .expect("root DTB");
    let t = Tree::parse(&bytes).expect("root DTB parses back");
    assert_eq!(cpu_regs(&t), vec![0, 1, 2]);
    let mem = memory_regs(&t);
    assert_eq!(mem, vec![(0x4100_0000, 0x3f00_0000 - (64 << 20))]);
    let uart1 = t.find("/pl011@9040000").unwrap();
    assert_eq!(t.str_prop(uart1, "status").unwrap(), Some("disabled"));
    let uart0 = t.find("/pl011@9000000").unwrap();
    assert!(t.is_enabled(uart0));
    let mgmt = t
        .ids()
        .find(|&i| t.is_compatible(i, &[MGMT_COMPATIBLE]))
        .expect("management node");
    assert_eq!(t.raw_reg(mgmt).unwrap(), vec![(0x40ff_f000, 0x1000)]);
    // Everything else is still there.
    assert!(t.find("/intc@8000000").is_some());
    assert!(t.find("/psci").is_some());
    dtc_accepts(&bytes, "root");
}

#[test]
fn root_dtb_has_an_input_node_per_ivshmem_link() {
    let (board, mut sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    sys.root_cell.ivshmem.push(hv_core::config::IvshmemLink {
        id: 4,
        phys_start: 0x7ec0_0000,
        virt_start: 0x7ec0_0000,
        size: 0x10_0000,
        regs: 0x0c00_1000,
        irq: 108,
    });
    let bytes = root_dtb(&board, &sys, &[], &RootOptions::default()).expect("root DTB");
    let t = Tree::parse(&bytes).expect("root DTB parses back");
    let node = t.find("/cellblock-ivshmem-4").expect("input node");
    assert!(t.is_compatible(node, &["gpio-keys"]));
    assert_eq!(
        t.str_prop(node, "label").unwrap(),
        Some("cellblock-ivshmem-4")
    );
    let gic = t.find("/intc@8000000").unwrap();
    assert_eq!(
        t.cells(node, "interrupt-parent").unwrap(),
        Some(vec![t.phandle_of(gic).unwrap()])
    );
    let button = t.find("/cellblock-ivshmem-4/doorbell").expect("button");
    assert_eq!(t.cells(button, "interrupts").unwrap(), Some(vec![0, 76, 1]));
    assert_eq!(t.cells(button, "linux,code").unwrap(), Some(vec![0x100]));
    assert_eq!(t.cells(button, "debounce-interval").unwrap(), Some(vec![0]));
    // The link as userspace finds it.
    assert_eq!(t.cells(node, "cellblock,link").unwrap(), Some(vec![4]));
    assert_eq!(
        t.cells(node, "cellblock,regs").unwrap(),
        Some(vec![0, 0x0c00_1000])
    );
    assert_eq!(
        t.cells(node, "cellblock,shmem").unwrap(),
        Some(vec![0, 0x7ec0_0000, 0, 0x10_0000])
    );
    // The shared memory stays out of the root's RAM.
    assert!(memory_regs(&t)
        .iter()
        .all(|&(s, z)| s + z <= 0x7ec0_0000 || s >= 0x7ed0_0000));
    dtc_accepts(&bytes, "root-ivshmem");
}

#[test]
fn guest_dtb_holds_exactly_the_cell() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let cell = demo_cell(&sys, &board);
    let opts = GuestOptions {
        bootargs: "console=ttyAMA0".into(),
        initrd: Some((0x4010_0000, 0x8_0000)),
        psci_method: None,
        hidden_ram: Vec::new(),
    };
    let bytes = guest_dtb(&board, &sys, &cell, &opts).expect("guest DTB");
    let t = Tree::parse(&bytes).expect("guest DTB parses back");
    assert_eq!(cpu_regs(&t), vec![3]);
    assert_eq!(memory_regs(&t), vec![(0x4000_0000, 2 << 20)]);
    let psci = t.find("/psci").unwrap();
    assert_eq!(t.str_prop(psci, "method").unwrap(), Some("smc"));
    // The one device, with its SPI re-encoded for the guest's GIC.
    let uart = t.find("/pl011@9040000").expect("the cell's UART");
    assert_eq!(t.raw_reg(uart).unwrap(), vec![(0x0904_0000, 0x1000)]);
    assert_eq!(t.cells(uart, "interrupts").unwrap(), Some(vec![0, 8, 4]));
    assert!(t.find("/pl011@9000000").is_none());
    let gic = t.find("/interrupt-controller@8000000").expect("GIC");
    assert!(t.is_compatible(gic, &["arm,gic-v3"]));
    let chosen = t.find("/chosen").unwrap();
    assert_eq!(
        t.str_prop(chosen, "bootargs").unwrap(),
        Some("console=ttyAMA0")
    );
    assert_eq!(
        t.str_prop(chosen, "stdout-path").unwrap(),
        Some("/pl011@9040000")
    );
    assert_eq!(
        t.cells(chosen, "linux,initrd-end").unwrap(),
        Some(vec![0, 0x4018_0000])
    );
    // The whole guest tree resolves: GIC, PSCI, console, its one device.
    let gb = Board::from_dtb(&bytes).expect("the guest DTB is itself a board");
    assert_eq!(gb.cpus.len(), 1);
    assert_eq!(gb.console.base, 0x0904_0000);
    assert_eq!(gb.device("/pl011@9040000").unwrap().spis(), vec![40]);
    dtc_accepts(&bytes, "guest");
}

#[test]
fn guest_dtb_from_the_board_alone_and_hidden_ram() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let cell = demo_cell(&sys, &board);
    let from_board = GuestPlatform::from(&board);
    assert_eq!(from_board.cpus, sys.platform.cpus);
    assert_eq!(from_board.conduit, sys.platform.psci.conduit);
    let opts = GuestOptions {
        hidden_ram: vec![(0x4010_0000, 0x10_0000)],
        ..GuestOptions::default()
    };
    let bytes = guest_dtb_on(&board, &from_board, &cell, &opts).expect("guest DTB");
    let t = Tree::parse(&bytes).expect("guest DTB parses back");
    assert_eq!(cpu_regs(&t), vec![3]);
    // The top MiB of the cell's 2 MiB is left out of /memory.
    assert_eq!(memory_regs(&t), vec![(0x4000_0000, 1 << 20)]);
}

#[test]
fn a_given_guest_dtb_is_fitted_to_the_layout() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let cell = demo_cell(&sys, &board);
    let given = guest_dtb(&board, &sys, &cell, &GuestOptions::default()).expect("guest DTB");
    let bytes = fit_guest_dtb(
        &given,
        Some("console=ttyAMA0 quiet"),
        Some((0x4010_0000, 0x1000)),
        (0x4018_0000, 0x8_0000),
    )
    .expect("fitted");
    let t = Tree::parse(&bytes).expect("fitted DTB parses back");
    let chosen = t.find("/chosen").unwrap();
    assert_eq!(
        t.str_prop(chosen, "bootargs").unwrap(),
        Some("console=ttyAMA0 quiet")
    );
    assert_eq!(
        t.cells(chosen, "linux,initrd-start").unwrap(),
        Some(vec![0, 0x4010_0000])
    );
    let loader = t
        .find("/reserved-memory/cellblock-loader@40180000")
        .expect("reserved boot area");
    assert_eq!(t.raw_reg(loader).unwrap(), vec![(0x4018_0000, 0x8_0000)]);
    assert!(t.prop(loader, "no-map").is_some());
    // Without --cmdline the DTB's own bootargs stay.
    let kept = fit_guest_dtb(&bytes, None, None, (0x4018_0000, 0x8_0000)).unwrap();
    let t = Tree::parse(&kept).unwrap();
    let chosen = t.find("/chosen").unwrap();
    assert_eq!(
        t.str_prop(chosen, "bootargs").unwrap(),
        Some("console=ttyAMA0 quiet")
    );
    assert!(fit_guest_dtb(b"not a dtb", None, None, (0, 0x1000)).is_err());
    dtc_accepts(&bytes, "fitted");
}

#[test]
fn guest_dtb_has_an_input_node_per_ivshmem_link() {
    let (board, sys, _) = system("qemu-virt-gicv3.dtb", 64 << 20);
    let mut cell = demo_cell(&sys, &board);
    cell.ivshmem.push(hv_core::config::IvshmemLink {
        id: 1,
        phys_start: 0x7ed0_0000,
        virt_start: 0x5000_0000,
        size: 0x10_0000,
        regs: 0x0c00_0000,
        irq: 111,
    });
    let bytes = guest_dtb(&board, &sys, &cell, &GuestOptions::default()).expect("guest DTB");
    let t = Tree::parse(&bytes).expect("guest DTB parses back");
    let node = t.find("/cellblock-ivshmem-1").expect("input node");
    assert!(t.is_compatible(node, &["gpio-keys"]));
    let gic = t.find("/interrupt-controller@8000000").unwrap();
    assert_eq!(
        t.cells(node, "interrupt-parent").unwrap(),
        Some(vec![t.phandle_of(gic).unwrap()])
    );
    let button = t.find("/cellblock-ivshmem-1/doorbell").unwrap();
    assert_eq!(t.cells(button, "interrupts").unwrap(), Some(vec![0, 79, 1]));
    // Where the cell sees the shared memory, not where it is.
    assert_eq!(
        t.cells(node, "cellblock,shmem").unwrap(),
        Some(vec![0, 0x5000_0000, 0, 0x10_0000])
    );
    dtc_accepts(&bytes, "guest-ivshmem");
}

/// `dtc` decompiles the DTB (skipped only when dtc is absent outside CI).
fn dtc_accepts(bytes: &[u8], what: &str) {
    let dir = std::env::temp_dir().join(format!("dt-cellgen-test-{}-{what}", std::process::id()));
    std::fs::write(&dir, bytes).unwrap();
    let out = std::process::Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&dir)
        .output();
    let _ = std::fs::remove_file(&dir);
    match out {
        Ok(o) => assert!(
            o.status.success(),
            "dtc refuses the {what} DTB: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("dtc not run ({e}); {what} DTB checked by parsing only")
        }
        Err(e) => panic!("dtc is needed in CI: {e}"),
    }
}

/// configs/cells/qemu-linux.toml is what dt-cellgen writes for it (the
/// command is in its header), so a change of the generator or of the Linux
/// system config that would change it shows here.
#[test]
fn checked_in_linux_cell_config_is_dt_cellgens() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let sys: SystemConfig = toml::from_str(&read("configs/qemu-arm64-gicv3-linux.toml")).unwrap();
    let kept: hv_core::config::CellConfig =
        toml::from_str(&read("configs/cells/qemu-linux.toml")).unwrap();
    let board = Board::from_dtb(&fixture("qemu-virt-gicv3.dtb")).unwrap();
    let uart = device_from_board(&board, "/pl011@9040000").unwrap();
    let req = CellRequest {
        name: "linux".into(),
        cpus: vec![2, 3],
        mem: 256 << 20,
        devices: vec!["/pl011@9040000".into()],
        ipa: Some(0x6e00_0000),
    };
    let generated = generate_cell(&sys, &[], &req, &[uart]).unwrap();
    assert_eq!(kept, generated);
}

/// The hand-kept QEMU test configs describe the board exactly as QEMU's DTB
/// does (CPUs, RAM, GIC, PSCI, console, hypervisor placement), and every
/// device they map lies in a window dt-cellgen finds.
#[test]
fn checked_in_qemu_configs_match_the_generated_platform() {
    for (file, dtb) in [
        ("qemu-arm64-gicv3.toml", "qemu-virt-gicv3.dtb"),
        ("qemu-arm64-gicv2.toml", "qemu-virt-gicv2.dtb"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(file);
        let kept: SystemConfig = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (_, sys, _) = system(dtb, 0);
        assert_eq!(kept.platform.cpus, sys.platform.cpus, "{file}: cpus");
        assert_eq!(kept.platform.ram, sys.platform.ram, "{file}: ram");
        assert_eq!(kept.platform.gic, sys.platform.gic, "{file}: gic");
        assert_eq!(kept.platform.psci, sys.platform.psci, "{file}: psci");
        assert_eq!(
            kept.hypervisor.console, sys.hypervisor.console,
            "{file}: console"
        );
        assert_eq!(
            kept.hypervisor.memory, sys.hypervisor.memory,
            "{file}: hypervisor memory"
        );
        for r in kept.root_cell.memory.iter().filter(|r| r.has(MemFlag::Io)) {
            assert!(
                sys.platform
                    .mmio
                    .iter()
                    .any(|w| w.start <= r.phys_start && r.phys_start + r.size <= w.start + w.size),
                "{file}: {:?} outside the generated MMIO windows",
                r.comment
            );
        }
    }
}
