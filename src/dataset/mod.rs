//! One dataset from many writers: shards under one root, a schema, a
//! manifest, and one reader over all of it.
//!
//! A dataset is a directory. Its schema (column names, dtypes, row shapes)
//! is recorded once, in `schema.json` at the root, by whichever writer comes
//! first; every shard must match it. Each shard is an
//! [`AppendGroup`](crate::AppendGroup) in its own subdirectory, named by the
//! caller (a partition id, a rank): one plain `.npy` per column, committed
//! together. Writers of different shards need no coordination beyond the
//! file system; one writer per shard (the group's lock).
//!
//! ```text
//! <root>/schema.json              the columns, written once (atomically)
//! <root>/manifest.json            written by finalize (atomically)
//! <root>/.dataset.lock            serializes schema creation and finalize
//! <root>/<shard>/shard.group      the shard's group journal
//! <root>/<shard>/<column>.npy     one plain .npy per column
//! ```
//!
//! - **Exactly once.** A restarted or retried worker reopens its shard
//!   ([`open_shard`], [`ShardOptions::open`]), reads [`ShardWriter::len`] or its cursor, and
//!   continues; [`ShardWriter::append_at`] skips rows already there after
//!   comparing them, so a retry that produces other rows is
//!   [`Error::DataDiffers`] naming the shard and
//!   column, never a duplicate.
//! - **Complete.** [`ShardWriter::finish`] commits and marks the shard
//!   complete in the same kind of atomic group record that holds its rows
//!   (the first byte of the group cursor); a resumed job skips complete
//!   shards ([`shard_status`]).
//! - **Publishing.** [`finalize`] checks every shard and writes
//!   `manifest.json` (temporary file, sync, rename, directory sync); it is
//!   idempotent and refuses with [`Error::Incomplete`]
//!   naming the shards that are not complete, writing nothing.
//! - **Reading.** [`DatasetReader`] numbers rows across shards: in manifest
//!   order once finalized; during a build, every shard found so far, up to
//!   its last commit, in [`shard_order`](crate::format::dataset::shard_order).
//!
//! Every file of the dataset (schema, manifest, shards) is written and read
//! through the [`Backend`] trait, so the crash simulator enumerates these
//! writes like every other, and the reader ([`DatasetReader::open_with`],
//! [`shard_status_with`]) runs in memory and on every crash image.

mod files;
mod finalize;
mod reader;
mod shard;

use std::path::{Path, PathBuf};

pub use crate::format::dataset::{Column, Manifest, ManifestShard, Schema};
pub use finalize::{finalize, finalize_shards, finalize_with};
pub use reader::{Batches, DatasetReader, ReadFrom, ShardInfo};
pub use shard::{Batch, ShardOptions, ShardWriter, open_shard};

use crate::element::Element;
use crate::error::{Error, Result};
use crate::format::dataset::{self as fmt, MANIFEST_FILE, SCHEMA_FILE, SHARD_JOURNAL};
use crate::format::dtype::Dtype;
use crate::format::group_journal::{GroupIdentity, GroupRecord};
use crate::read::group::GroupReader;
use crate::recovery::group::{self as group_recovery, GroupJournalRead};
use crate::storage::{Backend, Directories, FsBackend, OpenMode};

impl Column {
    /// A column of values of `T` (`<f4` for `f32`) with rows of
    /// `row_shape`.
    pub fn of<T: Element>(name: &str, row_shape: &[u64]) -> Self {
        Self::new(name, T::dtype(), row_shape)
    }

    /// A column with numpy's `descr` (`"<f4"`, `"|b1"`, or a structured
    /// descr list).
    pub fn with_descr(name: &str, descr: &str, row_shape: &[u64]) -> Result<Self> {
        let dtype = fmt::parse_dtype_text(descr.trim()).map_err(|e| Error::InvalidArgument {
            path: None,
            what: format!("column {name:?}: dtype {descr:?}: {e}"),
        })?;
        Ok(Self::new(name, dtype, row_shape))
    }

    /// The dtype as the dataset files write it (`"<f4"`, or a structured
    /// descr list).
    pub fn dtype_text(&self) -> String {
        fmt::dtype_text(&self.dtype)
    }
}

