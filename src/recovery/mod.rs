//! Deciding what a file's committed state is, and restoring it.
//!
//! [`inspect`] reads the `.npy` and its journal (never writing) and returns a
//! [`Plan`]: the committed row count and the changes that bring the file to
//! exactly that state. [`apply`] carries a plan out. Splitting the two lets a
//! dry run report what recovery would do, and keeps every decision in one
//! place.
//!
//! Recovery only ever cuts bytes past the committed end and rewrites the
//! header to the committed shape, so it can be killed at any point and run
//! again with the same result.

use std::cmp::Ordering;
use std::io;
use std::path::Path;

mod file;
pub(crate) mod group;

pub(crate) use file::{
    CommitCheck, FileCommit, FilePlan, apply_cut, check_binding, check_commit, plan_cut,
    snapshot_layout, synced_rows_lost,
};

use crate::error::{Error, Result};
use crate::files::{self, HeaderRead};
use crate::format::FormatError;
use crate::format::header::{self, Header};
use crate::format::journal::{self, Identity, Record, Slot};
use crate::format::layout::Layout;
use crate::options::{ShortFilePolicy, TailPolicy};
use crate::report::{Found, RecoveryReport};
use crate::storage::{Backend, Storage};

/// What the journal file held.
#[derive(Debug)]
pub(crate) struct JournalRead {
    pub identity: Result<Identity, FormatError>,
    pub slots: Vec<(Slot, Record)>,
    /// A slot that passes its checksum but has a newer format version.
    pub newer_slot: Option<FormatError>,
}

impl JournalRead {
    /// The valid slot with the highest sequence number.
    pub(crate) fn newest(&self) -> Option<&(Slot, Record)> {
        self.slots.iter().max_by_key(|(_, r)| r.sequence)
    }

    /// The valid slot with the lowest sequence number, when both are valid.
    pub(crate) fn older(&self) -> Option<&(Slot, Record)> {
        if self.slots.len() < 2 {
            return None;
        }
        self.slots.iter().min_by_key(|(_, r)| r.sequence)
    }

    /// Refuses a journal of a format version this library does not read. A
    /// torn creation cannot leave one (magic and version share a sector), so
    /// a newer writer made it and its commits must not be discarded.
    pub(crate) fn check_version(&self, journal_path: &Path) -> Result<()> {
        match (&self.identity, &self.newer_slot) {
            (Err(e @ FormatError::Unsupported { .. }), _) | (_, Some(e)) => {
                Err(Error::from_format(journal_path, e.clone()))
            }
            _ => Ok(()),
        }
    }
}

/// The valid records of the journal `journal_id` in `file`, whose identity
/// block is `block_len` bytes: reads only the two slots. A slot that is
/// short, torn or of another journal is left out; one that passes its
/// checksum with a newer format version (a newer writer's commit, which
/// must not be mistaken for a torn one) makes the result an `Unsupported`
/// error.
pub(crate) fn read_slots<F: Storage>(
    file: &F,
    journal_id: u64,
    block_len: u64,
) -> io::Result<Result<Vec<(Slot, Record)>, FormatError>> {
    let mut slots = Vec::new();
    for slot in [Slot::A, Slot::B] {
        let at = journal::slot_offset(block_len, slot);
        let mut fixed = [0u8; journal::SLOT_FIXED_LEN];
        match file.read_at(&mut fixed, at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
            Err(e) => return Err(e),
        }
        let Some(need) = Record::encoded_len(&fixed) else {
            continue;
        };
        let record = if need == fixed.len() {
            Record::decode(&fixed, journal_id)
        } else {
            let mut bytes = vec![0u8; need];
            match file.read_at(&mut bytes, at) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(e),
            }
            Record::decode(&bytes, journal_id)
        };
        match record {
            Ok(record) => slots.push((slot, record)),
            Err(e @ FormatError::Unsupported { .. }) => return Ok(Err(e)),
            Err(_) => {}
        }
    }
    Ok(Ok(slots))
}

/// Reads the identity and both slots of a journal. Never fails on content:
/// unreadable parts come back as errors inside the result.
pub(crate) fn read_journal<F: Storage>(file: &F) -> io::Result<JournalRead> {
    let len = file.len()?;
    let fixed_len = len.min(journal::IDENTITY_FIXED_LEN as u64);
    let fixed = files::read_vec(file, 0, fixed_len)?;
    let identity = match Identity::decode_prefix(&fixed) {
        Err(e) => Err(e),
        Ok(prefix) => {
            let want = journal::IDENTITY_FIXED_LEN as u64 + prefix.snapshot_len;
            if want > len {
                Err(FormatError::malformed(
                    Some(len),
                    format!("journal is {len} bytes, its identity block needs {want}"),
                ))
            } else {
                Identity::decode(&files::read_vec(file, 0, want)?)
            }
        }
    };
    let (slots, newer_slot) = match &identity {
        Ok(id) => match read_slots(file, id.journal_id, id.block_len())? {
            Ok(slots) => (slots, None),
            Err(e) => (Vec::new(), Some(e)),
        },
        Err(_) => (Vec::new(), None),
    };
    Ok(JournalRead {
        identity,
        slots,
        newer_slot,
    })
}

/// What to do with the journal.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one plan per open; boxing would only add an allocation"
)]
pub(crate) enum JournalPlan {
    /// Keep the existing journal; commits continue after `newest`.
    Keep {
        identity: Identity,
        newest: (Slot, Record),
        /// A record to write first, when the committed state is not the
        /// newest valid record (it replaces a record whose data is gone).
        reanchor: Option<(Slot, Record)>,
    },
    /// Create a journal for a file that has none (or whose journal file is
    /// not a usable journal, which goes first).
    Create {
        existing: Stray,
        /// Extend the file with zeros to this length first, completing a
        /// partial last row ([`ShortFilePolicy::ZeroFillLastRow`]); synced
        /// before the journal that counts the row is created.
        zero_fill_to: Option<u64>,
    },
}

