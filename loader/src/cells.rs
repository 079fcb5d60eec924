//! The runtime commands: `cell create|load|start|shutdown|destroy|list|stats`,
//! `console`, `info`. They run on any [`Mgmt`] (the live management page or
//! the tests' in-memory hypervisor) and a [`CpuSysfs`].
//!
//! Every command checks what it can before it changes anything, and `cell
//! create` undoes what it did (the CPUs it took from Linux) when a later
//! step fails.

use std::path::Path;
use std::time::{Duration, Instant};

use hv_core::abi::{CpuInfoItem, CpuStat, CpuState, Errno, Hypercall, InfoItem};
use hv_core::blob::{self, CONFIG_MAGIC};
use hv_core::cell::CellState;
use hv_core::config::{CellConfig, MemFlag, MemoryRegion};
use hv_core::mgmt::CellInfo;
use hv_core::validate::validate_cell_alone;

use crate::cli::{CellAction, LoadArgs};
use crate::commands::config_errors;
use crate::cpus::{format_cpu_list, CpuSysfs};
use crate::mgmt::{Hv, HvError, Mgmt};
use crate::{files, Error};

/// Time-outs and poll intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long `cell create` waits for a CPU Linux switched off to be
    /// parked by the hypervisor.
    pub park_timeout: Duration,
    pub park_poll: Duration,
    /// How long `cell shutdown` repeats a request the cell has not answered.
    pub shutdown_timeout: Duration,
    pub shutdown_poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            park_timeout: Duration::from_secs(5),
            park_poll: Duration::from_millis(10),
            shutdown_timeout: Duration::from_secs(10),
            shutdown_poll: Duration::from_millis(20),
        }
    }
}

/// Bytes of the buffer looked at for a reason after a refused `cell_create`.
const REASON_MAX: u64 = 4096;

/// The runtime commands over one management interface.
pub struct Runtime<'a> {
    hv: Hv<'a>,
    cpus: CpuSysfs,
    timing: Timing,
}

/// `cell "NAME"`, as errors name a cell.
fn cell_what(name: &str) -> String {
    format!("cell \"{name}\"")
}

/// A number: `0x...` hexadecimal or decimal, `_` allowed between digits.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// One thing `cell load` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadItem {
    /// The file name or `string "..."`, for messages.
    pub label: String,
    /// Address the cell sees.
    pub addr: u64,
    pub data: Vec<u8>,
}

/// The regions `cell load` may write: those flagged `loadable`, or when the
/// cell has none, every region that is not `io`.
pub fn load_regions(config: &CellConfig) -> (Vec<&MemoryRegion>, &'static str) {
    let loadable: Vec<&MemoryRegion> = config
        .memory
        .iter()
        .filter(|r| r.has(MemFlag::Loadable) && !r.has(MemFlag::Io))
        .collect();
    if loadable.is_empty() {
        let ram = config
            .memory
            .iter()
            .filter(|r| !r.has(MemFlag::Io))
            .collect();
        (ram, "RAM (non-io)")
    } else {
        (loadable, "loadable")
    }
}

/// The physical address of `[addr, addr + len)` (cell addresses) if it lies
/// inside one of `regions`. A length of 0 is checked as one byte.
pub fn cell_to_phys(regions: &[&MemoryRegion], addr: u64, len: u64) -> Option<u64> {
    let end = addr.checked_add(len.max(1))?;
    regions.iter().find_map(|r| {
        let r_end = r.virt_start.checked_add(r.size)?;
        (addr >= r.virt_start && end <= r_end).then(|| r.phys_start + (addr - r.virt_start))
    })
}

/// Splits `TEXT@ADDR` at the last `@`.
fn split_at_addr(arg: &str) -> Option<(&str, u64)> {
    let (text, addr) = arg.rsplit_once('@')?;
    Some((text, parse_number(addr)?))
}

/// A reason the hypervisor may leave in the buffer where the config was
/// after a refused `cell_create`: NUL-terminated UTF-8 text that replaced
/// the blob.
fn reason_in_buffer(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&CONFIG_MAGIC) {
        return None;
    }
    let end = bytes.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?.trim();
    let bad = |c: char| c.is_control() && !matches!(c, '\n' | '\t' | '\r');
    (!text.is_empty() && !text.chars().any(bad)).then(|| text.to_string())
}

