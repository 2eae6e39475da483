//! Recovery of an append group: reading the group journal, and the plan
//! that brings each member to the newest group record, made of the same
//! per-file steps as a single file's recovery ([`super::file`]).

use std::io;
use std::path::{Path, PathBuf};

use super::file::{
    CommitCheck, FileCommit, FilePlan, check_binding, check_commit, plan_cut, refuse_header_ahead,
    snapshot_layout, synced_rows_lost,
};
use crate::error::{Error, Result};
use crate::files::{self, HeaderRead};
use crate::format::group_journal::{
    self, GroupIdentity, GroupRecord, MemberCommit, MemberIdentity, Slot,
};
use crate::format::header;
use crate::format::layout::Layout;
use crate::storage::{Backend, OpenMode, Storage};

/// What a group journal holds: its identity, the newest valid record and
/// the valid record of the other slot.
pub(crate) struct GroupJournalRead {
    pub identity: GroupIdentity,
    pub newest: Option<(Slot, GroupRecord)>,
    pub older: Option<(Slot, GroupRecord)>,
}

/// Reads the identity and the valid slots of a group journal.
///
/// A slot that is short (an unexpected end of file), torn or of another
/// journal is left out; any other read error is an error, so that an I/O
/// failure on the newest slot never makes an older record look newest.
pub(crate) fn read_group_journal<F: Storage>(file: &F, path: &Path) -> Result<GroupJournalRead> {
    let io_err = |e| Error::io(path, "reading the group journal", e);
    let len = file
        .len()
        .map_err(|e| Error::io(path, "reading the length", e))?;
    let fixed = files::read_vec(file, 0, len.min(group_journal::IDENTITY_FIXED_LEN as u64))
        .map_err(io_err)?;
    let body_len = GroupIdentity::body_len(&fixed).map_err(|e| Error::from_format(path, e))?;
    let want = (group_journal::IDENTITY_FIXED_LEN + body_len) as u64;
    if want > len {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: format!("group journal is {len} bytes, its identity needs {want}"),
        });
    }
    let bytes = files::read_vec(file, 0, want).map_err(io_err)?;
    let identity = GroupIdentity::decode(&bytes).map_err(|e| Error::from_format(path, e))?;
    let count = identity.members.len();
    let mut valid: Vec<(Slot, GroupRecord)> = Vec::with_capacity(2);
    for slot in [Slot::A, Slot::B] {
        let at = identity.slot_offset(slot);
        let Some(head) = read_or_short(file, at, group_journal::SLOT_FIXED_LEN).map_err(io_err)?
        else {
            continue;
        };
        let Some(need) = GroupRecord::len_from_fixed(&head, count) else {
            continue;
        };
        let Some(rec) = read_or_short(file, at, need).map_err(io_err)? else {
            continue;
        };
        if let Ok(record) = GroupRecord::decode(&rec, identity.group_id, count) {
            valid.push((slot, record));
        }
    }
    valid.sort_by_key(|(_, r)| std::cmp::Reverse(r.sequence));
    let mut valid = valid.into_iter();
    Ok(GroupJournalRead {
        identity,
        newest: valid.next(),
        older: valid.next(),
    })
}

