//! Measurements behind `docs/benchmarks.md`, one per invocation, printed as
//! `key=value` lines. `benches/compare.py` runs it, alternating with the
//! other tools; it can also be run by hand:
//!
//! ```text
//! cargo run --release --example bench_append -- throughput lib 4096 256 none DIR
//! cargo run --release --example bench_append -- throughput raw 1 256 group DIR
//! cargo run --release --example bench_append -- latency 200 DIR
//! cargo run --release --example bench_append -- latency 2 DIR 1000
//! cargo run --release --example bench_append -- recovery 4096 DIR
//! cargo run --release --example bench_append -- refresh 20000 DIR
//! ```
//!
//! Rows are 512 bytes (128 x float32).
//!
//! - `throughput TOOL ROWS_PER_APPEND MIB SYNC DIR`: writes `MIB` MiB of rows in
//!   appends of `ROWS_PER_APPEND` rows. TOOL `lib` is an `Appender`; `raw` is
//!   `File::write_all` of each batch to a plain file, after 128 bytes standing
//!   for the header (so the writes land at the same offsets). SYNC `none`: Process
//!   durability, one commit at the end (the clock stops after it; the close,
//!   which syncs, is not timed); raw writes into the page cache. SYNC
//!   `group`: Fsync durability with a group commit every 64 MiB and the
//!   close timed; raw calls `fdatasync` every 64 MiB and at the end.
//!   SYNC `end` (raw tools only): one `fdatasync` at the end. TOOL `rawstdin`
//!   copies stdin to a plain file (after the same 128 bytes) in reads of 1 MiB (`ROWS_PER_APPEND` and
//!   `MIB` are ignored). Besides the seconds of the whole run it prints
//!   `open_seconds`, the part spent creating the file.
//! - `latency ROUNDS DIR [PER_ROUND]`: per operation, median and mean over
//!   ROUNDS rounds of `PER_ROUND` (default 20) operations of each kind, the
//!   kinds alternating from round to round: a raw `pwrite` of 4 KiB
//!   at the end of a file + `fdatasync`; the same in place (no size change);
//!   one Fsync-durability commit of one row; two files written and synced
//!   one after the other (the commit's I/O without the library) and the
//!   same two syncs run at once on two threads (the least a protocol
//!   syncing data and journal concurrently could cost).
//! - `recovery BIG_MIB DIR`: `open_or_recover` of a crashed writer's file
//!   with a torn tail, 4 MiB against `BIG_MIB` (sparse), alternating; medians.
//! - `refresh N DIR`: `Reader::refresh` with nothing changed, and after a
//!   one-row commit; medians.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use npy_append::{AppendOptions, Appender, Durability, GroupCommit, Reader};

#[path = "../benches/common/mod.rs"]
mod common;
use common::{MIB, ROW_BYTES, ROW_VALUES, Res, crashed_file, fresh, tear_tail};

/// The group-commit size of the `group` sync mode.
const GROUP_BYTES: usize = 64 * MIB;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_append: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Res<()> {
    let arg = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}; see the module docs").into())
    };
    match arg(0)? {
        "throughput" => {
            let rows_per_append: usize = arg(2)?.parse()?;
            let mib: usize = arg(3)?.parse()?;
            let sync = match arg(4)? {
                "none" => Sync::None,
                "group" => Sync::Group,
                "end" => Sync::End,
                other => return Err(format!("sync mode {other}: none, group or end").into()),
            };
            let dir = Path::new(arg(5)?);
            let (bytes, Timed { secs, open_secs }) = match arg(1)? {
                "lib" => (mib * MIB, throughput_lib(rows_per_append, mib, sync, dir)?),
                "raw" => (mib * MIB, throughput_raw(rows_per_append, mib, sync, dir)?),
                "rawstdin" => raw_stdin(sync, dir)?,
                other => return Err(format!("tool {other}: lib, raw or rawstdin").into()),
            };
            println!("seconds={secs:.6}");
            println!("open_seconds={open_secs:.6}");
            #[expect(clippy::cast_precision_loss, reason = "a rate")]
            let mbps = bytes as f64 / secs / 1e6;
            println!("mb_per_s={mbps:.1}");
        }
        "latency" => {
            let per_round = match args.get(3) {
                Some(n) => n.parse()?,
                None => 20,
            };
            latency(arg(1)?.parse()?, per_round, Path::new(arg(2)?))?;
        }
        "recovery" => recovery(arg(1)?.parse()?, Path::new(arg(2)?))?,
        "refresh" => refresh(arg(1)?.parse()?, Path::new(arg(2)?))?,
        other => return Err(format!("unknown mode {other}; see the module docs").into()),
    }
    Ok(())
}

