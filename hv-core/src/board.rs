//! What a board's device tree says about it, and the check of a system
//! config against it.
//!
//! [`BoardInfo::from_dtb`] reads RAM banks (`/memory*` nodes), CPUs (`/cpus`
//! children with `device_type = "cpu"`: `reg` is the MPIDR affinity), the GIC
//! (`arm,gic-v3`; `arm,cortex-a15-gic`, `arm,gic-400` and other GICv2
//! compatibles), the PSCI conduit (`method` of the node compatible with
//! `arm,psci*`: `/psci`, `/firmware/psci`) and the console UART
//! (`/chosen` `stdout-path`) with its kind ([`uart_kind`]). Addresses are
//! read with the parent node's `#address-cells`/`#size-cells`; the GIC's and
//! the console's are translated through the `ranges` of the buses above
//! them (Marvell's `config-space`, TI K3's `bus@...`), as dt-cellgen does.
//!
//! The blob is checked for structural soundness (offsets, token stream,
//! strings, nesting depth) before the `fdt` crate walks it, so a corrupt DTB
//! yields a [`BoardError`] rather than a panic inside the parser.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use fdt::node::FdtNode;
use fdt::Fdt;

use crate::config::{PsciConduit, Range, SystemConfig, UartKind};
use crate::validate::{ConfigErrorKind, ConfigErrors, Span};

/// One CPU of the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardCpu {
    /// MPIDR affinity bits, from the CPU node's `reg`.
    pub mpidr: u64,
    /// `enable-method` (`psci`, `spin-table`), if given.
    pub enable_method: Option<String>,
}

/// The board's interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardGic {
    /// 2 or 3.
    pub version: u8,
    pub gicd: u64,
    /// GICv3: first redistributor region.
    pub gicr: Option<u64>,
    /// GICv2 (and GICv3 with legacy frames): CPU interface.
    pub gicc: Option<u64>,
    pub gich: Option<u64>,
    pub gicv: Option<u64>,
    /// INTID of the maintenance interrupt, from the node's `interrupts`
    /// (a PPI: 16 + its number).
    pub maintenance_irq: Option<u32>,
}

/// What the board's DTB says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardInfo {
    /// Model string of the root node, if any.
    pub model: Option<String>,
    /// RAM banks, in DT order.
    pub ram: Vec<Range>,
    /// CPUs, in DT order.
    pub cpus: Vec<BoardCpu>,
    pub gic: Option<BoardGic>,
    pub psci: Option<PsciConduit>,
    /// Base address of the `stdout-path` UART.
    pub uart: Option<u64>,
    /// Kind of the `stdout-path` UART, if the hypervisor has a driver for it.
    pub uart_kind: Option<UartKind>,
}

/// Why a DTB was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardError {
    /// The blob's header or structure is broken.
    BadDtb(String),
    /// A `reg` property of this node cannot be read.
    BadReg { node: String },
    /// A property with a value this module does not understand.
    BadProperty { node: String, property: String },
    /// The DTB lacks a required node.
    MissingNode(&'static str),
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDtb(why) => write!(f, "device tree: {why}"),
            Self::BadReg { node } => write!(f, "device tree: {node}: unreadable reg property"),
            Self::BadProperty { node, property } => {
                write!(f, "device tree: {node}: unexpected value of {property}")
            }
            Self::MissingNode(what) => write!(f, "device tree: no {what} node"),
        }
    }
}

impl core::error::Error for BoardError {}

const GICV3_COMPATIBLE: &[&str] = &["arm,gic-v3"];
const GICV2_COMPATIBLE: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
    "arm,arm11mp-gic",
];

/// PL011 compatibles.
const PL011: &[&str] = &["arm,pl011", "arm,sbsa-uart"];
/// Cadence UART compatibles (the registers the console uses are the same in
/// every revision).
const CADENCE: &[&str] = &[
    "cdns,uart-r1p12",
    "cdns,uart-r1p8",
    "xlnx,xuartps",
    "xlnx,zynqmp-uart",
];
/// 16550s whose registers are 32 bits apart by definition.
const NS16550_STRIDE4: &[&str] = &[
    "mediatek,mt6577-uart",
    "nvidia,tegra20-uart",
    "ti,am654-uart",
];
/// 16550s whose stride the node states with `reg-shift`.
const NS16550: &[&str] = &[
    "ns16550a",
    "ns16550",
    "ns8250",
    "snps,dw-apb-uart",
    "nvidia,tegra20-uart",
    "ti,omap4-uart",
    "ti,am654-uart",
    "marvell,armada-38x-uart",
    "brcm,bcm2835-aux-uart",
];

