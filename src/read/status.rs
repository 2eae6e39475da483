//! A read-only look at a file: its header, its committed rows and what
//! recovery would do to it.
//!
//! [`FileStatus::read`] and [`AppendOptions::preview_recovery`] open the
//! `.npy` and its journal read-only, take no lock and never write, so they
//! are safe beside a running writer and on a file that must not change.
//! They decide what opening the file for appending would do by the steps
//! [`crate::Appender`] takes, with the same code: the group-member check,
//! the leftover of an interrupted header rewrite, the rewrite of a header
//! without room to grow (previewed as the copy it would make),
//! `recovery::inspect`, the check of the options against the file, and the
//! cursor file's adoption. A preview of a file nobody changes in between
//! therefore equals what [`AppendOptions::recover`] then does (the tests
//! compare the two over every crash image and bad input they have).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files;
use crate::format::cursor_file;
use crate::format::header::{Header, Version};
use crate::options::AppendOptions;
use crate::recovery::{self, Files, Inspection, JournalPlan, Plan};
use crate::report::{Found as FoundState, RecoveryOutcome, RecoveryReport};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};
use crate::write::appender::{check_options, cursor_to_adopt, refuse_member, rewrite_leftover};
use crate::write::recover::nothing_to_recover;

/// numpy's default `max_header_size` for `np.load`: a header whose text is
/// longer than this many characters is refused unless the caller raises
/// the limit.
pub const NUMPY_MAX_HEADER_SIZE: u64 = 10_000;

/// The state a file is in, as far as appending to it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileState {
    /// A plain `.npy` with no journal whose size matches its header: ready
    /// for numpy and for appending.
    Clean,
    /// A journal is next to the file: a writer is running, or one died
    /// without closing. Opening for appending (or `npy-append recover`)
    /// brings the file to its last commit and, on close, removes the journal.
    NeedsRecovery,
    /// The file and its journal disagree in a way recovery will not fix on
    /// its own (bytes past the header's data without a journal, committed
    /// data missing, a checksum mismatch, a journal of another file).
    Inconsistent,
    /// A readable `.npy` this library cannot append to (0-d, rows of zero
    /// bytes, a header without room to grow next to a journal).
    Unsupported,
}

impl FileState {
    /// The name used by the command-line tool: `clean`, `needs-recovery`,
    /// `inconsistent` or `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::NeedsRecovery => "needs-recovery",
            Self::Inconsistent => "inconsistent",
            Self::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What opening the file for appending would do to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryAction {
    /// Nothing: the file is already at its committed state.
    Nothing,
    /// These changes (the report recovery would return). A present journal
    /// is also removed when the recovering writer closes.
    Changes(RecoveryReport),
    /// Recovery refuses and changes nothing, for this reason.
    Refuses(String),
}

/// What [`FileStatus::read`] found in a `.npy` file and its journal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileStatus {
    /// The `.npy` file.
    pub path: PathBuf,
    /// Its journal path (`<file>.journal`).
    pub journal_path: PathBuf,
    /// Whether a journal file exists.
    pub journal_present: bool,
    /// Length of the `.npy` file in bytes (0 when it does not exist and the
    /// journal alone describes it).
    pub file_len: u64,
    /// The header as the file holds it, or, when the file's header is
    /// unreadable or missing, as its journal describes it.
    pub header: Header,
    /// Whether [`FileStatus::header`] comes from the file (false: rebuilt
    /// from the journal's snapshot).
    pub header_from_file: bool,
    /// Length of the file's header text (after the length field) in
    /// characters, as numpy counts it against its `max_header_size`;
    /// `None` when the header is not read from the file.
    pub header_text_chars: Option<u64>,
    /// Bytes per row (the dtype's size times the row shape), when it fits
    /// in 64 bits.
    pub row_bytes: Option<u64>,
    /// Committed rows (where appending would continue), when they can be
    /// decided: for [`FileState::Inconsistent`] files with bytes past the
    /// header's data, the header's rows.
    pub rows: Option<u64>,
    /// Bytes past the end of the committed rows, when the rows are known.
    pub bytes_past_end: Option<u64>,
    /// The state.
    pub state: FileState,
    /// Why the file is not [`FileState::Clean`].
    pub problem: Option<String>,
    /// What opening it for appending would do.
    pub recovery: RecoveryAction,
}

