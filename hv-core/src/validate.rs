//! Config validation: every rule a config must follow before the hypervisor
//! uses it. All errors are collected, not just the first; each names the
//! field (`root_cell.memory[1].size`, `boot_cells[0](gic-demo).cpus[0]`) and
//! the reason.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::{
    CellConfig, IvshmemLink, MemFlag, MemoryRegion, PsciConduit, Range, SystemConfig, UartKind,
};

/// Longest cell name, in bytes.
pub const MAX_NAME_LEN: usize = 31;
/// Granule of every region: address and size must be multiples of it.
pub const PAGE_SIZE: u64 = 0x1000;
/// Alignment of the hypervisor's memory (start and size).
pub const HYPERVISOR_ALIGN: u64 = 0x20_0000;
/// Shared peripheral interrupts a cell may own.
pub const SPI_RANGE: core::ops::RangeInclusive<u32> = 32..=1019;
/// Private peripheral interrupts (the maintenance interrupt is one).
pub const PPI_RANGE: core::ops::RangeInclusive<u32> = 16..=31;
/// Size of a UART's register page, for the console check.
pub const CONSOLE_SIZE: u64 = 0x1000;

/// A half-open address range, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    fn of(start: u64, size: u64) -> Option<Self> {
        Some(Self {
            start,
            end: start.checked_add(size)?,
        })
    }

    fn overlaps(self, other: Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    fn inside(self, outer: Span) -> bool {
        outer.start <= self.start && self.end <= outer.end
    }

    fn inside_one(self, ranges: &[Range]) -> bool {
        ranges
            .iter()
            .filter_map(|r| Span::of(r.start, r.size))
            .any(|r| self.inside(r))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

/// Why a field is refused: one variant per rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A cell name is empty.
    NameEmpty,
    /// A cell name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong { len: usize },
    /// Two cells have the same name.
    DuplicateName { name: String, first: String },
    /// A region or range of size 0.
    SizeZero,
    /// An address or size not a multiple of [`PAGE_SIZE`].
    NotPageAligned { value: u64 },
    /// `start + size` overflows 64 bits.
    RangeOverflow { start: u64, size: u64 },
    /// Two regions of one cell overlap in the cell's address space.
    VirtOverlap { other: usize, span: Span },
    /// A RAM region does not lie inside one `platform.ram` bank.
    OutsideRam { span: Span },
    /// An io region does not lie inside one `platform.mmio` window.
    OutsideMmio { span: Span },
    /// A region overlaps the hypervisor's memory.
    OverlapsHypervisor { span: Span, hypervisor: Span },
    /// Regions of two non-root cells overlap and are not both `shared`.
    PhysOverlap {
        span: Span,
        other_cell: String,
        other_region: usize,
    },
    /// Flags `io` and `execute` together.
    IoExecute,
    /// A CPU id is not an index into `platform.cpus`.
    CpuUnknown { cpu: u32, count: usize },
    /// A CPU listed twice in one cell.
    CpuDuplicate { cpu: u32 },
    /// A CPU given to two non-root cells.
    CpuTaken { cpu: u32, other_cell: String },
    /// A non-root cell's CPU that the root cell does not have.
    CpuNotInRoot { cpu: u32 },
    /// The non-root cells take every CPU of the root cell.
    RootNoCpu,
    /// A cell without CPU.
    NoCpu,
    /// An IRQ outside [`SPI_RANGE`].
    IrqOutOfRange { irq: u32 },
    /// An IRQ listed twice in one cell.
    IrqDuplicate { irq: u32 },
    /// An IRQ given to two non-root cells.
    IrqTaken { irq: u32, other_cell: String },
    /// An IRQ the hypervisor keeps (the SMMU's event interrupt).
    IrqHypervisors { irq: u32 },
    /// A cell lists SMMU streams but the platform has no SMMU.
    StreamWithoutSmmu { stream: u32 },
    /// A stream listed twice in one cell.
    StreamDuplicate { stream: u32 },
    /// A stream given to two non-root cells.
    StreamTaken { stream: u32, other_cell: String },
    /// The entry point is not inside an executable region.
    EntryNotExecutable { entry: u64 },
    /// An image does not lie inside one writable or loadable RAM region.
    ImageOutsideRam { addr: u64, size: Option<u64> },
    /// `platform.cpus` is empty.
    NoPlatformCpus,
    /// Two platform CPUs with the same MPIDR.
    DuplicateMpidr { mpidr: u64, first: usize },
    /// `platform.ram` is empty.
    NoRam,
    /// GIC version other than 2 or 3.
    GicVersion { version: u8 },
    /// A GIC frame required by this GIC version is missing.
    GicFrameMissing { version: u8 },
    /// The maintenance interrupt is not a PPI.
    MaintenanceIrqNotPpi { irq: u32 },
    /// The hypervisor's memory is not inside one RAM bank.
    HypervisorNotInRam { span: Span },
    /// The hypervisor's memory start or size is not 2 MiB aligned.
    HypervisorMisaligned { value: u64 },
    /// The console is not inside a `platform.mmio` window.
    ConsoleNotInMmio { base: u64 },
    /// A configured CPU's MPIDR is not on the board.
    CpuNotOnBoard { mpidr: u64 },
    /// A configured RAM bank is not inside the board's RAM.
    RamNotOnBoard { span: Span },
    /// The board's GIC has another version.
    GicVersionMismatch { configured: u8, board: u8 },
    /// A configured address differs from the board's.
    AddressMismatch { configured: u64, board: u64 },
    /// The board's GIC names another maintenance interrupt.
    MaintenanceIrqMismatch { configured: u32, board: u32 },
    /// A configured value the board does not have (no GIC, no PSCI, a frame).
    BoardLacks { what: &'static str },
    /// The board's PSCI conduit differs.
    PsciMismatch {
        configured: PsciConduit,
        board: PsciConduit,
    },
    /// The board's console UART is of another kind.
    UartKindMismatch {
        configured: UartKind,
        board: UartKind,
    },
    /// An ivshmem range overlaps the management buffer.
    OverlapsManagementBuffer { span: Span, buffer: Span },
    /// An ivshmem link's shared memory or register page overlaps a region
    /// or another link in the cell's address space.
    IvshmemVirtOverlap { what: String, span: Span },
    /// An ivshmem link's shared memory overlaps a memory region of a cell.
    IvshmemPhysOverlap {
        span: Span,
        other_cell: String,
        other_region: usize,
    },
    /// A memory region overlaps the shared memory of another cell's link.
    OverlapsIvshmem {
        span: Span,
        other_cell: String,
        id: u32,
    },
    /// An ivshmem link's shared memory overlaps another link's.
    IvshmemLinkOverlap {
        span: Span,
        other_cell: String,
        other_id: u32,
    },
    /// An ivshmem link's interrupt is also listed in the cell's `irqs`.
    IvshmemIrqInIrqs { irq: u32 },
    /// Two links of one cell with the same id.
    IvshmemIdDuplicate { id: u32 },
    /// A third cell names a link id two cells already name.
    IvshmemTooManyPeers {
        id: u32,
        first: String,
        second: String,
    },
    /// The peer names the same link id with other shared memory.
    IvshmemPeerMismatch {
        id: u32,
        peer: String,
        peer_span: Span,
    },
}

fn conduit(c: PsciConduit) -> &'static str {
    match c {
        PsciConduit::Smc => "smc",
        PsciConduit::Hvc => "hvc",
    }
}

fn uart(k: UartKind) -> &'static str {
    match k {
        UartKind::Pl011 => "pl011",
        UartKind::Ns16550 => "ns16550",
        UartKind::Cadence => "cadence",
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigErrorKind::*;
        match self {
            NameEmpty => f.write_str("name is empty"),
            NameTooLong { len } => write!(
                f,
                "name is {len} bytes long, at most {MAX_NAME_LEN} allowed"
            ),
            DuplicateName { name, first } => {
                write!(f, "cell name \"{name}\" is already used by {first}")
            }
            SizeZero => f.write_str("size is 0"),
            NotPageAligned { value } => write!(f, "{value:#x} is not 4 KiB aligned"),
            RangeOverflow { start, size } => write!(
                f,
                "range {start:#x} + {size:#x} overflows the 64-bit address space"
            ),
            VirtOverlap { other, span } => write!(
                f,
                "overlaps memory[{other}] in the cell's address space ({span})"
            ),
            OutsideRam { span } => write!(
                f,
                "physical range {span} is not inside one platform.ram bank"
            ),
            OutsideMmio { span } => write!(
                f,
                "physical range {span} of an io region is not inside one platform.mmio window"
            ),
            OverlapsHypervisor { span, hypervisor } => write!(
                f,
                "physical range {span} overlaps the hypervisor's memory {hypervisor}"
            ),
            PhysOverlap {
                span,
                other_cell,
                other_region,
            } => write!(
                f,
                "physical range {span} overlaps memory[{other_region}] of cell \"{other_cell}\" (only regions both flagged shared may overlap)"
            ),
            IoExecute => f.write_str(
                "flags io and execute together (device memory is never executable)",
            ),
            CpuUnknown { cpu, count } => write!(
                f,
                "CPU {cpu} does not exist (platform.cpus lists {count}, ids 0..{count})"
            ),
            CpuDuplicate { cpu } => write!(f, "CPU {cpu} is listed twice"),
            CpuTaken { cpu, other_cell } => {
                write!(f, "CPU {cpu} is already given to cell \"{other_cell}\"")
            }
            CpuNotInRoot { cpu } => write!(
                f,
                "CPU {cpu} is not a CPU of the root cell (non-root cells take their CPUs from it)"
            ),
            RootNoCpu => f.write_str("leaves the root cell with no CPU"),
            NoCpu => f.write_str("the cell has no CPU"),
            IrqOutOfRange { irq } => write!(
                f,
                "IRQ {irq} is not a shared peripheral interrupt ({}..={})",
                SPI_RANGE.start(),
                SPI_RANGE.end()
            ),
            IrqDuplicate { irq } => write!(f, "IRQ {irq} is listed twice"),
            IrqHypervisors { irq } => write!(
                f,
                "IRQ {irq} is the SMMU's event interrupt (platform.smmu.event_irq), the hypervisor's"
            ),
            IrqTaken { irq, other_cell } => {
                write!(f, "IRQ {irq} is already given to cell \"{other_cell}\"")
            }
            StreamWithoutSmmu { stream } => write!(
                f,
                "stream {stream:#x} needs an SMMU, but platform.smmu is not set"
            ),
            StreamDuplicate { stream } => write!(f, "stream {stream:#x} is listed twice"),
            StreamTaken { stream, other_cell } => write!(
                f,
                "stream {stream:#x} is already given to cell \"{other_cell}\""
            ),
            EntryNotExecutable { entry } => write!(
                f,
                "entry {entry:#x} is not inside an executable memory region of the cell"
            ),
            ImageOutsideRam { addr, size } => {
                write!(f, "image at {addr:#x}")?;
                if let Some(size) = size {
                    write!(f, " ({size:#x} bytes)")?;
                }
                f.write_str(" is not inside one writable or loadable RAM region of the cell")
            }
            NoPlatformCpus => f.write_str("no CPU listed"),
            DuplicateMpidr { mpidr, first } => write!(
                f,
                "MPIDR {mpidr:#x} is already listed as platform.cpus[{first}]"
            ),
            NoRam => f.write_str("no RAM bank listed"),
            GicVersion { version } => {
                write!(f, "GIC version {version} is not supported (2 or 3)")
            }
            GicFrameMissing { version } => write!(f, "missing, required for GIC version {version}"),
            MaintenanceIrqNotPpi { irq } => write!(
                f,
                "INTID {irq} is not a PPI ({}..={})",
                PPI_RANGE.start(),
                PPI_RANGE.end()
            ),
            HypervisorNotInRam { span } => {
                write!(f, "range {span} is not inside one platform.ram bank")
            }
            HypervisorMisaligned { value } => {
                write!(f, "{value:#x} is not 2 MiB aligned")
            }
            ConsoleNotInMmio { base } => write!(
                f,
                "UART page {base:#x} is not inside one platform.mmio window"
            ),
            CpuNotOnBoard { mpidr } => write!(f, "MPIDR {mpidr:#x} is not a CPU of the board"),
            RamNotOnBoard { span } => {
                write!(f, "RAM {span} is not inside one RAM bank of the board")
            }
            GicVersionMismatch { configured, board } => write!(
                f,
                "GIC version {configured} configured, the board has version {board}"
            ),
            AddressMismatch { configured, board } => write!(
                f,
                "{configured:#x} configured, the board has {board:#x}"
            ),
            MaintenanceIrqMismatch { configured, board } => write!(
                f,
                "INTID {configured} configured, the board's GIC uses INTID {board}"
            ),
            BoardLacks { what } => write!(f, "the board has no {what}"),
            PsciMismatch { configured, board } => write!(
                f,
                "conduit {} configured, the board's PSCI uses {}",
                conduit(*configured),
                conduit(*board)
            ),
            UartKindMismatch { configured, board } => write!(
                f,
                "{} configured, the board's console UART is {}",
                uart(*configured),
                uart(*board)
            ),
            OverlapsManagementBuffer { span, buffer } => write!(
                f,
                "physical range {span} overlaps the management buffer {buffer}"
            ),
            IvshmemVirtOverlap { what, span } => write!(
                f,
                "{span} overlaps {what} in the cell's address space"
            ),
            IvshmemPhysOverlap {
                span,
                other_cell,
                other_region,
            } => write!(
                f,
                "shared memory {span} overlaps memory[{other_region}] of cell \"{other_cell}\""
            ),
            OverlapsIvshmem {
                span,
                other_cell,
                id,
            } => write!(
                f,
                "physical range {span} overlaps the shared memory of ivshmem link {id} of cell \"{other_cell}\""
            ),
            IvshmemLinkOverlap {
                span,
                other_cell,
                other_id,
            } => write!(
                f,
                "shared memory {span} overlaps that of ivshmem link {other_id} of cell \"{other_cell}\""
            ),
            IvshmemIrqInIrqs { irq } => write!(
                f,
                "IRQ {irq} is also listed in irqs (the link's interrupt is the hypervisor's to raise)"
            ),
            IvshmemIdDuplicate { id } => write!(f, "link id {id} is named twice"),
            IvshmemTooManyPeers { id, first, second } => write!(
                f,
                "link id {id} already joins cells \"{first}\" and \"{second}\" (a link has two peers)"
            ),
            IvshmemPeerMismatch {
                id,
                peer,
                peer_span,
            } => write!(
                f,
                "link id {id}: the peer cell \"{peer}\" shares {peer_span}, not this range"
            ),
        }
    }
}

