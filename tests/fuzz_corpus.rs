//! The fuzz corpus replayed as ordinary tests, on stable Rust.
//!
//! `fuzz/` holds cargo-fuzz targets (run with a nightly toolchain, see
//! `.ci/run`); the checks they run live in `fuzz/src/lib.rs` and are compiled
//! here as a module, so every input of the committed corpus
//! (`fuzz/corpus/<target>/*`) and of the bad-input corpus
//! (`tests/bad_inputs/`) goes through exactly the same assertions on every
//! `cargo test`.
//!
//! The fuzzers were seeded by `make_seeds` (ignored; run it with
//! `cargo test --release --test fuzz_corpus -- --ignored make_seeds`, it
//! writes `fuzz/seeds/<target>/`): the numpy fixtures and files the library
//! itself writes (fresh, committed, crashed between any two writes of a
//! commit, recovered and closed, under both durabilities). The committed
//! corpus is what a minimizing merge kept of those seeds and the inputs the
//! fuzzers found (every coverage edge they reached, smallest inputs first);
//! the seeds themselves are checked here too, generated in memory.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use npy_append::format::cursor_file::CursorFile;
use npy_append::storage::{MemBackend, MemOp};
use npy_append::{
    AppendOptions, Durability, GroupOptions, MemberSpec, TailPolicy, member_marker_path,
};

const TARGETS: [&str; 6] = [
    "header",
    "journal",
    "open_pair",
    "group_journal",
    "cursor_file",
    "open_group",
];

/// The check of a fuzz target, as the corpus replay runs it (the readers
/// always).
fn check_of(target: &str) -> fn(&[u8]) {
    match target {
        "header" => checks::header,
        "journal" => checks::journal,
        "open_pair" => checks::replay_pair,
        "group_journal" => checks::group_journal,
        "cursor_file" => checks::cursor_file,
        "open_group" => checks::replay_group,
        _ => panic!("no fuzz target {target}"),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input, collecting the names of those that panic, so
/// one failure names every failing input.
fn replay(inputs: &[PathBuf], check: impl Fn(&Path)) -> Vec<String> {
    let mut failed = Vec::new();
    for input in inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", input.display()));
        }
    }
    failed
}

#[test]
fn fuzz_corpus_replays_without_failure() {
    let mut failed = Vec::new();
    for target in TARGETS {
        let inputs = files_in(&root().join("fuzz/corpus").join(target));
        assert!(
            inputs.len() >= 10,
            "fuzz/corpus/{target} has only {} inputs",
            inputs.len()
        );
        let check = check_of(target);
        failed.extend(replay(&inputs, |p| check(&fs::read(p).unwrap())));
        println!("fuzz/corpus/{target}: {} inputs replayed", inputs.len());
    }
    assert!(
        failed.is_empty(),
        "inputs failing their fuzz check:\n{}",
        failed.join("\n")
    );
}

