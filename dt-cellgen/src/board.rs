//! What a board has, read from its device tree: CPUs, RAM, reserved memory,
//! GIC, PSCI, timer, console, devices with MMIO and interrupts, IOMMUs and
//! PCI hosts. Everything the generators need, with the node it came from.

use hv_core::config::{PsciConduit, UartKind};

use crate::error::{Error, Result};
use crate::irq::{Irq, IrqTarget, Resolver};
use crate::tree::{check_range, join_cells, NodeId, Tree};

/// Affinity bits of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

const GIC_V3: &[&str] = &["arm,gic-v3"];
const GIC_V2: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
    "arm,pl390",
    "arm,arm11mp-gic",
    "arm,tc11mp-gic",
    "arm,eb11mp-gic",
    "arm,arm1176jzf-devchip-gic",
    "brcm,brahma-b15-gic",
    "qcom,msm-8660-qgic",
    "qcom,msm-qgic2",
];
/// One CPU.
#[derive(Debug, Clone)]
pub struct Cpu {
    pub node: NodeId,
    pub mpidr: u64,
    pub enable_method: Option<String>,
}

/// A range of RAM or of reserved memory and where it is described.
#[derive(Debug, Clone)]
pub struct MemRange {
    /// `None`: a `/memreserve/` entry.
    pub node: Option<NodeId>,
    pub start: u64,
    pub size: u64,
    /// `/reserved-memory` child with `no-map`, or a `/memreserve/` entry.
    pub no_map: bool,
}

impl MemRange {
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The interrupt controller.
#[derive(Debug, Clone)]
pub struct Gic {
    pub node: NodeId,
    pub version: u8,
    pub gicd: (u64, u64),
    pub gicr: Vec<(u64, u64)>,
    pub gicc: Option<(u64, u64)>,
    pub gich: Option<(u64, u64)>,
    pub gicv: Option<(u64, u64)>,
    pub its: Vec<(NodeId, (u64, u64))>,
    /// Maintenance interrupt INTID, if the node states it.
    pub maintenance_irq: Option<u32>,
}

/// PSCI firmware interface.
#[derive(Debug, Clone)]
pub struct Psci {
    pub node: NodeId,
    pub conduit: PsciConduit,
    /// "1.0", "0.2", "0.1".
    pub version: &'static str,
}

/// The console UART.
#[derive(Debug, Clone)]
pub struct ConsoleUart {
    pub node: NodeId,
    pub base: u64,
    pub kind: UartKind,
}

/// The architected timer's PPIs.
#[derive(Debug, Clone)]
pub struct Timer {
    pub node: NodeId,
    pub ppis: Vec<u32>,
}

/// What a device node is to the generators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An ordinary device: goes to the root cell.
    Device,
    /// Part of the GIC (the GIC node, an ITS): owned by the hypervisor.
    Gic,
    /// An Arm SMMU: owned by the hypervisor.
    Iommu,
}

/// A device's link to an IOMMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    pub iommu: NodeId,
    /// `iommus` specifier cells (the stream ID and, for some, a mask).
    pub ids: Vec<u32>,
    /// `iommu-map` entries: (requester-ID base, stream-ID base, length).
    pub map: Option<(u32, u32, u32)>,
}

/// A node with MMIO and/or interrupts.
#[derive(Debug, Clone)]
pub struct Device {
    pub node: NodeId,
    pub role: Role,
    pub enabled: bool,
    pub mmio: Vec<(u64, u64)>,
    pub irqs: Vec<Irq>,
    pub streams: Vec<StreamRef>,
    /// What could not be read about this device (it is still listed).
    pub issues: Vec<String>,
}

