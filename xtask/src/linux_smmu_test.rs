//! QEMU scenario of the Linux root cell's PCI devices behind the SMMUv3
//! (part of `cargo xtask test`):
//!
//! - `linux-smmu-gicv3`: `linux-smmu-gicv3.img` on `virt` with
//!   `iommu=smmuv3` (stage 2) and a virtio-blk-pci disk at 00:01.0 (stream
//!   0x8, the root cell's). The hypervisor translates that one stream; the
//!   root's /init loads the virtio PCI drivers; through the root shell the
//!   test reads the disk's first 64 bytes (a marker) and its SHA-256, both
//!   of which must match the file the test wrote: every block came in by
//!   DMA through the SMMU with the root cell's DMA table. No SMMU event may
//!   be reported, and the device must interrupt through INTx (no MSI: the
//!   root DTB has no ITS).
//! - `linux-smmu-abort-gicv3`: the same image with the disk at 00:02.0
//!   (stream 0x10, no cell's): Linux finds the device (configuration space
//!   and BARs are the root's), but its DMA aborts in the SMMU (reported
//!   once as a stream of no cell), so no block
//!   ever arrives: the partition scan that virtio-blk's probe waits for
//!   does not finish and /init never reports the drivers loaded. This is
//!   what makes the first scenario's pass mean something: QEMU's virtio
//!   devices bypass the IOMMU unless they are given `iommu_platform=on`.

