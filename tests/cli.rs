//! The `npy-append` command-line tool, run as a built binary: every
//! subcommand, every exit code, the JSON of `info --json`, a SIGKILL of
//! `append` followed by `recover`, `follow`, and the read-only commands on
//! malformed files (never a panic, never a change to the file).

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use npy_append::format::dtype::Dtype;
use npy_append::format::header;
use npy_append::{AppendOptions, Appender, Durability, LockWait, Reader, journal_path};

const BIN: &str = env!("CARGO_BIN_EXE_npy-append");

/// What a run of the tool returned.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the tool with `args` and `stdin`; fails the test on a panic (101),
/// a death by signal, or any exit code other than 0, 1 and 2.
fn run<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // The tool may exit before reading everything (a usage error).
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("npy-append {args:?} died: {}\n{stderr}", out.status));
    assert!(
        matches!(code, 0..=2),
        "npy-append {args:?} exited {code}:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    Out {
        code,
        stdout,
        stderr,
    }
}

/// `run` with the path as the last argument, for readability.
fn cmd(args: &[&str], path: &Path) -> Out {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.push(path.as_os_str());
    run(&all, b"")
}

fn assert_code(out: &Out, code: i32, what: &str) {
    assert_eq!(
        out.code, code,
        "{what}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout, out.stderr
    );
}

/// Three `<f4` values per row: row `i` is `[i, i + 0.5, i + 0.25]`.
fn f4_rows(range: std::ops::Range<u32>) -> Vec<u8> {
    range
        .flat_map(|i| {
            let i = i as f32;
            [i, i + 0.5, i + 0.25]
        })
        .flat_map(f32::to_le_bytes)
        .collect()
}

fn f4_values(range: std::ops::Range<u32>) -> Vec<f32> {
    range
        .flat_map(|i| {
            let i = i as f32;
            [i, i + 0.5, i + 0.25]
        })
        .collect()
}

/// The `.npy` and its journal, byte for byte (`None` when absent).
fn snapshot(path: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        std::fs::read(path).ok(),
        std::fs::read(journal_path(path)).ok(),
    )
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A crashed writer's file: 4 committed rows of `<f4` x 3, then 2
/// uncommitted rows written to the file, then the writer is dropped.
fn crashed(path: &Path) {
    crashed_with(path, Durability::Process);
}

/// [`crashed`] with commits of the given durability.
fn crashed_with(path: &Path, durability: Durability) {
    let mut w = AppendOptions::new()
        .dtype("<f4")
        .unwrap()
        .row_shape(&[3])
        .durability(durability)
        .buffer_bytes(1)
        .open(path)
        .unwrap();
    w.append(&f4_values(0..4)).unwrap();
    w.commit().unwrap();
    w.append(&f4_values(4..6)).unwrap();
    drop(w);
    assert!(journal_path(path).exists());
}

/// A clean file of `rows` rows of `<f4` x 3, written by the tool.
fn clean(path: &Path, rows: u32) {
    let out = run(
        &[
            OsStr::new("append"),
            path.as_os_str(),
            OsStr::new("--dtype"),
            OsStr::new("<f4"),
            OsStr::new("--row-shape"),
            OsStr::new("3"),
        ],
        &f4_rows(0..rows),
    );
    assert_code(&out, 0, "append");
}

fn reader_values(path: &Path) -> Vec<f32> {
    Reader::open(path)
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec()
}

#[test]
fn append_creates_commits_in_groups_and_continues_an_existing_file() {
    let dir = temp();
    let path = dir.path().join("a.npy");
    let p = path.to_str().unwrap();
    let out = run(
        &[
            "append",
            p,
            "--dtype",
            "<f4",
            "--row-shape",
            "3",
            "--commit-every",
            "2",
        ],
        &f4_rows(0..5),
    );
    assert_code(&out, 0, "append to a new file");
    assert_eq!(out.stdout, "committed 2\ncommitted 4\ncommitted 5\n");
    assert!(!journal_path(&path).exists(), "closed cleanly");
    assert_eq!(reader_values(&path), f4_values(0..5));

    // An existing file: the options may be omitted...
    let out = run(&["append", p, "--durability", "process"], &f4_rows(5..8));
    assert_code(&out, 0, "append without options");
    assert_eq!(out.stdout, "committed 8\n");
    // ... and must match when given.
    let out = run(
        &["append", p, "--dtype", "<f4", "--row-shape", "3"],
        &f4_rows(8..9),
    );
    assert_code(&out, 0, "append with matching options");
    assert_eq!(out.stdout, "committed 9\n");
    // A crashed writer's file: append recovers it first and says so.
    let crash = dir.path().join("crash.npy");
    crashed(&crash);
    let out = run(&[OsStr::new("append"), crash.as_os_str()], &f4_rows(4..5));
    assert_code(&out, 0, "append to a crashed writer's file");
    assert_eq!(out.stdout, "committed 5\n");
    assert!(
        out.stderr.contains("recovered") && out.stderr.contains("24 bytes cut"),
        "{}",
        out.stderr
    );
    assert_eq!(reader_values(&crash), f4_values(0..5));
    // Empty input: nothing appended, the total printed.
    let out = run(&["append", p, "--commit-every", "4"], b"");
    assert_code(&out, 0, "empty input");
    assert_eq!(out.stdout, "committed 9\n");
    // A commit boundary that falls on the end of the input prints once.
    let out = run(&["append", p, "--commit-every", "3"], &f4_rows(9..12));
    assert_eq!(out.stdout, "committed 12\n");
    assert_eq!(reader_values(&path), f4_values(0..12));
    assert!(!journal_path(&path).exists());
    assert_code(&cmd(&["verify"], &path), 0, "verify after appends");
}

