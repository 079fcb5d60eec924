//! Fetches the DTBs of Debian's arm64 kernel package for the all-boards test,
//! without touching the host's apt configuration: apt runs with its own
//! lists and cache under the cache directory and the arm64 architecture.
//!
//! `dt-cellgen fetch-debian-dtbs` prints the directory; the test reads it
//! from `CELLBLOCK_DEBIAN_DTBS`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Env var naming the directory that holds the extracted DTBs.
pub const DTBS_ENV: &str = "CELLBLOCK_DEBIAN_DTBS";
/// Env var naming the cache directory (default `~/.cache/cellblock`).
pub const CACHE_ENV: &str = "CELLBLOCK_CACHE";

/// `$CELLBLOCK_CACHE`, else `$HOME/.cache/cellblock`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache").join("cellblock")
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn apt_options(cache: &Path) -> Vec<String> {
    let apt = cache.join("apt");
    vec![
        "-oAPT::Architecture=arm64".into(),
        "-oAPT::Architectures=arm64".into(),
        format!("-oDir::State::Lists={}", apt.join("lists").display()),
        format!("-oDir::Cache={}", apt.join("cache").display()),
        "-oDir::State::status=/dev/null".into(),
        "-oDebug::NoLocking=1".into(),
    ]
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(|e| io(Path::new(what), e))?;
    if !out.status.success() {
        return Err(io(
            Path::new(what),
            format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `usr/lib/linux-image-*` directory under `root`, if it holds DTBs.
fn dtb_dir(root: &Path) -> Option<PathBuf> {
    let lib = root.join("usr").join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("linux-image-"))
    })
}

/// The ABI number N of the newest `linux-image-6.1.0-N-arm64` apt knows.
fn newest_61(cache: &Path) -> Result<String> {
    let out = run(
        Command::new("apt-cache").args(apt_options(cache)).args([
            "search",
            "--names-only",
            r"^linux-image-6\.1\.0-[0-9]+-arm64$",
        ]),
        "apt-cache search",
    )?;
    let best = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| {
            let n: u32 = name
                .strip_prefix("linux-image-6.1.0-")?
                .strip_suffix("-arm64")?
                .parse()
                .ok()?;
            Some((n, name.to_string()))
        })
        .max();
    best.map(|(_, name)| name).ok_or_else(|| Error::Io {
        path: "apt-cache search".into(),
        reason: "no linux-image-6.1.0-*-arm64 package known (is a bookworm source configured?)"
            .into(),
    })
}

/// Downloads (once) the newest Debian 6.1 arm64 kernel package into
/// `cache` and returns the directory of its DTBs
/// (`…/usr/lib/linux-image-<version>/`). Needs `apt-get`, `apt-cache` and
/// `dpkg-deb`; reuses an earlier extraction when one exists.
pub fn fetch_dtbs(cache: &Path) -> Result<PathBuf> {
    let extract = cache.join("debian-dtbs");
    if let Some(d) = dtb_dir(&extract) {
        return Ok(d);
    }
    for d in [
        cache.join("apt/lists/partial"),
        cache.join("apt/cache/archives/partial"),
        cache.join("deb"),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| io(&d, e))?;
    }
    run(
        Command::new("apt-get")
            .args(apt_options(cache))
            .args(["-q", "update"]),
        "apt-get update",
    )?;
    let pkg = newest_61(cache)?;
    let debs = cache.join("deb");
    run(
        Command::new("apt-get")
            .current_dir(&debs)
            .args(apt_options(cache))
            .args(["-q", "download", &pkg]),
        "apt-get download",
    )?;
    let deb = std::fs::read_dir(&debs)
        .map_err(|e| io(&debs, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
        })
        .ok_or_else(|| io(&debs, format!("{pkg} was not downloaded")))?;
    let tmp = cache.join("debian-dtbs.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp),
        "dpkg-deb -x",
    )?;
    let _ = std::fs::remove_dir_all(&extract);
    std::fs::rename(&tmp, &extract).map_err(|e| io(&extract, e))?;
    dtb_dir(&extract).ok_or_else(|| io(&extract, "no usr/lib/linux-image-* in the package"))
}

/// Every `*.dtb` under `dir`, sorted.
pub fn list_dtbs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let p = e.map_err(|e| io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "dtb") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
