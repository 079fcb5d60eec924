//! Debian arm64 packages, fetched without touching the host's apt setup:
//! apt runs for arm64 with its own lists and cache directories and no dpkg
//! status, under the cache directory (`$CELLBLOCK_CACHE`, else
//! `~/.cache/cellblock`, as for `dt-cellgen fetch-debian-dtbs`; never the
//! repository).
//!
//! Downloaded `.deb` files stay in the cache (`debs/`, or `deb/` where
//! `dt-cellgen fetch-debian-dtbs` puts them), so the kernel package feeds
//! both the DTB tests and the Linux root cell from one download. The lists
//! are fetched once; a download that fails with them (a package superseded
//! since) refreshes them and tries again.

use crate::util::{output, run, Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache directory; see the module doc.
pub fn cache_dir() -> Result<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("CELLBLOCK_CACHE") {
        return Ok(dir);
    }
    env("HOME")
        .map(|h| h.join(".cache").join("cellblock"))
        .ok_or_else(|| "set HOME or CELLBLOCK_CACHE for the download cache".into())
}

/// apt-get for arm64 with private state under the cache directory.
pub struct Apt {
    opts: Vec<String>,
    lists: PathBuf,
    /// Where downloads go.
    debs: PathBuf,
    /// Where earlier downloads may be (ours first).
    deb_dirs: Vec<PathBuf>,
}

impl Apt {
    pub fn new(cache: &Path) -> Result<Apt> {
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
        Ok(Apt {
            opts,
            lists,
            deb_dirs: vec![debs.clone(), cache.join("deb")],
            debs,
        })
    }

    /// `apt-get update` into the private lists.
    pub fn update(&self) -> Result {
        run(Command::new("apt-get")
            .args(&self.opts)
            .args(["-q", "update"]))
    }

    /// Updates the lists unless an earlier run fetched them.
    fn ensure_lists(&self) -> Result {
        let have = fs::read_dir(&self.lists).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        });
        if have {
            Ok(())
        } else {
            self.update()
        }
    }

    /// A `.deb` of `package` already in the cache.
    pub fn cached(&self, package: &str) -> Option<PathBuf> {
        let prefix = format!("{package}_");
        self.deb_dirs.iter().find_map(|dir| {
            let mut found: Vec<PathBuf> = fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with("_arm64.deb"))
                })
                .collect();
            found.sort();
            found.pop()
        })
    }

    /// The `.deb` of `package` (arm64): from the cache, else downloaded.
    pub fn download(&self, package: &str) -> Result<PathBuf> {
        if let Some(deb) = self.cached(package) {
            return Ok(deb);
        }
        self.ensure_lists()?;
        let fetch = || {
            run(Command::new("apt-get")
                .args(&self.opts)
                .args(["-q", "download", package])
                .current_dir(&self.debs))
        };
        if fetch().is_err() {
            println!("xtask: refreshing the arm64 package lists and trying again");
            self.update()?;
            fetch()?;
        }
        self.cached(package)
            .ok_or_else(|| Error(format!("apt-get download left no {package}_*_arm64.deb")))
    }
}

/// Unpacks `deb` into a fresh directory `dir` (`dpkg-deb -x`).
pub fn extract(deb: &Path, dir: &Path) -> Result {
    let _ = fs::remove_dir_all(dir);
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_debs_are_found_in_either_directory() {
        let cache = std::env::temp_dir().join(format!("xtask-apt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&cache);
        let apt = Apt::new(&cache).unwrap();
        assert_eq!(apt.cached("busybox-static"), None);
        fs::create_dir_all(cache.join("deb")).unwrap();
        let theirs = cache.join("deb/linux-image-6.1.0-5-arm64_6.1.1-1_arm64.deb");
        fs::write(&theirs, b"").unwrap();
        let ours = cache.join("debs/busybox-static_1%3a1.35.0-4_arm64.deb");
        fs::write(&ours, b"").unwrap();
        fs::write(cache.join("debs/busybox_1%3a1.35.0-4_arm64.deb"), b"").unwrap();
        assert_eq!(apt.cached("linux-image-6.1.0-5-arm64"), Some(theirs));
        assert_eq!(apt.cached("busybox-static"), Some(ours));
        assert_eq!(apt.cached("linux-image-6.1.0-50-arm64"), None);
        fs::remove_dir_all(&cache).unwrap();
    }
}