/// The schema file of the dataset at `root`.
pub fn schema_path(root: &Path) -> PathBuf {
    root.join(SCHEMA_FILE)
}

/// The manifest file of the dataset at `root`.
pub fn manifest_path(root: &Path) -> PathBuf {
    root.join(MANIFEST_FILE)
}

/// The directory of shard `shard` of the dataset at `root`.
pub fn shard_dir(root: &Path, shard: &str) -> PathBuf {
    root.join(shard)
}

/// The group journal of shard `shard`.
fn shard_journal(root: &Path, shard: &str) -> PathBuf {
    root.join(shard).join(SHARD_JOURNAL)
}

fn check_shard_name(shard: &str) -> Result<()> {
    fmt::check_shard_name(shard).map_err(|what| Error::InvalidArgument { path: None, what })
}

/// Creates the dataset at `root` with `columns`: writes its schema when
/// there is none (atomically; of writers racing to create it, one wins and
/// the others check against it), else checks the existing schema against
/// `columns` ([`Error::DtypeMismatch`], [`Error::ShapeMismatch`]). Returns
/// the schema. Opening a shard with columns does the same.
pub fn create(root: impl AsRef<Path>, columns: &[Column]) -> Result<Schema> {
    create_with(&FsBackend, root.as_ref(), columns)
}

/// [`create`] on `backend`.
pub fn create_with<B: Directories>(backend: &B, root: &Path, columns: &[Column]) -> Result<Schema> {
    ensure_schema(backend, root, Some(columns))
}

/// The dataset's schema, or `None` when `root` holds none yet.
pub fn read_schema(root: impl AsRef<Path>) -> Result<Option<Schema>> {
    read_schema_with(&FsBackend, root.as_ref())
}

/// [`read_schema`] on `backend`.
pub fn read_schema_with<B: Backend>(backend: &B, root: &Path) -> Result<Option<Schema>> {
    files::read_decoded(backend, &schema_path(root), Schema::decode)
}

/// The dataset's manifest, or `None` when it was never finalized.
pub fn read_manifest(root: impl AsRef<Path>) -> Result<Option<Manifest>> {
    read_manifest_with(&FsBackend, root.as_ref())
}

/// [`read_manifest`] on `backend`.
pub fn read_manifest_with<B: Backend>(backend: &B, root: &Path) -> Result<Option<Manifest>> {
    files::read_decoded(backend, &manifest_path(root), Manifest::decode)
}

/// The names of the shards under `root`, in the dataset's order
/// ([`shard_order`](crate::format::dataset::shard_order)): the
/// subdirectories with a valid shard name that hold a shard journal.
pub fn list_shards(root: impl AsRef<Path>) -> Result<Vec<String>> {
    list_shards_with(&FsBackend, root.as_ref())
}

/// [`list_shards`] on `backend`.
pub fn list_shards_with<B: Directories>(backend: &B, root: &Path) -> Result<Vec<String>> {
    let names = backend
        .list_dirs(root)
        .map_err(|e| Error::io(root, "listing the dataset's shards", e))?;
    let mut shards = Vec::new();
    for name in names {
        if fmt::check_shard_name(&name).is_err() {
            continue;
        }
        let journal = shard_journal(root, &name);
        if backend
            .exists(&journal)
            .map_err(|e| Error::io(&journal, "checking", e))?
        {
            shards.push(name);
        }
    }
    shards.sort_by(|a, b| fmt::shard_order(a, b));
    Ok(shards)
}

/// Where a shard stands, read without a lock beside its writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// Committed rows.
    pub rows: u64,
    /// Whether the shard was finished ([`ShardWriter::finish`]).
    pub complete: bool,
    /// The writer's cursor of the last commit.
    pub cursor: Vec<u8>,
}

/// The state of shard `shard` of the dataset at `root` as of its last
/// commit; `None` when there is no such shard yet. Takes no lock, so it
/// runs beside the shard's writer (a job's driver uses it to skip complete
/// shards).
pub fn shard_status(root: impl AsRef<Path>, shard: &str) -> Result<Option<ShardStatus>> {
    shard_status_with(&FsBackend, root.as_ref(), shard)
}

