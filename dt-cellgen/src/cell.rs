//! `dt-cellgen cell`: a non-root cell taking named CPUs, RAM from the cells'
//! reservation and whole devices (MMIO pages and SPIs).

use hv_core::config::{CellConfig, MemFlag, MemoryRegion, SystemConfig};

use crate::board::Board;
use crate::error::{Error, Result};
use crate::system::{align_up, carve, subtract, Placement, MIB2, PAGE};

/// What a cell should get.
#[derive(Debug, Clone, Default)]
pub struct CellRequest {
    pub name: String,
    /// Logical CPU ids; the first is the boot CPU.
    pub cpus: Vec<u32>,
    /// RAM size (rounded up to 2 MiB).
    pub mem: u64,
    /// Device-tree paths (or aliases) of devices the cell takes.
    pub devices: Vec<String>,
    /// Where the cell sees its RAM; default: the start of the board's first
    /// RAM bank, where a kernel or inmate for this board expects it.
    pub ipa: Option<u64>,
}

/// A device's MMIO (page-aligned, physical) and SPIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceResources {
    pub path: String,
    pub mmio: Vec<(u64, u64)>,
    pub irqs: Vec<u32>,
    /// SMMUv3 stream IDs of the device.
    pub streams: Vec<u32>,
}

/// A device's resources from the board DTB.
pub fn device_from_board(board: &Board, path: &str) -> Result<DeviceResources> {
    let dev = board.device(path).ok_or_else(|| Error::BadDevice {
        path: path.to_string(),
        reason: "no node with MMIO or interrupts at this path or alias".into(),
    })?;
    let mut mmio = Vec::new();
    for &(s, z) in &dev.mmio {
        let start = s & !(PAGE - 1);
        let end = align_up(s.saturating_add(z), PAGE).unwrap_or(u64::MAX);
        mmio.push((start, end - start));
    }
    Ok(DeviceResources {
        path: board.path(dev.node).to_string(),
        mmio,
        irqs: dev.spis(),
        streams: board
            .smmu_v3()
            .map(|s| dev.stream_ids(s.node))
            .unwrap_or_default(),
    })
}

/// A device's resources from the root cell of a generated system config:
/// its io regions' comments name each node, its SPIs and SMMU streams
/// (`/path irqs 33,34 streams 8; /other`).
pub fn device_from_system(sys: &SystemConfig, path: &str) -> Result<DeviceResources> {
    let mut out = DeviceResources {
        path: path.to_string(),
        mmio: Vec::new(),
        irqs: Vec::new(),
        streams: Vec::new(),
    };
    for r in sys.root_cell.memory.iter().filter(|r| r.has(MemFlag::Io)) {
        let Some(c) = &r.comment else { continue };
        let c = c.trim_end_matches(" (shared with the hypervisor console)");
        for entry in c.split("; ") {
            let (rest, streams) = match entry.split_once(" streams ") {
                Some((r, s)) => (r, s),
                None => (entry, ""),
            };
            let (p, irqs) = match rest.split_once(" irqs ") {
                Some((p, i)) => (p, i),
                None => (rest, ""),
            };
            if p != path {
                continue;
            }
            out.mmio.push((r.phys_start, r.size));
            for i in irqs.split(',').filter_map(|s| s.trim().parse().ok()) {
                if !out.irqs.contains(&i) {
                    out.irqs.push(i);
                }
            }
            for i in streams.split(',').filter_map(|s| s.trim().parse().ok()) {
                if !out.streams.contains(&i) {
                    out.streams.push(i);
                }
            }
        }
    }
    if out.mmio.is_empty() {
        return Err(Error::BadDevice {
            path: path.to_string(),
            reason: "not named by any io region of the root cell (pass --dtb to look it up in the board's device tree)".into(),
        });
    }
    Ok(out)
}

/// Free RAM for cells: platform RAM less the hypervisor, its management
/// buffer, the root cell's RAM and every other cell's RAM (half-open ranges).
pub fn cell_pool(sys: &SystemConfig, others: &[&CellConfig]) -> Vec<(u64, u64)> {
    let ram: Vec<(u64, u64)> = sys
        .platform
        .ram
        .iter()
        .map(|r| (r.start, r.start.saturating_add(r.size)))
        .collect();
    let hv = &sys.hypervisor.memory;
    let mut holes = vec![(hv.start, hv.start.saturating_add(hv.size))];
    if let Some(m) = &sys.hypervisor.management {
        holes.push((m.buffer.start, m.buffer.start.saturating_add(m.buffer.size)));
    }
    for cell in std::iter::once(&sys.root_cell)
        .chain(sys.boot_cells.iter())
        .chain(others.iter().copied())
    {
        for r in cell.memory.iter().filter(|r| !r.has(MemFlag::Io)) {
            holes.push((r.phys_start, r.phys_start.saturating_add(r.size)));
        }
    }
    subtract(&ram, &holes)
}

