//! The boot pack: what `cellblock pack` appends to the hypervisor image so
//! that one file carries the hypervisor, its system config and the cells'
//! payloads.
//!
//! Boot image layout: the hypervisor's flat binary, zero-padded to the
//! `image_size` of its ARM64 Image header ([`image_size_from_header`]), then
//! the pack:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `b"CBPK"` ([`PACK_MAGIC`]) |
//! | 4 | 2 | version, u16 LE ([`PACK_VERSION`]) |
//! | 6 | 2 | entry count, u16 LE |
//! | 8 | 4 | index length in bytes, u32 LE |
//! | 12 | 4 | CRC-32 (ISO-HDLC) of the index, u32 LE |
//! | 16 | index length | postcard `Vec<PackEntry>` |
//! | … | | data, each entry at a 16-byte aligned offset from the pack's start |
//!
//! The config entry holds a system blob ([`crate::blob`]) whose `boot_cells`
//! are filled in; image entries hold raw bytes to copy to `addr` in cell
//! `cell` (0 = root cell, 1.. = `boot_cells` in order).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::blob::EscapedBytes;
use crate::crc32;

pub use crate::blob::CONFIG_MAGIC;

/// First four bytes of a pack.
pub const PACK_MAGIC: [u8; 4] = *b"CBPK";
/// The pack version this crate writes and reads.
pub const PACK_VERSION: u16 = 1;
/// Size of the pack header.
pub const PACK_HEADER_LEN: usize = 16;
/// Alignment of every data entry, from the pack's first byte.
pub const PACK_DATA_ALIGN: u64 = 16;

/// Offset of `image_size` in an ARM64 Image header.
pub const IMAGE_SIZE_OFFSET: usize = 16;
/// Offset of the magic in an ARM64 Image header.
pub const IMAGE_MAGIC_OFFSET: usize = 56;
/// The ARM64 Image header magic, `"ARM\x64"`.
pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";
/// Length of an ARM64 Image header.
pub const IMAGE_HEADER_LEN: usize = 64;
/// Offset of `text_offset` in an ARM64 Image header.
pub const IMAGE_TEXT_OFFSET_OFFSET: usize = 8;
/// Offset of the first reserved field, where Cellblock's EL2 image records
/// the address it is linked at (0 in other images).
pub const IMAGE_LINK_BASE_OFFSET: usize = 32;

/// What an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackKind {
    /// The system config blob (kind 1).
    Config,
    /// A raw image to load into a cell.
    Image,
}

/// One entry of the pack index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub kind: PackKind,
    /// 0 = root cell, 1.. = boot cells in order; 0 for the config.
    pub cell: u32,
    /// Load address as the cell sees it (IPA); 0 for the config.
    pub addr: u64,
    /// Offset of the data from the pack's first byte.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

