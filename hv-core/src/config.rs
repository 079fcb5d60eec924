//! Config types: defined once here, used by the hypervisor (binary form,
//! postcard), the `cellblock` CLI and dt-cellgen (text form, TOML).
//!
//! A *system config* describes the board (RAM, CPUs, GIC, console), the
//! hypervisor's own memory, the root cell and optionally cells started at boot.
//! A *cell config* describes one non-root cell. Addresses are physical
//! (`phys_start`) or intermediate-physical, i.e. what the cell sees
//! (`virt_start`).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A physical address range `[start, start + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub start: u64,
    pub size: u64,
}

impl Range {
    /// One past the last byte, or `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.start.checked_add(self.size)
    }
}

/// The whole machine as the hypervisor partitions it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemConfig {
    /// Board name, for messages.
    pub name: String,
    pub hypervisor: HypervisorConfig,
    pub platform: Platform,
    /// The root cell: the first to run; it owns every resource it lists that
    /// no other cell takes.
    pub root_cell: CellConfig,
    /// Cells created and started at boot, in order (dom0less style).
    #[serde(default)]
    pub boot_cells: Vec<CellConfig>,
}

/// The hypervisor's own resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorConfig {
    /// RAM reserved for the hypervisor: its image, the boot pack and its heap.
    /// The boot image is loaded at `memory.start`.
    pub memory: Range,
    /// The hypervisor's console.
    pub console: Console,
    /// The management interface for a Linux root cell (see [`crate::mgmt`]).
    #[serde(default)]
    pub management: Option<Management>,
}

/// Where the root cell finds the management page and buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Management {
    /// Address of the emulated management page (in the root cell's address
    /// space, which is the physical one): not RAM, no device.
    pub page: u64,
    /// RAM the root cell shares with the hypervisor for configs, images
    /// and cell information; kept out of the root kernel's `/memory`.
    pub buffer: Range,
}

/// A serial port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Console {
    pub base: u64,
    pub kind: UartKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UartKind {
    /// ARM PrimeCell PL011.
    Pl011,
    /// 8250/16550-compatible, 32-bit register stride.
    Ns16550,
    /// Cadence UART (`cdns,uart-r1p12`, `xlnx,xuartps`: Xilinx Zynq and
    /// ZynqMP).
    Cadence,
}

/// What the board has; checked against the board DTB at boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// MPIDR affinity value (Aff3..Aff0 bits of MPIDR_EL1) of each CPU; a CPU's
    /// index in this list is its logical CPU id used everywhere else.
    pub cpus: Vec<u64>,
    /// RAM banks.
    pub ram: Vec<Range>,
    /// Windows of device MMIO that cells may be given.
    pub mmio: Vec<Range>,
    pub gic: GicConfig,
    pub psci: PsciConfig,
    /// The SMMUv3 the hypervisor owns, if the board has one and it is used.
    #[serde(default)]
    pub smmu: Option<SmmuConfig>,
}

