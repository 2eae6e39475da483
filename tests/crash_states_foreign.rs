//! Every crash state, then another program or another path: simulated power
//! loss (and kill) after every operation of a writer's workload, with every
//! surviving disk image the fault model of `tests/crashsim` allows, on a
//! simulator whose files have inode numbers (kept by a crash image, as a
//! real file system keeps them) and that has symbolic links.
//!
//! **Another program rewrote the file.** After the crash, a program that is
//! not npy-append writes the path: in place, as `np.save` does (the same
//! inode truncated and written again), or as a new file renamed over it (a
//! new inode). It writes a complete, self-consistent `.npy` of the same
//! dtype and row shape, with fewer, as many or more rows than the journal
//! commits, each row either a value the writer never wrote (42) or the
//! writer's own rows. Then `open_or_recover` with the default options must
//! either refuse with every file of the image unchanged byte for byte, or
//! keep every byte the other program wrote (the recovered rows are exactly
//! its rows, and closing leaves exactly its file). With `accept_loss` (and,
//! for a journal torn into garbage, `move_aside_foreign_journal`) it must
//! recover a well-formed file. The same holds when the other program renames
//! its file over the path while the writer is live (the writer's next commit
//! must fail with `Error::Replaced`), for the crash images whose path names
//! that file. Every crash image itself (no other program) recovers, with
//! file identities, at least the acknowledged rows, or is refused with
//! nothing changed only after a power loss (a journal creation torn into
//! garbage; under process durability, a header ahead of its record).
//!
//! **A second path.** The writer writes through a symbolic link (created
//! dangling, through an absolute or relative target, or a link to a link)
//! or through the file's own path, and crashes. Recovery through each of the
//! four paths must give the same outcome: the same committed rows and
//! report, the same files while open and after closing, or the same refusal
//! with nothing changed (and then the same recovery with `accept_loss`).
//! The rows kept are a commit boundary, at least the acknowledged ones.
//!
//! Teeth: recovery that ignores the evidence (`accept_loss` taken as the
//! default) is caught cutting rows another program wrote, and a library
//! that does not look for links (the simulator hides them from
//! `Backend::read_link` while opening follows them, as the kernel does) is
//! caught disagreeing between the paths.
//!
//! `cargo test --release --test crash_states_foreign -- --nocapture` prints
//! the counts.

mod crashsim;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crashsim::{Fate, Image, Ino, Model, Op, Rng, SimBackend};
use npy_append::format::{header, journal};
use npy_append::storage::{Backend, OpenMode, Storage};
use npy_append::{Appender, Durability, Error, journal_path};
use support::workload::{ROW_BYTES, ROW_VALUES, options, row_bytes};

/// The file itself.
fn npy() -> PathBuf {
    PathBuf::from("/sim/data/t.npy")
}

fn jnl() -> PathBuf {
    journal_path(&npy())
}

/// A path that reaches the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The file's own path.
    Real,
    /// A link in another directory, with an absolute target.
    Link,
    /// A link beside the file, with a relative target.
    Relative,
    /// A link to the relative link.
    Chain,
}

const VIAS: [Via; 4] = [Via::Real, Via::Link, Via::Relative, Via::Chain];

impl Via {
    fn path(self) -> PathBuf {
        PathBuf::from(match self {
            Via::Real => "/sim/data/t.npy",
            Via::Link => "/sim/links/l.npy",
            Via::Relative => "/sim/data/alias.npy",
            Via::Chain => "/sim/links/chain.npy",
        })
    }
}

/// The links of every simulated disk (made before any writer ran, so no
/// crash loses them).
fn add_links(sim: &SimBackend) {
    sim.link(&Via::Link.path(), &npy());
    sim.link(&Via::Relative.path(), Path::new("t.npy"));
    sim.link(&Via::Chain.path(), &Via::Relative.path());
}

/// A simulated disk holding `image` with the inode numbers `ids`, and the
/// links (hidden from `read_link` when `hidden`).
fn backend(image: &Image, ids: &BTreeMap<PathBuf, Ino>, hidden: bool) -> SimBackend {
    let sim = SimBackend::from_image_with_ids(image, ids);
    add_links(&sim);
    if hidden {
        sim.hide_links();
    }
    sim
}

/// One step of a writer's workload.
#[derive(Debug, Clone, Copy)]
enum Act {
    Open(Via),
    Append(u64),
    Commit,
    Close,
    /// Drop without close (the journal stays).
    Drop,
    /// Another program replaces the file under the live writer: a
    /// complete `.npy` of `rows` rows (the writer's own rows when `own`,
    /// else 42s) written to a temporary file, synced, renamed over the
    /// path, the directory synced.
    RenameOver {
        rows: u64,
        own: bool,
    },
}

/// The other program's temporary file.
fn other_tmp() -> PathBuf {
    PathBuf::from("/sim/data/other.tmp")
}

/// A recorded run of a workload.
struct Recording {
    name: String,
    durability: Durability,
    initial: Image,
    trace: Vec<Op>,
    /// (operations done when the call returned Ok, rows acknowledged,
    /// whether durably: an Fsync commit or a close).
    acks: Vec<(usize, u64, bool)>,
    /// Every row count a commit was attempted for, and 0.
    boundaries: BTreeSet<u64>,
    /// Links hidden from the library (the teeth).
    hidden: bool,
    /// The file another program renamed over the path under the live
    /// writer: its inode, its bytes and rows.
    renamed_over: Option<(Ino, Vec<u8>, u64)>,
    /// Whether the writer's commit or close after that failed with
    /// `Error::Replaced`.
    noticed: bool,
}