#[test]
fn append_errors_exit_2_name_the_file_and_change_nothing() {
    let dir = temp();
    let path = dir.path().join("e.npy");
    let p = path.to_str().unwrap();

    // A new file needs --dtype; nothing is created.
    let out = run(&["append", p], &f4_rows(0..1));
    assert_code(&out, 2, "new file without --dtype");
    assert!(
        out.stderr.contains(p) && out.stderr.contains("--dtype"),
        "{}",
        out.stderr
    );
    assert!(!path.exists() && !journal_path(&path).exists());

    // Not a dtype.
    let out = run(&["append", p, "--dtype", "<x9"], b"");
    assert_code(&out, 2, "bad dtype");
    assert!(out.stderr.contains("<x9"), "{}", out.stderr);
    assert!(!path.exists());

    clean(&path, 2);
    let before = snapshot(&path);
    for (args, what) in [
        (vec!["--dtype", "<f8"], "other dtype"),
        (vec!["--row-shape", "4"], "other row shape"),
        (vec!["--dtype", "<f4", "--row-shape", ""], "scalar rows"),
    ] {
        let mut all = vec!["append", p];
        all.extend(args);
        let out = run(&all, &f4_rows(0..1));
        assert_code(&out, 2, what);
        assert!(out.stderr.contains(p), "{what}: {}", out.stderr);
        assert_eq!(snapshot(&path), before, "{what}: file changed");
    }

    // Usage errors (clap): exit 2, nothing changed.
    for args in [
        vec![],
        vec!["frobnicate", p],
        vec!["append"],
        vec!["append", p, "--row-shape", "3,x"],
        vec!["append", p, "--commit-every", "0"],
        vec!["append", p, "--durability", "sometimes"],
        vec!["info", p, "--yaml"],
        vec!["recover", p, "--tail", "guess"],
    ] {
        let out = run(&args, b"");
        assert_code(&out, 2, &format!("usage {args:?}"));
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    assert_eq!(snapshot(&path), before);
    assert_code(&run(&["--help"], b""), 0, "--help");
    assert_code(&run(&["append", "--help"], b""), 0, "append --help");
}

#[test]
fn append_commits_the_whole_rows_before_a_trailing_partial_row() {
    let dir = temp();
    let path = dir.path().join("partial.npy");
    let p = path.to_str().unwrap();
    let mut input = f4_rows(0..7);
    input.extend([1, 2, 3, 4, 5]);
    let out = run(
        &[
            "append",
            p,
            "--dtype",
            "<f4",
            "--row-shape",
            "3",
            "--commit-every",
            "4",
        ],
        &input,
    );
    assert_code(&out, 2, "trailing partial row");
    assert_eq!(out.stdout, "committed 4\ncommitted 7\n");
    assert!(
        out.stderr.contains(p) && out.stderr.contains("5 bytes"),
        "{}",
        out.stderr
    );
    assert!(
        !journal_path(&path).exists(),
        "closed cleanly before failing"
    );
    assert_eq!(reader_values(&path), f4_values(0..7));
    assert_code(&cmd(&["verify"], &path), 0, "verify");
}

#[test]
fn append_takes_a_structured_dtype_in_numpys_list_form() {
    let dir = temp();
    let path = dir.path().join("s.npy");
    let p = path.to_str().unwrap();
    let descr = "[('a', '<i4'), ('b', '<f8', (3,))]";
    // Row i: a = i, b = [i, 2i, 3i].
    let input: Vec<u8> = (0..6i32)
        .flat_map(|i| {
            let mut row = i.to_le_bytes().to_vec();
            for k in 1..=3 {
                row.extend((f64::from(i) * f64::from(k)).to_le_bytes());
            }
            row
        })
        .collect();
    let out = run(&["append", p, "--dtype", descr], &input);
    assert_code(&out, 0, "structured append");
    assert_eq!(out.stdout, "committed 6\n");
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.dtype(), &Dtype::parse_descr(descr).unwrap());
    assert_eq!(r.row_bytes(), 28);
    assert_eq!(r.bytes(0..6).unwrap(), input.as_slice());

    let json = cmd(&["info", "--json"], &path);
    assert_code(&json, 0, "info --json");
    assert!(
        json.stdout
            .contains(r#""descr": [["a", "<i4"], ["b", "<f8", [3]]]"#),
        "{}",
        json.stdout
    );
    let Some(py) = support::require_numpy("append_takes_a_structured_dtype_in_numpys_list_form")
    else {
        return;
    };
    let got = support::run_python(
        &py,
        r#"
import json, sys
import numpy as np
a = np.load(sys.argv[1], mmap_mode="r")
assert a.dtype == np.dtype([('a', '<i4'), ('b', '<f8', (3,))]), a.dtype
assert a.shape == (6,), a.shape
assert (a['a'] == np.arange(6)).all()
assert (a['b'] == np.arange(6)[:, None] * np.array([1, 2, 3])).all()
d = json.loads(sys.argv[2])
# numpy's descr, as json.dumps writes it (tuples become lists).
assert d["descr"] == json.loads(json.dumps(a.dtype.descr)), (d["descr"], a.dtype.descr)
print("ok")
"#,
        &[p, json.stdout.trim()],
    );
    assert_eq!(got.trim(), "ok");
}

#[test]
fn info_json_matches_what_numpy_reads_from_the_header() {
    let Some(py) = support::require_numpy("info_json_matches_what_numpy_reads_from_the_header")
    else {
        return;
    };
    let dir = temp();
    let mut cases: Vec<(PathBuf, String)> = Vec::new();
    // Written by the tool, a crashed writer's file, and numpy's own files.
    let tool = dir.path().join("tool.npy");
    clean(&tool, 5);
    cases.push((tool, "clean".into()));
    let crash = dir.path().join("crash.npy");
    crashed(&crash);
    cases.push((crash, "needs-recovery".into()));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy");
    for name in [
        "f4.npy",
        "struct.npy",
        "nested.npy",
        "alpha_v3.npy",
        "nd_f4.npy",
        "be_f8.npy",
    ] {
        cases.push((fixtures.join(name), "clean".into()));
    }
    for (path, state) in cases {
        let before = snapshot(&path);
        let out = cmd(&["info", "--json"], &path);
        assert_code(&out, 0, &format!("info --json {}", path.display()));
        assert_eq!(snapshot(&path), before, "info changed {}", path.display());
        let check = support::run_python(
            &py,
            r#"
import json, sys
import numpy as np
from numpy.lib import format as npf
d = json.loads(sys.argv[2])
for key in ["descr", "shape", "fortran_order", "version", "header_len", "rows", "state",
            "data_offset", "journal", "bytes_past_end", "recovery"]:
    assert key in d, key
try:
    from numpy.lib._format_impl import _read_array_header  # numpy >= 2
except ImportError:
    from numpy.lib.format import _read_array_header
with open(sys.argv[1], "rb") as f:
    major, minor = npf.read_magic(f)
    shape, fortran, dtype = _read_array_header(f, (major, minor), max_header_size=100000)
    header_len = f.tell()
assert d["version"] == f"{major}.{minor}", (d["version"], major, minor)
assert d["header_len"] == header_len == d["data_offset"], (d["header_len"], header_len)
assert tuple(d["shape"]) == shape, (d["shape"], shape)
assert d["fortran_order"] == fortran
want = npf.dtype_to_descr(dtype)
assert d["descr"] == json.loads(json.dumps(want)), (d["descr"], want)
assert isinstance(d["rows"], int) and d["rows"] <= shape[0] or d["state"] == "needs-recovery"
assert d["state"] == sys.argv[3], (d["state"], sys.argv[3])
print("ok")
"#,
            &[path.to_str().unwrap(), out.stdout.trim(), &state],
        );
        assert_eq!(check.trim(), "ok", "{}", path.display());
    }
}

#[test]
fn info_reports_every_state() {
    let dir = temp();
    // Clean.
    let path = dir.path().join("clean.npy");
    clean(&path, 3);
    let out = cmd(&["info"], &path);
    assert_code(&out, 0, "info clean");
    for want in [
        "'<f4'",
        "(3, 3)",
        "fortran order   false",
        "npy version     1.0",
        "header length   128 bytes",
        "committed rows  3",
        "journal         none",
        "state           clean",
        "0 bytes past the committed rows",
        "would change nothing",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}:\n{}",
            out.stdout
        );
    }

    // A crashed writer's file: 4 committed rows, 2 uncommitted ones.
    let path = dir.path().join("crash.npy");
    crashed(&path);
    let out = cmd(&["info"], &path);
    assert_code(&out, 0, "info crashed");
    for want in [
        "committed rows  4",
        "state           needs-recovery",
        "24 bytes past the committed rows",
        "keep 4 rows, cut 24 bytes",
        "remove the journal",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?}:\n{}",
            out.stdout
        );
    }
    let json = cmd(&["info", "--json"], &path).stdout;
    for want in [
        r#""rows": 4"#,
        r#""state": "needs-recovery""#,
        r#""journal": true"#,
        r#""bytes_past_end": 24"#,
        r#""action": "changes""#,
    ] {
        assert!(json.contains(want), "missing {want}: {json}");
    }

    // Bytes past the header's rows and no journal: inconsistent.
    let path = dir.path().join("tail.npy");
    clean(&path, 2);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[7; 17]).unwrap();
    drop(f);
    let out = cmd(&["info", "--json"], &path);
    assert_code(&out, 0, "info trailing");
    for want in [
        r#""state": "inconsistent""#,
        r#""rows": 2"#,
        r#""bytes_past_end": 17"#,
        r#""action": "refuses""#,
    ] {
        assert!(out.stdout.contains(want), "missing {want}: {}", out.stdout);
    }

    // A Fortran-order 2-D array: 3 rows along its last axis.
    let path = dir.path().join("fortran.npy");
    write_npy(&path, "'<f8'", true, &[2, 3], &[0; 48]);
    let out = cmd(&["info", "--json"], &path);
    assert_code(&out, 0, "info fortran");
    assert!(out.stdout.contains(r#""fortran_order": true"#));
    for want in [r#""state": "clean""#, r#""rows": 3"#, r#""row_bytes": 16"#] {
        assert!(out.stdout.contains(want), "missing {want}: {}", out.stdout);
    }

    // Unreadable and missing files: exit 2 naming the file.
    let path = dir.path().join("garbage.npy");
    std::fs::write(&path, b"this is not a numpy file").unwrap();
    let out = cmd(&["info"], &path);
    assert_code(&out, 2, "info garbage");
    assert!(
        out.stderr.contains(path.to_str().unwrap()),
        "{}",
        out.stderr
    );
    let out = cmd(&["info", "--json"], &dir.path().join("missing.npy"));
    assert_code(&out, 2, "info missing");
    assert!(out.stderr.contains("missing.npy"), "{}", out.stderr);
}

/// Writes a `.npy` with numpy's header layout for `descr` and `shape`.
fn write_npy(path: &Path, descr: &str, fortran: bool, shape: &[u64], data: &[u8]) {
    let dtype = Dtype::parse_descr(descr).unwrap();
    let mut bytes = header::build(&dtype, fortran, shape).unwrap();
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_exit_codes() {
    let dir = temp();
    let clean_path = dir.path().join("clean.npy");
    clean(&clean_path, 3);
    let out = cmd(&["verify"], &clean_path);
    assert_code(&out, 0, "verify clean");
    assert!(out.stdout.contains("ok"), "{}", out.stdout);

    let crash = dir.path().join("crash.npy");
    crashed(&crash);
    let out = cmd(&["verify"], &crash);
    assert_code(&out, 1, "verify crashed");
    assert!(
        out.stdout.contains("needs recovery") && out.stdout.contains("keep 4 rows"),
        "{}",
        out.stdout
    );

    let tail = dir.path().join("tail.npy");
    clean(&tail, 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&tail)
        .unwrap()
        .write_all(&[1; 12])
        .unwrap();
    let out = cmd(&["verify"], &tail);
    assert_code(&out, 1, "verify trailing bytes");
    assert!(out.stdout.contains("12 bytes"), "{}", out.stdout);

    let short = dir.path().join("short.npy");
    clean(&short, 4);
    let len = std::fs::metadata(&short).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&short)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let out = cmd(&["verify"], &short);
    assert_code(&out, 1, "verify data missing");
    assert!(out.stdout.contains("missing"), "{}", out.stdout);

    let fortran = dir.path().join("fortran.npy");
    write_npy(&fortran, "'<f8'", true, &[2, 3], &[0; 48]);
    let out = cmd(&["verify"], &fortran);
    assert_code(&out, 0, "verify Fortran order");
    assert!(out.stdout.contains("3 rows"), "{}", out.stdout);

    let zero_d = dir.path().join("zero_d.npy");
    write_npy(&zero_d, "'<f8'", false, &[], &[0; 8]);
    let out = cmd(&["verify"], &zero_d);
    assert_code(&out, 2, "verify unsupported");
    assert!(
        out.stderr.contains("zero_d.npy") && out.stderr.contains("0-d"),
        "{}",
        out.stderr
    );

    // A consistent file whose header numpy refuses by default (version 2.0,
    // 20,032 bytes, over numpy's max_header_size).
    let big = dir.path().join("big_header.npy");
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    let mut text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_vec();
    text.resize(20_032 - 12 - 1, b' ');
    text.push(b'\n');
    bytes.extend((text.len() as u32).to_le_bytes());
    bytes.extend(text);
    bytes.extend(f4_rows(0..2));
    std::fs::write(&big, &bytes).unwrap();
    let out = cmd(&["verify"], &big);
    assert_code(&out, 1, "verify a header numpy refuses");
    assert!(out.stdout.contains("max_header_size"), "{}", out.stdout);

    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4}").unwrap();
    assert_code(&cmd(&["verify"], &garbage), 2, "verify garbage");
    assert_code(
        &cmd(&["verify"], &dir.path().join("nope.npy")),
        2,
        "verify missing",
    );
}

