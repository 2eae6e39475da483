//! What the library can do with a file, read-only (`file_state`), and
//! the header length numpy writes (`numpy_header_len`).

use std::path::PathBuf;

use npy_append::format::header;
use npy_append::{FileState, FileStatus};
use pyo3::prelude::*;

use crate::errors::{OrRaise, unsupported};

/// The state of a file as far as appending is concerned: "clean",
/// "needs-recovery", "inconsistent" or "unsupported", the reason when not
/// clean, and whether its header has room to grow the row count in place
/// (false: opening it without a journal first replaces it by a rewritten
/// copy). Read-only, takes no lock.
#[pyfunction]
pub(crate) fn file_state(
    py: Python<'_>,
    path: PathBuf,
) -> PyResult<(String, Option<String>, bool)> {
    let status = py.detach(|| FileStatus::read(&path)).or_raise(py)?;
    let state = match status.state {
        FileState::Clean => "clean",
        FileState::NeedsRecovery => "needs-recovery",
        FileState::Inconsistent => "inconsistent",
        FileState::Unsupported => "unsupported",
        _ => "unknown",
    };
    // A header rebuilt from the journal is written with room.
    let room = !status.header_from_file || status.header.has_growth_room();
    Ok((state.to_owned(), status.problem, room))
}

/// The length of the header numpy (1.24 and later) writes for an array
/// whose descriptor text is `descr` (Python's `repr` of
/// `numpy.lib.format.dtype_to_descr(dtype)`), order `fortran_order` and
/// shape `shape`, growth padding included: npy-append-array's measure of
/// whether a header can be rewritten in place.
#[pyfunction]
pub(crate) fn numpy_header_len(descr: &str, fortran_order: bool, shape: Vec<u64>) -> PyResult<u64> {
    header::build_for_descr(descr, fortran_order, &shape)
        .map(|h| h.len() as u64)
        .map_err(|e| unsupported(e.to_string()))
}
