//! The hypervisor's own distributor and redistributor set-up.

mod common;

use common::{cpu, FakeRegs};
use gic::{
    init_distributor_on, init_private_on, redistributor_wake_on, route_spi_on, set_spi_pending_on,
    GicVersion, WakeTimeout, DEFAULT_PRIORITY, MAINTENANCE_INTID,
};

#[test]
fn v3_distributor_init() {
    let mut hw = FakeRegs::new();
    hw.set(0x4, 4, 2); // ITLinesNumber 2: INTIDs 0..95
    init_distributor_on(GicVersion::V3, &mut hw).unwrap();
    // Disabled first, enabled last with affinity routing and Group 1.
    assert_eq!(hw.writes.first(), Some(&(0x0, 4, 0)));
    assert_eq!(hw.writes.last(), Some(&(0x0, 4, 0x13)));
    for reg in [0x84u64, 0x88] {
        assert_eq!(hw.get(reg, 4), 0xffff_ffff, "IGROUPR {reg:#x}");
        assert_eq!(hw.get(0x100 + reg, 4), 0xffff_ffff, "ICENABLER {reg:#x}");
    }
    assert_eq!(hw.get(0x8c, 4), 0, "beyond the implemented lines");
    for intid in 32..96u64 {
        assert_eq!(hw.get(0x400 + intid, 1), u64::from(DEFAULT_PRIORITY));
    }
    // Private interrupts are the redistributors' business.
    assert!(hw.writes.iter().all(|&(o, _, _)| o == 0 || o >= 0x84));
    assert_eq!(hw.get(0x400, 4), 0);
}

#[test]
fn v2_distributor_init_without_security_extensions() {
    let mut hw = FakeRegs::new();
    hw.set(0x4, 4, 1); // INTIDs 0..63, no Security Extensions
    hw.set(0x84, 4, 0xffff_ffff);
    init_distributor_on(GicVersion::V2, &mut hw).unwrap();
    assert_eq!(
        hw.get(0x84, 4),
        0,
        "Group 0: the only security state's group"
    );
    assert_eq!(hw.get(0x0, 4), 1);
    assert_eq!(hw.get(0x420, 4), 0xa0a0_a0a0);
    // With Security Extensions, Non-secure code leaves the groups alone.
    let mut hw = FakeRegs::new();
    hw.set(0x4, 4, 1 | (1 << 10));
    hw.set(0x84, 4, 0xffff_ffff);
    init_distributor_on(GicVersion::V2, &mut hw).unwrap();
    assert_eq!(hw.get(0x84, 4), 0xffff_ffff);
}

#[test]
fn distributor_init_times_out_when_rwp_sticks() {
    struct Stuck(FakeRegs);
    impl gic::RegIo for Stuck {
        fn read(&mut self, offset: u64, size: u8) -> u64 {
            if offset == 0 {
                return 1 << 31;
            }
            self.0.read(offset, size)
        }
        fn write(&mut self, offset: u64, size: u8, value: u64) {
            self.0.write(offset, size, value)
        }
    }
    let mut hw = Stuck(FakeRegs::new());
    assert_eq!(
        init_distributor_on(GicVersion::V3, &mut hw),
        Err(WakeTimeout("GICD_CTLR.RWP"))
    );
    assert_eq!(
        WakeTimeout("GICD_CTLR.RWP").to_string(),
        "GIC: timed out waiting for GICD_CTLR.RWP"
    );
}

#[test]
fn route_spi_both_versions() {
    let mut hw = FakeRegs::new();
    route_spi_on(GicVersion::V3, &mut hw, 40, cpu(5, (1 << 32) | 0x0102));
    assert_eq!(hw.writes, [(0x6000 + 8 * 40, 8, (1 << 32) | 0x0102)]);
    let mut hw = FakeRegs::new();
    route_spi_on(GicVersion::V2, &mut hw, 40, cpu(3, 3));
    assert_eq!(hw.writes, [(0x800 + 40, 1, 0x08)]);
    // Not an SPI: nothing.
    route_spi_on(GicVersion::V2, &mut hw, 27, cpu(3, 3));
    route_spi_on(GicVersion::V3, &mut hw, 1020, cpu(3, 3));
    assert_eq!(hw.writes.len(), 1);
}

#[test]
fn set_spi_pending_writes_one_bit() {
    let mut hw = FakeRegs::new();
    set_spi_pending_on(&mut hw, 108);
    set_spi_pending_on(&mut hw, 32);
    // Not SPIs: nothing.
    set_spi_pending_on(&mut hw, 31);
    set_spi_pending_on(&mut hw, 1020);
    assert_eq!(hw.writes, [(0x200 + 12, 4, 1 << 12), (0x204, 4, 1)]);
    assert!(hw.reads.is_empty());
}

#[test]
fn redistributor_wake() {
    let mut hw = FakeRegs::new();
    hw.set(0x14, 4, 0b010); // ProcessorSleep
    redistributor_wake_on(&mut hw).unwrap();
    assert_eq!(hw.get(0x14, 4), 0);
    // ChildrenAsleep never clears.
    hw.set(0x14, 4, 0b110);
    struct Sleepy(FakeRegs);
    impl gic::RegIo for Sleepy {
        fn read(&mut self, offset: u64, size: u8) -> u64 {
            self.0.get(offset, size) | 0b100
        }
        fn write(&mut self, offset: u64, size: u8, value: u64) {
            self.0.set(offset, size, value)
        }
    }
    assert_eq!(
        redistributor_wake_on(&mut Sleepy(hw)),
        Err(WakeTimeout("GICR_WAKER.ChildrenAsleep"))
    );
}

#[test]
fn private_interrupts_init() {
    let maint = 1u64 << MAINTENANCE_INTID;
    let mut hw = FakeRegs::new();
    init_private_on(GicVersion::V3, &mut hw);
    let sgi = 0x1_0000;
    assert_eq!(hw.get(sgi + 0x80, 4), 0xffff_ffff);
    assert_eq!(hw.get(sgi + 0x100, 4), 0xffff | maint);
    assert_eq!(hw.get(sgi + 0x180, 4), 0xffff_0000 & !maint);
    assert_eq!(hw.get(sgi + 0x41c, 4), 0xa0a0_a0a0);
    let mut hw = FakeRegs::new();
    init_private_on(GicVersion::V2, &mut hw);
    assert_eq!(hw.get(0x100, 4), 0xffff | maint);
    assert_eq!(hw.get(0x41c, 4), 0xa0a0_a0a0);
}
