//! Interoperability with real numpy.
//!
//! Every dtype family numpy can put in an `.npy` (bool, signed and unsigned
//! ints, half/single/double/long double floats, complex, bytes, unicode, void,
//! datetime and timedelta, big-endian, structured, nested, padded, version
//! 2.0 and 3.0 headers), with 1-D and N-D rows:
//!
//! - files written by this library load in numpy (`np.load`, also with
//!   `mmap_mode='r'`) with identical dtype, shape and bytes, and are byte for
//!   byte the file `np.save` writes for the same array;
//! - `np.save` files accept appends and stay byte-identical to `np.save` of
//!   the longer array;
//! - `header::build` writes the header `np.save` writes, for many shapes;
//! - numpy reads exactly the committed rows while an appender has the file open.
//!
//! numpy runs in a few batched Python processes per test (one writes inputs
//! for all cases, one checks all results). Without numpy these tests print
//! `SKIP` (they fail under `CI=true`); `scripts/test.sh` provides numpy.
//!
//! `checked_in_fixtures_match_manifest` needs no numpy: it checks the files
//! in `tests/fixtures/npy/` (made by `tests/fixtures/make_fixtures.py`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use npy_append::format::header::{self, Version};
use npy_append::{AppendOptions, Appender, Dtype, Durability, Found, LockWait};

use support::{require_numpy, run_python};

/// Python code shared by the scripts below: the cases and how their rows are
/// made (deterministically, so the writing and the checking process agree).
const PRELUDE: &str = r#"
import io, os, sys, warnings
import numpy as np
from numpy.lib import format as npf

warnings.simplefilter("ignore")  # np.save warns when it writes version 2.0 or 3.0
BIG = 10**8  # max_header_size for the ~100 kB headers of the wide dtypes

def wide(prefix, fmt, n=3000):
    return [(f"{prefix}{i:04d}", fmt) for i in range(n)]

FAMILIES = [
    ("b1", "|b1", "bool"),
    ("i1", "|i1", "i8"),
    ("i2", "<i2", "i16"),
    ("i4", "<i4", "i32"),
    ("i8", "<i8", "i64"),
    ("u1", "|u1", "u8"),
    ("u2", "<u2", "u16"),
    ("u4", "<u4", "u32"),
    ("u8", "<u8", "u64"),
    ("f2", "<f2", "-"),
    ("f4", "<f4", "f32"),
    ("f8", "<f8", "f64"),
    ("c8", "<c8", "-"),
    ("c16", "<c16", "-"),
    ("S7", "|S7", "-"),
    ("U5", "<U5", "-"),
    ("V6", "|V6", "-"),
    ("M8ns", "<M8[ns]", "-"),
    ("M8D", "<M8[D]", "-"),
    ("m8s", "<m8[s]", "-"),
    ("be_f8", ">f8", "-"),
    ("be_i4", ">i4", "-"),
    ("struct", [("a", "<i4"), ("b", "<f8", (3,))], "-"),
    ("nested", [("p", [("x", "<f4"), ("y", "<f4")]), ("id", "<u8")], "-"),
    ("padded", {"names": ["a", "b"], "formats": ["u1", "<i8"], "offsets": [0, 8], "itemsize": 16}, "-"),
    ("alpha_v3", [("\u03b1", "<f4"), ("b", "<i2")], "-"),
    ("wide_v2", wide("a_rather_long_field_name_", "<f4"), "-"),
    ("wide_v3", wide("\u03b1_rather_long_field_name_", "<u2"), "-"),
]
# Corner cases of the descr text and layout: titles, aligned and explicit
# offsets (padding fields named ''), nested subarrays, zero-size fields, field
# names Python's repr escapes or that need version 3.0, mixed byte orders.
FAMILIES += [
    ("titled", [(("title", "name"), "<f4"), ("b", "<i2")], "-"),
    ("aligned", np.dtype([("a", "u1"), ("b", "<i8")], align=True), "-"),
    ("tail_pad", {"names": ["a"], "formats": ["<i4"], "offsets": [0], "itemsize": 8}, "-"),
    ("head_pad", {"names": ["a"], "formats": ["<i4"], "offsets": [4], "itemsize": 8}, "-"),
    ("nested_sub", [("a", [("b", "<f4", (2, 2))], (3,))], "-"),
    ("zero_field", [("z", "<f4", (0,)), ("y", "<i4")], "-"),
    ("mixed", [("a", "<f4", (2, 3)), ("b", "|S3", (2,)), ("c", "<U2"), ("d", "|b1"), ("e", ">i4")], "-"),
    ("be_U3", ">U3", "-"),
    ("M8_generic", "<M8", "-"),
    ("M8_10ms", "<M8[10ms]", "-"),
    ("m8_2D", "<m8[2D]", "-"),
    ("names_escaped", [("it's", "<f4"), ('say "hi"', "<u1"), ("both '\"", "<u1"), ("back\\slash", "<u1"),
                       ("new\nline\ttab", "<u1"), ("nul\x00", "<u1"), ("\x7f", "<u1")], "-"),
    ("names_latin1", [("\xe9t\xe9", "<f4"), ("nb\xa0sp", "<u1")], "-"),
    ("names_v3", [("zw\u200bsp", "<f4"), ("emoji\U0001F600", "<u1"), (("\u03b1 title", "plain"), "<u1")], "-"),
]
# long double and its complex: '<f16' and '<c32' on x86_64 Linux.
if np.dtype(np.longdouble).itemsize == 16:
    FAMILIES += [("f16", np.longdouble, "-"), ("c32", np.clongdouble, "-")]

