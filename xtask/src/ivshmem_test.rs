//! `ivshmem-gicv3` and `ivshmem-gicv2` (part of `cargo xtask test`):
//! ivshmem link 0 between
//! the Linux root cell and the bare-metal ivshmem-demo cell
//! (docs/ivshmem.md), driven through the root shell on uart0:
//! 1. /init's gic-demo is destroyed (its CPU 3 and UART go to
//!    ivshmem-demo), ivshmem-demo is created, loaded and started;
//! 2. `cellblock ivshmem ping 0 --count 10000`: every numbered message
//!    comes back with a doorbell each way, none lost, reordered or
//!    duplicated; ivshmem-demo counts 10000 messages and 0 errors on uart1;
//! 3. ivshmem-intruder (CPU 2, not named in the link) reads the shared
//!    memory and is stopped `failed` with that address;
//! 4. the root cell and ivshmem-demo are unaffected: another 1000 messages
//!    go through.

use crate::linux::{linux_image, USERSPACE_MARKER};
use crate::linux_test::{shell, userspace_up, Shell};
use crate::qemu::{complete_lines, LoggedQemu, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{Error, Result};
use std::time::Duration;

/// The scenario names.
pub fn names() -> Vec<String> {
    vec!["ivshmem-gicv3".to_owned(), "ivshmem-gicv2".to_owned()]
}

/// Time-out of the Linux boot to userspace (as linux_test's).
const LINUX_TIMEOUT: Duration = Duration::from_secs(180);
/// Time-out of one cell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Time-out of the 10,000 round trips under TCG.
const PING_TIMEOUT: Duration = Duration::from_secs(600);
/// Messages of the main run and of the run after the intruder.
const MESSAGES: u64 = 10_000;
const MORE_MESSAGES: u64 = 1000;
/// The intruder's read: link 0's shared memory.
const SHMEM: &str = "IPA 0x7ec00000";
const TAIL_LINES: usize = 40;

/// Runs `ivshmem-gicv3` or `ivshmem-gicv2`.
pub fn run(tools: &Tools, name: &str) -> Result {
    let gic = match name {
        "ivshmem-gicv3" => 3,
        "ivshmem-gicv2" => 2,
        _ => return Err(Error(format!("no ivshmem scenario named {name}"))),
    };
    let mut qemu = LoggedQemu::start_with(
        tools,
        name,
        Machine::hypervisor(gic),
        &linux_image(gic),
        &[],
        Uart0::Socket,
    )?;
    let mut result = qemu.wait_for(
        LINUX_TIMEOUT,
        &format!("`{USERSPACE_MARKER}` on uart0"),
        userspace_up,
    );
    if result.is_ok() {
        result = checks(&mut qemu);
    }
    qemu.conclude(result, TAIL_LINES)
}

/// Waits for a complete line containing every one of `parts` on uart0
/// (`uart1` false) or uart1.
fn wait_line(qemu: &mut LoggedQemu, uart1: bool, parts: &[&str], timeout: Duration) -> Result {
    let deadline = qemu.started.elapsed() + timeout;
    let what = format!(
        "a line with {} on uart{}",
        parts.join(" … "),
        u8::from(uart1)
    );
    qemu.wait_for(deadline, &what, |logs| {
        let log = if uart1 { &logs.uart1 } else { &logs.uart0 };
        if complete_lines(log).any(|l| parts.iter().all(|p| l.contains(p))) {
            Poll::Done(())
        } else {
            Poll::Pending
        }
    })
}

/// Takes the root shell, replaces /init's gic-demo by ivshmem-demo and
/// waits until ivshmem-demo is ready.
pub(crate) fn start_demo(qemu: &mut LoggedQemu) -> Result<Shell> {
    let mut sh = shell(qemu)?;
    sh.ok_within(qemu, "cellblock cell destroy gic-demo", COMMAND_TIMEOUT)?;
    for cmd in [
        "cellblock cell create /opt/cellblock/qemu-ivshmem-demo.cell",
        "cellblock cell load ivshmem-demo /opt/cellblock/ivshmem-demo.bin",
        "cellblock cell start ivshmem-demo",
    ] {
        sh.ok_within(qemu, cmd, COMMAND_TIMEOUT)?;
    }
    wait_line(
        qemu,
        true,
        &["ivshmem-demo: link 0 ready (peer up)"],
        COMMAND_TIMEOUT,
    )?;
    Ok(sh)
}

fn checks(qemu: &mut LoggedQemu) -> Result {
    let mut sh = start_demo(qemu)?;
    let ping = format!("cellblock ivshmem ping 0 --count {MESSAGES}");
    let out = sh.ok_within(qemu, &ping, PING_TIMEOUT)?;
    let summary =
        format!("ivshmem link 0: {MESSAGES} messages, {MESSAGES} doorbells received, 0 errors");
    if !out.lines.iter().any(|l| l.contains(&summary)) {
        return Err(Error(format!(
            "`{ping}` did not print `{summary}`: {}",
            out.text()
        )));
    }
    let demo_line = format!("ivshmem-demo: {MESSAGES} messages, 0 errors");
    wait_line(qemu, true, &[&demo_line], COMMAND_TIMEOUT)?;
    if let Some(l) = complete_lines(&qemu.logs().uart1)
        .find(|l| l.contains("duplicated") || l.contains("lost") || l.contains("reordered"))
    {
        return Err(Error(format!("ivshmem-demo on uart1: {l}")));
    }

    for cmd in [
        "cellblock cell create /opt/cellblock/qemu-ivshmem-intruder.cell",
        "cellblock cell load ivshmem-intruder /opt/cellblock/ivshmem-intruder.bin",
        "cellblock cell start ivshmem-intruder",
    ] {
        sh.ok_within(qemu, cmd, COMMAND_TIMEOUT)?;
    }
    wait_line(
        qemu,
        false,
        &["Cellblock: cell \"ivshmem-intruder\" failed:", SHMEM],
        COMMAND_TIMEOUT,
    )?;
    if let Some(l) = complete_lines(&qemu.logs().uart0).find(|l| l.contains("isolation is broken"))
    {
        return Err(Error(format!("on uart0: {l}")));
    }
    let list = sh.ok_within(qemu, "cellblock cell list", COMMAND_TIMEOUT)?;
    let state = |name: &str| {
        list.lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(1) == Some(&name))
            .and_then(|f| f.get(2).map(|s| s.to_string()))
    };
    for (cell, want) in [
        ("ivshmem-intruder", "failed"),
        ("ivshmem-demo", "running"),
        ("root", "running"),
    ] {
        if state(cell).as_deref() != Some(want) {
            return Err(Error(format!(
                "cell list: {cell} is not {want}: {}",
                list.text()
            )));
        }
    }

    let again = format!("cellblock ivshmem ping 0 --count {MORE_MESSAGES}");
    let out = sh.ok_within(qemu, &again, PING_TIMEOUT)?;
    let summary = format!(
        "ivshmem link 0: {MORE_MESSAGES} messages, {MORE_MESSAGES} doorbells received, 0 errors"
    );
    if !out.lines.iter().any(|l| l.contains(&summary)) {
        return Err(Error(format!(
            "`{again}` did not print `{summary}`: {}",
            out.text()
        )));
    }
    let total = MESSAGES + MORE_MESSAGES;
    wait_line(
        qemu,
        true,
        &[&format!("ivshmem-demo: {total} messages, 0 errors")],
        COMMAND_TIMEOUT,
    )
}
