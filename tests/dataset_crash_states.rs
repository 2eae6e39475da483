//! Every crash state of a dataset's own files, enumerated with the
//! power-loss model of `tests/crashsim` (lost, reordered, torn, zeroed or
//! garbage writes; lost directory entries), and checked.
//!
//! The workload creates a dataset (the first shard writes the schema),
//! builds and finishes two shards, finalizes, adds and finishes a third
//! shard and finalizes again (the manifest is replaced). After every crash
//! image:
//!
//! - `schema.json` is absent only while no shard exists, and otherwise
//!   decodes to the schema; once its writer returned, it is there;
//! - `manifest.json` is absent, the first manifest or the second, whole,
//!   as the crash point allows (a finalize that returned is durable);
//! - before any writer opens it, a `DatasetReader` of the image (and
//!   `shard_status`) shows each shard with the rows of one of its commits,
//!   byte for byte, complete only with all its rows, exactly what the
//!   shard's recovery keeps, and the manifest's shards once one is there;
//!   reading changes nothing;
//! - every shard opens through the dataset (schema read from the image)
//!   with the rows of one of its commits, complete only with all its rows;
//! - finalize on the image as the crash left it publishes exactly the
//!   shards the reader showed complete, or refuses naming the others,
//!   leaving the files of every shard that is not complete unchanged;
//! - finalize on the recovered image publishes exactly the complete shards
//!   found when every shard is complete (and again changes nothing), and
//!   otherwise refuses naming the incomplete ones and leaves the manifest
//!   as it was.
//!
//! Broken variants (the temporary file not synced before its rename, the
//! directory not synced after it) must be caught.
//!
//! The same workload with every shard written under Process durability
//! (`finalize` then publishes the shards unsynced): after a kill every check
//! above holds. After a power loss the schema and manifest checks hold;
//! every shard opens (a refusal of rows a header claims changes nothing and
//! is then recovered accepting the loss) with the rows and complete state
//! of a commit begun before the crash; a reader through the manifest either
//! shows exactly the manifest's rows, or refuses when a shard lost rows the
//! manifest lists (never fewer rows, never a wrong row count); finalize on
//! the recovered image publishes exactly the complete shards or refuses.
//! Rows of older commits are as durable as the write-back made them:
//! counted, not failed.
//!
//! `cargo test --release --test dataset_crash_states -- --nocapture` prints
//! the counts.

mod crashsim;

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use crashsim::{Image, Model, Op, Rng, SimBackend};
use npy_append::Error;
use npy_append::dataset::{self, Column, DatasetReader, ReadFrom, ShardOptions};
use npy_append::storage::{Directories, subdirectories};

impl Directories for SimBackend {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list_dirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.current();
        Ok(subdirectories(files.keys().map(PathBuf::as_path), dir))
    }
}

fn root() -> PathBuf {
    PathBuf::from("/sim/ds")
}

fn columns() -> Vec<Column> {
    vec![Column::of::<u64>("id", &[]), Column::of::<u16>("x", &[3])]
}

fn batch_bytes(shard: u64, rows: std::ops::Range<u64>) -> (Vec<u8>, Vec<u8>) {
    let ids = rows
        .clone()
        .flat_map(|i| (shard << 32 | i).to_le_bytes())
        .collect();
    let xs = rows
        .flat_map(|i| (0..3u64).flat_map(move |j| ((shard * 7 + i * 3 + j) as u16).to_le_bytes()))
        .collect();
    (ids, xs)
}

/// The rows a shard may hold after a crash: those of one of its commits,
/// with whether that commit marked it complete.
#[derive(Debug, Clone, Default)]
struct ShardHistory {
    /// (rows, complete, ops when the commit began, ops when it returned).
    commits: Vec<(u64, bool, usize, usize)>,
}

