//! A consistent, read-only snapshot of every member of an append group.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::liveness::{self, WriterState};
use super::rows::{self, Rows};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::files;
use crate::format::dtype::Dtype;
use crate::recovery::group::{member_layout, read_group_journal};
use crate::storage::{Backend, FsBackend, OpenMode, Storage};

/// Attempts at reading a record while a writer may be rewriting it.
const READ_ATTEMPTS: u32 = 20;

/// A consistent, read-only snapshot of every member of a group: the rows of
/// one group commit, memory-mapped (on the real file system) without a copy.
///
/// Opening reads the group journal's newest valid record, then maps each
/// member's committed prefix (its layout from the journal's snapshot, so a
/// header in the middle of a rewrite does not matter), checking the file is
/// long enough. Writers only write past committed rows and recovery only
/// cuts past the newest record, so the mapped bytes never change. Takes no
/// lock. On other backends than [`FsBackend`] the committed bytes are copied
/// (meant for tests).
pub struct GroupReader<B: Backend = FsBackend> {
    backend: B,
    path: PathBuf,
    group_id: u64,
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
    data: Rows,
}

impl GroupReader<FsBackend> {
    /// Opens a snapshot of the group whose journal is `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(FsBackend, path)
    }
}

impl<B: Backend> GroupReader<B>
where
    B::File: 'static,
{
    /// Opens a snapshot of the group whose journal is `path` on `backend`.
    pub fn open_with(backend: B, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (group_id, sequence, cursor, members) = Self::read_snapshot(&backend, &path)?;
        Ok(Self {
            backend,
            path,
            group_id,
            sequence,
            cursor,
            members,
        })
    }

    /// Reads the newest record, retrying while a slot being rewritten fails
    /// its checksum (the other slot is then the newest valid one, so a
    /// retry is rarely needed).
    fn read_snapshot(backend: &B, path: &Path) -> Result<Snapshot> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_read(backend, path) {
                Err(Error::Corrupt { .. }) if attempt < READ_ATTEMPTS => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }

    fn try_read(backend: &B, path: &Path) -> Result<Snapshot> {
        let journal = backend
            .open(path, OpenMode::Read)
            .map_err(|e| Error::io(path, "opening the group journal", e))?;
        let state = read_group_journal(&journal, path)?;
        let (_, record) = state.newest.ok_or_else(|| Error::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: "no valid record in the group journal".to_owned(),
        })?;
        let dir = files::parent_dir(path);
        let mut members = Vec::new();
        for (m, commit) in state.identity.members.iter().zip(&record.members) {
            let layout = member_layout(path, m)?;
            let member_path = dir.join(&m.name);
            let needed = layout.end_of(commit.rows);
            let len = needed
                .and_then(|_| usize::try_from(commit.rows.checked_mul(m.row_bytes)?).ok())
                .ok_or_else(|| Error::Unsupported {
                    path: Some(member_path.clone()),
                    what: format!("{} rows do not fit in memory", commit.rows),
                })?;
            let data = if len == 0 {
                Rows::Empty
            } else {
                let file = backend
                    .open(&member_path, OpenMode::Read)
                    .map_err(|e| Error::io(&member_path, "opening a group member", e))?;
                let file_len = file
                    .len()
                    .map_err(|e| Error::io(&member_path, "reading the length", e))?;
                let needed = needed.unwrap_or(u64::MAX);
                if file_len < needed {
                    return Err(Error::CommittedDataMissing {
                        path: member_path,
                        committed_rows: commit.rows,
                        needed_len: needed,
                        actual_len: file_len,
                    });
                }
                Rows::load(&file, &member_path, m.header_len, len)?
            };
            members.push(ReaderMember {
                name: m.name.clone(),
                path: member_path,
                dtype: layout.header.dtype.clone(),
                row_shape: layout.header.row_shape().to_vec(),
                row_bytes: m.row_bytes,
                header_len: m.header_len,
                rows: commit.rows,
                data,
            });
        }
        Ok((
            state.identity.group_id,
            record.sequence,
            record.cursor,
            members,
        ))
    }

    /// Reads the newest commit again; returns whether it changed. Reads
    /// only the group journal when its newest record is the one shown.
    pub fn refresh(&mut self) -> Result<bool> {
        if let Ok(journal) = self.backend.open(&self.path, OpenMode::Read)
            && let Ok(read) = read_group_journal(&journal, &self.path)
            && read.identity.group_id == self.group_id
            && read
                .newest
                .is_some_and(|(_, r)| r.sequence == self.sequence)
        {
            return Ok(false);
        }
        let (group_id, sequence, cursor, members) = Self::read_snapshot(&self.backend, &self.path)?;
        let changed = (group_id, sequence) != (self.group_id, self.sequence);
        self.group_id = group_id;
        self.sequence = sequence;
        self.cursor = cursor;
        self.members = members;
        Ok(changed)
    }

    /// Waits until member `i` has at least `rows` committed rows; returns
    /// whether it has. Returns `false` when `timeout` passes first, and at
    /// once when the writer has closed the group cleanly (or none has it
    /// open) without committing them; fails with [`Error::WriterDied`]
    /// when the writer stopped without closing (killed, crashed or
    /// dropped) before committing them. The snapshot is refreshed as by
    /// [`refresh`](Self::refresh), with a sleep growing from 100 µs to
    /// 10 ms in between; see [`writer_state`](Self::writer_state).
    pub fn wait_for_rows(&mut self, i: usize, rows: u64, timeout: Duration) -> Result<bool> {
        self.get(i)?;
        let (path, shown) = (self.path.clone(), self.rows(i));
        liveness::wait_for_rows(
            self,
            rows,
            timeout,
            shown,
            Self::writer_state,
            |g| g.refresh().map(|_| g.rows(i)),
            |shown| Error::WriterDied {
                path,
                shown,
                wanted: rows,
            },
        )
    }
}

