//! edu-dma: a DMA isolation probe with QEMU's `edu` PCI device. It has no
//! UART and talks through the hypervisor's debug console.
//!
//! It finds the device on bus 0 through QEMU `virt`'s ECAM, places BAR0 at
//! the top of the 32-bit PCI window, enables memory decoding and bus
//! mastering, then:
//! 1. copies a 4 KiB pattern from its RAM into the device's buffer and
//!    back into a second page of its RAM, and compares;
//! 2. tells the device to write its buffer to [`FOREIGN`], RAM of another
//!    cell that this cell does not own;
//! 3. the same to [`HYPERVISOR`], the hypervisor's RAM;
//! 4. repeats the round trip of step 1, and waits in WFI.
//!
//! DMA addresses are the cell's own addresses (IPAs): the SMMU translates
//! the device's stream through the cell's stage 2, so steps 2 and 3 must
//! fault in the SMMU and leave the target memory unchanged. Bare (no
//! hypervisor, SMMU disabled) DMA bypasses translation and steps 2 and 3
//! write physical memory that nobody uses there.
//!
//! The targets of steps 2 and 3 are fixed at build time:
//! `EDU_DMA_FOREIGN=0x... EDU_DMA_HYPERVISOR=0x... cargo build ...`.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::cell::UnsafeCell;
use core::ptr::{read_volatile, write_volatile};

use demos::console::{self, Console};
use demos::edu::{self, Direction, Edu, EduError};
use demos::pci::{self, Ecam, QEMU_VIRT_ECAM, QEMU_VIRT_MMIO32};
use demos::{mmu, println, timer};

demos::entry!(main);

/// Parses a build-time address (`0x` hex or decimal); a malformed value
/// fails the build.
const fn build_addr(value: Option<&str>, default: u64) -> u64 {
    let Some(s) = value else {
        return default;
    };
    let b = s.as_bytes();
    let (radix, mut i) = if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        (16, 2)
    } else {
        (10, 0)
    };
    assert!(i < b.len(), "empty address");
    let mut n: u64 = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'_' {
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("address: not a digit"),
        };
        assert!((d as u64) < radix, "address: digit out of range");
        n = match n.checked_mul(radix) {
            Some(v) => match v.checked_add(d as u64) {
                Some(v) => v,
                None => panic!("address: too large"),
            },
            None => panic!("address: too large"),
        };
    }
    n
}

/// Another cell's RAM: gic-demo's (PA 0x7e00_0000 in the QEMU configs),
/// which this cell's stage 2 does not map at that IPA.
const FOREIGN: u64 = build_addr(option_env!("EDU_DMA_FOREIGN"), 0x7e00_0000);
/// The hypervisor's RAM (0x4000_0000 + 1 MiB), not mapped for this cell.
const HYPERVISOR: u64 = build_addr(option_env!("EDU_DMA_HYPERVISOR"), 0x4010_0000);

/// How long a transfer may take: QEMU's edu starts copying 100 ms of
/// virtual time after the command.
const DMA_TIMEOUT_MS: u64 = 1000;
const PAGE: usize = 4096;
const WORDS: usize = PAGE / 8;
/// What the destination page holds before the copy back.
const FILL: u64 = 0x5a5a_5a5a_5a5a_5a5a;

/// A page of RAM a device reads or writes by DMA: only touched through
/// volatile accesses, so the compiler never caches its contents.
#[repr(C, align(4096))]
struct DmaPage(UnsafeCell<[u64; WORDS]>);

// SAFETY: one CPU runs the inmate and no interrupt handler touches the
// pages.
unsafe impl Sync for DmaPage {}

impl DmaPage {
    const fn new() -> Self {
        Self(UnsafeCell::new([0; WORDS]))
    }

    fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    fn read(&self, i: usize) -> u64 {
        assert!(i < WORDS);
        // SAFETY: in bounds of the page; volatile because a device writes
        // it behind the compiler's back.
        unsafe { read_volatile((self.0.get() as *const u64).add(i)) }
    }

    fn write(&self, i: usize, value: u64) {
        assert!(i < WORDS);
        // SAFETY: in bounds of the page; volatile as in `read`.
        unsafe { write_volatile((self.0.get() as *mut u64).add(i), value) }
    }
}

static SOURCE: DmaPage = DmaPage::new();
static DEST: DmaPage = DmaPage::new();

/// Word `i` of the pattern: "edd0" tag, the word index, its complement.
fn pattern(i: usize) -> u64 {
    0xedd0_0000_0000_0000 | (i as u64) << 32 | u64::from(!(i as u32))
}

fn main() -> ! {
    console::set(Console::Hypercall);
    match run() {
        Ok(()) => println!("edu-dma: done"),
        Err(e) => println!("edu-dma: FAIL: {e}"),
    }
    demos::halt()
}

