//! `cargo xtask bench latency`: gic-demo's timer jitter bare and in a cell.
//!
//! Both runs use the same QEMU with `-icount shift=4,sleep=off`, a fixed
//! DTB (`dtb-randomness=off`) and a fixed RTC, so they are
//! instruction-deterministic: the virtual clock advances with the executed
//! instructions, not with the host's load. The bare run boots
//! `gic-demo.bin` at EL1 on one CPU; the cell run boots `boot-gicv3.img`
//! (hypervisor, root uart-demo, gic-demo cell on CPU 3). The root cell's
//! uart-demo prints the hypervisor's statistics for CPU 3
//! (`stats: cpu 3 entries T ...`), from which we get EL2 entries per tick.

use crate::build;
use crate::qemu::{complete_lines, LoggedQemu, Machine, Poll};
use crate::setup::Tools;
use crate::util::{out_dir, root, Result};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const TIMER: &str = "Timer fired, jitter:";
/// The gic-demo cell's CPU in `configs/cells/qemu-gic-demo.toml`.
const GIC_DEMO_CPU: u64 = 3;
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
/// After enough ticks, how long to wait for a second statistics line.
const STATS_GRACE: Duration = Duration::from_secs(60);
/// The EL2 image's crate; the workspace crates it depends on are counted too.
const EL2_CRATE: &str = "arch-aarch64";

pub fn latency(tools: &Tools, ticks: usize) -> Result {
    let _lock = crate::util::lock_outputs()?;
    build::build(tools)?;

    let bare_machine = Machine {
        gic: 3,
        virtualization: false,
        smp: 1,
        deterministic: true,
    };
    let cell_machine = Machine {
        deterministic: true,
        ..Machine::hypervisor(3)
    };
    println!(
        "xtask: bare: qemu-system-aarch64 {}",
        bare_machine.args().join(" ")
    );
    println!(
        "xtask: cell: qemu-system-aarch64 {}",
        cell_machine.args().join(" ")
    );

    let (bare, _) = collect(
        tools,
        "bench-bare",
        bare_machine,
        &out_dir().join("gic-demo.bin"),
        0,
        ticks,
    )?;
    let (cell, stats) = collect(
        tools,
        "bench-cell",
        cell_machine,
        &build::boot_image(3),
        1,
        ticks,
    )?;

    let bare = Summary::of(&bare);
    let cell = Summary::of(&cell);
    println!();
    println!("gic-demo timer jitter over {ticks} ticks (10 Hz, -icount shift=4):");
    println!("  {:<24} {:>10} {:>10}", "", "mean ns", "max ns");
    println!(
        "  {:<24} {:>10.0} {:>10}",
        "bare (EL1, 1 CPU)", bare.mean, bare.max
    );
    println!(
        "  {:<24} {:>10.0} {:>10}",
        "cell (boot-gicv3.img)", cell.mean, cell.max
    );
    println!(
        "  ratio cell/bare: mean {}, max {}",
        ratio(cell.mean, bare.mean),
        ratio(cell.max as f64, bare.max as f64)
    );
    match stats {
        Some(s) => println!(
            "  EL2 entries per timer tick on CPU {GIC_DEMO_CPU}: {:.2} ({} entries / {} ticks{})",
            s.entries as f64 / s.ticks as f64,
            s.entries,
            s.ticks,
            if s.approximate {
                ", ticks counted from uart1 between the two statistics lines"
            } else {
                ""
            }
        ),
        None => println!(
            "  EL2 entries per timer tick: n/a (no two `stats: cpu {GIC_DEMO_CPU} entries ...` lines on uart0)"
        ),
    }
    println!();
    println!("EL2 image code (lines of code as tokei counts them: no blank or comment lines; unit tests excluded):");
    let mut total = 0;
    for krate in el2_crates() {
        let n = count_code_lines(&root().join(&krate).join("src"));
        total += n;
        println!("  {krate:<14} {n:>6}");
    }
    println!("  {:<14} {total:>6}", "total");
    Ok(())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.3}x", a / b)
    } else {
        "n/a".to_owned()
    }
}

/// Entries and ticks between two statistics lines.
struct StatsDelta {
    entries: u64,
    ticks: u64,
    approximate: bool,
}