/// A group journal id, the record's sequence and cursor, and the members.
type Snapshot = (u64, u64, Vec<u8>, Vec<ReaderMember>);

impl<B: Backend> GroupReader<B> {
    /// The group journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a writer has the group open ([`WriterState::Active`]), the
    /// last one closed it cleanly ([`WriterState::Finished`]: its newest
    /// record carries the closed mark), or the last one stopped without
    /// closing ([`WriterState::Died`]: killed, crashed or dropped; the next
    /// writer recovers every member to the newest record). Read now, from
    /// the group journal and a writer lock (probed with a shared lock held
    /// for microseconds, which a writer opening the group waits for); the
    /// answer is true at that moment only. A group closed by a version of
    /// this library without the closed mark reads as `Died` until a writer
    /// opens and closes it again (recovery then changes nothing).
    ///
    /// An `Io` error of kind `Unsupported` on a backend that cannot probe
    /// locks.
    pub fn writer_state(&self) -> Result<WriterState> {
        liveness::group_state(&self.backend, &self.path)
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
            path: Some(self.path.clone()),
            what: format!(
                "member index {i}, the group has {} members",
                self.members.len()
            ),
        })
    }

    /// The raw bytes of rows `range` of member `i`.
    pub fn bytes(&self, i: usize, range: Range<u64>) -> Result<&[u8]> {
        let m = self.get(i)?;
        let out_of_range = || Error::InvalidArgument {
            path: Some(m.path.clone()),
            what: format!(
                "rows {}..{} are not within the {} committed rows",
                range.start, range.end, m.rows
            ),
        };
        if range.start > range.end || range.end > m.rows {
            return Err(out_of_range());
        }
        // Both ends are at most the mapped length, which fits in a usize.
        let (start, end) = (
            (range.start * m.row_bytes) as usize,
            (range.end * m.row_bytes) as usize,
        );
        m.data.bytes().get(start..end).ok_or_else(out_of_range)
    }

    /// Rows `range` of member `i` as values of `T`, exactly the member's
    /// dtype, without a copy.
    pub fn rows_as<T: Element>(&self, i: usize, range: Range<u64>) -> Result<&[T]> {
        let m = self.get(i)?;
        let bytes = self.bytes(i, range)?;
        rows::cast(&m.dtype, &m.path, m.header_len, bytes)
    }

    /// Every committed row of member `i` as values of `T`.
    pub fn as_slice<T: Element>(&self, i: usize) -> Result<&[T]> {
        self.rows_as(i, 0..self.rows(i))
    }
}