/// What to do with a journal file whose identity block does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stray {
    /// There is no such file.
    None,
    /// A journal creation of this library cut short (see
    /// [`journal::is_torn_creation`]): no commit depends on it; removed.
    Remove,
    /// A file this library did not write: moved aside under a new name
    /// ([`move_aside_path`]), by the caller's choice.
    MoveAside,
}

/// The committed state of an existing file and the changes that restore it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The file's layout at the committed rows.
    pub layout: Layout,
    /// The committed rows, and the cut and header rewrite that restore them.
    pub file: FilePlan,
    /// The header bytes the file holds (as many as it has).
    pub raw_header: Vec<u8>,
    /// The `.npy` does not exist and must be created (it was being created
    /// when its writer died, and nothing was committed).
    pub create_npy: bool,
    pub journal: JournalPlan,
    pub report: RecoveryReport,
}

/// What [`inspect`] found.
#[derive(Debug)]
pub(crate) enum Inspection {
    /// No file and no usable journal: a new file is to be created.
    Missing { journal: Stray },
    /// A file (or a journal that can rebuild it).
    Existing(Box<Plan>),
}

/// The inputs of [`inspect`]: the opened files and their paths (for messages).
pub(crate) struct Files<'a, F> {
    pub path: &'a Path,
    pub journal_path: &'a Path,
    pub npy: Option<&'a F>,
    pub journal: Option<&'a F>,
    pub tail_policy: TailPolicy,
    pub short_file_policy: ShortFilePolicy,
    /// Recover to the journal's committed state even where the file's own
    /// state (its header, its identity) says another program changed it,
    /// cutting what the journal does not commit.
    pub accept_loss: bool,
    /// Move a journal file this library did not write aside instead of
    /// refusing it.
    pub move_aside: bool,
    /// Where such a journal would go ([`move_aside_path`]).
    pub aside: &'a Path,
}

impl<'a, F> Files<'a, F> {
    /// The files of `path` with the choices of `options`, as opening (and
    /// its dry run) inspects them.
    pub(crate) fn of(
        path: &'a Path,
        journal_path: &'a Path,
        npy: Option<&'a F>,
        journal: Option<&'a F>,
        aside: &'a Path,
        options: &crate::options::AppendOptions,
    ) -> Self {
        Self {
            path,
            journal_path,
            npy,
            journal,
            tail_policy: options.tail_policy,
            short_file_policy: options.short_file_policy,
            accept_loss: options.accept_loss,
            move_aside: options.move_aside_foreign_journal,
            aside,
        }
    }
}

/// Decides the committed state of a file and its journal, reading only.
pub(crate) fn inspect<F: Storage>(files: &Files<'_, F>) -> Result<Inspection> {
    let io_err = |path: &Path, op| {
        let path = path.to_path_buf();
        move |e| Error::io(path, op, e)
    };
    let npy_read = match files.npy {
        Some(npy) => {
            let len = npy
                .len()
                .map_err(io_err(files.path, "reading the length"))?;
            let header =
                files::read_header(npy, len).map_err(io_err(files.path, "reading the header"))?;
            Some((npy, len, header))
        }
        None => None,
    };
    let journal = match files.journal {
        Some(j) => {
            Some(read_journal(j).map_err(io_err(files.journal_path, "reading the journal"))?)
        }
        None => None,
    };
    if let Some(journal) = &journal {
        journal.check_version(files.journal_path)?;
    }
    match (npy_read, journal) {
        (None, None) => Ok(Inspection::Missing {
            journal: Stray::None,
        }),
        (None, Some(journal)) => match journal.identity {
            Err(_) => Ok(Inspection::Missing {
                journal: stray_journal(files)?,
            }),
            Ok(identity) => plan_missing_npy(files, identity, &journal.slots)
                .map(|p| Inspection::Existing(Box::new(p))),
        },
        (Some((npy, len, header)), None) => {
            plan_without_journal(files, npy, len, header, Stray::None)
                .map(|p| Inspection::Existing(Box::new(p)))
        }
        (Some((npy, len, header)), Some(journal)) => match journal.identity {
            // A journal whose identity never became valid was being created
            // when its writer died (no commit can depend on it), or is not
            // this library's.
            Err(_) => {
                let stray = stray_journal(files)?;
                plan_without_journal(files, npy, len, header, stray)
                    .map(|p| Inspection::Existing(Box::new(p)))
            }
            Ok(ref identity) => {
                plan_with_journal(files, npy, len, &header, identity.clone(), &journal)
                    .map(|p| Inspection::Existing(Box::new(p)))
            }
        },
    }
}

/// Bytes of a journal file read to judge whether it is a torn creation: a
/// longer file is not one.
const STRAY_READ_MAX: u64 = journal::IDENTITY_FIXED_LEN as u64
    + journal::MAX_SNAPSHOT_LEN
    + journal::BLOCK
    + journal::SLOT_FIXED_LEN as u64
    + 1;

