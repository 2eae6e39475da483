//! What opening a file found and what recovery did to it.

use std::fmt;

/// The state a file was found in by [`crate::Appender::open_or_recover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Found {
    /// No file at the path: a new one is (or will be) created.
    #[default]
    NoFile,
    /// A plain `.npy` without a journal (np.save output, a clean close).
    Clean,
    /// A journal next to the file: its writer crashed or was dropped
    /// without closing; recovery ran.
    Journal,
}

/// What [`crate::Appender::open_or_recover`] found and changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is a separate change recovery made, which a caller checks on its own"
)]
pub struct RecoveryReport {
    /// The state the file was found in.
    pub found: Found,
    /// Rows committed after opening: where appending continues.
    pub committed_rows: u64,
    /// Bytes cut from the end of the file (torn or uncommitted rows).
    pub bytes_cut: u64,
    /// Whether the header was rewritten to match the committed rows.
    pub header_rewritten: bool,
    /// Whether the file, its header having no room to grow the row count
    /// (numpy < 1.24 and other writers), was replaced by a copy with a
    /// header that has room (same data).
    pub file_rewritten: bool,
    /// Rows a journal record claimed whose data did not survive a power loss
    /// under [`crate::Durability::Process`]; they were dropped.
    pub dropped_rows: u64,
    /// Rows past the header taken over by [`crate::TailPolicy::AdoptWholeRows`].
    pub adopted_rows: u64,
    /// A journal that was never completed (a writer died while creating it)
    /// was removed.
    pub journal_discarded: bool,
    /// Rows the header described that a file without a journal, shorter
    /// than its header, did not hold
    /// ([`crate::ShortFilePolicy`]): the header now counts only the rows
    /// kept.
    pub missing_rows: u64,
    /// Zero bytes written to complete a partial last row
    /// ([`crate::ShortFilePolicy::ZeroFillLastRow`]).
    pub zero_filled_bytes: u64,
    /// A leftover of a header rewrite that died before its rename
    /// (`<file>.rewrite`) was removed.
    pub rewrite_leftover_removed: bool,
    /// Where a journal file this library did not write was moved (renamed,
    /// never removed) under
    /// [`AppendOptions::move_aside_foreign_journal`](crate::AppendOptions::move_aside_foreign_journal).
    pub journal_moved_aside: Option<std::path::PathBuf>,
    /// Rows the file's header claimed and the file held that recovery cut
    /// because the journal does not commit them, under
    /// [`AppendOptions::accept_loss`](crate::AppendOptions::accept_loss)
    /// only (without it such a file is refused).
    pub rows_discarded: u64,
}

impl RecoveryReport {
    /// Whether opening changed the file or its journal beyond creating a
    /// journal for a clean file.
    pub fn changed_file(&self) -> bool {
        self.bytes_cut > 0
            || self.header_rewritten
            || self.file_rewritten
            || self.journal_discarded
            || self.zero_filled_bytes > 0
            || self.rewrite_leftover_removed
            || self.journal_moved_aside.is_some()
            || self.rows_discarded > 0
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let found = match self.found {
            Found::NoFile => "no file",
            Found::Clean => "clean file",
            Found::Journal => "file with journal (writer did not close)",
        };
        write!(
            f,
            "{found}: {} committed rows, {} bytes cut, header {}",
            self.committed_rows,
            self.bytes_cut,
            if self.header_rewritten {
                "rewritten"
            } else {
                "unchanged"
            }
        )?;
        if self.dropped_rows > 0 {
            write!(f, ", {} unsynced rows dropped", self.dropped_rows)?;
        }
        if self.adopted_rows > 0 {
            write!(f, ", {} trailing rows adopted", self.adopted_rows)?;
        }
        if self.missing_rows > 0 {
            write!(
                f,
                ", {} rows of the header missing from the file",
                self.missing_rows
            )?;
        }
        if self.zero_filled_bytes > 0 {
            write!(
                f,
                ", last row completed with {} zero bytes",
                self.zero_filled_bytes
            )?;
        }
        if self.rewrite_leftover_removed {
            f.write_str(", leftover of an interrupted rewrite removed")?;
        }
        if self.file_rewritten {
            f.write_str(", file rewritten with room to grow its header")?;
        }
        if self.journal_discarded {
            f.write_str(", incomplete journal removed")?;
        }
        Ok(())
    }
}

/// What recovering a file on its own does: opening it for appending, then
/// closing it at once, as `npy-append recover` does.
///
/// [`AppendOptions::recover`](crate::AppendOptions::recover) returns what it
/// did; [`AppendOptions::preview_recovery`](crate::AppendOptions::preview_recovery)
/// returns, without changing anything, what it would do. The two are decided
/// by the same code, so that a preview of a file nobody changes in between
/// equals the outcome of recovering it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RecoveryOutcome {
    /// What opening found and changed.
    pub report: RecoveryReport,
    /// Whether the `.npy` exists when done. False only when there was no
    /// file and an incomplete journal (its writer died while creating the
    /// file, before any commit): the journal is removed, nothing is created.
    pub file_exists: bool,
    /// Whether a journal was beside the file; it is gone when done (removed
    /// by the clean close, or, when incomplete, when opening).
    pub journal_removed: bool,
    /// The cursor of the last commit. When the file exists and the cursor
    /// is not empty, the close leaves it in the cursor file
    /// ([`crate::cursor_path`]), replacing any older one; with an empty
    /// cursor an older cursor file is removed.
    pub cursor: Vec<u8>,
}
