//! Driver tests against the fake SMMU and fake DMA memory.

use std::format;
use std::string::ToString;
use std::vec::Vec;

use crate::cmdq::{CmdErrorKind, CmdQueue, Command, CommandError};
use crate::driver::{probe, stream_table_log2, Smmu, SmmuError, Structure, Wait};
use crate::evtq::{Direction, EventKind};
use crate::fake::{FakeMem, FakeSmmu, PHYS_BASE, QEMU_IDR0, QEMU_IDR1, QEMU_IDR5};
use crate::regs::{Reg32, Reg64, SmmuRegs};
use crate::ste::{S2Config, Ste};

/// arch-aarch64's `stage2::vtcr(4)`: 39-bit IPA, level-1 root, 4 KiB,
/// WB-WA inner shareable walks, PS = 44 bits.
const VTCR: u64 = (1 << 31) | (4 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 25;

fn cell(vmid: u16, root_pa: u64) -> S2Config {
    S2Config {
        root_pa,
        vmid,
        vtcr: VTCR,
    }
}

fn up(max_sid: u32) -> (FakeMem, Smmu<FakeSmmu>) {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    smmu.init(&mut mem, max_sid).unwrap();
    smmu.regs_mut().commands.clear();
    smmu.regs_mut().ste_seen.clear();
    smmu.regs_mut().writes.clear();
    (mem, smmu)
}

fn opcodes(fake: &FakeSmmu) -> Vec<u8> {
    fake.commands.iter().map(Command::opcode).collect()
}

#[test]
fn qemu_id_values_decode_field_by_field() {
    assert_eq!(
        QEMU_IDR0,
        1 | 2
            | (2 << 2)
            | (1 << 4)
            | (1 << 12)
            | (1 << 18)
            | (2 << 21)
            | (1 << 24)
            | (1 << 26)
            | (1 << 27)
    );
    assert_eq!(QEMU_IDR1, 16 | (19 << 16) | (19 << 21));
    assert_eq!(QEMU_IDR5, 4 | (1 << 4) | (1 << 5) | (1 << 6));
    // A stage-2-only SMMU (S1P = 0) is just as good.
    let info = probe(&mut FakeSmmu::with_ids(
        QEMU_IDR0 & !2,
        QEMU_IDR1,
        QEMU_IDR5,
    ))
    .unwrap();
    assert!(!info.stage1);
}

#[test]
fn probe_reads_qemus_smmu() {
    let info = probe(&mut FakeSmmu::qemu()).unwrap();
    assert!(info.stage1);
    assert!(info.two_level);
    assert_eq!(info.vmid_bits, 16);
    assert_eq!(info.sid_bits, 16);
    assert_eq!((info.cmdq_log2, info.evtq_log2), (19, 19));
    assert_eq!((info.oas, info.oas_bits), (4, 44));
    assert!(info.gran4k && info.gran16k && info.gran64k);
}

#[test]
fn probe_refuses_what_cellblock_cannot_use() {
    let cases: [(u32, u32, u32, SmmuError, &str); 6] = [
        (
            QEMU_IDR0 & !1,
            QEMU_IDR1,
            QEMU_IDR5,
            SmmuError::NoStage2,
            "SMMU_IDR0.S2P = 0: the SMMU has no stage-2 translation",
        ),
        (
            (QEMU_IDR0 & !(3 << 2)) | (1 << 2),
            QEMU_IDR1,
            QEMU_IDR5,
            SmmuError::NoAArch64Tables { ttf: 1 },
            "SMMU_IDR0.TTF = 0b1: the SMMU cannot walk AArch64 translation tables",
        ),
        (
            QEMU_IDR0 & !(1 << 4),
            QEMU_IDR1,
            QEMU_IDR5,
            SmmuError::NotCoherent,
            "SMMU_IDR0.COHACC = 0: the SMMU's table and queue accesses are not coherent",
        ),
        (
            (QEMU_IDR0 & !(3 << 24)) | (2 << 24),
            QEMU_IDR1,
            QEMU_IDR5,
            SmmuError::StallForced,
            "SMMU_IDR0.STALL_MODEL = 0b10",
        ),
        (
            QEMU_IDR0,
            QEMU_IDR1 | (1 << 30),
            QEMU_IDR5,
            SmmuError::Preset,
            "TABLES_PRESET",
        ),
        (
            QEMU_IDR0,
            QEMU_IDR1,
            QEMU_IDR5 | 7,
            SmmuError::UnknownOas { oas: 7 },
            "SMMU_IDR5.OAS = 0b111 is reserved",
        ),
    ];
    for (idr0, idr1, idr5, err, msg) in cases {
        let got = probe(&mut FakeSmmu::with_ids(idr0, idr1, idr5)).unwrap_err();
        assert_eq!(got, err);
        assert!(got.to_string().contains(msg), "{got}");
    }
    // Big-endian-only table walks.
    let idr0 = QEMU_IDR0 | (3 << 21);
    assert_eq!(
        probe(&mut FakeSmmu::with_ids(idr0, QEMU_IDR1, QEMU_IDR5)).unwrap_err(),
        SmmuError::BigEndianTables
    );
}

#[test]
fn probe_clamps_out_of_range_id_fields() {
    // SIDSIZE = 63, CMDQS = EVENTQS = 31: reserved values, no panic.
    let info = probe(&mut FakeSmmu::with_ids(
        QEMU_IDR0,
        0x3ff_ffff & !(0x1f << 6) | 63,
        QEMU_IDR5,
    ))
    .unwrap();
    assert_eq!(info.sid_bits, 32);
    assert_eq!((info.cmdq_log2, info.evtq_log2), (19, 19));
    // No VMID16: 8-bit VMIDs.
    let info = probe(&mut FakeSmmu::with_ids(
        QEMU_IDR0 & !(1 << 18),
        QEMU_IDR1,
        QEMU_IDR5,
    ))
    .unwrap();
    assert_eq!(info.vmid_bits, 8);
}

#[test]
fn stream_table_sizes() {
    for (max_sid, sid_bits, log2) in [
        (0, 16, 1),
        (1, 16, 1),
        (2, 16, 2),
        (3, 16, 2),
        (8, 16, 4),
        (0xff, 16, 8),
        (0x100, 16, 9),
        (0xffff, 16, 16),
        (u32::MAX, 32, 32),
        (0, 0, 0),
    ] {
        assert_eq!(
            stream_table_log2(max_sid, sid_bits),
            Ok(log2),
            "{max_sid:#x}"
        );
    }
    for (max_sid, sid_bits) in [(0x1_0000, 16), (1, 0), (u32::MAX, 31)] {
        let err = stream_table_log2(max_sid, sid_bits).unwrap_err();
        assert_eq!(
            err,
            SmmuError::StreamIdTooLarge {
                sid: max_sid,
                sid_bits
            }
        );
    }
    assert_eq!(
        stream_table_log2(0x1_0000, 16).unwrap_err().to_string(),
        "stream ID 0x10000 needs more than the SMMU's 16 stream ID bits (SMMU_IDR1.SIDSIZE)"
    );
}

#[test]
fn init_programs_the_smmu_in_order() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    smmu.init(&mut mem, 0x8).unwrap();
    assert_eq!(smmu.streams(), 16);
    let fake = smmu.regs();

    // Abort while off, then the attributes: inner-shareable write-back
    // tables and queues; invalid stream IDs recorded, private TLBs.
    assert_eq!(fake.gbpa & (1 << 20), 1 << 20);
    assert_eq!(fake.gbpa & 0xffff, 0x1000, "other GBPA fields kept");
    assert_eq!(fake.cr1, 0xd75);
    assert_eq!(fake.cr2, 0b110);
    assert_eq!(fake.irq_ctrl, 0);
    // Linear table of 2^4 entries, read-allocate.
    assert_eq!(fake.strtab_cfg, 4);
    assert_eq!(fake.strtab_base >> 62, 1);
    let strtab_pa = fake.strtab_base & 0x000f_ffff_ffff_ffc0;
    assert_eq!(strtab_pa % (16 * 64), 0);
    assert!(strtab_pa >= PHYS_BASE);
    // Queues: 2^8 commands, 2^7 events, at their size's alignment.
    assert_eq!(fake.cmdq_base & 0x1f, 8);
    assert_eq!(fake.cmdq_base >> 62, 1);
    assert_eq!((fake.cmdq_base & 0x000f_ffff_ffff_ffe0) % 4096, 0);
    assert_eq!(fake.evtq_base & 0x1f, 7);
    assert_eq!(fake.evtq_base >> 62, 1, "write-allocate");
    assert_eq!((fake.evtq_base & 0x000f_ffff_ffff_ffe0) % 4096, 0);
    // CMDQEN | EVENTQEN | SMMUEN.
    assert_eq!(fake.cr0, 0xd);
    assert_eq!(fake.cr0ack, 0xd);
    // Cached configuration and TLBs invalidated, then synchronised.
    assert_eq!(
        fake.commands,
        [
            Command::cfgi_all(),
            Command::tlbi_nsnh_all(),
            Command::sync()
        ]
    );

    // Order of the register writes.
    let offs = fake.write_offsets();
    let pos = |off: usize| offs.iter().position(|o| *o == off).unwrap();
    let cr0_writes: Vec<u64> = fake
        .writes
        .iter()
        .filter(|(o, _)| *o == Reg32::Cr0.offset())
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(cr0_writes, [0, 0x8, 0xc, 0xd]);
    assert!(pos(Reg32::Gbpa.offset()) < pos(Reg32::Cr0.offset()));
    for reg in [Reg64::StrtabBase, Reg64::CmdqBase, Reg64::EvtqBase] {
        assert!(
            pos(reg.offset())
                < offs
                    .iter()
                    .rposition(|o| *o == Reg32::Cr0.offset())
                    .unwrap()
        );
    }
    let first_prod = pos(Reg32::CmdqProd.offset());
    assert_eq!(fake.writes[first_prod].1, 0, "PROD reset before CMDQEN");

    // Every entry aborts.
    for sid in 0..16 {
        assert_eq!(smmu.stream(sid), Some(Ste::abort()));
    }
    assert_eq!(smmu.stream(16), None);
}

