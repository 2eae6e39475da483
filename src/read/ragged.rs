//! Reading a ragged array: sequences of different lengths in a values and
//! an offsets member of one group (written by
//! [`RaggedAppender`](crate::RaggedAppender)).

use std::path::Path;
use std::time::Duration;

use super::group::GroupReader;
use super::liveness::{self, WriterState};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::storage::{Backend, FsBackend};

/// Reads sequences of a ragged array: a consistent snapshot of its values
/// and offsets, each sequence a slice of the mapped values without a copy.
pub struct RaggedReader<B: Backend = FsBackend> {
    group: GroupReader<B>,
    values: usize,
    offsets: usize,
}

impl RaggedReader<FsBackend> {
    /// Opens the ragged array whose group journal is `path`, with the
    /// default member names.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_names(path, "values.npy", "offsets.npy")
    }

    /// Opens it with the given member names.
    pub fn open_names(path: impl AsRef<Path>, values: &str, offsets: &str) -> Result<Self> {
        Self::open_with(FsBackend, path, values, offsets)
    }
}

impl<B: Backend> RaggedReader<B>
where
    B::File: 'static,
{
    /// Opens the ragged array whose group journal is `path` on `backend`,
    /// with the given member names.
    pub fn open_with(
        backend: B,
        path: impl AsRef<Path>,
        values: &str,
        offsets: &str,
    ) -> Result<Self> {
        Self::new(GroupReader::open_with(backend, path)?, values, offsets)
    }

    fn new(group: GroupReader<B>, values: &str, offsets: &str) -> Result<Self> {
        let find = |name: &str| {
            group
                .member_index(name)
                .ok_or_else(|| Error::InvalidArgument {
                    path: Some(group.path().to_path_buf()),
                    what: format!("no member {name:?} in the group"),
                })
        };
        let (values, offsets) = (find(values)?, find(offsets)?);
        let reader = Self {
            group,
            values,
            offsets,
        };
        reader.offsets_slice()?;
        Ok(reader)
    }

    /// Reads the newest commit again; returns whether it changed.
    pub fn refresh(&mut self) -> Result<bool> {
        let changed = self.group.refresh()?;
        self.offsets_slice()?;
        Ok(changed)
    }

    /// Waits until at least `sequences` sequences are committed (the
    /// rows of a ragged array, as [`len`](Self::len) counts them); returns
    /// whether they are. Returns `false` when `timeout` passes first, and at
    /// once when the writer has closed the array cleanly (or none has it
    /// open) without committing them; fails with [`Error::WriterDied`] when
    /// the writer stopped without closing before committing them (see
    /// [`GroupReader::wait_for_rows`]).
    pub fn wait_for_rows(&mut self, sequences: u64, timeout: Duration) -> Result<bool> {
        let (path, shown) = (self.group.path().to_path_buf(), self.len());
        liveness::wait_for_rows(
            self,
            sequences,
            timeout,
            shown,
            Self::writer_state,
            |r| r.refresh().map(|_| r.len()),
            |shown| Error::WriterDied {
                path,
                shown,
                wanted: sequences,
            },
        )
    }
}

impl<B: Backend> RaggedReader<B> {
    fn offsets_slice(&self) -> Result<&[i64]> {
        self.group.as_slice::<i64>(self.offsets)
    }

    /// Sequences in the snapshot.
    pub fn len(&self) -> u64 {
        self.group.rows(self.offsets).saturating_sub(1)
    }

    /// Whether the snapshot holds no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cursor of the snapshot's commit.
    pub fn cursor(&self) -> &[u8] {
        self.group.cursor()
    }

    /// The state of the array's writer (see [`GroupReader::writer_state`]).
    pub fn writer_state(&self) -> Result<WriterState> {
        self.group.writer_state()
    }

    /// The group snapshot underneath.
    pub fn group(&self) -> &GroupReader<B> {
        &self.group
    }

    /// The rows `start..end` of the values holding sequence `i`.
    pub fn range(&self, i: u64) -> Result<std::ops::Range<u64>> {
        let offsets = self.offsets_slice()?;
        let at = |k: u64| {
            usize::try_from(k)
                .ok()
                .and_then(|k| offsets.get(k))
                .and_then(|&v| u64::try_from(v).ok())
        };
        let (Some(start), Some(end)) = (at(i), i.checked_add(1).and_then(at)) else {
            return Err(Error::InvalidArgument {
                path: Some(self.group.path().to_path_buf()),
                what: format!("sequence {i}, the array holds {}", self.len()),
            });
        };
        if start > end || end > self.group.rows(self.values) {
            return Err(Error::Corrupt {
                path: self
                    .group
                    .member_path(self.offsets)
                    .unwrap_or(self.group.path())
                    .to_path_buf(),
                offset: None,
                what: format!(
                    "offsets {start}..{end} of sequence {i} are not within the {} value rows",
                    self.group.rows(self.values)
                ),
            });
        }
        Ok(start..end)
    }

    /// Sequence `i` as values of `T` (the values' dtype), without a copy.
    pub fn get<T: Element>(&self, i: u64) -> Result<&[T]> {
        self.group.rows_as(self.values, self.range(i)?)
    }

    /// Sequence `i` as raw bytes.
    pub fn get_bytes(&self, i: u64) -> Result<&[u8]> {
        self.group.bytes(self.values, self.range(i)?)
    }
}
