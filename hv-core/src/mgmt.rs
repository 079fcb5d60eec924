//! The management interface as seen from the root cell.
//!
//! Bare-metal code issues hypercalls with `hvc #0x4a48`. Linux userspace,
//! which cannot execute HVC, reaches the same dispatch through the
//! *management page*: a page of the root cell's address space that the
//! hypervisor traps and emulates (named in the root DTB, mapped by the CLI
//! through `/dev/mem`), plus a *buffer* of ordinary RAM, outside the root
//! kernel's `/memory`, through which configs, cell information and the
//! console log travel. Every register is 64 bits wide and must be accessed
//! with single 64-bit loads and stores.
//!
//! A command: write the arguments to `ARG0..ARG2` (x1..x3 of the
//! hypercall), then the hypercall code to `COMMAND`; the store completes
//! after the hypervisor has run the command; read `RESULT` (same encoding as
//! the hypercall's x0: a value, or a negative errno).

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// `MAGIC` reads "CBMG" (little endian).
pub const MGMT_MAGIC: u64 = u64::from_le_bytes(*b"CBMG\0\0\0\0");
/// Version of the page's layout and of what the buffer carries
/// ([`CellInfo`], the `.cell` blob): 2 since cell configs have ivshmem links
/// and `passive_comm`.
pub const MGMT_VERSION: u64 = 2;
/// Size of the management page.
pub const MGMT_PAGE_SIZE: u64 = 0x1000;

/// Register offsets in the management page.
pub mod reg {
    pub const MAGIC: u64 = 0x00;
    pub const VERSION: u64 = 0x08;
    pub const ARG0: u64 = 0x10;
    pub const ARG1: u64 = 0x18;
    pub const ARG2: u64 = 0x20;
    /// Write a hypercall code here to run it.
    pub const COMMAND: u64 = 0x28;
    /// Result of the last command.
    pub const RESULT: u64 = 0x30;
    /// Physical address of the buffer.
    pub const BUFFER_BASE: u64 = 0x38;
    /// Size of the buffer in bytes.
    pub const BUFFER_SIZE: u64 = 0x40;
}

/// What `cell_get_info` (hypercall 10) writes into the buffer (postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellInfo {
    pub id: u32,
    pub name: String,
    /// A [`crate::cell::CellState`] value.
    pub state: u64,
    /// CPUs the cell owns (logical ids).
    pub cpus: Vec<u32>,
    /// Those of them that were stopped by a fault.
    pub failed_cpus: Vec<u32>,
    /// Whether the cell's loadable regions are mapped into the root cell.
    pub loadable: bool,
    /// The fault that stopped the cell, if any.
    pub fault: Option<FaultInfo>,
    /// The cell's config (its memory regions tell the CLI where to load).
    pub config: crate::config::CellConfig,
}

/// The management node's name and compatible string in the root DTB; its
/// `reg` is the management page.
pub const MGMT_NODE: &str = "cellblock-mgmt";
pub const MGMT_COMPATIBLE: &str = "cellblock,mgmt";

/// A fault that stopped a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultInfo {
    pub what: String,
    pub ipa: u64,
    pub esr: u64,
    pub pc: u64,
    pub cpu: u32,
}

/// The communication region (re-exported from [`crate::comm`]).
pub use crate::comm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_spells_cbmg() {
        assert_eq!(&MGMT_MAGIC.to_le_bytes()[..4], b"CBMG");
        assert_eq!(&comm::SIGNATURE.to_le_bytes(), b"CBCM");
    }

    #[test]
    fn cell_info_round_trips() {
        let info = CellInfo {
            id: 1,
            name: "gic-demo".into(),
            state: 3,
            cpus: alloc::vec![3],
            failed_cpus: alloc::vec![3],
            loadable: false,
            fault: Some(FaultInfo {
                what: "data abort".into(),
                ipa: 0x5000_0000,
                esr: 0x9200_0006,
                pc: 0x4020_1000,
                cpu: 3,
            }),
            config: crate::config::CellConfig {
                name: "gic-demo".into(),
                cpus: alloc::vec![3],
                memory: alloc::vec![],
                irqs: alloc::vec![],
                entry: 0x4020_0000,
                entry_x0: None,
                streams: Vec::new(),
                ivshmem: Vec::new(),
                passive_comm: false,
                images: alloc::vec![],
            },
        };
        let bytes = postcard::to_allocvec(&info).unwrap();
        assert_eq!(postcard::from_bytes::<CellInfo>(&bytes).unwrap(), info);
    }
}