/// Left-aligned text columns, numbers (from column `numeric_from` on)
/// right-aligned, two spaces between; no trailing spaces.
fn table(rows: &[Vec<String>], numeric_from: usize) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                if c >= numeric_from {
                    line.push_str(&format!("{cell:>w$}", w = widths[c]));
                } else {
                    line.push_str(&format!("{cell:<w$}", w = widths[c]));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// How `cell stats` names a statistic.
pub fn stat_label(stat: CpuStat) -> &'static str {
    match stat {
        CpuStat::Total => "EL2 entries (total)",
        CpuStat::Mmio => "MMIO",
        CpuStat::Management => "management",
        CpuStat::Hypercall => "hypercall",
        CpuStat::MaintenanceIrq => "maintenance IRQ",
        CpuStat::Virq => "vIRQ",
        CpuStat::Vsgi => "vSGI",
        CpuStat::Psci => "PSCI",
        CpuStat::Sysreg => "sysreg",
    }
}

fn state_name(raw: u64) -> String {
    match CellState::try_from(raw) {
        Ok(s) => s.name().to_string(),
        Err(_) => format!("unknown ({raw})"),
    }
}

impl<'a> Runtime<'a> {
    pub fn new(mgmt: &'a mut dyn Mgmt, cpus: CpuSysfs, timing: Timing) -> Self {
        Self {
            hv: Hv::new(mgmt),
            cpus,
            timing,
        }
    }

    /// Runs a `cell` subcommand.
    pub fn cell(&mut self, action: &CellAction) -> Result<Vec<String>, Error> {
        match action {
            CellAction::Create { file } => self.create(file),
            CellAction::Load(args) => self.load(args),
            CellAction::Start { cell } => self.start(cell),
            CellAction::Shutdown { cell } => self.shutdown(cell),
            CellAction::Destroy { cell } => self.destroy(cell),
            CellAction::List => self.list(),
            CellAction::Stats { cell } => self.stats(cell),
            #[cfg(feature = "config-create")]
            CellAction::Linux(args) => self.linux(args),
        }
    }

    fn all_cells(&mut self) -> Result<Vec<CellInfo>, Error> {
        self.hv.cells().map_err(|e| Error::new("hypervisor", e))
    }

