//! Bad and hostile device trees: each is refused with the error naming the
//! problem, and no input makes the reader panic.

mod common;

use common::{board, cells, fixture, node, s};
use dt_cellgen::board::Board;
use dt_cellgen::system::{generate_system, SystemOptions};
use dt_cellgen::Error;
use dtoolkit::model::DeviceTreeProperty;

fn read(dt: &dtoolkit::model::DeviceTree) -> Result<Board, Error> {
    Board::from_dtb(&dt.to_dtb())
}

#[test]
fn the_test_board_itself_is_accepted() {
    let b = read(&board()).expect("valid board");
    assert_eq!(b.cpus.len(), 2);
    assert_eq!(b.gic.version, 3);
    assert_eq!(b.gic.maintenance_irq, Some(25));
    let (sys, _) = generate_system(&b, &SystemOptions::default()).expect("config");
    dt_cellgen::check_system(&sys).expect("validates");
}

#[test]
fn truncated_dtb() {
    let bytes = board().to_dtb();
    let err = Board::from_dtb(&bytes[..bytes.len() - 9]).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    let err = Board::from_dtb(&bytes[..5]).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    let err = Board::from_dtb(&[]).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn bad_magic() {
    let mut bytes = board().to_dtb();
    bytes[0] = 0xde;
    let err = Board::from_dtb(&bytes).unwrap_err();
    assert_eq!(err, Error::BadMagic { found: 0xde0d_feed });
    assert!(err.to_string().contains("magic"));
}

#[test]
fn no_psci() {
    let mut dt = board();
    dt.root.remove_child("psci");
    assert_eq!(read(&dt).unwrap_err(), Error::NoPsci);
}

#[test]
fn psci_without_method_is_a_missing_property() {
    let mut dt = board();
    dt.find_node_mut("/psci").unwrap().remove_property("method");
    let err = read(&dt).unwrap_err();
    assert_eq!(
        err,
        Error::MissingProperty {
            node: "/psci".into(),
            prop: "method"
        }
    );
    assert_eq!(err.to_string(), "/psci: missing property `method`");
}

#[test]
fn no_gic() {
    let mut dt = board();
    dt.find_node_mut("/intc@8000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "compatible",
            s("apple,aic"),
        ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(err, Error::NoGic { found: Some(ref f) } if f.contains("apple,aic")),
        "{err}"
    );
}

#[test]
fn no_cpus() {
    let mut dt = board();
    let cpus = dt.find_node_mut("/cpus").unwrap();
    cpus.remove_child("cpu@0");
    cpus.remove_child("cpu@1");
    assert_eq!(read(&dt).unwrap_err(), Error::NoCpus);
}

#[test]
fn interrupt_parent_loop() {
    let mut dt = board();
    // Two nodes without #interrupt-cells naming each other as parent.
    dt.root.add_child(node(
        "loop-a",
        vec![
            ("phandle", cells(&[0x10])),
            ("interrupt-parent", cells(&[0x11])),
        ],
        vec![],
    ));
    dt.root.add_child(node(
        "loop-b",
        vec![
            ("phandle", cells(&[0x11])),
            ("interrupt-parent", cells(&[0x10])),
        ],
        vec![],
    ));
    dt.root.add_child(node(
        "dev@a000000",
        vec![
            ("reg", cells(&[0, 0x0a00_0000, 0, 0x1000])),
            ("interrupt-parent", cells(&[0x10])),
            ("interrupts", cells(&[5])),
        ],
        vec![],
    ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(err, Error::PhandleLoop { ref node, prop: "interrupt-parent", .. } if node == "/dev@a000000"),
        "{err}"
    );
}

#[test]
fn interrupt_map_loop() {
    let mut dt = board();
    // A nexus whose map points back at itself.
    dt.root.add_child(node(
        "nexus",
        vec![
            ("phandle", cells(&[0x20])),
            ("#interrupt-cells", cells(&[1])),
            ("#address-cells", cells(&[0])),
            ("interrupt-map", cells(&[7, 0x20, 7])),
        ],
        vec![],
    ));
    dt.root.add_child(node(
        "dev@a000000",
        vec![
            ("reg", cells(&[0, 0x0a00_0000, 0, 0x1000])),
            ("interrupt-parent", cells(&[0x20])),
            ("interrupts", cells(&[7])),
        ],
        vec![],
    ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PhandleLoop {
                prop: "interrupt-map",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn absurd_sizes() {
    let mut dt = board();
    dt.find_node_mut("/serial@9000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "reg",
            cells(&[0xffff_ffff, 0xffff_f000, 0, 0x10_0000]),
        ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(err, Error::AbsurdSize { ref node, .. } if node == "/serial@9000000"),
        "{err}"
    );

    let mut dt = board();
    dt.find_node_mut("/memory@40000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "reg",
            cells(&[0, 0x4000_0000, 0x00ff_ffff, 0]),
        ));
    let err = read(&dt).unwrap_err();
    assert!(matches!(err, Error::AbsurdSize { .. }), "{err}");
}

#[test]
fn reg_with_a_partial_entry_is_a_bad_property() {
    let mut dt = board();
    dt.find_node_mut("/intc@8000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "reg",
            cells(&[0, 0x0800_0000, 0]),
        ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(err, Error::BadProperty { ref prop, .. } if prop == "reg"),
        "{err}"
    );
}

#[test]
fn nesting_too_deep() {
    let mut dt = board();
    let mut n = node("n", vec![], vec![]);
    for _ in 0..200 {
        n = node("n", vec![], vec![n]);
    }
    dt.root.add_child(n);
    let err = read(&dt).unwrap_err();
    assert!(matches!(err, Error::TooDeep { .. }), "{err}");
}

#[test]
fn empty_memory_needs_ram_from_the_command_line() {
    let mut dt = board();
    dt.find_node_mut("/memory@40000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "reg",
            cells(&[0, 0, 0, 0]),
        ));
    let b = read(&dt).expect("board reads");
    let err = generate_system(&b, &SystemOptions::default()).unwrap_err();
    assert_eq!(err, Error::NoMemory);
    let opts = SystemOptions {
        ram: vec![(0x4000_0000, 0x1000_0000)],
        ..Default::default()
    };
    let (sys, _) = generate_system(&b, &opts).expect("with --ram");
    dt_cellgen::check_system(&sys).expect("validates");
}

#[test]
fn unsupported_console_is_named() {
    let mut dt = board();
    dt.find_node_mut("/serial@9000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "compatible",
            s("fsl,imx21-uart"),
        ));
    let err = read(&dt).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedConsole { ref node, ref compatible } if node == "/serial@9000000" && compatible == "fsl,imx21-uart"),
        "{err}"
    );
}

#[test]
fn cadence_console_is_recognised() {
    let mut dt = board();
    dt.find_node_mut("/serial@9000000")
        .unwrap()
        .add_property(DeviceTreeProperty::new_unchecked(
            "compatible",
            s("xlnx,zynqmp-uart\0cdns,uart-r1p12"),
        ));
    let b = read(&dt).expect("a Cadence console is supported");
    assert_eq!(b.console.kind, hv_core::config::UartKind::Cadence);
    assert_eq!(b.console.base, 0x0900_0000);
}

#[test]
fn hypervisor_memory_larger_than_ram() {
    let b = read(&board()).unwrap();
    let opts = SystemOptions {
        hv_mem: 1 << 30,
        ..Default::default()
    };
    let err = generate_system(&b, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoRoom {
                what: "the hypervisor",
                ..
            }
        ),
        "{err}"
    );
}

