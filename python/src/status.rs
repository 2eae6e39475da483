//! `file_state`: what the library can do with a file, read-only.

use std::path::PathBuf;

use npy_append::{FileState, FileStatus};
use pyo3::prelude::*;

use crate::errors::OrRaise;

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
