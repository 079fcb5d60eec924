//! The commands: `config compile`, `config check`, `config create`, `pack`.

use std::path::{Path, PathBuf};

use hv_core::blob;
use hv_core::board::{check_against_board, BoardInfo};
use hv_core::config::{CellConfig, SystemConfig};
use hv_core::pack::{build_pack, image_placement, image_size_from_header};
use hv_core::validate::{
    boot_cell_field, check_image_size, validate_cell, validate_cell_alone, validate_system,
    ConfigErrors,
};

use crate::cli::{CheckArgs, CompileArgs, PackArgs};
use crate::files::{self, Config};
use crate::Error;

/// One error line per config error, all naming `what`.
pub(crate) fn config_errors(what: &str, errs: &ConfigErrors) -> Error {
    Error::collect(errs.iter().map(|e| Error::new(what, e)))
        .unwrap_or_else(|| Error::new(what, "invalid config"))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|e| Error::file(path, e))
}

/// The other non-root cells a cell is checked beside: the system's boot
/// cells, then `extra`.
fn present<'a>(sys: &'a SystemConfig, extra: &'a [CellConfig]) -> Vec<&'a CellConfig> {
    sys.boot_cells.iter().chain(extra).collect()
}

/// `cellblock config compile FILE [-o OUT] [--system SYS]`.
pub fn compile(args: &CompileArgs) -> Result<Vec<String>, Error> {
    let what = display(&args.file);
    let config = files::load(&args.file)?;
    let bytes = match &config {
        Config::System(sys) => {
            validate_system(sys).map_err(|e| config_errors(&what, &e))?;
            blob::encode_system(sys)
        }
        Config::Cell(cell) => {
            match &args.system {
                Some(sys_path) => {
                    let sys = files::load_system(sys_path)?;
                    validate_system(&sys).map_err(|e| config_errors(&display(sys_path), &e))?;
                    validate_cell(&sys, cell, &present(&sys, &[]))
                        .map_err(|e| config_errors(&what, &e))?;
                }
                None => validate_cell_alone(cell).map_err(|e| config_errors(&what, &e))?,
            }
            blob::encode_cell(cell)
        }
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("cell"));
    write(&output, &bytes)?;
    Ok(vec![format!(
        "{}: {} \"{}\" written to {} ({} bytes)",
        what,
        config.kind(),
        config.name(),
        display(&output),
        bytes.len()
    )])
}

/// `cellblock config create BOARD.dtb -o system.toml [options]`: the same
/// generator, options and output as `dt-cellgen system`.
#[cfg(feature = "config-create")]
pub fn create(args: &dt_cellgen::args::SystemArgs) -> Result<Vec<String>, Error> {
    let opts = args.options().map_err(|e| match e {
        dt_cellgen::Error::BadArgument { what, reason } => Error::new(what, reason),
        other => Error::new("config create", other),
    })?;
    let dtb = std::fs::read(&args.dtb).map_err(|e| Error::file(&args.dtb, e))?;
    let generated = dt_cellgen::system_from_dtb(&dtb, &opts, args.report.is_some())
        .map_err(|e| Error::file(&args.dtb, e))?;
    write(&args.output, generated.toml.as_bytes())?;
    let mut report = vec![format!(
        "{}: system \"{}\" written to {}",
        display(&args.dtb),
        generated.config.name,
        display(&args.output)
    )];
    if let (Some(path), Some(text)) = (&args.report, &generated.report) {
        write(path, text.as_bytes())?;
        report.push(format!("device report written to {}", display(path)));
    }
    Ok(report)
}

