//! Distributor emulation: ownership filtering on GICv3 and GICv2.

mod common;

use common::{cpu, spis, FakeRegs};
use gic::{gicd_access, CellView, CpuId, Denied, GicVersion, IrqSet, MmioAccess};

const V3: GicVersion = GicVersion::V3;
const V2: GicVersion = GicVersion::V2;

/// The cell: CPUs 2 and 3 (MPIDR 2, 3), SPIs 40, 41 and 72; running on 2.
struct Cell {
    spis: IrqSet,
    cpus: [CpuId; 2],
}

impl Cell {
    fn new() -> Self {
        Self {
            spis: spis(&[40, 41, 72]),
            cpus: [cpu(2, 2), cpu(3, 3)],
        }
    }

    fn view(&self) -> CellView<'_> {
        CellView {
            spis: &self.spis,
            cpus: &self.cpus,
            current: self.cpus[0],
        }
    }
}

fn rd(ver: GicVersion, cell: &Cell, hw: &mut FakeRegs, offset: u64, size: u8) -> u64 {
    gicd_access(ver, &cell.view(), &MmioAccess::read(offset, size), hw).unwrap()
}

fn wr(ver: GicVersion, cell: &Cell, hw: &mut FakeRegs, offset: u64, size: u8, v: u64) {
    assert_eq!(
        gicd_access(ver, &cell.view(), &MmioAccess::write(offset, size, v), hw),
        Ok(0)
    );
}

#[test]
fn enable_reaches_only_owned_spis() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    // GICD_ISENABLER1 covers INTIDs 32..63: 40 and 41 are the cell's.
    wr(V3, &cell, &mut hw, 0x104, 4, 0xffff_ffff);
    assert_eq!(hw.writes, [(0x104, 4, (1 << 8) | (1 << 9))]);
    // GICD_ICENABLER1: clearing a foreign SPI is dropped entirely.
    hw.writes.clear();
    wr(V3, &cell, &mut hw, 0x184, 4, 1 << 1);
    assert!(hw.writes.is_empty());
    // Reads show only the cell's bits.
    hw.set(0x104, 4, 0xffff_ffff);
    assert_eq!(rd(V3, &cell, &mut hw, 0x104, 4), (1 << 8) | (1 << 9));
}

#[test]
fn foreign_register_is_not_touched() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    hw.set(0x10c, 4, 0xffff_ffff); // ISENABLER3: INTIDs 96..127, none owned
    assert_eq!(rd(V3, &cell, &mut hw, 0x10c, 4), 0);
    wr(V3, &cell, &mut hw, 0x10c, 4, 0xffff_ffff);
    assert!(hw.reads.is_empty() && hw.writes.is_empty());
}

#[test]
fn priority_read_modify_write_keeps_other_cells_bytes() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    // IPRIORITYR10 = INTIDs 40..43; 40 and 41 owned.
    hw.set(0x428, 4, 0x1122_3344);
    wr(V3, &cell, &mut hw, 0x428, 4, 0xaabb_ccdd);
    assert_eq!(hw.get(0x428, 4), 0x1122_ccdd);
    // A byte write to an owned INTID.
    wr(V3, &cell, &mut hw, 0x429, 1, 0x55);
    assert_eq!(hw.get(0x428, 4), 0x1122_55dd);
    // A byte write to a foreign INTID (42) is ignored, its read is zero.
    wr(V3, &cell, &mut hw, 0x42a, 1, 0x66);
    assert_eq!(hw.get(0x428, 4), 0x1122_55dd);
    assert_eq!(rd(V3, &cell, &mut hw, 0x42a, 1), 0);
    assert_eq!(rd(V3, &cell, &mut hw, 0x428, 4), 0x55dd);
}

#[test]
fn config_and_group_read_modify_write() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    // ICFGR2 = INTIDs 32..47, two bits each; 40 at bits 17:16, 41 at 19:18.
    hw.set(0xc08, 4, 0xaaaa_aaaa);
    wr(V3, &cell, &mut hw, 0xc08, 4, 0xffff_ffff);
    assert_eq!(hw.get(0xc08, 4), 0xaaaf_aaaa);
    // IGROUPR1 = INTIDs 32..63.
    hw.set(0x84, 4, 0x0000_00ff);
    wr(V3, &cell, &mut hw, 0x84, 4, 0);
    assert_eq!(hw.get(0x84, 4), 0x0000_00ff);
    wr(V3, &cell, &mut hw, 0x84, 4, 0xffff_ffff);
    assert_eq!(hw.get(0x84, 4), 0x0000_03ff);
    // IGRPMODR1 (v3 only).
    wr(V3, &cell, &mut hw, 0xd04, 4, 0xffff_ffff);
    assert_eq!(hw.get(0xd04, 4), 0x0000_0300);
}

