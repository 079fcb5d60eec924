//! Structure check of a DTB before `dtoolkit` reads it.
//!
//! `dtoolkit::fdt::Fdt::new` checks everything its readers rely on, and also
//! the Devicetree specification's 31-character limit on node and property
//! names, which about one in ten of the DTBs Linux ships exceeds (e.g.
//! `allwinner,internal-bias-resistor`). This check makes the same structural
//! guarantees (header fields, block bounds, every token, every string
//! terminated and UTF-8, nesting) without the length rule, so such boards
//! can be read with `Fdt::new_unchecked`. It also bounds the nesting depth,
//! which keeps the model's recursive copy from exhausting the stack.

use crate::error::{Error, Result};
use crate::tree::MAX_DEPTH;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn bad(what: impl Into<String>, offset: usize) -> Error {
    Error::Malformed(format!("{} at offset {offset:#x}", what.into()))
}

/// Where a NUL-terminated UTF-8 string starting at `start` ends (one past
/// the NUL), searching no further than `limit`.
fn cstr_end(b: &[u8], start: usize, limit: usize) -> Result<usize> {
    let slice = b
        .get(start..limit)
        .ok_or_else(|| bad("string outside its block", start))?;
    let nul = slice
        .iter()
        .position(|c| *c == 0)
        .ok_or_else(|| bad("unterminated string", start))?;
    std::str::from_utf8(&slice[..nul]).map_err(|_| bad("string is not UTF-8", start))?;
    Ok(start + nul + 1)
}

/// Checks a whole blob; returns its `totalsize`.
pub fn check_blob(b: &[u8]) -> Result<usize> {
    if b.len() < 8 {
        return Err(Error::Truncated {
            have: b.len(),
            need: HEADER_LEN,
        });
    }
    let magic = be32(b, 0).unwrap_or(0);
    if magic != MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let total = be32(b, 4).unwrap_or(0) as usize;
    if b.len() < HEADER_LEN || b.len() < total {
        return Err(Error::Truncated {
            have: b.len(),
            need: total.max(HEADER_LEN),
        });
    }
    if total < HEADER_LEN {
        return Err(bad(
            format!("totalsize {total} is smaller than the header"),
            4,
        ));
    }
    let b = &b[..total];
    let h = |i: usize| be32(b, i * 4).unwrap_or(0) as usize;
    let (off_struct, off_strings, off_rsv) = (h(2), h(3), h(4));
    let (version, last_comp) = (h(5), h(6));
    let (size_strings, size_struct) = (h(8), h(9));
    if !(last_comp..=version).contains(&17) {
        return Err(bad(
            format!("version {version} (last compatible {last_comp}) is not 17"),
            20,
        ));
    }
    if off_rsv < HEADER_LEN || off_rsv > off_struct || off_rsv % 8 != 0 {
        return Err(bad("memory reservation block misplaced", 16));
    }
    if off_struct % 4 != 0 || off_struct.saturating_add(size_struct) > total {
        return Err(bad("structure block outside the blob", 8));
    }
    if off_strings.saturating_add(size_strings) > total
        || off_struct.saturating_add(size_struct) > off_strings
    {
        return Err(bad(
            "strings block outside the blob or before the structure",
            12,
        ));
    }
    // Memory reservations up to the terminator.
    let mut off = off_rsv;
    loop {
        if off + 16 > off_struct {
            return Err(bad("memory reservation block not terminated", off));
        }
        let entry = &b[off..off + 16];
        off += 16;
        if entry.iter().all(|c| *c == 0) {
            break;
        }
    }
    // Tokens.
    let struct_end = off_struct + size_struct;
    let strings_end = off_strings + size_strings;
    let mut off = off_struct;
    let mut depth = 0usize;
    // Per open node: has a subnode been seen (properties must come first)?
    let mut had_child: Vec<bool> = Vec::new();
    let token = |off: usize| -> Result<u32> {
        if off + 4 > struct_end {
            return Err(bad("structure block ends inside a token", off));
        }
        be32(b, off).ok_or_else(|| bad("token outside the blob", off))
    };
    if token(off)? != BEGIN_NODE {
        return Err(bad("structure block does not start with a node", off));
    }
    loop {
        match token(off)? {
            BEGIN_NODE => {
                depth += 1;
                if let Some(parent) = had_child.last_mut() {
                    *parent = true;
                }
                had_child.push(false);
                if depth > MAX_DEPTH + 1 {
                    return Err(Error::TooDeep {
                        path: format!("(node at offset {off:#x})"),
                        depth: depth - 1,
                        limit: MAX_DEPTH,
                    });
                }
                let name = off + 4;
                let end = cstr_end(b, name, struct_end)?;
                if depth == 1 && end != name + 1 {
                    return Err(bad("root node has a name", name));
                }
                if depth > 1 && end == name + 1 {
                    return Err(bad("node without a name", name));
                }
                off = end.next_multiple_of(4);
            }
            END_NODE => {
                if depth == 0 {
                    return Err(bad("unbalanced end of node", off));
                }
                depth -= 1;
                had_child.pop();
                off += 4;
                if depth == 0 {
                    break;
                }
            }
            PROP => {
                if depth == 0 {
                    return Err(bad("property outside any node", off));
                }
                if had_child.last() == Some(&true) {
                    return Err(bad("property after a subnode", off));
                }
                let len = be32(b, off + 4).ok_or_else(|| bad("truncated property", off))? as usize;
                let nameoff =
                    be32(b, off + 8).ok_or_else(|| bad("truncated property", off))? as usize;
                if off + 12 > struct_end {
                    return Err(bad("truncated property", off));
                }
                let name = off_strings.saturating_add(nameoff);
                if name >= strings_end {
                    return Err(bad("property name outside the strings block", off + 8));
                }
                cstr_end(b, name, strings_end)?;
                let value_end = (off + 12)
                    .checked_add(len)
                    .filter(|e| *e <= struct_end)
                    .ok_or_else(|| {
                        bad(
                            format!("property value of {len} bytes overruns the structure block"),
                            off + 4,
                        )
                    })?;
                off = value_end.next_multiple_of(4);
            }
            NOP => off += 4,
            END => return Err(bad("end of structure inside a node", off)),
            t => return Err(bad(format!("bad token {t:#x}"), off)),
        }
    }
    loop {
        match token(off)? {
            NOP => off += 4,
            END => return Ok(total),
            t => return Err(bad(format!("token {t:#x} after the root node"), off)),
        }
    }
}