impl Device {
    /// Stream IDs this platform device emits through the IOMMU `iommu`
    /// (the first cell of each `iommus` specifier).
    pub fn stream_ids(&self, iommu: NodeId) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .streams
            .iter()
            .filter(|s| s.iommu == iommu && s.map.is_none())
            .filter_map(|s| s.ids.first().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Stream IDs of the devices on a PCI host's first bus (device/function
    /// 0..255) through its `iommu-map` to `iommu`.
    pub fn root_bus_stream_ids(&self, iommu: NodeId, first_bus: u32) -> Vec<u32> {
        let mut v = Vec::new();
        for s in self.streams.iter().filter(|s| s.iommu == iommu) {
            let Some((rid_base, sid_base, len)) = s.map else {
                continue;
            };
            let first = first_bus.saturating_mul(256);
            for rid in first..first.saturating_add(256) {
                if rid >= rid_base && rid - rid_base < len {
                    v.push(sid_base.wrapping_add(rid - rid_base));
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// GIC SPI INTIDs of this device.
    pub fn spis(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.irqs.iter().filter_map(Irq::spi).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// An IOMMU.
#[derive(Debug, Clone)]
pub struct Iommu {
    pub node: NodeId,
    /// "SMMUv3", "SMMUv2/MMU-500", or the compatible of another kind.
    pub kind: String,
}

/// A PCI host bridge.
#[derive(Debug, Clone)]
pub struct PciHost {
    pub node: NodeId,
    /// The configuration space window when it is ECAM.
    pub ecam: Option<(u64, u64)>,
    pub bus_range: (u32, u32),
    /// CPU windows from `ranges`: (start, size, "io" | "mem32" | "mem64").
    pub windows: Vec<(u64, u64, &'static str)>,
    /// INTx lines reachable through `interrupt-map`.
    pub intx: Vec<Irq>,
}

/// A board as the generators see it.
#[derive(Debug, Clone)]
pub struct Board {
    pub tree: Tree,
    pub name: String,
    pub cpus: Vec<Cpu>,
    /// RAM banks, sorted, non-overlapping; empty when the DTB leaves RAM
    /// for the boot loader to fill in (then `SystemOptions::ram` must say).
    pub ram: Vec<MemRange>,
    /// `/reserved-memory` children with a static `reg`, and `/memreserve/`.
    pub reserved: Vec<MemRange>,
    pub gic: Gic,
    pub psci: Psci,
    pub timer: Option<Timer>,
    pub console: ConsoleUart,
    pub devices: Vec<Device>,
    pub iommus: Vec<Iommu>,
    pub pci: Vec<PciHost>,
    /// Board-level notes (CPUs not started by PSCI, defaults assumed, …).
    pub notes: Vec<String>,
}

impl Board {
    /// The SMMUv3 the hypervisor drives: the first enabled one.
    pub fn smmu_v3(&self) -> Option<&Device> {
        self.iommus
            .iter()
            .filter(|i| i.kind == "SMMUv3")
            .filter_map(|i| self.devices.iter().find(|d| d.node == i.node))
            .find(|d| d.enabled && !d.mmio.is_empty())
    }

    /// Reads a DTB and everything the generators need from it.
    pub fn from_dtb(bytes: &[u8]) -> Result<Board> {
        Board::from_tree(Tree::parse(bytes)?)
    }

    /// Reads a board from a parsed tree.
    pub fn from_tree(tree: Tree) -> Result<Board> {
        let mut notes = Vec::new();
        let root = tree.root();
        let name = match tree.str_prop(root, "model").ok().flatten() {
            Some(m) => m.to_string(),
            None => tree
                .compatible(root)
                .first()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "board".to_string()),
        };
        let psci = read_psci(&tree)?;
        let cpus = read_cpus(&tree, &mut notes)?;
        let gic = read_gic(&tree, &mut notes)?;
        let ram = read_ram(&tree)?;
        let reserved = read_reserved(&tree)?;
        let resolver = Resolver::new(&tree, gic.node);
        let timer = read_timer(&tree, &resolver)?;
        let console = read_console(&tree)?;
        let (devices, iommus, pci) = read_devices(&tree, &resolver, &gic)?;
        Ok(Board {
            name,
            cpus,
            ram,
            reserved,
            gic,
            psci,
            timer,
            console,
            devices,
            iommus,
            pci,
            notes,
            tree,
        })
    }

    pub fn path(&self, id: NodeId) -> &str {
        self.tree.path(id)
    }

    /// The device listed for a node path (or alias).
    pub fn device(&self, path: &str) -> Option<&Device> {
        let id = self.tree.find_path_or_alias(path)?;
        self.devices.iter().find(|d| d.node == id)
    }
}

fn read_psci(tree: &Tree) -> Result<Psci> {
    let node = tree
        .ids()
        .find(|&id| {
            tree.compatible(id)
                .iter()
                .any(|c| c.starts_with("arm,psci"))
                && tree.is_enabled(id)
        })
        .ok_or(Error::NoPsci)?;
    let method = tree
        .str_prop(node, "method")?
        .ok_or_else(|| Error::MissingProperty {
            node: tree.path(node).to_string(),
            prop: "method",
        })?;
    let conduit = match method {
        "smc" => PsciConduit::Smc,
        "hvc" => PsciConduit::Hvc,
        other => {
            return Err(Error::BadProperty {
                node: tree.path(node).to_string(),
                prop: "method".into(),
                reason: format!("is \"{other}\", expected \"smc\" or \"hvc\""),
            })
        }
    };
    let compat = tree.compatible(node);
    let version = if compat.contains(&"arm,psci-1.0") {
        "1.0"
    } else if compat.contains(&"arm,psci-0.2") {
        "0.2"
    } else {
        "0.1"
    };
    Ok(Psci {
        node,
        conduit,
        version,
    })
}

fn read_cpus(tree: &Tree, notes: &mut Vec<String>) -> Result<Vec<Cpu>> {
    let cpus_node = tree
        .find("/cpus")
        .ok_or(Error::MissingNode { what: "/cpus" })?;
    let ac = tree.address_cells(cpus_node)?;
    let mut cpus = Vec::new();
    for &id in &tree.node(cpus_node).children {
        let is_cpu = match tree.str_prop(id, "device_type")? {
            Some(t) => t == "cpu",
            None => false,
        };
        if !is_cpu {
            continue;
        }
        if !tree.is_enabled(id) {
            notes.push(format!("{} is disabled; left out", tree.path(id)));
            continue;
        }
        let reg = tree
            .cells(id, "reg")?
            .ok_or_else(|| Error::MissingProperty {
                node: tree.path(id).to_string(),
                prop: "reg",
            })?;
        let take = (ac as usize).min(reg.len());
        let mpidr = join_cells(&reg[..take]).ok_or_else(|| Error::BadProperty {
            node: tree.path(id).to_string(),
            prop: "reg".into(),
            reason: "is wider than 64 bits".into(),
        })? & MPIDR_AFFINITY_MASK;
        if cpus.iter().any(|c: &Cpu| c.mpidr == mpidr) {
            return Err(Error::BadProperty {
                node: tree.path(id).to_string(),
                prop: "reg".into(),
                reason: format!("MPIDR {mpidr:#x} is used by another CPU"),
            });
        }
        let enable_method = tree.str_prop(id, "enable-method")?.map(str::to_string);
        if enable_method.as_deref() != Some("psci") {
            notes.push(format!(
                "{}: enable-method is {}, not psci: the hypervisor starts CPUs with PSCI CPU_ON",
                tree.path(id),
                enable_method.as_deref().unwrap_or("absent")
            ));
        }
        cpus.push(Cpu {
            node: id,
            mpidr,
            enable_method,
        });
    }
    if cpus.is_empty() {
        return Err(Error::NoCpus);
    }
    Ok(cpus)
}

fn gic_version(tree: &Tree, id: NodeId) -> Option<u8> {
    if tree.is_compatible(id, GIC_V3) {
        Some(3)
    } else if tree.is_compatible(id, GIC_V2) {
        Some(2)
    } else {
        None
    }
}

fn read_gic(tree: &Tree, notes: &mut Vec<String>) -> Result<Gic> {
    // The controller the root node's interrupt-parent leads to, through
    // pass-through controllers; else the first enabled GIC.
    let mut chosen = None;
    let mut first_ctrl = None;
    if let Some(mut ph) = tree.u32_prop(tree.root(), "interrupt-parent")? {
        for _ in 0..16 {
            let Some(n) = tree.by_phandle(ph) else { break };
            first_ctrl.get_or_insert(n);
            if gic_version(tree, n).is_some() {
                chosen = Some(n);
                break;
            }
            match tree.u32_prop(n, "interrupt-parent")? {
                Some(next) if next != ph => ph = next,
                _ => break,
            }
        }
    }
    let node = match chosen.or_else(|| {
        tree.ids().find(|&id| {
            gic_version(tree, id).is_some()
                && tree.has_prop(id, "interrupt-controller")
                && tree.is_enabled(id)
        })
    }) {
        Some(n) => n,
        None => {
            let found = first_ctrl
                .or_else(|| {
                    tree.ids()
                        .find(|&id| tree.has_prop(id, "interrupt-controller"))
                })
                .map(|n| {
                    format!(
                        "{} \"{}\"",
                        tree.path(n),
                        tree.compatible(n).first().copied().unwrap_or("")
                    )
                });
            return Err(Error::NoGic { found });
        }
    };
    let version = gic_version(tree, node).unwrap_or(2);
    let regs = tree.mmio(node)?;
    let missing = |what: &str| Error::BadProperty {
        node: tree.path(node).to_string(),
        prop: "reg".into(),
        reason: format!("has no {what} frame"),
    };
    let gicd = *regs.first().ok_or_else(|| missing("distributor"))?;
    let mut gic = Gic {
        node,
        version,
        gicd,
        gicr: Vec::new(),
        gicc: None,
        gich: None,
        gicv: None,
        its: Vec::new(),
        maintenance_irq: None,
    };
    if version == 3 {
        let n = tree.u32_prop(node, "#redistributor-regions")?.unwrap_or(1) as usize;
        if n == 0 || regs.len() < 1 + n {
            return Err(missing("redistributor"));
        }
        gic.gicr = regs[1..1 + n].to_vec();
        gic.gicc = regs.get(1 + n).copied();
        gic.gich = regs.get(2 + n).copied();
        gic.gicv = regs.get(3 + n).copied();
        for &k in &tree.node(node).children {
            if tree.is_compatible(k, &["arm,gic-v3-its"]) && tree.is_enabled(k) {
                if let Some(r) = tree.mmio(k)?.first() {
                    gic.its.push((k, *r));
                }
            }
        }
    } else {
        gic.gicc = Some(*regs.get(1).ok_or_else(|| missing("CPU interface"))?);
        gic.gich = regs.get(2).copied();
        gic.gicv = regs.get(3).copied();
        if gic.gich.is_none() || gic.gicv.is_none() {
            notes.push(format!(
                "{}: no GICH/GICV frames in `reg`: the board's firmware may not expose virtualization",
                tree.path(node)
            ));
        }
    }
    let resolver = Resolver::new(tree, node);
    if let Some(cells) = tree.cells(node, "interrupts")? {
        let n = tree
            .u32_prop(node, "#interrupt-cells")?
            .unwrap_or(3)
            .clamp(2, 4) as usize;
        if let Some(spec) = cells.get(..n) {
            if let Ok(IrqTarget::Gic { intid, .. }) = resolver.decode_gic(node, spec) {
                gic.maintenance_irq = Some(intid);
            }
        }
    }
    Ok(gic)
}

fn merge(mut v: Vec<MemRange>) -> Vec<MemRange> {
    v.sort_by_key(|r| r.start);
    let mut out: Vec<MemRange> = Vec::new();
    for r in v {
        if let Some(last) = out.last_mut() {
            if r.start <= last.end() {
                let end = last.end().max(r.end());
                last.size = end - last.start;
                continue;
            }
        }
        out.push(r);
    }
    out
}

fn read_ram(tree: &Tree) -> Result<Vec<MemRange>> {
    let mut banks = Vec::new();
    for &id in &tree.node(tree.root()).children {
        let is_mem = tree.str_prop(id, "device_type").ok().flatten() == Some("memory");
        if !is_mem || !tree.is_enabled(id) {
            continue;
        }
        for (start, size) in tree.mmio(id)? {
            banks.push(MemRange {
                node: Some(id),
                start,
                size,
                no_map: false,
            });
        }
    }
    Ok(merge(banks))
}

fn read_reserved(tree: &Tree) -> Result<Vec<MemRange>> {
    let mut out = Vec::new();
    if let Some(rm) = tree.find("/reserved-memory") {
        for &id in &tree.node(rm).children {
            if !tree.is_enabled(id) {
                continue;
            }
            let no_map = tree.has_prop(id, "no-map");
            for (start, size) in tree.mmio(id)? {
                out.push(MemRange {
                    node: Some(id),
                    start,
                    size,
                    no_map,
                });
            }
        }
    }
    for &(start, size) in tree.memreserve() {
        if size == 0 {
            continue;
        }
        check_range("/memreserve/", "reservation", start, size)?;
        out.push(MemRange {
            node: None,
            start,
            size,
            no_map: true,
        });
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

fn read_timer(tree: &Tree, resolver: &Resolver) -> Result<Option<Timer>> {
    let Some(node) = tree
        .ids()
        .find(|&id| tree.is_compatible(id, &["arm,armv8-timer", "arm,armv7-timer"]))
    else {
        return Ok(None);
    };
    let ppis = resolver
        .interrupts_of(node)?
        .into_iter()
        .filter_map(|i| match i.target {
            IrqTarget::Gic { intid, .. } => Some(intid),
            _ => None,
        })
        .collect();
    Ok(Some(Timer { node, ppis }))
}

/// The console driver for a UART node: PL011, 16550 with 32-bit registers
/// or Cadence, as `hv_core::board` recognises them at boot.
fn uart_kind(tree: &Tree, id: NodeId) -> Option<UartKind> {
    let shift = tree.u32_prop(id, "reg-shift").ok().flatten();
    let width = tree.u32_prop(id, "reg-io-width").ok().flatten();
    hv_core::board::uart_kind(&tree.compatible(id), shift, width)
}

fn console_from(tree: &Tree, id: NodeId) -> Result<ConsoleUart> {
    let kind = uart_kind(tree, id).ok_or_else(|| Error::UnsupportedConsole {
        node: tree.path(id).to_string(),
        compatible: tree.compatible(id).join("\", \""),
    })?;
    let base = tree
        .mmio(id)?
        .first()
        .map(|r| r.0)
        .ok_or_else(|| Error::MissingProperty {
            node: tree.path(id).to_string(),
            prop: "reg",
        })?;
    Ok(ConsoleUart {
        node: id,
        base,
        kind,
    })
}

fn read_console(tree: &Tree) -> Result<ConsoleUart> {
    if let Some(chosen) = tree.find("/chosen") {
        for prop in ["stdout-path", "linux,stdout-path"] {
            if let Some(s) = tree.str_prop(chosen, prop)? {
                let target = s.split(':').next().unwrap_or(s);
                if let Some(id) = tree.find_path_or_alias(target) {
                    return console_from(tree, id);
                }
            }
        }
    }
    if let Some(aliases) = tree.find("/aliases") {
        let mut serials: Vec<(u32, NodeId)> = tree
            .node(aliases)
            .props
            .iter()
            .filter_map(|(k, _)| {
                let n: u32 = k.strip_prefix("serial")?.parse().ok()?;
                let id = tree.find_path_or_alias(k)?;
                Some((n, id))
            })
            .collect();
        serials.sort_unstable();
        if let Some(&(_, id)) = serials
            .iter()
            .find(|(_, id)| tree.is_enabled(*id) && uart_kind(tree, *id).is_some())
        {
            return console_from(tree, id);
        }
        if let Some(&(_, id)) = serials.iter().find(|(_, id)| tree.is_enabled(*id)) {
            return console_from(tree, id);
        }
    }
    if let Some(id) = tree
        .ids()
        .find(|&id| tree.is_enabled(id) && uart_kind(tree, id).is_some())
    {
        return console_from(tree, id);
    }
    // Name the serial port the board has, if it has one of another kind.
    match tree.ids().find(|&id| {
        tree.is_enabled(id)
            && tree.node(id).name.starts_with("serial@")
            && !tree.compatible(id).is_empty()
    }) {
        Some(id) => console_from(tree, id),
        None => Err(Error::NoConsole),
    }
}

fn iommu_kind(tree: &Tree, id: NodeId) -> String {
    let c = tree.compatible(id);
    if c.contains(&"arm,smmu-v3") {
        "SMMUv3".into()
    } else if c.iter().any(|s| {
        matches!(
            *s,
            "arm,mmu-500" | "arm,smmu-v2" | "arm,mmu-401" | "arm,mmu-400" | "arm,smmu-v1"
        ) || (s.ends_with("-smmu-500") || s.ends_with("smmu-v2"))
    }) {
        "SMMUv2/MMU-500".into()
    } else {
        c.first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Nodes that describe the machine rather than a device.
fn is_structural(tree: &Tree, id: NodeId) -> bool {
    let mut cur = Some(id);
    while let Some(c) = cur {
        let name = tree.node(c).name.split('@').next().unwrap_or("");
        let top = tree.parent(c) == Some(tree.root());
        if top
            && matches!(
                name,
                "cpus"
                    | "chosen"
                    | "aliases"
                    | "reserved-memory"
                    | "__symbols__"
                    | "__fixups__"
                    | "__local_fixups__"
                    | "memory"
            )
        {
            return true;
        }
        cur = tree.parent(c);
    }
    tree.str_prop(id, "device_type").ok().flatten() == Some("memory")
}

/// Is a hard error (hostile input) rather than one device's odd description.
fn is_fatal(e: &Error) -> bool {
    matches!(e, Error::PhandleLoop { .. } | Error::AbsurdSize { .. })
}

#[allow(clippy::type_complexity)]
fn read_devices(
    tree: &Tree,
    resolver: &Resolver,
    gic: &Gic,
) -> Result<(Vec<Device>, Vec<Iommu>, Vec<PciHost>)> {
    let mut devices = Vec::new();
    let mut iommus = Vec::new();
    let mut pci = Vec::new();
    for id in tree.ids().skip(1) {
        if is_structural(tree, id) {
            continue;
        }
        let mut issues = Vec::new();
        let mmio = match tree.mmio(id) {
            Ok(m) => m,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                issues.push(e.to_string());
                Vec::new()
            }
        };
        let irqs = match resolver.interrupts_of(id) {
            Ok(i) => i,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                issues.push(e.to_string());
                Vec::new()
            }
        };
        let streams = match read_streams(tree, id) {
            Ok(s) => s,
            Err(e) => {
                issues.push(e.to_string());
                Vec::new()
            }
        };
        let is_pci_host =
            tree.is_pci_bus(id) && tree.parent(id).is_some_and(|p| !tree.is_pci_bus(p));
        let mut host = None;
        if is_pci_host {
            match read_pci(tree, resolver, id, &mmio) {
                Ok(h) => host = Some(h),
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => issues.push(e.to_string()),
            }
        }
        let gic_part = id == gic.node || gic.its.iter().any(|(n, _)| *n == id);
        let role = if gic_part {
            Role::Gic
        } else if tree.has_prop(id, "#iommu-cells") && !mmio.is_empty() {
            let kind = iommu_kind(tree, id);
            // The hypervisor drives Arm's system MMUs; other IOMMUs (per-
            // device MMUs, memory controllers) stay with their devices.
            let arm = kind == "SMMUv3" || kind == "SMMUv2/MMU-500";
            iommus.push(Iommu { node: id, kind });
            if arm {
                Role::Iommu
            } else {
                Role::Device
            }
        } else {
            Role::Device
        };
        let has_windows = host.as_ref().is_some_and(|h| !h.windows.is_empty());
        if mmio.is_empty() && irqs.is_empty() && !has_windows && issues.is_empty() {
            continue;
        }
        // Interrupt controllers' own PPIs/SPIs and sub-nodes without MMIO that
        // only repeat their parent's interrupts are still listed: the report
        // is for people.
        if let Some(h) = host {
            pci.push(h);
        }
        devices.push(Device {
            node: id,
            role,
            enabled: tree.is_enabled(id),
            mmio,
            irqs,
            streams,
            issues,
        });
    }
    Ok((devices, iommus, pci))
}

fn read_streams(tree: &Tree, id: NodeId) -> Result<Vec<StreamRef>> {
    let mut out = Vec::new();
    let dangling = |prop: &str, ph: u32| Error::DanglingPhandle {
        node: tree.path(id).to_string(),
        prop: prop.to_string(),
        phandle: ph,
    };
    if let Some(cells) = tree.cells(id, "iommus")? {
        let mut i = 0;
        while i < cells.len() {
            let ph = cells[i];
            let iommu = tree.by_phandle(ph).ok_or_else(|| dangling("iommus", ph))?;
            let n = tree.u32_prop(iommu, "#iommu-cells")?.unwrap_or(0).min(4) as usize;
            let ids = cells.get(i + 1..i + 1 + n).unwrap_or(&[]).to_vec();
            out.push(StreamRef {
                iommu,
                ids,
                map: None,
            });
            i += 1 + n;
        }
    }
    if let Some(cells) = tree.cells(id, "iommu-map")? {
        for e in cells.chunks_exact(4) {
            let iommu = tree
                .by_phandle(e[1])
                .ok_or_else(|| dangling("iommu-map", e[1]))?;
            out.push(StreamRef {
                iommu,
                ids: Vec::new(),
                map: Some((e[0], e[2], e[3])),
            });
        }
    }
    Ok(out)
}

fn read_pci(tree: &Tree, resolver: &Resolver, id: NodeId, mmio: &[(u64, u64)]) -> Result<PciHost> {
    let ecam = if tree.is_compatible(id, &["pci-host-ecam-generic", "pci-host-cam-generic"]) {
        mmio.first().copied()
    } else {
        let names = tree.strings(id, "reg-names");
        names
            .iter()
            .position(|n| *n == "config" || *n == "ecam")
            .and_then(|i| mmio.get(i).copied())
    };
    let bus_range = match tree.cells(id, "bus-range")?.as_deref() {
        Some([a, b]) => (*a, *b),
        _ => (0, 255),
    };
    let mut windows = Vec::new();
    if let (Some(ranges), Some(parent)) = (tree.cells(id, "ranges")?, tree.parent(id)) {
        let pa = tree.address_cells(parent)? as usize;
        let cs = tree.size_cells(id)? as usize;
        let step = 3 + pa + cs;
        for e in ranges.chunks_exact(step) {
            let space = (e[0] >> 24) & 3;
            let kind = match space {
                1 => "io",
                2 => "mem32",
                3 => "mem64",
                _ => continue,
            };
            let (Some(p), Some(s)) = (join_cells(&e[3..3 + pa]), join_cells(&e[3 + pa..])) else {
                continue;
            };
            if s == 0 {
                continue;
            }
            if let Some(cpu) = tree.translate(id, p)? {
                check_range(tree.path(id), "ranges", cpu, s)?;
                windows.push((cpu, s, kind));
            }
        }
    }
    let intx = if tree.has_prop(id, "interrupt-map") {
        resolver.map_targets(id)?
    } else {
        Vec::new()
    };
    Ok(PciHost {
        node: id,
        ecam,
        bus_range,
        windows,
        intx,
    })
}
