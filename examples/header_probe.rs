//! What a reader that re-reads a `.npy` header sees while a writer commits:
//! the probe behind "Readers during a commit" in `docs/design.md`.
//! `scripts/header-probe.sh` runs it beside the command-line tool and two
//! numpy loaders; it can also be run by hand. Output is `key=value` lines.
//!
//! ```text
//! cargo run --release --example header_probe -- watch FILE SECONDS
//! cargo run --release --example header_probe -- stress FILE SECONDS PLAN START END STEP [SHAPE]
//! cargo run --release --example header_probe -- commits COMMITS ROUNDS DIR
//! ```
//!
//! - `watch FILE SECONDS`: loops `pread(fd, 4096, 0)` of the header, then
//!   `fstat(fd)`, and parses the header as numpy does. Counts the reads,
//!   the reads whose bytes differ from the previous read (`changed`),
//!   headers that do not parse (`unparsable`), headers whose dtype, order or
//!   row shape differ from the first one read (`layout_changed`: numpy would
//!   misread the data), headers claiming more rows than the file holds
//!   (`ahead`: `header_len + rows * row_bytes` > the size), and counts lower
//!   than the previous read's (`went_down`). The first few reads of each
//!   kind but `changed` are printed as `example=...` lines. Stops early when
//!   the file disappears.
//! - `stress FILE SECONDS PLAN START END STEP [SHAPE]`: the same probe
//!   against a writer thread in this process that only rewrites the header
//!   (no data, no journal), as fast as it can: counts START, START+STEP, ...
//!   up to END, then back to START (that rewrite is not judged), over and
//!   over. Before each rewrite the writer publishes the new count; a read is
//!   judged against the count published after it (as `watch` judges against
//!   the file's size). PLAN `whole` writes the header text in one `pwrite`
//!   (the commit's write before the change); `planned` writes
//!   `header::update_writes` one `pwrite` at a time (the commit's write
//!   now). SHAPE is the row shape, comma separated (default `16`; `-` for a
//!   1-D file); a leading `F` makes a Fortran-order file (`F16`). Also
//!   counts `torn`: reads whose count is not one the header held while the
//!   read ran (a mix of two counts), harmless ones included, and prints for
//!   each kind of mix (`torn_mix=`) which bytes came from the old header and
//!   which from the new one.
//! - `commits COMMITS ROUNDS DIR`: the cost of the header rewrite in a
//!   commit: ROUNDS rounds of COMMITS one-row commits (16 x `<f4`) at Process
//!   durability to a new file in DIR (append, then commit), timed; prints
//!   the median, lowest and highest time per commit over the rounds.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use npy_append::Dtype;
use npy_append::format::header::{self, GrowthTemplate, Header, Version};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Bytes read per probe, as the probe of the report that started this.
const READ_LEN: usize = 4096;
/// Examples printed per kind of read.
const EXAMPLES: u64 = 5;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("header_probe: {e}");
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
    let secs = |i: usize| -> Res<Duration> { Ok(Duration::from_secs_f64(arg(i)?.parse()?)) };
    match arg(0)? {
        "watch" => watch(Path::new(arg(1)?), secs(2)?),
        "stress" => {
            let plan = match arg(3)? {
                "whole" => Plan::Whole,
                "planned" => Plan::Planned,
                other => return Err(format!("plan {other}: whole or planned").into()),
            };
            let shape = args.get(7).map_or("16", String::as_str);
            stress(
                Path::new(arg(1)?),
                secs(2)?,
                plan,
                (arg(4)?.parse()?, arg(5)?.parse()?, arg(6)?.parse()?),
                shape,
            )
        }
        "commits" => commits(arg(1)?.parse()?, arg(2)?.parse()?, Path::new(arg(3)?)),
        other => Err(format!("unknown mode {other}; see the module docs").into()),
    }
}