impl ShardHistory {
    /// Whether a crash after op `k` may leave the shard at `state` (rows,
    /// complete): its last acknowledged commit, or one begun before the
    /// crash.
    fn possible(&self, k: usize, state: (u64, bool)) -> bool {
        let acked = self.commits.iter().rposition(|c| c.3 <= k).unwrap_or(0);
        self.commits
            .iter()
            .enumerate()
            .any(|(i, &(rows, c, start, _))| {
                (i == acked || (i > acked && start < k)) && (rows, c) == state
            })
    }
}

struct Recording {
    initial: Image,
    trace: Vec<Op>,
    shards: BTreeMap<String, (u64, ShardHistory)>,
    /// Ops when the first shard's open (which writes the schema) returned.
    schema_acked: usize,
    /// (bytes, ops when finalize began, ops when it returned), in order.
    manifests: Vec<(Vec<u8>, usize, usize)>,
}

fn record() -> Recording {
    record_as(npy_append::Durability::Fsync)
}

fn record_as(durability: npy_append::Durability) -> Recording {
    let sim = SimBackend::from_image(&Image::new());
    let root = root();
    let mut shards = BTreeMap::new();
    let mut manifests = Vec::new();
    let mut schema_acked = 0;
    let plan: &[(&str, u64, &[u64], bool)] = &[
        ("a", 1, &[3, 2], true),
        ("b", 2, &[4], true),
        ("c", 3, &[1, 1], true),
    ];
    for (step, &(name, number, commits, finish)) in plan.iter().enumerate() {
        let mut h = ShardHistory::default();
        let start = sim.ops();
        let mut w = ShardOptions::new()
            .columns(&columns())
            .durability(durability)
            .open_with(sim.clone(), &root, name)
            .unwrap();
        h.commits.push((0, false, start, sim.ops()));
        if step == 0 {
            schema_acked = sim.ops();
        }
        let mut at = 0;
        for (i, &n) in commits.iter().enumerate() {
            let (ids, xs) = batch_bytes(number, at..at + n);
            w.append_bytes(&[&ids, &xs]).unwrap();
            at += n;
            let start = sim.ops();
            if i % 2 == 0 {
                w.commit().unwrap();
            } else {
                w.commit_with_cursor(format!("{at}").as_bytes()).unwrap();
            }
            h.commits.push((at, false, start, sim.ops()));
        }
        if finish {
            let start = sim.ops();
            assert_eq!(w.finish().unwrap(), at);
            h.commits.push((at, true, start, sim.ops()));
        }
        shards.insert(name.to_owned(), (number, h));
        if step >= 1 {
            let start = sim.ops();
            let m = dataset::finalize_with(&sim, &root, None).unwrap();
            manifests.push((m.encode(), start, sim.ops()));
        }
    }
    Recording {
        initial: sim.initial(),
        trace: sim.trace(),
        shards,
        schema_acked,
        manifests,
    }
}

/// Every shard `reader` shows holds exactly the rows of its writer, byte
/// for byte.
fn check_rows(rec: &Recording, reader: &DatasetReader<SimBackend>) -> Result<(), String> {
    for (i, info) in reader.shards().enumerate() {
        let number = rec
            .shards
            .get(&info.name)
            .ok_or_else(|| format!("the reader shows a shard {} never written", info.name))?
            .0;
        let start = reader.shard_start(i).ok_or("no start")?;
        let got = reader
            .slice(start..start + info.rows)
            .map_err(|e| format!("reading shard {}: {e}", info.name))?;
        let (ids, xs) = batch_bytes(number, 0..info.rows);
        if got.len() != 2 || *got[0] != *ids || *got[1] != *xs {
            return Err(format!("the reader's rows of shard {} differ", info.name));
        }
    }
    Ok(())
}

