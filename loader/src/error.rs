//! Errors as `<what>: <why>` lines; `main` prefixes each with `cellblock: `.

use std::fmt;
use std::path::Path;

/// One or more failures, each naming what failed (a file, usually) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    lines: Vec<(String, String)>,
}

impl Error {
    pub fn new(what: impl Into<String>, why: impl fmt::Display) -> Self {
        Self {
            lines: vec![(what.into(), single_line(&why.to_string()))],
        }
    }

    /// An error about a file.
    pub fn file(path: &Path, why: impl fmt::Display) -> Self {
        Self::new(path.display().to_string(), why)
    }

    /// Adds the lines of `other`.
    pub fn extend(&mut self, other: Error) {
        self.lines.extend(other.lines);
    }

    /// Collects a list of errors; `None` if empty.
    pub fn collect(errors: impl IntoIterator<Item = Error>) -> Option<Self> {
        let mut all: Option<Error> = None;
        for e in errors {
            match &mut all {
                Some(a) => a.extend(e),
                None => all = Some(e),
            }
        }
        all
    }

    /// `Err` with every error of the list, `Ok` if it is empty.
    pub fn check(errors: impl IntoIterator<Item = Error>) -> Result<(), Error> {
        match Self::collect(errors) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `what: why`, one per failure.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.lines
            .iter()
            .map(|(what, why)| format!("{what}: {why}"))
    }
}

fn single_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
