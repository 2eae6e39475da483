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
}

impl RecoveryReport {
    /// Whether opening changed the file or its journal beyond creating a
    /// journal for a clean file.
    pub fn changed_file(&self) -> bool {
        self.bytes_cut > 0 || self.header_rewritten || self.file_rewritten || self.journal_discarded
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
        if self.file_rewritten {
            f.write_str(", file rewritten with room to grow its header")?;
        }
        if self.journal_discarded {
            f.write_str(", incomplete journal removed")?;
        }
        Ok(())
    }
}
