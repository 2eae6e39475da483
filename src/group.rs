//! Several `.npy` files committed together: an append group.
//!
//! An [`AppendGroup`] writes a set of member `.npy` files (for example
//! `x.npy` (N, 128) f32, `y.npy` (N,) i64 and `ids.npy` (N,) u64) and one
//! group journal. A group commit writes every member's pending rows past its
//! committed end, syncs every member, then writes one record holding every
//! member's committed row count and the cursor into the older of the group
//! journal's two slots and syncs it, and only then rewrites the members'
//! headers. Recovery cuts every member back to the newest record and fixes
//! its header, so after a crash all members agree with one commit. Each
//! member stays a plain `.npy` that numpy reads on its own, never showing a
//! row its group did not commit; a [`GroupReader`] shows a consistent
//! snapshot of all members.
//!
//! The group journal names its members (file names in its own directory)
//! and stays after a clean close: it is the group's manifest and keeps the
//! last cursor. Each member has a marker `<member>.group-member` beside it
//! naming the group, so that an [`Appender`](crate::Appender) refuses to
//! open a member on its own ([`Error::GroupMember`]).
//!
//! Group commits are always synced (the equivalent of
//! [`Durability::Fsync`](crate::Durability::Fsync)).

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::appender::{lock, locked_file_has_path, read_whole};
use crate::element::{self, Element};
use crate::error::{Error, Poison, Result};
use crate::format::FormatError;
use crate::format::dtype::{Dtype, Kind};
use crate::format::group_journal::{
    self, GroupIdentity, GroupRecord, MemberCommit, MemberIdentity, Slot,
};
use crate::format::header;
use crate::options::LockWait;
use crate::recovery::{self, Layout};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};

/// Default size of each member's buffer for small appends.
const DEFAULT_BUFFER_BYTES: usize = 256 << 10;

/// The marker beside a group member: `<member>.group-member`.
pub fn member_marker_path(member: &Path) -> PathBuf {
    let mut os = member.as_os_str().to_owned();
    os.push(".group-member");
    PathBuf::from(os)
}

/// `GroupMember` when a marker says `path` belongs to a group.
pub(crate) fn refuse_member<B: Backend>(backend: &B, path: &Path) -> Result<()> {
    let marker = member_marker_path(path);
    match read_whole(backend, &marker)? {
        None => Ok(()),
        Some(bytes) => Err(Error::GroupMember {
            path: path.to_path_buf(),
            group: String::from_utf8_lossy(&bytes).trim().to_owned(),
            marker,
        }),
    }
}

/// One member of a group: its file name and, for creation, its dtype and
/// row shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    name: String,
    dtype: Dtype,
    row_shape: Vec<u64>,
}

impl MemberSpec {
    /// A member named `name` (a file name in the group journal's directory)
    /// with numpy's `descr` (`"<f4"`) and the shape of one row (`[]` for a
    /// 1-D array).
    pub fn new(name: &str, descr: &str, row_shape: &[u64]) -> Result<Self> {
        let dtype = crate::AppendOptions::new()
            .dtype(descr)?
            .dtype
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("dtype {descr:?}"),
            })?;
        Ok(Self::with_dtype(name, dtype, row_shape))
    }

    /// A member with a parsed dtype.
    pub fn with_dtype(name: &str, dtype: Dtype, row_shape: &[u64]) -> Self {
        Self {
            name: name.to_owned(),
            dtype,
            row_shape: row_shape.to_vec(),
        }
    }

    /// A member holding values of `T`.
    pub fn of<T: Element>(name: &str, row_shape: &[u64]) -> Self {
        Self::with_dtype(name, T::dtype(), row_shape)
    }

    /// The member's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's dtype.
    pub fn dtype(&self) -> &Dtype {
        &self.dtype
    }

    /// The shape of one row.
    pub fn row_shape(&self) -> &[u64] {
        &self.row_shape
    }
}

/// Options for opening an [`AppendGroup`]: `GroupOptions::new().member(..)
/// .open(group_path)`.
#[derive(Debug, Clone, Default)]
pub struct GroupOptions {
    members: Vec<MemberSpec>,
    lock_wait: LockWait,
    buffer_bytes: Option<usize>,
}

impl GroupOptions {
    /// No members (opening then needs an existing group), fail at once when
    /// locked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member. A new group is created with these members; an existing
    /// group must have exactly these members, in this order, with these
    /// dtypes and row shapes.
    #[must_use]
    pub fn member(mut self, spec: MemberSpec) -> Self {
        self.members.push(spec);
        self
    }

    /// What to do when another writer holds a lock of the group.
    #[must_use]
    pub fn lock_wait(mut self, lock_wait: LockWait) -> Self {
        self.lock_wait = lock_wait;
        self
    }

    /// Size of each member's buffer for small appends (default 256 KiB).
    #[must_use]
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = Some(bytes);
        self
    }

    /// Opens, creates or recovers the group whose journal is `path` on the
    /// real file system.
    pub fn open(self, path: impl AsRef<Path>) -> Result<AppendGroup<FsBackend>> {
        AppendGroup::open_with(FsBackend, path.as_ref(), &self)
    }

    /// Opens, creates or recovers the group whose journal is `path` on
    /// `backend`.
    pub fn open_with<B: Backend>(
        self,
        backend: B,
        path: impl AsRef<Path>,
    ) -> Result<AppendGroup<B>> {
        AppendGroup::open_with(backend, path.as_ref(), &self)
    }
}