/// One `stats: cpu N key value key value ...` line.
#[derive(Debug, PartialEq)]
struct StatsLine {
    cpu: u64,
    fields: Vec<(String, u64)>,
}

impl StatsLine {
    fn parse(line: &str) -> Option<Self> {
        let rest = line.split_once("stats: cpu ")?.1;
        let mut words = rest.split_whitespace();
        let cpu = words.next()?.trim_end_matches([',', ':']).parse().ok()?;
        let words: Vec<&str> = words.collect();
        let fields = words
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((
                    k.trim_end_matches([':', '=']).to_owned(),
                    v.trim_end_matches(',').parse().ok()?,
                )),
                _ => None,
            })
            .collect();
        Some(StatsLine { cpu, fields })
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.fields.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
    }

    /// Timer ticks as the hypervisor counts them, if the line has them.
    fn ticks(&self) -> Option<u64> {
        self.get("ticks").or_else(|| self.get("virq"))
    }
}

/// Boots `kernel` and returns `ticks` jitter values from uart `uart` (after
/// the first, a warm-up), plus (for the cell run) the statistics delta.
fn collect(
    tools: &Tools,
    name: &str,
    machine: Machine,
    kernel: &Path,
    uart: usize,
    ticks: usize,
) -> Result<(Vec<i64>, Option<StatsDelta>)> {
    let t = Instant::now();
    let mut qemu = LoggedQemu::start(tools, name, machine, kernel)?;
    // uart1 timer-line count at the moment each stats line was first seen.
    let mut seen: Vec<(StatsLine, usize)> = Vec::new();
    let mut enough_at: Option<Instant> = None;
    let result = qemu.wait_for(RUN_TIMEOUT, &format!("{ticks} `{TIMER}` lines"), |logs| {
        let text = if uart == 0 { &logs.uart0 } else { &logs.uart1 };
        let jitters: Vec<i64> = complete_lines(text).filter_map(parse_jitter).collect();
        if uart == 1 {
            let stats = complete_lines(&logs.uart0)
                .filter_map(StatsLine::parse)
                .filter(|s| s.cpu == GIC_DEMO_CPU);
            for s in stats.skip(seen.len()) {
                seen.push((s, jitters.len()));
            }
        }
        // The first firing is a warm-up (gic-demo leaves it out of its
        // min/max too).
        if jitters.len() < ticks + 1 {
            return Poll::Pending;
        }
        let at = *enough_at.get_or_insert_with(Instant::now);
        if uart == 0 || seen.len() >= 2 || at.elapsed() >= STATS_GRACE {
            Poll::Done(jitters[1..=ticks].to_vec())
        } else {
            Poll::Pending
        }
    });
    qemu.stop();
    let jitters = match result {
        Ok(j) => j,
        Err(e) => {
            eprint!("{}", qemu.tails(20));
            return Err(e);
        }
    };
    qemu.remove_logs();
    println!(
        "xtask: {name}: {ticks} ticks in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok((jitters, stats_delta(&seen)))
}

/// Entries per tick between the first and the last statistics line.
fn stats_delta(seen: &[(StatsLine, usize)]) -> Option<StatsDelta> {
    let ((first, first_ticks), (last, last_ticks)) = (seen.first()?, seen.last()?);
    let entries = last.get("entries")?.checked_sub(first.get("entries")?)?;
    let (ticks, approximate) = match (first.ticks(), last.ticks()) {
        (Some(a), Some(b)) => (b.checked_sub(a)?, false),
        _ => ((last_ticks - first_ticks) as u64, true),
    };
    (ticks > 0).then_some(StatsDelta {
        entries,
        ticks,
        approximate,
    })
}

/// The jitter column of `Timer fired, jitter: %6ld ns, min: ..., max: ...`.
fn parse_jitter(line: &str) -> Option<i64> {
    let rest = line.split_once(TIMER)?.1.trim_start();
    rest.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .next()?
        .parse()
        .ok()
}

struct Summary {
    mean: f64,
    max: i64,
}

impl Summary {
    fn of(values: &[i64]) -> Self {
        let sum: i64 = values.iter().sum();
        Summary {
            mean: sum as f64 / values.len().max(1) as f64,
            max: values.iter().copied().max().unwrap_or(0),
        }
    }
}

/// The EL2 image's crate and the workspace crates among its normal
/// dependencies (a dependency whose name is a directory of the workspace
/// root with a `Cargo.toml`).
fn el2_crates() -> Vec<String> {
    let manifest =
        fs::read_to_string(root().join(EL2_CRATE).join("Cargo.toml")).unwrap_or_default();
    let mut crates = vec![EL2_CRATE.to_owned()];
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim_matches('"');
        if in_deps && !name.is_empty() && root().join(name).join("Cargo.toml").is_file() {
            crates.push(name.to_owned());
        }
    }
    crates
}

