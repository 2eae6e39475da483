//! Array layouts users arrive with: Fortran-order files grow along their
//! last axis (where their data is contiguous), new ones are created by
//! option, readers map them, numpy loads the results with identical data;
//! big-endian files refuse typed native values with a message naming both
//! dtypes.

mod support;

use std::path::PathBuf;

use npy_append::format::header;
use npy_append::storage::MemBackend;
use npy_append::{AppendOptions, Dtype, Error, Reader};

/// Value `(i, j, n)` of a `(2, 3, N)` test array.
fn v(i: u64, j: u64, n: u64) -> f64 {
    (n * 100 + j * 10 + i) as f64 + 0.25
}

/// Slices `range` of the `(2, 3, N)` array, each in Fortran order (`i`
/// fastest): the bytes of the file's data for those rows.
fn slices(range: std::ops::Range<u64>) -> Vec<f64> {
    range
        .flat_map(|n| (0..3).flat_map(move |j| (0..2).map(move |i| v(i, j, n))))
        .collect()
}

/// numpy code building the expected `(2, 3, N)` array.
const EXPECTED_PY: &str = "\
import sys, numpy as np
n = int(sys.argv[2])
i, j, k = np.meshgrid(np.arange(2), np.arange(3), np.arange(n), indexing='ij')
want = (k * 100 + j * 10 + i).astype('<f8') + 0.25
a = np.load(sys.argv[1])
assert a.shape == want.shape, (a.shape, want.shape)
assert a.flags.f_contiguous, 'not Fortran order'
assert np.array_equal(a, want), (a, want)
print('ok', a.shape)
";

#[test]
fn a_numpy_fortran_file_grows_along_its_last_axis() {
    let Some(py) = support::require_numpy("a_numpy_fortran_file_grows_along_its_last_axis") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f.npy");
    support::run_python(
        &py,
        "import sys, numpy as np\n\
         i, j, k = np.meshgrid(np.arange(2), np.arange(3), np.arange(4), indexing='ij')\n\
         a = np.asfortranarray((k * 100 + j * 10 + i).astype('<f8') + 0.25)\n\
         np.save(sys.argv[1], a)",
        &[path.to_str().unwrap()],
    );
    let mut w = AppendOptions::new().open(&path).unwrap();
    assert_eq!(w.len(), 4);
    assert_eq!(w.row_shape(), &[2, 3]);
    assert_eq!(w.row_bytes(), Some(48));
    w.append(&slices(4..6)).unwrap();
    w.commit().unwrap();
    // While open, numpy sees the committed slices.
    let out = support::run_python(&py, EXPECTED_PY, &[path.to_str().unwrap(), "6"]);
    assert_eq!(out.trim(), "ok (2, 3, 6)");
    w.append(&slices(6..7)).unwrap();
    assert_eq!(w.close().unwrap(), 7);
    let out = support::run_python(&py, EXPECTED_PY, &[path.to_str().unwrap(), "7"]);
    assert_eq!(out.trim(), "ok (2, 3, 7)");

    let r = Reader::open(&path).unwrap();
    assert!(r.fortran_order());
    assert_eq!((r.len(), r.row_shape()), (7, &[2u64, 3][..]));
    assert_eq!(r.rows_as::<f64>(2..5).unwrap(), slices(2..5));
    assert_eq!(r.as_slice::<f64>().unwrap(), slices(0..7));
}

#[test]
fn new_fortran_files_by_option_load_in_numpy() {
    let Some(py) = support::require_numpy("new_fortran_files_by_option_load_in_numpy") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("new.npy");
    let options = || {
        AppendOptions::new()
            .dtype("<f8")
            .unwrap()
            .row_shape(&[2, 3])
            .fortran_order(true)
    };
    let mut w = options().open(&path).unwrap();
    w.append(&slices(0..3)).unwrap();
    w.commit().unwrap();
    w.append(&slices(3..5)).unwrap();
    drop(w); // no close: recovery on the next open
    let mut w = options().open(&path).unwrap();
    assert_eq!(w.len(), 3, "the uncommitted slices are cut");
    w.append(&slices(3..8)).unwrap();
    assert_eq!(w.close().unwrap(), 8);
    let bytes = std::fs::read(&path).unwrap();
    let h = header::parse(&bytes).unwrap();
    assert!(h.fortran_order);
    assert_eq!(h.shape, [2, 3, 8]);
    assert_eq!(
        bytes[..usize::try_from(h.header_len).unwrap()],
        header::build(&h.dtype, true, &[2, 3, 8]).unwrap()[..],
        "np.save's header"
    );
    let out = support::run_python(&py, EXPECTED_PY, &[path.to_str().unwrap(), "8"]);
    assert_eq!(out.trim(), "ok (2, 3, 8)");
}