impl Recording {
    /// Rows acknowledged durably, and at all, after `k` operations.
    fn acked_at(&self, k: usize) -> (u64, u64) {
        let done = || self.acks.iter().filter(|(at, _, _)| *at <= k);
        let durable = done().filter(|a| a.2).map(|a| a.1).max();
        let any = done().map(|a| a.1).max();
        (durable.unwrap_or(0), any.unwrap_or(0))
    }
}

/// A plain `.npy` of `rows` rows as numpy saves it: the writer's own rows,
/// or every value 42.
fn saved(rows: u64, own: bool) -> Vec<u8> {
    let dtype = npy_append::Dtype::parse_descr("'<u4'").unwrap();
    let mut bytes = header::build(&dtype, false, &[rows, ROW_VALUES]).unwrap();
    if own {
        bytes.extend(row_bytes(0..rows));
    } else {
        bytes.extend(
            std::iter::repeat_n(42u32.to_le_bytes(), (rows * ROW_VALUES) as usize).flatten(),
        );
    }
    bytes
}

fn record(
    name: &str,
    durability: Durability,
    acts: &[Act],
    initial: &Image,
    hidden: bool,
) -> Recording {
    let sim = SimBackend::from_image(initial).with_file_ids();
    add_links(&sim);
    if hidden {
        sim.hide_links();
    }
    let mut acks = Vec::new();
    let mut boundaries = BTreeSet::from([0]);
    if let Some(bytes) = initial.get(&npy()) {
        let rows = (bytes.len() as u64 - 128) / ROW_BYTES;
        boundaries.insert(rows);
        acks.push((0, rows, true));
    }
    let mut w: Option<Appender<SimBackend>> = None;
    let mut renamed_over = None;
    let mut noticed = false;
    // The rows a commit or close acknowledged; `None` when it failed
    // because another program replaced the file (noticed).
    let mut replaced = |r: Result<u64, Error>, renamed: bool| match r {
        Ok(rows) => Some(rows),
        Err(Error::Replaced { .. }) if renamed => {
            noticed = true;
            None
        }
        Err(e) => panic!("{name}: {e}"),
    };
    for act in acts {
        match *act {
            Act::Open(via) => {
                let a = options(durability)
                    .open_with(sim.clone(), via.path())
                    .unwrap();
                acks.push((sim.ops(), a.len(), false));
                w = Some(a);
            }
            Act::Append(n) => {
                let a = w.as_mut().unwrap();
                let start = a.len() + a.pending_rows();
                a.append_bytes(&row_bytes(start..start + n)).unwrap();
            }
            Act::Commit => {
                let a = w.as_mut().unwrap();
                boundaries.insert(a.len() + a.pending_rows());
                match replaced(a.commit(), renamed_over.is_some()) {
                    Some(rows) => acks.push((sim.ops(), rows, durability == Durability::Fsync)),
                    None => w = None,
                }
            }
            Act::Close => {
                if let Some(rows) = replaced(w.take().unwrap().close(), renamed_over.is_some()) {
                    acks.push((sim.ops(), rows, true));
                }
            }
            Act::Drop => drop(w.take()),
            Act::RenameOver { rows, own } => {
                let bytes = saved(rows, own);
                let tmp = sim.open(&other_tmp(), OpenMode::CreateNew).unwrap();
                tmp.write_at(&bytes, 0).unwrap();
                tmp.sync_all().unwrap();
                drop(tmp);
                sim.rename(&other_tmp(), &npy()).unwrap();
                sim.sync_dir(Path::new("/sim/data")).unwrap();
                let ino = crashsim::names(&sim.initial(), &sim.trace())
                    .into_iter()
                    .rev()
                    .find(|(_, p)| *p == other_tmp())
                    .map(|(ino, _)| ino)
                    .unwrap();
                renamed_over = Some((ino, bytes, rows));
            }
        }
    }
    Recording {
        name: name.to_owned(),
        durability,
        initial: sim.initial(),
        trace: sim.trace(),
        acks,
        boundaries,
        hidden,
        renamed_over,
        noticed,
    }
}

/// One crash image and what it is expected to recover to.
struct Crash<'a> {
    rec: &'a Recording,
    image: Image,
    ids: BTreeMap<PathBuf, Ino>,
    /// Rows acknowledged durably, and at all.
    acked: u64,
    acked_any: u64,
    /// Every pending operation kept (a kill: the page cache survived).
    kill: bool,
    /// The disk wrote back in order.
    in_order: bool,
}

/// Random subsets sampled per crash point when there are too many pending
/// operations to try them all: `NPY_APPEND_CRASH_SAMPLES`, default 160.
fn samples() -> usize {
    std::env::var("NPY_APPEND_CRASH_SAMPLES").map_or(160, |s| {
        s.trim()
            .parse()
            .expect("NPY_APPEND_CRASH_SAMPLES must be a number")
    })
}

