//! Whatever a cell writes, in any order and width: other cells' interrupts
//! keep their configuration, routes stay inside the cell and SGIs reach
//! only the cell's CPUs. Pseudo-random accesses with a fixed seed.

mod common;

use common::{cpu, spis, FakeRegs};
use gic::{
    filter_sgi1r, filter_sgir_v2, gicd_access, gicr_access, CellView, CpuId, GicVersion,
    MmioAccess, HV_RESERVED_PRIVATE,
};

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per-IRQ register blocks of the distributor: (base, bits per INTID).
/// The clear-enable/pending/active blocks are views of the set ones.
const FIELDS: [(u64, u64); 7] = [
    (0x080, 1),
    (0x100, 1),
    (0x200, 1),
    (0x300, 1),
    (0x400, 8),
    (0xc00, 2),
    (0xd00, 1),
];

/// A GIC register file: ISENABLER/ICENABLER, ISPENDR/ICPENDR and
/// ISACTIVER/ICACTIVER are write-1-to-set/clear views of one state, kept
/// at the set register's address (in GICD and in GICR's SGI_base).
struct Gic(FakeRegs);

impl Gic {
    /// The set register holding the state behind `offset`, and whether
    /// `offset` is the clear view.
    fn set_clear(offset: u64) -> Option<(u64, bool)> {
        let within = offset % 0x1_0000;
        let frame = offset - within;
        match within {
            0x100..0x400 => {
                let block = within & !0xff;
                let clear = within & 0x80 != 0;
                Some((frame + block + (within & 0x7f), clear))
            }
            _ => None,
        }
    }
}

impl gic::RegIo for Gic {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match Self::set_clear(offset) {
            Some((state, _)) => self.0.read(state, size),
            None => self.0.read(offset, size),
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match Self::set_clear(offset) {
            Some((state, clear)) => {
                let old = self.0.get(state, size);
                let new = if clear { old & !value } else { old | value };
                self.0.write(state, size, new);
            }
            None => self.0.write(offset, size, value),
        }
    }
}

fn field(hw: &FakeRegs, base: u64, bits: u64, intid: u64) -> u64 {
    let bit = intid * bits;
    (hw.get(base + bit / 8, 1) >> (bit % 8)) & ((1 << bits) - 1)
}

fn random_access(rng: &mut Rng, span: u64, hot: &[u64]) -> MmioAccess {
    let size = [1u8, 2, 4, 8][rng.below(4) as usize];
    // Mostly the interesting registers, sometimes anywhere.
    let offset = if rng.below(4) == 0 {
        rng.below(span)
    } else {
        hot[rng.below(hot.len() as u64) as usize] + rng.below(0x400)
    } & !(u64::from(size) - 1);
    MmioAccess {
        offset,
        size,
        write: (rng.below(3) != 0).then(|| rng.next()),
    }
}

