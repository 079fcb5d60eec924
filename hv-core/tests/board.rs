//! `board` against device trees dumped from QEMU (see fixtures/README.md).

use hv_core::board::{check_against_board, uart_kind, BoardInfo};
use hv_core::config::{PsciConduit, Range, SystemConfig, UartKind};

const GICV3_DTB: &[u8] = include_bytes!("fixtures/qemu-virt-gicv3.dtb");
const GICV2_DTB: &[u8] = include_bytes!("fixtures/qemu-virt-gicv2.dtb");

fn config(name: &str) -> SystemConfig {
    let path = format!("{}/../configs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap()
}

fn messages(sys: &SystemConfig, board: &BoardInfo) -> Vec<String> {
    match check_against_board(sys, board) {
        Ok(()) => vec![],
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn qemu_gicv3_board() {
    let b = BoardInfo::from_dtb(GICV3_DTB).unwrap();
    assert_eq!(
        b.ram,
        [Range {
            start: 0x4000_0000,
            size: 0x4000_0000
        }]
    );
    let mpidrs: Vec<u64> = b.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert!(b
        .cpus
        .iter()
        .all(|c| c.enable_method.as_deref() == Some("psci")));
    let gic = b.gic.unwrap();
    assert_eq!(gic.version, 3);
    assert_eq!(gic.gicd, 0x0800_0000);
    assert_eq!(gic.gicr, Some(0x080a_0000));
    assert_eq!(gic.maintenance_irq, Some(25));
    assert_eq!(b.psci, Some(PsciConduit::Smc));
    assert_eq!(b.uart, Some(0x0900_0000));
    assert_eq!(b.uart_kind, Some(UartKind::Pl011));
}

#[test]
fn qemu_gicv2_board() {
    let b = BoardInfo::from_dtb(GICV2_DTB).unwrap();
    let gic = b.gic.unwrap();
    assert_eq!(gic.version, 2);
    assert_eq!(gic.gicd, 0x0800_0000);
    assert_eq!(gic.gicc, Some(0x0801_0000));
    assert_eq!(gic.gich, Some(0x0803_0000));
    assert_eq!(gic.gicv, Some(0x0804_0000));
    assert_eq!(gic.gicr, None);
    assert_eq!(b.cpus.len(), 4);
    assert_eq!(b.psci, Some(PsciConduit::Smc));
}

#[test]
fn shipped_configs_match_their_boards() {
    let v3 = BoardInfo::from_dtb(GICV3_DTB).unwrap();
    let v2 = BoardInfo::from_dtb(GICV2_DTB).unwrap();
    assert_eq!(
        messages(&config("qemu-arm64-gicv3.toml"), &v3),
        Vec::<String>::new()
    );
    assert_eq!(
        messages(&config("qemu-arm64-gicv2.toml"), &v2),
        Vec::<String>::new()
    );
}

#[test]
fn wrong_gic_version_refused() {
    let v2 = BoardInfo::from_dtb(GICV2_DTB).unwrap();
    assert_eq!(
        messages(&config("qemu-arm64-gicv3.toml"), &v2),
        ["platform.gic.version: GIC version 3 configured, the board has version 2"]
    );
}

#[test]
fn mismatches_refused() {
    let v3 = BoardInfo::from_dtb(GICV3_DTB).unwrap();
    let mut sys = config("qemu-arm64-gicv3.toml");
    sys.platform.cpus.push(0x100);
    sys.platform.ram.push(Range {
        start: 0x1_0000_0000,
        size: 0x1000_0000,
    });
    sys.platform.gic.gicr = Some(0x080b_0000);
    sys.platform.psci.conduit = PsciConduit::Hvc;
    sys.platform.gic.maintenance_irq = 26;
    assert_eq!(
        messages(&sys, &v3),
        [
            "platform.cpus[4]: MPIDR 0x100 is not a CPU of the board",
            "platform.ram[1]: RAM 0x100000000..0x110000000 is not inside one RAM bank of the board",
            "platform.gic.gicr: 0x80b0000 configured, the board has 0x80a0000",
            "platform.gic.maintenance_irq: INTID 26 configured, the board's GIC uses INTID 25",
            "platform.psci.conduit: conduit hvc configured, the board's PSCI uses smc",
        ]
    );
}

#[test]
fn truncated_fixture_is_an_error() {
    for len in [0, 8, 40, GICV3_DTB.len() / 2, GICV3_DTB.len() - 1] {
        assert!(BoardInfo::from_dtb(&GICV3_DTB[..len]).is_err(), "{len}");
    }
}

#[test]
fn corrupted_fixture_never_panics() {
    for i in (0..GICV3_DTB.len()).step_by(3) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = GICV3_DTB.to_vec();
            b[i] ^= flip;
            let _ = BoardInfo::from_dtb(&b);
        }
    }
}

#[test]
fn uart_kinds_from_compatible() {
    assert_eq!(
        uart_kind(&["arm,pl011", "arm,primecell"], None, None),
        Some(UartKind::Pl011)
    );
    assert_eq!(
        uart_kind(&["xlnx,zynqmp-uart", "cdns,uart-r1p12"], None, None),
        Some(UartKind::Cadence)
    );
    assert_eq!(
        uart_kind(&["xlnx,xuartps", "cdns,uart-r1p8"], None, None),
        Some(UartKind::Cadence)
    );
    assert_eq!(
        uart_kind(&["snps,dw-apb-uart"], Some(2), Some(4)),
        Some(UartKind::Ns16550)
    );
    assert_eq!(
        uart_kind(&["nvidia,tegra210-uart", "nvidia,tegra20-uart"], None, None),
        Some(UartKind::Ns16550)
    );
    // 8-bit register stride: no driver.
    assert_eq!(uart_kind(&["ns16550a"], None, None), None);
    assert_eq!(uart_kind(&["fsl,imx21-uart"], None, None), None);
}

#[test]
fn console_of_another_kind_refused() {
    let v3 = BoardInfo::from_dtb(GICV3_DTB).unwrap();
    let mut sys = config("qemu-arm64-gicv3.toml");
    sys.hypervisor.console.kind = UartKind::Cadence;
    assert_eq!(
        messages(&sys, &v3),
        ["hypervisor.console.kind: cadence configured, the board's console UART is pl011"]
    );
    // Another UART than the DT's stdout-path is the config's choice.
    sys.hypervisor.console.base = 0x0904_0000;
    assert_eq!(messages(&sys, &v3), Vec::<String>::new());
}

#[test]
fn cadence_uart_kind_serde_name() {
    #[derive(serde::Deserialize)]
    struct K {
        kind: UartKind,
    }
    let k: K = toml::from_str("kind = \"cadence\"").unwrap();
    assert_eq!(k.kind, UartKind::Cadence);
}
