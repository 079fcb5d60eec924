//! `cargo xtask bench ivshmem`: the doorbell round trip between the Linux
//! root cell and the bare-metal ivshmem-demo cell (docs/ivshmem.md),
//! against a baseline measured in the same run.
//!
//! One boot of `linux-gicv3.img` under `-icount shift=4,sleep=off` with a
//! fixed DTB and RTC (instruction-deterministic; the time `cellblock
//! ivshmem ping` reads is the virtual counter). In the root shell:
//! - baseline: `cellblock ivshmem ping 0 --poll`: the root rings, the cell
//!   takes its doorbell interrupt and answers in the shared memory, the
//!   root sees the answer by polling;
//! - doorbell: `cellblock ivshmem ping 0`: the same, and the cell's
//!   doorbell comes back as an interrupt to the root cell, through
//!   gpio-keys and evdev into the waiting process.
//!
//! The ratio doorbell/polled is what waking a Linux process with the
//! interrupt costs on top of the one-way doorbell path. Then ivshmem-demo
//! goes and a Linux non-root cell with link 1 comes (`cellblock cell
//! linux`, docs/linux-cell.md): the same round trip Linux to Linux, with
//! `cellblock ivshmem echo` as the responder.

use crate::build;
use crate::ivshmem_test::start_demo;
use crate::linux::linux_image;
use crate::linux_cell_test;
use crate::linux_test::userspace_up;
use crate::qemu::{LoggedQemu, Machine, Uart0};
use crate::setup::Tools;
use crate::util::{Error, Result};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(900);

/// avg, median, min and max ns from `cellblock ivshmem ping`'s summary
/// line.
fn times(line: &str) -> Option<(u64, u64, u64, u64)> {
    let num = |key: &str| -> Option<u64> {
        line.split_once(key)?
            .1
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((
        num(" avg ")?,
        num(" median ")?,
        num(" min ")?,
        num(" max ")?,
    ))
}

pub fn ivshmem(tools: &Tools, count: u32) -> Result {
    let _lock = crate::util::lock_outputs()?;
    build::build(tools)?;
    let machine = Machine {
        deterministic: true,
        ..Machine::hypervisor(3)
    };
    println!(
        "xtask: qemu-system-aarch64 {} -kernel {}",
        machine.args().join(" "),
        crate::util::rel(&linux_image(3))
    );
    let mut qemu = LoggedQemu::start_with(
        tools,
        "bench-ivshmem",
        machine,
        &linux_image(3),
        &[],
        Uart0::Sockets,
    )?;
    let result = run(&mut qemu, count);
    let rows = match &result {
        Ok(rows) => rows.clone(),
        Err(_) => Vec::new(),
    };
    qemu.conclude(result.map(|_| ()), 40)?;
    println!();
    println!("ivshmem round trip from the root cell, {count} messages each (-icount shift=4):");
    println!(
        "  {:<38} {:>10} {:>10} {:>10} {:>10}",
        "", "avg ns", "median ns", "min ns", "max ns"
    );
    for (label, (avg, median, min, max)) in &rows {
        println!("  {label:<38} {avg:>10} {median:>10} {min:>10} {max:>10}");
    }
    let r = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    if let [(_, base), (_, bell), ..] = rows[..] {
        println!(
            "  ratio doorbell/polled: median {:.3}x, min {:.3}x, avg {:.3}x",
            r(bell.1, base.1),
            r(bell.2, base.2),
            r(bell.0, base.0)
        );
    }
    if let [_, (_, bell), (_, linux)] = rows[..] {
        println!(
            "  ratio Linux cell/ivshmem-demo (doorbell both ways): median {:.3}x, min {:.3}x",
            r(linux.1, bell.1),
            r(linux.2, bell.2)
        );
    }
    Ok(())
}

type Row = (&'static str, (u64, u64, u64, u64));

fn run(qemu: &mut LoggedQemu, count: u32) -> Result<Vec<Row>> {
    qemu.wait_for(TIMEOUT, "Linux userspace on uart0", userspace_up)?;
    let mut sh = start_demo(qemu)?;
    let mut rows = Vec::new();
    for (label, flag) in [
        ("polled (baseline: doorbell one way)", " --poll"),
        ("doorbell both ways (gpio-keys/evdev)", ""),
    ] {
        let cmd = format!("cellblock ivshmem ping 0 --count {count}{flag}");
        let out = sh.ok_within(qemu, &cmd, TIMEOUT)?;
        let t = out
            .lines
            .iter()
            .find_map(|l| times(l))
            .ok_or_else(|| Error(format!("`{cmd}`: no summary line: {}", out.text())))?;
        rows.push((label, t));
    }
    sh.ok_within(
        qemu,
        "cellblock cell destroy ivshmem-demo",
        Duration::from_secs(60),
    )?;
    linux_cell_test::boot_ivshmem_cell(qemu, &mut sh)?;
    let mut cell = crate::linux_test::Shell::connect_to(qemu, 1)?;
    linux_cell_test::cell_shell(qemu, &mut cell)?;
    let (out, _) = linux_cell_test::echo_and_ping(qemu, &mut sh, &mut cell, u64::from(count))?;
    let t = out
        .lines
        .iter()
        .find_map(|l| times(l))
        .ok_or_else(|| Error(format!("ping over link 1: no summary line: {}", out.text())))?;
    rows.push(("doorbell both ways, Linux cell (echo)", t));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_times() {
        let line = "ivshmem link 0: 10 messages, 10 doorbells received, 0 errors, round trip (doorbell) avg 194905 ns, median 150000 ns, min 106608 ns, max 7957632 ns";
        assert_eq!(times(line), Some((194905, 150000, 106608, 7957632)));
        assert_eq!(times("ivshmem link 0: lost"), None);
    }
}