#[test]
fn init_refuses_stream_ids_beyond_sidsize_before_touching_the_smmu() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    let err = smmu.init(&mut mem, 0x1_0000).unwrap_err();
    assert_eq!(
        err,
        SmmuError::StreamIdTooLarge {
            sid: 0x1_0000,
            sid_bits: 16
        }
    );
    assert!(smmu.regs().writes.is_empty());
    assert_eq!(smmu.streams(), 0);
}

#[test]
fn init_times_out_when_cr0ack_does_not_follow() {
    let mut mem = FakeMem::default();
    let mut fake = FakeSmmu::qemu();
    fake.ack_cr0 = false;
    fake.cr0ack = 0x1; // firmware left SMMUEN on and the SMMU is wedged
    let mut smmu = Smmu::new(fake).unwrap();
    smmu.set_poll_limit(100);
    let err = smmu.init(&mut mem, 8).unwrap_err();
    assert_eq!(err, SmmuError::Timeout(Wait::Cr0Ack));
    assert_eq!(
        err.to_string(),
        "SMMU time-out: SMMU_CR0ACK did not follow SMMU_CR0"
    );
    // GBPA.ABORT was set first: with SMMUEN off, DMA aborts.
    assert_ne!(smmu.regs().gbpa & (1 << 20), 0);
    assert_eq!(smmu.set_stream(0, None), Err(SmmuError::NotInitialized));
}