/// Which of the hypervisor's console drivers fits a UART node, from its
/// `compatible` strings and its `reg-shift` and `reg-io-width` properties;
/// `None` if none does (a 16550 with 8-bit register stride, for one).
pub fn uart_kind(
    compatible: &[&str],
    reg_shift: Option<u32>,
    reg_io_width: Option<u32>,
) -> Option<UartKind> {
    let any = |list: &[&str]| compatible.iter().any(|c| list.contains(c));
    if any(PL011) {
        Some(UartKind::Pl011)
    } else if any(CADENCE) {
        Some(UartKind::Cadence)
    } else if any(NS16550_STRIDE4)
        || (any(NS16550)
            && (reg_shift == Some(2) || (reg_shift.is_none() && reg_io_width == Some(4))))
    {
        Some(UartKind::Ns16550)
    } else {
        None
    }
}

fn node_uart_kind(node: FdtNode<'_, '_>) -> Option<UartKind> {
    let compatible: Vec<&str> = node
        .compatible()
        .map(|c| c.all().collect())
        .unwrap_or_default();
    let u32_prop = |name: &str| {
        let v = node.property(name)?.value;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    };
    uart_kind(&compatible, u32_prop("reg-shift"), u32_prop("reg-io-width"))
}

impl BoardInfo {
    /// Reads a flattened device tree.
    pub fn from_dtb(dtb: &[u8]) -> Result<Self, BoardError> {
        sanity::check(dtb).map_err(BoardError::BadDtb)?;
        let fdt = Fdt::new(dtb).map_err(|e| BoardError::BadDtb(format!("{e:?}")))?;
        let root = fdt.find_node("/").ok_or(BoardError::MissingNode("root"))?;

        let model = root
            .property("model")
            .and_then(|p| p.as_str())
            .map(|s| s.to_string());

        let mut ram = Vec::new();
        for node in root.children() {
            let is_memory = node.name.split('@').next() == Some("memory")
                || prop_str(node, "device_type") == Some("memory");
            if !is_memory || prop_str(node, "status").is_some_and(|s| s != "okay" && s != "ok") {
                continue;
            }
            for (start, size) in reg(node)? {
                if size > 0 {
                    ram.push(Range { start, size });
                }
            }
        }

        let cpus_node = fdt
            .find_node("/cpus")
            .ok_or(BoardError::MissingNode("/cpus"))?;
        let mut cpus = Vec::new();
        for node in cpus_node.children() {
            let is_cpu = prop_str(node, "device_type") == Some("cpu")
                || node.name.split('@').next() == Some("cpu");
            if !is_cpu || prop_str(node, "status").is_some_and(|s| s == "disabled") {
                continue;
            }
            let (mpidr, _) = reg(node)?
                .first()
                .copied()
                .ok_or_else(|| BoardError::BadReg {
                    node: node.name.to_string(),
                })?;
            cpus.push(BoardCpu {
                mpidr,
                enable_method: prop_str(node, "enable-method").map(|s| s.to_string()),
            });
        }

        let gic = read_gic(&fdt)?;

        // `/psci` on most boards, `/firmware/psci` on TI K3: the first
        // enabled node compatible with `arm,psci*`, as dt-cellgen looks
        // (else a `/psci` without `compatible`).
        let psci_path = path_of(&fdt, |n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|s| s.starts_with("arm,psci")))
                && prop_str(n, "status").is_none_or(|s| s == "okay" || s == "ok")
        })
        .or_else(|| fdt.find_node("/psci").map(|_| String::from("/psci")));
        let psci = match psci_path
            .as_deref()
            .and_then(|p| Some((p, fdt.find_node(p)?)))
        {
            None => None,
            Some((path, node)) => match prop_str(node, "method") {
                Some("smc") => Some(PsciConduit::Smc),
                Some("hvc") => Some(PsciConduit::Hvc),
                _ => {
                    return Err(BoardError::BadProperty {
                        node: path.to_string(),
                        property: "method".to_string(),
                    })
                }
            },
        };

        let (uart, uart_kind) = match fdt
            .find_node("/chosen")
            .and_then(|c| prop_str(c, "stdout-path"))
        {
            None => (None, None),
            Some(path) => {
                let path = path.split(':').next().unwrap_or(path);
                // An alias names the node's full path in /aliases.
                let full = match path.starts_with('/') {
                    true => Some(path),
                    false => fdt.find_node("/aliases").and_then(|a| prop_str(a, path)),
                };
                match fdt.find_node(path) {
                    Some(node) => {
                        let base = reg(node)?.first().map(|&(base, _)| base);
                        let base = match (base, full) {
                            (Some(b), Some(full)) => Some(translate(&fdt, full, b)?),
                            (b, _) => b,
                        };
                        (base, node_uart_kind(node))
                    }
                    None => (None, None),
                }
            }
        };

        Ok(Self {
            model,
            ram,
            cpus,
            gic,
            psci,
            uart,
            uart_kind,
        })
    }
}

fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    node.property(name).and_then(|p| p.as_str())
}

fn be(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        0 => Some(0),
        4 => Some(u64::from(u32::from_be_bytes(bytes.try_into().ok()?))),
        8 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

/// The `(address, size)` pairs of a node's `reg` (size 0 when
/// `#size-cells` is 0); empty without `reg`.
fn reg(node: FdtNode<'_, '_>) -> Result<Vec<(u64, u64)>, BoardError> {
    let bad = || BoardError::BadReg {
        node: node.name.to_string(),
    };
    let Some(iter) = node.raw_reg() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for r in iter {
        if r.address.is_empty() {
            return Err(bad());
        }
        out.push((be(r.address).ok_or_else(bad)?, be(r.size).ok_or_else(bad)?));
    }
    Ok(out)
}

/// How deep [`path_of`] looks (the sanity check bounds nesting too).
const MAX_DEPTH: usize = 32;

/// The path of the first node (depth first, in DT order) that `pred`
/// accepts.
fn path_of(fdt: &Fdt<'_>, pred: impl Fn(FdtNode<'_, '_>) -> bool) -> Option<String> {
    fn walk(
        node: FdtNode<'_, '_>,
        path: &str,
        depth: usize,
        pred: &dyn Fn(FdtNode<'_, '_>) -> bool,
    ) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        for child in node.children() {
            let p = format!("{path}/{}", child.name);
            if pred(child) {
                return Some(p);
            }
            if let Some(found) = walk(child, &p, depth + 1, pred) {
                return Some(found);
            }
        }
        None
    }
    walk(fdt.find_node("/")?, "", 0, &pred)
}

/// A node's own `#address-cells` or `#size-cells` (for its children), or
/// `default`.
fn own_cells(node: FdtNode<'_, '_>, name: &str, default: usize) -> Result<usize, BoardError> {
    match node.property(name) {
        None => Ok(default),
        Some(p) => match be(p.value) {
            Some(v) if v <= 2 => Ok(v as usize),
            _ => Err(BoardError::BadProperty {
                node: node.name.to_string(),
                property: name.to_string(),
            }),
        },
    }
}