struct Member<F> {
    path: PathBuf,
    file: F,
    layout: Layout,
    row_values: u64,
    committed: u64,
    pending: u64,
    written_end: u64,
    buffer: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Writes several `.npy` files whose commits are one: after a crash every
/// member holds the rows of the same group commit.
///
/// A group commit writes every member's pending rows past its committed
/// end, syncs every member, writes one record holding every member's
/// committed row count and the cursor into the older of the group journal's
/// two slots and syncs it, and only then rewrites the members' headers.
/// Opening cuts every member back to the newest record and fixes its
/// header. Each member stays a plain `.npy` that numpy reads on its own and
/// that never shows a row the group did not commit; [`GroupReader`] shows a
/// consistent snapshot of all members. Commits are always synced.
///
/// The group journal names its members (file names in its own directory)
/// and stays after [`close`](Self::close): it is the group's manifest and
/// keeps the last cursor. Each member has a marker `<member>.group-member`
/// beside it ([`member_marker_path`]), so that an
/// [`Appender`](crate::Appender) refuses to open a member on its own
/// ([`Error::GroupMember`]). One writer per group: the writer locks the
/// group journal and every member.
///
/// Dropping a group without [`close`](Self::close) has the effect of a
/// crash: pending rows are cut by the next open; committed rows stay.
pub struct AppendGroup<B: Backend = FsBackend> {
    /// Kept for the lifetime of the files opened through it.
    _backend: B,
    path: PathBuf,
    journal: B::File,
    identity: GroupIdentity,
    members: Vec<Member<B::File>>,
    next_slot: Slot,
    next_sequence: u64,
    /// The cursor the next commit records.
    next_cursor: Vec<u8>,
    committed_cursor: Vec<u8>,
    cursor_dirty: bool,
    buffer_bytes: usize,
    bytes_cut: u64,
    poisoned: Poison,
}

/// The directory holding the group journal, where the members are.
fn group_dir(path: &Path) -> &Path {
    recovery::parent_dir(path)
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |e| Error::io(path, op, e)
}

fn corrupt(path: &Path, what: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset: None,
        what: what.into(),
    }
}

/// The layout a member's header snapshot describes.
fn snapshot_layout(journal: &Path, m: &MemberIdentity) -> Result<Layout> {
    let parsed = header::parse(&m.snapshot)
        .map_err(|e| corrupt(journal, format!("member {}: header snapshot: {e}", m.name)))?;
    let layout = Layout::new(parsed).map_err(|e| Error::from_format(journal, e))?;
    if layout.row_bytes != m.row_bytes || layout.header.header_len != m.header_len {
        return Err(corrupt(
            journal,
            format!(
                "member {}: identity disagrees with its header snapshot",
                m.name
            ),
        ));
    }
    Ok(layout)
}

/// What the group journal holds.
struct JournalState {
    identity: GroupIdentity,
    newest: Option<(Slot, GroupRecord)>,
}

/// Reads the identity and the newest valid slot of a group journal.
fn read_group_journal<F: Storage>(file: &F, path: &Path) -> Result<JournalState> {
    let len = file.len().map_err(io(path, "reading the length"))?;
    let mut fixed = vec![0u8; len.min(group_journal::IDENTITY_FIXED_LEN as u64) as usize];
    file.read_at(&mut fixed, 0)
        .map_err(io(path, "reading the group journal"))?;
    let body_len = GroupIdentity::body_len(&fixed).map_err(|e| Error::from_format(path, e))?;
    let want = (group_journal::IDENTITY_FIXED_LEN + body_len) as u64;
    if want > len {
        return Err(corrupt(
            path,
            format!("group journal is {len} bytes, its identity needs {want}"),
        ));
    }
    let mut bytes = vec![0u8; want as usize];
    file.read_at(&mut bytes, 0)
        .map_err(io(path, "reading the group journal"))?;
    let identity = GroupIdentity::decode(&bytes).map_err(|e| Error::from_format(path, e))?;
    let count = identity.members.len();
    let mut newest: Option<(Slot, GroupRecord)> = None;
    for slot in [Slot::A, Slot::B] {
        let at = identity.slot_offset(slot);
        let mut head = vec![0u8; group_journal::SLOT_FIXED_LEN];
        if file.read_at(&mut head, at).is_err() {
            continue;
        }
        let Some(need) = GroupRecord::len_from_fixed(&head, count) else {
            continue;
        };
        let mut rec = vec![0u8; need];
        if file.read_at(&mut rec, at).is_err() {
            continue;
        }
        if let Ok(record) = GroupRecord::decode(&rec, identity.group_id, count)
            && newest
                .as_ref()
                .is_none_or(|(_, n)| record.sequence > n.sequence)
        {
            newest = Some((slot, record));
        }
    }
    Ok(JournalState { identity, newest })
}

