//! Kill a dataset builder with SIGKILL mid-run, then resume it exactly at its
//! last commit.
//!
//! ```text
//! cargo run --release --example resume_after_kill
//! cargo run --release --example resume_after_kill -- --rows 4000000 --durability process --dir /data/tmp
//! ```
//!
//! The example re-runs itself as a child process that builds a `(rows, 64)`
//! float32 `.npy` (2,000,000 rows, 512 MB by default), committing every
//! 20,000 rows and reporting each acknowledged commit. Once about 40% is
//! acknowledged, the parent kills the child with SIGKILL, wherever it is (in
//! the middle of writing a batch, most likely). The parent then opens the
//! file with `Appender::open_or_recover`, prints the recovery report, appends
//! the remaining rows from `len()`, closes, and checks every value of every
//! row by reading the file back, independently of the library. It exits
//! non-zero on any mismatch.
//!
//! Row `i` holds `value(i, j)` in column `j`: column 0 is `i` itself, so a
//! row in the wrong place cannot go unnoticed.
//!
//! Options: `--rows N`, `--commit-every N`, `--durability fsync|process`
//! (default fsync), `--kill-at FRACTION` (default 0.4), `--dir DIR` (keep the
//! file there instead of a temporary directory).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use npy_append::{AppendOptions, Appender, Durability};

/// Set in the child's environment: the path of the file to build.
const CHILD_ENV: &str = "NPY_APPEND_EXAMPLE_CHILD";
/// Values per row.
const COLS: usize = 64;
/// Bytes per row.
const ROW_BYTES: u64 = COLS as u64 * 4;
/// Rows per `append` call.
const BATCH: u64 = 10_000;

/// The value in column `j` of row `i`.
fn value(i: u64, j: usize) -> f32 {
    i as f32 + j as f32 / 64.0
}

/// Rows `start..start + n`, flattened, into `buf`.
fn fill(buf: &mut Vec<f32>, start: u64, n: u64) {
    buf.clear();
    for i in start..start + n {
        buf.extend((0..COLS).map(|j| value(i, j)));
    }
}

#[derive(Debug, Clone)]
struct Config {
    rows: u64,
    commit_every: u64,
    durability: Durability,
    kill_at: f64,
    dir: Option<PathBuf>,
}

impl Config {
    fn from_args() -> Result<Self, String> {
        let mut config = Self {
            rows: 2_000_000,
            commit_every: 20_000,
            durability: Durability::Fsync,
            kill_at: 0.4,
            dir: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--rows" => config.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
                "--commit-every" => {
                    config.commit_every = value()?
                        .parse()
                        .map_err(|e| format!("--commit-every: {e}"))?;
                }
                "--durability" => {
                    config.durability = match value()?.as_str() {
                        "fsync" => Durability::Fsync,
                        "process" => Durability::Process,
                        other => {
                            return Err(format!("--durability: fsync or process, not {other}"));
                        }
                    };
                }
                "--kill-at" => {
                    config.kill_at = value()?.parse().map_err(|e| format!("--kill-at: {e}"))?
                }
                "--dir" => config.dir = Some(PathBuf::from(value()?)),
                "-h" | "--help" => {
                    return Err("usage: resume_after_kill [--rows N] [--commit-every N] \
                                [--durability fsync|process] [--kill-at FRACTION] [--dir DIR]"
                        .to_owned());
                }
                other => return Err(format!("unknown argument {other} (try --help)")),
            }
        }
        if config.rows < 10 || config.commit_every == 0 || !(0.05..0.95).contains(&config.kill_at) {
            return Err(
                "need --rows >= 10, --commit-every >= 1, 0.05 <= --kill-at < 0.95".to_owned(),
            );
        }
        Ok(config)
    }
}

fn options(config: &Config) -> AppendOptions {
    AppendOptions::new()
        .dtype("<f4")
        .expect("a valid dtype")
        .row_shape(&[COLS as u64])
        .durability(config.durability)
}

/// Appends rows from the committed end up to `config.rows`, committing every
/// `config.commit_every` rows and calling `on_commit` after each commit
/// returned; closes the file. Returns the rows written.
fn build(
    w: &mut Appender,
    config: &Config,
    mut on_commit: impl FnMut(u64),
) -> npy_append::Result<u64> {
    let start = w.len();
    let mut buf = Vec::with_capacity(BATCH as usize * COLS);
    let mut next = start;
    while next < config.rows {
        let commit_at = (next + config.commit_every).min(config.rows);
        while next < commit_at {
            let n = BATCH.min(commit_at - next);
            fill(&mut buf, next, n);
            w.append(&buf)?;
            next += n;
        }
        on_commit(w.commit()?);
    }
    Ok(next - start)
}

