//! Salvaging a file without a journal whose data does not match its
//! header (`ShortFilePolicy`, `TailPolicy`): a file cut short keeps its
//! whole rows, or a partial last row completed with zeros, and the report
//! says what was cut, zero-filled and lost; the default refuses with
//! `FileTooShort` and changes nothing; a journal that commits rows the file
//! lacks is never overruled. Every crash state of a salvage recovers to the
//! same file (the zeros are durable before the journal that counts them).

mod crashsim;

use std::path::PathBuf;

use crashsim::{Fate, Image, Model, Rng, SectorFate, SimBackend};
use npy_append::format::header;
use npy_append::storage::MemBackend;
use npy_append::{
    AppendOptions, Dtype, Error, Found, RecoveryReport, ShortFilePolicy, TailPolicy, journal_path,
};

/// Rows of the saved files: 3 values of `<i4` (12 bytes) in C order; in
/// Fortran order a (2, 3, N) array (24-byte slices).
const ROWS: u64 = 6;

fn npy() -> PathBuf {
    PathBuf::from("/mem/s.npy")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 37 + 11) as u8).collect()
}

/// A file numpy would save: `ROWS` rows, then its data cut or extended by
/// `change` bytes. Returns the bytes and the row size.
fn file(fortran: bool, change: i64) -> (Vec<u8>, u64) {
    let dtype = Dtype::parse_descr("'<i4'").unwrap();
    let (shape, row_bytes) = if fortran {
        (vec![2, 3, ROWS], 24)
    } else {
        (vec![ROWS, 3], 12)
    };
    let mut bytes = header::build(&dtype, fortran, &shape).unwrap();
    let len = (ROWS * row_bytes) as i64 + change;
    bytes.extend(data(usize::try_from(len).unwrap()));
    (bytes, row_bytes)
}

fn header_of(bytes: &[u8]) -> header::Header {
    header::parse(&bytes[..header::parse_prefix(bytes).unwrap().1 as usize]).unwrap()
}

/// Opens `bytes` in memory with `options` and closes it: the report and the
/// file left.
fn salvage(bytes: &[u8], options: AppendOptions) -> Result<(RecoveryReport, Vec<u8>), Error> {
    let backend = MemBackend::new();
    backend.put(&npy(), bytes);
    let outcome = options.recover_with(backend.clone(), npy());
    assert_eq!(backend.contents(&journal_path(&npy())), None);
    match outcome {
        Ok(outcome) => Ok((outcome.report, backend.contents(&npy()).unwrap())),
        Err(e) => {
            assert_eq!(
                backend.contents(&npy()).unwrap(),
                bytes,
                "a refusal changed the file"
            );
            Err(e)
        }
    }
}

fn keep() -> AppendOptions {
    AppendOptions::new().short_file_policy(ShortFilePolicy::KeepWholeRows)
}

fn zero_fill() -> AppendOptions {
    AppendOptions::new().short_file_policy(ShortFilePolicy::ZeroFillLastRow)
}

#[test]
fn a_short_file_is_refused_by_default_with_the_ways_out() {
    for fortran in [false, true] {
        let (bytes, row_bytes) = file(fortran, -5);
        let err = salvage(&bytes, AppendOptions::new()).unwrap_err();
        let Error::FileTooShort {
            header_rows,
            needed_len,
            actual_len,
            whole_rows,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (*header_rows, *needed_len, *actual_len, *whole_rows),
            (ROWS, bytes.len() as u64 + 5, bytes.len() as u64, ROWS - 1),
            "row of {row_bytes} bytes"
        );
        let text = err.to_string();
        assert!(
            text.contains("ShortFilePolicy::KeepWholeRows")
                && text.contains("ShortFilePolicy::ZeroFillLastRow")
                && !text.contains("journal"),
            "{text}"
        );
    }
}

