//! One case per row of the tables in `docs/design.md` that decide how a
//! single file is recovered: "Open (`open_or_recover`)" (deciding the
//! committed state), "Files without a journal", "Files other programs wrote"
//! (and its foreign journals), and the failure analysis (commit under Fsync
//! and Process durability, journal creation, recovery itself).
//!
//! Each test is named after its row and quotes the row in its doc comment.
//! It builds the state the row describes in memory: a real writer run on
//! `MemBackend` and dropped (what a kill leaves: drop does no I/O), a write
//! made to fail at the step the row names, or bytes edited as a power loss
//! or another program leaves them (`overwrite`: the same file rewritten in
//! place; `put`: another file put at the path, a new inode). It then opens
//! the file through [`open_case`], which checks for every case that:
//!
//! - `FileStatus::read_with` and `AppendOptions::preview_recovery_with`
//!   (read-only) write nothing and predict what the open then does: the
//!   same report, or the same refusal with the same message;
//! - a refusal leaves every file beside the path byte for byte (and inode
//!   for inode) as it was;
//! - a recovered file holds exactly its committed rows under a header that
//!   says so, and opening it again changes nothing (recovery is idempotent).
//!
//! Rows are `<u8`, 4 values wide (32 bytes); row `i` holds `4 i + [0, 1, 2,
//! 3]`, so every kept byte is checked.

use std::ops::Range;
use std::path::{Path, PathBuf};

use npy_append::format::header;
use npy_append::format::journal::{self, Identity, Record, Slot};
use npy_append::storage::{Backend, MemBackend, MemOp, OpenMode, Storage};
use npy_append::{
    AppendOptions, Appender, Dtype, Durability, Error, FileState, FileStatus, Found, Reader,
    RecoveryAction, RecoveryReport, ShortFilePolicy, TailPolicy, cursor_path, journal_path,
    rewrite_path,
};

/// Values per row.
const W: u64 = 4;
/// Bytes per row.
const RB: u64 = W * 8;

use Durability::{Fsync, Process};

// ---------------------------------------------------------------------------
// Files, rows and headers

fn npy() -> PathBuf {
    PathBuf::from("/m/f.npy")
}

fn jnl() -> PathBuf {
    journal_path(&npy())
}

fn aside(n: Option<u32>) -> PathBuf {
    let mut os = jnl().into_os_string();
    os.push(".foreign");
    if let Some(n) = n {
        os.push(format!(".{n}"));
    }
    PathBuf::from(os)
}

fn dtype() -> Dtype {
    Dtype::parse("<u8").unwrap()
}

fn values(rows: Range<u64>) -> Vec<u64> {
    (rows.start * W..rows.end * W).collect()
}

