//! QEMU scenario of a Linux non-root cell beside the Linux root cell (part
//! of `cargo xtask test`), `linux-cell-gicv3` and `linux-cell-gicv2`:
//! - the root shell (uart0) destroys /init's gic-demo and runs `cellblock
//!   cell linux` with the same Debian kernel and a busybox initramfs on
//!   CPUs 2-3 and 256 MiB; the cell's Linux reaches its userspace marker
//!   on uart1 while the root shell answers;
//! - `reboot` in the cell restarts that cell only (its userspace comes
//!   again), `poweroff` leaves it `shut down`; the root runs on; `cell
//!   start` from the root boots it again, and `cell shutdown` stops it at
//!   once (the cell's communication region is passive);
//! - destroy gives CPUs 2 and 3 back to the root's Linux and the memory
//!   pool use returns to where it was;
//! - a second `cell linux` boots again, this time with ivshmem link 1 to
//!   the root: `cellblock ivshmem echo` in the cell and `ivshmem ping` in
//!   the root exchange 2000 numbered messages with doorbells, Linux to
//!   Linux, none lost, reordered or duplicated; then a `/dev/mem` read of
//!   the root's RAM from inside it makes that cell `failed` (IPA of the
//!   access recorded), and the root still answers.

use crate::linux::{linux_image, LINUX_CELL_INITRD, LINUX_CELL_KERNEL};
use crate::linux_test::{cpu_back, expect_state, pool, same_pool, shell, Output, Shell};
use crate::qemu::{complete_lines, count_lines, LoggedQemu, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{Error, Result};
use std::io::Write;
use std::time::Duration;

/// What the cell's /init prints once its userspace runs (guestfs/init).
pub const CELL_MARKER: &str = "Cellblock Linux cell: userspace up";
/// The cell's config in the root's initramfs.
const CELL_CONFIG: &str = "/opt/cellblock/cells/qemu-linux.toml";
/// Root RAM (the root's kernel) that the cell must not reach.
const ROOT_ADDR: &str = "0x44000000";
/// Time-out of one boot of the cell to userspace.
const CELL_BOOT_TIMEOUT: Duration = Duration::from_secs(120);
const TAIL_LINES: usize = 40;

pub fn names() -> Vec<String> {
    vec!["linux-cell-gicv3".to_owned(), "linux-cell-gicv2".to_owned()]
}

/// The same cell with ivshmem link 1 to the root cell.
const IVSHMEM_CONFIG: &str = "/opt/cellblock/cells/qemu-linux-ivshmem.toml";
/// Messages over link 1 between the two Linux kernels.
const IVSHMEM_MESSAGES: u64 = 2000;

/// The `cellblock cell linux` command line of the scenario.
pub fn cell_linux_command() -> String {
    cell_linux_command_with(CELL_CONFIG)
}

fn cell_linux_command_with(config: &str) -> String {
    format!("cellblock cell linux {config} /{LINUX_CELL_KERNEL} --initrd /{LINUX_CELL_INITRD}")
}

/// Numbered messages over ivshmem link 1, Linux to Linux: `ivshmem echo`
/// in the cell, `ivshmem ping` in the root; both count them.
fn ivshmem_between_linuxes(qemu: &mut LoggedQemu, sh: &mut Shell, cell: &mut Shell) -> Result {
    let (out, echoed) = echo_and_ping(qemu, sh, cell, IVSHMEM_MESSAGES)?;
    let want = format!("ivshmem link 1: {IVSHMEM_MESSAGES} messages, {IVSHMEM_MESSAGES} doorbells received, 0 errors");
    if out.status != 0 || !out.text().contains(&want) {
        return Err(Error(format!("root's ping over link 1: {}", out.text())));
    }
    let want = format!("echoed {IVSHMEM_MESSAGES} messages, last {IVSHMEM_MESSAGES}, 0 errors");
    if !echoed.contains(&want) {
        return Err(Error(format!("the cell's echo over link 1: {echoed}")));
    }
    Ok(())
}

/// Starts `cellblock ivshmem echo 1` in the Linux cell, then `ivshmem ping
/// 1` in the root, `count` messages; returns the ping's output and the
/// echo's summary line.
pub(crate) fn echo_and_ping(
    qemu: &mut LoggedQemu,
    sh: &mut Shell,
    cell: &mut Shell,
    count: u64,
) -> Result<(Output, String)> {
    let from = qemu.logs().uart1.len();
    type_in(cell, &format!("cellblock ivshmem echo 1 --count {count}"))?;
    wait_uart1(qemu, from, "ivshmem link 1: ready to echo")?;
    let ping = format!("cellblock ivshmem ping 1 --count {count}");
    let out = sh.run(qemu, &ping, Duration::from_secs(600))?;
    println!("  $ {ping}\n    {}", out.text());
    let echoed = wait_uart1(qemu, from, "ivshmem link 1: echoed")?;
    println!("  uart1: {echoed}");
    Ok((out, echoed))
}

/// Boots the Linux cell with ivshmem link 1 from the root shell and waits
/// for its userspace; `cell_shell` then quiets its shell.
pub(crate) fn boot_ivshmem_cell(qemu: &mut LoggedQemu, sh: &mut Shell) -> Result {
    let booted = count_lines(&qemu.logs().uart1, CELL_MARKER);
    sh.ok(qemu, &cell_linux_command_with(IVSHMEM_CONFIG))?;
    wait_cell_up(qemu, booted + 1)
}

pub fn run(tools: &Tools, name: &str) -> Result {
    let gic = match name {
        "linux-cell-gicv3" => 3,
        "linux-cell-gicv2" => 2,
        _ => return Err(Error(format!("no Linux cell scenario named {name}"))),
    };
    let mut qemu = LoggedQemu::start_with(
        tools,
        name,
        Machine::hypervisor(gic),
        &linux_image(gic),
        &[],
        Uart0::Sockets,
    )?;
    let result = checks(&mut qemu);
    qemu.conclude(result, TAIL_LINES)
}

/// Waits until uart1 has shown [`CELL_MARKER`] `count` times in all.
fn wait_cell_up(qemu: &mut LoggedQemu, count: usize) -> Result {
    let deadline = qemu.started.elapsed() + CELL_BOOT_TIMEOUT;
    qemu.wait_for(
        deadline,
        &format!("`{CELL_MARKER}` #{count} on uart1"),
        |logs| {
            if let Some(l) = complete_lines(&logs.uart1).find(|l| l.contains("Kernel panic")) {
                return Poll::Fail(format!("the cell's Linux: {l}"));
            }
            if count_lines(&logs.uart1, CELL_MARKER) >= count {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )
}

/// Waits until uart `n` (0: the hypervisor and the root; 1: the cell)
/// has a line with `text` after byte `from`.
fn wait_line(qemu: &mut LoggedQemu, n: usize, from: usize, text: &str) -> Result<String> {
    let deadline = qemu.started.elapsed() + Duration::from_secs(60);
    qemu.wait_for(deadline, &format!("`{text}` on uart{n}"), |logs| {
        let log = if n == 0 { &logs.uart0 } else { &logs.uart1 };
        match complete_lines(log.get(from..).unwrap_or_default()).find(|l| l.contains(text)) {
            Some(l) => Poll::Done(l.to_owned()),
            None => Poll::Pending,
        }
    })
}

fn wait_uart0(qemu: &mut LoggedQemu, from: usize, text: &str) -> Result<String> {
    wait_line(qemu, 0, from, text)
}

fn wait_uart1(qemu: &mut LoggedQemu, from: usize, text: &str) -> Result<String> {
    wait_line(qemu, 1, from, text)
}

/// Types `line` into the cell's console without waiting for an answer.
fn type_in(cell: &mut Shell, line: &str) -> Result {
    println!("  cell# {line}");
    cell.stream_mut()
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Error(format!("uart1 socket: {e}")))
}

/// The cell's shell, quiet (no echo, no prompt), once it has booted.
pub(crate) fn cell_shell(qemu: &LoggedQemu, cell: &mut Shell) -> Result {
    cell.run(qemu, "stty -echo; PS1=", Duration::from_secs(30))
        .map(drop)
}

fn checks(qemu: &mut LoggedQemu) -> Result {
    let mut sh = shell(qemu)?;
    sh.ok(qemu, "cellblock cell destroy gic-demo")?;
    cpu_back(qemu, &mut sh, 3)?;
    let before = pool(&sh.ok(qemu, "cellblock info")?);
    let uart1_start = qemu.logs().uart1.len();

    // First boot, with the root answering meanwhile.
    let out = sh.run(qemu, &cell_linux_command(), Duration::from_secs(180))?;
    println!("  $ {}\n    {}", cell_linux_command(), out.text());
    if out.status != 0 {
        return Err(Error(format!("`cell linux` failed: {}", out.text())));
    }
    sh.ok(qemu, "echo root answers while the cell boots")?;
    wait_cell_up(
        qemu,
        count_lines(&qemu.logs().uart1[..uart1_start], CELL_MARKER) + 1,
    )?;
    let up = qemu.logs().uart1;
    let line = complete_lines(&up)
        .filter(|l| l.contains(CELL_MARKER))
        .last()
        .unwrap_or_default()
        .to_owned();
    println!("  uart1: {line}");
    if !line.contains("2 CPUs online") {
        return Err(Error(format!(
            "the cell's Linux does not run on 2 CPUs: {line}"
        )));
    }
    expect_state(qemu, &mut sh, "linux", "running")?;
    let mut cell = Shell::connect_to(qemu, 1)?;
    cell_shell(qemu, &mut cell)?;
    let mem = cell.ok(qemu, "grep MemTotal /proc/meminfo; cat /proc/cmdline")?;
    println!("  cell: {}", mem.text());

    // reboot: the cell alone restarts.
    let booted = count_lines(&qemu.logs().uart1, CELL_MARKER);
    let from = qemu.logs().uart0.len();
    type_in(&mut cell, "reboot")?;
    wait_uart0(qemu, from, "cell \"linux\" requests a restart")?;
    wait_cell_up(qemu, booted + 1)?;
    sh.ok(qemu, "echo root answers after the cell restarted")?;
    expect_state(qemu, &mut sh, "linux", "running")?;
    cell_shell(qemu, &mut cell)?;

    // poweroff: the cell alone stops.
    let from = qemu.logs().uart0.len();
    type_in(&mut cell, "poweroff")?;
    wait_uart0(qemu, from, "cell \"linux\" shut down")?;
    expect_state(qemu, &mut sh, "linux", "shut down")?;
    sh.ok(qemu, "echo root answers after the cell powered off")?;

    // `cell start` from the root boots it again (through the stub).
    let booted = count_lines(&qemu.logs().uart1, CELL_MARKER);
    sh.ok(qemu, "cellblock cell start linux")?;
    wait_cell_up(qemu, booted + 1)?;
    expect_state(qemu, &mut sh, "linux", "running")?;

    // `cell shutdown`: the kernel does not answer the communication
    // region; `cell linux` made the cell passive, so it stops at once.
    sh.ok(qemu, "cellblock cell shutdown linux")?;
    expect_state(qemu, &mut sh, "linux", "shut down")?;

    // destroy: CPUs and RAM back.
    sh.ok(qemu, "cellblock cell destroy linux")?;
    cpu_back(qemu, &mut sh, 2)?;
    cpu_back(qemu, &mut sh, 3)?;
    same_pool(
        &before,
        &sh.ok(qemu, "cellblock info")?,
        "a Linux cell's life",
    )?;

    // Again, with ivshmem link 1 to the root; then the isolation check.
    boot_ivshmem_cell(qemu, &mut sh)?;
    cell_shell(qemu, &mut cell)?;
    ivshmem_between_linuxes(qemu, &mut sh, &mut cell)?;
    let from = qemu.logs().uart0.len();
    type_in(&mut cell, &format!("devmem {ROOT_ADDR}"))?;
    let failed = wait_uart0(qemu, from, "Cellblock: cell \"linux\" failed:")?;
    println!("  uart0: {failed}");
    if !failed.contains(&format!("IPA {ROOT_ADDR}")) {
        return Err(Error(format!(
            "the failure does not name the root's address {ROOT_ADDR}: {failed}"
        )));
    }
    expect_state(qemu, &mut sh, "linux", "failed")?;
    sh.ok(qemu, "echo root answers after the cell failed")?;
    sh.ok(qemu, "cellblock cell destroy linux")?;
    cpu_back(qemu, &mut sh, 2)?;
    same_pool(&before, &sh.ok(qemu, "cellblock info")?, "two Linux cells")?;
    Ok(())
}