impl<B: Backend> AppendGroup<B> {
    fn open_with(backend: B, path: &Path, options: &GroupOptions) -> Result<Self> {
        let buffer_bytes = options.buffer_bytes.unwrap_or(DEFAULT_BUFFER_BYTES).max(1);
        let journal = match backend.open(path, OpenMode::ReadWrite) {
            Ok(file) => {
                lock(&file, path, options.lock_wait)?;
                locked_file_has_path(&backend, &file, path)?;
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Self::create(backend, path, options, buffer_bytes);
            }
            Err(e) => return Err(Error::io(path, "opening the group journal", e)),
        };
        let state = match read_group_journal(&journal, path) {
            Ok(state) => state,
            Err(e @ Error::Corrupt { .. })
                if !options.members.is_empty() && torn_creation(&journal) =>
            {
                // The creation's one write was torn: no member was created
                // yet (members follow the synced journal). Start again, but
                // never over files the journal could be describing.
                let dir = group_dir(path);
                for spec in &options.members {
                    let member = dir.join(&spec.name);
                    if backend.exists(&member).map_err(io(&member, "checking"))? {
                        return Err(e);
                    }
                }
                backend
                    .remove(path)
                    .map_err(io(path, "removing a torn group journal"))?;
                drop(journal);
                return Self::create(backend, path, options, buffer_bytes);
            }
            Err(e) => return Err(e),
        };
        check_specs(path, &state.identity, &options.members)?;
        Self::recover(
            backend,
            path,
            journal,
            state,
            options.lock_wait,
            buffer_bytes,
        )
    }

