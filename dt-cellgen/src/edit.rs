//! Last edits of a root DTB for a Linux root cell: `/chosen` (command line,
//! initrd), nodes disabled (devices other cells take at run time), nodes
//! deleted (what the root cell must not see at all, such as a GICv3 ITS the
//! hypervisor does not emulate, or the SMMU the hypervisor owns) and
//! entries dropped from a bus's `ranges` (a PCI window the root cell is not
//! given, so that Linux places no BAR there).
//!
//! Deleting a node also drops the `msi-parent`, `msi-map`, `iommus` and
//! `iommu-map` properties that refer to it (or to a node under it), with
//! their `-map-mask`s, so no device keeps a dangling MSI controller or IOMMU.

use std::collections::BTreeSet;

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use dtoolkit::{Node, Property};

use crate::args::{parse_size, parse_u64};
use crate::error::{Error, Result};
use crate::tree::{Tree, MAX_DEPTH};

/// Properties dropped when the node they refer to is deleted.
const MSI_REFS: [&str; 4] = ["msi-parent", "msi-map", "iommus", "iommu-map"];

/// What [`apply`] changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/linux,initrd-start` and `-end`: (address, size).
    pub initrd: Option<(u64, u64)>,
    /// Paths of nodes that get `status = "disabled"`.
    pub disable: Vec<String>,
    /// Paths of nodes removed with everything under them.
    pub delete: Vec<String>,
    /// `(node path, parent bus address)`: the entry of the node's `ranges`
    /// that starts at that address in the parent's address space goes.
    pub drop_ranges: Vec<(String, u64)>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        *self == Edits::default()
    }
}

/// The command-line form of [`Edits`] (`dt-cellgen root-dtb`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EditArgs {
    /// Kernel command line, written to /chosen/bootargs.
    #[arg(long)]
    pub bootargs: Option<String>,
    /// Initrd address and size for /chosen linux,initrd-start/-end,
    /// e.g. 0x48200000 0xa00000.
    #[arg(long, num_args = 2, value_names = ["ADDR", "SIZE"])]
    pub initrd: Option<Vec<String>>,
    /// A node (full path) to mark status = "disabled"; repeatable.
    #[arg(long = "disable", value_name = "PATH")]
    pub disable: Vec<String>,
    /// A node (full path) to delete, with the msi-parent/msi-map properties
    /// that refer to it; repeatable.
    #[arg(long = "delete", value_name = "PATH")]
    pub delete: Vec<String>,
    /// The entry of a node's `ranges` that starts at ADDR in its parent's
    /// address space (the CPU address of a PCI host bridge's window), to
    /// drop, e.g. /pcie@10000000:0x8000000000; repeatable.
    #[arg(long = "drop-range", value_name = "PATH:ADDR")]
    pub drop_ranges: Vec<String>,
}

impl EditArgs {
    /// Parses the numbers.
    pub fn edits(&self) -> Result<Edits> {
        let initrd = match self.initrd.as_deref() {
            None => None,
            Some([a, s]) => Some((parse_u64(a)?, parse_size(s)?)),
            Some(other) => {
                return Err(Error::BadArgument {
                    what: "--initrd",
                    reason: format!("takes ADDR SIZE, got {} values", other.len()),
                })
            }
        };
        let drop_ranges = self
            .drop_ranges
            .iter()
            .map(|a| {
                let (path, addr) = a.rsplit_once(':').ok_or_else(|| Error::BadArgument {
                    what: "--drop-range",
                    reason: format!("\"{a}\" is not PATH:ADDR"),
                })?;
                Ok((path.to_owned(), parse_u64(addr)?))
            })
            .collect::<Result<_>>()?;
        Ok(Edits {
            bootargs: self.bootargs.clone(),
            initrd,
            disable: self.disable.clone(),
            delete: self.delete.clone(),
            drop_ranges,
        })
    }
}