/// Decides about the journal file of `files` whose identity does not
/// decode: a torn creation of this library is removed; anything else is
/// refused (nothing changed) unless the caller moves it aside.
fn stray_journal<F: Storage>(files: &Files<'_, F>) -> Result<Stray> {
    let Some(file) = files.journal else {
        return Ok(Stray::None);
    };
    let io_err = |e| Error::io(files.journal_path, "reading the journal", e);
    let len = file.len().map_err(io_err)?;
    let bytes = files::read_vec(file, 0, len.min(STRAY_READ_MAX)).map_err(io_err)?;
    if journal::is_torn_creation(&bytes) {
        return Ok(Stray::Remove);
    }
    if files.move_aside {
        return Ok(Stray::MoveAside);
    }
    Err(Error::ForeignJournal {
        path: files.journal_path.to_path_buf(),
        file: files.path.to_path_buf(),
        aside: files.aside.to_path_buf(),
        len,
    })
}

/// The new name a journal file this library did not write is moved to:
/// `<journal>.foreign`, or the first of `<journal>.foreign.1`, `.2`, ...
/// that does not exist.
pub(crate) fn move_aside_path<B: Backend>(
    backend: &B,
    journal_path: &Path,
) -> Result<std::path::PathBuf> {
    let mut base = journal_path.as_os_str().to_owned();
    base.push(".foreign");
    let mut aside = std::path::PathBuf::from(&base);
    let mut n = 1;
    while backend
        .exists(&aside)
        .map_err(|e| Error::io(&aside, "checking whether it exists", e))?
    {
        let mut os = base.clone();
        os.push(format!(".{n}"));
        aside = std::path::PathBuf::from(os);
        n += 1;
    }
    Ok(aside)
}

/// [`move_aside_path`] when a journal is `present` (only a present journal
/// can be moved aside); otherwise the journal path itself, never used.
pub(crate) fn aside_if<B: Backend>(
    backend: &B,
    journal_path: &Path,
    present: bool,
) -> Result<std::path::PathBuf> {
    if present {
        move_aside_path(backend, journal_path)
    } else {
        Ok(journal_path.to_path_buf())
    }
}

fn corrupt(path: &Path, err: FormatError) -> Error {
    Error::from_format(path, err)
}

fn plan_without_journal<F: Storage>(
    files: &Files<'_, F>,
    _npy: &F,
    len: u64,
    read: HeaderRead,
    existing: Stray,
) -> Result<Plan> {
    let discard_existing = existing != Stray::None;
    let header = read.header.map_err(|e| corrupt(files.path, e))?;
    // A header without room to grow is rewritten by the appender before
    // it inspects a file without journal (so this is a status's dry run);
    // next to a journal it is refused.
    let layout = Layout::without_room(header).map_err(|e| corrupt(files.path, e))?;
    let file_rewritten = !layout.has_room();
    if file_rewritten && discard_existing {
        Layout::new(layout.header.clone()).map_err(|e| corrupt(files.path, e))?;
    }
    let header_rows = layout.rows();
    let expected = layout.end_of(header_rows).ok_or_else(|| {
        corrupt(
            files.path,
            FormatError::malformed(None, "data size of the header's shape overflows 64 bits"),
        )
    })?;
    let mut report = RecoveryReport {
        found: Found::Clean,
        journal_discarded: existing == Stray::Remove,
        journal_moved_aside: (existing == Stray::MoveAside).then(|| files.aside.to_path_buf()),
        file_rewritten,
        ..RecoveryReport::default()
    };
    // No journal commits anything: the header and the bytes present are all
    // the evidence there is. A partial last row is cut, or completed with
    // zeros when the policy says so.
    let data = len.saturating_sub(layout.header.header_len);
    let (whole_rows, partial) = (data / layout.row_bytes, data % layout.row_bytes);
    let zero_fill = |report: &mut RecoveryReport| {
        report.zero_filled_bytes = layout.row_bytes - partial;
        (whole_rows + 1, Some(len + report.zero_filled_bytes))
    };
    let (rows, zero_fill_to) = match len.cmp(&expected) {
        Ordering::Equal => (header_rows, None),
        Ordering::Less => {
            let (rows, zero_fill_to) = match files.short_file_policy {
                ShortFilePolicy::Refuse => {
                    return Err(Error::FileTooShort {
                        path: files.path.to_path_buf(),
                        header_rows,
                        needed_len: expected,
                        actual_len: len,
                        whole_rows,
                    });
                }
                ShortFilePolicy::ZeroFillLastRow if partial > 0 => zero_fill(&mut report),
                ShortFilePolicy::KeepWholeRows | ShortFilePolicy::ZeroFillLastRow => {
                    (whole_rows, None)
                }
            };
            report.missing_rows = header_rows - rows;
            (rows, zero_fill_to)
        }
        Ordering::Greater => {
            let (rows, zero_fill_to) = match files.tail_policy {
                TailPolicy::Refuse => {
                    return Err(Error::TrailingBytes {
                        path: files.path.to_path_buf(),
                        header_rows,
                        extra_bytes: len - expected,
                        whole_rows: whole_rows - header_rows,
                    });
                }
                TailPolicy::CutToHeader => (header_rows, None),
                TailPolicy::AdoptZeroFillLastRow if partial > 0 => zero_fill(&mut report),
                TailPolicy::AdoptWholeRows | TailPolicy::AdoptZeroFillLastRow => (whole_rows, None),
            };
            report.adopted_rows = rows - header_rows;
            (rows, zero_fill_to)
        }
    };
    finish_plan(
        files.path,
        layout,
        rows,
        len,
        &read.raw,
        JournalPlan::Create {
            existing,
            zero_fill_to,
        },
        report,
    )
}

