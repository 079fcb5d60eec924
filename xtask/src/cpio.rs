//! A writer for the "newc" cpio format, the one Linux unpacks as initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry: the ASCII header `070701` followed by thirteen 8-digit hex
//! fields (inode, mode, uid, gid, nlink, mtime, file size, dev major/minor,
//! rdev major/minor, name size including the NUL, check = 0), the name and
//! its NUL padded to 4 bytes, then the data padded to 4 bytes. The archive
//! ends with an entry named `TRAILER!!!`. Owners are root, times are 0, so
//! the same inputs give the same bytes.

use crate::util::{Error, Result};
use std::collections::BTreeSet;

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// A newc archive being built in memory. Parent directories are added
/// before their entries; a path may be added once.
#[derive(Default)]
pub struct Archive {
    out: Vec<u8>,
    next_ino: u32,
    paths: BTreeSet<String>,
}

impl Archive {
    pub fn new() -> Self {
        Archive {
            out: Vec::new(),
            next_ino: 1,
            paths: BTreeSet::new(),
        }
    }

    /// A directory (and its missing parents), mode e.g. 0o755.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result {
        let path = clean(path)?;
        if self.paths.contains(&path) {
            return Ok(());
        }
        self.parents(&path)?;
        self.entry(&path, S_IFDIR | (mode & 0o7777), 2, (0, 0), &[])
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result {
        let path = clean(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFREG | (mode & 0o7777), 1, (0, 0), data)
    }

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result {
        let path = clean(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result {
        let path = clean(path)?;
        self.parents(&path)?;
        self.entry(&path, S_IFCHR | (mode & 0o7777), 1, (major, minor), &[])
    }

    /// Whether `path` was added.
    pub fn contains(&self, path: &str) -> bool {
        clean(path).is_ok_and(|p| self.paths.contains(&p))
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(TRAILER, 0, 1, (0, 0), 0, 0);
        self.out
    }

    fn parents(&mut self, path: &str) -> Result {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            if !self.paths.contains(parent) {
                let parent = parent.to_owned();
                self.entry(&parent, S_IFDIR | 0o755, 2, (0, 0), &[])?;
            }
            at += i + 1;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result {
        let size = u32::try_from(data.len())
            .map_err(|_| Error(format!("initramfs: {path} is larger than 4 GiB")))?;
        if !self.paths.insert(path.to_owned()) {
            return Err(Error(format!("initramfs: {path} added twice")));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.header(path, mode, nlink, rdev, size, ino);
        self.out.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), size: u32, ino: u32) {
        let namesize = name.len() as u32 + 1;
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.out.extend_from_slice(MAGIC.as_bytes());
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

/// `path` without leading `/` or `./`; refuses empty, `.` and `..` parts.
fn clean(path: &str) -> Result<String> {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    let ok = !p.is_empty()
        && !p.ends_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !p.contains('\0');
    if ok {
        Ok(p.to_owned())
    } else {
        Err(Error(format!("initramfs: bad path \"{path}\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the archive back: (name, mode, rdev major, data) per entry.
    fn parse(mut a: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let total = a.len();
        loop {
            assert_eq!(&a[..6], b"070701");
            let field = |i: usize| {
                let s = std::str::from_utf8(&a[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap() as usize
            };
            let (mode, size, major, namesize) = (field(1), field(6), field(9), field(11));
            let name_end = 110 + namesize;
            let name = std::str::from_utf8(&a[110..name_end - 1])
                .unwrap()
                .to_owned();
            assert_eq!(a[name_end - 1], 0);
            let data_at = name_end.next_multiple_of(4);
            let data = a[data_at..data_at + size].to_vec();
            let next = (data_at + size).next_multiple_of(4);
            assert_eq!((total - a.len()) % 4, 0, "entries start 4-aligned");
            a = &a[next..];
            if name == TRAILER {
                assert!(a.is_empty());
                return out;
            }
            out.push((name, mode as u32, major as u32, data));
        }
    }

    #[test]
    fn entries_round_trip_with_parents_first() {
        let mut a = Archive::new();
        a.file("/usr/bin/cellblock", 0o755, b"ELF.").unwrap();
        a.symlink("bin/sh", "busybox").unwrap();
        a.char_dev("dev/console", 0o600, 5, 1).unwrap();
        a.dir("usr", 0o755).unwrap();
        a.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        assert!(a.contains("/usr/bin"));
        let entries = parse(&a.finish());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr",
                "usr/bin",
                "usr/bin/cellblock",
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "init"
            ]
        );
        assert_eq!(entries[2].1, 0o100755);
        assert_eq!(entries[2].3, b"ELF.");
        assert_eq!(entries[4].1, 0o120777);
        assert_eq!(entries[4].3, b"busybox");
        assert_eq!((entries[6].1, entries[6].2), (0o020600, 5));
        assert_eq!(entries[0].1, 0o040755);
    }

    #[test]
    fn refuses_bad_and_repeated_paths() {
        let mut a = Archive::new();
        assert!(a.file("", 0o644, b"").is_err());
        assert!(a.file("a/../b", 0o644, b"").is_err());
        assert!(a.file("dir/", 0o644, b"").is_err());
        a.file("etc/profile", 0o644, b"x").unwrap();
        let e = a.file("/etc/profile", 0o644, b"y").unwrap_err();
        assert!(e.0.contains("twice"), "{e}");
        assert!(a.dir("etc", 0o755).is_ok(), "an existing directory is fine");
    }

    #[test]
    fn same_input_same_bytes() {
        let build = || {
            let mut a = Archive::new();
            a.file("a/b", 0o644, b"hello").unwrap();
            a.finish()
        };
        assert_eq!(build(), build());
    }
}
