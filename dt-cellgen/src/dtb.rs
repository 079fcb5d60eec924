//! Device trees the cells boot with, written with `dtoolkit`'s model:
//! - the root cell's: the board's tree less the CPUs, RAM and devices other
//!   cells take, plus the management node;
//! - a guest's: a new tree with the cell's CPUs, RAM, devices, GIC, timer,
//!   PSCI and `/chosen`.

use std::collections::BTreeSet;

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};
use hv_core::config::{CellConfig, MemFlag, PsciConduit, SystemConfig};

use crate::board::{Board, Role};
use crate::error::{Error, Result};
use crate::irq::{IrqKind, IrqTarget};
use crate::system::{subtract, PAGE};
use crate::tree::{Tree, MAX_DEPTH};

/// Name and compatible of the management node in the root DTB.
pub const MGMT_NODE: &str = "cellblock-mgmt";
pub const MGMT_COMPATIBLE: &str = "cellblock,mgmt";

/// Options of [`root_dtb`].
#[derive(Debug, Clone, Default)]
pub struct RootOptions {
    /// Physical address of the management page; default:
    /// `hypervisor.management.page` of the system config, else the last page
    /// of the hypervisor's memory (never mapped into a cell, so every access
    /// traps).
    pub mgmt: Option<u64>,
}

/// Options of [`guest_dtb`].
#[derive(Debug, Clone, Default)]
pub struct GuestOptions {
    pub bootargs: String,
    /// Initrd (address as the cell sees it, size).
    pub initrd: Option<(u64, u64)>,
    /// "smc" or "hvc"; default: the platform's conduit.
    pub psci_method: Option<String>,
    /// Ranges of the cell's RAM (as the cell sees them) left out of its
    /// `/memory`, e.g. where a loader keeps the images for a restart.
    pub hidden_ram: Vec<(u64, u64)>,
}

/// What a guest DTB needs of the platform besides the board DTB: its name,
/// the MPIDR of each logical CPU and the PSCI conduit the hypervisor
/// emulates.
#[derive(Debug, Clone)]
pub struct GuestPlatform {
    pub name: String,
    pub cpus: Vec<u64>,
    pub conduit: PsciConduit,
}

impl From<&SystemConfig> for GuestPlatform {
    fn from(sys: &SystemConfig) -> Self {
        GuestPlatform {
            name: sys.name.clone(),
            cpus: sys.platform.cpus.clone(),
            conduit: sys.platform.psci.conduit,
        }
    }
}

impl From<&Board> for GuestPlatform {
    /// The board as its DTB describes it: CPUs in DTB order (the logical
    /// ids dt-cellgen's configs use) and the DTB's PSCI conduit.
    fn from(board: &Board) -> Self {
        GuestPlatform {
            name: board.name.clone(),
            cpus: board.cpus.iter().map(|c| c.mpidr).collect(),
            conduit: board.psci.conduit,
        }
    }
}

fn werr(e: impl std::fmt::Display) -> Error {
    Error::Write(e.to_string())
}

fn cells_bytes(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

fn push_num(out: &mut Vec<u32>, v: u64, cells: u32) {
    if cells >= 2 {
        out.push((v >> 32) as u32);
    }
    if cells >= 1 {
        out.push(v as u32);
    }
}

fn reg_bytes(ranges: &[(u64, u64)], ac: u32, sc: u32) -> Vec<u8> {
    let mut c = Vec::new();
    for &(a, s) in ranges {
        push_num(&mut c, a, ac);
        push_num(&mut c, s, sc);
    }
    cells_bytes(&c)
}

fn prop(name: &str, value: Vec<u8>) -> Result<DeviceTreeProperty> {
    DeviceTreeProperty::new(name, value).map_err(werr)
}

fn str_bytes(list: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for s in list {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }
    v
}

/// The node at `path` in the model.
fn node_mut<'a>(dt: &'a mut DeviceTree, path: &str) -> Option<&'a mut DeviceTreeNode> {
    dt.find_node_mut(path)
}

/// Removes the node at `path`.
fn remove_node(dt: &mut DeviceTree, path: &str) -> bool {
    let Some((parent, name)) = path.rsplit_once('/') else {
        return false;
    };
    let parent = if parent.is_empty() { "/" } else { parent };
    node_mut(dt, parent)
        .and_then(|p| p.remove_child(name))
        .is_some()
}