/// Fills in the cut and the header rewrite that bring a file of length `len`
/// whose header bytes are `raw` to `rows` committed rows.
fn finish_plan(
    path: &Path,
    mut layout: Layout,
    rows: u64,
    len: u64,
    raw: &[u8],
    journal: JournalPlan,
    mut report: RecoveryReport,
) -> Result<Plan> {
    // A file to be rewritten (a status's plan: the appender rewrites it
    // before planning) gets numpy's header from the rewrite.
    let file = plan_cut(path, &layout, rows, len, raw, report.file_rewritten)?;
    layout.set_rows(rows);
    report.committed_rows = rows;
    report.bytes_cut = file.bytes_cut;
    report.header_rewritten = file.header_write.is_some();
    Ok(Plan {
        layout,
        file,
        raw_header: raw.to_vec(),
        create_npy: false,
        journal,
        report,
    })
}

/// The layout the single-file journal's snapshot describes, checked.
pub(crate) fn journal_layout(
    path: &Path,
    journal_path: &Path,
    identity: &Identity,
) -> Result<Layout> {
    snapshot_layout(
        path,
        journal_path,
        &identity.snapshot,
        identity.header_len,
        identity.row_bytes,
        "",
    )
}

fn plan_missing_npy<F: Storage>(
    files: &Files<'_, F>,
    identity: Identity,
    slots: &[(Slot, Record)],
) -> Result<Plan> {
    let layout = journal_layout(files.path, files.journal_path, &identity)?;
    let newest = slots.iter().max_by_key(|(_, r)| r.sequence).cloned();
    let rows = newest.as_ref().map_or(0, |(_, r)| r.rows);
    if !identity.created() || rows > 0 {
        return Err(Error::CommittedDataMissing {
            path: files.path.to_path_buf(),
            committed_rows: rows,
            needed_len: layout.end_of(rows).unwrap_or(u64::MAX),
            actual_len: 0,
        });
    }
    // The writer died while creating the file, before any commit.
    let header_write = layout.header_bytes(0).map_err(|e| corrupt(files.path, e))?;
    let (newest, reanchor) = if let Some(n) = newest {
        (n, None)
    } else {
        let record = Record {
            sequence: 1,
            ..Record::default()
        };
        ((Slot::A, record.clone()), Some((Slot::A, record)))
    };
    Ok(Plan {
        layout,
        file: FilePlan {
            rows: 0,
            cut_to: None,
            bytes_cut: 0,
            header_write: Some(header_write),
        },
        raw_header: Vec::new(),
        create_npy: true,
        journal: JournalPlan::Keep {
            identity,
            newest,
            reanchor,
        },
        report: RecoveryReport {
            found: Found::Journal,
            header_rewritten: true,
            ..RecoveryReport::default()
        },
    })
}

/// The committed rows when the journal's identity is valid but neither slot
/// is: the journal's first write was torn (the identity and slot A are
/// written together), or a power loss under process durability destroyed
/// both slots. The header is the best evidence left, and a creation cut
/// short commits the rows of its header snapshot too (synced before the
/// journal was created; they differ from the header's when the journal was
/// created for a file without one whose header is rewritten after it:
/// trailing rows adopted, a file cut short salvaged): the larger of the
/// two that the file holds.
fn rows_without_slots<F: Storage>(
    files: &Files<'_, F>,
    layout: &Layout,
    identity: &Identity,
    read: &HeaderRead,
    len: u64,
) -> Result<u64> {
    let fits = |rows: u64| layout.end_of(rows).is_some_and(|end| end <= len);
    let header_rows = read
        .header
        .as_ref()
        .ok()
        .map(|h| h.growth_len().unwrap_or(0))
        .filter(|&rows| fits(rows));
    let snapshot_rows = match files.journal {
        Some(journal) if fits(layout.rows()) => {
            let file_id = files.npy.and_then(|npy| npy.file_id().ok().flatten());
            creation_cut_short(journal, identity, layout.rows(), file_id)
                .map_err(|e| Error::io(files.journal_path, "reading the journal", e))?
                .then_some(layout.rows())
        }
        _ => None,
    };
    if let Some(rows) = header_rows.max(snapshot_rows) {
        return Ok(rows);
    }
    if identity.created() && len <= layout.header.header_len {
        // The writer died while creating the file: no row was ever written.
        return Ok(0);
    }
    Err(corrupt(
        files.journal_path,
        FormatError::malformed(
            None,
            "both journal slots fail their checksum and the file's header does not describe its data",
        ),
    ))
}

/// Sectors a torn write is judged by.
const SECTOR: usize = 512;

/// Whether the bytes of `journal` from slot A on are the record
/// [`create_journal`] writes with the identity (for `rows` rows) with some
/// of its sectors not landed (zeros, or the file ending early), and nothing
/// was written to slot B: the journal's creation was cut short, and no
/// commit followed it.
fn creation_cut_short<F: Storage>(
    journal: &F,
    identity: &Identity,
    rows: u64,
    file_id: Option<(u64, u64)>,
) -> io::Result<bool> {
    let block = identity.block_len();
    let slot_b = journal::slot_offset(block, Slot::B);
    let len = journal.len()?;
    if len > slot_b {
        return Ok(false);
    }
    // The record names the file when the journal was created for an
    // existing one (the same file as now, else it is refused elsewhere).
    let encode = |file_id| {
        creation_record(rows, file_id)
            .encode(identity.journal_id)
            .ok()
    };
    let expected: Vec<Vec<u8>> = [encode(None), file_id.and_then(|id| encode(Some(id)))]
        .into_iter()
        .flatten()
        .collect();
    let found = if len > block {
        files::read_vec(journal, block, len - block)?
    } else {
        Vec::new()
    };
    let landed_or_zero = |expected: &Vec<u8>| {
        found.chunks(SECTOR).enumerate().all(|(i, sector)| {
            let at = i * SECTOR;
            sector.iter().all(|&b| b == 0)
                || sector
                    .iter()
                    .enumerate()
                    .all(|(j, &b)| b == expected.get(at + j).copied().unwrap_or(0))
        })
    };
    Ok(expected.iter().any(landed_or_zero))
}