/// Why a pack or an Image header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackError {
    /// Fewer bytes than a pack header.
    TooShort {
        available: usize,
    },
    /// The first four bytes are not `b"CBPK"`.
    BadMagic {
        found: [u8; 4],
    },
    UnsupportedVersion {
        found: u16,
        expected: u16,
    },
    /// The index runs past the end of the data.
    IndexTruncated {
        expected: usize,
        available: usize,
    },
    /// The index checksum does not match.
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    /// The index does not decode (postcard's reason).
    Malformed(String),
    /// The header's entry count differs from the index.
    EntryCount {
        header: u16,
        index: usize,
    },
    /// An entry's data lies (partly) outside the pack or inside the header or index.
    EntryOutOfBounds {
        entry: usize,
        offset: u64,
        size: u64,
        available: u64,
    },
    /// An entry's data is not 16-byte aligned.
    EntryMisaligned {
        entry: usize,
        offset: u64,
    },
    /// No config entry, or more than one.
    ConfigEntries {
        found: usize,
    },
    /// Not an ARM64 Image: fewer than 64 bytes.
    ImageTooShort {
        available: usize,
    },
    /// Not an ARM64 Image: wrong magic at offset 56.
    ImageBadMagic {
        found: [u8; 4],
    },
    /// The ARM64 Image header says `image_size` 0.
    ImageSizeZero,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { available } => write!(
                f,
                "boot pack: too short ({available} bytes, the header alone is {PACK_HEADER_LEN})"
            ),
            Self::BadMagic { found } => write!(
                f,
                "boot pack: bad magic {} (expected \"CBPK\")",
                EscapedBytes(found)
            ),
            Self::UnsupportedVersion { found, expected } => write!(
                f,
                "boot pack: unsupported version {found} (this build reads version {expected})"
            ),
            Self::IndexTruncated {
                expected,
                available,
            } => write!(
                f,
                "boot pack: index truncated (header announces {expected} bytes, {available} present)"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "boot pack: index checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::Malformed(reason) => write!(f, "boot pack: malformed index: {reason}"),
            Self::EntryCount { header, index } => write!(
                f,
                "boot pack: header announces {header} entries, the index holds {index}"
            ),
            Self::EntryOutOfBounds {
                entry,
                offset,
                size,
                available,
            } => write!(
                f,
                "boot pack: entry {entry} (offset {offset:#x}, size {size:#x}) lies outside the data area (pack is {available:#x} bytes)"
            ),
            Self::EntryMisaligned { entry, offset } => write!(
                f,
                "boot pack: entry {entry} offset {offset:#x} is not {PACK_DATA_ALIGN}-byte aligned"
            ),
            Self::ConfigEntries { found } => write!(
                f,
                "boot pack: expected exactly one config entry, found {found}"
            ),
            Self::ImageTooShort { available } => write!(
                f,
                "ARM64 Image header: too short ({available} bytes, the header is {IMAGE_HEADER_LEN})"
            ),
            Self::ImageBadMagic { found } => write!(
                f,
                "ARM64 Image header: bad magic {} at offset {IMAGE_MAGIC_OFFSET} (expected \"ARM\\x64\")",
                EscapedBytes(found)
            ),
            Self::ImageSizeZero => f.write_str("ARM64 Image header: image_size is 0"),
        }
    }
}

impl core::error::Error for PackError {}

/// Reads `image_size` (the size in memory, bss included) from an ARM64 Image
/// header at the start of `image`.
pub fn image_size_from_header(image: &[u8]) -> Result<u64, PackError> {
    let header = image
        .get(..IMAGE_HEADER_LEN)
        .ok_or(PackError::ImageTooShort {
            available: image.len(),
        })?;
    let magic = [
        header[IMAGE_MAGIC_OFFSET],
        header[IMAGE_MAGIC_OFFSET + 1],
        header[IMAGE_MAGIC_OFFSET + 2],
        header[IMAGE_MAGIC_OFFSET + 3],
    ];
    if magic != IMAGE_MAGIC {
        return Err(PackError::ImageBadMagic { found: magic });
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&header[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8]);
    match u64::from_le_bytes(size) {
        0 => Err(PackError::ImageSizeZero),
        n => Ok(n),
    }
}

/// Where the EL2 image must run and where a boot loader puts it:
/// `(link address, text_offset)` from its ARM64 Image header. The link
/// address is 0 for images that do not record it.
pub fn image_placement(image: &[u8]) -> Result<(u64, u64), PackError> {
    image_size_from_header(image)?;
    let word = |off: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&image[off..off + 8]);
        u64::from_le_bytes(b)
    };
    Ok((word(IMAGE_LINK_BASE_OFFSET), word(IMAGE_TEXT_OFFSET_OFFSET)))
}

/// A parsed pack: the index, with every entry checked to lie inside the
/// data, and the bytes it points into (no copy).
#[derive(Clone, Debug)]
pub struct Pack<'a> {
    bytes: &'a [u8],
    entries: Vec<PackEntry>,
}