/// `len` bytes at `at`, `None` when the file ends first.
fn read_or_short<F: Storage>(file: &F, at: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match file.read_at(&mut buf, at) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a group journal that does not decode is the torn write that
/// creates a group ([`group_journal::is_torn_creation`]; the caller also
/// checks that no member exists yet). Anything else, a newer format
/// included, is not replaced.
pub(crate) fn torn_creation<F: Storage>(journal: &F) -> io::Result<bool> {
    let len = journal.len()?;
    let bytes = files::read_vec(journal, 0, len.min(MAX_CREATION_READ))?;
    Ok(len <= MAX_CREATION_READ && group_journal::is_torn_creation(&bytes))
}

/// Whether the creation of the group read in `read` (journal at
/// `journal_path`) looks unfinished: no valid record, or the first member
/// missing or shorter than its header.
///
/// A creating writer locks the group journal first, then creates each
/// member and locks it at once; a writer opening an existing group locks
/// the journal, then every member. So once the first member is complete,
/// whoever writes the group holds its lock, and readers probe that lock
/// ([`Storage::lock_is_held`]); only while the creation is unfinished do
/// they probe the group journal's lock instead, and only then does a writer
/// opening the group take a held journal lock for a probe (see
/// `docs/design.md`, "Writer state").
pub(crate) fn creation_incomplete<B: Backend>(
    backend: &B,
    journal_path: &Path,
    read: &GroupJournalRead,
) -> Result<bool> {
    let Some(first) = read.identity.members.first() else {
        return Ok(true);
    };
    if read.newest.is_none() {
        return Ok(true);
    }
    let path = files::parent_dir(journal_path).join(&first.name);
    match backend.open(&path, OpenMode::Read) {
        Ok(file) => Ok(file
            .len()
            .map_err(|e| Error::io(&path, "reading the length", e))?
            < first.header_len),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(&path, "opening a group member", e)),
    }
}

/// [`creation_incomplete`] for a writer whose lock on the group journal at
/// `journal_path` was refused: false (another writer) unless the journal
/// reads and its creation is unfinished.
pub(crate) fn creation_incomplete_at<B: Backend>(backend: &B, journal_path: &Path) -> bool {
    backend
        .open(journal_path, OpenMode::Read)
        .ok()
        .and_then(|file| read_group_journal(&file, journal_path).ok())
        .is_some_and(|read| creation_incomplete(backend, journal_path, &read).unwrap_or(false))
}

/// The most bytes of a group journal read to judge a torn creation.
const MAX_CREATION_READ: u64 = 64 << 20;

/// The layout a member's header snapshot describes, checked.
pub(crate) fn member_layout(journal: &Path, m: &MemberIdentity) -> Result<Layout> {
    snapshot_layout(
        journal,
        journal,
        &m.snapshot,
        m.header_len,
        m.row_bytes,
        &format!("member {}: ", m.name),
    )
}

/// What recovery does to one member.
#[derive(Debug, Clone)]
pub(crate) struct MemberPlan {
    /// The member's layout at the committed rows.
    pub layout: Layout,
    /// The cut and header rewrite.
    pub file: FilePlan,
    /// The header bytes the member holds (as many as it has; none when the
    /// member does not exist and is created from its snapshot, because the
    /// group's writer died creating it, before any commit).
    pub raw_header: Vec<u8>,
}

/// What recovery does to a group: the record every member is brought to,
/// and each member's plan.
pub(crate) struct GroupPlan {
    /// The record recovered to and its slot: the newest record, or a
    /// fallback that goes to `slot` (see `write_chosen`).
    pub chosen: (Slot, GroupRecord),
    /// The chosen record is a fallback from the newest record and must be
    /// written (to its slot, after the members are cut and synced).
    pub write_chosen: bool,
    /// The highest sequence of a valid record on disk.
    pub last_sequence: u64,
    /// Each member's plan, in order.
    pub members: Vec<MemberPlan>,
    /// Each member's rows of the newest record that recovery did not keep
    /// (a Process commit whose data a power loss did not keep).
    pub dropped_rows: Vec<u64>,
}

/// A refusal of [`plan_group`], with the member it is about.
pub(crate) struct Refusal {
    /// The member's index; `None` when the refusal is about the group.
    pub member: Option<usize>,
    pub error: Error,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        r.error
    }
}

/// Tags errors with member `i`.
fn about<T>(i: usize, r: Result<T>) -> Result<T, Refusal> {
    r.map_err(|error| Refusal {
        member: Some(i),
        error,
    })
}

