//! The one error type of the library.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong, as variants a caller can act on.
///
/// Each message says what happened, where (path, offset, slot) and what to do.
/// No file is changed by an operation that returns an error because the file
/// could not be understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another writer holds the lock on the file.
    #[error(
        "{path}: another writer has this file open (its lock is held); \
         wait for it to finish, or stop it (a killed writer's lock is released by the kernel)"
    )]
    Locked {
        /// The `.npy` file.
        path: PathBuf,
    },

    /// The file or its journal is not valid.
    #[error("{path}: corrupt: {what}{}", offset.map(|o| format!(" (at byte {o})")).unwrap_or_default())]
    Corrupt {
        /// The file that could not be understood.
        path: PathBuf,
        /// Byte offset of the problem in that file, when known.
        offset: Option<u64>,
        /// What is wrong.
        what: String,
    },

    /// A checksum did not match: the bytes on disk changed after they were written.
    #[error(
        "{path}: checksum mismatch in {what} at byte {offset}: expected {expected:#010x}, found {found:#010x}; \
         the disk returned other bytes than were written and synced, or another program \
         rewrote them; nothing was changed \
         (restore the file from a copy, or reopen with accept_loss to recover to the commit \
         before)"
    )]
    ChecksumMismatch {
        /// The file holding the checksum.
        path: PathBuf,
        /// What the checksum covers.
        what: String,
        /// Byte offset of the checked region.
        offset: u64,
        /// The stored checksum.
        expected: u32,
        /// The checksum of the bytes found.
        found: u32,
    },

    /// The journal says rows were committed that the file no longer holds.
    #[error(
        "{path}: committed data is missing: {committed_rows} committed rows need {needed_len} bytes, \
         the file has {actual_len}; nothing was changed (restore the file from a copy, or \
         reopen with accept_loss to recover to the last commit the file still holds)"
    )]
    CommittedDataMissing {
        /// The `.npy` file.
        path: PathBuf,
        /// Rows the journal (or header) says are committed.
        committed_rows: u64,
        /// File length those rows need.
        needed_len: u64,
        /// Actual file length.
        actual_len: u64,
    },

    /// A file without a journal is shorter than the data its header
    /// describes: the header's rows are not all there.
    #[error(
        "{path}: rows are missing: the header describes {header_rows} rows in {needed_len} bytes, \
         the file has {actual_len}, which hold {whole_rows} whole rows (it was cut short: an \
         interrupted copy, or a writer of another tool that wrote the header before the data); \
         nothing was changed. Choose: keep the whole rows \
         (ShortFilePolicy::KeepWholeRows), keep them and complete a partial last row with zeros \
         (ShortFilePolicy::ZeroFillLastRow), or restore the file from a copy"
    )]
    FileTooShort {
        /// The `.npy` file.
        path: PathBuf,
        /// Rows the header describes.
        header_rows: u64,
        /// File length those rows need.
        needed_len: u64,
        /// Actual file length.
        actual_len: u64,
        /// Whole rows the file holds.
        whole_rows: u64,
    },

    /// The file and its journal disagree in a way this library's own writes
    /// cannot produce: another program rewrote or replaced the file after its
    /// writer died, or the journal belongs to another file.
    #[error(
        "{path}: {what}. Nothing was changed. If the file is right (another program wrote \
         it), move {journal} away and reopen; if the journal is right, restore the file; to \
         recover to the journal's last commit anyway, cutting what it does not commit, reopen \
         with accept_loss (npy-append recover --accept-loss)"
    )]
    JournalDisagrees {
        /// The `.npy` file.
        path: PathBuf,
        /// Its journal.
        journal: PathBuf,
        /// How they disagree: the file's state and the journal's.
        what: String,
    },

    /// A `<file>.journal` this library did not write (nor a journal creation
    /// of its own cut short): it is left where it is, nothing changed.
    #[error(
        "{path}: this {len}-byte file is not a journal npy-append wrote (nor one it was creating \
         when it died), so it was left alone and {file} was not opened; nothing was changed. \
         Move it away if it is not needed, or reopen with move_aside_foreign_journal \
         (npy-append recover --move-aside-journal), which renames it to {aside} and goes on"
    )]
    ForeignJournal {
        /// The journal path.
        path: PathBuf,
        /// The `.npy` it sits beside.
        file: PathBuf,
        /// Where moving it aside would rename it.
        aside: PathBuf,
        /// Its length in bytes.
        len: u64,
    },

    /// A file without a journal has bytes past the data its header describes.
    #[error(
        "{path}: {extra_bytes} bytes past the {header_rows} rows the header describes and no journal \
         (left by a crashed writer of another tool?); nothing was changed. Choose: cut the file to the \
         header (TailPolicy::CutToHeader), adopt the {whole_rows} whole rows found \
         (TailPolicy::AdoptWholeRows), or leave it alone"
    )]
    TrailingBytes {
        /// The `.npy` file.
        path: PathBuf,
        /// Rows the header describes.
        header_rows: u64,
        /// Bytes past those rows.
        extra_bytes: u64,
        /// Whole rows those bytes would make.
        whole_rows: u64,
    },

    /// Appended data or options do not fit the file's row shape.
    #[error("{path}: shape mismatch: expected {expected}, found {found}; nothing was appended")]
    ShapeMismatch {
        /// The file (or group journal).
        path: PathBuf,
        /// What the file needs.
        expected: String,
        /// What was given.
        found: String,
    },

    /// Appended data or options do not have the file's dtype.
    #[error(
        "{path}: dtype mismatch: the file holds {expected}, found {found}; no value is ever cast, \
         nothing was appended"
    )]
    DtypeMismatch {
        /// The file (or group journal).
        path: PathBuf,
        /// The file's dtype.
        expected: String,
        /// The dtype given.
        found: String,
    },

    /// Valid input this library does not handle.
    #[error("{}unsupported: {what}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Unsupported {
        /// The file, when the problem is in a file.
        path: Option<PathBuf>,
        /// What is not supported, and what to do instead.
        what: String,
    },

    /// A caller passed an argument that cannot be used.
    #[error("{}invalid argument: {what}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    InvalidArgument {
        /// The file it was given for, when there is one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        what: String,
    },

    /// An earlier write or sync failed; this appender acknowledges nothing more.
    #[error(
        "{path}: appender is poisoned by an earlier failure ({cause}); nothing after the last \
         successful commit is durable; drop it and reopen with open_or_recover"
    )]
    Poisoned {
        /// The `.npy` file.
        path: PathBuf,
        /// The failure that poisoned it.
        cause: String,
    },

    /// An exactly-once append starts past the rows the file holds: rows in
    /// between were never appended.
    #[error(
        "{path}: rows from {start_row} were given but the file holds only {len} rows \
         (committed and pending); rows {len}..{start_row} are missing, nothing was appended"
    )]
    Gap {
        /// The `.npy` file.
        path: PathBuf,
        /// The first row index given.
        start_row: u64,
        /// Rows the file holds (committed plus pending).
        len: u64,
    },

    /// The path of a file a writer holds open no longer names it: another
    /// program removed the file (or its journal), or moved or saved another
    /// file over it, while the writer had it open. The writer stops: what it
    /// writes from now on would reach a file no path names.
    #[error("{path}: {what} by another program while this writer had it open; {kept}")]
    Replaced {
        /// The path (of the `.npy`, a group member or a journal).
        path: PathBuf,
        /// What happened to it.
        what: String,
        /// What is kept, and what to do.
        kept: String,
    },

    /// A cursor is longer than a journal record can hold.
    #[error("a cursor of {len} bytes is longer than the {max}-byte limit; nothing was committed")]
    CursorTooLong {
        /// Length of the cursor given.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// An exactly-once append was asked to compare rows it skips, and a row
    /// given differs from the row the file already holds.
    #[error(
        "{path}: row {row} given differs from row {row} already in the file; \
         the input does not replay the same rows, nothing was appended"
    )]
    DataDiffers {
        /// The `.npy` file.
        path: PathBuf,
        /// Index of the first row that differs.
        row: u64,
    },

    /// The file is a member of an append group and must be written through
    /// the group, so that its rows stay in step with the other members.
    #[error(
        "{path}: this file is a member of the append group {group} (see {marker}); \
         open the group instead. To use it alone, remove {marker} once no group writer runs"
    )]
    GroupMember {
        /// The member `.npy` file.
        path: PathBuf,
        /// The group journal that names it.
        group: String,
        /// The marker file beside the member.
        marker: PathBuf,
    },

    /// Finalizing a dataset found shards that are not complete (or complete
    /// but in need of recovery while a writer holds them).
    #[error(
        "{root}: {} not complete: {}; no manifest was written. Finish them (run their \
         partitions again) or name the shards to publish",
        count_shards(shards.len()),
        name_list(shards)
    )]
    Incomplete {
        /// The dataset's root directory.
        root: PathBuf,
        /// The shards that are not complete, in the dataset's order.
        shards: Vec<String>,
    },

    /// A reader waited for rows that cannot arrive: the writer stopped
    /// without closing (it was killed, crashed, or was dropped without
    /// `close`) before committing them.
    #[error(
        "{path}: the writer stopped without closing (killed, crashed or dropped) after {shown} \
         committed rows; the {wanted} waited for will not arrive unless a new writer opens it \
         (which recovers it to its last commit) and appends them"
    )]
    WriterDied {
        /// The file, group journal or dataset read.
        path: PathBuf,
        /// What the reader shows (rows, or sequences of a ragged array).
        shown: u64,
        /// What the wait was for.
        wanted: u64,
    },

    /// The operating system reported an I/O error.
    #[error("{path}: {op} failed: {source}{}", io_advice(source.kind()))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What an I/O error of `kind` leaves and what to do, for the kinds a user