fn check_distributor(ver: GicVersion, seed: u64) {
    let all: Vec<CpuId> = (0..4).map(|i| cpu(i, u64::from(i))).collect();
    let owned = spis(&[33, 40, 41, 72, 100]);
    let cell_cpus = [all[2], all[3]];
    let view = CellView {
        spis: &owned,
        cpus: &cell_cpus,
        current: all[2],
    };
    let mut rng = Rng(seed);
    let mut hw = FakeRegs::new();
    for off in 0..0x1000 {
        hw.set(off, 1, rng.next() & 0xff);
    }
    // Valid starting routes.
    for intid in 32..1020u64 {
        // The hypervisor routes a cell's SPIs to the cell at its start.
        let c = if owned.contains(intid as u32) {
            cell_cpus[rng.below(2) as usize]
        } else {
            all[rng.below(4) as usize]
        };
        hw.set(0x800 + intid, 1, u64::from(c.v2_target));
        hw.set(0x6000 + 8 * intid, 8, c.mpidr);
    }
    let before = (0..0x8000).map(|o| hw.get(o, 1)).collect::<Vec<_>>();
    let hot = [
        0x80, 0x100, 0x180, 0x400, 0x800, 0xc00, 0xd00, 0xf00, 0x6100, 0x6200,
    ];
    let mut gic = Gic(hw);
    for _ in 0..20_000 {
        let acc = random_access(&mut rng, 0x1_0000, &hot);
        let _ = gicd_access(ver, &view, &acc, &mut gic);
    }
    let hw = gic.0;
    let cell_mask = view.v2_mask();
    let old = |o: u64| before[o as usize];
    let mut old_hw = FakeRegs::new();
    for (o, &b) in before.iter().enumerate() {
        old_hw.set(o as u64, 1, b);
    }
    // The cell did get to change its own interrupts (the test is not
    // vacuous).
    let changed_owned = owned
        .iter()
        .flat_map(|i| FIELDS.iter().map(move |&(b, bits)| (u64::from(i), b, bits)))
        .filter(|&(i, b, bits)| field(&hw, b, bits, i) != field(&old_hw, b, bits, i))
        .count();
    assert!(
        changed_owned > 10,
        "only {changed_owned} owned fields changed"
    );
    for intid in 0..1020u64 {
        let mine = owned.contains(intid as u32)
            || (ver == GicVersion::V2 && intid < 32 && HV_RESERVED_PRIVATE & (1 << intid) == 0);
        for (base, bits) in FIELDS {
            if !mine {
                assert_eq!(
                    field(&hw, base, bits, intid),
                    field(&old_hw, base, bits, intid),
                    "{ver:?}: INTID {intid} changed in the block at {base:#x}"
                );
            }
        }
        match ver {
            GicVersion::V2 => {
                let t = hw.get(0x800 + intid, 1) as u8;
                if mine && intid >= 32 {
                    assert_eq!(t & !cell_mask, 0, "INTID {intid} routed outside: {t:#x}");
                } else {
                    assert_eq!(u64::from(t), old(0x800 + intid), "ITARGETSR of {intid}");
                }
            }
            GicVersion::V3 if intid >= 32 => {
                let r = hw.get(0x6000 + 8 * intid, 8);
                if mine {
                    assert!(
                        cell_cpus.iter().any(|c| c.mpidr == r),
                        "INTID {intid}: {r:#x}"
                    );
                } else {
                    assert_eq!(r, old_hw.get(0x6000 + 8 * intid, 8), "IROUTER of {intid}");
                }
            }
            GicVersion::V3 => {}
        }
    }
}

#[test]
fn distributor_v3_never_changes_foreign_interrupts() {
    check_distributor(GicVersion::V3, 0x1234_5678_9abc_def1);
}

#[test]
fn distributor_v2_never_changes_foreign_interrupts() {
    check_distributor(GicVersion::V2, 0x0fed_cba9_8765_4321);
}

