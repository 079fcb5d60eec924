//! Any bytes through the DTB reader, the board model and the generators:
//! errors are fine, panics are bugs.
#![no_main]

use dt_cellgen::board::Board;
use dt_cellgen::dtb::{fit_guest_dtb, guest_dtb, root_dtb, GuestOptions, RootOptions};
use dt_cellgen::system::{generate_system, SystemOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `cellblock cell linux --dtb` fits any given DTB.
    let _ = fit_guest_dtb(
        data,
        Some("console=ttyAMA0"),
        Some((0x4000_0000, 0x1000)),
        (0x5000_0000, 0x20_0000),
    );
    let Ok(board) = Board::from_dtb(data) else {
        return;
    };
    let opts = SystemOptions {
        cell_mem: 4 << 20,
        ..Default::default()
    };
    let Ok((sys, notes)) = generate_system(&board, &opts) else {
        return;
    };
    let _ = dt_cellgen::output::system_toml(&sys, &board, &notes);
    let _ = root_dtb(&board, &sys, &[], &RootOptions::default());
    let _ = guest_dtb(&board, &sys, &sys.root_cell, &GuestOptions::default());
});