/// Builds a cell config; `devices` are already looked up.
pub fn generate_cell(
    sys: &SystemConfig,
    others: &[&CellConfig],
    req: &CellRequest,
    devices: &[DeviceResources],
) -> Result<CellConfig> {
    if req.cpus.is_empty() {
        return Err(Error::BadArgument {
            what: "--cpus",
            reason: "a cell needs at least one CPU".into(),
        });
    }
    let count = sys.platform.cpus.len() as u32;
    for &cpu in &req.cpus {
        if cpu >= count {
            return Err(Error::BadCpu {
                cpu,
                reason: format!("the platform has CPUs 0..{count}"),
            });
        }
        if let Some(o) = others
            .iter()
            .copied()
            .chain(sys.boot_cells.iter())
            .find(|c| c.cpus.contains(&cpu))
        {
            return Err(Error::BadCpu {
                cpu,
                reason: format!("already given to cell \"{}\"", o.name),
            });
        }
    }
    let root_left = sys
        .root_cell
        .cpus
        .iter()
        .filter(|c| {
            !req.cpus.contains(c)
                && !others
                    .iter()
                    .copied()
                    .chain(sys.boot_cells.iter())
                    .any(|o| o.cpus.contains(c))
        })
        .count();
    if root_left == 0 {
        return Err(Error::BadArgument {
            what: "--cpus",
            reason: "the root cell would have no CPU left".into(),
        });
    }
    let size = align_up(req.mem.max(MIB2), MIB2).ok_or(Error::BadArgument {
        what: "--mem",
        reason: "too large".into(),
    })?;
    let pool = cell_pool(sys, others);
    let (start, _) = carve(&pool, size, Placement::Bottom).ok_or(Error::NoRoom {
        what: "the cell (is the cells' reservation, --cell-mem of `system`, large enough?)",
        size,
    })?;
    let ipa = req
        .ipa
        .or_else(|| sys.platform.ram.first().map(|r| r.start))
        .unwrap_or(start);
    let limit = 1u64 << crate::system::DEFAULT_IPA_BITS;
    if ipa.checked_add(size).is_none_or(|end| end > limit) {
        return Err(Error::BadArgument {
            what: "--ipa",
            reason: format!(
                "{ipa:#x} + {size:#x} leaves the {}-bit IPA space",
                crate::system::DEFAULT_IPA_BITS
            ),
        });
    }
    let mut memory = vec![MemoryRegion {
        phys_start: start,
        virt_start: ipa,
        size,
        flags: vec![
            MemFlag::Read,
            MemFlag::Write,
            MemFlag::Execute,
            MemFlag::Dma,
            MemFlag::Loadable,
        ],
        comment: Some("RAM from the cells' reservation".into()),
    }];
    let mut irqs = Vec::new();
    let mut streams = Vec::new();
    for d in devices {
        for &(s, z) in &d.mmio {
            if s < ipa.saturating_add(size) && ipa < s.saturating_add(z) {
                return Err(Error::BadDevice {
                    path: d.path.clone(),
                    reason: format!(
                        "MMIO {s:#x}+{z:#x} collides with the cell's RAM at IPA {ipa:#x} (use --ipa)"
                    ),
                });
            }
            if memory
                .iter()
                .any(|m| m.has(MemFlag::Io) && m.phys_start == s)
            {
                continue;
            }
            memory.push(MemoryRegion {
                phys_start: s,
                virt_start: s,
                size: z,
                flags: vec![MemFlag::Read, MemFlag::Write, MemFlag::Io],
                comment: Some(d.path.clone()),
            });
        }
        for &i in &d.irqs {
            if !irqs.contains(&i) {
                irqs.push(i);
            }
        }
        streams.extend(d.streams.iter().copied());
    }
    irqs.sort_unstable();
    streams.sort_unstable();
    streams.dedup();
    Ok(CellConfig {
        name: req.name.clone(),
        cpus: req.cpus.clone(),
        memory,
        irqs,
        entry: ipa,
        entry_x0: None,
        streams,
        images: Vec::new(),
        ivshmem: Vec::new(),
        passive_comm: false,
    })
}