/// `commits`: one-row commits at Process durability, timed per round.
fn commits(commits: u32, rounds: u32, dir: &Path) -> Res<()> {
    let path = dir.join("commits.npy");
    let row = [1.0f32; 16];
    let mut per_commit = Vec::new();
    for _ in 0..rounds {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(npy_append::journal_path(&path));
        let mut w = npy_append::AppendOptions::new()
            .row_shape(&[16])
            .durability(npy_append::Durability::Process)
            .open(&path)?;
        let start = Instant::now();
        for _ in 0..commits {
            w.append(&row)?;
            w.commit()?;
        }
        per_commit.push(start.elapsed().as_secs_f64() / f64::from(commits));
        w.close()?;
    }
    per_commit.sort_by(f64::total_cmp);
    let us = |i: usize| per_commit.get(i).map_or(f64::NAN, |s| s * 1e6);
    println!("commits={commits} rounds={rounds}");
    println!("us_per_commit_median={:.3}", us(per_commit.len() / 2));
    println!("us_per_commit_min={:.3}", us(0));
    println!(
        "us_per_commit_max={:.3}",
        us(per_commit.len().saturating_sub(1))
    );
    Ok(())
}

/// What the reads saw.
#[derive(Default)]
struct Counts {
    reads: u64,
    changed: u64,
    unparsable: u64,
    layout_changed: u64,
    ahead: u64,
    went_down: u64,
    torn: u64,
}

impl Counts {
    fn print(&self, elapsed: Duration) {
        println!("seconds={:.1}", elapsed.as_secs_f64());
        println!("reads={}", self.reads);
        println!("changed={}", self.changed);
        println!("unparsable={}", self.unparsable);
        println!("layout_changed={}", self.layout_changed);
        println!("ahead={}", self.ahead);
        println!("went_down={}", self.went_down);
    }
}

/// One judged read: the header bytes and what they claim.
struct Probe {
    buf: Vec<u8>,
    /// Bytes of the previous read, to skip parsing an unchanged header.
    prev: Vec<u8>,
    prev_rows: Option<u64>,
    first: Option<Header>,
    counts: Counts,
}

/// How a read's header compares with the file.
enum Seen {
    Unparsable(String),
    OtherLayout(Header),
    Rows(u64),
}

impl Probe {
    fn new() -> Self {
        Self {
            buf: vec![0; READ_LEN],
            prev: Vec::new(),
            prev_rows: None,
            first: None,
            counts: Counts::default(),
        }
    }

    /// Reads the header; `None` when nothing changed since the last read
    /// (the count is then the previous one).
    fn read(&mut self, file: &File) -> Res<Option<Seen>> {
        let n = file.read_at(&mut self.buf, 0)?;
        self.counts.reads += 1;
        let bytes = self.buf.get(..n).unwrap_or_default();
        let len = header::parse_prefix(bytes).map_or(n, |(_, len)| {
            usize::try_from(len).map_or(n, |len| len.min(n))
        });
        let bytes = bytes.get(..len).unwrap_or_default();
        if bytes == self.prev.as_slice() {
            return Ok(None);
        }
        self.counts.changed += 1;
        self.prev.clear();
        self.prev.extend_from_slice(bytes);
        let seen = match header::parse(bytes) {
            Err(e) => Seen::Unparsable(e.to_string()),
            Ok(h) => {
                let first = self.first.get_or_insert_with(|| h.clone());
                if first.same_layout(&h) {
                    Seen::Rows(h.growth_len().unwrap_or(0))
                } else {
                    Seen::OtherLayout(h)
                }
            }
        };
        Ok(Some(seen))
    }

    /// The header text of the last read, for the examples.
    fn text(&self) -> String {
        let skip = header::parse_prefix(&self.prev).map_or(0, |(v, _)| v.prefix_len());
        let text = self.prev.get(skip..).unwrap_or_default();
        String::from_utf8_lossy(text).trim_end().to_owned()
    }