    /// Creates a new group: the journal (identity and a first record of
    /// zero rows, one write, synced), then the markers, then the members,
    /// each synced with the directory.
    fn create(
        backend: B,
        path: &Path,
        options: &GroupOptions,
        buffer_bytes: usize,
    ) -> Result<Self> {
        if options.members.is_empty() {
            return Err(Error::InvalidArgument {
                what: format!(
                    "{}: no group journal there; give the members to create a group",
                    path.display()
                ),
            });
        }
        let dir = group_dir(path);
        let mut members = Vec::new();
        for (i, spec) in options.members.iter().enumerate() {
            if !group_journal::valid_name(&spec.name)
                || options.members.iter().take(i).any(|s| s.name == spec.name)
            {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "member name {:?} must be a plain file name, once per group",
                        spec.name
                    ),
                });
            }
            let member_path = dir.join(&spec.name);
            // By name: `dir` is "." for a journal path without a directory,
            // and "./x" differs from "x" as a path.
            if path.file_name() == Some(std::ffi::OsStr::new(&spec.name)) {
                return Err(Error::InvalidArgument {
                    what: format!("member {:?} is the group journal itself", spec.name),
                });
            }
            if backend
                .exists(&member_path)
                .map_err(io(&member_path, "checking"))?
            {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "{} exists already; a new group creates its members itself",
                        member_path.display()
                    ),
                });
            }
            let mut shape = vec![0];
            shape.extend_from_slice(&spec.row_shape);
            let bytes = header::build(&spec.dtype, false, &shape)
                .map_err(|e| Error::from_format(&member_path, e))?;
            let parsed = header::parse(&bytes).map_err(|e| Error::from_format(&member_path, e))?;
            let layout = Layout::new(parsed).map_err(|e| Error::from_format(&member_path, e))?;
            members.push((member_path, layout, bytes));
        }
        let identity = GroupIdentity {
            group_id: recovery::new_journal_id(),
            members: options
                .members
                .iter()
                .zip(&members)
                .map(|(spec, (_, layout, bytes))| MemberIdentity {
                    name: spec.name.clone(),
                    header_len: layout.header.header_len,
                    row_bytes: layout.row_bytes,
                    snapshot: bytes.clone(),
                })
                .collect(),
        };
        let record = GroupRecord {
            sequence: 1,
            data_synced: false,
            members: vec![MemberCommit::default(); members.len()],
            cursor: Vec::new(),
        };
        let mut bytes = identity.encode().map_err(|e| Error::from_format(path, e))?;
        bytes.extend(
            record
                .encode(identity.group_id)
                .map_err(|e| Error::from_format(path, e))?,
        );
        let journal = recovery::create_locked(&backend, path, "creating the group journal")?;
        journal
            .write_at(&bytes, 0)
            .and_then(|()| journal.sync_data())
            .map_err(io(path, "writing the group journal"))?;
        backend
            .sync_dir(dir)
            .map_err(io(dir, "syncing the directory"))?;
        let state = JournalState {
            identity,
            newest: Some((Slot::A, record)),
        };
        Self::recover(backend, path, journal, state, LockWait::Fail, buffer_bytes)
    }

    /// Brings every member to the newest record and returns the writer.
    #[expect(
        clippy::too_many_lines,
        reason = "one pass over the members: check, cut, rewrite, sync"
    )]
    fn recover(
        backend: B,
        path: &Path,
        journal: B::File,
        state: JournalState,
        lock_wait: LockWait,
        buffer_bytes: usize,
    ) -> Result<Self> {
        let dir = group_dir(path).to_path_buf();
        let JournalState { identity, newest } = state;
        let count = identity.members.len();
        let (newest, reanchor) = match newest {
            Some(n) => (n, false),
            // Identity and first slot are one write: a valid identity with
            // no valid slot is a torn creation, before any member existed.
            None => (
                (
                    Slot::A,
                    GroupRecord {
                        sequence: 1,
                        data_synced: false,
                        members: vec![MemberCommit::default(); count],
                        cursor: Vec::new(),
                    },
                ),
                true,
            ),
        };
        let mut members = Vec::with_capacity(count);
        let mut created_any = false;
        let mut bytes_cut = 0;
        for (m, commit) in identity.members.iter().zip(&newest.1.members) {
            let member_path = dir.join(&m.name);
            let mut layout = snapshot_layout(path, m)?;
            ensure_marker(&backend, &member_path, path)?;
            let file = match backend.open(&member_path, OpenMode::ReadWrite) {
                Ok(file) => {
                    lock(&file, &member_path, lock_wait)?;
                    locked_file_has_path(&backend, &file, &member_path)?;
                    file
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && commit.rows == 0 => {
                    created_any = true;
                    recovery::create_locked(&backend, &member_path, "creating a group member")?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::CommittedDataMissing {
                        path: member_path,
                        committed_rows: commit.rows,
                        needed_len: layout.end_of(commit.rows).unwrap_or(u64::MAX),
                        actual_len: 0,
                    });
                }
                Err(e) => return Err(Error::io(&member_path, "opening a group member", e)),
            };
            let len = file.len().map_err(io(&member_path, "reading the length"))?;
            let read = recovery::read_header(&file, len)
                .map_err(io(&member_path, "reading the header"))?;
            let snap = &layout.header;
            match &read.header {
                Ok(h) => {
                    if !h.same_layout(snap) {
                        return Err(corrupt(
                            &member_path,
                            format!(
                                "the file is not the member {} of {} describes (dtype {}, rows {:?}, \
                                 {}-byte header); nothing was changed",
                                m.name,
                                path.display(),
                                snap.dtype,
                                snap.row_shape(),
                                snap.header_len
                            ),
                        ));
                    }
                    let header_rows = h.growth_len().unwrap_or(0);
                    if header_rows > commit.rows {
                        return Err(corrupt(
                            &member_path,
                            format!(
                                "the header says {header_rows} rows but the group committed only {}: \
                                 the file was rewritten by another program; nothing was changed",
                                commit.rows
                            ),
                        ));
                    }
                }
                Err(e) => {
                    let keep = snap.version.prefix_len().min(read.raw.len());
                    // A member the group was creating (no rows, no data yet)
                    // is rebuilt from the snapshot whatever its header holds.
                    let creating = commit.rows == 0 && len <= m.header_len;
                    if !creating && read.raw.get(..keep) != m.snapshot.get(..keep) {
                        return Err(corrupt(
                            &member_path,
                            format!(
                                "header is unreadable ({e}) and does not start like the member's \
                                 header in {}",
                                path.display()
                            ),
                        ));
                    }
                }
            }
            let end = layout
                .end_of(commit.rows)
                .ok_or_else(|| corrupt(path, format!("member {}: row count overflows", m.name)))?;
            if len < end && commit.rows > 0 {
                return Err(Error::CommittedDataMissing {
                    path: member_path,
                    committed_rows: commit.rows,
                    needed_len: end,
                    actual_len: len,
                });
            }
            if commit.rows > commit.prev_rows {
                let start = layout.end_of(commit.prev_rows).unwrap_or(end);
                let found = recovery::crc_of(&file, start, end)
                    .map_err(io(&member_path, "reading committed data"))?;
                if found != commit.data_crc {
                    return Err(Error::ChecksumMismatch {
                        path: member_path,
                        what: format!(
                            "rows {}..{} of group commit {}",
                            commit.prev_rows, commit.rows, newest.1.sequence
                        ),
                        offset: start,
                        expected: commit.data_crc,
                        found,
                    });
                }
            }
            if len > end {
                file.set_len(end)
                    .map_err(io(&member_path, "cutting uncommitted bytes"))?;
                bytes_cut += len - end;
            }
            let wanted = layout
                .header_bytes(commit.rows)
                .map_err(|e| Error::from_format(&member_path, e))?;
            if read.raw != wanted {
                let skip = layout.header.version.prefix_len();
                let from = if read.raw.get(..skip) == wanted.get(..skip) {
                    skip
                } else {
                    0
                };
                file.write_at(wanted.get(from..).unwrap_or_default(), from as u64)
                    .map_err(io(&member_path, "rewriting the header"))?;
            }
            file.sync_all().map_err(io(&member_path, "syncing"))?;
            layout.set_rows(commit.rows);
            members.push(Member {
                row_values: layout.header.row_shape().iter().product(),
                path: member_path,
                file,
                committed: commit.rows,
                pending: 0,
                written_end: end,
                buffer: Vec::new(),
                crc: crc32fast::Hasher::new(),
                layout,
            });
        }
        if created_any {
            backend
                .sync_dir(&dir)
                .map_err(io(&dir, "syncing the directory"))?;
        }
        if reanchor {
            let bytes = newest
                .1
                .encode(identity.group_id)
                .map_err(|e| Error::from_format(path, e))?;
            journal
                .write_at(&bytes, identity.slot_offset(newest.0))
                .map_err(io(path, "writing the group journal"))?;
        }
        journal
            .sync_data()
            .map_err(io(path, "syncing the group journal"))?;
        Ok(Self {
            _backend: backend,
            path: path.to_path_buf(),
            journal,
            next_slot: newest.0.other(),
            next_sequence: newest.1.sequence + 1,
            next_cursor: newest.1.cursor.clone(),
            committed_cursor: newest.1.cursor,
            cursor_dirty: false,
            identity,
            members,
            buffer_bytes,
            bytes_cut,
            poisoned: Poison::default(),
        })
    }

    /// The group journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many members the group has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The index of the member named `name`.
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.identity.members.iter().position(|m| m.name == name)
    }

    /// The path of member `i`.
    pub fn member_path(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(|m| m.path.as_path())
    }

    /// Committed rows of member `i` (0 for an index out of range).
    pub fn rows(&self, i: usize) -> u64 {
        self.members.get(i).map_or(0, |m| m.committed)
    }

    /// Committed rows of every member, in order.
    pub fn member_rows(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.committed).collect()
    }

    /// Values per row of member `i`.
    pub(crate) fn row_values(&self, i: usize) -> Option<u64> {
        self.members.get(i).map(|m| m.row_values)
    }

    /// The name of member `i` (its file name, next to the group journal).
    pub fn member_name(&self, i: usize) -> Option<&str> {
        self.identity.members.get(i).map(|m| m.name.as_str())
    }

    /// The dtype of member `i`.
    pub fn member_dtype(&self, i: usize) -> Option<&Dtype> {
        self.members.get(i).map(|m| &m.layout.header.dtype)
    }

    /// The row shape of member `i` (its shape without the row axis).
    pub fn member_row_shape(&self, i: usize) -> Option<&[u64]> {
        self.members.get(i).map(|m| m.layout.header.row_shape())
    }

    /// Bytes per row of member `i`.
    pub fn member_row_bytes(&self, i: usize) -> Option<u64> {
        self.members.get(i).map(|m| m.layout.row_bytes)
    }

    /// Rows appended to member `i` since the last commit.
    pub fn pending_rows(&self, i: usize) -> u64 {
        self.members.get(i).map_or(0, |m| m.pending)
    }

    /// Bytes recovery cut from the members at open (rows of commits that
    /// never completed).
    pub fn bytes_cut(&self) -> u64 {
        self.bytes_cut
    }

    /// The cursor of the last group commit (empty when none carried one).
    pub fn cursor(&self) -> &[u8] {
        &self.committed_cursor
    }

    /// Whether an earlier failure poisoned this writer.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_set()
    }

    fn check_poison(&self) -> Result<()> {
        self.poisoned.check(&self.path)
    }

    /// Runs `f`; any error poisons the writer.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_poison()?;
        let result = f(self);
        self.poisoned.note(result)
    }

    fn member(&self, i: usize) -> Result<&Member<B::File>> {
        self.members.get(i).ok_or_else(|| Error::InvalidArgument {
            what: format!(
                "{}: member index {i}, the group has {} members",
                self.path.display(),
                self.members.len()
            ),
        })
    }

    /// Appends typed values to member `i` (whole rows, exactly the member's
    /// dtype); pending until the next group commit.
    pub fn append<T: Element>(&mut self, i: usize, values: &[T]) -> Result<()> {
        self.check_poison()?;
        let bytes = self.typed_rows(i, values)?;
        self.append_rows(i, bytes)
    }

    /// Exactly-once append to member `i` keyed by row index: `values` are
    /// its rows `start_row..`; rows the member already holds (committed or
    /// pending) are skipped, the rest appended. Returns the rows appended.
    /// A `start_row` past the rows the member holds is [`Error::Gap`].
    pub fn append_at<T: Element>(&mut self, i: usize, start_row: u64, values: &[T]) -> Result<u64> {
        self.check_poison()?;
        let bytes = self.typed_rows(i, values)?;
        self.append_bytes_at(i, start_row, bytes)
    }

    /// The bytes of `values`, checked to be whole rows of exactly member
    /// `i`'s dtype.
    fn typed_rows<'v, T: Element>(&self, i: usize, values: &'v [T]) -> Result<&'v [u8]> {
        let m = self.member(i)?;
        if !element::matches::<T>(&m.layout.header.dtype) {
            return Err(Error::DtypeMismatch {
                expected: m.layout.header.dtype.to_string(),
                found: format!("{} (for {})", T::dtype(), m.path.display()),
            });
        }
        if m.row_values == 0 || !(values.len() as u64).is_multiple_of(m.row_values) {
            return Err(Error::ShapeMismatch {
                expected: format!(
                    "a multiple of {} values (rows of shape {:?} in {})",
                    m.row_values,
                    m.layout.header.row_shape(),
                    m.path.display()
                ),
                found: format!("{} values", values.len()),
            });
        }
        Ok(element::as_bytes(values))
    }

    /// [`append_at`](Self::append_at) for raw row bytes in the member's own
    /// layout (as for [`append_bytes`](Self::append_bytes)).
    pub fn append_bytes_at(&mut self, i: usize, start_row: u64, bytes: &[u8]) -> Result<u64> {
        self.check_poison()?;
        let m = self.member(i)?;
        let held = m.committed + m.pending;
        if start_row > held {
            return Err(Error::Gap {
                path: m.path.clone(),
                start_row,
                len: held,
            });
        }
        let row_bytes = m.layout.row_bytes;
        let rows = bytes.len() as u64 / row_bytes;
        let skip = (held - start_row).min(rows);
        let new = bytes.get((skip * row_bytes) as usize..).unwrap_or_default();
        // A partial row is refused here, before anything is appended.
        self.append_bytes(i, new)?;
        Ok(rows - skip)
    }

    /// Appends raw row bytes (the member's own layout) to member `i`.
    pub fn append_bytes(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        self.check_poison()?;
        let m = self.member(i)?;
        if !(bytes.len() as u64).is_multiple_of(m.layout.row_bytes) {
            return Err(Error::ShapeMismatch {
                expected: format!(
                    "a multiple of {} bytes (whole rows of {})",
                    m.layout.row_bytes,
                    m.path.display()
                ),
                found: format!("{} bytes", bytes.len()),
            });
        }
        self.append_rows(i, bytes)
    }

    fn append_rows(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let cap = self.buffer_bytes;
        self.guarded(|g| {
            let Some(m) = g.members.get_mut(i) else {
                return Ok(());
            };
            let rows = bytes.len() as u64 / m.layout.row_bytes;
            let total = m
                .committed
                .checked_add(m.pending)
                .and_then(|r| r.checked_add(rows))
                .filter(|&r| m.layout.end_of(r).is_some())
                .ok_or_else(|| Error::InvalidArgument {
                    what: format!("{}: the row count would overflow", m.path.display()),
                })?;
            if m.buffer.len() + bytes.len() > cap {
                m.flush()?;
            }
            if bytes.len() >= cap {
                m.write(bytes)?;
            } else {
                m.buffer.extend_from_slice(bytes);
            }
            m.pending = total - m.committed;
            Ok(())
        })
    }

    /// Commits every member's pending rows as one group commit; returns the
    /// committed rows of every member. Committing with nothing pending does
    /// nothing. On error the writer is poisoned and the commit is not
    /// acknowledged (recovery keeps either it or the previous one, for all
    /// members alike).
    pub fn commit(&mut self) -> Result<Vec<u64>> {
        self.guarded(Self::commit_inner)
    }

    /// Commits every member's pending rows together with `cursor` (at most
    /// [`MAX_CURSOR_LEN`](crate::MAX_CURSOR_LEN) bytes, else
    /// [`Error::CursorTooLong`], which commits nothing); commits even when no
    /// row is pending. After a crash [`cursor`](Self::cursor) returns the
    /// cursor of the commit recovery kept.
    pub fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<Vec<u64>> {
        self.check_poison()?;
        if cursor.len() > group_journal::MAX_CURSOR_LEN {
            return Err(Error::CursorTooLong {
                len: cursor.len(),
                max: group_journal::MAX_CURSOR_LEN,
            });
        }
        if self.next_cursor != cursor {
            self.next_cursor = cursor.to_vec();
            self.cursor_dirty = true;
        }
        self.commit()
    }

    fn commit_inner(&mut self) -> Result<Vec<u64>> {
        if !self.cursor_dirty && self.members.iter().all(|m| m.pending == 0) {
            return Ok(self.member_rows());
        }
        // 1. rows past every member's committed end; 2. synced.
        for m in self.members.iter_mut().filter(|m| m.pending > 0) {
            m.flush()?;
            m.file.sync_data().map_err(io(&m.path, "syncing rows"))?;
        }
        // 3. one record for all members, in the older slot, synced.
        let record = GroupRecord {
            sequence: self.next_sequence,
            data_synced: true,
            members: self
                .members
                .iter()
                .map(|m| MemberCommit {
                    rows: m.committed + m.pending,
                    prev_rows: m.committed,
                    data_crc: m.crc.clone().finalize(),
                })
                .collect(),
            cursor: self.next_cursor.clone(),
        };
        let bytes = record
            .encode(self.identity.group_id)
            .map_err(|e| Error::from_format(&self.path, e))?;
        self.journal
            .write_at(&bytes, self.identity.slot_offset(self.next_slot))
            .map_err(io(&self.path, "writing the group journal"))?;
        self.journal
            .sync_data()
            .map_err(io(&self.path, "syncing the group journal"))?;
        // 4. headers, in place (never ahead of the record).
        for m in self.members.iter_mut().filter(|m| m.pending > 0) {
            let rows = m.committed + m.pending;
            let header = m
                .layout
                .header_bytes(rows)
                .map_err(|e| Error::from_format(&m.path, e))?;
            let skip = m.layout.header.version.prefix_len();
            m.file
                .write_at(header.get(skip..).unwrap_or_default(), skip as u64)
                .map_err(io(&m.path, "rewriting the header"))?;
            m.layout.set_rows(rows);
            m.committed = rows;
            m.pending = 0;
            m.crc = crc32fast::Hasher::new();
        }
        self.committed_cursor.clone_from(&self.next_cursor);
        self.cursor_dirty = false;
        self.next_slot = self.next_slot.other();
        self.next_sequence += 1;
        Ok(self.member_rows())
    }

    /// Commits, then makes every member's header durable. The members are
    /// plain `.npy` files; the group journal stays (it names the members
    /// and keeps the cursor). Returns every member's committed rows.
    pub fn close(mut self) -> Result<Vec<u64>> {
        let rows = self.commit()?;
        self.guarded(|g| {
            for m in &g.members {
                m.file
                    .sync_all()
                    .map_err(io(&m.path, "syncing the header"))?;
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Reads rows `range` of member `i` (committed or pending) into a
    /// vector; pending rows are written to the file first.
    pub(crate) fn read_rows(&mut self, i: usize, range: Range<u64>) -> Result<Vec<u8>> {
        self.guarded(|g| {
            let m = g.members.get_mut(i).ok_or_else(|| Error::InvalidArgument {
                what: format!("member index {i}"),
            })?;
            if range.start > range.end || range.end > m.committed + m.pending {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "rows {}..{} of {}, which holds {}",
                        range.start,
                        range.end,
                        m.path.display(),
                        m.committed + m.pending
                    ),
                });
            }
            m.flush()?;
            let len =
                usize::try_from((range.end - range.start) * m.layout.row_bytes).map_err(|_| {
                    Error::InvalidArgument {
                        what: "range too large".to_owned(),
                    }
                })?;
            let mut buf = vec![0u8; len];
            m.file
                .read_at(&mut buf, m.layout.end_of(range.start).unwrap_or(u64::MAX))
                .map_err(io(&m.path, "reading rows"))?;
            Ok(buf)
        })
    }
}

