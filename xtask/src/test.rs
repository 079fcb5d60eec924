//! `cargo xtask test`: every test, in the order CI runs them.
//!
//! `cargo fmt --check`; clippy for the host crates and for the bare-metal
//! crates; the host tests (with Debian's DTBs for dt-cellgen); then the QEMU
//! scenarios, one boot each, on GICv3 and GICv2.

use crate::build::{self, boot_image, probe_image};
use crate::dtbs::fetch_debian_dtbs;
use crate::image::corrupt_system_config;
use crate::qemu::{complete_lines, count_lines, LoggedQemu, Logs, Machine, Poll};
use crate::setup::Tools;
use crate::util::{cargo, out_dir, rel, run, Context, Error, Result};
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

pub struct Options {
    pub qemu_only: bool,
    pub scenario: Option<String>,
}

/// Console markers the scenarios look for.
const HELLO_1: &str = "Hello 1 from cell!";
const HELLO: &str = "Hello";
const TIMER: &str = "Timer fired, jitter:";
const TIMER_ANY: &str = "Timer fired";
const REFUSED: &str = "Cellblock: boot refused:";
const PROBE_FAILED: &str = "Cellblock: cell \"probe\" failed:";
const PROBE_STOPPED: &str = "Cellblock: cell \"probe\" stopped";

/// Time-out of one QEMU boot (TCG on a 2-core CI machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long nothing may start after a refused boot.
const QUIET_AFTER_REFUSAL: Duration = Duration::from_secs(5);
/// Lines of each log printed when a scenario fails.
const TAIL_LINES: usize = 25;

#[derive(Clone, Copy)]
enum Kind {
    /// gic-demo alone at EL1, no hypervisor: the benchmark's baseline runs.
    Bare,
    /// Root uart-demo + gic-demo cell: both run.
    Cells,
    /// Plus the probe cell: it fails, gic-demo keeps ticking.
    Probe,
    /// A boot image whose system config fails its CRC: refused, nothing runs.
    BadCrc,
}

struct Scenario {
    name: String,
    gic: u32,
    kind: Kind,
}

fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    for gic in [3, 2] {
        for (prefix, kind) in [
            ("bare", Kind::Bare),
            ("cells", Kind::Cells),
            ("probe", Kind::Probe),
            ("badcrc", Kind::BadCrc),
        ] {
            all.push(Scenario {
                name: format!("{prefix}-gicv{gic}"),
                gic,
                kind,
            });
        }
    }
    all
}

