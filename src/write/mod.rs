//! The writers: one `.npy` file ([`appender`]), several committed together
//! ([`group`]) and sequences of different lengths ([`ragged`]), all on one
//! per-file write path ([`data_file`]); recovering a file on its own
//! ([`recover`]: open, then close).

pub(crate) mod appender;
pub(crate) mod data_file;
pub(crate) mod group;
pub(crate) mod ragged;
pub(crate) mod recover;