/// `cellblock config check FILE... [--dtb DTB] [--system SYS]`.
///
/// Every file is read and validated; all errors are reported. Cell configs
/// are checked against the system (`--system`, else the first system among
/// FILES) beside its boot cells and the cells given before them.
pub fn check(args: &CheckArgs) -> Result<Vec<String>, Error> {
    let mut report = Vec::new();
    let mut errors: Vec<Error> = Vec::new();

    let board = match &args.dtb {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
            Some(BoardInfo::from_dtb(&bytes).map_err(|e| Error::file(path, e))?)
        }
    };

    let mut loaded: Vec<(PathBuf, Config)> = Vec::new();
    for path in &args.files {
        match files::load(path) {
            Ok(c) => loaded.push((path.clone(), c)),
            Err(e) => errors.push(e),
        }
    }

    let system: Option<(String, SystemConfig)> = match &args.system {
        Some(path) => match files::load_system(path) {
            Ok(s) => Some((display(path), s)),
            Err(e) => {
                errors.push(e);
                Error::check(std::mem::take(&mut errors))?;
                None
            }
        },
        None => loaded.iter().find_map(|(p, c)| match c {
            Config::System(s) => Some((display(p), (**s).clone())),
            Config::Cell(_) => None,
        }),
    };
    if let (Some(path), Some((name, sys))) = (&args.system, &system) {
        if !args.files.contains(path) {
            if let Err(e) = validate_system(sys) {
                errors.push(config_errors(name, &e));
            }
            if let (Some(board), Some(dtb)) = (&board, &args.dtb) {
                if let Err(e) = check_against_board(sys, board) {
                    let what = format!("{name} (board {})", display(dtb));
                    errors.push(config_errors(&what, &e));
                }
            }
        }
    }

    let mut cells_seen: Vec<CellConfig> = Vec::new();
    for (path, config) in &loaded {
        let what = display(path);
        match config {
            Config::System(sys) => {
                let mut ok = true;
                if let Err(e) = validate_system(sys) {
                    errors.push(config_errors(&what, &e));
                    ok = false;
                }
                if let (Some(board), Some(dtb)) = (&board, &args.dtb) {
                    if let Err(e) = check_against_board(sys, board) {
                        let what = format!("{what} (board {})", display(dtb));
                        errors.push(config_errors(&what, &e));
                        ok = false;
                    }
                }
                if ok {
                    report.push(format!(
                        "{what}: ok (system config \"{}\": {} CPUs, root cell \"{}\", {} boot cells{})",
                        sys.name,
                        sys.platform.cpus.len(),
                        sys.root_cell.name,
                        sys.boot_cells.len(),
                        if board.is_some() { ", matches the board" } else { "" }
                    ));
                }
            }
            Config::Cell(cell) => {
                let Some((sys_name, sys)) = &system else {
                    errors.push(Error::new(
                        what,
                        "a cell config is checked against a system config: give --system SYS.toml or a system config among the files",
                    ));
                    continue;
                };
                match validate_cell(sys, cell, &present(sys, &cells_seen)) {
                    Ok(()) => report.push(format!(
                        "{what}: ok (cell config \"{}\" with {sys_name})",
                        cell.name
                    )),
                    Err(e) => errors.push(config_errors(&what, &e)),
                }
                cells_seen.push(cell.clone());
            }
        }
    }

    Error::check(std::mem::take(&mut errors))?;
    Ok(report)
}

