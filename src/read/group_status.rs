//! A read-only look at an append group: its members, its state, and what
//! recovery would do to each member.
//!
//! [`GroupStatus::read`] opens the group journal and every member
//! read-only, takes no lock and never writes. It plans the members with the
//! same code the group's writer runs when it opens the group
//! (`recovery::group::plan_group`), so what it says recovery would do is
//! what [`crate::AppendGroup`]'s open does.

use std::io;
use std::path::{Path, PathBuf};

use super::liveness::{self, WriterState};
use super::status::FileState;
use crate::error::{Error, Result};
use crate::files;
use crate::format::dtype::Dtype;
use crate::format::group_journal::{self, GroupRecord, MemberCommit, MemberIdentity};
use crate::recovery::group::{MemberPlan, member_layout, plan_group, read_group_journal};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};
use crate::write::group::GroupOptions;

/// What [`GroupStatus::read`] found about one member.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemberStatus {
    /// The member's file name (in the group journal's directory).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Its dtype, from the group journal.
    pub dtype: Dtype,
    /// The shape of one row.
    pub row_shape: Vec<u64>,
    /// Whether it is in Fortran order (rows along the last axis).
    pub fortran_order: bool,
    /// Bytes per row.
    pub row_bytes: u64,
    /// Its committed rows in the newest record.
    pub rows: u64,
    /// Its length in bytes; `None` when it does not exist.
    pub file_len: Option<u64>,
    /// What recovery would do to it.
    pub recovery: MemberRecovery,
}

/// What opening the group for appending would do to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberRecovery {
    /// Nothing: the member is at the newest record's rows.
    Nothing,
    /// These changes.
    Changes {
        /// Bytes past the committed rows that would be cut.
        bytes_cut: u64,
        /// Whether the header would be rewritten (to the committed shape).
        header_rewritten: bool,
        /// Whether the member would be created from its snapshot (it is
        /// missing: the group's writer died creating it, before any
        /// commit).
        created: bool,
        /// Rows of the newest record that would be dropped: a Process
        /// commit whose rows a power loss did not keep, which recovery
        /// falls back from for every member.
        rows_dropped: u64,
    },
    /// Recovery refuses (and changes nothing), for this reason.
    Refuses(String),
}

/// What [`GroupStatus::read`] found in a group journal and its members.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group journal.
    pub path: PathBuf,
    /// The newest valid record's sequence; `None` when no slot is valid (a
    /// torn creation, before any member: recovery starts from zero rows).
    pub sequence: Option<u64>,
    /// Whether the newest record carries the closed mark (the last writer
    /// closed the group cleanly).
    pub closed: bool,
    /// The newest record's cursor.
    pub cursor: Vec<u8>,
    /// The writer, as a reader sees it now; `None` when it cannot be told.
    pub writer: Option<WriterState>,
    /// The members, in order.
    pub members: Vec<MemberStatus>,
    /// [`FileState::Clean`] (closed cleanly, every member at its committed
    /// rows), [`FileState::NeedsRecovery`] (a writer has it open or died:
    /// opening it brings every member to the newest record) or
    /// [`FileState::Inconsistent`] (recovery refuses a member).
    pub state: FileState,
    /// Why the group is not clean.
    pub problem: Option<String>,
}

/// Member `m`'s status: `file` is the member (`None` when missing),
/// `commit` its part of the newest record and `planned` what recovery's plan
/// does to it (`Err` holding a refusal; `None` when recovery refuses
/// another member, and so plans none).
fn member_status<F: Storage>(
    journal_path: &Path,
    m: &MemberIdentity,
    (member_path, file): (PathBuf, Option<F>),
    commit: &MemberCommit,
    planned: std::result::Result<Option<(&MemberPlan, u64)>, String>,
) -> Result<MemberStatus> {
    let layout = member_layout(journal_path, m)?;
    let file_len = file
        .as_ref()
        .map(Storage::len)
        .transpose()
        .map_err(|e| Error::io(&member_path, "reading the length", e))?;
    let recovery = match planned {
        Ok(None) => MemberRecovery::Nothing,
        Ok(Some((plan, rows_dropped))) => {
            let created = file.is_none();
            let header_rewritten = plan.file.header_write.is_some();
            if created || header_rewritten || plan.file.bytes_cut > 0 || rows_dropped > 0 {
                MemberRecovery::Changes {
                    bytes_cut: plan.file.bytes_cut,
                    header_rewritten,
                    created,
                    rows_dropped,
                }
            } else {
                MemberRecovery::Nothing
            }
        }
        Err(why) => MemberRecovery::Refuses(why),
    };
    Ok(MemberStatus {
        name: m.name.clone(),
        path: member_path,
        dtype: layout.header.dtype.clone(),
        row_shape: layout.header.row_shape().to_vec(),
        fortran_order: layout.header.fortran_order && layout.header.shape.len() > 1,
        row_bytes: m.row_bytes,
        rows: commit.rows,
        file_len,
        recovery,
    })
}

