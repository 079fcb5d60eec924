//! QEMU scenarios of DMA isolation with the SMMUv3 (part of `cargo xtask
//! test`): QEMU's `edu` PCI device belongs to the edu-dma cell, whose
//! stream the SMMU translates with the cell's DMA table.
//!
//! - `edu-gicv3`: edu-dma copies a buffer by DMA into its own RAM and back
//!   (intact), then points the DMA at gic-demo's RAM: the SMMU reports the
//!   fault (stream, address, cell), edu-dma (only it) is stopped, gic-demo
//!   ticks on, and its RAM (read through the QEMU monitor) still holds its
//!   image.
//! - `edu-hv-gicv3`: the same with the first stray DMA aimed at the
//!   hypervisor's RAM, which must stay free of the DMA pattern.
//! - `smmu-driver`: the smmu crate alone against QEMU's SMMUv3 model
//!   (`smmu/qemu-probe`: translated, faulting and aborting streams, a
//!   stream beyond the table, interrupts on and off).

use crate::build::{EDU_FOREIGN, EDU_HV_IMAGE, EDU_HYPERVISOR, EDU_IMAGE};
use crate::qemu::{complete_lines, count_lines, LoggedQemu, Machine, Poll, Uart0};
use crate::setup::Tools;
use crate::util::{out_dir, Context, Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);
const TAIL_LINES: usize = 25;
const ROUND_TRIP_OK: &str = "edu-dma: own memory round trip OK";
const SMMU_FAULT: &str = "Cellblock: SMMU: F_TRANSLATION on stream 0x10";
const EDU_FAILED: &str = "Cellblock: cell \"edu-dma\" failed: DMA fault";
const EDU_STOPPED: &str = "Cellblock: cell \"edu-dma\" stopped";
const TIMER: &str = "Timer fired, jitter:";
/// The first 64-bit word edu-dma writes by DMA.
const PATTERN_WORD0: u64 = 0xedd0_0000_ffff_ffff;

pub fn names() -> Vec<String> {
    ["smmu-driver", "edu-gicv3", "edu-hv-gicv3"]
        .map(String::from)
        .into()
}

pub fn run(tools: &Tools, name: &str) -> Result {
    if name == "smmu-driver" {
        return crate::util::run(
            std::process::Command::new("sh")
                .arg(crate::util::root().join("smmu/qemu-probe/run.sh")),
        );
    }
    let (image, target) = match name {
        "edu-gicv3" => (EDU_IMAGE, EDU_FOREIGN),
        _ => (EDU_HV_IMAGE, EDU_HYPERVISOR),
    };
    let monitor = std::env::temp_dir().join(format!("cellblock-{}-{name}.mon", std::process::id()));
    let _ = std::fs::remove_file(&monitor);
    let extra: Vec<String> = [
        "-machine",
        "iommu=smmuv3",
        "-global",
        "arm-smmuv3.stage=2",
        "-device",
        "edu,dma_mask=0xffffffffffffffff,addr=2",
        "-monitor",
        &format!("unix:{},server=on,wait=off", monitor.display()),
    ]
    .map(String::from)
    .into();
    let kernel = out_dir().join(image);
    let mut qemu = LoggedQemu::start_with(
        tools,
        name,
        Machine::hypervisor(3),
        &kernel,
        &extra,
        Uart0::Log,
    )?;
    let result = scenario(&mut qemu, &monitor, target);
    let _ = std::fs::remove_file(&monitor);
    qemu.conclude(result, TAIL_LINES)
}

fn scenario(qemu: &mut LoggedQemu, monitor: &std::path::Path, target: u64) -> Result {
    qemu.wait_for(TIMEOUT, &format!("`{ROUND_TRIP_OK}` on uart0"), |logs| {
        if logs.uart0.contains("edu-dma: own memory round trip FAIL") {
            return Poll::Fail("edu-dma's own DMA round trip failed".into());
        }
        if logs.uart0.contains(ROUND_TRIP_OK) {
            Poll::Done(())
        } else {
            Poll::Pending
        }
    })?;
    let ticks = qemu.wait_for(
        TIMEOUT,
        &format!("`{SMMU_FAULT}: DMA write to {target:#x}` (cell \"edu-dma\") and `{EDU_STOPPED}`"),
        |logs| {
            let fault = complete_lines(&logs.uart0).any(|l| {
                l.contains(SMMU_FAULT)
                    && l.contains(&format!("DMA write to {target:#x}"))
                    && l.contains("(cell \"edu-dma\")")
            });
            let failed = complete_lines(&logs.uart0).any(|l| l.contains(EDU_FAILED));
            let stopped = complete_lines(&logs.uart0).any(|l| l.contains(EDU_STOPPED));
            if fault && failed && stopped {
                Poll::Done(count_lines(&logs.uart1, TIMER))
            } else {
                Poll::Pending
            }
        },
    )?;
    qemu.wait_for(
        TIMEOUT,
        &format!("{} `{TIMER}` lines (gic-demo ticks on)", ticks + 10),
        |logs| {
            if logs.uart0.contains("edu-dma: done")
                || logs.uart0.contains("round trip after the foreign DMA")
            {
                return Poll::Fail("edu-dma ran on after its DMA fault".into());
            }
            if count_lines(&logs.uart1, TIMER) >= ticks + 10 {
                Poll::Done(())
            } else {
                Poll::Pending
            }
        },
    )?;
    let word = read_phys_u64(monitor, target)?;
    if word == PATTERN_WORD0 {
        return Err(Error(format!(
            "memory at {target:#x} holds the DMA pattern: the SMMU let it through"
        )));
    }
    if target == EDU_FOREIGN {
        let image = std::fs::read(out_dir().join("gic-demo.bin"))
            .context(|| "cannot read gic-demo.bin".to_owned())?;
        let expected = image
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        if word != expected {
            return Err(Error(format!(
                "gic-demo's RAM at {target:#x} changed: {word:#x}, its image has {expected:#x}"
            )));
        }
    }
    println!("  memory at {target:#x} unchanged ({word:#018x})");
    Ok(())
}

/// Reads a 64-bit word of guest physical memory through the QEMU monitor.
fn read_phys_u64(monitor: &std::path::Path, addr: u64) -> Result<u64> {
    let mut s = UnixStream::connect(monitor)
        .context(|| format!("cannot connect to the QEMU monitor {}", monitor.display()))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .context(|| "monitor socket".to_owned())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = |s: &mut UnixStream, out: &mut Vec<u8>, buf: &mut [u8]| {
        while let Ok(n) = s.read(buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    };
    read_all(&mut s, &mut out, &mut buf);
    s.write_all(format!("xp /1gx {addr:#x}\n").as_bytes())
        .context(|| "monitor write".to_owned())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let key = format!("{addr:016x}:");
    loop {
        read_all(&mut s, &mut out, &mut buf);
        let text = String::from_utf8_lossy(&out);
        if let Some(line) = text.lines().find(|l| l.contains(&key)) {
            let value = line
                .split_whitespace()
                .last()
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
            return value
                .ok_or_else(|| Error(format!("cannot parse the monitor's answer: {line}")));
        }
        if Instant::now() > deadline {
            return Err(Error(format!(
                "no answer from the QEMU monitor for {addr:#x}"
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}