/// One member as recovery reads it.
struct Found<'a, F> {
    path: &'a Path,
    file: Option<&'a F>,
    layout: Layout,
    len: u64,
    read: Option<HeaderRead>,
}

impl<F: Storage> Found<'_, F> {
    /// Whether the member holds `rows` rows (a missing member holds none).
    fn fits(&self, rows: u64) -> bool {
        rows == 0 || self.layout.end_of(rows).is_some_and(|end| end <= self.len)
    }

    /// Checks that the member holds `commit`'s rows, its CRC included.
    fn check(&self, commit: &MemberCommit) -> Result<CommitCheck> {
        let Some(file) = self.file else {
            return Ok(if commit.rows == 0 {
                CommitCheck::Ok
            } else {
                CommitCheck::Short {
                    needed: self.layout.end_of(commit.rows).unwrap_or(u64::MAX),
                }
            });
        };
        check_commit(
            self.path,
            &self.layout,
            file,
            self.len,
            &file_commit(commit, true),
        )
    }

    /// The rows the member's header shows.
    fn header_rows(&self) -> Option<u64> {
        let read = self.read.as_ref()?;
        read.header
            .as_ref()
            .ok()
            .and_then(header::Header::growth_len)
    }
}

fn file_commit(commit: &MemberCommit, data_synced: bool) -> FileCommit {
    FileCommit {
        rows: commit.rows,
        prev_rows: commit.prev_rows,
        data_crc: commit.data_crc,
        data_synced,
    }
}

/// Decides how every member of the group whose journal at `journal_path`
/// reads as `read` (a newest record included) is brought to one record,
/// reading only; `members` are the members' paths and files (`None` when
/// missing), in order.
///
/// A newest record whose rows were synced first (every Fsync commit and
/// mark) is kept or refused: a member missing committed rows, or whose rows
/// fail their CRC, or whose header is ahead of the record, is refused
/// (nothing changed), as for a single file under fsync durability. A newest
/// record of a Process commit (`data_synced` clear) is kept when every
/// member holds its rows with their CRC; else recovery falls back, for all
/// members alike, to the commit before it: the other slot's record when it
/// has those rows, else those rows unverified (an empty cursor), else the
/// other slot's record (the durable record the Process writer opened with).
/// A member whose header claims rows it holds beyond the kept record is
/// refused (another program's write looks the same) unless `accept_loss`,
/// or unless they are rows of the newest commit that passed their check in
/// that member (its own rows, cut with the others);
/// with `accept_loss`, a synced newest record is treated as a Process one.
pub(crate) fn plan_group<F: Storage>(
    journal_path: &Path,
    read: &GroupJournalRead,
    newest: &(Slot, GroupRecord),
    members: &[(PathBuf, Option<F>)],
    accept_loss: bool,
) -> Result<GroupPlan, Refusal> {
    let (newest_slot, record) = newest;
    let mut found = Vec::with_capacity(members.len());
    for (i, ((path, file), (m, commit))) in members
        .iter()
        .zip(read.identity.members.iter().zip(&record.members))
        .enumerate()
    {
        found.push(about(
            i,
            read_member(path, journal_path, m, file.as_ref(), commit),
        )?);
    }
    let strict = record.data_synced && !accept_loss;
    let mut chosen = (*newest_slot, record.clone());
    let mut write_chosen = false;
    let mut intact = Vec::with_capacity(found.len());
    let mut failed = None;
    for (i, (f, commit)) in found.iter().zip(&record.members).enumerate() {
        if strict && let Some(read) = &f.read {
            about(
                i,
                refuse_header_ahead(f.path, journal_path, read, commit.rows),
            )?;
        }
        let check = about(i, f.check(commit))?;
        intact.push(check == CommitCheck::Ok);
        if check == CommitCheck::Ok || failed.is_some() {
            continue;
        }
        if strict {
            return about(
                i,
                Err(synced_rows_lost(
                    f.path,
                    &f.layout,
                    &file_commit(commit, true),
                    check,
                    f.len,
                    &format!("group commit {}", record.sequence),
                )),
            );
        }
        failed = Some((i, check));
    }
    if let Some((i, check)) = failed
        && let (Some(f), Some(commit)) = (found.get(i), record.members.get(i))
    {
        chosen = about(i, fallback(read, newest, &found, f, commit, check))?;
        write_chosen = true;
    }
    let kept = &chosen.1;
    if !strict && !accept_loss {
        refuse_claimed(journal_path, &found, &intact, kept, record)?;
    }
    let mut plans = Vec::with_capacity(found.len());
    let mut dropped_rows = Vec::with_capacity(found.len());
    for (i, ((f, keep), newest_commit)) in found
        .into_iter()
        .zip(&kept.members)
        .zip(&record.members)
        .enumerate()
    {
        dropped_rows.push(newest_commit.rows.saturating_sub(keep.rows));
        plans.push(about(i, member_plan(f, keep.rows))?);
    }
    let last_sequence = read
        .older
        .as_ref()
        .map_or(record.sequence, |(_, o)| o.sequence.max(record.sequence));
    Ok(GroupPlan {
        chosen,
        write_chosen,
        last_sequence,
        members: plans,
        dropped_rows,
    })
}

