//! The steps recovery takes for one data file, whichever journal commits
//! it: a single file's own journal, or a group journal for each member.
//!
//! Check that the file is the one the journal describes, that its header
//! is not ahead of the committed rows, that the newest commit's rows are
//! there (length and CRC); then cut the bytes past the committed end and
//! rewrite the header. Planning reads only; [`apply_cut`] makes the changes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::files::{self, HeaderRead};
use crate::format::FormatError;
use crate::format::header;
use crate::format::layout::Layout;
use crate::storage::Storage;

/// What a journal record says about one data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileCommit {
    /// Committed rows.
    pub rows: u64,
    /// Committed rows before the record's commit.
    pub prev_rows: u64,
    /// CRC32 of the bytes of rows `prev_rows..rows`.
    pub data_crc: u32,
    /// The rows were synced before the record was written.
    pub data_synced: bool,
}

/// Whether a file holds a commit's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitCheck {
    /// The file is long enough and the commit's rows match their CRC.
    Ok,
    /// The file is shorter than the commit needs.
    Short { needed: u64 },
    /// The commit's rows (from byte `start`) do not match their CRC.
    BadCrc { start: u64, found: u32 },
}

/// Checks that the file `npy` of length `len` holds the rows of `commit`:
/// its length, and the CRC of the rows the commit added.
pub(crate) fn check_commit<F: Storage>(
    path: &Path,
    layout: &Layout,
    npy: &F,
    len: u64,
    commit: &FileCommit,
) -> Result<CommitCheck> {
    if commit.rows == 0 {
        // No data to check; the header is rebuilt from the snapshot even
        // when a creation left it short.
        return Ok(CommitCheck::Ok);
    }
    let (Some(start), Some(end)) = (layout.end_of(commit.prev_rows), layout.end_of(commit.rows))
    else {
        return Ok(CommitCheck::Short { needed: u64::MAX });
    };
    if end > len {
        return Ok(CommitCheck::Short { needed: end });
    }
    let found =
        files::crc_of(npy, start, end).map_err(|e| Error::io(path, "reading committed data", e))?;
    Ok(if found == commit.data_crc {
        CommitCheck::Ok
    } else {
        CommitCheck::BadCrc { start, found }
    })
}

/// The error for a commit whose rows were synced before its record and are
/// now missing or changed: the disk lost synced data, and nothing is guessed.
/// `what` names the commit ("commit 7 (journal slot A)").
pub(crate) fn synced_rows_lost(
    path: &Path,
    layout: &Layout,
    commit: &FileCommit,
    check: CommitCheck,
    len: u64,
    what: &str,
) -> Error {
    match check {
        CommitCheck::BadCrc { start, found } => Error::ChecksumMismatch {
            path: path.to_path_buf(),
            what: format!("rows {}..{} of {what}", commit.prev_rows, commit.rows),
            offset: start,
            expected: commit.data_crc,
            found,
        },
        CommitCheck::Short { needed } => Error::CommittedDataMissing {
            path: path.to_path_buf(),
            committed_rows: commit.rows,
            needed_len: needed,
            actual_len: len,
        },
        CommitCheck::Ok => Error::CommittedDataMissing {
            path: path.to_path_buf(),
            committed_rows: commit.rows,
            needed_len: layout.end_of(commit.rows).unwrap_or(u64::MAX),
            actual_len: len,
        },
    }
}

/// The layout a journal's header snapshot describes, checked against the
/// header length and row size the journal records beside it. Errors name
/// `journal_path` (and `what`, the snapshot's owner in a group journal).
pub(crate) fn snapshot_layout(
    path: &Path,
    journal_path: &Path,
    snapshot: &[u8],
    header_len: u64,
    row_bytes: u64,
    what: &str,
) -> Result<Layout> {
    let corrupt = |offset, what: String| Error::Corrupt {
        path: journal_path.to_path_buf(),
        offset,
        what,
    };
    let snap = header::parse(snapshot)
        .map_err(|e| corrupt(None, format!("{what}header snapshot: {e}")))?;
    let layout = Layout::new(snap).map_err(|e| Error::from_format(path, e))?;
    if layout.row_bytes != row_bytes || layout.header.header_len != header_len {
        return Err(corrupt(
            None,
            format!("{what}identity disagrees with its own header snapshot"),
        ));
    }
    Ok(layout)
}