/// [`shard_status`] on `backend`.
pub fn shard_status_with<B: Backend + Clone>(
    backend: &B,
    root: &Path,
    shard: &str,
) -> Result<Option<ShardStatus>>
where
    B::File: 'static,
{
    check_shard_name(shard)?;
    let schema = read_schema_with(backend, root)?.ok_or_else(|| no_dataset(root))?;
    match open_shard_reader(backend, &schema, root, shard)? {
        None => Ok(None),
        Some((reader, rows, complete)) => {
            let (_, cursor) = fmt::parse_shard_cursor(reader.cursor())
                .map_err(|e| Error::from_format(reader.path(), e))?;
            Ok(Some(ShardStatus {
                rows,
                complete,
                cursor: cursor.to_vec(),
            }))
        }
    }
}

fn no_dataset(root: &Path) -> Error {
    Error::InvalidArgument {
        path: None,
        what: format!(
            "{}: no dataset there (no {SCHEMA_FILE}); give the columns to create one",
            root.display()
        ),
    }
}

/// Opens the group reader of shard `shard` and checks it against the
/// schema: `None` when the shard has no journal yet (or one its writer is
/// creating right now); else the reader, the committed rows and whether the
/// shard is complete.
fn open_shard_reader<B: Backend + Clone>(
    backend: &B,
    schema: &Schema,
    root: &Path,
    shard: &str,
) -> Result<Option<(GroupReader<B>, u64, bool)>>
where
    B::File: 'static,
{
    let journal = shard_journal(root, shard);
    if read_shard_journal(backend, schema, &journal)?.is_none() {
        return Ok(None);
    }
    let reader = GroupReader::open_with(backend.clone(), &journal)?;
    let rows = check_shard_members(
        schema,
        &journal,
        |i| {
            Some((
                reader.member_name(i)?,
                reader.dtype(i)?,
                reader.row_shape(i)?,
                reader.rows(i),
            ))
        },
        reader.member_count(),
    )?;
    let (complete, _) =
        fmt::parse_shard_cursor(reader.cursor()).map_err(|e| Error::from_format(&journal, e))?;
    Ok(Some((reader, rows, complete)))
}