impl FileStatus {
    /// Reads the status of the `.npy` at `path` and its journal, read-only
    /// and without taking a lock.
    ///
    /// Errors when neither the file nor its journal exists, on I/O errors,
    /// and when neither the file's header nor a journal describes the array
    /// (the file cannot be read at all).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_with(&FsBackend, path)
    }

    /// [`FileStatus::read`] on `backend`.
    pub fn read_with<B: Backend>(backend: &B, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let Preview {
            found,
            file_header,
            result,
        } = Preview::read(backend, path, &AppendOptions::new())?;
        let file_header = file_header.map(|h| h.map_err(|e| Error::from_format(path, e)));
        match result {
            Ok(Predicted {
                plan: Some(plan),
                outcome,
            }) => Ok(Self::planned(found, file_header, &plan, &outcome.report)),
            Ok(Predicted { plan: None, .. }) => Err(Error::Corrupt {
                what: format!(
                    "{} does not exist and this journal is incomplete (its writer died while \
                     creating the file, before any commit); opening the file for appending \
                     removes the journal",
                    path.display()
                ),
                path: found.journal_path,
                offset: None,
            }),
            Err(e) => match file_header {
                Some(Ok(header)) if !matches!(e, Error::Io { .. }) => {
                    Ok(Self::refused(found, header, &e))
                }
                // An I/O error, or neither the file nor a usable journal
                // describes the array.
                _ => Err(e),
            },
        }
    }

    /// The status of a file recovery would open, by its plan and the report
    /// opening would give.
    fn planned(
        found: Seen,
        file_header: Option<Result<Header>>,
        plan: &Plan,
        report: &RecoveryReport,
    ) -> Self {
        let journal_path = &found.journal_path;
        let (header, header_from_file, mut problem) = match file_header {
            Some(Ok(h)) => (h, true, None),
            Some(Err(e)) => (
                plan.layout.header.clone(),
                false,
                Some(format!(
                    "the header is unreadable ({e}); recovery rebuilds it from {}",
                    journal_path.display()
                )),
            ),
            None => (
                plan.layout.header.clone(),
                false,
                Some(format!(
                    "the file does not exist: its writer died while creating it; \
                     recovery creates it empty from {}",
                    journal_path.display()
                )),
            ),
        };
        let header_text_chars = found.header_text_chars.filter(|_| header_from_file);
        if let Some(chars) = header_text_chars.filter(|&n| n > NUMPY_MAX_HEADER_SIZE) {
            problem.get_or_insert_with(|| numpy_refuses(chars));
        }
        let (state, recovery) = if found.journal_present {
            problem.get_or_insert_with(|| {
                format!(
                    "{} is present: a writer is running, or one died without closing",
                    journal_path.display()
                )
            });
            (
                FileState::NeedsRecovery,
                RecoveryAction::Changes(report.clone()),
            )
        } else if report.changed_file() || plan.create_npy {
            (FileState::Clean, RecoveryAction::Changes(report.clone()))
        } else {
            (FileState::Clean, RecoveryAction::Nothing)
        };
        Self {
            path: found.path,
            journal_path: found.journal_path,
            journal_present: found.journal_present,
            file_len: found.file_len,
            header,
            header_from_file,
            header_text_chars,
            row_bytes: Some(plan.layout.row_bytes),
            rows: Some(plan.file.rows),
            bytes_past_end: Some(plan.report.bytes_cut),
            state,
            problem,
            recovery,
        }
    }

    /// The status of a file with a readable header that recovery refuses
    /// with `err`.
    fn refused(found: Seen, header: Header, err: &Error) -> Self {
        let (state, rows, bytes_past_end) = match err {
            Error::Unsupported { .. } | Error::GroupMember { .. } => {
                (FileState::Unsupported, None, None)
            }
            Error::TrailingBytes {
                header_rows,
                extra_bytes,
                ..
            } => (
                FileState::Inconsistent,
                Some(*header_rows),
                Some(*extra_bytes),
            ),
            _ => (FileState::Inconsistent, None, None),
        };
        Self {
            path: found.path,
            journal_path: found.journal_path,
            journal_present: found.journal_present,
            file_len: found.file_len,
            row_bytes: row_bytes(&header),
            header,
            header_from_file: true,
            header_text_chars: found.header_text_chars,
            rows,
            bytes_past_end,
            state,
            problem: Some(err.to_string()),
            recovery: RecoveryAction::Refuses(err.to_string()),
        }
    }

    /// Whether numpy's `np.load` refuses the header with its default
    /// `max_header_size` (its text is over [`NUMPY_MAX_HEADER_SIZE`]
    /// characters).
    pub fn numpy_refuses_header(&self) -> bool {
        self.header_text_chars
            .is_some_and(|n| n > NUMPY_MAX_HEADER_SIZE)
    }

    /// The number of rows the header's shape gives (what numpy sees), or
    /// `None` for a 0-d array.
    pub fn header_rows(&self) -> Option<u64> {
        self.header.growth_len()
    }
}

