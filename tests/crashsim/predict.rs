//! The dry run must predict the real run: `AppendOptions::preview_recovery`
//! (what `npy-append recover --dry-run` prints) against
//! `AppendOptions::recover` (what `npy-append recover` does), on a disk
//! image.
//!
//! [`check_image`] takes every `.npy` of an image (and every journal whose
//! `.npy` is missing), previews its recovery on the crash simulator, checks
//! that the preview wrote nothing, recovers it, and compares: the same
//! outcome (every field of the report, whether the file exists, whether the
//! journal went, the cursor) or the same error. It then checks that the
//! files after the real run are what the outcome says: the journal gone;
//! the header's rows the committed rows and the length to match; the header
//! bytes changed exactly when `header_rewritten`; the bytes cut and the
//! zeros added as reported, the data before them unchanged; a file created
//! only from a journal; the leftover of a header rewrite removed exactly
//! when reported; the cursor file holding the outcome's cursor (or gone);
//! every other file unchanged. A refusal must change nothing.
//!
//! [`check_cli`] does the same through the `npy-append` binary on a copy of
//! the image in a temporary directory: `recover --dry-run --json` against
//! `recover --json` (the same exit code, the same JSON but for `dry_run`,
//! or the same error message), the dry run changing nothing, and the real
//! run leaving exactly the files the library's run left. The crash-state
//! tests call [`check_image`] on every image they build and [`check_cli`]
//! on a sample.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use npy_append::format::cursor_file::CursorFile;
use npy_append::format::header;
use npy_append::{AppendOptions, RecoveryOutcome, cursor_path, journal_path, rewrite_path};

use super::{Image, SimBackend};

/// Files previewed and recovered by the library, and of them refusals.
static LIBRARY: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
/// Files previewed and recovered through the binary.
static CLI: AtomicUsize = AtomicUsize::new(0);
/// Images seen by [`check_image`] (for the sample of [`check_cli`]).
static IMAGES: AtomicUsize = AtomicUsize::new(0);

/// Every how many images [`check_image`] also runs the binary, and at most
/// how many times per test process (each run starts two processes).
const CLI_EVERY: usize = 53;
const CLI_MAX: usize = 120;

/// The `npy-append` binary, when the tests are built with it.
pub fn binary() -> Option<&'static str> {
    option_env!("CARGO_BIN_EXE_npy-append")
}

/// (files compared by the library, of them refusals, files compared
/// through the binary), so far in this test process.
pub fn counts() -> (usize, usize, usize) {
    (
        LIBRARY.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        CLI.load(Ordering::Relaxed),
    )
}

/// A line for the test output.
pub fn summary() -> String {
    let (library, refused, cli) = counts();
    format!(
        "dry run against real run: {library} files agreed ({refused} refusals), {cli} of them \
         also through npy-append"
    )
}