#[test]
fn init_times_out_on_a_stuck_gbpa_update() {
    let mut mem = FakeMem::default();
    let mut fake = FakeSmmu::qemu();
    fake.gbpa_updates = false;
    let mut smmu = Smmu::new(fake).unwrap();
    smmu.set_poll_limit(10);
    assert_eq!(smmu.init(&mut mem, 8), Err(SmmuError::Timeout(Wait::Gbpa)));
}

#[test]
fn init_reports_memory_problems() {
    let mut mem = FakeMem {
        budget: Some(1),
        ..FakeMem::default()
    };
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    let err = smmu.init(&mut mem, 8).unwrap_err();
    assert_eq!(
        err,
        SmmuError::OutOfMemory {
            what: Structure::CommandQueue,
            size: 4096
        }
    );
    assert_eq!(
        err.to_string(),
        "no memory for the SMMU command queue (0x1000 bytes)"
    );
    assert_eq!(smmu.regs().cr0 & 1, 0, "SMMU left off");

    let mut mem = FakeMem {
        phys_skew: 0x20,
        ..FakeMem::default()
    };
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    assert!(matches!(
        smmu.init(&mut mem, 8),
        Err(SmmuError::BadDmaMemory {
            what: Structure::StreamTable,
            ..
        })
    ));
}

#[test]
fn init_twice_is_refused() {
    let (mut mem, mut smmu) = up(8);
    assert_eq!(smmu.init(&mut mem, 8), Err(SmmuError::AlreadyInitialized));
}

#[test]
fn enabling_a_stream_writes_v_last() {
    let (_mem, mut smmu) = up(0xff);
    smmu.set_stream(0x8, Some(cell(2, 0x4012_3000))).unwrap();
    let expected = Ste::stage2(&cell(2, 0x4012_3000), 4);
    assert_eq!(smmu.stream(0x8), Some(expected));
    let fake = smmu.regs();
    assert_eq!(
        fake.commands,
        [
            Command::cfgi_ste(8),
            Command::sync(),
            Command::cfgi_ste(8),
            Command::sync()
        ]
    );
    // At the first invalidation the SMMU could see words 1-7 but word 0
    // still said abort; at the second, the whole entry.
    let (sid, first) = fake.ste_seen[0];
    assert_eq!(sid, 8);
    assert_eq!(first.0[0], Ste::abort().0[0]);
    assert_eq!(first.0[1..], expected.0[1..]);
    assert_eq!(fake.ste_seen[1], (8, expected));
    // Neighbours untouched.
    assert_eq!(smmu.stream(7), Some(Ste::abort()));
    assert_eq!(smmu.stream(9), Some(Ste::abort()));
}