/// The files found, before their contents are judged.
struct Seen {
    path: PathBuf,
    journal_path: PathBuf,
    journal_present: bool,
    file_len: u64,
    header_text_chars: Option<u64>,
}

/// What opening a file for appending would do, decided read-only, with what
/// was read on the way.
struct Preview {
    found: Seen,
    /// The file's own header, when there is a file.
    file_header: Option<Result<Header, crate::format::FormatError>>,
    /// What opening (then closing) would do, or the error opening returns.
    result: Result<Predicted>,
}

/// A predicted recovery.
struct Predicted {
    outcome: RecoveryOutcome,
    /// The plan of an existing file (none when no file is opened).
    plan: Option<Box<Plan>>,
}

impl Preview {
    /// Reads the file at `path` and its journal, read-only, and decides
    /// what opening them with `options` would do. Errors only when neither
    /// exists or on an I/O error reading them.
    fn read<B: Backend>(backend: &B, path: &Path, options: &AppendOptions) -> Result<Self> {
        let resolved = files::resolve(backend, path)?;
        let path = resolved.as_path();
        let journal_path = files::journal_path(path);
        let npy = open_read(backend, path)?;
        let journal = open_read(backend, &journal_path)?;
        if npy.is_none() && journal.is_none() {
            return Err(nothing_to_recover(path));
        }
        let (file_len, file_header, header_text_chars) = match &npy {
            Some(f) => {
                let len = f
                    .len()
                    .map_err(|e| Error::io(path, "reading the length", e))?;
                let read = files::read_header(f, len)
                    .map_err(|e| Error::io(path, "reading the header", e))?;
                let chars = read.header.as_ref().ok().map(|h| text_chars(h, &read.raw));
                (len, Some(read.header), chars)
            }
            None => (0, None, None),
        };
        let found = Seen {
            path: path.to_path_buf(),
            journal_path,
            journal_present: journal.is_some(),
            file_len,
            header_text_chars,
        };
        let result = predict(backend, &found, npy, journal, options);
        Ok(Self {
            found,
            file_header,
            result,
        })
    }
}

