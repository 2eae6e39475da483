//! The readers of committed rows (one file, a group, a ragged array) and
//! the read-only status of a file. Nothing here writes or takes a lock
//! (a reader asking whether a writer is active probes a writer's lock for
//! a moment: see [`liveness`]).

pub(crate) mod group;
pub(crate) mod group_status;
pub(crate) mod liveness;
pub(crate) mod ragged;
pub(crate) mod reader;
pub(crate) mod rows;
pub(crate) mod status;
