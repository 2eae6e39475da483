//! `info` and `verify` of a group journal: read-only reports built on
//! [`GroupStatus`] (the members, the state, what recovery would do); and
//! `recover` of a group journal: its writer's open and close, or with
//! `--dry-run` the same plan, read-only.

use std::process::ExitCode;

use npy_append::format::header;
use npy_append::{FileState, GroupOptions, GroupStatus, MemberRecovery, MemberStatus};

use crate::args::{RecoverArgs, ShortFile, Tail};
use crate::json::Value;
use crate::output::{self, EXIT_PROBLEM, Failure};

/// `npy-append recover GROUP [--dry-run] [--accept-loss]
/// [--move-aside-journal] [--json]`: opens the group as its writer would
/// (recovering every member to one commit) and closes it; with `--dry-run`
/// says what that would do, from the same plan, changing nothing.
pub fn recover(args: &RecoverArgs) -> Result<ExitCode, Failure> {
    let path = &args.file;
    let shown = path.display();
    if args.tail != Tail::Refuse || args.short_file != ShortFile::Refuse {
        return Err(Failure::new(format!(
            "{shown}: --tail and --short-file are for a .npy without a journal; a group's \
             members always have their group journal"
        )));
    }
    let options = GroupOptions::new()
        .accept_loss(args.accept_loss)
        .move_aside_foreign_journal(args.move_aside_journal);
    let lib = |e| Failure::lib(path, &e);
    let preview = GroupStatus::preview_recovery(path, &options).map_err(lib)?;
    if let Some(why) = preview.members.iter().find_map(|m| match &m.recovery {
        MemberRecovery::Refuses(why) => Some(format!("member {}: {why}", m.name)),
        _ => None,
    }) {
        let verb = if args.dry_run {
            "dry run: recovery would refuse and change nothing"
        } else {
            "recovery refused and changed nothing"
        };
        return Err(Failure::new(format!("{shown}: {verb}: {why}")));
    }
    let mut done = String::new();
    if !args.dry_run {
        let group = options.open(path).map_err(lib)?;
        let kept: Vec<String> = (0..group.member_count())
            .map(|i| {
                let name = group.member_name(i).unwrap_or_default();
                match group.dropped_rows().get(i).copied().unwrap_or(0) {
                    0 => format!("{name} {}", group.rows(i)),
                    d => format!("{name} {} (dropped {d})", group.rows(i)),
                }
            })
            .collect();
        done = format!("kept {}; cut {} bytes", kept.join(", "), group.bytes_cut());
        group.close().map_err(lib)?;
    }
    if args.json {
        let mut json = to_json(&preview);
        if let Value::Object(fields) = &mut json {
            fields.push(("dry_run", Value::Bool(args.dry_run)));
        }
        output::line(format_args!("{}", json.render()))?;
    } else if args.dry_run {
        output::line(format_args!(
            "{shown}: dry run: recovery would {}; nothing was changed",
            recovery_text(&preview)
        ))?;
    } else {
        output::line(format_args!("{shown}: recovered: {done}; closed cleanly"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `npy-append info GROUP [--json]`.
pub fn info(status: &GroupStatus, json: bool) -> Result<ExitCode, Failure> {
    if json {
        output::line(format_args!("{}", to_json(status).render()))?;
    } else {
        for (key, value) in text_fields(status) {
            output::line(format_args!("{key:<16}{value}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `npy-append verify GROUP`: 0 clean, 1 needs recovery or inconsistent.
pub fn verify(status: &GroupStatus) -> Result<ExitCode, Failure> {
    let shown = status.path.display();
    let problem = status.problem.as_deref().unwrap_or("");
    match status.state {
        FileState::Clean => {
            output::line(format_args!(
                "{shown}: ok: a group closed cleanly, {} members at their committed rows ({})",
                status.members.len(),
                rows_text(status)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        FileState::NeedsRecovery => {
            output::line(format_args!(
                "{shown}: needs recovery: {problem}; opening the group for appending would {}",
                recovery_text(status)
            ))?;
            Ok(ExitCode::from(EXIT_PROBLEM))
        }
        _ => {
            output::line(format_args!("{shown}: inconsistent: {problem}"))?;
            Ok(ExitCode::from(EXIT_PROBLEM))
        }
    }
}

/// "x.npy 5, y.npy 5": the rows recovery keeps.
fn rows_text(status: &GroupStatus) -> String {
    status
        .members
        .iter()
        .map(|m| {
            let dropped = match m.recovery {
                MemberRecovery::Changes { rows_dropped, .. } => rows_dropped,
                _ => 0,
            };
            format!("{} {}", m.name, m.rows - dropped)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One member's recovery as a phrase.
fn member_text(m: &MemberStatus) -> String {
    match &m.recovery {
        MemberRecovery::Nothing => "change nothing".to_owned(),
        MemberRecovery::Changes {
            bytes_cut,
            header_rewritten,
            created,
            rows_dropped,
        } => {
            let mut parts = Vec::new();
            if *rows_dropped > 0 {
                parts.push(format!(
                    "drop the newest commit's last {rows_dropped} rows (a power loss did not keep them)"
                ));
            }
            if *created {
                parts.push("create it from the journal's header".to_owned());
            }
            if *bytes_cut > 0 {
                parts.push(format!("cut {bytes_cut} bytes"));
            }
            if *header_rewritten && !*created {
                parts.push("rewrite the header".to_owned());
            }
            parts.join(", ")
        }
        MemberRecovery::Refuses(why) => format!("refuse and change nothing: {why}"),
        other => format!("{other:?}"),
    }
}

/// What recovery would do to the group, as a phrase.
pub fn recovery_text(status: &GroupStatus) -> String {
    let changed: Vec<String> = status
        .members
        .iter()
        .filter(|m| m.recovery != MemberRecovery::Nothing)
        .map(|m| format!("{}: {}", m.name, member_text(m)))
        .collect();
    if changed.is_empty() {
        format!("keep {} and change nothing", rows_text(status))
    } else {
        format!("keep {}; {}", rows_text(status), changed.join("; "))
    }
}

/// `refuses` when recovery refuses a member, `changes` when it changes
/// one, else `none`.
fn group_action(s: &GroupStatus) -> &'static str {
    if s.members
        .iter()
        .any(|m| matches!(m.recovery, MemberRecovery::Refuses(_)))
    {
        "refuses"
    } else if s
        .members
        .iter()
        .any(|m| m.recovery != MemberRecovery::Nothing)
    {
        "changes"
    } else {
        "none"
    }
}

fn text_fields(s: &GroupStatus) -> Vec<(String, String)> {
    let mut fields = vec![
        ("group".to_owned(), s.path.display().to_string()),
        ("members".to_owned(), s.members.len().to_string()),
        (
            "commit".to_owned(),
            s.sequence.map_or_else(
                || "none valid (a torn creation)".to_owned(),
                |n| format!("sequence {n}"),
            ),
        ),
        (
            "closed".to_owned(),
            if s.closed { "yes" } else { "no" }.to_owned(),
        ),
        (
            "writer".to_owned(),
            s.writer
                .map_or_else(|| "unknown".to_owned(), |w| w.to_string()),
        ),
        ("cursor".to_owned(), format!("{} bytes", s.cursor.len())),
        ("state".to_owned(), s.state.to_string()),
        ("recovery".to_owned(), format!("would {}", recovery_text(s))),
    ];
    if let Some(problem) = &s.problem {
        fields.push(("problem".to_owned(), problem.clone()));
    }
    for m in &s.members {
        let len = m
            .file_len
            .map_or_else(|| "missing".to_owned(), |n| format!("{n} bytes"));
        fields.push((
            format!("member {}", m.name),
            format!(
                "dtype {}, rows of shape {}{}, {} committed rows, file {len}",
                m.dtype.descr_repr(),
                header::shape_repr(&m.row_shape),
                if m.fortran_order {
                    " (Fortran order)"
                } else {
                    ""
                },
                m.rows,
            ),
        ));
    }
    fields
}

fn to_json(s: &GroupStatus) -> Value {
    let members = s
        .members
        .iter()
        .map(|m| {
            let recovery = match &m.recovery {
                MemberRecovery::Nothing => {
                    Value::Object(vec![("action", Value::Str("none".into()))])
                }
                MemberRecovery::Changes {
                    bytes_cut,
                    header_rewritten,
                    created,
                    rows_dropped,
                } => Value::Object(vec![
                    ("action", Value::Str("changes".into())),
                    ("bytes_cut", Value::UInt(*bytes_cut)),
                    ("rows_dropped", Value::UInt(*rows_dropped)),
                    ("header_rewritten", Value::Bool(*header_rewritten)),
                    ("created", Value::Bool(*created)),
                ]),
                MemberRecovery::Refuses(why) => Value::Object(vec![
                    ("action", Value::Str("refuses".into())),
                    ("reason", Value::Str(why.clone())),
                ]),
                other => Value::Object(vec![("action", Value::Str(format!("{other:?}")))]),
            };
            Value::Object(vec![
                ("name", Value::Str(m.name.clone())),
                ("path", Value::Str(m.path.display().to_string())),
                ("descr", Value::descr(&m.dtype)),
                ("descr_repr", Value::Str(m.dtype.descr_repr())),
                ("row_shape", Value::uints(&m.row_shape)),
                ("fortran_order", Value::Bool(m.fortran_order)),
                ("row_bytes", Value::UInt(m.row_bytes)),
                ("rows", Value::UInt(m.rows)),
                ("file_len", Value::opt_uint(m.file_len)),
                ("recovery", recovery),
            ])
        })
        .collect();
    Value::Object(vec![
        ("path", Value::Str(s.path.display().to_string())),
        ("kind", Value::Str("group".into())),
        ("sequence", Value::opt_uint(s.sequence)),
        ("closed", Value::Bool(s.closed)),
        (
            "writer",
            s.writer.map_or(Value::Null, |w| Value::Str(w.to_string())),
        ),
        ("cursor_len", Value::UInt(s.cursor.len() as u64)),
        ("state", Value::Str(s.state.to_string())),
        ("problem", s.problem.clone().map_or(Value::Null, Value::Str)),
        (
            "recovery",
            Value::Object(vec![
                ("action", Value::Str(group_action(s).into())),
                ("text", Value::Str(recovery_text(s))),
            ]),
        ),
        ("members", Value::List(members)),
    ])
}
