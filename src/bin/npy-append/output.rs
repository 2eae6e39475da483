//! Exit codes, error messages and the writes to stdout.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

/// A check found a problem (`verify`).
pub const EXIT_PROBLEM: u8 = 1;
/// Bad usage, bad input or an error.
pub const EXIT_ERROR: u8 = 2;

/// Why a command failed (exit code 2): what happened, and what to do.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
    /// Whether stdout was closed by its reader (a broken pipe).
    closed_stdout: bool,
}

impl Failure {
    /// A failure with this message (which names the file).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            closed_stdout: false,
        }
    }

    /// A library error about `path`; the message names the file even when
    /// the error itself does not.
    pub fn lib(path: &Path, err: &npy_append::Error) -> Self {
        let text = err.to_string();
        let shown = path.display().to_string();
        let message = if text.contains(&shown) {
            text
        } else {
            format!("{shown}: {text}")
        };
        let hint = match err {
            npy_append::Error::TrailingBytes { .. } => Some(format!(
                "`npy-append recover {shown} --tail cut` cuts the file to its header's rows, \
                 `--tail adopt` keeps the whole rows found past them"
            )),
            npy_append::Error::FileTooShort { .. } => Some(format!(
                "`npy-append recover {shown} --short-file keep` keeps the whole rows the file \
                 holds and rewrites its header to them, `--short-file zero-fill` also completes \
                 a partial last row with zeros (add --dry-run to see what either would do)"
            )),
            _ => None,
        };
        Self {
            message,
            hint,
            closed_stdout: false,
        }
    }

    /// The same failure (and hint) with its message rewritten by `f`.
    #[must_use]
    pub fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Self {
        self.message = f(&self.message);
        self
    }

    /// Adds what to do.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether the failure is that the reader of stdout went away (`follow
    /// FILE | head -1`), which ends `follow` like an interrupt.
    pub fn is_closed_stdout(&self) -> bool {
        self.closed_stdout
    }

    /// Prints the failure on stderr (ignoring a closed stderr).
    pub fn report(&self) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "npy-append: error: {}", self.message);
        if let Some(hint) = &self.hint {
            let _ = writeln!(err, "npy-append: hint: {hint}");
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Writes one line to stdout and flushes it, so that a reader of a pipe
/// sees it at once. A closed stdout is a failure, never a panic.
pub fn line(args: fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure {
            closed_stdout: e.kind() == io::ErrorKind::BrokenPipe,
            ..Failure::new(format!("writing to stdout: {e}"))
        })
}

/// Prints a note on stderr (ignoring a closed stderr).
pub fn note(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.write_all(b"\n");
}

/// Redraws the progress line on stderr (no newline; ignoring a closed stderr).
pub fn progress(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args);
    let _ = err.flush();
}
