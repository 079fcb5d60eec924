//! A device tree read into an indexed arena: parents, paths and phandles,
//! plus the typed property readers everything else uses.
//!
//! The blob is checked by [`crate::check::check_blob`] (header, every token,
//! every string, nesting depth) before any node is visited, so walking it
//! with `dtoolkit` cannot panic.

use std::collections::BTreeMap;

use dtoolkit::fdt::Fdt;
use dtoolkit::model::DeviceTree;
use dtoolkit::{Node, Property};

use crate::error::{Error, Result};

/// Index of a node in [`Tree`].
pub type NodeId = usize;

/// Deeper than this is not a device tree a board ships.
pub const MAX_DEPTH: usize = 64;
/// Largest physical range dt-cellgen accepts (2^52 bytes, the ARMv8.2 PA limit).
pub const MAX_PHYS: u64 = 1 << 52;

/// One node: its name, path, place in the tree and raw properties.
#[derive(Debug, Clone)]
pub struct NodeData {
    pub name: String,
    pub path: String,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    pub props: Vec<(String, Vec<u8>)>,
    pub depth: usize,
}

/// A parsed device tree.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<NodeData>,
    phandles: BTreeMap<u32, NodeId>,
    memreserve: Vec<(u64, u64)>,
    model: DeviceTree,
}

impl Tree {
    /// Reads a DTB. Trailing bytes after the header's `totalsize` are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Tree> {
        let total = crate::check::check_blob(bytes)?;
        // `check_blob` gives every guarantee `Fdt::new` gives, so the
        // unchecked constructor's readers cannot panic on this blob.
        let fdt = Fdt::new_unchecked(&bytes[..total]);

        let mut nodes: Vec<NodeData> = Vec::new();
        let mut stack = vec![(fdt.root(), None::<NodeId>, 0usize)];
        while let Some((node, parent, depth)) = stack.pop() {
            let name = node.name().to_string();
            let path = match parent {
                None => "/".to_string(),
                Some(p) if nodes[p].parent.is_none() => format!("/{name}"),
                Some(p) => format!("{}/{name}", nodes[p].path),
            };
            if depth > MAX_DEPTH {
                return Err(Error::TooDeep {
                    path,
                    depth,
                    limit: MAX_DEPTH,
                });
            }
            let props = node
                .properties()
                .map(|p| (p.name().to_string(), p.value().to_vec()))
                .collect();
            let id = nodes.len();
            nodes.push(NodeData {
                name,
                path,
                parent,
                children: Vec::new(),
                props,
                depth,
            });
            if let Some(p) = parent {
                nodes[p].children.push(id);
            }
            let kids: Vec<_> = node.children().collect();
            for kid in kids.into_iter().rev() {
                stack.push((kid, Some(id), depth + 1));
            }
        }