/// Reads the crash image after `k` operations as a reader would, before any
/// writer recovers it: every shard shown has the rows of one of its commits
/// (byte for byte) and `shard_status` says the same; with a manifest, the
/// default reader shows the manifest's shards; reading writes nothing.
/// Returns each shown shard's rows and whether it is complete.
fn read_crashed(
    rec: &Recording,
    sim: &SimBackend,
    k: usize,
    manifest: bool,
) -> Result<BTreeMap<String, (u64, bool)>, String> {
    let root = root();
    let (before, ops) = (sim.current(), sim.ops());
    let reader = DatasetReader::open_with(sim.clone(), &root, ReadFrom::Shards)
        .map_err(|e| format!("the reader does not open: {e}"))?;
    check_rows(rec, &reader)?;
    let mut shown = BTreeMap::new();
    for info in reader.shards() {
        let state = (info.rows, info.complete);
        if !rec.shards[&info.name].1.possible(k, state) {
            return Err(format!(
                "the reader shows shard {} at {state:?}, no commit's state",
                info.name
            ));
        }
        shown.insert(info.name.clone(), state);
    }
    for name in dataset::list_shards_with(sim, &root).map_err(|e| format!("list: {e}"))? {
        let status = dataset::shard_status_with(sim, &root, &name)
            .map_err(|e| format!("shard_status of {name}: {e}"))?
            .map(|s| (s.rows, s.complete));
        if status != shown.get(&name).copied() {
            return Err(format!(
                "shard_status of {name} says {status:?}, the reader {:?}",
                shown.get(&name)
            ));
        }
    }
    if manifest {
        let m = dataset::read_manifest_with(sim, &root)
            .map_err(|e| format!("manifest: {e}"))?
            .ok_or("no manifest")?;
        let auto = DatasetReader::open_with(sim.clone(), &root, ReadFrom::Auto)
            .map_err(|e| format!("the reader does not open the manifest: {e}"))?;
        let listed: Vec<(String, u64)> =
            m.shards.iter().map(|s| (s.name.clone(), s.rows)).collect();
        if !auto.from_manifest() || auto.pinned() != listed {
            return Err(format!(
                "the reader shows {:?}, the manifest {listed:?}",
                auto.pinned()
            ));
        }
        check_rows(rec, &auto)?;
    }
    if sim.current() != before || sim.ops() != ops {
        return Err("reading changed the files".into());
    }
    Ok(shown)
}

/// Finalizes the crash image before any writer recovered it: it publishes
/// exactly the shards the reader showed complete (a crash during `finish`
/// may need their recovery first), or refuses naming every other shard;
/// the files of a shard that is not complete are left as they were.
fn finalize_crashed(image: &Image, read: &BTreeMap<String, (u64, bool)>) -> Result<(), String> {
    let root = root();
    let raw = SimBackend::from_image(image);
    let listed = dataset::list_shards_with(&raw, &root).map_err(|e| format!("list: {e}"))?;
    let complete: Vec<(String, u64)> = listed
        .iter()
        .filter_map(|n| match read.get(n) {
            Some(&(rows, true)) => Some((n.clone(), rows)),
            _ => None,
        })
        .collect();
    let incomplete: Vec<String> = listed
        .iter()
        .filter(|n| !complete.iter().any(|(c, _)| c == *n))
        .cloned()
        .collect();
    let files_of = |backend: &SimBackend| -> Image {
        let current = backend.current();
        current
            .into_iter()
            .filter(|(p, _)| incomplete.iter().any(|n| p.starts_with(root.join(n))))
            .collect()
    };
    let before = files_of(&raw);
    match dataset::finalize_with(&raw, &root, None) {
        Ok(m) if incomplete.is_empty() => {
            let got: Vec<(String, u64)> =
                m.shards.iter().map(|s| (s.name.clone(), s.rows)).collect();
            if got != complete {
                return Err(format!(
                    "finalize before recovery published {got:?}, the reader showed {complete:?} \
                     complete"
                ));
            }
        }
        Ok(_) => {
            return Err(format!(
                "finalize before recovery published with {incomplete:?} incomplete"
            ));
        }
        Err(Error::Incomplete { shards, .. }) if shards == incomplete => {}
        Err(e) => return Err(format!("finalize before recovery: {e}")),
    }
    if files_of(&raw) != before {
        return Err("finalize changed a shard that is not complete".into());
    }
    Ok(())
}