#[test]
fn v3_private_interrupts_are_raz_wi_in_the_distributor() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    hw.set(0x100, 4, 0xffff_ffff);
    assert_eq!(rd(V3, &cell, &mut hw, 0x100, 4), 0);
    wr(V3, &cell, &mut hw, 0x180, 4, 0xffff_ffff);
    wr(V3, &cell, &mut hw, 0x400, 4, 0);
    assert!(hw.writes.is_empty());
}

#[test]
fn irouter_routes_owned_spis_to_the_cells_cpus_only() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    let irouter = |intid: u64| 0x6000 + 8 * intid;
    // To CPU 3 (own), with routing mode 1 asked: forced to 0.
    wr(V3, &cell, &mut hw, irouter(40), 8, 3 | (1 << 31));
    assert_eq!(hw.writes, [(irouter(40), 8, 3)]);
    // To CPU 1 (another cell's): ignored.
    hw.writes.clear();
    wr(V3, &cell, &mut hw, irouter(40), 8, 1);
    assert!(hw.writes.is_empty());
    assert_eq!(hw.get(irouter(40), 8), 3);
    // A foreign SPI: ignored, reads as zero.
    hw.set(irouter(50), 8, 1);
    wr(V3, &cell, &mut hw, irouter(50), 8, 2);
    assert_eq!(hw.get(irouter(50), 8), 1);
    assert_eq!(rd(V3, &cell, &mut hw, irouter(50), 8), 0);
    assert_eq!(rd(V3, &cell, &mut hw, irouter(40), 8), 3);
    // 32-bit halves: the lower half to CPU 2 is accepted.
    wr(V3, &cell, &mut hw, irouter(41), 4, 2);
    assert_eq!(hw.get(irouter(41), 8), 2);
    // Upper half making Aff3 = 1 (no such CPU in the cell): ignored.
    wr(V3, &cell, &mut hw, irouter(41) + 4, 4, 1);
    assert_eq!(hw.get(irouter(41), 8), 2);
    // IROUTER of INTIDs below 32 is reserved.
    wr(V3, &cell, &mut hw, irouter(27), 8, 2);
    assert_eq!(hw.get(irouter(27), 8), 0);
}

#[test]
fn control_and_id_registers_read_through_writes_ignored() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    hw.set(0x0, 4, 0x12); // ARE | EnableGrp1A
    hw.set(0x4, 4, 0x37_8007);
    hw.set(0xffe8, 4, 0x3b);
    assert_eq!(rd(V3, &cell, &mut hw, 0x0, 4), 0x12);
    // GICD_TYPER without MBIS, LPIS, DVIS (bits 16..18): cells get none.
    assert_eq!(rd(V3, &cell, &mut hw, 0x4, 4), 0x30_8007);
    assert_eq!(rd(V3, &cell, &mut hw, 0xffe8, 4), 0x3b);
    wr(V3, &cell, &mut hw, 0x0, 4, 0);
    assert!(hw.writes.is_empty());
    // GICv2 ID registers sit at 0xfd0.
    hw.set(0xfe8, 4, 0x2b);
    assert_eq!(rd(V2, &cell, &mut hw, 0xfe8, 4), 0x2b);
}

#[test]
fn unknown_registers_are_raz_wi() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    for off in [0x10u64, 0x40, 0xe00, 0xf10, 0x8000, 0xc000] {
        hw.set(off, 4, 0xdead_beef);
        assert_eq!(rd(V3, &cell, &mut hw, off, 4), 0, "offset {off:#x}");
        wr(V3, &cell, &mut hw, off, 4, 1);
    }
    // ITARGETSR and SGIR mean nothing with affinity routing.
    wr(V3, &cell, &mut hw, 0x828, 4, 0x0404_0404);
    wr(V3, &cell, &mut hw, 0xf00, 4, 0x00ff_0001);
    assert!(hw.writes.is_empty());
}

#[test]
fn widths_and_alignment() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    let v = cell.view();
    let acc = |o, s| gicd_access(V3, &v, &MmioAccess::read(o, s), &mut FakeRegs::new());
    assert_eq!(
        acc(0x108, 8),
        Err(Denied::Width {
            offset: 0x108,
            size: 8
        })
    );
    assert_eq!(acc(0x104, 8), Err(Denied::Unaligned { offset: 0x104 }));
    assert_eq!(
        acc(0x104, 1),
        Err(Denied::Width {
            offset: 0x104,
            size: 1
        })
    );
    assert_eq!(
        acc(0x428, 2),
        Err(Denied::Width {
            offset: 0x428,
            size: 2
        })
    );
    assert_eq!(acc(0x106, 4), Err(Denied::Unaligned { offset: 0x106 }));
    assert_eq!(
        acc(0x6000 + 8 * 40, 1),
        Err(Denied::Width {
            offset: 0x6000 + 8 * 40,
            size: 1
        })
    );
    assert_eq!(
        acc(0x0, 8),
        Err(Denied::Width {
            offset: 0x0,
            size: 8
        })
    );
    assert_eq!(
        acc(0x0, 3),
        Err(Denied::Width {
            offset: 0x0,
            size: 3
        })
    );
    assert!(acc(0x42b, 1).is_ok());
    assert!(acc(0x6000 + 8 * 40 + 4, 4).is_ok());
    // A denied write never reaches the hardware.
    let w = MmioAccess::write(0x108, 8, u64::MAX);
    assert!(gicd_access(V3, &v, &w, &mut hw).is_err());
    assert!(hw.writes.is_empty());
    assert_eq!(
        Denied::Width {
            offset: 0x104,
            size: 8
        }
        .to_string(),
        "GIC register at offset 0x104: 8-byte access not supported"
    );
}