fn hash_of(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Calls `check` on every distinct crash image of `rec` (a crash after
/// every operation, every image the fault model allows); collects its
/// errors as violations, stopping at the first when `stop_at_first`.
/// Returns the number of images.
fn enumerate(
    rec: &Recording,
    seed: u64,
    stop_at_first: bool,
    violations: &mut Vec<String>,
    mut check: impl FnMut(&Crash<'_>) -> Result<(), String>,
) -> u64 {
    let mut rng = Rng::new(seed);
    let names = crashsim::names(&rec.initial, &rec.trace);
    let mut seen = HashSet::new();
    for k in 0..=rec.trace.len() {
        let model = Model::at(&rec.initial, &rec.trace, k);
        let (acked, acked_any) = rec.acked_at(k);
        for fates in model.choices(&mut rng, 12, samples(), 12) {
            let (image, ids) = model.build_with_inos(&fates, rng.next());
            let kill = fates.iter().all(|f| *f == Fate::Keep);
            if !seen.insert(hash_of(&(&image, &ids, acked, acked_any, kill))) {
                continue;
            }
            let crash = Crash {
                rec,
                image,
                ids,
                acked,
                acked_any,
                kill,
                in_order: Model::is_in_order(&fates),
            };
            if let Err(e) = check(&crash) {
                let last = k.checked_sub(1).map_or("nothing".to_owned(), |i| {
                    format!("#{i} {}", rec.trace[i].describe(&names))
                });
                violations.push(format!(
                    "{}: crash after {k} operations (last: {last}; {acked} rows acknowledged); \
                     image: {}\n    -> {e}",
                    rec.name,
                    model.describe_lost(&fates, &rec.trace, &rec.initial)
                ));
                if stop_at_first {
                    return seen.len() as u64;
                }
            }
        }
    }
    seen.len() as u64
}

/// The valid records of the journal in `image`, newest first.
fn records(image: &Image) -> Vec<journal::Record> {
    let Some(bytes) = image.get(&jnl()) else {
        return Vec::new();
    };
    let Ok(identity) = journal::Identity::decode(bytes) else {
        return Vec::new();
    };
    let mut out: Vec<journal::Record> = [journal::Slot::A, journal::Slot::B]
        .into_iter()
        .filter_map(|slot| {
            let at = journal::slot_offset(identity.block_len(), slot) as usize;
            journal::Record::decode(bytes.get(at..)?, identity.journal_id).ok()
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.sequence));
    out
}

/// The name of an error's variant (messages name the path, which differs
/// between paths by design).
fn kind(e: &Error) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// The rows the header of the `.npy` in `image` shows, when it parses and
/// the file's length matches it exactly.
fn well_formed(image: &Image) -> Result<u64, String> {
    let bytes = image.get(&npy()).ok_or("the .npy is missing")?;
    let (_, header_len) = header::parse_prefix(bytes).map_err(|e| format!("header prefix: {e}"))?;
    let h = bytes
        .get(..header_len as usize)
        .ok_or("file shorter than its header")
        .and_then(|raw| header::parse(raw).map_err(|_| "header does not parse"))?;
    let [rows, ROW_VALUES] = h.shape[..] else {
        return Err(format!("header shape {:?}", h.shape));
    };
    if bytes.len() as u64 != header_len + rows * ROW_BYTES {
        return Err(format!(
            "file is {} bytes, a header of {header_len} and {rows} rows need {}",
            bytes.len(),
            header_len + rows * ROW_BYTES
        ));
    }
    Ok(rows)
}

/// `Err` naming the files a refused recovery changed (`after` is not
/// `before`).
fn unchanged(before: &Image, after: &Image, e: &Error) -> Result<(), String> {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| {
            let len = |i: &Image| {
                i.get(p)
                    .map_or("none".to_owned(), |b| format!("{} bytes", b.len()))
            };
            format!(
                "{} ({} before, {} after)",
                p.display(),
                len(before),
                len(after)
            )
        })
        .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "a refused recovery changed {}: {e}",
            changed.join(", ")
        ))
    }
}

