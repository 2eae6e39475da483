//! File handling shared by every writer, recovery and every reader.
//!
//! The names of the sidecar files, the writer lock and the check that a
//! locked file still has its path, locked creation, durable creation and
//! removal (each followed by the one parent-directory sync), and the reads
//! of small files, of a `.npy`'s header and of a checksum over a byte range.
//! Everything goes through the storage [`Backend`]; nothing here knows the
//! commit protocol.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::FormatError;
use crate::format::header::{self, Header};
use crate::format::journal;
use crate::options::LockWait;
use crate::storage::{Backend, OpenMode, Storage};

/// Largest `.npy` header this library reads (a `u32` length field could claim
/// 4 GiB; numpy itself refuses headers over 10,000 bytes by default).
pub(crate) const MAX_HEADER_LEN: u64 = journal::MAX_SNAPSHOT_LEN;

/// Bytes read at a time when checking a commit's data checksum.
const CRC_CHUNK: usize = 1 << 20;

/// `path` with `suffix` appended to its last component.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(suffix);
    PathBuf::from(os)
}

/// The journal path of a `.npy` path: `<file>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    with_suffix(path, ".journal")
}

/// The temporary file a header rewrite writes next to `path`:
/// `<file>.rewrite`. Only the holder of the writer lock on `path` writes it,
/// and it is renamed over `path` once complete and synced; one found by the
/// lock holder is a leftover of a rewrite that died before its rename.
pub fn rewrite_path(path: &Path) -> PathBuf {
    with_suffix(path, ".rewrite")
}

/// The cursor sidecar of a `.npy` path: `<file>.cursor`.
pub fn cursor_path(path: &Path) -> PathBuf {
    with_suffix(path, ".cursor")
}

/// The marker beside a group member: `<member>.group-member`.
pub fn member_marker_path(member: &Path) -> PathBuf {
    with_suffix(member, ".group-member")
}

/// Symbolic links followed in a row before giving up (the kernel's own
/// limit on Linux).
const MAX_LINKS: usize = 40;

/// The path of the file `path` names, with a symbolic link in its last
/// component followed (again while the target is a link): the path writers,
/// recovery and readers use, so that the journal and every other sidecar sit
/// beside the file itself, whichever path reached it. A dangling link
/// resolves to its target, where a new file is created. Links in the
/// directories above are left to the kernel: they lead to the same
/// directory, and so to the same sidecars.
pub(crate) fn resolve<B: Backend>(backend: &B, path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match backend
            .read_link(&current)
            .map_err(|e| Error::io(&current, "reading the symbolic link", e))?
        {
            None => return Ok(current),
            Some(target) if target.is_absolute() => current = target,
            Some(target) => current = parent_dir(&current).join(target),
        }
    }
    Err(Error::InvalidArgument {
        path: Some(path.to_path_buf()),
        what: format!(
            "more than {MAX_LINKS} symbolic links in a row (a loop of links?); \
             give the path of the file itself"
        ),
    })
}

/// Whether an error opening or inspecting a sidecar file means there is
/// none: it does not exist, or its name is longer than the file system
/// allows (such a file cannot exist).
pub(crate) fn sidecar_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::InvalidFilename
    )
}

/// `Unsupported` when the file system cannot hold the name of the journal
/// beside `path` (`<name>.journal`): a file with such a name can be read
/// but not appended to.
pub(crate) fn check_sidecar_names<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    let journal = journal_path(path);
    match backend.exists(&journal) {
        Err(e) if e.kind() == io::ErrorKind::InvalidFilename => {
            let name = path.file_name().map_or(0, std::ffi::OsStr::len);
            Err(Error::Unsupported {
                path: Some(path.to_path_buf()),
                what: format!(
                    "the file's name ({name} bytes) is too long for its sidecar files: its \
                     journal ({name} + 8 bytes, \"<name>.journal\") is longer than the file \
                     system allows in a name (255 bytes on most); the file can be read but \
                     not appended to. Rename it (to at most 242 bytes, which leaves room \
                     for every sidecar)"
                ),
            })
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Error::io(&journal, "checking whether it exists", e)),
    }
}

/// The directory holding `path` (for directory syncs).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the entries of the directory holding `path` durable.
pub(crate) fn sync_parent<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io(dir, "syncing the directory", e))
}