/// can act on.
fn io_advice(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            ". Nothing committed is lost (the file keeps its last commit): free space on \
             the file system (or raise the quota), then open the file again"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            ". Nothing committed is lost (the file keeps its last commit): remount the file \
             system read-write (one remounted read-only after an error needs a check first), \
             then open the file again"
        }
        io::ErrorKind::PermissionDenied => {
            ". Nothing committed is lost (the file keeps its last commit): let this user \
             write the file and its directory (a writer creates and removes its journal \
             there), then open the file again"
        }
        // Errors that say what to do themselves (a missing or existing
        // path, a bad name or argument), or that are not the disk's.
        io::ErrorKind::NotFound
        | io::ErrorKind::AlreadyExists
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidFilename
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::Unsupported => "",
        // The device failed (EIO and the like).
        _ => {
            ". Nothing committed is lost (the file keeps its last commit): once the cause \
             is fixed (see the system log for a failing device), open the file again"
        }
    }
}

/// "1 shard is", "3 shards are".
fn count_shards(n: usize) -> String {
    if n == 1 {
        "1 shard is".to_owned()
    } else {
        format!("{n} shards are")
    }
}

/// Up to 20 names, then how many more.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(out, " and {} more", names.len() - SHOWN);
    }
    out
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn from_format(path: impl Into<PathBuf>, err: crate::format::FormatError) -> Self {
        use crate::format::FormatError;
        match err {
            FormatError::Malformed { offset, what } => Self::Corrupt {
                path: path.into(),
                offset,
                what,
            },
            FormatError::Unsupported { what } => Self::Unsupported {
                path: Some(path.into()),
                what,
            },
        }
    }

    /// The underlying `io::ErrorKind`, when this is an I/O error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// A writer's poison: the first failure that may have left its files in a
