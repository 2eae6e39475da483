//! The readers of committed rows (one file, a group, a ragged array) and
//! the read-only status of a file. Nothing here writes or takes a lock.

pub(crate) mod group;
pub(crate) mod ragged;
pub(crate) mod reader;
pub(crate) mod rows;
pub(crate) mod status;