    /// Judges a read against `limit`, the most rows the file holds;
    /// returns the count when `written` says no header held it.
    fn judge(
        &mut self,
        seen: Option<Seen>,
        limit: u64,
        written: impl Fn(u64) -> bool,
    ) -> Option<u64> {
        let mut torn = None;
        let rows = match seen {
            None => self.prev_rows,
            Some(Seen::Unparsable(why)) => {
                self.counts.unparsable += 1;
                if self.counts.unparsable <= EXAMPLES {
                    println!("example=unparsable {:?}: {why}", self.text());
                }
                None
            }
            Some(Seen::OtherLayout(h)) => {
                self.counts.layout_changed += 1;
                if self.counts.layout_changed <= EXAMPLES {
                    println!(
                        "example=layout_changed {:?}: shape {:?}, file holds {limit} rows",
                        self.text(),
                        h.shape
                    );
                }
                None
            }
            Some(Seen::Rows(rows)) => {
                if !written(rows) {
                    torn = Some(rows);
                    self.counts.torn += 1;
                    if self.counts.torn <= EXAMPLES {
                        println!("example=torn {:?}: {rows} rows never written", self.text());
                    }
                }
                if let Some(prev) = self.prev_rows.filter(|&p| rows < p) {
                    self.counts.went_down += 1;
                    if self.counts.went_down <= EXAMPLES {
                        println!(
                            "example=went_down {:?}: {rows} rows after {prev}",
                            self.text()
                        );
                    }
                }
                Some(rows)
            }
        };
        if let Some(rows) = rows {
            if rows > limit {
                self.counts.ahead += 1;
                if self.counts.ahead <= EXAMPLES {
                    println!(
                        "example=ahead {:?}: header says {rows} rows, file holds {limit}",
                        self.text()
                    );
                }
            }
            self.prev_rows = Some(rows);
        }
        torn
    }
}

/// `watch`: the probe against a file another process writes.
fn watch(path: &Path, duration: Duration) -> Res<()> {
    let file = File::open(path)?;
    let mut probe = Probe::new();
    let start = Instant::now();
    let mut row_bytes = None;
    while start.elapsed() < duration {
        let seen = probe.read(&file)?;
        let size = file.metadata()?.len();
        if size == 0 && !path.exists() {
            break;
        }
        if row_bytes.is_none() {
            row_bytes = probe.first.as_ref().map(|h| {
                let itemsize = h.dtype.itemsize().unwrap_or(0);
                (
                    h.row_shape().iter().product::<u64>() * itemsize,
                    h.header_len,
                )
            });
        }
        let limit = match row_bytes {
            Some((rb, header_len)) if rb > 0 => size.saturating_sub(header_len) / rb,
            _ => u64::MAX,
        };
        probe.judge(seen, limit, |_| true);
    }
    probe.counts.print(start.elapsed());
    Ok(())
}

/// How the stress writer rewrites the header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The header text in one `pwrite`.
    Whole,
    /// `header::update_writes`, one `pwrite` each.
    Planned,
}

/// The count the reader judges against: `gen` is odd while the writer
/// rewinds to START (reads then are not judged).
struct Published {
    rows: AtomicU64,
    generation: AtomicU64,
    stop: AtomicBool,
    rewrites: AtomicU64,
}

/// `stress`: a writer thread rewriting the header, the probe on this one.
fn stress(
    path: &Path,
    duration: Duration,
    plan: Plan,
    (start_rows, end_rows, step): (u64, u64, u64),
    shape: &str,
) -> Res<()> {
    if step == 0 || end_rows <= start_rows {
        return Err("need START < END and STEP > 0".into());
    }
    let (fortran, dims) = match shape.strip_prefix('F') {
        Some(rest) => (true, rest),
        None => (false, shape),
    };
    let row: Vec<u64> = if dims == "-" {
        Vec::new()
    } else {
        dims.split(',').map(str::parse).collect::<Result<_, _>>()?
    };
    let mut full = row.clone();
    if fortran {
        full.push(start_rows);
    } else {
        full.insert(0, start_rows);
    }
    let dtype = Dtype::parse_descr("'<f4'")?;
    let first = header::build(&dtype, fortran, &full)?;
    let (version, header_len) = header::parse_prefix(&first)?;
    let template = GrowthTemplate::new(version, &dtype, fortran, &full, header_len)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all_at(&first, 0)?;

    let shared = Arc::new(Published {
        rows: AtomicU64::new(start_rows),
        generation: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        rewrites: AtomicU64::new(0),
    });
    let writer = {
        let shared = Arc::clone(&shared);
        let file = file.try_clone()?;
        let template = template.clone();
        std::thread::spawn(move || {
            stress_writer(
                &file,
                &template,
                version,
                plan,
                (start_rows, end_rows, step),
                &shared,
            )
            .map_err(|e| e.to_string())
        })
    };

    let mut probe = Probe::new();
    let start = Instant::now();
    let mut skipped = 0u64;
    let mut generation = 0;
    let mut mixes = std::collections::BTreeMap::new();
    while start.elapsed() < duration {
        let before = shared.generation.load(Ordering::Acquire);
        if before != generation {
            // A rewind since the last judged read: counts start afresh.
            probe.prev_rows = None;
            generation = before;
        }
        let low = shared.rows.load(Ordering::Acquire).saturating_sub(step);
        let seen = probe.read(&file)?;
        let limit = shared.rows.load(Ordering::Acquire);
        let after = shared.generation.load(Ordering::Acquire);
        if before != after || before % 2 == 1 {
            // Overlapped the rewind to START: not judged.
            skipped += 1;
            probe.prev_rows = None;
            continue;
        }
        // A count written before the read started or while it ran.
        let torn = probe.judge(seen, limit, |rows| {
            rows >= low && rows <= limit && (rows - start_rows) % step == 0
        });
        if torn.is_some() {
            let (mix, example) = mix_of(&probe.prev, &template, low, limit, step);
            mixes.entry(mix).or_insert((0, example)).0 += 1;
        }
    }
    shared.stop.store(true, Ordering::Release);
    let written = writer.join().map_err(|_| "the writer thread panicked")??;
    probe.counts.print(start.elapsed());
    println!("torn={}", probe.counts.torn);
    println!("not_judged={skipped}");
    println!("header_rewrites={written}");
    println!("pwrites={}", shared.rewrites.load(Ordering::Relaxed));
    for (mix, (n, example)) in mixes {
        println!("torn_mix={mix} reads={n} e.g. {example}");
    }
    Ok(())
}

