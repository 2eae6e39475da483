//! The dataset's own files: reading a small file whole, the root lock, and
//! replacing a file atomically.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::files::{check_named, lock, parent_dir};
use crate::format::dataset::LOCK_FILE;
use crate::options::LockWait;
use crate::storage::{Backend, OpenMode, Storage};

/// Largest schema or manifest read (a manifest of a million shards is
/// about 50 MB).
pub(crate) const MAX_FILE_LEN: u64 = 1 << 30;

/// How long schema creation and finalize wait for each other.
const ROOT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// The whole file at `path`, or `None` when there is none.
pub(crate) fn read_file<B: Backend>(backend: &B, path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match backend.open(path, OpenMode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "opening", e)),
    };
    let len = file
        .len()
        .map_err(|e| Error::io(path, "reading the length", e))?;
    if len > MAX_FILE_LEN {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: format!("{len} bytes, more than a dataset file can be ({MAX_FILE_LEN})"),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_at(&mut bytes, 0)
        .map_err(|e| Error::io(path, "reading", e))?;
    Ok(Some(bytes))
}

/// Takes the dataset's root lock (`.dataset.lock`, created when missing and
/// never removed), waiting for its holder. Held until the returned handle is
/// dropped. Whoever holds it is the only writer of the schema, the manifest
/// and their temporary files.
pub(crate) fn lock_root<B: Backend>(backend: &B, root: &Path) -> Result<B::File> {
    let path = root.join(LOCK_FILE);
    let file = match backend.open(&path, OpenMode::ReadWrite) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match backend.open(&path, OpenMode::CreateNew) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => backend
                    .open(&path, OpenMode::ReadWrite)
                    .map_err(|e| Error::io(&path, "opening the dataset lock", e))?,
                Err(e) => return Err(Error::io(&path, "creating the dataset lock", e)),
            }
        }
        Err(e) => return Err(Error::io(&path, "opening the dataset lock", e)),
    };
    lock(&file, &path, LockWait::Wait(ROOT_LOCK_WAIT))?;
    check_named(backend, &file, &path)?;
    Ok(file)
}

/// The temporary file that [`replace_atomically`] renames over `path`:
/// `.<name>.tmp` beside it.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    parent_dir(path).join(format!(".{name}.tmp"))
}

/// Replaces the file at `path` with `bytes` so that a crash at any point
/// leaves the old file or the new one, whole:
///
/// ```text
/// 1. remove a leftover temporary file (a replace that died before its rename)
/// 2. create the temporary file, write `bytes`, fdatasync
/// 3. rename it over `path`
/// 4. fsync the directory (the rename is durable when this returns)
/// ```
///
/// The caller holds the lock that makes it the only writer of the
/// temporary file.
pub(crate) fn replace_atomically<B: Backend>(backend: &B, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let temp = temp_path(path);
    match backend.remove(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&temp, "removing a leftover temporary file", e)),
    }
    let file = backend
        .open(&temp, OpenMode::CreateNew)
        .map_err(|e| Error::io(&temp, "creating a temporary file", e))?;
    file.write_at(bytes, 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(&temp, "writing a temporary file", e))?;
    drop(file);
    backend
        .rename(&temp, path)
        .map_err(|e| Error::io(path, "renaming the temporary file over it", e))?;
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io(dir, "syncing the directory", e))
}
