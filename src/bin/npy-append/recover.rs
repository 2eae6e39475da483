//! `recover`: bring a file to its last commit and close it cleanly.

use std::process::ExitCode;

use npy_append::{AppendOptions, FileState, FileStatus, RecoveryAction, TailPolicy, journal_path};

use crate::args::{RecoverArgs, Tail};
use crate::inspect::{changes_text, recovery_text};
use crate::output::{self, Failure};

/// `npy-append recover FILE [--dry-run] [--tail refuse|cut|adopt]`.
pub fn recover(args: &RecoverArgs) -> Result<ExitCode, Failure> {
    if args.dry_run {
        return dry_run(args);
    }
    let path = &args.file;
    let shown = path.display();
    let journal = journal_path(path);
    if !path.exists() && !journal.exists() {
        return Err(Failure::new(format!(
            "{shown}: no such file (and no journal {}): nothing to recover",
            journal.display()
        )));
    }
    let had_journal = journal.exists();
    let policy = match args.tail {
        Tail::Refuse => TailPolicy::Refuse,
        Tail::Cut => TailPolicy::CutToHeader,
        Tail::Adopt => TailPolicy::AdoptWholeRows,
    };
    let appender = AppendOptions::new()
        .tail_policy(policy)
        .open(path)
        .map_err(|e| Failure::lib(path, &e))?;
    let report = appender.report().clone();
    let created = appender.row_bytes().is_some();
    appender.close().map_err(|e| Failure::lib(path, &e))?;
    if created {
        output::line(format_args!(
            "{shown}: recovered: {}; closed cleanly",
            changes_text(&report, had_journal, true)
        ))?;
    } else {
        output::line(format_args!(
            "{shown}: removed an incomplete journal; the file was never created (no row was committed)"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn dry_run(args: &RecoverArgs) -> Result<ExitCode, Failure> {
    let path = &args.file;
    let shown = path.display();
    let status = FileStatus::read(path).map_err(|e| Failure::lib(path, &e))?;
    let trailing = status.state == FileState::Inconsistent
        && !status.journal_present
        && status.bytes_past_end.is_some_and(|b| b > 0);
    if trailing && args.tail != Tail::Refuse {
        // Bytes past the header's rows of a file without a journal: the
        // chosen policy decides.
        let (rows, extra, row_bytes) = (
            status.rows.unwrap_or(0),
            status.bytes_past_end.unwrap_or(0),
            status.row_bytes.unwrap_or(1).max(1),
        );
        let (keep, cut) = if args.tail == Tail::Cut {
            (rows, extra)
        } else {
            (rows + extra / row_bytes, extra % row_bytes)
        };
        output::line(format_args!(
            "{shown}: dry run: recovery would keep {keep} rows, cut {cut} bytes, rewrite the header; \
             nothing was changed"
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let RecoveryAction::Refuses(why) = &status.recovery {
        return Err(Failure::new(format!(
            "{shown}: dry run: recovery would refuse and change nothing: {why}"
        )));
    }
    output::line(format_args!(
        "{shown}: dry run: recovery would {}; nothing was changed",
        recovery_text(&status)
    ))?;
    Ok(ExitCode::SUCCESS)
}