pub fn run_all(tools: &Tools, opts: &Options) -> Result {
    let selected: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| opts.scenario.as_ref().is_none_or(|f| s.name.contains(f)))
        .collect();
    let linux: Vec<String> = crate::linux_test::names()
        .into_iter()
        .chain(crate::smmu_test::names())
        .chain(crate::linux_smmu_test::names())
        .chain(crate::linux_cell_test::names())
        .chain(crate::ivshmem_test::names())
        .filter(|n| opts.scenario.as_ref().is_none_or(|f| n.contains(f)))
        .collect();
    if selected.is_empty() && linux.is_empty() {
        return Err("no QEMU scenario matches --scenario".into());
    }
    let started = Instant::now();
    let mut passed = 0usize;
    let mut failed: Vec<String> = Vec::new();
    let mut record = |name: &str, result: Result| match result {
        Ok(()) => passed += 1,
        Err(e) => {
            eprintln!("xtask: {name} failed: {e}");
            failed.push(name.to_owned());
        }
    };

    if !opts.qemu_only {
        record("fmt", run(cargo().args(["fmt", "--all", "--", "--check"])));
        record(
            "clippy (host)",
            run(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"])).and_then(|()| {
                run(cargo().args([
                    "clippy",
                    "-p",
                    "arch-aarch64",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        );
        record(
            "clippy (bare metal)",
            run(cargo().args([
                "clippy",
                "-p",
                "demos",
                "--target",
                build::BARE_TARGET,
                "--",
                "-D",
                "warnings",
            ]))
            .and_then(|()| {
                run(cargo().args([
                    "clippy",
                    "-p",
                    "arch-aarch64",
                    "--target",
                    build::HV_TARGET,
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        );
        // --no-fail-fast: one failing crate does not hide the others' results.
        record(
            "host tests",
            fetch_debian_dtbs().and_then(|(var, dir)| {
                run(cargo().args(["test", "--no-fail-fast"]).env(var, &dir))
            }),
        );
        record(
            "host tests (arch-aarch64 lib)",
            run(cargo().args(["test", "--no-fail-fast", "-p", "arch-aarch64", "--lib"])),
        );
    }

    let _lock = crate::util::lock_outputs()?;
    match build::build(tools) {
        Err(e) => {
            record("build", Err(e));
            for name in selected.iter().map(|s| &s.name).chain(&linux) {
                println!("FAIL {name} (not run: the build failed)");
                record(name, Err("not run".into()));
            }
        }
        Ok(()) => {
            println!("xtask: {} QEMU scenarios", selected.len() + linux.len());
            let runs = selected
                .iter()
                .map(|sc| (&sc.name, Some(sc)))
                .chain(linux.iter().map(|n| (n, None)));
            for (name, sc) in runs {
                let t = Instant::now();
                let result = match sc {
                    Some(sc) => run_scenario(tools, sc),
                    None if crate::smmu_test::names().contains(name) => {
                        crate::smmu_test::run(tools, name)
                    }
                    None if crate::linux_smmu_test::names().contains(name) => {
                        crate::linux_smmu_test::run(tools, name)
                    }
                    None if crate::linux_cell_test::names().contains(name) => {
                        crate::linux_cell_test::run(tools, name)
                    }
                    None if crate::ivshmem_test::names().contains(name) => {
                        crate::ivshmem_test::run(tools, name)
                    }
                    None => crate::linux_test::run(tools, name),
                };
                let secs = t.elapsed().as_secs_f64();
                match &result {
                    Ok(()) => println!("PASS {name} ({secs:.1} s)"),
                    Err(e) => println!("FAIL {name} ({secs:.1} s): {e}"),
                }
                record(name, result);
            }
        }
    }

    println!(
        "xtask test: done in {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", failed.join(", "))
        }
    );
    println!("summary: {passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error(format!("{} step(s) failed", failed.len())))
    }
}

fn run_scenario(tools: &Tools, sc: &Scenario) -> Result {
    let machine = match sc.kind {
        Kind::Bare => Machine {
            gic: sc.gic,
            virtualization: false,
            smp: 1,
            deterministic: false,
        },
        _ => Machine::hypervisor(sc.gic),
    };
    let kernel = match sc.kind {
        Kind::Bare => out_dir().join("gic-demo.bin"),
        Kind::Cells => boot_image(sc.gic),
        Kind::Probe => probe_image(sc.gic),
        Kind::BadCrc => {
            let bad = out_dir().join(format!("{}.img", sc.name));
            let mut data = fs::read(boot_image(sc.gic))
                .context(|| format!("cannot read {}", rel(&boot_image(sc.gic))))?;
            corrupt_system_config(&mut data)?;
            fs::write(&bad, data).context(|| format!("cannot write {}", rel(&bad)))?;
            bad
        }
    };
    let mut qemu = LoggedQemu::start(tools, &sc.name, machine, &kernel)?;
    let result = match sc.kind {
        Kind::Bare => bare(&mut qemu),
        Kind::Cells => cells(&mut qemu),
        Kind::Probe => probe(&mut qemu),
        Kind::BadCrc => bad_crc(&mut qemu),
    };
    qemu.conclude(result, TAIL_LINES)
}

/// A complete line on uart0 that means the boot went wrong, other than the
/// ones in `expected`.
fn unexpected_error(logs: &Logs, expected: &[&str]) -> Option<String> {
    complete_lines(&logs.uart0)
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            (l.contains(REFUSED) || lower.contains("panic") || l.contains("\" failed:"))
                && !expected.iter().any(|e| l.contains(e))
        })
        .map(|l| format!("unexpected on uart0: {l}"))
}

fn bare(qemu: &mut LoggedQemu) -> Result {
    qemu.wait_for(
        BOOT_TIMEOUT,
        &format!("20 `{TIMER}` lines on uart0"),
        |logs| {
            if count_lines(&logs.uart0, TIMER) >= 20 {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )
}

fn cells(qemu: &mut LoggedQemu) -> Result {
    qemu.wait_for(
        BOOT_TIMEOUT,
        &format!("`{HELLO_1}` on uart0 and 20 `{TIMER}` lines on uart1"),
        |logs| {
            if let Some(e) = unexpected_error(logs, &[]) {
                return Poll::Fail(e);
            }
            let ticks = complete_lines(&logs.uart1)
                .filter(|l| l.contains(TIMER))
                .count();
            if logs.uart0.contains(HELLO_1) && ticks >= 20 {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )
}

fn probe(qemu: &mut LoggedQemu) -> Result {
    let ticks_at_failure = qemu.wait_for(
        BOOT_TIMEOUT,
        &format!("`{PROBE_FAILED} ... IPA 0x..., ESR 0x...` on uart0"),
        |logs| {
            if let Some(e) = unexpected_error(logs, &[PROBE_FAILED]) {
                return Poll::Fail(e);
            }
            match complete_lines(&logs.uart0).find(|l| l.contains(PROBE_FAILED)) {
                Some(l) if l.contains("IPA 0x") && l.contains("ESR 0x") => {
                    Poll::Done(count_lines(&logs.uart1, TIMER))
                }
                Some(l) => Poll::Fail(format!("failure report lacks `IPA 0x`/`ESR 0x`: {l}")),
                None => Poll::Pending,
            }
        },
    )?;
    println!("  probe failed after {ticks_at_failure} gic-demo ticks; waiting for 10 more");
    qemu.wait_for(
        BOOT_TIMEOUT,
        &format!(
            "`{PROBE_STOPPED}` on uart0 and {} `{TIMER}` lines on uart1",
            ticks_at_failure + 10
        ),
        |logs| {
            if let Some(e) = unexpected_error(logs, &[PROBE_FAILED]) {
                return Poll::Fail(e);
            }
            let stopped = logs
                .uart0
                .split_once(PROBE_FAILED)
                .is_some_and(|(_, after)| after.contains(PROBE_STOPPED));
            let ticks = complete_lines(&logs.uart1)
                .filter(|l| l.contains(TIMER))
                .count();
            if stopped && ticks >= ticks_at_failure + 10 {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )
}

fn started_something(logs: &Logs) -> Option<&'static str> {
    if logs.uart0.contains(HELLO) {
        Some("`Hello` on uart0")
    } else if logs.uart0.contains(TIMER_ANY) || logs.uart1.contains(TIMER_ANY) {
        Some("`Timer fired`")
    } else {
        None
    }
}

fn bad_crc(qemu: &mut LoggedQemu) -> Result {
    qemu.wait_for(
        BOOT_TIMEOUT,
        &format!("`{REFUSED} ...checksum...` on uart0"),
        |logs| {
            if let Some(what) = started_something(logs) {
                return Poll::Fail(format!("a cell started despite the bad CRC: {what}"));
            }
            match complete_lines(&logs.uart0).find(|l| l.contains(REFUSED)) {
                Some(l) if l.to_ascii_lowercase().contains("checksum") => Poll::Done(()),
                Some(l) => Poll::Fail(format!("refusal does not name the checksum: {l}")),
                None => Poll::Pending,
            }
        },
    )?;
    let refused_at = Instant::now();
    while refused_at.elapsed() < QUIET_AFTER_REFUSAL {
        thread::sleep(Duration::from_millis(100));
    }
    match started_something(&qemu.logs()) {
        Some(what) => Err(Error(format!(
            "a cell started after the boot was refused: {what}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(uart0: &str, uart1: &str) -> Logs {
        Logs {
            uart0: uart0.to_owned(),
            uart1: uart1.to_owned(),
        }
    }

    #[test]
    fn eight_scenarios_gicv3_first() {
        let names: Vec<_> = scenarios().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "bare-gicv3",
                "cells-gicv3",
                "probe-gicv3",
                "badcrc-gicv3",
                "bare-gicv2",
                "cells-gicv2",
                "probe-gicv2",
                "badcrc-gicv2"
            ]
        );
    }

    #[test]
    fn partial_lines_are_not_counted() {
        let text = "Timer fired, jitter: 1\r\nTimer fired, jitter: 2\nTimer fi";
        assert_eq!(complete_lines(text).count(), 2);
        assert_eq!(complete_lines(text).next(), Some("Timer fired, jitter: 1"));
    }

    #[test]
    fn errors_on_uart0_are_spotted_unless_expected() {
        let failed =
            "Cellblock: cell \"probe\" failed: read at IPA 0x0, ESR 0x93c08007, PC 0x40200010\n";
        assert!(unexpected_error(&logs(failed, ""), &[PROBE_FAILED]).is_none());
        assert!(unexpected_error(&logs(failed, ""), &[]).is_some());
        let refused = "Cellblock: boot refused: system config: checksum mismatch\n";
        assert!(unexpected_error(&logs(refused, ""), &[]).is_some());
        assert!(unexpected_error(&logs("Cellblock: PANIC on CPU 1\n", ""), &[]).is_some());
        assert!(unexpected_error(&logs("Hello 1 from cell!\n", ""), &[]).is_none());
    }

    #[test]
    fn started_cells_are_seen_on_either_uart() {
        assert!(started_something(&logs("Cellblock: boot refused: checksum\n", "")).is_none());
        assert!(started_something(&logs("Hello 1 from cell!\n", "")).is_some());
        assert!(started_something(&logs("", "Timer fired, jitter: 5 ns")).is_some());
    }
}