/// Refuses a member whose header claims rows it holds beyond the `kept`
/// record, unless they are rows of the newest record (`newest`) that passed
/// their check in that member (`intact`): this writer's own rows, cut with
/// the other members'.
fn refuse_claimed<F: Storage>(
    journal_path: &Path,
    found: &[Found<'_, F>],
    intact: &[bool],
    kept: &GroupRecord,
    newest: &GroupRecord,
) -> Result<(), Refusal> {
    for (i, ((f, keep), newest_commit)) in found
        .iter()
        .zip(&kept.members)
        .zip(&newest.members)
        .enumerate()
    {
        let own = intact.get(i) == Some(&true) && f.header_rows() <= Some(newest_commit.rows);
        if let Some(h) = f.header_rows()
            && h > keep.rows
            && f.fits(h)
            && !own
        {
            return about(
                i,
                Err(Error::JournalDisagrees {
                    path: f.path.to_path_buf(),
                    journal: journal_path.to_path_buf(),
                    what: format!(
                        "the header says {h} rows and the file holds them, but the newest \
                         group commit whose rows are intact has {} (a power loss under \
                         process durability can keep a commit's header and lose its record, \
                         and another program's write looks the same). The file: a header of \
                         {h} rows; the journal: last commit of {} rows",
                        keep.rows, newest_commit.rows
                    ),
                }),
            );
        }
    }
    Ok(())
}

/// Reads member `m` (at `path`, `file` when it exists) and checks that it
/// is the member the journal describes.
fn read_member<'a, F: Storage>(
    path: &'a Path,
    journal_path: &Path,
    m: &MemberIdentity,
    file: Option<&'a F>,
    newest: &MemberCommit,
) -> Result<Found<'a, F>> {
    let layout = member_layout(journal_path, m)?;
    let Some(f) = file else {
        return Ok(Found {
            path,
            file,
            layout,
            len: 0,
            read: None,
        });
    };
    let len = f
        .len()
        .map_err(|e| Error::io(path, "reading the length", e))?;
    let read: HeaderRead =
        files::read_header(f, len).map_err(|e| Error::io(path, "reading the header", e))?;
    // A member the group was creating (no rows, no data yet) is rebuilt from
    // its snapshot whatever its header holds.
    let creating = newest.rows == 0 && len <= m.header_len;
    check_binding(path, journal_path, &layout, &m.snapshot, creating, &read)?;
    Ok(Found {
        path,
        file,
        layout,
        len,
        read: Some(read),
    })
}