/// `image` with every journal that parses replaced by its decoded identity
/// and records with the journal's random id left out: two recoveries that
/// create a journal each give it a new id, and nothing else differs.
fn without_journal_ids(image: &Image) -> Image {
    image
        .iter()
        .map(|(path, bytes)| {
            let is_journal = path.extension().is_some_and(|e| e == "journal");
            let decoded = journal::Identity::decode(bytes).ok().filter(|_| is_journal);
            let bytes = match decoded {
                None => bytes.clone(),
                Some(identity) => {
                    let slot = |slot| {
                        let at = journal::slot_offset(identity.block_len(), slot) as usize;
                        bytes
                            .get(at..)
                            .map(|b| journal::Record::decode(b, identity.journal_id))
                    };
                    let (a, b) = (slot(journal::Slot::A), slot(journal::Slot::B));
                    let identity = journal::Identity {
                        journal_id: 0,
                        ..identity
                    };
                    format!(
                        "journal of {} bytes, {identity:?}, slot A {a:?}, slot B {b:?}",
                        bytes.len()
                    )
                    .into_bytes()
                }
            };
            (path.clone(), bytes)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Another program rewrote the file.

/// Outcomes of the images another program wrote.
#[derive(Default)]
struct ForeignStats {
    /// Distinct crash images.
    crashes: u64,
    /// Crash images (no other program) by outcome.
    baseline: BTreeMap<String, u64>,
    /// Distinct images after another program's write.
    images: u64,
    /// Of those, recoveries refused with nothing changed, by error.
    refused: BTreeMap<String, u64>,
    /// Recoveries that kept the other program's file, by how it relates
    /// to the journal's newest valid record: none; byte-identical to what
    /// it commits; fewer rows (recovery fell back to them, as after a
    /// power loss, reporting the rest dropped); as many rows as a record
    /// that commits no rows of its own (a journal's first record, which
    /// carries no checksum); other.
    kept: BTreeMap<&'static str, u64>,
    /// Refused recoveries then run with `accept_loss`, and of them those
    /// that cut rows the other program wrote.
    accepted: u64,
    accepted_cut: u64,
}

/// How another program wrote the path.
#[derive(Debug, Clone, Copy, Hash)]
struct Rewrite {
    rows: u64,
    /// The writer's own rows, else every value 42.
    own: bool,
    /// Renamed over the path (a new inode), else rewritten in place.
    new_inode: bool,
}

/// The inode number of a file another program created.
const FOREIGN_INO: Ino = 1 << 30;

/// The rewrites tried on a crash image: fewer, as many and more rows than
/// the journal's records commit (and the rows they fall back to), 42s or
/// the writer's own rows, in place or renamed over.
fn rewrites(image: &Image) -> Vec<Rewrite> {
    let records = records(image);
    let mut counts = BTreeSet::from([0, 1, 150]);
    if let Some(newest) = records.first() {
        let r = newest.rows;
        counts.extend([r.saturating_sub(1), r, r + 1, r + 150, newest.prev_rows]);
    }
    counts.extend(records.iter().map(|r| r.rows));
    let mut out = Vec::new();
    for &rows in &counts {
        for own in [false, true] {
            for new_inode in [false, true] {
                out.push(Rewrite {
                    rows,
                    own,
                    new_inode,
                });
            }
        }
    }
    out
}

/// The crash image after `rewrite`, with its inode numbers.
fn rewritten(crash: &Crash<'_>, rewrite: Rewrite) -> (Image, BTreeMap<PathBuf, Ino>, Vec<u8>) {
    let bytes = saved(rewrite.rows, rewrite.own);
    let mut image = crash.image.clone();
    image.insert(npy(), bytes.clone());
    let mut ids = crash.ids.clone();
    if rewrite.new_inode || !crash.ids.contains_key(&npy()) {
        // np.save creates the file when it is missing.
        ids.insert(npy(), FOREIGN_INO);
    }
    (image, ids, bytes)
}

/// The crash image itself (no other program): recovery succeeds, or after
/// a power loss under process durability refuses with nothing changed;
/// the recovered rows are at least the acknowledged ones.
fn check_baseline(crash: &Crash<'_>, stats: &mut ForeignStats) -> Result<(), String> {
    let durability = crash.rec.durability;
    let sim = backend(&crash.image, &crash.ids, false);
    match options(durability).open_with(sim.clone(), npy()) {
        Ok(w) => {
            let rows = w.len();
            if rows < crash.acked || (crash.kill && rows < crash.acked_any) {
                return Err(format!(
                    "no other program: {rows} rows recovered, {} acknowledged ({} durably)",
                    crash.acked_any, crash.acked
                ));
            }
            *stats.baseline.entry("recovered".to_owned()).or_default() += 1;
        }
        Err(e) => {
            let power_loss_process =
                !crash.kill && records(&crash.image).first().is_none_or(|r| !r.data_synced);
            let allowed = match e {
                Error::JournalDisagrees { .. } => power_loss_process,
                Error::ForeignJournal { .. } => !crash.kill,
                _ => false,
            };
            if !allowed {
                return Err(format!("no other program, recovery failed: {e}"));
            }
            unchanged(&crash.image, &sim.current(), &e)
                .map_err(|m| format!("no other program: {m}"))?;
            *stats.baseline.entry(kind(&e)).or_default() += 1;
        }
    }
    Ok(())
}

/// Recovers the image another program wrote (`bytes`, `rows` rows): refused
/// with nothing changed, or every byte of the other program kept. With
/// `accept_by_default` (the teeth) the default recovery accepts the loss.
fn check_rewrite(
    image: &Image,
    ids: &BTreeMap<PathBuf, Ino>,
    bytes: &[u8],
    rows: u64,
    durability: Durability,
    accept_by_default: bool,
    stats: &mut ForeignStats,
) -> Result<(), String> {
    let sim = backend(image, ids, false);
    match options(durability)
        .accept_loss(accept_by_default)
        .open_with(sim.clone(), npy())
    {
        Ok(w) => {
            let recovered = w.len();
            let after = sim.current();
            let header_len = header::parse_prefix(bytes).map_or(0, |(_, len)| len) as usize;
            let kept = after
                .get(&npy())
                .is_some_and(|now| now.get(header_len..) == bytes.get(header_len..));
            if recovered != rows || !kept || well_formed(&after)? != rows {
                return Err(format!(
                    "recovery cut rows another program wrote: it wrote {rows} rows ({} bytes), \
                     recovery kept {recovered} ({} bytes, the other program's data {})",
                    bytes.len(),
                    after.get(&npy()).map_or(0, Vec::len),
                    if kept { "intact" } else { "changed" }
                ));
            }
            w.close().map_err(|e| format!("close failed: {e}"))?;
            let closed = sim.current();
            if closed.get(&npy()).map(Vec::as_slice) != Some(bytes) {
                return Err("closing left a file other than the one another program wrote".into());
            }
            if closed.contains_key(&jnl()) {
                return Err("journal left after close".to_owned());
            }
            let how = match records(image).first() {
                None => "no record",
                Some(r)
                    if r.rows == rows
                        && bytes.get(header_len..) == Some(&row_bytes(0..rows)[..]) =>
                {
                    "identical"
                }
                Some(r) if rows < r.rows => "fewer rows",
                Some(r) if rows == r.rows && r.prev_rows == r.rows => "record without rows",
                Some(_) => "other",
            };
            *stats.kept.entry(how).or_default() += 1;
        }
        Err(e) => {
            unchanged(image, &sim.current(), &e)?;
            *stats.refused.entry(kind(&e)).or_default() += 1;
            // Accepting the loss recovers a well-formed file (a journal
            // that is not npy-append's is moved aside instead).
            let foreign_journal = matches!(e, Error::ForeignJournal { .. });
            let sim = backend(image, ids, false);
            let w = options(durability)
                .accept_loss(true)
                .move_aside_foreign_journal(foreign_journal)
                .open_with(sim.clone(), npy())
                .map_err(|e2| format!("refused ({e}), then with accept_loss: {e2}"))?;
            let recovered = w.len();
            if well_formed(&sim.current())? != recovered {
                return Err(format!(
                    "with accept_loss, the header does not show the {recovered} rows recovered"
                ));
            }
            w.close()
                .map_err(|e| format!("close after accept_loss failed: {e}"))?;
            let closed = sim.current();
            if well_formed(&closed)? != recovered || closed.contains_key(&jnl()) {
                return Err("close after accept_loss left a journal or a wrong header".into());
            }
            stats.accepted += 1;
            if closed.get(&npy()).map(Vec::as_slice) != Some(bytes) {
                stats.accepted_cut += 1;
            }
        }
    }
    Ok(())
}

/// Every crash image of `rec`, then every rewrite by another program.
fn enumerate_foreign(
    rec: &Recording,
    accept_by_default: bool,
    stop_at_first: bool,
) -> (ForeignStats, Vec<String>) {
    let mut stats = ForeignStats::default();
    let mut violations = Vec::new();
    let mut seen = HashSet::new();
    let crashes = enumerate(rec, 0x5eed, stop_at_first, &mut violations, |crash| {
        if let Some((ino, bytes, rows)) = &rec.renamed_over {
            if crash.ids.get(&npy()) != Some(ino) {
                // The crash lost the other program's rename: the writer's
                // own file.
                return if accept_by_default {
                    Ok(())
                } else {
                    check_baseline(crash, &mut stats)
                };
            }
            stats.images += 1;
            return check_rewrite(
                &crash.image,
                &crash.ids,
                bytes,
                *rows,
                rec.durability,
                accept_by_default,
                &mut stats,
            )
            .map_err(|e| format!("{e} (the file renamed over the live writer)"));
        }
        if !accept_by_default {
            check_baseline(crash, &mut stats)?;
        }
        for rewrite in rewrites(&crash.image) {
            let (image, ids, bytes) = rewritten(crash, rewrite);
            if !seen.insert(hash_of(&(&image, &ids))) {
                continue;
            }
            stats.images += 1;
            check_rewrite(
                &image,
                &ids,
                &bytes,
                rewrite.rows,
                rec.durability,
                accept_by_default,
                &mut stats,
            )
            .map_err(|e| format!("{e} (after {rewrite:?})"))?;
        }
        Ok(())
    });
    stats.crashes = crashes;
    (stats, violations)
}

/// A writer's workload on the file's own path: create, commits of 1,
/// several and page-crossing rows, uncommitted rows, reopen (recovery),
/// close, reopen (a new journal for an existing file), commit, uncommitted
/// rows; the writer dies with its journal.
const FOREIGN: &[Act] = &[
    Act::Open(Via::Real),
    Act::Append(1),
    Act::Commit,
    Act::Append(3),
    Act::Commit,
    Act::Append(200),
    Act::Commit,
    Act::Append(50),
    Act::Append(50),
    Act::Drop,
    Act::Open(Via::Real),
    Act::Append(2),
    Act::Commit,
    Act::Close,
    Act::Open(Via::Real),
    Act::Append(7),
    Act::Commit,
    Act::Append(120),
    Act::Drop,
];

/// A file numpy saved, taken over, appended to, and the writer dies with
/// uncommitted rows.
const TAKEOVER: &[Act] = &[
    Act::Open(Via::Real),
    Act::Append(7),
    Act::Append(30),
    Act::Commit,
    Act::Append(100),
    Act::Drop,
];

/// A file renamed over the path under a live writer (42s, more rows than
/// the writer committed), which the writer's next commit notices; the
/// writer is then dropped.
const RENAMED_OVER_LIVE: &[Act] = &[
    Act::Open(Via::Real),
    Act::Append(1),
    Act::Commit,
    Act::Append(200),
    Act::Commit,
    Act::Append(100),
    Act::RenameOver {
        rows: 250,
        own: false,
    },
    Act::Append(5),
    Act::Commit,
    Act::Drop,
];

/// The same with the writer's own rows, as many as it committed: a copy
/// of its file.
const COPY_RENAMED_OVER_LIVE: &[Act] = &[
    Act::Open(Via::Real),
    Act::Append(1),
    Act::Commit,
    Act::Append(200),
    Act::Commit,
    Act::Append(100),
    Act::RenameOver {
        rows: 201,
        own: true,
    },
    Act::Append(5),
    Act::Commit,
    Act::Drop,
];

fn foreign_workloads() -> Vec<Recording> {
    let taken = Image::from([(npy(), saved(10, true))]);
    let mut out = Vec::new();
    for durability in [Durability::Fsync, Durability::Process] {
        let d = format!("{durability:?}").to_lowercase();
        for (name, acts) in [
            ("renamed over a live writer", RENAMED_OVER_LIVE),
            ("a copy renamed over a live writer", COPY_RENAMED_OVER_LIVE),
        ] {
            let rec = record(
                &format!("{name}, {d}"),
                durability,
                acts,
                &Image::new(),
                false,
            );
            assert!(rec.noticed, "{}: the writer did not notice", rec.name);
            out.push(rec);
        }
        out.push(record(
            &format!("writer, {d}"),
            durability,
            FOREIGN,
            &Image::new(),
            false,
        ));
        out.push(record(
            &format!("take over, {d}"),
            durability,
            TAKEOVER,
            &taken,
            false,
        ));
    }
    out
}

/// Prints one violation per workload and kind of failure.
fn print_violations(violations: &[String]) {
    let mut kinds = BTreeSet::new();
    for v in violations {
        let kind: String = v
            .split("-> ")
            .last()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(50)
            .collect();
        if kinds.insert((v.split(':').next().unwrap_or("").to_owned(), kind)) {
            println!("VIOLATION {v}");
        }
    }
}

#[test]
fn no_crash_image_lets_recovery_cut_rows_another_program_wrote() {
    let started = Instant::now();
    let mut violations = Vec::new();
    let (mut crashes, mut images) = (0, 0);
    for rec in foreign_workloads() {
        let t = Instant::now();
        let (stats, v) = enumerate_foreign(&rec, false, false);
        println!(
            "crash_states_foreign: rewritten, workload {}: {} operations, {} crash images \
             (recovered as they are: {:?}); {} images rewritten by another program: refused \
             unchanged {:?}, then recovered with accept_loss {} ({} of them cutting its rows); \
             its file kept {:?}; {} violations, {:.1?}",
            rec.name,
            rec.trace.len(),
            stats.crashes,
            stats.baseline,
            stats.images,
            stats.refused,
            stats.accepted,
            stats.accepted_cut,
            stats.kept,
            v.len(),
            t.elapsed()
        );
        crashes += stats.crashes;
        images += stats.images;
        violations.extend(v);
    }
    println!(
        "crash_states_foreign: rewritten: {crashes} crash images, {images} rewritten images in \
         {:.1?}",
        started.elapsed()
    );
    print_violations(&violations);
    assert!(violations.is_empty(), "{} violations", violations.len());
    assert!(images >= 4_000, "only {images} rewritten images");
}

/// Teeth: recovery that takes `accept_loss` as its default (ignores the
/// evidence that the file is not its writer's) is caught.
#[test]
fn recovery_ignoring_the_evidence_is_caught() {
    for rec in foreign_workloads() {
        if rec
            .renamed_over
            .as_ref()
            .is_some_and(|(_, bytes, rows)| *bytes == saved(*rows, true))
        {
            // A copy of the writer's file: nothing of it to cut.
            continue;
        }
        let (stats, violations) = enumerate_foreign(&rec, true, true);
        let first = violations.first().unwrap_or_else(|| {
            panic!(
                "{}: accept_loss by default cut nothing in {} rewritten images",
                rec.name, stats.images
            )
        });
        println!(
            "accept_loss by default, {}: caught after {} rewritten images; example:\n  {first}",
            rec.name, stats.images
        );
    }
}

// ---------------------------------------------------------------------------
// A second path.

/// What recovery through one path did.
#[derive(Debug, PartialEq, Eq)]
enum PathOutcome {
    /// Rows, the report, the files while open and after closing.
    Recovered {
        rows: u64,
        report: String,
        open: Image,
        closed: Image,
    },
    /// The error's variant, then the outcome with `accept_loss` and
    /// `move_aside_foreign_journal`.
    Refused {
        kind: String,
        accepted: Box<PathOutcome>,
    },
    /// Recovery failed otherwise (an error's variant).
    Failed(String),
}

fn recover_via(
    crash: &Crash<'_>,
    via: Via,
    accept: bool,
    violations: &mut Vec<String>,
) -> PathOutcome {
    let sim = backend(&crash.image, &crash.ids, crash.rec.hidden);
    match options(crash.rec.durability)
        .accept_loss(accept)
        .move_aside_foreign_journal(accept)
        .open_with(sim.clone(), via.path())
    {
        Ok(w) => {
            let rows = w.len();
            let report = format!("{:?}", w.report());
            let open = without_journal_ids(&sim.current());
            let closed = match w.close() {
                Ok(_) => without_journal_ids(&sim.current()),
                Err(e) => {
                    violations.push(format!("through {via:?}: close failed: {e}"));
                    Image::new()
                }
            };
            PathOutcome::Recovered {
                rows,
                report,
                open,
                closed,
            }
        }
        Err(e @ (Error::JournalDisagrees { .. } | Error::ForeignJournal { .. })) if !accept => {
            if let Err(m) = unchanged(&crash.image, &sim.current(), &e) {
                violations.push(format!("through {via:?}: {m}"));
            }
            PathOutcome::Refused {
                kind: kind(&e),
                accepted: Box::new(recover_via(crash, via, true, violations)),
            }
        }
        Err(e) => PathOutcome::Failed(format!("{}: {e}", kind(&e))),
    }
}

/// A short description of an outcome, for messages.
fn summary(o: &PathOutcome) -> String {
    match o {
        PathOutcome::Recovered { rows, open, .. } => format!(
            "recovered {rows} rows, files {:?}",
            open.iter()
                .map(|(p, b)| format!("{} ({} bytes)", p.display(), b.len()))
                .collect::<Vec<_>>()
        ),
        PathOutcome::Refused { kind, accepted } => {
            format!("refused ({kind}), then {}", summary(accepted))
        }
        PathOutcome::Failed(e) => format!("failed: {e}"),
    }
}

#[derive(Default)]
struct PathStats {
    recovered: u64,
    refused: BTreeMap<String, u64>,
}

/// Recovery through every path agrees; the recovered rows are a commit
/// boundary, at least the acknowledged ones, as written (when the disk
/// wrote back in order or under Fsync), in a well-formed file.
fn check_paths(crash: &Crash<'_>, stats: &mut PathStats) -> Result<(), String> {
    let mut problems = Vec::new();
    let outcomes: Vec<PathOutcome> = VIAS
        .iter()
        .map(|&via| recover_via(crash, via, false, &mut problems))
        .collect();
    if let Some(p) = problems.first() {
        return Err(p.clone());
    }
    for (via, outcome) in VIAS.iter().zip(&outcomes).skip(1) {
        if *outcome != outcomes[0] {
            return Err(format!(
                "recovery through {via:?} differs from recovery through {:?}: {} / {}",
                VIAS[0],
                summary(outcome),
                summary(&outcomes[0])
            ));
        }
    }
    let mut outcome = &outcomes[0];
    if let PathOutcome::Refused { kind, accepted } = outcome {
        if crash.kill {
            return Err(format!("refused after a kill: {kind}"));
        }
        *stats.refused.entry(kind.clone()).or_default() += 1;
        outcome = accepted;
    } else {
        stats.recovered += 1;
    }
    let PathOutcome::Recovered {
        rows, open, closed, ..
    } = outcome
    else {
        return Err(format!("recovery failed: {}", summary(outcome)));
    };
    let rows = *rows;
    if !crash.rec.boundaries.contains(&rows) {
        return Err(format!("{rows} committed rows is not a commit boundary"));
    }
    if rows < crash.acked || (crash.kill && rows < crash.acked_any) {
        return Err(format!(
            "{rows} rows recovered, {} acknowledged ({} durably)",
            crash.acked_any, crash.acked
        ));
    }
    for (when, image) in [("open", open), ("closed", closed)] {
        if well_formed(image)? != rows {
            return Err(format!("{when}: the header does not show {rows} rows"));
        }
    }
    if crash.rec.durability == Durability::Fsync || crash.in_order {
        let bytes = &closed[&npy()];
        let header_len = bytes.len() - (rows * ROW_BYTES) as usize;
        if bytes[header_len..] != row_bytes(0..rows) {
            return Err("the recovered rows differ from what was written".to_owned());
        }
    }
    // Nothing but the file (and a journal moved aside as another program's).
    let aside = PathBuf::from(format!("{}.foreign", jnl().display()));
    if closed.keys().any(|p| *p != npy() && *p != aside) {
        return Err(format!(
            "files other than the .npy after close: {:?}",
            closed.keys().collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Create through a link, commit, uncommitted rows, die, reopen through
/// it, commit, close (`via` for every open).
fn one_path(via: Via) -> Vec<Act> {
    vec![
        Act::Open(via),
        Act::Append(1),
        Act::Commit,
        Act::Append(200),
        Act::Commit,
        Act::Append(100),
        Act::Drop,
        Act::Open(via),
        Act::Append(5),
        Act::Commit,
        Act::Close,
    ]
}

/// Writers through each path in turn, each dying with its journal.
const PATHS_IN_TURN: &[Act] = &[
    Act::Open(Via::Link),
    Act::Append(3),
    Act::Commit,
    Act::Append(100),
    Act::Drop,
    Act::Open(Via::Real),
    Act::Append(200),
    Act::Commit,
    Act::Drop,
    Act::Open(Via::Chain),
    Act::Append(5),
    Act::Commit,
    Act::Append(1),
    Act::Drop,
    Act::Open(Via::Relative),
    Act::Append(2),
    Act::Commit,
    Act::Close,
];

fn path_workloads(hidden: bool) -> Vec<Recording> {
    let mut out = Vec::new();
    for durability in [Durability::Fsync, Durability::Process] {
        let d = format!("{durability:?}").to_lowercase();
        let empty = Image::new();
        out.push(record(
            &format!("through a link, {d}"),
            durability,
            &one_path(Via::Link),
            &empty,
            hidden,
        ));
        if !hidden {
            out.push(record(
                &format!("through the file's path, {d}"),
                durability,
                &one_path(Via::Real),
                &empty,
                false,
            ));
            out.push(record(
                &format!("paths in turn, {d}"),
                durability,
                PATHS_IN_TURN,
                &empty,
                false,
            ));
        }
    }
    out
}

#[test]
fn recovery_through_another_path_gives_the_same_files() {
    let started = Instant::now();
    let mut violations = Vec::new();
    let mut total = 0;
    let workloads = path_workloads(false);
    // Through a link, the writer does what it does through the file's
    // path, operation for operation (journal ids aside).
    let shape = |rec: &Recording| -> Vec<String> {
        let names = crashsim::names(&rec.initial, &rec.trace);
        rec.trace.iter().map(|op| op.describe(&names)).collect()
    };
    for pair in workloads.chunks(3) {
        assert_eq!(
            shape(&pair[0]),
            shape(&pair[1]),
            "{} / {}",
            pair[0].name,
            pair[1].name
        );
        assert_eq!(
            pair[0].acks, pair[1].acks,
            "{} / {}",
            pair[0].name, pair[1].name
        );
    }
    for rec in workloads {
        let t = Instant::now();
        let mut stats = PathStats::default();
        let mut v = Vec::new();
        let crashes = enumerate(&rec, 0x5eed, false, &mut v, |crash| {
            check_paths(crash, &mut stats)
        });
        println!(
            "crash_states_foreign: second path, workload {}: {} operations, {} crash images, \
             each recovered through {} paths: {} recovered alike, {:?} refused alike unchanged \
             (then recovered alike with accept_loss); {} violations, {:.1?}",
            rec.name,
            rec.trace.len(),
            crashes,
            VIAS.len(),
            stats.recovered,
            stats.refused,
            v.len(),
            t.elapsed()
        );
        total += crashes;
        violations.extend(v);
    }
    println!(
        "crash_states_foreign: second path: {total} crash images in {:.1?}",
        started.elapsed()
    );
    print_violations(&violations);
    assert!(violations.is_empty(), "{} violations", violations.len());
    assert!(total >= 4_000, "only {total} crash images");
}

/// Teeth: a library that does not look for links (they are hidden from
/// `read_link`; opening follows them, as the kernel does) keeps a journal
/// beside the link, and recovery through the other path disagrees.
#[test]
fn a_library_blind_to_links_is_caught() {
    for rec in path_workloads(true) {
        let mut stats = PathStats::default();
        let mut violations = Vec::new();
        let crashes = enumerate(&rec, 0x7ee7, true, &mut violations, |crash| {
            check_paths(crash, &mut stats)
        });
        let first = violations.first().unwrap_or_else(|| {
            panic!(
                "{}, links hidden: no violation in {crashes} crash images",
                rec.name
            )
        });
        println!(
            "links hidden from the library, {}: caught after {crashes} crash images; \
             example:\n  {first}",
            rec.name
        );
    }
}

/// A recovery creates no file (nothing a crash could leave behind for a
/// later refusal to remove), and a crash anywhere in it, followed by
/// another program saving the `.npy` anew, leads to a refusal that
/// changes no file.
#[test]
fn a_refused_recovery_leaves_every_file_as_it_was() {
    let sim = SimBackend::from_image(&Image::new()).with_file_ids();
    let mut w = options(Durability::Process)
        .open_with(sim.clone(), npy())
        .unwrap();
    w.append_bytes(&row_bytes(0..201)).unwrap();
    w.commit().unwrap();
    w.append_bytes(&row_bytes(201..301)).unwrap();
    drop(w);
    // The next writer recovers (the uncommitted rows are cut).
    let start = sim.trace().len();
    drop(
        options(Durability::Process)
            .open_with(sim.clone(), npy())
            .unwrap(),
    );
    let trace = sim.trace();
    let created: Vec<_> = trace[start..]
        .iter()
        .filter(|op| matches!(op, Op::Create { .. }))
        .collect();
    assert!(created.is_empty(), "recovery created files: {created:?}");
    for k in start..=trace.len() {
        // Killed after k operations, every write so far kept.
        let model = Model::at(&sim.initial(), &trace, k);
        let (mut image, ids) = model.build_with_inos(&model.all_kept(), 0);
        // np.save rewrites the file in place.
        image.insert(npy(), saved(250, false));
        let sim = backend(&image, &ids, false);
        let err = options(Durability::Process)
            .open_with(sim.clone(), npy())
            .err()
            .unwrap_or_else(|| {
                panic!("after {k} operations: a file another program saved was taken")
            });
        assert!(matches!(err, Error::JournalDisagrees { .. }), "{err}");
        unchanged(&image, &sim.current(), &err).unwrap();
    }
}
