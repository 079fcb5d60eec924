//! Just enough PCI for an inmate that owns a PCI device: configuration
//! access through ECAM, a scan of one bus for a vendor/device pair, BAR
//! sizing and placement inside a memory window, and the command register.
//!
//! Every configuration access is one aligned 32-bit volatile load or store
//! (a single `ldr`/`str`), so a hypervisor that traps ECAM can decode it.
//! The logic runs against [`ConfigSpace`], which [`Ecam`] implements for
//! real hardware and the host tests implement with a fake device.
//!
//! Config space is not partitioned per device: a cell that is given the
//! ECAM window reaches every function on every bus of that host bridge.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

/// QEMU `virt`'s high ECAM (`/pcie@10000000` reg, with highmem on):
/// 256 MiB, buses 0..=255.
pub const QEMU_VIRT_ECAM: Window = Window {
    start: 0x40_1000_0000,
    size: 0x1000_0000,
};

/// QEMU `virt`'s 32-bit PCI memory window (`/pcie@10000000` ranges,
/// identity: PCI address = CPU address).
pub const QEMU_VIRT_MMIO32: Window = Window {
    start: 0x1000_0000,
    size: 0x2eff_0000,
};

/// Vendor and device ID (device in the upper half).
pub const REG_ID: u16 = 0x00;
/// Command (lower half) and status (upper half).
pub const REG_COMMAND: u16 = 0x04;
/// Cache line size, latency timer, header type (byte 2), BIST.
pub const REG_HEADER: u16 = 0x0c;
/// First base address register of a type 0 header.
pub const REG_BAR0: u16 = 0x10;
/// Type 0 headers have six BARs.
pub const BAR_COUNT: u8 = 6;

/// Command register: respond to memory space accesses.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: the device may master the bus (DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// Header type bit 7: the device has more than one function.
const HEADER_MULTI_FUNCTION: u32 = 0x80 << 16;
/// Header type layout (bits 0..6): 0 = endpoint.
const HEADER_LAYOUT_MASK: u32 = 0x7f << 16;

const BAR_IO: u32 = 1 << 0;
const BAR_TYPE_MASK: u32 = 0b11 << 1;
const BAR_TYPE_64: u32 = 0b10 << 1;
const BAR_PREFETCHABLE: u32 = 1 << 3;
const BAR_MEM_FLAGS: u32 = 0xf;

/// A range of addresses: an ECAM window, a PCI memory window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    pub size: u64,
}

impl Window {
    /// First address after the window (saturating).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// Bus, device, function of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bdf {
    bus: u8,
    device: u8,
    function: u8,
}

impl Bdf {
    /// `None` unless `device < 32` and `function < 8`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device < 32 && function < 8 {
            Some(Self {
                bus,
                device,
                function,
            })
        } else {
            None
        }
    }

    pub const fn bus(self) -> u8 {
        self.bus
    }

    pub const fn device(self) -> u8 {
        self.device
    }

    pub const fn function(self) -> u8 {
        self.function
    }

    /// The 16-bit requester ID the function's DMA carries (bus << 8 |
    /// device << 3 | function); an SMMU stream ID through an identity
    /// `iommu-map`.
    pub const fn requester_id(self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }

    /// Offset of the function's 4 KiB configuration space in an ECAM
    /// window that starts at bus 0.
    pub const fn ecam_offset(self) -> u64 {
        (self.bus as u64) << 20 | (self.device as u64) << 15 | (self.function as u64) << 12
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// 32-bit access to configuration space. `offset` is a byte offset into
/// the function's 4 KiB space; its two low bits are ignored.
pub trait ConfigSpace {
    /// Reads a register; an absent function reads all ones.
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    /// Writes a register; writes to an absent function are dropped.
    fn write32(&self, bdf: Bdf, offset: u16, value: u32);
}

/// Word-aligned offset inside a function's 4 KiB configuration space.
const fn config_offset(offset: u16) -> u64 {
    (offset & 0xffc) as u64
}

/// An ECAM window (enhanced configuration access mechanism): bus `n`
/// starts 1 MiB × n after the window's start.
#[derive(Debug)]
pub struct Ecam {
    base: usize,
    buses: u16,
}

impl Ecam {
    /// ECAM at `window`, which starts at bus 0. Buses beyond the window
    /// read all ones.
    ///
    /// # Safety
    ///
    /// `window` must be an ECAM window (or memory standing in for one)
    /// mapped for 32-bit volatile access at that virtual address for as
    /// long as the value is used, and nothing else may rely on the
    /// configuration of the functions behind it.
    pub unsafe fn new(window: Window) -> Self {
        Self {
            base: window.start as usize,
            buses: (window.size >> 20).min(256) as u16,
        }
    }

    fn address(&self, bdf: Bdf, offset: u16) -> Option<*mut u32> {
        if u16::from(bdf.bus()) >= self.buses {
            return None;
        }
        let at = bdf.ecam_offset() + config_offset(offset);
        Some(self.base.wrapping_add(at as usize) as *mut u32)
    }
}

impl ConfigSpace for Ecam {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.address(bdf, offset) {
            // SAFETY: the address lies inside the ECAM window (bus checked,
            // offset below 4 KiB and word aligned), which the caller of
            // `Ecam::new` guaranteed is mapped for 32-bit volatile access.
            Some(p) => unsafe { read_volatile(p) },
            None => u32::MAX,
        }
    }

    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(p) = self.address(bdf, offset) {
            // SAFETY: as in `read32`; the caller of `Ecam::new` owns the
            // functions' configuration.
            unsafe { write_volatile(p, value) }
        }
    }
}