/// The schema and manifest a crash after `k` operations may leave (both are
/// synced, whatever the shards' durability): the schema absent only while no
/// shard exists and the acknowledged one is not yet, else whole; the
/// manifest absent, the acknowledged one or one begun before the crash,
/// whole. Returns the manifest found.
fn check_schema_and_manifest<'a>(
    rec: &Recording,
    image: &'a Image,
    k: usize,
) -> Result<Option<&'a Vec<u8>>, String> {
    let root = root();
    let schema_path = root.join("schema.json");
    let any_shard = image
        .keys()
        .any(|p| p.file_name().is_some_and(|n| n == "shard.group"));
    match image.get(&schema_path) {
        None if any_shard => return Err("a shard exists without a schema".into()),
        None if k >= rec.schema_acked => return Err("the acknowledged schema is gone".into()),
        None => {}
        Some(bytes) => {
            let s = dataset::Schema::decode(bytes).map_err(|e| format!("schema: {e}"))?;
            if s.columns != columns() {
                return Err("the schema has other columns".into());
            }
        }
    }
    // The manifests a crash after k may leave.
    let manifest_path = root.join("manifest.json");
    let found = image.get(&manifest_path);
    let acked = rec.manifests.iter().rposition(|m| m.2 <= k);
    let mut allowed: Vec<Option<&Vec<u8>>> = match acked {
        None => vec![None],
        Some(i) => vec![Some(&rec.manifests[i].0)],
    };
    for (i, m) in rec.manifests.iter().enumerate() {
        if acked.is_none_or(|a| i > a) && m.1 < k {
            allowed.push(Some(&m.0));
        }
    }
    if !allowed.contains(&found) {
        return Err(format!(
            "manifest.json is {}",
            match found {
                None => "missing".to_owned(),
                Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
            }
        ));
    }
    Ok(found)
}

/// Checks one crash image after `k` operations.
fn check(rec: &Recording, image: &Image, k: usize) -> Result<(), String> {
    let root = root();
    let schema_path = root.join("schema.json");
    let found = check_schema_and_manifest(rec, image, k)?;
    let sim = SimBackend::from_image(image);
    let read = if image.get(&schema_path).is_some() {
        let read = read_crashed(rec, &sim, k, found.is_some())?;
        finalize_crashed(image, &read)?;
        read
    } else {
        BTreeMap::new()
    };
    // Every shard opens with the rows of one of its commits.
    let mut complete = Vec::new();
    let mut incomplete = Vec::new();
    for name in dataset::list_shards_with(&sim, &root).map_err(|e| format!("list: {e}"))? {
        let (_, h) = &rec.shards[&name];
        let w = match ShardOptions::new().open_with(sim.clone(), &root, &name) {
            Ok(w) => w,
            // A shard journal's creation torn into garbage by the power loss
            // is not a torn creation by recovery's definition: refused,
            // nothing changed; moved aside, the shard starts again.
            Err(e @ npy_append::Error::ForeignJournal { .. }) => {
                let before = sim.current();
                ShardOptions::new()
                    .open_with(sim.clone(), &root, &name)
                    .err()
                    .ok_or("a second open succeeded")?;
                if sim.current() != before {
                    return Err(format!("shard {name}: a refused open changed files: {e}"));
                }
                ShardOptions::new()
                    .move_aside_foreign_journal(true)
                    .open_with(sim.clone(), &root, &name)
                    .map_err(|e| format!("shard {name} does not open moving aside: {e}"))?
            }
            Err(e) => return Err(format!("shard {name} does not open: {e}")),
        };
        let state = (w.len(), w.is_complete());
        if !h.possible(k, state) {
            return Err(format!("shard {name}: {state:?} is no commit's state"));
        }
        // What the reader showed before recovery is what recovery kept (a
        // shard whose creation never completed is not shown: it has no
        // commit).
        let shown = read.get(&name).copied().unwrap_or((0, false));
        if shown != state {
            return Err(format!(
                "shard {name}: the reader showed {shown:?} before recovery, which kept {state:?}"
            ));
        }
        let number = rec.shards[&name].0;
        let (ids, _) = batch_bytes(number, 0..w.len());
        let on_disk = sim.current()[&root.join(&name).join("id.npy")].clone();
        if !on_disk.ends_with(&ids) {
            return Err(format!("shard {name}: rows differ"));
        }
        if w.is_complete() {
            complete.push((name, w.len()));
        } else {
            incomplete.push(name);
        }
        w.close().map_err(|e| format!("close: {e}"))?;
    }
    if image.get(&schema_path).is_none() {
        return Ok(());
    }
    check_finalize_recovered(&sim, &complete, &incomplete)
}

