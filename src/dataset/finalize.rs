//! Publishing a dataset: checking its shards and writing the manifest.

use std::path::Path;

use super::{
    Manifest, ManifestShard, check_shard_name, files, group_options, list_shards_with,
    manifest_path, no_dataset, read_schema_with, shard_journal,
};
use crate::error::{Error, Result};
use crate::format::dataset as fmt;
use crate::options::LockWait;
use crate::storage::{Directories, FsBackend};

/// Publishes the dataset at `root` with every shard found there.
///
/// Checks that every shard is complete and matches the schema, then writes
/// `manifest.json` (the schema, the shards in the dataset's order with their
/// rows, a format version): temporary file, fsync, rename, directory fsync.
/// Returns the manifest. Idempotent: when `manifest.json` already holds
/// this manifest nothing is written. When a shard is not complete (or a
/// writer has it open) it returns [`Error::Incomplete`] naming every such
/// shard and writes nothing.
///
/// Finalizing opens each shard as its writer would (taking its lock
/// briefly); a complete shard was closed cleanly, so this changes nothing
/// in it.
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
        let journal = shard_journal(root, &name);
        let group =
            match group_options(&schema, LockWait::Fail).open_with(backend.clone(), &journal) {
                Ok(group) => group,
                Err(Error::Locked { .. }) => {
                    incomplete.push(name);
                    continue;
                }
                Err(e) => return Err(e),
            };
        let rows = group.member_rows();
        let first = rows.first().copied().unwrap_or(0);
        if rows.iter().any(|&r| r != first) {
            return Err(Error::Corrupt {
                path: journal,
                offset: None,
                what: format!(
                    "its columns hold different rows ({rows:?}); a shard's columns are always \
                     committed together"
                ),
            });
        }
        let (complete, _) =
            fmt::parse_shard_cursor(group.cursor()).map_err(|e| Error::from_format(&journal, e))?;
        // Nothing is pending: closing only syncs what recovery found.
        group.close()?;
        if complete {
            entries.push(ManifestShard { name, rows: first });
        } else {
            incomplete.push(name);
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
