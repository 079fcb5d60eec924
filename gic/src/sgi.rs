//! Software-generated interrupts: a cell reaches its own CPUs only.

use alloc::vec::Vec;

use tock_registers::LocalRegisterCopy;

use crate::access::CellView;
use crate::gicd::HV_SGI;
use crate::regs::{GICD_SGIR, ICC_SGI1R, MPIDR};

/// Filters a trapped ICC_SGI1R_EL1 write of the cell in `view`.
///
/// Returns the ICC_SGI1R_EL1 values the hypervisor writes so that the SGI
/// reaches exactly the cell's CPUs the cell named: IRM=1 ("all but self")
/// becomes explicit lists of the cell's other CPUs; a list names only the
/// cell's CPUs in the addressed Aff3.Aff2.Aff1 cluster and range. One value
/// per (Aff3, Aff2, Aff1, RS) group, in the order of `view.cpus`; empty when
/// no CPU of the cell is addressed or the SGI is [`HV_SGI`].
pub fn filter_sgi1r(view: &CellView, value: u64) -> Vec<u64> {
    let req = LocalRegisterCopy::<u64, ICC_SGI1R::Register>::new(value);
    let all_but_self = req.is_set(ICC_SGI1R::IRM);
    let mut out: Vec<u64> = Vec::new();
    if req.read(ICC_SGI1R::INTID) == u64::from(HV_SGI) {
        return out;
    }
    for cpu in view.cpus {
        let aff = LocalRegisterCopy::<u64, MPIDR::Register>::new(cpu.mpidr);
        let aff0 = aff.read(MPIDR::Aff0);
        let rs = aff0 / 16;
        let bit = 1u64 << (aff0 % 16);
        let targeted = if all_but_self {
            cpu.index != view.current.index
        } else {
            aff.read(MPIDR::Aff3) == req.read(ICC_SGI1R::Aff3)
                && aff.read(MPIDR::Aff2) == req.read(ICC_SGI1R::Aff2)
                && aff.read(MPIDR::Aff1) == req.read(ICC_SGI1R::Aff1)
                && rs == req.read(ICC_SGI1R::RS)
                && req.read(ICC_SGI1R::TargetList) & bit != 0
        };
        if !targeted {
            continue;
        }
        let group = (ICC_SGI1R::INTID.val(req.read(ICC_SGI1R::INTID))
            + ICC_SGI1R::Aff3.val(aff.read(MPIDR::Aff3))
            + ICC_SGI1R::Aff2.val(aff.read(MPIDR::Aff2))
            + ICC_SGI1R::Aff1.val(aff.read(MPIDR::Aff1))
            + ICC_SGI1R::RS.val(rs))
        .value;
        match out
            .iter_mut()
            .find(|v| **v & !ICC_SGI1R::TargetList.val(0).mask() == group)
        {
            Some(v) => *v |= bit,
            None => out.push(group | bit),
        }
    }
    out
}

/// Filters a GICv2 GICD_SGIR write of the cell in `view`.
///
/// Returns the GICD_SGIR value to write (TargetListFilter 0, an explicit
/// list of the cell's CPUs), or `None` when no CPU of the cell is targeted,
/// the filter is the reserved value 3 or the SGI is [`HV_SGI`].
pub fn filter_sgir_v2(view: &CellView, value: u32) -> Option<u32> {
    let req = LocalRegisterCopy::<u32, GICD_SGIR::Register>::new(value);
    if req.read(GICD_SGIR::SGIINTID) == HV_SGI {
        return None;
    }
    let cell = view.v2_mask();
    let targets = match req.read_as_enum(GICD_SGIR::TargetListFilter) {
        Some(GICD_SGIR::TargetListFilter::Value::List) => {
            req.read(GICD_SGIR::CPUTargetList) as u8 & cell
        }
        Some(GICD_SGIR::TargetListFilter::Value::AllButSelf) => cell & !view.current.v2_target,
        Some(GICD_SGIR::TargetListFilter::Value::SelfOnly) => view.current.v2_target,
        None => 0,
    };
    if targets == 0 {
        return None;
    }
    Some(
        (GICD_SGIR::TargetListFilter::List
            + GICD_SGIR::CPUTargetList.val(u32::from(targets))
            + GICD_SGIR::NSATT.val(req.read(GICD_SGIR::NSATT))
            + GICD_SGIR::SGIINTID.val(req.read(GICD_SGIR::SGIINTID)))
        .value,
    )
}