/// Finalize on a recovered image: it publishes exactly the `complete`
/// shards (the manifest on disk the one returned, and a second finalize
/// writes nothing) when none is `incomplete`, and otherwise refuses naming
/// those, leaving `manifest.json` as it was.
fn check_finalize_recovered(
    sim: &SimBackend,
    complete: &[(String, u64)],
    incomplete: &[String],
) -> Result<(), String> {
    let root = root();
    let manifest_path = root.join("manifest.json");
    let before = sim.current().get(&manifest_path).cloned();
    match dataset::finalize_with(sim, &root, None) {
        Ok(m) if incomplete.is_empty() => {
            let got: Vec<(String, u64)> =
                m.shards.iter().map(|s| (s.name.clone(), s.rows)).collect();
            if got != complete {
                return Err(format!("finalize published {got:?}, complete {complete:?}"));
            }
            let bytes = sim.current()[&manifest_path].clone();
            if bytes != m.encode() {
                return Err("manifest.json is not the manifest returned".into());
            }
            let ops = sim.ops();
            dataset::finalize_with(sim, &root, None).map_err(|e| format!("again: {e}"))?;
            let writes = sim.trace()[ops..]
                .iter()
                .filter(|op| matches!(op, Op::Rename { .. }))
                .count();
            if writes != 0 {
                return Err("a second finalize rewrote the manifest".into());
            }
        }
        Ok(_) => return Err(format!("finalize published with {incomplete:?} incomplete")),
        Err(Error::Incomplete { shards, .. }) if shards == incomplete => {
            if sim.current().get(&manifest_path) != before.as_ref() {
                return Err("a refused finalize changed manifest.json".into());
            }
        }
        Err(e) => return Err(format!("finalize: {e}")),
    }
    Ok(())
}

#[derive(Default)]
struct Stats {
    crash_points: usize,
    states: usize,
    violations: Vec<String>,
}

impl Stats {
    /// No violation (the first ten shown), in enough states.
    fn assert_clean(&self) {
        assert!(
            self.violations.is_empty(),
            "{}",
            self.violations[..self.violations.len().min(10)].join("\n")
        );
        assert!(self.states > 500, "{}", self.states);
    }
}

fn enumerate(rec: &Recording, trace: &[Op], stop_at_first: bool) -> Stats {
    enumerate_with(rec, trace, stop_at_first, |image, k, _kill| {
        check(rec, image, k)
    })
}

fn enumerate_with(
    rec: &Recording,
    trace: &[Op],
    stop_at_first: bool,
    mut check: impl FnMut(&Image, usize, bool) -> Result<(), String>,
) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng::new(0x5eed_da7a);
    let mut seen = HashSet::new();
    for k in 0..=trace.len() {
        let model = Model::at(&rec.initial, trace, k);
        stats.crash_points += 1;
        let killed = model.build(&model.all_kept(), 0);
        for fates in model.choices(&mut rng, 10, 64, 4) {
            let image = model.build(&fates, k as u64);
            if !seen.insert((image.clone(), k)) {
                continue;
            }
            stats.states += 1;
            if let Err(e) = check(&image, k, image == killed) {
                stats.violations.push(format!(
                    "crash after op {k} ({}): {e}",
                    trace.get(k.wrapping_sub(1)).map_or_else(
                        || "start".to_owned(),
                        |op| op.describe(&crashsim::names(&rec.initial, trace))
                    )
                ));
                if stop_at_first {
                    return stats;
                }
            }
        }
    }
    stats
}