/// Removes every node under `node` whose `cpu` property names a removed CPU.
fn prune_cpu_map(node: &mut DeviceTreeNode, removed: &BTreeSet<u32>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let doomed: Vec<String> = node
        .children()
        .filter(|c| {
            c.property("cpu")
                .and_then(|p| <[u8; 4]>::try_from(p.value()).ok())
                .is_some_and(|b| removed.contains(&u32::from_be_bytes(b)))
        })
        .map(|c| c.name().to_string())
        .collect();
    for d in doomed {
        node.remove_child(&d);
    }
    for c in node.children_mut() {
        prune_cpu_map(c, removed, depth + 1);
    }
}

/// RAM a cell sees (IPA ranges) less `holes` given as physical ranges.
fn cell_ram(cell: &CellConfig, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for r in cell.memory.iter().filter(|r| !r.has(MemFlag::Io)) {
        let phys = (r.phys_start, r.phys_start.saturating_add(r.size));
        for (s, e) in subtract(&[phys], holes) {
            out.push(((s - r.phys_start).wrapping_add(r.virt_start), e - s));
        }
    }
    out.sort_unstable();
    out
}

/// The root cell's DTB.
pub fn root_dtb(
    board: &Board,
    sys: &SystemConfig,
    cells: &[CellConfig],
    opts: &RootOptions,
) -> Result<Vec<u8>> {
    let tree = &board.tree;
    let mut dt = tree.model().clone();

    // CPUs the cells take.
    let taken: BTreeSet<u64> = cells
        .iter()
        .flat_map(|c| c.cpus.iter())
        .filter_map(|&i| sys.platform.cpus.get(i as usize).copied())
        .collect();
    let mut removed_ph = BTreeSet::new();
    for cpu in board.cpus.iter().filter(|c| taken.contains(&c.mpidr)) {
        if let Some(ph) = tree.phandle_of(cpu.node) {
            removed_ph.insert(ph);
        }
        remove_node(&mut dt, tree.path(cpu.node));
    }
    if let Some(map) = node_mut(&mut dt, "/cpus/cpu-map") {
        prune_cpu_map(map, &removed_ph, 0);
    }

    // RAM: the root cell's, less what the cells hold.
    let mut holes: Vec<(u64, u64)> = Vec::new();
    for c in cells {
        for r in c.memory.iter().filter(|r| !r.has(MemFlag::Io)) {
            holes.push((r.phys_start, r.phys_start.saturating_add(r.size)));
        }
    }
    let ram = cell_ram(&sys.root_cell, &holes);
    if ram.is_empty() {
        return Err(Error::Write("the root cell would have no RAM".into()));
    }
    let root = tree.root();
    let ac = tree.address_cells(root)?;
    let sc = tree.size_cells(root)?;
    for &id in &tree.node(root).children {
        if tree.str_prop(id, "device_type").ok().flatten() == Some("memory") {
            remove_node(&mut dt, tree.path(id));
        }
    }
    let mem = DeviceTreeNode::builder(format!("memory@{:x}", ram[0].0))
        .map_err(werr)?
        .property(prop("device_type", str_bytes(&["memory"]))?)
        .property(prop("reg", reg_bytes(&ram, ac, sc))?)
        .build();
    dt.root.add_child(mem);

    // Devices the cells take: disabled.
    let cell_io: Vec<(u64, u64)> = cells
        .iter()
        .flat_map(|c| {
            c.memory
                .iter()
                .filter(|r| r.has(MemFlag::Io) && !r.has(MemFlag::Shared))
                .map(|r| (r.phys_start, r.phys_start.saturating_add(r.size)))
        })
        .collect();
    for d in board.devices.iter().filter(|d| d.role == Role::Device) {
        let hit = d.mmio.iter().any(|&(s, z)| {
            cell_io
                .iter()
                .any(|&(cs, ce)| s < ce && s.saturating_add(z) > cs)
        });
        if hit {
            if let Some(n) = node_mut(&mut dt, tree.path(d.node)) {
                n.add_property(prop("status", str_bytes(&["disabled"]))?);
            }
        }
    }

    // The management page.
    let hv = &sys.hypervisor.memory;
    let mgmt = opts
        .mgmt
        .or(sys.hypervisor.management.map(|m| m.page))
        .unwrap_or_else(|| hv.start.saturating_add(hv.size).saturating_sub(PAGE));
    let node = DeviceTreeNode::builder(format!("{MGMT_NODE}@{mgmt:x}"))
        .map_err(werr)?
        .property(prop("compatible", str_bytes(&[MGMT_COMPATIBLE]))?)
        .property(prop("reg", reg_bytes(&[(mgmt, PAGE)], ac, sc))?)
        .build();
    dt.root.add_child(node);

    if !sys.root_cell.ivshmem.is_empty() {
        let gic = tree.phandle_of(board.gic.node).ok_or_else(|| {
            Error::Write(
                "ivshmem links: the GIC node has no phandle to name as interrupt-parent".into(),
            )
        })?;
        for link in &sys.root_cell.ivshmem {
            dt.root.add_child(ivshmem_input_node(gic, link)?);
        }
    }
    Ok(dt.to_dtb())
}