#[test]
fn bad_inputs_replay_through_the_fuzz_checks() {
    let dir = root().join("tests/bad_inputs");
    let cases: Vec<PathBuf> = files_in(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
    assert!(cases.len() >= 60, "only {} bad-input cases", cases.len());
    let failed = replay(&cases, |npy| {
        let bytes = fs::read(npy).unwrap();
        let journal = fs::read(npy.with_extension("npy.journal")).ok();
        checks::header(&bytes);
        if let Some(j) = &journal {
            checks::journal(j);
        }
        for tail in [
            TailPolicy::Refuse,
            TailPolicy::CutToHeader,
            TailPolicy::AdoptWholeRows,
        ] {
            checks::check_pair(Some(&bytes), journal.as_deref(), tail, true);
            checks::check_pair(None, journal.as_deref(), tail, true);
        }
    });
    assert!(
        failed.is_empty(),
        "bad inputs failing a fuzz check:\n{}",
        failed.join("\n")
    );
}

/// Pair inputs split as documented, and a good and a refused pair pass the
/// pair check.
#[test]
fn pair_inputs_split_as_documented() {
    // A pair input whose .npy length prefix is cut to the bytes present.
    let pair = checks::encode_pair(Some(b"\x93NUMPY"), Some(b"x"), 0);
    let (npy, journal, _) = checks::decode_pair(&pair).unwrap();
    assert_eq!(npy, Some(&b"\x93NUMPY"[..]));
    assert_eq!(journal, Some(&b"x"[..]));
    let mut long = pair.clone();
    long[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    let (npy, journal, _) = checks::decode_pair(&long).unwrap();
    assert_eq!(npy, Some(&b"\x93NUMPYx"[..]));
    assert_eq!(journal, Some(&b""[..]));
    // A clean file passes; the same file one byte short is refused, which
    // the check accepts only because nothing changed.
    let fixture = fs::read(root().join("tests/fixtures/npy/f4.npy")).unwrap();
    checks::check_pair(Some(&fixture), None, TailPolicy::Refuse, true);
    checks::check_pair(
        Some(&fixture[..fixture.len() - 1]),
        None,
        TailPolicy::Refuse,
        true,
    );
}

/// One crash image: the bytes of both files at some instant.
type Image = (Option<Vec<u8>>, Option<Vec<u8>>);

fn image(fs: &MemBackend) -> Image {
    (
        fs.contents(Path::new(checks::NPY_PATH)),
        fs.contents(Path::new(checks::JOURNAL_PATH)),
    )
}

/// Appends `commits` commits of 1, 2, 3, ... rows of `row_bytes` bytes each,
/// failing the `fail_write`-th write (if any); returns the image after every
/// step, and after a drop without close and after close.
fn workload(
    descr: &str,
    row_shape: &[u64],
    row_bytes: usize,
    durability: Durability,
    commits: usize,
    fail_write: Option<u64>,
) -> Vec<Image> {
    let fs = MemBackend::new();
    let path = Path::new(checks::NPY_PATH);
    let options = || {
        AppendOptions::new()
            .dtype(descr)
            .unwrap()
            .row_shape(row_shape)
            .durability(durability)
            .buffer_bytes(1)
    };
    if let Some(n) = fail_write {
        fs.fail_at(MemOp::Write, n);
    }
    let mut images = Vec::new();
    let Ok(mut w) = options().open_with(fs.clone(), path) else {
        images.push(image(&fs));
        return images;
    };
    images.push(image(&fs));
    let mut value = 0u8;
    for c in 1..=commits {
        let mut rows = Vec::new();
        for _ in 0..c * row_bytes {
            rows.push(value);
            value = value.wrapping_add(37);
        }
        if w.append_bytes(&rows).is_err() {
            images.push(image(&fs));
            return images;
        }
        images.push(image(&fs));
        if w.commit().is_err() {
            images.push(image(&fs));
            return images;
        }
        images.push(image(&fs));
    }
    drop(w);
    fs.clear_failure();
    if let Ok(w) = options().open_with(fs.clone(), path) {
        images.push(image(&fs));
        let _ = w.close();
        images.push(image(&fs));
    }
    images
}

/// Seed inputs per target, by name: the numpy fixtures, and files the
/// library writes.
fn seeds() -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let mut seeds: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut add = |target: &'static str, bytes: Vec<u8>| {
        let name = format!("seed-{:08x}-{}", crc32fast::hash(&bytes), bytes.len());
        seeds.entry(target).or_default().insert(name, bytes);
    };
    for fixture in files_in(&root().join("tests/fixtures/npy")) {
        if fixture.extension().is_some_and(|e| e == "npy") {
            let bytes = fs::read(&fixture).unwrap();
            add("header", bytes.clone());
            add("open_pair", checks::encode_pair(Some(&bytes), None, 0));
        }
    }
    for descr in [
        "'<f4'",
        "'|u1'",
        "'<M8[ns]'",
        "[('a', '<i2'), ('b', '|u1', (3,))]",
        "'>c16'",
    ] {
        add("header", descr.as_bytes().to_vec());
    }
    let shapes: [(&str, &[u64], usize); 3] = [
        ("<f4", &[3], 12),
        ("|u1", &[], 1),
        ("[('a', '<i2'), ('b', '|u1', (3,))]", &[2], 10),
    ];
    for (descr, row_shape, row_bytes) in shapes {
        for durability in [Durability::Fsync, Durability::Process] {
            let mut images = workload(descr, row_shape, row_bytes, durability, 3, None);
            // For the first dtype, a crash at every write of the workload
            // (MemBackend writes are whole, so each image is the state
            // between two writes).
            if descr == "<f4" {
                for n in 1..=12 {
                    images.extend(workload(
                        descr,
                        row_shape,
                        row_bytes,
                        durability,
                        3,
                        Some(n),
                    ));
                }
            }
            images.sort();
            images.dedup();
            for (npy, journal) in images {
                if let Some(n) = &npy {
                    add("header", n.clone());
                }
                if let Some(j) = &journal {
                    add("journal", j.clone());
                }
                add(
                    "open_pair",
                    checks::encode_pair(npy.as_deref(), journal.as_deref(), 0),
                );
            }
        }
    }
    group_seeds(&mut add);
    seeds
}

/// The files of a group: the journal, then each member and whether its
/// marker exists.
type GroupImage = (Option<Vec<u8>>, Vec<(Option<Vec<u8>>, bool)>);

fn group_image(fs: &MemBackend) -> GroupImage {
    let members = checks::GROUP_MEMBERS
        .iter()
        .map(|(name, _, _)| {
            let path = Path::new(checks::GROUP_PATH).with_file_name(name);
            (
                fs.contents(&path),
                fs.contents(&member_marker_path(&path)).is_some(),
            )
        })
        .collect();
    (fs.contents(Path::new(checks::GROUP_PATH)), members)
}