/// The data bytes of `rows`.
fn data(rows: Range<u64>) -> Vec<u8> {
    values(rows).iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Rows another program wrote: other values than ours.
fn other_data(rows: Range<u64>) -> Vec<u8> {
    values(rows)
        .iter()
        .flat_map(|v| (v + 1_000_000).to_le_bytes())
        .collect()
}

fn npy_header(rows: u64) -> Vec<u8> {
    header::build(&dtype(), false, &[rows, W]).unwrap()
}

/// What `np.save` writes for `rows` of our rows.
fn saved(rows: u64) -> Vec<u8> {
    let mut bytes = npy_header(rows);
    bytes.extend(data(0..rows));
    bytes
}

/// What `np.save` writes for `rows` rows of another program's values.
fn saved_other(rows: u64) -> Vec<u8> {
    let mut bytes = npy_header(rows);
    bytes.extend(other_data(0..rows));
    bytes
}

fn header_len() -> u64 {
    npy_header(0).len() as u64
}

/// The rows the header of `bytes` claims (`None`: it does not parse).
fn header_rows(bytes: &[u8]) -> Option<u64> {
    let (_, len) = header::parse_prefix(bytes).ok()?;
    let h = header::parse(bytes.get(..len as usize)?).ok()?;
    h.growth_len()
}

/// `bytes` with a header claiming `rows` (of the same length, as a commit
/// or `np.save` of the same dtype writes it).
fn with_header_rows(mut bytes: Vec<u8>, rows: u64) -> Vec<u8> {
    let h = npy_header(rows);
    bytes[..h.len()].copy_from_slice(&h);
    bytes
}

/// The bytes of `rows` whole rows of the file (its header included).
fn end_of(rows: u64) -> usize {
    (header_len() + rows * RB) as usize
}

fn contents(mem: &MemBackend, path: &Path) -> Vec<u8> {
    mem.contents(path)
        .unwrap_or_else(|| panic!("{} does not exist", path.display()))
}

/// Rewrites the file at `path` in place (the same inode): a power loss's
/// leftovers, a torn write, `np.save` over an existing file.
fn edit(mem: &MemBackend, path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = contents(mem, path);
    f(&mut bytes);
    mem.overwrite(path, &bytes);
}

fn file_id(mem: &MemBackend, path: &Path) -> Option<(u64, u64)> {
    mem.open(path, OpenMode::Read)
        .ok()
        .and_then(|f| f.file_id().ok().flatten())
}

// ---------------------------------------------------------------------------
// Journals

/// The identity block of a journal.
fn identity(journal: &[u8]) -> Identity {
    Identity::decode(journal).expect("the journal's identity decodes")
}

/// Byte range of `slot`'s fixed part (its first 64 bytes).
fn slot_range(journal: &[u8], slot: Slot) -> Range<usize> {
    let at = journal::slot_offset(identity(journal).block_len(), slot) as usize;
    at..at + journal::SLOT_FIXED_LEN
}

/// The valid record in `slot`, if any.
fn record(journal: &[u8], slot: Slot) -> Option<Record> {
    let id = identity(journal);
    let at = journal::slot_offset(id.block_len(), slot) as usize;
    let bytes = journal.get(at..)?;
    let len = Record::encoded_len(bytes)?;
    Record::decode(bytes.get(..len)?, id.journal_id).ok()
}

/// The valid record with the highest sequence, and its slot.
fn newest(journal: &[u8]) -> (Slot, Record) {
    [Slot::A, Slot::B]
        .into_iter()
        .filter_map(|s| record(journal, s).map(|r| (s, r)))
        .max_by_key(|(_, r)| r.sequence)
        .expect("a valid record")
}

/// Overwrites `slot`'s fixed part with `fill` (a torn or lost write).
fn tear_slot(journal: &mut [u8], slot: Slot, fill: u8) {
    let range = slot_range(journal, slot);
    journal[range].fill(fill);
}

/// Garbage: what a torn sector may hold.
fn garbage(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Writers

/// Options of the writer: `<u8` rows of 4 values.
fn writer_options(durability: Durability) -> AppendOptions {
    AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[W])
        .durability(durability)
}

/// A writer at `npy()`: of a new file, or of the file `np.save` left with
/// `existing` rows. It commits `commits` (rows per commit, numbered on),
/// then appends `tail` rows it does not commit (written to the file at
/// once: its buffer is smaller than a row). Returns the writer, alive, and
/// the file and journal bytes after each commit (index 0: after opening).
/// Dropping the writer is a kill.
fn writer(
    mem: &MemBackend,
    durability: Durability,
    existing: Option<u64>,
    commits: &[u64],
    tail: u64,
) -> (Appender<MemBackend>, Vec<(Vec<u8>, Vec<u8>)>) {
    if let Some(rows) = existing {
        mem.put(&npy(), &saved(rows));
    }
    let mut w = writer_options(durability)
        .buffer_bytes(1)
        .open_with(mem.clone(), npy())
        .unwrap();
    let mut states = vec![(contents(mem, &npy()), contents(mem, &jnl()))];
    let mut next = existing.unwrap_or(0);
    for &n in commits {
        w.append(&values(next..next + n)).unwrap();
        next += n;
        assert_eq!(w.commit().unwrap(), next);
        states.push((contents(mem, &npy()), contents(mem, &jnl())));
    }
    w.append(&values(next..next + tail)).unwrap();
    assert_eq!(
        contents(mem, &npy()).len(),
        end_of(next + tail),
        "the uncommitted rows are in the file"
    );
    (w, states)
}

/// [`writer`], killed.
fn killed(
    mem: &MemBackend,
    durability: Durability,
    existing: Option<u64>,
    commits: &[u64],
    tail: u64,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (w, states) = writer(mem, durability, existing, commits, tail);
    drop(w);
    assert!(mem.contents(&jnl()).is_some(), "a killed writer's journal");
    states
}

// ---------------------------------------------------------------------------
// Opening a case

/// What opening decided, every field of the report a row can speak of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Decision {
    found: Found,
    rows: u64,
    bytes_cut: u64,
    header_rewritten: bool,
    dropped_rows: u64,
    rows_discarded: u64,
    adopted_rows: u64,
    missing_rows: u64,
    zero_filled_bytes: u64,
    journal_discarded: bool,
    journal_moved_aside: Option<PathBuf>,
    file_rewritten: bool,
    rewrite_leftover_removed: bool,
}