#[test]
fn moving_a_stream_between_cells_aborts_it_first() {
    let (_mem, mut smmu) = up(0xff);
    let root = cell(1, 0x4010_0000);
    let other = cell(3, 0x4030_0000);
    smmu.set_stream(0x10, Some(root)).unwrap();
    smmu.regs_mut().ste_seen.clear();
    smmu.regs_mut().commands.clear();
    smmu.set_stream(0x10, Some(other)).unwrap();
    let old = Ste::stage2(&root, 4);
    let new = Ste::stage2(&other, 4);
    let seen: Vec<Ste> = smmu.regs().ste_seen.iter().map(|(_, s)| *s).collect();
    // 1: aborting, old words behind it; 2: aborting, new words; 3: new.
    assert_eq!(seen.len(), 3);
    assert!(seen[0].is_abort());
    assert_eq!(seen[0].0[1..], old.0[1..]);
    assert!(seen[1].is_abort());
    assert_eq!(seen[1].0[1..], new.0[1..]);
    assert_eq!(seen[2], new);
    assert_eq!(smmu.stream(0x10).unwrap().vmid(), Some(3));
    assert_eq!(opcodes(smmu.regs()), [3, 0x46, 3, 0x46, 3, 0x46]);
}

#[test]
fn clearing_a_stream_aborts_it() {
    let (_mem, mut smmu) = up(0xff);
    smmu.set_stream(0x20, Some(cell(2, 0x4200_0000))).unwrap();
    smmu.regs_mut().commands.clear();
    smmu.regs_mut().ste_seen.clear();
    smmu.set_stream(0x20, None).unwrap();
    assert_eq!(smmu.stream(0x20), Some(Ste::abort()));
    let fake = smmu.regs();
    assert_eq!(fake.commands, [Command::cfgi_ste(0x20), Command::sync()]);
    // Word 0 was already abort when the SMMU was told.
    assert!(fake.ste_seen[0].1.is_abort());
    // An aborting stream cleared again: no invalidation needed, none done.
    smmu.regs_mut().commands.clear();
    smmu.set_stream(0x20, None).unwrap();
    assert!(smmu.regs().commands.is_empty());
}

#[test]
fn unowned_streams_fault_and_are_recorded_with_init_reporting() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    let nobody = cell(33, 0x4300_0000);
    smmu.init_reporting(&mut mem, 0xff, Some(nobody)).unwrap();
    // Every entry starts as a stage 2 of VMID 33 that records its faults.
    for sid in [0, 0x20, 0xff] {
        let ste = smmu.stream(sid).unwrap();
        assert_eq!(ste.vmid(), Some(33), "stream {sid:#x}");
        assert_eq!(ste, Ste::stage2(&nobody, 4), "stream {sid:#x}");
    }
    // A cell's stream, taken away again, goes back to that entry.
    smmu.set_stream(0x20, Some(cell(2, 0x4200_0000))).unwrap();
    assert_eq!(smmu.stream(0x20).unwrap().vmid(), Some(2));
    smmu.regs_mut().commands.clear();
    smmu.set_stream(0x20, None).unwrap();
    assert_eq!(smmu.stream(0x20).unwrap().vmid(), Some(33));
    // Abort first, then the words, then V: as for any translating entry.
    let fake = smmu.regs();
    assert_eq!(fake.commands.len(), 6);
    // A config the SMMU cannot use is refused before anything is touched.
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    let bad = S2Config {
        vtcr: VTCR | (3 << 14),
        ..nobody
    };
    let e = smmu
        .init_reporting(&mut FakeMem::default(), 0xff, Some(bad))
        .unwrap_err();
    assert!(matches!(e, SmmuError::GranuleUnsupported { .. }), "{e:?}");
    assert!(smmu.stream(0).is_none());
    assert!(smmu.regs().writes.is_empty());
}

#[test]
fn output_size_is_clamped_to_the_smmus() {
    let (_mem, mut smmu) = up(8);
    // A CPU with a 48-bit PA range (PS = 5); QEMU's SMMU has 44 bits.
    let cfg = S2Config {
        root_pa: 0x4000_0000,
        vmid: 1,
        vtcr: (VTCR & !(7 << 16)) | (5 << 16),
    };
    smmu.set_stream(1, Some(cfg)).unwrap();
    assert_eq!((smmu.stream(1).unwrap().0[2] >> 48) & 7, 4);
}

