//! Publishing a dataset: checking its shards and writing the manifest.

use std::path::{Path, PathBuf};

use super::{
    Manifest, ManifestShard, Schema, check_shard_members, check_shard_name, files, group_options,
    list_shards_with, manifest_path, no_dataset, read_schema_with, read_shard_journal,
    shard_journal,
};
use crate::error::{Error, Result};
use crate::format::dataset as fmt;
use crate::format::group_journal::Slot;
use crate::options::LockWait;
use crate::recovery::group::{GroupJournalRead, member_layout, plan_group};
use crate::storage::{Backend, Directories, FsBackend, OpenMode, Storage};

/// Publishes the dataset at `root` with every shard found there.
///
/// Checks that every shard is complete and matches the schema, syncs every
/// shard written with [`Durability::Fsync`](crate::Durability::Fsync) (its
/// columns and journal), then writes `manifest.json` (the schema, the shards
/// in the dataset's order with their rows, a format version): temporary
/// file, fsync, rename, directory fsync. A shard whose last writer chose
/// [`Durability::Process`](crate::Durability::Process) is published as that
/// writer left it, unsynced: a power loss can then take back rows the
/// manifest lists, which the [`DatasetReader`](crate::DatasetReader)
/// refuses ([`Error::Corrupt`] naming the shard) until the shard is finished
/// again and the dataset finalized again.
/// Returns the manifest. Idempotent: when `manifest.json` already holds
/// this manifest nothing is written. When a shard is not complete (or a
/// writer holds a complete one that needs recovery, below) it returns
/// [`Error::Incomplete`] naming every such shard and writes nothing.
///
/// Finalizing reads each shard without its lock and changes nothing in
/// it. Only a complete shard that a crash during its `finish` left with a
/// column's header behind its last commit is opened as its writer would
/// open it (taking its lock briefly, which a writer holding it makes the
/// shard count as not complete) so that recovery rewrites that header.
pub fn finalize(root: impl AsRef<Path>) -> Result<Manifest> {
    finalize_with(&FsBackend, root.as_ref(), None)
}

/// [`finalize`] with exactly the shards `shards` (in the dataset's order,
/// whatever their order here): other shards under the root are left out
/// of the manifest, complete or not. Each must exist.
pub fn finalize_shards(root: impl AsRef<Path>, shards: &[&str]) -> Result<Manifest> {
    let names: Vec<String> = shards.iter().map(|&s| s.to_owned()).collect();
    finalize_with(&FsBackend, root.as_ref(), Some(&names))
}

/// [`finalize`] on `backend`, with every shard (`None`) or exactly
/// `shards`.
pub fn finalize_with<B: Directories + Clone>(
    backend: &B,
    root: &Path,
    shards: Option<&[String]>,
) -> Result<Manifest> {
    let _lock = files::lock_root(backend, root)?;
    let schema = read_schema_with(backend, root)?.ok_or_else(|| no_dataset(root))?;
    let mut names = match shards {
        None => list_shards_with(backend, root)?,
        Some(names) => {
            for (i, name) in names.iter().enumerate() {
                check_shard_name(name)?;
                if names.iter().take(i).any(|n| n == name) {
                    return Err(Error::InvalidArgument {
                        path: None,
                        what: format!("shard {name:?} is named twice"),
                    });
                }
                let journal = shard_journal(root, name);
                if !backend
                    .exists(&journal)
                    .map_err(|e| Error::io(&journal, "checking", e))?
                {
                    return Err(Error::InvalidArgument {
                        path: None,
                        what: format!(
                            "{}: no shard {name:?} there (no {})",
                            root.display(),
                            journal.display()
                        ),
                    });
                }
            }
            names.to_vec()
        }
    };
    names.sort_by(|a, b| fmt::shard_order(a, b));
    let mut entries = Vec::with_capacity(names.len());
    let mut incomplete = Vec::new();
    for name in names {
        match published_rows(backend, &schema, &shard_journal(root, &name))? {
            Some(rows) => entries.push(ManifestShard { name, rows }),
            None => incomplete.push(name),
        }
    }
    if !incomplete.is_empty() {
        return Err(Error::Incomplete {
            root: root.to_path_buf(),
            shards: incomplete,
        });
    }
    let manifest = Manifest::new(schema, entries).map_err(|e| Error::from_format(root, e))?;
    let bytes = manifest.encode();
    let path = manifest_path(root);
    if files::read_file(backend, &path)?.as_deref() != Some(bytes.as_slice()) {
        crate::files::replace_atomically(backend, &path, &bytes)?;
    }
    Ok(manifest)
}