/// The record a new journal starts with: `rows` committed, no data of its
/// own (see [`create_journal`]).
fn creation_record(rows: u64, file_id: Option<(u64, u64)>) -> Record {
    Record {
        sequence: 1,
        rows,
        prev_rows: rows,
        data_crc: 0,
        data_synced: false,
        cursor: Vec::new(),
        file_id,
    }
}

/// What the file itself says, for the rules that keep recovery from cutting
/// rows another program wrote.
struct FileEvidence {
    /// The rows a readable header (of the journal's layout) claims.
    header_rows: Option<u64>,
    /// `header_rows` when the file also holds them: rows the file presents
    /// as its own, which `np.load` shows.
    claimed: Option<u64>,
    /// The file's device and inode numbers, when the file system has them.
    file_id: Option<(u64, u64)>,
}

#[expect(
    clippy::too_many_lines,
    reason = "one decision table over the journal's records; split, it reads worse"
)]
fn plan_with_journal<F: Storage>(
    files: &Files<'_, F>,
    npy: &F,
    len: u64,
    read: &HeaderRead,
    identity: Identity,
    journal: &JournalRead,
) -> Result<Plan> {
    let layout = journal_layout(files.path, files.journal_path, &identity)?;
    check_binding(
        files.path,
        files.journal_path,
        &layout,
        &identity.snapshot,
        identity.created(),
        read,
    )?;
    let header_rows = read.header.as_ref().ok().and_then(Header::growth_len);
    let evidence = FileEvidence {
        header_rows,
        claimed: header_rows.filter(|&h| layout.end_of(h).is_some_and(|end| end <= len)),
        file_id: npy
            .file_id()
            .map_err(|e| Error::io(files.path, "reading the file's identity", e))?,
    };

    let mut report = RecoveryReport {
        found: Found::Journal,
        ..RecoveryReport::default()
    };
    let check = |record: &Record| check_commit(files.path, &layout, npy, len, &file_commit(record));
    let unverified = |rows, sequence| unverified(rows, sequence, evidence.file_id);

    let Some(newest) = journal.newest().cloned() else {
        let rows = rows_without_slots(files, &layout, &identity, read, len)?;
        let (_, record) = unverified(rows, 1);
        let plan_journal = JournalPlan::Keep {
            identity,
            newest: (Slot::A, record.clone()),
            reanchor: Some((Slot::A, record)),
        };
        return finish_plan(
            files.path,
            layout,
            rows,
            len,
            &read.raw,
            plan_journal,
            report,
        );
    };

    // The file the newest record was written for was replaced under its
    // path (renamed over, or removed and created again). A replacement that
    // holds the journal's last commit intact (a copy of the file: a backup
    // restored, a move to another disk) is recovered like the original;
    // any other is refused.
    if let (Some(recorded), Some(now)) = (newest.1.file_id, evidence.file_id)
        && recorded != now
        && !files.accept_loss
    {
        let intact = matches!(check(&newest.1)?, CommitCheck::Ok)
            && header_rows.is_none_or(|h| h <= newest.1.rows);
        if !intact {
            return Err(disagrees(
                files,
                &format!(
                    "the file is not the one {} was written for (device {}, inode {} then; \
                     device {}, inode {} now): another file replaced it since, and it does \
                     not hold the journal's last commit",
                    files.journal_path.display(),
                    recorded.0,
                    recorded.1,
                    now.0,
                    now.1,
                ),
                &evidence,
                &newest.1,
            ));
        }
    }
    // This library writes a header only after the record that commits its
    // rows (synced first under fsync durability), so a header claiming more
    // rows than the newest record comes from another program, or, under
    // process durability, from a power loss that kept a header write and
    // lost its record. A file that does not hold the rows of such a header
    // is taken for the power loss (another program's complete write holds
    // them); one that does is refused, since the two look the same.
    if let Some(h) = header_rows
        && h > newest.1.rows
        && (newest.1.data_synced || evidence.claimed.is_some())
        && !files.accept_loss
    {
        let holds = if evidence.claimed.is_some() {
            "and the file holds them"
        } else {
            "(more than the file holds)"
        };
        return Err(disagrees(
            files,
            &format!(
                "the header says {h} rows {holds}, but {} committed only {}: another program \
                 rewrote the file after its writer died (npy-append never writes a header \
                 ahead of its journal)",
                files.journal_path.display(),
                newest.1.rows
            ),
            &evidence,
            &newest.1,
        ));
    }
    let newest_slot = newest.0;
    let (rows, chosen, reanchor) = match check(&newest.1)? {
        CommitCheck::Ok => (newest.1.rows, newest.clone(), None),
        failed if newest.1.data_synced && !files.accept_loss => {
            // The data was synced before this record was written: if it is
            // gone or changed, the disk lost synced data, or another program
            // rewrote the file. Never guess.
            // A file whose length is exactly what its header says (as
            // another program's complete write leaves it) is named as such.
            // (With the journal's own row count in the header, the rows
            // changed on the disk: a checksum mismatch, below.)
            let exact = evidence
                .claimed
                .filter(|&h| h != newest.1.rows && layout.end_of(h) == Some(len));
            if let Some(h) = exact {
                return Err(disagrees(
                    files,
                    &format!(
                        "the file holds exactly the {h} rows its header says, as another \
                         program's write leaves a file, but not the rows {} committed last \
                         (rows {}..{}: {})",
                        files.journal_path.display(),
                        newest.1.prev_rows,
                        newest.1.rows,
                        match failed {
                            CommitCheck::Short { .. } => "the file is too short",
                            _ => "their checksum differs",
                        }
                    ),
                    &evidence,
                    &newest.1,
                ));
            }
            return Err(synced_rows_lost(
                files.path,
                &layout,
                &file_commit(&newest.1),
                failed,
                len,
                &format!("commit {} (journal slot {})", newest.1.sequence, newest.0),
            ));
        }
        CommitCheck::Short { .. } | CommitCheck::BadCrc { .. } => {
            // Process durability and a power loss: the newest commit's data
            // did not all reach the disk. Fall back to the older commit.
            let older = journal
                .older()
                .cloned()
                .filter(|(_, r)| r.sequence < newest.1.sequence);
            let fits = |rows: u64| layout.end_of(rows).is_some_and(|end| end <= len);
            let verified = |older: &Record| Record {
                sequence: newest.1.sequence + 1,
                file_id: evidence.file_id,
                ..older.clone()
            };
            let fallback = match older {
                // Slots alternate (Fsync commits): the older record is the
                // previous commit, whose rows are checked.
                Some((_, older))
                    if older.rows >= newest.1.prev_rows
                        && matches!(check(&older)?, CommitCheck::Ok) =>
                {
                    Some((older.rows, verified(&older)))
                }
                // Process commits all go to one slot, so the other keeps the
                // durable record their writer opened with: fall back to the
                // previous commit when the file holds its rows (unchecked,
                // like every commit but the newest under that durability),
                // else to that durable record.
                Some((_, older)) if older.rows < newest.1.prev_rows => {
                    if fits(newest.1.prev_rows) {
                        Some(unverified(newest.1.prev_rows, newest.1.sequence + 1))
                    } else if matches!(check(&older)?, CommitCheck::Ok) {
                        Some((older.rows, verified(&older)))
                    } else {
                        Some(unverified(older.prev_rows, newest.1.sequence + 1))
                    }
                }
                Some((_, older)) => Some(unverified(older.prev_rows, newest.1.sequence + 1)),
                None => Some(unverified(newest.1.prev_rows, newest.1.sequence + 1)),
            };
            let fallback = fallback.filter(|(rows, _)| fits(*rows)).or_else(|| {
                // The rows before the newest commit did not all reach the
                // disk either (unsynced writes land in any order): fall back
                // to the header's rows (a commit boundary: a header is only
                // written after its record), or to the rows of the header
                // snapshot, which were synced before the journal was created.
                header_rows
                    .into_iter()
                    .chain(Some(layout.rows()))
                    .find(|&rows| rows < newest.1.rows && fits(rows))
                    .map(|rows| unverified(rows, newest.1.sequence + 1))
            });
            match fallback {
                Some((rows, record)) if fits(rows) => {
                    report.dropped_rows = newest.1.rows - rows;
                    // The record of the chosen state goes to the other slot:
                    // if that write is torn, the newest record is still there
                    // and recovery decides the same again. The next commit
                    // then overwrites the dropped record.
                    let slot = newest_slot.other();
                    (rows, (slot, record.clone()), Some((slot, record)))
                }
                _ => {
                    return Err(Error::CommittedDataMissing {
                        path: files.path.to_path_buf(),
                        committed_rows: newest.1.rows,
                        needed_len: layout.end_of(newest.1.rows).unwrap_or(u64::MAX),
                        actual_len: len,
                    });
                }
            }
        }
    };
    // Rows the file's header claims and the file holds are cut only when
    // this writer's protocol can explain them: a header is never ahead of
    // the journal (refused above), so a fallback below the header's rows
    // would cut rows that another program may have written.
    if let Some(h) = evidence.claimed
        && rows < h
    {
        if !files.accept_loss {
            return Err(disagrees(
                files,
                &format!(
                    "the header says {h} rows and the file holds them, but the newest commit \
                     of {} whose rows are intact has {rows}: the rows past it may be another \
                     program's (the journal's last commit, {} rows, is not in the file as \
                     committed)",
                    files.journal_path.display(),
                    newest.1.rows
                ),
                &evidence,
                &newest.1,
            ));
        }
        report.rows_discarded = h - rows;
    }
    let plan_journal = JournalPlan::Keep {
        identity,
        newest: chosen,
        reanchor,
    };
    finish_plan(
        files.path,
        layout,
        rows,
        len,
        &read.raw,
        plan_journal,
        report,
    )
}