/// One refused field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the field, e.g. `root_cell.memory[1].size`.
    pub field: String,
    pub reason: ConfigErrorKind,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, reason: ConfigErrorKind) -> Self {
        Self {
            field: field.into(),
            reason,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl core::error::Error for ConfigError {}

/// Every error found in a config, in the order of the fields. Never empty
/// when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> core::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an error.
    pub fn push(&mut self, field: impl Into<String>, reason: ConfigErrorKind) {
        self.0.push(ConfigError::new(field, reason));
    }

    /// `Ok(())` if empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(alloc::vec![e])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = core::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = alloc::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// One error per line.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl core::error::Error for ConfigErrors {}

/// The field prefix of boot cell `index`: `boot_cells[0](gic-demo)`.
pub fn boot_cell_field(index: usize, cell: &CellConfig) -> String {
    format!("boot_cells[{index}]({})", cell.name)
}

/// Validates a whole system config: platform, hypervisor, root cell and
/// every boot cell (each checked against the boot cells before it).
pub fn validate_system(sys: &SystemConfig) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    check_platform(sys, &mut errs);
    check_cell(Some(sys), &sys.root_cell, "root_cell", &[], true, &mut errs);
    for (i, cell) in sys.boot_cells.iter().enumerate() {
        let others: Vec<&CellConfig> = sys.boot_cells[..i].iter().collect();
        let prefix = boot_cell_field(i, cell);
        check_cell(Some(sys), cell, &prefix, &others, false, &mut errs);
    }
    errs.into_result()
}

/// Validates a non-root cell for `sys`, beside the non-root cells `others`
/// already present. Fields are relative to the cell (`cpus[0]`). The system
/// itself is not validated here (see [`validate_system`]).
pub fn validate_cell(
    sys: &SystemConfig,
    cell: &CellConfig,
    others: &[&CellConfig],
) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    check_cell(Some(sys), cell, "", others, false, &mut errs);
    errs.into_result()
}

/// Validates what a cell config says on its own, without a system: name,
/// regions (size, alignment, overflow, overlap in the cell's address space,
/// io with execute), CPUs (none, listed twice), IRQs (range, listed twice),
/// entry and image addresses. Fields are relative to the cell.
pub fn validate_cell_alone(cell: &CellConfig) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    check_cell(None, cell, "", &[], false, &mut errs);
    errs.into_result()
}