/// Name and label prefix of the root DTB's input node for an ivshmem link.
pub const IVSHMEM_INPUT_PREFIX: &str = "cellblock-ivshmem-";
/// The key code each doorbell reports: BTN_0, not a keyboard key, so the
/// console's keyboard handler leaves the device alone.
pub const IVSHMEM_KEY_CODE: u32 = 0x100;

/// A `gpio-keys` node with one interrupt-only button on the link's SPI
/// (edge rising, no debounce): an unmodified kernel turns each doorbell
/// into a key press and release on an input device labelled
/// `cellblock-ivshmem-ID` (docs/ivshmem.md). Properties the kernel
/// ignores tell userspace the rest of the link, as the cell sees it:
/// `cellblock,link` (the id), `cellblock,regs` (the register page) and
/// `cellblock,shmem` (the shared memory's address and size), each number
/// in two cells; userspace maps them through /dev/mem.
fn ivshmem_input_node(
    gic_phandle: u32,
    link: &hv_core::config::IvshmemLink,
) -> Result<DeviceTreeNode> {
    let gic = gic_phandle;
    let spi = link.irq.checked_sub(32).ok_or_else(|| {
        Error::Write(format!(
            "ivshmem link {}: IRQ {} is not an SPI",
            link.id, link.irq
        ))
    })?;
    let label = format!("{IVSHMEM_INPUT_PREFIX}{}", link.id);
    /// GIC interrupt specifier: SPI, edge rising.
    const GIC_SPI: u32 = 0;
    const EDGE_RISING: u32 = 1;
    let button = DeviceTreeNode::builder("doorbell")
        .map_err(werr)?
        .property(prop("label", str_bytes(&["doorbell"]))?)
        .property(prop("linux,code", cells_bytes(&[IVSHMEM_KEY_CODE]))?)
        .property(prop(
            "interrupts",
            cells_bytes(&[GIC_SPI, spi, EDGE_RISING]),
        )?)
        .property(prop("debounce-interval", cells_bytes(&[0]))?)
        .build();
    Ok(DeviceTreeNode::builder(label.clone())
        .map_err(werr)?
        .property(prop("compatible", str_bytes(&["gpio-keys"]))?)
        .property(prop("label", str_bytes(&[&label]))?)
        .property(prop("interrupt-parent", cells_bytes(&[gic]))?)
        .property(prop("cellblock,link", cells_bytes(&[link.id]))?)
        .property(prop("cellblock,regs", reg_bytes(&[(link.regs, 0)], 2, 0))?)
        .property(prop(
            "cellblock,shmem",
            reg_bytes(&[(link.virt_start, link.size)], 2, 2),
        )?)
        .child(button)
        .build())
}

/// Properties that name other nodes a guest does not have.
fn drops(name: &str) -> bool {
    matches!(
        name,
        "interrupt-parent"
            | "interrupts-extended"
            | "clocks"
            | "resets"
            | "power-domains"
            | "iommus"
            | "dmas"
            | "phys"
            | "interconnects"
            | "phandle"
            | "linux,phandle"
            | "operating-points-v2"
            | "msi-parent"
            | "memory-region"
    ) || name.starts_with("pinctrl-")
        || name.starts_with("assigned-clock")
        || name.ends_with("-supply")
        || name.ends_with("-gpios")
        || name.ends_with("-gpio")
}

const GIC_PHANDLE: u32 = 1;
const CLK_PHANDLE: u32 = 2;