/// `cellblock pack --hv BIN --system SYS [--cell CELL]... --image-dir DIR -o OUT`.
///
/// Writes the hypervisor zero-padded to its `image_size`, then the boot pack:
/// the system config (with the given cells appended to its `boot_cells`) and
/// every image of the root cell (cell 0) and of each boot cell (1..).
pub fn pack(args: &PackArgs) -> Result<Vec<String>, Error> {
    let hv_what = display(&args.hv);
    let hv = std::fs::read(&args.hv).map_err(|e| Error::file(&args.hv, e))?;
    let image_size = image_size_from_header(&hv).map_err(|e| Error::new(&hv_what, e))?;
    if (hv.len() as u64) > image_size {
        return Err(Error::new(
            hv_what,
            format!(
                "image_size {image_size:#x} in its header is smaller than the file ({:#x} bytes)",
                hv.len()
            ),
        ));
    }

    let sys_what = display(&args.system);
    let mut sys = files::load_system(&args.system)?;
    // The image runs only where it is linked: hypervisor.memory.start plus
    // the text_offset at which boot loaders put it.
    let (link, text_offset) = image_placement(&hv).map_err(|e| Error::new(&hv_what, e))?;
    let expected = sys.hypervisor.memory.start.saturating_add(text_offset);
    if link != 0 && link != expected {
        return Err(Error::new(
            hv_what,
            format!(
                "linked at {link:#x}, but {sys_what} puts it at {expected:#x} (hypervisor.memory.start {:#x} + text_offset {text_offset:#x}); rebuild it with CELLBLOCK_HV_BASE={expected:#x}",
                sys.hypervisor.memory.start
            ),
        ));
    }
    let own_boot_cells = sys.boot_cells.len();
    let mut errors: Vec<Error> = Vec::new();
    for path in &args.cells {
        match files::load_cell(path) {
            Ok(c) => sys.boot_cells.push(c),
            Err(e) => errors.push(e),
        }
    }
    Error::check(std::mem::take(&mut errors))?;

    // Errors about a cell given with --cell name its file.
    let what_for_cell = |index: usize| -> String {
        index
            .checked_sub(own_boot_cells)
            .and_then(|i| args.cells.get(i))
            .map_or_else(|| sys_what.clone(), |p| display(p))
    };
    if let Err(errs) = validate_system(&sys) {
        for e in errs.iter() {
            let what = (0..sys.boot_cells.len())
                .find(|&i| {
                    let prefix = boot_cell_field(i, &sys.boot_cells[i]);
                    e.field
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
                .map_or_else(|| sys_what.clone(), what_for_cell);
            errors.push(Error::new(what, e));
        }
        Error::check(std::mem::take(&mut errors))?;
    }

    // Read every image and check that it fits its cell.
    let cells: Vec<(u32, String, &CellConfig)> =
        std::iter::once((0, "root_cell".to_string(), &sys.root_cell))
            .chain(
                sys.boot_cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i as u32 + 1, boot_cell_field(i, c), c)),
            )
            .collect();
    let mut images: Vec<(u32, u64, Vec<u8>)> = Vec::new();
    for (id, prefix, cell) in &cells {
        let what = if *id == 0 {
            sys_what.clone()
        } else {
            what_for_cell(*id as usize - 1)
        };
        for (k, image) in cell.images.iter().enumerate() {
            let path = args.image_dir.join(&image.file);
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(Error::new(
                        what.clone(),
                        format!("{prefix}.images[{k}].file: {}: {e}", display(&path)),
                    ));
                    continue;
                }
            };
            if let Err(e) = check_image_size(prefix, cell, k, data.len() as u64) {
                errors.push(Error::new(what.clone(), e));
                continue;
            }
            images.push((*id, image.addr, data));
        }
    }
    Error::check(std::mem::take(&mut errors))?;

    let config = blob::encode_system(&sys);
    let entries: Vec<(u32, u64, &[u8])> = images
        .iter()
        .map(|(cell, addr, data)| (*cell, *addr, data.as_slice()))
        .collect();
    let pack = build_pack(&config, &entries);

    let mut out = hv;
    out.resize(image_size as usize, 0);
    out.extend_from_slice(&pack);
    let budget = sys.hypervisor.memory.size;
    if out.len() as u64 > budget {
        return Err(Error::new(
            display(&args.output),
            format!(
                "boot image would be {:#x} bytes, more than hypervisor.memory.size {budget:#x} of {sys_what}",
                out.len()
            ),
        ));
    }
    write(&args.output, &out)?;
    Ok(vec![format!(
        "{}: hypervisor {image_size:#x} bytes, config {} bytes, {} cells, {} images, {:#x} bytes in all",
        display(&args.output),
        config.len(),
        1 + sys.boot_cells.len(),
        images.len(),
        out.len()
    )])
}