        let mut phandles = BTreeMap::new();
        for (id, n) in nodes.iter().enumerate() {
            for key in ["phandle", "linux,phandle"] {
                if let Some((_, v)) = n.props.iter().find(|(k, _)| k == key) {
                    if let Ok(b) = <[u8; 4]>::try_from(v.as_slice()) {
                        phandles.entry(u32::from_be_bytes(b)).or_insert(id);
                    }
                }
            }
        }
        let memreserve = fdt
            .memory_reservations()
            .map(|r| (r.address(), r.size()))
            .collect();
        // Depth is bounded above, so the model's recursive copy is too.
        let model = DeviceTree::from_fdt(&fdt);
        Ok(Tree {
            nodes,
            phandles,
            memreserve,
            model,
        })
    }

    /// The editable copy of the tree, for writing derived DTBs.
    pub fn model(&self) -> &DeviceTree {
        &self.model
    }

    /// `/memreserve/` entries (address, size).
    pub fn memreserve(&self) -> &[(u64, u64)] {
        &self.memreserve
    }

    pub fn root(&self) -> NodeId {
        0
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, id: NodeId) -> &NodeData {
        &self.nodes[id]
    }

    pub fn path(&self, id: NodeId) -> &str {
        &self.nodes[id].path
    }

    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.nodes[id].parent
    }

    /// Every node id, in document order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        0..self.nodes.len()
    }

    /// The node with this phandle.
    pub fn by_phandle(&self, phandle: u32) -> Option<NodeId> {
        self.phandles.get(&phandle).copied()
    }

    /// The phandle of a node, if it has one.
    pub fn phandle_of(&self, id: NodeId) -> Option<u32> {
        self.phandles
            .iter()
            .find(|(_, n)| **n == id)
            .map(|(p, _)| *p)
    }

    /// Looks a node up by absolute path; a component without `@` matches a
    /// node with any unit address.
    pub fn find(&self, path: &str) -> Option<NodeId> {
        if !path.starts_with('/') {
            return None;
        }
        let mut cur = self.root();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let kids = &self.nodes[cur].children;
            cur = kids
                .iter()
                .copied()
                .find(|k| self.nodes[*k].name == comp)
                .or_else(|| {
                    if comp.contains('@') {
                        None
                    } else {
                        kids.iter()
                            .copied()
                            .find(|k| self.nodes[*k].name.split('@').next() == Some(comp))
                    }
                })?;
        }
        Some(cur)
    }

    /// A path, or an alias name (optionally followed by more path), to a node.
    pub fn find_path_or_alias(&self, s: &str) -> Option<NodeId> {
        if s.starts_with('/') {
            return self.find(s);
        }
        let (alias, rest) = s.split_once('/').unwrap_or((s, ""));
        let aliases = self.find("/aliases")?;
        let target = self.str_prop(aliases, alias).ok().flatten()?;
        if rest.is_empty() {
            self.find(target)
        } else {
            self.find(&format!("{target}/{rest}"))
        }
    }

    // ---- typed property readers ----

    pub fn prop(&self, id: NodeId, name: &str) -> Option<&[u8]> {
        self.nodes[id]
            .props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn has_prop(&self, id: NodeId, name: &str) -> bool {
        self.prop(id, name).is_some()
    }

    fn bad(&self, id: NodeId, prop: &str, reason: impl Into<String>) -> Error {
        Error::BadProperty {
            node: self.path(id).to_string(),
            prop: prop.to_string(),
            reason: reason.into(),
        }
    }

    /// A property holding exactly one u32 cell.
    pub fn u32_prop(&self, id: NodeId, name: &str) -> Result<Option<u32>> {
        match self.prop(id, name) {
            None => Ok(None),
            Some(v) => <[u8; 4]>::try_from(v)
                .map(|b| Some(u32::from_be_bytes(b)))
                .map_err(|_| self.bad(id, name, format!("is {} bytes, expected 4", v.len()))),
        }
    }

    /// A property read as a list of u32 cells.
    pub fn cells(&self, id: NodeId, name: &str) -> Result<Option<Vec<u32>>> {
        match self.prop(id, name) {
            None => Ok(None),
            Some(v) if v.len() % 4 != 0 => Err(self.bad(
                id,
                name,
                format!("is {} bytes, not a whole number of cells", v.len()),
            )),
            Some(v) => Ok(Some(
                v.chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
        }
    }

    /// The first string of a string (list) property.
    pub fn str_prop(&self, id: NodeId, name: &str) -> Result<Option<&str>> {
        match self.prop(id, name) {
            None => Ok(None),
            Some(v) => {
                let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
                std::str::from_utf8(&v[..end])
                    .map(Some)
                    .map_err(|_| self.bad(id, name, "is not UTF-8 text"))
            }
        }
    }

    /// Every string of a string-list property (non-UTF-8 entries skipped).
    pub fn strings(&self, id: NodeId, name: &str) -> Vec<&str> {
        self.prop(id, name)
            .map(|v| {
                v.split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| std::str::from_utf8(s).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn compatible(&self, id: NodeId) -> Vec<&str> {
        self.strings(id, "compatible")
    }

    pub fn is_compatible(&self, id: NodeId, any_of: &[&str]) -> bool {
        self.compatible(id).iter().any(|c| any_of.contains(c))
    }

    /// `status` absent, "okay" or "ok".
    pub fn is_enabled(&self, id: NodeId) -> bool {
        matches!(
            self.str_prop(id, "status"),
            Ok(None) | Ok(Some("okay")) | Ok(Some("ok"))
        )
    }

    /// This node's `#address-cells` (for its children), default 2.
    pub fn address_cells(&self, id: NodeId) -> Result<u32> {
        let v = self.u32_prop(id, "#address-cells")?.unwrap_or(2);
        if v > 3 {
            return Err(self.bad(id, "#address-cells", format!("is {v}, more than 3")));
        }
        Ok(v)
    }

    /// This node's `#size-cells` (for its children), default 1.
    pub fn size_cells(&self, id: NodeId) -> Result<u32> {
        let v = self.u32_prop(id, "#size-cells")?.unwrap_or(1);
        if v > 2 {
            return Err(self.bad(id, "#size-cells", format!("is {v}, more than 2")));
        }
        Ok(v)
    }

    /// Is this node a PCI bus (its children's addresses are config-space
    /// addresses, not CPU addresses)?
    pub fn is_pci_bus(&self, id: NodeId) -> bool {
        matches!(self.str_prop(id, "device_type"), Ok(Some("pci")))
    }

    /// `reg` as (address, size) pairs in the parent's bus address space.
    pub fn raw_reg(&self, id: NodeId) -> Result<Vec<(u64, u64)>> {
        let Some(parent) = self.parent(id) else {
            return Ok(Vec::new());
        };
        let Some(cells) = self.cells(id, "reg")? else {
            return Ok(Vec::new());
        };
        let ac = self.address_cells(parent)? as usize;
        let sc = self.size_cells(parent)? as usize;
        let step = ac + sc;
        if step == 0 {
            return Ok(Vec::new());
        }
        if cells.len() % step != 0 {
            return Err(self.bad(
                id,
                "reg",
                format!(
                    "has {} cells, not a multiple of #address-cells {ac} + #size-cells {sc}",
                    cells.len()
                ),
            ));
        }
        let mut out = Vec::new();
        for e in cells.chunks_exact(step) {
            let addr = join_cells(&e[..ac])
                .ok_or_else(|| self.bad(id, "reg", "holds an address wider than 64 bits"))?;
            let size = join_cells(&e[ac..])
                .ok_or_else(|| self.bad(id, "reg", "holds a size wider than 64 bits"))?;
            out.push((addr, size));
        }
        Ok(out)
    }

    /// Translates an address on the bus of `child`'s parent up to the CPU's
    /// physical address space through every `ranges`. `None`: not
    /// memory-mapped (a bus without `ranges`, e.g. I2C, or a PCI bus).
    pub fn translate(&self, child: NodeId, addr: u64) -> Result<Option<u64>> {
        let mut addr = addr;
        let mut bus = match self.parent(child) {
            Some(b) => b,
            None => return Ok(Some(addr)),
        };
        let mut steps = 0;
        while let Some(up) = self.parent(bus) {
            steps += 1;
            if steps > MAX_DEPTH {
                return Ok(None);
            }
            if self.is_pci_bus(bus) {
                return Ok(None);
            }
            let Some(ranges) = self.cells(bus, "ranges")? else {
                return Ok(None);
            };
            if !ranges.is_empty() {
                let ca = self.address_cells(bus)? as usize;
                let pa = self.address_cells(up)? as usize;
                let cs = self.size_cells(bus)? as usize;
                let step = ca + pa + cs;
                if step == 0 || ranges.len() % step != 0 {
                    return Err(self.bad(
                        bus,
                        "ranges",
                        format!("has {} cells, not a multiple of {step}", ranges.len()),
                    ));
                }
                let mut hit = None;
                for e in ranges.chunks_exact(step) {
                    let (Some(c), Some(p), Some(s)) = (
                        join_cells(&e[..ca]),
                        join_cells(&e[ca..ca + pa]),
                        join_cells(&e[ca + pa..]),
                    ) else {
                        continue;
                    };
                    if addr >= c && (addr - c) < s {
                        hit = p.checked_add(addr - c);
                        break;
                    }
                }
                match hit {
                    Some(a) => addr = a,
                    None => return Ok(None),
                }
            }
            bus = up;
        }
        Ok(Some(addr))
    }

    /// `reg` translated to CPU physical ranges; entries that are not
    /// memory-mapped or empty are left out.
    pub fn mmio(&self, id: NodeId) -> Result<Vec<(u64, u64)>> {
        let Some(parent) = self.parent(id) else {
            return Ok(Vec::new());
        };
        if self.is_pci_bus(parent) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (addr, size) in self.raw_reg(id)? {
            if size == 0 {
                continue;
            }
            let Some(pa) = self.translate(id, addr)? else {
                continue;
            };
            check_range(self.path(id), "reg", pa, size)?;
            out.push((pa, size));
        }
        Ok(out)
    }
}

/// Rejects ranges that wrap or exceed the largest physical address space.
pub fn check_range(node: &str, what: &'static str, start: u64, size: u64) -> Result<()> {
    match start.checked_add(size) {
        Some(end) if end <= MAX_PHYS => Ok(()),
        _ => Err(Error::AbsurdSize {
            node: node.to_string(),
            what,
            start,
            size,
        }),
    }
}

/// Big-endian cells to a u64; more than two cells only if the upper ones are 0.
pub fn join_cells(cells: &[u32]) -> Option<u64> {
    let n = cells.len();
    if n > 2 && cells[..n - 2].iter().any(|c| *c != 0) {
        return None;
    }
    Some(
        cells[n.saturating_sub(2)..]
            .iter()
            .fold(0u64, |acc, c| (acc << 32) | u64::from(*c)),
    )
}