/// The DTB a Linux non-root cell boots with.
pub fn guest_dtb(
    board: &Board,
    sys: &SystemConfig,
    cell: &CellConfig,
    opts: &GuestOptions,
) -> Result<Vec<u8>> {
    guest_dtb_on(board, &GuestPlatform::from(sys), cell, opts)
}

/// [`guest_dtb`] for a platform known without its system config (the
/// `cellblock cell linux` command reads the running board's DTB).
pub fn guest_dtb_on(
    board: &Board,
    sys: &GuestPlatform,
    cell: &CellConfig,
    opts: &GuestOptions,
) -> Result<Vec<u8>> {
    let tree = &board.tree;
    let mut dt = DeviceTree::new();
    let root = &mut dt.root;
    root.add_property(prop("#address-cells", cells_bytes(&[2]))?);
    root.add_property(prop("#size-cells", cells_bytes(&[2]))?);
    root.add_property(prop("compatible", str_bytes(&["cellblock,guest"]))?);
    root.add_property(prop(
        "model",
        str_bytes(&[&format!("Cellblock cell {} on {}", cell.name, sys.name)]),
    )?);
    root.add_property(prop("interrupt-parent", cells_bytes(&[GIC_PHANDLE]))?);

    // CPUs.
    let wide = cell
        .cpus
        .iter()
        .filter_map(|&i| sys.cpus.get(i as usize))
        .any(|m| *m > u64::from(u32::MAX));
    let cpu_ac = if wide { 2 } else { 1 };
    let mut cpus = DeviceTreeNode::new("cpus").map_err(werr)?;
    cpus.add_property(prop("#address-cells", cells_bytes(&[cpu_ac]))?);
    cpus.add_property(prop("#size-cells", cells_bytes(&[0]))?);
    for &i in &cell.cpus {
        let mpidr = *sys.cpus.get(i as usize).ok_or_else(|| Error::BadCpu {
            cpu: i,
            reason: "not in platform.cpus".into(),
        })?;
        let mut reg = Vec::new();
        push_num(&mut reg, mpidr, cpu_ac);
        let compat = board
            .cpus
            .iter()
            .find(|c| c.mpidr == mpidr)
            .and_then(|c| tree.compatible(c.node).first().map(|s| s.to_string()))
            .unwrap_or_else(|| "arm,armv8".into());
        let n = DeviceTreeNode::builder(format!("cpu@{mpidr:x}"))
            .map_err(werr)?
            .property(prop("device_type", str_bytes(&["cpu"]))?)
            .property(prop("compatible", str_bytes(&[&compat]))?)
            .property(prop("reg", cells_bytes(&reg))?)
            .property(prop("enable-method", str_bytes(&["psci"]))?)
            .build();
        cpus.add_child(n);
    }
    root.add_child(cpus);

    // PSCI as the hypervisor emulates it.
    let method = match opts.psci_method.as_deref() {
        Some(m @ ("smc" | "hvc")) => m.to_string(),
        Some(other) => {
            return Err(Error::BadArgument {
                what: "--psci-method",
                reason: format!("\"{other}\" is neither smc nor hvc"),
            })
        }
        None => match sys.conduit {
            PsciConduit::Smc => "smc".into(),
            PsciConduit::Hvc => "hvc".into(),
        },
    };
    root.add_child(
        DeviceTreeNode::builder("psci")
            .map_err(werr)?
            .property(prop(
                "compatible",
                str_bytes(&["arm,psci-1.0", "arm,psci-0.2"]),
            )?)
            .property(prop("method", str_bytes(&[&method]))?)
            .build(),
    );

    // RAM.
    let ends = |v: &[(u64, u64)]| -> Vec<(u64, u64)> {
        v.iter().map(|&(s, z)| (s, s.saturating_add(z))).collect()
    };
    let ram: Vec<(u64, u64)> = subtract(&ends(&cell_ram(cell, &[])), &ends(&opts.hidden_ram))
        .into_iter()
        .map(|(s, e)| (s, e - s))
        .collect();
    if ram.is_empty() {
        return Err(Error::Write(format!("cell \"{}\" has no RAM", cell.name)));
    }
    root.add_child(
        DeviceTreeNode::builder(format!("memory@{:x}", ram[0].0))
            .map_err(werr)?
            .property(prop("device_type", str_bytes(&["memory"]))?)
            .property(prop("reg", reg_bytes(&ram, 2, 2))?)
            .build(),
    );

    // GIC: the frames the cell sees at the physical addresses.
    let gic = &board.gic;
    let mut frames = vec![gic.gicd];
    if gic.version == 3 {
        frames.extend(gic.gicr.iter().copied());
    } else if let Some(c) = gic.gicc {
        frames.push((c.0, c.1.max(0x2000)));
    }
    let gic_compat = tree
        .compatible(gic.node)
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "arm,gic-v3".into());
    let mut g = DeviceTreeNode::builder(format!("interrupt-controller@{:x}", gic.gicd.0))
        .map_err(werr)?
        .property(prop("compatible", str_bytes(&[&gic_compat]))?)
        .property(prop("#interrupt-cells", cells_bytes(&[3]))?)
        .property(prop("interrupt-controller", Vec::new())?)
        .property(prop("reg", reg_bytes(&frames, 2, 2))?)
        .property(prop("phandle", cells_bytes(&[GIC_PHANDLE]))?)
        .build();
    if gic.version == 3 && gic.gicr.len() > 1 {
        g.add_property(prop(
            "#redistributor-regions",
            cells_bytes(&[gic.gicr.len() as u32]),
        )?);
    }
    root.add_child(g);

    // Architected timer.
    if let Some(t) = &board.timer {
        let mut spec = Vec::new();
        for &ppi in &t.ppis {
            spec.extend_from_slice(&[1, ppi.saturating_sub(16), 8]);
        }
        let compat = tree.compatible(t.node).first().map(|s| s.to_string());
        root.add_child(
            DeviceTreeNode::builder("timer")
                .map_err(werr)?
                .property(prop(
                    "compatible",
                    str_bytes(&[compat.as_deref().unwrap_or("arm,armv8-timer")]),
                )?)
                .property(prop("interrupts", cells_bytes(&spec))?)
                .property(prop("always-on", Vec::new())?)
                .build(),
        );
    }

    // Devices whose MMIO lies in the cell's io regions.
    let io: Vec<(u64, u64, u64)> = cell
        .memory
        .iter()
        .filter(|r| r.has(MemFlag::Io))
        .map(|r| (r.phys_start, r.size, r.virt_start))
        .collect();
    let mut stdout = None;
    let mut need_clock = false;
    for d in board.devices.iter().filter(|d| d.role == Role::Device) {
        let mut regs = Vec::new();
        for &(s, z) in &d.mmio {
            let inside = |&&(ps, pz, _): &&(u64, u64, u64)| {
                s >= ps && s.saturating_add(z) <= ps.saturating_add(pz)
            };
            if let Some(&(ps, _, vs)) = io.iter().find(inside) {
                regs.push(((s - ps).wrapping_add(vs), z));
            }
        }
        if regs.is_empty() || regs.len() != d.mmio.len() {
            continue;
        }
        let src = &tree.node(d.node);
        // Names come from a DTB that was read, so they are kept as they are
        // even where they exceed the specification's 31 characters.
        let mut n = DeviceTreeNode::new_unchecked(src.name.clone());
        for (k, v) in &src.props {
            if drops(k) || k == "reg" || k == "interrupts" || k == "status" {
                continue;
            }
            n.add_property(DeviceTreeProperty::new_unchecked(k.as_str(), v.clone()));
        }
        n.add_property(prop("reg", reg_bytes(&regs, 2, 2))?);
        let mut spec = Vec::new();
        for irq in &d.irqs {
            if let IrqTarget::Gic { intid, kind } = irq.target {
                match kind {
                    IrqKind::Spi if cell.irqs.contains(&intid) => {
                        spec.extend_from_slice(&[0, intid - 32, 4]);
                    }
                    IrqKind::Ppi => spec.extend_from_slice(&[1, intid - 16, 4]),
                    _ => {}
                }
            }
        }
        if !spec.is_empty() {
            n.add_property(prop("interrupts", cells_bytes(&spec))?);
        }
        if src.props.iter().any(|(k, _)| k == "clocks") {
            let names = tree.strings(d.node, "clock-names").len().max(1);
            n.add_property(prop("clocks", cells_bytes(&vec![CLK_PHANDLE; names]))?);
            need_clock = true;
        }
        if stdout.is_none()
            && tree
                .compatible(d.node)
                .iter()
                .any(|c| c.contains("uart") || c.contains("pl011") || c.contains("16550"))
        {
            stdout = Some(format!("/{}", src.name));
        }
        if root.child_mut(&src.name).is_some() {
            continue;
        }
        root.add_child(n);
    }
    if need_clock {
        root.add_child(
            DeviceTreeNode::builder("clk-fixed")
                .map_err(werr)?
                .property(prop("compatible", str_bytes(&["fixed-clock"]))?)
                .property(prop("#clock-cells", cells_bytes(&[0]))?)
                .property(prop("clock-frequency", cells_bytes(&[24_000_000]))?)
                .property(prop("phandle", cells_bytes(&[CLK_PHANDLE]))?)
                .build(),
        );
    }

    // /chosen and /aliases.
    let mut chosen = DeviceTreeNode::new("chosen").map_err(werr)?;
    chosen.add_property(prop("bootargs", str_bytes(&[&opts.bootargs]))?);
    if let Some((addr, size)) = opts.initrd {
        let mut c = Vec::new();
        push_num(&mut c, addr, 2);
        chosen.add_property(prop("linux,initrd-start", cells_bytes(&c))?);
        let mut c = Vec::new();
        push_num(&mut c, addr.saturating_add(size), 2);
        chosen.add_property(prop("linux,initrd-end", cells_bytes(&c))?);
    }
    if let Some(s) = &stdout {
        chosen.add_property(prop("stdout-path", str_bytes(&[s]))?);
        let mut aliases = DeviceTreeNode::new("aliases").map_err(werr)?;
        aliases.add_property(prop("serial0", str_bytes(&[s]))?);
        root.add_child(aliases);
    }
    root.add_child(chosen);
    for link in &cell.ivshmem {
        root.add_child(ivshmem_input_node(GIC_PHANDLE, link)?);
    }
    Ok(dt.to_dtb())
}

