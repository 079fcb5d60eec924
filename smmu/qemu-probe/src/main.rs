//! Drives the smmu crate on QEMU's SMMUv3 (0x0905_0000) with QEMU's `edu`
//! PCI device as the DMA master, MMU off, everything identity mapped:
//! translated DMA arrives, DMA outside the stage-2 map faults and is
//! reported, an aborting stream moves nothing and reports nothing, a
//! stream beyond the stream table is reported as C_BAD_STREAMID, a
//! disabled SMMU aborts everything. Prints
//! `smmu-probe: PASS` or `smmu-probe: FAIL`, then powers off (PSCI).

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt::Write;
use core::ptr::{read_volatile, write_bytes, write_volatile};

use smmu::{Direction, DmaMemory, EventKind, Mmio, S2Config, Smmu, SmmuRegs};

core::arch::global_asm!(
    ".section .text.entry",
    ".global _start",
    "_start:",
    "ldr x1, =__stack_top",
    "mov sp, x1",
    "bl main",
    "1: wfe",
    "b 1b",
);

const UART: usize = 0x0900_0000;
const SMMU: usize = 0x0905_0000;
/// QEMU virt's high PCIe ECAM.
const ECAM: u64 = 0x40_1000_0000;
/// BAR0 of the edu devices, in the 32-bit PCIe MMIO window.
const BARS: [u64; 2] = [0x1000_0000, 0x1010_0000];
/// Stream IDs: PCI requester IDs of 00:02.0 and 00:04.0.
const SIDS: [u32; 2] = [0x10, 0x20];
/// Free RAM the probe uses (its image sits at 0x4008_0000).
const DMA_POOL: u64 = 0x4400_0000;
const S2_ROOT: u64 = 0x4500_0000;
const SRC: u64 = 0x4600_0000;
const DST: u64 = 0x4600_1000;
/// arch-aarch64's VTCR_EL2 for a 48-bit PA CPU: 39-bit IPA, level-1
/// root, 4 KiB, WB-WA inner shareable, PS = 48 bits (the driver clamps
/// it to the SMMU's 44).
const VTCR: u64 = (1 << 31) | (5 << 16) | (3 << 12) | (1 << 10) | (1 << 8) | (1 << 6) | 25;

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: QEMU virt's PL011 data register; the MMU is off, so
            // the access is a device access.
            unsafe { write_volatile(UART as *mut u32, u32::from(b)) };
        }
        Ok(())
    }
}

macro_rules! say {
    ($($t:tt)*) => {{ let _ = writeln!(Uart, $($t)*); }};
}

