//! The binary config form (`.cell` files and the config entry of a boot pack).
//!
//! Layout: a 16-byte header, then the postcard encoding of a
//! [`SystemConfig`] or [`CellConfig`]:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `b"CBLK"` ([`CONFIG_MAGIC`]) |
//! | 4 | 2 | format version, u16 LE ([`FORMAT_VERSION`]) |
//! | 6 | 2 | kind, u16 LE: 1 = system config, 2 = cell config ([`BlobKind`]) |
//! | 8 | 4 | payload length, u32 LE |
//! | 12 | 4 | CRC-32 (ISO-HDLC) of the payload, u32 LE |
//! | 16 | … | payload (postcard) |
//!
//! Decoding checks, in this order: length of the header, magic, version,
//! kind, payload length, checksum, payload decoding, and that no byte follows
//! the payload.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{CellConfig, SystemConfig};
use crate::crc32;

/// First four bytes of every config blob.
pub const CONFIG_MAGIC: [u8; 4] = *b"CBLK";
/// The blob format version this crate writes and reads. Version 2 added
/// `CellConfig::ivshmem` (a postcard payload has no field names, so a new
/// field changes the layout).
pub const FORMAT_VERSION: u16 = 2;
/// Size of the blob header.
pub const HEADER_LEN: usize = 16;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum BlobKind {
    /// A [`SystemConfig`].
    System = 1,
    /// A [`CellConfig`].
    Cell = 2,
}

impl BlobKind {
    /// The kind for a raw header value, if it is one.
    pub fn from_raw(raw: u16) -> Option<Self> {
        match raw {
            1 => Some(Self::System),
            2 => Some(Self::Cell),
            _ => None,
        }
    }

    fn name(raw: u16) -> &'static str {
        match Self::from_raw(raw) {
            Some(Self::System) => "system config",
            Some(Self::Cell) => "cell config",
            None => "unknown",
        }
    }
}

/// The decoded blob header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    pub version: u16,
    /// Raw kind value (see [`BlobKind::from_raw`]).
    pub kind: u16,
    pub payload_len: u32,
    pub crc: u32,
}

/// Why a blob was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the 16-byte header.
    TooShort {
        available: usize,
    },
    /// The first four bytes are not `b"CBLK"`.
    BadMagic {
        found: [u8; 4],
    },
    UnsupportedVersion {
        found: u16,
        expected: u16,
    },
    /// Raw kind values (1 system, 2 cell).
    WrongKind {
        found: u16,
        expected: u16,
    },
    /// The header announces more payload than there is.
    Truncated {
        expected: usize,
        available: usize,
    },
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    /// The payload does not decode (postcard's reason) or bytes follow it.
    Malformed(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("config blob: ")?;
        match self {
            Self::TooShort { available } => write!(
                f,
                "too short ({available} bytes, the header alone is {HEADER_LEN})"
            ),
            Self::BadMagic { found } => write!(
                f,
                "bad magic {} (expected \"CBLK\"; not a Cellblock config)",
                EscapedBytes(found)
            ),
            Self::UnsupportedVersion { found, expected } => write!(
                f,
                "unsupported format version {found} (this build reads version {expected})"
            ),
            Self::WrongKind { found, expected } => write!(
                f,
                "holds a {} (kind {found}), expected a {} (kind {expected})",
                BlobKind::name(*found),
                BlobKind::name(*expected)
            ),
            Self::Truncated {
                expected,
                available,
            } => write!(
                f,
                "truncated (header announces a {expected}-byte payload, {available} bytes present)"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::Malformed(reason) => write!(f, "malformed payload: {reason}"),
        }
    }
}

impl core::error::Error for FormatError {}

/// Prints bytes as a quoted string with non-printable bytes escaped.
pub(crate) struct EscapedBytes<'a>(pub &'a [u8]);

impl fmt::Display for EscapedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

/// Encodes a system config as a kind-1 blob.
pub fn encode_system(config: &SystemConfig) -> Vec<u8> {
    encode(BlobKind::System, config)
}

/// Encodes a cell config as a kind-2 blob.
pub fn encode_cell(config: &CellConfig) -> Vec<u8> {
    encode(BlobKind::Cell, config)
}

/// Decodes a kind-1 blob.
pub fn decode_system(bytes: &[u8]) -> Result<SystemConfig, FormatError> {
    decode(BlobKind::System, bytes)
}

/// Decodes a kind-2 blob.
pub fn decode_cell(bytes: &[u8]) -> Result<CellConfig, FormatError> {
    decode(BlobKind::Cell, bytes)
}