impl<'a> Pack<'a> {
    /// Parses a pack that starts at `bytes[0]`. Bytes after the last entry
    /// are allowed (the pack may sit in a larger buffer).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackError> {
        let header: &[u8] = bytes.get(..PACK_HEADER_LEN).ok_or(PackError::TooShort {
            available: bytes.len(),
        })?;
        let magic = [header[0], header[1], header[2], header[3]];
        if magic != PACK_MAGIC {
            return Err(PackError::BadMagic { found: magic });
        }
        let version = u16::from_le_bytes([header[4], header[5]]);
        if version != PACK_VERSION {
            return Err(PackError::UnsupportedVersion {
                found: version,
                expected: PACK_VERSION,
            });
        }
        let count = u16::from_le_bytes([header[6], header[7]]);
        let index_len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        let stored = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        let rest = &bytes[PACK_HEADER_LEN..];
        let index = rest.get(..index_len).ok_or(PackError::IndexTruncated {
            expected: index_len,
            available: rest.len(),
        })?;
        let computed = crc32(index);
        if computed != stored {
            return Err(PackError::BadChecksum { stored, computed });
        }
        let (entries, unused) = postcard::take_from_bytes::<Vec<PackEntry>>(index)
            .map_err(|e| PackError::Malformed(e.to_string()))?;
        if !unused.is_empty() {
            return Err(PackError::Malformed(alloc::format!(
                "{} unused bytes after the entries",
                unused.len()
            )));
        }
        if entries.len() != usize::from(count) {
            return Err(PackError::EntryCount {
                header: count,
                index: entries.len(),
            });
        }
        let data_start = (PACK_HEADER_LEN + index_len) as u64;
        let available = bytes.len() as u64;
        for (i, e) in entries.iter().enumerate() {
            if e.offset % PACK_DATA_ALIGN != 0 {
                return Err(PackError::EntryMisaligned {
                    entry: i,
                    offset: e.offset,
                });
            }
            let inside = e.offset >= data_start
                && e.offset
                    .checked_add(e.size)
                    .is_some_and(|end| end <= available);
            if !inside {
                return Err(PackError::EntryOutOfBounds {
                    entry: i,
                    offset: e.offset,
                    size: e.size,
                    available,
                });
            }
        }
        let configs = entries
            .iter()
            .filter(|e| e.kind == PackKind::Config)
            .count();
        if configs != 1 {
            return Err(PackError::ConfigEntries { found: configs });
        }
        Ok(Self { bytes, entries })
    }

    /// The index, in pack order.
    pub fn entries(&self) -> &[PackEntry] {
        &self.entries
    }

    /// The data of `entry`. Entries of this pack were checked by
    /// [`Pack::parse`]; for an entry from elsewhere that does not fit,
    /// this returns an empty slice (use [`Pack::try_data`] to tell).
    pub fn data(&self, entry: &PackEntry) -> &'a [u8] {
        self.try_data(entry).unwrap_or(&[])
    }

    /// The data of `entry`, or `None` if it does not lie inside the pack.
    pub fn try_data(&self, entry: &PackEntry) -> Option<&'a [u8]> {
        let start = usize::try_from(entry.offset).ok()?;
        let len = usize::try_from(entry.size).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// The config entry's data: a system config blob.
    pub fn config_blob(&self) -> Result<&'a [u8], PackError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.kind == PackKind::Config)
            .ok_or(PackError::ConfigEntries { found: 0 })?;
        Ok(self.data(entry))
    }

    /// The image entries of one cell (0 = root), in pack order.
    pub fn images(&self, cell: u32) -> impl Iterator<Item = &PackEntry> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.kind == PackKind::Image && e.cell == cell)
    }

    /// Bytes from the pack's start to the end of its last entry.
    pub fn len(&self) -> u64 {
        let index_end = self.index_end();
        self.entries
            .iter()
            .map(|e| e.offset + e.size)
            .fold(index_end, u64::max)
    }

    /// Never true: a parsed pack has at least its header and config.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn index_end(&self) -> u64 {
        // parse() checked the index lies inside `bytes`.
        let index_len =
            u32::from_le_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]]);
        PACK_HEADER_LEN as u64 + u64::from(index_len)
    }
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

