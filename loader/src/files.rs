//! Reading configs: TOML text or the binary `.cell` form, system or cell.

use std::path::Path;

use hv_core::blob::{self, BlobKind, CONFIG_MAGIC};
use hv_core::config::{CellConfig, SystemConfig};

use crate::Error;

/// A config of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Config {
    System(Box<SystemConfig>),
    Cell(CellConfig),
}

impl Config {
    /// "system config" or "cell config".
    pub fn kind(&self) -> &'static str {
        match self {
            Self::System(_) => "system config",
            Self::Cell(_) => "cell config",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::System(s) => &s.name,
            Self::Cell(c) => &c.name,
        }
    }
}

/// Reads a config file: a `.cell` blob (recognised by its magic) or TOML.
pub fn load(path: &Path) -> Result<Config, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    parse(&bytes).map_err(|why| Error::file(path, why))
}

/// Reads a system config file.
pub fn load_system(path: &Path) -> Result<SystemConfig, Error> {
    match load(path)? {
        Config::System(s) => Ok(*s),
        Config::Cell(_) => Err(Error::file(
            path,
            "is a cell config, a system config (with [platform]) is needed here",
        )),
    }
}

/// Reads a cell config file.
pub fn load_cell(path: &Path) -> Result<CellConfig, Error> {
    match load(path)? {
        Config::Cell(c) => Ok(c),
        Config::System(_) => Err(Error::file(
            path,
            "is a system config, a cell config is needed here",
        )),
    }
}

/// Parses config bytes; the error is the reason only.
pub fn parse(bytes: &[u8]) -> Result<Config, String> {
    if bytes.starts_with(&CONFIG_MAGIC) {
        let header = blob::parse_header(bytes).map_err(|e| e.to_string())?;
        return match BlobKind::from_raw(header.kind) {
            Some(BlobKind::System) => blob::decode_system(bytes)
                .map(|s| Config::System(Box::new(s)))
                .map_err(|e| e.to_string()),
            Some(BlobKind::Cell) => blob::decode_cell(bytes)
                .map(Config::Cell)
                .map_err(|e| e.to_string()),
            None => Err(format!("config blob: unknown kind {}", header.kind)),
        };
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("neither a config blob nor UTF-8 text ({e})"))?;
    parse_toml(text)
}

/// Parses a TOML config: a system config if it has a `[platform]` table,
/// else a cell config.
pub fn parse_toml(text: &str) -> Result<Config, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    if table.contains_key("platform") {
        toml::from_str(text)
            .map(|s| Config::System(Box::new(s)))
            .map_err(|e| toml_error(text, &e))
    } else {
        toml::from_str(text)
            .map(Config::Cell)
            .map_err(|e| toml_error(text, &e))
    }
}

/// `line L, column C: message` from a TOML error.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CELL: &str = r#"
name = "c"
cpus = [1]
entry = 0x40000000

[[memory]]
phys_start = 0x42000000
virt_start = 0x40000000
size = 0x200000
flags = ["read", "write", "execute"]
"#;

    #[test]
    fn detects_kind() {
        let Config::Cell(c) = parse_toml(CELL).unwrap() else {
            panic!("not a cell");
        };
        assert_eq!(c.name, "c");
        assert_eq!(c.memory[0].size, 0x20_0000);
    }

    #[test]
    fn blob_detected() {
        let Config::Cell(c) = parse_toml(CELL).unwrap() else {
            panic!()
        };
        let bytes = blob::encode_cell(&c);
        assert_eq!(parse(&bytes).unwrap(), Config::Cell(c));
    }

    #[test]
    fn toml_errors_have_a_position() {
        let e = parse_toml("name = \"x\"\ncpus = [1,\nentry = 0\n").unwrap_err();
        assert!(e.starts_with("line 3, column "), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_toml("name = \"x\"\ncpus = [1]\n").unwrap_err();
        assert!(e.contains("missing field `entry`"), "{e}");
    }

    #[test]
    fn unknown_flag() {
        let text = CELL.replace("\"execute\"", "\"exec\"");
        let e = parse_toml(&text).unwrap_err();
        assert!(e.starts_with("line 10, column "), "{e}");
        assert!(e.contains("unknown variant `exec`"), "{e}");
    }

    #[test]
    fn not_text() {
        let e = parse(&[0xff, 0xfe, 0]).unwrap_err();
        assert!(e.starts_with("neither a config blob nor UTF-8 text"), "{e}");
    }
}
