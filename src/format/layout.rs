//! The layout of a `.npy` being appended to: its header, the bytes per
//! row and the offset of row `n`, and the header bytes for a new row count.
//!
//! One type used by the writers, recovery, the readers and the status, so
//! that nobody recomputes row sizes or data offsets.

use super::FormatError;
use super::header::{self, Header};

/// A `.npy` header checked for appending, with the derived sizes.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The header, its shape set to the committed rows.
    pub header: Header,
    /// Bytes per row.
    pub row_bytes: u64,
    /// Renders the header for a new row count without formatting it again;
    /// `None` when the header cannot be split (then `header_bytes` builds
    /// it whole, and reports why it cannot).
    template: Option<header::GrowthTemplate>,
}

impl Layout {
    /// Checks that `header` describes a file rows can be appended to.
    pub(crate) fn new(header: Header) -> Result<Self, FormatError> {
        let layout = Self::without_room(header)?;
        if !layout.has_room() {
            return Err(FormatError::unsupported(format!(
                "the {}-byte header has no room to grow the row count to 20 digits \
                 (written by numpy < 1.24 or another tool); opening it for appending \
                 without a journal rewrites it with a header that has room, or rewrite it \
                 with numpy >= 1.24: np.save(path, np.load(path))",
                layout.header.header_len
            )));
        }
        Ok(layout)
    }

    /// Checks everything [`Layout::new`] checks except the room to grow
    /// the header.
    ///
    /// The growth axis is the first in C order and the last in Fortran
    /// order, where the data is contiguous: a "row" of a Fortran-order array
    /// of shape `(a, b, N)` is one `(a, b)` slice (itself in Fortran order).
    pub(crate) fn without_room(header: Header) -> Result<Self, FormatError> {
        if header.shape.is_empty() {
            return Err(FormatError::unsupported(
                "a 0-d array (shape ()) has no axis to grow; save it with shape (1,) to append",
            ));
        }
        let row_shape = header.row_shape();
        let itemsize = header.dtype.itemsize()?;
        let row_bytes = row_shape
            .iter()
            .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| FormatError::malformed(None, "row size overflows 64 bits"))?;
        if row_bytes == 0 {
            return Err(FormatError::unsupported(format!(
                "rows of {row_shape:?} with dtype {} have zero bytes, so rows cannot be counted",
                header.dtype
            )));
        }
        header.data_len()?;
        let template = header::GrowthTemplate::new(
            header.version,
            &header.dtype,
            header.fortran_order,
            &header.shape,
            header.header_len,
        )
        .ok();
        Ok(Self {
            header,
            row_bytes,
            template,
        })
    }

    /// Whether the header can hold any row count (20 digits) at its
    /// current length.
    pub(crate) fn has_room(&self) -> bool {
        self.header.has_growth_room()
    }

    /// The growth axis of `shape` (one of this layout's order).
    fn growth_axis<'a>(&self, shape: &'a mut [u64]) -> Option<&'a mut u64> {
        if self.header.fortran_order {
            shape.last_mut()
        } else {
            shape.first_mut()
        }
    }

    /// Rows in the header's shape.
    pub(crate) fn rows(&self) -> u64 {
        self.header.growth_len().unwrap_or(0)
    }

    /// The file length `rows` rows need.
    pub(crate) fn end_of(&self, rows: u64) -> Option<u64> {
        rows.checked_mul(self.row_bytes)?
            .checked_add(self.header.header_len)
    }

    /// The header bytes for `rows` rows, the same length as the current header.
    pub(crate) fn header_bytes(&self, rows: u64) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.header_bytes_into(rows, &mut out)?;
        Ok(out)
    }

    /// [`header_bytes`](Self::header_bytes) into `out` (cleared first), so
    /// that a writer reuses one buffer for every commit.
    pub(crate) fn header_bytes_into(
        &self,
        rows: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        if self
            .template
            .as_ref()
            .is_some_and(|t| t.render_into(rows, out))
        {
            return Ok(());
        }
        *out = self.build_header_bytes(rows)?;
        Ok(())
    }

    /// The header bytes for `rows` rows, built whole (the slow path, which
    /// also says why a header cannot be built).
    fn build_header_bytes(&self, rows: u64) -> Result<Vec<u8>, FormatError> {
        let mut shape = self.header.shape.clone();
        if let Some(growth) = self.growth_axis(&mut shape) {
            *growth = rows;
        }
        header::build_with_len(
            self.header.version,
            &self.header.dtype,
            self.header.fortran_order,
            &shape,
            self.header.header_len,
        )
    }

    /// Sets the header's row count.
    pub(crate) fn set_rows(&mut self, rows: u64) {
        let mut shape = std::mem::take(&mut self.header.shape);
        if let Some(growth) = self.growth_axis(&mut shape) {
            *growth = rows;
        }
        self.header.shape = shape;
    }
}
