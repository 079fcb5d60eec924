//! `cargo xtask setup`: makes sure the host tools are there.
//!
//! QEMU >= 10 (`qemu-system-aarch64`; Debian 12 ships 7.2, which lacks the
//! second non-secure UART, so it comes from bookworm-backports) and `dtc`.
//! They are installed with apt-get when we run as root; otherwise we stop
//! and print the exact command to run. The Rust targets and llvm-tools come
//! from `rust-toolchain.toml`; rustup is asked for them only if missing.

use crate::util::{output, root, run, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lowest QEMU major version that has what the tests need.
const QEMU_MIN_MAJOR: u32 = 10;
const BACKPORTS_LINE: &str = "deb http://deb.debian.org/debian bookworm-backports main";
const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/bookworm-backports.list";
/// Targets of the bare-metal builds (inmates; the EL2 image).
const BARE_TARGETS: [&str; 2] = ["aarch64-unknown-none", "aarch64-unknown-none-softfloat"];

/// Paths of the tools the other commands use.
pub struct Tools {
    pub qemu: PathBuf,
    pub objcopy: PathBuf,
}

/// Checks every tool, installs what is missing (as root), and returns their paths.
pub fn ensure_tools() -> Result<Tools> {
    let qemu = PathBuf::from("qemu-system-aarch64");
    let need_qemu = !qemu_ok(&qemu);
    let need_dtc = output(Command::new("dtc").arg("--version")).is_none();
    if need_qemu || need_dtc {
        install_packages(need_qemu, need_dtc)?;
        if !qemu_ok(&qemu) {
            return Err(Error(format!(
                "qemu-system-aarch64 >= {QEMU_MIN_MAJOR} is still missing after installing (found: {})",
                qemu_version(&qemu).map_or("none".into(), |(a, b)| format!("{a}.{b}"))
            )));
        }
        if output(Command::new("dtc").arg("--version")).is_none() {
            return Err("dtc is still missing after installing device-tree-compiler".into());
        }
    }
    let objcopy = ensure_rust()?;
    Ok(Tools { qemu, objcopy })
}

fn qemu_ok(qemu: &Path) -> bool {
    matches!(qemu_version(qemu), Some((major, _)) if major >= QEMU_MIN_MAJOR)
}

/// `(major, minor)` from `qemu-system-aarch64 --version`.
fn qemu_version(qemu: &Path) -> Option<(u32, u32)> {
    parse_qemu_version(&output(Command::new(qemu).arg("--version"))?)
}

/// Parses "QEMU emulator version 10.0.2 (Debian ...)".
fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut nums = rest
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    Some((nums.next()??, nums.next()??))
}

