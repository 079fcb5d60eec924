//! `dt-cellgen system`: a board → a [`SystemConfig`] whose root cell owns
//! every CPU, all RAM but the hypervisor's and the cells' reservation, and
//! every enabled device's MMIO and SPIs.

use std::collections::BTreeMap;

use hv_core::config::{
    CellConfig, Console, GicConfig, HypervisorConfig, Management, MemFlag, MemoryRegion, Platform,
    PsciConfig, Range, SmmuConfig, SystemConfig,
};

use crate::board::{Board, MemRange, Role};
use crate::error::{Error, Result};
use crate::tree::check_range;

pub const PAGE: u64 = 0x1000;
pub const MIB2: u64 = 0x20_0000;
/// Default hypervisor memory: image, boot pack and heap.
pub const DEFAULT_HV_MEM: u64 = 16 << 20;
/// IPA size of arch-aarch64's stage-2 tables (`stage2::IPA_BITS`).
pub const DEFAULT_IPA_BITS: u8 = 39;
/// Gaps between device windows smaller than this are bridged in
/// `platform.mmio` (unless RAM lies in the gap).
pub const MMIO_GAP: u64 = 64 << 20;

/// Where the hypervisor's memory is carved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Lowest 2 MiB-aligned free RAM (where `-kernel`/`booti` put images).
    #[default]
    Bottom,
    /// Highest 2 MiB-aligned free RAM.
    Top,
}

/// Choices for [`generate_system`].
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// Hypervisor memory size (rounded up to 2 MiB).
    pub hv_mem: u64,
    pub hv_at: Placement,
    /// RAM kept from the root cell for non-root cells (rounded up to 2 MiB).
    pub cell_mem: u64,
    /// Overrides the board name.
    pub name: Option<String>,
    /// RAM banks (start, size) replacing the DTB's `/memory`, for boards
    /// whose boot loader fills it in.
    pub ram: Vec<(u64, u64)>,
    /// Size of the cells' IPA space in bits (the stage-2 tables'; 39 in
    /// arch-aarch64): root cell regions beyond it are left out.
    pub ipa_bits: u8,
    /// Management interface for a Linux root cell: (page address, buffer
    /// size); the buffer is carved from RAM and kept from the root's RAM.
    pub management: Option<(u64, u64)>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        SystemOptions {
            hv_mem: DEFAULT_HV_MEM,
            hv_at: Placement::Bottom,
            cell_mem: 0,
            name: None,
            ram: Vec::new(),
            ipa_bits: DEFAULT_IPA_BITS,
            management: None,
        }
    }
}

/// What [`generate_system`] decided besides the config itself.
#[derive(Debug, Clone, Default)]
pub struct SystemNotes {
    /// The cells' reservation (start, size), if any.
    pub cell_pool: Option<(u64, u64)>,
    /// INTID → device paths.
    pub irq_sources: BTreeMap<u32, Vec<String>>,
    /// Board notes plus generator notes.
    pub notes: Vec<String>,
}

pub fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

pub fn align_down(v: u64, a: u64) -> u64 {
    v & !(a - 1)
}

/// `ranges` minus `holes`; both are (start, end) half-open.
pub fn subtract(ranges: &[(u64, u64)], holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = ranges.to_vec();
    for &(hs, he) in holes {
        let mut next = Vec::new();
        for (s, e) in out {
            if he <= s || hs >= e {
                next.push((s, e));
                continue;
            }
            if hs > s {
                next.push((s, hs));
            }
            if he < e {
                next.push((he, e));
            }
        }
        out = next;
    }
    out.sort_unstable();
    out
}

/// Picks a 2 MiB-aligned `size` range inside `free` (half-open ranges).
pub fn carve(free: &[(u64, u64)], size: u64, at: Placement) -> Option<(u64, u64)> {
    let fits = |&(s, e): &(u64, u64)| -> Option<(u64, u64)> {
        match at {
            Placement::Bottom => {
                let start = align_up(s, MIB2)?;
                let end = start.checked_add(size)?;
                (end <= e).then_some((start, end))
            }
            Placement::Top => {
                let start = align_down(e.checked_sub(size)?, MIB2);
                (start >= s).then_some((start, start + size))
            }
        }
    };
    match at {
        Placement::Bottom => free.iter().find_map(fits),
        Placement::Top => free.iter().rev().find_map(fits),
    }
}

fn page_range(start: u64, size: u64) -> Option<(u64, u64)> {
    let s = align_down(start, PAGE);
    let e = align_up(start.checked_add(size)?, PAGE)?;
    Some((s, e))
}

/// A region and the nodes it came from.
struct Piece {
    start: u64,
    end: u64,
    sources: Vec<String>,
    shared: bool,
}