/// `MIB` MiB of rows: a 4 MiB pattern, repeated.
fn pattern() -> Vec<f32> {
    #[expect(clippy::cast_precision_loss, reason = "row values")]
    (0..4 * MIB / 4).map(|i| i as f32).collect()
}

/// The batches of `rows_per_append` rows making up `mib` MiB, as slices of
/// the pattern (a batch larger than the pattern is cut into pieces that
/// are appended one after another, with no copy).
fn for_each_batch(
    data: &[f32],
    rows_per_append: usize,
    mib: usize,
    mut f: impl FnMut(&[f32]) -> Res<()>,
) -> Res<()> {
    let batch = rows_per_append.max(1) * ROW_VALUES;
    let total = mib * MIB / 4;
    let mut done = 0;
    let mut at = 0;
    while done < total {
        let want = batch.min(total - done);
        let mut left = want;
        while left > 0 {
            if at == data.len() {
                at = 0;
            }
            let n = left.min(data.len() - at);
            f(data.get(at..at + n).ok_or("pattern")?)?;
            at += n;
            left -= n;
        }
        done += want;
    }
    Ok(())
}

/// What the raw writers write before the rows: as many bytes as the `.npy`
/// header of these files, so that every write lands at the same offset as
/// the library's. (On the reference machine, 2 MiB writes at 2 MiB-aligned
/// offsets with an `fdatasync` every 64 MiB ran 3 times slower than at the
/// `.npy`'s offsets, or than writes of 1 or 4 MiB.)
const HEADER: [u8; 128] = [b' '; 128];

/// The time of a `throughput` run, and of its first part: creating the
/// file (the library's open, which syncs the new file, its journal and
/// their directory; the raw writer's `File::create` and header write).
struct Timed {
    secs: f64,
    open_secs: f64,
}

/// When the `throughput` tools sync.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Never (npy-append: Process durability).
    None,
    /// Every 64 MiB and at the end (npy-append: Fsync, group commit 64 MiB).
    Group,
    /// Once, at the end (raw tools only).
    End,
}

fn throughput_lib(rows_per_append: usize, mib: usize, sync: Sync, dir: &Path) -> Res<Timed> {
    let group = match sync {
        Sync::None => false,
        Sync::Group => true,
        Sync::End => return Err("npy-append syncs with a group commit: use none or group".into()),
    };
    let data = pattern();
    let path = fresh(dir, "lib.npy");
    let start = Instant::now();
    let mut options = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .dtype("<f4")?;
    options = if group {
        options
            .durability(Durability::Fsync)
            .group_commit(GroupCommit::bytes(GROUP_BYTES as u64))
    } else {
        options.durability(Durability::Process)
    };
    let mut w = options.open(&path)?;
    let open_secs = start.elapsed().as_secs_f64();
    for_each_batch(&data, rows_per_append, mib, |b| Ok(w.append(b)?))?;
    let secs = if group {
        w.close()?;
        start.elapsed().as_secs_f64()
    } else {
        w.commit()?;
        let secs = start.elapsed().as_secs_f64();
        w.close()?;
        secs
    };
    std::fs::remove_file(&path)?;
    Ok(Timed { secs, open_secs })
}