/// A shard as finalize finds it, reading only.
enum ShardState<F> {
    /// Not complete, or no commit yet.
    Incomplete,
    /// Complete, and as its `finish` left it: every column at `rows`, its
    /// header saying so and nothing past them; the journal and the columns,
    /// open for reading; whether its writer synced its commits (Fsync).
    Clean {
        rows: u64,
        files: Vec<(PathBuf, F)>,
        synced: bool,
    },
    /// Complete, but a crash during `finish` left a column as recovery
    /// would not (its header behind the last commit).
    NeedsRecovery,
}

/// Reads the shard whose group journal is `journal`, without a lock: its
/// newest record says whether it is complete and how many rows it holds;
/// its columns must match the schema; and recovery's own plan for each
/// column (reading only: the binding to the journal, the newest commit's
/// checksum, the header and the length) says whether it would change
/// anything.
fn inspect<B: Backend>(
    backend: &B,
    schema: &Schema,
    journal: &Path,
) -> Result<ShardState<B::File>> {
    let Some((file, identity, record)) = read_shard_journal(backend, schema, journal)? else {
        return Ok(ShardState::Incomplete);
    };
    let (complete, _) =
        fmt::parse_shard_cursor(&record.cursor).map_err(|e| Error::from_format(journal, e))?;
    if !complete {
        return Ok(ShardState::Incomplete);
    }
    let layouts = identity
        .members
        .iter()
        .map(|m| member_layout(journal, m))
        .collect::<Result<Vec<_>>>()?;
    let rows = check_shard_members(
        schema,
        journal,
        |i| {
            let layout = layouts.get(i)?;
            Some((
                identity.members.get(i)?.name.as_str(),
                &layout.header.dtype,
                layout.header.row_shape(),
                record.members.get(i)?.rows,
            ))
        },
        identity.members.len(),
    )?;
    let dir = crate::files::parent_dir(journal);
    let mut members = Vec::with_capacity(identity.members.len());
    for m in &identity.members {
        let path = dir.join(&m.name);
        let member = match backend.open(&path, OpenMode::Read) {
            Ok(member) => Some(member),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, "opening a shard's column", e)),
        };
        members.push((path, member));
    }
    // Only the newest record: a plan that would fall back from it is a
    // change, and the shard needs recovery either way.
    let read = GroupJournalRead {
        identity,
        newest: None,
        older: None,
    };
    let synced = record.data_synced;
    let plan = plan_group(journal, &read, &(Slot::A, record), &members, false)?;
    let unchanged = !plan.write_chosen
        && plan
            .members
            .iter()
            .all(|p| p.file.cut_to.is_none() && p.file.header_write.is_none());
    let mut files = vec![(journal.to_path_buf(), file)];
    for (path, member) in members {
        match member {
            Some(member) if unchanged => files.push((path, member)),
            _ => return Ok(ShardState::NeedsRecovery),
        }
    }
    Ok(ShardState::Clean {
        rows,
        files,
        synced,
    })
}

/// The rows the shard whose group journal is `journal` is published with;
/// `None` when it is not complete (or a writer holds it while it needs
/// recovery).
///
/// A clean complete shard of an Fsync writer is synced (journal and
/// columns, from the handles read): what was read may be only in the page
/// cache, written by a `finish` killed before its own syncs, and the
/// manifest must not outlive it. A Process writer's is left as it is (see
/// [`finalize`]). One that needs recovery is opened and closed as its writer would
/// (without waiting for the lock), then read again.
fn published_rows<B: Directories + Clone>(
    backend: &B,
    schema: &Schema,
    journal: &Path,
) -> Result<Option<u64>> {
    let mut recovered = false;
    loop {
        match inspect(backend, schema, journal)? {
            ShardState::Incomplete => return Ok(None),
            ShardState::Clean {
                rows,
                files,
                synced,
            } => {
                for (path, file) in files.iter().filter(|_| synced) {
                    file.sync_data()
                        .map_err(|e| Error::io(path, "syncing a shard", e))?;
                }
                return Ok(Some(rows));
            }
            ShardState::NeedsRecovery if !recovered => {
                match group_options(schema, LockWait::Fail).open_with(backend.clone(), journal) {
                    Ok(group) => {
                        group.close()?;
                    }
                    Err(Error::Locked { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
                recovered = true;
            }
            ShardState::NeedsRecovery => {
                return Err(Error::Corrupt {
                    path: journal.to_path_buf(),
                    offset: None,
                    what: "a column still differs from its last commit after its recovery"
                        .to_owned(),
                });
            }
        }
    }
}
