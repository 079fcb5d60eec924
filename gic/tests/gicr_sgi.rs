//! Redistributor emulation and SGI filtering.

mod common;

use common::{cpu, spis, FakeRegs};
use gic::{filter_sgi1r, gicr_access, CellView, CpuId, Denied, MmioAccess};

const SGI_BASE: u64 = 0x1_0000;

fn rd(view: &CellView, frame: CpuId, hw: &mut FakeRegs, offset: u64, size: u8) -> u64 {
    gicr_access(view, frame, &MmioAccess::read(offset, size), hw).unwrap()
}

fn wr(view: &CellView, frame: CpuId, hw: &mut FakeRegs, offset: u64, size: u8, v: u64) {
    assert_eq!(
        gicr_access(view, frame, &MmioAccess::write(offset, size, v), hw),
        Ok(0)
    );
}

#[test]
fn foreign_frame_is_raz_wi_but_typer_and_ids_read() {
    let set = spis(&[]);
    let cpus = [cpu(2, 2)];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    let foreign = cpu(1, 1);
    let mut hw = FakeRegs::new();
    let typer = (1u64 << 32) | (1 << 8); // Aff0 = 1, processor number 1
    hw.set(0x8, 8, typer);
    hw.set(0xffe8, 4, 0x3b);
    hw.set(0x0, 4, 0x1);
    hw.set(0x14, 4, 0x0);
    hw.set(SGI_BASE + 0x100, 4, 0xffff_ffff);
    assert_eq!(rd(&view, foreign, &mut hw, 0x8, 8), typer);
    assert_eq!(rd(&view, foreign, &mut hw, 0xc, 4), 1);
    assert_eq!(rd(&view, foreign, &mut hw, 0xffe8, 4), 0x3b);
    assert_eq!(rd(&view, foreign, &mut hw, 0x0, 4), 0);
    assert_eq!(rd(&view, foreign, &mut hw, SGI_BASE + 0x100, 4), 0);
    wr(&view, foreign, &mut hw, 0x0, 4, 0);
    wr(&view, foreign, &mut hw, 0x14, 4, 2);
    wr(&view, foreign, &mut hw, SGI_BASE + 0x180, 4, 0xffff_ffff);
    wr(&view, foreign, &mut hw, SGI_BASE + 0x400, 4, 0);
    wr(&view, foreign, &mut hw, 0x8, 8, 0);
    assert!(hw.writes.is_empty());
}

#[test]
fn own_frame_passes_through_except_lpis_sleep_and_maintenance() {
    let set = spis(&[]);
    let cpus = [cpu(2, 2), cpu(3, 3)];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    let mut hw = FakeRegs::new();
    // The last redistributor: TYPER.Last (bit 4) as hardware says; PLPIS
    // (bit 0) and DirectLPI (bit 3) hidden.
    let typer = (3u64 << 32) | (3 << 8) | (1 << 4);
    hw.set(0x8, 8, typer | 0b1001);
    // A sibling CPU's frame of the same cell passes through too.
    assert_eq!(rd(&view, cpus[1], &mut hw, 0x8, 8), typer);

    // Linux's per-CPU setup in SGI_base.
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0x180, 4, 0xffff_0000);
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0x100, 4, 0x0000_ffff);
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0x80, 4, 0xffff_ffff);
    assert_eq!(
        hw.writes,
        [
            (SGI_BASE + 0x180, 4, 0xffff_0000 & !(1 << 25)),
            (SGI_BASE + 0x100, 4, 0x0000_7fff),
            (SGI_BASE + 0x80, 4, 0xffff_ffff & !(1 << 25) & !(1 << 15)),
        ]
    );
    // Virtual timer PPI 27 priority, by byte.
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0x41b, 1, 0x80);
    assert_eq!(hw.get(SGI_BASE + 0x418, 4), 0x8000_0000);
    // The maintenance interrupt's priority byte is not the cell's.
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0x419, 1, 0x10);
    assert_eq!(hw.get(SGI_BASE + 0x418, 4), 0x8000_0000);
    // ICFGR1 (PPIs).
    wr(&view, cpus[0], &mut hw, SGI_BASE + 0xc04, 4, 0xffff_ffff);
    assert_eq!(hw.get(SGI_BASE + 0xc04, 4), 0xffff_ffff & !(3 << 18));

    // No LPIs: PROPBASER/PENDBASER RAZ/WI, EnableLPIs never set.
    hw.writes.clear();
    hw.set(0x70, 8, 0x1234);
    assert_eq!(rd(&view, cpus[0], &mut hw, 0x70, 8), 0);
    wr(&view, cpus[0], &mut hw, 0x70, 8, 0x4000_0000);
    wr(&view, cpus[0], &mut hw, 0x78, 8, 0x4000_0000);
    wr(&view, cpus[0], &mut hw, 0x0, 4, 0x1);
    assert_eq!(hw.writes, [(0x0, 4, 0x0)]);
    // WAKER reads through; a cell cannot put the redistributor to sleep.
    hw.writes.clear();
    hw.set(0x14, 4, 0);
    assert_eq!(rd(&view, cpus[0], &mut hw, 0x14, 4), 0);
    wr(&view, cpus[0], &mut hw, 0x14, 4, 2);
    assert!(hw.writes.is_empty());
}