#[test]
fn keep_whole_rows_cuts_a_partial_row_and_rewrites_the_header() {
    for fortran in [false, true] {
        let row_bytes = if fortran { 24 } else { 12 };
        // Into the last row, two whole rows, into the second row, every row.
        for cut in [5, 2 * row_bytes, 4 * row_bytes + 7, ROWS * row_bytes] {
            let (bytes, _) = file(fortran, -(cut as i64));
            let (report, out) = salvage(&bytes, keep()).unwrap();
            let kept = ROWS - cut.div_ceil(row_bytes);
            let change = cut;
            let header_len = header_of(&bytes).header_len;
            let partial = (bytes.len() as u64 - header_len) % row_bytes;
            assert_eq!(report.found, Found::Clean);
            assert_eq!(
                (
                    report.committed_rows,
                    report.missing_rows,
                    report.bytes_cut,
                    report.zero_filled_bytes
                ),
                (kept, ROWS - kept, partial, 0),
                "fortran {fortran}, {change} bytes cut"
            );
            assert!(report.header_rewritten && report.changed_file());
            let h = header_of(&out);
            assert_eq!(h.growth_len(), Some(kept));
            assert_eq!(h.fortran_order, fortran);
            assert_eq!(h.header_len, header_len, "the header keeps its length");
            assert_eq!(out.len() as u64, header_len + kept * row_bytes);
            assert_eq!(
                out[header_len as usize..],
                bytes[header_len as usize..out.len()]
            );
        }
    }
}

#[test]
fn zero_fill_completes_the_last_row() {
    for fortran in [false, true] {
        let (bytes, row_bytes) = file(fortran, -5);
        let (report, out) = salvage(&bytes, zero_fill()).unwrap();
        assert_eq!(
            (
                report.committed_rows,
                report.missing_rows,
                report.bytes_cut,
                report.zero_filled_bytes
            ),
            (ROWS, 0, 0, 5)
        );
        // The header already counts every row: only the zeros are new.
        assert!(!report.header_rewritten && report.changed_file());
        assert_eq!(out.len(), bytes.len() + 5);
        assert_eq!(out[..bytes.len()], bytes[..]);
        assert_eq!(out[bytes.len()..], [0; 5]);

        let (bytes, _) = file(fortran, -(row_bytes as i64) - 7);
        let (report, out) = salvage(&bytes, zero_fill()).unwrap();
        assert_eq!(
            (
                report.committed_rows,
                report.missing_rows,
                report.zero_filled_bytes
            ),
            (ROWS - 1, 1, 7)
        );
        assert!(report.header_rewritten);
        assert_eq!(header_of(&out).growth_len(), Some(ROWS - 1));
        assert_eq!(out[bytes.len()..], [0; 7]);

        // Whole rows only: nothing to fill.
        let (bytes, _) = file(fortran, -2 * row_bytes as i64);
        let (report, out) = salvage(&bytes, zero_fill()).unwrap();
        assert_eq!(
            (report.committed_rows, report.zero_filled_bytes),
            (ROWS - 2, 0)
        );
        assert_eq!(out.len(), bytes.len());
    }
}

#[test]
fn a_partial_row_past_the_header_is_adopted_zero_filled() {
    let (bytes, _) = file(false, 12 + 5);
    let options = AppendOptions::new().tail_policy(TailPolicy::AdoptZeroFillLastRow);
    let (report, out) = salvage(&bytes, options).unwrap();
    assert_eq!(
        (
            report.committed_rows,
            report.adopted_rows,
            report.zero_filled_bytes,
            report.bytes_cut
        ),
        (ROWS + 2, 2, 7, 0)
    );
    assert_eq!(header_of(&out).growth_len(), Some(ROWS + 2));
    assert_eq!(out[bytes.len()..], [0; 7]);
    // The short-file policy does not touch a long file, nor the tail policy
    // a short one.
    assert!(matches!(
        salvage(&bytes, zero_fill()),
        Err(Error::TrailingBytes { .. })
    ));
    let (short, _) = file(false, -5);
    let options = AppendOptions::new().tail_policy(TailPolicy::AdoptZeroFillLastRow);
    assert!(matches!(
        salvage(&short, options),
        Err(Error::FileTooShort { .. })
    ));
}