/// Every prefix of a real DTB and thousands of single-byte corruptions:
/// each is read or refused, never a panic.
#[test]
fn corrupted_and_truncated_dtbs_never_panic() {
    let orig = fixture("qemu-virt-gicv3-smmuv3.dtb");
    for len in 0..orig.len() {
        let _ = Board::from_dtb(&orig[..len]);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refused = 0;
    for _ in 0..4000 {
        let mut b = orig.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] = next() as u8;
        }
        match Board::from_dtb(&b) {
            Ok(board) => {
                let _ = generate_system(&board, &SystemOptions::default());
            }
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "some corruptions must be refused");
}

/// A raw blob: header, empty reservation map, `tokens`, strings "a\0".
fn raw_blob(tokens: &[u32]) -> Vec<u8> {
    let strings = b"a\0";
    let off_struct = 40 + 16;
    let size_struct = tokens.len() * 4;
    let off_strings = off_struct + size_struct;
    let total = off_strings + strings.len();
    let mut b = Vec::new();
    for v in [
        0xd00d_feed,
        total as u32,
        off_struct as u32,
        off_strings as u32,
        40,
        17,
        16,
        0,
        strings.len() as u32,
        size_struct as u32,
    ] {
        b.extend_from_slice(&u32::to_be_bytes(v));
    }
    b.extend_from_slice(&[0; 16]);
    for t in tokens {
        b.extend_from_slice(&t.to_be_bytes());
    }
    b.extend_from_slice(strings);
    b
}

/// Found by the fuzzer: a property after a subnode made the FDT reader's
/// child iterator panic.
#[test]
fn property_after_a_subnode_is_malformed() {
    const BEGIN: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const END: u32 = 9;
    let name_c = u32::from_be_bytes(*b"c\0\0\0");
    // / { c { }; a; };
    let bad = raw_blob(&[BEGIN, 0, BEGIN, name_c, END_NODE, PROP, 0, 0, END_NODE, END]);
    let err = Board::from_dtb(&bad).unwrap_err();
    assert!(
        matches!(err, Error::Malformed(ref m) if m.contains("property after a subnode")),
        "{err}"
    );
    // / { a; c { }; }; is fine as a blob (and then lacks everything else).
    let good = raw_blob(&[BEGIN, 0, PROP, 0, 0, BEGIN, name_c, END_NODE, END_NODE, END]);
    assert_eq!(Board::from_dtb(&good).unwrap_err(), Error::NoPsci);
}