#[test]
fn v2_private_interrupts_are_the_current_cpus_own_except_maintenance() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    // Linux's per-CPU init: disable PPIs, enable SGIs.
    wr(V2, &cell, &mut hw, 0x180, 4, 0xffff_0000);
    wr(V2, &cell, &mut hw, 0x100, 4, 0x0000_ffff);
    assert_eq!(
        hw.writes,
        [
            (0x180, 4, 0xffff_0000 & !(1 << gic::MAINTENANCE_INTID)),
            (0x100, 4, 0x0000_ffff & !(1 << gic::HV_SGI))
        ]
    );
    // Priority of PPI 27 (the virtual timer) is the cell's; 25 is not.
    hw.set(0x418, 4, 0xa0a0_a0a0);
    wr(V2, &cell, &mut hw, 0x418, 4, 0x8080_8080);
    assert_eq!(hw.get(0x418, 4), 0x8080_a080);
}

#[test]
fn v2_itargetsr() {
    let cell = Cell::new();
    let mut hw = FakeRegs::new();
    // ITARGETSR0..7 (INTIDs 0..31): read-only, the current CPU's own bit.
    hw.set(0x800, 4, 0x0404_0404);
    assert_eq!(rd(V2, &cell, &mut hw, 0x800, 4), 0x0404_0404);
    wr(V2, &cell, &mut hw, 0x800, 4, 0x0101_0101);
    assert!(hw.writes.is_empty());
    // ITARGETSR10 = INTIDs 40..43 (40, 41 owned). Targets CPU 3 (bit 3).
    hw.set(0x828, 4, 0x0202_0202);
    wr(V2, &cell, &mut hw, 0x828, 4, 0x0808_0808);
    assert_eq!(hw.get(0x828, 4), 0x0202_0808);
    // Naming CPU 1 (another cell's) for INTID 40: that byte is ignored.
    wr(V2, &cell, &mut hw, 0x828, 4, 0x0404_0402);
    assert_eq!(hw.get(0x828, 4), 0x0202_0408);
    // Byte access to an owned INTID, CPU 2.
    wr(V2, &cell, &mut hw, 0x828, 1, 0x04);
    assert_eq!(hw.get(0x828, 4), 0x0202_0404);
    assert_eq!(rd(V2, &cell, &mut hw, 0x828, 4), 0x0404);
}

#[test]
fn v2_sgir_is_filtered_to_the_cell() {
    let cell = Cell::new();
    let sgir = |filter: u64, list: u64, sgi: u64| (filter << 24) | (list << 16) | sgi;
    let mut hw = FakeRegs::new();
    // A list naming CPUs 0..3: only 2 and 3 remain.
    wr(V2, &cell, &mut hw, 0xf00, 4, sgir(0, 0x0f, 5));
    // "All but self" from CPU 2: CPU 3 only.
    wr(V2, &cell, &mut hw, 0xf00, 4, sgir(1, 0, 6));
    // "Self": CPU 2.
    wr(V2, &cell, &mut hw, 0xf00, 4, sgir(2, 0, 7));
    // Only foreign CPUs, the reserved filter or the hypervisor's SGI:
    // nothing is sent.
    wr(V2, &cell, &mut hw, 0xf00, 4, sgir(0, 0x03, 1));
    wr(V2, &cell, &mut hw, 0xf00, 4, sgir(3, 0xff, 1));
    wr(
        V2,
        &cell,
        &mut hw,
        0xf00,
        4,
        sgir(0, 0x0c, u64::from(gic::HV_SGI)),
    );
    assert_eq!(
        hw.writes,
        [
            (0xf00, 4, sgir(0, 0x0c, 5)),
            (0xf00, 4, sgir(0, 0x08, 6)),
            (0xf00, 4, sgir(0, 0x04, 7)),
        ]
    );
    // Reads of the write-only register are zero.
    assert_eq!(rd(V2, &cell, &mut hw, 0xf00, 4), 0);
}
