//! Finding the management page in the running kernel's device tree.
//!
//! Linux exposes its device tree as directories (nodes) and files
//! (properties, raw big-endian bytes) under `/proc/device-tree`, a link to
//! `/sys/firmware/devicetree/base`. The page is the node named
//! `cellblock-mgmt@<hex>` with compatible `"cellblock,mgmt"`; its `reg` is
//! the page's address and size, in the parent's `#address-cells` and
//! `#size-cells` (2 and 2 when the parent does not say).

use std::path::{Path, PathBuf};

use hv_core::mgmt::{MGMT_COMPATIBLE, MGMT_NODE, MGMT_PAGE_SIZE};

use crate::Error;

/// Where the device tree is looked for, in order.
pub const DT_ROOTS: [&str; 2] = ["/proc/device-tree", "/sys/firmware/devicetree/base"];

/// The management node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MgmtNode {
    /// The node's directory.
    pub path: PathBuf,
    /// Physical address of the page.
    pub page: u64,
    /// Size from `reg`.
    pub size: u64,
}

/// Searches the first of `roots` that exists for the management node.
pub fn find_mgmt_node(roots: &[&Path]) -> Result<MgmtNode, Error> {
    let Some(root) = roots.iter().find(|r| r.is_dir()) else {
        let what = roots
            .first()
            .map_or_else(|| "device tree".to_string(), |r| r.display().to_string());
        return Err(Error::new(
            what,
            "no device tree (Cellblock's management page is found through the root cell's DTB)",
        ));
    };
    let mut queue = vec![root.to_path_buf()];
    while let Some(dir) = queue.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, e))?;
        let mut subdirs: Vec<PathBuf> = Vec::new();
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            let is_mgmt = name == MGMT_NODE
                || name
                    .strip_prefix(MGMT_NODE)
                    .is_some_and(|rest| rest.starts_with('@'));
            if is_mgmt && has_compatible(&path, MGMT_COMPATIBLE) {
                return parse_node(&dir, &path);
            }
            subdirs.push(path);
        }
        // Depth-first, in name order, so the result does not depend on the
        // order readdir returns.
        subdirs.sort();
        queue.extend(subdirs.into_iter().rev());
    }
    Err(Error::new(
        root.display().to_string(),
        format!(
            "no node {MGMT_NODE}@... with compatible \"{MGMT_COMPATIBLE}\" (is this Linux running as Cellblock's root cell?)"
        ),
    ))
}

fn has_compatible(node: &Path, compatible: &str) -> bool {
    std::fs::read(node.join("compatible"))
        .is_ok_and(|bytes| bytes.split(|&b| b == 0).any(|s| s == compatible.as_bytes()))
}