#[test]
fn redistributor_never_changes_foreign_frames_or_reserved_interrupts() {
    let owned = spis(&[]);
    let cell_cpus = [cpu(2, 2), cpu(3, 3)];
    let view = CellView {
        spis: &owned,
        cpus: &cell_cpus,
        current: cell_cpus[0],
    };
    let mut rng = Rng(42);
    let hot = [
        0x0, 0x1_0080, 0x1_0100, 0x1_0180, 0x1_0400, 0x1_0c00, 0x1_0d00,
    ];
    for frame in [cpu(0, 0), cpu(3, 3)] {
        let mut hw = FakeRegs::new();
        for off in (0..0x100).chain(0x1_0000..0x1_1000) {
            hw.set(off, 1, rng.next() & 0xff);
        }
        let snapshot = |hw: &FakeRegs| {
            (0..0x100)
                .chain(0x1_0000..0x1_1000)
                .map(|o| hw.get(o, 1))
                .collect::<Vec<_>>()
        };
        let before = snapshot(&hw);
        let mut old_hw = FakeRegs::new();
        for (o, off) in (0..0x100).chain(0x1_0000..0x1_1000).enumerate() {
            old_hw.set(off, 1, before[o]);
        }
        let mut gic = Gic(hw);
        for _ in 0..20_000 {
            let acc = random_access(&mut rng, 0x2_0000, &hot);
            let _ = gicr_access(&view, frame, &acc, &mut gic);
        }
        let hw = gic.0;
        if !view.owns_cpu(&frame) {
            assert_eq!(snapshot(&hw), before, "foreign frame changed");
            continue;
        }
        for intid in 0..32u64 {
            if HV_RESERVED_PRIVATE & (1 << intid) == 0 {
                continue;
            }
            for (base, bits) in FIELDS {
                let base = base + 0x1_0000;
                assert_eq!(
                    field(&hw, base, bits, intid),
                    field(&old_hw, base, bits, intid),
                    "reserved INTID {intid} changed at {base:#x}"
                );
            }
        }
        // PROPBASER, PENDBASER never written; EnableLPIs never set.
        assert_eq!(hw.get(0x70, 8), old_hw.get(0x70, 8));
        assert_eq!(hw.get(0x78, 8), old_hw.get(0x78, 8));
    }
}

#[test]
fn sgis_reach_only_the_cells_cpus() {
    let owned = spis(&[]);
    // Two clusters of 4; the cell has 0.1, 0.3 and 1.2.
    let mpidrs = [0x001u64, 0x003, 0x102];
    let cell_cpus: Vec<CpuId> = mpidrs
        .iter()
        .enumerate()
        .map(|(i, &m)| cpu(i as u32, m))
        .collect();
    let view = CellView {
        spis: &owned,
        cpus: &cell_cpus,
        current: cell_cpus[0],
    };
    let mut rng = Rng(7);
    let mut sent = 0;
    for _ in 0..50_000 {
        // Mostly small affinities so that some requests hit the cell.
        // Random fields, with the affinities mostly small so that some
        // requests name the cell's CPUs: TargetList, Aff1 (0..1 or any),
        // INTID, Aff2 and Aff3 (mostly 0), IRM, RS (0..1 or any).
        let small = |rng: &mut Rng, max: u64| {
            if rng.below(8) == 0 {
                rng.below(256)
            } else {
                rng.below(max)
            }
        };
        let v = rng.below(1 << 16)
            | small(&mut rng, 2) << 16
            | rng.below(16) << 24
            | small(&mut rng, 1) << 32
            | rng.below(2) << 40
            | (small(&mut rng, 2) & 0xf) << 44
            | small(&mut rng, 1) << 48;
        let outs = filter_sgi1r(&view, v);
        sent += outs.len();
        for out in outs {
            assert_eq!(out & (1 << 40), 0, "IRM left set: {out:#x}");
            assert_eq!((out >> 24) & 0xf, (v >> 24) & 0xf, "INTID changed");
            let aff =
                ((out >> 48) & 0xff) << 32 | ((out >> 32) & 0xff) << 16 | ((out >> 16) & 0xff) << 8;
            let rs = (out >> 44) & 0xf;
            for bit in 0..16 {
                if out & (1 << bit) != 0 {
                    let target = aff | (rs * 16 + bit);
                    assert!(
                        mpidrs.contains(&target),
                        "{v:#x} -> {out:#x} reaches {target:#x}"
                    );
                }
            }
        }
        let v2 = rng.next() as u32;
        if let Some(out) = filter_sgir_v2(&view, v2) {
            assert_eq!((out >> 24) & 3, 0);
            assert_eq!((out >> 16) & 0xff & !u32::from(view.v2_mask()), 0);
            assert_ne!((out >> 16) & 0xff, 0);
        }
    }
    assert!(sent > 1000, "only {sent} SGIs passed the filter");
}
