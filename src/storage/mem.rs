//! Files kept in memory, with injectable I/O errors.
//!
//! Every write is "durable" at once (there is no page cache to lose); the
//! backend's use is to run the behaviour tests without a disk and to make the
//! n-th operation of a kind fail, or a write fail for lack of space.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Backend, Directories, OpenMode, Storage};

/// The kinds of operation a [`MemBackend`] counts and can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemOp {
    /// [`Storage::read_at`].
    Read,
    /// [`Storage::write_at`].
    Write,
    /// [`Storage::set_len`].
    SetLen,
    /// [`Storage::sync_data`] and [`Storage::sync_all`].
    Sync,
    /// [`Storage::start_writeback`] (a hint with nothing to do here: counted,
    /// and made to fail, so that tests see who gives it and that its
    /// failure is harmless).
    Writeback,
    /// [`Backend::remove`].
    Remove,
    /// [`Backend::sync_dir`].
    SyncDir,
    /// [`Backend::open`] with [`OpenMode::CreateNew`].
    Create,
    /// [`Backend::rename`].
    Rename,
}

#[derive(Debug)]
struct FileData {
    bytes: Vec<u8>,
    locked_by: Option<u64>,
    /// Stands for the inode number: new for every created file, kept by
    /// renames and in-place rewrites.
    ino: u64,
}

impl FileData {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            locked_by: None,
            ino: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, Arc<Mutex<FileData>>>,
    counts: HashMap<MemOp, u64>,
    fail_at: Option<(MemOp, u64)>,
    size_limit: Option<u64>,
}

/// An in-memory file system; clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemBackend {
    state: Arc<Mutex<State>>,
}

/// An open file of [`MemBackend`].
#[derive(Debug)]
pub struct MemFile {
    id: u64,
    data: Arc<Mutex<FileData>>,
    state: Arc<Mutex<State>>,
    writable: bool,
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
static NEXT_INODE: AtomicU64 = AtomicU64::new(1);

/// The device number [`MemBackend`] files report.
const MEM_DEVICE: u64 = 0x6d65_6d00;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Counts one operation of `op`; an error when it is the one to fail.
    fn count(&mut self, op: MemOp) -> io::Result<()> {
        let n = self.counts.entry(op).or_insert(0);
        *n += 1;
        if self.fail_at == Some((op, *n)) {
            return Err(io::Error::other(format!("injected failure of {op:?} #{n}")));
        }
        Ok(())
    }
}

impl MemBackend {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `nth` (1-based, counted from now on) operation of kind `op` fail.
    pub fn fail_at(&self, op: MemOp, nth: u64) {
        let mut state = lock(&self.state);
        let done = state.counts.get(&op).copied().unwrap_or(0);
        state.fail_at = Some((op, done + nth));
    }

    /// Stops injecting failures.
    pub fn clear_failure(&self) {
        lock(&self.state).fail_at = None;
    }

    /// Makes writes and `set_len` fail with `StorageFull` once a file would
    /// grow past `limit` bytes (`None`: no limit).
    pub fn set_size_limit(&self, limit: Option<u64>) {
        lock(&self.state).size_limit = limit;
    }

    /// How many operations of kind `op` were done so far.
    pub fn count(&self, op: MemOp) -> u64 {
        lock(&self.state).counts.get(&op).copied().unwrap_or(0)
    }

    /// A copy of the bytes of the file at `path`.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state.files.get(path).map(|f| lock(f).bytes.clone())
    }

    /// Creates or replaces the file at `path` with `bytes`: a new file (a
    /// new inode), as when another file is renamed over the path; handles
    /// open on the old file keep it.
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let mut state = lock(&self.state);
        state.files.insert(
            path.to_path_buf(),
            Arc::new(Mutex::new(FileData::new(bytes.to_vec()))),
        );
    }

    /// Rewrites the file at `path` in place with `bytes` (truncated and
    /// written again, the same inode), as `np.save` does to an existing
    /// file; creates it when missing.
    pub fn overwrite(&self, path: &Path, bytes: &[u8]) {
        let data = lock(&self.state).files.get(path).cloned();
        match data {
            Some(data) => bytes.clone_into(&mut lock(&data).bytes),
            None => self.put(path, bytes),
        }
    }
}