/// Builds a pack holding `config_blob` (a system blob) and `images`, given as
/// `(cell, load address, bytes)`, in that order.
///
/// # Panics
///
/// If more than 65 535 entries are given (the header's count is a u16).
pub fn build_pack(config_blob: &[u8], images: &[(u32, u64, &[u8])]) -> Vec<u8> {
    let mut parts: Vec<(PackKind, u32, u64, &[u8])> = Vec::with_capacity(images.len() + 1);
    parts.push((PackKind::Config, 0, 0, config_blob));
    parts.extend(
        images
            .iter()
            .map(|&(cell, addr, data)| (PackKind::Image, cell, addr, data)),
    );
    let count = u16::try_from(parts.len()).expect("at most 65535 pack entries");

    // Offsets are varints in the index, so the index length depends on them:
    // lay out, encode, and repeat until the data start stops moving (the
    // index only grows, so this ends after a few rounds).
    let mut data_start = align_up(PACK_HEADER_LEN as u64, PACK_DATA_ALIGN);
    let (entries, index) = loop {
        let mut offset = data_start;
        let entries: Vec<PackEntry> = parts
            .iter()
            .map(|&(kind, cell, addr, data)| {
                let e = PackEntry {
                    kind,
                    cell,
                    addr,
                    offset,
                    size: data.len() as u64,
                };
                offset = align_up(offset + e.size, PACK_DATA_ALIGN);
                e
            })
            .collect();
        let index = postcard::to_allocvec(&entries).expect("postcard cannot fail on PackEntry");
        let needed = align_up((PACK_HEADER_LEN + index.len()) as u64, PACK_DATA_ALIGN);
        if needed <= data_start {
            break (entries, index);
        }
        data_start = needed;
    };

    let index_len = u32::try_from(index.len()).expect("index far below 4 GiB");
    let mut out = Vec::new();
    out.extend_from_slice(&PACK_MAGIC);
    out.extend_from_slice(&PACK_VERSION.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&index_len.to_le_bytes());
    out.extend_from_slice(&crc32(&index).to_le_bytes());
    out.extend_from_slice(&index);
    for (entry, &(_, _, _, data)) in entries.iter().zip(&parts) {
        out.resize(entry.offset as usize, 0);
        out.extend_from_slice(data);
    }
    out.resize(align_up(out.len() as u64, PACK_DATA_ALIGN) as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<u8> {
        let big = vec![0xabu8; 100_000];
        build_pack(
            b"CBLK-config",
            &[
                (0, 0x4000_0000, &[1, 2, 3][..]),
                (1, 0x4000_0000, &big[..]),
                (1, 0x4010_0000, &[][..]),
            ],
        )
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let pack = Pack::parse(&bytes).unwrap();
        assert_eq!(pack.entries().len(), 4);
        assert_eq!(pack.config_blob().unwrap(), b"CBLK-config");
        let root: Vec<_> = pack.images(0).collect();
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].addr, 0x4000_0000);
        assert_eq!(pack.data(root[0]), &[1, 2, 3]);
        let cell1: Vec<_> = pack.images(1).collect();
        assert_eq!(cell1.len(), 2);
        assert_eq!(pack.data(cell1[0]).len(), 100_000);
        assert!(pack.data(cell1[0]).iter().all(|&b| b == 0xab));
        assert_eq!(cell1[1].addr, 0x4010_0000);
        assert!(pack.data(cell1[1]).is_empty());
        for e in pack.entries() {
            assert_eq!(e.offset % 16, 0);
        }
        assert_eq!(bytes.len() % 16, 0);
        assert!(pack.len() <= bytes.len() as u64);
    }

    #[test]
    fn header_fields() {
        let bytes = sample();
        assert_eq!(&bytes[..4], b"CBPK");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 1);
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), 4);
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
        assert_eq!(crc, crc32(&bytes[16..16 + len]));
    }

    #[test]
    fn pack_in_larger_buffer() {
        let mut bytes = sample();
        bytes.extend_from_slice(&[0xee; 4096]);
        let pack = Pack::parse(&bytes).unwrap();
        assert_eq!(pack.config_blob().unwrap(), b"CBLK-config");
    }

    #[test]
    fn bad_magic() {
        let mut bytes = sample();
        bytes[0] = b'X';
        let e = Pack::parse(&bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "boot pack: bad magic \"XBPK\" (expected \"CBPK\")"
        );
    }

    #[test]
    fn too_short() {
        assert_eq!(
            Pack::parse(b"CBPK").unwrap_err(),
            PackError::TooShort { available: 4 }
        );
    }

    #[test]
    fn bad_version() {
        let mut bytes = sample();
        bytes[4] = 9;
        assert_eq!(
            Pack::parse(&bytes).unwrap_err().to_string(),
            "boot pack: unsupported version 9 (this build reads version 1)"
        );
    }

    #[test]
    fn corrupted_index() {
        let mut bytes = sample();
        bytes[17] ^= 1;
        let e = Pack::parse(&bytes).unwrap_err();
        assert!(matches!(e, PackError::BadChecksum { .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("boot pack: index checksum mismatch"));
    }

    #[test]
    fn truncated_data() {
        let bytes = sample();
        let cut = &bytes[..bytes.len() - 200];
        let e = Pack::parse(cut).unwrap_err();
        assert!(
            matches!(e, PackError::EntryOutOfBounds { entry: 2, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("entry 2"), "{e}");
    }

    #[test]
    fn truncated_index() {
        let bytes = sample();
        let e = Pack::parse(&bytes[..20]).unwrap_err();
        assert!(matches!(e, PackError::IndexTruncated { .. }), "{e:?}");
    }

    fn with_index(entries: &[PackEntry], count: u16, total: usize) -> Vec<u8> {
        let index = postcard::to_allocvec(entries).unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(b"CBPK");
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(index.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32(&index).to_le_bytes());
        out.extend_from_slice(&index);
        out.resize(total, 0);
        out
    }

    fn entry(kind: PackKind, offset: u64, size: u64) -> PackEntry {
        PackEntry {
            kind,
            cell: 0,
            addr: 0,
            offset,
            size,
        }
    }

    #[test]
    fn entry_count_mismatch() {
        let bytes = with_index(&[entry(PackKind::Config, 64, 4)], 2, 128);
        assert_eq!(
            Pack::parse(&bytes).unwrap_err().to_string(),
            "boot pack: header announces 2 entries, the index holds 1"
        );
    }

    #[test]
    fn misaligned_entry() {
        let bytes = with_index(&[entry(PackKind::Config, 65, 4)], 1, 128);
        assert_eq!(
            Pack::parse(&bytes).unwrap_err(),
            PackError::EntryMisaligned {
                entry: 0,
                offset: 65
            }
        );
    }

    #[test]
    fn entry_inside_index_refused() {
        let bytes = with_index(&[entry(PackKind::Config, 0, 4)], 1, 128);
        assert!(matches!(
            Pack::parse(&bytes).unwrap_err(),
            PackError::EntryOutOfBounds { entry: 0, .. }
        ));
    }

    #[test]
    fn overflowing_entry_refused() {
        let bytes = with_index(&[entry(PackKind::Config, 64, u64::MAX)], 1, 128);
        assert!(matches!(
            Pack::parse(&bytes).unwrap_err(),
            PackError::EntryOutOfBounds { entry: 0, .. }
        ));
    }

    #[test]
    fn config_entry_required() {
        let bytes = with_index(&[entry(PackKind::Image, 64, 4)], 1, 128);
        assert_eq!(
            Pack::parse(&bytes).unwrap_err().to_string(),
            "boot pack: expected exactly one config entry, found 0"
        );
    }

    #[test]
    fn foreign_entry_data_is_empty() {
        let bytes = sample();
        let pack = Pack::parse(&bytes).unwrap();
        let foreign = entry(PackKind::Image, 1 << 40, 16);
        assert!(pack.data(&foreign).is_empty());
        assert!(pack.try_data(&foreign).is_none());
    }

    fn image_header(size: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[16..24].copy_from_slice(&size.to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn image_size() {
        assert_eq!(image_size_from_header(&image_header(0x30000)), Ok(0x30000));
    }

    #[test]
    fn image_header_errors() {
        assert_eq!(
            image_size_from_header(&[0; 10]),
            Err(PackError::ImageTooShort { available: 10 })
        );
        let mut h = image_header(0x10000);
        h[59] = b'4';
        assert_eq!(
            image_size_from_header(&h).unwrap_err().to_string(),
            "ARM64 Image header: bad magic \"ARM4\" at offset 56 (expected \"ARM\\x64\")"
        );
        assert_eq!(
            image_size_from_header(&image_header(0)),
            Err(PackError::ImageSizeZero)
        );
    }
}