/// Which bytes of a torn header came from which of two consecutive
/// headers in `low..=limit`: the offsets where they differ, each marked
/// `o` (old) or `n` (new), e.g. `63n 64o 65o` (new "308", old "950"); and
/// the two counts.
fn mix_of(
    view: &[u8],
    template: &GrowthTemplate,
    low: u64,
    limit: u64,
    step: u64,
) -> (String, String) {
    let mut rows = low;
    while rows < limit {
        if let (Some(old), Some(new)) = (template.render(rows), template.render(rows + step))
            && let Some(mix) = mix_pattern(view, &old, &new)
        {
            return (mix, format!("{rows} -> {}", rows + step));
        }
        rows += step;
    }
    let text = String::from_utf8_lossy(view).into_owned();
    ("not a mix of two consecutive headers".to_owned(), text)
}

fn mix_pattern(view: &[u8], old: &[u8], new: &[u8]) -> Option<String> {
    if view.len() != old.len() || old.len() != new.len() {
        return None;
    }
    let mut out = Vec::new();
    for (i, ((&v, &o), &n)) in view.iter().zip(old).zip(new).enumerate() {
        match (o == n, v == o, v == n) {
            (true, true, _) => {}
            (false, true, _) => out.push(format!("{i}o")),
            (false, _, true) => out.push(format!("{i}n")),
            _ => return None,
        }
    }
    Some(out.join(" "))
}

fn stress_writer(
    file: &File,
    template: &GrowthTemplate,
    version: Version,
    plan: Plan,
    (start_rows, end_rows, step): (u64, u64, u64),
    shared: &Published,
) -> Res<u64> {
    let skip = version.prefix_len();
    let mut old = template.render(start_rows).ok_or("START does not fit")?;
    let mut new = Vec::new();
    let mut rows = start_rows;
    let mut rewrites = 0u64;
    let mut pwrites = 0u64;
    while !shared.stop.load(Ordering::Acquire) {
        let next = if rows + step > end_rows {
            start_rows
        } else {
            rows + step
        };
        if !template.render_into(next, &mut new) {
            return Err(format!("{next} rows do not fit the header").into());
        }
        let rewind = next < rows;
        if rewind {
            shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        // The rows are "in the file" before the header says so.
        shared.rows.store(next.max(rows), Ordering::Release);
        match plan {
            Plan::Whole => {
                file.write_all_at(new.get(skip..).unwrap_or_default(), skip as u64)?;
                pwrites += 1;
            }
            Plan::Planned => {
                for w in header::update_writes(&old, &new) {
                    file.write_all_at(&w.bytes, w.offset as u64)?;
                    pwrites += 1;
                }
            }
        }
        shared.rows.store(next, Ordering::Release);
        if rewind {
            shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        std::mem::swap(&mut old, &mut new);
        rows = next;
        rewrites += 1;
    }
    shared.rewrites.store(pwrites, Ordering::Relaxed);
    Ok(rewrites)
}