/// Checks that an image of `size` bytes loaded at `cell.images[index].addr`
/// fits one writable or loadable RAM region of the cell. `cell_field` is the
/// cell's field prefix (`root_cell`, `boot_cells[0](x)`, or empty).
pub fn check_image_size(
    cell_field: &str,
    cell: &CellConfig,
    index: usize,
    size: u64,
) -> Result<(), ConfigError> {
    let addr = cell.images.get(index).map_or(0, |i| i.addr);
    if image_fits(cell, addr, size) {
        Ok(())
    } else {
        Err(ConfigError::new(
            join(cell_field, &format!("images[{index}].addr")),
            ConfigErrorKind::ImageOutsideRam {
                addr,
                size: Some(size),
            },
        ))
    }
}

/// Whether `[addr, addr + size)` (IPA) lies inside one non-io region of the
/// cell flagged `write` or `loadable`. A size of 0 is checked as one byte.
pub fn image_fits(cell: &CellConfig, addr: u64, size: u64) -> bool {
    let Some(span) = Span::of(addr, size.max(1)) else {
        return false;
    };
    cell.memory.iter().any(|r| {
        !r.has(MemFlag::Io)
            && (r.has(MemFlag::Write) || r.has(MemFlag::Loadable))
            && Span::of(r.virt_start, r.size).is_some_and(|v| span.inside(v))
    })
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        String::from(field)
    } else {
        format!("{prefix}.{field}")
    }
}

fn check_platform(sys: &SystemConfig, errs: &mut ConfigErrors) {
    let p = &sys.platform;
    if p.cpus.is_empty() {
        errs.push("platform.cpus", ConfigErrorKind::NoPlatformCpus);
    }
    for (i, mpidr) in p.cpus.iter().enumerate() {
        if let Some(first) = p.cpus[..i].iter().position(|m| m == mpidr) {
            errs.push(
                format!("platform.cpus[{i}]"),
                ConfigErrorKind::DuplicateMpidr {
                    mpidr: *mpidr,
                    first,
                },
            );
        }
    }
    if p.ram.is_empty() {
        errs.push("platform.ram", ConfigErrorKind::NoRam);
    }
    for (list, ranges) in [("platform.ram", &p.ram), ("platform.mmio", &p.mmio)] {
        for (i, r) in ranges.iter().enumerate() {
            let field = format!("{list}[{i}]");
            if r.size == 0 {
                errs.push(format!("{field}.size"), ConfigErrorKind::SizeZero);
            } else if r.end().is_none() {
                errs.push(
                    field,
                    ConfigErrorKind::RangeOverflow {
                        start: r.start,
                        size: r.size,
                    },
                );
            }
        }
    }

    let gic = &p.gic;
    let required: &[(&str, Option<u64>)] = match gic.version {
        3 => &[("gicr", gic.gicr)],
        2 => &[("gicc", gic.gicc), ("gich", gic.gich), ("gicv", gic.gicv)],
        version => {
            errs.push(
                "platform.gic.version",
                ConfigErrorKind::GicVersion { version },
            );
            &[]
        }
    };
    for (name, value) in required {
        if value.is_none() {
            errs.push(
                format!("platform.gic.{name}"),
                ConfigErrorKind::GicFrameMissing {
                    version: gic.version,
                },
            );
        }
    }
    if !PPI_RANGE.contains(&gic.maintenance_irq) {
        errs.push(
            "platform.gic.maintenance_irq",
            ConfigErrorKind::MaintenanceIrqNotPpi {
                irq: gic.maintenance_irq,
            },
        );
    }

    let hv = &sys.hypervisor.memory;
    match Span::of(hv.start, hv.size) {
        None => errs.push(
            "hypervisor.memory",
            ConfigErrorKind::RangeOverflow {
                start: hv.start,
                size: hv.size,
            },
        ),
        Some(span) => {
            if hv.size == 0 {
                errs.push("hypervisor.memory.size", ConfigErrorKind::SizeZero);
            } else if !p.ram.is_empty() && !span.inside_one(&p.ram) {
                errs.push(
                    "hypervisor.memory",
                    ConfigErrorKind::HypervisorNotInRam { span },
                );
            }
        }
    }
    for (name, value) in [("start", hv.start), ("size", hv.size)] {
        if value % HYPERVISOR_ALIGN != 0 {
            errs.push(
                format!("hypervisor.memory.{name}"),
                ConfigErrorKind::HypervisorMisaligned { value },
            );
        }
    }

    let base = sys.hypervisor.console.base;
    let console_ok = Span::of(base, CONSOLE_SIZE).is_some_and(|s| s.inside_one(&p.mmio));
    if !console_ok {
        errs.push(
            "hypervisor.console.base",
            ConfigErrorKind::ConsoleNotInMmio { base },
        );
    }
}

/// `{field}.size` is not 0 and each `(name, value)` is 4 KiB aligned
/// (`{field}.name`): what a memory region and an ivshmem link both need.
fn check_pages(field: &str, size: u64, aligned: &[(&str, u64)], errs: &mut ConfigErrors) {
    if size == 0 {
        errs.push(format!("{field}.size"), ConfigErrorKind::SizeZero);
    }
    for &(name, value) in aligned {
        if value % PAGE_SIZE != 0 {
            errs.push(
                format!("{field}.{name}"),
                ConfigErrorKind::NotPageAligned { value },
            );
        }
    }
}

/// The region checks that need only the cell: sizes, alignment, overflow and
/// overlaps in the cell's address space. Returns, per region, its physical
/// and virtual spans if the region passed them.
pub(crate) fn check_regions_local(
    cell: &CellConfig,
    prefix: &str,
    errs: &mut ConfigErrors,
) -> Vec<Option<(Span, Span)>> {
    let mut spans: Vec<Option<(Span, Span)>> = Vec::with_capacity(cell.memory.len());
    for (i, r) in cell.memory.iter().enumerate() {
        let field = join(prefix, &format!("memory[{i}]"));
        let before = errs.len();
        check_pages(
            &field,
            r.size,
            &[
                ("phys_start", r.phys_start),
                ("virt_start", r.virt_start),
                ("size", r.size),
            ],
            errs,
        );
        let phys = Span::of(r.phys_start, r.size);
        let virt = Span::of(r.virt_start, r.size);
        for (name, start, span) in [
            ("phys_start", r.phys_start, phys),
            ("virt_start", r.virt_start, virt),
        ] {
            if span.is_none() {
                errs.push(
                    format!("{field}.{name}"),
                    ConfigErrorKind::RangeOverflow {
                        start,
                        size: r.size,
                    },
                );
            }
        }
        if r.has(MemFlag::Io) && r.has(MemFlag::Execute) {
            errs.push(format!("{field}.flags"), ConfigErrorKind::IoExecute);
        }
        let ok = errs.len() == before;
        let pair = match (phys, virt) {
            (Some(p), Some(v)) if ok => Some((p, v)),
            _ => None,
        };
        if let Some((_, v)) = pair {
            let clash = spans
                .iter()
                .position(|s| s.is_some_and(|(_, ov)| ov.overlaps(v)));
            if let Some(other) = clash {
                errs.push(
                    field.clone(),
                    ConfigErrorKind::VirtOverlap { other, span: v },
                );
            }
        }
        spans.push(pair);
    }
    spans
}

fn region_spans(r: &MemoryRegion) -> Option<Span> {
    if r.size == 0 {
        return None;
    }
    Span::of(r.phys_start, r.size)
}

/// The region checks that need the system: RAM/MMIO placement, the
/// hypervisor's memory, and the regions of other non-root cells.
fn check_regions_placed(
    sys: &SystemConfig,
    cell: &CellConfig,
    prefix: &str,
    spans: &[Option<(Span, Span)>],
    others: &[&CellConfig],
    is_root: bool,
    errs: &mut ConfigErrors,
) {
    let p = &sys.platform;
    let hv = Span::of(sys.hypervisor.memory.start, sys.hypervisor.memory.size);
    for (i, (r, pair)) in cell.memory.iter().zip(spans).enumerate() {
        let Some((phys, _)) = *pair else { continue };
        let rfield = join(prefix, &format!("memory[{i}]"));
        if r.has(MemFlag::Io) {
            if !phys.inside_one(&p.mmio) {
                errs.push(rfield.clone(), ConfigErrorKind::OutsideMmio { span: phys });
            }
        } else if !phys.inside_one(&p.ram) {
            errs.push(rfield.clone(), ConfigErrorKind::OutsideRam { span: phys });
        }
        if let Some(hv) = hv {
            if phys.overlaps(hv) {
                errs.push(
                    rfield.clone(),
                    ConfigErrorKind::OverlapsHypervisor {
                        span: phys,
                        hypervisor: hv,
                    },
                );
            }
        }
        if is_root {
            continue;
        }
        'others: for other in others {
            for (j, o) in other.memory.iter().enumerate() {
                let Some(ospan) = region_spans(o) else {
                    continue;
                };
                let both_shared = r.has(MemFlag::Shared) && o.has(MemFlag::Shared);
                if phys.overlaps(ospan) && !both_shared {
                    errs.push(
                        rfield.clone(),
                        ConfigErrorKind::PhysOverlap {
                            span: phys,
                            other_cell: other.name.clone(),
                            other_region: j,
                        },
                    );
                    break 'others;
                }
            }
        }
    }
}