/// `Io` of kind `PermissionDenied` (with nothing changed) when this process
/// may not create and remove entries in the directory of `path`: asked
/// before recovery changes a file whose journal it must remove from that
/// directory afterwards.
pub(crate) fn check_dir_writable<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    let op = "checking that the directory is writable (recovery changes the file only \
              where its journal can be removed afterwards; nothing was changed)";
    if backend
        .can_change_dir(dir)
        .map_err(|e| Error::io(dir, op, e))?
    {
        Ok(())
    } else {
        Err(Error::io(
            dir,
            op,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this user may not create or remove files in it",
            ),
        ))
    }
}

/// Removes the file at `path` and syncs its directory; `Ok(false)` (and no
/// sync) when there is no such file. `op` names the removal in errors.
pub(crate) fn remove_durably<B: Backend>(
    backend: &B,
    path: &Path,
    op: &'static str,
) -> Result<bool> {
    match backend.remove(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path, op, e)),
    }
    sync_parent(backend, path)?;
    Ok(true)
}

/// Creates the file at `path` (which must not exist) holding `bytes`, synced,
/// with its directory entry synced. `op` names the creation in errors.
pub(crate) fn create_durably<B: Backend>(
    backend: &B,
    path: &Path,
    bytes: &[u8],
    op: &'static str,
) -> Result<()> {
    let file = backend
        .open(path, OpenMode::CreateNew)
        .map_err(|e| Error::io(path, op, e))?;
    file.write_at(bytes, 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(path, op, e))?;
    sync_parent(backend, path)
}

/// How long a writer waits for a lock that only a reader's probe can hold
/// ([`Storage::lock_is_held`] holds a shared lock for microseconds; this
/// bound covers a probing reader that is descheduled in between).
pub(crate) const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Takes the writer lock on `file`, waiting as `wait` allows: the lock of a
/// file only writers lock (a `.npy`, a group journal, the dataset lock).
pub(crate) fn lock<F: Storage>(file: &F, path: &Path, wait: LockWait) -> Result<()> {
    lock_as(file, path, wait, &mut || false)
}

/// Takes the writer lock on `file`, which readers probe (a journal, a group
/// member), at a moment when no other writer can hold it: the caller holds
/// the lock that excludes other writers, or created the file itself. A
/// held lock is then a reader's probe, waited for up to [`PROBE_WAIT`] (or
/// longer as `wait` allows) instead of being reported `Locked`.
pub(crate) fn lock_probed<F: Storage>(file: &F, path: &Path, wait: LockWait) -> Result<()> {
    lock_as(file, path, wait, &mut || true)
}

