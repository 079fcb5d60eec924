//! A tiny hypervisor behind [`Mgmt`], for the tests: a cells table, CPU
//! states, the buffer, memory of loadable cells, a console log. It follows
//! the ABI of `hv_core::abi` the way the CLI relies on it.

use std::path::PathBuf;

use hv_core::abi::{CpuInfoItem, CpuState, Errno, Hypercall, InfoItem, CPU_STAT_BASE};
use hv_core::blob;
use hv_core::cell::CellState;
use hv_core::config::{CellConfig, MemFlag};
use hv_core::mgmt::CellInfo;
use hv_core::validate::validate_cell_alone;

use crate::cells::load_regions;
use crate::cpus::CpuSysfs;
use crate::mgmt::{BufferError, Mgmt};

/// How a cell answers shutdown requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Approves after that many polls (-EBUSY until then).
    Approve { after: u32 },
    /// Denies (-EPERM).
    Deny,
    /// Never answers; the hypervisor gives up after that many polls
    /// (-ETIMEDOUT, the cell fails).
    Silent { hv_gives_up_after: u32 },
    /// Never answers, and the hypervisor keeps returning -EBUSY.
    Forever,
}

#[derive(Clone, Debug)]
pub struct FakeCell {
    pub id: u32,
    pub config: CellConfig,
    pub state: CellState,
    pub loadable: bool,
    pub failed_cpus: Vec<u32>,
    pub answer: Answer,
    pub polls: u32,
}

pub struct FakeHv {
    pub buffer: Vec<u8>,
    pub ncpus: u32,
    /// Non-root cells.
    pub cells: Vec<FakeCell>,
    /// A root CPU reads as parked when Linux has it offline here.
    pub sysfs: CpuSysfs,
    /// Root CPUs that never park.
    pub stuck: Vec<u32>,
    /// Answer of cells created from now on.
    pub answer: Answer,
    /// Reason written over the blob when a create is refused.
    pub create_reason: Option<String>,
    /// Writes to cell memory: (PA, bytes).
    pub memory: Vec<(u64, Vec<u8>)>,
    pub console: String,
    pub calls: Vec<(Hypercall, u64, u64, u64)>,
    /// Hypercalls refused with an errno, whatever their arguments.
    pub refuse: Vec<(Hypercall, Errno)>,
}

pub const ROOT_NAME: &str = "qemu-arm64-linux";