/// An Arm SMMUv3 (its register page 0 at `base`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmmuConfig {
    pub base: u64,
    /// Size of the register window (0x20000 for SMMUv3's two pages).
    pub size: u64,
    /// INTID of the event queue interrupt: the hypervisor takes it to
    /// report DMA faults at once. Without it, events are read whenever the
    /// hypervisor handles a hypercall.
    #[serde(default)]
    pub event_irq: Option<u32>,
}

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GicConfig {
    /// 2 or 3.
    pub version: u8,
    /// Distributor base.
    pub gicd: u64,
    /// GICv3: first redistributor (frames are contiguous, one per CPU).
    #[serde(default)]
    pub gicr: Option<u64>,
    /// GICv2: CPU interface base (what a cell sees at this address is the
    /// virtual CPU interface).
    #[serde(default)]
    pub gicc: Option<u64>,
    /// GICv2: virtual interface control base.
    #[serde(default)]
    pub gich: Option<u64>,
    /// GICv2: virtual CPU interface base.
    #[serde(default)]
    pub gicv: Option<u64>,
    /// INTID of the maintenance interrupt (a PPI, 25 on most boards).
    pub maintenance_irq: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsciConfig {
    pub conduit: PsciConduit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsciConduit {
    Smc,
    Hvc,
}

/// One cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellConfig {
    pub name: String,
    /// Logical CPU ids (indices into `platform.cpus`). The first one is the
    /// cell's boot CPU.
    pub cpus: Vec<u32>,
    /// Memory and MMIO regions, in the cell's address space.
    #[serde(default)]
    pub memory: Vec<MemoryRegion>,
    /// Shared peripheral interrupts (INTID 32..1019) the cell owns.
    #[serde(default)]
    pub irqs: Vec<u32>,
    /// Where the boot CPU starts (an address the cell sees).
    pub entry: u64,
    /// Value of x0 at entry: the address of the cell's DTB for a Linux
    /// cell (the arm64 boot protocol); 0 when absent.
    #[serde(default)]
    pub entry_x0: Option<u64>,
    /// Images to load before start (used by `cellblock pack` and `cell load`).
    #[serde(default)]
    pub images: Vec<Image>,
    /// SMMU stream IDs of the DMA-capable devices the cell owns (PCI: the
    /// requester ID through the host bridge's `iommu-map`; platform
    /// devices: their `iommus` specifier).
    #[serde(default)]
    pub streams: Vec<u32>,
    /// Shared-memory links with doorbells to one peer cell each
    /// (docs/ivshmem.md).
    #[serde(default)]
    pub ivshmem: Vec<IvshmemLink>,
    /// The cell never answers through its communication region (an
    /// unmodified Linux kernel, say): `cell shutdown` stops it at once
    /// instead of asking and timing out. `cellblock cell linux` sets it.
    #[serde(default)]
    pub passive_comm: bool,
}

/// One cell's end of an ivshmem link: RAM shared with the one other cell
/// that names the same `id`, a trapped doorbell register page, and the
/// interrupt the peer's doorbell raises here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvshmemLink {
    /// Link id: the two cells naming the same id are the peers.
    pub id: u32,
    /// Shared RAM `[phys_start, phys_start + size)`: both peers name the
    /// same range.
    pub phys_start: u64,
    /// Where this cell sees the shared RAM (mapped read-write, normal
    /// memory, not executable).
    pub virt_start: u64,
    pub size: u64,
    /// IPA of this cell's 4 KiB doorbell register page (emulated, never
    /// mapped).
    pub regs: u64,
    /// SPI INTID raised in this cell when the peer rings.
    pub irq: u32,
}

/// A region of a cell's address space backed by physical memory or MMIO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRegion {
    pub phys_start: u64,
    pub virt_start: u64,
    pub size: u64,
    pub flags: Vec<MemFlag>,
    /// Free text saying where the region comes from (a DT node, a purpose).
    #[serde(default)]
    pub comment: Option<String>,
}

impl CellConfig {
    /// Whether the config gives the cell SPI `irq`: in `irqs`, or as the
    /// doorbell interrupt of one of its ivshmem links.
    pub fn lists_irq(&self, irq: u32) -> bool {
        self.irqs.contains(&irq) || self.ivshmem.iter().any(|l| l.irq == irq)
    }
}

impl MemoryRegion {
    pub fn has(&self, flag: MemFlag) -> bool {
        self.flags.contains(&flag)
    }
}

/// Permission and kind of a memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemFlag {
    Read,
    Write,
    Execute,
    /// Device memory (MMIO): mapped with device attributes, never executable.
    Io,
    /// Devices of the cell may DMA here.
    Dma,
    /// Mapped into the root cell while the cell is loadable.
    Loadable,
    /// May also appear in another cell's config (shared memory, shared device).
    Shared,
}

/// An image file and where it goes in the cell's address space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Path of a raw binary, relative to the image directory given to the tool.
    pub file: String,
    /// Load address as the cell sees it.
    pub addr: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irqs_of_a_cell_include_its_links() {
        let cell: CellConfig = toml::from_str(
            r#"
            name = "c"
            cpus = [1]
            entry = 0
            irqs = [40]
            [[ivshmem]]
            id = 1
            phys_start = 0x7ed00000
            virt_start = 0x7ed00000
            size = 0x100000
            regs = 0x0c002000
            irq = 110
            "#,
        )
        .unwrap();
        assert!(cell.lists_irq(40) && cell.lists_irq(110));
        assert!(!cell.lists_irq(111));
    }
}