/// The refusal of a file whose state the journal's own writes cannot
/// explain: `what` says how the two disagree; the message adds both states
/// and the ways out.
fn disagrees<F>(
    files: &Files<'_, F>,
    what: &str,
    evidence: &FileEvidence,
    newest: &Record,
) -> Error {
    let header = evidence.header_rows.map_or_else(
        || "an unreadable header".to_owned(),
        |h| format!("a header of {h} rows"),
    );
    Error::JournalDisagrees {
        path: files.path.to_path_buf(),
        journal: files.journal_path.to_path_buf(),
        what: format!(
            "{what}. The file: {header}; the journal: last commit of {} rows",
            newest.rows
        ),
    }
}

/// What a single-file journal record says about its file.
fn file_commit(record: &Record) -> FileCommit {
    FileCommit {
        rows: record.rows,
        prev_rows: record.prev_rows,
        data_crc: record.data_crc,
        data_synced: record.data_synced,
    }
}

/// A record for `rows` rows whose data could not be checked.
fn unverified(rows: u64, sequence: u64, file_id: Option<(u64, u64)>) -> (u64, Record) {
    (
        rows,
        Record {
            sequence,
            rows,
            prev_rows: rows,
            data_crc: 0,
            data_synced: false,
            cursor: Vec::new(),
            file_id,
        },
    )
}

