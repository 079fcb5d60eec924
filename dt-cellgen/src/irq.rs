//! Interrupt resolution: from a device's `interrupts` /
//! `interrupts-extended` through `interrupt-parent`, hierarchical
//! controllers and `interrupt-map` nexus nodes down to a GIC INTID.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::tree::{NodeId, Tree};

/// Longest chain of parents / maps followed for one interrupt.
const MAX_HOPS: usize = 32;

/// Kind of a GIC interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqKind {
    /// Shared peripheral interrupt (INTID 32..1019, or extended 4096..).
    Spi,
    /// Private peripheral interrupt (INTID 16..31, or extended 1056..).
    Ppi,
}

/// Where one interrupt of a device ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqTarget {
    /// A GIC interrupt.
    Gic { intid: u32, kind: IrqKind },
    /// Ends at a controller that multiplexes its inputs onto its own
    /// interrupt(s) (a GPIO block, a PMIC, a secondary irqchip): the device's
    /// interrupt is not a GIC line of its own.
    Chained { controller: NodeId },
}

/// One resolved interrupt with the nodes it went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irq {
    pub target: IrqTarget,
    /// Controllers or nexus nodes passed on the way (not the GIC itself).
    pub via: Vec<NodeId>,
}

impl Irq {
    /// The GIC SPI INTID, if this is one.
    pub fn spi(&self) -> Option<u32> {
        match self.target {
            IrqTarget::Gic {
                intid,
                kind: IrqKind::Spi,
            } => Some(intid),
            _ => None,
        }
    }
}

/// Resolves interrupts to one GIC.
pub struct Resolver<'t> {
    tree: &'t Tree,
    gic: NodeId,
}

impl<'t> Resolver<'t> {
    pub fn new(tree: &'t Tree, gic: NodeId) -> Self {
        Resolver { tree, gic }
    }

    fn phandle(&self, node: NodeId, prop: &str, ph: u32) -> Result<NodeId> {
        self.tree
            .by_phandle(ph)
            .ok_or_else(|| Error::DanglingPhandle {
                node: self.tree.path(node).to_string(),
                prop: prop.to_string(),
                phandle: ph,
            })
    }

    /// The interrupt domain of `node`: following `interrupt-parent` (or the
    /// tree parent where it is absent) to the first node with
    /// `#interrupt-cells`.
    pub fn domain_of(&self, node: NodeId) -> Result<Option<NodeId>> {
        let mut seen = BTreeSet::new();
        let mut cur = node;
        loop {
            let next = match self.tree.u32_prop(cur, "interrupt-parent")? {
                Some(ph) => self.phandle(cur, "interrupt-parent", ph)?,
                None => match self.tree.parent(cur) {
                    Some(p) => p,
                    None => return Ok(None),
                },
            };
            if next == cur && self.tree.has_prop(next, "#interrupt-cells") {
                // The root controller names itself as its parent.
                return Ok(Some(next));
            }
            if next == cur || !seen.insert(next) {
                return Err(Error::PhandleLoop {
                    node: self.tree.path(node).to_string(),
                    prop: "interrupt-parent",
                    back_to: self.tree.path(next).to_string(),
                });
            }
            if self.tree.has_prop(next, "#interrupt-cells") {
                return Ok(Some(next));
            }
            cur = next;
        }
    }

    fn interrupt_cells(&self, ctrl: NodeId) -> Result<usize> {
        match self.tree.u32_prop(ctrl, "#interrupt-cells")? {
            Some(n) if (1..=4).contains(&n) => Ok(n as usize),
            Some(n) => Err(Error::BadProperty {
                node: self.tree.path(ctrl).to_string(),
                prop: "#interrupt-cells".into(),
                reason: format!("is {n}, expected 1..=4"),
            }),
            None => Err(Error::MissingProperty {
                node: self.tree.path(ctrl).to_string(),
                prop: "#interrupt-cells",
            }),
        }
    }

