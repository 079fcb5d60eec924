//! Running QEMU: the interactive demo, and boots whose serial ports go to
//! log files that the tests and the benchmark poll.

use crate::build;
use crate::setup::Tools;
use crate::util::{display, log_dir, rel, root, Context, Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The emulated board: QEMU `virt`.
#[derive(Clone, Copy)]
pub struct Machine {
    pub gic: u32,
    /// Enter the kernel at EL2 (needed by the hypervisor; bare inmates run at EL1).
    pub virtualization: bool,
    pub smp: u32,
    /// `-icount` with a fixed DTB and RTC: instruction-deterministic runs.
    pub deterministic: bool,
}

impl Machine {
    /// The machine that runs the hypervisor.
    pub fn hypervisor(gic: u32) -> Self {
        Machine {
            gic,
            virtualization: true,
            smp: 4,
            deterministic: false,
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut machine = String::from("virt");
        if self.virtualization {
            machine.push_str(",virtualization=on");
        }
        machine.push_str(&format!(",gic-version={}", self.gic));
        if self.deterministic {
            machine.push_str(",dtb-randomness=off");
        }
        let mut args: Vec<String> = [
            "-M",
            &machine,
            "-cpu",
            "cortex-a57",
            "-smp",
            &self.smp.to_string(),
            "-m",
            "1G",
        ]
        .map(String::from)
        .into();
        if self.deterministic {
            args.extend(
                ["-icount", "shift=4,sleep=off", "-rtc", "base=2020-01-01"].map(String::from),
            );
        }
        args
    }
}

/// `cargo xtask demo`: builds, then boots QEMU in the foreground with both
/// UARTs multiplexed onto this terminal: the Linux root cell (which starts
/// gic-demo), or with `bare` the uart-demo root cell and gic-demo started
/// at boot.
pub fn run_demo(tools: &Tools, gic: u32, bare: bool) -> Result {
    {
        let _lock = crate::util::lock_outputs()?;
        build::build(tools)?;
    }
    let (image, note) = if bare {
        (
            build::boot_image(gic),
            "uart0: hypervisor + root cell uart-demo, uart1: gic-demo cell",
        )
    } else {
        (
            crate::linux::linux_image(gic),
            "uart0: hypervisor + Linux root cell console, uart1: gic-demo cell",
        )
    };
    let mut cmd = Command::new(&tools.qemu);
    cmd.current_dir(root())
        .args(Machine::hypervisor(gic).args())
        .arg("-nographic")
        .arg("-kernel")
        .arg(rel(&image))
        .args(["-chardev", "stdio,id=term,mux=on,signal=on"])
        .args(["-serial", "chardev:term", "-serial", "chardev:term"])
        .args(["-mon", "chardev=term,mode=readline"]);
    println!("xtask: quit QEMU with Ctrl-A x ({note})");
    println!("$ {}", display(&cmd));
    let status = cmd
        .status()
        .context(|| format!("cannot run {}", tools.qemu.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error(format!("QEMU exited with {status}")))
    }
}

/// A QEMU boot in the background, each UART written to its own file under
/// `target/qemu-logs/`. Killed when dropped.
pub struct LoggedQemu {
    child: Child,
    pub name: String,
    pub uarts: [PathBuf; 2],
    pub stderr: PathBuf,
    pub started: Instant,
    /// With [`Uart0::Socket`] or [`Uart0::Sockets`]: the Unix socket that
    /// takes uart0's input.
    pub console: Option<PathBuf>,
    /// With [`Uart0::Sockets`]: uart1's.
    pub console1: Option<PathBuf>,
}

/// Where uart0 goes besides its log file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Uart0 {
    /// Output to the log only.
    Log,
    /// Also a Unix socket (QEMU is the server) for typing into the console.
    Socket,
    /// Sockets on both UARTs (a Linux cell's console is uart1).
    Sockets,
}

/// What both UARTs printed so far.
pub struct Logs {
    pub uart0: String,
    pub uart1: String,
}

/// The answer of a polling check.
pub enum Poll<T> {
    Done(T),
    Pending,
    Fail(String),
}

impl LoggedQemu {
    /// Starts QEMU on `kernel`; old logs of the same name are removed first.
    pub fn start(tools: &Tools, name: &str, machine: Machine, kernel: &Path) -> Result<Self> {
        Self::start_with(tools, name, machine, kernel, &[], Uart0::Log)
    }

    /// [`LoggedQemu::start`] with more QEMU arguments (`-initrd`, `-append`,
    /// ...) and, with [`Uart0::Socket`], a console socket on uart0.
    pub fn start_with(
        tools: &Tools,
        name: &str,
        machine: Machine,
        kernel: &Path,
        extra: &[String],
        uart0: Uart0,
    ) -> Result<Self> {
        Self::start_with_args(tools, name, machine.args(), kernel, extra, uart0)
    }

    /// [`LoggedQemu::start_with`] with the machine's arguments as given
    /// (e.g. [`Machine::args`] with another `-m`).
    pub fn start_with_args(
        tools: &Tools,
        name: &str,
        machine_args: Vec<String>,
        kernel: &Path,
        extra: &[String],
        uart0: Uart0,
    ) -> Result<Self> {
        let dir = log_dir();
        fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        let uarts = [0, 1].map(|i| dir.join(format!("{name}.uart{i}.log")));
        let stderr = dir.join(format!("{name}.qemu.log"));
        for f in uarts.iter().chain([&stderr]) {
            let _ = fs::remove_file(f);
        }
        let err_file =
            fs::File::create(&stderr).context(|| format!("cannot create {}", stderr.display()))?;
        let mut cmd = Command::new(&tools.qemu);
        cmd.current_dir(root())
            .args(machine_args)
            .args(["-nodefaults", "-display", "none", "-monitor", "none"])
            .arg("-no-reboot")
            .arg("-kernel")
            .arg(kernel)
            .args(extra);
        // Unix socket paths are short (108 bytes): not under the work tree.
        let sock = |i: usize| {
            std::env::temp_dir().join(format!("cellblock-{}-{name}.{i}.sock", std::process::id()))
        };
        let console = matches!(uart0, Uart0::Socket | Uart0::Sockets).then(|| sock(0));
        let console1 = (uart0 == Uart0::Sockets).then(|| sock(1));
        for (i, uart) in uarts.iter().enumerate() {
            match [&console, &console1][i] {
                Some(sock) => {
                    let _ = fs::remove_file(sock);
                    cmd.arg("-chardev")
                        .arg(format!(
                            "socket,id=uart{i},path={},server=on,wait=off,logfile={}",
                            sock.display(),
                            uart.display()
                        ))
                        .args(["-serial", &format!("chardev:uart{i}")]);
                }
                _ => {
                    cmd.arg("-serial").arg(format!("file:{}", uart.display()));
                }
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(
                err_file
                    .try_clone()
                    .context(|| format!("cannot open {}", stderr.display()))?,
            )
            .stderr(err_file);
        let child = cmd
            .spawn()
            .context(|| format!("cannot run {}", tools.qemu.display()))?;
        Ok(LoggedQemu {
            child,
            name: name.to_owned(),
            uarts,
            stderr,
            started: Instant::now(),
            console,
            console1,
        })
    }

    pub fn logs(&self) -> Logs {
        let read =
            |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
        Logs {
            uart0: read(&self.uarts[0]),
            uart1: read(&self.uarts[1]),
        }
    }

    /// Calls `check` on the logs every 100 ms until it is done or fails,
    /// QEMU exits, or `timeout` (counted from the start of QEMU) passes.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Logs) -> Poll<T>,
    ) -> Result<T> {
        loop {
            let exited = self.child.try_wait().ok().flatten();
            match check(&self.logs()) {
                Poll::Done(v) => return Ok(v),
                Poll::Fail(why) => return Err(Error(why)),
                Poll::Pending => {}
            }
            if let Some(status) = exited {
                return Err(Error(format!(
                    "QEMU exited ({status}) while waiting for {what}"
                )));
            }
            if self.started.elapsed() >= timeout {
                return Err(Error(format!(
                    "timed out after {} s waiting for {what}",
                    timeout.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills QEMU and waits for it.
    /// Stops QEMU and settles a scenario: on success its logs go, on
    /// failure they stay and their last `tail_lines` lines are printed.
    pub fn conclude(mut self, result: Result, tail_lines: usize) -> Result {
        self.stop();
        match result {
            Ok(()) => {
                self.remove_logs();
                Ok(())
            }
            Err(e) => {
                eprint!("{}", self.tails(tail_lines));
                Err(Error(format!(
                    "{e} (logs kept: {}/{}.*)",
                    rel(&log_dir()),
                    self.name
                )))
            }
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(sock) = &self.console {
            let _ = fs::remove_file(sock);
        }
    }

    /// Removes the log files (after a passing run).
    pub fn remove_logs(&self) {
        for f in self.uarts.iter().chain([&self.stderr]) {
            let _ = fs::remove_file(f);
        }
    }

    /// The last lines of each log, for a failure report.
    pub fn tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for f in self.uarts.iter().chain([&self.stderr]) {
            let text = String::from_utf8_lossy(&fs::read(f).unwrap_or_default()).into_owned();
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "---- {} (last {} of {} lines)\n",
                rel(f),
                all.len() - start,
                all.len()
            ));
            for l in &all[start..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for LoggedQemu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lines of `text` that are complete (newline-terminated), without the
/// line end.
pub fn complete_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| l.trim_end_matches(['\n', '\r']))
}

/// Number of complete lines in `text` that contain `pattern`.
pub fn count_lines(text: &str, pattern: &str) -> usize {
    complete_lines(text).filter(|l| l.contains(pattern)).count()
}
