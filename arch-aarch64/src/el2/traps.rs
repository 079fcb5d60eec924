//! Dispatch of exceptions taken to EL2, by vector and exception class.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2};
use alloc::format;
use alloc::string::String;
use arch_aarch64::esr::{Esr, ExceptionClass};
use core::sync::atomic::Ordering;
use hv_core::abi::{CpuStat, HVC_IMM};
use tock_registers::interfaces::Readable;

use super::boot::TrapFrame;
use super::cell::{self, Cell, Fault};
use super::{cpu, gicglue, hypercall, ivshmem, mgmt, panic, psci, setup};

/// Vector offsets 0x200.. (current EL, SPx) and 0x400.. (lower EL, AArch64).
const LOWER_SYNC: u64 = 8;
const LOWER_IRQ: u64 = 9;

#[unsafe(no_mangle)]
extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    match kind {
        LOWER_SYNC => lower_sync(frame),
        LOWER_IRQ => gicglue::handle_irq(),
        0..=7 => panic::el2_exception(frame, kind),
        _ => {
            let esr = ESR_EL2.get();
            fail_current(
                frame,
                format!("unexpected exception (vector {kind})"),
                0,
                esr,
            );
        }
    }
    leave_el2();
}

/// A physical IRQ the assembly fast path acknowledged (`raw` = the IAR
/// value) but does not handle itself.
#[unsafe(no_mangle)]
extern "C" fn handle_irq_acked(_frame: &mut TrapFrame, raw: u64) {
    gicglue::handle_acked(raw as u32);
    leave_el2();
}

/// On the way back to the cell: park instead if asked to.
fn leave_el2() {
    let me = cpu::current();
    if me.park_request.load(Ordering::Acquire) && me.park_request.swap(false, Ordering::AcqRel) {
        setup::park_current();
    }
}

/// Why a cell is stopped: what it did and the address involved.
type Violation = (String, u64);

fn lower_sync(frame: &mut TrapFrame) {
    let me = cpu::current();
    me.count(CpuStat::Total);
    let esr = Esr(ESR_EL2.get());
    let result = match esr.class() {
        ExceptionClass::Hvc64 => {
            me.count(CpuStat::Hypercall);
            if esr.imm16() == HVC_IMM {
                hypercall::dispatch(frame);
            } else {
                // Not ours: SMCCC's "not supported".
                frame.x[0] = u64::MAX;
            }
            Ok(())
        }
        ExceptionClass::Smc64 => {
            me.count(CpuStat::Psci);
            frame.elr += 4;
            psci::handle(frame);
            Ok(())
        }
        ExceptionClass::DataAbortLower => data_abort(frame, esr),
        ExceptionClass::SysReg => {
            me.count(CpuStat::Sysreg);
            sysreg(frame, esr)
        }
        ExceptionClass::InstructionAbortLower => Err((
            String::from("instruction fetch outside the cell"),
            fault_ipa(),
        )),
        other => Err((format!("unhandled exception class {other:?}"), 0)),
    };
    if let Err((what, ipa)) = result {
        fail_current(frame, what, ipa, esr.0);
    }
}

/// The faulting IPA of a stage-2 abort (HPFAR_EL2 gives the page, FAR the
/// offset).
fn fault_ipa() -> u64 {
    let page = (HPFAR_EL2.get() >> 4) & 0xff_ffff_ffff;
    (page << 12) | (FAR_EL2.get() & 0xfff)
}

fn reg(frame: &TrapFrame, r: u8) -> u64 {
    if r == 31 {
        0
    } else {
        frame.x[usize::from(r)]
    }
}

fn set_reg(frame: &mut TrapFrame, r: u8, v: u64) {
    if r != 31 {
        frame.x[usize::from(r)] = v;
    }
}

/// Emulates a load or store from `decoded` with `emulate(write value)`
/// returning the value a load gets.
fn emulate_access(
    frame: &mut TrapFrame,
    esr: Esr,
    ipa: u64,
    what: &str,
    emulate: impl FnOnce(u8, Option<u64>) -> Result<u64, String>,
) -> Result<(), Violation> {
    let access = esr
        .data_abort()
        .decode()
        .map_err(|e| (format!("{what}: {e}"), ipa))?;
    let write = access
        .write
        .then(|| access.store_value(reg(frame, access.reg)));
    let v = emulate(access.size, write).map_err(|e| (e, ipa))?;
    if !access.write {
        set_reg(frame, access.reg, access.load_value(v));
    }
    frame.elr += 4;
    Ok(())
}

fn data_abort(frame: &mut TrapFrame, esr: Esr) -> Result<(), Violation> {
    let ipa = fault_ipa();
    let cell = current_cell();
    // The management page is in the root cell's address space only; the
    // same IPA in another cell is that cell's own.
    if let Some(offset) = mgmt::page_offset(ipa).filter(|_| cell.id == 0) {
        return emulate_access(frame, esr, ipa, "management page", |size, write| {
            mgmt::access(offset, size, write).map_err(String::from)
        });
    }
    if let Some((link, offset)) = ivshmem::regs_offset(&cell, ipa) {
        return emulate_access(frame, esr, ipa, "ivshmem register page", |size, write| {
            ivshmem::access(&cell, &link, offset, size, write)
        });
    }
    let Some(region) = gicglue::mmio_region(ipa) else {
        let kind = if esr.data_abort().is_write() {
            "write"
        } else {
            "read"
        };
        return Err((format!("data abort ({kind} outside the cell)"), ipa));
    };
    cpu::current().count(CpuStat::Mmio);
    emulate_access(
        frame,
        esr,
        ipa,
        "data abort on emulated GIC",
        |size, write| gicglue::emulate(&cell, region, size, write).map_err(|d| format!("{d}")),
    )
}

fn sysreg(frame: &mut TrapFrame, esr: Esr) -> Result<(), Violation> {
    let s = esr.sysreg();
    if s.is_icc_sgi1r() && !s.read {
        let cell = current_cell();
        gicglue::sgi1r_write(&cell, reg(frame, s.rt));
        frame.elr += 4;
        Ok(())
    } else {
        Err((
            format!(
                "trapped system register access (op0 {} op1 {} CRn {} CRm {} op2 {})",
                s.op0, s.op1, s.crn, s.crm, s.op2
            ),
            0,
        ))
    }
}

/// The cell the calling CPU runs.
pub fn current_cell() -> alloc::sync::Arc<Cell> {
    let id = cpu::current().cell.load(Ordering::Acquire);
    match cell::get(id) {
        Some(c) => c,
        None => panic!("CPU {} runs no cell", cpu::current_id()),
    }
}

/// Stops the calling CPU's cell for a fault. The CPU parks on its way out
/// of EL2 (`handle_exception`), once nothing on its stack holds a cell.
pub fn fail_current(frame: &TrapFrame, what: String, ipa: u64, esr: u64) {
    let cell = current_cell();
    setup::fail_cell(
        &cell,
        Fault {
            what,
            ipa,
            esr,
            pc: frame.elr,
            cpu: cpu::current_id(),
        },
    );
    cpu::current().park_request.store(true, Ordering::Release);
}