#[test]
fn every_crash_state_of_schema_shards_and_manifest() {
    let rec = record();
    let stats = enumerate(&rec, &rec.trace, false);
    println!(
        "dataset: {} crash points, {} states, {} violations",
        stats.crash_points,
        stats.states,
        stats.violations.len()
    );
    stats.assert_clean();
}

/// The inode created at a path whose name is `name`.
fn inodes_named(trace: &[Op], name: &str) -> Vec<usize> {
    trace
        .iter()
        .filter_map(|op| match op {
            Op::Create { path, ino } if path.file_name().is_some_and(|n| n == name) => Some(*ino),
            _ => None,
        })
        .collect()
}

/// A broken variant of the trace: `drop(op, index)` says which operations
/// to leave out.
fn broken(trace: &[Op], drop: impl Fn(&Op, usize) -> bool) -> Vec<Op> {
    trace
        .iter()
        .enumerate()
        .map(|(i, op)| if drop(op, i) { Op::Nop } else { op.clone() })
        .collect()
}

fn assert_caught(name: &str, rec: &Recording, trace: &[Op]) {
    assert_ne!(trace, rec.trace.as_slice(), "{name}: nothing was left out");
    let stats = enumerate(rec, trace, true);
    assert!(
        !stats.violations.is_empty(),
        "{name}: no violation in {} states",
        stats.states
    );
    println!("{name}: caught: {}", stats.violations[0]);
}

#[test]
fn a_manifest_not_synced_before_its_rename_is_caught() {
    let rec = record();
    let temps = inodes_named(&rec.trace, ".manifest.json.tmp");
    let trace = broken(
        &rec.trace,
        |op, _| matches!(op, Op::Sync { ino, .. } if temps.contains(ino)),
    );
    assert_caught("manifest without a sync", &rec, &trace);
}

#[test]
fn a_schema_not_synced_before_its_rename_is_caught() {
    let rec = record();
    let temps = inodes_named(&rec.trace, ".schema.json.tmp");
    let trace = broken(
        &rec.trace,
        |op, _| matches!(op, Op::Sync { ino, .. } if temps.contains(ino)),
    );
    assert_caught("schema without a sync", &rec, &trace);
}

#[test]
fn a_rename_without_a_directory_sync_is_caught() {
    let rec = record();
    // The directory sync right after each rename of the replace.
    let renames: Vec<usize> = rec
        .trace
        .iter()
        .enumerate()
        .filter(|(_, op)| matches!(op, Op::Rename { .. }))
        .map(|(i, _)| i)
        .collect();
    let trace = broken(&rec.trace, |op, i| {
        matches!(op, Op::SyncDir) && i.checked_sub(1).is_some_and(|r| renames.contains(&r))
    });
    assert_caught("rename without a directory sync", &rec, &trace);
}

/// What the Process power-loss images showed.
#[derive(Default, Debug)]
struct ProcessStats {
    /// Shards refused (unchanged), then opened accepting the loss.
    refused: usize,
    /// Images whose manifest lists rows a shard lost: the reader refused.
    manifest_refused: usize,
    /// Images with a manifest the reader showed.
    manifest_read: usize,
    /// Shards with rows of older commits not as written.
    older_rows_differ: usize,
}

