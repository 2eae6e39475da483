//! The one narrow interface through which every byte reaches a file.
//!
//! The appender, the recovery code and the reader never touch `std::fs`
//! directly: they go through a [`Backend`] (which opens, removes and syncs
//! directory entries) and its [`Storage`] handles (positional reads and
//! writes, `set_len`, syncs and the writer lock; there is no seek cursor).
//! [`FsBackend`] is the real file system; [`MemBackend`] keeps files in
//! memory and can inject I/O errors, and test backends built on the same
//! traits simulate power loss. A sharded dataset also creates and lists
//! directories, through [`Directories`].

mod fs;
mod mem;

pub use fs::{FsBackend, FsFile};
pub use mem::{MemBackend, MemFile, MemOp};

use std::io;
use std::path::{Path, PathBuf};

/// How [`Backend::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist yet and is created empty.
    CreateNew,
}

/// One open file, addressed by byte offset.
///
/// Implementations must not reorder or merge calls made on one handle in a
/// way that a real file would not; a sync makes every earlier write of this
/// handle durable.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is an I/O result, not a collection size"
)]
pub trait Storage: Send {
    /// The current length of the file in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; an `UnexpectedEof` error when the file ends first.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, growing the file when needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the written data and the length durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes data and all metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// Starts writing `len` bytes from `offset` to the device without
    /// waiting (a hint: a later sync finds less to write). Nothing is
    /// promised about what is durable until a sync returns; does nothing
    /// by default.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
    /// The device and inode numbers of the file, when the file system has
    /// them (`None` by default): a journal records them, so that a file
    /// replaced under its path is recognised.
    fn file_id(&self) -> io::Result<Option<(u64, u64)>> {
        Ok(None)
    }
    /// Takes the exclusive writer lock without waiting: `Ok(false)` when
    /// another handle holds it. The lock is released when the handle is
    /// dropped (or its process dies).
    fn try_lock(&self) -> io::Result<bool>;
    /// Whether another handle holds the exclusive writer lock, for readers:
    /// takes a shared lock without waiting and releases it at once (`flock`
    /// `LOCK_SH | LOCK_NB`, then `LOCK_UN`), so the lock is held for a few
    /// microseconds at most. Call it only on a handle that does not hold
    /// the writer lock itself (a `flock` on the same open file would turn
    /// that lock into a shared one, then release it).
    ///
    /// Writers that can meet such a probe wait for it instead of reporting
    /// [`crate::Error::Locked`] (see `docs/design.md`, "Writer state"). A
    /// backend without shared locks returns an error of kind
    /// `Unsupported` (the default).
    fn lock_is_held(&self) -> io::Result<bool> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this storage backend cannot tell whether a writer holds a lock",
        ))
    }
}

/// A file system: opens files and changes directory entries.
pub trait Backend {
    /// The handle type of an open file.
    type File: Storage;
    /// Opens `path` in `mode`; `NotFound` when it must exist and does not,
    /// `AlreadyExists` when it must not exist and does.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Removes the file at `path` (not durable until [`Backend::sync_dir`]).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Moves the file at `from` to `to`, atomically replacing any file at
    /// `to` (both in one directory; not durable until [`Backend::sync_dir`]).
    /// A file system with permissions gives the moved file those of the file
    /// it replaces.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of the directory `dir` durable (created, removed
    /// and renamed files).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` still names the open `file` (false when the path was
    /// removed or replaced since the file was opened). A writer checks this
    /// after taking a lock, since a lock on a file that no longer has the
    /// path protects nothing.
    fn is_same_file(&self, file: &Self::File, path: &Path) -> io::Result<bool>;
    /// The target of the symbolic link at `path`, as the link stores it
    /// (relative targets are relative to the link's directory); `None` when
    /// `path` is not a symbolic link or does not exist. Writers, recovery
    /// and readers follow a link in a path's last component, so that the
    /// sidecar files sit beside the file itself. A backend without symbolic
    /// links returns `None` (the default).
    fn read_link(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        let _ = path;
        Ok(None)
    }
    /// Whether this process may create and remove entries in the directory
    /// `dir`, asked without changing anything. Recovery asks before it
    /// changes a file whose journal it must remove later. `true` by default
    /// (a backend without permissions).
    fn can_change_dir(&self, dir: &Path) -> io::Result<bool> {
        let _ = dir;
        Ok(true)
    }
}

/// A file system whose directories a sharded dataset can create and list.
///
/// Backends that keep files by full path without directory entries of their
/// own (the in-memory ones) treat a directory as existing while a file lies
/// below it: creating one changes nothing, and [`subdirectories`] lists them.
pub trait Directories: Backend {
    /// Creates the directory `path` and any missing parents; `Ok` when it
    /// exists already (not durable until [`Backend::sync_dir`] of its parent).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the directories directly inside `dir` (names that are
    /// not UTF-8 are left out); `NotFound` when `dir` does not exist.
    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The directories directly inside `dir` implied by the file `paths` of a
/// backend without directory entries: the first component below `dir` of
/// every path at least two components below it, each once, sorted.
pub fn subdirectories<'a>(paths: impl IntoIterator<Item = &'a Path>, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = paths
        .into_iter()
        .filter_map(|p| {
            let mut rest = p.strip_prefix(dir).ok()?.components();
            let first = rest.next()?;
            rest.next()?;
            first.as_os_str().to_str().map(str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
