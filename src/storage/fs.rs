//! The real file system.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use super::{Backend, Directories, OpenMode, Storage};

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsBackend;

/// An open file of [`FsBackend`].
#[derive(Debug)]
pub struct FsFile {
    file: File,
}

impl FsFile {
    /// The underlying `std::fs::File`.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Backend for FsBackend {
    type File = FsFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FsFile> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
        };
        Ok(FsFile {
            file: options.open(path)?,
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Also gives `from` the permissions of the file it replaces, and
    /// refuses to replace a symbolic link (which would leave the file it
    /// points to unchanged).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match std::fs::symlink_metadata(to) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link; open the file it points to instead",
                        to.display()
                    ),
                ));
            }
            Ok(meta) => std::fs::set_permissions(from, meta.permissions())?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::rename(from, to)
    }

    fn is_same_file(&self, file: &FsFile, path: &Path) -> io::Result<bool> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let open = file.file.metadata()?;
            match std::fs::metadata(path) {
                Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            // Without inode numbers in std, trust the path: files that are
            // open cannot be removed or replaced on Windows by default.
            let _ = (file, path);
            Ok(true)
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::read_link(path).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `faccessat(dir, W_OK | X_OK, AT_EACCESS)`: the kernel's check for
    /// the effective user, with ACLs and read-only mounts.
    fn can_change_dir(&self, dir: &Path) -> io::Result<bool> {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            // SAFETY: `c` is a NUL-terminated path that outlives the call;
            // faccessat only reads it.
            let rc = unsafe {
                libc::faccessat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    libc::W_OK | libc::X_OK,
                    libc::AT_EACCESS,
                )
            };
            if rc == 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EACCES | libc::EROFS | libc::EPERM) => Ok(false),
                _ => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(true)
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directory entries cannot be synced through std off Unix; the
            // file system's own journal orders them.
            let _ = dir;
            Ok(())
        }
    }
}

impl Directories for FsBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    /// Entries that are directories or symbolic links to directories.
    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let is_dir = match entry.file_type()? {
                t if t.is_dir() => true,
                t if t.is_symlink() => std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
                _ => false,
            };
            if is_dir && let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

impl Storage for FsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_write(
                    &self.file,
                    &buf[done..],
                    offset + done as u64,
                )?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: a system call on the descriptor this handle owns, which
        // is open for the whole call; it reads no memory of ours.
        let rc = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                offset,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn file_id(&self) -> io::Result<Option<(u64, u64)>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = self.file.metadata()?;
            Ok(Some((meta.dev(), meta.ino())))
        }
        #[cfg(not(unix))]
        {
            Ok(None)
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    fn lock_is_held(&self) -> io::Result<bool> {
        match self.file.try_lock_shared() {
            Ok(()) => self.file.unlock().map(|()| false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }
}