#[test]
fn set_stream_refusals() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    assert_eq!(
        smmu.set_stream(0, Some(cell(1, 0x4000_0000))),
        Err(SmmuError::NotInitialized)
    );
    assert_eq!(smmu.invalidate_vmid(1), Err(SmmuError::NotInitialized));
    smmu.init(&mut mem, 0xf).unwrap();

    let err = smmu.set_stream(16, None).unwrap_err();
    assert_eq!(
        err,
        SmmuError::StreamNotInTable {
            sid: 16,
            entries: 16
        }
    );
    assert_eq!(
        err.to_string(),
        "stream ID 0x10 is beyond the stream table (16 entries)"
    );

    let cases = [
        (
            S2Config {
                root_pa: 0x4000_0800,
                ..cell(1, 0)
            },
            SmmuError::RootTable {
                root_pa: 0x4000_0800,
            },
        ),
        (
            S2Config {
                root_pa: 1 << 44,
                ..cell(1, 0)
            },
            SmmuError::RootTable { root_pa: 1 << 44 },
        ),
        (
            // 48-bit IPA space, more than the SMMU's 44-bit output.
            S2Config {
                vtcr: (VTCR & !0x3f) | 16,
                ..cell(1, 0x4000_0000)
            },
            SmmuError::IpaSize {
                ipa_bits: 48,
                oas_bits: 44,
            },
        ),
        (
            // T0SZ = 40: a 24-bit IPA space.
            S2Config {
                vtcr: (VTCR & !0x3f) | 40,
                ..cell(1, 0x4000_0000)
            },
            SmmuError::IpaSize {
                ipa_bits: 24,
                oas_bits: 44,
            },
        ),
        (
            S2Config {
                vtcr: VTCR | (3 << 6),
                ..cell(1, 0x4000_0000)
            },
            SmmuError::StartLevel { sl0: 3 },
        ),
        (
            S2Config {
                vtcr: VTCR | (3 << 14),
                ..cell(1, 0x4000_0000)
            },
            SmmuError::GranuleUnsupported { tg0: 3 },
        ),
    ];
    for (cfg, err) in cases {
        assert_eq!(smmu.set_stream(3, Some(cfg)), Err(err), "{cfg:x?}");
        assert_eq!(smmu.stream(3), Some(Ste::abort()), "{cfg:x?}");
    }
    assert_eq!(
        SmmuError::IpaSize {
            ipa_bits: 48,
            oas_bits: 44
        }
        .to_string(),
        "VTCR_EL2.T0SZ: a 48-bit IPA space is outside 25..=44 bits (SMMU_IDR5.OAS)"
    );

    // 8-bit VMIDs and no 64 KiB granule.
    let mut fake = FakeSmmu::with_ids(QEMU_IDR0 & !(1 << 18), QEMU_IDR1, QEMU_IDR5 & !(1 << 6));
    fake.writes.clear();
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(fake).unwrap();
    smmu.init(&mut mem, 3).unwrap();
    let err = smmu
        .set_stream(1, Some(cell(256, 0x4000_0000)))
        .unwrap_err();
    assert_eq!(
        err,
        SmmuError::VmidTooLarge {
            vmid: 256,
            vmid_bits: 8
        }
    );
    assert_eq!(
        err.to_string(),
        "VMID 256 does not fit the SMMU's 8-bit VMIDs (SMMU_IDR0.VMID16)"
    );
    assert_eq!(
        smmu.invalidate_vmid(300),
        Err(SmmuError::VmidTooLarge {
            vmid: 300,
            vmid_bits: 8
        })
    );
    let cfg = S2Config {
        vtcr: VTCR | (1 << 14),
        ..cell(1, 0x4000_0000)
    };
    assert_eq!(
        smmu.set_stream(1, Some(cfg)),
        Err(SmmuError::GranuleUnsupported { tg0: 1 })
    );
    smmu.set_stream(1, Some(cell(255, 0x4000_0000))).unwrap();
}

#[test]
fn invalidate_vmid_sends_tlbi_s12_vmall_and_sync() {
    let (_mem, mut smmu) = up(8);
    smmu.invalidate_vmid(7).unwrap();
    assert_eq!(
        smmu.regs().commands,
        [Command::tlbi_s12_vmall(7), Command::sync()]
    );
}

#[test]
fn command_queue_wraps() {
    let (_mem, mut smmu) = up(8);
    // 2^8 entries; 3 commands from init, then 2 per call: several laps.
    for vmid in 0..700u16 {
        smmu.invalidate_vmid(vmid).unwrap();
    }
    let fake = smmu.regs();
    assert_eq!(fake.commands.len(), 1400);
    for (i, pair) in fake.commands.chunks(2).enumerate() {
        assert_eq!(pair, [Command::tlbi_s12_vmall(i as u16), Command::sync()]);
    }
    // PROD = 3 + 1400 commands: index 1403 % 256 = 123, wrap flag 1403 / 256 = 5 laps -> set.
    assert_eq!(fake.cmdq_prod, (1 << 8) | 123);
    assert_eq!(fake.cmdq_cons, fake.cmdq_prod);
}

/// An SMMU that consumes one command per read of CONS and none when PROD
/// is written: the driver must wait for room in a small queue.
struct Slow(FakeSmmu);

impl SmmuRegs for Slow {
    fn read32(&mut self, reg: Reg32) -> u32 {
        if reg == Reg32::CmdqCons {
            let log2 = (self.0.cmdq_base & 0x1f) as u32;
            let mask = (2u32 << log2) - 1;
            if self.0.cmdq_cons != self.0.cmdq_prod {
                let prod = self.0.cmdq_prod;
                self.0
                    .write32(Reg32::CmdqProd, (self.0.cmdq_cons + 1) & mask);
                self.0.cmdq_prod = prod;
            }
            return self.0.cmdq_cons;
        }
        self.0.read32(reg)
    }

    fn write32(&mut self, reg: Reg32, value: u32) {
        if reg == Reg32::CmdqProd {
            self.0.writes.push((reg.offset(), u64::from(value)));
            self.0.cmdq_prod = value;
        } else {
            self.0.write32(reg, value);
        }
    }

