//! The native part of the `npy_append` Python package: the crash-safe
//! writers and the readers of the `npy-append` crate, for numpy arrays.
//!
//! The pure-Python package (`npy_append/`) defines the exception classes,
//! the dtype helpers this module calls, the reader classes that wrap the
//! native snapshots, and the npy-append-array drop-in.
//!
//! Layout: `errors` (library errors as the Python exceptions),
//! `convert` (dtypes, shapes, options, array bytes), `handle` (what the
//! writer classes share), then one module per class family: `appender`,
//! `reader` (with the buffer-protocol mappings), `groups`, `ragged`,
//! `status`, `dataset`.

#![allow(
    clippy::doc_markdown,
    clippy::cast_possible_truncation,
    clippy::needless_pass_by_value,
    reason = "doc comments are Python docstrings; pyo3 arguments arrive owned; row counts fit in usize on the platforms numpy runs on"
)]

use pyo3::prelude::*;

mod appender;
mod convert;
mod dataset;
mod errors;
mod groups;
mod handle;
mod ragged;
mod reader;
mod status;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<appender::PyAppender>()?;
    m.add_class::<reader::PyReader>()?;
    m.add_class::<reader::Mapping>()?;
    m.add_class::<groups::PyAppendGroup>()?;
    m.add_class::<groups::PyGroupReader>()?;
    m.add_class::<reader::GroupMapping>()?;
    m.add_class::<ragged::PyRaggedAppender>()?;
    m.add_class::<ragged::PyRaggedReader>()?;
    m.add_function(wrap_pyfunction!(status::file_state, m)?)?;
    m.add_function(wrap_pyfunction!(status::numpy_header_len, m)?)?;
    m.add_class::<dataset::PyShardWriter>()?;
    m.add_class::<dataset::PyDatasetReader>()?;
    m.add_function(wrap_pyfunction!(dataset::create, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::read_schema, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::finalize, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::read_manifest, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::list_shards, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::shard_status, m)?)?;
    Ok(())
}