impl GroupStatus {
    /// Reads the status of the group whose journal is `path`, read-only and
    /// without taking a lock. Errors when the group journal cannot be read
    /// or decoded (its identity), and on I/O errors.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_with(&FsBackend, path)
    }

    /// [`GroupStatus::read`] on `backend`.
    pub fn read_with<B: Backend>(backend: &B, path: impl AsRef<Path>) -> Result<Self> {
        Self::read_planned(backend, path.as_ref(), false)
    }

    /// What opening the existing group whose journal is `path` with
    /// `options` would do to its members ([`GroupOptions::accept_loss`] is
    /// the option that changes the plan), read-only and without a lock: the
    /// same plan the open makes.
    pub fn preview_recovery(path: impl AsRef<Path>, options: &GroupOptions) -> Result<Self> {
        Self::read_planned(&FsBackend, path.as_ref(), options.accepts_loss())
    }

    /// [`GroupStatus::preview_recovery`] on `backend`.
    pub fn preview_recovery_with<B: Backend>(
        backend: &B,
        path: impl AsRef<Path>,
        options: &GroupOptions,
    ) -> Result<Self> {
        Self::read_planned(backend, path.as_ref(), options.accepts_loss())
    }

    /// [`GroupStatus::read_with`], planning recovery with or without
    /// `accept_loss`.
    fn read_planned<B: Backend>(backend: &B, path: &Path, accept_loss: bool) -> Result<Self> {
        let journal = backend
            .open(path, OpenMode::Read)
            .map_err(|e| Error::io(path, "opening the group journal", e))?;
        let read = read_group_journal(&journal, path)?;
        let count = read.identity.members.len();
        // As the writer's open: no valid slot is a torn creation, whose
        // members start from zero rows.
        let newest = read.newest.clone().unwrap_or_else(|| {
            (
                group_journal::Slot::A,
                GroupRecord {
                    members: vec![MemberCommit::default(); count],
                    ..GroupRecord::default()
                },
            )
        });
        let record = &newest.1;
        let mut opened = Vec::with_capacity(count);
        for m in &read.identity.members {
            let member_path = files::parent_dir(path).join(&m.name);
            let file = match backend.open(&member_path, OpenMode::Read) {
                Ok(file) => Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(&member_path, "opening a group member", e)),
            };
            opened.push((member_path, file));
        }
        let plan = match plan_group(path, &read, &newest, &opened, accept_loss) {
            Ok(plan) => Ok(plan),
            Err(
                refusal @ crate::recovery::group::Refusal {
                    error: Error::Io { .. },
                    ..
                },
            ) => {
                return Err(refusal.error);
            }
            Err(refusal) => Err(refusal),
        };
        let mut members = Vec::with_capacity(count);
        for (i, ((m, commit), found)) in read
            .identity
            .members
            .iter()
            .zip(&record.members)
            .zip(opened)
            .enumerate()
        {
            let planned = match &plan {
                Ok(plan) => Ok(plan.members.get(i).zip(plan.dropped_rows.get(i).copied())),
                Err(refusal) if refusal.member.is_none_or(|r| r == i) => {
                    Err(refusal.error.to_string())
                }
                Err(_) => Ok(None),
            };
            members.push(member_status(path, m, found, commit, planned)?);
        }
        let writer = match liveness::group_state(backend, path) {
            Ok(state) => Some(state),
            Err(e) if e.io_kind() == Some(io::ErrorKind::Unsupported) => None,
            Err(e) => return Err(e),
        };
        let refused: Vec<&MemberStatus> = members
            .iter()
            .filter(|m| matches!(m.recovery, MemberRecovery::Refuses(_)))
            .collect();
        let changes = members
            .iter()
            .any(|m| matches!(m.recovery, MemberRecovery::Changes { .. }));
        let (state, problem) = if let Some(first) = refused.first() {
            let why = match &first.recovery {
                MemberRecovery::Refuses(why) => why.clone(),
                _ => String::new(),
            };
            (
                FileState::Inconsistent,
                Some(format!("recovery refuses member {}: {why}", first.name)),
            )
        } else if record.closed && !changes {
            (FileState::Clean, None)
        } else {
            let why = match writer {
                Some(WriterState::Active) => "a writer has the group open",
                _ if record.closed => "the members changed after the group was closed",
                _ => "the last writer did not close the group (it died, or was dropped)",
            };
            (FileState::NeedsRecovery, Some(why.to_owned()))
        };
        Ok(Self {
            path: path.to_path_buf(),
            sequence: read.newest.as_ref().map(|(_, r)| r.sequence),
            closed: record.closed,
            cursor: record.cursor.clone(),
            writer,
            members,
            state,
            problem,
        })
    }

    /// Whether the file at `path` starts like a group journal (its magic),
    /// for tools that take either a `.npy` or a group journal.
    pub fn is_group_journal(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let head = files::read_small(&FsBackend, path, group_journal::MAGIC.len())?;
        Ok(head.is_some_and(|h| h == group_journal::MAGIC))
    }
}
