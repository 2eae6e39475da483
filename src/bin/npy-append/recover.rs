//! `recover`: bring a file to its last commit and close it cleanly, or,
//! with `--dry-run`, say what that would do.
//!
//! Both are one library call with the same options:
//! `AppendOptions::recover` and `AppendOptions::preview_recovery`, which
//! decide by the same code, so the dry run prints what the real run then
//! does (the same exit code and the same actions).

use std::fmt::Write as _;
use std::process::ExitCode;

use npy_append::{AppendOptions, GroupStatus, RecoveryOutcome, ShortFilePolicy, TailPolicy};

use crate::args::{RecoverArgs, ShortFile, Tail};
use crate::inspect::{changes_text, report_json};
use crate::json::Value;
use crate::output::{self, Failure};

/// `npy-append recover FILE [--dry-run] [--tail refuse|cut|adopt]
/// [--short-file refuse|keep|zero-fill] [--json]`.
pub fn recover(args: &RecoverArgs) -> Result<ExitCode, Failure> {
    let path = &args.file;
    let shown = path.display();
    if GroupStatus::is_group_journal(path).map_err(|e| Failure::lib(path, &e))? {
        return crate::group::recover(args);
    }
    let options = AppendOptions::new()
        .tail_policy(match args.tail {
            Tail::Refuse => TailPolicy::Refuse,
            Tail::Cut => TailPolicy::CutToHeader,
            Tail::Adopt => TailPolicy::AdoptWholeRows,
            Tail::AdoptZeroFill => TailPolicy::AdoptZeroFillLastRow,
        })
        .short_file_policy(match args.short_file {
            ShortFile::Refuse => ShortFilePolicy::Refuse,
            ShortFile::Keep => ShortFilePolicy::KeepWholeRows,
            ShortFile::ZeroFill => ShortFilePolicy::ZeroFillLastRow,
        })
        .accept_loss(args.accept_loss)
        .move_aside_foreign_journal(args.move_aside_journal);
    // Whether a cursor file is there before: recovery removes or rewrites it.
    let cursor_file = npy_append::cursor_path(path).exists();
    let result = if args.dry_run {
        options.preview_recovery(path)
    } else {
        options.recover(path)
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) if args.dry_run => {
            return Err(Failure::lib(path, &e).map_message(|m| {
                format!("dry run: recovery would refuse and change nothing: {m}")
            }));
        }
        Err(e) => return Err(Failure::lib(path, &e)),
    };
    if args.json {
        output::line(format_args!(
            "{}",
            outcome_json(path, &outcome, args.dry_run).render()
        ))?;
    } else if args.dry_run {
        output::line(format_args!(
            "{shown}: dry run: recovery would {}; nothing was changed",
            outcome_text(path, &outcome, cursor_file, false)
        ))?;
    } else if outcome.file_exists {
        output::line(format_args!(
            "{shown}: recovered: {}; closed cleanly",
            outcome_text(path, &outcome, cursor_file, true)
        ))?;
    } else {
        output::line(format_args!(
            "{shown}: {}",
            outcome_text(path, &outcome, cursor_file, true)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What recovery does or did, as a phrase in the future or (`done`) the
/// past tense; `cursor_file` when a cursor file was there before.
fn outcome_text(
    path: &std::path::Path,
    outcome: &RecoveryOutcome,
    cursor_file: bool,
    done: bool,
) -> String {
    if !outcome.file_exists {
        let verb = if done { "removed" } else { "remove" };
        let was = if outcome.report.journal_discarded {
            format!("{verb} an incomplete journal; ")
        } else {
            String::new()
        };
        return format!("{was}the file was never created (no row was committed)");
    }
    let mut text = changes_text(&outcome.report, outcome.journal_removed, done);
    if !outcome.journal_removed
        && !outcome.report.changed_file()
        && outcome.cursor.is_empty()
        && !cursor_file
    {
        // A clean file: opening and closing it leave every byte as it was.
        return format!(
            "{} ({text})",
            if done {
                "changed nothing"
            } else {
                "change nothing"
            }
        );
    }
    if outcome.cursor.is_empty() && cursor_file {
        let _ = write!(
            text,
            ", {} the cursor file {}, which no longer describes the file",
            if done { "removed" } else { "remove" },
            npy_append::cursor_path(path).display()
        );
    }
    if !outcome.cursor.is_empty() {
        let _ = write!(
            text,
            ", {} the {}-byte cursor of the last commit in {}",
            if done { "kept" } else { "keep" },
            outcome.cursor.len(),
            npy_append::cursor_path(path).display()
        );
    }
    text
}

/// The outcome as one JSON object.
fn outcome_json(path: &std::path::Path, outcome: &RecoveryOutcome, dry_run: bool) -> Value {
    let mut fields = vec![
        ("path", Value::Str(path.display().to_string())),
        ("dry_run", Value::Bool(dry_run)),
        ("file_exists", Value::Bool(outcome.file_exists)),
    ];
    fields.extend(report_json(&outcome.report, outcome.journal_removed));
    fields.push(("cursor_bytes", Value::UInt(outcome.cursor.len() as u64)));
    Value::Object(fields)
}
