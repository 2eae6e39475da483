//! Helpers shared by the integration tests (`mod support;`).
//!
//! The API is deliberately small:
//!
//! - [`python`]: the Python interpreter that has numpy, if any;
//! - [`require_numpy`]: the same, or a `SKIP` line (a panic under `CI=true`);
//! - [`run_python`]: runs a snippet and returns its stdout, panicking on failure;
//! - [`u64rows`]: the checkable rows of the kill and power-cut tests;
//! - [`workload`]: the rows and steps of the crash-state and I/O-error tests;
//! - [`np_saved_u8`]: the bytes `np.save` writes for a file "another
//!   program" saves over one of ours;
//! - [`garbage`]: deterministic garbage bytes, what a torn sector or a
//!   stranger's file may hold.
//!
//! `scripts/test.sh` creates a virtualenv with numpy and points
//! `NPY_APPEND_PYTHON` at it; without it, a system `python3` that can
//! `import numpy` is used.

#![allow(dead_code)]

pub mod u64rows;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Python interpreter with numpy: `$NPY_APPEND_PYTHON` if set (trusted as
/// is, so a broken setting fails loudly in `run_python`), else `python3` when
/// `python3 -c "import numpy"` succeeds, else `None`.
pub fn python() -> Option<PathBuf> {
    if let Some(py) = std::env::var_os("NPY_APPEND_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(py));
    }
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| PathBuf::from("python3"))
}

/// The Python interpreter with numpy for the test named `test`.
///
/// When there is none, prints `SKIP <test>: numpy not available (run
/// scripts/test.sh)` and returns `None`, so the caller returns early; but
/// under `CI=true` it panics, because CI must never skip the numpy tests.
pub fn require_numpy(test: &str) -> Option<PathBuf> {
    if let Some(py) = python() {
        return Some(py);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: numpy is required under CI=true (run the tests through scripts/test.sh)");
    }
    eprintln!("SKIP {test}: numpy not available (run scripts/test.sh)");
    None
}

/// Runs `py -c code args...` and returns its stdout; panics with the exit
/// status and stderr when it fails.
pub fn run_python(py: &Path, code: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(code)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The bytes `np.save` writes for `rows` rows of `width` `<u8` values, all
/// `value`: what "another program" saves over a path in the tests of
/// files the library did not write.
pub fn np_saved_u8(rows: u64, width: u64, value: u64) -> Vec<u8> {
    let dtype = npy_append::Dtype::parse("<u8").unwrap();
    let mut bytes = npy_append::format::header::build(&dtype, false, &[rows, width]).unwrap();
    for _ in 0..rows * width {
        bytes.extend(value.to_le_bytes());
    }
    bytes
}

/// `n` bytes of deterministic garbage (xorshift from `seed`).
pub fn garbage(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
