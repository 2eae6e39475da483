//! `follow`: a `tail -f` for a running job's row count.

use std::process::ExitCode;
use std::time::Duration;

use npy_append::Reader;

use crate::args::FileArg;
use crate::output::{self, Failure};

/// The longest wait before the count is checked again for a decrease (a
/// file recovered below what was shown); growth is printed at once.
const POLL: Duration = Duration::from_millis(500);

/// `npy-append follow FILE`: prints the committed row count, then again
/// each time it changes, until interrupted.
pub fn follow(args: &FileArg) -> Result<ExitCode, Failure> {
    match watch(args) {
        // The reader of stdout is gone (`follow FILE | head -1`): done.
        Err(f) if f.is_closed_stdout() => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn watch(args: &FileArg) -> Result<ExitCode, Failure> {
    let path = &args.file;
    let mut reader = Reader::open(path).map_err(|e| Failure::lib(path, &e))?;
    let mut shown = reader.len();
    output::line(format_args!("committed {shown}"))?;
    loop {
        reader
            .wait_for_rows(shown.saturating_add(1), POLL)
            .map_err(|e| Failure::lib(path, &e))?;
        if reader.len() != shown {
            shown = reader.len();
            output::line(format_args!("committed {shown}"))?;
        }
    }
}