assert "<f16" in [np.dtype(d).str for _, d, _ in FAMILIES] or sys.platform != "linux" or os.uname().machine != "x86_64"

CASES = []  # (name, dtype, row shape, typed tag, seed)
for i, (fam, dt, typed) in enumerate(FAMILIES):
    CASES.append((fam + "_1d", np.dtype(dt), (), typed, 1000 + i))
    CASES.append((fam + "_nd", np.dtype(dt), (3, 2), typed, 2000 + i))

def make_rows(dt, row_shape, n, seed):
    """n deterministic rows of dtype dt and shape row_shape (random bytes,
    made valid where a dtype needs it)."""
    dt = np.dtype(dt)
    rng = np.random.default_rng(seed)
    count = n * int(np.prod(row_shape, dtype=np.int64))
    if dt.kind == "b":
        flat = rng.integers(0, 2, size=count).astype(dt)
    elif dt.kind == "U":
        chars = rng.integers(0x20, 0x3000, size=count * (dt.itemsize // 4)).astype(dt.byteorder + "u4")
        flat = chars.view(dt)
    else:
        flat = rng.integers(0, 256, size=count * dt.itemsize, dtype=np.uint8).view(dt)
    return flat.reshape((n,) + tuple(row_shape))

def descr(dt):
    return repr(npf.dtype_to_descr(np.dtype(dt)))

def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()

def header_of(data):
    """The header bytes (up to the data) of .npy file contents."""
    major = data[6]
    if major == 1:
        return data[: 10 + int.from_bytes(data[8:10], "little")]
    return data[: 12 + int.from_bytes(data[8:12], "little")]

def check_file(path, expected):
    """Raises AssertionError unless numpy loads `path` as exactly `expected`
    and the file is byte for byte what np.save writes for it."""
    for mode in (None, "r"):
        a = np.load(path, mmap_mode=mode, max_header_size=BIG)
        assert a.dtype == expected.dtype, f"mmap_mode={mode}: dtype {a.dtype} != {expected.dtype}"
        assert a.shape == expected.shape, f"mmap_mode={mode}: shape {a.shape} != {expected.shape}"
        assert a.tobytes() == expected.tobytes(), f"mmap_mode={mode}: values differ"
        del a
    with open(path, "rb") as f:
        data = f.read()
    want = npy_bytes(expected)
    if data != want:
        h, w = header_of(data), header_of(want)
        if h != w:
            raise AssertionError(f"header differs from np.save's:\n  file:    {h[:300]!r}\n  np.save: {w[:300]!r}")
        raise AssertionError(f"file ({len(data)} bytes) differs from np.save output ({len(want)} bytes) after the header")

def check_all(items):
    """items: (name, path, expected); prints one 'ok' line per good file,
    exits non-zero listing every failure."""
    fails = []
    for name, path, expected in items:
        try:
            check_file(path, expected)
            print("ok", name)
        except Exception as e:  # report every case, not just the first
            fails.append(f"{name}: {type(e).__name__}: {e}")
    if fails:
        sys.exit("numpy check failed for %d case(s):\n%s" % (len(fails), "\n".join(fails)))
"#;

/// Runs `PRELUDE` followed by `body` with `args`.
fn py(python: &Path, body: &str, args: &[&str]) -> String {
    run_python(python, &format!("{PRELUDE}\n{body}"), args)
}

/// One line of a manifest written by the Python side: tab-separated fields.
fn manifest(dir: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(dir.join("manifest.txt")).unwrap();
    let lines: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert!(!lines.is_empty(), "empty manifest in {}", dir.display());
    lines
}

fn parse_shape(csv: &str) -> Vec<u64> {
    csv.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Appends `bytes` (whole rows of the file's dtype) as typed values of the
/// Rust type `tag` names (`"f32"`, `"bool"`, ...), converting from the file's
/// little-endian bytes.
fn append_typed<B: npy_append::storage::Backend>(
    w: &mut Appender<B>,
    tag: &str,
    bytes: &[u8],
) -> npy_append::Result<()> {
    macro_rules! typed {
        ($t:ty) => {{
            let values: Vec<$t> = bytes
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                .collect();
            w.append(&values)
        }};
    }
    match tag {
        "bool" => {
            let values: Vec<bool> = bytes
                .iter()
                .map(|&b| {
                    assert!(b <= 1, "bool byte {b}");
                    b == 1
                })
                .collect();
            w.append(&values)
        }
        "i8" => typed!(i8),
        "i16" => typed!(i16),
        "i32" => typed!(i32),
        "i64" => typed!(i64),
        "u8" => typed!(u8),
        "u16" => typed!(u16),
        "u32" => typed!(u32),
        "u64" => typed!(u64),
        "f32" => typed!(f32),
        "f64" => typed!(f64),
        other => panic!("unknown typed tag {other}"),
    }
}

/// Appends rows `rows` of `data` (typed when `tag` names a Rust type).
fn append_rows(
    w: &mut Appender,
    tag: &str,
    data: &[u8],
    row_bytes: usize,
    rows: std::ops::Range<usize>,
) {
    let bytes = &data[rows.start * row_bytes..rows.end * row_bytes];
    let before = w.pending_rows();
    if tag == "-" {
        w.append_bytes(bytes).unwrap();
    } else {
        append_typed(w, tag, bytes).unwrap();
    }
    assert_eq!(w.pending_rows(), before + rows.len() as u64);
}

#[test]
fn library_files_load_in_numpy_identically() {
    let Some(python) = require_numpy("library_files_load_in_numpy_identically") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let dir_s = dir.to_str().unwrap();
    py(
        &python,
        r#"
out = sys.argv[1]
with open(os.path.join(out, "manifest.txt"), "w", encoding="utf-8") as m:
    for name, dt, rs, typed, seed in CASES:
        rows = 5 if rs else 7
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(make_rows(dt, rs, rows, seed).tobytes())
        m.write("\t".join([name, typed, ",".join(map(str, rs)), str(rows), descr(dt)]) + "\n")
"#,
        &[dir_s],
    );

    let cases = manifest(dir);
    for (i, case) in cases.iter().enumerate() {
        let [name, tag, rs, rows, descr] = case.as_slice() else {
            panic!("bad manifest line {case:?}");
        };
        let row_shape = parse_shape(rs);
        let rows: usize = rows.parse().unwrap();
        let data = fs::read(dir.join(format!("{name}.bin"))).unwrap();
        assert_eq!(data.len() % rows, 0);
        let row_bytes = data.len() / rows;
        let path = dir.join(format!("{name}.npy"));

        // Typed 1-D cases take their dtype from the first append; typed N-D
        // cases give only the row shape; raw cases give dtype and row shape.
        let durability = if i % 2 == 0 {
            Durability::Fsync
        } else {
            Durability::Process
        };
        let mut w = if tag != "-" && row_shape.is_empty() {
            Appender::open_or_recover(&path).unwrap()
        } else if tag != "-" {
            AppendOptions::new()
                .row_shape(&row_shape)
                .durability(durability)
                .open(&path)
                .unwrap()
        } else {
            AppendOptions::new()
                .dtype(descr)
                .unwrap()
                .row_shape(&row_shape)
                .durability(durability)
                .open(&path)
                .unwrap()
        };
        assert_eq!(w.len(), 0, "{name}");

        // Several commits: 1 row; 2 rows in two appends; an empty commit; the rest.
        append_rows(&mut w, tag, &data, row_bytes, 0..1);
        w.commit().unwrap();
        assert_eq!(w.len(), 1, "{name}");
        assert_eq!(w.dtype().unwrap().descr_repr(), *descr, "{name}: dtype");
        assert_eq!(w.row_shape(), row_shape.as_slice(), "{name}: row shape");
        assert_eq!(w.row_bytes(), Some(row_bytes as u64), "{name}: row bytes");
        append_rows(&mut w, tag, &data, row_bytes, 1..2);
        append_rows(&mut w, tag, &data, row_bytes, 2..3);
        assert_eq!(w.len(), 1, "{name}: uncommitted rows counted");
        w.commit().unwrap();
        w.commit().unwrap();
        assert_eq!(w.len(), 3, "{name}");
        append_rows(&mut w, tag, &data, row_bytes, 3..rows);
        w.commit().unwrap();
        assert_eq!(w.len(), rows as u64, "{name}");
        let journal = w.journal_path().to_path_buf();
        assert!(journal.exists(), "{name}: no journal while open");
        w.close().unwrap();
        assert!(!journal.exists(), "{name}: journal left after close");
    }

    let out = py(
        &python,
        r#"
out = sys.argv[1]
items = []
with open(os.path.join(out, "manifest.txt"), encoding="utf-8") as m:
    names = [line.split("\t")[0] for line in m]
cases = {c[0]: c for c in CASES}
for name in names:
    _, dt, rs, typed, seed = cases[name]
    expected = make_rows(dt, rs, 5 if rs else 7, seed)
    with open(os.path.join(out, name + ".bin"), "rb") as f:
        assert f.read() == expected.tobytes(), name
    items.append((name, os.path.join(out, name + ".npy"), expected))
check_all(items)
"#,
        &[dir_s],
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        cases.len(),
        "{out}"
    );
}

#[test]
fn numpy_saved_files_accept_appends() {
    let Some(python) = require_numpy("numpy_saved_files_accept_appends") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let dir_s = dir.to_str().unwrap();
    const CASES: &str = r#"
APPEND_CASES = [(name, dt, rs, seed, 4, 3) for name, dt, rs, _, seed in CASES]
APPEND_CASES += [
    ("f4_empty", np.dtype("<f4"), (), 7, 0, 5),
    ("struct_empty_nd", np.dtype([("a", "<i4"), ("b", "<f8", (3,))]), (2,), 8, 0, 2),
    ("U5_one", np.dtype("<U5"), (), 9, 1, 1),
]
def old_new(dt, rs, seed, n_old, n_new):
    return make_rows(dt, rs, n_old, seed), make_rows(dt, rs, n_new, seed + 50000)
"#;
    py(
        &python,
        &format!(
            "{CASES}\n{}",
            r#"
out = sys.argv[1]
with open(os.path.join(out, "manifest.txt"), "w", encoding="utf-8") as m:
    for name, dt, rs, seed, n_old, n_new in APPEND_CASES:
        old, new = old_new(dt, rs, seed, n_old, n_new)
        np.save(os.path.join(out, name + ".npy"), old)
        with open(os.path.join(out, name + ".more.bin"), "wb") as f:
            f.write(new.tobytes())
        m.write("\t".join([name, ",".join(map(str, rs)), str(n_old), str(n_new), descr(dt)]) + "\n")
"#
        ),
        &[dir_s],
    );

    let cases = manifest(dir);
    for (i, case) in cases.iter().enumerate() {
        let [name, rs, n_old, n_new, descr] = case.as_slice() else {
            panic!("bad manifest line {case:?}");
        };
        let row_shape = parse_shape(rs);
        let (n_old, n_new): (u64, usize) = (n_old.parse().unwrap(), n_new.parse().unwrap());
        let more = fs::read(dir.join(format!("{name}.more.bin"))).unwrap();
        let row_bytes = more.len() / n_new;
        let path = dir.join(format!("{name}.npy"));
        let mut w = if i % 2 == 0 {
            Appender::open_or_recover(&path).unwrap()
        } else {
            AppendOptions::new()
                .dtype(descr)
                .unwrap()
                .row_shape(&row_shape)
                .durability(Durability::Process)
                .open(&path)
                .unwrap()
        };
        assert_eq!(w.report().found, Found::Clean, "{name}");
        assert!(!w.report().changed_file(), "{name}: {}", w.report());
        assert_eq!(w.report().committed_rows, n_old, "{name}");
        assert_eq!(w.len(), n_old, "{name}");
        assert_eq!(w.dtype().unwrap().descr_repr(), *descr, "{name}: dtype");
        assert_eq!(w.row_shape(), row_shape.as_slice(), "{name}: row shape");
        assert_eq!(w.row_bytes(), Some(row_bytes as u64), "{name}: row bytes");
        if descr.starts_with("'>") {
            // No silent byte swap: typed native values do not fit a big-endian file.
            let refused = if descr.contains('f') {
                w.append(&vec![1.5f64; row_bytes / 8])
            } else {
                w.append(&vec![7i32; row_bytes / 4])
            };
            assert!(
                matches!(refused, Err(npy_append::Error::DtypeMismatch { .. })),
                "{name}: {refused:?}"
            );
            assert_eq!((w.len(), w.pending_rows()), (n_old, 0), "{name}");
            assert!(
                !w.is_poisoned(),
                "{name}: a refused argument poisoned the appender"
            );
        }
        let split = n_new / 2;
        w.append_bytes(&more[..split * row_bytes]).unwrap();
        w.commit().unwrap();
        w.append_bytes(&more[split * row_bytes..]).unwrap();
        w.commit().unwrap();
        assert_eq!(w.len(), n_old + n_new as u64, "{name}");
        w.close().unwrap();
        assert!(
            !npy_append::journal_path(&path).exists(),
            "{name}: journal left after close"
        );
    }

    let out = py(
        &python,
        &format!(
            "{CASES}\n{}",
            r#"
out = sys.argv[1]
items = []
for name, dt, rs, seed, n_old, n_new in APPEND_CASES:
    old, new = old_new(dt, rs, seed, n_old, n_new)
    # (np.concatenate would canonicalize the byte order and drop the padding)
    both = np.frombuffer(old.tobytes() + new.tobytes(), dtype=dt).reshape((n_old + n_new,) + tuple(rs))
    items.append((name, os.path.join(out, name + ".npy"), both))
check_all(items)
"#
        ),
        &[dir_s],
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        cases.len(),
        "{out}"
    );
}

#[test]
fn headers_are_byte_identical_to_np_save() {
    let Some(python) = require_numpy("headers_are_byte_identical_to_np_save") else {
        return;
    };
    // Prints `hex(header)\tshape\tdescr` per case. np.save itself writes the
    // header where the array is small enough to allocate; numpy's own header
    // writer (the function np.save calls, checked against np.save on the
    // small cases) covers row counts up to 2**63 - 1.
    let out = py(
        &python,
        r#"
try:
    from numpy.lib._format_impl import _write_array_header
except ImportError:  # numpy < 2
    from numpy.lib.format import _write_array_header

major, minor = (int(x) for x in np.__version__.split(".")[:2])
assert (major, minor) >= (1, 24), f"numpy {np.__version__} does not reserve growth space; need >= 1.24"

def header_via_writer(dt, shape):
    buf = io.BytesIO()
    _write_array_header(buf, {"descr": npf.dtype_to_descr(dt), "fortran_order": False, "shape": shape})
    return buf.getvalue()

small = [(0,), (1,), (9,), (10,), (99,), (100,), (1000,), (0, 3, 2), (1, 3, 2), (10, 3, 2), (4, 1), (5, 0), (2, 3, 4, 5), ()]
huge = [(10**6,), (10**9,), (10**12,), (10**15,), (10**18,), (2**63 - 1,), (10**6, 3, 2), (10**12, 7)]
seen = set()
n = 0
for fam, dt, typed in FAMILIES:
    dt = np.dtype(dt)
    shapes = small + huge if not fam.startswith("wide") else [(0,), (1,), (10**6,), (10**6, 3, 2), ()]
    for shape in shapes:
        h = header_via_writer(dt, shape)
        if int(np.prod(shape, dtype=object)) * dt.itemsize <= 1 << 22:
            full = npy_bytes(np.zeros(shape, dt))
            assert header_of(full) == h, (fam, shape)
        print(h.hex(), ",".join(map(str, shape)), descr(dt), sep="\t")
"#,
        &[],
    );
    let mut count = 0;
    let mut versions = [0usize; 3];
    for line in out.lines() {
        let [hex, shape, descr] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad line {line:?}");
        };
        let want: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let shape = parse_shape(shape);
        let dtype = Dtype::parse_descr(descr).unwrap_or_else(|e| panic!("{descr:.200}: {e}"));
        assert_eq!(dtype.descr_repr(), descr, "descr round trip");
        let built = header::build(&dtype, false, &shape).unwrap();
        if built != want {
            let show = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
            panic!(
                "header for {descr:.200} shape {shape:?} differs:\n  build:   {:?} ({} bytes)\n  np.save: {:?} ({} bytes)",
                show(&built),
                built.len(),
                show(&want),
                want.len()
            );
        }
        let parsed = header::parse(&want).unwrap();
        assert_eq!(parsed.shape, shape, "{descr:.200}");
        assert_eq!(parsed.dtype, dtype, "{descr:.200}");
        assert!(!parsed.fortran_order);
        assert_eq!(parsed.header_len, want.len() as u64);
        assert_eq!(parsed.header_len % 64, 0);
        let v = match parsed.version {
            Version::V1 => 0,
            Version::V2 => 1,
            Version::V3 => 2,
        };
        assert_eq!(want[6], v as u8 + 1, "version byte");
        versions[v] += 1;
        count += 1;
    }
    assert!(count > 300, "only {count} header cases");
    assert!(
        versions.iter().all(|&n| n > 0),
        "versions covered (1.0, 2.0, 3.0): {versions:?}"
    );
}

#[test]
fn numpy_reads_only_committed_rows_while_open() {
    let Some(python) = require_numpy("numpy_reads_only_committed_rows_while_open") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("live.npy");
    let path_s = path.to_str().unwrap();
    const COLS: usize = 4;
    let row = |r: usize| -> Vec<f64> { (0..COLS).map(|c| (r * COLS + c) as f64 * 0.5).collect() };
    // numpy must see exactly `rows` rows with the values `row` makes.
    let check = |rows: usize| {
        let out = run_python(
            &python,
            r#"
import sys
import numpy as np
path, rows = sys.argv[1], int(sys.argv[2])
want = (np.arange(rows * 4, dtype="<f8") * 0.5).reshape(rows, 4)
for mode in (None, "r"):
    a = np.load(path, mmap_mode=mode)
    assert a.dtype == np.dtype("<f8") and a.shape == want.shape, (mode, a.dtype, a.shape)
    assert a.tobytes() == want.tobytes(), mode
    del a
print("ok", rows)
"#,
            &[path_s, &rows.to_string()],
        );
        assert_eq!(out.trim(), format!("ok {rows}"));
    };

    // A 1-byte buffer writes every append to the file at once, so uncommitted
    // rows are on disk past the committed ones while numpy reads.
    let mut w = AppendOptions::new()
        .row_shape(&[COLS as u64])
        .buffer_bytes(1)
        .open(&path)
        .unwrap();
    for r in 0..5 {
        w.append(&row(r)).unwrap();
    }
    w.commit().unwrap();
    for r in 5..8 {
        w.append(&row(r)).unwrap();
    }
    let header_len = header::parse(&fs::read(&path).unwrap()).unwrap().header_len;
    let file_len = fs::metadata(&path).unwrap().len();
    assert_eq!(
        file_len,
        header_len + 8 * COLS as u64 * 8,
        "uncommitted rows should be in the file for this test to mean anything"
    );
    check(5);
    w.commit().unwrap();
    check(8);
    w.append(&row(8)).unwrap();
    drop(w); // a crash: the pending row is never committed
    check(8);

    let mut w = Appender::open_or_recover(&path).unwrap();
    assert_eq!(w.report().found, Found::Journal);
    assert_eq!(w.len(), 8);
    w.append(&row(8)).unwrap();
    w.close().unwrap();
    check(9);
}

#[test]
fn snapshots_across_digit_boundaries_match_np_save() {
    let Some(python) = require_numpy("snapshots_across_digit_boundaries_match_np_save") else {
        return;
    };
    // One row per commit up to 1001 rows; after the commits that change the
    // row count's digit count, a copy of the live file (the writer still has
    // it open, nothing pending) must be exactly np.save of the committed rows.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grow.npy");
    let snaps = [0u64, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001];
    let mut w = AppendOptions::new()
        .dtype("<u2")
        .unwrap()
        .row_shape(&[3])
        .durability(Durability::Process)
        .open(&path)
        .unwrap();
    for rows in 0..=1001u64 {
        if rows > 0 {
            let r = rows - 1;
            w.append(&[r as u16, (r + 1) as u16, (r + 2) as u16])
                .unwrap();
            w.commit().unwrap();
        }
        assert_eq!(w.len(), rows);
        if snaps.contains(&rows) {
            fs::copy(&path, tmp.path().join(format!("snap{rows}.npy"))).unwrap();
        }
    }
    w.close().unwrap();
    // A file created and closed without rows is np.save of an empty array.
    let empty = tmp.path().join("empty_closed.npy");
    let w = AppendOptions::new()
        .dtype("[('a', '<i4'), ('b', '<f8', (3,))]")
        .unwrap()
        .row_shape(&[2])
        .open(&empty)
        .unwrap();
    assert_eq!(w.close().unwrap(), 0);
    let out = py(
        &python,
        r#"
out, snaps = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
items = [("empty_closed", os.path.join(out, "empty_closed.npy"), np.zeros((0, 2), [("a", "<i4"), ("b", "<f8", (3,))]))]
for k in snaps:
    expected = (np.arange(k)[:, None] + np.arange(3)).astype("<u2")
    items.append((f"snap{k}", os.path.join(out, f"snap{k}.npy"), expected))
items.append(("closed", os.path.join(out, "grow.npy"), (np.arange(1001)[:, None] + np.arange(3)).astype("<u2")))
check_all(items)
"#,
        &[
            tmp.path().to_str().unwrap(),
            &snaps.map(|s| s.to_string()).join(","),
        ],
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        snaps.len() + 2,
        "{out}"
    );
}

#[test]
fn np_save_over_a_crashed_writers_file_is_not_cut() {
    // A writer (default fsync durability) commits 3 rows and dies; the user
    // loads the file in numpy, adds 7 rows and np.saves it in place. The
    // journal's newest commit says 3 rows, the header says 10: with fsync
    // durability the library's own header is never ahead of its journal, so
    // the file is not the journal's any more. Cutting it to 3 rows would
    // silently destroy 7 rows a user saved; recovery must refuse and change
    // nothing.
    let Some(python) = require_numpy("np_save_over_a_crashed_writers_file_is_not_cut") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.npy");
    let mut w = Appender::open_or_recover(&path).unwrap();
    w.append(&[1.0f32, 2.0, 3.0]).unwrap();
    w.commit().unwrap();
    drop(w); // the writer dies: its journal stays
    run_python(
        &python,
        "import sys, numpy as np\n\
         a = np.load(sys.argv[1])\n\
         np.save(sys.argv[1], np.concatenate([a, np.arange(7, dtype=a.dtype)]))",
        &[path.to_str().unwrap()],
    );
    let saved = fs::read(&path).unwrap();
    assert_eq!(header::parse(&saved).unwrap().shape, [10]);
    let result = Appender::open_or_recover(&path);
    let outcome = match &result {
        Ok(w) => format!("opened with {} rows: {}", w.len(), w.report()),
        Err(e) => format!("error {e}"),
    };
    drop(result);
    assert_eq!(
        fs::read(&path).unwrap(),
        saved,
        "recovery changed the np.save file ({outcome})"
    );
}

// ---------------------------------------------------------------------------
// Checked-in fixtures (no numpy needed)
// ---------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy")
}

/// The variant name of an error (`Corrupt`, `TrailingBytes`, ...).
fn variant(e: &npy_append::Error) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// One manifest line: `name<TAB>origin<TAB>header outcome<TAB>open outcome`.
struct Fixture {
    name: String,
    /// `np.save` (the header must be what `header::build` writes) or `crafted`.
    origin: String,
    /// `ok` or `err Malformed` / `err Unsupported`.
    header: String,
    /// `ok rows=N`, `ok rows=N header_rewritten`, `ok rows=N file_rewritten`
    /// or `err <Error variant>`.
    open: String,
}

fn read_fixture_manifest() -> Vec<Fixture> {
    let text = fs::read_to_string(fixtures_dir().join("manifest.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let [name, origin, header, open] = l.split('\t').collect::<Vec<_>>()[..] else {
                panic!("bad manifest line {l:?}");
            };
            Fixture {
                name: name.to_owned(),
                origin: origin.to_owned(),
                header: header.to_owned(),
                open: open.to_owned(),
            }
        })
        .collect()
}

#[test]
fn checked_in_fixtures_match_manifest() {
    let fixtures = read_fixture_manifest();
    let mut listed: Vec<String> = fixtures.iter().map(|f| f.name.clone()).collect();
    listed.sort();
    let mut on_disk: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".npy"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk, "manifest.txt and the .npy files disagree");
    assert!(fixtures.iter().filter(|f| f.open.starts_with("ok")).count() >= 25);
    assert!(
        fixtures
            .iter()
            .filter(|f| f.open.starts_with("err"))
            .count()
            >= 10
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for f in &fixtures {
        if let Err(msg) = check_fixture(f, tmp.path()) {
            failures.push(format!("{}: {msg}", f.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_fixture(f: &Fixture, tmp: &Path) -> Result<(), String> {
    let original = fs::read(fixtures_dir().join(&f.name)).unwrap();

    // The header parser.
    let parsed = header::parse(&original);
    match (&parsed, f.header.as_str()) {
        (Ok(h), "ok") => {
            if f.origin == "np.save" {
                let built = header::build(&h.dtype, h.fortran_order, &h.shape)
                    .map_err(|e| e.to_string())?;
                if original.get(..built.len()) != Some(built.as_slice())
                    || built.len() as u64 != h.header_len
                {
                    return Err("header::build does not rebuild the np.save header".into());
                }
            }
        }
        (Err(npy_append::format::FormatError::Malformed { .. }), "err Malformed")
        | (Err(npy_append::format::FormatError::Unsupported { .. }), "err Unsupported") => {}
        (got, want) => return Err(format!("header::parse: expected {want}, got {got:?}")),
    }

    // The appender, on a copy.
    let path = tmp.join(&f.name);
    fs::write(&path, &original).unwrap();
    let journal = npy_append::journal_path(&path);
    let result = Appender::open_or_recover(&path);
    match (result, f.open.as_str()) {
        (Ok(w), want) if want.starts_with("ok rows=") => {
            // `ok rows=N`: opening changes nothing. `ok rows=N header_rewritten`:
            // a header in another tool's style is rewritten in numpy's style
            // (same length), the data untouched.
            // `ok rows=N file_rewritten`: a header without room to grow is
            // replaced by numpy's header (another length), the data untouched.
            let (rows, rewritten, replaced) = match want["ok rows=".len()..].split_once(' ') {
                Some((rows, "header_rewritten")) => (rows, true, false),
                Some((rows, "file_rewritten")) => (rows, false, true),
                None => (&want["ok rows=".len()..], false, false),
                Some(_) => panic!("bad outcome {want:?}"),
            };
            let rows: u64 = rows.parse().unwrap();
            let report = w.report().clone();
            if w.len() != rows
                || report.found != Found::Clean
                || report.header_rewritten != rewritten
                || report.file_rewritten != replaced
                || report.bytes_cut != 0
                || report.journal_discarded
            {
                return Err(format!(
                    "opened with {} rows, report {report}; expected {want}",
                    w.len(),
                ));
            }
            w.close().map_err(|e| format!("close: {e}"))?;
            let after = fs::read(&path).unwrap();
            if rewritten {
                let h = parsed.as_ref().unwrap();
                let numpy_style =
                    header::build_with_len(h.version, &h.dtype, false, &h.shape, h.header_len)
                        .unwrap();
                let hl = h.header_len as usize;
                if after.len() != original.len()
                    || after[..hl] != numpy_style[..]
                    || after[hl..] != original[hl..]
                {
                    return Err("header not rewritten in numpy's style, or data changed".into());
                }
            } else if replaced {
                let h = parsed.as_ref().unwrap();
                let numpy_header = header::build(&h.dtype, false, &h.shape).unwrap();
                let hl = h.header_len as usize;
                if !after.starts_with(&numpy_header)
                    || after[numpy_header.len()..] != original[hl..]
                {
                    return Err("file not rewritten with numpy's header, or data changed".into());
                }
            } else if after != original {
                return Err("open + close without appends changed the file".into());
            }
            let original = after;
            // One more row of 0x00 bytes goes after the old data.
            // Another test's child process may hold a copy of the closed
            // writer's descriptor (and its lock) between its fork and its
            // exec: the reopen waits for it.
            let mut w = AppendOptions::new()
                .lock_wait(LockWait::Wait(std::time::Duration::from_secs(10)))
                .open(&path)
                .map_err(|e| format!("reopen: {e}"))?;
            let row_bytes = w.row_bytes().unwrap() as usize;
            w.append_bytes(&vec![0u8; row_bytes])
                .map_err(|e| format!("append: {e}"))?;
            w.close().map_err(|e| format!("close: {e}"))?;
            let grown = fs::read(&path).unwrap();
            let h = header::parse(&grown).map_err(|e| format!("grown header: {e}"))?;
            let hl = h.header_len as usize;
            if h.growth_len() != Some(rows + 1)
                || grown.len() != original.len() + row_bytes
                || grown[hl..original.len()] != original[hl..]
                || grown[original.len()..].iter().any(|&b| b != 0)
            {
                return Err(format!(
                    "appending a row gave shape {:?}, {} bytes",
                    h.shape,
                    grown.len()
                ));
            }
        }
        (Err(e), want) if want.starts_with("err ") => {
            if variant(&e) != want["err ".len()..] {
                return Err(format!("expected {want}, got {e:?}"));
            }
            if fs::read(&path).unwrap() != original {
                return Err(format!("a failed open ({e}) changed the file"));
            }
        }
        (Ok(w), want) => {
            return Err(format!(
                "expected {want}, opened with {} rows ({})",
                w.len(),
                w.report()
            ));
        }
        (Err(e), want) => return Err(format!("expected {want}, got {e:?}")),
    }
    if journal.exists() {
        return Err("a journal was left beside the file".into());
    }
    Ok(())
}

#[test]
fn fixtures_are_what_the_generator_makes() {
    let Some(python) = require_numpy("fixtures_are_what_the_generator_makes") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_fixtures.py");
    let code = format!(
        "import runpy, sys; sys.argv = [{:?}, {:?}]; runpy.run_path(sys.argv[0], run_name='__main__')",
        script.to_str().unwrap(),
        tmp.path().to_str().unwrap()
    );
    run_python(&python, &code, &[]);
    let mut names: Vec<String> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut fresh: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fresh.sort();
    assert_eq!(
        names, fresh,
        "the generator makes other files than are checked in"
    );
    for name in &names {
        // Pickled object arrays may differ between Python versions.
        if name == "object.npy" {
            continue;
        }
        assert!(
            fs::read(fixtures_dir().join(name)).unwrap()
                == fs::read(tmp.path().join(name)).unwrap(),
            "{name}: checked-in fixture differs from make_fixtures.py output (rerun it and commit)"
        );
    }
}