    /// A cell by name, or by id when `name` is a number.
    pub fn resolve(&mut self, name: &str) -> Result<CellInfo, Error> {
        if let Some(id) = name
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| name.parse::<u32>().ok())
            .flatten()
        {
            let what = format!("cell {id}");
            return match self.hv.cell_info(id) {
                Ok(Some(info)) => Ok(info),
                Ok(None) => Err(Error::new(what, "no such cell")),
                Err(e) => Err(Error::new(what, e)),
            };
        }
        self.all_cells()?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::new(cell_what(name), "no such cell"))
    }

    /// A cell that is not the root cell.
    fn resolve_non_root(&mut self, name: &str, verb: &str) -> Result<CellInfo, Error> {
        let info = self.resolve(name)?;
        if info.id == 0 {
            return Err(Error::new(
                cell_what(&info.name),
                format!("is the root cell, which cannot be {verb}"),
            ));
        }
        Ok(info)
    }

    /// `cell create FILE`.
    pub fn create(&mut self, file: &Path) -> Result<Vec<String>, Error> {
        let config = files::load_cell(file)?;
        self.create_config(&config, &file.display().to_string())
    }

    /// Creates a cell from `config` (read from `file_what`, for messages).
    pub(crate) fn create_config(
        &mut self,
        config: &CellConfig,
        file_what: &str,
    ) -> Result<Vec<String>, Error> {
        let file_what = file_what.to_string();
        validate_cell_alone(config).map_err(|e| config_errors(&file_what, &e))?;
        let blob = blob::encode_cell(config);
        let size = self.hv.mgmt.buffer_size();
        if blob.len() as u64 > size {
            return Err(Error::new(
                file_what,
                format!(
                    "config blob of {} bytes is larger than the management buffer ({size:#x} bytes)",
                    blob.len()
                ),
            ));
        }
        let what = cell_what(&config.name);

        // Checks before anything changes.
        let cells = self.all_cells()?;
        if let Some(c) = cells.iter().find(|c| c.name == config.name) {
            return Err(Error::new(
                what,
                format!("a cell of that name exists (id {})", c.id),
            ));
        }
        for &cpu in &config.cpus {
            if let Some(owner) = cells.iter().find(|c| c.id != 0 && c.cpus.contains(&cpu)) {
                return Err(Error::new(
                    what,
                    format!(
                        "CPU {cpu} belongs to cell \"{}\" (id {})",
                        owner.name, owner.id
                    ),
                ));
            }
            if let Some(root) = cells.iter().find(|c| c.id == 0) {
                if !root.cpus.contains(&cpu) {
                    return Err(Error::new(
                        what,
                        format!(
                            "CPU {cpu} is not the root cell's (it has CPUs {})",
                            format_cpu_list(&root.cpus)
                        ),
                    ));
                }
            }
        }
        let mut online = Vec::new();
        for &cpu in &config.cpus {
            online.push((cpu, self.cpus.is_online(cpu)?));
        }

        // Take the CPUs from Linux; from here on, failures give them back.
        let mut taken: Vec<u32> = Vec::new();
        for (cpu, is_online) in online {
            if is_online {
                if let Err(e) = self.cpus.set_online(cpu, false) {
                    return Err(self.give_back(e, &taken));
                }
                taken.push(cpu);
            }
        }
        if let Err(e) = self.wait_parked(&what, &config.cpus) {
            return Err(self.give_back(e, &taken));
        }
        if let Err(e) = self.hv.mgmt.write_buffer(0, &blob) {
            return Err(self.give_back(Error::new(what, e), &taken));
        }
        match self.hv.create(0, blob.len() as u64) {
            Ok(id) => Ok(vec![format!("Cell \"{}\" created (id {id})", config.name)]),
            Err(e) => {
                let reason = self
                    .hv
                    .mgmt
                    .read_buffer(0, REASON_MAX.min(size))
                    .ok()
                    .and_then(|b| reason_in_buffer(&b));
                let why = match reason {
                    Some(r) => format!("refused by the hypervisor ({}): {r}", e.short()),
                    None => format!("refused by the hypervisor: {e}"),
                };
                Err(self.give_back(Error::new(what, why), &taken))
            }
        }
    }

    /// Switches the CPUs in `taken` back on in Linux after `err`; failures
    /// to do so are added to the error.
    fn give_back(&self, mut err: Error, taken: &[u32]) -> Error {
        for &cpu in taken {
            if let Err(e) = self.cpus.set_online(cpu, true) {
                err.extend(e);
            }
        }
        err
    }

    /// Polls until the hypervisor reports every CPU of `cpus` parked.
    fn wait_parked(&mut self, what: &str, cpus: &[u32]) -> Result<(), Error> {
        let deadline = Instant::now() + self.timing.park_timeout;
        let mut pending: Vec<u32> = cpus.to_vec();
        loop {
            let mut still = Vec::new();
            let mut last_state = String::new();
            for &cpu in &pending {
                match self.hv.cpu_state(cpu) {
                    Ok(Ok(CpuState::Parked)) => {}
                    Ok(Ok(CpuState::Failed)) => {
                        return Err(Error::new(what, format!("CPU {cpu} has failed")));
                    }
                    Ok(Ok(s)) => {
                        last_state = s.name().to_string();
                        still.push(cpu);
                    }
                    Ok(Err(raw)) => {
                        last_state = format!("unknown state {raw}");
                        still.push(cpu);
                    }
                    Err(e) => {
                        return Err(Error::new(what, format!("CPU {cpu}: cpu_get_info: {e}")));
                    }
                }
            }
            pending = still;
            let Some(&cpu) = pending.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(Error::new(
                    what,
                    format!(
                        "CPU {cpu} is not parked {:?} after Linux switched it off (still {last_state})",
                        self.timing.park_timeout
                    ),
                ));
            }
            std::thread::sleep(self.timing.park_poll);
        }
    }

    /// Parses `cell load`'s IMAGE[@ADDR] and -s STRING@ADDR arguments and
    /// reads the images.
    fn load_items(config: &CellConfig, args: &LoadArgs) -> Result<Vec<LoadItem>, Error> {
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for arg in &args.images {
            let (path, addr) = match split_at_addr(arg) {
                Some((p, a)) if !p.is_empty() => (p, a),
                _ if Path::new(arg).exists() || !arg.contains('@') => (arg.as_str(), config.entry),
                _ => {
                    errors.push(Error::new(
                        arg.clone(),
                        "expected IMAGE or IMAGE@ADDR (ADDR: 0x... or decimal)",
                    ));
                    continue;
                }
            };
            match std::fs::read(path) {
                Ok(data) => items.push(LoadItem {
                    label: path.to_string(),
                    addr,
                    data,
                }),
                Err(e) => errors.push(Error::new(path, e)),
            }
        }
        for arg in &args.strings {
            match split_at_addr(arg) {
                Some((text, addr)) => {
                    let mut data = text.as_bytes().to_vec();
                    data.push(0);
                    items.push(LoadItem {
                        label: format!("string \"{text}\""),
                        addr,
                        data,
                    });
                }
                None => errors.push(Error::new(
                    format!("-s {arg}"),
                    "expected STRING@ADDR (ADDR: 0x... or decimal)",
                )),
            }
        }
        Error::check(errors)?;
        Ok(items)
    }

    /// `cell load NAME IMAGE[@ADDR]... [-s STRING@ADDR]...`.
    pub fn load(&mut self, args: &LoadArgs) -> Result<Vec<String>, Error> {
        let info = self.resolve_non_root(&args.cell, "loaded")?;
        let items = Self::load_items(&info.config, args)?;
        self.load_into(&info, items)
    }

    /// Makes the cell loadable and writes `items` into its memory, after
    /// checking that each fits one of its loadable regions.
    pub(crate) fn load_into(
        &mut self,
        info: &CellInfo,
        items: Vec<LoadItem>,
    ) -> Result<Vec<String>, Error> {
        let what = cell_what(&info.name);
        let config = &info.config;
        let (regions, kind) = load_regions(config);
        let mut placed: Vec<(LoadItem, u64)> = Vec::new();
        let mut errors = Vec::new();
        for item in items {
            let len = item.data.len() as u64;
            match cell_to_phys(&regions, item.addr, len) {
                Some(pa) => placed.push((item, pa)),
                None => errors.push(Error::new(
                    item.label.clone(),
                    format!(
                        "{len} bytes at {:#x} do not fit one {kind} region of cell \"{}\"",
                        item.addr, info.name
                    ),
                )),
            }
        }
        Error::check(errors)?;

        self.hv
            .cell_op(Hypercall::CellSetLoadable, info.id)
            .map_err(|e| Error::new(&what, format!("set-loadable refused: {e}")))?;
        let mut report = Vec::new();
        for (item, pa) in &placed {
            self.hv.mgmt.write_phys(*pa, &item.data).map_err(|e| {
                Error::new(
                    item.label.clone(),
                    format!("writing {} bytes at PA {pa:#x}: {e}", item.data.len()),
                )
            })?;
            report.push(format!(
                "Cell \"{}\": {} ({} bytes) loaded at {:#x} (PA {pa:#x})",
                info.name,
                item.label,
                item.data.len(),
                item.addr
            ));
        }
        Ok(report)
    }

    /// `cell start NAME`.
    pub fn start(&mut self, name: &str) -> Result<Vec<String>, Error> {
        let info = self.resolve_non_root(name, "started")?;
        self.hv
            .cell_op(Hypercall::CellStart, info.id)
            .map_err(|e| Error::new(cell_what(&info.name), format!("start refused: {e}")))?;
        Ok(vec![format!("Cell \"{}\" started", info.name)])
    }

    /// `cell shutdown NAME`: repeats the request while the cell has not
    /// answered.
    pub fn shutdown(&mut self, name: &str) -> Result<Vec<String>, Error> {
        let info = self.resolve_non_root(name, "shut down")?;
        let what = cell_what(&info.name);
        let deadline = Instant::now() + self.timing.shutdown_timeout;
        loop {
            match self.hv.cell_op(Hypercall::CellShutdown, info.id) {
                Ok(_) => return Ok(vec![format!("Cell \"{}\" shut down", info.name)]),
                Err(HvError::Errno(Errno::Busy)) => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            what,
                            format!(
                                "no answer to the shutdown request after {:?} (the request stays pending)",
                                self.timing.shutdown_timeout
                            ),
                        ));
                    }
                    std::thread::sleep(self.timing.shutdown_poll);
                }
                Err(HvError::Errno(Errno::Perm)) => {
                    return Err(Error::new(
                        what,
                        "the cell denied the shutdown request (EPERM)",
                    ))
                }
                Err(HvError::Errno(Errno::TimedOut)) => {
                    return Err(Error::new(
                        what,
                        "the cell did not answer the shutdown request in time: the hypervisor stopped it and marked it failed (ETIMEDOUT)",
                    ))
                }
                Err(e) => return Err(Error::new(what, format!("shutdown refused: {e}"))),
            }
        }
    }

    /// `cell destroy NAME`: the cell's CPUs go back to Linux.
    pub fn destroy(&mut self, name: &str) -> Result<Vec<String>, Error> {
        let info = self.resolve_non_root(name, "destroyed")?;
        let what = cell_what(&info.name);
        self.hv
            .cell_op(Hypercall::CellDestroy, info.id)
            .map_err(|e| Error::new(&what, format!("destroy refused: {e}")))?;
        let mut cpus = info.cpus.clone();
        cpus.sort_unstable();
        let mut errors = Vec::new();
        for cpu in cpus {
            let result = match self.cpus.is_online(cpu) {
                Ok(true) => Ok(()),
                Ok(false) => self.cpus.set_online(cpu, true),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                errors.push(Error::new(
                    &what,
                    format!(
                        "destroyed, but CPU {cpu} is not back online in Linux: {}",
                        e.lines().collect::<Vec<_>>().join("; ")
                    ),
                ));
            }
        }
        Error::check(errors)?;
        Ok(vec![format!("Cell \"{}\" destroyed", info.name)])
    }

    /// `cell list`.
    pub fn list(&mut self) -> Result<Vec<String>, Error> {
        let cells = self.all_cells()?;
        let mut rows = vec![vec![
            "ID".to_string(),
            "Name".to_string(),
            "State".to_string(),
            "Assigned CPUs".to_string(),
            "Failed CPUs".to_string(),
        ]];
        for c in &cells {
            rows.push(vec![
                c.id.to_string(),
                c.name.clone(),
                state_name(c.state),
                format_cpu_list(&c.cpus),
                format_cpu_list(&c.failed_cpus),
            ]);
        }
        Ok(table(&rows, usize::MAX))
    }

    /// `cell stats NAME`.
    pub fn stats(&mut self, name: &str) -> Result<Vec<String>, Error> {
        let info = self.resolve(name)?;
        let what = cell_what(&info.name);
        let mut cpus = info.cpus.clone();
        cpus.sort_unstable();
        let mut header = vec!["Statistic".to_string()];
        header.extend(cpus.iter().map(|c| format!("CPU {c}")));
        header.push("Total".to_string());
        let mut rows = vec![header];
        for stat in CpuStat::ALL {
            let mut row = vec![stat_label(stat).to_string()];
            let mut total: u64 = 0;
            for &cpu in &cpus {
                let v = self
                    .hv
                    .cpu_info(cpu, CpuInfoItem::Stat(stat))
                    .map_err(|e| {
                        Error::new(&what, format!("CPU {cpu}: {}: {e}", stat_label(stat)))
                    })?;
                total = total.saturating_add(v);
                row.push(v.to_string());
            }
            row.push(total.to_string());
            rows.push(row);
        }
        let mut out = vec![format!(
            "Statistics of cell \"{}\" (id {}), CPUs {}",
            info.name,
            info.id,
            format_cpu_list(&cpus)
        )];
        out.extend(table(&rows, 1));
        Ok(out)
    }

    /// `console`: the hypervisor's log ring.
    pub fn console(&mut self) -> Result<Vec<String>, Error> {
        let room = self.hv.mgmt.buffer_size();
        let len = self
            .hv
            .console_read(0, room)
            .map_err(|e| Error::new("console", format!("console_read: {e}")))?;
        let bytes = self
            .hv
            .mgmt
            .read_buffer(0, len)
            .map_err(|e| Error::new("console", e))?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// `info`: the hypervisor's memory pool and cells.
    pub fn info(&mut self) -> Result<Vec<String>, Error> {
        let get = |hv: &mut Hv, item: InfoItem, name: &str| {
            hv.info(item)
                .map_err(|e| Error::new("hypervisor", format!("hypervisor_get_info({name}): {e}")))
        };
        let pages = get(&mut self.hv, InfoItem::MemPoolPages, "memory pool pages")?;
        let used = get(&mut self.hv, InfoItem::MemPoolUsedPages, "used pages")?;
        let cells = get(&mut self.hv, InfoItem::NumCells, "number of cells")?;
        Ok(vec![
            format!(
                "Memory pool: {pages} pages ({} KiB), {used} used ({} KiB)",
                pages * 4,
                used * 4
            ),
            format!("Cells: {cells}"),
        ])
    }
}

#[cfg(test)]
#[path = "cells_tests.rs"]
mod tests;
