//! The committed bytes a reader shows, and the one cast of them to typed
//! values.
//!
//! On the real file system the committed prefix is memory-mapped; other
//! backends have no descriptor to map, so their bytes are copied (meant for
//! tests: in memory, under fault injection and in the crash simulator).

use std::path::Path;

use crate::element::{self, Element};
use crate::error::{Error, Result};
use crate::format::dtype::{Dtype, Kind};
use crate::storage::{FsFile, Storage};

/// Committed data bytes, from the end of a file's header.
pub(crate) enum Rows {
    /// No rows.
    Empty,
    /// Mapped from the file.
    Mapped(memmap2::Mmap),
    /// A copy, in `u64` words so that it is aligned for every [`Element`].
    Owned { words: Vec<u64>, len: usize },
}

impl Rows {
    /// The `len` bytes of `file` from `offset`: mapped when `file` is a real
    /// file, else copied.
    ///
    /// The caller maps committed rows only, which npy-append never rewrites
    /// or cuts (commits write past them, recovery cuts only past the
    /// committed end), so the mapped bytes do not change while mapped.
    pub(crate) fn load<F: Storage + 'static>(
        file: &F,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> Result<Self> {
        if len == 0 {
            return Ok(Self::Empty);
        }
        if let Some(fs) = (file as &dyn std::any::Any).downcast_ref::<FsFile>() {
            // SAFETY: the mapped range holds committed rows only, after the
            // header; writers never rewrite or cut committed rows, so the
            // bytes do not change while mapped. Another program truncating
            // the file can still make an access raise SIGBUS, as with any
            // mapped file (documented on the readers).
            let map = unsafe {
                memmap2::MmapOptions::new()
                    .offset(offset)
                    .len(len)
                    .map(fs.file())
            }
            .map_err(|e| Error::io(path, "mapping the committed rows", e))?;
            return Ok(Self::Mapped(map));
        }
        let mut bytes = vec![0u8; len];
        file.read_at(&mut bytes, offset)
            .map_err(|e| Error::io(path, "reading the committed rows", e))?;
        let words = bytes
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                if let Some(dst) = w.get_mut(..c.len()) {
                    dst.copy_from_slice(c);
                }
                u64::from_ne_bytes(w)
            })
            .collect();
        Ok(Self::Owned { words, len })
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Mapped(map) => map,
            Self::Owned { words, len } => element::as_bytes(words).get(..*len).unwrap_or_default(),
        }
    }
}

/// `bytes` (rows of a file of `dtype` at `path`, whose data starts at byte
/// `data_offset`) as values of `T`, which must be exactly the dtype (no
/// cast, no byte swap). `Unsupported` when the data is not aligned for `T`
/// (files npy-append or numpy >= 1.24 write align it to 64 bytes) and
/// `Corrupt` for a `bool` file holding bytes other than 0 and 1.
pub(crate) fn cast<'a, T: Element>(
    dtype: &Dtype,
    path: &Path,
    data_offset: u64,
    bytes: &'a [u8],
) -> Result<&'a [T]> {
    if !element::matches::<T>(dtype) {
        return Err(Error::DtypeMismatch {
            path: path.to_path_buf(),
            expected: dtype.to_string(),
            found: T::dtype().to_string(),
        });
    }
    if bytes.is_empty() {
        return Ok(&[]);
    }
    let align = std::mem::align_of::<T>();
    if !usize::try_from(data_offset).is_ok_and(|o| o.is_multiple_of(align))
        || !bytes.as_ptr().cast::<T>().is_aligned()
    {
        return Err(Error::Unsupported {
            path: Some(path.to_path_buf()),
            what: format!(
                "the data starts at byte {data_offset}, which is not aligned for {align}-byte \
                 values; read the raw bytes and decode the values"
            ),
        });
    }
    if T::KIND == Kind::Bool
        && let Some(at) = bytes.iter().position(|&b| b > 1)
    {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: Some(data_offset + at as u64),
            what: "a bool value is neither 0 nor 1".to_owned(),
        });
    }
    let count = bytes.len() / std::mem::size_of::<T>();
    // SAFETY: `T` is an `Element` (a primitive with no invalid bit patterns
    // once bool bytes are checked to be 0 or 1 above); the pointer is aligned
    // for `T` (checked above); `count` values of `T` fit in `bytes`, which
    // outlives the returned slice.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), count) })
}
