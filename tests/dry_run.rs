//! `npy-append recover --dry-run` predicts `npy-append recover`: for every
//! file of the bad-input corpus (`tests/bad_inputs/`), every fixture
//! (`tests/fixtures/npy/`) and a set of files made here (a journal beside
//! a missing file, a leftover of a header rewrite, a cursor file, a group
//! member), under every policy for files without a journal, the preview
//! and the real recovery agree on the outcome (every field of the report,
//! or the same error) and the real run does what it reports; through the
//! library (`AppendOptions::preview_recovery` against
//! `AppendOptions::recover`, in memory) and through the binary (`recover
//! --dry-run --json` against `recover --json` on a copy in a temporary
//! directory: the same exit code and output, the dry run changing nothing,
//! the real run leaving the files the library's run left; with the
//! default options and the salvaging ones). The crash-state
//! tests run the same checks on every crash image they build
//! (`tests/crashsim/predict.rs`).

mod crashsim;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crashsim::{Image, SimBackend, predict};
use npy_append::format::cursor_file::CursorFile;
use npy_append::format::header;
use npy_append::{
    AppendOptions, Dtype, ShortFilePolicy, TailPolicy, cursor_path, journal_path,
    member_marker_path, rewrite_path,
};

/// The options `recover` is run with, and the same as command-line flags.
fn policies() -> Vec<(AppendOptions, Vec<&'static str>)> {
    vec![
        (AppendOptions::new(), vec![]),
        (
            AppendOptions::new().tail_policy(TailPolicy::CutToHeader),
            vec!["--tail", "cut"],
        ),
        (
            AppendOptions::new()
                .tail_policy(TailPolicy::AdoptWholeRows)
                .short_file_policy(ShortFilePolicy::KeepWholeRows),
            vec!["--tail", "adopt", "--short-file", "keep"],
        ),
        (
            AppendOptions::new()
                .tail_policy(TailPolicy::AdoptZeroFillLastRow)
                .short_file_policy(ShortFilePolicy::ZeroFillLastRow),
            vec!["--tail", "adopt-zero-fill", "--short-file", "zero-fill"],
        ),
    ]
}

/// The corpus: every `.npy` of `dir` with its journal, one image each.
fn corpus(dir: &Path) -> Vec<(String, Image)> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("npy")))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let at = Path::new("/case").join(&name);
        let mut image = Image::from([(at.clone(), std::fs::read(&path).unwrap())]);
        if let Ok(journal) = std::fs::read(journal_path(&path)) {
            image.insert(journal_path(&at), journal);
        }
        out.push((name, image));
    }
    out
}

