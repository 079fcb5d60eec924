//! The hypervisor's heap: page tables, cell state. It starts with a small
//! region in bss and grows by the rest of the hypervisor's memory once the
//! boot pack has been read.

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

const EARLY_HEAP_SIZE: usize = 512 * 1024;

#[repr(C, align(4096))]
struct EarlyHeap([u8; EARLY_HEAP_SIZE]);

static mut EARLY_HEAP: EarlyHeap = EarlyHeap([0; EARLY_HEAP_SIZE]);

/// Hands the bss region to the allocator. Called once, by the boot CPU.
pub fn init_early() {
    let start = core::ptr::addr_of_mut!(EARLY_HEAP) as usize;
    // SAFETY: the region is a static only this allocator uses, and init_early
    // runs once before any allocation.
    unsafe { HEAP.lock().init(start, EARLY_HEAP_SIZE) };
}

/// Adds `[start, end)` (hypervisor RAM nobody else uses) to the heap.
pub fn add_region(start: u64, end: u64) {
    if end > start {
        // SAFETY: the caller passes hypervisor memory that holds nothing live
        // (it lies past the boot pack and outside the DTB).
        unsafe { HEAP.lock().add_to_heap(start as usize, end as usize) };
    }
}

/// (total, used) bytes.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.stats_total_bytes(), h.stats_alloc_actual())
}
