//! PSCI and SMCCC emulation for cells (SMC trapped by HCR_EL2.TSC). CPUs
//! may be switched on and off only within the calling cell. SYSTEM_OFF and
//! SYSTEM_RESET of the root cell go to the firmware (the machine); from any
//! other cell they shut down or restart that cell alone. SiP and OEM
//! firmware calls are passed to the firmware for the root cell only.

use core::sync::atomic::Ordering;
use hv_core::abi::CpuState;
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
use smccc::psci::error::{ALREADY_ON, INVALID_PARAMETERS, NOT_SUPPORTED};
use smccc::psci::*;

use super::boot::TrapFrame;
use super::cpu::{StartRequest, CPUS};
use super::{lifecycle, setup, traps};

/// PSCI 1.1 / SMCCC 1.1.
const VERSION_1_1: i64 = 0x1_0001;

pub fn handle(frame: &mut TrapFrame) {
    let fid = frame.x[0] as u32;
    let smc32 = fid & (1 << 30) == 0;
    let arg = |i: usize| {
        if smc32 {
            frame.x[i] & 0xffff_ffff
        } else {
            frame.x[i]
        }
    };
    let ret: i64 = match fid {
        PSCI_VERSION | SMCCC_VERSION => VERSION_1_1,
        SMCCC_ARCH_FEATURES => i64::from(NOT_SUPPORTED),
        PSCI_FEATURES => match arg(1) as u32 {
            PSCI_VERSION
            | PSCI_CPU_ON_32
            | PSCI_CPU_ON_64
            | PSCI_CPU_OFF
            | PSCI_AFFINITY_INFO_32
            | PSCI_AFFINITY_INFO_64
            | PSCI_SYSTEM_OFF
            | PSCI_SYSTEM_RESET
            | PSCI_FEATURES
            | SMCCC_VERSION => 0,
            _ => i64::from(NOT_SUPPORTED),
        },
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(arg(1), arg(2), arg(3)),
        PSCI_CPU_OFF => {
            // Parks on the way out of EL2; CPU_OFF does not return.
            super::cpu::current()
                .park_request
                .store(true, Ordering::Release);
            0
        }
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => affinity_info(arg(1)),
        PSCI_SYSTEM_OFF | PSCI_SYSTEM_RESET => {
            if traps::current_cell().id == 0 {
                setup::system_off_or_reset(fid == PSCI_SYSTEM_RESET)
            } else {
                // Does not return: the calling CPU parks (or re-enters
                // the restarted cell) on its way out of EL2.
                lifecycle::power_off_calling_cell(fid == PSCI_SYSTEM_RESET);
                0
            }
        }
        _ if is_firmware_service(fid) && traps::current_cell().id == 0 => {
            setup::forward_to_firmware(frame);
            return;
        }
        _ => i64::from(NOT_SUPPORTED),
    };
    frame.x[0] = ret as u64;
}

/// SiP and OEM services (SMCCC owner 2 and 3): the board firmware's clock,
/// power and pin control, which a root cell's drivers call (ZynqMP, Tegra).
/// Passed to the firmware for the root cell only; other cells get
/// NOT_SUPPORTED.
fn is_firmware_service(fid: u32) -> bool {
    matches!((fid >> 24) & 0x3f, 2 | 3)
}

/// The logical id of the calling cell's CPU with affinity `mpidr`.
fn own_cpu(mpidr: u64) -> Option<usize> {
    let cell = traps::current_cell();
    let mpidr = mpidr & 0xff_00ff_ffff;
    cell.cpus()
        .into_iter()
        .find(|&c| CPUS[c].mpidr.load(Ordering::Relaxed) == mpidr)
}

fn cpu_on(target: u64, entry: u64, context: u64) -> i64 {
    let Some(c) = own_cpu(target) else {
        return i64::from(INVALID_PARAMETERS);
    };
    if CPUS[c].state() == CpuState::Running {
        return i64::from(ALREADY_ON);
    }
    setup::start_cpu(c, StartRequest { entry, context });
    0
}

fn affinity_info(target: u64) -> i64 {
    match own_cpu(target) {
        Some(c) if CPUS[c].state() == CpuState::Running => 0,
        Some(_) => 1,
        None => i64::from(INVALID_PARAMETERS),
    }
}
