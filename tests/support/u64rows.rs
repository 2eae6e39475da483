//! The rows of the kill and power-cut tests: `<u8` rows of 16 values whose
//! value `j` in row `i` is `16 * i + j`, so every byte of a file can be
//! checked; a seedable random source; and a reader of such files that is
//! independent of the library.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Values per row.
pub const ROW: u64 = 16;

/// Bytes per row.
pub const ROW_BYTES: u64 = ROW * 8;

/// The value `j` of row `i`.
pub fn value(i: u64, j: u64) -> u64 {
    i * ROW + j
}

/// Rows `start..start + n`, flattened.
pub fn rows(start: u64, n: u64) -> Vec<u64> {
    (start * ROW..(start + n) * ROW).collect()
}

/// xorshift64*: small, seedable, good enough to pick sizes and delays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn seed_from_env_or_time() -> u64 {
    match std::env::var("NPY_APPEND_SEED") {
        Ok(s) => s.trim().parse().expect("NPY_APPEND_SEED must be a u64"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            (nanos as u64) ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// A minimal NPY header reader, independent of the library's: returns
/// (header length, descr, shape).
pub fn read_npy_header(bytes: &[u8]) -> (u64, String, Vec<u64>) {
    assert!(
        bytes.len() >= 12,
        "file too short for a header: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..6], b"\x93NUMPY", "bad magic");
    let (len, start) = match bytes[6] {
        1 => (u64::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => (
            u64::from(u32::from_le_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11],
            ])),
            12,
        ),
        v => panic!("unknown NPY version {v}"),
    };
    let header_len = start as u64 + len;
    assert_eq!(
        header_len % 64,
        0,
        "header length {header_len} not a multiple of 64"
    );
    assert!(header_len as usize <= bytes.len(), "header past the file");
    let text = std::str::from_utf8(&bytes[start..header_len as usize]).expect("header not UTF-8");
    assert!(
        text.ends_with('\n'),
        "header does not end with a newline: {text:?}"
    );
    assert!(text.contains("'fortran_order': False"), "header: {text:?}");
    let descr = text
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("no descr in {text:?}"))
        .to_owned();
    let shape_text = text
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no shape in {text:?}"));
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("bad shape {shape_text:?}"))
        })
        .collect();
    (header_len, descr, shape)
}

/// Checks that the file at `path` is a `.npy` of exactly `rows` rows of
/// `value(i, j)`, with nothing after them.
pub fn verify_file(path: &Path, rows: u64, context: &str) {
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("{context}: opening {}: {e}", path.display()));
    let file_len = file.metadata().unwrap().len();
    let mut head = vec![0u8; 4096.min(file_len as usize)];
    file.read_exact(&mut head).unwrap();
    let (header_len, descr, shape) = read_npy_header(&head);
    assert_eq!(descr, "<u8", "{context}: descr");
    assert_eq!(shape, vec![rows, ROW], "{context}: header shape");
    assert_eq!(
        file_len,
        header_len + rows * ROW_BYTES,
        "{context}: file length (header {header_len} + {rows} rows of {ROW_BYTES} bytes)"
    );
    let mut file = BufReader::with_capacity(1 << 20, file);
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(header_len)).unwrap();
    let mut buf = vec![0u8; (ROW_BYTES * 8192) as usize];
    let mut row = 0;
    while row < rows {
        let n = (rows - row).min(8192);
        let chunk = &mut buf[..(n * ROW_BYTES) as usize];
        file.read_exact(chunk).unwrap();
        for (k, word) in chunk.chunks_exact(8).enumerate() {
            let got = u64::from_le_bytes(word.try_into().unwrap());
            let k = k as u64;
            let (i, j) = (row + k / ROW, k % ROW);
            if got != value(i, j) {
                panic!(
                    "{context}: row {i} value {j} is {got}, expected {}",
                    value(i, j)
                );
            }
        }
        row += n;
    }
}