impl FakeHv {
    pub fn new(ncpus: u32, buffer_size: usize, sysfs: CpuSysfs) -> Self {
        for cpu in 0..ncpus {
            let dir = sysfs.root().join(format!("cpu{cpu}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("online"), "1\n").unwrap();
        }
        Self {
            buffer: vec![0; buffer_size],
            ncpus,
            cells: Vec::new(),
            sysfs,
            stuck: Vec::new(),
            answer: Answer::Approve { after: 2 },
            create_reason: None,
            memory: Vec::new(),
            console: "Cellblock: hello\nCellblock: root cell running\n".into(),
            calls: Vec::new(),
            refuse: Vec::new(),
        }
    }

    pub fn sysfs_root(&self) -> PathBuf {
        self.sysfs.root().to_path_buf()
    }

    fn root_cpus(&self) -> Vec<u32> {
        (0..self.ncpus)
            .filter(|c| !self.cells.iter().any(|x| x.config.cpus.contains(c)))
            .collect()
    }

    fn cell(&mut self, id: u64) -> Result<&mut FakeCell, Errno> {
        self.cells
            .iter_mut()
            .find(|c| u64::from(c.id) == id)
            .ok_or(Errno::NoEnt)
    }

    fn info_of(&self, id: u64) -> Result<CellInfo, Errno> {
        if id == 0 {
            let cpus = self.root_cpus();
            return Ok(CellInfo {
                id: 0,
                name: ROOT_NAME.into(),
                state: CellState::Running as u64,
                cpus: cpus.clone(),
                failed_cpus: vec![],
                loadable: false,
                fault: None,
                config: CellConfig {
                    name: ROOT_NAME.into(),
                    cpus,
                    memory: vec![],
                    irqs: vec![],
                    entry: 0x4400_0000,
                    entry_x0: Some(0x4800_0000),
                    streams: Vec::new(),
                    ivshmem: Vec::new(),
                    passive_comm: false,
                    images: vec![],
                },
            });
        }
        let c = self
            .cells
            .iter()
            .find(|c| u64::from(c.id) == id)
            .ok_or(Errno::NoEnt)?;
        Ok(CellInfo {
            id: c.id,
            name: c.config.name.clone(),
            state: c.state as u64,
            cpus: c.config.cpus.clone(),
            failed_cpus: c.failed_cpus.clone(),
            loadable: c.loadable,
            fault: None,
            config: c.config.clone(),
        })
    }

    fn cpu_state(&self, cpu: u32) -> Result<CpuState, Errno> {
        if cpu >= self.ncpus {
            return Err(Errno::Inval);
        }
        if let Some(c) = self.cells.iter().find(|c| c.config.cpus.contains(&cpu)) {
            return Ok(match c.state {
                CellState::Failed => CpuState::Failed,
                s if s.is_running() => CpuState::Running,
                _ => CpuState::Parked,
            });
        }
        if self.stuck.contains(&cpu) {
            return Ok(CpuState::Running);
        }
        Ok(match self.sysfs.is_online(cpu) {
            Ok(false) => CpuState::Parked,
            _ => CpuState::Running,
        })
    }

    fn create(&mut self, offset: u64, len: u64) -> Result<u64, Errno> {
        let bytes = self.read(offset, len).map_err(|_| Errno::Inval)?;
        let config = blob::decode_cell(&bytes).map_err(|_| Errno::Inval)?;
        let refuse = |hv: &mut Self, e: Errno| {
            if let Some(r) = hv.create_reason.clone() {
                let mut msg = r.into_bytes();
                msg.push(0);
                hv.write(offset, &msg).unwrap();
            }
            Err(e)
        };
        if validate_cell_alone(&config).is_err() {
            return refuse(self, Errno::Inval);
        }
        if config.name == ROOT_NAME || self.cells.iter().any(|c| c.config.name == config.name) {
            return refuse(self, Errno::Inval);
        }
        let root = self.root_cpus();
        for &cpu in &config.cpus {
            if !root.contains(&cpu) || self.cpu_state(cpu) != Ok(CpuState::Parked) {
                return refuse(self, Errno::Busy);
            }
        }
        // Physical RAM shared with another cell without the `shared` flag.
        let ram = |c: &CellConfig| -> Vec<(u64, u64, bool)> {
            c.memory
                .iter()
                .filter(|r| !r.has(MemFlag::Io))
                .map(|r| (r.phys_start, r.phys_start + r.size, r.has(MemFlag::Shared)))
                .collect()
        };
        for other in &self.cells {
            for (s, e, shared) in ram(&other.config) {
                for (s2, e2, shared2) in ram(&config) {
                    if s < e2 && s2 < e && !(shared && shared2) {
                        return refuse(self, Errno::Busy);
                    }
                }
            }
        }
        let id = (1..)
            .find(|i| !self.cells.iter().any(|c| c.id == *i))
            .unwrap();
        self.cells.push(FakeCell {
            id,
            config,
            state: CellState::ShutDown,
            loadable: false,
            failed_cpus: vec![],
            answer: self.answer,
            polls: 0,
        });
        Ok(id.into())
    }

    fn shutdown(&mut self, id: u64) -> Result<u64, Errno> {
        if id == 0 {
            return Err(Errno::Inval);
        }
        let c = self.cell(id)?;
        if !c.state.is_running() {
            return Ok(0);
        }
        c.polls += 1;
        match c.answer {
            Answer::Approve { after } if c.polls > after => {
                c.state = CellState::ShutDown;
                c.polls = 0;
                Ok(0)
            }
            Answer::Approve { .. } | Answer::Forever => Err(Errno::Busy),
            Answer::Deny => {
                c.polls = 0;
                Err(Errno::Perm)
            }
            Answer::Silent { hv_gives_up_after } => {
                if c.polls > hv_gives_up_after {
                    c.state = CellState::Failed;
                    c.failed_cpus = c.config.cpus.clone();
                    Err(Errno::TimedOut)
                } else {
                    Err(Errno::Busy)
                }
            }
        }
    }

    fn dispatch(&mut self, code: Hypercall, a0: u64, a1: u64) -> Result<u64, Errno> {
        match code {
            Hypercall::HypervisorGetInfo => match InfoItem::try_from(a0) {
                Ok(InfoItem::MemPoolPages) => Ok(4096),
                Ok(InfoItem::MemPoolUsedPages) => Ok(100 + 10 * self.cells.len() as u64),
                Ok(InfoItem::NumCells) => Ok(1 + self.cells.len() as u64),
                Err(_) => Err(Errno::Inval),
            },
            Hypercall::CpuGetInfo => {
                let cpu = u32::try_from(a0).map_err(|_| Errno::Inval)?;
                match CpuInfoItem::try_from(a1) {
                    Ok(CpuInfoItem::State) => self.cpu_state(cpu).map(|s| s as u64),
                    Ok(CpuInfoItem::Stat(_)) => {
                        self.cpu_state(cpu)?;
                        Ok(u64::from(cpu) * 100 + (a1 - CPU_STAT_BASE) + 1)
                    }
                    Err(_) => Err(Errno::Inval),
                }
            }
            Hypercall::CellGetInfo => {
                let info = self.info_of(a0)?;
                let bytes = postcard::to_allocvec(&info).unwrap();
                self.write(a1, &bytes).map_err(|_| Errno::NoMem)?;
                Ok(bytes.len() as u64)
            }
            Hypercall::CellGetState => self.info_of(a0).map(|i| i.state),
            Hypercall::CellCreate => self.create(a0, a1),
            Hypercall::CellSetLoadable => {
                if a0 == 0 {
                    return Err(Errno::Inval);
                }
                let c = self.cell(a0)?;
                c.loadable = true;
                c.state = CellState::ShutDown;
                c.failed_cpus.clear();
                Ok(0)
            }
            Hypercall::CellStart => {
                if a0 == 0 {
                    return Err(Errno::Inval);
                }
                let c = self.cell(a0)?;
                c.loadable = false;
                c.state = CellState::Running;
                c.failed_cpus.clear();
                Ok(0)
            }
            Hypercall::CellShutdown => self.shutdown(a0),
            Hypercall::CellDestroy => {
                if a0 == 0 {
                    return Err(Errno::Inval);
                }
                self.cell(a0)?;
                self.cells.retain(|c| u64::from(c.id) != a0);
                Ok(0)
            }
            Hypercall::ConsoleRead => {
                let text = self.console.clone().into_bytes();
                let n = text.len().min(a1 as usize);
                self.write(a0, &text[text.len() - n..])
                    .map_err(|_| Errno::Inval)?;
                Ok(n as u64)
            }
            Hypercall::DebugConsolePutc => {
                self.console.push(a0 as u8 as char);
                Ok(0)
            }
            Hypercall::Disable => Err(Errno::NoSys),
        }
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, BufferError> {
        BufferError::check(offset, len, self.buffer.len() as u64)?;
        Ok(self.buffer[offset as usize..(offset + len) as usize].to_vec())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BufferError> {
        BufferError::check(offset, data.len() as u64, self.buffer.len() as u64)?;
        self.buffer[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// Calls of `code` so far.
    pub fn count(&self, code: Hypercall) -> usize {
        self.calls.iter().filter(|c| c.0 == code).count()
    }

    /// The fake's view of a cell, by name.
    pub fn by_name(&self, name: &str) -> Option<&FakeCell> {
        self.cells.iter().find(|c| c.config.name == name)
    }
}

impl Mgmt for FakeHv {
    fn call(&mut self, code: Hypercall, a0: u64, a1: u64, a2: u64) -> i64 {
        self.calls.push((code, a0, a1, a2));
        if let Some((_, e)) = self.refuse.iter().find(|r| r.0 == code) {
            return -e.code();
        }
        match self.dispatch(code, a0, a1) {
            Ok(v) => v as i64,
            Err(e) => -e.code(),
        }
    }

    fn buffer_size(&self) -> u64 {
        self.buffer.len() as u64
    }

    fn write_buffer(&mut self, offset: u64, data: &[u8]) -> Result<(), BufferError> {
        self.write(offset, data)
    }

    fn read_buffer(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, BufferError> {
        self.read(offset, len)
    }

    /// Only memory of a loadable cell is mapped into the root cell.
    fn write_phys(&mut self, pa: u64, data: &[u8]) -> Result<(), String> {
        let end = pa + data.len() as u64;
        let mapped = self.cells.iter().filter(|c| c.loadable).any(|c| {
            load_regions(&c.config)
                .0
                .iter()
                .any(|r| pa >= r.phys_start && end <= r.phys_start + r.size)
        });
        if !mapped {
            return Err(format!("PA {pa:#x} is not mapped into the root cell"));
        }
        self.memory.push((pa, data.to_vec()));
        Ok(())
    }
}
