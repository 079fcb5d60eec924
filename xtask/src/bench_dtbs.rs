//! `cargo xtask bench dtbs`: `dt-cellgen system` against `dtc -I dtb -O dts`
//! over every DTB of Debian's arm64 kernel package.
//!
//! The DTBs are fetched as the tests fetch them (`dt-cellgen
//! fetch-debian-dtbs`, cached). dt-cellgen is built in release mode. Each
//! tool runs once per DTB as its own process, as a user runs it, writing its
//! output below `target/bench-dtbs/`; one pass over the whole set is timed
//! (wall clock), the two tools' passes alternate, and the best of `runs`
//! passes of each is compared: over all DTBs (most are refused early, e.g.
//! for a console UART the hypervisor has no driver for), then over the
//! DTBs that yield a config. The ok/reason counts come from the same
//! generation through dt-cellgen's library; its ok count must equal the
//! binary's successful exits.

use crate::dtbs::fetch_debian_dtbs;
use crate::util::{cargo, display, root, run, Context, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn dtbs(runs: u32) -> Result {
    let (_, dir) = fetch_debian_dtbs()?;
    run(cargo().args(["build", "--release", "-q", "-p", "dt-cellgen"]))?;
    let generator = root().join("target/release/dt-cellgen");
    let dtbs = dt_cellgen::debian::list_dtbs(&dir).map_err(|e| Error(e.to_string()))?;
    if dtbs.is_empty() {
        return Err(Error(format!("no DTBs in {}", dir.display())));
    }
    let out = root().join("target/bench-dtbs");
    std::fs::create_dir_all(&out).context(|| format!("cannot create {}", out.display()))?;
    // Relative to the workspace root, where both run.
    let toml = "target/bench-dtbs/system.toml";
    let dts = "target/bench-dtbs/board.dts";
    let gen_cmd = |dtb: &Path| {
        let mut c = Command::new(&generator);
        c.current_dir(root())
            .arg("system")
            .arg(dtb)
            .args(["-o", toml]);
        c
    };
    let dtc_cmd = |dtb: &Path| {
        let mut c = Command::new("dtc");
        c.current_dir(root())
            .args(["-I", "dtb", "-O", "dts", "-o", dts])
            .arg(dtb);
        c
    };
    println!("xtask: {} DTBs in {}", dtbs.len(), dir.display());
    println!(
        "xtask: per DTB: $ {}",
        display(&gen_cmd(Path::new("X.dtb")))
    );
    println!(
        "xtask: per DTB: $ {}",
        display(&dtc_cmd(Path::new("X.dtb")))
    );

    let (ok, reasons) = outcomes(&dtbs)?;
    let ok_dtbs: Vec<PathBuf> = dtbs
        .iter()
        .filter(|p| !reasons.values().flatten().any(|r| r == *p))
        .cloned()
        .collect();

    let runs = runs.max(1);
    let n = dtbs.len();
    let (gen_ok, dtc_ok) = compare(&format!("all {n} DTBs"), &dtbs, runs, &gen_cmd, &dtc_cmd)?;
    println!("exit 0: dt-cellgen {gen_ok}/{n}, dtc {dtc_ok}/{n}");
    println!("dt-cellgen system: ok {ok}, refused {}:", n - ok);
    for (reason, list) in &reasons {
        println!(
            "  {:>4}  {reason}   e.g. {}",
            list.len(),
            rel_to(&dir, &list[0])
        );
    }
    if ok != gen_ok {
        return Err(Error(format!(
            "the library generated {ok} configs but the binary exited 0 for {gen_ok}"
        )));
    }
    compare(
        &format!("the {ok} DTBs that yield a config"),
        &ok_dtbs,
        runs,
        &gen_cmd,
        &dtc_cmd,
    )?;
    Ok(())
}

/// Alternating timed passes of both tools over `dtbs`; prints each run and
/// the best of each tool; returns how many DTBs each handled with exit 0.
fn compare(
    what: &str,
    dtbs: &[PathBuf],
    runs: u32,
    gen_cmd: &dyn Fn(&Path) -> Command,
    dtc_cmd: &dyn Fn(&Path) -> Command,
) -> Result<(usize, usize)> {
    println!("{what}:");
    let mut best: Option<(Duration, Duration)> = None;
    let mut oks = (0, 0);
    for i in 1..=runs {
        let (gen_time, g) = pass(dtbs, gen_cmd)?;
        let (dtc_time, d) = pass(dtbs, dtc_cmd)?;
        oks = (g, d);
        println!(
            "  run {i}: dt-cellgen system {:.3} s, dtc {:.3} s, ratio {:.2}",
            gen_time.as_secs_f64(),
            dtc_time.as_secs_f64(),
            gen_time.as_secs_f64() / dtc_time.as_secs_f64()
        );
        best = Some(match best {
            None => (gen_time, dtc_time),
            Some((bg, bd)) => (bg.min(gen_time), bd.min(dtc_time)),
        });
    }
    let (gen_time, dtc_time) = best.unwrap_or_default();
    let n = dtbs.len().max(1) as f64;
    println!(
        "  best of {runs}: dt-cellgen system {:.3} s ({:.2} ms/DTB), dtc -I dtb -O dts {:.3} s ({:.2} ms/DTB), ratio dt-cellgen/dtc {:.2}",
        gen_time.as_secs_f64(),
        gen_time.as_secs_f64() * 1e3 / n,
        dtc_time.as_secs_f64(),
        dtc_time.as_secs_f64() * 1e3 / n,
        gen_time.as_secs_f64() / dtc_time.as_secs_f64()
    );
    Ok(oks)
}

/// Runs `cmd` for every DTB, one process at a time; the wall time and how
/// many exited 0.
fn pass(dtbs: &[PathBuf], cmd: &dyn Fn(&Path) -> Command) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut ok = 0;
    for dtb in dtbs {
        let mut c = cmd(dtb);
        let status = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context(|| format!("cannot run {}", display(&c)))?;
        ok += usize::from(status.success());
    }
    Ok((start.elapsed(), ok))
}

/// Refused DTBs by `dt_cellgen::Error::reason`.
type Reasons = BTreeMap<&'static str, Vec<PathBuf>>;

/// What `dt-cellgen system` does with each DTB, through the library (not
/// timed: xtask is a debug build): the number of configs, and the refused
/// DTBs by reason.
fn outcomes(dtbs: &[PathBuf]) -> Result<(usize, Reasons)> {
    let opts = dt_cellgen::system::SystemOptions::default();
    let mut ok = 0;
    let mut reasons = Reasons::new();
    for path in dtbs {
        let blob = std::fs::read(path).context(|| format!("cannot read {}", path.display()))?;
        match dt_cellgen::system_from_dtb(&blob, &opts, false) {
            Ok(_) => ok += 1,
            Err(e) => reasons.entry(e.reason()).or_default().push(path.clone()),
        }
    }
    Ok((ok, reasons))
}

fn rel_to(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}