/// Takes the writer lock on `file`; after each failed attempt, `probed()`
/// says whether the holder may be a reader probing the lock (then the wait
/// lasts at least [`PROBE_WAIT`], polled every few microseconds at first)
/// or must be another writer (then `wait` decides). A holder that the
/// storage shows to hold the lock exclusively ([`Storage::lock_is_held`]:
/// a reader's probe holds it shared) is another writer in any case.
pub(crate) fn lock_as<F: Storage>(
    file: &F,
    path: &Path,
    wait: LockWait,
    probed: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    let waited = match wait {
        LockWait::Fail => Duration::ZERO,
        LockWait::Wait(d) => d,
    };
    let mut pause = Duration::from_micros(20);
    loop {
        if file.try_lock().map_err(|e| Error::io(path, "locking", e))? {
            return Ok(());
        }
        // Where a reader may be probing, `lock_is_held` (which takes the lock
        // shared for a moment) tells: it fails only while a writer holds it
        // exclusively. (A backend that cannot tell leaves the decision to
        // `probed`.) Locks no reader probes are never taken shared here, so
        // that racing writers meet only each other.
        let probe = probed() && !matches!(file.lock_is_held(), Ok(true));
        let (limit, longest) = if probe {
            (waited.max(PROBE_WAIT), Duration::from_millis(1))
        } else {
            (waited, Duration::from_millis(50))
        };
        let elapsed = start.elapsed();
        if elapsed >= limit {
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(pause.min(limit.saturating_sub(elapsed)));
        pause = (pause * 2).min(longest);
    }
}

/// After taking a lock: `Locked` when `path` no longer names `file`, because
/// another writer removed or replaced it meanwhile (a lock on an unlinked
/// file protects nothing).
pub(crate) fn check_named<B: Backend>(backend: &B, file: &B::File, path: &Path) -> Result<()> {
    if backend
        .is_same_file(file, path)
        .map_err(|e| Error::io(path, "checking the locked file", e))?
    {
        Ok(())
    } else {
        Err(Error::Locked {
            path: path.to_path_buf(),
        })
    }
}

/// For a writer, after a commit and before a close: `Replaced` when `path`
/// no longer names `file`, which the writer holds open under it (`role`
/// names it in the message: "the file", "the journal"); `kept` says what is
/// kept and what to do. A writer stops at the first commit after its file
/// was removed or replaced, instead of acknowledging rows no path leads to,
/// and never removes a file another program put in its journal's place.
pub(crate) fn check_held<B: Backend>(
    backend: &B,
    file: &B::File,
    path: &Path,
    role: &str,
    kept: impl FnOnce() -> String,
) -> Result<()> {
    let op = "checking that the path still names the open file";
    if backend
        .is_same_file(file, path)
        .map_err(|e| Error::io(path, op, e))?
    {
        return Ok(());
    }
    let what = if backend.exists(path).map_err(|e| Error::io(path, op, e))? {
        format!("another file was moved or saved over {role}")
    } else {
        format!("{role} was removed")
    };
    Err(Error::Replaced {
        path: path.to_path_buf(),
        what,
        kept: kept(),
    })
}

/// Opens the existing file at `path` for writing and takes its writer lock
/// (waiting as `wait` allows), checking that the path still names it;
/// `None` when there is no such file. `op` names the opening in errors.
pub(crate) fn open_locked<B: Backend>(
    backend: &B,
    path: &Path,
    wait: LockWait,
    op: &'static str,
) -> Result<Option<B::File>> {
    open_locked_as(backend, path, wait, op, &mut || false)
}

/// [`open_locked`] for a file readers probe (see [`lock_probed`]).
pub(crate) fn open_locked_probed<B: Backend>(
    backend: &B,
    path: &Path,
    wait: LockWait,
    op: &'static str,
) -> Result<Option<B::File>> {
    open_locked_as(backend, path, wait, op, &mut || true)
}

/// [`open_locked`] with the lock taken by [`lock_as`].
pub(crate) fn open_locked_as<B: Backend>(
    backend: &B,
    path: &Path,
    wait: LockWait,
    op: &'static str,
    probed: &mut dyn FnMut() -> bool,
) -> Result<Option<B::File>> {
    match backend.open(path, OpenMode::ReadWrite) {
        Ok(file) => {
            lock_as(&file, path, wait, probed)?;
            check_named(backend, &file, path)?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, op, e)),
    }
}

/// Creates the file at `path` (which must not exist), locks it (waiting
/// for a reader's probe, see [`lock_probed`]) and checks that the path
/// still names it. `Locked` when another writer got there first.
pub(crate) fn create_locked<B: Backend>(
    backend: &B,
    path: &Path,
    op: &'static str,
) -> Result<B::File> {
    let file = backend.open(path, OpenMode::CreateNew).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::Locked {
                path: path.to_path_buf(),
            }
        } else {
            Error::io(path, op, e)
        }
    })?;
    // Only this writer created the file: a held lock is a reader's probe
    // (or a writer that found the new file and locked it first, which
    // `check_named` or the wait's end reports as `Locked`).
    lock_probed(&file, path, LockWait::Fail)?;
    check_named(backend, &file, path)?;
    Ok(file)
}

/// The first `max` bytes of the file at `path` (all of it when shorter),
/// `None` when it does not exist. For sidecars whose whole content is small:
/// anything longer than `max` is not one of them.
pub(crate) fn read_small<B: Backend>(
    backend: &B,
    path: &Path,
    max: usize,
) -> Result<Option<Vec<u8>>> {
    let file = match backend.open(path, OpenMode::Read) {
        Ok(file) => file,
        Err(e) if sidecar_absent(&e) => return Ok(None),
        Err(e) => return Err(Error::io(path, "opening", e)),
    };
    let len = file
        .len()
        .map_err(|e| Error::io(path, "reading the length", e))?;
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(max);
    let mut bytes = vec![0u8; len];
    file.read_at(&mut bytes, 0)
        .map_err(|e| Error::io(path, "reading", e))?;
    Ok(Some(bytes))
}

/// `len` bytes of `file` from `offset`.
pub(crate) fn read_vec<F: Storage>(file: &F, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; len];
    file.read_at(&mut buf, offset)?;
    Ok(buf)
}