impl<F: Storage> Member<F> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_at(bytes, self.written_end)
            .map_err(io(&self.path, "writing rows"))?;
        self.crc.update(bytes);
        self.written_end += bytes.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let result = self.write(&buffer);
        self.buffer = buffer;
        self.buffer.clear();
        result
    }
}

/// Whether a group journal that does not decode may be the torn write that
/// creates a group (the caller also checks that no member exists yet).
fn torn_creation<F: Storage>(journal: &F) -> bool {
    let mut fixed = [0u8; group_journal::IDENTITY_FIXED_LEN];
    // A journal of a newer format version is never replaced. Anything else
    // that does not decode (short, version still zero, a checksum failure
    // of the block written in one write before any member) is the
    // creation's write.
    journal.read_at(&mut fixed, 0).is_err()
        || !matches!(
            GroupIdentity::body_len(&fixed),
            Err(FormatError::Unsupported { .. })
        )
}

/// Checks the options' members against an existing group.
fn check_specs(path: &Path, identity: &GroupIdentity, specs: &[MemberSpec]) -> Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let mismatch = |what: String| Error::ShapeMismatch {
        expected: format!(
            "the members of {}: {}",
            path.display(),
            identity
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        found: what,
    };
    if specs.len() != identity.members.len() {
        return Err(mismatch(format!("{} members in the options", specs.len())));
    }
    for (spec, m) in specs.iter().zip(&identity.members) {
        let layout = snapshot_layout(path, m)?;
        if spec.name != m.name {
            return Err(mismatch(format!("member {:?}", spec.name)));
        }
        if spec.dtype != layout.header.dtype {
            return Err(Error::DtypeMismatch {
                expected: format!("{} (member {})", layout.header.dtype, m.name),
                found: spec.dtype.to_string(),
            });
        }
        if spec.row_shape.as_slice() != layout.header.row_shape() {
            return Err(mismatch(format!(
                "rows of shape {:?} for member {}",
                spec.row_shape, m.name
            )));
        }
    }
    Ok(())
}