    fn write64(&mut self, reg: Reg64, value: u64) {
        self.0.write64(reg, value);
    }
}

#[test]
fn a_full_command_queue_is_waited_for() {
    let mut mem = FakeMem::default();
    let (virt, phys) = crate::driver::DmaMemory::alloc_zeroed(&mut mem, 64, 64).unwrap();
    // SAFETY: 64 bytes = 4 commands, aligned, owned by `mem` for the test.
    let mut q = unsafe { CmdQueue::new(virt, phys, 2) };
    let mut regs = Slow(FakeSmmu::qemu());
    regs.write64(Reg64::CmdqBase, q.base_reg());
    regs.0.cr0 = 0x8;
    let cmds: Vec<Command> = (0..10).map(Command::cfgi_ste).collect();
    q.submit(&mut regs, &cmds, 100).unwrap();
    q.sync(&mut regs, 100).unwrap();
    assert_eq!(regs.0.commands[..10], cmds[..]);
    assert_eq!(regs.0.commands[10], Command::sync());
    // PROD was published whenever the queue was full, never beyond CONS + 4.
    let prods: Vec<u64> = regs
        .0
        .writes
        .iter()
        .filter(|(o, _)| *o == Reg32::CmdqProd.offset())
        .map(|(_, v)| *v)
        .collect();
    assert!(prods.contains(&0b100), "{prods:?}");
    assert_eq!(regs.0.cmdq_cons, 11 & 0b111);

    // A queue that never drains: bounded wait.
    let mut stuck = FakeSmmu::qemu();
    stuck.consume = false;
    let mut regs = stuck;
    let (virt, phys) = crate::driver::DmaMemory::alloc_zeroed(&mut mem, 64, 64).unwrap();
    // SAFETY: as above.
    let mut q = unsafe { CmdQueue::new(virt, phys, 2) };
    regs.write64(Reg64::CmdqBase, q.base_reg());
    assert_eq!(
        q.submit(&mut regs, &cmds, 50),
        Err(SmmuError::Timeout(Wait::CmdqSpace))
    );
}

#[test]
fn cmd_sync_times_out_when_the_smmu_stops_consuming() {
    let (_mem, mut smmu) = up(8);
    smmu.set_poll_limit(100);
    smmu.regs_mut().consume = false;
    let err = smmu.invalidate_vmid(1).unwrap_err();
    assert_eq!(err, SmmuError::Timeout(Wait::CmdSync));
    assert_eq!(
        err.to_string(),
        "SMMU time-out: CMD_SYNC not consumed (SMMU_CMDQ_CONS)"
    );
}

#[test]
fn a_refused_command_is_reported_and_the_queue_runs_on() {
    let (_mem, mut smmu) = up(8);
    smmu.regs_mut().refuse = Some(0x28);
    let err = smmu.invalidate_vmid(5).unwrap_err();
    let expected = CommandError {
        kind: CmdErrorKind::Illegal,
        index: 3,
        opcode: 0x28,
    };
    assert_eq!(err, SmmuError::Command(expected));
    assert_eq!(
        err.to_string(),
        "SMMU command error: illegal command (CERROR_ILL) for opcode 0x28 at command queue index 3"
    );
    // Acknowledged: GERRORN matches GERROR again; nothing left for gerror().
    let fake = smmu.regs();
    assert_eq!(fake.gerror, fake.gerrorn);
    assert_eq!(smmu.gerror(), None);
    smmu.regs_mut().refuse = None;
    smmu.invalidate_vmid(6).unwrap();
    // The refused command became a CMD_SYNC; everything after it ran.
    assert_eq!(
        smmu.regs().commands,
        [
            Command::sync(),
            Command::sync(),
            Command::tlbi_s12_vmall(6),
            Command::sync()
        ]
    );
}

#[test]
fn gerror_reports_a_command_error_found_later() {
    let (_mem, mut smmu) = up(8);
    smmu.set_poll_limit(5);
    // The SMMU refuses the TLBI, but only notices once the driver gave up
    // waiting: gerror() then finds and repairs it.
    smmu.regs_mut().refuse = Some(0x28);
    smmu.regs_mut().consume = false;
    assert_eq!(
        smmu.invalidate_vmid(5),
        Err(SmmuError::Timeout(Wait::CmdSync))
    );
    smmu.regs_mut().consume = true;
    let _ = smmu.regs_mut().read32(Reg32::CmdqCons); // the SMMU runs, refuses
    let g = smmu.gerror().unwrap();
    assert_eq!(g.active, 1);
    assert_eq!(g.command.map(|c| c.opcode), Some(0x28));
    assert_eq!(
        g.to_string(),
        "SMMU global error: CMDQ_ERR (command queue error): illegal command (CERROR_ILL) for opcode 0x28 at command queue index 3"
    );
    assert!(!g.is_fatal());
    smmu.regs_mut().refuse = None;
    smmu.invalidate_vmid(6).unwrap();
}