/// The header of a `.npy` and its raw bytes (as many as the file has, up to
/// the header length it claims).
pub(crate) struct HeaderRead {
    pub header: Result<Header, FormatError>,
    pub raw: Vec<u8>,
}

/// Reads and parses the header of a `.npy` of length `len`.
pub(crate) fn read_header<F: Storage>(file: &F, len: u64) -> io::Result<HeaderRead> {
    let prefix = read_vec(file, 0, len.min(12))?;
    let header_len = match header::parse_prefix(&prefix) {
        Ok((_, header_len)) => header_len,
        Err(e) => {
            return Ok(HeaderRead {
                header: Err(e),
                raw: prefix,
            });
        }
    };
    if header_len > MAX_HEADER_LEN {
        return Ok(HeaderRead {
            header: Err(FormatError::unsupported(format!(
                "header claims {header_len} bytes, over the {MAX_HEADER_LEN}-byte limit"
            ))),
            raw: prefix,
        });
    }
    if header_len > len {
        return Ok(HeaderRead {
            header: Err(FormatError::malformed(
                Some(8),
                format!("header claims {header_len} bytes but the file has only {len}"),
            )),
            raw: read_vec(file, 0, len)?,
        });
    }
    let raw = read_vec(file, 0, header_len)?;
    Ok(HeaderRead {
        header: header::parse(&raw),
        raw,
    })
}

/// CRC32 of the file bytes `start..end`.
pub(crate) fn crc_of<F: Storage>(file: &F, start: u64, end: u64) -> io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf =
        vec![0u8; CRC_CHUNK.min(usize::try_from(end.saturating_sub(start)).unwrap_or(CRC_CHUNK))];
    let mut at = start;
    while at < end {
        let n = (end - at).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        file.read_at(chunk, at)?;
        hasher.update(chunk);
        at += n as u64;
    }
    Ok(hasher.finalize())
}

/// Rewrites a header in place from `old` (the bytes the file holds, as far
/// as they are known) to `new` (the same header length): the writes of
/// [`header::update_writes`], one after another, so that a numpy reader
/// copying the header meanwhile, or a power loss among them, finds a header
/// of committed rows or one that does not parse ("Readers during a commit"
/// in `docs/design.md`). Magic, version and length are written only when
/// they differ: a torn write over them would leave a header no recovery can
/// match to its journal (unless this writer created the file). The one
/// place a header is rewritten in place, for commits and for recovery.
pub(crate) fn write_header<F: Storage>(
    file: &F,
    path: &Path,
    old: &[u8],
    new: &[u8],
) -> Result<()> {
    let failed = |e| Error::io(path, "rewriting the header", e);
    if old.len() == new.len() {
        for w in header::update_writes(old, new) {
            file.write_at(&w.bytes, w.offset as u64).map_err(failed)?;
        }
        return Ok(());
    }
    let skip = header::parse_prefix(new).map_or(0, |(version, _)| version.prefix_len());
    let from = if old.get(..skip) == new.get(..skip) {
        skip
    } else {
        0
    };
    file.write_at(new.get(from..).unwrap_or_default(), from as u64)
        .map_err(failed)
}

/// A random identifier for a new journal (repeated in its records, so that
/// a record left by an earlier journal is never read as one of its own).
pub(crate) fn new_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
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
    let temp = temp_path(path);
    remove_durably(backend, &temp, "removing a leftover temporary file")?;
    create_durably(backend, &temp, bytes, "writing a temporary file")?;
    backend
        .rename(&temp, path)
        .map_err(|e| Error::io(path, "renaming the temporary file over it", e))?;
    sync_parent(backend, path)
}

/// Opens the lock file at `path`, creating it (empty, never removed) when
/// there is none, and takes its lock, waiting as `wait` allows. Held until
/// the returned handle is dropped.
pub(crate) fn lock_file<B: Backend>(backend: &B, path: &Path, wait: LockWait) -> Result<B::File> {
    let op = "opening a lock file";
    if let Some(file) = open_locked(backend, path, wait, op)? {
        return Ok(file);
    }
    match backend.open(path, OpenMode::CreateNew) {
        Ok(file) => {
            lock(&file, path, wait)?;
            check_named(backend, &file, path)?;
            Ok(file)
        }
        // Another process created it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open_locked(backend, path, wait, op)?
            .ok_or_else(|| Error::io(path, op, io::ErrorKind::NotFound.into())),
        Err(e) => Err(Error::io(path, "creating a lock file", e)),
    }
}
