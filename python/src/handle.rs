//! What every writer class shares: a writer that is open until `close()`
//! or `abandon()`, its commit (with an optional cursor), its close, and the
//! context-manager exit. `Appender`, `AppendGroup`, `RaggedAppender` and
//! `ShardWriter` each hold a [`Handle`] and forward these methods to it.

use std::path::{Path, PathBuf};

use npy_append::{
    AppendGroup as RsGroup, Appender as RsAppender, Error, RaggedAppender as RsRagged,
};
use pyo3::prelude::*;

use crate::errors::{OrRaise, closed};

/// A library writer, as a [`Handle`] drives it.
pub(crate) trait Writer: Send {
    /// What a commit and a close return (the committed rows).
    type Committed: Send;
    /// The writer's name in messages ("the {NOUN} is closed").
    const NOUN: &'static str;
    /// Commits the pending rows.
    fn commit(&mut self) -> Result<Self::Committed, Error>;
    /// Commits the pending rows with a cursor.
    fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<Self::Committed, Error>;
    /// Commits and closes.
    fn close(self) -> Result<Self::Committed, Error>;
    /// The cursor of the last commit.
    fn cursor(&self) -> &[u8];
}

impl Writer for RsAppender {
    type Committed = u64;
    const NOUN: &'static str = "appender";
    fn commit(&mut self) -> Result<u64, Error> {
        RsAppender::commit(self)
    }
    fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64, Error> {
        RsAppender::commit_with_cursor(self, cursor)
    }
    fn close(self) -> Result<u64, Error> {
        RsAppender::close(self)
    }
    fn cursor(&self) -> &[u8] {
        RsAppender::cursor(self)
    }
}

impl Writer for RsGroup {
    type Committed = Vec<u64>;
    const NOUN: &'static str = "group";
    fn commit(&mut self) -> Result<Vec<u64>, Error> {
        RsGroup::commit(self)
    }
    fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<Vec<u64>, Error> {
        RsGroup::commit_with_cursor(self, cursor)
    }
    fn close(self) -> Result<Vec<u64>, Error> {
        RsGroup::close(self)
    }
    fn cursor(&self) -> &[u8] {
        RsGroup::cursor(self)
    }
}

impl Writer for RsRagged {
    type Committed = u64;
    const NOUN: &'static str = "ragged appender";
    fn commit(&mut self) -> Result<u64, Error> {
        RsRagged::commit(self)
    }
    fn commit_with_cursor(&mut self, cursor: &[u8]) -> Result<u64, Error> {
        RsRagged::commit_with_cursor(self, cursor)
    }
    fn close(self) -> Result<u64, Error> {
        RsRagged::close(self)
    }
    fn cursor(&self) -> &[u8] {
        RsRagged::cursor(self)
    }
}

/// A writer of `path` that is open until closed or abandoned.
pub(crate) struct Handle<W> {
    writer: Option<W>,
    path: PathBuf,
}

impl<W: Writer> Handle<W> {
    pub(crate) fn new(writer: W, path: PathBuf) -> Self {
        Self {
            writer: Some(writer),
            path,
        }
    }

    /// The path the writer was opened with.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open writer, or `ClosedError`.
    pub(crate) fn live(&mut self) -> PyResult<&mut W> {
        match &mut self.writer {
            Some(w) => Ok(w),
            None => Err(closed(&self.path, W::NOUN)),
        }
    }

    /// The open writer, or `ClosedError`.
    pub(crate) fn live_ref(&self) -> PyResult<&W> {
        self.writer
            .as_ref()
            .ok_or_else(|| closed(&self.path, W::NOUN))
    }

    /// Takes the open writer out, for a call that consumes it (a shard's
    /// `finish()`); the handle is closed afterwards. `ClosedError` when it
    /// is closed already.
    pub(crate) fn take(&mut self) -> PyResult<W> {
        self.writer
            .take()
            .ok_or_else(|| closed(&self.path, W::NOUN))
    }

    /// Puts `writer` in place of the present one, which is dropped first
    /// (as `abandon()` drops it).
    pub(crate) fn replace(
        &mut self,
        py: Python<'_>,
        open: impl FnOnce() -> Result<W, Error> + Send,
    ) -> PyResult<()> {
        self.writer = None;
        let writer = py.detach(open).or_raise(py)?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Commits the pending rows (with `cursor`, when given), the GIL
    /// released.
    pub(crate) fn commit(
        &mut self,
        py: Python<'_>,
        cursor: Option<&[u8]>,
    ) -> PyResult<W::Committed> {
        let writer = self.live()?;
        match cursor {
            Some(cursor) => py.detach(|| writer.commit_with_cursor(cursor)).or_raise(py),
            None => py.detach(|| writer.commit()).or_raise(py),
        }
    }

    /// Commits and closes; `None` when closed already.
    pub(crate) fn close(&mut self, py: Python<'_>) -> PyResult<Option<W::Committed>> {
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        py.detach(|| writer.close()).or_raise(py).map(Some)
    }

    /// Releases the files without committing, as a crash would.
    pub(crate) fn abandon(&mut self) {
        self.writer = None;
    }

    /// Whether `close()` or `abandon()` was called.
    pub(crate) fn closed(&self) -> bool {
        self.writer.is_none()
    }

    /// The cursor of the last commit.
    pub(crate) fn cursor(&self) -> PyResult<&[u8]> {
        Ok(self.live_ref()?.cursor())
    }

    /// The context manager's exit: closes when the block ended normally,
    /// abandons when it ended by an exception. Never suppresses the
    /// exception.
    pub(crate) fn exit(
        &mut self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_some_and(|t| !t.is_none()) {
            self.abandon();
        } else {
            self.close(py)?;
        }
        Ok(false)
    }

    /// `<npy_append.{class} "{path}": {state}>`, with `describe` for an open
    /// writer and "closed" otherwise.
    pub(crate) fn repr(&self, class: &str, describe: impl FnOnce(&W) -> String) -> String {
        let path = self.path.display().to_string();
        let state = self
            .writer
            .as_ref()
            .map_or_else(|| "closed".to_owned(), describe);
        format!("<npy_append.{class} {path:?}: {state}>")
    }
}
