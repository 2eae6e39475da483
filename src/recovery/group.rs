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
use crate::format::layout::Layout;
use crate::storage::{Backend, OpenMode, Storage};

/// What a group journal holds: its identity and the newest valid record.
pub(crate) struct GroupJournalRead {
    pub identity: GroupIdentity,
    pub newest: Option<(Slot, GroupRecord)>,
}

/// Reads the identity and the newest valid slot of a group journal.
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
    let mut newest: Option<(Slot, GroupRecord)> = None;
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
        if let Ok(record) = GroupRecord::decode(&rec, identity.group_id, count)
            && newest
                .as_ref()
                .is_none_or(|(_, n)| record.sequence > n.sequence)
        {
            newest = Some((slot, record));
        }
    }
    Ok(GroupJournalRead { identity, newest })
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

/// Decides how member `m` (at `member_path`, opened as `file` when it
/// exists) is brought to `commit` of group record `sequence`, reading only.
///
/// Group commits are synced: a member missing committed rows, or whose rows
/// fail their CRC, or whose header is ahead of the record, is refused
/// (nothing changed), as for a single file under fsync durability.
pub(crate) fn plan_member<F: Storage>(
    member_path: &Path,
    journal_path: &Path,
    m: &MemberIdentity,
    file: Option<&F>,
    commit: &MemberCommit,
    sequence: u64,
) -> Result<MemberPlan> {
    let mut layout = member_layout(journal_path, m)?;
    let Some(file) = file else {
        if commit.rows > 0 {
            return Err(Error::CommittedDataMissing {
                path: member_path.to_path_buf(),
                committed_rows: commit.rows,
                needed_len: layout.end_of(commit.rows).unwrap_or(u64::MAX),
                actual_len: 0,
            });
        }
        let header = layout
            .header_bytes(0)
            .map_err(|e| Error::from_format(member_path, e))?;
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
    let len = file
        .len()
        .map_err(|e| Error::io(member_path, "reading the length", e))?;
    let read: HeaderRead = files::read_header(file, len)
        .map_err(|e| Error::io(member_path, "reading the header", e))?;
    // A member the group was creating (no rows, no data yet) is rebuilt from
    // its snapshot whatever its header holds.
    let creating = commit.rows == 0 && len <= m.header_len;
    check_binding(
        member_path,
        journal_path,
        &layout,
        &m.snapshot,
        creating,
        &read,
    )?;
    refuse_header_ahead(member_path, journal_path, &read, commit.rows)?;
    let commit = FileCommit {
        rows: commit.rows,
        prev_rows: commit.prev_rows,
        data_crc: commit.data_crc,
        data_synced: true,
    };
    let check = check_commit(member_path, &layout, file, len, &commit)?;
    if check != CommitCheck::Ok {
        return Err(synced_rows_lost(
            member_path,
            &layout,
            &commit,
            check,
            len,
            &format!("group commit {sequence}"),
        ));
    }
    let plan = plan_cut(member_path, &layout, commit.rows, len, &read.raw, false)?;
    layout.set_rows(commit.rows);
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
