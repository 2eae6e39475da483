//! One reader over every shard of a dataset, with global row numbers.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{
    Column, Schema, list_shards_with, manifest_path, no_dataset, open_shard_reader,
    read_manifest_with, read_schema_with, schema_path, shard_journal,
};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::read::group::GroupReader;
use crate::read::liveness::{self, WriterState};
use crate::storage::{Backend, Directories, FsBackend};

/// Which shards a [`DatasetReader`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// The manifest when the dataset was finalized, else every shard found.
    #[default]
    Auto,
    /// The manifest's shards and rows; an error when there is no manifest.
    Manifest,
    /// Every shard found under the root, each up to its last commit,
    /// whether or not there is a manifest.
    Shards,
}

/// One shard as a [`DatasetReader`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardInfo {
    /// The shard's name.
    pub name: String,
    /// The rows the reader shows (its committed rows, or the manifest's).
    pub rows: u64,
    /// Whether the shard is complete.
    pub complete: bool,
}

struct OpenShard<B: Backend> {
    info: ShardInfo,
    group: Arc<GroupReader<B>>,
}

/// Every shard's committed rows as one array per column, with global row
/// numbers: shard after shard in the manifest's order once the dataset is
/// finalized, and during a build every shard found so far, each up to its
/// last commit, in the dataset's order (so a shard created later with a
/// name that sorts earlier moves the rows after it).
///
/// Takes no lock and never writes, so it runs beside the shards' writers;
/// it never shows a row that was not committed. Rows are memory-mapped: a
/// slice inside one shard is a view of the mapped file, without a copy; a
/// slice across shards and a gather copy. [`refresh`](Self::refresh) picks
/// up new commits, new shards and a new manifest.
///
/// It reads through a storage [`Backend`] ([`open_with`](Self::open_with));
/// on other backends than the real file system the committed rows are
/// copied rather than mapped (meant for tests).
pub struct DatasetReader<B: Backend = FsBackend> {
    backend: B,
    root: PathBuf,
    from: ReadFrom,
    from_manifest: bool,
    schema: Schema,
    row_bytes: Vec<u64>,
    shards: Vec<OpenShard<B>>,
    /// `starts[k]` is the first global row of shard `k`; one more entry
    /// holds the total.
    starts: Vec<u64>,
}

impl<B: Backend> std::fmt::Debug for DatasetReader<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetReader")
            .field("root", &self.root)
            .field("from_manifest", &self.from_manifest)
            .field("rows", &self.len())
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl DatasetReader<FsBackend> {
    /// Opens the dataset at `root`: its manifest when it was finalized,
    /// else every shard found.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_from(root, ReadFrom::Auto)
    }

    /// Opens the dataset at `root`, showing the shards `from` says.
    pub fn open_from(root: impl AsRef<Path>, from: ReadFrom) -> Result<Self> {
        Self::open_with(FsBackend, root, from)
    }

    /// Opens the dataset at `root` showing exactly `shards` (names and
    /// rows, in this order), as [`pinned`](Self::pinned) returned them: the
    /// same rows another process saw. Each shard must hold at least its
    /// rows. [`refresh`](Self::refresh) then reads the shards `from` says.
    pub fn open_pinned(
        root: impl AsRef<Path>,
        from: ReadFrom,
        shards: &[(String, u64)],
    ) -> Result<Self> {
        Self::open_pinned_with(FsBackend, root, from, shards)
    }
}

