//! Criterion benches with 512-byte rows (128 x float32):
//!
//! - `append/{process,fsync}/rows_per_append/N`: append throughput by batch
//!   size (1, 16, 256, 4096, 65536 rows), 8 MiB per iteration (32 MiB for
//!   65536-row batches), one commit at the end, against a raw `write_all`
//!   of the same bytes (`append/{process,fsync}/raw_write_all`, with one
//!   `fdatasync` at the end in the fsync group);
//! - `commit_latency`: one Fsync-durability commit of one row, against a raw
//!   `pwrite` of 4 KiB at the end of a file + `fdatasync`;
//! - `recovery/{4MiB,4GiB}`: `open_or_recover` of a crashed writer's file
//!   with a torn tail (the 4 GiB file is sparse but for its last commit);
//! - `reader_refresh/{unchanged,after_commit}`.
//!
//! `cargo bench --bench append`; `cargo test --benches` runs each once.
//! `benches/compare.py` compares with other tools side by side.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use npy_append::storage::{Backend, FsBackend, OpenMode};
use npy_append::{AppendOptions, Appender, Durability, Reader};

mod common;
use common::{MIB, ROW_BYTES, ROW_VALUES, crashed_file, fresh, tear_tail};

const TOTAL_BYTES: usize = 8 * MIB;

fn rows(bytes: usize) -> Vec<f32> {
    #[expect(clippy::cast_precision_loss, reason = "row values")]
    (0..bytes / 4).map(|i| i as f32).collect()
}

fn as_bytes(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte is a valid u8; the slice
    // covers exactly the values' memory.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

fn append_by_batch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for (name, durability) in [
        ("process", Durability::Process),
        ("fsync", Durability::Fsync),
    ] {
        let mut group = c.benchmark_group(format!("append/{name}"));
        group.sample_size(10);
        let synced = durability == Durability::Fsync;

        let data = rows(TOTAL_BYTES);
        group.throughput(Throughput::Bytes(TOTAL_BYTES as u64));
        group.bench_function("raw_write_all", |b| {
            let path = dir.path().join("raw.bin");
            b.iter(|| {
                // A new file each time, as the library's runs: truncating the
                // old one would make ext4 flush it at the close.
                let _ = std::fs::remove_file(&path);
                let mut f = File::create(&path).unwrap();
                // 128 bytes for the header, so the writes land at the
                // library's offsets.
                f.write_all(&[b' '; 128]).unwrap();
                for chunk in data.chunks(4096 * ROW_VALUES) {
                    f.write_all(as_bytes(chunk)).unwrap();
                }
                if synced {
                    f.sync_data().unwrap();
                }
                black_box(f);
            });
        });

        for batch in [1usize, 16, 256, 4096, 65536] {
            let bytes = TOTAL_BYTES.max(batch * ROW_BYTES);
            let data = rows(bytes);
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_with_input(
                BenchmarkId::new("rows_per_append", batch),
                &batch,
                |b, &batch| {
                    let name = format!("a{batch}.npy");
                    b.iter(|| {
                        let path = fresh(dir.path(), &name);
                        let mut w = AppendOptions::new()
                            .row_shape(&[ROW_VALUES as u64])
                            .durability(durability)
                            .open(&path)
                            .unwrap();
                        for chunk in data.chunks(batch * ROW_VALUES) {
                            w.append(chunk).unwrap();
                        }
                        w.commit().unwrap();
                        black_box(w.len());
                        drop(w);
                    });
                },
            );
        }
        group.finish();
    }
}

fn commit_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("commit_latency");
    group.sample_size(20);
    group.bench_function("raw_pwrite_4KiB_fdatasync", |b| {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("raw.bin"))
            .unwrap();
        let block = [7u8; 4096];
        let mut end = 0u64;
        b.iter(|| {
            f.write_all_at(&block, end).unwrap();
            f.sync_data().unwrap();
            end += 4096;
        });
    });
    group.bench_function("fsync_commit_1_row", |b| {
        let row = vec![1.0f32; ROW_VALUES];
        let mut w = AppendOptions::new()
            .row_shape(&[ROW_VALUES as u64])
            .durability(Durability::Fsync)
            .open(dir.path().join("lat.npy"))
            .unwrap();
        b.iter(|| {
            w.append(&row).unwrap();
            black_box(w.commit().unwrap());
        });
    });
    // A Process commit checks that the file's path still names the file
    // the writer holds: its share of a commit that needs no sync.
    group.bench_function("process_commit_1_row", |b| {
        let row = vec![1.0f32; ROW_VALUES];
        let mut w = AppendOptions::new()
            .row_shape(&[ROW_VALUES as u64])
            .durability(Durability::Process)
            .open(dir.path().join("lat-process.npy"))
            .unwrap();
        b.iter(|| {
            w.append(&row).unwrap();
            black_box(w.commit().unwrap());
        });
    });
    let path = dir.path().join("check.npy");
    let backend = FsBackend;
    let file = backend.open(&path, OpenMode::CreateNew).unwrap();
    group.bench_function("path_check_of_a_process_commit", |b| {
        b.iter(|| black_box(backend.is_same_file(&file, &path).unwrap()));
    });
    group.finish();
}

/// Times `open_or_recover` only; the torn tail is written before each run.
fn time_recoveries(path: &Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        tear_tail(path).unwrap();
        let start = Instant::now();
        let w = Appender::open_or_recover(path).unwrap();
        total += start.elapsed();
        assert!(w.report().bytes_cut > 0, "recovery cut no torn tail");
        drop(w);
    }
    total
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("recovery");
    group.sample_size(20);
    for (name, mib) in [("4MiB", 4), ("4GiB", 4096)] {
        let path = crashed_file(dir.path(), &format!("{name}.npy"), mib).unwrap();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_recoveries(&path, iters));
        });
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

fn reader_refresh(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.npy");
    let row = vec![1.0f32; ROW_VALUES];
    let mut w = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .durability(Durability::Process)
        .open(&path)
        .unwrap();
    w.append(&row).unwrap();
    w.commit().unwrap();
    let mut r = Reader::open(&path).unwrap();
    let mut group = c.benchmark_group("reader_refresh");
    group.bench_function("unchanged", |b| {
        b.iter(|| assert!(!r.refresh().unwrap()));
    });
    group.bench_function("after_commit", |b| {
        b.iter_batched(
            || {
                w.append(&row).unwrap();
                w.commit().unwrap();
            },
            |()| assert!(r.refresh().unwrap()),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(
    benches,
    append_by_batch,
    commit_latency,
    recovery,
    reader_refresh
);
criterion_main!(benches);