    /// Every interrupt of `node`, resolved. Nodes without interrupts give an
    /// empty list.
    pub fn interrupts_of(&self, node: NodeId) -> Result<Vec<Irq>> {
        let mut out = Vec::new();
        if let Some(cells) = self.tree.cells(node, "interrupts-extended")? {
            let mut i = 0;
            while i < cells.len() {
                let ctrl = self.phandle(node, "interrupts-extended", cells[i])?;
                let n = self.interrupt_cells(ctrl)?;
                let Some(spec) = cells.get(i + 1..i + 1 + n) else {
                    return Err(Error::BadProperty {
                        node: self.tree.path(node).to_string(),
                        prop: "interrupts-extended".into(),
                        reason: format!("ends inside a specifier for {}", self.tree.path(ctrl)),
                    });
                };
                out.push(self.resolve(node, ctrl, spec.to_vec())?);
                i += 1 + n;
            }
            return Ok(out);
        }
        let Some(cells) = self.tree.cells(node, "interrupts")? else {
            return Ok(out);
        };
        if cells.is_empty() {
            return Ok(out);
        }
        let Some(ctrl) = self.domain_of(node)? else {
            return Err(Error::MissingProperty {
                node: self.tree.path(node).to_string(),
                prop: "interrupt-parent",
            });
        };
        let n = self.interrupt_cells(ctrl)?;
        if cells.len() % n != 0 {
            return Err(Error::BadProperty {
                node: self.tree.path(node).to_string(),
                prop: "interrupts".into(),
                reason: format!(
                    "has {} cells, not a multiple of {}'s #interrupt-cells {n}",
                    cells.len(),
                    self.tree.path(ctrl)
                ),
            });
        }
        for spec in cells.chunks_exact(n) {
            out.push(self.resolve(node, ctrl, spec.to_vec())?);
        }
        Ok(out)
    }

    /// Decodes a specifier of the GIC itself.
    pub fn decode_gic(&self, node: NodeId, spec: &[u32]) -> Result<IrqTarget> {
        let bad = |reason: String| Error::BadProperty {
            node: self.tree.path(node).to_string(),
            prop: "interrupts".into(),
            reason,
        };
        let (Some(&ty), Some(&num)) = (spec.first(), spec.get(1)) else {
            return Err(bad(format!(
                "GIC specifier has {} cells, needs at least 2",
                spec.len()
            )));
        };
        let (base, kind, limit) = match ty {
            0 => (32, IrqKind::Spi, 988),
            1 => (16, IrqKind::Ppi, 16),
            2 => (4096, IrqKind::Spi, 1024),
            3 => (1056, IrqKind::Ppi, 64),
            t => return Err(bad(format!("GIC interrupt type {t} is not SPI/PPI"))),
        };
        if num >= limit {
            return Err(bad(format!("GIC interrupt number {num} out of range")));
        }
        Ok(IrqTarget::Gic {
            intid: base + num,
            kind,
        })
    }

    /// Follows one specifier from controller/nexus `ctrl` to the GIC.
    fn resolve(&self, node: NodeId, ctrl: NodeId, spec: Vec<u32>) -> Result<Irq> {
        let mut via = Vec::new();
        let mut ctrl = ctrl;
        let mut spec = spec;
        let mut unit = self.unit_address(node, ctrl)?;
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_HOPS {
            if !seen.insert((ctrl, spec.clone())) {
                if self.tree.has_prop(ctrl, "interrupt-controller") {
                    // Pass-through guesses that come back around: the
                    // controller is not a plain forwarder after all.
                    return Ok(Irq {
                        target: IrqTarget::Chained { controller: ctrl },
                        via,
                    });
                }
                return Err(Error::PhandleLoop {
                    node: self.tree.path(node).to_string(),
                    prop: "interrupt-map",
                    back_to: self.tree.path(ctrl).to_string(),
                });
            }
            if ctrl == self.gic {
                let target = self.decode_gic(node, &spec)?;
                return Ok(Irq { target, via });
            }
            if self.tree.has_prop(ctrl, "interrupt-controller") {
                // A controller without interrupts of its own that forwards to a
                // parent with the same specifier format is a hierarchical
                // (pass-through) domain, e.g. a wake-up or GPC block.
                let chained = self.tree.has_prop(ctrl, "interrupts")
                    || self.tree.has_prop(ctrl, "interrupts-extended");
                // Only with an explicit parent that is itself a controller:
                // a controller under a nexus (a PCI host's INTx block) is
                // demultiplexed by its driver.
                if !chained && self.tree.has_prop(ctrl, "interrupt-parent") {
                    if let Some(up) = self.domain_of(ctrl)? {
                        if self.tree.has_prop(up, "interrupt-controller")
                            && self.interrupt_cells(up)? == spec.len()
                        {
                            via.push(ctrl);
                            ctrl = up;
                            unit = Vec::new();
                            continue;
                        }
                    }
                }
                return Ok(Irq {
                    target: IrqTarget::Chained { controller: ctrl },
                    via,
                });
            }
            if self.tree.has_prop(ctrl, "interrupt-map") {
                via.push(ctrl);
                let (next, next_spec, next_unit) = self.map_one(node, ctrl, &unit, &spec)?;
                ctrl = next;
                spec = next_spec;
                unit = next_unit;
                continue;
            }
            return Err(Error::MissingProperty {
                node: self.tree.path(ctrl).to_string(),
                prop: "interrupt-controller",
            });
        }
        Err(Error::PhandleLoop {
            node: self.tree.path(node).to_string(),
            prop: "interrupt-map",
            back_to: self.tree.path(ctrl).to_string(),
        })
    }

