//! The hypercall ABI shared by the EL2 image and the `cellblock` CLI.
//!
//! A cell at EL1 issues `hvc #0x4a48` with x0 = [`Hypercall`] code, x1 and x2
//! = arguments; the result comes back in x0, a negative [`Errno`] on error.
//! Numbering follows Jailhouse's published ABI where it fits.

use core::fmt;

pub use crate::cell::{CellState, CpuState, UnknownValue};

/// The HVC immediate of a Cellblock hypercall.
pub const HVC_IMM: u16 = 0x4a48;

/// Hypercall codes (x0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Hypercall {
    /// Leave the hypervisor (root cell only, no other cell present).
    Disable = 0,
    /// x1 = offset of a cell config blob (`.cell`) in the management
    /// buffer, x2 = its size. Returns the new cell's id.
    CellCreate = 1,
    /// x1 = cell id.
    CellStart = 2,
    /// x1 = cell id: map its loadable regions into the root cell.
    CellSetLoadable = 3,
    /// x1 = cell id.
    CellDestroy = 4,
    /// x1 = [`InfoItem`].
    HypervisorGetInfo = 5,
    /// x1 = cell id → [`CellState`].
    CellGetState = 6,
    /// x1 = CPU id, x2 = [`CpuInfoItem`] raw value.
    CpuGetInfo = 7,
    /// x1 = byte to print on the hypervisor console.
    DebugConsolePutc = 8,
    /// x1 = cell id: ask the cell to shut down. Returns 0 once it is shut
    /// down, -EBUSY while the cell has not answered yet (call again),
    /// -EPERM if it refused, -ETIMEDOUT if it did not answer in time (it is
    /// then stopped and marked failed).
    CellShutdown = 9,
    /// x1 = cell id, x2 = offset in the management buffer: writes the
    /// cell's [`crate::mgmt::CellInfo`] (postcard) there, returns its length.
    CellGetInfo = 10,
    /// x1 = offset in the management buffer, x2 = room: copies the
    /// hypervisor's console log there, returns its length.
    ConsoleRead = 11,
}

impl TryFrom<u64> for Hypercall {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Disable,
            1 => Self::CellCreate,
            2 => Self::CellStart,
            3 => Self::CellSetLoadable,
            4 => Self::CellDestroy,
            5 => Self::HypervisorGetInfo,
            6 => Self::CellGetState,
            7 => Self::CpuGetInfo,
            8 => Self::DebugConsolePutc,
            9 => Self::CellShutdown,
            10 => Self::CellGetInfo,
            11 => Self::ConsoleRead,
            _ => {
                return Err(UnknownValue {
                    what: "hypercall",
                    value,
                })
            }
        })
    }
}

/// `hypervisor_get_info` items (x1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum InfoItem {
    /// Pages in the hypervisor's memory pool.
    MemPoolPages = 0,
    /// Pages of the pool in use.
    MemPoolUsedPages = 1,
    /// Number of cells, the root cell included.
    NumCells = 2,
}

impl TryFrom<u64> for InfoItem {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::MemPoolPages,
            1 => Self::MemPoolUsedPages,
            2 => Self::NumCells,
            _ => {
                return Err(UnknownValue {
                    what: "info item",
                    value,
                })
            }
        })
    }
}

/// Per-CPU statistics, counted by the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum CpuStat {
    /// Every entry into EL2.
    Total = 0,
    /// Emulated MMIO accesses.
    Mmio = 1,
    /// Management requests.
    Management = 2,
    /// Hypercalls.
    Hypercall = 3,
    /// GIC maintenance interrupts.
    MaintenanceIrq = 4,
    /// Physical IRQs injected into the cell.
    Virq = 5,
    /// Virtual SGIs sent.
    Vsgi = 6,
    /// PSCI calls emulated.
    Psci = 7,
    /// Trapped system register accesses.
    Sysreg = 8,
}

impl CpuStat {
    /// Every statistic, in index order.
    pub const ALL: [CpuStat; NUM_CPU_STATS] = [
        Self::Total,
        Self::Mmio,
        Self::Management,
        Self::Hypercall,
        Self::MaintenanceIrq,
        Self::Virq,
        Self::Vsgi,
        Self::Psci,
        Self::Sysreg,
    ];

    /// Short name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Total => "vmexits_total",
            Self::Mmio => "vmexits_mmio",
            Self::Management => "vmexits_management",
            Self::Hypercall => "vmexits_hypercall",
            Self::MaintenanceIrq => "vmexits_maintenance",
            Self::Virq => "vmexits_virq",
            Self::Vsgi => "vmexits_vsgi",
            Self::Psci => "vmexits_psci",
            Self::Sysreg => "vmexits_sysreg",
        }
    }
}

/// Number of per-CPU statistics.
pub const NUM_CPU_STATS: usize = 9;

/// `cpu_get_info` x2 value of statistic 0; statistic n is `CPU_STAT_BASE + n`.
pub const CPU_STAT_BASE: u64 = 1000;

impl TryFrom<u64> for CpuStat {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        usize::try_from(value)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .ok_or(UnknownValue {
                what: "CPU statistic",
                value,
            })
    }
}

/// `cpu_get_info` items (x2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuInfoItem {
    /// 0: the CPU's [`CpuState`].
    State,
    /// 1000 + n: statistic n.
    Stat(CpuStat),
}

impl CpuInfoItem {
    /// The x2 value.
    pub fn raw(self) -> u64 {
        match self {
            Self::State => 0,
            Self::Stat(s) => CPU_STAT_BASE + s as u64,
        }
    }
}