impl<B: Directories + Clone> DatasetReader<B>
where
    B::File: 'static,
{
    /// [`open_from`](DatasetReader::open_from) on `backend`.
    pub fn open_with(backend: B, root: impl AsRef<Path>, from: ReadFrom) -> Result<Self> {
        Self::load(backend, root.as_ref(), from, &[])
    }

    /// [`open_pinned`](DatasetReader::open_pinned) on `backend`.
    pub fn open_pinned_with(
        backend: B,
        root: impl AsRef<Path>,
        from: ReadFrom,
        shards: &[(String, u64)],
    ) -> Result<Self> {
        let root = root.as_ref();
        let schema = read_schema_with(&backend, root)?.ok_or_else(|| no_dataset(root))?;
        let open = shards
            .iter()
            .map(|(name, rows)| {
                pinned_shard(&backend, &schema, root, name, *rows, "the pinned view")
            })
            .collect::<Result<Vec<_>>>()?;
        let from_manifest = from != ReadFrom::Shards
            && read_manifest_with(&backend, root)?.is_some_and(|m| {
                m.shards.len() == shards.len()
                    && m.shards
                        .iter()
                        .zip(shards)
                        .all(|(a, (name, rows))| a.name == *name && a.rows == *rows)
            });
        Self::build(backend, root, from, from_manifest, schema, open)
    }

    fn load(backend: B, root: &Path, from: ReadFrom, previous: &[OpenShard<B>]) -> Result<Self> {
        let manifest = if from == ReadFrom::Shards {
            None
        } else {
            read_manifest_with(&backend, root)?
        };
        let schema_file = read_schema_with(&backend, root)?;
        match manifest {
            Some(manifest) => {
                if schema_file.as_ref().is_some_and(|s| *s != manifest.schema) {
                    return Err(Error::Corrupt {
                        path: manifest_path(root),
                        offset: None,
                        what: format!(
                            "its columns are not those of {}",
                            schema_path(root).display()
                        ),
                    });
                }
                let shards = manifest
                    .shards
                    .iter()
                    .map(|s| match reuse(previous, &s.name, s.rows) {
                        Some(open) => Ok(open),
                        None => pinned_shard(
                            &backend,
                            &manifest.schema,
                            root,
                            &s.name,
                            s.rows,
                            "the manifest",
                        ),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Self::build(backend, root, from, true, manifest.schema, shards)
            }
            None if from == ReadFrom::Manifest => Err(Error::InvalidArgument {
                path: None,
                what: format!(
                    "{}: the dataset was not finalized (no {})",
                    root.display(),
                    manifest_path(root).display()
                ),
            }),
            None => {
                let schema = schema_file.ok_or_else(|| no_dataset(root))?;
                let mut shards = Vec::new();
                for name in list_shards_with(&backend, root)? {
                    if let Some(open) = previous
                        .iter()
                        .find(|s| s.info.complete && s.info.name == name)
                    {
                        // A complete shard never changes.
                        shards.push(OpenShard {
                            info: open.info.clone(),
                            group: Arc::clone(&open.group),
                        });
                        continue;
                    }
                    if let Some((group, rows, complete)) =
                        open_shard_reader(&backend, &schema, root, &name)?
                    {
                        shards.push(OpenShard {
                            info: ShardInfo {
                                name,
                                rows,
                                complete,
                            },
                            group: Arc::new(group),
                        });
                    }
                }
                Self::build(backend, root, from, false, schema, shards)
            }
        }
    }

    fn build(
        backend: B,
        root: &Path,
        from: ReadFrom,
        from_manifest: bool,
        schema: Schema,
        shards: Vec<OpenShard<B>>,
    ) -> Result<Self> {
        let row_bytes = schema
            .columns
            .iter()
            .map(Column::row_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::from_format(schema_path(root), e))?;
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total: u64 = 0;
        for s in &shards {
            starts.push(total);
            total = total
                .checked_add(s.info.rows)
                .ok_or_else(|| Error::Unsupported {
                    path: Some(root.to_path_buf()),
                    what: "the shards hold more than 2^64 - 1 rows".to_owned(),
                })?;
        }
        starts.push(total);
        Ok(Self {
            backend,
            root: root.to_path_buf(),
            from,
            from_manifest,
            schema,
            row_bytes,
            shards,
            starts,
        })
    }

    /// Reads the dataset again: new commits, new shards, a new manifest.
    /// Returns whether the rows shown changed. Arrays taken before stay
    /// valid and unchanged.
    pub fn refresh(&mut self) -> Result<bool> {
        let fresh = Self::load(self.backend.clone(), &self.root, self.from, &self.shards)?;
        let changed = fresh.from_manifest != self.from_manifest
            || fresh.shards.len() != self.shards.len()
            || fresh
                .shards
                .iter()
                .zip(&self.shards)
                .any(|(a, b)| a.info != b.info);
        *self = fresh;
        Ok(changed)
    }

    /// Waits until at least `rows` rows are shown; returns whether they
    /// are. Returns `false` when `timeout` passes first, and at once when
    /// the reader shows a finalized dataset (its manifest) with fewer rows;
    /// fails with [`Error::WriterDied`] when no shard's writer is active and
    /// a shard's writer stopped without closing (see
    /// [`writer_state`](Self::writer_state)). The reader is refreshed as by
    /// [`refresh`](Self::refresh) (new commits, new shards, a new manifest),
    /// with a sleep growing from 100 µs to 10 ms in between.
    pub fn wait_for_rows(&mut self, rows: u64, timeout: Duration) -> Result<bool> {
        let (path, shown) = (self.root.clone(), self.len());
        liveness::wait_for_rows(
            self,
            rows,
            timeout,
            shown,
            Self::writer_state,
            |r| r.refresh().map(|_| r.len()),
            |shown| Error::WriterDied {
                path,
                shown,
                wanted: rows,
            },
        )
    }
}

impl<B: Backend> DatasetReader<B> {
    /// The state of the writers, for the dataset as a whole:
    /// [`WriterState::Finished`] when the reader shows a finalized dataset
    /// (its manifest); else [`WriterState::Active`] when a shard's writer is
    /// active, [`WriterState::Died`] when a shard's writer stopped without
    /// closing (its rows will not grow until a writer resumes it), and
    /// [`WriterState::Active`] otherwise (no writer runs now, but the
    /// dataset is not finalized: more rows and shards may come). Per shard:
    /// [`shard_states`](Self::shard_states).
    pub fn writer_state(&self) -> Result<WriterState> {
        if self.from_manifest {
            return Ok(WriterState::Finished);
        }
        let mut died = false;
        for state in self.shard_states()? {
            match state {
                WriterState::Active => return Ok(WriterState::Active),
                WriterState::Died => died = true,
                _ => {}
            }
        }
        Ok(if died {
            WriterState::Died
        } else {
            WriterState::Active
        })
    }

    /// The state of each shown shard's writer, in row order (see
    /// [`GroupReader::writer_state`]; a complete shard's writer finished).
    pub fn shard_states(&self) -> Result<Vec<WriterState>> {
        self.shards.iter().map(|s| s.group.writer_state()).collect()
    }

    /// The dataset's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Which shards this reader shows.
    pub fn read_from(&self) -> ReadFrom {
        self.from
    }

    /// Whether the rows shown are the manifest's (the dataset is
    /// finalized), rather than the shards found during a build.
    pub fn from_manifest(&self) -> bool {
        self.from_manifest
    }

    /// The dataset's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The dataset's columns.
    pub fn columns(&self) -> &[Column] {
        &self.schema.columns
    }

    /// The index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.schema.index(name)
    }

    /// Bytes per row of column `col`.
    pub fn row_bytes(&self, col: usize) -> Option<u64> {
        self.row_bytes.get(col).copied()
    }

    /// All rows shown.
    pub fn len(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// Whether no row is shown.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shards shown, in row order.
    pub fn shards(&self) -> impl ExactSizeIterator<Item = &ShardInfo> {
        self.shards.iter().map(|s| &s.info)
    }

    /// The shards and rows shown, for [`open_pinned`](Self::open_pinned).
    pub fn pinned(&self) -> Vec<(String, u64)> {
        self.shards
            .iter()
            .map(|s| (s.info.name.clone(), s.info.rows))
            .collect()
    }

    /// The first global row of shard `k` (the total for `k` = the number of
    /// shards).
    pub fn shard_start(&self, k: usize) -> Option<u64> {
        self.starts.get(k).copied()
    }

    /// The group reader of shard `k`, whose member `i` is column `i` (its
    /// rows may exceed those shown).
    pub fn shard_reader(&self, k: usize) -> Option<&Arc<GroupReader<B>>> {
        self.shards.get(k).map(|s| &s.group)
    }

    /// The shard holding global row `row` and the row's index in it.
    pub fn locate(&self, row: u64) -> Option<(usize, u64)> {
        if row >= self.len() {
            return None;
        }
        let k = self.starts.partition_point(|&s| s <= row).checked_sub(1)?;
        Some((k, row - self.starts.get(k)?))
    }

    fn out_of_range(&self, what: &str) -> Error {
        Error::InvalidArgument {
            path: None,
            what: format!(
                "{}: {what}, the dataset shows {} rows",
                self.root.display(),
                self.len()
            ),
        }
    }

    fn check_column(&self, col: usize) -> Result<()> {
        if col < self.schema.columns.len() {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                path: None,
                what: format!(
                    "column index {col}, the dataset has {} columns",
                    self.schema.columns.len()
                ),
            })
        }
    }

    /// Shard `k`.
    fn shard(&self, k: usize) -> Result<&OpenShard<B>> {
        self.shards
            .get(k)
            .ok_or_else(|| self.out_of_range(&format!("shard {k}")))
    }

    /// The group reader of the shard holding global row `row`, and the
    /// row's index in that shard.
    fn group_of(&self, row: u64) -> Result<(&GroupReader<B>, u64)> {
        let (k, r) = self
            .locate(row)
            .ok_or_else(|| self.out_of_range(&format!("row {row}")))?;
        Ok((&self.shard(k)?.group, r))
    }

    /// The shown rows of column `col` in shard `k`, mapped.
    fn segment(&self, k: usize, col: usize) -> Result<&[u8]> {
        let s = self.shard(k)?;
        s.group.bytes(col, 0..s.info.rows)
    }

    /// Row `row` of every column, as the mapped bytes (no copy).
    pub fn row(&self, row: u64) -> Result<Vec<&[u8]>> {
        let (group, r) = self.group_of(row)?;
        (0..self.schema.columns.len())
            .map(|c| group.bytes(c, r..r + 1))
            .collect()
    }

    /// Row `row` of column `col` as values of `T` (exactly the column's
    /// dtype), without a copy.
    pub fn row_as<T: Element>(&self, col: usize, row: u64) -> Result<&[T]> {
        self.check_column(col)?;
        let (group, r) = self.group_of(row)?;
        group.rows_as(col, r..r + 1)
    }

    /// The shards a range of global rows covers, with the local range in
    /// each.
    fn pieces(&self, range: &Range<u64>) -> Result<Vec<(usize, Range<u64>)>> {
        if range.start > range.end || range.end > self.len() {
            return Err(self.out_of_range(&format!("rows {}..{}", range.start, range.end)));
        }
        let mut out = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let (k, r) = self
                .locate(at)
                .ok_or_else(|| self.out_of_range(&format!("row {at}")))?;
            let shard_end = self.starts.get(k + 1).copied().unwrap_or(range.end);
            let end = shard_end.min(range.end);
            out.push((k, r..r + (end - at)));
            at = end;
        }
        Ok(out)
    }

    /// Rows `range` of every column: inside one shard a view of the mapped
    /// file (borrowed); across shards a copy (owned).
    pub fn slice(&self, range: Range<u64>) -> Result<Vec<Cow<'_, [u8]>>> {
        let pieces = self.pieces(&range)?;
        (0..self.schema.columns.len())
            .map(|c| self.column_pieces(c, &pieces))
            .collect()
    }

    fn column_pieces(&self, col: usize, pieces: &[(usize, Range<u64>)]) -> Result<Cow<'_, [u8]>> {
        joined(pieces, |k, r| self.shard(k)?.group.bytes(col, r.clone()))
    }

    /// Rows `range` of column `col` as values of `T` (exactly the column's
    /// dtype): inside one shard without a copy, across shards a copy.
    pub fn column_slice<T: Element + Clone>(
        &self,
        col: usize,
        range: Range<u64>,
    ) -> Result<Cow<'_, [T]>> {
        self.check_column(col)?;
        let pieces = self.pieces(&range)?;
        joined(&pieces, |k, r| self.shard(k)?.group.rows_as(col, r.clone()))
    }

    /// The rows `indices` (global, any order, repeats allowed) of column
    /// `col`, copied into `out`, which must hold exactly
    /// `indices.len() * row_bytes(col)` bytes.
    pub fn gather_into(&self, col: usize, indices: &[u64], out: &mut [u8]) -> Result<()> {
        self.check_column(col)?;
        let rb = self.row_bytes.get(col).copied().unwrap_or(0) as usize;
        if out.len() != indices.len().saturating_mul(rb) {
            return Err(Error::InvalidArgument {
                path: None,
                what: format!(
                    "an output of {} bytes for {} rows of {rb} bytes",
                    out.len(),
                    indices.len()
                ),
            });
        }
        let segments = (0..self.shards.len())
            .map(|k| self.segment(k, col))
            .collect::<Result<Vec<_>>>()?;
        for (&row, dst) in indices.iter().zip(out.chunks_exact_mut(rb.max(1))) {
            let (k, r) = self
                .locate(row)
                .ok_or_else(|| self.out_of_range(&format!("row {row}")))?;
            let at = r as usize * rb;
            let src = segments
                .get(k)
                .and_then(|seg| seg.get(at..at + rb))
                .ok_or_else(|| self.out_of_range(&format!("row {row}")))?;
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    /// The rows `indices` (global, any order, repeats allowed) of every
    /// column, copied.
    pub fn gather(&self, indices: &[u64]) -> Result<Vec<Vec<u8>>> {
        (0..self.schema.columns.len())
            .map(|c| {
                let rb = self.row_bytes.get(c).copied().unwrap_or(0) as usize;
                let mut out = vec![0u8; indices.len() * rb];
                self.gather_into(c, indices, &mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// The rows `indices` of column `col` as values of `T` (exactly the
    /// column's dtype), copied.
    pub fn gather_as<T: Element + Clone>(&self, col: usize, indices: &[u64]) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for &row in indices {
            out.extend_from_slice(self.row_as::<T>(col, row)?);
        }
        Ok(out)
    }

    /// The rows in batches of `batch_rows` (the last one may be shorter),
    /// every column of each: a batch inside one shard is a view of the
    /// mapped files, a batch across shards a copy.
    pub fn batches(&self, batch_rows: u64) -> Batches<'_, B> {
        Batches {
            reader: self,
            at: 0,
            step: batch_rows.max(1),
        }
    }
}

/// The iterator of [`DatasetReader::batches`].
pub struct Batches<'a, B: Backend = FsBackend> {
    reader: &'a DatasetReader<B>,
    at: u64,
    step: u64,
}

impl<'a, B: Backend> Iterator for Batches<'a, B> {
    type Item = Result<Vec<Cow<'a, [u8]>>>;

    fn next(&mut self) -> Option<Self::Item> {
        let len = self.reader.len();
        if self.at >= len {
            return None;
        }
        let end = self.at.saturating_add(self.step).min(len);
        let batch = self.reader.slice(self.at..end);
        self.at = end;
        Some(batch)
    }
}

/// One column's rows in `pieces` (shard, local rows), each read by `read`:
/// borrowed when they lie in one shard, else copied into one vector.
fn joined<'a, T: Clone>(
    pieces: &[(usize, Range<u64>)],
    read: impl Fn(usize, &Range<u64>) -> Result<&'a [T]>,
) -> Result<Cow<'a, [T]>> {
    match pieces {
        [] => Ok(Cow::Borrowed(&[])),
        [(k, r)] => read(*k, r).map(Cow::Borrowed),
        _ => {
            let mut out = Vec::new();
            for (k, r) in pieces {
                out.extend_from_slice(read(*k, r)?);
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// A complete shard of an earlier load showing exactly `rows`.
fn reuse<B: Backend>(previous: &[OpenShard<B>], name: &str, rows: u64) -> Option<OpenShard<B>> {
    previous
        .iter()
        .find(|s| s.info.complete && s.info.name == name && s.info.rows == rows)
        .map(|s| OpenShard {
            info: s.info.clone(),
            group: Arc::clone(&s.group),
        })
}

/// Shard `name` showing exactly `rows`, which it must hold.
fn pinned_shard<B: Backend + Clone>(
    backend: &B,
    schema: &Schema,
    root: &Path,
    name: &str,
    rows: u64,
    listed_by: &str,
) -> Result<OpenShard<B>>
where
    B::File: 'static,
{
    super::check_shard_name(name)?;
    let journal = shard_journal(root, name);
    let (group, committed, complete) =
        open_shard_reader(backend, schema, root, name)?.ok_or_else(|| Error::Corrupt {
            path: journal.clone(),
            offset: None,
            what: format!("{listed_by} lists shard {name}, which is missing"),
        })?;
    if committed < rows {
        return Err(Error::Corrupt {
            path: journal,
            offset: None,
            what: format!(
                "{listed_by} lists {rows} rows of shard {name}, which has {committed} committed: \
                 the shard lost rows since (a power loss after commits a Process writer did not \
                 sync, or another program changed it); finish the shard again (its work \
                 resumes from its last commit) and finalize again"
            ),
        });
    }
    Ok(OpenShard {
        info: ShardInfo {
            name: name.to_owned(),
            rows,
            complete,
        },
        group: Arc::new(group),
    })
}