/// The CPU checks; those about the platform and the root cell only with a
/// system.
fn check_cpus(
    sys: Option<&SystemConfig>,
    cell: &CellConfig,
    prefix: &str,
    others: &[&CellConfig],
    is_root: bool,
    errs: &mut ConfigErrors,
) {
    if cell.cpus.is_empty() {
        errs.push(join(prefix, "cpus"), ConfigErrorKind::NoCpu);
    }
    for (k, &cpu) in cell.cpus.iter().enumerate() {
        let field = join(prefix, &format!("cpus[{k}]"));
        if let Some(count) = sys.map(|s| s.platform.cpus.len()) {
            if cpu as usize >= count {
                errs.push(field, ConfigErrorKind::CpuUnknown { cpu, count });
                continue;
            }
        }
        if cell.cpus[..k].contains(&cpu) {
            errs.push(field, ConfigErrorKind::CpuDuplicate { cpu });
            continue;
        }
        let Some(sys) = sys.filter(|_| !is_root) else {
            continue;
        };
        if let Some(other) = others.iter().find(|o| o.cpus.contains(&cpu)) {
            errs.push(
                field.clone(),
                ConfigErrorKind::CpuTaken {
                    cpu,
                    other_cell: other.name.clone(),
                },
            );
        }
        if !sys.root_cell.cpus.contains(&cpu) {
            errs.push(field, ConfigErrorKind::CpuNotInRoot { cpu });
        }
    }
    if let Some(sys) = sys.filter(|_| !is_root && !cell.cpus.is_empty()) {
        let taken: BTreeSet<u32> = others.iter().flat_map(|o| o.cpus.iter().copied()).collect();
        let left_before = sys.root_cell.cpus.iter().any(|c| !taken.contains(c));
        let left_after = sys
            .root_cell
            .cpus
            .iter()
            .any(|c| !taken.contains(c) && !cell.cpus.contains(c));
        if left_before && !left_after {
            errs.push(join(prefix, "cpus"), ConfigErrorKind::RootNoCpu);
        }
    }
}

/// The shared memory of a link, if its size and range are sound.
fn link_span(l: &IvshmemLink) -> Option<Span> {
    if l.size == 0 {
        return None;
    }
    Span::of(l.phys_start, l.size)
}

/// The ivshmem checks (docs/ivshmem.md): each link alone and against the
/// cell's regions; with a system, against the platform and, for a
/// non-root cell, against the root cell and the cells in `others`.
fn check_ivshmem(
    sys: Option<&SystemConfig>,
    cell: &CellConfig,
    prefix: &str,
    others: &[&CellConfig],
    is_root: bool,
    spans: &[Option<(Span, Span)>],
    errs: &mut ConfigErrors,
) {
    let mut peers: Vec<&CellConfig> = Vec::new();
    if let Some(sys) = sys.filter(|_| !is_root) {
        peers.push(&sys.root_cell);
        peers.extend(others.iter().copied());
    }
    // What earlier links of this cell occupy: (what, virt, regs, phys, id).
    let mut seen: Vec<(usize, Span, Span, Span, u32)> = Vec::new();
    for (k, l) in cell.ivshmem.iter().enumerate() {
        let field = join(prefix, &format!("ivshmem[{k}]"));
        let before = errs.len();
        check_pages(
            &field,
            l.size,
            &[
                ("phys_start", l.phys_start),
                ("virt_start", l.virt_start),
                ("size", l.size),
                ("regs", l.regs),
            ],
            errs,
        );
        let phys = Span::of(l.phys_start, l.size);
        let virt = Span::of(l.virt_start, l.size);
        let regs = Span::of(l.regs, PAGE_SIZE);
        for (name, start, size, span) in [
            ("phys_start", l.phys_start, l.size, phys),
            ("virt_start", l.virt_start, l.size, virt),
            ("regs", l.regs, PAGE_SIZE, regs),
        ] {
            if span.is_none() {
                errs.push(
                    format!("{field}.{name}"),
                    ConfigErrorKind::RangeOverflow { start, size },
                );
            }
        }
        let ok = errs.len() == before;

        if cell.ivshmem[..k].iter().any(|o| o.id == l.id) {
            errs.push(
                format!("{field}.id"),
                ConfigErrorKind::IvshmemIdDuplicate { id: l.id },
            );
        }
        let irq = l.irq;
        let ifield = format!("{field}.irq");
        let taken_by = peers
            .iter()
            .find(|o| o.irqs.contains(&irq) || o.ivshmem.iter().any(|x| x.irq == irq));
        if !SPI_RANGE.contains(&irq) {
            errs.push(ifield, ConfigErrorKind::IrqOutOfRange { irq });
        } else if cell.irqs.contains(&irq) {
            errs.push(ifield, ConfigErrorKind::IvshmemIrqInIrqs { irq });
        } else if cell.ivshmem[..k].iter().any(|o| o.irq == irq) {
            errs.push(ifield, ConfigErrorKind::IrqDuplicate { irq });
        } else if sys.and_then(|s| s.platform.smmu).and_then(|m| m.event_irq) == Some(irq) {
            errs.push(ifield, ConfigErrorKind::IrqHypervisors { irq });
        } else if let Some(other) = taken_by {
            errs.push(
                ifield,
                ConfigErrorKind::IrqTaken {
                    irq,
                    other_cell: other.name.clone(),
                },
            );
        }

        let (Some(phys), Some(virt), Some(regs)) = (phys, virt, regs) else {
            continue;
        };
        if !ok {
            continue;
        }

        // The cell's own address space.
        for (name, span) in [("virt_start", virt), ("regs", regs)] {
            let own_region = spans
                .iter()
                .position(|s| s.is_some_and(|(_, v)| v.overlaps(span)));
            let what = if let Some(i) = own_region {
                Some(format!("memory[{i}]"))
            } else if name == "regs" && regs.overlaps(virt) {
                Some(String::from("the link's own shared memory"))
            } else {
                seen.iter()
                    .find(|(_, v, r, _, _)| v.overlaps(span) || r.overlaps(span))
                    .map(|(j, ..)| format!("ivshmem[{j}]"))
            };
            if let Some(what) = what {
                errs.push(
                    format!("{field}.{name}"),
                    ConfigErrorKind::IvshmemVirtOverlap { what, span },
                );
            }
        }
        let own = spans
            .iter()
            .position(|s| s.is_some_and(|(p, _)| p.overlaps(phys)));
        if let Some(other_region) = own {
            errs.push(
                field.clone(),
                ConfigErrorKind::IvshmemPhysOverlap {
                    span: phys,
                    other_cell: cell.name.clone(),
                    other_region,
                },
            );
        }
        if let Some((_, _, _, _, other_id)) = seen.iter().find(|(_, _, _, p, _)| p.overlaps(phys)) {
            errs.push(
                field.clone(),
                ConfigErrorKind::IvshmemLinkOverlap {
                    span: phys,
                    other_cell: cell.name.clone(),
                    other_id: *other_id,
                },
            );
        }
        seen.push((k, virt, regs, phys, l.id));

        let Some(sys) = sys else { continue };
        let p = &sys.platform;
        if !phys.inside_one(&p.ram) {
            errs.push(field.clone(), ConfigErrorKind::OutsideRam { span: phys });
        }
        let hv = Span::of(sys.hypervisor.memory.start, sys.hypervisor.memory.size);
        if let Some(hv) = hv.filter(|hv| hv.overlaps(phys)) {
            errs.push(
                field.clone(),
                ConfigErrorKind::OverlapsHypervisor {
                    span: phys,
                    hypervisor: hv,
                },
            );
        }
        let buffer = sys
            .hypervisor
            .management
            .and_then(|m| Span::of(m.buffer.start, m.buffer.size));
        if let Some(buffer) = buffer.filter(|b| b.overlaps(phys)) {
            errs.push(
                field.clone(),
                ConfigErrorKind::OverlapsManagementBuffer { span: phys, buffer },
            );
        }

        // The other cells, the root cell included.
        let mut named_by: Vec<&str> = Vec::new();
        for other in &peers {
            let region = other
                .memory
                .iter()
                .position(|r| region_spans(r).is_some_and(|o| o.overlaps(phys)));
            if let Some(other_region) = region {
                errs.push(
                    field.clone(),
                    ConfigErrorKind::IvshmemPhysOverlap {
                        span: phys,
                        other_cell: other.name.clone(),
                        other_region,
                    },
                );
            }
            for o in &other.ivshmem {
                let Some(ospan) = link_span(o) else { continue };
                if o.id == l.id {
                    named_by.push(&other.name);
                    if ospan != phys {
                        errs.push(
                            field.clone(),
                            ConfigErrorKind::IvshmemPeerMismatch {
                                id: l.id,
                                peer: other.name.clone(),
                                peer_span: ospan,
                            },
                        );
                    }
                } else if ospan.overlaps(phys) {
                    errs.push(
                        field.clone(),
                        ConfigErrorKind::IvshmemLinkOverlap {
                            span: phys,
                            other_cell: other.name.clone(),
                            other_id: o.id,
                        },
                    );
                }
            }
        }
        if let [first, second, ..] = named_by[..] {
            errs.push(
                format!("{field}.id"),
                ConfigErrorKind::IvshmemTooManyPeers {
                    id: l.id,
                    first: String::from(first),
                    second: String::from(second),
                },
            );
        }
    }

    // The cell's regions and interrupts against the other cells' links.
    for (i, r) in cell.memory.iter().enumerate() {
        let Some(span) = spans.get(i).copied().flatten().map(|(p, _)| p) else {
            continue;
        };
        let hit = peers.iter().find_map(|o| {
            o.ivshmem
                .iter()
                .find(|l| link_span(l).is_some_and(|s| s.overlaps(span)))
                .map(|l| (o, l.id))
        });
        if let (Some((other, id)), false) = (hit, r.has(MemFlag::Io)) {
            errs.push(
                join(prefix, &format!("memory[{i}]")),
                ConfigErrorKind::OverlapsIvshmem {
                    span,
                    other_cell: other.name.clone(),
                    id,
                },
            );
        }
    }
    for (k, &irq) in cell.irqs.iter().enumerate() {
        let owner = peers
            .iter()
            .find(|o| o.ivshmem.iter().any(|l| l.irq == irq));
        if let Some(other) = owner {
            errs.push(
                join(prefix, &format!("irqs[{k}]")),
                ConfigErrorKind::IrqTaken {
                    irq,
                    other_cell: other.name.clone(),
                },
            );
        }
    }
}