/// The record a Process commit whose rows `failed` (member `f`, `commit`)
/// falls back to, for every member, and its slot: the commit before the
/// newest (the other slot's record when it has exactly those rows, checked;
/// else those rows when every member holds them, unverified), else the
/// other slot's record when every member holds it intact. Its sequence
/// follows every record on disk; it goes to the slot of the record it does
/// not come from, so that a torn write of it leaves a journal recovery
/// decides the same way again.
fn fallback<F: Storage>(
    read: &GroupJournalRead,
    newest: &(Slot, GroupRecord),
    found: &[Found<'_, F>],
    f: &Found<'_, F>,
    commit: &MemberCommit,
    failed: CommitCheck,
) -> Result<(Slot, GroupRecord)> {
    let (newest_slot, record) = newest;
    let older = read
        .older
        .as_ref()
        .filter(|(_, o)| o.sequence < record.sequence);
    let sequence = older.map_or(record.sequence, |(_, o)| o.sequence.max(record.sequence)) + 1;
    let intact = |o: &GroupRecord| -> Result<bool> {
        for (f, c) in found.iter().zip(&o.members) {
            if f.check(c)? != CommitCheck::Ok {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let is_previous = |o: &GroupRecord| {
        o.members
            .iter()
            .zip(&record.members)
            .all(|(o, n)| o.rows == n.prev_rows)
    };
    if let Some((_, o)) = older
        && is_previous(o)
        && intact(o)?
    {
        return Ok((*newest_slot, renumbered(o, sequence)));
    }
    if found
        .iter()
        .zip(&record.members)
        .all(|(f, c)| f.fits(c.prev_rows))
    {
        let previous = GroupRecord {
            sequence,
            data_synced: false,
            closed: false,
            members: record
                .members
                .iter()
                .map(|c| MemberCommit {
                    rows: c.prev_rows,
                    prev_rows: c.prev_rows,
                    data_crc: 0,
                })
                .collect(),
            cursor: Vec::new(),
        };
        return Ok((newest_slot.other(), previous));
    }
    if let Some((_, o)) = older
        && intact(o)?
    {
        return Ok((*newest_slot, renumbered(o, sequence)));
    }
    Err(synced_rows_lost(
        f.path,
        &f.layout,
        &file_commit(commit, false),
        failed,
        f.len,
        &format!(
            "group commit {} (neither it nor an earlier commit is intact in every member)",
            record.sequence
        ),
    ))
}

/// `record` as a new record numbered `sequence`, claiming no synced data
/// beyond what it had.
fn renumbered(record: &GroupRecord, sequence: u64) -> GroupRecord {
    GroupRecord {
        sequence,
        ..record.clone()
    }
}

/// The cut and header rewrite that bring member `f` to `rows`.
fn member_plan<F: Storage>(f: Found<'_, F>, rows: u64) -> Result<MemberPlan> {
    let mut layout = f.layout;
    let Some(read) = f.read else {
        // Missing: created from its snapshot (only ever with no rows).
        let header = layout
            .header_bytes(0)
            .map_err(|e| Error::from_format(f.path, e))?;
        return Ok(MemberPlan {
            layout,
            file: FilePlan {
                rows: 0,
                cut_to: None,
                bytes_cut: 0,
                header_write: Some(header),
            },
            raw_header: Vec::new(),
        });
    };
    let plan = plan_cut(f.path, &layout, rows, f.len, &read.raw, false)?;
    layout.set_rows(rows);
    Ok(MemberPlan {
        layout,
        file: plan,
        raw_header: read.raw,
    })
}

/// Whether any of `paths` exists.
pub(crate) fn any_exists<B: Backend>(
    backend: &B,
    paths: impl IntoIterator<Item = PathBuf>,
) -> Result<bool> {
    for path in paths {
        if backend
            .exists(&path)
            .map_err(|e| Error::io(&path, "checking", e))?
        {
            return Ok(true);
        }
    }
    Ok(false)
}