/// Fits a ready-made guest DTB to where `cellblock cell linux` put things:
/// `/chosen` gets `bootargs` (when given) and the initrd's range, and
/// `hidden` (the loader's area, as the cell sees it) becomes a `no-map`
/// child of `/reserved-memory` so that the kernel leaves it alone.
pub fn fit_guest_dtb(
    dtb: &[u8],
    bootargs: Option<&str>,
    initrd: Option<(u64, u64)>,
    hidden: (u64, u64),
) -> Result<Vec<u8>> {
    let tree = Tree::parse(dtb)?;
    let root = tree.root();
    let ac = tree.address_cells(root)?;
    let sc = tree.size_cells(root)?;
    let mut dt = tree.model().clone();
    if dt.root.child_mut("chosen").is_none() {
        dt.root
            .add_child(DeviceTreeNode::new("chosen").map_err(werr)?);
    }
    let chosen = node_mut(&mut dt, "/chosen").ok_or_else(|| werr("no /chosen"))?;
    if let Some(b) = bootargs {
        chosen.add_property(prop("bootargs", str_bytes(&[b]))?);
    }
    if let Some((addr, size)) = initrd {
        for (name, v) in [
            ("linux,initrd-start", addr),
            ("linux,initrd-end", addr.saturating_add(size)),
        ] {
            let mut c = Vec::new();
            push_num(&mut c, v, 2);
            chosen.add_property(prop(name, cells_bytes(&c))?);
        }
    }
    if dt.root.child_mut("reserved-memory").is_none() {
        dt.root.add_child(
            DeviceTreeNode::builder("reserved-memory")
                .map_err(werr)?
                .property(prop("#address-cells", cells_bytes(&[ac]))?)
                .property(prop("#size-cells", cells_bytes(&[sc]))?)
                .property(prop("ranges", Vec::new())?)
                .build(),
        );
    }
    let resv = node_mut(&mut dt, "/reserved-memory").ok_or_else(|| werr("no /reserved-memory"))?;
    let (rac, rsc) = match tree.find("/reserved-memory") {
        Some(id) => (tree.address_cells(id)?, tree.size_cells(id)?),
        None => (ac, sc),
    };
    resv.add_child(
        DeviceTreeNode::builder(format!("cellblock-loader@{:x}", hidden.0))
            .map_err(werr)?
            .property(prop("reg", reg_bytes(&[hidden], rac, rsc))?)
            .property(prop("no-map", Vec::new())?)
            .build(),
    );
    Ok(dt.to_dtb())
}
