//! Helpers shared by the criterion benches and the `bench_append` example.

#![allow(dead_code, reason = "each user takes what it needs")]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use npy_append::{AppendOptions, Durability};

/// Values per row: 128 x float32, 512 bytes.
pub const ROW_VALUES: usize = 128;
pub const ROW_BYTES: usize = ROW_VALUES * 4;
pub const MIB: usize = 1 << 20;

/// Any error, for benchmark code.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `dir/name`, with any file of that name and its journal removed.
pub fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(npy_append::journal_path(&path));
    path
}

/// A crashed writer's file of `mib` MiB of committed rows (all but the last
/// commit sparse), with a journal; returns its path.
pub fn crashed_file(dir: &Path, name: &str, mib: usize) -> Res<PathBuf> {
    let path = fresh(dir, name);
    let rows = mib * MIB / ROW_BYTES;
    let last = 1000usize.min(rows);
    // A plain file of `rows - last` rows: a one-row file whose header is
    // patched to the larger shape (numpy leaves room for the digits), its
    // data a hole.
    let mut w = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .durability(Durability::Process)
        .open(&path)?;
    w.append(&vec![0.0f32; ROW_VALUES])?;
    w.close()?;
    let f = OpenOptions::new().read(true).write(true).open(&path)?;
    let mut head = vec![0u8; 128];
    f.read_exact_at(&mut head, 0)?;
    let header_len = u64::from(u16::from_le_bytes([head[8], head[9]])) + 10;
    let text = std::str::from_utf8(head.get(10..).ok_or("short header")?)?;
    let old = format!("'shape': (1, {ROW_VALUES}), }}");
    let new = format!("'shape': ({}, {ROW_VALUES}), }}", rows - last);
    let at = text.find(&old).ok_or("unexpected header")?;
    let grow = new.len() - old.len();
    let mut patched = text.to_owned();
    patched.replace_range(at..at + old.len(), &new);
    let nl = patched.find('\n').ok_or("unexpected header")?;
    patched.replace_range(nl - grow..nl, "");
    f.write_all_at(patched.as_bytes(), 10)?;
    f.set_len(header_len + ((rows - last) * ROW_BYTES) as u64)?;
    f.sync_all()?;
    drop(f);
    // The last commit is real data, checked by recovery; the writer dies
    // (drop) without closing.
    let mut w = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .durability(Durability::Fsync)
        .open(&path)?;
    #[expect(clippy::cast_precision_loss, reason = "row values")]
    let values: Vec<f32> = (0..last * ROW_VALUES).map(|i| i as f32).collect();
    w.append(&values)?;
    w.commit()?;
    drop(w);
    Ok(path)
}

/// Writes 700 bytes of a torn, uncommitted row group past the end.
pub fn tear_tail(path: &Path) -> Res<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    let len = f.metadata()?.len();
    f.write_all_at(&[0xAB; 700], len)?;
    Ok(())
}