impl Decision {
    fn of(report: &RecoveryReport) -> Self {
        Self {
            found: report.found,
            rows: report.committed_rows,
            bytes_cut: report.bytes_cut,
            header_rewritten: report.header_rewritten,
            dropped_rows: report.dropped_rows,
            rows_discarded: report.rows_discarded,
            adopted_rows: report.adopted_rows,
            missing_rows: report.missing_rows,
            zero_filled_bytes: report.zero_filled_bytes,
            journal_discarded: report.journal_discarded,
            journal_moved_aside: report.journal_moved_aside.clone(),
            file_rewritten: report.file_rewritten,
            rewrite_leftover_removed: report.rewrite_leftover_removed,
        }
    }
}

/// `rows` kept from a file with a journal (`Found::Journal`), the other
/// fields as given.
fn journal_kept(rows: u64) -> Decision {
    Decision {
        found: Found::Journal,
        rows,
        ..Decision::default()
    }
}

/// `rows` kept from a file without a journal (`Found::Clean`).
fn clean_kept(rows: u64) -> Decision {
    Decision {
        found: Found::Clean,
        rows,
        ..Decision::default()
    }
}

/// The files a recovery may touch, with their inodes.
#[derive(PartialEq, Eq)]
struct Disk(Vec<Option<(Vec<u8>, Option<(u64, u64)>)>>);

fn disk(mem: &MemBackend) -> Disk {
    Disk(
        [
            npy(),
            jnl(),
            aside(None),
            aside(Some(1)),
            cursor_path(&npy()),
            rewrite_path(&npy()),
        ]
        .iter()
        .map(|p| mem.contents(p).map(|b| (b, file_id(mem, p))))
        .collect(),
    )
}