    /// `#address-cells` used for a nexus' child unit address: the nexus'
    /// own, else an ancestor's, else 2 (what Linux does).
    fn nexus_address_cells(&self, nexus: NodeId) -> Result<usize> {
        let mut cur = Some(nexus);
        while let Some(c) = cur {
            if let Some(v) = self.tree.u32_prop(c, "#address-cells")? {
                return Ok(v.min(3) as usize);
            }
            cur = self.tree.parent(c);
        }
        Ok(2)
    }

    fn unit_address(&self, node: NodeId, ctrl: NodeId) -> Result<Vec<u32>> {
        if !self.tree.has_prop(ctrl, "interrupt-map") {
            return Ok(Vec::new());
        }
        let n = self.nexus_address_cells(ctrl)?;
        let reg = self.tree.cells(node, "reg")?.unwrap_or_default();
        let mut unit: Vec<u32> = reg.into_iter().take(n).collect();
        unit.resize(n, 0);
        Ok(unit)
    }

    /// Parses a nexus' `interrupt-map` into (child unit+spec, parent, parent
    /// unit, parent spec) entries.
    #[allow(clippy::type_complexity)]
    pub fn map_entries(
        &self,
        nexus: NodeId,
    ) -> Result<Vec<(Vec<u32>, NodeId, Vec<u32>, Vec<u32>)>> {
        let map = self.tree.cells(nexus, "interrupt-map")?.unwrap_or_default();
        let ac = self.nexus_address_cells(nexus)?;
        let ic = self.interrupt_cells(nexus)?;
        let bad = |reason: String| Error::BadProperty {
            node: self.tree.path(nexus).to_string(),
            prop: "interrupt-map".into(),
            reason,
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < map.len() {
            let child = map
                .get(i..i + ac + ic)
                .ok_or_else(|| bad(format!("ends inside an entry at cell {i}")))?
                .to_vec();
            i += ac + ic;
            let ph = *map
                .get(i)
                .ok_or_else(|| bad(format!("entry at cell {i} has no parent phandle")))?;
            let parent = self.phandle(nexus, "interrupt-map", ph)?;
            i += 1;
            let pac = self
                .tree
                .u32_prop(parent, "#address-cells")?
                .unwrap_or(0)
                .min(3) as usize;
            let pic = self.interrupt_cells(parent)?;
            let punit = map
                .get(i..i + pac)
                .ok_or_else(|| bad(format!("ends inside an entry at cell {i}")))?
                .to_vec();
            i += pac;
            let pspec = map
                .get(i..i + pic)
                .ok_or_else(|| bad(format!("ends inside an entry at cell {i}")))?
                .to_vec();
            i += pic;
            out.push((child, parent, punit, pspec));
        }
        Ok(out)
    }

    fn map_one(
        &self,
        node: NodeId,
        nexus: NodeId,
        unit: &[u32],
        spec: &[u32],
    ) -> Result<(NodeId, Vec<u32>, Vec<u32>)> {
        let mut key: Vec<u32> = unit.to_vec();
        key.extend_from_slice(spec);
        let mask = self
            .tree
            .cells(nexus, "interrupt-map-mask")?
            .unwrap_or_else(|| vec![u32::MAX; key.len()]);
        let masked: Vec<u32> = key
            .iter()
            .enumerate()
            .map(|(i, v)| v & mask.get(i).copied().unwrap_or(u32::MAX))
            .collect();
        for (child, parent, punit, pspec) in self.map_entries(nexus)? {
            if child.len() == masked.len() && child == masked {
                return Ok((parent, pspec, punit));
            }
        }
        Err(Error::BadProperty {
            node: self.tree.path(node).to_string(),
            prop: "interrupts".into(),
            reason: format!(
                "specifier {:x?} has no entry in {}'s interrupt-map",
                key,
                self.tree.path(nexus)
            ),
        })
    }

    /// Every GIC interrupt a nexus' `interrupt-map` can lead to (e.g. a PCI
    /// host's INTx lines).
    pub fn map_targets(&self, nexus: NodeId) -> Result<Vec<Irq>> {
        let mut out: Vec<Irq> = Vec::new();
        for (_, parent, _, pspec) in self.map_entries(nexus)? {
            let irq = self.resolve(nexus, parent, pspec)?;
            if !out.contains(&irq) {
                out.push(irq);
            }
        }
        Ok(out)
    }
}