/// Merges overlapping pieces, joining their sources.
fn merge_pieces(mut v: Vec<Piece>) -> Vec<Piece> {
    v.sort_by_key(|p| (p.start, p.end));
    let mut out: Vec<Piece> = Vec::new();
    for p in v {
        if let Some(last) = out.last_mut() {
            if p.start < last.end {
                last.end = last.end.max(p.end);
                for s in p.sources {
                    if !last.sources.contains(&s) {
                        last.sources.push(s);
                    }
                }
                last.shared |= p.shared;
                continue;
            }
        }
        out.push(p);
    }
    out
}

/// Builds the system config for a board.
pub fn generate_system(board: &Board, opts: &SystemOptions) -> Result<(SystemConfig, SystemNotes)> {
    let mut notes = SystemNotes {
        notes: board.notes.clone(),
        ..Default::default()
    };
    let banks: Vec<MemRange> = if opts.ram.is_empty() {
        board.ram.clone()
    } else {
        let mut v = Vec::new();
        for &(start, size) in &opts.ram {
            check_range("--ram", "RAM bank", start, size)?;
            v.push(MemRange {
                node: None,
                start,
                size,
                no_map: false,
            });
        }
        v.sort_by_key(|r| r.start);
        v
    };
    if banks.is_empty() {
        return Err(Error::NoMemory);
    }
    if opts.ram.is_empty() {
        notes.notes.push("RAM: from the DTB's /memory nodes".into());
    } else {
        notes
            .notes
            .push("RAM: given on the command line (--ram), not from the DTB".into());
    }
    let ram: Vec<(u64, u64)> = banks.iter().map(|r| (r.start, r.end())).collect();
    let all_reserved: Vec<(u64, u64)> = board.reserved.iter().map(|r| (r.start, r.end())).collect();
    let free = subtract(&ram, &all_reserved);

    let hv_size = align_up(opts.hv_mem.max(MIB2), MIB2).ok_or(Error::BadArgument {
        what: "--hv-mem",
        reason: "too large".into(),
    })?;
    let hv = carve(&free, hv_size, opts.hv_at).ok_or(Error::NoRoom {
        what: "the hypervisor",
        size: hv_size,
    })?;
    let free = subtract(&free, &[hv]);
    let mut taken = vec![hv];
    if opts.cell_mem > 0 {
        let size = align_up(opts.cell_mem, MIB2).ok_or(Error::BadArgument {
            what: "--cell-mem",
            reason: "too large".into(),
        })?;
        let pool = carve(&free, size, Placement::Top).ok_or(Error::NoRoom {
            what: "the cells' reservation",
            size,
        })?;
        notes.cell_pool = Some((pool.0, pool.1 - pool.0));
        taken.push(pool);
    }

    let mut management = None;
    if let Some((page, buf)) = opts.management {
        let size = align_up(buf.max(PAGE), MIB2).ok_or(Error::BadArgument {
            what: "--mgmt-buffer",
            reason: "too large".into(),
        })?;
        let free_now = subtract(&free, &taken);
        let b = carve(&free_now, size, Placement::Top).ok_or(Error::NoRoom {
            what: "the management buffer",
            size,
        })?;
        if page % PAGE != 0 || ram.iter().any(|&(s, e)| page >= s && page < e) {
            return Err(Error::BadArgument {
                what: "--mgmt-page",
                reason: format!("{page:#x} must be a 4 KiB-aligned address outside RAM"),
            });
        }
        taken.push(b);
        management = Some(Management {
            page,
            buffer: Range {
                start: b.0,
                size: b.1 - b.0,
            },
        });
    }

    // Root RAM: every bank less the hypervisor, the cells' pool, no-map
    // reserved memory and /memreserve/. Reserved memory without no-map is
    // the kernel's to use and stays.
    let mut holes = taken.clone();
    for r in &board.reserved {
        if r.no_map {
            holes.push((
                align_down(r.start, PAGE),
                align_up(r.end(), PAGE).unwrap_or(u64::MAX),
            ));
        }
    }
    let mut memory = Vec::new();
    for bank in &banks {
        let node = bank.node.map(|n| board.path(n)).unwrap_or("(--ram)");
        for (s, e) in subtract(&[(bank.start, bank.end())], &holes) {
            let (s, e) = (align_up(s, PAGE).unwrap_or(e), align_down(e, PAGE));
            if e <= s {
                continue;
            }
            let kept: Vec<&str> = board
                .reserved
                .iter()
                .filter(|r| !r.no_map && r.start < e && r.end() > s)
                .filter_map(|r| r.node.map(|n| board.path(n)))
                .collect();
            let mut comment = format!("RAM {node}");
            if !kept.is_empty() {
                comment.push_str(&format!(
                    " (holds reserved-memory without no-map, left to the kernel: {})",
                    kept.join(", ")
                ));
            }
            memory.push(MemoryRegion {
                phys_start: s,
                virt_start: s,
                size: e - s,
                flags: vec![
                    MemFlag::Read,
                    MemFlag::Write,
                    MemFlag::Execute,
                    MemFlag::Dma,
                ],
                comment: Some(comment),
            });
        }
    }
    // The root cell is identity-mapped: its RAM must lie in the IPA space.
    let ipa_limit = 1u64
        .checked_shl(u32::from(opts.ipa_bits))
        .unwrap_or(u64::MAX);
    memory.retain_mut(|r| {
        let end = r.virt_start.saturating_add(r.size);
        if end <= ipa_limit {
            return true;
        }
        notes.notes.push(format!(
            "RAM {:#x}+{:#x} lies beyond the {}-bit IPA space; {}",
            r.virt_start,
            r.size,
            opts.ipa_bits,
            if r.virt_start < ipa_limit {
                "clipped"
            } else {
                "left out"
            }
        ));
        if r.virt_start < ipa_limit {
            r.size = ipa_limit - r.virt_start;
            true
        } else {
            false
        }
    });
    if memory.is_empty() {
        return Err(Error::NoRoom {
            what: "the root cell's RAM",
            size: PAGE,
        });
    }
    let entry = memory[0].virt_start;

    // Devices: every enabled device of the root; the GIC and IOMMUs stay
    // with the hypervisor.
    let console_path = board.path(board.console.node).to_string();
    let mut pieces = Vec::new();
    let mut irqs = Vec::new();
    let overlaps_ram = |s: u64, e: u64| ram.iter().any(|&(rs, re)| s < re && e > rs);
    let smmu = board.smmu_v3();
    let mut streams: Vec<u32> = Vec::new();
    // What the hypervisor keeps: GIC frames, ITS, Arm SMMUs.
    let kept: Vec<(u64, u64)> = board
        .devices
        .iter()
        .filter(|d| d.role != Role::Device)
        .flat_map(|d| d.mmio.iter())
        .filter_map(|&(s, z)| page_range(s, z))
        .collect();
    let overlaps_kept = |s: u64, e: u64| kept.iter().any(|&(ks, ke)| s < ke && e > ks);
    for d in &board.devices {
        let path = board.path(d.node).to_string();
        for irq in d.spis() {
            notes.irq_sources.entry(irq).or_default().push(path.clone());
        }
        if d.role != Role::Device || !d.enabled {
            continue;
        }
        let spis = d.spis();
        irqs.extend(spis.iter().copied());
        if let Some(smmu) = smmu {
            streams.extend(d.stream_ids(smmu.node));
            if let Some(host) = board.pci.iter().find(|h| h.node == d.node) {
                let ids = d.root_bus_stream_ids(smmu.node, host.bus_range.0);
                if !ids.is_empty() {
                    notes.notes.push(format!(
                        "{path}: the root cell gets the SMMU streams of PCI bus {} (devices found at run time on other buses need theirs added)",
                        host.bus_range.0
                    ));
                }
                streams.extend(ids);
            }
        }
        let mut label = path.clone();
        if !spis.is_empty() {
            let list: Vec<String> = spis.iter().map(|i| i.to_string()).collect();
            label.push_str(&format!(" irqs {}", list.join(",")));
        }
        if let Some(smmu) = smmu {
            let ids = d.stream_ids(smmu.node);
            if !ids.is_empty() {
                let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                label.push_str(&format!(" streams {}", list.join(",")));
            }
        }
        for &(start, size) in &d.mmio {
            let Some((s, e)) = page_range(start, size) else {
                continue;
            };
            if overlaps_ram(s, e) {
                notes.notes.push(format!(
                    "{path}: MMIO {start:#x}+{size:#x} overlaps RAM; left out"
                ));
                continue;
            }
            if overlaps_kept(s, e) {
                notes.notes.push(format!(
                    "{path}: MMIO {start:#x}+{size:#x} shares a page with the GIC or an SMMU; left out"
                ));
                continue;
            }
            pieces.push(Piece {
                start: s,
                end: e,
                sources: vec![label.clone()],
                shared: path == console_path,
            });
        }
    }
    for host in &board.pci {
        let path = board.path(host.node);
        for irq in &host.intx {
            if let Some(i) = irq.spi() {
                irqs.push(i);
                notes
                    .irq_sources
                    .entry(i)
                    .or_default()
                    .push(format!("{path} (INTx)"));
            }
        }
        let enabled = board.tree.is_enabled(host.node);
        for &(start, size, kind) in &host.windows {
            let Some((s, e)) = page_range(start, size) else {
                continue;
            };
            if enabled && !overlaps_ram(s, e) {
                pieces.push(Piece {
                    start: s,
                    end: e,
                    sources: vec![format!("{path} {kind} window")],
                    shared: false,
                });
            }
        }
    }
    for p in merge_pieces(pieces) {
        if p.end > ipa_limit {
            notes.notes.push(format!(
                "{}: {:#x}+{:#x} lies beyond the {}-bit IPA space; left out",
                p.sources.join("; "),
                p.start,
                p.end - p.start,
                opts.ipa_bits
            ));
            continue;
        }
        let mut flags = vec![MemFlag::Read, MemFlag::Write, MemFlag::Io];
        if p.shared {
            flags.push(MemFlag::Shared);
        }
        let mut comment = p.sources.join("; ");
        if p.shared {
            comment.push_str(" (shared with the hypervisor console)");
        }
        memory.push(MemoryRegion {
            phys_start: p.start,
            virt_start: p.start,
            size: p.end - p.start,
            flags,
            comment: Some(comment),
        });
    }
    irqs.sort_unstable();
    irqs.dedup();
    for v in notes.irq_sources.values_mut() {
        v.dedup();
    }

    // platform.mmio: all device windows (GIC and IOMMUs included), bridged
    // over small gaps without RAM.
    let mut win: Vec<(u64, u64)> = Vec::new();
    for d in &board.devices {
        for &(start, size) in &d.mmio {
            if let Some((s, e)) = page_range(start, size) {
                if !overlaps_ram(s, e) {
                    win.push((s, e));
                }
            }
        }
    }
    for host in &board.pci {
        for &(start, size, _) in &host.windows {
            if let Some((s, e)) = page_range(start, size) {
                if !overlaps_ram(s, e) {
                    win.push((s, e));
                }
            }
        }
    }
    win.sort_unstable();
    let mut windows: Vec<(u64, u64)> = Vec::new();
    for (s, e) in win {
        if let Some(last) = windows.last_mut() {
            let bridge = s <= last.1.saturating_add(MMIO_GAP) && !overlaps_ram(last.1, s);
            if s <= last.1 || bridge {
                last.1 = last.1.max(e);
                continue;
            }
        }
        windows.push((s, e));
    }

    let gic = &board.gic;
    let maintenance_irq = match gic.maintenance_irq {
        Some(i) => i,
        None => {
            notes.notes.push(format!(
                "{}: no maintenance interrupt stated; assumed INTID 25 (PPI 9)",
                board.path(gic.node)
            ));
            25
        }
    };
    let config = SystemConfig {
        name: opts.name.clone().unwrap_or_else(|| board.name.clone()),
        hypervisor: HypervisorConfig {
            memory: Range {
                start: hv.0,
                size: hv.1 - hv.0,
            },
            console: Console {
                base: board.console.base,
                kind: board.console.kind,
            },
            management,
        },
        platform: Platform {
            cpus: board.cpus.iter().map(|c| c.mpidr).collect(),
            ram: banks
                .iter()
                .map(|r| Range {
                    start: r.start,
                    size: r.size,
                })
                .collect(),
            mmio: windows
                .iter()
                .map(|&(s, e)| Range {
                    start: s,
                    size: e - s,
                })
                .collect(),
            gic: GicConfig {
                version: gic.version,
                gicd: gic.gicd.0,
                gicr: gic.gicr.first().map(|r| r.0),
                // GICv3's optional GICv2-compatible frames are not used.
                gicc: gic.gicc.filter(|_| gic.version == 2).map(|r| r.0),
                gich: gic.gich.filter(|_| gic.version == 2).map(|r| r.0),
                gicv: gic.gicv.filter(|_| gic.version == 2).map(|r| r.0),
                maintenance_irq,
            },
            psci: PsciConfig {
                conduit: board.psci.conduit,
            },
            smmu: smmu.map(|d| SmmuConfig {
                base: d.mmio[0].0,
                size: d.mmio[0].1,
                event_irq: None,
            }),
        },
        root_cell: CellConfig {
            name: "root".into(),
            cpus: (0..board.cpus.len() as u32).collect(),
            memory,
            irqs,
            entry,
            entry_x0: None,
            streams: {
                streams.sort_unstable();
                streams.dedup();
                streams
            },
            images: Vec::new(),
            ivshmem: Vec::new(),
            passive_comm: false,
        },
        boot_cells: Vec::new(),
    };
    Ok((config, notes))
}
