//! A dataset builder that is killed with SIGKILL several times and still ends
//! with exactly one copy of every input record.
//!
//! ```text
//! cargo run --release --example resumable_builder
//! cargo run --release --example resumable_builder -- --records 1000000 --kills 5 --dir /data/tmp
//! ```
//!
//! The builder reads a deterministic input stream (record `k` has an id, a
//! label and eight features; every 13th record is invalid and produces no
//! row, so the row count alone does not say where the input stands). It
//! writes three arrays as one append group — `features.npy` (N, 8) f32,
//! `labels.npy` (N,) i64, `ids.npy` (N,) u64 — and commits every batch of
//! input records with the input position as the cursor.
//!
//! The example re-runs itself as that builder in a child process, kills it
//! with SIGKILL once it has acknowledged a few commits (`--kills` times, at
//! different points), and restarts it each time; the builder resumes from
//! `cursor()`. A restarted builder also re-reads one batch before its cursor
//! (as a builder restarting from an older checkpoint of its input would) and
//! relies on `append_at` to skip what is already there. At the end the parent
//! reads the group back (a consistent snapshot) and checks that the rows are
//! exactly the valid input records, each once, in order; it exits non-zero
//! otherwise.
//!
//! Options: `--records N` (default 300,000), `--batch N` input records per
//! commit (default 2,000), `--kills N` (default 3), `--dir DIR` (keep the
//! files there instead of a temporary directory).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use npy_append::{AppendGroup, GroupOptions, GroupReader, MemberSpec};

/// Set in the child's environment: the group journal to build.
const CHILD_ENV: &str = "NPY_APPEND_BUILDER_CHILD";
/// The child's settings: `records,batch`.
const CHILD_CONFIG_ENV: &str = "NPY_APPEND_BUILDER_CONFIG";
/// Prefix of the lines the child prints.
const TAG: &str = "@builder ";
/// Features per record.
const FEATURES: usize = 8;

/// One input record.
struct Record {
    id: u64,
    label: i64,
    features: [f32; FEATURES],
}

/// Input record `k`, or `None` when it is invalid (skipped by the builder).
fn input(k: u64) -> Option<Record> {
    if k % 13 == 12 {
        return None;
    }
    let mut features = [0f32; FEATURES];
    for (j, f) in features.iter_mut().enumerate() {
        *f = (k as f32) * 0.25 + j as f32;
    }
    Some(Record {
        id: k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555,
        label: (k % 10) as i64 - 5,
        features,
    })
}

/// How many valid records precede input position `k`.
fn rows_before(k: u64) -> u64 {
    k - k / 13
}

fn open_group(path: &Path) -> npy_append::Result<AppendGroup> {
    GroupOptions::new()
        .member(MemberSpec::of::<f32>("features.npy", &[FEATURES as u64]))
        .member(MemberSpec::of::<i64>("labels.npy", &[]))
        .member(MemberSpec::of::<u64>("ids.npy", &[]))
        .lock_wait(npy_append::LockWait::Wait(std::time::Duration::from_secs(
            10,
        )))
        .open(path)
}

