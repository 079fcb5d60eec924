//! `cargo xtask fuzz`: runs a `cargo fuzz` target for a bounded time (not in CI).
//!
//! The targets live in `dt-cellgen/fuzz/` (outside the workspace, as
//! cargo-fuzz expects). cargo-fuzz needs a nightly toolchain; both are
//! installed when missing. Debian's arm64 DTBs seed the corpus, so the
//! fuzzer starts from real device trees rather than from nothing.

use crate::dtbs::fetch_debian_dtbs;
use crate::util::{output, root, run, Context, Error, Result};
use std::fs;
use std::process::Command;

const FUZZ_DIR: &str = "dt-cellgen/fuzz";

pub fn fuzz(target: &str, seconds: u32) -> Result {
    let toolchain = ["run", "nightly", "cargo"];
    if output(Command::new("rustup").args(toolchain).arg("--version")).is_none() {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_none() {
        run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))?;
    }
    let targets = fuzz_targets()?;
    if !targets.iter().any(|t| t == target) {
        return Err(Error(format!(
            "no fuzz target `{target}` in {FUZZ_DIR} (there are: {})",
            targets.join(", ")
        )));
    }
    // libFuzzer writes new inputs to the first corpus directory and only
    // reads the others.
    let corpus = root().join(FUZZ_DIR).join("corpus").join(target);
    fs::create_dir_all(&corpus).context(|| format!("cannot create {}", corpus.display()))?;
    let (_, seeds) = fetch_debian_dtbs()?;
    run(Command::new("rustup")
        .args(toolchain)
        .args(["fuzz", "run", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .current_dir(root().join(FUZZ_DIR)))
}

/// The `[[bin]]` names in the fuzz crate's `fuzz_targets/`.
fn fuzz_targets() -> Result<Vec<String>> {
    let dir = root().join(FUZZ_DIR).join("fuzz_targets");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}
