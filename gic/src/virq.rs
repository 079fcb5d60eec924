//! Virtual interrupt injection through list registers, with a per-CPU
//! overflow queue drained on the underflow maintenance interrupt.

use core::fmt;

use crate::lr::{Lr, LrState};

/// The list registers of the current CPU's virtual CPU interface.
pub trait ListRegs {
    /// Number of implemented list registers.
    fn num_lrs(&self) -> usize;
    /// Reads list register `i` (< `num_lrs()`).
    fn read_lr(&self, i: usize) -> Lr;
    /// Writes list register `i` (< `num_lrs()`).
    fn write_lr(&mut self, i: usize, lr: Lr);
    /// Turns the underflow maintenance interrupt on or off.
    fn set_underflow_irq(&mut self, on: bool);
    /// Bit `i` set: list register `i` holds an interrupt (is not invalid).
    /// Hardware answers this from one status register (ICH_ELRSR_EL2,
    /// GICH_ELRSR), which keeps the injection path short.
    fn used_lrs(&self) -> u64 {
        (0..self.num_lrs())
            .filter(|&i| self.read_lr(i).state != LrState::Invalid)
            .fold(0, |m, i| m | 1 << i)
    }
}

/// Capacity of a [`PendingQueue`].
pub const QUEUE_CAPACITY: usize = 64;

/// Virtual interrupts of one CPU waiting for a free list register.
#[derive(Clone, Debug)]
pub struct PendingQueue {
    entries: [Lr; QUEUE_CAPACITY],
    len: usize,
}

impl Default for PendingQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The pending queue of a CPU is full: the interrupt was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull {
    /// The virtual INTID that could not be queued.
    pub vintid: u32,
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "virtual irq {}: list registers and pending queue ({QUEUE_CAPACITY}) full",
            self.vintid
        )
    }
}

impl PendingQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            entries: [Lr::INVALID; QUEUE_CAPACITY],
            len: 0,
        }
    }

    /// Number of queued interrupts.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The queued interrupts, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Lr> {
        self.entries[..self.len].iter()
    }

    /// Whether `vintid` is queued.
    pub fn contains(&self, vintid: u32) -> bool {
        self.iter().any(|l| l.vintid == vintid)
    }

    /// Drops everything (CPU reset, cell destruction).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, lr: Lr) -> Result<(), QueueFull> {
        let slot = self
            .entries
            .get_mut(self.len)
            .ok_or(QueueFull { vintid: lr.vintid })?;
        *slot = lr;
        self.len += 1;
        Ok(())
    }

    fn remove(&mut self, i: usize) -> Lr {
        let lr = self.entries[i];
        self.entries.copy_within(i + 1..self.len, i);
        self.len -= 1;
        lr
    }
}

/// What [`place`] did.
enum Placement {
    /// Written to a free list register.
    Placed,
    /// Already pending in a list register (or made pending-and-active).
    Merged,
    /// A hardware interrupt with this vINTID is still active in a list
    /// register: it must wait until the cell deactivates it.
    Busy,
    /// No free list register.
    NoRoom,
}

/// Tries to put `lr` into a list register, never giving one vINTID two
/// list registers (UNPREDICTABLE for the GIC).
fn place(lrs: &mut impl ListRegs, lr: Lr) -> Placement {
    let mut free = None;
    let used = lrs.used_lrs();
    for i in 0..lrs.num_lrs() {
        if used & (1 << i) == 0 {
            free.get_or_insert(i);
            continue;
        }
        let cur = lrs.read_lr(i);
        if cur.state == LrState::Invalid {
            free.get_or_insert(i);
        } else if cur.vintid == lr.vintid {
            if cur.state.is_pending() {
                return Placement::Merged;
            }
            // Active. A software interrupt can be pending again at once; a
            // hardware one keeps its pending state in the distributor and
            // must not be made pending-and-active.
            if cur.pintid.is_none() && lr.pintid.is_none() {
                lrs.write_lr(
                    i,
                    Lr {
                        state: LrState::PendingActive,
                        ..cur
                    },
                );
                return Placement::Merged;
            }
            return Placement::Busy;
        }
    }
    match free {
        Some(i) => {
            lrs.write_lr(i, lr);
            Placement::Placed
        }
        None => Placement::NoRoom,
    }
}

/// Puts virtual interrupt `lr` into a free list register; when none is
/// free, a lower-priority pending one makes room, or `lr` waits in `queue`
/// and the underflow maintenance interrupt is turned on. An interrupt
/// already pending (in a list register or in the queue) is not added twice.
pub fn inject(lrs: &mut impl ListRegs, queue: &mut PendingQueue, lr: Lr) -> Result<(), QueueFull> {
    if queue.contains(lr.vintid) {
        return Ok(());
    }
    let waiting = match place(lrs, lr) {
        Placement::Placed | Placement::Merged => return Ok(()),
        Placement::Busy => lr,
        Placement::NoRoom => match lowest_pending(lrs) {
            // Numerically higher priority value = less urgent.
            Some((i, victim)) if victim.priority > lr.priority => {
                lrs.write_lr(i, lr);
                victim
            }
            _ => lr,
        },
    };
    queue.push(waiting)?;
    lrs.set_underflow_irq(true);
    Ok(())
}

/// The least urgent list register that is only pending (not active), the
/// later one among equals.
fn lowest_pending(lrs: &impl ListRegs) -> Option<(usize, Lr)> {
    (0..lrs.num_lrs())
        .map(|i| (i, lrs.read_lr(i)))
        .filter(|(_, l)| l.state == LrState::Pending)
        .max_by_key(|(i, l)| (l.priority, *i))
}

/// On the maintenance interrupt: moves queued interrupts into free list
/// registers, most urgent first (oldest among equals); turns underflow off
/// once the queue is empty.
pub fn refill(lrs: &mut impl ListRegs, queue: &mut PendingQueue) {
    // Bit i: queue entry i is busy (its vINTID is active in a list
    // register) and stays queued. Indices shift on removal, so the mask is
    // rebuilt after each placement.
    let mut busy: u64 = 0;
    loop {
        let next = queue
            .iter()
            .enumerate()
            .filter(|(i, _)| busy & (1 << i) == 0)
            .min_by_key(|(i, l)| (l.priority, *i))
            .map(|(i, _)| i);
        let Some(i) = next else { break };
        match place(lrs, queue.entries[i]) {
            Placement::Placed | Placement::Merged => {
                queue.remove(i);
                // Entries after i moved down by one.
                let below = busy & ((1u64 << i) - 1);
                let above = (busy >> 1) & !((1u64 << i) - 1);
                busy = below | above;
            }
            Placement::Busy => busy |= 1 << i,
            Placement::NoRoom => break,
        }
    }
    lrs.set_underflow_irq(!queue.is_empty());
}

/// Empties every list register and the queue, and turns underflow off
/// (a CPU leaving its cell).
pub fn clear(lrs: &mut impl ListRegs, queue: &mut PendingQueue) {
    for i in 0..lrs.num_lrs() {
        lrs.write_lr(i, Lr::INVALID);
    }
    queue.clear();
    lrs.set_underflow_irq(false);
}