/// A power-loss image of the Process workload (see the module's doc).
fn check_process(
    rec: &Recording,
    image: &Image,
    k: usize,
    stats: &mut ProcessStats,
) -> Result<(), String> {
    let root = root();
    check_schema_and_manifest(rec, image, k)?;
    if image.get(&root.join("schema.json")).is_none() {
        return Ok(());
    }
    let sim = SimBackend::from_image(image);
    let process = || ShardOptions::new().durability(npy_append::Durability::Process);
    let mut complete = Vec::new();
    let mut incomplete = Vec::new();
    let mut recovered = BTreeMap::new();
    for name in dataset::list_shards_with(&sim, &root).map_err(|e| format!("list: {e}"))? {
        let (number, h) = &rec.shards[&name];
        let w = match process().open_with(sim.clone(), &root, &name) {
            Ok(w) => w,
            Err(Error::ForeignJournal { .. }) => process()
                .move_aside_foreign_journal(true)
                .open_with(sim.clone(), &root, &name)
                .map_err(|e| format!("shard {name} does not open moving aside: {e}"))?,
            Err(e @ Error::JournalDisagrees { .. }) => {
                let before = sim.current();
                if process().open_with(sim.clone(), &root, &name).is_ok() || sim.current() != before
                {
                    return Err(format!(
                        "shard {name}: a refusal changed files or went away: {e}"
                    ));
                }
                stats.refused += 1;
                process()
                    .accept_loss(true)
                    .open_with(sim.clone(), &root, &name)
                    .map_err(|e| format!("shard {name} does not open accepting the loss: {e}"))?
            }
            Err(e) => return Err(format!("shard {name} does not open: {e}")),
        };
        let state = (w.len(), w.is_complete());
        let begun = h
            .commits
            .iter()
            .any(|&(rows, c, start, _)| (start < k || start == 0) && (rows, c) == state);
        if !begun {
            return Err(format!(
                "shard {name}: {state:?} is no commit begun before the crash"
            ));
        }
        let (ids, _) = batch_bytes(*number, 0..w.len());
        if !sim.current()[&root.join(&name).join("id.npy")].ends_with(&ids) {
            stats.older_rows_differ += 1;
        }
        recovered.insert(name.clone(), w.len());
        if w.is_complete() {
            complete.push((name, w.len()));
        } else {
            incomplete.push(name);
        }
        w.close().map_err(|e| format!("close: {e}"))?;
    }
    // A reader through the manifest shows exactly its rows, or refuses a
    // shard that lost rows the manifest lists.
    if let Some(m) =
        dataset::read_manifest_with(&sim, &root).map_err(|e| format!("manifest: {e}"))?
    {
        let lost = m
            .shards
            .iter()
            .any(|s| recovered.get(&s.name).copied().unwrap_or(0) < s.rows);
        match DatasetReader::open_with(sim.clone(), &root, ReadFrom::Manifest) {
            Ok(r) => {
                let listed: Vec<(String, u64)> =
                    m.shards.iter().map(|s| (s.name.clone(), s.rows)).collect();
                if r.pinned() != listed {
                    return Err(format!(
                        "the reader shows {:?}, the manifest {listed:?}",
                        r.pinned()
                    ));
                }
                if lost {
                    return Err("the reader showed a manifest listing rows a shard lost".into());
                }
                stats.manifest_read += 1;
            }
            Err(Error::Corrupt { what, .. }) if lost && what.contains("committed") => {
                stats.manifest_refused += 1;
            }
            Err(e) => return Err(format!("the reader of the manifest: {e}")),
        }
    }
    check_finalize_recovered(&sim, &complete, &incomplete)
}

#[test]
fn every_crash_state_of_process_shards() {
    let rec = record_as(npy_append::Durability::Process);
    let mut process = ProcessStats::default();
    let mut kills = 0;
    let stats = enumerate_with(&rec, &rec.trace, false, |image, k, kill| {
        if kill {
            kills += 1;
            check(&rec, image, k)
        } else {
            check_process(&rec, image, k, &mut process)
        }
    });
    println!(
        "dataset, process durability: {} crash points, {} states ({kills} kills), {} violations; \
         {process:?}",
        stats.crash_points,
        stats.states,
        stats.violations.len()
    );
    stats.assert_clean();
    assert!(
        process.manifest_refused > 0,
        "no image lost rows a manifest lists"
    );
}