/// A group of [`checks::GROUP_MEMBERS`] created, given `commits` commits
/// of 1, 2, ... rows to every member (and a cursor), dropped, reopened and
/// closed, failing the `fail_write`-th write (if any): the image after
/// every step.
fn group_workload(commits: usize, fail_write: Option<u64>) -> Vec<GroupImage> {
    let fs = MemBackend::new();
    let path = Path::new(checks::GROUP_PATH);
    let options = |specs: bool| {
        let mut o = GroupOptions::new().buffer_bytes(1);
        if specs {
            for (name, descr, shape) in checks::GROUP_MEMBERS {
                o = o.member(MemberSpec::new(name, descr, shape).unwrap());
            }
        }
        o
    };
    if let Some(n) = fail_write {
        fs.fail_at(MemOp::Write, n);
    }
    let mut images = vec![group_image(&fs)];
    let Ok(mut g) = options(true).open_with(fs.clone(), path) else {
        images.push(group_image(&fs));
        return images;
    };
    images.push(group_image(&fs));
    let mut value = 0u8;
    for c in 1..=commits {
        for i in 0..g.member_count() {
            let rb = usize::try_from(g.member_row_bytes(i).unwrap()).unwrap();
            let rows: Vec<u8> = (0..c * rb)
                .map(|_| {
                    value = value.wrapping_add(41);
                    value
                })
                .collect();
            if g.append_bytes(i, &rows).is_err() {
                images.push(group_image(&fs));
                return images;
            }
        }
        images.push(group_image(&fs));
        if g.commit_with_cursor(format!("c{c}").as_bytes()).is_err() {
            images.push(group_image(&fs));
            return images;
        }
        images.push(group_image(&fs));
    }
    drop(g);
    fs.clear_failure();
    if let Ok(g) = options(false).open_with(fs.clone(), path) {
        images.push(group_image(&fs));
        let _ = g.close();
        images.push(group_image(&fs));
    }
    images
}

/// Seeds of the group journal, cursor file and group targets.
fn group_seeds(add: &mut impl FnMut(&'static str, Vec<u8>)) {
    let mut images = group_workload(3, None);
    for n in 1..=20 {
        images.extend(group_workload(2, Some(n)));
    }
    images.sort();
    images.dedup();
    for (journal, members) in &images {
        if let Some(j) = journal {
            add("group_journal", j.clone());
        }
        for specs in [false, true] {
            let bytes = |i: usize| members.get(i).and_then(|m| m.0.as_deref());
            let input = checks::GroupInput {
                journal: journal.as_deref(),
                members: [bytes(0), bytes(1), bytes(2)],
                markers: [0, 1, 2].map(|i| members.get(i).is_some_and(|m| m.1)),
                specs,
            };
            add("open_group", checks::encode_group(&input));
        }
    }
    for (rows, cursor) in [
        (3, &b"at row 3"[..]),
        (3, &b""[..]),
        (2, &b"other rows"[..]),
        (3, &[0xff; 300][..]),
        (0, &b"x"[..]),
        (u64::MAX, &b"max"[..]),
    ] {
        let bytes = CursorFile {
            rows,
            cursor: cursor.to_vec(),
        }
        .encode()
        .unwrap();
        add("cursor_file", bytes.clone());
        // Cut, and with one byte changed.
        add("cursor_file", bytes[..bytes.len() - 1].to_vec());
        let mut flipped = bytes;
        flipped[20] ^= 1;
        add("cursor_file", flipped);
    }
    add("cursor_file", Vec::new());
    add("cursor_file", b"NPYACURS".to_vec());
}

/// Every file the library writes in the seed workloads (fresh, committed,
/// crashed between any two writes, recovered, closed) passes the checks.
#[test]
fn library_written_files_pass_the_fuzz_checks() {
    let seeds = seeds();
    let mut failed = Vec::new();
    for (target, files) in &seeds {
        assert!(files.len() >= 10, "only {} {target} seeds", files.len());
        for (name, bytes) in files {
            let check = check_of(target);
            let run = catch_unwind(AssertUnwindSafe(|| check(bytes)));
            if run.is_err() {
                failed.push(format!("{target}/{name}"));
            }
        }
    }
    assert!(failed.is_empty(), "seeds failing their check: {failed:?}");
}

/// Writes the seeds into `fuzz/seeds/<target>/` (not committed; the
/// committed corpus is what `cargo fuzz cmin` keeps of a run from them).
#[test]
#[ignore = "generator: writes fuzz/seeds"]
fn make_seeds() {
    for (target, files) in seeds() {
        let dir = root().join("fuzz/seeds").join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &files {
            fs::write(dir.join(name), bytes).unwrap();
        }
        println!("fuzz/corpus/{target}: {} seeds", files.len());
    }
}
