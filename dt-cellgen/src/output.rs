//! Config text: serialized with `toml`, then made reviewable: addresses in
//! hex, each IRQ and table annotated with the device-tree node it came from,
//! and the full device report appended as comments.

use std::fmt::Write as _;

use hv_core::config::{CellConfig, SystemConfig};

use crate::board::{Board, Role};
use crate::irq::{IrqKind, IrqTarget};
use crate::system::SystemNotes;

/// Keys whose integer values are addresses or sizes.
const HEX_KEYS: &[&str] = &[
    "start",
    "size",
    "base",
    "gicd",
    "gicr",
    "gicc",
    "gich",
    "gicv",
    "phys_start",
    "virt_start",
    "entry",
    "addr",
];

/// The numbers of a one-line TOML array (`[1, 2, 3]`) as hex, or `None`
/// when an item is not a plain number.
fn hex_list(val: &str) -> Option<Vec<String>> {
    val.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<u64>().ok().map(|v| format!("{v:#x}")))
        .collect()
}

/// Rewrites decimal addresses and sizes as hex; `platform.cpus` MPIDRs too.
pub fn hexify(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut section = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        let mut done = false;
        if let Some((key, val)) = line.split_once(" = ") {
            let key = key.trim();
            if HEX_KEYS.contains(&key) {
                if let Ok(v) = val.trim().parse::<u64>() {
                    let _ = writeln!(out, "{key} = {v:#x}");
                    done = true;
                }
            } else if (key == "ivshmem" && val.trim() == "[]")
                || (key == "passive_comm" && val.trim() == "false")
            {
                // dt-cellgen writes no ivshmem links and no passive cells:
                // leave the defaults out.
                done = true;
            } else if key == "streams" {
                if let Some(items) = hex_list(val) {
                    if items.len() <= 16 {
                        let _ = writeln!(out, "streams = [{}]", items.join(", "));
                    } else {
                        out.push_str("streams = [\n");
                        for row in items.chunks(16) {
                            let _ = writeln!(out, "    {},", row.join(", "));
                        }
                        out.push_str("]\n");
                    }
                    done = true;
                }
            } else if key == "cpus" && section == "platform" {
                if let Some(items) = hex_list(val) {
                    let _ = writeln!(out, "cpus = [{}]", items.join(", "));
                    done = true;
                }
            }
        }
        if !done {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Replaces `irqs = [..]` in `section` by one INTID per line, each with the
/// nodes it comes from.
fn annotate_irqs(text: &str, section: &str, sources: &dyn Fn(u32) -> String) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            cur = line.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        if cur == section {
            if let Some(val) = line.strip_prefix("irqs = [") {
                let ids: Vec<u32> = val
                    .trim_end_matches(']')
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
                if ids.is_empty() {
                    out.push_str("irqs = []\n");
                } else {
                    out.push_str("irqs = [\n");
                    for id in ids {
                        let _ = writeln!(
                            out,
                            "    {id}, # SPI {} {}",
                            id.saturating_sub(32),
                            sources(id)
                        );
                    }
                    out.push_str("]\n");
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Puts comment lines above the first line equal to `anchor`.
fn comment_before(text: &str, anchor: &str, comment: &[String]) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut placed = false;
    for line in text.lines() {
        if !placed && line == anchor {
            for c in comment {
                let _ = writeln!(out, "# {c}");
            }
            placed = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn fmt_range(r: (u64, u64)) -> String {
    format!("{:#x}+{:#x}", r.0, r.1)
}

/// The system config as commented TOML.
pub fn system_toml(cfg: &SystemConfig, board: &Board, notes: &SystemNotes) -> String {
    let body = toml::to_string(cfg).unwrap_or_else(|e| format!("# serialization failed: {e}\n"));
    let body = hexify(&body);
    let sources = |id: u32| -> String {
        notes
            .irq_sources
            .get(&id)
            .map(|v| v.join(", "))
            .unwrap_or_default()
    };
    let mut body = annotate_irqs(&body, "root_cell", &sources);

    let gic = &board.gic;
    let mut gic_lines = vec![format!(
        "{} (GICv{}): GICD {}",
        board.path(gic.node),
        gic.version,
        fmt_range(gic.gicd)
    )];
    for r in &gic.gicr {
        gic_lines.push(format!("  GICR region {}", fmt_range(*r)));
    }
    for (name, r) in [("GICC", gic.gicc), ("GICH", gic.gich), ("GICV", gic.gicv)] {
        if let Some(r) = r {
            gic_lines.push(format!("  {name} {}", fmt_range(r)));
        }
    }
    for (n, r) in &gic.its {
        gic_lines.push(format!("  ITS {} {}", board.path(*n), fmt_range(*r)));
    }
    if let Some(t) = &board.timer {
        gic_lines.push(format!(
            "timer {}: PPI INTIDs {:?}",
            board.path(t.node),
            t.ppis
        ));
    }
    body = comment_before(&body, "[platform.gic]", &gic_lines);
    body = comment_before(
        &body,
        "[platform.psci]",
        &[format!(
            "{} (PSCI {})",
            board.path(board.psci.node),
            board.psci.version
        )],
    );
    body = comment_before(
        &body,
        "[hypervisor.console]",
        &[format!(
            "{} (the board's console)",
            board.path(board.console.node)
        )],
    );
    let cpu_lines: Vec<String> = board
        .cpus
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "CPU {i}: {} MPIDR {:#x} enable-method {}",
                board.path(c.node),
                c.mpidr,
                c.enable_method.as_deref().unwrap_or("-")
            )
        })
        .collect();
    body = comment_before(&body, "[platform]", &cpu_lines);
    let mut ram_lines: Vec<String> = board
        .ram
        .iter()
        .map(|r| {
            format!(
                "RAM {} from {}",
                fmt_range((r.start, r.size)),
                r.node.map(|n| board.path(n)).unwrap_or("?")
            )
        })
        .collect();
    for r in &board.reserved {
        ram_lines.push(format!(
            "reserved {} {} ({})",
            fmt_range((r.start, r.size)),
            r.node.map(|n| board.path(n)).unwrap_or("/memreserve/"),
            if r.no_map {
                "no-map: given to no cell"
            } else {
                "mapped: stays in the root's RAM"
            }
        ));
    }
    body = comment_before(&body, "[[platform.ram]]", &ram_lines);

    let mut head = String::new();
    let _ = writeln!(head, "# Cellblock system config for \"{}\".", board.name);
    let _ = writeln!(
        head,
        "# Generated by dt-cellgen from the board's device tree; review it (docs/boards.md)."
    );
    let _ = writeln!(
        head,
        "# hypervisor memory: {}",
        fmt_range((cfg.hypervisor.memory.start, cfg.hypervisor.memory.size))
    );
    if let Some(p) = notes.cell_pool {
        let _ = writeln!(
            head,
            "# cells' reservation: {} (RAM kept from the root cell; `dt-cellgen cell` carves from it)",
            fmt_range(p)
        );
    }
    for n in &notes.notes {
        let _ = writeln!(head, "# note: {n}");
    }
    head.push('\n');
    head.push_str(&body);
    head.push('\n');
    for line in device_report(board).lines() {
        let _ = writeln!(head, "# {line}");
    }
    head
}

/// A cell config as commented TOML.
pub fn cell_toml(
    cell: &CellConfig,
    header: &[String],
    irq_sources: &dyn Fn(u32) -> String,
) -> String {
    let body = toml::to_string(cell).unwrap_or_else(|e| format!("# serialization failed: {e}\n"));
    let body = annotate_irqs(&hexify(&body), "", irq_sources);
    let mut out = String::new();
    for h in header {
        let _ = writeln!(out, "# {h}");
    }
    out.push_str(&body);
    out
}

/// Every device with its MMIO, interrupts and IOMMU streams, PCI hosts and
/// IOMMUs: plain text, one item per line.
pub fn device_report(board: &Board) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---- device report ----");
    for d in &board.devices {
        let role = match d.role {
            Role::Device => "",
            Role::Gic => " [GIC: hypervisor]",
            Role::Iommu => " [SMMU: hypervisor]",
        };
        let compat = board.tree.compatible(d.node).first().copied().unwrap_or("");
        let _ = writeln!(
            out,
            "{}{}{} \"{}\"",
            board.path(d.node),
            if d.enabled { "" } else { " (disabled)" },
            role,
            compat
        );
        for r in &d.mmio {
            let _ = writeln!(out, "    mmio {}", fmt_range(*r));
        }
        for irq in &d.irqs {
            let via: Vec<&str> = irq.via.iter().map(|v| board.path(*v)).collect();
            let via = if via.is_empty() {
                String::new()
            } else {
                format!(" via {}", via.join(" -> "))
            };
            let _ = match irq.target {
                IrqTarget::Gic { intid, kind } => writeln!(
                    out,
                    "    irq INTID {intid} ({}){via}",
                    match kind {
                        IrqKind::Spi => "SPI",
                        IrqKind::Ppi => "PPI",
                    }
                ),
                IrqTarget::Chained { controller } => writeln!(
                    out,
                    "    irq behind {}{via} (not a GIC line of its own)",
                    board.path(controller)
                ),
            };
        }
        for s in &d.streams {
            let _ = match s.map {
                Some((rid, sid, len)) => writeln!(
                    out,
                    "    iommu-map {} RID {rid:#x} -> stream {sid:#x} x {len:#x}",
                    board.path(s.iommu)
                ),
                None => writeln!(
                    out,
                    "    iommu {} stream {:#x?}",
                    board.path(s.iommu),
                    s.ids
                ),
            };
        }
        for i in &d.issues {
            let _ = writeln!(out, "    problem: {i}");
        }
    }
    for i in &board.iommus {
        let _ = writeln!(out, "IOMMU {} ({})", board.path(i.node), i.kind);
    }
    for p in &board.pci {
        let _ = writeln!(
            out,
            "PCI host {}: {} buses {}-{}",
            board.path(p.node),
            p.ecam
                .map(|e| format!("ECAM {}", fmt_range(e)))
                .unwrap_or_else(|| "non-ECAM config space".into()),
            p.bus_range.0,
            p.bus_range.1
        );
        for w in &p.windows {
            let _ = writeln!(out, "    {} window {}", w.2, fmt_range((w.0, w.1)));
        }
        let intx: Vec<String> = p
            .intx
            .iter()
            .filter_map(|i| i.spi())
            .map(|i| i.to_string())
            .collect();
        if !intx.is_empty() {
            let _ = writeln!(out, "    INTx INTIDs {}", intx.join(", "));
        }
    }
    out
}
