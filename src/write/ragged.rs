//! Ragged rows: sequences of different lengths in two `.npy` files.
//!
//! `values.npy` holds every sequence's rows one after another (1-D, or
//! `(M, d)` for sequences of `d`-wide rows) and `offsets.npy` (`<i8`) holds
//! `0` followed by one end offset per sequence, so sequence `i` is rows
//! `offsets[i]..offsets[i + 1]` of `values` — the layout nanoGPT-style token
//! files and Megatron's indexed datasets use. Both files are members of one
//! [`AppendGroup`], so a sequence is committed in both or in neither.

use std::path::Path;

use super::group::{AppendGroup, GroupOptions, MemberSpec};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::format::dtype::Dtype;
use crate::options::LockWait;
use crate::storage::{Backend, FsBackend};

/// Member index of the values in the group.
const VALUES: usize = 0;
/// Member index of the offsets in the group.
const OFFSETS: usize = 1;

/// Options for a [`RaggedAppender`]: the values' dtype and row shape, and
/// the member file names (default `values.npy` and `offsets.npy`, in the
/// group journal's directory).
#[derive(Debug, Clone)]
pub struct RaggedOptions {
    dtype: Dtype,
    row_shape: Vec<u64>,
    values: String,
    offsets: String,
    lock_wait: LockWait,
    move_aside_foreign_journal: bool,
}

impl RaggedOptions {
    /// Values of numpy's `descr` (`"<u2"` for tokens), each row of
    /// `row_shape` (`[]` for 1-D values).
    pub fn new(descr: &str, row_shape: &[u64]) -> Result<Self> {
        let spec = MemberSpec::new("values.npy", descr, row_shape)?;
        Ok(Self::from_spec(&spec, row_shape))
    }

    /// Values of type `T`, each row of `row_shape`.
    pub fn of<T: Element>(row_shape: &[u64]) -> Self {
        Self::from_spec(&MemberSpec::of::<T>("values.npy", row_shape), row_shape)
    }

    fn from_spec(spec: &MemberSpec, row_shape: &[u64]) -> Self {
        Self {
            dtype: spec.dtype().clone(),
            row_shape: row_shape.to_vec(),
            values: "values.npy".to_owned(),
            offsets: "offsets.npy".to_owned(),
            lock_wait: LockWait::Fail,
            move_aside_foreign_journal: false,
        }
    }

    /// The file names of the two members.
    #[must_use]
    pub fn names(mut self, values: &str, offsets: &str) -> Self {
        values.clone_into(&mut self.values);
        offsets.clone_into(&mut self.offsets);
        self
    }

    /// What to do when another writer holds a lock.
    #[must_use]
    pub fn lock_wait(mut self, lock_wait: LockWait) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    /// As [`GroupOptions::move_aside_foreign_journal`].
    #[must_use]
    pub fn move_aside_foreign_journal(mut self, move_aside: bool) -> Self {
        self.move_aside_foreign_journal = move_aside;
        self
    }

    fn group(&self) -> GroupOptions {
        GroupOptions::new()
            .member(MemberSpec::with_dtype(
                &self.values,
                self.dtype.clone(),
                &self.row_shape,
            ))
            .member(MemberSpec::of::<i64>(&self.offsets, &[]))
            .lock_wait(self.lock_wait)
            .move_aside_foreign_journal(self.move_aside_foreign_journal)
    }

    /// Opens, creates or recovers the ragged array whose group journal is
    /// `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<RaggedAppender<FsBackend>> {
        RaggedAppender::new(self.group().open(path)?)
    }

    /// The same on `backend`.
    pub fn open_with<B: Backend>(
        self,
        backend: B,
        path: impl AsRef<Path>,
    ) -> Result<RaggedAppender<B>> {
        RaggedAppender::new(self.group().open_with(backend, path)?)
    }
}

/// Appends sequences of rows to a values/offsets pair, committed together.
pub struct RaggedAppender<B: Backend = FsBackend> {
    group: AppendGroup<B>,
    /// Values rows appended so far (committed and pending): the next offset.
    end: u64,
    /// Values per row of `values`.
    row_values: u64,
}

impl<B: Backend> RaggedAppender<B> {
    fn new(mut group: AppendGroup<B>) -> Result<Self> {
        let values_rows = group.rows(VALUES);
        let offsets_rows = group.rows(OFFSETS);
        let row_values = group.row_values(VALUES).unwrap_or(1);
        if offsets_rows == 0 {
            if values_rows != 0 {
                return Err(inconsistent(&group, "values without offsets"));
            }
            // A new array: offsets start with 0.
            group.append(OFFSETS, &[0i64])?;
            group.commit()?;
        } else {
            let last = group.read_rows(OFFSETS, offsets_rows - 1..offsets_rows)?;
            let last = last
                .get(..8)
                .and_then(|b| b.try_into().ok())
                // Written by typed appends of `i64`: the host's byte order.
                .map(i64::from_ne_bytes)
                .and_then(|v| u64::try_from(v).ok());
            if last != Some(values_rows) {
                return Err(inconsistent(
                    &group,
                    &format!("the last offset is {last:?} but the values hold {values_rows} rows"),
                ));
            }
        }
        Ok(Self {
            group,
            end: values_rows,
            row_values,
        })
    }

    /// Committed sequences.
    pub fn len(&self) -> u64 {
        self.group.rows(OFFSETS).saturating_sub(1)
    }

