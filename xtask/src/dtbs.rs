//! The device trees that Debian's arm64 kernel package ships, for
//! dt-cellgen's real-board tests.
//!
//! The package is fetched with apt-get for arm64 without touching the host's
//! apt configuration (own lists and cache directories, no dpkg status), then
//! unpacked with `dpkg-deb -x` into a cache outside the repository:
//! `$CELLBLOCK_CACHE`, else `$XDG_CACHE_HOME/cellblock`, else
//! `~/.cache/cellblock`. A second run reuses the unpacked tree.

use crate::util::{output, run, Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that tells the tests where the DTBs are.
pub const DTBS_ENV: &str = "CELLBLOCK_DEBIAN_DTBS";
/// Debian 12's kernel series; its package names are `linux-image-6.1.0-NN-arm64`.
const PACKAGE_PREFIX: &str = "linux-image-6.1.0-";
const PACKAGE_SUFFIX: &str = "-arm64";

/// Makes the DTBs available and returns `(DTBS_ENV, directory)` for the
/// `cargo test` run: the directory is `usr/lib/linux-image-*/` of the
/// unpacked package, holding `vendor/board.dtb` files. An already set
/// `CELLBLOCK_DEBIAN_DTBS` naming a directory is used as it is.
pub fn fetch_debian_dtbs() -> Result<(&'static str, PathBuf)> {
    if let Some(dir) = std::env::var_os(DTBS_ENV) {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            return Ok((DTBS_ENV, dir));
        }
        return Err(Error(format!(
            "{DTBS_ENV}={} is not a directory",
            dir.display()
        )));
    }
    let cache = cache_dir()?;
    let unpacked = cache.join("debian-dtbs");
    if let Some(dir) = dtb_dir(&unpacked) {
        println!("xtask: Debian DTBs (cached): {}", dir.display());
        return Ok((DTBS_ENV, dir));
    }

    println!("xtask: fetching Debian's arm64 kernel package for its DTBs (once)");
    let lists = cache.join("apt").join("lists");
    let apt_cache = cache.join("apt").join("cache");
    let debs = cache.join("debs");
    for d in [
        lists.join("partial"),
        apt_cache.join("archives").join("partial"),
        debs.clone(),
    ] {
        fs::create_dir_all(&d).context(|| format!("cannot create {}", d.display()))?;
    }
    let mut opts = vec![
        "-oAPT::Architecture=arm64".to_owned(),
        "-oAPT::Architectures=arm64".to_owned(),
        format!("-oDir::State::Lists={}", lists.display()),
        format!("-oDir::Cache={}", apt_cache.display()),
        "-oDir::State::status=/dev/null".to_owned(),
    ];
    if output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0") {
        // Our cache is root's; apt's `_apt` download user could not write it.
        opts.push("-oAPT::Sandbox::User=root".to_owned());
    }
    run(Command::new("apt-get").args(&opts).args(["-q", "update"]))?;
    let names = output(
        Command::new("apt-cache")
            .args(&opts)
            .args(["pkgnames", PACKAGE_PREFIX]),
    )
    .ok_or("`apt-cache pkgnames` failed")?;
    let package = newest_kernel_package(&names).ok_or_else(|| {
        Error(format!(
            "no {PACKAGE_PREFIX}NN{PACKAGE_SUFFIX} package in the apt sources (Debian 12 main)"
        ))
    })?;
    run(Command::new("apt-get")
        .args(&opts)
        .args(["-q", "download", &package])
        .current_dir(&debs))?;
    let deb = fs::read_dir(&debs)
        .context(|| format!("cannot read {}", debs.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .ok_or_else(|| Error(format!("apt-get download left no {package}_*.deb")))?;
    let tmp = cache.join("debian-dtbs.tmp");
    let _ = fs::remove_dir_all(&tmp);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))?;
    // Keep only usr/lib/linux-image-*/ (the DTBs), not the kernel and modules.
    let found = dtb_dir(&tmp)
        .ok_or_else(|| Error(format!("{package} holds no usr/lib/linux-image-*/ DTBs")))?;
    let name = found.file_name().ok_or("DTB directory without a name")?;
    let lib = unpacked.join("usr").join("lib");
    let _ = fs::remove_dir_all(&unpacked);
    fs::create_dir_all(&lib).context(|| format!("cannot create {}", lib.display()))?;
    let dir = lib.join(name);
    fs::rename(&found, &dir).context(|| format!("cannot move {}", found.display()))?;
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_file(&deb);
    println!("xtask: Debian DTBs: {}", dir.display());
    Ok((DTBS_ENV, dir))
}

fn cache_dir() -> Result<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("CELLBLOCK_CACHE") {
        return Ok(dir);
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return Ok(dir.join("cellblock"));
    }
    env("HOME")
        .map(|h| h.join(".cache").join("cellblock"))
        .ok_or_else(|| "set HOME or CELLBLOCK_CACHE for the DTB cache".into())
}

/// The newest `linux-image-6.1.0-*-arm64/` under `root/usr/lib` that holds a DTB.
fn dtb_dir(root: &Path) -> Option<PathBuf> {
    let lib = root.join("usr").join("lib");
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir(lib)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let abi = kernel_abi(name.strip_prefix("linux-image-")?)?;
            Some((abi, e.path()))
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .map(|(_, d)| d)
        .find(|d| has_dtb(d, 2))
}

fn has_dtb(dir: &Path, depth: u32) -> bool {
    fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                depth > 0 && has_dtb(&p, depth - 1)
            } else {
                p.extension().is_some_and(|x| x == "dtb")
            }
        })
    })
}

/// `NN` of "6.1.0-NN-arm64".
fn kernel_abi(version: &str) -> Option<u32> {
    version
        .strip_prefix(&PACKAGE_PREFIX["linux-image-".len()..])?
        .strip_suffix(PACKAGE_SUFFIX)?
        .parse()
        .ok()
}

/// The package with the highest ABI number among `apt-cache pkgnames` output.
fn newest_kernel_package(names: &str) -> Option<String> {
    names
        .lines()
        .map(str::trim)
        .filter_map(|n| Some((kernel_abi(n.strip_prefix("linux-image-")?)?, n)))
        .max()
        .map(|(_, n)| n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_signed_6_1_image() {
        let names = "linux-image-6.1.0-9-arm64\nlinux-image-6.1.0-27-arm64\n\
                     linux-image-6.1.0-27-arm64-unsigned\nlinux-image-6.1.0-30-rt-arm64\n\
                     linux-image-6.1.0-28-cloud-arm64\nlinux-image-6.1.0-10-arm64\n";
        assert_eq!(
            newest_kernel_package(names).as_deref(),
            Some("linux-image-6.1.0-27-arm64")
        );
        assert_eq!(newest_kernel_package("linux-image-arm64\n"), None);
    }

    #[test]
    fn finds_the_dtb_directory_of_an_unpacked_package() {
        let root = std::env::temp_dir().join(format!("xtask-dtbs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let old = root.join("usr/lib/linux-image-6.1.0-9-arm64/arm");
        let new = root.join("usr/lib/linux-image-6.1.0-12-arm64/hisilicon");
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(&new).unwrap();
        assert_eq!(dtb_dir(&root), None);
        fs::write(old.join("a.dtb"), b"").unwrap();
        assert_eq!(dtb_dir(&root), old.parent().map(Path::to_path_buf));
        fs::write(new.join("hi6220-hikey.dtb"), b"").unwrap();
        assert_eq!(dtb_dir(&root), new.parent().map(Path::to_path_buf));
        fs::remove_dir_all(&root).unwrap();
    }
}