#[test]
fn recover_dry_run_changes_nothing_then_recover_closes_cleanly() {
    let dir = temp();
    let path = dir.path().join("crash.npy");
    crashed(&path);
    let before = snapshot(&path);

    let out = cmd(&["recover", "--dry-run"], &path);
    assert_code(&out, 0, "dry run");
    assert!(
        out.stdout.contains("would keep 4 rows, cut 24 bytes")
            && out.stdout.contains("nothing was changed"),
        "{}",
        out.stdout
    );
    assert_eq!(snapshot(&path), before, "dry run changed the file");

    let out = cmd(&["recover"], &path);
    assert_code(&out, 0, "recover");
    assert!(
        out.stdout.contains("kept 4 rows, cut 24 bytes")
            && out.stdout.contains("removed the journal"),
        "{}",
        out.stdout
    );
    assert!(!journal_path(&path).exists());
    assert_eq!(reader_values(&path), f4_values(0..4));
    assert_code(&cmd(&["verify"], &path), 0, "verify after recover");

    // Again: nothing left to do, and the file is unchanged.
    let after = snapshot(&path);
    let out = cmd(&["recover", "--dry-run"], &path);
    assert!(out.stdout.contains("change nothing"), "{}", out.stdout);
    let out = cmd(&["recover"], &path);
    assert_code(&out, 0, "recover a clean file");
    assert!(
        out.stdout.contains("kept 4 rows, cut 0 bytes"),
        "{}",
        out.stdout
    );
    assert_eq!(snapshot(&path), after);

    assert_code(
        &cmd(&["recover"], &dir.path().join("none.npy")),
        2,
        "recover missing",
    );
}