#[cfg(feature = "ndarray")]
#[test]
fn readers_map_fortran_files_as_numpy_does() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/m/f.npy");
    let mut w = AppendOptions::new()
        .dtype("<f8")
        .unwrap()
        .row_shape(&[2, 3])
        .fortran_order(true)
        .open_with(fs.clone(), &path)
        .unwrap();
    w.append(&slices(0..4)).unwrap();
    w.close().unwrap();
    let r = Reader::open_with(fs, &path).unwrap();
    let a = r.as_array::<f64>().unwrap();
    assert_eq!(a.shape(), &[2, 3, 4]);
    for i in 0..2 {
        for j in 0..3 {
            for n in 0..4 {
                assert_eq!(a[[i, j, n]], v(i as u64, j as u64, n as u64));
            }
        }
    }
}

#[test]
fn one_dimensional_fortran_is_c_order() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/m/one.npy");
    let mut w = AppendOptions::new()
        .dtype("<i4")
        .unwrap()
        .fortran_order(true)
        .open_with(fs.clone(), &path)
        .unwrap();
    w.append(&[1i32, 2, 3]).unwrap();
    w.close().unwrap();
    let bytes = fs.contents(&path).unwrap();
    let h = header::parse(&bytes).unwrap();
    assert!(
        !h.fortran_order,
        "numpy writes 1-D arrays with fortran_order False"
    );
    assert_eq!(h.shape, [3]);
    // A 1-D file saying fortran_order True is taken over as it is.
    let mut other = header::build(&h.dtype, true, &[2]).unwrap();
    other.extend(1i32.to_le_bytes());
    other.extend(2i32.to_le_bytes());
    let p2 = PathBuf::from("/m/one_f.npy");
    fs.put(&p2, &other);
    let mut w = AppendOptions::new().open_with(fs.clone(), &p2).unwrap();
    w.append(&[3i32]).unwrap();
    assert_eq!(w.close().unwrap(), 3);
    let bytes = fs.contents(&p2).unwrap();
    let h = header::parse(&bytes).unwrap();
    assert!(h.fortran_order);
    assert_eq!(h.shape, [3]);
}

#[test]
fn an_order_option_that_disagrees_with_the_file_is_refused() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/m/c.npy");
    AppendOptions::new()
        .dtype("<f8")
        .unwrap()
        .row_shape(&[2, 3])
        .open_with(fs.clone(), &path)
        .unwrap()
        .close()
        .unwrap();
    let before = fs.contents(&path).unwrap();
    let err = AppendOptions::new()
        .fortran_order(true)
        .open_with(fs.clone(), &path)
        .err()
        .expect("refused");
    assert!(
        matches!(&err, Error::ShapeMismatch { path: p, expected, found }
            if *p == path && expected.contains("C order") && found.contains("Fortran order")),
        "{err:?}"
    );
    assert_eq!(fs.contents(&path).unwrap(), before);
}

#[test]
fn typed_values_never_go_to_a_big_endian_file() {
    let fs = MemBackend::new();
    let path = PathBuf::from("/m/be.npy");
    let dtype = Dtype::parse_descr("'>f8'").unwrap();
    let mut bytes = header::build(&dtype, false, &[1]).unwrap();
    bytes.extend(1.5f64.to_be_bytes());
    fs.put(&path, &bytes);
    let mut w = AppendOptions::new().open_with(fs.clone(), &path).unwrap();
    let err = w.append(&[2.5f64]).unwrap_err();
    let Error::DtypeMismatch {
        path: p,
        expected,
        found,
    } = &err
    else {
        panic!("expected DtypeMismatch, got {err:?}");
    };
    assert_eq!(p, &path);
    assert!(expected.contains(">f8"), "{expected}");
    assert!(found.contains("<f8"), "{found}");
    assert!(err.to_string().contains("no value is ever cast"), "{err}");
    // Big-endian bytes go in as bytes.
    w.append_bytes(&2.5f64.to_be_bytes()).unwrap();
    assert_eq!(w.close().unwrap(), 2);
    let r = Reader::open_with(fs, &path).unwrap();
    assert_eq!(r.bytes(1..2).unwrap(), 2.5f64.to_be_bytes());
}