/// Opens the file at `npy()` with `options` and returns what opening
/// decided, or its refusal, after the checks every case shares (see the
/// module's documentation). `status` says whether [`FileStatus`], which
/// judges with the default options, applies: the options' policies are the
/// defaults.
fn open_case(mem: &MemBackend, options: &AppendOptions, status: bool) -> Result<Decision, Error> {
    let before = disk(mem);
    let journal_present = mem.contents(&jnl()).is_some();
    let nothing = mem.contents(&npy()).is_none() && !journal_present;
    let file_status = FileStatus::read_with(mem, npy());
    let preview = options.preview_recovery_with(mem, npy());
    assert!(disk(mem) == before, "the status or the preview wrote");
    let opened = options.clone().open_with(mem.clone(), npy());

    // The dry run predicts the real one.
    match (&opened, &preview) {
        (Ok(_), Err(e)) if nothing => {
            // Nothing to recover: the preview says so, the open starts a
            // new file.
            assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound), "{e}");
        }
        (Ok(w), Ok(p)) => {
            assert_eq!(w.report(), &p.report, "the preview's report");
            assert_eq!(w.row_bytes().is_some(), p.file_exists, "file_exists");
            assert_eq!(w.cursor(), p.cursor.as_slice(), "the preview's cursor");
            assert_eq!(p.journal_removed, journal_present, "journal_removed");
        }
        (Err(e), Err(p)) => assert_eq!(e.to_string(), p.to_string(), "the preview's refusal"),
        (Ok(w), Err(p)) => panic!("the preview refused ({p}), the open did: {}", w.report()),
        (Err(e), Ok(p)) => panic!("the preview predicted {}, the open refused: {e}", p.report),
    }

    // So does the status, where it judges with these options.
    if status {
        match (&opened, &file_status) {
            (Ok(w), Ok(s)) => {
                let report = w.report();
                assert_ne!(report.found, Found::NoFile, "a status of no file");
                assert_eq!(s.rows, Some(report.committed_rows), "the status's rows");
                let (state, action) = if journal_present {
                    (
                        FileState::NeedsRecovery,
                        RecoveryAction::Changes(report.clone()),
                    )
                } else if report.changed_file() {
                    (FileState::Clean, RecoveryAction::Changes(report.clone()))
                } else {
                    (FileState::Clean, RecoveryAction::Nothing)
                };
                assert_eq!((s.state, &s.recovery), (state, &action), "the status");
            }
            (Ok(w), Err(e)) => assert_eq!(
                w.report().found,
                Found::NoFile,
                "the status failed ({e}) on a file the open recovered"
            ),
            (Err(e), Ok(s)) => {
                assert!(
                    matches!(s.state, FileState::Inconsistent | FileState::Unsupported),
                    "{:?}",
                    s.state
                );
                assert_eq!(s.recovery, RecoveryAction::Refuses(e.to_string()));
            }
            (Err(e), Err(s)) => assert_eq!(e.to_string(), s.to_string(), "the status's error"),
        }
    }

    let w = match opened {
        Err(e) => {
            assert!(disk(mem) == before, "a refusal changed a file: {e}");
            return Err(e);
        }
        Ok(w) => w,
    };
    let decision = Decision::of(w.report());
    assert_eq!(w.len(), decision.rows);
    drop(w);
    if let Some(bytes) = mem.contents(&npy()) {
        assert_eq!(header_rows(&bytes), Some(decision.rows), "header rows");
        assert_eq!(bytes.len(), end_of(decision.rows), "file length");
    }

    // Idempotent: opening again finds the committed state and changes
    // nothing in the file.
    let file = mem.contents(&npy());
    let again = options
        .clone()
        .open_with(mem.clone(), npy())
        .unwrap_or_else(|e| panic!("the second open: {e}"));
    assert_eq!(again.len(), decision.rows, "the second open's rows");
    let second = Decision::of(again.report());
    assert_eq!(
        (
            second.bytes_cut,
            second.header_rewritten,
            second.dropped_rows,
            second.rows_discarded,
            second.adopted_rows,
            second.missing_rows,
            second.zero_filled_bytes,
        ),
        (0, false, 0, 0, 0, 0, 0),
        "the second open changed something: {}",
        again.report()
    );
    drop(again);
    assert!(
        mem.contents(&npy()) == file,
        "the second open changed the file"
    );
    Ok(decision)
}

/// [`open_case`] with the default options but the durability.
fn open(mem: &MemBackend, durability: Durability) -> Result<Decision, Error> {
    open_case(mem, &AppendOptions::new().durability(durability), true)
}

/// The data after the header of the file at `npy()`.
fn file_data(mem: &MemBackend) -> Vec<u8> {
    contents(mem, &npy())[header_len() as usize..].to_vec()
}