fn werr(e: impl std::fmt::Display) -> Error {
    Error::Write(e.to_string())
}

fn prop(name: &str, value: Vec<u8>) -> Result<DeviceTreeProperty> {
    DeviceTreeProperty::new(name, value).map_err(werr)
}

fn u32_cells(value: &[u8]) -> impl Iterator<Item = u32> + '_ {
    value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Phandles of `node` and every node under it.
fn phandles(node: &DeviceTreeNode, depth: usize, out: &mut BTreeSet<u32>) {
    if depth > MAX_DEPTH {
        return;
    }
    for name in ["phandle", "linux,phandle"] {
        if let Some(p) = node.property(name) {
            out.extend(u32_cells(p.value()).take(1));
        }
    }
    for c in node.children() {
        phandles(c, depth + 1, out);
    }
}

/// Drops MSI properties naming one of `gone`, under `node`; returns how many.
fn drop_msi_refs(node: &mut DeviceTreeNode, gone: &BTreeSet<u32>, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    let doomed: Vec<&str> = MSI_REFS
        .into_iter()
        .filter(|name| {
            node.property(name)
                .is_some_and(|p| u32_cells(p.value()).any(|c| gone.contains(&c)))
        })
        .collect();
    let mut n = doomed.len();
    for name in doomed {
        node.remove_property(name);
        if name.ends_with("-map") {
            node.remove_property(&format!("{name}-mask"));
        }
    }
    for c in node.children_mut() {
        n += drop_msi_refs(c, gone, depth + 1);
    }
    n
}

fn not_found(what: &'static str, path: &str) -> Error {
    Error::BadArgument {
        what,
        reason: format!("no node {path} in the device tree"),
    }
}

fn delete_node(dt: &mut DeviceTree, path: &str) -> Result<()> {
    let (parent, name) = path
        .rsplit_once('/')
        .filter(|(_, n)| !n.is_empty())
        .ok_or_else(|| Error::BadArgument {
            what: "--delete",
            reason: format!("\"{path}\" is not the full path of a node below /"),
        })?;
    let parent = if parent.is_empty() { "/" } else { parent };
    let node = dt
        .find_node_mut(parent)
        .and_then(|p| p.remove_child(name))
        .ok_or_else(|| not_found("--delete", path))?;
    let mut gone = BTreeSet::new();
    phandles(&node, 0, &mut gone);
    if !gone.is_empty() {
        drop_msi_refs(&mut dt.root, &gone, 0);
    }
    Ok(())
}

/// `#address-cells` or `#size-cells` of `node` (`default` if absent).
fn cells_of(node: &DeviceTreeNode, name: &str, default: u32) -> u32 {
    node.property(name)
        .and_then(|p| u32_cells(p.value()).next())
        .unwrap_or(default)
}