/// What stopped the probe early.
enum Failure {
    Map(mmu::MapError),
    NoDevice,
    Pci(pci::PciError),
    NotAlive(u32),
    Edu(EduError),
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Map(e) => write!(f, "mapping the ECAM at {:#x}: {e}", QEMU_VIRT_ECAM.start),
            Self::NoDevice => write!(
                f,
                "no device {:04x}:{:04x} on bus 0",
                edu::VENDOR_ID,
                edu::DEVICE_ID
            ),
            Self::Pci(e) => write!(f, "{e}"),
            Self::NotAlive(id) => write!(f, "device (id {id:#010x}) fails the liveness check"),
            Self::Edu(e) => write!(f, "{e}"),
        }
    }
}

fn run() -> Result<(), Failure> {
    mmu::map_device(QEMU_VIRT_ECAM.start, QEMU_VIRT_ECAM.size).map_err(Failure::Map)?;
    // SAFETY: QEMU virt's ECAM is identity-mapped as device memory just
    // above; the cell owns the host bridge's configuration space.
    let ecam = unsafe { Ecam::new(QEMU_VIRT_ECAM) };
    let bdf = pci::find(&ecam, 0, edu::VENDOR_ID, edu::DEVICE_ID).ok_or(Failure::NoDevice)?;
    let bar = pci::assign_bar(&ecam, bdf, 0, QEMU_VIRT_MMIO32).map_err(Failure::Pci)?;
    let command = pci::command(&ecam, bdf);
    pci::set_command(
        &ecam,
        bdf,
        command | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER,
    );
    println!(
        "edu-dma: edu at {bdf} (requester ID {:#06x}), BAR0 {:#x} ({:#x} bytes)",
        bdf.requester_id(),
        bar.addr,
        bar.size
    );
    // SAFETY: BAR0 was just placed in the 32-bit PCI window, which lies in
    // the first GiB that the runtime maps as device memory, and this cell
    // owns the device.
    let dev = unsafe { Edu::new(bar.addr as usize) };
    let id = dev.id();
    if !dev.is_alive(0x1234_5678) {
        return Err(Failure::NotAlive(id));
    }
    println!("edu-dma: device id {id:#010x}, alive");

    round_trip(&dev, "own memory round trip")?;
    to_memory(&dev, "foreign", FOREIGN);
    to_memory(&dev, "hypervisor", HYPERVISOR);
    round_trip(&dev, "own memory round trip after the foreign DMA")
}

/// Waits for the running transfer, up to [`DMA_TIMEOUT_MS`].
fn wait(dev: &Edu) -> Result<(), EduError> {
    let deadline = timer::counter() + timer::frequency() * DMA_TIMEOUT_MS / 1000;
    dev.wait_dma(|| timer::counter() >= deadline)
}

/// Pattern → device buffer → second page, then compare; prints
/// `edu-dma: WHAT OK` or `edu-dma: WHAT FAIL ...`.
fn round_trip(dev: &Edu, what: &str) -> Result<(), Failure> {
    for i in 0..WORDS {
        SOURCE.write(i, pattern(i));
        DEST.write(i, FILL);
    }
    let len = PAGE as u64;
    mmu::clean_dcache(SOURCE.addr() as usize, PAGE);
    // No dirty line of DEST may be written back over the DMA's data.
    mmu::clean_invalidate_dcache(DEST.addr() as usize, PAGE);
    dev.start_dma(Direction::ToDevice, SOURCE.addr(), 0, len)
        .and_then(|()| wait(dev))
        .and_then(|()| dev.start_dma(Direction::ToMemory, DEST.addr(), 0, len))
        .and_then(|()| wait(dev))
        .map_err(Failure::Edu)?;
    mmu::invalidate_dcache(DEST.addr() as usize, PAGE);
    match (0..WORDS).find(|&i| DEST.read(i) != pattern(i)) {
        None => println!("edu-dma: {what} OK"),
        Some(i) => println!(
            "edu-dma: {what} FAIL at byte {:#x}: {:#018x}, expected {:#018x}",
            i * 8,
            DEST.read(i),
            pattern(i)
        ),
    }
    Ok(())
}

/// Device buffer (still holding the pattern) → `addr`, which this cell
/// does not own.
fn to_memory(dev: &Edu, kind: &str, addr: u64) {
    if let Err(e) = dev.start_dma(Direction::ToMemory, addr, 0, PAGE as u64) {
        println!("edu-dma: DMA to {kind} address {addr:#010x} not issued: {e}");
        return;
    }
    println!("edu-dma: DMA to {kind} address {addr:#010x} issued");
    match wait(dev) {
        Ok(()) => println!("edu-dma: DMA to {kind} address {addr:#010x} completed"),
        Err(e) => println!("edu-dma: DMA to {kind} address {addr:#010x} did not complete: {e}"),
    }
}
