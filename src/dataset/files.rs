//! The dataset's own files: the schema or manifest read whole, and the root
//! lock. Replacing them atomically is [`crate::files::replace_atomically`].

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::files::{lock_file, read_small};
use crate::format::FormatError;
use crate::format::dataset::LOCK_FILE;
use crate::options::LockWait;
use crate::storage::Backend;

/// Largest schema or manifest read (a manifest of a million shards is
/// about 50 MB).
const MAX_FILE_LEN: usize = 1 << 30;

/// How long schema creation and finalize wait for each other.
const ROOT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// The whole schema or manifest at `path`, or `None` when there is none;
/// `Corrupt` when it is longer than any of them can be.
pub(crate) fn read_file<B: Backend>(backend: &B, path: &Path) -> Result<Option<Vec<u8>>> {
    let bytes = read_small(backend, path, MAX_FILE_LEN + 1)?;
    if bytes.as_ref().is_some_and(|b| b.len() > MAX_FILE_LEN) {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: format!("more than {MAX_FILE_LEN} bytes, more than a dataset file can be"),
        });
    }
    Ok(bytes)
}

/// The schema or manifest at `path` decoded by `decode`, or `None` when
/// there is none.
pub(crate) fn read_decoded<B: Backend, T>(
    backend: &B,
    path: &Path,
    decode: fn(&[u8]) -> Result<T, FormatError>,
) -> Result<Option<T>> {
    read_file(backend, path)?
        .map(|bytes| decode(&bytes).map_err(|e| Error::from_format(path, e)))
        .transpose()
}

/// Takes the dataset's root lock (`.dataset.lock`, created when missing and
/// never removed), waiting for its holder. Held until the returned handle is
/// dropped. Whoever holds it is the only writer of the schema, the manifest
/// and their temporary files.
pub(crate) fn lock_root<B: Backend>(backend: &B, root: &Path) -> Result<B::File> {
    lock_file(
        backend,
        &root.join(LOCK_FILE),
        LockWait::Wait(ROOT_LOCK_WAIT),
    )
}