#[test]
fn gerror_acknowledges_by_toggling_gerrorn() {
    let (_mem, mut smmu) = up(8);
    assert_eq!(smmu.gerror(), None);
    // EVENTQ_ABT_ERR and SFM_ERR become active.
    smmu.regs_mut().gerror ^= (1 << 2) | (1 << 8);
    let g = smmu.gerror().unwrap();
    assert_eq!(g.active, (1 << 2) | (1 << 8));
    assert!(g.is_fatal());
    assert_eq!(g.command, None);
    assert_eq!(
        g.to_string(),
        "SMMU global error: EVENTQ_ABT_ERR (event queue write aborted), SFM_ERR (service failure mode: the SMMU stopped translating)"
    );
    assert_eq!(smmu.regs().gerrorn, smmu.regs().gerror);
    assert_eq!(smmu.gerror(), None);
    // Toggled again (the SMMU's next error of that kind): active again.
    smmu.regs_mut().gerror ^= 1 << 2;
    assert_eq!(smmu.gerror().unwrap().active, 1 << 2);
    // Unknown bits are named, not dropped.
    smmu.regs_mut().gerror ^= 1 << 20;
    assert_eq!(
        smmu.gerror().unwrap().to_string(),
        "SMMU global error: unknown bits 0x100000"
    );
}

fn translation_fault(sid: u32, addr: u64, write: bool) -> [u64; 4] {
    let rnw = if write { 0 } else { 1 << 35 };
    [
        (u64::from(sid) << 32) | 0x10,
        rnw | (1 << 39) | (2 << 40),
        addr,
        addr & !0xfff,
    ]
}

#[test]
fn events_are_decoded_and_consumed() {
    let (_mem, mut smmu) = up(0xff);
    assert!(smmu
        .regs_mut()
        .inject(translation_fault(0x8, 0x4220_0040, true)));
    assert!(smmu.regs_mut().inject([(0x99u64 << 32) | 0x02, 0, 0, 0]));
    let mut events = smmu.poll_events();
    let e = events.next().unwrap();
    assert_eq!(e.kind, EventKind::Translation);
    assert_eq!(
        (e.stream, e.addr, e.direction),
        (8, Some(0x4220_0040), Some(Direction::Write))
    );
    assert_eq!(
        e.to_string(),
        "F_TRANSLATION on stream 0x8: DMA write to 0x42200040 (stage 2)"
    );
    let e = events.next().unwrap();
    assert_eq!((e.kind, e.stream), (EventKind::BadStreamId, 0x99));
    assert!(events.next().is_none());
    assert!(!events.overflowed());
    assert_eq!(smmu.regs().evtq_cons, 2);
    assert_eq!(smmu.poll_events().count(), 0);
}

#[test]
fn event_queue_wraps() {
    let (_mem, mut smmu) = up(0xff);
    // 2^7 records; 5 laps in uneven batches.
    let mut next = 0u32;
    let mut seen = 0u32;
    while seen < 640 {
        for _ in 0..(next % 7 + 1) {
            assert!(smmu
                .regs_mut()
                .inject(translation_fault(next, u64::from(next) << 12, false)));
            next += 1;
        }
        for e in smmu.poll_events() {
            assert_eq!(e.stream, seen);
            assert_eq!(e.addr, Some(u64::from(seen) << 12));
            assert_eq!(e.direction, Some(Direction::Read));
            seen += 1;
        }
    }
    assert_eq!(smmu.regs().evtq_cons, smmu.regs().evtq_prod);
}

#[test]
fn event_queue_overflow_is_reported_and_acknowledged() {
    let (_mem, mut smmu) = up(0xff);
    for sid in 0..128 {
        assert!(smmu.regs_mut().inject(translation_fault(sid, 0, true)));
    }
    assert!(!smmu.regs_mut().inject(translation_fault(999, 0, true)));
    let mut events = smmu.poll_events();
    assert!(events.overflowed());
    let streams: Vec<u32> = events.by_ref().map(|e| e.stream).collect();
    assert_eq!(streams, (0..128).collect::<Vec<_>>());
    let fake = smmu.regs();
    // OVACKFLG now matches OVFLG; CONS caught up with PROD.
    assert_eq!(fake.evtq_cons >> 31, 1);
    assert_eq!(fake.evtq_prod >> 31, 1);
    assert_eq!(fake.evtq_cons & 0xff, fake.evtq_prod & 0xff);
    let events = smmu.poll_events();
    assert!(!events.overflowed());
    assert_eq!(events.count(), 0);
}

#[test]
fn garbage_from_the_event_queue_registers_does_not_panic() {
    let (_mem, mut smmu) = up(0xff);
    smmu.regs_mut().evtq_prod = u32::MAX;
    // At most one queue's worth, whatever PROD says.
    let n = smmu.poll_events().count();
    assert!(n <= 128, "{n}");
    // A CONS register full of ones, from an SMMU that stopped: an error.
    smmu.regs_mut().cmdq_cons = u32::MAX;
    smmu.regs_mut().consume = false;
    smmu.set_poll_limit(10);
    assert!(smmu.invalidate_vmid(1).is_err());
}