/// `addr`, an address in the bus of the node at `path` (the address space
/// of its parent), as the CPU sees it: translated through the `ranges` of
/// every bus above the node. A bus with an empty `ranges` is an identity
/// one; a bus without `ranges`, or an address outside every window, leaves
/// the address as it is (it is not a CPU address, and the check will say
/// so by a mismatch).
fn translate(fdt: &Fdt<'_>, path: &str, addr: u64) -> Result<u64, BoardError> {
    // The buses: each proper prefix of the path but the root.
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut a = addr;
    for depth in (1..parts.len()).rev() {
        let bus_path = format!("/{}", parts[..depth].join("/"));
        let parent_path = match depth {
            1 => String::from("/"),
            _ => format!("/{}", parts[..depth - 1].join("/")),
        };
        let (Some(bus), Some(parent)) = (fdt.find_node(&bus_path), fdt.find_node(&parent_path))
        else {
            return Ok(addr);
        };
        let Some(ranges) = bus.property("ranges") else {
            return Ok(addr);
        };
        if ranges.value.is_empty() {
            continue;
        }
        let child_ac = own_cells(bus, "#address-cells", 2)?;
        let size_c = own_cells(bus, "#size-cells", 1)?;
        let parent_ac = own_cells(parent, "#address-cells", 2)?;
        let entry = 4 * (child_ac + parent_ac + size_c);
        let bad = || BoardError::BadProperty {
            node: bus.name.to_string(),
            property: "ranges".to_string(),
        };
        if entry == 0 || ranges.value.len() % entry != 0 {
            return Err(bad());
        }
        let mut mapped = None;
        for e in ranges.value.chunks_exact(entry) {
            let (c, rest) = e.split_at(4 * child_ac);
            let (p, z) = rest.split_at(4 * parent_ac);
            let (c, p, z) = (
                be(c).ok_or_else(bad)?,
                be(p).ok_or_else(bad)?,
                be(z).ok_or_else(bad)?,
            );
            if a >= c && a - c < z {
                mapped = Some(p.checked_add(a - c).ok_or_else(bad)?);
                break;
            }
        }
        match mapped {
            Some(m) => a = m,
            None => return Ok(addr),
        }
    }
    Ok(a)
}

fn read_gic(fdt: &Fdt<'_>) -> Result<Option<BoardGic>, BoardError> {
    let (node, version) = if let Some(n) = fdt.find_compatible(GICV3_COMPATIBLE) {
        (n, 3)
    } else if let Some(n) = fdt.find_compatible(GICV2_COMPATIBLE) {
        (n, 2)
    } else {
        return Ok(None);
    };
    let compatible = if version == 3 {
        GICV3_COMPATIBLE
    } else {
        GICV2_COMPATIBLE
    };
    let mut regs = reg(node)?;
    if let Some(path) = path_of(fdt, |n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| compatible.contains(&s)))
    }) {
        for r in regs.iter_mut() {
            r.0 = translate(fdt, &path, r.0)?;
        }
    }
    let at = |i: usize| regs.get(i).map(|&(a, _)| a);
    let gicd = at(0).ok_or_else(|| BoardError::BadReg {
        node: node.name.to_string(),
    })?;
    let maintenance_irq = node.property("interrupts").and_then(|p| {
        // <type number flags>: type 1 = PPI, INTID 16 + number.
        let v = p.value;
        if v.len() < 12 {
            return None;
        }
        let kind = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        let num = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
        (kind == 1 && num < 16).then_some(16 + num)
    });
    Ok(Some(if version == 3 {
        // reg: GICD, GICR region(s) (#redistributor-regions), then the
        // optional GICC, GICH, GICV.
        let regions = node
            .property("#redistributor-regions")
            .and_then(|p| p.as_usize())
            .unwrap_or(1)
            .max(1);
        BoardGic {
            version,
            gicd,
            gicr: at(1),
            gicc: at(1 + regions),
            gich: at(2 + regions),
            gicv: at(3 + regions),
            maintenance_irq,
        }
    } else {
        BoardGic {
            version,
            gicd,
            gicr: None,
            gicc: at(1),
            gich: at(2),
            gicv: at(3),
            maintenance_irq,
        }
    }))
}