/// Drops the entry of `path`'s `ranges` whose parent address is `addr`.
fn drop_range(dt: &mut DeviceTree, path: &str, addr: u64) -> Result<()> {
    let bad = |reason: String| Error::BadArgument {
        what: "--drop-range",
        reason,
    };
    let parent = match path.rsplit_once('/') {
        Some(("", n)) if !n.is_empty() => "/",
        Some((p, n)) if !n.is_empty() => p,
        _ => {
            return Err(bad(format!(
                "\"{path}\" is not the full path of a node below /"
            )))
        }
    };
    let parent_ac = dt
        .find_node(parent)
        .map(|p| cells_of(p, "#address-cells", 2))
        .ok_or_else(|| not_found("--drop-range", parent))?;
    let node = dt
        .find_node_mut(path)
        .ok_or_else(|| not_found("--drop-range", path))?;
    let child_ac = cells_of(node, "#address-cells", 2);
    let sc = cells_of(node, "#size-cells", 1);
    if parent_ac == 0 || parent_ac > 2 || child_ac > 3 || sc > 2 {
        return Err(bad(format!(
            "{path}: unsupported cell counts (parent #address-cells {parent_ac}, \
             #address-cells {child_ac}, #size-cells {sc})"
        )));
    }
    let value = node
        .property("ranges")
        .map(|p| p.value().to_vec())
        .ok_or_else(|| bad(format!("{path} has no ranges")))?;
    let entry = 4 * (child_ac + parent_ac + sc) as usize;
    if value.is_empty() || value.len() % entry != 0 {
        return Err(bad(format!(
            "{path}: ranges is {} bytes, not a list of {entry}-byte entries",
            value.len()
        )));
    }
    let parent_addr = |e: &[u8]| {
        u32_cells(e)
            .skip(child_ac as usize)
            .take(parent_ac as usize)
            .fold(0u64, |a, c| (a << 32) | u64::from(c))
    };
    let kept: Vec<u8> = value
        .chunks_exact(entry)
        .filter(|e| parent_addr(e) != addr)
        .flatten()
        .copied()
        .collect();
    if kept.len() == value.len() {
        return Err(bad(format!("{path}: no ranges entry at {addr:#x}")));
    }
    node.add_property(prop("ranges", kept)?);
    Ok(())
}

