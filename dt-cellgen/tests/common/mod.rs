//! Device trees built in code for the tests, and fixture access.
#![allow(dead_code)]

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

pub fn s(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    b.push(0);
    b
}

pub fn node(
    name: &str,
    props: Vec<(&str, Vec<u8>)>,
    children: Vec<DeviceTreeNode>,
) -> DeviceTreeNode {
    let mut n = DeviceTreeNode::new_unchecked(name);
    for (k, v) in props {
        n.add_property(DeviceTreeProperty::new_unchecked(k, v));
    }
    for c in children {
        n.add_child(c);
    }
    n
}

/// A minimal valid board: 2 CPUs, 256 MiB RAM at 0x40000000, GICv3 with
/// phandle 1, PSCI over smc, a PL011 console with SPI 1.
pub fn board() -> DeviceTree {
    let mut dt = DeviceTree::new();
    let r = &mut dt.root;
    for (k, v) in [
        ("#address-cells", cells(&[2])),
        ("#size-cells", cells(&[2])),
        ("interrupt-parent", cells(&[1])),
        ("compatible", s("test,board")),
        ("model", s("Test board")),
    ] {
        r.add_property(DeviceTreeProperty::new_unchecked(k, v));
    }
    let cpu = |i: u32| {
        node(
            &format!("cpu@{i}"),
            vec![
                ("device_type", s("cpu")),
                ("compatible", s("arm,cortex-a53")),
                ("reg", cells(&[i])),
                ("enable-method", s("psci")),
            ],
            vec![],
        )
    };
    r.add_child(node(
        "cpus",
        vec![
            ("#address-cells", cells(&[1])),
            ("#size-cells", cells(&[0])),
        ],
        vec![cpu(0), cpu(1)],
    ));
    r.add_child(node(
        "psci",
        vec![("compatible", s("arm,psci-1.0")), ("method", s("smc"))],
        vec![],
    ));
    r.add_child(node(
        "memory@40000000",
        vec![
            ("device_type", s("memory")),
            ("reg", cells(&[0, 0x4000_0000, 0, 0x1000_0000])),
        ],
        vec![],
    ));
    r.add_child(node(
        "intc@8000000",
        vec![
            ("compatible", s("arm,gic-v3")),
            ("interrupt-controller", vec![]),
            ("#interrupt-cells", cells(&[3])),
            (
                "reg",
                cells(&[0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0x4_0000]),
            ),
            ("interrupts", cells(&[1, 9, 4])),
            ("phandle", cells(&[1])),
        ],
        vec![],
    ));
    r.add_child(node(
        "serial@9000000",
        vec![
            ("compatible", s("arm,pl011")),
            ("reg", cells(&[0, 0x0900_0000, 0, 0x1000])),
            ("interrupts", cells(&[0, 1, 4])),
        ],
        vec![],
    ));
    r.add_child(node(
        "chosen",
        vec![("stdout-path", s("/serial@9000000"))],
        vec![],
    ));
    dt
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