impl TryFrom<u64> for CpuInfoItem {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::State),
            n if n >= CPU_STAT_BASE => CpuStat::try_from(n - CPU_STAT_BASE)
                .map(Self::Stat)
                .map_err(|_| UnknownValue {
                    what: "CPU info item",
                    value,
                }),
            _ => Err(UnknownValue {
                what: "CPU info item",
                value,
            }),
        }
    }
}

/// Operation not permitted.
pub const EPERM: i64 = 1;
/// No such cell or CPU.
pub const ENOENT: i64 = 2;
/// Out of hypervisor memory.
pub const ENOMEM: i64 = 12;
/// Resource busy (a CPU or region in use).
pub const EBUSY: i64 = 16;
/// Invalid argument.
pub const EINVAL: i64 = 22;
/// Unknown hypercall.
pub const ENOSYS: i64 = 38;
/// A cell did not answer a shutdown request in time.
pub const ETIMEDOUT: i64 = 110;

/// Hypercall errors; returned in x0 as `-(errno)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Errno {
    Perm = EPERM,
    NoEnt = ENOENT,
    NoMem = ENOMEM,
    Busy = EBUSY,
    Inval = EINVAL,
    NoSys = ENOSYS,
    TimedOut = ETIMEDOUT,
}

impl Errno {
    /// The positive errno value.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// What x0 holds on return: the negated errno, as a register value.
    pub fn to_ret(self) -> u64 {
        (-self.code()) as u64
    }

    /// Reads a hypercall's x0: `Ok(value)` for a non-negative result,
    /// `Err(Ok(errno))` for a known negative errno, `Err(Err(_))` for any
    /// other negative value.
    pub fn check(ret: u64) -> Result<u64, Result<Errno, UnknownValue>> {
        let signed = ret as i64;
        if signed >= 0 {
            return Ok(ret);
        }
        Err(Errno::try_from(signed.unsigned_abs()))
    }

    /// The C name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Perm => "EPERM",
            Self::NoEnt => "ENOENT",
            Self::NoMem => "ENOMEM",
            Self::Busy => "EBUSY",
            Self::Inval => "EINVAL",
            Self::NoSys => "ENOSYS",
            Self::TimedOut => "ETIMEDOUT",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::Perm => "operation not permitted",
            Self::NoEnt => "no such cell or CPU",
            Self::NoMem => "out of hypervisor memory",
            Self::Busy => "resource busy",
            Self::Inval => "invalid argument",
            Self::NoSys => "unknown hypercall",
            Self::TimedOut => "no answer in time",
        };
        write!(f, "{what} ({})", self.name())
    }
}

impl core::error::Error for Errno {}

impl TryFrom<u64> for Errno {
    type Error = UnknownValue;

    /// From the positive errno value.
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Ok(match value as i64 {
            EPERM => Self::Perm,
            ENOENT => Self::NoEnt,
            ENOMEM => Self::NoMem,
            EBUSY => Self::Busy,
            EINVAL => Self::Inval,
            ENOSYS => Self::NoSys,
            ETIMEDOUT => Self::TimedOut,
            _ => {
                return Err(UnknownValue {
                    what: "errno",
                    value,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hypercall_codes() {
        let all = [
            Hypercall::Disable,
            Hypercall::CellCreate,
            Hypercall::CellStart,
            Hypercall::CellSetLoadable,
            Hypercall::CellDestroy,
            Hypercall::HypervisorGetInfo,
            Hypercall::CellGetState,
            Hypercall::CpuGetInfo,
            Hypercall::DebugConsolePutc,
            Hypercall::CellShutdown,
            Hypercall::CellGetInfo,
            Hypercall::ConsoleRead,
        ];
        for (n, h) in all.into_iter().enumerate() {
            assert_eq!(h as u64, n as u64);
            assert_eq!(Hypercall::try_from(n as u64), Ok(h));
        }
        assert_eq!(
            Hypercall::try_from(12).unwrap_err().to_string(),
            "unknown hypercall 12"
        );
        assert_eq!(HVC_IMM, 0x4a48);
    }

    #[test]
    fn info_items() {
        assert_eq!(InfoItem::try_from(2), Ok(InfoItem::NumCells));
        assert!(InfoItem::try_from(3).is_err());
    }

    #[test]
    fn cpu_info_items() {
        assert_eq!(CpuInfoItem::try_from(0), Ok(CpuInfoItem::State));
        assert_eq!(
            CpuInfoItem::try_from(1000),
            Ok(CpuInfoItem::Stat(CpuStat::Total))
        );
        assert_eq!(
            CpuInfoItem::try_from(1008),
            Ok(CpuInfoItem::Stat(CpuStat::Sysreg))
        );
        assert!(CpuInfoItem::try_from(1009).is_err());
        assert!(CpuInfoItem::try_from(1).is_err());
        for (i, s) in CpuStat::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i);
            assert_eq!(CpuInfoItem::Stat(s).raw(), 1000 + i as u64);
            assert_eq!(
                CpuInfoItem::try_from(1000 + i as u64),
                Ok(CpuInfoItem::Stat(s))
            );
        }
    }

    #[test]
    fn errno_values() {
        assert_eq!(Errno::Inval.to_ret(), (-22i64) as u64);
        assert_eq!(Errno::Perm.to_ret(), u64::MAX);
        assert_eq!(Errno::NoSys.code(), 38);
        assert_eq!(Errno::NoEnt.code(), 2);
        assert_eq!(Errno::Busy.code(), 16);
        assert_eq!(Errno::NoMem.code(), 12);
        assert_eq!(Errno::check(5), Ok(5));
        assert_eq!(Errno::check(Errno::Busy.to_ret()), Err(Ok(Errno::Busy)));
        assert!(matches!(Errno::check((-99i64) as u64), Err(Err(_))));
        assert_eq!(Errno::Inval.to_string(), "invalid argument (EINVAL)");
    }
}