/// The steps of opening for appending ([`crate::Appender`]'s
/// `open_existing`, then `create` and `close`), taken read-only.
fn predict<B: Backend>(
    backend: &B,
    found: &Seen,
    npy: Option<B::File>,
    journal: Option<B::File>,
    options: &AppendOptions,
) -> Result<Predicted> {
    let path = found.path.as_path();
    files::check_sidecar_names(backend, path)?;
    refuse_member(backend, path)?;
    let leftover = npy.is_some() && rewrite_leftover(backend, path)?;
    // Without a journal, a header without room to grow is first given room
    // by a rewrite of the whole file: the plan is made on that copy.
    let room_header = match (&npy, &journal) {
        (Some(f), None) => {
            recovery::header_without_room(f, options.tail_policy, options.short_file_policy)
                .map_err(|e| Error::io(path, "reading the header", e))?
        }
        _ => None,
    };
    let file_rewritten = room_header.is_some();
    let npy = match (npy, room_header) {
        (Some(old), Some(header)) => Some(Viewed::Rewritten {
            header: recovery::room_header(&header).map_err(|e| Error::from_format(path, e))?,
            old_header_len: header.header_len,
            old,
        }),
        (npy, _) => npy.map(Viewed::Plain),
    };
    let journal = journal.map(Viewed::Plain);
    let aside = recovery::aside_if(backend, &found.journal_path, journal.is_some())?;
    let inspection = recovery::inspect(&Files::of(
        path,
        &found.journal_path,
        npy.as_ref(),
        journal.as_ref(),
        &aside,
        options,
    ))?;
    let plan = match inspection {
        Inspection::Missing { journal: stray } => {
            // No file is opened: a new one is created only when the options
            // give its dtype, and the journal of a creation that died goes.
            return Ok(Predicted {
                outcome: RecoveryOutcome {
                    report: RecoveryReport {
                        found: FoundState::NoFile,
                        journal_discarded: stray == recovery::Stray::Remove,
                        journal_moved_aside: (stray == recovery::Stray::MoveAside)
                            .then(|| aside.clone()),
                        ..RecoveryReport::default()
                    },
                    file_exists: options.dtype.is_some(),
                    journal_removed: found.journal_present,
                    cursor: Vec::new(),
                },
                plan: None,
            });
        }
        Inspection::Existing(plan) => plan,
    };
    check_options(path, &plan, options)?;
    let mut report = plan.report.clone();
    report.file_rewritten = file_rewritten;
    report.rewrite_leftover_removed = leftover;
    // The cursor the journal keeps, or the cursor file's when opening
    // takes it into the journal.
    let (sequence, mut cursor) = match &plan.journal {
        JournalPlan::Keep { newest, .. } => (newest.1.sequence, newest.1.cursor.clone()),
        JournalPlan::Create { .. } => (1, Vec::new()),
    };
    let cursor_path = files::cursor_path(path);
    if let Some(bytes) = files::read_small(backend, &cursor_path, cursor_file::MAX_LEN)?
        && let Some(adopted) = cursor_to_adopt(sequence, &cursor, plan.file.rows, &bytes)
    {
        cursor = adopted;
    }
    Ok(Predicted {
        outcome: RecoveryOutcome {
            report,
            file_exists: true,
            journal_removed: found.journal_present,
            cursor,
        },
        plan: Some(plan),
    })
}

impl AppendOptions {
    /// What [`AppendOptions::recover`] with these options would do to the
    /// file at `path`, decided read-only and without a lock: the outcome it
    /// would return, or the error it would return (and change nothing).
    /// `npy-append recover --dry-run` prints it.
    ///
    /// The prediction holds when nobody changes the files in between; a
    /// writer holding the lock makes the real recovery fail with
    /// [`Error::Locked`], which a preview cannot see.
    pub fn preview_recovery(&self, path: impl AsRef<Path>) -> Result<RecoveryOutcome> {
        self.preview_recovery_with(&FsBackend, path)
    }

    /// [`AppendOptions::preview_recovery`] on `backend`.
    pub fn preview_recovery_with<B: Backend>(
        &self,
        backend: &B,
        path: impl AsRef<Path>,
    ) -> Result<RecoveryOutcome> {
        Preview::read(backend, path.as_ref(), self)?
            .result
            .map(|p| p.outcome)
    }
}

/// A file as a preview reads it: the file itself, or, when opening would
/// first replace it by a copy whose header has room to grow, that copy as it
/// would be (the new header, then the old file's bytes after its header).
/// Never written.
enum Viewed<F> {
    Plain(F),
    Rewritten {
        old: F,
        header: Vec<u8>,
        old_header_len: u64,
    },
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a preview of recovery never writes",
    )
}

