//! The device trees that Debian's arm64 kernel package ships, for
//! dt-cellgen's real-board tests.
//!
//! dt-cellgen owns the fetching (`dt-cellgen fetch-debian-dtbs`: apt-get for
//! arm64 with its own lists and cache, `dpkg-deb -x`, cached under
//! `$CELLBLOCK_CACHE` or `~/.cache/cellblock`, outside the repository); this
//! hook runs it and hands the directory to the `cargo test` run.

use crate::util::{cargo, display, Context, Error, Result};
use std::path::PathBuf;

/// The environment variable that tells the tests where the DTBs are.
pub const DTBS_ENV: &str = "CELLBLOCK_DEBIAN_DTBS";

/// Makes the DTBs available and returns `(DTBS_ENV, directory)` for the
/// `cargo test` run: the directory is `usr/lib/linux-image-*/` of the
/// unpacked package, holding `vendor/board.dtb` files. An already set
/// `CELLBLOCK_DEBIAN_DTBS` naming a directory is used as it is.
pub fn fetch_debian_dtbs() -> Result<(&'static str, PathBuf)> {
    if let Some(dir) = std::env::var_os(DTBS_ENV) {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            println!("xtask: {DTBS_ENV}={} (from the environment)", dir.display());
            return Ok((DTBS_ENV, dir));
        }
        return Err(Error(format!(
            "{DTBS_ENV}={} is not a directory",
            dir.display()
        )));
    }
    let mut cmd = cargo();
    cmd.args(["run", "-q", "-p", "dt-cellgen", "--", "fetch-debian-dtbs"]);
    println!("$ {}", display(&cmd));
    let out = cmd
        .output()
        .context(|| format!("cannot run {}", display(&cmd)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error(format!(
            "`{}` failed ({}): {}{}",
            display(&cmd),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dir = dir_from_output(&stdout).ok_or_else(|| {
        Error(format!(
            "`{}` printed no DTB directory: {}",
            display(&cmd),
            stdout.trim()
        ))
    })?;
    println!("xtask: {DTBS_ENV}={}", dir.display());
    Ok((DTBS_ENV, dir))
}

/// The directory the command printed: its last non-empty line, which must
/// name an existing directory.
fn dir_from_output(stdout: &str) -> Option<PathBuf> {
    let last = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let dir = PathBuf::from(last);
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_last_line_if_it_is_a_directory() {
        let tmp = std::env::temp_dir();
        let out = format!("fetching...\n{}\n\n", tmp.display());
        assert_eq!(dir_from_output(&out), Some(tmp));
        assert_eq!(dir_from_output("/nonexistent/cellblock-dtbs\n"), None);
        assert_eq!(dir_from_output(""), None);
    }
}
