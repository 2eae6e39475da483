//! Recovering a file on its own: opening it for appending and closing it at
//! once ([`AppendOptions::recover`]).

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::files;
use crate::options::AppendOptions;
use crate::report::RecoveryOutcome;
use crate::storage::{Backend, FsBackend};

impl AppendOptions {
    /// Brings the file at `path` to its committed state and closes it
    /// cleanly, as `npy-append recover` does: opens it for appending with
    /// these options (recovering a crashed writer's file, taking over a
    /// clean one) and closes it, leaving a plain `.npy` with no journal.
    /// Returns what was found and done; an error changes nothing that
    /// opening could not understand (see [`AppendOptions::open`]).
    ///
    /// [`AppendOptions::preview_recovery`] says the same without changing
    /// anything. Errors with an I/O error of kind `NotFound` when neither the
    /// file nor its journal exists.
    pub fn recover(&self, path: impl AsRef<Path>) -> Result<RecoveryOutcome> {
        self.recover_with(FsBackend, path)
    }

    /// [`AppendOptions::recover`] on `backend`.
    pub fn recover_with<B: Backend>(
        &self,
        backend: B,
        path: impl AsRef<Path>,
    ) -> Result<RecoveryOutcome> {
        let resolved = files::resolve(&backend, path.as_ref())?;
        let path = resolved.as_path();
        files::check_sidecar_names(&backend, path)?;
        let journal_path = files::journal_path(path);
        let exists = |p: &Path| {
            backend
                .exists(p)
                .map_err(|e| Error::io(p, "checking whether it exists", e))
        };
        let journal_present = exists(&journal_path)?;
        if !journal_present && !exists(path)? {
            return Err(nothing_to_recover(path));
        }
        let appender = self.clone().open_with(backend, path)?;
        let outcome = RecoveryOutcome {
            report: appender.report().clone(),
            file_exists: appender.row_bytes().is_some(),
            journal_removed: journal_present,
            cursor: appender.cursor().to_vec(),
        };
        appender.close()?;
        Ok(outcome)
    }
}

/// The error for a path with neither a file nor a journal.
pub(crate) fn nothing_to_recover(path: &Path) -> Error {
    Error::io(
        path,
        "opening",
        io::Error::new(
            io::ErrorKind::NotFound,
            "no such file, and no journal beside it",
        ),
    )
}