/// The shard journal at `journal` (open for reading), its identity and its
/// newest record, read without a lock; `None` when the shard has no commit
/// yet: no journal, or one that a crash during the group's creation left
/// behind (empty, the creation's torn write with no member created yet, or
/// the identity without its first record, which are written together), which
/// its writer's recovery starts again.
fn read_shard_journal<B: Backend>(
    backend: &B,
    schema: &Schema,
    journal: &Path,
) -> Result<Option<(B::File, GroupIdentity, GroupRecord)>> {
    let file = match backend.open(journal, OpenMode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(journal, "opening the shard journal", e)),
    };
    match group_recovery::read_group_journal(&file, journal) {
        Ok(GroupJournalRead {
            identity,
            newest: Some((_, record)),
            ..
        }) => Ok(Some((file, identity, record))),
        Ok(_) => Ok(None),
        Err(e @ Error::Corrupt { .. }) => {
            // A shard none of whose column files exists holds no rows,
            // whatever the journal file is (a creation cut short, or one a
            // power loss left as garbage, which its writer refuses to remove):
            // not shown. With a column file, the journal is damaged.
            let dir = crate::files::parent_dir(journal);
            let members = schema.columns.iter().map(|c| dir.join(c.file_name()));
            if group_recovery::any_exists(backend, members)? {
                Err(e)
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(e),
    }
}

/// Checks a shard's members (name, dtype, row shape and rows of member
/// `i`, for `count` members) against the schema; returns the rows, which
/// every column must share.
fn check_shard_members<'a>(
    schema: &Schema,
    journal: &Path,
    member: impl Fn(usize) -> Option<(&'a str, &'a Dtype, &'a [u64], u64)>,
    count: usize,
) -> Result<u64> {
    let corrupt = |what: String| Error::Corrupt {
        path: journal.to_path_buf(),
        offset: None,
        what,
    };
    if count != schema.columns.len() {
        return Err(corrupt(format!(
            "the shard has {count} columns, the dataset's schema {} ({})",
            schema.columns.len(),
            schema.describe()
        )));
    }
    let mut rows = None;
    for (i, column) in schema.columns.iter().enumerate() {
        let (name, dtype, row_shape, n) =
            member(i).ok_or_else(|| corrupt(format!("member {i} is missing")))?;
        if name != column.file_name() || *dtype != column.dtype || row_shape != column.row_shape {
            return Err(corrupt(format!(
                "member {name} does not match column {} of the dataset's schema ({})",
                column.name,
                schema.describe()
            )));
        }
        match rows {
            None => rows = Some(n),
            Some(r) if r != n => {
                return Err(corrupt(format!(
                    "its columns hold different rows ({r} and {n} in {name}); a shard's columns \
                     are always committed together"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(rows.unwrap_or(0))
}

/// The dataset's schema: the one at `root`, which `columns` (when given)
/// must match; or, when there is none yet, a new one of `columns`, written
/// under the root lock (temporary file, sync, rename, directory sync), so
/// that exactly one writer creates it and every other reads it whole.
fn ensure_schema<B: Directories>(
    backend: &B,
    root: &Path,
    columns: Option<&[Column]>,
) -> Result<Schema> {
    let Some(columns) = columns else {
        return read_schema_with(backend, root)?.ok_or_else(|| no_dataset(root));
    };
    let wanted = Schema::new(columns.to_vec()).map_err(|e| Error::InvalidArgument {
        path: None,
        what: format!("{}: {e}", root.display()),
    })?;
    if let Some(found) = read_schema_with(backend, root)? {
        check_same_schema(root, &found, &wanted)?;
        return Ok(found);
    }
    backend
        .create_dir_all(root)
        .map_err(|e| Error::io(root, "creating the dataset directory", e))?;
    crate::files::sync_parent(backend, root)?;
    let _lock = files::lock_root(backend, root)?;
    if let Some(found) = read_schema_with(backend, root)? {
        check_same_schema(root, &found, &wanted)?;
        return Ok(found);
    }
    crate::files::replace_atomically(backend, &schema_path(root), &wanted.encode())?;
    Ok(wanted)
}

/// `wanted` must be the dataset's schema `found`.
fn check_same_schema(root: &Path, found: &Schema, wanted: &Schema) -> Result<()> {
    let path = schema_path(root);
    let same_names = found.columns.len() == wanted.columns.len()
        && found
            .columns
            .iter()
            .zip(&wanted.columns)
            .all(|(a, b)| a.name == b.name);
    if !same_names {
        return Err(Error::ShapeMismatch {
            path: path.clone(),
            expected: format!("the columns of {}: {}", path.display(), found.describe()),
            found: format!("columns {}", wanted.describe()),
        });
    }
    for (f, w) in found.columns.iter().zip(&wanted.columns) {
        if f.dtype != w.dtype {
            return Err(Error::DtypeMismatch {
                path: path.clone(),
                expected: format!(
                    "{} (column {} of {})",
                    f.dtype_text(),
                    f.name,
                    path.display()
                ),
                found: w.dtype_text(),
            });
        }
        if f.row_shape != w.row_shape {
            return Err(Error::ShapeMismatch {
                path: path.clone(),
                expected: format!(
                    "rows of shape {} (column {} of {})",
                    crate::format::header::shape_repr(&f.row_shape),
                    f.name,
                    path.display()
                ),
                found: format!(
                    "rows of shape {}",
                    crate::format::header::shape_repr(&w.row_shape)
                ),
            });
        }
    }
    Ok(())
}

/// The group options of a shard of `schema`: one member `<column>.npy` per
/// column, in order.
fn group_options(
    schema: &Schema,
    lock_wait: crate::options::LockWait,
) -> crate::write::group::GroupOptions {
    schema.columns.iter().fold(
        crate::write::group::GroupOptions::new().lock_wait(lock_wait),
        |g, c| {
            g.member(crate::write::group::MemberSpec::with_dtype(
                &c.file_name(),
                c.dtype.clone(),
                &c.row_shape,
            ))
        },
    )
}
