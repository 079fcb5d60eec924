//! The cell model: states as the management ABI reports them.
//!
//! The numbering follows Jailhouse's published ABI so that its users
//! recognise it.

use core::fmt;

/// The state of a cell (`cell_get_state` result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum CellState {
    /// Running; the root cell may shut it down or destroy it.
    Running = 0,
    /// Running and has asked not to be stopped.
    RunningLocked = 1,
    /// Stopped by request; its CPUs are parked.
    ShutDown = 2,
    /// Stopped by the hypervisor after a fault; its CPUs are parked.
    Failed = 3,
}

impl CellState {
    /// Whether the cell's CPUs execute guest code.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::RunningLocked)
    }

    /// Lower-case name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::RunningLocked => "running/locked",
            Self::ShutDown => "shut down",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for CellState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A number that is not a value of the enum it was converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was being converted ("cell state", "hypercall", …).
    pub what: &'static str,
    pub value: u64,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {}", self.what, self.value)
    }
}

impl core::error::Error for UnknownValue {}

impl TryFrom<u64> for CellState {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Running,
            1 => Self::RunningLocked,
            2 => Self::ShutDown,
            3 => Self::Failed,
            _ => {
                return Err(UnknownValue {
                    what: "cell state",
                    value,
                })
            }
        })
    }
}

/// The state of a CPU (`cpu_get_info` item 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum CpuState {
    Running = 0,
    /// Parked by the hypervisor or switched off through PSCI.
    Parked = 1,
    Failed = 2,
}

impl CpuState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Parked => "parked",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for CpuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u64> for CpuState {
    type Error = UnknownValue;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Running,
            1 => Self::Parked,
            2 => Self::Failed,
            _ => {
                return Err(UnknownValue {
                    what: "CPU state",
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
    fn jailhouse_numbering() {
        for (n, s) in [
            (0, CellState::Running),
            (1, CellState::RunningLocked),
            (2, CellState::ShutDown),
            (3, CellState::Failed),
        ] {
            assert_eq!(s as u64, n);
            assert_eq!(CellState::try_from(n), Ok(s));
        }
        assert_eq!(
            CellState::try_from(4).unwrap_err().to_string(),
            "unknown cell state 4"
        );
        assert!(CellState::RunningLocked.is_running());
        assert!(!CellState::Failed.is_running());
        assert_eq!(CellState::ShutDown.to_string(), "shut down");
    }

    #[test]
    fn cpu_states() {
        for (n, s) in [
            (0, CpuState::Running),
            (1, CpuState::Parked),
            (2, CpuState::Failed),
        ] {
            assert_eq!(s as u64, n);
            assert_eq!(CpuState::try_from(n), Ok(s));
        }
        assert!(CpuState::try_from(3).is_err());
    }
}
