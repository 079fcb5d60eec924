//! Taking Linux CPUs offline and online through sysfs
//! (`/sys/devices/system/cpu/cpuN/online`). Linux CPU n is Cellblock CPU n.
//!
//! Offlining makes Linux call PSCI CPU_OFF on that CPU, which the hypervisor
//! traps: the CPU is then parked and can be given to a new cell. Onlining
//! makes Linux call PSCI CPU_ON for a CPU the hypervisor has given back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Error;

/// Linux's CPU directory.
pub const SYSFS_CPUS: &str = "/sys/devices/system/cpu";

/// The CPU directory of sysfs (or a stand-in for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSysfs {
    root: PathBuf,
}

impl CpuSysfs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `/sys/devices/system/cpu`.
    pub fn system() -> Self {
        Self::new(SYSFS_CPUS)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/cpuN/online`.
    pub fn online_path(&self, cpu: u32) -> PathBuf {
        self.root.join(format!("cpu{cpu}")).join("online")
    }

    /// Whether Linux has CPU `cpu` online.
    pub fn is_online(&self, cpu: u32) -> Result<bool, Error> {
        let path = self.online_path(cpu);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("CPU {cpu} cannot be switched off and on by Linux (no such file)")
            } else {
                e.to_string()
            };
            Error::file(&path, why)
        })?;
        match text.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(Error::file(
                &path,
                format!("reads {other:?}, expected 0 or 1"),
            )),
        }
    }

    /// Switches CPU `cpu` off (`false`) or on (`true`) in Linux.
    pub fn set_online(&self, cpu: u32, online: bool) -> Result<(), Error> {
        let path = self.online_path(cpu);
        if !path.is_file() {
            return Err(Error::file(
                &path,
                format!("CPU {cpu} cannot be switched off and on by Linux (no such file)"),
            ));
        }
        let value = if online { "1" } else { "0" };
        std::fs::write(&path, value).map_err(|e| {
            Error::file(
                &path,
                format!(
                    "cannot switch CPU {cpu} {}: {e}",
                    if online { "on" } else { "off" }
                ),
            )
        })
    }
}

/// A CPU list as Jailhouse prints it: `1-3,5`.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut last = first;
        while i + 1 < sorted.len() && sorted[i + 1] == last + 1 {
            i += 1;
            last = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            let _ = write!(out, "{first}");
        } else {
            let _ = write!(out, "{first}-{last}");
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::scratch;

    #[test]
    fn cpu_lists() {
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[3]), "3");
        assert_eq!(format_cpu_list(&[1, 2, 3, 5]), "1-3,5");
        assert_eq!(format_cpu_list(&[5, 0, 1, 3, 2]), "0-3,5");
        assert_eq!(format_cpu_list(&[0, 2, 4]), "0,2,4");
        assert_eq!(format_cpu_list(&[7, 7, 6]), "6-7");
    }

    #[test]
    fn online_files() {
        let root = scratch("cpus-online");
        std::fs::create_dir_all(root.join("cpu1")).unwrap();
        std::fs::write(root.join("cpu1/online"), "1\n").unwrap();
        let s = CpuSysfs::new(&root);
        assert!(s.is_online(1).unwrap());
        s.set_online(1, false).unwrap();
        assert!(!s.is_online(1).unwrap());
        s.set_online(1, true).unwrap();
        assert!(s.is_online(1).unwrap());

        let e = s.is_online(2).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: CPU 2 cannot be switched off and on by Linux (no such file)",
                root.join("cpu2/online").display()
            )
        );
        assert!(s.set_online(2, false).is_err());
        assert!(!root.join("cpu2/online").exists());

        std::fs::write(root.join("cpu1/online"), "x\n").unwrap();
        assert!(s
            .is_online(1)
            .unwrap_err()
            .to_string()
            .ends_with("reads \"x\", expected 0 or 1"));
    }
}