#[test]
fn recover_refuses_missing_data_trailing_bytes_and_a_running_writer() {
    let dir = temp();

    // Committed data missing: the journal commits 4 synced rows, the file
    // holds 3. (Under process durability recovery would fall back instead,
    // since unsynced data may be lost by a power cut.)
    let path = dir.path().join("lost.npy");
    crashed_with(&path, Durability::Fsync);
    let header_len = 128;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(header_len + 3 * 12)
        .unwrap();
    let before = snapshot(&path);
    for args in [vec!["recover", "--dry-run"], vec!["recover"]] {
        let out = cmd(&args, &path);
        assert_code(&out, 2, &format!("{args:?} with data missing"));
        assert!(
            out.stderr.contains("lost.npy") && out.stderr.contains("committed data is missing"),
            "{}",
            out.stderr
        );
        assert_eq!(snapshot(&path), before, "{args:?} changed the file");
    }
    assert_code(&cmd(&["verify"], &path), 1, "verify data missing");

    // Bytes past the header's rows, no journal: refused unless --tail says.
    let path = dir.path().join("tail.npy");
    clean(&path, 2);
    let mut extra = f4_rows(2..3);
    extra.extend([9, 9]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&extra)
        .unwrap();
    let before = snapshot(&path);
    let out = cmd(&["recover"], &path);
    assert_code(&out, 2, "recover trailing bytes");
    assert!(out.stderr.contains("--tail cut"), "{}", out.stderr);
    assert_eq!(snapshot(&path), before);
    let out = cmd(&["recover", "--dry-run", "--tail", "adopt"], &path);
    assert_code(&out, 0, "dry run adopt");
    assert!(
        out.stdout.contains("keep 3 rows, cut 2 bytes"),
        "{}",
        out.stdout
    );
    assert_eq!(snapshot(&path), before);
    let out = cmd(&["recover", "--tail", "adopt"], &path);
    assert_code(&out, 0, "recover adopt");
    assert!(
        out.stdout.contains("adopted 1 trailing rows"),
        "{}",
        out.stdout
    );
    assert_eq!(reader_values(&path), f4_values(0..3));

    // A running writer holds the lock: refused at once, nothing changed.
    let path = dir.path().join("busy.npy");
    let mut w: Appender = AppendOptions::new()
        .dtype("<f4")
        .unwrap()
        .row_shape(&[3])
        .open(&path)
        .unwrap();
    w.append(&f4_values(0..2)).unwrap();
    w.commit().unwrap();
    let before = snapshot(&path);
    let out = cmd(&["recover"], &path);
    assert_code(&out, 2, "recover while a writer runs");
    assert!(
        out.stderr.contains("busy.npy") && out.stderr.contains("another writer"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&path), before);
    // The read-only commands work beside the writer.
    assert_code(&cmd(&["verify"], &path), 1, "verify beside a writer");
    assert_code(&cmd(&["info"], &path), 0, "info beside a writer");
    w.close().unwrap();
}