#[test]
fn a_header_without_room_is_rewritten_then_salvaged() {
    // numpy < 1.24's header, aligned to 16 bytes: no room to grow the row
    // count.
    let text = b"{'descr': '<i4', 'fortran_order': False, 'shape': (6, 3), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 80 - 10 - text.len() - 1;
    bytes.extend(((text.len() + pad + 1) as u16).to_le_bytes());
    bytes.extend(text);
    bytes.extend(std::iter::repeat_n(b' ', pad));
    bytes.push(b'\n');
    assert_eq!(bytes.len(), 80);
    bytes.extend(data(12 * 4 + 3));
    assert!(matches!(
        salvage(&bytes, AppendOptions::new()),
        Err(Error::FileTooShort { whole_rows: 4, .. })
    ));
    let (report, out) = salvage(&bytes, keep()).unwrap();
    assert!(report.file_rewritten);
    assert_eq!((report.committed_rows, report.missing_rows), (4, 2));
    let h = header_of(&out);
    assert_eq!((h.growth_len(), h.header_len), (Some(4), 128));
    assert_eq!(out[128..], bytes[80..80 + 48]);
}

#[test]
fn a_journal_that_commits_the_missing_rows_is_never_overruled() {
    let backend = MemBackend::new();
    let mut w = AppendOptions::new()
        .dtype("<i4")
        .unwrap()
        .row_shape(&[3])
        .open_with(backend.clone(), npy())
        .unwrap();
    w.append(&[1i32; 12]).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut bytes = backend.contents(&npy()).unwrap();
    bytes.truncate(bytes.len() - 5);
    // Cut in place (the same file, as a disk losing synced data leaves it).
    backend.overwrite(&npy(), &bytes);
    let journal = backend.contents(&journal_path(&npy()));
    for options in [keep(), zero_fill()] {
        assert!(matches!(
            options.recover_with(backend.clone(), npy()),
            Err(Error::CommittedDataMissing {
                committed_rows: 4,
                ..
            })
        ));
        assert_eq!(backend.contents(&npy()).unwrap(), bytes);
        assert_eq!(backend.contents(&journal_path(&npy())), journal);
    }
}

/// Recovers `image` with `options` on the crash simulator: the files left,
/// or the error, after checking that an error changed nothing.
fn recover_image(image: &Image, options: &AppendOptions) -> Result<Image, Error> {
    let sim = SimBackend::from_image(image);
    match options.recover_with(sim.clone(), npy()) {
        Ok(_) => Ok(sim.current()),
        Err(e) => {
            assert_eq!(&sim.current(), image, "a refusal changed the files: {e}");
            Err(e)
        }
    }
}

/// Crash images of a salvage checked, of them those whose recovery
/// refused, and those whose recovery kept only the header's rows.
#[derive(Debug, Default)]
struct Counts {
    images: usize,
    refused: usize,
    header_rows: usize,
}