/// A file (and journal) after [`apply`]: ready for appending.
pub(crate) struct Applied<F> {
    pub npy: F,
    pub journal: F,
    pub identity: Identity,
    pub newest: (Slot, Record),
    /// Where a journal file this library did not write was moved.
    pub moved_aside: Option<std::path::PathBuf>,
}

/// Creates a journal for `layout` with one record of `rows` rows: identity
/// and slot A in one write, then synced, then the directory synced.
pub(crate) fn create_journal<B: Backend>(
    backend: &B,
    journal_path: &Path,
    layout: &Layout,
    snapshot: Vec<u8>,
    flags: u32,
    rows: u64,
    file_id: Option<(u64, u64)>,
) -> Result<(B::File, Identity, Record)> {
    let identity = Identity {
        flags,
        journal_id: files::new_id(),
        header_len: layout.header.header_len,
        row_bytes: layout.row_bytes,
        snapshot,
    };
    // The record commits no data of its own and says nothing about how the
    // writer's later commits are written, so it does not claim synced data:
    // a header ahead of it after a power loss may come from a commit whose
    // unsynced record was lost (Process durability), not from another program.
    let record = creation_record(rows, file_id);
    let mut bytes = identity
        .encode()
        .map_err(|e| Error::from_format(journal_path, e))?;
    bytes.extend(
        record
            .encode(identity.journal_id)
            .map_err(|e| Error::from_format(journal_path, e))?,
    );
    let file = files::create_locked(backend, journal_path, "creating the journal")?;
    let written = file
        .write_at(&bytes, 0)
        .map_err(|e| Error::io(journal_path, "writing the journal", e))
        .and_then(|()| {
            file.sync_data()
                .map_err(|e| Error::io(journal_path, "syncing the journal", e))
        })
        .and_then(|()| files::sync_parent(backend, journal_path));
    if let Err(e) = written {
        // A failed creation leaves nothing behind: the journal is removed
        // while its lock is held, so no other writer has taken it up.
        let _ = files::remove_durably(backend, journal_path, "removing a failed journal");
        return Err(e);
    }
    Ok((file, identity, record))
}

/// Removes a torn journal creation, or moves a journal file this library
/// did not write aside (to the first free [`move_aside_path`] name); the
/// caller holds its lock. The directory is synced after either.
pub(crate) fn clear_stray<B: Backend>(
    backend: &B,
    journal_path: &Path,
    stray: Stray,
) -> Result<Option<std::path::PathBuf>> {
    match stray {
        Stray::None => Ok(None),
        Stray::Remove => {
            files::remove_durably(backend, journal_path, "removing an incomplete journal")?;
            Ok(None)
        }
        Stray::MoveAside => {
            let aside = move_aside_path(backend, journal_path)?;
            backend
                .rename(journal_path, &aside)
                .map_err(|e| Error::io(journal_path, "moving a foreign journal aside", e))?;
            files::sync_parent(backend, journal_path)?;
            Ok(Some(aside))
        }
    }
}

/// Carries out `plan` on the locked, writable `npy` (or creates it), with
/// the already opened journal `journal` (if any).
pub(crate) fn apply<B: Backend>(
    backend: &B,
    path: &Path,
    journal_path: &Path,
    npy: Option<B::File>,
    journal: Option<B::File>,
    plan: Plan,
) -> Result<Applied<B::File>> {
    let npy = match npy {
        Some(npy) => npy,
        None => files::create_locked(backend, path, "creating the file")?,
    };
    let reanchor = match &plan.journal {
        JournalPlan::Keep { reanchor, .. } => reanchor.clone(),
        JournalPlan::Create { .. } => None,
    };
    // An existing journal and its rows may be in the page cache only (a
    // writer under Process durability died): the state reported at open is
    // made durable before a commit can overwrite a slot, so that a power
    // loss never falls back behind it.
    let kept_journal = matches!(plan.journal, JournalPlan::Keep { .. });
    let mut moved_aside = None;
    let (journal, identity, newest) = match plan.journal {
        JournalPlan::Create {
            existing,
            zero_fill_to,
        } => {
            // Removed or moved while its lock is held (see
            // `Appender::open_existing`).
            moved_aside = clear_stray(backend, journal_path, existing)?;
            drop(journal);
            if let Some(len) = zero_fill_to {
                npy.set_len(len)
                    .map_err(|e| Error::io(path, "completing the last row with zeros", e))?;
            }
            // Rows adopted from another tool's tail were never synced by us
            // (nor the zeros completing a last row).
            npy.sync_data().map_err(|e| Error::io(path, "syncing", e))?;
            let rows = plan.file.rows;
            let snapshot = plan
                .layout
                .header_bytes(rows)
                .map_err(|e| Error::from_format(path, e))?;
            let file_id = npy
                .file_id()
                .map_err(|e| Error::io(path, "reading the file's identity", e))?;
            let (file, identity, record) = create_journal(
                backend,
                journal_path,
                &plan.layout,
                snapshot,
                0,
                rows,
                file_id,
            )?;
            (file, identity, (Slot::A, record))
        }
        JournalPlan::Keep {
            identity, newest, ..
        } => {
            let file = journal.ok_or_else(|| Error::Corrupt {
                path: journal_path.to_path_buf(),
                offset: None,
                what: "journal disappeared while opening".to_owned(),
            })?;
            (file, identity, newest)
        }
    };
    let changed = apply_cut(&npy, path, &plan.raw_header, &plan.file)? || plan.create_npy;
    if changed || kept_journal {
        npy.sync_all().map_err(|e| Error::io(path, "syncing", e))?;
    }
    if plan.create_npy {
        files::sync_parent(backend, path)?;
    }
    if let Some((slot, record)) = reanchor {
        let bytes = record
            .encode(identity.journal_id)
            .map_err(|e| Error::from_format(journal_path, e))?;
        journal
            .write_at(&bytes, journal::slot_offset(identity.block_len(), slot))
            .map_err(|e| Error::io(journal_path, "writing the journal", e))?;
        journal
            .sync_data()
            .map_err(|e| Error::io(journal_path, "syncing the journal", e))?;
    } else if kept_journal {
        journal
            .sync_data()
            .map_err(|e| Error::io(journal_path, "syncing the journal", e))?;
    }
    Ok(Applied {
        npy,
        journal,
        identity,
        newest,
        moved_aside,
    })
}