/// The builder: resumes from the cursor and processes the rest of the input.
fn child(path: &Path, records: u64, batch: u64) -> Result<(), String> {
    let mut g = open_group(path).map_err(|e| e.to_string())?;
    let cursor = g.cursor();
    let resume = if cursor.is_empty() {
        0
    } else {
        let text = std::str::from_utf8(cursor).map_err(|e| e.to_string())?;
        text.parse::<u64>().map_err(|e| e.to_string())?
    };
    println!("{TAG}resume {resume} rows {}", g.rows(0));
    // Restart one batch early, as from an older checkpoint: append_at skips
    // the rows already committed.
    let mut k = resume.saturating_sub(batch);
    let (mut feats, mut labels, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    while k < records {
        let end = (k + batch).min(records);
        let first_row = rows_before(k);
        feats.clear();
        labels.clear();
        ids.clear();
        for r in (k..end).filter_map(input) {
            feats.extend_from_slice(&r.features);
            labels.push(r.label);
            ids.push(r.id);
        }
        // `append_at` is keyed by row index: rows the group already holds
        // are skipped, in every member alike.
        g.append_at(0, first_row, &feats)
            .map_err(|e| e.to_string())?;
        g.append_at(1, first_row, &labels)
            .map_err(|e| e.to_string())?;
        g.append_at(2, first_row, &ids).map_err(|e| e.to_string())?;
        g.commit_with_cursor(end.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        println!("{TAG}committed {end}");
        k = end;
    }
    g.close().map_err(|e| e.to_string())?;
    println!("{TAG}done");
    Ok(())
}

struct Config {
    records: u64,
    batch: u64,
    kills: u32,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        records: 300_000,
        batch: 2_000,
        kills: 3,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => config.records = value()?.parse().map_err(|e| format!("{e}"))?,
            "--batch" => config.batch = value()?.parse().map_err(|e| format!("{e}"))?,
            "--kills" => config.kills = value()?.parse().map_err(|e| format!("{e}"))?,
            "--dir" => config.dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if config.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    Ok(config)
}

/// Starts the builder; `test_entry` names the test that runs it when this
/// is a test binary.
fn spawn(
    path: &Path,
    config: &Config,
    test_entry: Option<&str>,
) -> Result<std::process::Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    if let Some(name) = test_entry {
        cmd.args([name, "--exact", "--nocapture", "--test-threads=1"]);
    }
    cmd.env(CHILD_ENV, path)
        .env(
            CHILD_CONFIG_ENV,
            format!("{},{}", config.records, config.batch),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())
}

/// What the parent saw.
struct Summary {
    kills: u32,
    resumed_from: Vec<u64>,
    rows: u64,
}

/// Runs the builder, killing it `config.kills` times, until it finishes;
/// then checks the result.
fn run(dir: &Path, config: &Config, test_entry: Option<&str>) -> Result<Summary, String> {
    let path = dir.join("dataset.group");
    let mut summary = Summary {
        kills: 0,
        resumed_from: Vec::new(),
        rows: 0,
    };
    let batches = config.records.div_ceil(config.batch).max(1);
    loop {
        let mut child = spawn(&path, config, test_entry)?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let killing = summary.kills < config.kills;
        // Kill after a few more acknowledged commits each time.
        let kill_after = u64::from(summary.kills + 1) * batches / u64::from(config.kills + 2);
        let mut acked_batches = 0u64;
        let mut done = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            // A test binary's harness may print on the same line first.
            let Some(msg) = line.find(TAG).map(|at| &line[at + TAG.len()..]) else {
                continue;
            };
            if let Some(rest) = msg.strip_prefix("resume ") {
                let at = rest.split(' ').next().unwrap_or("0");
                summary
                    .resumed_from
                    .push(at.parse().map_err(|e| format!("{e}"))?);
            } else if let Some(end) = msg.strip_prefix("committed ") {
                let end: u64 = end.parse().map_err(|e| format!("{e}"))?;
                acked_batches = end.div_ceil(config.batch);
                if killing && acked_batches >= kill_after {
                    child.kill().map_err(|e| e.to_string())?; // SIGKILL
                    break;
                }
            } else if msg == "done" {
                done = true;
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if killing && !done {
            summary.kills += 1;
            println!(
                "kill {}: builder killed with SIGKILL after {acked_batches} acknowledged batches",
                summary.kills
            );
            continue;
        }
        if !status.success() || !done {
            return Err(format!("builder failed: {status}"));
        }
        break;
    }
    // Check: exactly the valid records, each once, in order.
    let r = GroupReader::open(&path).map_err(|e| e.to_string())?;
    let expected = rows_before(config.records);
    let (feats, labels, ids) = (
        r.as_slice::<f32>(0).map_err(|e| e.to_string())?,
        r.as_slice::<i64>(1).map_err(|e| e.to_string())?,
        r.as_slice::<u64>(2).map_err(|e| e.to_string())?,
    );
    if (r.rows(0), r.rows(1), r.rows(2)) != (expected, expected, expected) {
        return Err(format!(
            "rows {:?}, expected {expected} in every member",
            (r.rows(0), r.rows(1), r.rows(2))
        ));
    }
    let mut row = 0usize;
    for k in 0..config.records {
        let Some(rec) = input(k) else { continue };
        if ids.get(row) != Some(&rec.id)
            || labels.get(row) != Some(&rec.label)
            || feats.get(row * FEATURES..(row + 1) * FEATURES) != Some(&rec.features[..])
        {
            return Err(format!("row {row} is not input record {k}"));
        }
        row += 1;
    }
    if r.cursor() != config.records.to_string().as_bytes() {
        return Err(format!(
            "final cursor {:?}",
            String::from_utf8_lossy(r.cursor())
        ));
    }
    summary.rows = row as u64;
    Ok(summary)
}

/// The child's side, when this process is the builder.
fn child_from_env() -> Option<Result<(), String>> {
    let path = std::env::var_os(CHILD_ENV)?;
    let config = std::env::var(CHILD_CONFIG_ENV).unwrap_or_default();
    let mut parts = config.split(',').map(str::parse::<u64>);
    let (Some(Ok(records)), Some(Ok(batch))) = (parts.next(), parts.next()) else {
        return Some(Err(format!("bad {CHILD_CONFIG_ENV}: {config:?}")));
    };
    Some(child(Path::new(&path), records, batch))
}

fn main() -> ExitCode {
    if let Some(result) = child_from_env() {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("builder: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("resumable_builder: {e}");
            return ExitCode::from(2);
        }
    };
    let temp = tempfile::tempdir();
    let dir = match (&config.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Ok(t)) => t.path().to_path_buf(),
        (None, Err(e)) => {
            eprintln!("resumable_builder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match run(&dir, &config, None) {
        Ok(s) => {
            println!(
                "{} input records, {} rows ({} invalid records skipped), {} kills, resumed from input \
                 positions {:?}; every valid record present exactly once, in order, in all three \
                 arrays ({:.1} s)",
                config.records,
                s.rows,
                config.records - s.rows,
                s.kills,
                s.resumed_from,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("resumable_builder: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder's entry when the test binary runs as the child.
    #[test]
    fn child_entry() {
        if let Some(result) = child_from_env() {
            result.unwrap();
        }
    }

    #[test]
    fn killed_builder_ends_with_every_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            records: 20_000,
            batch: 500,
            kills: 3,
            dir: None,
        };
        let s = run(dir.path(), &config, Some("tests::child_entry")).unwrap();
        // Three kills are asked for; a heavily loaded machine may let the
        // builder finish before the third.
        assert!(s.kills >= 2, "{} kills", s.kills);
        assert_eq!(s.rows, rows_before(20_000));
        assert_eq!(s.resumed_from.len(), 4);
        assert_eq!(s.resumed_from[0], 0);
        assert!(s.resumed_from.windows(2).all(|w| w[0] <= w[1]));
    }
}