/// Why a PCI operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// BAR index beyond the header's six.
    NoSuchBar { index: u8 },
    /// The BAR reads back zero after writing all ones: not implemented.
    UnimplementedBar { index: u8 },
    /// An I/O BAR; only memory BARs are supported.
    IoBar { index: u8 },
    /// A 64-bit BAR at index 5 has no upper half.
    TruncatedBar64 { index: u8 },
    /// The function is not an endpoint (type 0 header).
    NotEndpoint { layout: u8 },
    /// No naturally aligned place of `size` bytes inside the window.
    NoRoom { size: u64, window: Window },
    /// A 32-bit BAR cannot hold `addr`.
    AddressTooHigh { index: u8, addr: u64 },
    /// After programming, the BAR reads back another address.
    Readback { index: u8, wrote: u64, read: u64 },
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchBar { index } => write!(f, "BAR{index}: a type 0 header has BAR0..BAR5"),
            Self::UnimplementedBar { index } => write!(f, "BAR{index}: not implemented"),
            Self::IoBar { index } => write!(f, "BAR{index}: I/O space is not supported"),
            Self::TruncatedBar64 { index } => {
                write!(f, "BAR{index}: 64-bit BAR without an upper half")
            }
            Self::NotEndpoint { layout } => {
                write!(f, "header type {layout:#x}: not an endpoint (type 0)")
            }
            Self::NoRoom { size, window } => write!(
                f,
                "no room for {size:#x} bytes in the window {:#x}..{:#x}",
                window.start,
                window.end()
            ),
            Self::AddressTooHigh { index, addr } => {
                write!(f, "BAR{index}: {addr:#x} does not fit a 32-bit BAR")
            }
            Self::Readback { index, wrote, read } => {
                write!(f, "BAR{index}: wrote {wrote:#x}, reads back {read:#x}")
            }
        }
    }
}

/// The first function on `bus` whose vendor and device ID match. Visits
/// functions 1..7 only of multi-function devices.
pub fn find(cfg: &impl ConfigSpace, bus: u8, vendor: u16, device: u16) -> Option<Bdf> {
    let wanted = u32::from(device) << 16 | u32::from(vendor);
    for dev in 0..32 {
        let first = Bdf::new(bus, dev, 0)?;
        let id = cfg.read32(first, REG_ID);
        if id & 0xffff == 0xffff {
            continue;
        }
        let functions = if cfg.read32(first, REG_HEADER) & HEADER_MULTI_FUNCTION != 0 {
            8
        } else {
            1
        };
        for function in 0..functions {
            let bdf = Bdf::new(bus, dev, function)?;
            if cfg.read32(bdf, REG_ID) == wanted {
                return Some(bdf);
            }
        }
    }
    None
}

/// Reads the command register.
pub fn command(cfg: &impl ConfigSpace, bdf: Bdf) -> u16 {
    cfg.read32(bdf, REG_COMMAND) as u16
}

/// Writes the command register; the status half is written as zero, which
/// leaves its write-one-to-clear bits alone.
pub fn set_command(cfg: &impl ConfigSpace, bdf: Bdf, command: u16) {
    cfg.write32(bdf, REG_COMMAND, u32::from(command));
}

/// A memory BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemBar {
    pub index: u8,
    /// Decodes 64 bits of address (uses BAR `index + 1` as the upper half).
    pub is_64: bool,
    pub prefetchable: bool,
    /// Bytes decoded, a power of two.
    pub size: u64,
    /// Current address (what the BAR holds).
    pub addr: u64,
}

