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
//! row its group did not commit; a [`GroupReader`](crate::GroupReader) shows a consistent
//! snapshot of all members.
//!
//! The group journal names its members (file names in its own directory)
//! and stays after a clean close: it is the group's manifest and keeps the
//! last cursor. Each member has a marker `<member>.group-member` beside it
//! naming the group, so that an [`Appender`](crate::Appender) refuses to
//! open a member on its own ([`Error::GroupMember`]).
//!
//! Group commits are synced by default ([`Durability::Fsync`]); under
//! [`Durability::Process`] they make the same writes in the same order
//! without syncs, every record into one slot while the other keeps the
//! durable record the writer opened with.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::data_file::DataFile;
use crate::element::Element;
use crate::error::{Error, Poison, Result};
use crate::files;
use crate::format::dtype::Dtype;
use crate::format::group_journal::{
    self, GroupIdentity, GroupRecord, MemberCommit, MemberIdentity, Slot,
};
use crate::format::header;
use crate::format::layout::Layout;
use crate::options::{Durability, LockWait};
use crate::recovery::group::{self as group_recovery, GroupJournalRead};
use crate::recovery::{Stray, apply_cut, clear_stray, move_aside_path};
use crate::storage::{Backend, FsBackend, Storage};

/// Default size of each member's buffer for small appends.
const DEFAULT_BUFFER_BYTES: usize = 256 << 10;

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
        let dtype = Dtype::parse(descr).map_err(|e| Error::InvalidArgument {
            path: None,
            what: format!("dtype {descr:?} of member {name:?}: {e}"),
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
    move_aside_foreign_journal: bool,
    durability: Durability,
    accept_loss: bool,
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

    /// What to do with a file at the group journal's path that is not a
    /// group journal this library wrote (nor its creation cut short), when
    /// none of the members exists: by default opening refuses it with
    /// [`Error::ForeignJournal`] and changes nothing; with `true` it is
    /// renamed to `<journal>.foreign` (or `.foreign.1`, ...), never removed,
    /// and a new group is created.
    #[must_use]
    pub fn move_aside_foreign_journal(mut self, move_aside: bool) -> Self {
        self.move_aside_foreign_journal = move_aside;
        self
    }

    /// What a returned commit survives (default [`Durability::Fsync`]: power
    /// loss). Under [`Durability::Process`] a group commit makes the same
    /// writes in the same order without syncing them: it survives the death
    /// of the process, not a power loss. After a power loss, recovery checks
    /// the newest commit's rows in every member against their checksums and,
    /// when one fails, brings every member back to the commit before it (or
    /// to the durable record the writer opened with) and reports the rows it
    /// dropped ([`AppendGroup::dropped_rows`]); only the newest commit is
    /// checked. Opening still syncs (recovery, and the durable record), and
    /// so does nothing else: [`close`](AppendGroup::close) writes its closed
    /// mark without a sync.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether recovery may cut rows it cannot show are this library's own
    /// (default: no). A member whose header claims rows it holds beyond the
    /// newest intact group commit (as another program's write leaves a file,
    /// or a power loss under Process durability that kept a header and lost
    /// its commit) is refused with [`Error::JournalDisagrees`], nothing
    /// changed; with this option the group journal wins, and a synced commit
    /// whose rows are gone is fallen back from like a Process one.
    #[must_use]
    pub fn accept_loss(mut self, accept: bool) -> Self {
        self.accept_loss = accept;
        self
    }

    /// Whether these options accept a loss ([`accept_loss`](Self::accept_loss)).
    pub fn accepts_loss(&self) -> bool {
        self.accept_loss
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

/// Writes several `.npy` files whose commits are one: after a crash every
/// member holds the rows of the same group commit.
///
/// A group commit writes every member's pending rows past its committed
/// end, syncs every member, writes one record holding every member's
/// committed row count and the cursor into the older of the group journal's
/// two slots and syncs it, and only then rewrites the members' headers.
/// Opening cuts every member back to the newest record and fixes its
/// header. Each member stays a plain `.npy` that numpy reads on its own and
/// that never shows a row the group did not commit; [`GroupReader`](crate::GroupReader) shows a
/// consistent snapshot of all members. Commits are synced unless the group
/// is opened with [`Durability::Process`] ([`GroupOptions::durability`]).
///
/// The group journal names its members (file names in its own directory)
/// and stays after [`close`](Self::close): it is the group's manifest and
/// keeps the last cursor. Each member has a marker `<member>.group-member`
/// beside it ([`member_marker_path`](crate::member_marker_path)), so that an
/// [`Appender`](crate::Appender) refuses to open a member on its own
/// ([`Error::GroupMember`]). One writer per group: the writer locks the
/// group journal and every member.
///
/// Dropping a group without [`close`](Self::close) has the effect of a
/// crash: pending rows are cut by the next open; committed rows stay.
pub struct AppendGroup<B: Backend = FsBackend> {
    backend: B,
    path: PathBuf,
    journal: B::File,
    identity: GroupIdentity,
    members: Vec<DataFile<B::File>>,
    durability: Durability,
    /// The slot the next record goes to: under Fsync the older slot; under
    /// Process always the same one, while the other keeps the durable
    /// record this writer opened with.
    next_slot: Slot,
    next_sequence: u64,
    /// The cursor the next commit records.
    next_cursor: Vec<u8>,
    committed_cursor: Vec<u8>,
    cursor_dirty: bool,
    /// The newest record on disk is a clean close's
    /// ([`group_journal::SLOT_FLAG_CLOSED`]): before this writer changes a
    /// member it writes a record without the mark.
    closed_on_disk: bool,
    bytes_cut: u64,
    dropped_rows: Vec<u64>,
    poisoned: Poison,
}

/// The directory holding the group journal, where the members are.
fn group_dir(path: &Path) -> &Path {
    files::parent_dir(path)
}

fn io(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |e| Error::io(path, op, e)
}

impl<B: Backend> AppendGroup<B> {
    fn open_with(backend: B, path: &Path, options: &GroupOptions) -> Result<Self> {
        let resolved = files::resolve(&backend, path)?;
        let path = resolved.as_path();
        let buffer_bytes = options.buffer_bytes.unwrap_or(DEFAULT_BUFFER_BYTES).max(1);
        // A held journal lock is another writer's, except while the group's
        // creation is unfinished, when readers probe it (creation_incomplete).
        let Some(journal) = files::open_locked_as(
            &backend,
            path,
            options.lock_wait,
            "opening the group journal",
            &mut || group_recovery::creation_incomplete_at(&backend, path),
        )?
        else {
            return Self::create(backend, path, options, buffer_bytes);
        };
        let state = match group_recovery::read_group_journal(&journal, path) {
            Ok(state) => state,
            Err(e @ Error::Corrupt { .. }) if !options.members.is_empty() => {
                // Never over files the journal could be describing: with a
                // member present, a journal that does not decode is damaged.
                let dir = group_dir(path);
                let members = options.members.iter().map(|spec| dir.join(&spec.name));
                if group_recovery::any_exists(&backend, members)? {
                    return Err(e);
                }
                // No member yet (members follow the synced journal): the
                // creation's one write was torn, and is started again; or
                // the file is not this library's, and stays.
                let stray = if group_recovery::torn_creation(&journal)
                    .map_err(io(path, "reading the group journal"))?
                {
                    Stray::Remove
                } else if options.move_aside_foreign_journal {
                    Stray::MoveAside
                } else {
                    return Err(Error::ForeignJournal {
                        path: path.to_path_buf(),
                        file: group_dir(path).to_path_buf(),
                        aside: move_aside_path(&backend, path)?,
                        len: journal.len().map_err(io(path, "reading the length"))?,
                    });
                };
                clear_stray(&backend, path, stray)?;
                drop(journal);
                return Self::create(backend, path, options, buffer_bytes);
            }
            Err(e) => return Err(e),
        };
        check_specs(path, &state.identity, &options.members)?;
        Self::recover(backend, path, journal, state, options, buffer_bytes)
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
                path: Some(path.to_path_buf()),
                what: "no group journal there; give the members to create a group".to_owned(),
            });
        }
        let dir = group_dir(path);
        let mut members = Vec::new();
        for (i, spec) in options.members.iter().enumerate() {
            if !group_journal::valid_name(&spec.name)
                || options.members.iter().take(i).any(|s| s.name == spec.name)
            {
                return Err(Error::InvalidArgument {
                    path: Some(path.to_path_buf()),
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
                    path: Some(path.to_path_buf()),
                    what: format!("member {:?} is the group journal itself", spec.name),
                });
            }
            if backend
                .exists(&member_path)
                .map_err(io(&member_path, "checking"))?
            {
                return Err(Error::InvalidArgument {
                    path: Some(member_path),
                    what: "the file exists already; a new group creates its members itself"
                        .to_owned(),
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
            group_id: files::new_id(),
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
            closed: false,
            members: vec![MemberCommit::default(); members.len()],
            cursor: Vec::new(),
        };
        let mut bytes = identity.encode().map_err(|e| Error::from_format(path, e))?;
        bytes.extend(
            record
                .encode(identity.group_id)
                .map_err(|e| Error::from_format(path, e))?,
        );
        let journal = files::create_locked(&backend, path, "creating the group journal")?;
        journal
            .write_at(&bytes, 0)
            .and_then(|()| journal.sync_data())
            .map_err(io(path, "writing the group journal"))?;
        files::sync_parent(&backend, path)?;
        let state = GroupJournalRead {
            identity,
            newest: Some((Slot::A, record)),
            older: None,
        };
        let options = GroupOptions {
            lock_wait: LockWait::Fail,
            ..options.clone()
        };
        Self::recover(backend, path, journal, state, &options, buffer_bytes)
    }

    /// Brings every member to one record (the newest, or under Process
    /// durability a fallback from it) and returns the writer: every member
    /// is locked and planned first (reading only), so that a refusal changes
    /// nothing; then each is cut, its header rewritten and synced, then the
    /// fallback record (if any) is written and the journal synced. A Process
    /// writer then writes the durable record its commits keep beside them.
    fn recover(
        backend: B,
        path: &Path,
        journal: B::File,
        state: GroupJournalRead,
        options: &GroupOptions,
        buffer_bytes: usize,
    ) -> Result<Self> {
        let dir = group_dir(path).to_path_buf();
        let count = state.identity.members.len();
        let (newest, reanchor) = match &state.newest {
            Some(n) => (n.clone(), false),
            // Identity and first slot are one write: a valid identity with
            // no valid slot is a torn creation, before any member existed.
            None => (
                (
                    Slot::A,
                    GroupRecord {
                        sequence: 1,
                        data_synced: false,
                        closed: false,
                        members: vec![MemberCommit::default(); count],
                        cursor: Vec::new(),
                    },
                ),
                true,
            ),
        };
        let mut opened = Vec::with_capacity(count);
        for m in &state.identity.members {
            let member_path = dir.join(&m.name);
            // This writer holds the group journal's lock: a held member lock
            // is a reader's probe.
            let file = files::open_locked_probed(
                &backend,
                &member_path,
                options.lock_wait,
                "opening a group member",
            )?;
            opened.push((member_path, file));
        }
        let plan = group_recovery::plan_group(path, &state, &newest, &opened, options.accept_loss)?;
        let durability = options.durability;
        let mut members = Vec::with_capacity(count);
        let mut created_any = false;
        let mut bytes_cut = 0;
        for ((member_path, file), plan) in opened.into_iter().zip(plan.members) {
            ensure_marker(&backend, &member_path, path)?;
            let file = if let Some(file) = file {
                file
            } else {
                created_any = true;
                files::create_locked(&backend, &member_path, "creating a group member")?
            };
            apply_cut(&file, &member_path, &plan.raw_header, &plan.file)?;
            file.sync_all().map_err(io(&member_path, "syncing"))?;
            bytes_cut += plan.file.bytes_cut;
            let data = DataFile::new(member_path, file, plan.layout, buffer_bytes)?;
            // Every Fsync commit syncs its members' rows.
            members.push(match durability {
                Durability::Fsync => data.start_early_writeback(),
                Durability::Process => data,
            });
        }
        if created_any {
            files::sync_parent(&backend, path)?;
        }
        let identity = state.identity;
        let (current, last_sequence) = settle_journal(
            &journal,
            path,
            &identity,
            plan.chosen,
            reanchor || plan.write_chosen,
            plan.last_sequence,
            durability,
        )?;
        let (slot, record) = current;
        Ok(Self {
            backend,
            path: path.to_path_buf(),
            journal,
            durability,
            next_slot: slot.other(),
            next_sequence: last_sequence + 1,
            next_cursor: record.cursor.clone(),
            closed_on_disk: record.closed,
            committed_cursor: record.cursor,
            cursor_dirty: false,
            identity,
            members,
            bytes_cut,
            dropped_rows: plan.dropped_rows,
            poisoned: Poison::default(),
        })
    }

    /// The group journal's path (a symbolic link in the last component of
    /// the path it was opened with resolved; the members sit beside it).
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
        self.members.get(i).map(DataFile::path)
    }

    /// Committed rows of member `i` (0 for an index out of range).
    pub fn rows(&self, i: usize) -> u64 {
        self.members.get(i).map_or(0, DataFile::committed)
    }

    /// Committed rows of every member, in order.
    pub fn member_rows(&self) -> Vec<u64> {
        self.members.iter().map(DataFile::committed).collect()
    }

    /// Values per row of member `i`.
    pub(crate) fn row_values(&self, i: usize) -> Option<u64> {
        self.members.get(i).map(DataFile::row_values)
    }

    /// The name of member `i` (its file name, next to the group journal).
    pub fn member_name(&self, i: usize) -> Option<&str> {
        self.identity.members.get(i).map(|m| m.name.as_str())
    }

    /// The dtype of member `i`.
    pub fn member_dtype(&self, i: usize) -> Option<&Dtype> {
        self.members.get(i).map(DataFile::dtype)
    }

    /// The row shape of member `i` (its shape without the row axis).
    pub fn member_row_shape(&self, i: usize) -> Option<&[u64]> {
        self.members.get(i).map(DataFile::row_shape)
    }

    /// Bytes per row of member `i`.
    pub fn member_row_bytes(&self, i: usize) -> Option<u64> {
        self.members.get(i).map(DataFile::row_bytes)
    }

    /// Rows appended to member `i` since the last commit.
    pub fn pending_rows(&self, i: usize) -> u64 {
        self.members.get(i).map_or(0, DataFile::pending)
    }

    /// Bytes recovery cut from the members at open (rows of commits that
    /// never completed).
    pub fn bytes_cut(&self) -> u64 {
        self.bytes_cut
    }

    /// Rows of each member that recovery at open dropped from the newest
    /// group commit, because a power loss under Process durability did not
    /// keep them (zeros otherwise).
    pub fn dropped_rows(&self) -> &[u64] {
        &self.dropped_rows
    }

    /// The durability of commits.
    pub fn durability(&self) -> Durability {
        self.durability
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

    fn member(&self, i: usize) -> Result<&DataFile<B::File>> {
        self.members.get(i).ok_or_else(|| Error::InvalidArgument {
            path: Some(self.path.clone()),
            what: format!(
                "member index {i}, the group has {} members",
                self.members.len()
            ),
        })
    }

    /// Appends typed values to member `i` (whole rows, exactly the member's
    /// dtype); pending until the next group commit.
    pub fn append<T: Element>(&mut self, i: usize, values: &[T]) -> Result<()> {
        self.check_poison()?;
        let bytes = self.member(i)?.typed_bytes(values)?;
        self.append_bytes(i, bytes)
    }

    /// Exactly-once append to member `i` keyed by row index: `values` are
    /// its rows `start_row..`; rows the member already holds (committed or
    /// pending) are skipped, the rest appended. Returns the rows appended.
    /// A `start_row` past the rows the member holds is [`Error::Gap`].
    pub fn append_at<T: Element>(&mut self, i: usize, start_row: u64, values: &[T]) -> Result<u64> {
        self.check_poison()?;
        let bytes = self.member(i)?.typed_bytes(values)?;
        self.append_bytes_at(i, start_row, bytes)
    }

    /// [`append_at`](Self::append_at) for raw row bytes in the member's own
    /// layout (as for [`append_bytes`](Self::append_bytes)).
    pub fn append_bytes_at(&mut self, i: usize, start_row: u64, bytes: &[u8]) -> Result<u64> {
        self.check_poison()?;
        let m = self.member(i)?;
        let held = m.held();
        if start_row > held {
            return Err(Error::Gap {
                path: m.path().to_path_buf(),
                start_row,
                len: held,
            });
        }
        // A partial row is refused here, before anything is appended.
        let rows = m.rows_in(bytes)?;
        let skip = (held - start_row).min(rows);
        let new = bytes
            .get((skip * m.row_bytes()) as usize..)
            .unwrap_or_default();
        self.append_bytes(i, new)?;
        Ok(rows - skip)
    }

    /// Checks that `bytes` are rows member `i` takes (whole rows; for a
    /// `bool` member only the bytes 0 and 1), appending nothing; returns
    /// how many. For callers that append to several members and must
    /// refuse before appending to any.
    pub(crate) fn rows_in(&self, i: usize, bytes: &[u8]) -> Result<u64> {
        self.member(i)?.rows_in(bytes)
    }

    /// Appends raw row bytes (the member's own layout) to member `i`.
    pub fn append_bytes(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        self.check_poison()?;
        self.member(i)?.rows_in(bytes)?;
        if bytes.is_empty() {
            return Ok(());
        }
        self.guarded(|g| {
            if g.closed_on_disk {
                g.write_mark(false)?;
            }
            match g.members.get_mut(i) {
                Some(m) => m.push(bytes),
                None => Ok(()),
            }
        })
    }

    /// Writes a record of the committed state without new rows into the
    /// older slot and syncs it: with the closed mark at a clean close, or
    /// without it before the first change to a member of a group whose
    /// newest record is a clean close's (so that a writer dying after that
    /// change is never taken for one that closed cleanly).
    fn write_mark(&mut self, closed: bool) -> Result<()> {
        let record = GroupRecord {
            sequence: self.next_sequence,
            data_synced: self.durability == Durability::Fsync,
            closed,
            members: self
                .members
                .iter()
                .map(|m| MemberCommit {
                    rows: m.committed(),
                    prev_rows: m.committed(),
                    data_crc: 0,
                })
                .collect(),
            cursor: self.committed_cursor.clone(),
        };
        self.write_record(&record)
    }

    /// Writes `record` into the next slot: the one step of every group
    /// commit and mark. Under Fsync durability it is synced and the next
    /// record goes to the other slot (a torn record leaves the previous,
    /// durable one). Under Process durability every record goes to the same
    /// slot, unsynced, so that the other keeps the durable record this
    /// writer opened with: alternating without syncs would let two unsynced
    /// records replace every durable one.
    fn write_record(&mut self, record: &GroupRecord) -> Result<()> {
        let bytes = record
            .encode(self.identity.group_id)
            .map_err(|e| Error::from_format(&self.path, e))?;
        self.journal
            .write_at(&bytes, self.identity.slot_offset(self.next_slot))
            .map_err(io(&self.path, "writing the group journal"))?;
        if self.durability == Durability::Fsync {
            self.journal
                .sync_data()
                .map_err(io(&self.path, "syncing the group journal"))?;
            self.next_slot = self.next_slot.other();
        }
        self.next_sequence += 1;
        self.closed_on_disk = record.closed;
        Ok(())
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
        if !self.cursor_dirty && self.members.iter().all(|m| m.pending() == 0) {
            return Ok(self.member_rows());
        }
        let synced = self.durability == Durability::Fsync;
        // 1. rows past every member's committed end; 2. synced (Fsync).
        for m in self.members.iter_mut().filter(|m| m.pending() > 0) {
            m.flush()?;
            if synced {
                m.sync_rows()?;
            }
        }
        // 3. one record for all members, in the next slot (synced: Fsync).
        let record = GroupRecord {
            sequence: self.next_sequence,
            data_synced: synced,
            closed: false,
            members: self
                .members
                .iter()
                .map(|m| {
                    let pending = m.pending_commit();
                    MemberCommit {
                        rows: pending.rows,
                        prev_rows: pending.prev_rows,
                        data_crc: pending.data_crc,
                    }
                })
                .collect(),
            cursor: self.next_cursor.clone(),
        };
        self.write_record(&record)?;
        // 4. headers, in place (never ahead of the record).
        for m in &mut self.members {
            m.publish()?;
        }
        self.check_held()?;
        self.committed_cursor.clone_from(&self.next_cursor);
        self.cursor_dirty = false;
        Ok(self.member_rows())
    }

    /// Commits, then makes every member's header durable, then marks the
    /// group closed cleanly: a record of its own, without new rows, with
    /// the closed mark, synced (nothing is written when the newest record
    /// is a clean close's already). Under Process durability nothing is
    /// synced: the mark is a Process record like the commits. The members are plain `.npy` files; the
    /// group journal stays (it names the members and keeps the cursor).
    /// Readers tell a group closed this way from one whose writer died
    /// ([`GroupReader::writer_state`](crate::GroupReader::writer_state)).
    /// Returns every member's committed rows.
    pub fn close(mut self) -> Result<Vec<u64>> {
        let rows = self.commit()?;
        self.guarded(|g| {
            g.check_held()?;
            if g.durability == Durability::Fsync {
                g.members.iter().try_for_each(DataFile::sync_all)?;
            }
            if g.closed_on_disk {
                Ok(())
            } else {
                g.write_mark(true)
            }
        })?;
        Ok(rows)
    }

    /// `Replaced` when the path of a member or of the group journal no
    /// longer names the file this writer holds open.
    fn check_held(&self) -> Result<()> {
        for m in &self.members {
            m.check_held(&self.backend).map_err(|mut e| {
                if let Error::Replaced { kept, .. } = &mut e {
                    kept.push_str(
                        " The group journal still commits the member's rows: restore the \
                         member from a copy to go on with the group",
                    );
                }
                e
            })?;
        }
        files::check_held(
            &self.backend,
            &self.journal,
            &self.path,
            "the group journal",
            || {
                "the members hold their committed rows, but a crash from now on could not \
                 be recovered, so the writer stopped. Restore the group journal from a copy \
                 if it was removed by mistake (the members are plain .npy files)"
                    .to_owned()
            },
        )
    }

    /// Reads rows `range` of member `i` (committed or pending) into a
    /// vector; pending rows are written to the file first.
    pub(crate) fn read_rows(&mut self, i: usize, range: Range<u64>) -> Result<Vec<u8>> {
        self.member(i)?;
        self.guarded(|g| match g.members.get_mut(i) {
            Some(m) => m.read_rows(range),
            None => Ok(Vec::new()),
        })
    }
}

/// The group journal's part of recovery, once every member is cut and
/// synced: writes the `chosen` record when it must be (`write`: a fallback,
/// or a torn creation's first record), else syncs the journal; a Process
/// writer then writes the durable record its commits keep beside them.
/// Returns the record the writer goes on from, in its slot, and the highest
/// sequence on disk.
fn settle_journal<F: Storage>(
    journal: &F,
    path: &Path,
    identity: &GroupIdentity,
    chosen: (Slot, GroupRecord),
    write: bool,
    last_sequence: u64,
    durability: Durability,
) -> Result<((Slot, GroupRecord), u64)> {
    let put = |(slot, record): &(Slot, GroupRecord)| -> Result<()> {
        let bytes = record
            .encode(identity.group_id)
            .map_err(|e| Error::from_format(path, e))?;
        journal
            .write_at(&bytes, identity.slot_offset(*slot))
            .and_then(|()| journal.sync_data())
            .map_err(io(path, "writing the group journal"))
    };
    let mut current = chosen;
    if write {
        put(&current)?;
    } else {
        journal
            .sync_data()
            .map_err(io(path, "syncing the group journal"))?;
    }
    let mut last_sequence = last_sequence.max(current.1.sequence);
    if durability == Durability::Process {
        // Process commits all go to one slot; the other keeps this record,
        // whose rows were synced above. It claims no synced data (its copy
        // may be an Fsync commit's), so that a power loss that keeps a later
        // commit's header and loses its record is taken for what it is when
        // the file does not hold the header's rows.
        last_sequence += 1;
        current = (
            current.0.other(),
            GroupRecord {
                sequence: last_sequence,
                data_synced: false,
                ..current.1
            },
        );
        put(&current)?;
    }
    Ok((current, last_sequence))
}

/// Checks the options' members against an existing group.
fn check_specs(path: &Path, identity: &GroupIdentity, specs: &[MemberSpec]) -> Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let mismatch = |what: String| Error::ShapeMismatch {
        path: path.to_path_buf(),
        expected: format!(
            "the members {}",
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
        let layout = group_recovery::member_layout(path, m)?;
        if spec.name != m.name {
            return Err(mismatch(format!("member {:?}", spec.name)));
        }
        if spec.dtype != layout.header.dtype {
            return Err(Error::DtypeMismatch {
                path: path.to_path_buf(),
                expected: format!("{} (member {})", layout.header.dtype, m.name),
                found: spec.dtype.to_string(),
            });
        }
        if spec.row_shape.as_slice() != layout.header.row_shape() {
            return Err(mismatch(format!(
                "rows of shape {} for member {}",
                header::shape_repr(&spec.row_shape),
                m.name
            )));
        }
    }
    Ok(())
}

/// Creates the marker of `member` naming the group journal when missing.
fn ensure_marker<B: Backend>(backend: &B, member: &Path, group: &Path) -> Result<()> {
    let marker = files::member_marker_path(member);
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
    match files::create_durably(
        backend,
        &marker,
        name.as_bytes(),
        "creating the group marker",
    ) {
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) => Ok(()),
        other => other,
    }
}