fn check_cell(
    sys: Option<&SystemConfig>,
    cell: &CellConfig,
    prefix: &str,
    others: &[&CellConfig],
    is_root: bool,
    errs: &mut ConfigErrors,
) {
    let field = |f: &str| join(prefix, f);

    // Name.
    if cell.name.is_empty() {
        errs.push(field("name"), ConfigErrorKind::NameEmpty);
    } else if cell.name.len() > MAX_NAME_LEN {
        errs.push(
            field("name"),
            ConfigErrorKind::NameTooLong {
                len: cell.name.len(),
            },
        );
    }
    if let Some(sys) = sys.filter(|_| !is_root && !cell.name.is_empty()) {
        let first = if sys.root_cell.name == cell.name {
            Some(String::from("root_cell"))
        } else {
            others
                .iter()
                .find(|o| o.name == cell.name)
                .map(|o| format!("another cell (\"{}\")", o.name))
        };
        if let Some(first) = first {
            errs.push(
                field("name"),
                ConfigErrorKind::DuplicateName {
                    name: cell.name.clone(),
                    first,
                },
            );
        }
    }

    // Memory.
    let spans = check_regions_local(cell, prefix, errs);
    if let Some(sys) = sys {
        check_regions_placed(sys, cell, prefix, &spans, others, is_root, errs);
    }

    check_cpus(sys, cell, prefix, others, is_root, errs);

    // IRQs.
    for (k, &irq) in cell.irqs.iter().enumerate() {
        let ifield = field(&format!("irqs[{k}]"));
        if !SPI_RANGE.contains(&irq) {
            errs.push(ifield, ConfigErrorKind::IrqOutOfRange { irq });
            continue;
        }
        if cell.irqs[..k].contains(&irq) {
            errs.push(ifield, ConfigErrorKind::IrqDuplicate { irq });
            continue;
        }
        if sys.and_then(|s| s.platform.smmu).and_then(|m| m.event_irq) == Some(irq) {
            errs.push(ifield, ConfigErrorKind::IrqHypervisors { irq });
            continue;
        }
        if is_root {
            continue;
        }
        if let Some(other) = others.iter().find(|o| o.irqs.contains(&irq)) {
            errs.push(
                ifield,
                ConfigErrorKind::IrqTaken {
                    irq,
                    other_cell: other.name.clone(),
                },
            );
        }
    }

    // SMMU streams.
    for (k, &stream) in cell.streams.iter().enumerate() {
        let sfield = field(&format!("streams[{k}]"));
        if sys.is_some_and(|s| s.platform.smmu.is_none()) {
            errs.push(sfield, ConfigErrorKind::StreamWithoutSmmu { stream });
            continue;
        }
        if cell.streams[..k].contains(&stream) {
            errs.push(sfield, ConfigErrorKind::StreamDuplicate { stream });
            continue;
        }
        if is_root {
            continue;
        }
        if let Some(other) = others.iter().find(|o| o.streams.contains(&stream)) {
            errs.push(
                sfield,
                ConfigErrorKind::StreamTaken {
                    stream,
                    other_cell: other.name.clone(),
                },
            );
        }
    }

    check_ivshmem(sys, cell, prefix, others, is_root, &spans, errs);

    // Entry and images.
    let entry_ok = cell.memory.iter().zip(&spans).any(|(r, pair)| {
        r.has(MemFlag::Execute)
            && !r.has(MemFlag::Io)
            && pair.is_some_and(|(_, v)| v.start <= cell.entry && cell.entry < v.end)
    });
    if !entry_ok {
        errs.push(
            field("entry"),
            ConfigErrorKind::EntryNotExecutable { entry: cell.entry },
        );
    }
    for (k, image) in cell.images.iter().enumerate() {
        if !image_fits(cell, image.addr, 1) {
            errs.push(
                field(&format!("images[{k}].addr")),
                ConfigErrorKind::ImageOutsideRam {
                    addr: image.addr,
                    size: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use alloc::string::{String, ToString};
    use alloc::vec;

    fn region(phys: u64, virt: u64, size: u64, flags: &[MemFlag]) -> MemoryRegion {
        MemoryRegion {
            phys_start: phys,
            virt_start: virt,
            size,
            flags: flags.to_vec(),
            comment: None,
        }
    }

    const RWX: &[MemFlag] = &[MemFlag::Read, MemFlag::Write, MemFlag::Execute];
    const IO: &[MemFlag] = &[MemFlag::Read, MemFlag::Write, MemFlag::Io];

    /// The QEMU virt GICv3 system, as in configs/qemu-arm64-gicv3.toml.
    pub(crate) fn system() -> SystemConfig {
        SystemConfig {
            name: "qemu".to_string(),
            hypervisor: HypervisorConfig {
                memory: Range {
                    start: 0x4000_0000,
                    size: 0x100_0000,
                },
                console: Console {
                    base: 0x0900_0000,
                    kind: UartKind::Pl011,
                },
                management: None,
            },
            platform: Platform {
                cpus: vec![0, 1, 2, 3],
                ram: vec![Range {
                    start: 0x4000_0000,
                    size: 0x4000_0000,
                }],
                mmio: vec![Range {
                    start: 0x0800_0000,
                    size: 0x3800_0000,
                }],
                gic: GicConfig {
                    version: 3,
                    gicd: 0x0800_0000,
                    gicr: Some(0x080a_0000),
                    gicc: None,
                    gich: None,
                    gicv: None,
                    maintenance_irq: 25,
                },
                psci: PsciConfig {
                    conduit: PsciConduit::Smc,
                },
                smmu: None,
            },
            root_cell: CellConfig {
                name: "root".to_string(),
                cpus: vec![0, 1, 2, 3],
                memory: vec![
                    region(0x4100_0000, 0x4000_0000, 0x100_0000, RWX),
                    region(
                        0x0900_0000,
                        0x0900_0000,
                        0x1000,
                        &[MemFlag::Read, MemFlag::Write, MemFlag::Io, MemFlag::Shared],
                    ),
                ],
                irqs: vec![33],
                entry: 0x4000_0000,
                entry_x0: None,
                streams: Vec::new(),
                ivshmem: Vec::new(),
                passive_comm: false,
                images: vec![Image {
                    file: "root.bin".to_string(),
                    addr: 0x4000_0000,
                }],
            },
            boot_cells: vec![],
        }
    }

    pub(crate) fn demo_cell() -> CellConfig {
        CellConfig {
            name: "gic-demo".to_string(),
            cpus: vec![3],
            memory: vec![
                region(0x4200_0000, 0x4000_0000, 0x20_0000, RWX),
                region(0x0904_0000, 0x0900_0000, 0x1000, IO),
            ],
            irqs: vec![40],
            entry: 0x4000_0000,
            entry_x0: None,
            streams: Vec::new(),
            ivshmem: Vec::new(),
            passive_comm: false,
            images: vec![Image {
                file: "gic-demo.bin".to_string(),
                addr: 0x4000_0000,
            }],
        }
    }

    fn probe_cell() -> CellConfig {
        CellConfig {
            name: "probe".to_string(),
            cpus: vec![2],
            memory: vec![region(0x4220_0000, 0x4000_0000, 0x20_0000, RWX)],
            irqs: vec![],
            entry: 0x4000_0000,
            entry_x0: None,
            streams: Vec::new(),
            ivshmem: Vec::new(),
            passive_comm: false,
            images: vec![],
        }
    }

    fn messages(r: Result<(), ConfigErrors>) -> Vec<String> {
        match r {
            Ok(()) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// Asserts that validating `sys` yields exactly `expected`.
    #[track_caller]
    fn expect_sys(sys: &SystemConfig, expected: &[&str]) {
        assert_eq!(messages(validate_system(sys)), expected);
    }

    /// Asserts that validating `cell` as a boot cell of `sys` yields `expected`.
    #[track_caller]
    fn expect_boot(mut sys: SystemConfig, cell: CellConfig, expected: &[&str]) {
        sys.boot_cells.push(cell);
        expect_sys(&sys, expected);
    }

    #[test]
    fn good_system_passes() {
        let mut sys = system();
        expect_sys(&sys, &[]);
        sys.boot_cells = vec![demo_cell(), probe_cell()];
        expect_sys(&sys, &[]);
        assert_eq!(validate_cell(&sys, &demo_cell(), &[]), Ok(()));
    }

    #[test]
    fn name_empty() {
        let mut c = demo_cell();
        c.name.clear();
        expect_boot(system(), c, &["boot_cells[0]().name: name is empty"]);
    }

    #[test]
    fn name_too_long() {
        let mut sys = system();
        sys.root_cell.name = "r".repeat(32);
        expect_sys(
            &sys,
            &["root_cell.name: name is 32 bytes long, at most 31 allowed"],
        );
        sys.root_cell.name = "r".repeat(31);
        expect_sys(&sys, &[]);
    }

    #[test]
    fn duplicate_names() {
        let mut c = demo_cell();
        c.name = "root".to_string();
        expect_boot(
            system(),
            c,
            &["boot_cells[0](root).name: cell name \"root\" is already used by root_cell"],
        );
        let mut sys = system();
        sys.boot_cells = vec![demo_cell(), probe_cell()];
        sys.boot_cells[1].name = "gic-demo".to_string();
        expect_sys(
            &sys,
            &["boot_cells[1](gic-demo).name: cell name \"gic-demo\" is already used by another cell (\"gic-demo\")"],
        );
    }

    #[test]
    fn region_size_zero() {
        let mut sys = system();
        sys.root_cell.memory[1].size = 0;
        expect_sys(&sys, &["root_cell.memory[1].size: size is 0"]);
    }

    #[test]
    fn region_not_page_aligned() {
        let mut sys = system();
        sys.root_cell.memory[1].phys_start = 0x0900_0800;
        sys.root_cell.memory[1].virt_start = 0x0900_0010;
        sys.root_cell.memory[1].size = 0x1800;
        expect_sys(
            &sys,
            &[
                "root_cell.memory[1].phys_start: 0x9000800 is not 4 KiB aligned",
                "root_cell.memory[1].virt_start: 0x9000010 is not 4 KiB aligned",
                "root_cell.memory[1].size: 0x1800 is not 4 KiB aligned",
            ],
        );
    }

    #[test]
    fn region_overflow() {
        let mut sys = system();
        sys.root_cell.memory[1].phys_start = 0xffff_ffff_ffff_f000;
        sys.root_cell.memory[1].virt_start = 0xffff_ffff_ffff_f000;
        sys.root_cell.memory[1].size = 0x2000;
        expect_sys(
            &sys,
            &[
                "root_cell.memory[1].phys_start: range 0xfffffffffffff000 + 0x2000 overflows the 64-bit address space",
                "root_cell.memory[1].virt_start: range 0xfffffffffffff000 + 0x2000 overflows the 64-bit address space",
            ],
        );
    }

    #[test]
    fn regions_overlap_in_virt_space() {
        let mut sys = system();
        sys.root_cell.memory[1].virt_start = 0x40ff_f000;
        expect_sys(
            &sys,
            &["root_cell.memory[1]: overlaps memory[0] in the cell's address space (0x40fff000..0x41000000)"],
        );
    }

    #[test]
    fn ram_region_outside_ram() {
        let mut sys = system();
        sys.root_cell.memory[0].phys_start = 0x7f00_0000;
        sys.root_cell.memory[0].size = 0x200_0000;
        expect_sys(
            &sys,
            &["root_cell.memory[0]: physical range 0x7f000000..0x81000000 is not inside one platform.ram bank"],
        );
    }

    #[test]
    fn region_must_lie_in_one_bank() {
        let mut sys = system();
        // Two adjacent banks: a region across their border is refused.
        sys.platform.ram = vec![
            Range {
                start: 0x4000_0000,
                size: 0x2000_0000,
            },
            Range {
                start: 0x6000_0000,
                size: 0x2000_0000,
            },
        ];
        sys.root_cell.memory[0].phys_start = 0x5ff0_0000;
        sys.root_cell.memory[0].size = 0x20_0000;
        expect_sys(
            &sys,
            &["root_cell.memory[0]: physical range 0x5ff00000..0x60100000 is not inside one platform.ram bank"],
        );
    }

    #[test]
    fn io_region_outside_mmio() {
        let mut c = demo_cell();
        c.memory[1].phys_start = 0x4300_0000;
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).memory[1]: physical range 0x43000000..0x43001000 of an io region is not inside one platform.mmio window"],
        );
    }

    #[test]
    fn region_overlaps_hypervisor() {
        let mut sys = system();
        sys.root_cell.memory[0].phys_start = 0x40e0_0000;
        expect_sys(
            &sys,
            &["root_cell.memory[0]: physical range 0x40e00000..0x41e00000 overlaps the hypervisor's memory 0x40000000..0x41000000"],
        );
    }

    #[test]
    fn non_root_cells_phys_overlap() {
        let mut p = probe_cell();
        p.memory[0].phys_start = 0x4210_0000;
        let mut sys = system();
        sys.boot_cells = vec![demo_cell(), p];
        expect_sys(
            &sys,
            &["boot_cells[1](probe).memory[0]: physical range 0x42100000..0x42300000 overlaps memory[0] of cell \"gic-demo\" (only regions both flagged shared may overlap)"],
        );
        // Allowed when both are shared.
        sys.boot_cells[0].memory[0].flags.push(MemFlag::Shared);
        sys.boot_cells[1].memory[0].flags.push(MemFlag::Shared);
        expect_sys(&sys, &[]);
        // Not when only one is.
        sys.boot_cells[0].memory[0].flags.pop();
        assert_eq!(validate_system(&sys).unwrap_err().len(), 1);
    }

    #[test]
    fn non_root_may_overlap_root() {
        // gic-demo's RAM 0x42000000 lies inside nothing of the root here,
        // so move the root's RAM over it: still fine.
        let mut sys = system();
        sys.root_cell.memory[0].phys_start = 0x4200_0000;
        sys.boot_cells.push(demo_cell());
        expect_sys(&sys, &[]);
    }

    #[test]
    fn io_and_execute() {
        let mut sys = system();
        sys.root_cell.memory[1].flags.push(MemFlag::Execute);
        expect_sys(
            &sys,
            &["root_cell.memory[1].flags: flags io and execute together (device memory is never executable)"],
        );
    }

    #[test]
    fn cpu_not_on_platform() {
        let mut c = demo_cell();
        c.cpus = vec![4];
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).cpus[0]: CPU 4 does not exist (platform.cpus lists 4, ids 0..4)"],
        );
    }

    #[test]
    fn cpu_listed_twice() {
        let mut sys = system();
        sys.root_cell.cpus = vec![0, 1, 1];
        expect_sys(&sys, &["root_cell.cpus[2]: CPU 1 is listed twice"]);
    }

    #[test]
    fn cpu_given_to_two_cells() {
        let mut p = probe_cell();
        p.cpus = vec![3];
        let mut sys = system();
        sys.boot_cells = vec![demo_cell(), p];
        expect_sys(
            &sys,
            &["boot_cells[1](probe).cpus[0]: CPU 3 is already given to cell \"gic-demo\""],
        );
    }

    #[test]
    fn cpu_not_in_root() {
        let mut sys = system();
        sys.root_cell.cpus = vec![0, 1, 2];
        expect_boot(
            sys,
            demo_cell(),
            &["boot_cells[0](gic-demo).cpus[0]: CPU 3 is not a CPU of the root cell (non-root cells take their CPUs from it)"],
        );
    }

    #[test]
    fn root_left_without_cpu() {
        let mut sys = system();
        sys.root_cell.cpus = vec![2, 3];
        sys.boot_cells = vec![demo_cell(), probe_cell()];
        expect_sys(
            &sys,
            &["boot_cells[1](probe).cpus: leaves the root cell with no CPU"],
        );
    }

    #[test]
    fn cell_without_cpu() {
        let mut c = demo_cell();
        c.cpus.clear();
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).cpus: the cell has no CPU"],
        );
    }

    #[test]
    fn irq_out_of_range() {
        let mut sys = system();
        sys.root_cell.irqs = vec![31, 32, 1019, 1020];
        expect_sys(
            &sys,
            &[
                "root_cell.irqs[0]: IRQ 31 is not a shared peripheral interrupt (32..=1019)",
                "root_cell.irqs[3]: IRQ 1020 is not a shared peripheral interrupt (32..=1019)",
            ],
        );
    }

    #[test]
    fn irq_listed_twice() {
        let mut c = demo_cell();
        c.irqs = vec![40, 40];
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).irqs[1]: IRQ 40 is listed twice"],
        );
    }

    fn smmu_system() -> SystemConfig {
        let mut sys = system();
        sys.platform.smmu = Some(crate::config::SmmuConfig {
            base: 0x0905_0000,
            size: 0x2_0000,
            event_irq: None,
        });
        sys
    }

    #[test]
    fn smmu_event_irq_is_the_hypervisors() {
        let mut sys = smmu_system();
        if let Some(m) = sys.platform.smmu.as_mut() {
            m.event_irq = Some(106);
        }
        sys.root_cell.irqs.push(106);
        expect_sys(
            &sys,
            &["root_cell.irqs[1]: IRQ 106 is the SMMU's event interrupt (platform.smmu.event_irq), the hypervisor's"],
        );
    }

    #[test]
    fn stream_without_smmu() {
        let mut c = demo_cell();
        c.streams = vec![0x10];
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).streams[0]: stream 0x10 needs an SMMU, but platform.smmu is not set"],
        );
    }

    #[test]
    fn stream_listed_twice() {
        let mut c = demo_cell();
        c.streams = vec![0x10, 0x10];
        expect_boot(
            smmu_system(),
            c,
            &["boot_cells[0](gic-demo).streams[1]: stream 0x10 is listed twice"],
        );
    }

    #[test]
    fn stream_given_to_two_cells() {
        let (mut d, mut p) = (demo_cell(), probe_cell());
        d.streams = vec![0x10];
        p.streams = vec![0x10];
        let mut sys = smmu_system();
        sys.boot_cells = vec![d, p];
        expect_sys(
            &sys,
            &["boot_cells[1](probe).streams[0]: stream 0x10 is already given to cell \"gic-demo\""],
        );
    }

    #[test]
    fn irq_given_to_two_cells() {
        let mut p = probe_cell();
        p.irqs = vec![40];
        let mut sys = system();
        sys.boot_cells = vec![demo_cell(), p];
        expect_sys(
            &sys,
            &["boot_cells[1](probe).irqs[0]: IRQ 40 is already given to cell \"gic-demo\""],
        );
    }

    #[test]
    fn entry_not_executable() {
        let mut c = demo_cell();
        c.entry = 0x0900_0000; // the io region
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).entry: entry 0x9000000 is not inside an executable memory region of the cell"],
        );
        let mut c = demo_cell();
        c.memory[0].flags = vec![MemFlag::Read, MemFlag::Write];
        expect_boot(
            system(),
            c,
            &["boot_cells[0](gic-demo).entry: entry 0x40000000 is not inside an executable memory region of the cell"],
        );
    }

    #[test]
    fn image_outside_ram() {
        let mut sys = system();
        sys.root_cell.images[0].addr = 0x5000_0000;
        expect_sys(
            &sys,
            &["root_cell.images[0].addr: image at 0x50000000 is not inside one writable or loadable RAM region of the cell"],
        );
        // A read-only, executable region is not enough; loadable is.
        let mut sys = system();
        sys.root_cell.memory[0].flags = vec![MemFlag::Read, MemFlag::Execute];
        assert_eq!(validate_system(&sys).unwrap_err().len(), 1);
        sys.root_cell.memory[0].flags.push(MemFlag::Loadable);
        expect_sys(&sys, &[]);
    }

    #[test]
    fn image_size_checked() {
        let c = demo_cell();
        assert_eq!(check_image_size("", &c, 0, 0x20_0000), Ok(()));
        assert_eq!(
            check_image_size("boot_cells[0](gic-demo)", &c, 0, 0x20_0001)
                .unwrap_err()
                .to_string(),
            "boot_cells[0](gic-demo).images[0].addr: image at 0x40000000 (0x200001 bytes) is not inside one writable or loadable RAM region of the cell"
        );
    }

    #[test]
    fn platform_without_cpus_or_ram() {
        let mut sys = system();
        sys.platform.cpus.clear();
        sys.platform.ram.clear();
        sys.root_cell.cpus.clear();
        let msgs = messages(validate_system(&sys));
        assert_eq!(msgs[0], "platform.cpus: no CPU listed");
        assert_eq!(msgs[1], "platform.ram: no RAM bank listed");
        assert!(msgs.contains(&"root_cell.cpus: the cell has no CPU".to_string()));
    }

    #[test]
    fn duplicate_mpidr() {
        let mut sys = system();
        sys.platform.cpus = vec![0, 1, 0x100, 1];
        expect_sys(
            &sys,
            &["platform.cpus[3]: MPIDR 0x1 is already listed as platform.cpus[1]"],
        );
    }

    #[test]
    fn gic_version() {
        let mut sys = system();
        sys.platform.gic.version = 4;
        expect_sys(
            &sys,
            &["platform.gic.version: GIC version 4 is not supported (2 or 3)"],
        );
    }

    #[test]
    fn gic_v3_needs_gicr() {
        let mut sys = system();
        sys.platform.gic.gicr = None;
        expect_sys(
            &sys,
            &["platform.gic.gicr: missing, required for GIC version 3"],
        );
    }

    #[test]
    fn gic_v2_needs_cpu_interfaces() {
        let mut sys = system();
        sys.platform.gic.version = 2;
        sys.platform.gic.gicc = Some(0x0801_0000);
        expect_sys(
            &sys,
            &[
                "platform.gic.gich: missing, required for GIC version 2",
                "platform.gic.gicv: missing, required for GIC version 2",
            ],
        );
    }

    #[test]
    fn maintenance_irq_not_ppi() {
        let mut sys = system();
        sys.platform.gic.maintenance_irq = 33;
        expect_sys(
            &sys,
            &["platform.gic.maintenance_irq: INTID 33 is not a PPI (16..=31)"],
        );
    }

    #[test]
    fn hypervisor_not_in_ram() {
        let mut sys = system();
        sys.hypervisor.memory.start = 0x3f00_0000;
        expect_sys(
            &sys,
            &["hypervisor.memory: range 0x3f000000..0x40000000 is not inside one platform.ram bank"],
        );
    }

    #[test]
    fn hypervisor_not_2mib_aligned() {
        let mut sys = system();
        sys.hypervisor.memory.size = 0xf0_0000;
        expect_sys(
            &sys,
            &["hypervisor.memory.size: 0xf00000 is not 2 MiB aligned"],
        );
    }

    #[test]
    fn console_not_in_mmio() {
        let mut sys = system();
        sys.hypervisor.console.base = 0x0700_0000;
        expect_sys(
            &sys,
            &["hypervisor.console.base: UART page 0x7000000 is not inside one platform.mmio window"],
        );
    }

    #[test]
    fn platform_range_errors() {
        let mut sys = system();
        sys.platform.mmio.push(Range {
            start: 0x1000,
            size: 0,
        });
        expect_sys(&sys, &["platform.mmio[1].size: size is 0"]);
    }

    #[test]
    fn all_errors_collected() {
        let mut c = demo_cell();
        c.name.clear();
        c.cpus = vec![9];
        c.irqs = vec![3];
        c.memory[0].size = 0x1234;
        let mut sys = system();
        sys.boot_cells.push(c);
        sys.platform.gic.maintenance_irq = 99;
        let errs = validate_system(&sys).unwrap_err();
        assert!(errs.len() >= 5, "{errs}");
        assert_eq!(errs.to_string().lines().count(), errs.len());
    }

    #[test]
    fn cell_alone() {
        assert_eq!(validate_cell_alone(&demo_cell()), Ok(()));
        let mut c = demo_cell();
        c.cpus = vec![7, 7];
        c.memory[1].phys_start = 0x1234_0000_0000; // placement needs a system
        assert_eq!(
            messages(validate_cell_alone(&c)),
            ["cpus[1]: CPU 7 is listed twice"]
        );
    }

    #[test]
    fn validate_cell_fields_are_relative() {
        let sys = system();
        let demo = demo_cell();
        let mut p = probe_cell();
        p.cpus = vec![3];
        let msgs = messages(validate_cell(&sys, &p, &[&demo]));
        assert_eq!(
            msgs,
            ["cpus[0]: CPU 3 is already given to cell \"gic-demo\""]
        );
    }

    fn link(id: u32, phys: u64, virt: u64, irq: u32, regs: u64) -> IvshmemLink {
        IvshmemLink {
            id,
            phys_start: phys,
            virt_start: virt,
            size: 0x10_0000,
            regs,
            irq,
        }
    }

    /// The root cell and gic-demo joined by link 0 at 0x4300_0000 (1 MiB).
    fn linked() -> SystemConfig {
        let mut sys = system();
        sys.root_cell.ivshmem = vec![link(0, 0x4300_0000, 0x4300_0000, 108, 0x0c00_0000)];
        let mut d = demo_cell();
        d.ivshmem = vec![link(0, 0x4300_0000, 0x4080_0000, 109, 0x0c10_0000)];
        sys.boot_cells = vec![d];
        sys
    }

    #[test]
    fn ivshmem_good_pair_passes() {
        let sys = linked();
        expect_sys(&sys, &[]);
        let mut d = sys.boot_cells[0].clone();
        let mut root_only = sys.clone();
        root_only.boot_cells.clear();
        assert_eq!(validate_cell(&root_only, &d, &[]), Ok(()));
        d.ivshmem[0].irq = 1020;
        assert_eq!(
            messages(validate_cell_alone(&d)),
            ["ivshmem[0].irq: IRQ 1020 is not a shared peripheral interrupt (32..=1019)"]
        );
    }

    #[test]
    fn ivshmem_size_and_alignment() {
        let mut sys = linked();
        let l = &mut sys.boot_cells[0].ivshmem[0];
        l.regs = 0x0c10_0800;
        l.virt_start = 0x4080_0010;
        expect_sys(
            &sys,
            &[
                "boot_cells[0](gic-demo).ivshmem[0].virt_start: 0x40800010 is not 4 KiB aligned",
                "boot_cells[0](gic-demo).ivshmem[0].regs: 0xc100800 is not 4 KiB aligned",
            ],
        );
        let mut sys = linked();
        sys.root_cell.ivshmem[0].size = 0;
        sys.boot_cells.clear();
        expect_sys(&sys, &["root_cell.ivshmem[0].size: size is 0"]);
    }

    #[test]
    fn ivshmem_overflow() {
        let mut sys = linked();
        sys.boot_cells.clear();
        sys.root_cell.ivshmem[0].virt_start = !0xfff;
        expect_sys(
            &sys,
            &["root_cell.ivshmem[0].virt_start: range 0xfffffffffffff000 + 0x100000 overflows the 64-bit address space"],
        );
    }

    #[test]
    fn ivshmem_overlaps_own_address_space() {
        let mut sys = linked();
        let l = &mut sys.boot_cells[0].ivshmem[0];
        l.virt_start = 0x4010_0000; // inside its RAM
        l.regs = 0x0900_0000; // its UART
        expect_sys(
            &sys,
            &[
                "boot_cells[0](gic-demo).ivshmem[0].virt_start: 0x40100000..0x40200000 overlaps memory[0] in the cell's address space",
                "boot_cells[0](gic-demo).ivshmem[0].regs: 0x9000000..0x9001000 overlaps memory[1] in the cell's address space",
            ],
        );
        let mut sys = linked();
        sys.boot_cells[0].ivshmem[0].regs = 0x4080_1000;
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).ivshmem[0].regs: 0x40801000..0x40802000 overlaps the link's own shared memory in the cell's address space"],
        );
    }

    #[test]
    fn ivshmem_irq_rules() {
        let mut sys = linked();
        sys.boot_cells[0].irqs.push(109);
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).ivshmem[0].irq: IRQ 109 is also listed in irqs (the link's interrupt is the hypervisor's to raise)"],
        );
        let mut sys = linked();
        sys.boot_cells[0].ivshmem[0].irq = 108;
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).ivshmem[0].irq: IRQ 108 is already given to cell \"root\""],
        );
        let mut sys = linked();
        sys.boot_cells[0].ivshmem[0].irq = 33;
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).ivshmem[0].irq: IRQ 33 is already given to cell \"root\""],
        );
        let mut sys = linked();
        sys.boot_cells[0].irqs = vec![108];
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).irqs[0]: IRQ 108 is already given to cell \"root\""],
        );
        let mut sys = linked();
        let mut second = sys.root_cell.ivshmem[0];
        second.id = 1;
        second.phys_start = 0x4310_0000;
        second.virt_start = 0x4310_0000;
        second.regs = 0x0c00_1000;
        sys.root_cell.ivshmem.push(second);
        sys.boot_cells.clear();
        expect_sys(&sys, &["root_cell.ivshmem[1].irq: IRQ 108 is listed twice"]);
    }

    #[test]
    fn ivshmem_placement() {
        let mut sys = linked();
        sys.boot_cells.clear();
        sys.root_cell.ivshmem[0].phys_start = 0x8000_0000;
        sys.root_cell.ivshmem[0].virt_start = 0x8000_0000;
        expect_sys(
            &sys,
            &["root_cell.ivshmem[0]: physical range 0x80000000..0x80100000 is not inside one platform.ram bank"],
        );
        sys.root_cell.ivshmem[0].phys_start = 0x4000_0000;
        expect_sys(
            &sys,
            &["root_cell.ivshmem[0]: physical range 0x40000000..0x40100000 overlaps the hypervisor's memory 0x40000000..0x41000000"],
        );
        sys.root_cell.ivshmem[0].phys_start = 0x4300_0000;
        sys.hypervisor.management = Some(Management {
            page: 0x0c00_0000,
            buffer: Range {
                start: 0x4300_0000,
                size: 0x100_0000,
            },
        });
        expect_sys(
            &sys,
            &["root_cell.ivshmem[0]: physical range 0x43000000..0x43100000 overlaps the management buffer 0x43000000..0x44000000"],
        );
    }

    #[test]
    fn ivshmem_phys_overlaps_cells() {
        let mut sys = linked();
        sys.boot_cells.clear();
        sys.root_cell.ivshmem[0].phys_start = 0x4100_0000;
        expect_sys(
            &sys,
            &["root_cell.ivshmem[0]: shared memory 0x41000000..0x41100000 overlaps memory[0] of cell \"root\""],
        );
        // A non-root link over another cell's RAM, and a cell's RAM over
        // another cell's link.
        let mut sys = linked();
        sys.boot_cells[0].ivshmem[0].phys_start = 0x4220_0000;
        sys.boot_cells.push(probe_cell());
        expect_sys(
            &sys,
            &[
                "boot_cells[0](gic-demo).ivshmem[0]: link id 0: the peer cell \"root\" shares 0x43000000..0x43100000, not this range",
                "boot_cells[1](probe).memory[0]: physical range 0x42200000..0x42400000 overlaps the shared memory of ivshmem link 0 of cell \"gic-demo\"",
            ],
        );
    }

    #[test]
    fn ivshmem_links_overlap() {
        let mut sys = linked();
        sys.boot_cells[0].ivshmem[0].id = 1;
        expect_sys(
            &sys,
            &["boot_cells[0](gic-demo).ivshmem[0]: shared memory 0x43000000..0x43100000 overlaps that of ivshmem link 0 of cell \"root\""],
        );
    }

    #[test]
    fn ivshmem_third_peer_and_duplicate_id() {
        let mut sys = linked();
        let mut p = probe_cell();
        p.ivshmem = vec![link(0, 0x4300_0000, 0x4080_0000, 110, 0x0c10_0000)];
        sys.boot_cells.push(p);
        expect_sys(
            &sys,
            &["boot_cells[1](probe).ivshmem[0].id: link id 0 already joins cells \"root\" and \"gic-demo\" (a link has two peers)"],
        );
        let mut sys = linked();
        sys.boot_cells.clear();
        let mut again = sys.root_cell.ivshmem[0];
        again.phys_start = 0x4310_0000;
        again.virt_start = 0x4310_0000;
        again.regs = 0x0c00_1000;
        again.irq = 110;
        sys.root_cell.ivshmem.push(again);
        expect_sys(&sys, &["root_cell.ivshmem[1].id: link id 0 is named twice"]);
    }
}
