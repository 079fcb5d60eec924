//! One error enum for the crate: each variant is one rule a device tree or a
//! request broke, and its message names the node, the property and why.

use thiserror::Error;

/// Everything dt-cellgen can refuse, with the node and property involved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Fewer bytes than the FDT header, or than the header's `totalsize`.
    #[error("truncated DTB: {have} bytes, the header needs {need}")]
    Truncated { have: usize, need: usize },
    /// The first word is not 0xd00dfeed.
    #[error("not a DTB: magic is {found:#010x}, expected 0xd00dfeed")]
    BadMagic { found: u32 },
    /// The blob's structure is broken (reported by the FDT reader).
    #[error("malformed DTB: {0}")]
    Malformed(String),
    /// Nodes nested deeper than any real device tree.
    #[error("node {path} is nested {depth} levels deep (limit {limit})")]
    TooDeep {
        path: String,
        depth: usize,
        limit: usize,
    },
    /// A node every board has is absent.
    #[error("no {what} node in the device tree")]
    MissingNode { what: &'static str },
    /// A property a node needs is absent.
    #[error("{node}: missing property `{prop}`")]
    MissingProperty { node: String, prop: &'static str },
    /// A property exists but cannot be read as what it must be.
    #[error("{node}: property `{prop}` {reason}")]
    BadProperty {
        node: String,
        prop: String,
        reason: String,
    },
    /// A phandle names no node.
    #[error("{node}: property `{prop}` refers to phandle {phandle:#x}, which no node has")]
    DanglingPhandle {
        node: String,
        prop: String,
        phandle: u32,
    },
    /// Following `interrupt-parent` (or an interrupt map) comes back to a node
    /// already visited.
    #[error("{node}: `{prop}` chain loops back to {back_to}")]
    PhandleLoop {
        node: String,
        prop: &'static str,
        back_to: String,
    },
    /// A region that cannot exist: it wraps past 2^64, or is larger than any
    /// physical address space.
    #[error("{node}: {what} {start:#x} + {size:#x} is not a possible physical range")]
    AbsurdSize {
        node: String,
        what: &'static str,
        start: u64,
        size: u64,
    },
    /// No `/psci` node (or no known PSCI compatible): the hypervisor cannot
    /// bring CPUs up or hand them between cells.
    #[error("no PSCI node (compatible \"arm,psci*\"): CPUs cannot be started by the hypervisor")]
    NoPsci,
    /// No GICv2 or GICv3 interrupt controller.
    #[error("no GICv2/GICv3 interrupt controller{}", found.as_ref().map(|c| format!(" (found {c})")).unwrap_or_default())]
    NoGic { found: Option<String> },
    /// No CPU under `/cpus`.
    #[error("no CPU nodes under /cpus")]
    NoCpus,
    /// No RAM in any `/memory` node.
    #[error(
        "no RAM: no /memory node with a non-empty `reg` (the boot loader fills it in; give --ram)"
    )]
    NoMemory,
    /// No serial port for the hypervisor's console.
    #[error("no console UART: nothing in /chosen/stdout-path or /aliases/serial*, and no PL011, 16550 or Cadence UART")]
    NoConsole,
    /// The console UART is of a kind the hypervisor has no driver for.
    #[error("console {node} is `{compatible}`, which is not a PL011, a 16550 with 32-bit registers or a Cadence UART")]
    UnsupportedConsole { node: String, compatible: String },
    /// The requested hypervisor or cell memory does not fit in free RAM.
    #[error("no free {size:#x}-byte, 2 MiB-aligned RAM range for {what}")]
    NoRoom { what: &'static str, size: u64 },
    /// A command-line value could not be read.
    #[error("{what}: {reason}")]
    BadArgument { what: &'static str, reason: String },
    /// A CPU named for a cell does not exist or is already taken.
    #[error("CPU {cpu}: {reason}")]
    BadCpu { cpu: u32, reason: String },
    /// A device named for a cell is not in the device tree.
    #[error("device {path}: {reason}")]
    BadDevice { path: String, reason: String },
    /// A TOML file could not be read as a config.
    #[error("{file}: {reason}")]
    Toml { file: String, reason: String },
    /// The generated config failed hv-core's validation.
    #[error("generated config does not validate: {0}")]
    Invalid(String),
    /// Writing a device tree failed.
    #[error("cannot write device tree: {0}")]
    Write(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl Error {
    /// A short, stable name of the rule, for counting failures by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadMagic { .. } => "bad magic",
            Error::Malformed(_) => "malformed",
            Error::TooDeep { .. } => "too deep",
            Error::MissingNode { .. } => "missing node",
            Error::MissingProperty { .. } => "missing property",
            Error::BadProperty { .. } => "bad property",
            Error::DanglingPhandle { .. } => "dangling phandle",
            Error::PhandleLoop { .. } => "phandle loop",
            Error::AbsurdSize { .. } => "absurd size",
            Error::NoPsci => "no PSCI",
            Error::NoGic { .. } => "no GICv2/v3",
            Error::NoCpus => "no CPUs",
            Error::NoMemory => "no memory",
            Error::NoConsole => "no console",
            Error::UnsupportedConsole { .. } => "unsupported console UART",
            Error::NoRoom { .. } => "no room",
            Error::BadArgument { .. } => "bad argument",
            Error::BadCpu { .. } => "bad CPU",
            Error::BadDevice { .. } => "bad device",
            Error::Toml { .. } => "toml",
            Error::Invalid(_) => "does not validate",
            Error::Write(_) => "write",
            Error::Io { .. } => "io",
        }
    }
}

/// Result with the crate's error.
pub type Result<T, E = Error> = core::result::Result<T, E>;