/// Applies `edits` to the DTB `dtb` and returns the new blob.
pub fn apply(dtb: &[u8], edits: &Edits) -> Result<Vec<u8>> {
    let tree = Tree::parse(dtb)?;
    let mut dt = tree.model().clone();
    for path in &edits.delete {
        delete_node(&mut dt, path)?;
    }
    for (path, addr) in &edits.drop_ranges {
        drop_range(&mut dt, path, *addr)?;
    }
    for path in &edits.disable {
        let node = dt
            .find_node_mut(path)
            .ok_or_else(|| not_found("--disable", path))?;
        node.add_property(prop("status", b"disabled\0".to_vec())?);
    }
    if edits.bootargs.is_some() || edits.initrd.is_some() {
        if dt.find_node_mut("/chosen").is_none() {
            dt.root
                .add_child(DeviceTreeNode::new("chosen").map_err(werr)?);
        }
        let chosen = dt
            .find_node_mut("/chosen")
            .ok_or_else(|| werr("/chosen vanished"))?;
        if let Some(args) = &edits.bootargs {
            let mut v = args.as_bytes().to_vec();
            v.push(0);
            chosen.add_property(prop("bootargs", v)?);
        }
        if let Some((start, size)) = edits.initrd {
            let end = start.checked_add(size).ok_or_else(|| Error::BadArgument {
                what: "--initrd",
                reason: format!("{start:#x} + {size:#x} overflows"),
            })?;
            chosen.add_property(prop("linux,initrd-start", start.to_be_bytes().to_vec())?);
            chosen.add_property(prop("linux,initrd-end", end.to_be_bytes().to_vec())?);
        }
    }
    Ok(dt.to_dtb())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small tree: an interrupt controller with an MSI frame (phandle 7),
    /// an SMMU (phandle 8), a PCI host that names both and has an I/O, a
    /// 32-bit and a 64-bit window, two UARTs, no /chosen.
    fn sample() -> Vec<u8> {
        let cell = |v: u32| v.to_be_bytes().to_vec();
        let frame = DeviceTreeNode::builder("its@8080000")
            .unwrap()
            .property(prop("phandle", cell(7)).unwrap())
            .build();
        let gic = DeviceTreeNode::builder("intc@8000000")
            .unwrap()
            .property(prop("phandle", cell(1)).unwrap())
            .child(frame)
            .build();
        let smmu = DeviceTreeNode::builder("smmuv3@9050000")
            .unwrap()
            .property(prop("phandle", cell(8)).unwrap())
            .build();
        let pcie = DeviceTreeNode::builder("pcie@10000000")
            .unwrap()
            .property(prop("msi-map", [0u32, 7, 0, 0x10000].map(cell).concat()).unwrap())
            .property(prop("iommu-map", [0u32, 8, 0, 0x10000].map(cell).concat()).unwrap())
            .property(prop("iommu-map-mask", cell(0xfff8)).unwrap())
            .property(prop("interrupt-parent", cell(1)).unwrap())
            .property(prop("#address-cells", cell(3)).unwrap())
            .property(prop("#size-cells", cell(2)).unwrap())
            .property(prop("ranges", pci_ranges().concat()).unwrap())
            .build();
        let other = DeviceTreeNode::builder("virtio@a000000")
            .unwrap()
            .property(prop("msi-parent", cell(1)).unwrap())
            .build();
        let mut dt = DeviceTree::new();
        dt.root
            .add_property(prop("#address-cells", cell(2)).unwrap());
        dt.root.add_property(prop("#size-cells", cell(2)).unwrap());
        for n in [gic, smmu, pcie, other] {
            dt.root.add_child(n);
        }
        for u in ["pl011@9000000", "pl011@9040000"] {
            dt.root.add_child(DeviceTreeNode::new(u).unwrap());
        }
        dt.to_dtb()
    }

    /// QEMU virt's PCI windows: I/O, 32-bit MMIO, 64-bit MMIO (7 cells each).
    fn pci_ranges() -> [Vec<u8>; 3] {
        let cells = |v: [u32; 7]| v.map(u32::to_be_bytes).concat();
        [
            cells([0x100_0000, 0, 0, 0, 0x3eff_0000, 0, 0x1_0000]),
            cells([0x200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x2eff_0000]),
            cells([0x300_0000, 0x80, 0, 0x80, 0, 0x80, 0]),
        ]
    }

    fn model(dtb: &[u8]) -> DeviceTree {
        Tree::parse(dtb).expect("parses").model().clone()
    }

    fn value(dt: &DeviceTree, node: &str, p: &str) -> Option<Vec<u8>> {
        dt.find_node(node)?.property(p).map(|p| p.value().to_vec())
    }

    #[test]
    fn chosen_gets_bootargs_and_initrd() {
        let edits = Edits {
            bootargs: Some("console=ttyAMA0 rdinit=/init".into()),
            initrd: Some((0x4820_0000, 0x10_0000)),
            ..Default::default()
        };
        let dt = model(&apply(&sample(), &edits).unwrap());
        assert_eq!(
            value(&dt, "/chosen", "bootargs"),
            Some(b"console=ttyAMA0 rdinit=/init\0".to_vec())
        );
        assert_eq!(
            value(&dt, "/chosen", "linux,initrd-start"),
            Some(0x4820_0000u64.to_be_bytes().to_vec())
        );
        assert_eq!(
            value(&dt, "/chosen", "linux,initrd-end"),
            Some(0x4830_0000u64.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn delete_drops_the_msi_references_to_the_node() {
        let edits = Edits {
            delete: vec!["/intc@8000000/its@8080000".into()],
            disable: vec!["/pl011@9040000".into()],
            ..Default::default()
        };
        let dt = model(&apply(&sample(), &edits).unwrap());
        assert!(dt.find_node("/intc@8000000/its@8080000").is_none());
        assert!(dt.find_node("/intc@8000000").is_some());
        assert_eq!(value(&dt, "/pcie@10000000", "msi-map"), None);
        // The SMMU is still there: so are the references to it.
        assert!(value(&dt, "/pcie@10000000", "iommu-map").is_some());
        // Other phandles' references stay.
        assert!(value(&dt, "/pcie@10000000", "interrupt-parent").is_some());
        assert!(value(&dt, "/virtio@a000000", "msi-parent").is_some());
        assert_eq!(
            value(&dt, "/pl011@9040000", "status"),
            Some(b"disabled\0".to_vec())
        );
        assert_eq!(value(&dt, "/pl011@9000000", "status"), None);
        assert!(dt.find_node("/chosen").is_none());
    }

    #[test]
    fn deleting_the_smmu_drops_the_iommu_map_and_its_mask() {
        let edits = Edits {
            delete: vec!["/smmuv3@9050000".into()],
            ..Default::default()
        };
        let dt = model(&apply(&sample(), &edits).unwrap());
        assert!(dt.find_node("/smmuv3@9050000").is_none());
        assert_eq!(value(&dt, "/pcie@10000000", "iommu-map"), None);
        assert_eq!(value(&dt, "/pcie@10000000", "iommu-map-mask"), None);
        assert!(value(&dt, "/pcie@10000000", "msi-map").is_some());
    }

    #[test]
    fn drop_range_removes_one_window_of_the_host_bridge() {
        let args = EditArgs {
            drop_ranges: vec!["/pcie@10000000:0x8000000000".into()],
            ..Default::default()
        };
        let dt = model(&apply(&sample(), &args.edits().unwrap()).unwrap());
        let [io, mem32, _] = pci_ranges();
        assert_eq!(
            value(&dt, "/pcie@10000000", "ranges"),
            Some([io, mem32].concat())
        );
        // The 32-bit window by its CPU address.
        let edits = Edits {
            drop_ranges: vec![("/pcie@10000000".into(), 0x1000_0000)],
            ..Default::default()
        };
        let dt = model(&apply(&sample(), &edits).unwrap());
        let [io, _, mem64] = pci_ranges();
        assert_eq!(
            value(&dt, "/pcie@10000000", "ranges"),
            Some([io, mem64].concat())
        );
    }

    #[test]
    fn drop_range_refuses_what_is_not_there() {
        let refused = |path: &str, addr: u64| {
            let edits = Edits {
                drop_ranges: vec![(path.into(), addr)],
                ..Default::default()
            };
            apply(&sample(), &edits).unwrap_err().to_string()
        };
        let e = refused("/pcie@10000000", 0x4000_0000);
        assert!(
            e.contains("--drop-range") && e.contains("no ranges entry at 0x40000000"),
            "{e}"
        );
        let e = refused("/pl011@9000000", 0);
        assert!(e.contains("has no ranges"), "{e}");
        let e = refused("/pcie@0", 0);
        assert!(e.contains("no node /pcie@0"), "{e}");
        assert!(refused("pcie", 0).contains("full path"));
        let args = EditArgs {
            drop_ranges: vec!["/pcie@10000000".into()],
            ..Default::default()
        };
        assert!(args.edits().unwrap_err().to_string().contains("PATH:ADDR"));
        let args = EditArgs {
            drop_ranges: vec!["/pcie@10000000:lots".into()],
            ..Default::default()
        };
        assert!(args.edits().is_err());
    }

    #[test]
    fn unknown_paths_and_bad_numbers_are_refused() {
        let missing = Edits {
            delete: vec!["/intc@8000000/v2m@8020000".into()],
            ..Default::default()
        };
        let e = apply(&sample(), &missing).unwrap_err().to_string();
        assert!(e.contains("--delete") && e.contains("v2m@8020000"), "{e}");
        let root = Edits {
            delete: vec!["/".into()],
            ..Default::default()
        };
        assert!(apply(&sample(), &root).is_err());
        let off = Edits {
            disable: vec!["/pl011@0".into()],
            ..Default::default()
        };
        let e = apply(&sample(), &off).unwrap_err().to_string();
        assert!(e.contains("--disable"), "{e}");
        let wrap = Edits {
            initrd: Some((u64::MAX, 2)),
            ..Default::default()
        };
        assert!(apply(&sample(), &wrap).is_err());
        let args = EditArgs {
            initrd: Some(vec!["0x48200000".into(), "lots".into()]),
            ..Default::default()
        };
        assert!(args.edits().is_err());
        assert!(apply(b"not a dtb", &Edits::default()).is_err());
    }
}
