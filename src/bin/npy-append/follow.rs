//! `follow`: a `tail -f` for a running job's row count.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use npy_append::{Error, Reader};

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
        let start = Instant::now();
        match reader.wait_for_rows(shown.saturating_add(1), POLL) {
            // Without a writer (finished, or died) the wait returns at
            // once: keep following at the poll interval, as a new writer
            // may resume the file.
            Ok(_) | Err(Error::WriterDied { .. }) => {}
            Err(e) => return Err(Failure::lib(path, &e)),
        }
        if reader.len() == shown {
            std::thread::sleep(POLL.saturating_sub(start.elapsed()));
        } else {
            shown = reader.len();
            output::line(format_args!("committed {shown}"))?;
        }
    }
}
