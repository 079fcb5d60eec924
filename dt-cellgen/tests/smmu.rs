//! SMMUv3 on a board built in code: the hypervisor gets the SMMU, the root
//! cell and a cell get the stream IDs of the devices they own.

mod common;

use common::{board, cells, node, s};
use dt_cellgen::board::Board;
use dt_cellgen::cell::{device_from_board, device_from_system, generate_cell, CellRequest};
use dt_cellgen::system::{generate_system, SystemOptions};
use hv_core::config::SmmuConfig;

fn smmu_board() -> Board {
    let mut dt = board();
    dt.root.add_child(node(
        "iommu@9050000",
        vec![
            ("compatible", s("arm,smmu-v3")),
            ("reg", cells(&[0, 0x0905_0000, 0, 0x2_0000])),
            ("#iommu-cells", cells(&[1])),
            ("phandle", cells(&[0x30])),
        ],
        vec![],
    ));
    dt.root.add_child(node(
        "dma@a000000",
        vec![
            ("compatible", s("test,dma")),
            ("reg", cells(&[0, 0x0a00_0000, 0, 0x1000])),
            ("interrupts", cells(&[0, 20, 4])),
            ("iommus", cells(&[0x30, 0x42])),
        ],
        vec![],
    ));
    Board::from_dtb(&dt.to_dtb()).expect("board reads")
}

#[test]
fn smmu_goes_to_the_hypervisor_and_streams_to_their_owners() {
    let b = smmu_board();
    let opts = SystemOptions {
        cell_mem: 8 << 20,
        ..Default::default()
    };
    let (sys, _) = generate_system(&b, &opts).expect("system");
    dt_cellgen::check_system(&sys).expect("validates");
    assert_eq!(
        sys.platform.smmu,
        Some(SmmuConfig {
            base: 0x0905_0000,
            size: 0x2_0000,
            event_irq: None,
        })
    );
    assert!(!sys
        .root_cell
        .memory
        .iter()
        .any(|r| r.phys_start == 0x0905_0000));
    assert_eq!(sys.root_cell.streams, vec![0x42]);

    let dev = device_from_board(&b, "/dma@a000000").unwrap();
    assert_eq!(dev.streams, vec![0x42]);
    assert_eq!(device_from_system(&sys, "/dma@a000000").unwrap(), dev);
    let req = CellRequest {
        name: "dma-cell".into(),
        cpus: vec![1],
        mem: 2 << 20,
        devices: vec!["/dma@a000000".into()],
        ipa: None,
    };
    let cell = generate_cell(&sys, &[], &req, &[dev]).expect("cell");
    assert_eq!(cell.streams, vec![0x42]);
    assert_eq!(cell.irqs, vec![52]);
    dt_cellgen::check_cell(&sys, &cell, &[]).expect("cell validates");
}