    /// Whether no sequence is committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequences appended since the last commit.
    pub fn pending_sequences(&self) -> u64 {
        self.group.pending_rows(OFFSETS)
    }

    /// Committed rows of the values.
    pub fn values_len(&self) -> u64 {
        self.group.rows(VALUES)
    }

    /// The cursor of the last commit.
    pub fn cursor(&self) -> &[u8] {
        self.group.cursor()
    }

    /// The group underneath (paths, member rows).
    pub fn group(&self) -> &AppendGroup<B> {
        &self.group
    }

    /// Appends one sequence: `values` are its rows, flattened (a whole
    /// number of rows; an empty sequence is allowed).
    pub fn append<T: Element>(&mut self, values: &[T]) -> Result<()> {
        self.append_batch(values, &[values.len() as u64 / self.row_values.max(1)])
    }

    /// Appends several sequences: `values` holds their rows one after
    /// another and `lengths` the rows of each; the lengths must add up to
    /// the rows in `values`.
    pub fn append_batch<T: Element>(&mut self, values: &[T], lengths: &[u64]) -> Result<()> {
        let offsets = self.offsets_for(values.len() as u64, self.row_values, "values", lengths)?;
        self.group.append(VALUES, values)?;
        self.push_offsets(&offsets)
    }

    /// [`append_batch`](Self::append_batch) for raw bytes in the values'
    /// own layout (dtype and byte order of the file, rows one after
    /// another): for dtypes without a Rust element type (`f2`, big-endian,
    /// structured, strings).
    pub fn append_batch_bytes(&mut self, bytes: &[u8], lengths: &[u64]) -> Result<()> {
        let row_bytes = self.group.member_row_bytes(VALUES).unwrap_or(1);
        let offsets = self.offsets_for(bytes.len() as u64, row_bytes, "bytes", lengths)?;
        self.group.append_bytes(VALUES, bytes)?;
        self.push_offsets(&offsets)
    }

    /// Appends one sequence per item of `sequences`, each the raw bytes of
    /// its rows in the values' own layout (as for
    /// [`append_batch_bytes`](Self::append_batch_bytes)). Every sequence is
    /// checked before any is appended: on an error nothing is appended.
    pub fn extend_bytes(&mut self, sequences: &[&[u8]]) -> Result<()> {
        let mut lengths = Vec::with_capacity(sequences.len());
        for bytes in sequences {
            lengths.push(self.group.rows_in(VALUES, bytes)?);
        }
        self.offsets_for(lengths.iter().sum::<u64>(), 1, "rows", &lengths)?;
        for (bytes, rows) in sequences.iter().zip(lengths) {
            self.append_batch_bytes(bytes, &[rows])?;
        }
        Ok(())
    }

    /// The offsets after sequences of `lengths` rows, checked against the
    /// `given` units (values or bytes, `per_row` of them per row).
    fn offsets_for(
        &self,
        given: u64,
        per_row: u64,
        unit: &str,
        lengths: &[u64],
    ) -> Result<Vec<i64>> {
        let rows = lengths.iter().try_fold(0u64, |acc, &n| acc.checked_add(n));
        if rows.and_then(|n| n.checked_mul(per_row)) != Some(given) {
            let whole = if given.is_multiple_of(per_row.max(1)) {
                format!("{} rows", given / per_row.max(1))
            } else {
                format!("{given} {unit}, not a whole number of rows of {per_row}")
            };
            let sum = rows.map_or_else(|| "2**64 or more".to_owned(), |n| n.to_string());
            let values = self.group.member_path(VALUES).unwrap_or(self.group.path());
            return Err(Error::ShapeMismatch {
                path: values.to_path_buf(),
                expected: format!("sequence lengths adding up to the {whole} given"),
                found: format!("{} lengths adding up to {sum} rows", lengths.len()),
            });
        }
        let mut offsets = Vec::with_capacity(lengths.len());
        let mut end = self.end;
        for &n in lengths {
            end = end.saturating_add(n);
            offsets.push(i64::try_from(end).map_err(|_| Error::InvalidArgument {
                path: Some(self.group.path().to_path_buf()),
                what: "an offset over i64::MAX".to_owned(),
            })?);
        }
        Ok(offsets)
    }

    /// Appends the offsets of sequences whose values were just appended.
    fn push_offsets(&mut self, offsets: &[i64]) -> Result<()> {
        self.group.append(OFFSETS, offsets)?;
        if let Some(&end) = offsets.last() {
            self.end = u64::try_from(end).unwrap_or(self.end);
        }
        Ok(())
    }

    /// Commits the pending sequences (values and offsets together); returns
    /// the committed sequences.
    pub fn commit(&mut self) -> Result<u64> {
        self.group.commit()?;
        Ok(self.len())
    }

    /// Commits with a cursor (see [`AppendGroup::commit_with_cursor`]).
    pub fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64> {
        self.group.commit_with_cursor(cursor)?;
        Ok(self.len())
    }

    /// Commits and closes; returns the committed sequences.
    pub fn close(self) -> Result<u64> {
        let rows = self.group.close()?;
        Ok(rows.get(OFFSETS).copied().unwrap_or(0).saturating_sub(1))
    }
}

fn inconsistent<B: Backend>(group: &AppendGroup<B>, what: &str) -> Error {
    Error::Corrupt {
        path: group.path().to_path_buf(),
        offset: None,
        what: format!("ragged array: {what}"),
    }
}
