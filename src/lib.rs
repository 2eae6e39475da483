//! Crash-safe appends to NumPy `.npy` files.
//!
//! An [`Appender`] appends rows to a plain `.npy` file so that a writer killed
//! at any instant (`kill -9`, the OOM killer, a power cut) leaves a file that
//! [`Appender::open_or_recover`] resumes exactly where its last commit ended,
//! and that `np.load(path, mmap_mode="r")` reads at every moment, never
//! showing a row that was not committed.
//!
//! ```no_run
//! use npy_append::Appender;
//!
//! # fn main() -> npy_append::Result<()> {
//! let mut w = Appender::open_or_recover("feats.npy")?; // create, resume, or recover
//! let start = w.len();                                // committed rows: continue here
//! # let _ = start;
//! w.append(&[0.5f32, 1.5, 2.5])?;                      // typed, dtype checked, no cast
//! w.commit()?;                                        // durable: survives kill -9 and power loss
//! w.close()?;                                         // clean: header final, journal removed
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! - [`format`](mod@format): pure functions for the NPY header and the journal layout.
//! - [`storage`]: the one narrow interface every byte goes through, with the
//!   real file system and an in-memory backend.
//! - [`Appender`], [`AppendOptions`], [`RecoveryReport`], [`Error`]: the API.
//! - [`Reader`]: a read-only view of the committed rows, beside a writer.
//! - [`FileStatus`]: a read-only report of a file's state and of what
//!   recovery would do to it (the `npy-append` tool's `info` and `verify`).
//! - [`AppendGroup`], [`GroupReader`]: several files committed together.
//! - [`dataset`]: one dataset from many writers: shards ([`ShardWriter`]),
//!   a manifest ([`finalize`](dataset::finalize)) and one reader over all
//!   shards ([`DatasetReader`]).
//!
//! `docs/design.md` describes the on-disk protocol and its failure analysis.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![warn(clippy::pedantic)]
#![allow(
    clippy::module_name_repetitions,
    clippy::missing_errors_doc,
    clippy::must_use_candidate,
    clippy::cast_possible_truncation,
    clippy::doc_markdown,
    reason = "errors are documented on the error enum; u64 -> usize casts are bounded before use"
)]

pub mod dataset;
mod element;
mod error;
mod files;
pub mod format;
mod options;
mod read;
mod recovery;
mod report;
pub mod storage;
mod write;

pub use dataset::{DatasetReader, ShardOptions, ShardWriter};
pub use element::Element;
pub use error::{Error, Result};
pub use files::{cursor_path, journal_path, member_marker_path, rewrite_path};
pub use format::dtype::Dtype;
pub use format::journal::MAX_CURSOR_LEN;
pub use options::{AppendOptions, Durability, GroupCommit, LockWait, ShortFilePolicy, TailPolicy};
pub use read::group::GroupReader;
pub use read::group_status::{GroupStatus, MemberRecovery, MemberStatus};
pub use read::liveness::WriterState;
pub use read::ragged::RaggedReader;
pub use read::reader::Reader;
pub use read::status::{FileState, FileStatus, NUMPY_MAX_HEADER_SIZE, RecoveryAction};
pub use report::{Found, RecoveryOutcome, RecoveryReport};
pub use write::appender::Appender;
pub use write::group::{AppendGroup, GroupOptions, MemberSpec};
pub use write::ragged::{RaggedAppender, RaggedOptions};