#[test]
fn before_init_nothing_is_polled() {
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    assert_eq!(smmu.poll_events().count(), 0);
    assert_eq!(smmu.gerror(), None);
    assert_eq!(smmu.stream(0), None);
    assert_eq!(smmu.streams(), 0);
}

#[test]
fn error_messages_name_the_register() {
    for (err, text) in [
        (SmmuError::Timeout(Wait::Gbpa), "SMMU_GBPA.UPDATE"),
        (SmmuError::Timeout(Wait::IrqCtrlAck), "SMMU_IRQ_CTRLACK"),
        (
            SmmuError::Timeout(Wait::CmdqSpace),
            "command queue stayed full",
        ),
        (SmmuError::StartLevel { sl0: 3 }, "VTCR_EL2.SL0 = 0b11"),
        (SmmuError::GranuleUnsupported { tg0: 1 }, "VTCR_EL2.TG0 = 1"),
        (SmmuError::RootTable { root_pa: 0x800 }, "PA 0x800"),
        (SmmuError::NotInitialized, "not initialised"),
        (
            SmmuError::BadDmaMemory {
                what: Structure::EventQueue,
                phys: 0x20,
            },
            "event queue at PA 0x20",
        ),
    ] {
        let s = format!("{err}");
        assert!(s.contains(text), "{s}");
    }
}

#[test]
fn wired_interrupts_on_request() {
    let (_mem, mut smmu) = up(0x10);
    assert_eq!(smmu.regs().irq_ctrl, 0, "polled by default");
    smmu.enable_irqs().unwrap();
    // GERROR_IRQEN (bit 0) and EVENTQ_IRQEN (bit 2), acknowledged.
    assert_eq!(smmu.regs().irq_ctrl, 0b101);
}

#[test]
fn interrupts_are_off_after_init_and_can_be_enabled() {
    let (_mem, mut smmu) = up(8);
    assert_eq!(smmu.regs().irq_ctrl, 0);
    smmu.set_irqs(true, true).unwrap();
    // EVENTQ_IRQEN (bit 2) and GERROR_IRQEN (bit 0).
    assert_eq!(smmu.regs().irq_ctrl, 0b101);
    smmu.set_irqs(false, true).unwrap();
    assert_eq!(smmu.regs().irq_ctrl, 0b001);
    smmu.set_irqs(false, false).unwrap();
    smmu.enable_irqs().unwrap();
    assert_eq!(smmu.regs().irq_ctrl, 0b101);
}

/// An SMMU whose IRQ_CTRLACK never follows IRQ_CTRL.
struct DeafIrq(FakeSmmu);

impl SmmuRegs for DeafIrq {
    fn read32(&mut self, reg: Reg32) -> u32 {
        if reg == Reg32::IrqCtrlAck {
            return 0;
        }
        self.0.read32(reg)
    }
    fn write32(&mut self, reg: Reg32, value: u32) {
        self.0.write32(reg, value);
    }
    fn write64(&mut self, reg: Reg64, value: u64) {
        self.0.write64(reg, value);
    }
}

#[test]
fn irq_ctrlack_time_out() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(DeafIrq(FakeSmmu::qemu())).unwrap();
    smmu.set_poll_limit(10);
    smmu.init(&mut mem, 8).unwrap();
    assert_eq!(
        smmu.set_irqs(true, false),
        Err(SmmuError::Timeout(Wait::IrqCtrlAck))
    );
}

#[test]
fn init_makes_interrupts_wired() {
    let mut mem = FakeMem::default();
    let mut smmu = Smmu::new(FakeSmmu::qemu()).unwrap();
    smmu.init(&mut mem, 8).unwrap();
    let offs = smmu.regs().write_offsets();
    for reg in [Reg64::GErrorIrqCfg0, Reg64::EvtqIrqCfg0] {
        assert!(
            smmu.regs().writes.contains(&(reg.offset(), 0)),
            "{reg:?} not cleared: {offs:x?}"
        );
    }
}

#[test]
fn disable_stops_translation() {
    let (mut mem, mut smmu) = up(8);
    smmu.set_stream(1, Some(cell(1, 0x4000_0000))).unwrap();
    smmu.disable(false).unwrap();
    let fake = smmu.regs();
    assert_eq!(fake.cr0, 0);
    assert_ne!(fake.gbpa & (1 << 20), 0, "DMA aborts");
    assert_eq!(smmu.set_stream(1, None), Err(SmmuError::NotInitialized));
    assert_eq!(smmu.init(&mut mem, 8), Err(SmmuError::AlreadyInitialized));

    let (_mem, mut smmu) = up(8);
    smmu.disable(true).unwrap();
    assert_eq!(smmu.regs().gbpa & (1 << 20), 0, "DMA bypasses");
    assert_eq!(smmu.regs().gbpa & 0x1000, 0x1000, "other GBPA fields kept");
}