fn bar_offset(index: u8) -> u16 {
    REG_BAR0 + 4 * u16::from(index)
}

/// Sizes memory BAR `index` the standard way: memory decoding off, write
/// all ones, read the mask, restore the BAR and the command register.
pub fn probe_bar(cfg: &impl ConfigSpace, bdf: Bdf, index: u8) -> Result<MemBar, PciError> {
    if index >= BAR_COUNT {
        return Err(PciError::NoSuchBar { index });
    }
    let layout = ((cfg.read32(bdf, REG_HEADER) & HEADER_LAYOUT_MASK) >> 16) as u8;
    if layout != 0 {
        return Err(PciError::NotEndpoint { layout });
    }
    let off = bar_offset(index);
    let low = cfg.read32(bdf, off);
    if low & BAR_IO != 0 {
        return Err(PciError::IoBar { index });
    }
    let is_64 = low & BAR_TYPE_MASK == BAR_TYPE_64;
    if is_64 && index + 1 >= BAR_COUNT {
        return Err(PciError::TruncatedBar64 { index });
    }
    let high = if is_64 { cfg.read32(bdf, off + 4) } else { 0 };

    let saved_command = command(cfg, bdf);
    set_command(cfg, bdf, saved_command & !COMMAND_MEMORY);
    cfg.write32(bdf, off, u32::MAX);
    let mut mask = u64::from(cfg.read32(bdf, off) & !BAR_MEM_FLAGS);
    cfg.write32(bdf, off, low);
    if is_64 {
        cfg.write32(bdf, off + 4, u32::MAX);
        mask |= u64::from(cfg.read32(bdf, off + 4)) << 32;
        cfg.write32(bdf, off + 4, high);
    }
    set_command(cfg, bdf, saved_command);

    let size = bar_size(mask).ok_or(PciError::UnimplementedBar { index })?;
    Ok(MemBar {
        index,
        is_64,
        prefetchable: low & BAR_PREFETCHABLE != 0,
        size,
        addr: u64::from(high) << 32 | u64::from(low & !BAR_MEM_FLAGS),
    })
}

/// Size from the address bits a BAR kept after all ones were written
/// (flag bits cleared; both halves for a 64-bit BAR); `None` if it kept
/// none.
pub fn bar_size(mask: u64) -> Option<u64> {
    if mask == 0 {
        return None;
    }
    // The lowest writable address bit is the size.
    Some(1u64 << mask.trailing_zeros())
}

/// The highest place for `size` bytes (a power of two), aligned to `size`
/// as a BAR requires, inside `window`. Top of the window, because other
/// software assigning BARs in the same window (a root cell's OS) usually
/// fills it from the bottom.
pub fn place_top(window: Window, size: u64) -> Option<u64> {
    if size == 0 || !size.is_power_of_two() {
        return None;
    }
    let last = window.end().checked_sub(size)?;
    let addr = last & !(size - 1);
    (addr >= window.start).then_some(addr)
}