/// Creates the marker of `member` naming the group journal when missing.
fn ensure_marker<B: Backend>(backend: &B, member: &Path, group: &Path) -> Result<()> {
    let marker = member_marker_path(member);
    if backend
        .exists(&marker)
        .map_err(io(&marker, "checking the group marker"))?
    {
        return Ok(());
    }
    let name = group.file_name().map_or_else(
        || group.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let file = match backend.open(&marker, OpenMode::CreateNew) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io(&marker, "creating the group marker", e)),
    };
    file.write_at(name.as_bytes(), 0)
        .and_then(|()| file.sync_data())
        .map_err(io(&marker, "writing the group marker"))?;
    let dir = recovery::parent_dir(&marker);
    backend
        .sync_dir(dir)
        .map_err(io(dir, "syncing the directory"))
}

/// A consistent, read-only snapshot of every member of a group: the rows of
/// one group commit, memory-mapped (on the real file system) without a copy.
///
/// Opening reads the group journal's newest valid record, then maps each
/// member's committed prefix. The writer only ever writes past committed
/// rows, so the mapped bytes never change. Takes no lock.
pub struct GroupReader {
    path: PathBuf,
    sequence: u64,
    cursor: Vec<u8>,
    members: Vec<ReaderMember>,
}

struct ReaderMember {
    name: String,
    path: PathBuf,
    dtype: Dtype,
    row_shape: Vec<u64>,
    row_bytes: u64,
    header_len: u64,
    rows: u64,
    map: Option<memmap2::Mmap>,
}

