//! QEMU scenarios of the Linux root cell (part of `cargo xtask test`):
//! - `linux-bare-gicv3`: the same kernel and initramfs without the
//!   hypervisor (QEMU's own DTB, EL1): checks the kernel, the initramfs and
//!   /init alone, and is the baseline of the boot-time comparison;
//! - `linux-gicv3`, `linux-gicv2`: `linux-gicv*.img`, Linux as root cell
//!   under Cellblock, until its userspace says it is up;
//! - `linux-cells-gicv3`, `linux-cells-gicv2`: then drive the root shell
//!   (uart0 through a socket) through issue 3's checks: /init's gic-demo
//!   ticks and is listed on CPU 3; shutdown and destroy give CPU 3 back to
//!   Linux; create, load and start work again; a malformed config, an
//!   overlapping region and an unknown cell are refused with their reason
//!   and `cell list` unchanged; a cell that never answers a shutdown
//!   request is stopped and marked failed; a locked cell blocks every
//!   reconfiguration; the probe cell fails and Linux still
//!   answers; destroying it gives CPU 2 back;
//! - `linux-cycles-gicv3`: 50 create/load/start/destroy cycles of gic-demo
//!   leave the hypervisor's memory pool use where it was.

use crate::linux::{linux_image, BOOTARGS, USERSPACE_MARKER};
use crate::qemu::{complete_lines, count_lines, LoggedQemu, Logs, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{out_dir, rel, Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

/// Time-out of one Linux boot to userspace. Measured under TCG on a 2-core
/// machine: 2-4 s bare and under the hypervisor, up to 5.4 s on a loaded
/// machine (docs/linux-root.md); generous for slower CI machines.
const LINUX_TIMEOUT: Duration = Duration::from_secs(180);
/// Lines of each log printed when a scenario fails.
const TAIL_LINES: usize = 40;

/// Lines on uart0 that end a Linux boot early.
const FATAL: [&str; 5] = [
    "Kernel panic",
    "Internal error: Oops",
    "Cellblock: boot refused:",
    "Cellblock: cell \"root\" failed:",
    "PANIC",
];

/// The scenario names, in the order they run.
pub fn names() -> Vec<String> {
    [
        "linux-bare-gicv3",
        "linux-gicv3",
        "linux-gicv2",
        "linux-cells-gicv3",
        "linux-cells-gicv2",
        "linux-cycles-gicv3",
    ]
    .map(String::from)
    .into()
}

/// Runs one scenario of [`names`].
pub fn run(tools: &Tools, name: &str) -> Result {
    let (machine, kernel, extra) = match name {
        "linux-bare-gicv3" => (
            Machine {
                gic: 3,
                virtualization: false,
                smp: 4,
                deterministic: false,
            },
            out_dir().join("Image"),
            vec![
                "-initrd".to_owned(),
                rel(&out_dir().join("initramfs.cpio")),
                "-append".to_owned(),
                format!("{BOOTARGS} cellblock.demo=0"),
            ],
        ),
        "linux-gicv3" | "linux-cells-gicv3" | "linux-cycles-gicv3" => {
            (Machine::hypervisor(3), linux_image(3), vec![])
        }
        "linux-gicv2" | "linux-cells-gicv2" => (Machine::hypervisor(2), linux_image(2), vec![]),
        other => return Err(Error(format!("no Linux scenario named {other}"))),
    };
    let shell = name.starts_with("linux-cells-") || name.starts_with("linux-cycles-");
    let uart0 = if shell { Uart0::Socket } else { Uart0::Log };
    let mut qemu = LoggedQemu::start_with(tools, name, machine, &kernel, &extra, uart0)?;
    let mut result = qemu.wait_for(
        LINUX_TIMEOUT,
        &format!("`{USERSPACE_MARKER}` on uart0"),
        userspace_up,
    );
    if result.is_ok() {
        println!(
            "  {name}: userspace after {:.1} s",
            qemu.started.elapsed().as_secs_f64()
        );
        if name.starts_with("linux-cells-") {
            result = cell_checks(&mut qemu);
        } else if name.starts_with("linux-cycles-") {
            result = cycles(&mut qemu);
        }
    }
    qemu.conclude(result, TAIL_LINES)
}

/// /init's last line before the shell.
const SHELL_READY: &str = "Cellblock root cell: root shell";
const TIMER: &str = "Timer fired, jitter:";
const PROBE_FAILED: &str = "Cellblock: cell \"probe\" failed:";
/// Time-out of one shell command (CPU hand-over under TCG included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Time-out of the 50 create/load/start/destroy cycles.
const CYCLES_TIMEOUT: Duration = Duration::from_secs(600);
const CYCLES: u32 = 50;

/// The root shell on uart0, driven through QEMU's console socket.
pub struct Shell {
    stream: UnixStream,
    /// The UART it types into (0 or 1).
    uart: usize,
    /// Commands sent so far (numbers the end markers).
    sent: u32,
}

/// What a command printed (complete lines, without the end marker) and its
/// exit status.
pub struct Output {
    pub lines: Vec<String>,
    pub status: i32,
}

impl Output {
    pub fn text(&self) -> String {
        self.lines.join(" | ")
    }
}

impl Shell {
    fn connect(qemu: &LoggedQemu) -> Result<Shell> {
        Self::connect_to(qemu, 0)
    }

    /// A shell on `uart` (0 or 1) through QEMU's console socket.
    pub fn connect_to(qemu: &LoggedQemu, uart: usize) -> Result<Shell> {
        let sock = [&qemu.console, &qemu.console1][uart.min(1)]
            .as_ref()
            .ok_or_else(|| Error(format!("QEMU has no console socket on uart{uart}")))?;
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(e) if started.elapsed() > Duration::from_secs(10) => {
                    return Err(Error(format!("cannot connect to {}: {e}", sock.display())))
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        };
        // QEMU's copy of uart0 output: read and dropped (the log file has it).
        let mut drain = stream
            .try_clone()
            .map_err(|e| Error(format!("console socket: {e}")))?;
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(drain.read(&mut buf), Ok(n) if n > 0) {}
        });
        Ok(Shell {
            stream,
            uart,
            sent: 0,
        })
    }

    /// Types `cmd` and waits for its end marker; returns its output.
    pub fn run(&mut self, qemu: &LoggedQemu, cmd: &str, timeout: Duration) -> Result<Output> {
        self.sent += 1;
        let n = self.sent;
        let log = |q: &LoggedQemu| {
            let l = q.logs();
            if self.uart == 0 {
                l.uart0
            } else {
                l.uart1
            }
        };
        let from = log(qemu).len();
        // `$?` expands only in the output, so the echoed command line never
        // matches the marker.
        let line = format!("{cmd}; echo \"@@{n}:$?@@\"\n");
        self.stream
            .write_all(line.as_bytes())
            .map_err(|e| Error(format!("console socket: {e}")))?;
        let prefix = format!("@@{n}:");
        let started = Instant::now();
        loop {
            let text = log(qemu);
            let new = text.get(from..).unwrap_or_default();
            if let Some(out) = parse_output(new, &prefix) {
                return Ok(out);
            }
            if let Some(l) = complete_lines(new).find(|l| FATAL.iter().any(|f| l.contains(f))) {
                return Err(Error(format!("`{cmd}`: on uart{}: {l}", self.uart)));
            }
            if started.elapsed() > timeout {
                return Err(Error(format!(
                    "`{cmd}` did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The socket, for typing what does not end (`reboot`).
    pub fn stream_mut(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// Runs `cmd` and requires exit status 0.
    pub fn ok(&mut self, qemu: &LoggedQemu, cmd: &str) -> Result<Output> {
        self.ok_within(qemu, cmd, COMMAND_TIMEOUT)
    }

    /// [`Shell::ok`] with a time-out of its own.
    pub fn ok_within(&mut self, qemu: &LoggedQemu, cmd: &str, timeout: Duration) -> Result<Output> {
        let out = self.run(qemu, cmd, timeout)?;
        println!("  $ {cmd}\n    {}", short(&out.text()));
        if out.status == 0 {
            Ok(out)
        } else {
            Err(Error(format!(
                "`{cmd}` exited with {}: {}",
                out.status,
                out.text()
            )))
        }
    }

    /// Runs `cmd` and requires it to fail with a message containing `reason`.
    fn refused(&mut self, qemu: &LoggedQemu, cmd: &str, reason: &str) -> Result<Output> {
        let out = self.run(qemu, cmd, COMMAND_TIMEOUT)?;
        println!(
            "  $ {cmd}  (exit {})\n    {}",
            out.status,
            short(&out.text())
        );
        let said = out.text().to_ascii_lowercase();
        if out.status == 0 {
            Err(Error(format!("`{cmd}` succeeded; it must be refused")))
        } else if !said.contains(&reason.to_ascii_lowercase()) {
            Err(Error(format!(
                "`{cmd}` was refused without naming `{reason}`: {}",
                out.text()
            )))
        } else {
            Ok(out)
        }
    }
}

/// At most 400 characters of `text`, for the progress output.
fn short(text: &str) -> String {
    match text.char_indices().nth(400) {
        Some((i, _)) => format!("{} ...", &text[..i]),
        None => text.to_owned(),
    }
}

/// The lines before `@@N:STATUS@@` in `text` (from the end of the command
/// line), or `None` while the marker has not come.
fn parse_output(text: &str, prefix: &str) -> Option<Output> {
    let mut at = 0;
    while let Some(i) = text[at..].find(prefix) {
        let start = at + i;
        let rest = &text[start + prefix.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        if !digits.is_empty() && rest[digits.len()..].starts_with("@@") {
            let status = digits.parse().ok()?;
            let before = &text[..start];
            let lines = complete_lines(before)
                .filter(|l| !l.contains(&format!("{prefix}$?")))
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            return Some(Output { lines, status });
        }
        at = start + prefix.len();
    }
    None
}

/// The fields of the `cell list` row of cell `name`.
fn list_row(list: &Output, name: &str) -> Option<Vec<String>> {
    list.lines
        .iter()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f.get(1).is_some_and(|n| n == name))
}

/// Waits until uart1 has `count` `Timer fired` lines.
fn wait_ticks(qemu: &mut LoggedQemu, count: usize) -> Result {
    let deadline = qemu.started.elapsed() + COMMAND_TIMEOUT;
    qemu.wait_for(
        deadline,
        &format!("{count} `{TIMER}` lines on uart1"),
        |logs| {
            if count_lines(&logs.uart1, TIMER) >= count {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )
}

/// Waits for /init's shell and takes it over (no echo, no prompt).
pub fn shell(qemu: &mut LoggedQemu) -> Result<Shell> {
    let deadline = qemu.started.elapsed() + COMMAND_TIMEOUT;
    qemu.wait_for(deadline, &format!("`{SHELL_READY}` on uart0"), |logs| {
        if complete_lines(&logs.uart0).any(|l| l.contains(SHELL_READY)) {
            Poll::Done(())
        } else {
            userspace_up(logs)
        }
    })?;
    let mut sh = Shell::connect(qemu)?;
    sh.run(qemu, "stty -echo; PS1=", COMMAND_TIMEOUT)?;
    Ok(sh)
}

fn cell_checks(qemu: &mut LoggedQemu) -> Result {
    let mut sh = shell(qemu)?;

    // /init created, loaded and started gic-demo.
    wait_ticks(qemu, 20)?;
    let list = sh.ok(qemu, "cellblock cell list")?;
    match list_row(&list, "gic-demo") {
        Some(f) if f.get(2..4) == Some(&["running".to_owned(), "3".to_owned()]) => {}
        _ => {
            return Err(Error(format!(
                "gic-demo is not running on CPU 3: {}",
                list.text()
            )))
        }
    }

    // Shut down, destroy: CPU 3 back to Linux; then everything again.
    sh.ok(qemu, "cellblock cell shutdown gic-demo")?;
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    let ticks = count_lines(&qemu.logs().uart1, TIMER);
    sh.ok(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-gic-demo.cell && \
         cellblock cell load gic-demo /opt/cellblock/gic-demo.bin && \
         cellblock cell start gic-demo",
    )?;
    wait_ticks(qemu, ticks + 20)?;

    // Refusals leave the cells (and the hypervisor's memory pool) as they were.
    let pool_before = pool(&sh.ok(qemu, "cellblock info")?);
    let before = sh.ok(qemu, "cellblock cell list")?;
    sh.refused(
        qemu,
        "head -c 100 /opt/cellblock/gic-demo.bin > /tmp/bad.cell; \
         cellblock cell create /tmp/bad.cell",
        "bad.cell",
    )?;
    sh.refused(
        qemu,
        "sed -e 's/\"gic-demo\"/\"overlap\"/' -e 's/cpus = .*/cpus = [2]/' \
         /opt/cellblock/cells/qemu-gic-demo.toml > /tmp/overlap.toml; \
         cellblock cell create /tmp/overlap.toml",
        "overlap",
    )?;
    sh.refused(qemu, "cellblock cell start no-such-cell", "no-such-cell")?;
    let after = sh.ok(qemu, "cellblock cell list")?;
    if after.lines != before.lines {
        return Err(Error(format!(
            "`cell list` changed after refused commands: before {}, after {}",
            before.text(),
            after.text()
        )));
    }
    same_pool(
        &pool_before,
        &sh.ok(qemu, "cellblock info")?,
        "the refused commands",
    )?;

    // The probe cell fails; Linux still answers.
    sh.ok(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-probe.cell && \
         cellblock cell load probe /opt/cellblock/probe.bin && \
         cellblock cell start probe",
    )?;
    let deadline = qemu.started.elapsed() + COMMAND_TIMEOUT;
    qemu.wait_for(deadline, &format!("`{PROBE_FAILED}` on uart0"), |logs| {
        if complete_lines(&logs.uart0).any(|l| l.contains(PROBE_FAILED)) {
            Poll::Done(())
        } else {
            Poll::Pending
        }
    })?;
    let alive = sh.ok(qemu, "echo alive-$((6*7))")?;
    if !alive.lines.iter().any(|l| l == "alive-42") {
        return Err(Error(format!(
            "no answer after the probe failed: {}",
            alive.text()
        )));
    }
    let list = sh.ok(qemu, "cellblock cell list")?;
    match list_row(&list, "probe") {
        Some(f) if f.get(2).is_some_and(|s| s == "failed") => {}
        _ => {
            return Err(Error(format!(
                "probe is not listed as failed: {}",
                list.text()
            )))
        }
    }
    sh.ok(qemu, "cellblock cell destroy probe")?;
    cpu_back(qemu, &mut sh, 2)?;
    same_pool(
        &pool_before,
        &sh.ok(qemu, "cellblock info")?,
        "the probe cell's failure and destruction",
    )?;

    // The shutdown handshake: a cell may deny (gic-demo-deny) and runs on;
    // a cell that never answers (uart-demo, which does not look at its
    // comm region) is stopped after the time-out and marked failed.
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    let pool_root_only = pool(&sh.ok(qemu, "cellblock info")?);
    let ticks = count_lines(&qemu.logs().uart1, TIMER);
    sh.ok(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-gic-demo.cell && \
         cellblock cell load gic-demo /opt/cellblock/gic-demo-deny.bin && \
         cellblock cell start gic-demo",
    )?;
    wait_ticks(qemu, ticks + 5)?;
    sh.refused(qemu, "cellblock cell shutdown gic-demo", "denied")?;
    // The refusal came through the comm region: the cell saw the request.
    let deadline = qemu.started.elapsed() + COMMAND_TIMEOUT;
    qemu.wait_for(deadline, "`gic-demo: shutdown denied` on uart1", |logs| {
        if complete_lines(&logs.uart1).any(|l| l.contains("gic-demo: shutdown denied")) {
            Poll::Done(())
        } else {
            Poll::Pending
        }
    })?;
    expect_state(qemu, &mut sh, "gic-demo", "running")?;
    let ticks = count_lines(&qemu.logs().uart1, TIMER);
    wait_ticks(qemu, ticks + 5)?;
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    sh.ok(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-gic-demo.cell && \
         cellblock cell load gic-demo /opt/cellblock/uart-demo.bin && \
         cellblock cell start gic-demo",
    )?;
    sh.refused(qemu, "cellblock cell shutdown gic-demo", "ETIMEDOUT")?;
    expect_state(qemu, &mut sh, "gic-demo", "failed")?;
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    same_pool(
        &pool_root_only,
        &sh.ok(qemu, "cellblock info")?,
        "the shutdown time-out",
    )?;

    // A cell may lock itself (gic-demo-locked): it reads running/locked,
    // and every reconfiguration is refused while it runs: shutting it
    // down, destroying it, creating another cell. It keeps ticking. (Last:
    // nothing can take it down from here.)
    let ticks = count_lines(&qemu.logs().uart1, TIMER);
    sh.ok(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-gic-demo.cell && \
         cellblock cell load gic-demo /opt/cellblock/gic-demo-locked.bin && \
         cellblock cell start gic-demo",
    )?;
    wait_ticks(qemu, ticks + 5)?;
    expect_state(qemu, &mut sh, "gic-demo", "running/locked")?;
    let before = sh.ok(qemu, "cellblock cell list")?;
    sh.refused(qemu, "cellblock cell shutdown gic-demo", "EPERM")?;
    sh.refused(qemu, "cellblock cell destroy gic-demo", "EPERM")?;
    sh.refused(
        qemu,
        "cellblock cell create /opt/cellblock/qemu-probe.cell",
        "EPERM",
    )?;
    let after = sh.ok(qemu, "cellblock cell list")?;
    if after.lines != before.lines {
        return Err(Error(format!(
            "`cell list` changed while a cell was locked: before {}, after {}",
            before.text(),
            after.text()
        )));
    }
    let ticks = count_lines(&qemu.logs().uart1, TIMER);
    wait_ticks(qemu, ticks + 5)
}

/// `cell list` shows cell `name` in state `state`.
pub fn expect_state(qemu: &mut LoggedQemu, sh: &mut Shell, name: &str, state: &str) -> Result {
    let list = sh.ok(qemu, "cellblock cell list")?;
    match list_row(&list, name) {
        // States may be two words (`shut down`).
        Some(f) if f.get(2..).is_some_and(|s| s.join(" ").starts_with(state)) => Ok(()),
        _ => Err(Error(format!(
            "{name} is not listed as {state}: {}",
            list.text()
        ))),
    }
}

/// CPU `cpu` is Linux's again: online, and it runs a task that sleeps
/// (so it takes its timer interrupt and the wake-up IPI).
pub fn cpu_back(qemu: &LoggedQemu, sh: &mut Shell, cpu: u32) -> Result {
    let online = sh.ok(
        qemu,
        &format!("cat /sys/devices/system/cpu/cpu{cpu}/online"),
    )?;
    if online.lines.last().map(String::as_str) != Some("1") {
        return Err(Error(format!(
            "cpu{cpu}/online after destroy: {}",
            online.text()
        )));
    }
    sh.ok(qemu, &format!("taskset -c {cpu} sleep 1"))
        .map(drop)
        .map_err(|e| {
            Error(format!(
                "CPU {cpu} does not run Linux tasks after destroy: {e}"
            ))
        })
}

/// The `Memory pool:` line of `cellblock info`.
pub fn pool(info: &Output) -> Option<String> {
    info.lines
        .iter()
        .find(|l| l.starts_with("Memory pool:"))
        .cloned()
}

pub fn same_pool(before: &Option<String>, info: &Output, after_what: &str) -> Result {
    let now = pool(info);
    match (before, &now) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(Error(format!(
            "memory pool use changed over {after_what}: {before:?} -> {now:?}"
        ))),
    }
}

/// Create/load/start/destroy cycles: the memory pool use comes back.
fn cycles(qemu: &mut LoggedQemu) -> Result {
    let mut sh = shell(qemu)?;
    // Destroyed while running (no shutdown request first).
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    let start = pool(&sh.ok(qemu, "cellblock info")?);
    let started = Instant::now();
    let cycles = sh.run(
        qemu,
        &format!(
            "i=0; while [ $i -lt {CYCLES} ]; do \
             cellblock cell create /opt/cellblock/qemu-gic-demo.cell >/dev/null && \
             cellblock cell load gic-demo /opt/cellblock/gic-demo.bin >/dev/null && \
             cellblock cell start gic-demo >/dev/null && \
             cellblock cell destroy gic-demo >/dev/null || break; i=$((i+1)); done; \
             echo cycles=$i; [ $i -eq {CYCLES} ]"
        ),
        CYCLES_TIMEOUT,
    )?;
    let done = cycles
        .lines
        .iter()
        .rfind(|l| l.starts_with("cycles="))
        .cloned()
        .unwrap_or_default();
    println!(
        "  {CYCLES} cycles: {done} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if cycles.status != 0 {
        let tail = cycles.lines.len().saturating_sub(10);
        return Err(Error(format!(
            "cycles stopped ({done}): {}",
            cycles.lines[tail..].join(" | ")
        )));
    }
    same_pool(
        &start,
        &sh.ok(qemu, "cellblock info")?,
        &format!("{CYCLES} cycles"),
    )?;
    cpu_back(qemu, &mut sh, 3)
}

pub fn userspace_up(logs: &Logs) -> Poll<()> {
    if let Some(l) = complete_lines(&logs.uart0).find(|l| FATAL.iter().any(|f| l.contains(f))) {
        return Poll::Fail(format!("on uart0: {l}"));
    }
    if complete_lines(&logs.uart0).any(|l| l.contains(USERSPACE_MARKER)) {
        Poll::Done(())
    } else {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(uart0: &str) -> Logs {
        Logs {
            uart0: uart0.to_owned(),
            uart1: String::new(),
        }
    }

    #[test]
    fn marker_and_failures() {
        let up = format!("[    1.0] Run /init as init process\n{USERSPACE_MARKER} (6.1.0)\n");
        assert!(matches!(userspace_up(&logs(&up)), Poll::Done(())));
        assert!(matches!(
            userspace_up(&logs(USERSPACE_MARKER)),
            Poll::Pending
        ));
        let panic = "[    2.0] Kernel panic - not syncing: Attempted to kill init!\n";
        assert!(matches!(userspace_up(&logs(panic)), Poll::Fail(_)));
        let refused = "Cellblock: boot refused: root cell: image Image overlaps\n";
        assert!(matches!(userspace_up(&logs(refused)), Poll::Fail(_)));
        assert!(names().iter().all(|n| n.starts_with("linux-")));
    }

    #[test]
    fn command_output_ends_at_its_marker() {
        let echoed = "cellblock cell list; echo \"@@3:$?@@\"\r\n";
        let text = format!("{echoed}ID  Name\r\n0   root\r\n@@3:0@@\r\n");
        assert!(parse_output(echoed, "@@3:").is_none());
        let out = parse_output(&text, "@@3:").expect("marker");
        assert_eq!(out.status, 0);
        assert_eq!(out.lines, ["ID  Name", "0   root"]);
        assert_eq!(
            list_row(&out, "root"),
            Some(vec!["0".to_owned(), "root".to_owned()])
        );
        let failed = parse_output("cellblock: no cell \"x\"\n@@4:1@@\n", "@@4:").unwrap();
        assert_eq!((failed.status, failed.lines.len()), (1, 1));
        assert!(parse_output("@@3:0@@", "@@4:").is_none());
    }
}