#[track_caller]
fn refused(result: Result<Decision, Error>) -> Error {
    match result {
        Ok(d) => panic!("recovery must refuse; it decided {d:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn says(err: &Error, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
}

// ===========================================================================
// Open (`open_or_recover`): deciding the committed state

/// Deciding the committed state: | no `.npy`, no journal | a new file;
/// created by the first typed append, or at open when the dtype is in the
/// options |
#[test]
fn no_file_no_journal_is_a_new_file() {
    // Without a dtype nothing is created at open, ...
    let mem = MemBackend::new();
    let d = open_case(&mem, &AppendOptions::new(), true).unwrap();
    assert_eq!(d, Decision::default());
    assert!(mem.contents(&npy()).is_none() && mem.contents(&jnl()).is_none());
    // ... but at the first typed append.
    let mut w = AppendOptions::new()
        .row_shape(&[W])
        .open_with(mem.clone(), npy())
        .unwrap();
    assert!(mem.contents(&npy()).is_none());
    w.append(&values(0..1)).unwrap();
    assert_eq!(contents(&mem, &npy()), npy_header(0));
    drop(w);

    // With a dtype, at open: an empty file as np.save writes it.
    let mem = MemBackend::new();
    let d = open_case(&mem, &writer_options(Fsync), true).unwrap();
    assert_eq!(d, Decision::default());
    assert_eq!(contents(&mem, &npy()), npy_header(0));
}

/// Deciding the committed state: | no `.npy`, journal valid, created by its
/// writer, 0 rows committed | the writer died while creating the file:
/// create it from the snapshot |
#[test]
fn no_file_creation_journal_without_commit_creates_the_file_from_its_snapshot() {
    for durability in [Fsync, Process] {
        // The writer created the journal (its creation record or, torn, none
        // at all) and died before the .npy existed.
        for torn_record in [false, true] {
            let mem = MemBackend::new();
            killed(&mem, durability, None, &[], 0);
            mem.remove(&npy()).unwrap();
            if torn_record {
                edit(&mem, &jnl(), |j| tear_slot(j, Slot::A, 0));
            }
            let d = open(&mem, durability).unwrap();
            assert_eq!(
                d,
                Decision {
                    header_rewritten: true,
                    ..journal_kept(0)
                },
                "{durability:?}, torn record {torn_record}"
            );
            assert_eq!(contents(&mem, &npy()), npy_header(0));
        }
    }
}

/// Deciding the committed state: | no `.npy`, journal valid, rows committed
/// | `CommittedDataMissing`, nothing changed |
///
/// Also a journal its writer did not create (it opened an existing file)
/// whose file is gone with no row committed: the row covers only "created
/// by its writer, 0 rows"; such a journal is refused the same way.
#[test]
fn no_file_journal_with_committed_rows_is_committed_data_missing() {
    for durability in [Fsync, Process] {
        let mem = MemBackend::new();
        killed(&mem, durability, None, &[3, 2], 1);
        mem.remove(&npy()).unwrap();
        let err = refused(open(&mem, durability));
        assert!(
            matches!(
                err,
                Error::CommittedDataMissing {
                    committed_rows: 5,
                    actual_len: 0,
                    ..
                }
            ),
            "{err}"
        );
        says(&err, &["accept_loss"]);

        // The journal of a writer that took over an existing file of 0 rows.
        let mem = MemBackend::new();
        killed(&mem, durability, Some(0), &[], 0);
        mem.remove(&npy()).unwrap();
        let err = refused(open(&mem, durability));
        assert!(
            matches!(
                err,
                Error::CommittedDataMissing {
                    committed_rows: 0,
                    actual_len: 0,
                    ..
                }
            ),
            "{err}"
        );
    }
}

/// Deciding the committed state: | no `.npy`, journal unreadable | a torn
/// journal creation: remove it, new file; ... |
#[test]
fn no_file_torn_journal_creation_is_removed_for_a_new_file() {
    let mem = MemBackend::new();
    killed(&mem, Fsync, None, &[], 0);
    let creation = contents(&mem, &jnl());
    for torn in [
        Vec::new(),
        vec![0u8; creation.len()],
        creation[..100].to_vec(),
    ] {
        let mem = MemBackend::new();
        mem.put(&jnl(), &torn);
        let d = open_case(&mem, &AppendOptions::new(), true).unwrap();
        assert_eq!(
            d,
            Decision {
                journal_discarded: true,
                ..Decision::default()
            }
        );
        assert!(mem.contents(&jnl()).is_none() && mem.contents(&npy()).is_none());
        // With a dtype, the new file is created at once.
        mem.put(&jnl(), &torn);
        let d = open_case(&mem, &writer_options(Fsync), true).unwrap();
        assert!(d.journal_discarded && d.found == Found::NoFile && d.rows == 0);
        assert_eq!(contents(&mem, &npy()), npy_header(0));
    }
}

/// Deciding the committed state: | no `.npy`, journal unreadable | ...; any
/// other file there: `ForeignJournal`, nothing changed |
#[test]
fn no_file_foreign_journal_is_refused() {
    for foreign in [garbage(512), saved(3), b"position=17\n".to_vec()] {
        let mem = MemBackend::new();
        mem.put(&jnl(), &foreign);
        let err = refused(open_case(&mem, &writer_options(Fsync), true));
        assert!(matches!(err, Error::ForeignJournal { .. }), "{err}");
        says(&err, &["move_aside_foreign_journal"]);
    }
}

/// Deciding the committed state: | `.npy`, no journal | header must parse
/// and be appendable; size = header's data: clean. Shorter:
/// `ShortFilePolicy` ...; Longer: `TailPolicy` ... |
///
/// The shorter and longer files are the rows of "Files without a journal"
/// below.
#[test]
fn file_without_journal_matching_its_header_is_clean() {
    for rows in [0, 1, 6] {
        let mem = MemBackend::new();
        mem.put(&npy(), &saved(rows));
        let d = open(&mem, Fsync).unwrap();
        assert_eq!(d, clean_kept(rows));
        assert_eq!(contents(&mem, &npy()), saved(rows), "taken over as it is");
        assert!(mem.contents(&jnl()).is_some(), "a journal for the writer");
    }
    // A header that does not parse, or a file numpy reads but this library
    // cannot append to: refused, nothing changed.
    let zero_d = {
        let mut b = header::build(&dtype(), false, &[]).unwrap();
        b.extend([0u8; 8]);
        b
    };
    for (what, bytes) in [
        ("garbage", garbage(300)),
        ("empty", Vec::new()),
        ("a 0-d array", zero_d),
        (
            "rows of no bytes",
            header::build(&dtype(), false, &[3, 0]).unwrap(),
        ),
    ] {
        let mem = MemBackend::new();
        mem.put(&npy(), &bytes);
        let err = refused(open_case(&mem, &AppendOptions::new(), false));
        assert!(
            matches!(err, Error::Corrupt { .. } | Error::Unsupported { .. }),
            "{what}: {err}"
        );
        assert!(mem.contents(&jnl()).is_none(), "{what}: a journal was left");
    }
}

/// Deciding the committed state: | `.npy`, journal identity unreadable | a
/// torn journal creation (identity and slot A are written in one write and
/// synced before any commit): treated as no journal, the journal is
/// replaced; any other file there: `ForeignJournal`, nothing changed |
#[test]
fn file_with_unreadable_journal_identity_is_treated_as_having_no_journal() {
    // A writer of a clean file of 6 rows died creating its journal.
    let mem = MemBackend::new();
    killed(&mem, Fsync, Some(6), &[], 0);
    let creation = contents(&mem, &jnl());
    let mut first_sector_lost = creation.clone();
    first_sector_lost[..journal::SECTOR].fill(0);
    for torn in [
        Vec::new(),
        vec![0u8; creation.len()],
        creation[..100].to_vec(),
        first_sector_lost,
    ] {
        mem.overwrite(&jnl(), &torn);
        let d = open(&mem, Fsync).unwrap();
        assert_eq!(
            d,
            Decision {
                journal_discarded: true,
                ..clean_kept(6)
            }
        );
        assert_eq!(contents(&mem, &npy()), saved(6));
        // Replaced by a journal of this writer's.
        let new = contents(&mem, &jnl());
        assert_eq!(newest(&new).1.rows, 6);
    }
    // Treated as no journal: the policies for files without one apply.
    let mut short = saved(6);
    short.truncate(end_of(4) + 8);
    mem.overwrite(&npy(), &short);
    mem.overwrite(&jnl(), &[]);
    let err = refused(open(&mem, Fsync));
    assert!(matches!(err, Error::FileTooShort { .. }), "{err}");
    let options = AppendOptions::new().short_file_policy(ShortFilePolicy::KeepWholeRows);
    let d = open_case(&mem, &options, false).unwrap();
    assert_eq!(
        d,
        Decision {
            journal_discarded: true,
            missing_rows: 2,
            bytes_cut: 8,
            header_rewritten: true,
            ..clean_kept(4)
        }
    );

    // Any other file there: refused.
    for foreign in [garbage(100), garbage(8192), saved(6)] {
        let mem = MemBackend::new();
        mem.put(&npy(), &saved(6));
        mem.put(&jnl(), &foreign);
        let err = refused(open(&mem, Fsync));
        assert!(matches!(err, Error::ForeignJournal { .. }), "{err}");
    }
}

/// Sets the format version of the journal's identity to `version`, with a
/// valid checksum, as a newer writer would write it.
fn set_identity_version(journal: &mut [u8], version: u32) {
    let header_len = u64::from_le_bytes(journal[24..32].try_into().unwrap()) as usize;
    journal[8..12].copy_from_slice(&version.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&journal[..60]);
    crc.update(&journal[64..64 + header_len]);
    let crc = crc.finalize();
    journal[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Deciding the committed state: | journal with the magic and a format
/// version above ours | written by a newer npy-append (...): `Unsupported`,
/// nothing changed; readers refuse it too |
#[test]
fn journal_of_a_newer_format_is_unsupported() {
    for with_npy in [true, false] {
        let mem = MemBackend::new();
        killed(&mem, Fsync, None, &[3], 2);
        edit(&mem, &jnl(), |j| set_identity_version(j, 2));
        if !with_npy {
            mem.remove(&npy()).unwrap();
        }
        let err = refused(open(&mem, Fsync));
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        says(&err, &["version 2"]);
        if with_npy {
            let read = Reader::open_with(mem.clone(), npy());
            assert!(
                matches!(read, Err(Error::Unsupported { .. })),
                "the reader: {:?}",
                read.map(|r| r.len())
            );
        }
    }
}

/// Sets the format version of the record in `slot` to `version`, with a
/// valid checksum, as a newer writer would write it.
fn set_slot_version(journal: &mut [u8], slot: Slot, version: u8) {
    let range = slot_range(journal, slot);
    let at = range.start;
    let len = Record::encoded_len(&journal[range]).unwrap();
    journal[at + 4] = version;
    let crc = crc32fast::hash(&journal[at + 4..at + len]);
    journal[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Deciding the committed state: | journal with the magic and a format
/// version above ours | ... `Unsupported`, nothing changed |, for the
/// version of a commit record ("Format versions": the journal's slot
/// version is 1 too, and "a reader of any of them refuses a version above
/// its own with `Unsupported` and changes nothing").
///
/// LIBRARY BUG (found by this table): a record of slot version 2 with a
/// valid checksum is skipped like a torn slot, so recovery decides from the
/// older record. With the header at the newer commit's rows the open is
/// refused, but as `JournalDisagrees` saying "another program rewrote the
/// file" (and `accept_loss` would cut the commit); with the header not yet
/// rewritten (a writer killed between its record and its header) the
/// newer writer's committed rows are cut without a word.
#[test]
#[ignore = "library bug: a commit record of a newer slot format version is read as torn, and its rows are cut"]
fn journal_record_of_a_newer_format_is_unsupported() {
    for header_written in [false, true] {
        let mem = MemBackend::new();
        killed(&mem, Fsync, None, &[3, 2], 0);
        let (slot, _) = newest(&contents(&mem, &jnl()));
        edit(&mem, &jnl(), |j| set_slot_version(j, slot, 2));
        if !header_written {
            edit(&mem, &npy(), |b| *b = with_header_rows(b.clone(), 3));
        }
        let err = refused(open(&mem, Fsync));
        assert!(
            matches!(err, Error::Unsupported { .. }),
            "header written: {header_written}: {err}"
        );
    }
}

/// Deciding the committed state: | `.npy`, journal valid | the newest valid
/// slot, checked against the data (see below); cut everything past it;
/// rewrite the header |
#[test]
fn file_with_valid_journal_is_cut_to_its_newest_commit() {
    for durability in [Fsync, Process] {
        let mem = MemBackend::new();
        killed(&mem, durability, None, &[3, 2], 2);
        let d = open(&mem, durability).unwrap();
        assert_eq!(
            d,
            Decision {
                bytes_cut: 2 * RB,
                ..journal_kept(5)
            },
            "{durability:?}"
        );
        assert_eq!(file_data(&mem), data(0..5));

        // A header behind the newest commit (its write not made yet) is
        // rewritten.
        let mem = MemBackend::new();
        killed(&mem, durability, None, &[3, 2], 2);
        edit(&mem, &npy(), |b| *b = with_header_rows(b.clone(), 3));
        let d = open(&mem, durability).unwrap();
        assert_eq!(
            d,
            Decision {
                bytes_cut: 2 * RB,
                header_rewritten: true,
                ..journal_kept(5)
            },
            "{durability:?}"
        );
        assert_eq!(file_data(&mem), data(0..5));
    }
}