/// Checks a system config against the board: every configured CPU's MPIDR
/// exists, every `platform.ram` bank lies inside the board's RAM, the GIC
/// version and frame addresses (and maintenance IRQ, when the DT names one)
/// are equal, and so is the PSCI conduit. When the console is the DT's
/// `stdout-path` UART, its kind must be the one the DT describes.
pub fn check_against_board(sys: &SystemConfig, board: &BoardInfo) -> Result<(), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    for (i, &mpidr) in sys.platform.cpus.iter().enumerate() {
        if !board.cpus.iter().any(|c| c.mpidr == mpidr) {
            errs.push(
                format!("platform.cpus[{i}]"),
                ConfigErrorKind::CpuNotOnBoard { mpidr },
            );
        }
    }
    let board_ram: Vec<Span> = board
        .ram
        .iter()
        .filter_map(|r| {
            Some(Span {
                start: r.start,
                end: r.end()?,
            })
        })
        .collect();
    for (i, r) in sys.platform.ram.iter().enumerate() {
        let Some(end) = r.end() else { continue };
        let span = Span {
            start: r.start,
            end,
        };
        if !board_ram
            .iter()
            .any(|b| b.start <= span.start && span.end <= b.end)
        {
            errs.push(
                format!("platform.ram[{i}]"),
                ConfigErrorKind::RamNotOnBoard { span },
            );
        }
    }

    let gic = &sys.platform.gic;
    match &board.gic {
        None => errs.push(
            "platform.gic",
            ConfigErrorKind::BoardLacks {
                what: "GIC (arm,gic-v3 or a GICv2 compatible)",
            },
        ),
        Some(b) if b.version != gic.version => errs.push(
            "platform.gic.version",
            ConfigErrorKind::GicVersionMismatch {
                configured: gic.version,
                board: b.version,
            },
        ),
        Some(b) => {
            let frames: &[(&str, Option<u64>, Option<u64>)] = &[
                ("gicd", Some(gic.gicd), Some(b.gicd)),
                ("gicr", gic.gicr, b.gicr),
                ("gicc", gic.gicc, b.gicc),
                ("gich", gic.gich, b.gich),
                ("gicv", gic.gicv, b.gicv),
            ];
            for &(name, configured, on_board) in frames {
                let field = format!("platform.gic.{name}");
                match (configured, on_board) {
                    (Some(c), Some(o)) if c != o => errs.push(
                        field,
                        ConfigErrorKind::AddressMismatch {
                            configured: c,
                            board: o,
                        },
                    ),
                    (Some(_), None) => errs.push(
                        field,
                        ConfigErrorKind::BoardLacks {
                            what: "such GIC frame",
                        },
                    ),
                    _ => {}
                }
            }
            if let Some(irq) = b.maintenance_irq {
                if irq != gic.maintenance_irq {
                    errs.push(
                        "platform.gic.maintenance_irq",
                        ConfigErrorKind::MaintenanceIrqMismatch {
                            configured: gic.maintenance_irq,
                            board: irq,
                        },
                    );
                }
            }
        }
    }

    match board.psci {
        None => errs.push(
            "platform.psci.conduit",
            ConfigErrorKind::BoardLacks {
                what: "PSCI node (compatible arm,psci*)",
            },
        ),
        Some(c) if c != sys.platform.psci.conduit => errs.push(
            "platform.psci.conduit",
            ConfigErrorKind::PsciMismatch {
                configured: sys.platform.psci.conduit,
                board: c,
            },
        ),
        Some(_) => {}
    }

    let console = &sys.hypervisor.console;
    if let (Some(base), Some(kind)) = (board.uart, board.uart_kind) {
        if base == console.base && kind != console.kind {
            errs.push(
                "hypervisor.console.kind",
                ConfigErrorKind::UartKindMismatch {
                    configured: console.kind,
                    board: kind,
                },
            );
        }
    }
    errs.into_result()
}

/// Structural checks of a flattened device tree, so that the `fdt` crate
/// (which panics on some malformed input) only sees sound blobs.
mod sanity {
    use alloc::format;
    use alloc::string::String;

    const MAGIC: u32 = 0xd00d_feed;
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    const END: u32 = 9;
    /// The `fdt` crate tracks at most this many nested nodes.
    const MAX_DEPTH: usize = 62;

    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        let bytes = b.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn cstr_len(b: &[u8]) -> Option<usize> {
        let n = b.iter().position(|&c| c == 0)?;
        core::str::from_utf8(&b[..n]).ok()?;
        Some(n)
    }