/// A `u32` property of `node`, if present.
fn read_cells_prop(node: &Path, name: &str) -> Result<Option<u32>, Error> {
    let path = node.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => match <[u8; 4]>::try_from(bytes.as_slice()) {
            Ok(b) => Ok(Some(u32::from_be_bytes(b))),
            Err(_) => Err(Error::file(
                &path,
                format!("{} bytes, a 4-byte cell count was expected", bytes.len()),
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file(&path, e)),
    }
}

/// Reads a big-endian number of `cells` 32-bit cells.
fn be_number(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn parse_node(parent: &Path, node: &Path) -> Result<MgmtNode, Error> {
    let address_cells = read_cells_prop(parent, "#address-cells")?.unwrap_or(2);
    let size_cells = read_cells_prop(parent, "#size-cells")?.unwrap_or(2);
    let reg_path = node.join("reg");
    if !(1..=2).contains(&address_cells) || size_cells > 2 {
        return Err(Error::file(
            &reg_path,
            format!(
                "#address-cells {address_cells} / #size-cells {size_cells} of the parent are not supported (1-2 / 0-2)"
            ),
        ));
    }
    let reg = std::fs::read(&reg_path).map_err(|e| Error::file(&reg_path, e))?;
    let a = address_cells as usize * 4;
    let s = size_cells as usize * 4;
    if reg.len() < a + s {
        return Err(Error::file(
            &reg_path,
            format!(
                "{} bytes, at least {} expected ({address_cells} address and {size_cells} size cells)",
                reg.len(),
                a + s
            ),
        ));
    }
    let page = be_number(&reg[..a]);
    let size = be_number(&reg[a..a + s]);
    if !page.is_multiple_of(MGMT_PAGE_SIZE) {
        return Err(Error::file(
            &reg_path,
            format!("page address {page:#x} is not 4 KiB aligned"),
        ));
    }
    if s > 0 && size < MGMT_PAGE_SIZE {
        return Err(Error::file(
            &reg_path,
            format!("size {size:#x} is smaller than the management page ({MGMT_PAGE_SIZE:#x})"),
        ));
    }
    Ok(MgmtNode {
        path: node.to_path_buf(),
        page,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::scratch;

    fn node(root: &Path, rel: &str, props: &[(&str, &[u8])]) {
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, value) in props {
            std::fs::write(dir.join(name), value).unwrap();
        }
    }

    fn reg(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn finds_the_node() {
        let root = scratch("dt-find");
        node(
            &root,
            "",
            &[
                ("#address-cells", &2u32.to_be_bytes()),
                ("#size-cells", &2u32.to_be_bytes()),
            ],
        );
        node(
            &root,
            "pl011@9000000",
            &[("compatible", b"arm,pl011\0arm,primecell\0")],
        );
        // Same name, wrong compatible: skipped.
        node(
            &root,
            "soc/cellblock-mgmt@d000000",
            &[("compatible", b"other\0")],
        );
        node(
            &root,
            "cellblock-mgmt@c000000",
            &[
                ("compatible", b"cellblock,mgmt\0"),
                ("reg", &reg(&[0, 0x0c00_0000, 0, 0x1000])),
            ],
        );
        let n = find_mgmt_node(&[Path::new("/nonexistent-dt"), &root]).unwrap();
        assert_eq!(n.page, 0x0c00_0000);
        assert_eq!(n.size, 0x1000);
        assert!(n.path.ends_with("cellblock-mgmt@c000000"));
    }

    #[test]
    fn nested_and_one_cell() {
        let root = scratch("dt-nested");
        node(
            &root,
            "bus",
            &[
                ("#address-cells", &1u32.to_be_bytes()),
                ("#size-cells", &1u32.to_be_bytes()),
            ],
        );
        node(
            &root,
            "bus/cellblock-mgmt@1000",
            &[
                ("compatible", b"x,y\0cellblock,mgmt\0"),
                ("reg", &reg(&[0x1000, 0x1000])),
            ],
        );
        let n = find_mgmt_node(&[&root]).unwrap();
        assert_eq!((n.page, n.size), (0x1000, 0x1000));
        // 64-bit addresses above 4 GiB.
        let root = scratch("dt-high");
        node(
            &root,
            "cellblock-mgmt@100000000",
            &[
                ("compatible", b"cellblock,mgmt\0"),
                ("reg", &reg(&[1, 0, 0, 0x2000])),
            ],
        );
        let n = find_mgmt_node(&[&root]).unwrap();
        assert_eq!((n.page, n.size), (0x1_0000_0000, 0x2000));
    }

    #[test]
    fn errors() {
        let e = find_mgmt_node(&[Path::new("/nonexistent-dt")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent-dt: no device tree (Cellblock's management page is found through the root cell's DTB)"
        );

        let root = scratch("dt-none");
        node(&root, "memory@40000000", &[]);
        let e = find_mgmt_node(&[&root]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: no node cellblock-mgmt@... with compatible \"cellblock,mgmt\" (is this Linux running as Cellblock's root cell?)",
                root.display()
            )
        );

        let root = scratch("dt-short");
        node(
            &root,
            "cellblock-mgmt@c000000",
            &[
                ("compatible", b"cellblock,mgmt\0"),
                ("reg", &reg(&[0, 0x0c00_0000])),
            ],
        );
        let e = find_mgmt_node(&[&root]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("reg: 8 bytes, at least 16 expected (2 address and 2 size cells)"),
            "{e}"
        );

        let root = scratch("dt-unaligned");
        node(
            &root,
            "cellblock-mgmt@c000010",
            &[
                ("compatible", b"cellblock,mgmt\0"),
                ("reg", &reg(&[0, 0x0c00_0010, 0, 0x1000])),
            ],
        );
        let e = find_mgmt_node(&[&root]).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("reg: page address 0xc000010 is not 4 KiB aligned"),
            "{e}"
        );
    }
}
