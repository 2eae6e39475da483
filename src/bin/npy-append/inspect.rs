//! `info` and `verify`: read-only reports built on [`FileStatus`].

use std::process::ExitCode;

use npy_append::format::header;
use npy_append::{FileState, FileStatus, Found, GroupStatus, RecoveryAction, RecoveryReport};

use crate::args::{FileArg, InfoArgs};
use crate::json::Value;
use crate::output::{self, EXIT_PROBLEM, Failure};

/// `npy-append info FILE [--json]`.
pub fn info(args: &InfoArgs) -> Result<ExitCode, Failure> {
    if let Some(group) = group_status(&args.file)? {
        return crate::group::info(&group, args.json);
    }
    let status = FileStatus::read(&args.file).map_err(|e| Failure::lib(&args.file, &e))?;
    if args.json {
        output::line(format_args!("{}", to_json(&status).render()))?;
    } else {
        for (key, value) in text_fields(&status) {
            output::line(format_args!("{key:<16}{value}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `npy-append verify FILE`: 0 clean, 1 needs recovery or inconsistent, 2
/// unreadable or not a file npy-append can use.
pub fn verify(args: &FileArg) -> Result<ExitCode, Failure> {
    let path = &args.file;
    if let Some(group) = group_status(path)? {
        return crate::group::verify(&group);
    }
    let status = FileStatus::read(path).map_err(|e| Failure::lib(path, &e))?;
    let shown = path.display();
    let problem = status.problem.as_deref().unwrap_or("");
    match status.state {
        FileState::Clean if status.numpy_refuses_header() => {
            output::line(format_args!("{shown}: numpy cannot load it: {problem}"))?;
            Ok(ExitCode::from(EXIT_PROBLEM))
        }
        FileState::Clean => {
            output::line(format_args!(
                "{shown}: ok: a clean .npy of {} rows, no journal, size matches the header",
                status.rows.unwrap_or(0)
            ))?;
            if let RecoveryAction::Changes(report) = &status.recovery
                && report.file_rewritten
            {
                output::note(format_args!(
                    "npy-append: note: {shown}: the header has no room to grow the row count; \
                     the first writer replaces the file by a copy with numpy's header \
                     (the data is unchanged)"
                ));
            } else if let RecoveryAction::Changes(report) = &status.recovery
                && report.header_rewritten
            {
                output::note(format_args!(
                    "npy-append: note: {shown}: the header is not in numpy's own layout; \
                     the first writer rewrites it (the data is unchanged)"
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        FileState::NeedsRecovery => {
            output::line(format_args!(
                "{shown}: needs recovery: {problem}; `npy-append recover {shown}` would {}",
                recovery_text(&status)
            ))?;
            Ok(ExitCode::from(EXIT_PROBLEM))
        }
        FileState::Inconsistent => {
            output::line(format_args!("{shown}: inconsistent: {problem}"))?;
            Ok(ExitCode::from(EXIT_PROBLEM))
        }
        // `FileState::Unsupported`, or a state added later.
        _ => Err(Failure::new(format!(
            "{shown}: cannot be used by npy-append: {problem}"
        ))),
    }
}

/// The status of the group whose journal is `path`, when it is one.
fn group_status(path: &std::path::Path) -> Result<Option<GroupStatus>, Failure> {
    let lib = |e| Failure::lib(path, &e);
    if GroupStatus::is_group_journal(path).map_err(lib)? {
        GroupStatus::read(path).map(Some).map_err(lib)
    } else {
        Ok(None)
    }
}

/// What recovery would do, as a phrase ("keep 5 rows, cut 12 bytes, ...").
pub fn recovery_text(status: &FileStatus) -> String {
    match &status.recovery {
        RecoveryAction::Nothing => "change nothing".to_owned(),
        RecoveryAction::Changes(report) => changes_text(report, status.journal_present, false),
        RecoveryAction::Refuses(why) => format!("refuse and change nothing: {why}"),
        other => format!("{other:?}"),
    }
}

/// A recovery report as a phrase, in the future ("keep 5 rows, ...") or,
/// when `done`, the past tense; `journal` when a journal is removed at the end.
pub fn changes_text(report: &RecoveryReport, journal: bool, done: bool) -> String {
    let verb = |future: &str, past: &str| {
        if done {
            past.to_owned()
        } else {
            future.to_owned()
        }
    };
    let mut parts = vec![
        format!("{} {} rows", verb("keep", "kept"), report.committed_rows),
        format!("cut {} bytes", report.bytes_cut),
        if report.header_rewritten {
            verb("rewrite the header", "rewrote the header")
        } else {
            verb("leave the header unchanged", "left the header unchanged")
        },
    ];
    if report.file_rewritten {
        parts.push(verb(
            "rewrite the file with room to grow its header",
            "rewrote the file with room to grow its header",
        ));
    }
    if report.dropped_rows > 0 {
        parts.push(format!(
            "{} {} rows whose data had not reached the disk",
            verb("drop", "dropped"),
            report.dropped_rows
        ));
    }
    if report.adopted_rows > 0 {
        parts.push(format!(
            "{} {} trailing rows",
            verb("adopt", "adopted"),
            report.adopted_rows
        ));
    }
    if report.missing_rows > 0 {
        parts.push(format!(
            "{} {} rows the header described that the file does not hold",
            verb("drop", "dropped"),
            report.missing_rows
        ));
    }
    if report.zero_filled_bytes > 0 {
        parts.push(format!(
            "{} the last row with {} zero bytes",
            verb("complete", "completed"),
            report.zero_filled_bytes
        ));
    }
    if report.rows_discarded > 0 {
        parts.push(format!(
            "{} {} rows the header claimed that the journal does not commit (accepting the loss)",
            verb("discard", "discarded"),
            report.rows_discarded
        ));
    }
    if let Some(aside) = &report.journal_moved_aside {
        parts.push(format!(
            "{} a journal npy-append did not write to {}",
            verb("move", "moved"),
            aside.display()
        ));
    }
    if report.rewrite_leftover_removed {
        parts.push(verb(
            "remove the leftover of an interrupted header rewrite",
            "removed the leftover of an interrupted header rewrite",
        ));
    }
    if report.journal_discarded {
        parts.push(verb(
            "remove an incomplete journal",
            "removed an incomplete journal",
        ));
    } else if journal && report.journal_moved_aside.is_none() {
        parts.push(verb("remove the journal", "removed the journal"));
    }
    parts.join(", ")
}

/// A recovery report as JSON fields; `journal_removed` when a journal is
/// removed at the end.
pub fn report_json(r: &RecoveryReport, journal_removed: bool) -> Vec<(&'static str, Value)> {
    let found = match r.found {
        Found::NoFile => "no-file",
        Found::Clean => "clean",
        Found::Journal => "journal",
    };
    vec![
        ("found", Value::Str(found.into())),
        ("rows_kept", Value::UInt(r.committed_rows)),
        ("bytes_cut", Value::UInt(r.bytes_cut)),
        ("header_rewritten", Value::Bool(r.header_rewritten)),
        ("file_rewritten", Value::Bool(r.file_rewritten)),
        ("dropped_rows", Value::UInt(r.dropped_rows)),
        ("adopted_rows", Value::UInt(r.adopted_rows)),
        ("missing_rows", Value::UInt(r.missing_rows)),
        ("zero_filled_bytes", Value::UInt(r.zero_filled_bytes)),
        (
            "rewrite_leftover_removed",
            Value::Bool(r.rewrite_leftover_removed),
        ),
        ("journal_discarded", Value::Bool(r.journal_discarded)),
        ("rows_discarded", Value::UInt(r.rows_discarded)),
        (
            "journal_moved_aside",
            r.journal_moved_aside
                .as_ref()
                .map_or(Value::Null, |p| Value::Str(p.display().to_string())),
        ),
        ("journal_removed", Value::Bool(journal_removed)),
    ]
}

fn text_fields(s: &FileStatus) -> Vec<(&'static str, String)> {
    let h = &s.header;
    let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_owned(), |v| v.to_string());
    let mut fields = vec![
        ("file", s.path.display().to_string()),
        ("dtype", h.dtype.descr_repr()),
        ("shape", header::shape_repr(&h.shape)),
        ("fortran order", h.fortran_order.to_string()),
        ("npy version", h.version.to_string()),
        ("header length", format!("{} bytes", h.header_len)),
        ("data offset", h.data_offset().to_string()),
        ("row bytes", opt(s.row_bytes)),
        ("file length", format!("{} bytes", s.file_len)),
        ("committed rows", opt(s.rows)),
        (
            "journal",
            if s.journal_present {
                format!("present ({})", s.journal_path.display())
            } else {
                "none".to_owned()
            },
        ),
        ("state", s.state.to_string()),
        (
            "past end",
            format!("{} bytes past the committed rows", opt(s.bytes_past_end)),
        ),
        ("recovery", format!("would {}", recovery_text(s))),
    ];
    if !s.header_from_file {
        fields.insert(1, ("header", "rebuilt from the journal".to_owned()));
    }
    if let Some(problem) = &s.problem {
        fields.push(("problem", problem.clone()));
    }
    fields
}

fn to_json(s: &FileStatus) -> Value {
    let h = &s.header;
    let recovery = match &s.recovery {
        RecoveryAction::Nothing => Value::Object(vec![("action", Value::Str("none".into()))]),
        RecoveryAction::Changes(r) => Value::Object(
            [("action", Value::Str("changes".into()))]
                .into_iter()
                .chain(report_json(r, s.journal_present))
                .collect(),
        ),
        RecoveryAction::Refuses(why) => Value::Object(vec![
            ("action", Value::Str("refuses".into())),
            ("reason", Value::Str(why.clone())),
        ]),
        other => Value::Object(vec![("action", Value::Str(format!("{other:?}")))]),
    };
    Value::Object(vec![
        ("path", Value::Str(s.path.display().to_string())),
        ("descr", Value::descr(&h.dtype)),
        ("descr_repr", Value::Str(h.dtype.descr_repr())),
        ("shape", Value::uints(&h.shape)),
        ("fortran_order", Value::Bool(h.fortran_order)),
        ("version", Value::Str(h.version.to_string())),
        ("header_len", Value::UInt(h.header_len)),
        ("data_offset", Value::UInt(h.data_offset())),
        ("header_from_file", Value::Bool(s.header_from_file)),
        ("header_text_chars", Value::opt_uint(s.header_text_chars)),
        (
            "numpy_refuses_header",
            Value::Bool(s.numpy_refuses_header()),
        ),
        ("row_bytes", Value::opt_uint(s.row_bytes)),
        ("file_len", Value::UInt(s.file_len)),
        ("rows", Value::opt_uint(s.rows)),
        ("journal", Value::Bool(s.journal_present)),
        ("state", Value::Str(s.state.to_string())),
        ("bytes_past_end", Value::opt_uint(s.bytes_past_end)),
        ("problem", s.problem.clone().map_or(Value::Null, Value::Str)),
        ("recovery", recovery),
    ])
}