fn throughput_raw(rows_per_append: usize, mib: usize, sync: Sync, dir: &Path) -> Res<Timed> {
    let group = sync == Sync::Group;
    let data = pattern();
    let path = fresh(dir, "raw.bin");
    let start = Instant::now();
    let mut f = File::create(&path)?;
    f.write_all(&HEADER)?;
    let open_secs = start.elapsed().as_secs_f64();
    let mut since_sync = 0;
    for_each_batch(&data, rows_per_append, mib, |b| {
        let bytes: &[u8] = bytemuck_f32(b);
        f.write_all(bytes)?;
        since_sync += bytes.len();
        if group && since_sync >= GROUP_BYTES {
            f.sync_data()?;
            since_sync = 0;
        }
        Ok(())
    })?;
    if sync != Sync::None {
        f.sync_data()?;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(Timed { secs, open_secs })
}

/// Copies stdin to a plain file in reads of 1 MiB, as the command-line
/// tool reads it; returns the bytes copied and the time.
fn raw_stdin(sync: Sync, dir: &Path) -> Res<(usize, Timed)> {
    let path = fresh(dir, "rawstdin.bin");
    let start = Instant::now();
    let mut f = File::create(&path)?;
    f.write_all(&HEADER)?;
    let open_secs = start.elapsed().as_secs_f64();
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; MIB];
    let (mut total, mut since_sync) = (0, 0);
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        f.write_all(buf.get(..n).ok_or("read")?)?;
        total += n;
        since_sync += n;
        if sync == Sync::Group && since_sync >= GROUP_BYTES {
            f.sync_data()?;
            since_sync = 0;
        }
    }
    if sync != Sync::None {
        f.sync_data()?;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok((total, Timed { secs, open_secs }))
}

/// The bytes of `values` (native byte order, as the library writes them).
fn bytemuck_f32(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and every byte pattern is a valid u8; the
    // slice covers exactly the values' memory.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

fn mean(v: &[Duration]) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a mean")]
    let n = v.len().max(1) as f64;
    v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e6 / n
}

fn median(v: &mut [Duration]) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

#[expect(
    clippy::too_many_lines,
    reason = "one measurement loop: the kinds side by side stay alike"
)]
fn latency(rounds: usize, per_round: usize, dir: &Path) -> Res<()> {
    let block = vec![7u8; 4096];
    let row = vec![1.0f32; ROW_VALUES];
    let record = vec![3u8; 64];
    let (mut append4k, mut inplace4k, mut commit, mut two_seq, mut two_conc) =
        (vec![], vec![], vec![], vec![], vec![]);

    let raw_path = fresh(dir, "lat_raw.bin");
    let raw = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&raw_path)?;
    let mut raw_end = 0u64;
    let lib_path = fresh(dir, "lat_lib.npy");
    let mut w = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .durability(Durability::Fsync)
        .open(&lib_path)?;
    w.append(&row)?;
    w.commit()?;
    let data_path = fresh(dir, "lat_data.bin");
    let data = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&data_path)?;
    let journal_path = fresh(dir, "lat_journal.bin");
    let journal = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&journal_path)?;
    journal.write_all_at(&vec![0u8; 4 * 4096], 0)?;
    journal.sync_all()?;
    let mut data_end = 128u64;
    data.write_all_at(&[0u8; 128], 0)?;
    data.sync_all()?;

    for round in 0..rounds {
        // Start every round with a different kind, so that no kind always
        // follows the same one.
        for k in 0..5 {
            let kind = (k + round) % 5;
            for i in 0..per_round {
                let start = Instant::now();
                match kind {
                    0 => {
                        raw.write_all_at(&block, raw_end)?;
                        raw.sync_data()?;
                        raw_end += 4096;
                        append4k.push(start.elapsed());
                    }
                    1 => {
                        raw.write_all_at(&block, 0)?;
                        raw.sync_data()?;
                        inplace4k.push(start.elapsed());
                    }
                    2 => {
                        w.append(&row)?;
                        w.commit()?;
                        commit.push(start.elapsed());
                    }
                    3 => {
                        data.write_all_at(bytemuck_f32(&row), data_end)?;
                        data.sync_data()?;
                        journal.write_all_at(&record, 4096 + 8192 * (i as u64 % 2))?;
                        journal.sync_data()?;
                        data.write_all_at(&[1u8; 100], 10)?;
                        data_end += ROW_BYTES as u64;
                        two_seq.push(start.elapsed());
                    }
                    _ => {
                        data.write_all_at(bytemuck_f32(&row), data_end)?;
                        journal.write_all_at(&record, 4096 + 8192 * (i as u64 % 2))?;
                        std::thread::scope(|s| -> Res<()> {
                            let j = s.spawn(|| journal.sync_data());
                            data.sync_data()?;
                            j.join().map_err(|_| "sync thread panicked")??;
                            Ok(())
                        })?;
                        data.write_all_at(&[1u8; 100], 10)?;
                        data_end += ROW_BYTES as u64;
                        two_conc.push(start.elapsed());
                    }
                }
            }
        }
        // Keep the files small: a long run would otherwise measure a growing
        // extent tree rather than the sync.
        if raw_end > 64 * MIB as u64 {
            raw.set_len(0)?;
            raw.sync_all()?;
            raw_end = 0;
        }
    }
    drop(w);
    for p in [&raw_path, &lib_path, &data_path, &journal_path] {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_file(npy_append::journal_path(&lib_path));
    for (name, times) in [
        ("raw_append_4k_fdatasync", &mut append4k),
        ("raw_inplace_4k_fdatasync", &mut inplace4k),
        ("lib_fsync_commit_1row", &mut commit),
        ("two_files_sequential_syncs", &mut two_seq),
        ("two_files_concurrent_syncs", &mut two_conc),
    ] {
        println!("{name}_us={:.1}", median(times));
        println!("{name}_mean_us={:.1}", mean(times));
    }
    Ok(())
}