/// Attempts at reading a record while a writer may be rewriting it.
const READ_ATTEMPTS: u32 = 20;

impl GroupReader {
    /// Opens a snapshot of the group whose journal is `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_open(path) {
                // A record being rewritten fails its checksum; the other slot
                // is then the newest valid one, so a retry is rarely needed.
                Err(Error::Corrupt { .. }) if attempt < READ_ATTEMPTS => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Self> {
        let journal = FsBackend
            .open(path, OpenMode::Read)
            .map_err(io(path, "opening the group journal"))?;
        let state = read_group_journal(&journal, path)?;
        let (_, record) = state
            .newest
            .ok_or_else(|| corrupt(path, "no valid record in the group journal"))?;
        let dir = group_dir(path);
        let mut members = Vec::new();
        for (m, commit) in state.identity.members.iter().zip(&record.members) {
            let layout = snapshot_layout(path, m)?;
            let member_path = dir.join(&m.name);
            let len = usize::try_from(commit.rows.saturating_mul(m.row_bytes))
                .ok()
                .filter(|_| layout.end_of(commit.rows).is_some())
                .ok_or_else(|| Error::Unsupported {
                    path: Some(member_path.clone()),
                    what: format!("{} rows do not fit in memory", commit.rows),
                })?;
            let map = if len == 0 {
                None
            } else {
                let file = FsBackend
                    .open(&member_path, OpenMode::Read)
                    .map_err(io(&member_path, "opening a group member"))?;
                let file_len = file.len().map_err(io(&member_path, "reading the length"))?;
                let needed = layout.end_of(commit.rows).unwrap_or(u64::MAX);
                if file_len < needed {
                    return Err(Error::CommittedDataMissing {
                        path: member_path,
                        committed_rows: commit.rows,
                        needed_len: needed,
                        actual_len: file_len,
                    });
                }
                // SAFETY: the mapped range holds committed rows only, after
                // the header; writers never rewrite or cut committed rows
                // (commits write past them, recovery cuts past the committed
                // end), so the bytes do not change while mapped. Another
                // program truncating the file can still make an access
                // SIGBUS, as for `Reader`.
                let map = unsafe {
                    memmap2::MmapOptions::new()
                        .offset(m.header_len)
                        .len(len)
                        .map(file.file())
                }
                .map_err(io(&member_path, "mapping the committed rows"))?;
                Some(map)
            };
            members.push(ReaderMember {
                name: m.name.clone(),
                path: member_path,
                dtype: layout.header.dtype.clone(),
                row_shape: layout.header.row_shape().to_vec(),
                row_bytes: m.row_bytes,
                header_len: m.header_len,
                rows: commit.rows,
                map,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            sequence: record.sequence,
            cursor: record.cursor,
            members,
        })
    }

    /// Reads the newest commit again; returns whether it changed.
    pub fn refresh(&mut self) -> Result<bool> {
        let fresh = Self::open(&self.path)?;
        let changed = fresh.sequence != self.sequence;
        *self = fresh;
        Ok(changed)
    }

    /// The group journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number of the commit this snapshot shows.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The cursor of the commit this snapshot shows.
    pub fn cursor(&self) -> &[u8] {
        &self.cursor
    }

    /// How many members the group has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The index of the member named `name`.
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// The file name of member `i`.
    pub fn member_name(&self, i: usize) -> Option<&str> {
        self.members.get(i).map(|m| m.name.as_str())
    }

    /// The path of member `i`.
    pub fn member_path(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(|m| m.path.as_path())
    }

    /// The dtype of member `i`.
    pub fn dtype(&self, i: usize) -> Option<&Dtype> {
        self.members.get(i).map(|m| &m.dtype)
    }

    /// The row shape of member `i`.
    pub fn row_shape(&self, i: usize) -> Option<&[u64]> {
        self.members.get(i).map(|m| m.row_shape.as_slice())
    }

    /// Committed rows of member `i` in this snapshot (0 out of range).
    pub fn rows(&self, i: usize) -> u64 {
        self.members.get(i).map_or(0, |m| m.rows)
    }

    fn get(&self, i: usize) -> Result<&ReaderMember> {
        self.members.get(i).ok_or_else(|| Error::InvalidArgument {
            what: format!(
                "{}: member index {i}, the group has {} members",
                self.path.display(),
                self.members.len()
            ),
        })
    }

    /// The raw bytes of rows `range` of member `i`.
    pub fn bytes(&self, i: usize, range: Range<u64>) -> Result<&[u8]> {
        let m = self.get(i)?;
        if range.start > range.end || range.end > m.rows {
            return Err(Error::InvalidArgument {
                what: format!(
                    "rows {}..{} are not within the {} committed rows of {}",
                    range.start,
                    range.end,
                    m.rows,
                    m.path.display()
                ),
            });
        }
        let data: &[u8] = m.map.as_deref().unwrap_or_default();
        // Both ends are at most the mapped length, which fits in a usize.
        let (start, end) = (
            (range.start * m.row_bytes) as usize,
            (range.end * m.row_bytes) as usize,
        );
        data.get(start..end).ok_or_else(|| Error::InvalidArgument {
            what: format!(
                "rows {}..{} of {}",
                range.start,
                range.end,
                m.path.display()
            ),
        })
    }

    /// Rows `range` of member `i` as values of `T`, exactly the member's
    /// dtype, without a copy.
    pub fn rows_as<T: Element>(&self, i: usize, range: Range<u64>) -> Result<&[T]> {
        let m = self.get(i)?;
        let bytes = self.bytes(i, range)?;
        view_as(&m.dtype, &m.path, m.header_len, bytes)
    }

    /// Every committed row of member `i` as values of `T`.
    pub fn as_slice<T: Element>(&self, i: usize) -> Result<&[T]> {
        self.rows_as(i, 0..self.rows(i))
    }
}

/// `bytes` (mapped rows of a file of `dtype` whose data starts at
/// `data_offset`) as values of `T`.
pub(crate) fn view_as<'a, T: Element>(
    dtype: &Dtype,
    path: &Path,
    data_offset: u64,
    bytes: &'a [u8],
) -> Result<&'a [T]> {
    if !element::matches::<T>(dtype) {
        return Err(Error::DtypeMismatch {
            expected: dtype.to_string(),
            found: T::dtype().to_string(),
        });
    }
    if bytes.is_empty() {
        return Ok(&[]);
    }
    if !bytes.as_ptr().cast::<T>().is_aligned() {
        return Err(Error::Unsupported {
            path: Some(path.to_path_buf()),
            what: format!(
                "the data starts at byte {data_offset}, which is not aligned for {}-byte values",
                std::mem::align_of::<T>()
            ),
        });
    }
    if T::KIND == Kind::Bool
        && let Some(at) = bytes.iter().position(|&b| b > 1)
    {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: Some(data_offset + at as u64),
            what: "a bool value is neither 0 nor 1".to_owned(),
        });
    }
    let count = bytes.len() / std::mem::size_of::<T>();
    // SAFETY: `T` is an `Element` (a primitive with no invalid bit patterns
    // once bool bytes are checked above); the pointer is aligned for `T`
    // (checked above); `count` values fit in `bytes`, which outlives the
    // returned slice.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), count) })
}