/// The files of `image` that `recover` can be pointed at: every `.npy`,
/// and the `.npy` of every journal whose file is missing.
pub fn targets(image: &Image) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = image
        .keys()
        .filter_map(|p| {
            let name = p.to_str()?;
            if name.ends_with(".npy") {
                Some(p.clone())
            } else {
                name.strip_suffix(".journal")
                    .filter(|n| n.ends_with(".npy"))
                    .map(PathBuf::from)
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Checks the preview against the real run for every target of `image`
/// with the default options, and through the binary for a sample of
/// images.
pub fn check_image(image: &Image) -> Result<(), String> {
    let n = IMAGES.fetch_add(1, Ordering::Relaxed);
    let cli = n.is_multiple_of(CLI_EVERY) && CLI.load(Ordering::Relaxed) < CLI_MAX;
    for path in targets(image) {
        let after = check(image, &path, &AppendOptions::new())?;
        if cli {
            check_cli(image, &path, &[], &after)?;
        }
    }
    Ok(())
}

/// Previews and then recovers `path` of `image` with `options`; checks
/// that they agree and that the real run did what it reported. Returns the
/// files after the real run.
pub fn check(image: &Image, path: &Path, options: &AppendOptions) -> Result<Image, String> {
    let sim = SimBackend::from_image(image);
    let preview = options.preview_recovery_with(&sim, path);
    // The simulator records every create, write, cut, sync, remove and
    // rename: none may come from a preview.
    if sim.ops() != 0 {
        return Err(format!("{}: the preview changed files", path.display()));
    }
    let real = options.recover_with(sim.clone(), path);
    let after = sim.current();
    LIBRARY.fetch_add(1, Ordering::Relaxed);
    let shown = path.display();
    match (preview, real) {
        (Err(p), Err(r)) => {
            if p.to_string() != r.to_string() {
                return Err(format!(
                    "{shown}: the preview refuses with\n  {p}\nrecovery with\n  {r}"
                ));
            }
            if after != *image {
                return Err(format!("{shown}: a refusal changed files: {r}"));
            }
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
        (Ok(p), Ok(r)) => {
            if p != r {
                return Err(format!(
                    "{shown}: the preview says\n  {p:?}\nrecovery did\n  {r:?}"
                ));
            }
            check_effects(image, &after, path, &r).map_err(|e| {
                format!("{shown}: recovery did not do what it reported ({r:?}): {e}")
            })?;
        }
        (Ok(p), Err(r)) => {
            return Err(format!(
                "{shown}: the preview says\n  {p:?}\nrecovery refused: {r}"
            ));
        }
        (Err(p), Ok(r)) => {
            return Err(format!(
                "{shown}: the preview refuses ({p}), recovery did\n  {r:?}"
            ));
        }
    }
    Ok(after)
}

/// The header length and the header of an `.npy`'s bytes.
fn header_of(bytes: &[u8]) -> Result<header::Header, String> {
    let (_, len) = header::parse_prefix(bytes).map_err(|e| e.to_string())?;
    let raw = bytes
        .get(..usize::try_from(len).map_err(|e| e.to_string())?)
        .ok_or("the file is shorter than its header")?;
    header::parse(raw).map_err(|e| e.to_string())
}

/// Whether the files `after` the real run are what `outcome` says was done
/// to `before`.
fn check_effects(
    before: &Image,
    after: &Image,
    path: &Path,
    outcome: &RecoveryOutcome,
) -> Result<(), String> {
    let report = &outcome.report;
    let (journal, cursor, leftover) = (journal_path(path), cursor_path(path), rewrite_path(path));
    if after.contains_key(&journal) {
        return Err("the journal is still there".into());
    }
    if outcome.journal_removed != before.contains_key(&journal) {
        return Err("journal_removed is not whether a journal was there".into());
    }
    let leftover_removed = before.contains_key(&leftover) && !after.contains_key(&leftover);
    if report.rewrite_leftover_removed != leftover_removed
        || (!leftover_removed && before.get(&leftover) != after.get(&leftover))
    {
        return Err("the leftover of a header rewrite went otherwise than reported".into());
    }
    for (p, bytes) in before.iter().chain(after.iter()) {
        if ![path, &journal, &cursor, &leftover].contains(&p.as_path())
            && (before.get(p) != after.get(p))
        {
            return Err(format!("{} changed: {} bytes", p.display(), bytes.len()));
        }
    }
    if !outcome.file_exists {
        if after.contains_key(path) || before.contains_key(path) {
            return Err("file_exists is false, but the file is (or was) there".into());
        }
        if before.get(&cursor) != after.get(&cursor) {
            return Err("the cursor file changed, and no file was opened".into());
        }
        return Ok(());
    }
    let now = after.get(path).ok_or("file_exists, but there is no file")?;
    let h = header_of(now).map_err(|e| format!("the header left: {e}"))?;
    if h.growth_len() != Some(report.committed_rows) {
        return Err(format!(
            "the header says {:?} rows, the report {}",
            h.growth_len(),
            report.committed_rows
        ));
    }
    let data_len = h.data_len().map_err(|e| e.to_string())?;
    if now.len() as u64 != h.header_len + data_len {
        return Err(format!(
            "the file has {} bytes, its header {} and its rows {data_len}",
            now.len(),
            h.header_len
        ));
    }
    let expected_cursor = (!outcome.cursor.is_empty()).then(|| {
        CursorFile {
            rows: report.committed_rows,
            cursor: outcome.cursor.clone(),
        }
        .encode()
        .unwrap()
    });
    if after.get(&cursor) != expected_cursor.as_ref() {
        return Err("the cursor file does not hold the outcome's cursor".into());
    }
    let Some(old) = before.get(path) else {
        // Created from its journal: nothing was ever committed.
        return if report.header_rewritten && report.committed_rows == 0 {
            Ok(())
        } else {
            Err("a file was created, but not with a header of 0 rows".into())
        };
    };
    // The old data region: after the old header, or, when the file was
    // rewritten with room, after the header it had.
    let old_header_len = if report.file_rewritten {
        header_of(old)
            .map_err(|e| format!("the old header: {e}"))?
            .header_len
    } else {
        h.header_len
    };
    // A file cut inside its header (a creation that died) had no data.
    let old_data = old
        .get(usize::try_from(old_header_len).unwrap()..)
        .unwrap_or_default();
    let new_data = &now[usize::try_from(h.header_len).unwrap()..];
    let kept = (old_data.len() as u64)
        .checked_sub(report.bytes_cut)
        .ok_or("more bytes cut than the file had")?;
    if new_data.len() as u64 != kept + report.zero_filled_bytes {
        return Err(format!(
            "{} data bytes before, {} after, {} reported cut and {} zero-filled",
            old_data.len(),
            new_data.len(),
            report.bytes_cut,
            report.zero_filled_bytes
        ));
    }
    let kept = usize::try_from(kept).unwrap();
    if new_data[..kept] != old_data[..kept] || new_data[kept..].iter().any(|&b| b != 0) {
        return Err("the data kept changed, or the bytes added are not zeros".into());
    }
    let old_header = &old[..old.len().min(usize::try_from(old_header_len).unwrap())];
    let header_changed = old_header != &now[..usize::try_from(h.header_len).unwrap()];
    if !report.file_rewritten && header_changed != report.header_rewritten {
        return Err(format!(
            "the header bytes {} changed, header_rewritten is {}",
            if header_changed { "" } else { "never" },
            report.header_rewritten
        ));
    }
    Ok(())
}

/// A fresh temporary directory holding the files of `image` by name (the
/// images of one test are flat directories).
fn write_dir(image: &Image) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (p, bytes) in image {
        let name = p.file_name().ok_or("a path without a name")?;
        std::fs::write(dir.path().join(name), bytes).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// The files of `dir` as an image, under the directory of `like`.
fn read_dir(dir: &Path, like: &Path) -> Result<Image, String> {
    let parent = like.parent().unwrap_or(Path::new("/"));
    let mut image = Image::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let bytes = std::fs::read(entry.path()).map_err(|e| e.to_string())?;
        image.insert(parent.join(entry.file_name()), bytes);
    }
    Ok(image)
}

/// One run of the binary: exit code, stdout, stderr.
fn run(args: &[&str], path: &Path) -> Result<(i32, String, String), String> {
    let bin = binary().ok_or("no npy-append binary")?;
    let out = Command::new(bin)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| format!("running {bin}: {e}"))?;
    let code = out
        .status
        .code()
        .ok_or_else(|| format!("npy-append {args:?} died: {}", out.status))?;
    Ok((
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs `npy-append recover --dry-run --json` and `npy-append recover
/// --json` (with `flags`) on a copy of `image` and checks that they agree,
/// that the dry run changed nothing, and that the real run left the files
/// `want` (the library's real run with the same options).
pub fn check_cli(image: &Image, path: &Path, flags: &[&str], want: &Image) -> Result<(), String> {
    if binary().is_none() {
        return Ok(());
    }
    let dir = write_dir(image)?;
    let target = dir
        .path()
        .join(path.file_name().ok_or("a path without a name")?);
    let shown = format!("npy-append recover {flags:?} {}", path.display());
    let mut dry_args = vec!["recover", "--dry-run", "--json"];
    dry_args.extend(flags);
    let dry = run(&dry_args, &target)?;
    if read_dir(dir.path(), path)? != *image {
        return Err(format!("{shown} --dry-run changed files"));
    }
    let mut real_args = vec!["recover", "--json"];
    real_args.extend(flags);
    let real = run(&real_args, &target)?;
    CLI.fetch_add(1, Ordering::Relaxed);
    if dry.0 != real.0 {
        return Err(format!(
            "{shown}: --dry-run exits {} ({}{}), recover exits {} ({}{})",
            dry.0, dry.1, dry.2, real.0, real.1, real.2
        ));
    }
    match real.0 {
        0 => {
            let normalized = dry.1.replace("\"dry_run\": true", "\"dry_run\": false");
            if normalized != real.1 {
                return Err(format!(
                    "{shown}: --dry-run printed\n  {}recover printed\n  {}",
                    dry.1, real.1
                ));
            }
        }
        2 => {
            let prefix = "npy-append: error: dry run: recovery would refuse and change nothing: ";
            let dry_msg = dry.2.replacen(prefix, "npy-append: error: ", 1);
            if dry_msg != real.2 {
                return Err(format!(
                    "{shown}: --dry-run says\n  {}recover says\n  {}",
                    dry.2, real.2
                ));
            }
        }
        code => return Err(format!("{shown}: exit code {code}: {}", real.2)),
    }
    let left = read_dir(dir.path(), path)?;
    if left != *want {
        return Err(format!(
            "{shown}: the files left differ from the library's recovery: {:?} against {:?}",
            left.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        ));
    }
    Ok(())
}