/// Non-blank lines of the `.rs` files under `dir`, leaving out `#[cfg(test)]`
/// modules (from the attribute to the module's closing brace at the same
/// indentation).
fn count_code_lines(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    let texts: Vec<(&Path, String)> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| Some((p.as_path(), fs::read_to_string(p).ok()?)))
        .collect();
    // Files that hold `#[cfg(test)] mod NAME;` modules are tests too.
    let test_files: Vec<String> = texts
        .iter()
        .flat_map(|(_, t)| test_module_files(t))
        .collect();
    let mut total = 0;
    for p in &paths {
        if p.is_dir() {
            total += count_code_lines(p);
        }
    }
    for (p, text) in &texts {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| test_files.contains(&n)) {
            continue;
        }
        total += count_source(text);
    }
    total
}

/// `NAME.rs` for each `#[cfg(test)] mod NAME;` in `text`.
fn test_module_files(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| w[1].strip_prefix("mod ")?.strip_suffix(';'))
        .map(|m| format!("{m}.rs"))
        .collect()
}

fn count_source(text: &str) -> usize {
    let mut count = 0;
    let mut skip_until: Option<String> = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(end) = &skip_until {
            if line == end {
                skip_until = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.ends_with('{'))
        {
            let indent = &line[..line.len() - trimmed.len()];
            skip_until = Some(format!("{indent}}}"));
            lines.next();
            continue;
        }
        if !trimmed.is_empty() && !trimmed.starts_with("//") {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_jitter_column() {
        let line = "Timer fired, jitter:    832 ns, min:    416 ns, max:   2400 ns";
        assert_eq!(parse_jitter(line), Some(832));
        assert_eq!(
            parse_jitter("Timer fired, jitter:  -16 ns, min: 0"),
            Some(-16)
        );
        assert_eq!(parse_jitter("Hello 3 from cell!"), None);
    }

    #[test]
    fn parses_stats_lines() {
        let s = StatsLine::parse("stats: cpu 3 entries 1234 virq 100 mmio 7").expect("parses");
        assert_eq!(s.cpu, 3);
        assert_eq!(s.get("entries"), Some(1234));
        assert_eq!(s.ticks(), Some(100));
        assert_eq!(StatsLine::parse("Hello 10 from cell!"), None);
    }

    #[test]
    fn entries_per_tick_from_two_lines() {
        let a = StatsLine::parse("stats: cpu 3 entries 100 virq 10").unwrap();
        let b = StatsLine::parse("stats: cpu 3 entries 400 virq 110").unwrap();
        let d = stats_delta(&[(a, 0), (b, 7)]).unwrap();
        assert_eq!((d.entries, d.ticks, d.approximate), (300, 100, false));
        let a = StatsLine::parse("stats: cpu 3 entries 100").unwrap();
        let b = StatsLine::parse("stats: cpu 3 entries 130").unwrap();
        let d = stats_delta(&[(a, 5), (b, 15)]).unwrap();
        assert_eq!((d.entries, d.ticks, d.approximate), (30, 10, true));
    }

    #[test]
    fn test_modules_are_not_counted() {
        let src = "fn a() {}\n\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\nfn b() {}\n";
        assert_eq!(count_source(src), 2);
    }

    #[test]
    fn comments_and_test_module_files_are_not_code() {
        assert_eq!(count_source("/// doc\n// note\nfn f() {}\n"), 1);
        assert_eq!(
            test_module_files("mod a;\n#[cfg(test)]\nmod fake;\n#[cfg(test)]\nmod tests {\n}\n"),
            vec!["fake.rs".to_string()]
        );
    }
}