/// Bytes copied at a time by [`rewrite_with_room`].
const COPY_CHUNK: usize = 8 << 20;

/// The header of `npy` when the file could be appended to but its header
/// has no room to grow (written by numpy < 1.24 or another tool); `None` for
/// any other file, whose problems [`inspect`] reports. Bytes past the
/// header's data count as a problem under [`TailPolicy::Refuse`], and a
/// file shorter than its header under [`ShortFilePolicy::Refuse`] (which
/// change nothing).
pub(crate) fn header_without_room<F: Storage>(
    npy: &F,
    tail_policy: TailPolicy,
    short_file_policy: ShortFilePolicy,
) -> io::Result<Option<Header>> {
    let len = npy.len()?;
    let Ok(header) = files::read_header(npy, len)?.header else {
        return Ok(None);
    };
    Ok(match Layout::without_room(header) {
        Ok(layout)
            if !layout.has_room()
                && layout.end_of(layout.rows()).is_some_and(|end| {
                    end == len
                        || (end < len && tail_policy != TailPolicy::Refuse)
                        || (end > len
                            && len >= layout.header.header_len
                            && short_file_policy != ShortFilePolicy::Refuse)
                }) =>
        {
            Some(layout.header)
        }
        _ => None,
    })
}

/// The header [`rewrite_with_room`] gives a copy of a file whose `header`
/// has no room to grow: numpy's own for the same dtype, order and shape.
pub(crate) fn room_header(header: &Header) -> Result<Vec<u8>, FormatError> {
    header::build(&header.dtype, header.fortran_order, &header.shape)
}

/// Removes a leftover [`rewrite_path`] file of `path`, durably. The caller
/// holds the writer lock on `path`, so no rewrite is running.
pub(crate) fn remove_rewrite_leftover<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    files::remove_durably(
        backend,
        &files::rewrite_path(path),
        "removing a leftover rewrite",
    )?;
    Ok(())
}

/// Replaces the file at `path` (open as `old`, its writer lock held), whose
/// `header` has no room to grow, by a copy with a header that has room:
/// the copy is written to [`rewrite_path`] (created and locked), synced,
/// renamed over `path`, and the directory synced. Returns the new file, still
/// locked, now named `path`.
///
/// `old` is only read, so a crash before the rename leaves it whole (and a
/// leftover temporary file the next writer removes); the copy is durable
/// before the rename, so a crash after it leaves the new file whole. The
/// bytes after the header, tail included, are copied unchanged.
pub(crate) fn rewrite_with_room<B: Backend>(
    backend: &B,
    path: &Path,
    old: &B::File,
    header: &Header,
) -> Result<B::File> {
    let temp = files::rewrite_path(path);
    let dir = files::parent_dir(path);
    let bytes = room_header(header).map_err(|e| corrupt(path, e))?;
    let file =
        files::create_locked(backend, &temp, "creating the rewritten file").map_err(|e| match e
            .io_kind()
        {
            Some(io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem) => {
                Error::Unsupported {
                    path: Some(path.to_path_buf()),
                    what: format!(
                        "the {}-byte header has no room to grow the row count (written by \
                         numpy < 1.24 or another tool), and the rewrite that gives it room \
                         needs to create {} in {}, which is not writable; make the directory \
                         writable, or rewrite the file elsewhere with numpy >= 1.24: \
                         np.save(path, np.load(path))",
                        header.header_len,
                        temp.display(),
                        dir.display()
                    ),
                }
            }
            _ => e,
        })?;
    let copied = copy_after_header(old, &file, header.header_len, bytes.len() as u64)
        .map_err(|e| Error::io(&temp, "writing the rewritten file", e));
    let written = copied.and_then(|()| {
        file.write_at(&bytes, 0)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&temp, "writing the rewritten file", e))
    });
    if let Err(e) = written {
        // The old file is untouched; the partial copy goes (a failure to
        // remove it leaves a leftover the next writer removes).
        drop(file);
        let _ = backend.remove(&temp);
        return Err(e);
    }
    if let Err(e) = backend.rename(&temp, path) {
        drop(file);
        let _ = backend.remove(&temp);
        return Err(Error::io(
            path,
            "replacing the file by its rewritten copy",
            e,
        ));
    }
    files::sync_parent(backend, path)?;
    Ok(file)
}

/// Copies the bytes of `from` after its `from_header` bytes to `to` at
/// `to_header`, in chunks.
fn copy_after_header<F: Storage>(
    from: &F,
    to: &F,
    from_header: u64,
    to_header: u64,
) -> io::Result<()> {
    let end = from.len()?;
    let total = end.saturating_sub(from_header);
    let mut buf = vec![0u8; usize::try_from(total).unwrap_or(COPY_CHUNK).min(COPY_CHUNK)];
    let mut done = 0u64;
    while done < total {
        let n = usize::try_from(total - done)
            .unwrap_or(buf.len())
            .min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        from.read_at(chunk, from_header + done)?;
        to.write_at(chunk, to_header + done)?;
        done += n as u64;
    }
    Ok(())
}
