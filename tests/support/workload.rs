//! The workload of the crash-state and I/O-error tests: `<u4` rows of six
//! values, each computable from its row index (also in numpy), and the
//! steps a workload is made of.

use npy_append::{AppendOptions, Durability};

/// Values per row (`<u4`), so a row is 24 bytes.
pub const ROW_VALUES: u64 = 6;
/// Bytes per row.
pub const ROW_BYTES: u64 = ROW_VALUES * 4;

/// Value `j` of row `i`, computable in numpy the same way.
pub fn value(i: u64, j: u64) -> u32 {
    ((i * ROW_VALUES + j).wrapping_mul(2_654_435_761) % (1 << 32)) as u32
}

/// The bytes of rows `rows`, as the file holds them.
pub fn row_bytes(rows: std::ops::Range<u64>) -> Vec<u8> {
    rows.flat_map(|i| (0..ROW_VALUES).flat_map(move |j| value(i, j).to_le_bytes()))
        .collect()
}

/// Options of every writer of the workload: the dtype and row shape, a
/// small buffer (so that commits span several writes), and `durability`.
pub fn options(durability: Durability) -> AppendOptions {
    AppendOptions::new()
        .dtype("<u4")
        .unwrap()
        .row_shape(&[ROW_VALUES])
        .durability(durability)
        .buffer_bytes(2048)
}

/// One step of a workload.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Open,
    /// Open with this durability (writers of one file may differ).
    OpenAs(Durability),
    Append(u64),
    Commit,
    Close,
    /// Drop without close (the journal stays).
    Drop,
}