use crate::linux::USERSPACE_MARKER;
use crate::linux_smmu::{IMAGE, SMMU_MACHINE};
use crate::linux_test::{shell, userspace_up};
use crate::qemu::{complete_lines, LoggedQemu, Logs, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{log_dir, out_dir, rel, Context, Error, Result};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Time-out of the boot to the drivers' line (TCG on a 2-core machine:
/// the plain Linux boot takes about 20 s).
const TIMEOUT: Duration = Duration::from_secs(240);
const TAIL_LINES: usize = 40;
/// The hypervisor's line once the SMMU is set up.
const SMMU_UP: &str = "stream(s) translated, all others abort";
/// Any SMMU report (event, global error, stream set-up failure).
const SMMU_REPORT: &str = "Cellblock: SMMU:";
/// /init's line after insmod.
const DRIVERS: &str = "Cellblock root cell: virtio PCI drivers loaded";
/// The disk: a marker, then pseudo-random bytes.
const DISK_SIZE: usize = 1 << 20;
const MARKER: &str = "Cellblock disk behind the SMMU: stream 0x8, root cell";
/// The disk as the root cell sees it.
const DEVICE: &str = "/sys/bus/pci/devices/0000:00:01.0";

/// How long the aborting disk gets to deliver data after its probe.
const ABORT_WAIT: Duration = Duration::from_secs(15);
/// virtio-blk's line once it found the disk (before any DMA).
const PROBED: &str = "virtio_blk virtio0: [vda]";

pub fn names() -> Vec<String> {
    ["linux-smmu-gicv3", "linux-smmu-abort-gicv3"]
        .map(String::from)
        .into()
}

pub fn run(tools: &Tools, name: &str) -> Result {
    let aborting = name == "linux-smmu-abort-gicv3";
    let disk = out_dir().join("linux-smmu-disk.img");
    let data = disk_contents();
    fs::write(&disk, &data).context(|| format!("cannot write {}", rel(&disk)))?;
    let sha = host_sha256(&disk)?;
    let mut extra: Vec<String> = SMMU_MACHINE.map(String::from).into();
    extra.extend(
        [
            "-drive",
            &format!("file={},if=none,format=raw,id=d0", disk.display()),
            "-device",
            // QEMU's virtio devices bypass the IOMMU unless they offer
            // VIRTIO_F_ACCESS_PLATFORM (`iommu_platform=on`, modern only).
            &format!(
                "virtio-blk-pci,drive=d0,addr={},disable-legacy=on,iommu_platform=on",
                if aborting { 2 } else { 1 }
            ),
        ]
        .map(String::from),
    );
    let mut qemu = LoggedQemu::start_with(
        tools,
        name,
        Machine::hypervisor(3),
        &out_dir().join(IMAGE),
        &extra,
        Uart0::Socket,
    )?;
    let result = if aborting {
        aborted(&mut qemu)
    } else {
        scenario(&mut qemu, &sha)
    };
    qemu.stop();
    let _ = fs::remove_file(&disk);
    match result {
        Ok(()) => {
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

fn scenario(qemu: &mut LoggedQemu, sha: &str) -> Result {
    qemu.wait_for(
        TIMEOUT,
        &format!("`{USERSPACE_MARKER}` and `{DRIVERS}` on uart0"),
        drivers_loaded,
    )?;
    println!(
        "  linux-smmu-gicv3: drivers loaded after {:.1} s",
        qemu.started.elapsed().as_secs_f64()
    );
    let mut sh = shell(qemu)?;
    // The block device appears once virtio-blk has probed the disk.
    sh.ok(
        qemu,
        "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         ls -l /dev/vda",
    )?;
    let head = sh.ok(qemu, "head -c 64 /dev/vda; echo")?;
    if !head.lines.iter().any(|l| l.contains(MARKER)) {
        return Err(Error(format!(
            "/dev/vda does not start with `{MARKER}`: {}",
            head.text()
        )));
    }
    let sum = sh.ok(qemu, "sha256sum /dev/vda")?;
    if !sum.lines.iter().any(|l| l.starts_with(sha)) {
        return Err(Error(format!(
            "sha256sum /dev/vda: {}; the disk file has {sha}",
            sum.text()
        )));
    }
    // INTx, not MSI: no MSI controller in the root DTB.
    let irq = sh.ok(
        qemu,
        &format!("ls {DEVICE}/msi_irqs 2>/dev/null | wc -l; grep -c virtio /proc/interrupts"),
    )?;
    if irq.lines.first().map(String::as_str) != Some("0") {
        return Err(Error(format!(
            "00:01.0 uses MSIs (msi_irqs entries, virtio interrupts): {}",
            irq.text()
        )));
    }
    if let Some(l) = smmu_report(&qemu.logs()) {
        return Err(Error(format!("on uart0: {l}")));
    }
    Ok(())
}

/// The disk at 00:02.0 is probed, then nothing: its DMA aborts.
fn aborted(qemu: &mut LoggedQemu) -> Result {
    let no_data = |logs: &Logs| {
        complete_lines(&logs.uart0)
            .find(|l| l.contains(DRIVERS))
            .map(|l| format!("the disk of no cell worked: {l}"))
    };
    qemu.wait_for(TIMEOUT, &format!("`{PROBED}` on uart0"), |logs| {
        if let Some(e) = no_data(logs) {
            return Poll::Fail(e);
        }
        if let Poll::Fail(e) = userspace_up(logs) {
            return Poll::Fail(e);
        }
        if complete_lines(&logs.uart0).any(|l| l.contains(PROBED)) {
            Poll::Done(())
        } else {
            Poll::Pending
        }
    })?;
    let probed = Instant::now();
    while probed.elapsed() < ABORT_WAIT {
        let logs = qemu.logs();
        if let Some(e) = no_data(&logs) {
            return Err(Error(e));
        }
        if let Poll::Fail(e) = userspace_up(&logs) {
            return Err(Error(e));
        }
        thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  linux-smmu-abort-gicv3: disk probed, no data in {} s",
        ABORT_WAIT.as_secs()
    );
    // The hypervisor says so, once: the disk's stream (00:02.0) is no
    // cell's.
    let logs = qemu.logs();
    let reported: Vec<&str> = complete_lines(&logs.uart0)
        .filter(|l| l.contains("SMMU:") && l.contains("stream of no cell"))
        .collect();
    match reported[..] {
        [l] if l.contains("on stream 0x10") => {
            println!("  uart0: {}", l.trim());
            Ok(())
        }
        _ => Err(Error(format!(
            "the disk's DMA on stream 0x10 is not reported once as a stream of no cell: {reported:?}"
        ))),
    }
}

/// Userspace is up, the SMMU translates one stream, /init loaded the
/// drivers; no SMMU report.
fn drivers_loaded(logs: &Logs) -> Poll<()> {
    if let Some(l) = smmu_report(logs) {
        return Poll::Fail(format!("on uart0: {l}"));
    }
    match userspace_up(logs) {
        Poll::Done(()) => {}
        other => return other,
    }
    let smmu = complete_lines(&logs.uart0).find(|l| l.contains(SMMU_UP));
    match smmu {
        Some(l) if l.contains(": 1 stream(s)") => {}
        Some(l) => return Poll::Fail(format!("the root cell's stream is not the only one: {l}")),
        None => return Poll::Fail(format!("no `SMMUv3 at ... {SMMU_UP}` line")),
    }
    if let Some(l) = complete_lines(&logs.uart0).find(|l| l.contains("insmod ")) {
        return Poll::Fail(format!("on uart0: {l}"));
    }
    if complete_lines(&logs.uart0).any(|l| l.contains(DRIVERS)) {
        Poll::Done(())
    } else {
        Poll::Pending
    }
}

fn smmu_report(logs: &Logs) -> Option<String> {
    complete_lines(&logs.uart0)
        .find(|l| l.contains(SMMU_REPORT))
        .map(str::to_owned)
}

/// The marker (and a newline) at offset 0, then bytes of a fixed
/// xorshift sequence: the same disk every run.
fn disk_contents() -> Vec<u8> {
    let mut d = Vec::with_capacity(DISK_SIZE);
    d.extend_from_slice(MARKER.as_bytes());
    d.push(b'\n');
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while d.len() < DISK_SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.extend_from_slice(&x.to_le_bytes());
    }
    d.truncate(DISK_SIZE);
    d
}

/// The host's `sha256sum` of `file` (hex).
fn host_sha256(file: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .context(|| "cannot run sha256sum".to_owned())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .filter(|h| out.status.success() && h.len() == 64)
        .map(str::to_owned)
        .ok_or_else(|| Error(format!("sha256sum {}: {}", rel(file), text.trim())))
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
    fn disk_starts_with_the_marker_and_is_fixed() {
        let d = disk_contents();
        assert_eq!(d.len(), DISK_SIZE);
        assert!(d.starts_with(MARKER.as_bytes()));
        assert!(MARKER.len() < 64);
        assert_eq!(d, disk_contents());
    }

    #[test]
    fn boot_checks() {
        let smmu = "Cellblock: SMMUv3 at 0x9050000: 1 stream(s) translated, all others abort\n";
        let up = format!("{USERSPACE_MARKER} (6.1.0, 4 CPUs online)\n");
        let ok = format!("{smmu}{up}{DRIVERS}\n");
        assert!(matches!(drivers_loaded(&logs(&ok)), Poll::Done(())));
        assert!(matches!(
            drivers_loaded(&logs(&format!("{smmu}{up}"))),
            Poll::Pending
        ));
        let no_smmu = format!("{up}{DRIVERS}\n");
        assert!(matches!(drivers_loaded(&logs(&no_smmu)), Poll::Fail(_)));
        let two = ok.replace(": 1 stream(s)", ": 2 stream(s)");
        assert!(matches!(drivers_loaded(&logs(&two)), Poll::Fail(_)));
        let fault = format!(
            "{smmu}Cellblock: SMMU: F_TRANSLATION on stream 0x8: DMA read of 0x7f000000 (cell \"root\")\n"
        );
        assert!(matches!(drivers_loaded(&logs(&fault)), Poll::Fail(_)));
        let insmod = format!("{smmu}{up}Cellblock root cell: insmod virtio_pci.ko failed\n");
        assert!(matches!(drivers_loaded(&logs(&insmod)), Poll::Fail(_)));
        assert!(names().iter().all(|n| n.starts_with("linux-smmu")));
    }
}
