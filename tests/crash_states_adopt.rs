//! Every crash state of taking over a file whose header has no room to grow
//! (written by numpy < 1.24 or another tool), enumerated with the power-loss
//! model of `tests/crashsim`: the file is rewritten to a temporary file next
//! to it, synced, renamed over it, the directory synced, then appended to.
//!
//! After a simulated power loss after every operation, with every surviving
//! disk image the model allows (lost, reordered, torn writes; lost directory
//! entries, renames included):
//!
//! - the `.npy` exists (the old file or the new one, never neither);
//! - before any recovery it is byte for byte the old file, or a header that
//!   parses shows only rows that are present and as written;
//! - opening succeeds, removes a leftover temporary file, keeps at least
//!   every acknowledged commit and only rows as written;
//! - closing leaves one plain `.npy` with a header that has room.
//!
//! Broken variants of the rewrite (no sync of the copy before the rename;
//! no directory sync after it) show that the enumeration catches each.
//!
//! `cargo test --release --test crash_states_adopt -- --nocapture` prints
//! the counts.

mod crashsim;

use std::path::PathBuf;

use crashsim::{Image, Model, Op, Rng, SimBackend};
use npy_append::format::header;
use npy_append::{AppendOptions, Appender, Error, journal_path, rewrite_path};

/// Values per row (`<u4`): 24-byte rows.
const ROW_VALUES: u64 = 6;
const ROW_BYTES: u64 = ROW_VALUES * 4;
/// Rows of the old file.
const OLD_ROWS: u64 = 3;

fn npy() -> PathBuf {
    PathBuf::from("/sim/data.npy")
}

fn value(i: u64, j: u64) -> u32 {
    u32::try_from((i * ROW_VALUES + j) * 7 + 1).unwrap()
}

fn rows(range: std::ops::Range<u64>) -> Vec<u32> {
    range
        .flat_map(|i| (0..ROW_VALUES).map(move |j| value(i, j)))
        .collect()
}