/// state only recovery understands. Once set, every later call is refused
/// with [`Error::Poisoned`].
#[derive(Debug, Default)]
pub(crate) struct Poison(Option<String>);

impl Poison {
    /// Whether a failure poisoned the writer.
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// `Err(Error::Poisoned)` for the writer of `path` once poisoned.
    pub(crate) fn check(&self, path: &std::path::Path) -> Result<()> {
        match &self.0 {
            Some(cause) => Err(Error::Poisoned {
                path: path.to_path_buf(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Passes `result` on, poisoning the writer if it is an error.
    pub(crate) fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.0 = Some(e.to_string());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: io::ErrorKind) -> String {
        Error::io("/d/f.npy", "writing rows", io::Error::from(kind)).to_string()
    }

    #[test]
    fn io_errors_a_user_can_act_on_say_what_is_kept_and_what_to_do() {
        for (kind, todo) in [
            (io::ErrorKind::StorageFull, "free space"),
            (io::ErrorKind::QuotaExceeded, "raise the quota"),
            (io::ErrorKind::ReadOnlyFilesystem, "remount"),
            (io::ErrorKind::PermissionDenied, "let this user write"),
            (io::ErrorKind::Other, "once the cause is fixed"),
        ] {
            let m = message(kind);
            assert!(
                m.starts_with("/d/f.npy: writing rows failed: ")
                    && m.contains("the file keeps its last commit")
                    && m.contains(todo),
                "{kind:?}: {m}"
            );
        }
        let m = message(io::ErrorKind::NotFound);
        assert!(!m.contains("last commit"), "{m}");
    }
}