/// A child process killed when dropped, so that a failing test leaves no
/// `follow` or `append` running behind it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads stdout lines of `child` on a thread.
fn line_channel(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn committed(line: &str) -> u64 {
    line.strip_prefix("committed ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a `committed N` line: {line:?}"))
}

/// `append` is SIGKILLed while rows stream in; `recover` keeps exactly the
/// last commit it printed, or the one in flight, and every kept row is right.
#[test]
fn sigkill_during_append_then_recover_keeps_the_last_printed_commit() {
    const EVERY: u64 = 100;
    const WIDTH: u64 = 4;
    let mut in_flight = 0;
    for (round, durability) in ["process", "fsync"].iter().cycle().take(8).enumerate() {
        let dir = temp();
        let path = dir.path().join("killed.npy");
        let mut child = KillOnDrop(
            Command::new(BIN)
                .args(["append", path.to_str().unwrap(), "--dtype", "<u8"])
                .args([
                    "--row-shape",
                    "4",
                    "--commit-every",
                    "100",
                    "--durability",
                    durability,
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut stdin = child.0.stdin.take().unwrap();
        // Row i is [4i, 4i+1, 4i+2, 4i+3], made 1000 rows at a time and
        // written in two pieces split inside a row, so that rows straddle
        // reads; up to 5 million rows, far more than are read before the kill.
        let feeder = std::thread::spawn(move || {
            for block in 0..5_000u64 {
                let bytes: Vec<u8> = (block * 1000 * WIDTH..(block + 1) * 1000 * WIDTH)
                    .flat_map(u64::to_le_bytes)
                    .collect();
                let (a, b) = bytes.split_at(4093);
                if stdin
                    .write_all(a)
                    .and_then(|()| stdin.write_all(b))
                    .is_err()
                {
                    return; // the tool was killed
                }
            }
        });
        let lines = line_channel(&mut child.0);
        let mut last = 0;
        while last < (5 + 7 * round as u64) * EVERY {
            let line = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            last = committed(&line);
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "append ended before the kill"
        );
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
        // Lines already in the pipe.
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
            last = committed(&line);
        }
        feeder.join().unwrap();
        assert!(
            journal_path(&path).exists(),
            "killed writer left its journal"
        );

        let status = cmd(&["verify"], &path);
        assert_code(&status, 1, "verify a killed writer's file");
        let out = cmd(&["recover"], &path);
        assert_code(&out, 0, "recover after SIGKILL");
        let r = Reader::open(&path).unwrap();
        let kept = r.len();
        assert!(
            kept == last || kept == last + EVERY,
            "{durability}: kept {kept} rows, last printed commit {last}"
        );
        assert!(
            out.stdout.contains(&format!("kept {kept} rows")),
            "{}",
            out.stdout
        );
        let values = r.as_slice::<u64>().unwrap();
        assert!(
            values.iter().enumerate().all(|(k, &v)| v == k as u64),
            "{durability}: a kept row is wrong"
        );
        assert_code(&cmd(&["verify"], &path), 0, "verify after recover");
        in_flight += u32::from(kept != last);
        println!("{durability}: killed after `committed {last}`; recover kept {kept} rows");
    }
    println!("8 kills, {in_flight} kept the commit in flight");
}

#[test]
fn follow_prints_each_new_count_until_killed() {
    let dir = temp();
    let path = dir.path().join("f.npy");
    let mut w = AppendOptions::new()
        .dtype("<f4")
        .unwrap()
        .row_shape(&[3])
        .durability(Durability::Process)
        .open(&path)
        .unwrap();
    w.append(&f4_values(0..3)).unwrap();
    w.commit().unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["follow", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = line_channel(&mut child.0);
    let next = || lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(next(), "committed 3");
    w.append(&f4_values(3..8)).unwrap();
    w.commit().unwrap();
    assert_eq!(next(), "committed 8");
    // Appended but not committed: not shown.
    w.append(&f4_values(8..9)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(lines.try_recv().is_err(), "an uncommitted row was reported");
    // The close commits the pending row; then a new writer on the same file.
    w.close().unwrap();
    assert_eq!(next(), "committed 9");
    // (Waiting for the lock: a child process another test thread forks at
    // the moment of the close holds the lock until it execs.)
    let mut w = AppendOptions::new()
        .lock_wait(LockWait::Wait(Duration::from_secs(10)))
        .open(&path)
        .unwrap();
    w.append(&f4_values(9..11)).unwrap();
    w.commit().unwrap();
    assert_eq!(next(), "committed 11");
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "follow exited on its own"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    w.close().unwrap();

    let out = cmd(&["follow"], &dir.path().join("missing.npy"));
    assert_code(&out, 2, "follow a missing file");
    assert!(out.stderr.contains("missing.npy"), "{}", out.stderr);
}

/// Runs the read-only commands on `path` and checks that they leave it and
/// its journal byte for byte unchanged, that `verify` does not call it
/// clean, and that `info` either reports (0) or refuses (2).
fn check_bad_input(path: &Path, json_out: &mut Vec<String>) {
    let before = snapshot(path);
    let name = path.display();
    let info = cmd(&["info"], path);
    assert!(matches!(info.code, 0 | 2), "info {name}: {}", info.code);
    let json = cmd(&["info", "--json"], path);
    assert_eq!(json.code, info.code, "info --json {name}");
    if json.code == 0 {
        json_out.push(json.stdout.trim().to_owned());
    } else {
        assert!(
            json.stderr.contains(&name.to_string()),
            "{name}: {}",
            json.stderr
        );
    }
    let verify = cmd(&["verify"], path);
    assert_ne!(
        verify.code, 0,
        "verify called {name} clean: {}",
        verify.stdout
    );
    let dry = cmd(&["recover", "--dry-run"], path);
    assert!(matches!(dry.code, 0 | 2), "recover --dry-run {name}");
    assert_eq!(snapshot(path), before, "{name} changed");
}

/// Whether the `.expect` beside a corpus file says opening it succeeds, it
/// has no journal, and numpy loads it: a valid file, not a bad input.
fn is_valid_corpus_file(path: &Path) -> bool {
    let Ok(expect) = std::fs::read_to_string(path.with_extension("expect")) else {
        return false;
    };
    expect.lines().any(|l| l.starts_with("open: Ok"))
        && !expect.lines().any(|l| l.starts_with("numpy: refuses"))
        && !journal_path(path).exists()
}

/// Malformed files made here (the corpus in `tests/bad_inputs/`, when
/// present, adds to them).
fn craft_bad_inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut put = |name: &str, npy: Option<&[u8]>, journal: Option<&[u8]>| {
        let path = dir.join(name);
        if let Some(b) = npy {
            std::fs::write(&path, b).unwrap();
        }
        if let Some(j) = journal {
            std::fs::write(journal_path(&path), j).unwrap();
        }
        out.push(path);
    };
    let dtype = Dtype::parse_descr("'<f4'").unwrap();
    let good = {
        let mut b = header::build(&dtype, false, &[2, 3]).unwrap();
        b.extend(f4_rows(0..2));
        b
    };
    // A valid version 2.0 header of 20,032 bytes, over numpy's default
    // max_header_size: np.load refuses it unless told otherwise.
    let mut big = b"\x93NUMPY\x02\x00".to_vec();
    let mut text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_vec();
    text.resize(20_032 - 12 - 1, b' ');
    text.push(b'\n');
    big.extend((text.len() as u32).to_le_bytes());
    big.extend(text);
    big.extend(f4_rows(0..2));
    put("header_over_numpy_limit.npy", Some(&big), None);
    put("empty.npy", Some(b""), None);
    put("text.npy", Some(b"hello, world\n"), None);
    put("magic_only.npy", Some(b"\x93NUMPY"), None);
    put(
        "huge_header_len.npy",
        Some(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'"),
        None,
    );
    let mut torn = good.clone();
    torn.truncate(70);
    put("torn_header.npy", Some(&torn), None);
    let mut bad_dict = good.clone();
    bad_dict[20..30].copy_from_slice(b"}}}}}}}}}}");
    put("bad_dict.npy", Some(&bad_dict), None);
    let mut nul = good.clone();
    nul[10..60].fill(0);
    put("nul_header.npy", Some(&nul), None);
    let mut short = good.clone();
    short.truncate(good.len() - 3);
    put("short_data.npy", Some(&short), None);
    let mut long = good.clone();
    long.extend([0xAB; 5]);
    put("long_data.npy", Some(&long), None);
    // A good file with a garbage, an empty, or a truncated journal of another file.
    put("garbage_journal.npy", Some(&good), Some(&[0x5A; 300]));
    put("empty_journal.npy", Some(&good), Some(b""));
    let other = dir.join("other_source.npy");
    let mut w = AppendOptions::new()
        .dtype("<u2")
        .unwrap()
        .open(&other)
        .unwrap();
    w.append(&[1u16, 2, 3]).unwrap();
    w.commit().unwrap();
    let journal = std::fs::read(journal_path(&other)).unwrap();
    drop(w);
    put("foreign_journal.npy", Some(&good), Some(&journal));
    put(
        "half_journal.npy",
        Some(&good),
        Some(&journal[..journal.len() / 2]),
    );
    // A crashed file whose committed rows were cut away.
    let cut = dir.join("cut.npy");
    crashed(&cut);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(130)
        .unwrap();
    out.push(cut);
    out
}

#[test]
fn read_only_commands_never_change_nor_pass_bad_inputs() {
    let dir = temp();
    let mut files = craft_bad_inputs(dir.path());
    let crafted = files.len();
    // The bad-input corpus, as present at run time.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension() == Some(OsStr::new("npy")))
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut json = Vec::new();
    let mut valid = 0;
    for path in &files {
        if is_valid_corpus_file(path) {
            // Valid files among the corpus's cases (a Fortran-order array,
            // a header without room to grow): `verify` calls them clean.
            let verify = cmd(&["verify"], path);
            assert_code(&verify, 0, &format!("verify {}", path.display()));
            valid += 1;
            continue;
        }
        check_bad_input(path, &mut json);
    }
    assert!(valid <= 3, "{valid} corpus files are not bad inputs");
    println!(
        "bad inputs: {} files ({crafted} crafted, {} from {}), {} with an info report",
        files.len(),
        files.len() - crafted,
        corpus.display(),
        json.len()
    );
    // Every report is one valid JSON object with the required keys.
    let Some(py) =
        support::require_numpy("read_only_commands_never_change_nor_pass_bad_inputs (JSON check)")
    else {
        return;
    };
    let mut args: Vec<&str> = vec![];
    args.extend(json.iter().map(String::as_str));
    let out = support::run_python(
        &py,
        r#"
import json, sys
for text in sys.argv[1:]:
    d = json.loads(text)
    for key in ["descr", "shape", "fortran_order", "version", "header_len", "rows", "state"]:
        assert key in d, (key, text)
    # verify found a problem: the state says it, or numpy refuses the header.
    assert d["state"] != "clean" or d["numpy_refuses_header"], text
print(len(sys.argv) - 1)
"#,
        &args,
    );
    assert_eq!(out.trim(), json.len().to_string());
}

/// Every fixture of the manifest: `verify` agrees with what opening it does,
/// `info` reports its rows, and neither changes it.
#[test]
fn verify_and_info_agree_with_the_fixture_manifest() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy");
    let manifest = std::fs::read_to_string(fixtures.join("manifest.txt")).unwrap();
    let mut seen = BTreeMap::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, open) = (cols[0], cols[3]);
        let path = fixtures.join(name);
        let before = snapshot(&path);
        let verify = cmd(&["verify"], &path);
        let info = cmd(&["info", "--json"], &path);
        let expected = if let Some(rest) = open.strip_prefix("ok rows=") {
            let rows = rest.split_whitespace().next().unwrap();
            assert!(
                info.stdout.contains(&format!(r#""rows": {rows},"#)),
                "{name}: {}",
                info.stdout
            );
            0
        } else if ["TrailingBytes", "CommittedDataMissing", "FileTooShort"]
            .iter()
            .any(|v| open.contains(v))
        {
            1
        } else {
            2
        };
        assert_code(&verify, expected, &format!("verify {name} ({open})"));
        assert_eq!(snapshot(&path), before, "{name} changed");
        *seen.entry(expected).or_insert(0) += 1;
    }
    println!("fixtures by verify exit code: {seen:?}");
    assert!(seen.len() == 3, "every exit code is exercised: {seen:?}");
}

/// Progress goes to stderr only when stderr is a terminal (here a
/// pseudo-terminal made by `script`); piped, stderr stays empty.
#[test]
fn append_shows_progress_only_on_a_terminal() {
    let dir = temp();
    let input = dir.path().join("rows.bin");
    std::fs::write(&input, f4_rows(0..10)).unwrap();

    let piped = dir.path().join("piped.npy");
    let out = run(
        &[
            OsStr::new("append"),
            piped.as_os_str(),
            OsStr::new("--dtype"),
            OsStr::new("<f4"),
            OsStr::new("--row-shape"),
            OsStr::new("3"),
        ],
        &f4_rows(0..10),
    );
    assert_code(&out, 0, "piped append");
    assert_eq!(out.stderr, "", "progress on a pipe");

    let has_script = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_script {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` (util-linux) is required under CI=true"
        );
        eprintln!("SKIP append_shows_progress_only_on_a_terminal: no `script` command");
        return;
    }
    let tty = dir.path().join("tty.npy");
    let shell = format!(
        "'{BIN}' append '{}' --dtype '<f4' --row-shape 3 < '{}'",
        tty.display(),
        input.display()
    );
    let out = Command::new("script")
        .args(["-qec", &shell, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {text}", out.status);
    assert!(text.contains("committed 10"), "{text}");
    assert!(text.contains("done: 10 rows committed"), "{text}");
    assert_eq!(reader_values(&tty), f4_values(0..10));
}

/// `<u8` rows, 8 wide, row i = `i * 8 + [0..7]`, as raw bytes for `append`.
fn u8_rows(range: std::ops::Range<u64>) -> Vec<u8> {
    range
        .flat_map(|i| (0..8).map(move |j| i * 8 + j))
        .flat_map(u64::to_le_bytes)
        .collect()
}

/// `npy-append append <path> --dtype <u8 --row-shape 8` fed `rows`.
fn append_u8(path: &Path, rows: std::ops::Range<u64>, extra: &[&str]) -> Out {
    let mut args: Vec<&OsStr> = vec![OsStr::new("append"), path.as_os_str()];
    args.extend(["--dtype", "<u8", "--row-shape", "8"].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    run(&args, &u8_rows(rows))
}

/// The bytes `np.save` writes for `n` rows of 8 `<u8` values of 42.
fn saved_42s(n: u64) -> Vec<u8> {
    support::np_saved_u8(n, 8, 42)
}

#[test]
fn recover_leaves_a_file_another_program_saved_over_a_crashed_writers() {
    for durability in [Durability::Process, Durability::Fsync] {
        for saved in [500, 5000] {
            let dir = temp();
            let path = dir.path().join("f.npy");
            let mut w = AppendOptions::new()
                .dtype("<u8")
                .unwrap()
                .row_shape(&[8])
                .durability(durability)
                .open(&path)
                .unwrap();
            for c in 0..3 {
                let values: Vec<u64> = (c * 8000..(c + 1) * 8000).collect();
                w.append(&values).unwrap();
                w.commit().unwrap();
            }
            drop(w); // killed
            std::fs::write(&path, saved_42s(saved)).unwrap();
            let before = snapshot(&path);
            for args in [
                vec!["recover", "--dry-run"],
                vec!["recover"],
                vec!["verify"],
            ] {
                let out = cmd(&args, &path);
                assert_ne!(out.code, 0, "{args:?} passed a rewritten file");
                if args[0] == "recover" {
                    assert!(
                        out.stderr.contains("another program")
                            && out.stderr.contains("--accept-loss"),
                        "{args:?}: {}",
                        out.stderr
                    );
                }
                assert_eq!(snapshot(&path), before, "{args:?} changed the files");
            }
            let out = cmd(&["recover", "--accept-loss"], &path);
            assert_code(&out, 0, "recover --accept-loss");
            assert!(!journal_path(&path).exists());
        }
    }
}

#[test]
fn a_path_through_a_symlink_shares_the_files_journal() {
    let dir = temp();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("links")).unwrap();
    let target = dir.path().join("data/t.npy");
    let link = dir.path().join("links/l.npy");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_code(
        &append_u8(&link, 0..10, &[]),
        0,
        "append through a dangling link",
    );
    assert!(!journal_path(&link).exists());
    assert_code(&append_u8(&target, 10..1010, &[]), 0, "append to the file");
    let out = cmd(&["recover"], &link);
    assert_code(&out, 0, "recover through the link");
    assert!(
        out.stdout.contains("kept 1010 rows, cut 0 bytes"),
        "{}",
        out.stdout
    );
    let values = Reader::open(&target)
        .unwrap()
        .as_slice::<u64>()
        .unwrap()
        .to_vec();
    assert_eq!(values, (0..1010 * 8).collect::<Vec<u64>>());
    assert_code(&cmd(&["verify"], &link), 0, "verify through the link");
}

#[test]
fn verify_and_info_name_a_file_whose_name_is_too_long_for_its_journal() {
    let dir = temp();
    let path = dir.path().join(format!("{}.npy", "n".repeat(246)));
    std::fs::write(&path, saved_42s(3)).unwrap();
    let before = snapshot(&path);
    let out = cmd(&["verify"], &path);
    assert_ne!(out.code, 0, "verify called it appendable: {}", out.stdout);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("too long for its sidecar files"), "{text}");
    let out = cmd(&["info"], &path);
    assert!(
        out.stdout.contains("unsupported") && out.stdout.contains("too long"),
        "{}",
        out.stdout
    );
    let out = append_u8(&path, 3..4, &[]);
    assert_code(&out, 2, "append");
    assert!(
        out.stderr.contains("too long for its sidecar files"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&path), before);
}

/// Runs the tool as the unprivileged user `nobody` (a root process writes
/// any directory); `None` after a SKIP line when it cannot.
fn run_as_nobody(args: &[&OsStr]) -> Option<Out> {
    let test = "recover_in_a_read_only_directory_changes_nothing";
    let reason = if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        Some("not root (needs to run the tool as another user)")
    } else if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some("no setpriv (util-linux)")
    } else {
        None
    };
    if let Some(reason) = reason {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: cannot run under CI=true: {reason}"
        );
        eprintln!("SKIP {test}: {reason}");
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .output()
        .unwrap();
    Some(Out {
        code: out.status.code().expect("the tool died"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn recover_in_a_read_only_directory_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp();
    let sub = dir.path().join("ro");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("crash.npy");
    crashed(&path); // a tail to cut
    // The files belong to nobody; the directories (root's) do not.
    for p in [path.clone(), journal_path(&path)] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    for d in [dir.path(), &sub] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = snapshot(&path);
    let Some(out) = run_as_nobody(&[OsStr::new("recover"), path.as_os_str()]) else {
        return;
    };
    assert_code(&out, 2, "recover in a read-only directory");
    assert!(
        out.stderr.contains("directory is writable") && out.stderr.contains("nothing was changed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        snapshot(&path),
        before,
        "the refused recovery changed the files"
    );
    // As its owner can: recovers.
    let out = cmd(&["recover"], &path);
    assert_code(&out, 0, "recover as root");
    assert_eq!(reader_values(&path), f4_values(0..4));
}
