//! `cargo xtask bench linux`: Linux's boot to userspace bare and as the
//! root cell under Cellblock, the time `/init` takes to create, load and
//! start the gic-demo cell, and the boot of a Linux non-root cell (`cell
//! linux`, 2 CPUs) against the same kernel and initramfs bare on 2 CPUs.
//!
//! Both runs use `-icount shift=4,sleep=off` with a fixed DTB and RTC, so
//! the emulated clock follows the executed instructions. Time is read by
//! `/init` from the virtual counter (`cellblock counter`), which starts at
//! 0 with the machine: under the hypervisor it includes the hypervisor's
//! own boot (unpacking the boot image, building the tables).

use crate::build;
use crate::linux::{linux_image, BOOTARGS};
use crate::qemu::{complete_lines, LoggedQemu, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{out_dir, rel, Result};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(900);
const USERSPACE_AT: &str = "Cellblock root cell: userspace at counter ";
const CELL_USERSPACE_AT: &str = "Cellblock Linux cell: userspace at counter ";
const DEMO_STARTED: &str = "Cellblock root cell: gic-demo created, loaded and started in ";

/// Seconds since reset from `... userspace at counter TICKS HZ (S s)`.
fn userspace_secs(line: &str) -> Option<f64> {
    counter_after(line, USERSPACE_AT)
}

/// Seconds from the `counter TICKS HZ` after `prefix` in `line`.
fn counter_after(line: &str, prefix: &str) -> Option<f64> {
    let rest = line.split_once(prefix)?.1;
    let mut words = rest.split_whitespace();
    let ticks: f64 = words.next()?.parse().ok()?;
    let hz: f64 = words.next()?.parse().ok()?;
    (hz > 0.0).then_some(ticks / hz)
}

/// The seconds of the first `PREFIX counter TICKS HZ` line in `log`.
fn counter_in(log: &str, prefix: &str) -> Poll<f64> {
    match complete_lines(log).find_map(|l| counter_after(l, prefix)) {
        Some(s) => Poll::Done(s),
        None => Poll::Pending,
    }
}

/// Waits for that line on uart0 of `qemu`, then stops QEMU (keeping its
/// logs if the line did not come).
fn counter_of(mut qemu: LoggedQemu, timeout: Duration, prefix: &str) -> Result<f64> {
    let result = qemu.wait_for(timeout, &format!("`{prefix}...` on uart0"), |logs| {
        counter_in(&logs.uart0, prefix)
    });
    let value = result.as_ref().ok().copied();
    qemu.conclude(result.map(|_| ()), 20)?;
    Ok(value.unwrap_or(0.0))
}

/// Microseconds from `... started in N us of emulated time`.
fn demo_us(line: &str) -> Option<u64> {
    line.split_once(DEMO_STARTED)?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn linux(tools: &Tools) -> Result {
    let _lock = crate::util::lock_outputs()?;
    build::build(tools)?;
    let bare_machine = Machine {
        gic: 3,
        virtualization: false,
        smp: 4,
        deterministic: true,
    };
    let cell_machine = Machine {
        deterministic: true,
        ..Machine::hypervisor(3)
    };
    let bare_extra = vec![
        "-initrd".to_owned(),
        rel(&out_dir().join("initramfs.cpio")),
        "-append".to_owned(),
        format!("{BOOTARGS} cellblock.demo=0"),
    ];
    println!(
        "xtask: bare: qemu-system-aarch64 {} -kernel target/cellblock/Image {}",
        bare_machine.args().join(" "),
        bare_extra.join(" ")
    );
    println!(
        "xtask: cell: qemu-system-aarch64 {} -kernel {}",
        cell_machine.args().join(" "),
        rel(&linux_image(3))
    );

    let bare = LoggedQemu::start_with(
        tools,
        "bench-linux-bare",
        bare_machine,
        &out_dir().join("Image"),
        &bare_extra,
        Uart0::Log,
    )?;
    let bare_secs = counter_of(bare, TIMEOUT, USERSPACE_AT)?;

    let mut cell = LoggedQemu::start_with(
        tools,
        "bench-linux-cell",
        cell_machine,
        &linux_image(3),
        &[],
        Uart0::Log,
    )?;
    let cell_result = cell.wait_for(
        TIMEOUT,
        "the userspace counter line and gic-demo's start time",
        |logs| {
            let up = complete_lines(&logs.uart0).find_map(userspace_secs);
            let demo = complete_lines(&logs.uart0).find_map(demo_us);
            match (up, demo) {
                (Some(s), Some(us)) => Poll::Done((s, us)),
                _ => Poll::Pending,
            }
        },
    );
    let measured = cell_result.as_ref().ok().copied();
    cell.conclude(cell_result.map(|_| ()), 20)?;
    let (cell_secs, demo) = measured.unwrap_or((0.0, 0));

    println!();
    println!("Linux boot to userspace (emulated time since reset, -icount shift=4):");
    println!("  bare (EL1, QEMU's DTB)          {bare_secs:>8.3} s");
    println!("  root cell under Cellblock       {cell_secs:>8.3} s");
    println!(
        "  ratio cell/bare                 {:>8.3}x",
        cell_secs / bare_secs
    );
    println!(
        "gic-demo cell create + load + start from the root cell: {:.1} ms",
        demo as f64 / 1000.0
    );
    linux_cell(tools)
}

/// The Linux non-root cell's boot against the same kernel and initramfs
/// bare (EL1, QEMU's DTB, 2 CPUs, 256 MiB).
fn linux_cell(tools: &Tools) -> Result {
    let bare_machine = Machine {
        gic: 3,
        virtualization: false,
        smp: 2,
        deterministic: true,
    };
    let mut bare_args = bare_machine.args();
    if let Some(m) = bare_args.iter().position(|a| a == "-m") {
        bare_args[m + 1] = "256M".into();
    }
    let bare_extra = vec![
        "-initrd".to_owned(),
        rel(&out_dir().join("linux-cell-initramfs.cpio")),
        "-append".to_owned(),
        "console=ttyAMA0".to_owned(),
    ];
    println!(
        "xtask: bare Linux-cell baseline: qemu-system-aarch64 {} -kernel target/cellblock/Image {}",
        bare_args.join(" "),
        bare_extra.join(" ")
    );
    let bare = LoggedQemu::start_with_args(
        tools,
        "bench-linux-cell-bare",
        bare_args,
        &out_dir().join("Image"),
        &bare_extra,
        Uart0::Log,
    )?;
    let bare_secs = counter_of(bare, TIMEOUT, CELL_USERSPACE_AT)?;

    let machine = Machine {
        deterministic: true,
        ..Machine::hypervisor(3)
    };
    println!(
        "xtask: Linux cell: qemu-system-aarch64 {} -kernel {}, then in the root shell: {}",
        machine.args().join(" "),
        rel(&linux_image(3)),
        crate::linux_cell_test::cell_linux_command()
    );
    let mut qemu = LoggedQemu::start_with(
        tools,
        "bench-linux-cell",
        machine,
        &linux_image(3),
        &[],
        Uart0::Socket,
    )?;
    let measured = (|| {
        let mut sh = crate::linux_test::shell(&mut qemu)?;
        sh.ok(&qemu, "cellblock cell destroy gic-demo")?;
        let out = sh.ok(
            &qemu,
            &format!(
                "cellblock counter; {}; cellblock counter",
                crate::linux_cell_test::cell_linux_command()
            ),
        )?;
        let counters: Vec<f64> = out
            .lines
            .iter()
            .filter_map(|l| counter_after(l, "counter "))
            .collect();
        let [before, after] = counters[..] else {
            return Err(crate::util::Error(format!(
                "no counter lines around `cell linux`: {}",
                out.text()
            )));
        };
        let up = qemu.wait_for(
            qemu.started.elapsed() + TIMEOUT,
            "the cell's userspace counter line",
            |logs| counter_in(&logs.uart1, CELL_USERSPACE_AT),
        )?;
        Ok((before, after, up))
    })();
    let value = measured.as_ref().ok().copied();
    qemu.conclude(measured.map(|_| ()), 20)?;
    let (before, after, up) = value.unwrap_or_default();
    println!();
    println!("Linux non-root cell (2 CPUs), emulated time, -icount shift=4:");
    println!("  bare, reset to userspace        {bare_secs:>8.3} s");
    println!(
        "  `cell linux` command            {:>8.3} s  (gunzip, create, load, start)",
        after - before
    );
    println!("  cell, command end to userspace  {:>8.3} s", up - after);
    println!("  cell, command start to userspace {:>7.3} s", up - before);
    println!(
        "  ratio cell boot/bare            {:>8.3}x  (command end to userspace / bare)",
        (up - after) / bare_secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_init_lines() {
        let l = "Cellblock root cell: userspace at counter 125000000 62500000 (2.000000 s)";
        assert_eq!(userspace_secs(l), Some(2.0));
        assert_eq!(userspace_secs("Cellblock root cell: userspace at "), None);
        let d = "Cellblock root cell: gic-demo created, loaded and started in 12345 us of emulated time";
        assert_eq!(demo_us(d), Some(12345));
    }
}