/// Checks that the journal at `journal_path` describes the file at `path`:
/// a readable header must describe the same dtype, order, row shape and
/// header length as the snapshot; an unreadable one must be a torn write of
/// the snapshot's header (the bytes that are never rewritten, magic, version
/// and length, match it), unless the writer `created` the file and died
/// before its first sync (then the file holds no data).
pub(crate) fn check_binding(
    path: &Path,
    journal_path: &Path,
    snap: &Layout,
    snapshot: &[u8],
    created: bool,
    read: &HeaderRead,
) -> Result<()> {
    let snap = &snap.header;
    match &read.header {
        Ok(h) if !h.same_layout(snap) => Err(Error::Corrupt {
            path: journal_path.to_path_buf(),
            offset: None,
            what: format!(
                "journal belongs to another file: it describes dtype {} with rows of shape {} \
                 and a {}-byte header, {} has dtype {} with rows of shape {} and a {}-byte \
                 header; nothing was changed. Move the journal away if it is not this file's, \
                 or restore the file if another program replaced it",
                snap.dtype,
                header::shape_repr(snap.row_shape()),
                snap.header_len,
                path.display(),
                h.dtype,
                header::shape_repr(h.row_shape()),
                h.header_len
            ),
        }),
        Ok(_) => Ok(()),
        Err(e) => {
            let keep = snap.version.prefix_len().min(read.raw.len());
            if read.raw.get(..keep) == snapshot.get(..keep) || created {
                Ok(())
            } else {
                Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    offset: Some(0),
                    what: format!(
                        "header is unreadable ({e}) and does not start like the header in {}; \
                         nothing was changed",
                        journal_path.display()
                    ),
                })
            }
        }
    }
}

/// Refuses a file whose readable header claims more than `committed` rows
/// when the journal's rows were synced before its record: this library never
/// writes a header ahead of its journal, so another program rewrote the file.
pub(crate) fn refuse_header_ahead(
    path: &Path,
    journal_path: &Path,
    read: &HeaderRead,
    committed: u64,
) -> Result<()> {
    let header_rows = read
        .header
        .as_ref()
        .ok()
        .and_then(header::Header::growth_len)
        .unwrap_or(0);
    if header_rows <= committed {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        offset: None,
        what: format!(
            "the header says {header_rows} rows but {} committed only {committed}: the file was \
             rewritten by another program after its writer died (npy-append never writes a \
             header ahead of its journal); nothing was changed. If the file is right, delete \
             the journal; if not, restore the file",
            journal_path.display()
        ),
    })
}

/// The changes that bring one data file to its committed rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePlan {
    /// Committed rows.
    pub rows: u64,
    /// Cut the file to this length.
    pub cut_to: Option<u64>,
    /// Bytes the cut removes.
    pub bytes_cut: u64,
    /// Write these header bytes (a header rewrite skips the bytes that
    /// already match).
    pub header_write: Option<Vec<u8>>,
}

/// The cut and header rewrite that bring a file of length `len` whose header
/// bytes are `raw` to `rows` committed rows of `layout`. With `keep_header`
/// the header is left as it is (a plan whose header comes from elsewhere).
pub(crate) fn plan_cut(
    path: &Path,
    layout: &Layout,
    rows: u64,
    len: u64,
    raw: &[u8],
    keep_header: bool,
) -> Result<FilePlan> {
    let end = layout.end_of(rows).ok_or_else(|| {
        Error::from_format(
            path,
            FormatError::malformed(None, "committed data size overflows 64 bits"),
        )
    })?;
    let header_write = if keep_header {
        None
    } else {
        let wanted = layout
            .header_bytes(rows)
            .map_err(|e| Error::from_format(path, e))?;
        (raw != wanted.as_slice()).then_some(wanted)
    };
    Ok(FilePlan {
        rows,
        cut_to: (len > end).then_some(end),
        bytes_cut: len.saturating_sub(end),
        header_write,
    })
}

/// Carries out the cut and the header rewrite of `plan` on `npy` (whose
/// header bytes were `raw`); whether anything changed. The caller syncs.
pub(crate) fn apply_cut<F: Storage>(
    npy: &F,
    path: &Path,
    raw: &[u8],
    plan: &FilePlan,
) -> Result<bool> {
    let mut changed = false;
    if let Some(len) = plan.cut_to {
        npy.set_len(len)
            .map_err(|e| Error::io(path, "cutting uncommitted bytes", e))?;
        changed = true;
    }
    if let Some(bytes) = &plan.header_write {
        files::write_header(npy, path, raw, bytes)?;
        changed = true;
    }
    Ok(changed)
}