/// One install step: what it shows and what it runs.
enum Step {
    AddBackports,
    Apt(Vec<&'static str>),
}

impl Step {
    fn shell(&self) -> String {
        match self {
            Step::AddBackports => format!("echo '{BACKPORTS_LINE}' > {BACKPORTS_FILE}"),
            Step::Apt(args) => format!("apt-get {}", args.join(" ")),
        }
    }
}

fn install_packages(need_qemu: bool, need_dtc: bool) -> Result {
    if output(Command::new("apt-get").arg("--version")).is_none() {
        return Err(Error(format!(
            "missing tools and no apt-get here: install {}{}{} with your package manager",
            if need_qemu {
                format!("QEMU >= {QEMU_MIN_MAJOR} (qemu-system-aarch64)")
            } else {
                String::new()
            },
            if need_qemu && need_dtc { " and " } else { "" },
            if need_dtc {
                "dtc (device-tree-compiler)"
            } else {
                ""
            },
        )));
    }
    let bookworm = os_codename().as_deref() == Some("bookworm");
    let mut steps = Vec::new();
    if need_qemu && bookworm && !backports_configured() {
        steps.push(Step::AddBackports);
    }
    steps.push(Step::Apt(vec!["update"]));
    if need_qemu {
        if bookworm {
            steps.push(Step::Apt(vec![
                "install",
                "-y",
                "-t",
                "bookworm-backports",
                "qemu-system-arm",
            ]));
        } else {
            steps.push(Step::Apt(vec!["install", "-y", "qemu-system-arm"]));
        }
    }
    if need_dtc {
        steps.push(Step::Apt(vec!["install", "-y", "device-tree-compiler"]));
    }

    let what = match (need_qemu, need_dtc) {
        (true, true) => format!("QEMU >= {QEMU_MIN_MAJOR} and dtc"),
        (true, false) => format!("QEMU >= {QEMU_MIN_MAJOR}"),
        _ => "dtc".to_owned(),
    };
    if !is_root() {
        let script = steps
            .iter()
            .map(Step::shell)
            .collect::<Vec<_>>()
            .join(" && ");
        return Err(Error(format!(
            "{what} missing; install with:\n\n    sudo sh -c \"{script}\"\n\nthen run this command again"
        )));
    }
    println!("xtask: installing {what}");
    for step in &steps {
        match step {
            Step::AddBackports => {
                println!("$ {}", step.shell());
                fs::write(BACKPORTS_FILE, format!("{BACKPORTS_LINE}\n"))
                    .map_err(|e| Error(format!("cannot write {BACKPORTS_FILE}: {e}")))?;
            }
            Step::Apt(args) => run(Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"))?,
        }
    }
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// `VERSION_CODENAME` from /etc/os-release.
fn os_codename() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

/// Whether any apt source (one-line or deb822) already names bookworm-backports.
fn backports_configured() -> bool {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.flatten().map(|e| e.path()));
    }
    files.iter().any(|f| {
        fs::read_to_string(f).is_ok_and(|text| {
            text.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
        })
    })
}

/// Makes sure the bare-metal target and llvm-objcopy are installed in the
/// toolchain `rust-toolchain.toml` selects; returns llvm-objcopy's path.
fn ensure_rust() -> Result<PathBuf> {
    let rustc = |args: &[&str]| output(Command::new("rustc").args(args).current_dir(root()));
    let sysroot = PathBuf::from(
        rustc(&["--print", "sysroot"])
            .ok_or("cannot run `rustc --print sysroot`")?
            .trim(),
    );
    let host = rustc(&["-vV"])
        .and_then(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("host: "))
                .map(str::to_owned)
        })
        .ok_or("cannot read the host triple from `rustc -vV`")?;
    let rustlib = sysroot.join("lib").join("rustlib");
    for target in BARE_TARGETS {
        if !rustlib.join(target).exists() {
            run(Command::new("rustup")
                .args(["target", "add", target])
                .current_dir(root()))?;
        }
    }
    let objcopy = rustlib.join(&host).join("bin").join("llvm-objcopy");
    if !objcopy.exists() {
        run(Command::new("rustup")
            .args(["component", "add", "llvm-tools"])
            .current_dir(root()))?;
    }
    if !objcopy.exists() {
        return Err(Error(format!(
            "llvm-objcopy not found at {} (rustup component add llvm-tools)",
            objcopy.display()
        )));
    }
    Ok(objcopy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_qemu_version() {
        let text = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                    Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_qemu_version(text), Some((10, 0)));
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u18)"),
            Some((7, 2))
        );
        assert_eq!(parse_qemu_version("nonsense"), None);
    }

    #[test]
    fn non_root_instructions_are_one_shell_line() {
        let steps = [
            Step::AddBackports,
            Step::Apt(vec!["update"]),
            Step::Apt(vec!["install", "-y", "device-tree-compiler"]),
        ];
        let script: Vec<_> = steps.iter().map(Step::shell).collect();
        assert_eq!(
            script.join(" && "),
            "echo 'deb http://deb.debian.org/debian bookworm-backports main' > \
             /etc/apt/sources.list.d/bookworm-backports.list && apt-get update && \
             apt-get install -y device-tree-compiler"
        );
    }
}