/// Reads and checks the magic and version of a blob header, without looking
/// at the payload. Useful to tell a system blob from a cell blob.
pub fn parse_header(bytes: &[u8]) -> Result<BlobHeader, FormatError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FormatError::TooShort {
            available: bytes.len(),
        })?;
    let magic = [header[0], header[1], header[2], header[3]];
    if magic != CONFIG_MAGIC {
        return Err(FormatError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    Ok(BlobHeader {
        version,
        kind: u16::from_le_bytes([header[6], header[7]]),
        payload_len: u32::from_le_bytes([header[8], header[9], header[10], header[11]]),
        crc: u32::from_le_bytes([header[12], header[13], header[14], header[15]]),
    })
}

fn encode<T: Serialize>(kind: BlobKind, value: &T) -> Vec<u8> {
    // The config types hold only integers, strings, options, vectors and
    // unit enums; postcard serializes all of them into a Vec without error.
    let payload = postcard::to_allocvec(value).expect("postcard cannot fail on the config types");
    let len = u32::try_from(payload.len()).expect("a config is far below 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&CONFIG_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u16).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode<T: DeserializeOwned>(kind: BlobKind, bytes: &[u8]) -> Result<T, FormatError> {
    let header = parse_header(bytes)?;
    if header.kind != kind as u16 {
        return Err(FormatError::WrongKind {
            found: header.kind,
            expected: kind as u16,
        });
    }
    let body = &bytes[HEADER_LEN..];
    let expected = header.payload_len as usize;
    let payload = body.get(..expected).ok_or(FormatError::Truncated {
        expected,
        available: body.len(),
    })?;
    let computed = crc32(payload);
    if computed != header.crc {
        return Err(FormatError::BadChecksum {
            stored: header.crc,
            computed,
        });
    }
    if body.len() > expected {
        return Err(FormatError::Malformed(alloc::format!(
            "{} bytes follow the {expected}-byte payload",
            body.len() - expected
        )));
    }
    let (value, rest) = postcard::take_from_bytes::<T>(payload)
        .map_err(|e| FormatError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FormatError::Malformed(alloc::format!(
            "{} unused bytes at the end of the payload",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use alloc::string::ToString;
    use alloc::vec;

    pub(crate) fn cell() -> CellConfig {
        CellConfig {
            name: "demo".to_string(),
            cpus: vec![1],
            memory: vec![MemoryRegion {
                phys_start: 0x4200_0000,
                virt_start: 0x4000_0000,
                size: 0x20_0000,
                flags: vec![MemFlag::Read, MemFlag::Write, MemFlag::Execute],
                comment: Some("RAM".to_string()),
            }],
            irqs: vec![40],
            entry: 0x4000_0000,
            entry_x0: None,
            streams: Vec::new(),
            ivshmem: Vec::new(),
            passive_comm: false,
            images: vec![Image {
                file: "demo.bin".to_string(),
                addr: 0x4000_0000,
            }],
        }
    }

    #[test]
    fn cell_round_trips() {
        let mut c = cell();
        c.ivshmem.push(crate::config::IvshmemLink {
            id: 7,
            phys_start: 0x7ec0_0000,
            virt_start: 0x0c20_0000,
            size: 0x10_0000,
            regs: 0x0c10_0000,
            irq: 109,
        });
        let blob = encode_cell(&c);
        assert_eq!(&blob[..4], b"CBLK");
        assert_eq!(u16::from_le_bytes([blob[4], blob[5]]), FORMAT_VERSION);
        assert_eq!(u16::from_le_bytes([blob[6], blob[7]]), 2);
        let len = u32::from_le_bytes(blob[8..12].try_into().unwrap()) as usize;
        assert_eq!(len, blob.len() - HEADER_LEN);
        assert_eq!(decode_cell(&blob).unwrap(), c);
    }

    #[test]
    fn too_short() {
        let e = decode_cell(b"CBLK").unwrap_err();
        assert_eq!(e, FormatError::TooShort { available: 4 });
        assert_eq!(
            e.to_string(),
            "config blob: too short (4 bytes, the header alone is 16)"
        );
    }

    #[test]
    fn bad_magic() {
        let mut blob = encode_cell(&cell());
        blob[..4].copy_from_slice(b"\x7fELF");
        let e = decode_cell(&blob).unwrap_err();
        assert_eq!(e, FormatError::BadMagic { found: *b"\x7fELF" });
        assert_eq!(
            e.to_string(),
            "config blob: bad magic \"\\x7fELF\" (expected \"CBLK\"; not a Cellblock config)"
        );
    }

    #[test]
    fn unsupported_version() {
        let mut blob = encode_cell(&cell());
        blob[4] = 1;
        let e = decode_cell(&blob).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config blob: unsupported format version 1 (this build reads version 2)"
        );
    }

    #[test]
    fn wrong_kind() {
        let blob = encode_cell(&cell());
        let e = decode_system(&blob).unwrap_err();
        assert_eq!(
            e,
            FormatError::WrongKind {
                found: 2,
                expected: 1
            }
        );
        assert_eq!(
            e.to_string(),
            "config blob: holds a cell config (kind 2), expected a system config (kind 1)"
        );
    }

    #[test]
    fn truncated() {
        let blob = encode_cell(&cell());
        let cut = &blob[..blob.len() - 3];
        let e = decode_cell(cut).unwrap_err();
        let expected = blob.len() - HEADER_LEN;
        assert_eq!(
            e,
            FormatError::Truncated {
                expected,
                available: expected - 3
            }
        );
        assert!(e.to_string().starts_with("config blob: truncated"));
    }

    #[test]
    fn bad_checksum() {
        let mut blob = encode_cell(&cell());
        let last = blob.len() - 1;
        blob[last] ^= 0x55;
        let e = decode_cell(&blob).unwrap_err();
        let FormatError::BadChecksum { stored, computed } = e else {
            panic!("{e:?}");
        };
        assert_ne!(stored, computed);
        assert_eq!(
            e.to_string(),
            alloc::format!(
                "config blob: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )
        );
    }

    #[test]
    fn malformed_payload_with_good_checksum() {
        let payload = [0xffu8; 8];
        let mut blob = Vec::new();
        blob.extend_from_slice(b"CBLK");
        blob.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        blob.extend_from_slice(&2u16.to_le_bytes());
        blob.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        blob.extend_from_slice(&crc32(&payload).to_le_bytes());
        blob.extend_from_slice(&payload);
        let e = decode_cell(&blob).unwrap_err();
        assert!(matches!(e, FormatError::Malformed(_)), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("config blob: malformed payload: "));
    }

    #[test]
    fn trailing_bytes_refused() {
        let mut blob = encode_cell(&cell());
        blob.push(0);
        let e = decode_cell(&blob).unwrap_err();
        assert!(e.to_string().contains("1 bytes follow"), "{e}");
    }

    #[test]
    fn crc_is_iso_hdlc() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