impl Backend for MemBackend {
    type File = MemFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<MemFile> {
        let mut state = lock(&self.state);
        let data = match mode {
            OpenMode::Read | OpenMode::ReadWrite => state
                .files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?,
            OpenMode::CreateNew => {
                if state.files.contains_key(path) {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                state.count(MemOp::Create)?;
                let data = Arc::new(Mutex::new(FileData::new(Vec::new())));
                state.files.insert(path.to_path_buf(), Arc::clone(&data));
                data
            }
        };
        Ok(MemFile {
            id: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
            data,
            state: Arc::clone(&self.state),
            writable: mode != OpenMode::Read,
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(lock(&self.state).files.contains_key(path))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.count(MemOp::Remove)?;
        state
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        if !state.files.contains_key(from) {
            return Err(io::ErrorKind::NotFound.into());
        }
        state.count(MemOp::Rename)?;
        if let Some(data) = state.files.remove(from) {
            state.files.insert(to.to_path_buf(), data);
        }
        Ok(())
    }

    fn is_same_file(&self, file: &MemFile, path: &Path) -> io::Result<bool> {
        Ok(lock(&self.state)
            .files
            .get(path)
            .is_some_and(|data| Arc::ptr_eq(data, &file.data)))
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        lock(&self.state).count(MemOp::SyncDir)
    }
}

impl Directories for MemBackend {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    /// A directory exists while a file lies below it.
    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = lock(&self.state);
        let names = super::subdirectories(state.files.keys().map(PathBuf::as_path), dir);
        if names.is_empty() && !state.files.keys().any(|p| p.starts_with(dir)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(names)
    }
}

impl MemFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened read-only",
            ))
        }
    }

    fn check_size(&self, new_len: u64) -> io::Result<()> {
        match lock(&self.state).size_limit {
            Some(limit) if new_len > limit => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            )),
            _ => Ok(()),
        }
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

impl Storage for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.data).bytes.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        lock(&self.state).count(MemOp::Read)?;
        let data = lock(&self.data);
        let start = to_usize(offset)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| data.bytes.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        lock(&self.state).count(MemOp::Write)?;
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
        let mut data = lock(&self.data);
        if end > data.bytes.len() as u64 {
            self.check_size(end)?;
            data.bytes.resize(to_usize(end)?, 0);
        }
        let (start, end) = (to_usize(offset)?, to_usize(end)?);
        if let Some(dst) = data.bytes.get_mut(start..end) {
            dst.copy_from_slice(buf);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        lock(&self.state).count(MemOp::SetLen)?;
        self.check_size(len)?;
        lock(&self.data).bytes.resize(to_usize(len)?, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        lock(&self.state).count(MemOp::Sync)
    }

    fn sync_all(&self) -> io::Result<()> {
        lock(&self.state).count(MemOp::Sync)
    }

    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        lock(&self.state).count(MemOp::Writeback)
    }

    fn lock_is_held(&self) -> io::Result<bool> {
        Ok(self.held_by_other())
    }

    fn file_id(&self) -> io::Result<Option<(u64, u64)>> {
        Ok(Some((MEM_DEVICE, lock(&self.data).ino)))
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut data = lock(&self.data);
        match data.locked_by {
            Some(owner) if owner != self.id => Ok(false),
            _ => {
                data.locked_by = Some(self.id);
                Ok(true)
            }
        }
    }
}

impl MemFile {
    /// Whether another handle holds this file's writer lock (the probe of
    /// [`Storage::lock_is_held`], which the memory backend answers at once).
    fn held_by_other(&self) -> bool {
        lock(&self.data)
            .locked_by
            .is_some_and(|owner| owner != self.id)
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let mut data = lock(&self.data);
        if data.locked_by == Some(self.id) {
            data.locked_by = None;
        }
    }
}
