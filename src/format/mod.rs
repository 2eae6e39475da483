//! Pure on-disk format code: the NPY header, the sidecar journals and the
//! dataset files.
//!
//! Nothing in this module touches a file. Every function takes bytes or values
//! and returns bytes or values, so the format can be tested (and fuzzed) on its
//! own, and every integer read from disk is checked before it is used.

pub mod cursor_file;
pub mod dataset;
pub mod dtype;
pub mod group_journal;
pub mod header;
pub mod journal;
pub mod json;
pub(crate) mod layout;
mod pyliteral;

/// Why bytes could not be understood as part of the on-disk format.
///
/// The storage layer turns this into [`crate::Error::Corrupt`] or
/// [`crate::Error::Unsupported`], adding the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The bytes are not valid: `what` says which rule they break, `offset`
    /// (when known) is the byte offset inside the parsed region.
    Malformed {
        /// Byte offset inside the parsed region, when known.
        offset: Option<u64>,
        /// What is wrong, in words.
        what: String,
    },
    /// The bytes are valid but describe something this library does not
    /// handle (an object dtype, a 0-d array to grow, ...).
    Unsupported {
        /// What is not supported, in words.
        what: String,
    },
}

impl FormatError {
    pub(crate) fn malformed(offset: Option<u64>, what: impl Into<String>) -> Self {
        Self::Malformed {
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        Self::Unsupported { what: what.into() }
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed {
                offset: Some(offset),
                what,
            } => write!(f, "{what} (at byte {offset})"),
            Self::Malformed { offset: None, what } => f.write_str(what),
            Self::Unsupported { what } => write!(f, "unsupported: {what}"),
        }
    }
}

impl std::error::Error for FormatError {}
