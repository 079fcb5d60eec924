//! QEMU scenarios of the Linux root cell (part of `cargo xtask test`):
//! - `linux-bare-gicv3`: the same kernel and initramfs without the
//!   hypervisor (QEMU's own DTB, EL1): checks the kernel, the initramfs and
//!   /init alone, and is the baseline of the boot-time comparison;
//! - `linux-gicv3`, `linux-gicv2`: `linux-gicv*.img`, Linux as root cell
//!   under Cellblock, until its userspace says it is up.

use crate::linux::{linux_image, BOOTARGS, USERSPACE_MARKER};
use crate::qemu::{complete_lines, LoggedQemu, Logs, Machine, Poll};
use crate::setup::Tools;
use crate::util::{log_dir, out_dir, rel, Error, Result};
use std::time::Duration;

/// Time-out of one Linux boot to userspace. Measured under TCG on a 2-core
/// machine: about 20 s bare and under the hypervisor (docs/linux-root.md);
/// generous for slower CI machines.
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
    ["linux-bare-gicv3", "linux-gicv3", "linux-gicv2"]
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
        "linux-gicv3" => (Machine::hypervisor(3), linux_image(3), vec![]),
        "linux-gicv2" => (Machine::hypervisor(2), linux_image(2), vec![]),
        other => return Err(Error(format!("no Linux scenario named {other}"))),
    };
    let mut qemu = LoggedQemu::start_with(tools, name, machine, &kernel, &extra)?;
    let result = qemu.wait_for(
        LINUX_TIMEOUT,
        &format!("`{USERSPACE_MARKER}` on uart0"),
        userspace_up,
    );
    qemu.stop();
    match result {
        Ok(()) => {
            println!(
                "  {name}: userspace after {:.1} s",
                qemu.started.elapsed().as_secs_f64()
            );
            qemu.remove_logs();
            Ok(())
        }
        Err(e) => {
            eprint!("{}", qemu.tails(TAIL_LINES));
            Err(Error(format!(
                "{e} (logs kept: {}/{}.*)",
                rel(&log_dir()),
                qemu.name
            )))
        }
    }
}

fn userspace_up(logs: &Logs) -> Poll<()> {
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
}
