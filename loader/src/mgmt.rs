//! The management interface as the CLI uses it: the [`Mgmt`] trait (one
//! implementation drives the real management page through `/dev/mem`,
//! [`crate::devmem::DevMem`]; the tests use an in-memory hypervisor), and
//! typed wrappers around the hypercalls the commands need.

use std::fmt;

use hv_core::abi::{CpuInfoItem, CpuState, Errno, Hypercall, InfoItem};
use hv_core::mgmt::CellInfo;

/// What the CLI needs from the hypervisor.
pub trait Mgmt {
    /// Runs hypercall `code` with `ARG0..ARG2` = `a0..a2` (x1..x3 of the
    /// HVC form) and returns `RESULT`: a value, or a negative errno.
    fn call(&mut self, code: Hypercall, a0: u64, a1: u64, a2: u64) -> i64;
    /// Size of the management buffer in bytes.
    fn buffer_size(&self) -> u64;
    /// Copies `data` into the management buffer at `offset`.
    fn write_buffer(&mut self, offset: u64, data: &[u8]) -> Result<(), BufferError>;
    /// Copies `len` bytes out of the management buffer at `offset`.
    fn read_buffer(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, BufferError>;
    /// Copies `data` to physical address `pa`: memory of a cell that the
    /// hypervisor has mapped into the root cell (identity) because the cell
    /// is loadable. The error is the reason only.
    fn write_phys(&mut self, pa: u64, data: &[u8]) -> Result<(), String>;
}

/// An access outside the management buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferError {
    pub offset: u64,
    pub len: u64,
    pub size: u64,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at offset {:#x} do not fit the management buffer ({:#x} bytes)",
            self.len, self.offset, self.size
        )
    }
}

impl std::error::Error for BufferError {}

impl BufferError {
    /// `Ok` if `[offset, offset + len)` lies inside a buffer of `size` bytes.
    pub fn check(offset: u64, len: u64, size: u64) -> Result<(), Self> {
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(()),
            _ => Err(Self { offset, len, size }),
        }
    }
}

/// A negative `RESULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvError {
    /// A known errno.
    Errno(Errno),
    /// A negative value that is no errno of the ABI.
    Unknown(i64),
}

impl HvError {
    pub fn errno(self) -> Option<Errno> {
        match self {
            Self::Errno(e) => Some(e),
            Self::Unknown(_) => None,
        }
    }

    /// `EINVAL`, or the raw value when it is no errno of the ABI.
    pub fn short(self) -> String {
        match self {
            Self::Errno(e) => e.name().to_string(),
            Self::Unknown(v) => v.to_string(),
        }
    }
}

impl fmt::Display for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Errno(e) => e.fmt(f),
            Self::Unknown(v) => write!(f, "unknown error {v} from the hypervisor"),
        }
    }
}

impl std::error::Error for HvError {}

/// Splits a `RESULT` into a value or an error.
pub fn result(ret: i64) -> Result<u64, HvError> {
    match Errno::check(ret as u64) {
        Ok(v) => Ok(v),
        Err(Ok(e)) => Err(HvError::Errno(e)),
        Err(Err(_)) => Err(HvError::Unknown(ret)),
    }
}

/// Cell ids the CLI looks at when it lists cells.
pub const MAX_CELL_ID: u32 = 64;

/// A failure to read a cell's information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoError {
    Hv(HvError),
    Buffer(BufferError),
    /// The bytes in the buffer are no `CellInfo`.
    Decode(String),
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hv(e) => write!(f, "cell_get_info: {e}"),
            Self::Buffer(e) => write!(f, "cell_get_info: {e}"),
            Self::Decode(e) => write!(f, "cell_get_info: malformed cell information ({e})"),
        }
    }
}

impl std::error::Error for InfoError {}

/// Typed hypercalls over any [`Mgmt`].
pub struct Hv<'a> {
    pub mgmt: &'a mut dyn Mgmt,
}

impl<'a> Hv<'a> {
    pub fn new(mgmt: &'a mut dyn Mgmt) -> Self {
        Self { mgmt }
    }