impl<F: Storage> Storage for Viewed<F> {
    fn len(&self) -> io::Result<u64> {
        match self {
            Self::Plain(f) => f.len(),
            Self::Rewritten {
                old,
                header,
                old_header_len,
            } => Ok(old.len()?.saturating_sub(*old_header_len) + header.len() as u64),
        }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let (old, header, old_header_len) = match self {
            Self::Plain(f) => return f.read_at(buf, offset),
            Self::Rewritten {
                old,
                header,
                old_header_len,
            } => (old, header, *old_header_len),
        };
        let header_len = header.len() as u64;
        // The part of `buf` in the new header, then the part after it.
        let in_header = usize::try_from(header_len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let (head, tail) = buf.split_at_mut(in_header);
        if !head.is_empty() {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let src = header
                .get(start..start.saturating_add(head.len()))
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            head.copy_from_slice(src);
        }
        if !tail.is_empty() {
            let at = offset.max(header_len) - header_len + old_header_len;
            old.read_at(tail, at)?;
        }
        Ok(())
    }

    fn write_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_data(&self) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_all(&self) -> io::Result<()> {
        Err(read_only())
    }

    /// The file's identity, so that a file replaced under its path is seen
    /// as the real open sees it. A rewritten copy (made only without a
    /// journal, which alone records an identity) has none yet.
    fn file_id(&self) -> io::Result<Option<(u64, u64)>> {
        match self {
            Self::Plain(f) => f.file_id(),
            Self::Rewritten { .. } => Ok(None),
        }
    }

    fn try_lock(&self) -> io::Result<bool> {
        Err(read_only())
    }
}

fn open_read<B: Backend>(backend: &B, path: &Path) -> Result<Option<B::File>> {
    match backend.open(path, OpenMode::Read) {
        Ok(f) => Ok(Some(f)),
        Err(e) if files::sidecar_absent(&e) => Ok(None),
        Err(e) => Err(Error::io(path, "opening read-only", e)),
    }
}

/// The characters of the header text in `raw` (the header's bytes), as
/// numpy decodes them: UTF-8 for version 3.0, latin-1 (one byte each) before.
fn text_chars(header: &Header, raw: &[u8]) -> u64 {
    let text = raw.get(header.version.prefix_len()..).unwrap_or_default();
    match std::str::from_utf8(text) {
        Ok(t) if header.version == Version::V3 => t.chars().count() as u64,
        _ => text.len() as u64,
    }
}

fn numpy_refuses(chars: u64) -> String {
    format!(
        "numpy's np.load refuses this {chars}-character header by default (its max_header_size \
         is {NUMPY_MAX_HEADER_SIZE}); load it with np.load(path, max_header_size={chars})"
    )
}

fn row_bytes(header: &Header) -> Option<u64> {
    let itemsize = header.dtype.itemsize().ok()?;
    header
        .row_shape()
        .iter()
        .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dtype::Dtype;
    use crate::format::header;
    use crate::storage::{MemBackend, MemOp};
    use crate::{AppendOptions, Found};

    const OPS: [MemOp; 6] = [
        MemOp::Write,
        MemOp::SetLen,
        MemOp::Sync,
        MemOp::Remove,
        MemOp::SyncDir,
        MemOp::Create,
    ];

    fn counts(backend: &MemBackend) -> Vec<u64> {
        OPS.iter().map(|&op| backend.count(op)).collect()
    }

    /// Reads the status and checks that nothing was written, cut, synced,
    /// created or removed.
    fn read(backend: &MemBackend, path: &Path) -> Result<FileStatus> {
        let before = counts(backend);
        let bytes = (
            backend.contents(path),
            backend.contents(&files::journal_path(path)),
        );
        let status = FileStatus::read_with(backend, path);
        assert_eq!(
            counts(backend),
            before,
            "reading the status changed something"
        );
        assert_eq!(
            (
                backend.contents(path),
                backend.contents(&files::journal_path(path))
            ),
            bytes
        );
        status
    }

    #[test]
    fn a_running_writers_file_needs_recovery_and_says_what_recovery_does() {
        let backend = MemBackend::new();
        let path = Path::new("/mem/s.npy");
        let mut w = AppendOptions::new()
            .dtype("<u2")
            .unwrap()
            .row_shape(&[2])
            .buffer_bytes(1)
            .open_with(backend.clone(), path)
            .unwrap();
        w.append(&[1u16, 2, 3, 4, 5, 6]).unwrap();
        w.commit().unwrap();
        w.append(&[7u16, 8]).unwrap(); // written, not committed
        let s = read(&backend, path).unwrap();
        assert_eq!(s.state, FileState::NeedsRecovery);
        assert!(s.journal_present && s.header_from_file);
        assert_eq!(
            (s.rows, s.bytes_past_end, s.row_bytes),
            (Some(3), Some(4), Some(4))
        );
        assert_eq!(s.header.shape, vec![3, 2]);
        assert_eq!(s.header.dtype, Dtype::parse_descr("'<u2'").unwrap());
        assert_eq!(s.file_len, s.header.header_len + 16);
        let RecoveryAction::Changes(report) = &s.recovery else {
            panic!("{:?}", s.recovery);
        };
        assert_eq!(report.found, Found::Journal);
        assert_eq!((report.committed_rows, report.bytes_cut), (3, 4));

        w.close().unwrap();
        let s = read(&backend, path).unwrap();
        assert_eq!(s.state, FileState::Clean);
        assert!(!s.journal_present && s.problem.is_none());
        assert_eq!((s.rows, s.bytes_past_end), (Some(4), Some(0)));
        assert_eq!(s.recovery, RecoveryAction::Nothing);
        assert_eq!(s.header_rows(), Some(4));
    }

    #[test]
    fn files_recovery_refuses_and_unreadable_files() {
        let backend = MemBackend::new();
        let path = Path::new("/mem/x.npy");
        let f4 = Dtype::parse_descr("'<f4'").unwrap();

        // Bytes past the header's rows, no journal.
        let mut bytes = header::build(&f4, false, &[2]).unwrap();
        bytes.extend([0; 8 + 3]);
        backend.put(path, &bytes);
        let s = read(&backend, path).unwrap();
        assert_eq!(s.state, FileState::Inconsistent);
        assert_eq!((s.rows, s.bytes_past_end), (Some(2), Some(3)));
        assert!(matches!(s.recovery, RecoveryAction::Refuses(_)));

        // Shorter than the header, no journal: refused unless salvaged.
        let mut bytes = header::build(&f4, false, &[2]).unwrap();
        bytes.extend([0; 5]);
        backend.put(path, &bytes);
        let s = read(&backend, path).unwrap();
        assert_eq!((s.state, s.rows), (FileState::Inconsistent, None));
        let problem = s.problem.unwrap();
        assert!(
            problem.contains("the header describes 2 rows") && !problem.contains("journal to"),
            "{problem}"
        );

        // Fortran order: rows along the last axis.
        let mut bytes = header::build(&f4, true, &[2, 3]).unwrap();
        bytes.extend([0; 24]);
        backend.put(path, &bytes);
        let s = read(&backend, path).unwrap();
        assert_eq!(
            (s.state, s.rows, s.row_bytes),
            (FileState::Clean, Some(3), Some(8))
        );
        assert!(s.header.fortran_order);

        // 0-d: readable, not appendable.
        let mut bytes = header::build(&f4, false, &[]).unwrap();
        bytes.extend([0; 4]);
        backend.put(path, &bytes);
        let s = read(&backend, path).unwrap();
        assert_eq!(s.state, FileState::Unsupported);

        // Not an .npy, and no file at all.
        backend.put(path, b"not a numpy file");
        assert!(matches!(read(&backend, path), Err(Error::Corrupt { .. })));
        assert!(matches!(
            read(&backend, Path::new("/mem/none.npy")),
            Err(Error::Io { .. })
        ));
    }
}