fn row_bytes(range: std::ops::Range<u64>) -> Vec<u8> {
    rows(range).iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The old file: a 1.0 header without growth padding, 16-byte aligned, as
/// numpy < 1.24 wrote it.
fn old_file() -> Vec<u8> {
    let text = format!(
        "{{'descr': '<u4', 'fortran_order': False, 'shape': ({OLD_ROWS}, {ROW_VALUES}), }}"
    );
    let total = (10 + text.len() + 1).div_ceil(16) * 16;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&u16::try_from(total - 10).unwrap().to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(&row_bytes(0..OLD_ROWS));
    out
}

/// A recorded run: the initial image, the operations, and for every
/// acknowledged commit (or close) the operations done and the rows.
struct Recording {
    initial: Image,
    trace: Vec<Op>,
    acks: Vec<(usize, u64)>,
    total: u64,
}

impl Recording {
    fn acked_at(&self, k: usize) -> u64 {
        self.acks
            .iter()
            .filter(|(at, _)| *at <= k)
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(OLD_ROWS)
    }
}

/// Opens the old file (rewrite), appends 2 rows, commits, 1 row, commits,
/// closes. With `leftover`, a partial temporary file of an earlier rewrite
/// is there too.
fn record(leftover: bool) -> Recording {
    let mut initial = Image::new();
    initial.insert(npy(), old_file());
    if leftover {
        initial.insert(rewrite_path(&npy()), old_file()[..40].to_vec());
    }
    let fs = SimBackend::from_image(&initial);
    let mut acks = Vec::new();
    let mut w = AppendOptions::new().open_with(fs.clone(), npy()).unwrap();
    assert!(w.report().file_rewritten);
    w.append(&rows(3..5)).unwrap();
    w.commit().unwrap();
    acks.push((fs.ops(), 5));
    w.append(&rows(5..6)).unwrap();
    w.commit().unwrap();
    acks.push((fs.ops(), 6));
    w.close().unwrap();
    acks.push((fs.ops(), 6));
    Recording {
        initial,
        trace: fs.trace(),
        acks,
        total: 6,
    }
}

/// The rows a header that parses shows (what numpy loads), checked against
/// what was written.
fn check_visible(bytes: &[u8]) -> Result<(), String> {
    if bytes == old_file() {
        return Ok(());
    }
    // A header torn by a commit's in-place rewrite does not parse (numpy
    // refuses the file until recovery): nothing is shown wrongly.
    let Ok(h) = header::parse(bytes) else {
        return Ok(());
    };
    let hl = usize::try_from(h.header_len).unwrap();
    let n = h.shape.first().copied().unwrap_or(0);
    let data = bytes
        .get(hl..hl + usize::try_from(n * ROW_BYTES).unwrap())
        .ok_or_else(|| format!("header shows {n} rows that are not all there"))?;
    if data != row_bytes(0..n) {
        return Err(format!("header shows {n} rows, not all as written"));
    }
    Ok(())
}

/// Opens `image` with `options`. A journal creation torn into garbage by the
/// power loss is not a torn creation by recovery's definition (it cannot be
/// told from another program's file): the open must refuse it and change
/// nothing; it is then moved aside and opening goes on. Returns the backend,
/// the writer and whether the journal was moved aside.
fn open_image(
    image: &Image,
    options: AppendOptions,
) -> Result<(SimBackend, Appender<SimBackend>, bool), String> {
    let fs = SimBackend::from_image(image);
    match options.clone().open_with(fs.clone(), npy()) {
        Ok(w) => Ok((fs, w, false)),
        Err(e @ Error::ForeignJournal { .. }) => {
            if fs.current() != *image {
                return Err(format!("a refused open changed the image: {e}"));
            }
            let fs = SimBackend::from_image(image);
            let w = options
                .move_aside_foreign_journal(true)
                .open_with(fs.clone(), npy())
                .map_err(|e| format!("open moving the journal aside: {e}"))?;
            Ok((fs, w, true))
        }
        Err(e) => Err(format!("open: {e}")),
    }
}

/// The journal moved aside by [`open_image`].
fn aside() -> PathBuf {
    let mut os = journal_path(&npy()).into_os_string();
    os.push(".foreign");
    PathBuf::from(os)
}

/// Checks one crash image; `acked` rows were acknowledged before the crash.
fn check_image(image: &Image, acked: u64, total: u64) -> Result<(), String> {
    crashsim::predict::check_image(image)?;
    let path = npy();
    let bytes = image.get(&path).ok_or("the .npy is gone")?;
    check_visible(bytes).map_err(|e| format!("before recovery: {e}"))?;
    let (fs, w, moved) = open_image(image, AppendOptions::new())?;
    let n = w.len();
    if n < acked || n > total {
        return Err(format!("{n} rows after recovery, {acked} acknowledged"));
    }
    let now = fs.current();
    if now.contains_key(&rewrite_path(&path)) {
        return Err("a temporary file is left after opening".into());
    }
    w.close().map_err(|e| format!("close: {e}"))?;
    let after = fs.current();
    let keys: Vec<&PathBuf> = after.keys().collect();
    let aside = aside();
    let expected: Vec<&PathBuf> = if moved {
        vec![&path, &aside]
    } else {
        vec![&path]
    };
    if keys != expected {
        return Err(format!("files after close: {keys:?}"));
    }
    let bytes = &after[&path];
    let h = header::parse(bytes).map_err(|e| format!("closed header: {e}"))?;
    let built = header::build(&h.dtype, false, &h.shape).unwrap();
    let hl = usize::try_from(h.header_len).unwrap();
    if !bytes.starts_with(&built) || h.shape != [n, ROW_VALUES] || bytes[hl..] != row_bytes(0..n) {
        return Err(format!(
            "closed file: shape {:?}, not numpy's header with the rows",
            h.shape
        ));
    }
    Ok(())
}

/// Enumerates every crash point and image of `rec`; returns the images
/// checked and the violations (first few described).
fn enumerate(rec: &Recording) -> (usize, Vec<String>) {
    let names = crashsim::names(&rec.initial, &rec.trace);
    let mut rng = Rng::new(0x5eed);
    let mut images = 0;
    let mut violations = Vec::new();
    for k in 0..=rec.trace.len() {
        let model = Model::at(&rec.initial, &rec.trace, k);
        let acked = rec.acked_at(k);
        for (c, fates) in model.choices(&mut rng, 12, 64, 4).iter().enumerate() {
            let image = model.build(fates, (k as u64) << 16 | c as u64);
            images += 1;
            if let Err(e) = check_image(&image, acked, rec.total) {
                let last = k
                    .checked_sub(1)
                    .map_or("start".to_owned(), |i| rec.trace[i].describe(&names));
                violations.push(format!("crash after op {k} ({last}), fates {fates:?}: {e}"));
            }
        }
    }
    (images, violations)
}

#[test]
fn every_crash_state_of_a_rewrite_keeps_the_old_file_or_the_new_one() {
    for leftover in [false, true] {
        let rec = record(leftover);
        assert!(
            rec.trace
                .iter()
                .any(|op| matches!(op, Op::Rename { to, .. } if to == &npy())),
            "the workload renames the copy over the file"
        );
        let (images, violations) = enumerate(&rec);
        println!(
            "rewrite{}: {} operations, {images} crash images checked, {} violations",
            if leftover {
                " with a leftover temporary file"
            } else {
                ""
            },
            rec.trace.len(),
            violations.len()
        );
        assert!(
            violations.is_empty(),
            "{} violations, first: {:#?}",
            violations.len(),
            &violations[..violations.len().min(5)]
        );
    }
    println!("rewrite: {}", crashsim::predict::summary());
}

/// The inode of the temporary file in a trace.
fn temp_ino(rec: &Recording) -> usize {
    rec.trace
        .iter()
        .find_map(|op| match op {
            Op::Create { path, ino } if path == &rewrite_path(&npy()) => Some(*ino),
            _ => None,
        })
        .unwrap()
}

/// Replaces the first operation after the rename (or, with `before`, the
/// last one before it) that `pick` selects by a no-op.
fn broken(rec: &Recording, pick: impl Fn(&Op) -> bool, before: bool) -> Recording {
    let rename = rec
        .trace
        .iter()
        .position(|op| matches!(op, Op::Rename { .. }))
        .unwrap();
    let mut trace = rec.trace.clone();
    let i = if before {
        (0..rename).rev().find(|&i| pick(&trace[i]))
    } else {
        (rename..trace.len()).find(|&i| pick(&trace[i]))
    }
    .unwrap();
    trace[i] = Op::Nop;
    Recording {
        initial: rec.initial.clone(),
        trace,
        acks: rec.acks.clone(),
        total: rec.total,
    }
}

#[test]
fn broken_rewrites_are_caught() {
    let rec = record(false);
    let ino = temp_ino(&rec);
    let no_copy_sync = broken(
        &rec,
        |op| matches!(op, Op::Sync { ino: i, .. } if *i == ino),
        true,
    );
    let (_, violations) = enumerate(&no_copy_sync);
    println!(
        "no sync of the copy before the rename: {} violations, first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(
        !violations.is_empty(),
        "a rename of an unsynced copy must be caught"
    );

    let no_dir_sync = broken(&rec, |op| matches!(op, Op::SyncDir), false);
    let (_, violations) = enumerate(&no_dir_sync);
    println!(
        "no directory sync after the rename: {} violations, first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(
        !violations.is_empty(),
        "a journal that outlives a lost rename must be caught"
    );
}

/// Options of the Fortran-order workload: `(2, 3, N)` of `<u4`, 24-byte
/// rows (slices along the last axis).
fn fortran_options() -> AppendOptions {
    AppendOptions::new()
        .dtype("<u4")
        .unwrap()
        .row_shape(&[2, 3])
        .fortran_order(true)
        .buffer_bytes(64)
}

/// Creates a Fortran-order file, commits 1 and 3 slices, closes, reopens,
/// commits 2, drops without closing, reopens (recovery), commits 1, closes.
fn record_fortran() -> Recording {
    let initial = Image::new();
    let fs = SimBackend::from_image(&initial);
    let mut acks = Vec::new();
    let open = || fortran_options().open_with(fs.clone(), npy()).unwrap();
    let mut w = open();
    let mut n = 0;
    for (batch, close_after) in [(1, false), (3, true)] {
        w.append(&rows(n..n + batch)).unwrap();
        n += batch;
        w.commit().unwrap();
        acks.push((fs.ops(), n));
        if close_after {
            w.close().unwrap();
            acks.push((fs.ops(), n));
            w = open();
        }
    }
    w.append(&rows(n..n + 2)).unwrap();
    n += 2;
    w.commit().unwrap();
    acks.push((fs.ops(), n));
    drop(w);
    let mut w = open();
    w.append(&rows(n..n + 1)).unwrap();
    n += 1;
    w.commit().unwrap();
    acks.push((fs.ops(), n));
    w.close().unwrap();
    acks.push((fs.ops(), n));
    Recording {
        initial,
        trace: fs.trace(),
        acks,
        total: n,
    }
}

/// Checks one crash image of the Fortran workload.
fn check_fortran_image(image: &Image, acked: u64, total: u64) -> Result<(), String> {
    crashsim::predict::check_image(image)?;
    let path = npy();
    if let Some(bytes) = image.get(&path)
        && let Ok(h) = header::parse(bytes)
    {
        if !h.fortran_order || h.row_shape() != [2, 3] {
            return Err(format!("before recovery: header {h:?}"));
        }
        let n = h.growth_len().unwrap_or(0);
        let hl = usize::try_from(h.header_len).unwrap();
        let shown = bytes.get(hl..hl + usize::try_from(n * ROW_BYTES).unwrap());
        if shown != Some(row_bytes(0..n).as_slice()) {
            return Err(format!(
                "before recovery: {n} slices shown, not all as written"
            ));
        }
    }
    let (fs, w, _) = open_image(image, fortran_options())?;
    let n = w.len();
    if n < acked || n > total {
        return Err(format!("{n} slices after recovery, {acked} acknowledged"));
    }
    w.close().map_err(|e| format!("close: {e}"))?;
    let after = fs.current();
    let Some(bytes) = after.get(&path) else {
        return if n == 0 {
            Ok(())
        } else {
            Err("no file after close".into())
        };
    };
    let h = header::parse(bytes).map_err(|e| format!("closed header: {e}"))?;
    let hl = usize::try_from(h.header_len).unwrap();
    if !h.fortran_order || h.shape != [2, 3, n] || bytes[hl..] != row_bytes(0..n) {
        return Err(format!(
            "closed file: shape {:?}, not the slices written",
            h.shape
        ));
    }
    Ok(())
}

#[test]
fn every_crash_state_of_a_fortran_order_workload_recovers_a_commit() {
    let rec = record_fortran();
    let names = crashsim::names(&rec.initial, &rec.trace);
    let mut rng = Rng::new(0xf0f0);
    let (mut images, mut violations) = (0, Vec::new());
    for k in 0..=rec.trace.len() {
        let model = Model::at(&rec.initial, &rec.trace, k);
        let acked = rec
            .acks
            .iter()
            .filter(|(at, _)| *at <= k)
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(0);
        for (c, fates) in model.choices(&mut rng, 10, 48, 4).iter().enumerate() {
            let image = model.build(fates, (k as u64) << 16 | c as u64);
            images += 1;
            if let Err(e) = check_fortran_image(&image, acked, rec.total) {
                let last = k
                    .checked_sub(1)
                    .map_or("start".to_owned(), |i| rec.trace[i].describe(&names));
                violations.push(format!("crash after op {k} ({last}), fates {fates:?}: {e}"));
            }
        }
    }
    println!(
        "fortran order: {} operations, {images} crash images checked, {} violations",
        rec.trace.len(),
        violations.len()
    );
    println!("fortran order: {}", crashsim::predict::summary());
    assert!(
        violations.is_empty(),
        "{} violations, first: {:#?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
}