fn power_off() -> ! {
    // SAFETY: PSCI SYSTEM_OFF through QEMU's SMC conduit; does not return.
    unsafe { core::arch::asm!("smc #0", in("x0") 0x8400_0008u64, options(noreturn)) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!("smmu-probe: FAIL: {info}");
    power_off()
}

/// Bump allocator over free RAM (identity mapped: virt = phys).
struct Bump(u64);

// SAFETY: hands out disjoint, zeroed, aligned blocks of RAM nothing else
// uses, never reclaimed; QEMU's SMMU model is coherent with the CPU.
unsafe impl DmaMemory for Bump {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<(*mut u8, u64)> {
        let addr = self.0.next_multiple_of(align as u64);
        self.0 = addr + size as u64;
        // SAFETY: RAM between DMA_POOL and S2_ROOT is the pool's alone.
        unsafe { write_bytes(addr as *mut u8, 0, size) };
        Some((addr as *mut u8, addr))
    }
}

fn read64(addr: u64) -> u64 {
    // SAFETY: callers pass RAM or device registers of this probe.
    unsafe { read_volatile(addr as *const u64) }
}

fn write64(addr: u64, value: u64) {
    // SAFETY: as in `read64`.
    unsafe { write_volatile(addr as *mut u64, value) }
}

/// Sets up edu device `n` (00:02.0 or 00:04.0): BAR0, memory space, bus
/// master. Returns its vendor/device ID.
fn edu_setup(n: usize) -> u32 {
    let cfg = ECAM + ((SIDS[n] as u64) << 12);
    // SAFETY: the device's ECAM configuration space.
    unsafe {
        write_volatile((cfg + 0x10) as *mut u32, BARS[n] as u32);
        write_volatile((cfg + 0x04) as *mut u32, 0x6);
        read_volatile(cfg as *const u32)
    }
}

/// One edu DMA of `len` bytes between its buffer and `addr` (a bus
/// address, i.e. an IPA once the SMMU translates).
fn dma(n: usize, addr: u64, to_ram: bool, len: u64) {
    let bar = BARS[n];
    let (src, dst) = if to_ram {
        (0x40000, addr)
    } else {
        (addr, 0x40000)
    };
    write64(bar + 0x80, src);
    write64(bar + 0x88, dst);
    write64(bar + 0x90, len);
    write64(bar + 0x98, 1 | if to_ram { 2 } else { 0 });
    while read64(bar + 0x98) & 1 != 0 {}
}

fn pattern(i: u64) -> u64 {
    0x5a5a_0000_0000_0000 | i
}

fn arrived(at: u64) -> bool {
    (0..64).all(|i| read64(at + i * 8) == pattern(i))
}

fn check(ok: &mut bool, what: &str, cond: bool) {
    say!("  {}: {what}", if cond { "ok" } else { "FAILED" });
    *ok &= cond;
}

/// Drains the event queue: (count, first event).
fn events(smmu: &mut Smmu<Mmio>) -> (usize, Option<smmu::Event>) {
    let mut n = 0;
    let mut first = None;
    let mut events = smmu.poll_events();
    for e in &mut events {
        if n < 2 {
            say!("  event: {e}");
        }
        first.get_or_insert(e);
        n += 1;
    }
    if events.overflowed() {
        say!("  (event queue overflowed)");
    }
    if n > 2 {
        say!("  ... {n} events");
    }
    (n, first)
}

fn map(smmu: &mut Smmu<Mmio>, sid: u32) {
    let cfg = S2Config {
        root_pa: S2_ROOT,
        vmid: 1,
        vtcr: VTCR,
    };
    if let Err(e) = smmu.set_stream(sid, Some(cfg)) {
        panic!("set_stream: {e}");
    }
}

#[no_mangle]
extern "C" fn main() -> ! {
    // SAFETY: QEMU virt's SMMUv3 register window; with the MMU off every
    // access to it is a device access.
    let mut regs = unsafe { Mmio::new(SMMU) };
    say!(
        "SMMU_IDR0 {:#010x} IDR1 {:#010x} IDR5 {:#010x}",
        regs.read32(smmu::Reg32::Idr0),
        regs.read32(smmu::Reg32::Idr1),
        regs.read32(smmu::Reg32::Idr5)
    );
    let mut smmu = match Smmu::new(regs) {
        Ok(s) => s,
        Err(e) => panic!("probe: {e}"),
    };
    say!("{:?}", smmu.info());
    let mut ok = true;
    let mut pool = Bump(DMA_POOL);
    // Streams 0..=0x1f: the second edu (0x20) is beyond the table.
    if let Err(e) = smmu.init(&mut pool, 0x1f) {
        panic!("init: {e}");
    }
    say!("init: {} stream table entries", smmu.streams());
    for n in 0..2 {
        let id = edu_setup(n);
        check(&mut ok, "edu device present", id == 0x11e8_1234);
    }
    // Stage 2 of "VMID 1": IPA 1-2 GiB -> PA 1-2 GiB, normal WB, RW
    // (level-1 block: AF, SH = inner, S2AP = RW, MemAttr = 0b1111).
    for i in 0..512 {
        write64(S2_ROOT + i * 8, 0);
    }
    write64(S2_ROOT + 8, 0x4000_0000 | 0x7fd);
    for i in 0..64 {
        write64(SRC + i * 8, pattern(i));
    }

    say!("1. stream 0x10 translated by VMID 1: RAM -> edu -> RAM");
    map(&mut smmu, SIDS[0]);
    dma(0, SRC, false, 512);
    dma(0, DST, true, 512);
    check(&mut ok, "data arrived", arrived(DST));
    check(&mut ok, "no events", events(&mut smmu).0 == 0);

    say!("2. DMA write to IPA 0x90000000 (not mapped)");
    dma(0, 0x9000_0000, true, 64);
    let (n, e) = events(&mut smmu);
    let e = e.unwrap_or(smmu::Event::decode([0; 4]));
    check(
        &mut ok,
        "F_TRANSLATION reported",
        n > 0 && e.kind == EventKind::Translation,
    );
    check(
        &mut ok,
        "stream 0x10, write, address 0x90000000, stage 2",
        e.stream == 0x10
            && e.direction == Some(Direction::Write)
            && e.addr == Some(0x9000_0000)
            && e.stage2,
    );

    say!("3. DMA read from IPA 0x1000 (not mapped)");
    dma(0, 0x1000, false, 4);
    let (_, e) = events(&mut smmu);
    check(
        &mut ok,
        "F_TRANSLATION, read, 0x1000",
        e.is_some_and(|e| e.direction == Some(Direction::Read) && e.addr == Some(0x1000)),
    );
    // The failed read may have clobbered the edu buffer: reload it.
    dma(0, SRC, false, 512);

    say!("4. stream 0x10 aborting again (cell destroyed)");
    if let Err(e) = smmu.set_stream(SIDS[0], None) {
        panic!("set_stream(None): {e}");
    }
    if let Err(e) = smmu.invalidate_vmid(1) {
        panic!("invalidate_vmid: {e}");
    }
    for i in 0..64 {
        write64(DST + i * 8, 0);
    }
    dma(0, DST, true, 512);
    check(
        &mut ok,
        "nothing written",
        (0..64).all(|i| read64(DST + i * 8) == 0),
    );
    check(&mut ok, "abort is silent", events(&mut smmu).0 == 0);

    say!("5. stream 0x10 restored (cell re-created)");
    map(&mut smmu, SIDS[0]);
    dma(0, DST, true, 512);
    check(&mut ok, "data arrived", arrived(DST));

    say!("6. stream 0x20, beyond the stream table");
    for i in 0..64 {
        write64(DST + i * 8, 0);
    }
    dma(1, DST, true, 512);
    check(
        &mut ok,
        "nothing written",
        (0..64).all(|i| read64(DST + i * 8) == 0),
    );
    let (_, e) = events(&mut smmu);
    check(
        &mut ok,
        "C_BAD_STREAMID for stream 0x20",
        e.is_some_and(|e| e.kind == EventKind::BadStreamId && e.stream == 0x20),
    );
    check(
        &mut ok,
        "beyond the table: set_stream refused",
        smmu.set_stream(0x20, None).is_err(),
    );

    say!("7. wired interrupts on and off");
    check(
        &mut ok,
        "IRQ_CTRLACK follows",
        smmu.set_irqs(true, true).is_ok() && smmu.set_irqs(false, false).is_ok(),
    );

    let gerror = smmu.gerror();
    if let Some(g) = gerror {
        say!("  {g}");
    }
    check(&mut ok, "no global error", gerror.is_none());

    say!("8. SMMU disabled (GBPA.ABORT): stream 0x10's DMA aborts");
    if let Err(e) = smmu.disable(false) {
        panic!("disable: {e}");
    }
    for i in 0..64 {
        write64(DST + i * 8, 0);
    }
    dma(0, DST, true, 512);
    check(
        &mut ok,
        "nothing written",
        (0..64).all(|i| read64(DST + i * 8) == 0),
    );
    say!("smmu-probe: {}", if ok { "PASS" } else { "FAIL" });
    power_off()
}
