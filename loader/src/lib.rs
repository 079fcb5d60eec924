//! The `cellblock` CLI's logic, kept out of `main.rs` so it is testable.
//!
//! - [`cli`]: the command line (clap).
//! - [`files`]: reading text (TOML) and binary (`.cell`) configs.
//! - [`commands`]: `config compile`, `config check`, `config create`,
//!   `pack`.
//! - [`cells`]: the runtime commands (`cell ...`, `console`, `info`) over a
//!   [`mgmt::Mgmt`]: [`devmem::DevMem`] drives the hypervisor's management
//!   page found by [`dt`]; [`cpus`] switches Linux CPUs off and on.
//! - [`ivshmem`]: `ivshmem ping`, the root cell's end of an ivshmem link.
//! - [`mmio`]: the aligned 64-bit volatile accesses all of that is made of.
//! - [`error`]: errors as `<what>: <why>` lines.
//!
//! ```no_run
//! use loader::cells::{Runtime, Timing};
//! use loader::cpus::CpuSysfs;
//! use loader::devmem::DevMem;
//! # fn demo() -> Result<(), loader::Error> {
//! let node = loader::dt::find_mgmt_node(&[std::path::Path::new("/proc/device-tree")])?;
//! let mut page = DevMem::open(std::path::Path::new("/dev/mem"), node.page)?;
//! let mut rt = Runtime::new(&mut page, CpuSysfs::system(), Timing::default());
//! for line in rt.list()? {
//!     println!("{line}");
//! }
//! # Ok(()) }
//! ```

#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cells;
pub mod cli;
pub mod commands;
pub mod cpus;
pub mod devmem;
pub mod dt;
pub mod error;
pub mod files;
pub mod ivshmem;
#[cfg(feature = "config-create")]
pub mod linux;
pub mod mgmt;
pub mod mmio;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod testutil;

use std::fs::File;
use std::path::Path;

pub use error::Error;

/// The lock file that serialises runtime commands.
pub const LOCK_FILE: &str = "/run/cellblock.lock";

/// Runs a parsed command line; on success, the lines to print on stdout.
pub fn run(cli: &cli::Cli) -> Result<Vec<String>, Error> {
    match &cli.command {
        cli::Command::Config {
            action: cli::ConfigAction::Compile(args),
        } => commands::compile(args),
        cli::Command::Config {
            action: cli::ConfigAction::Check(args),
        } => commands::check(args),
        #[cfg(feature = "config-create")]
        cli::Command::Config {
            action: cli::ConfigAction::Create(args),
        } => commands::create(args),
        cli::Command::Pack(args) => commands::pack(args),
        cli::Command::Cell { action } => with_hypervisor(|rt| rt.cell(action)),
        cli::Command::Console => with_hypervisor(|rt| rt.console()),
        cli::Command::Info => with_hypervisor(|rt| rt.info()),
        cli::Command::Counter => counter(),
        cli::Command::Ivshmem { action } => {
            let id = action.id();
            let roots = dt::DT_ROOTS.map(Path::new);
            let link = match ivshmem::endpoint_from_dt(&roots, id)? {
                Some(link) => link,
                // The lock is held only while the link is looked up.
                None => with_hypervisor(|rt| root_link(rt, id))?,
            };
            match action {
                cli::IvshmemAction::Ping(args) => ivshmem::run_ping(&link, args),
                cli::IvshmemAction::Echo(args) => ivshmem::run_echo(&link, args),
            }
        }
    }
}

/// `cellblock counter`: `counter TICKS HZ (SECONDS s)`. The virtual counter
/// starts at 0 with the machine (the hypervisor keeps CNTVOFF_EL2 at 0),
/// so this is time since reset, deterministic under QEMU's `-icount`.
fn counter() -> Result<Vec<String>, Error> {
    #[cfg(target_arch = "aarch64")]
    {
        let (ticks, hz): (u64, u64);
        // SAFETY: reading the virtual counter and its frequency, which
        // Linux lets EL0 read (for the vDSO); no side effects.
        unsafe {
            core::arch::asm!("isb", "mrs {0}, cntvct_el0", out(reg) ticks, options(nomem, nostack));
            core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) hz, options(nomem, nostack));
        }
        let secs = ticks as f64 / hz.max(1) as f64;
        Ok(vec![format!("counter {ticks} {hz} ({secs:.6} s)")])
    }
    #[cfg(not(target_arch = "aarch64"))]
    Err(Error::new("counter", "only on aarch64"))
}

/// The root cell's end of ivshmem link `id`, from the hypervisor's
/// information about cell 0.
fn root_link(rt: &mut cells::Runtime, id: u32) -> Result<ivshmem::Endpoint, Error> {
    let root = rt.resolve("0")?;
    root.config
        .ivshmem
        .iter()
        .find(|l| l.id == id)
        .map(ivshmem::Endpoint::from)
        .ok_or_else(|| {
            Error::new(
                format!("ivshmem link {id}"),
                "the root cell's config has no such link",
            )
        })
}

/// Takes the exclusive lock on `path` (waiting for another `cellblock`
/// that holds it); released when the file is dropped.
pub fn lock(path: &Path) -> Result<File, Error> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        }
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::file(path, e))?;
    file.lock()
        .map_err(|e| Error::file(path, format!("cannot lock: {e}")))?;
    Ok(file)
}

/// Runs `f` on the live hypervisor: under [`LOCK_FILE`], with the management
/// page named in the device tree mapped through `/dev/mem`, and Linux's CPUs.
fn with_hypervisor<R>(f: impl FnOnce(&mut cells::Runtime) -> Result<R, Error>) -> Result<R, Error> {
    let _lock = lock(Path::new(LOCK_FILE))?;
    let roots = dt::DT_ROOTS.map(Path::new);
    let node = dt::find_mgmt_node(&roots)?;
    let mut page = devmem::DevMem::open(Path::new(devmem::DEV_MEM), node.page)?;
    let mut rt = cells::Runtime::new(
        &mut page,
        cpus::CpuSysfs::system(),
        cells::Timing::default(),
    );
    f(&mut rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive() {
        let dir = testutil::scratch("lock");
        let path = dir.join("sub/cellblock.lock");
        let held = lock(&path).unwrap();
        let other = File::options().write(true).open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }
}
