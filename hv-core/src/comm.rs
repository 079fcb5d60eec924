//! The communication region: one page the hypervisor maps into every
//! non-root cell at [`COMM_REGION_IPA`], for the shutdown handshake
//! (docs/abi.md). Needs no heap: inmates use it with
//! `default-features = false`.

/// Where a cell sees its communication region.
pub const COMM_REGION_IPA: u64 = 0x8000_0000;
/// `signature` reads "CBCM".
pub const SIGNATURE: u32 = u32::from_le_bytes(*b"CBCM");
pub const REVISION: u32 = 1;

/// Byte offsets of the 32-bit fields.
pub const OFF_SIGNATURE: u64 = 0x00;
pub const OFF_REVISION: u64 = 0x04;
/// The cell's state as the hypervisor sees it ([`crate::cell::CellState`]).
pub const OFF_CELL_STATE: u64 = 0x08;
/// Message from the hypervisor to the cell.
pub const OFF_MSG_TO_CELL: u64 = 0x0c;
/// The cell's reply.
pub const OFF_REPLY_FROM_CELL: u64 = 0x10;

/// Messages (Jailhouse's numbering).
pub const MSG_NONE: u32 = 0;
pub const MSG_SHUTDOWN_REQUEST: u32 = 1;
/// Replies.
pub const REPLY_NONE: u32 = 0;
pub const REPLY_UNKNOWN: u32 = 1;
pub const REPLY_DENIED: u32 = 2;
pub const REPLY_APPROVED: u32 = 3;