/// The child: builds the file from scratch, printing `committed N` after each
/// commit returns.
fn child(path: &Path, config: &Config) -> ExitCode {
    let result = options(config).open(path).and_then(|mut w| {
        let mut out = std::io::stdout().lock();
        build(&mut w, config, |n| {
            // Only after commit() returned: this line is the acknowledgement.
            let _ = writeln!(out, "committed {n}");
            let _ = out.flush();
        })?;
        let n = w.close()?;
        let _ = writeln!(out, "closed {n}");
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A minimal, independent NPY header reader: (header length, header text).
fn read_header(file: &mut std::fs::File) -> Result<(u64, String), String> {
    let mut prefix = [0u8; 12];
    file.read_exact(&mut prefix)
        .map_err(|e| format!("reading the header: {e}"))?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (bad magic)".to_owned());
    }
    let (len, start) = match prefix[6] {
        1 => (u64::from(u16::from_le_bytes([prefix[8], prefix[9]])), 10),
        2 | 3 => (
            u64::from(u32::from_le_bytes([
                prefix[8], prefix[9], prefix[10], prefix[11],
            ])),
            12,
        ),
        v => return Err(format!("unknown NPY version {v}")),
    };
    let header_len = start + len;
    let mut text = vec![0u8; len as usize];
    std::io::Seek::seek(file, std::io::SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut text))
        .map_err(|e| format!("reading the header: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| "header is not text".to_owned())?;
    Ok((header_len, text))
}

/// Checks the finished file: header, length, and every value of every row.
fn verify(path: &Path, rows: u64) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (header_len, text) = read_header(&mut file)?;
    for needle in [
        "'descr': '<f4'".to_owned(),
        "'fortran_order': False".to_owned(),
        format!("'shape': ({rows}, {COLS})"),
    ] {
        if !text.contains(&needle) {
            return Err(format!("header {:?} lacks {needle}", text.trim_end()));
        }
    }
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let expected_len = header_len + rows * ROW_BYTES;
    if len != expected_len {
        return Err(format!(
            "file has {len} bytes, {rows} rows need {expected_len}"
        ));
    }
    let mut reader = BufReader::with_capacity(4 << 20, file);
    let mut row = vec![0u8; ROW_BYTES as usize];
    for i in 0..rows {
        reader
            .read_exact(&mut row)
            .map_err(|e| format!("reading row {i}: {e}"))?;
        for (j, bytes) in row.chunks_exact(4).enumerate() {
            let got = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if got.to_bits() != value(i, j).to_bits() {
                return Err(format!(
                    "row {i} column {j}: found {got}, expected {}",
                    value(i, j)
                ));
            }
        }
    }
    Ok(())
}

/// numpy's view of the file, when a Python with numpy is at hand:
/// `$NPY_APPEND_PYTHON`, else the test command's virtualenv
/// (`target/pyenv`, next to this executable's `target/release`), else
/// `python3`.
fn numpy_shape(path: &Path) -> Option<String> {
    let venv = std::env::current_exe().ok().and_then(|exe| {
        let target = exe
            .ancestors()
            .find(|d| d.ends_with("target"))?
            .to_path_buf();
        Some(target.join("pyenv/bin/python")).filter(|p| p.exists())
    });
    let python = std::env::var_os("NPY_APPEND_PYTHON")
        .filter(|p| !p.is_empty())
        .or_else(|| venv.map(Into::into))
        .unwrap_or_else(|| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, numpy as np; a = np.load(sys.argv[1], mmap_mode='r'); \
             print(a.shape, a.dtype, 'last row starts', a[-1, 0])",
        ])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn run(config: &Config) -> Result<(), String> {
    // A temporary directory next to the executable (under `target/`), not in
    // the system temp dir, which may be a small in-memory tmpfs.
    let temp;
    let dir = match &config.dir {
        Some(dir) => dir.clone(),
        None => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let near = exe
                .parent()
                .map_or_else(std::env::temp_dir, Path::to_path_buf);
            temp = tempfile::Builder::new()
                .prefix("resume_after_kill-")
                .tempdir_in(near)
                .map_err(|e| e.to_string())?;
            temp.path().to_path_buf()
        }
    };
    let path = dir.join("features.npy");
    let journal = npy_append::journal_path(&path);
    for stale in [&path, &journal] {
        if stale.exists() {
            std::fs::remove_file(stale).map_err(|e| format!("{}: {e}", stale.display()))?;
        }
    }
    let total_bytes = config.rows * ROW_BYTES;
    println!(
        "building {} rows x {COLS} float32 ({:.0} MB) in {} ({:?} commits every {} rows)",
        config.rows,
        mb(total_bytes),
        path.display(),
        config.durability,
        config.commit_every
    );

    // 1. The child builds the file until it is killed.
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(std::env::args().skip(1))
        .env(CHILD_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the child: {e}"))?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let kill_after = (config.rows as f64 * config.kill_at) as u64;
    let mut acked = 0;
    let mut next_report = config.rows / 10;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the child: {e}"))?;
        let Some(n) = line.strip_prefix("committed ").and_then(|n| n.parse().ok()) else {
            if line.starts_with("closed") {
                return Err(format!(
                    "the child finished ({line}) before it could be killed"
                ));
            }
            continue;
        };
        acked = n;
        if acked >= next_report {
            println!(
                "  child: {acked:>9} rows committed ({:>3}%)",
                acked * 100 / config.rows
            );
            next_report += config.rows / 10;
        }
        if acked >= kill_after {
            break;
        }
    }
    if acked < kill_after {
        let status = child.wait().map_err(|e| e.to_string())?;
        return Err(format!("the child stopped at {acked} rows ({status})"));
    }
    // Let it get well into its next batch, then kill it: SIGKILL, no cleanup.
    std::thread::sleep(Duration::from_millis(u64::from(
        started.elapsed().subsec_nanos() % 30,
    )));
    child
        .kill()
        .map_err(|e| format!("killing the child: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let killed_at = started.elapsed();
    let len_at_kill = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    println!(
        "killed the child ({status}) after {:.2} s: {acked} rows acknowledged, file {len_at_kill} bytes, journal {}",
        killed_at.as_secs_f64(),
        if journal.exists() {
            "present"
        } else {
            "absent"
        }
    );

    // 2. Recover and resume in this process.
    let resume_started = Instant::now();
    let mut w = options(config)
        .open(&path)
        .map_err(|e| format!("open_or_recover after the kill: {e}"))?;
    let report = w.report().clone();
    let recovered = w.len();
    println!("recovered: {report}");
    if recovered < acked || recovered > config.rows {
        return Err(format!(
            "recovered {recovered} rows, but {acked} were acknowledged (of {})",
            config.rows
        ));
    }
    println!(
        "resuming at row {recovered} ({} rows beyond the last acknowledgement)",
        recovered - acked
    );
    let written = build(&mut w, config, |_| {}).map_err(|e| format!("resuming: {e}"))?;
    let closed = w.close().map_err(|e| format!("closing: {e}"))?;
    let resume_time = resume_started.elapsed();
    if closed != config.rows {
        return Err(format!(
            "closed with {closed} rows, expected {}",
            config.rows
        ));
    }
    if journal.exists() {
        return Err(format!("{} left after close", journal.display()));
    }

    // 3. Check every row, reading the file without the library.
    let verify_started = Instant::now();
    verify(&path, config.rows)?;
    let verify_time = verify_started.elapsed();
    let file_len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    println!(
        "verified all {} rows ({file_len} bytes) in {:.2} s; no journal left",
        config.rows,
        verify_time.as_secs_f64()
    );
    match numpy_shape(&path) {
        Some(shape) => println!("numpy: {shape}"),
        None => println!("numpy: not available, skipped"),
    }

    let write_time = killed_at + resume_time;
    println!(
        "summary: {} rows, {:.0} MB, {:.2} s total, {:.0} MB/s writing ({:?}); killed at {acked} acknowledged rows \
         ({}%), {recovered} rows recovered, {} bytes cut, header {}, {written} rows appended after resuming",
        config.rows,
        mb(file_len),
        started.elapsed().as_secs_f64(),
        mb(total_bytes + report.bytes_cut) / write_time.as_secs_f64(),
        config.durability,
        acked * 100 / config.rows,
        report.bytes_cut,
        if report.header_rewritten {
            "rewritten"
        } else {
            "unchanged"
        }
    );
    Ok(())
}

fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        return child(Path::new(&path), &config);
    }
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
