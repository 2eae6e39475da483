//! Append throughput by batch size, against a raw `write_all` of the same
//! bytes, with 512-byte rows (128 x float32) under process durability.
//!
//! `cargo bench --bench append`

use std::hint::black_box;
use std::io::Write;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use npy_append::{AppendOptions, Durability};

const ROW_VALUES: usize = 128;
const TOTAL_ROWS: usize = 1 << 14; // 8 MiB per iteration

fn rows() -> Vec<f32> {
    (0..TOTAL_ROWS * ROW_VALUES).map(|i| i as f32).collect()
}

fn append_by_batch(c: &mut Criterion) {
    let data = rows();
    let bytes = TOTAL_ROWS as u64 * ROW_VALUES as u64 * 4;
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("append_8MiB_process");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);

    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    group.bench_function("raw_write_all", |b| {
        let path = dir.path().join("raw.bin");
        b.iter(|| {
            let _ = std::fs::remove_file(&path);
            let mut f = std::fs::File::create(&path).unwrap();
            for chunk in raw.chunks(4096 * ROW_VALUES * 4) {
                f.write_all(chunk).unwrap();
            }
            black_box(f);
        });
    });

    for batch in [1usize, 16, 256, 4096] {
        group.bench_with_input(
            BenchmarkId::new("rows_per_append", batch),
            &batch,
            |b, &batch| {
                let path = dir.path().join(format!("a{batch}.npy"));
                b.iter(|| {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(npy_append::journal_path(&path));
                    let mut w = AppendOptions::new()
                        .row_shape(&[ROW_VALUES as u64])
                        .durability(Durability::Process)
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

criterion_group!(benches, append_by_batch);
criterion_main!(benches);