/// Files made here: what the corpus lacks.
fn crafted() -> Vec<(String, Image)> {
    let path = PathBuf::from("/case/made.npy");
    let f4 = Dtype::parse_descr("'<f4'").unwrap();
    let clean = {
        let mut b = header::build(&f4, false, &[3, 2]).unwrap();
        b.extend((0..24u8).collect::<Vec<_>>());
        b
    };
    // A crashed writer's files, from the library itself.
    let written = |rows: u64, cursor: &[u8]| {
        let sim = SimBackend::from_image(&Image::new());
        let mut w = AppendOptions::new()
            .dtype("<f4")
            .unwrap()
            .row_shape(&[2])
            .open_with(sim.clone(), &path)
            .unwrap();
        w.append(&vec![1.5f32; usize::try_from(rows * 2).unwrap()])
            .unwrap();
        if cursor.is_empty() {
            w.commit().unwrap();
        } else {
            w.commit_with_cursor(cursor).unwrap();
        }
        drop(w);
        sim.current()
    };
    let with = |mut image: Image, p: PathBuf, bytes: &[u8]| {
        image.insert(p, bytes.to_vec());
        image
    };
    let without = |mut image: Image, p: &Path| {
        image.remove(p);
        image
    };
    let clean_image = Image::from([(path.clone(), clean.clone())]);
    let crashed = written(3, b"");
    let created_journal = {
        // A writer that died after creating its journal, before the file.
        let sim = SimBackend::from_image(&Image::new());
        let mut w = AppendOptions::new()
            .dtype("<f4")
            .unwrap()
            .open_with(sim.clone(), &path)
            .unwrap();
        w.append(&[1.0f32]).unwrap();
        drop(w);
        without(sim.current(), &path)
    };
    let cursor = CursorFile {
        rows: 3,
        cursor: b"at 3".to_vec(),
    }
    .encode()
    .unwrap();
    vec![
        (
            "empty journal, no file".into(),
            Image::from([(journal_path(&path), Vec::new())]),
        ),
        (
            "512 random bytes as journal, no file".into(),
            Image::from([(
                journal_path(&path),
                (0..512u32).map(|i| (i * 97 + 13) as u8).collect(),
            )]),
        ),
        ("journal of a file never created".into(), created_journal),
        (
            "journal with committed rows, no file".into(),
            without(crashed.clone(), &path),
        ),
        ("crashed writer".into(), crashed.clone()),
        (
            "crashed writer with a cursor".into(),
            written(2, b"cursor of the last commit"),
        ),
        (
            "clean file and its cursor file".into(),
            with(clean_image.clone(), cursor_path(&path), &cursor),
        ),
        (
            "clean file and a cursor file of other rows".into(),
            with(
                clean_image.clone(),
                cursor_path(&path),
                &CursorFile {
                    rows: 2,
                    cursor: b"stale".to_vec(),
                }
                .encode()
                .unwrap(),
            ),
        ),
        (
            "clean file and a leftover rewrite".into(),
            with(clean_image.clone(), rewrite_path(&path), b"half a copy"),
        ),
        (
            "crashed writer and a leftover rewrite".into(),
            with(crashed, rewrite_path(&path), b"half a copy"),
        ),
        (
            "group member".into(),
            with(clean_image, member_marker_path(&path), b"made.group"),
        ),
    ]
}

#[test]
fn the_dry_run_predicts_recovery_on_every_bad_input() {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sets = vec![
        ("tests/bad_inputs", corpus(&root.join("tests/bad_inputs"))),
        (
            "tests/fixtures/npy",
            corpus(&root.join("tests/fixtures/npy")),
        ),
        ("made here", crafted()),
    ];
    let (mut files, mut compared, mut refused) = (0, 0, 0);
    let mut failures = Vec::new();
    for (set, cases) in &mut sets {
        for (name, image) in cases.iter() {
            files += 1;
            for path in predict::targets(image) {
                for (i, (options, flags)) in policies().into_iter().enumerate() {
                    // The binary with the default options and the salvaging
                    // ones (each run starts two processes).
                    let cli = i == 0 || i == 3;
                    let checked = predict::check(image, &path, &options).and_then(|after| {
                        if cli {
                            predict::check_cli(image, &path, &flags, &after)?;
                        }
                        Ok(after)
                    });
                    compared += 1;
                    match checked {
                        Ok(after) if after == *image => refused += 1,
                        Ok(_) => {}
                        Err(e) => failures.push(format!("{set}/{name} {flags:?}: {e}")),
                    }
                }
            }
        }
    }
    let (_, _, cli) = predict::counts();
    println!(
        "dry run against recovery: {files} files ({} bad inputs, {} fixtures, {} made here), \
         {compared} previews and recoveries ({refused} changed nothing), {cli} through \
         npy-append, {:.1?}",
        sets[0].1.len(),
        sets[1].1.len(),
        sets[2].1.len(),
        started.elapsed()
    );
    if predict::binary().is_none() {
        println!(
            "SKIP the_dry_run_predicts_recovery_on_every_bad_input (through npy-append): built without the cli feature"
        );
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI runs the tool"
        );
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        sets[0].1.len() >= 80 && sets[1].1.len() >= 50,
        "the corpus is missing"
    );
}
