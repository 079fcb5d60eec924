//! Small helpers: the error type, paths, running commands.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An xtask failure: a message for the user.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_owned())
    }
}

pub type Result<T = ()> = std::result::Result<T, Error>;

/// Adds what was being done to an I/O (or other) error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where built images and boot images go: `target/cellblock/`.
pub fn out_dir() -> PathBuf {
    root().join("target").join("cellblock")
}

/// Where QEMU serial logs go: `target/qemu-logs/`.
pub fn log_dir() -> PathBuf {
    root().join("target").join("qemu-logs")
}

/// The `cargo` that runs us (so the pinned toolchain is used), with the
/// workspace root as working directory.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// A command line as the user would type it.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    if let Some(name) = Path::new(&s).file_name() {
        s = name.to_string_lossy().into_owned();
    }
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        s.push(' ');
        if arg.is_empty() || arg.contains([' ', '"', '\'']) {
            s.push_str(&format!("'{arg}'"));
        } else {
            s.push_str(&arg);
        }
    }
    s
}

/// Prints and runs a command with inherited stdio; fails on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result {
    println!("$ {}", display(cmd));
    let status = cmd
        .status()
        .context(|| format!("cannot run {}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error(format!("`{}` failed ({status})", display(cmd))))
    }
}

/// Runs a command quietly and returns its stdout, or `None` if it could not
/// run or exited non-zero.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A path relative to the workspace root, for messages.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Takes the lock that serialises xtask runs writing `target/cellblock/` and
/// `target/qemu-logs/` in one work tree (two runs would overwrite each
/// other's images and logs). Held until the returned file is dropped.
pub fn lock_outputs() -> Result<std::fs::File> {
    let dir = root().join("target");
    std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("xtask.lock");
    let file =
        std::fs::File::create(&path).context(|| format!("cannot open {}", path.display()))?;
    if file.try_lock().is_err() {
        println!("xtask: waiting for another xtask run in this tree to finish");
        file.lock()
            .context(|| format!("cannot lock {}", path.display()))?;
    }
    Ok(file)
}