    fn call(&mut self, code: Hypercall, a0: u64, a1: u64) -> Result<u64, HvError> {
        result(self.mgmt.call(code, a0, a1, 0))
    }

    /// `hypervisor_get_info(item)`.
    pub fn info(&mut self, item: InfoItem) -> Result<u64, HvError> {
        self.call(Hypercall::HypervisorGetInfo, item as u64, 0)
    }

    /// `cpu_get_info(cpu, item)`.
    pub fn cpu_info(&mut self, cpu: u32, item: CpuInfoItem) -> Result<u64, HvError> {
        self.call(Hypercall::CpuGetInfo, cpu.into(), item.raw())
    }

    /// The CPU's state; an unknown value counts as an error.
    pub fn cpu_state(&mut self, cpu: u32) -> Result<Result<CpuState, u64>, HvError> {
        let raw = self.cpu_info(cpu, CpuInfoItem::State)?;
        Ok(CpuState::try_from(raw).map_err(|_| raw))
    }

    /// `cell_get_info(id)` into buffer offset 0; `Ok(None)` for -ENOENT.
    pub fn cell_info(&mut self, id: u32) -> Result<Option<CellInfo>, InfoError> {
        let len = match self.call(Hypercall::CellGetInfo, id.into(), 0) {
            Ok(len) => len,
            Err(HvError::Errno(Errno::NoEnt)) => return Ok(None),
            Err(e) => return Err(InfoError::Hv(e)),
        };
        let bytes = self.mgmt.read_buffer(0, len).map_err(InfoError::Buffer)?;
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| InfoError::Decode(e.to_string()))
    }

    /// Every cell, by id: ids `0..MAX_CELL_ID`, stopping once as many cells
    /// as `hypervisor_get_info(NumCells)` reports were found.
    pub fn cells(&mut self) -> Result<Vec<CellInfo>, InfoError> {
        let count = self.info(InfoItem::NumCells).map_err(InfoError::Hv)?;
        let mut cells = Vec::new();
        for id in 0..MAX_CELL_ID {
            if cells.len() as u64 >= count {
                break;
            }
            if let Some(info) = self.cell_info(id)? {
                cells.push(info);
            }
        }
        Ok(cells)
    }

    /// A hypercall on a cell id: create excepted, they take the id in ARG0.
    pub fn cell_op(&mut self, code: Hypercall, id: u32) -> Result<u64, HvError> {
        self.call(code, id.into(), 0)
    }

    /// `cell_create(offset, len)`: the new cell's id.
    pub fn create(&mut self, offset: u64, len: u64) -> Result<u64, HvError> {
        self.call(Hypercall::CellCreate, offset, len)
    }

    /// `console_read(offset, room)`: the log's length.
    pub fn console_read(&mut self, offset: u64, room: u64) -> Result<u64, HvError> {
        self.call(Hypercall::ConsoleRead, offset, room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results() {
        assert_eq!(result(0), Ok(0));
        assert_eq!(result(7), Ok(7));
        assert_eq!(result(-16), Err(HvError::Errno(Errno::Busy)));
        assert_eq!(result(-110), Err(HvError::Errno(Errno::TimedOut)));
        assert_eq!(result(-99), Err(HvError::Unknown(-99)));
        assert_eq!(
            HvError::Unknown(-99).to_string(),
            "unknown error -99 from the hypervisor"
        );
        assert_eq!(
            HvError::Errno(Errno::Perm).to_string(),
            "operation not permitted (EPERM)"
        );
    }

    #[test]
    fn buffer_bounds() {
        assert!(BufferError::check(0, 16, 16).is_ok());
        assert!(BufferError::check(8, 8, 16).is_ok());
        let e = BufferError::check(8, 9, 16).unwrap_err();
        assert_eq!(
            e.to_string(),
            "9 bytes at offset 0x8 do not fit the management buffer (0x10 bytes)"
        );
        assert!(BufferError::check(u64::MAX, 2, 16).is_err());
    }
}