#[test]
fn gicr_widths() {
    let set = spis(&[]);
    let cpus = [cpu(0, 0)];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    let mut hw = FakeRegs::new();
    let acc = |o, s| {
        gicr_access(
            &view,
            cpus[0],
            &MmioAccess::read(o, s),
            &mut FakeRegs::new(),
        )
    };
    assert_eq!(acc(0x0, 8), Err(Denied::Width { offset: 0, size: 8 }));
    assert_eq!(acc(0xc, 8), Err(Denied::Unaligned { offset: 0xc }));
    assert_eq!(
        acc(SGI_BASE + 0x100, 1),
        Err(Denied::Width {
            offset: SGI_BASE + 0x100,
            size: 1
        })
    );
    assert!(acc(0x8, 4).is_ok() && acc(0x8, 8).is_ok() && acc(SGI_BASE + 0x401, 1).is_ok());
    // Unknown space is RAZ/WI.
    hw.set(0x200, 4, 7);
    assert_eq!(rd(&view, cpus[0], &mut hw, 0x200, 4), 0);
}

/// Two clusters: Aff1 = 0 holds CPUs 0..3, Aff1 = 1 holds CPUs 4..7.
fn mpidr(aff1: u64, aff0: u64) -> u64 {
    (aff1 << 8) | aff0
}

fn sgi1r(intid: u64, aff1: u64, list: u64) -> u64 {
    (intid << 24) | (aff1 << 16) | list
}

const IRM: u64 = 1 << 40;

#[test]
fn sgi1r_list_is_restricted_to_the_cell() {
    let set = spis(&[]);
    // The cell: CPUs 0.0 and 0.1; 0.2 and 0.3 belong to another cell.
    let cpus = [cpu(0, mpidr(0, 0)), cpu(1, mpidr(0, 1))];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    assert_eq!(
        filter_sgi1r(&view, sgi1r(3, 0, 0b1111)),
        [sgi1r(3, 0, 0b0011)]
    );
    assert_eq!(
        filter_sgi1r(&view, sgi1r(3, 0, 0b0010)),
        [sgi1r(3, 0, 0b0010)]
    );
    // Only foreign CPUs, or another cluster: nothing.
    assert!(filter_sgi1r(&view, sgi1r(3, 0, 0b1100)).is_empty());
    assert!(filter_sgi1r(&view, sgi1r(3, 1, 0b0011)).is_empty());
    // The hypervisor's own SGI is never sent for a cell.
    assert!(filter_sgi1r(&view, sgi1r(u64::from(gic::HV_SGI), 0, 0b0011)).is_empty());
    assert!(filter_sgi1r(&view, IRM | (u64::from(gic::HV_SGI) << 24)).is_empty());
    // Aff2/Aff3 must match too.
    assert!(filter_sgi1r(&view, sgi1r(3, 0, 0b0011) | (1 << 32)).is_empty());
}

#[test]
fn sgi1r_all_but_self_expands_across_clusters() {
    let set = spis(&[]);
    let cpus = [
        cpu(0, mpidr(0, 0)),
        cpu(1, mpidr(0, 1)),
        cpu(4, mpidr(1, 0)),
        cpu(5, mpidr(1, 1)),
    ];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    assert_eq!(
        filter_sgi1r(&view, IRM | (7 << 24)),
        [sgi1r(7, 0, 0b10), sgi1r(7, 1, 0b11)]
    );
    // A list in cluster 1.
    assert_eq!(
        filter_sgi1r(&view, sgi1r(2, 1, 0xffff)),
        [sgi1r(2, 1, 0b11)]
    );
    // A cell of one CPU has nobody to send "all but self" to.
    let alone = [cpus[0]];
    let view = CellView {
        spis: &set,
        cpus: &alone,
        current: alone[0],
    };
    assert!(filter_sgi1r(&view, IRM | (7 << 24)).is_empty());
}

#[test]
fn sgi1r_range_selector() {
    let set = spis(&[]);
    // Aff0 = 17: range 1, bit 1.
    let cpus = [cpu(0, 0), cpu(1, 17)];
    let view = CellView {
        spis: &set,
        cpus: &cpus,
        current: cpus[0],
    };
    let rs1 = 1u64 << 44;
    assert_eq!(
        filter_sgi1r(&view, rs1 | sgi1r(1, 0, 0b10)),
        [rs1 | sgi1r(1, 0, 0b10)]
    );
    assert!(filter_sgi1r(&view, sgi1r(1, 0, 0b10)).is_empty());
    assert_eq!(
        filter_sgi1r(&view, IRM | (1 << 24)),
        [rs1 | sgi1r(1, 0, 0b10)]
    );
}