/// Every crash state of a salvage with `options` (every prefix of its
/// operations, every surviving subset and torn write): recovering again
/// with the same options gives the file the uncrashed salvage gave, or,
/// only when the journal's creation was torn with garbage (not provably
/// this library's creation), refuses and changes nothing; recovering with
/// the default options gives the same file or refuses and changes nothing.
/// A refused image holds the original file (perhaps with the zeros of its
/// last row): nothing is lost. One exception: when trailing rows are
/// adopted and the journal's creation was torn with garbage, recovery keeps
/// the header's rows, cutting the rows being adopted (the journal's
/// snapshot that names them cannot be shown to be the creation's).
fn check_salvage_crashes(bytes: &[u8], options: &AppendOptions, counts: &mut Counts) {
    let initial = Image::from([(npy(), bytes.to_vec())]);
    let sim = SimBackend::from_image(&initial);
    options.recover_with(sim.clone(), npy()).unwrap();
    let want = sim.current();
    let header = header_of(bytes);
    let adopting = bytes.len() as u64 > header.header_len + header.data_len().unwrap();
    let header_only = recover_image(
        &initial,
        &AppendOptions::new().tail_policy(TailPolicy::CutToHeader),
    )
    .ok();
    let trace = sim.trace();
    let mut rng = Rng::new(7);
    for k in 0..=trace.len() {
        let model = Model::at(&initial, &trace, k);
        for fates in model.choices(&mut rng, 10, 40, 4) {
            let image = model.build(&fates, k as u64);
            counts.images += 1;
            let why = || format!("after {k} of {} operations: {fates:?}", trace.len());
            let original = || {
                let npy_bytes = &image[&npy()];
                npy_bytes.starts_with(bytes) && npy_bytes[bytes.len()..].iter().all(|&b| b == 0)
            };
            let torn_garbage = fates
                .iter()
                .any(|f| matches!(f, Fate::Torn(s) if s.contains(&SectorFate::Garbage)));
            for (default, options) in [(false, options), (true, &AppendOptions::new())] {
                match recover_image(&image, options) {
                    Ok(done) if done == want => {}
                    Ok(done) if adopting && torn_garbage && Some(&done) == header_only.as_ref() => {
                        counts.header_rows += 1;
                    }
                    Ok(_) => panic!("default options {default}, {}: another file", why()),
                    Err(e) => {
                        assert!(
                            (default || torn_garbage) && original(),
                            "default options {default}, {}: {e}",
                            why()
                        );
                        counts.refused += usize::from(!default);
                    }
                }
            }
        }
    }
}

#[test]
fn every_crash_state_of_a_salvage_recovers_the_same_file() {
    let mut counts = Counts::default();
    for fortran in [false, true] {
        let (bytes, row_bytes) = file(fortran, -5);
        check_salvage_crashes(&bytes, &keep(), &mut counts);
        check_salvage_crashes(&bytes, &zero_fill(), &mut counts);
        let (bytes, _) = file(fortran, -(row_bytes as i64) - 5);
        check_salvage_crashes(&bytes, &zero_fill(), &mut counts);
        let (bytes, _) = file(fortran, 2 * row_bytes as i64 + 3);
        let adopt = AppendOptions::new().tail_policy(TailPolicy::AdoptZeroFillLastRow);
        check_salvage_crashes(&bytes, &adopt, &mut counts);
    }
    println!(
        "salvage crash states: {} images; recovering with the salvage's options: {} refused with \
         nothing changed (a journal creation torn with garbage); recoveries that kept the \
         header's rows of an adoption torn so: {}; every other recovery gave the same file",
        counts.images, counts.refused, counts.header_rows
    );
    assert!(
        counts.images > 100 && counts.refused * 10 < counts.images,
        "{counts:?}"
    );
}

#[test]
fn preview_equals_salvage() {
    for change in [-5, -12, -17, -72, 0, 5, 12, 29] {
        let (bytes, _) = file(false, change);
        for options in [
            AppendOptions::new(),
            keep(),
            zero_fill(),
            AppendOptions::new().tail_policy(TailPolicy::AdoptZeroFillLastRow),
            AppendOptions::new().tail_policy(TailPolicy::CutToHeader),
        ] {
            let backend = MemBackend::new();
            backend.put(&npy(), &bytes);
            let preview = options.preview_recovery_with(&backend, npy());
            assert_eq!(backend.contents(&npy()).unwrap(), bytes);
            let real = options.recover_with(backend.clone(), npy());
            match (preview, real) {
                (Ok(p), Ok(r)) => assert_eq!(p, r, "change {change}, {options:?}"),
                (Err(p), Err(r)) => assert_eq!(p.to_string(), r.to_string()),
                (p, r) => panic!("change {change}, {options:?}: preview {p:?}, real {r:?}"),
            }
        }
    }
}