/// Sizes memory BAR `index`, places it at the top of `window` and
/// programs it (memory decoding off meanwhile; the command register is
/// restored afterwards). Returns the BAR with its new address.
pub fn assign_bar(
    cfg: &impl ConfigSpace,
    bdf: Bdf,
    index: u8,
    window: Window,
) -> Result<MemBar, PciError> {
    let mut bar = probe_bar(cfg, bdf, index)?;
    let addr = place_top(window, bar.size).ok_or(PciError::NoRoom {
        size: bar.size,
        window,
    })?;
    if !bar.is_64 && addr > u64::from(u32::MAX) {
        return Err(PciError::AddressTooHigh { index, addr });
    }
    let off = bar_offset(index);
    let saved_command = command(cfg, bdf);
    set_command(cfg, bdf, saved_command & !COMMAND_MEMORY);
    cfg.write32(bdf, off, addr as u32);
    if bar.is_64 {
        cfg.write32(bdf, off + 4, (addr >> 32) as u32);
    }
    let mut read = u64::from(cfg.read32(bdf, off) & !BAR_MEM_FLAGS);
    if bar.is_64 {
        read |= u64::from(cfg.read32(bdf, off + 4)) << 32;
    }
    set_command(cfg, bdf, saved_command);
    if read != addr {
        return Err(PciError::Readback {
            index,
            wrote: addr,
            read,
        });
    }
    bar.addr = addr;
    Ok(bar)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::cell::RefCell;
    use std::vec;
    use std::vec::Vec;

    /// A fake endpoint at one BDF: 64 config words, BARs that keep only
    /// their address bits, everything else absent.
    struct FakeBus {
        bdf: Bdf,
        words: RefCell<Vec<u32>>,
        /// Per BAR: (writable bits, read-only flag bits); (0, 0) = absent.
        bars: [(u32, u32); 6],
        writes: RefCell<Vec<(u16, u32)>>,
    }

    impl FakeBus {
        fn new(bdf: Bdf, id: u32, header: u32, bars: [(u32, u32); 6]) -> Self {
            let mut words = vec![0u32; 64];
            words[0] = id;
            words[3] = header;
            for (i, (_, flags)) in bars.iter().enumerate() {
                words[4 + i] = *flags;
            }
            Self {
                bdf,
                words: RefCell::new(words),
                bars,
                writes: RefCell::new(Vec::new()),
            }
        }
    }

    impl ConfigSpace for FakeBus {
        fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
            if bdf != self.bdf {
                return u32::MAX;
            }
            self.words.borrow()[usize::from(offset / 4)]
        }

        fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
            if bdf != self.bdf {
                return;
            }
            self.writes.borrow_mut().push((offset, value));
            let word = usize::from(offset / 4);
            let value = if (4..10).contains(&word) {
                let (writable, flags) = self.bars[word - 4];
                value & writable | flags
            } else {
                value
            };
            self.words.borrow_mut()[word] = value;
        }
    }

    const EDU_ID: u32 = 0x11e8_1234;
    /// A 1 MiB 32-bit non-prefetchable memory BAR.
    const BAR_1M: (u32, u32) = (0xfff0_0000, 0);

    fn edu_at(dev: u8) -> FakeBus {
        let mut bars = [(0, 0); 6];
        bars[0] = BAR_1M;
        FakeBus::new(Bdf::new(0, dev, 0).unwrap(), EDU_ID, 0, bars)
    }

    #[test]
    fn requester_id_and_ecam_offset() {
        let bdf = Bdf::new(0, 2, 0).unwrap();
        assert_eq!(bdf.requester_id(), 0x10);
        assert_eq!(bdf.ecam_offset(), 0x1_0000);
        let bdf = Bdf::new(3, 31, 7).unwrap();
        assert_eq!(bdf.requester_id(), 0x3ff);
        assert_eq!(bdf.ecam_offset(), 0x3f_f000);
        assert_eq!(std::format!("{bdf}"), "03:1f.7");
        assert_eq!(Bdf::new(0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 8), None);
    }

    #[test]
    fn ecam_reads_and_writes_the_right_word() {
        // Bus 0 and 1 of fake ECAM memory.
        let mut mem = vec![0u32; 2 << 18];
        let at = |bdf: Bdf, off: u64| ((bdf.ecam_offset() + off) / 4) as usize;
        let bdf = Bdf::new(1, 2, 3).unwrap();
        mem[at(bdf, 0)] = EDU_ID;
        let window = Window {
            start: mem.as_mut_ptr() as u64,
            size: 2 << 20,
        };
        {
            // SAFETY: `mem` is 2 MiB of plain memory that outlives `ecam`.
            let ecam = unsafe { Ecam::new(window) };
            assert_eq!(ecam.read32(bdf, REG_ID), EDU_ID);
            // The low two offset bits are ignored.
            assert_eq!(ecam.read32(bdf, REG_ID + 2), EDU_ID);
            ecam.write32(bdf, REG_BAR0, 0x1234_5670);
            // Bus 2 lies beyond the window: reads all ones, writes dropped.
            let outside = Bdf::new(2, 0, 0).unwrap();
            assert_eq!(ecam.read32(outside, REG_ID), u32::MAX);
            ecam.write32(outside, REG_ID, 0);
        }
        assert_eq!(mem[at(bdf, 0x10)], 0x1234_5670);
    }

    #[test]
    fn find_scans_devices_and_multi_function_devices() {
        let bus = edu_at(2);
        assert_eq!(find(&bus, 0, 0x1234, 0x11e8), Bdf::new(0, 2, 0));
        assert_eq!(find(&bus, 0, 0x1234, 0x1111), None);
        assert_eq!(find(&bus, 1, 0x1234, 0x11e8), None);
        // Function 3 is only visited if function 0 says multi-function;
        // here the fake answers only at function 3, so function 0 is
        // absent and the device is skipped.
        let bus = FakeBus::new(Bdf::new(0, 5, 3).unwrap(), EDU_ID, 0, [(0, 0); 6]);
        assert_eq!(find(&bus, 0, 0x1234, 0x11e8), None);
    }

    #[test]
    fn probe_bar_sizes_and_restores() {
        let bus = edu_at(2);
        let bdf = bus.bdf;
        bus.words.borrow_mut()[1] = u32::from(COMMAND_MEMORY | COMMAND_BUS_MASTER);
        bus.words.borrow_mut()[4] = 0x1230_0000;
        let bar = probe_bar(&bus, bdf, 0).unwrap();
        assert_eq!(
            bar,
            MemBar {
                index: 0,
                is_64: false,
                prefetchable: false,
                size: 0x10_0000,
                addr: 0x1230_0000
            }
        );
        assert_eq!(bus.words.borrow()[4], 0x1230_0000);
        assert_eq!(
            command(&bus, bdf),
            COMMAND_MEMORY | COMMAND_BUS_MASTER,
            "command restored"
        );
        // Memory decoding was off while the BAR held all ones.
        let writes = bus.writes.borrow();
        let ones = writes
            .iter()
            .position(|w| *w == (REG_BAR0, u32::MAX))
            .unwrap();
        let off = writes[..ones]
            .iter()
            .rposition(|w| w.0 == REG_COMMAND)
            .unwrap();
        assert_eq!(writes[off].1 & u32::from(COMMAND_MEMORY), 0);
    }

    #[test]
    fn probe_bar_64_bit_and_errors() {
        let mut bars = [(0, 0); 6];
        // 64-bit prefetchable, 8 GiB.
        bars[0] = (0, BAR_TYPE_64 | BAR_PREFETCHABLE);
        bars[1] = (0xffff_fffe, 0);
        bars[2] = (0xffff_ff00, BAR_IO);
        bars[5] = (0, BAR_TYPE_64);
        let bus = FakeBus::new(Bdf::new(0, 1, 0).unwrap(), EDU_ID, 0, bars);
        let bdf = bus.bdf;
        let bar = probe_bar(&bus, bdf, 0).unwrap();
        assert!(bar.is_64 && bar.prefetchable);
        assert_eq!(bar.size, 0x2_0000_0000);
        assert_eq!(probe_bar(&bus, bdf, 2), Err(PciError::IoBar { index: 2 }));
        assert_eq!(
            probe_bar(&bus, bdf, 3),
            Err(PciError::UnimplementedBar { index: 3 })
        );
        assert_eq!(
            probe_bar(&bus, bdf, 5),
            Err(PciError::TruncatedBar64 { index: 5 })
        );
        assert_eq!(
            probe_bar(&bus, bdf, 6),
            Err(PciError::NoSuchBar { index: 6 })
        );
        let bridge = FakeBus::new(bdf, EDU_ID, 1 << 16, bars);
        assert_eq!(
            probe_bar(&bridge, bdf, 0),
            Err(PciError::NotEndpoint { layout: 1 })
        );
    }

    #[test]
    fn place_top_aligns_inside_the_window() {
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0x10_0000), Some(0x3ee0_0000));
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0x1000), Some(0x3efe_f000));
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0x1000_0000), Some(0x2000_0000));
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0x4000_0000), None);
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0x3000), None);
        assert_eq!(place_top(QEMU_VIRT_MMIO32, 0), None);
        let tiny = Window {
            start: 0x1000_0800,
            size: 0x1000,
        };
        assert_eq!(place_top(tiny, 0x1000), None);
    }

    #[test]
    fn assign_bar_programs_the_top_of_the_window() {
        let bus = edu_at(2);
        let bdf = bus.bdf;
        let bar = assign_bar(&bus, bdf, 0, QEMU_VIRT_MMIO32).unwrap();
        assert_eq!(bar.addr, 0x3ee0_0000);
        assert_eq!(bar.size, 0x10_0000);
        assert_eq!(bus.words.borrow()[4], 0x3ee0_0000);
        let high = Window {
            start: 0x1_0000_0000,
            size: 0x1000_0000,
        };
        assert_eq!(
            assign_bar(&bus, bdf, 0, high),
            Err(PciError::AddressTooHigh {
                index: 0,
                addr: 0x1_0ff0_0000
            })
        );
        let small = Window {
            start: 0x1000_0000,
            size: 0x8_0000,
        };
        assert!(matches!(
            assign_bar(&bus, bdf, 0, small),
            Err(PciError::NoRoom {
                size: 0x10_0000,
                ..
            })
        ));
    }

    #[test]
    fn errors_name_the_bar_and_reason() {
        let e = PciError::Readback {
            index: 0,
            wrote: 0x3ee0_0000,
            read: 0,
        };
        assert_eq!(
            std::format!("{e}"),
            "BAR0: wrote 0x3ee00000, reads back 0x0"
        );
    }
}