fn recovery(big_mib: usize, dir: &Path) -> Res<()> {
    let small = crashed_file(dir, "rec_small.npy", 4)?;
    let big = crashed_file(dir, "rec_big.npy", big_mib)?;
    let (mut t_small, mut t_big) = (vec![], vec![]);
    for i in 0..30 {
        // Alternate which file goes first.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (path, times) = if k == 0 {
                (&small, &mut t_small)
            } else {
                (&big, &mut t_big)
            };
            tear_tail(path)?;
            let start = Instant::now();
            let w = Appender::open_or_recover(path)?;
            let elapsed = start.elapsed();
            if w.report().bytes_cut == 0 {
                return Err("recovery cut no torn tail".into());
            }
            drop(w);
            times.push(elapsed);
        }
    }
    let size_big = std::fs::metadata(&big)?.len();
    for p in [&small, &big] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(npy_append::journal_path(p));
    }
    println!("recover_4mib_us={:.1}", median(&mut t_small));
    println!("recover_big_us={:.1}", median(&mut t_big));
    println!("big_file_bytes={size_big}");
    Ok(())
}

fn refresh(n: usize, dir: &Path) -> Res<()> {
    let path = fresh(dir, "refresh.npy");
    let row = vec![1.0f32; ROW_VALUES];
    let mut w = AppendOptions::new()
        .row_shape(&[ROW_VALUES as u64])
        .durability(Durability::Process)
        .open(&path)?;
    w.append(&row)?;
    w.commit()?;
    let mut r = Reader::open(&path)?;
    let (mut unchanged, mut changed) = (vec![], vec![]);
    for _ in 0..n {
        let start = Instant::now();
        let grew = r.refresh()?;
        unchanged.push(start.elapsed());
        if grew {
            return Err("refresh saw a change where there was none".into());
        }
        w.append(&row)?;
        w.commit()?;
        let start = Instant::now();
        let grew = r.refresh()?;
        changed.push(start.elapsed());
        if !grew {
            return Err("refresh missed a commit".into());
        }
    }
    drop(r);
    w.close()?;
    std::fs::remove_file(&path)?;
    println!("refresh_unchanged_us={:.2}", median(&mut unchanged));
    println!("refresh_after_commit_us={:.2}", median(&mut changed));
    Ok(())
}