    pub(super) fn check(dtb: &[u8]) -> Result<(), String> {
        let field = |i: usize| u32_at(dtb, i * 4).map(|v| v as usize);
        let (Some(magic), Some(total), Some(off_struct), Some(off_strings), Some(off_rsv)) =
            (field(0), field(1), field(2), field(3), field(4))
        else {
            return Err(format!("too short ({} bytes)", dtb.len()));
        };
        if magic != MAGIC as usize {
            return Err(format!("bad magic {magic:#x}"));
        }
        if total > dtb.len() {
            return Err(format!(
                "header says {total} bytes, only {} present",
                dtb.len()
            ));
        }
        let (Some(size_strings), Some(size_struct)) = (field(8), field(9)) else {
            return Err("header truncated".into());
        };
        let strings = off_strings
            .checked_add(size_strings)
            .filter(|&e| e <= total)
            .map(|e| &dtb[off_strings..e])
            .ok_or("strings block outside the blob")?;
        let structs = off_struct
            .checked_add(size_struct)
            .filter(|&e| e <= total)
            .map(|e| &dtb[off_struct..e])
            .ok_or("structure block outside the blob")?;
        if off_rsv >= total {
            return Err("memory reservation map outside the blob".into());
        }
        // The reservation map ends with an all-zero entry inside the blob.
        let mut at = off_rsv;
        loop {
            let entry = at
                .checked_add(16)
                .and_then(|e| dtb.get(at..e).filter(|_| e <= total))
                .ok_or("memory reservation map not terminated")?;
            if entry.iter().all(|&b| b == 0) {
                break;
            }
            at += 16;
        }

        let mut at = 0usize;
        let mut depth = 0usize;
        let mut seen_root = false;
        loop {
            let token = u32_at(structs, at).ok_or("structure block ends without FDT_END")?;
            at += 4;
            match token {
                BEGIN_NODE => {
                    if depth == 0 && seen_root {
                        return Err("more than one root node".into());
                    }
                    seen_root = true;
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err("nodes nested too deep".into());
                    }
                    let name = structs
                        .get(at..)
                        .and_then(cstr_len)
                        .ok_or("bad node name")?;
                    at += (name + 1 + 3) & !3;
                    // fdt expects properties before children; a property
                    // after a child node is refused below.
                }
                END_NODE => {
                    depth = depth.checked_sub(1).ok_or("unbalanced FDT_END_NODE")?;
                }
                PROP => {
                    if depth == 0 {
                        return Err("property outside a node".into());
                    }
                    let len = u32_at(structs, at).ok_or("truncated property")? as usize;
                    let nameoff = u32_at(structs, at + 4).ok_or("truncated property")? as usize;
                    at += 8;
                    let value = at
                        .checked_add(len)
                        .and_then(|e| structs.get(at..e))
                        .ok_or("property value outside the structure block")?;
                    let name_len = strings
                        .get(nameoff..)
                        .and_then(cstr_len)
                        .ok_or("property name outside the strings block")?;
                    let name = &strings[nameoff..nameoff + name_len];
                    if (name == b"#address-cells" || name == b"#size-cells") && value.len() != 4 {
                        return Err("#address-cells/#size-cells is not one cell".into());
                    }
                    at += (len + 3) & !3;
                }
                NOP => {}
                END => {
                    if depth != 0 || !seen_root {
                        return Err("FDT_END inside a node".into());
                    }
                    break;
                }
                other => return Err(format!("unknown token {other:#x}")),
            }
        }
        check_order(structs)
    }

    /// Properties must come before the child nodes of a node.
    fn check_order(structs: &[u8]) -> Result<(), String> {
        let mut at = 0usize;
        // Per depth: has a child node been seen?
        let mut child_seen = [false; MAX_DEPTH + 2];
        let mut depth = 0usize;
        while let Some(token) = u32_at(structs, at) {
            at += 4;
            match token {
                BEGIN_NODE => {
                    if depth > 0 {
                        child_seen[depth] = true;
                    }
                    depth += 1;
                    child_seen[depth] = false;
                    let name = structs.get(at..).and_then(cstr_len).unwrap_or(0);
                    at += (name + 1 + 3) & !3;
                }
                END_NODE => depth = depth.saturating_sub(1),
                PROP => {
                    if child_seen[depth] {
                        return Err("property after a child node".into());
                    }
                    let len = u32_at(structs, at).unwrap_or(0) as usize;
                    at += 8 + ((len + 3) & !3);
                }
                END => break,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal flattened device tree writer for tests.
    pub(crate) struct DtbBuilder {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl DtbBuilder {
        pub(crate) fn new() -> Self {
            Self {
                structs: Vec::new(),
                strings: Vec::new(),
            }
        }

        pub(crate) fn begin(&mut self, name: &str) -> &mut Self {
            self.structs.extend_from_slice(&1u32.to_be_bytes());
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
            self
        }

        pub(crate) fn end(&mut self) -> &mut Self {
            self.structs.extend_from_slice(&2u32.to_be_bytes());
            self
        }

        pub(crate) fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.structs.extend_from_slice(&3u32.to_be_bytes());
            self.structs
                .extend_from_slice(&(value.len() as u32).to_be_bytes());
            self.structs.extend_from_slice(&off.to_be_bytes());
            self.structs.extend_from_slice(value);
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
            self
        }

        pub(crate) fn prop_str(&mut self, name: &str, value: &str) -> &mut Self {
            let mut v = value.as_bytes().to_vec();
            v.push(0);
            self.prop(name, &v)
        }

        pub(crate) fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v)
        }

        pub(crate) fn finish(&mut self) -> Vec<u8> {
            self.structs.extend_from_slice(&9u32.to_be_bytes());
            let off_rsv = 40usize;
            let off_struct = off_rsv + 16;
            let off_strings = off_struct + self.structs.len();
            let total = off_strings + self.strings.len();
            let mut out = Vec::new();
            for v in [
                0xd00d_feedu32,
                total as u32,
                off_struct as u32,
                off_strings as u32,
                off_rsv as u32,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&self.structs);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// A small board: 2 CPUs (MPIDR 0, 0x100), 2 RAM banks, GICv2, hvc.
    fn small_board() -> Vec<u8> {
        let mut b = DtbBuilder::new();
        b.begin("")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[2])
            .prop_str("model", "test board")
            .begin("chosen")
            .prop_str("stdout-path", "serial0:115200n8")
            .end()
            .begin("aliases")
            .prop_str("serial0", "/uart@1c090000")
            .end()
            .begin("psci")
            .prop_str("method", "hvc")
            .end()
            .begin("memory@80000000")
            .prop_str("device_type", "memory")
            .prop_cells(
                "reg",
                &[
                    0,
                    0x8000_0000,
                    0,
                    0x4000_0000,
                    8,
                    0x8000_0000,
                    0,
                    0x1000_0000,
                ],
            )
            .end()
            .begin("cpus")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[0])
            .begin("cpu@0")
            .prop_str("device_type", "cpu")
            .prop_cells("reg", &[0])
            .prop_str("enable-method", "psci")
            .end()
            .begin("cpu@100")
            .prop_str("device_type", "cpu")
            .prop_cells("reg", &[0x100])
            .prop_str("enable-method", "spin-table")
            .end()
            .begin("cpu-map")
            .end()
            .end()
            .begin("interrupt-controller@2c001000")
            .prop("compatible", b"arm,gic-400\0arm,cortex-a15-gic\0")
            .prop_cells(
                "reg",
                &[
                    0,
                    0x2c00_1000,
                    0,
                    0x1000,
                    0,
                    0x2c00_2000,
                    0,
                    0x2000,
                    0,
                    0x2c00_4000,
                    0,
                    0x2000,
                    0,
                    0x2c00_6000,
                    0,
                    0x2000,
                ],
            )
            .prop_cells("interrupts", &[1, 9, 0xf04])
            .end()
            .begin("uart@1c090000")
            .prop_cells("reg", &[0, 0x1c09_0000, 0, 0x1000])
            .end()
            .end();
        b.finish()
    }

    /// GIC and console under buses with `ranges` (Marvell's config space,
    /// TI K3's bus), PSCI under /firmware.
    #[test]
    fn addresses_behind_bus_ranges_are_translated() {
        let mut b = DtbBuilder::new();
        b.begin("")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[2])
            .begin("chosen")
            .prop_str("stdout-path", "serial0:115200n8")
            .end()
            .begin("aliases")
            .prop_str("serial0", "/soc/config-space@f0000000/serial@512000")
            .end()
            .begin("firmware")
            .begin("psci")
            .prop("compatible", b"arm,psci-1.0\0")
            .prop_str("method", "smc")
            .end()
            .end()
            .begin("cpus")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[0])
            .begin("cpu@0")
            .prop_str("device_type", "cpu")
            .prop_cells("reg", &[0])
            .end()
            .end()
            // An identity bus (empty ranges) ...
            .begin("soc")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[2])
            .prop("ranges", b"")
            // ... holding a window: child 0 -> parent 0xf0000000, 16 MiB,
            // with one-cell child addresses.
            .begin("config-space@f0000000")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .prop_cells("ranges", &[0, 0, 0xf000_0000, 0x100_0000])
            .begin("interrupt-controller@210000")
            .prop("compatible", b"arm,gic-400\0")
            .prop_cells("reg", &[0x21_0000, 0x1000, 0x22_0000, 0x2000])
            .end()
            .begin("serial@512000")
            .prop("compatible", b"snps,dw-apb-uart\0")
            .prop_cells("reg", &[0x51_2000, 0x100])
            .end()
            .end()
            .end()
            .end();
        let info = BoardInfo::from_dtb(&b.finish()).unwrap();
        let gic = info.gic.unwrap();
        assert_eq!((gic.gicd, gic.gicc), (0xf021_0000, Some(0xf022_0000)));
        assert_eq!(info.uart, Some(0xf051_2000));
        assert_eq!(info.psci, Some(PsciConduit::Smc));
    }

    #[test]
    fn reads_built_dtb() {
        let info = BoardInfo::from_dtb(&small_board()).unwrap();
        assert_eq!(info.model.as_deref(), Some("test board"));
        assert_eq!(
            info.ram,
            [
                Range {
                    start: 0x8000_0000,
                    size: 0x4000_0000
                },
                Range {
                    start: 0x8_8000_0000,
                    size: 0x1000_0000
                }
            ]
        );
        assert_eq!(
            info.cpus,
            [
                BoardCpu {
                    mpidr: 0,
                    enable_method: Some("psci".to_string())
                },
                BoardCpu {
                    mpidr: 0x100,
                    enable_method: Some("spin-table".to_string())
                }
            ]
        );
        assert_eq!(
            info.gic,
            Some(BoardGic {
                version: 2,
                gicd: 0x2c00_1000,
                gicr: None,
                gicc: Some(0x2c00_2000),
                gich: Some(0x2c00_4000),
                gicv: Some(0x2c00_6000),
                maintenance_irq: Some(25),
            })
        );
        assert_eq!(info.psci, Some(PsciConduit::Hvc));
        assert_eq!(info.uart, Some(0x1c09_0000));
    }

    #[test]
    fn corrupt_dtbs_are_errors_not_panics() {
        let good = small_board();
        assert!(matches!(
            BoardInfo::from_dtb(&good[..20]),
            Err(BoardError::BadDtb(_))
        ));
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert_eq!(
            BoardInfo::from_dtb(&bad_magic).unwrap_err().to_string(),
            "device tree: bad magic 0xdfeed"
        );
        // Truncate at every length, and flip every byte: never a panic.
        for len in 0..good.len() {
            let _ = BoardInfo::from_dtb(&good[..len]);
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let _ = BoardInfo::from_dtb(&b);
            }
        }
    }

    #[test]
    fn missing_cpus_node() {
        let mut b = DtbBuilder::new();
        b.begin("")
            .prop_cells("#address-cells", &[2])
            .prop_cells("#size-cells", &[2])
            .end();
        assert_eq!(
            BoardInfo::from_dtb(&b.finish()).unwrap_err(),
            BoardError::MissingNode("/cpus")
        );
    }

    #[test]
    fn bad_psci_method() {
        let mut b = DtbBuilder::new();
        b.begin("")
            .begin("cpus")
            .end()
            .begin("psci")
            .prop_str("method", "smm")
            .end()
            .end();
        assert_eq!(
            BoardInfo::from_dtb(&b.finish()).unwrap_err().to_string(),
            "device tree: /psci: unexpected value of method"
        );
    }

    #[test]
    fn property_after_child_refused() {
        let mut b = DtbBuilder::new();
        b.begin("").begin("cpus").end().prop_str("model", "x").end();
        assert_eq!(
            BoardInfo::from_dtb(&b.finish()).unwrap_err().to_string(),
            "device tree: property after a child node"
        );
    }
}
