//! Sharded datasets on the real file system: the schema written once and
//! enforced, shards resumed exactly once, complete marks, finalize and its
//! manifest, the reader over all shards, and numpy reading every column
//! file; and finalize and the reader on the in-memory backend, under I/O
//! faults.

mod support;

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Barrier};

use npy_append::Error;
use npy_append::dataset::{
    self, Batch, Column, DatasetReader, ReadFrom, ShardInfo, ShardOptions, finalize,
    finalize_shards, open_shard,
};
use npy_append::storage::{MemBackend, MemOp};

fn columns() -> Vec<Column> {
    vec![
        Column::of::<u64>("id", &[]),
        Column::of::<f32>("feature", &[3]),
    ]
}

fn ids(rows: std::ops::Range<u64>, shard: u64) -> Vec<u64> {
    rows.map(|i| shard * 1_000_000 + i).collect()
}

fn feats(rows: std::ops::Range<u64>, shard: u64) -> Vec<f32> {
    rows.flat_map(|i| (0..3).map(move |j| (shard * 1000 + i * 3 + j) as f32))
        .collect()
}

/// Appends rows `rows` of shard number `shard` at their index.
fn add<B: npy_append::storage::Directories + Clone>(
    w: &mut dataset::ShardWriter<B>,
    shard: u64,
    rows: std::ops::Range<u64>,
) -> u64 {
    let (i, f) = (ids(rows.clone(), shard), feats(rows.clone(), shard));
    w.append_at(
        rows.start,
        &Batch::new().column("id", &i).column("feature", &f),
    )
    .unwrap()
}

/// A shard `name` (number `shard`) holding rows `0..n`, finished or not.
fn build_shard(root: &Path, name: &str, shard: u64, n: u64, finish: bool) {
    let mut w = open_shard(root, name, Some(&columns())).unwrap();
    add(&mut w, shard, 0..n);
    w.commit().unwrap();
    if finish {
        assert_eq!(w.finish().unwrap(), n);
    } else {
        w.close().unwrap();
    }
}

#[test]
fn a_shard_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    let mut w = open_shard(&root, "part-0", Some(&columns())).unwrap();
    assert!(!w.resumed() && !w.is_complete() && w.is_empty());
    assert_eq!(add(&mut w, 0, 0..10), 10);
    w.commit_with_cursor(b"input line 10").unwrap();
    add(&mut w, 0, 10..15); // pending, lost with the writer
    drop(w);

    let mut w = open_shard(&root, "part-0", None).unwrap();
    assert!(w.resumed());
    assert_eq!((w.len(), w.cursor()), (10, &b"input line 10"[..]));
    // A retry replays from an older point: the overlap is compared and
    // skipped, the rest appended.
    assert_eq!(add(&mut w, 0, 4..20), 10);
    assert_eq!(w.commit().unwrap(), 20);
    // The cursor is kept by a commit without one.
    assert_eq!(w.cursor(), b"input line 10");

    // A replay that differs is an error naming the shard and column, and
    // appends nothing.
    let mut bad = feats(15..18, 0);
    bad[4] += 0.5;
    let e = w
        .append_at(
            15,
            &Batch::new()
                .column("id", &ids(15..18, 0))
                .column("feature", &bad),
        )
        .unwrap_err();
    match &e {
        Error::DataDiffers { path, row } => {
            assert_eq!(*row, 16);
            assert!(path.ends_with("part-0/feature.npy"), "{}", path.display());
        }
        other => panic!("{other}"),
    }
    assert_eq!(w.pending_rows(), 0);
    // A gap is refused.
    assert!(matches!(
        w.append_at(
            21,
            &Batch::new()
                .column("id", &ids(21..22, 0))
                .column("feature", &feats(21..22, 0))
        ),
        Err(Error::Gap {
            start_row: 21,
            len: 20,
            ..
        })
    ));
    assert_eq!(w.finish().unwrap(), 20);

    // A complete shard opens, says so, and takes no rows.
    let mut w = open_shard(&root, "part-0", None).unwrap();
    assert!(w.is_complete() && w.resumed());
    assert_eq!((w.len(), w.cursor()), (20, &b"input line 10"[..]));
    let e = w
        .append(
            &Batch::new()
                .column("id", &ids(20..21, 0))
                .column("feature", &feats(20..21, 0)),
        )
        .unwrap_err();
    assert!(e.to_string().contains("is complete"), "{e}");
    assert!(w.commit_with_cursor(b"x").is_err());
    assert_eq!(w.finish().unwrap(), 20);

    let status = dataset::shard_status(&root, "part-0").unwrap().unwrap();
    assert_eq!(
        (status.rows, status.complete, status.cursor.as_slice()),
        (20, true, &b"input line 10"[..])
    );
    assert_eq!(dataset::shard_status(&root, "part-1").unwrap(), None);
}

#[test]
fn batches_are_checked_before_anything_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = open_shard(dir.path(), "s", Some(&columns())).unwrap();
    let i = ids(0..2, 0);
    let f = feats(0..2, 0);
    let f64s = vec![0f64; 6];
    for (batch, want) in [
        (Batch::new().column("id", &i), "no column \"feature\""),
        (
            Batch::new()
                .column("id", &i)
                .column("feature", &f)
                .column("other", &i),
            "not in the dataset",
        ),
        (
            Batch::new()
                .column("id", &i)
                .column("id", &i)
                .column("feature", &f),
            "given twice",
        ),
        (
            Batch::new().column("id", &i).column("feature", &f64s),
            "dtype mismatch",
        ),
        (
            Batch::new().column("id", &i).column("feature", &f[..5]),
            "whole rows",
        ),
        (
            Batch::new().column("id", &i[..1]).column("feature", &f),
            "as many rows",
        ),
    ] {
        let e = w.append(&batch).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    assert_eq!(w.pending_rows(), 0);
    // Raw bytes in schema order.
    let ib: Vec<u8> = i.iter().flat_map(|v| v.to_le_bytes()).collect();
    let fb: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.append_bytes(&[&ib, &fb]).unwrap();
    assert!(w.append_bytes(&[&ib]).is_err());
    // Rows 1..3 given at 1: row 1 is compared and skipped, row 2 appended.
    let bytes_of = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let ib3 = bytes_of(&ids(1..3, 0));
    let fb3: Vec<u8> = feats(1..3, 0)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(w.append_bytes_at(1, &[&ib3, &fb3]).unwrap(), 1);
    // The same rows at another index differ.
    assert!(matches!(
        w.append_bytes_at(0, &[&ib3, &fb3]),
        Err(Error::DataDiffers { row: 0, .. })
    ));
    assert_eq!(w.commit().unwrap(), 3);
    assert_eq!(
        w.commit_with_cursor(&vec![0; npy_append::MAX_CURSOR_LEN])
            .unwrap_err()
            .to_string(),
        Error::CursorTooLong {
            len: npy_append::MAX_CURSOR_LEN,
            max: npy_append::MAX_CURSOR_LEN - 1
        }
        .to_string()
    );
}

#[test]
fn the_schema_is_written_once_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/ds");
    let e = open_shard(&root, "a", None).unwrap_err();
    assert!(e.to_string().contains("no dataset there"), "{e}");
    build_shard(&root, "a", 0, 3, false);
    let schema = dataset::read_schema(&root).unwrap().unwrap();
    assert_eq!(schema.columns, columns());
    let text = std::fs::read_to_string(root.join("schema.json")).unwrap();
    assert!(
        text.contains("\"dtype\": \"<f4\", \"shape\": [3]"),
        "{text}"
    );

    // Another shard with other columns is refused, naming the schema file.
    let other_dtype = [
        Column::of::<u64>("id", &[]),
        Column::of::<f64>("feature", &[3]),
    ];
    let e = open_shard(&root, "b", Some(&other_dtype)).unwrap_err();
    assert!(matches!(e, Error::DtypeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("schema.json"), "{e}");
    let other_shape = [
        Column::of::<u64>("id", &[]),
        Column::of::<f32>("feature", &[4]),
    ];
    assert!(matches!(
        open_shard(&root, "b", Some(&other_shape)),
        Err(Error::ShapeMismatch { .. })
    ));
    let other_names = [Column::of::<u64>("id", &[])];
    assert!(matches!(
        open_shard(&root, "b", Some(&other_names)),
        Err(Error::ShapeMismatch { .. })
    ));
    // Nothing of those was created.
    assert!(!root.join("b").exists());
    // Bad names.
    for bad in ["", ".hidden", "a/b", "-x"] {
        assert!(matches!(
            open_shard(&root, bad, None),
            Err(Error::InvalidArgument { .. })
        ));
    }
    let e = open_shard(
        dir.path().join("bad"),
        "a",
        Some(&[Column::of::<u8>("a/b", &[])]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("column name"), "{e}");
    // A schema file that cannot be understood is refused and left alone.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("schema.json"), b"{\"format\": 1").unwrap();
    let e = open_shard(&broken, "a", Some(&columns())).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert_eq!(
        std::fs::read(broken.join("schema.json")).unwrap(),
        b"{\"format\": 1"
    );
}

#[test]
fn a_process_shard_syncs_nothing_not_even_when_published() {
    // Under Process durability commits, the complete mark and close sync
    // nothing; a writer that dies keeps its commits (the kernel has them);
    // finalize publishes the shard as its writer left it (only the
    // manifest is synced), and syncs an Fsync writer's shard.
    let mem = MemBackend::new();
    let root = Path::new("/ds");
    let process = || {
        ShardOptions::new()
            .columns(&columns())
            .durability(npy_append::Durability::Process)
    };
    let mut w = process().open_with(mem.clone(), root, "a").unwrap();
    let syncs = mem.count(MemOp::Sync);
    add(&mut w, 0, 0..10);
    w.commit_with_cursor(b"10").unwrap();
    add(&mut w, 0, 10..25);
    w.commit_with_cursor(b"25").unwrap();
    add(&mut w, 0, 25..30); // pending, lost with the writer
    assert_eq!(mem.count(MemOp::Sync), syncs, "a Process commit synced");
    drop(w);
    let mut w = process().open_with(mem.clone(), root, "a").unwrap();
    assert_eq!((w.len(), w.cursor()), (25, &b"25"[..]));
    add(&mut w, 0, 20..40);
    let syncs = mem.count(MemOp::Sync);
    assert_eq!(w.finish().unwrap(), 40);
    assert_eq!(mem.count(MemOp::Sync), syncs, "a Process finish synced");
    let manifest = dataset::finalize_with(&mem, root, None).unwrap();
    assert_eq!(manifest.shards[0].rows, 40);
    // The manifest's temporary file only.
    assert_eq!(
        mem.count(MemOp::Sync),
        syncs + 1,
        "finalize synced a Process shard"
    );
    let r = DatasetReader::open_with(mem.clone(), root, ReadFrom::Manifest).unwrap();
    assert_eq!(r.len(), 40);
    // Fsync and Process writers take turns on one shard.
    let mut w = ShardOptions::new()
        .columns(&columns())
        .open_with(mem.clone(), root, "b")
        .unwrap();
    add(&mut w, 1, 0..5);
    w.commit().unwrap();
    drop(w);
    let mut w = process().open_with(mem.clone(), root, "b").unwrap();
    add(&mut w, 1, 5..9);
    w.commit().unwrap();
    drop(w);
    let w = ShardOptions::new()
        .open_with(mem.clone(), root, "b")
        .unwrap();
    assert_eq!(w.len(), 9);
    w.finish().unwrap();
    // An Fsync writer's shard is synced when published: its journal and
    // both columns, and the manifest.
    let syncs = mem.count(MemOp::Sync);
    dataset::finalize_with(&mem, root, None).unwrap();
    assert_eq!(mem.count(MemOp::Sync), syncs + 4);
}

#[test]
fn racing_writers_agree_on_one_schema() {
    // Eight writers create the dataset at once, half of them with another
    // dtype: one schema wins, and exactly the writers that agree with it
    // open their shards. Repeated, since a race may not show every time.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let root = Arc::new(dir.path().join("ds"));
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let (root, barrier) = (Arc::clone(&root), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let cols = if t % 2 == 0 {
                        columns()
                    } else {
                        vec![
                            Column::of::<u64>("id", &[]),
                            Column::of::<f64>("feature", &[3]),
                        ]
                    };
                    barrier.wait();
                    open_shard(&*root, &format!("s{t}"), Some(&cols))
                        .map(|w| w.close().unwrap())
                        .is_ok()
                })
            })
            .collect();
        let ok: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let schema = dataset::read_schema(&*root).unwrap().unwrap();
        let winner_even = schema.columns == columns();
        for (t, ok) in ok.iter().enumerate() {
            assert_eq!(
                *ok,
                (t % 2 == 0) == winner_even,
                "round {round}, writer {t}"
            );
        }
    }
}

#[test]
fn finalize_publishes_complete_shards_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build_shard(root, "rank-10", 10, 4, true);
    build_shard(root, "rank-2", 2, 3, false);
    build_shard(root, "rank-1", 1, 5, true);
    // A directory that is not a shard is ignored.
    std::fs::create_dir(root.join("rank-3")).unwrap();
    match finalize(root).unwrap_err() {
        Error::Incomplete { shards, .. } => assert_eq!(shards, ["rank-2"]),
        other => panic!("{other}"),
    }
    assert!(!root.join("manifest.json").exists());
    // A complete shard takes no rows: finalize reads it without its lock,
    // beside a writer that holds it.
    let w = ShardOptions::new().open(root, "rank-1").unwrap();
    assert!(w.is_complete());
    // Publishing a subset.
    let m = finalize_shards(root, &["rank-10", "rank-1"]).unwrap();
    drop(w);
    assert_eq!(
        m.shards
            .iter()
            .map(|s| (s.name.as_str(), s.rows))
            .collect::<Vec<_>>(),
        [("rank-1", 5), ("rank-10", 4)]
    );
    assert!(finalize_shards(root, &["rank-9"]).is_err());
    assert!(finalize_shards(root, &["rank-1", "rank-1"]).is_err());

    let mut w = open_shard(root, "rank-2", None).unwrap();
    add(&mut w, 2, 3..6);
    w.finish().unwrap();
    let m = finalize(root).unwrap();
    assert_eq!(m.rows(), 15);
    assert_eq!(
        m.shards.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["rank-1", "rank-2", "rank-10"]
    );
    let path = root.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"rows\": 15"), "{text}");
    assert!(
        text.contains("{\"name\": \"rank-2\", \"rows\": 6}"),
        "{text}"
    );
    assert_eq!(dataset::read_manifest(root).unwrap().unwrap(), m);
    // Idempotent: the same manifest, and the file is not rewritten.
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    assert_eq!(finalize(root).unwrap(), m);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()),
        inode
    );
    assert!(!root.join(".manifest.json.tmp").exists());
}

#[test]
fn the_reader_numbers_rows_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Shards of 4, 0, 5 and 3 rows; "b" is empty.
    build_shard(root, "a", 1, 4, true);
    build_shard(root, "b", 2, 0, false);
    build_shard(root, "c", 3, 5, false);
    build_shard(root, "d", 4, 3, true);
    let r = DatasetReader::open(root).unwrap();
    assert!(!r.from_manifest());
    assert_eq!(r.len(), 12);
    assert_eq!(
        r.shards().cloned().collect::<Vec<_>>(),
        [
            ShardInfo {
                name: "a".into(),
                rows: 4,
                complete: true
            },
            ShardInfo {
                name: "b".into(),
                rows: 0,
                complete: false
            },
            ShardInfo {
                name: "c".into(),
                rows: 5,
                complete: false
            },
            ShardInfo {
                name: "d".into(),
                rows: 3,
                complete: true
            },
        ]
    );
    let all_ids: Vec<u64> = [ids(0..4, 1), ids(0..5, 3), ids(0..3, 4)].concat();
    let all_feats: Vec<f32> = [feats(0..4, 1), feats(0..5, 3), feats(0..3, 4)].concat();
    assert_eq!(r.locate(4), Some((2, 0)));
    assert_eq!(r.locate(12), None);
    for (i, &id) in all_ids.iter().enumerate() {
        assert_eq!(r.row_as::<u64>(0, i as u64).unwrap(), &[id]);
        let row = r.row(i as u64).unwrap();
        assert_eq!(row[0], id.to_le_bytes());
    }
    assert!(r.row(12).is_err());
    // A slice inside one shard is borrowed from the mapping; across, owned.
    let inside = r.slice(5..8).unwrap();
    assert!(inside.iter().all(|c| matches!(c, Cow::Borrowed(_))));
    let across = r.slice(2..10).unwrap();
    assert!(across.iter().all(|c| matches!(c, Cow::Owned(_))));
    assert_eq!(
        r.column_slice::<u64>(0, 2..10).unwrap().as_ref(),
        &all_ids[2..10]
    );
    assert_eq!(
        r.column_slice::<f32>(1, 0..12).unwrap().as_ref(),
        &all_feats[..]
    );
    assert!(matches!(
        r.column_slice::<u64>(0, 5..8).unwrap(),
        Cow::Borrowed(_)
    ));
    assert!(r.slice(3..13).is_err());
    assert!(r.column_slice::<f64>(1, 0..1).is_err());
    // Gathers in any order, with repeats.
    let idx = [11u64, 0, 4, 4, 7, 3];
    assert_eq!(
        r.gather_as::<u64>(0, &idx).unwrap(),
        idx.iter().map(|&i| all_ids[i as usize]).collect::<Vec<_>>()
    );
    let g = r.gather(&idx).unwrap();
    let want: Vec<u8> = idx
        .iter()
        .flat_map(|&i| all_feats[i as usize * 3..i as usize * 3 + 3].to_vec())
        .flat_map(f32::to_le_bytes)
        .collect();
    assert_eq!(g[1], want);
    assert!(r.gather(&[12]).is_err());
    let mut small = vec![0u8; 7];
    assert!(r.gather_into(0, &[0], &mut small).is_err());
    // Batches of 5 over shards of 4, 0, 5 and 3 rows.
    let batches: Vec<_> = r.batches(5).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 3);
    let flat: Vec<u8> = batches.iter().flat_map(|b| b[0].to_vec()).collect();
    assert_eq!(
        flat,
        all_ids
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
    );
    assert_eq!(r.batches(100).count(), 1);
}

#[test]
fn refresh_picks_up_commits_shards_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build_shard(root, "a", 1, 2, false);
    let mut r = DatasetReader::open(root).unwrap();
    assert_eq!(r.len(), 2);
    assert!(!r.refresh().unwrap());

    let mut w = open_shard(root, "a", None).unwrap();
    add(&mut w, 1, 2..5);
    // Pending rows are never shown.
    assert!(!r.refresh().unwrap());
    assert_eq!(r.len(), 2);
    let before = r.slice(0..2).unwrap()[0].to_vec();
    w.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.len(), 5);
    assert_eq!(r.slice(0..2).unwrap()[0].as_ref(), before.as_slice());
    w.finish().unwrap();
    build_shard(root, "b", 2, 3, true);
    assert!(r.refresh().unwrap());
    assert_eq!(r.len(), 8);

    // Pinned: the same rows another process saw, whatever came since.
    let pins = r.pinned();
    assert_eq!(pins, [("a".to_owned(), 5), ("b".to_owned(), 3)]);
    build_shard(root, "c", 3, 2, true);
    let p = DatasetReader::open_pinned(root, ReadFrom::Auto, &pins).unwrap();
    assert_eq!(p.len(), 8);
    assert!(DatasetReader::open_pinned(root, ReadFrom::Auto, &[("a".to_owned(), 6)]).is_err());
    assert!(DatasetReader::open_pinned(root, ReadFrom::Auto, &[("zz".to_owned(), 0)]).is_err());

    // Once finalized (here with a subset), the manifest decides.
    finalize_shards(root, &["a", "c"]).unwrap();
    assert!(r.refresh().unwrap());
    assert!(r.from_manifest());
    assert_eq!(r.len(), 7);
    assert_eq!(
        r.shards().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    let live = DatasetReader::open_from(root, ReadFrom::Shards).unwrap();
    assert_eq!((live.len(), live.from_manifest()), (10, false));
    let m = DatasetReader::open_from(root, ReadFrom::Manifest).unwrap();
    assert_eq!(m.len(), 7);
    let empty = tempfile::tempdir().unwrap();
    build_shard(empty.path(), "a", 1, 1, false);
    assert!(DatasetReader::open_from(empty.path(), ReadFrom::Manifest).is_err());
    assert!(DatasetReader::open(empty.path().join("none")).is_err());
}

#[test]
fn the_reader_refuses_a_shard_that_breaks_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build_shard(root, "a", 1, 2, true);
    finalize(root).unwrap();
    let text = std::fs::read_to_string(root.join("manifest.json")).unwrap();
    std::fs::write(
        root.join("manifest.json"),
        text.replace("\"rows\": 2", "\"rows\": 3"),
    )
    .unwrap();
    let e = DatasetReader::open(root).unwrap_err();
    assert!(e.to_string().contains("lists 3 rows of shard a"), "{e}");
}

#[test]
fn numpy_loads_every_column_file() {
    let Some(py) = support::require_numpy("numpy_loads_every_column_file") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build_shard(root, "0", 0, 7, true);
    let mut w = open_shard(root, "1", None).unwrap();
    add(&mut w, 1, 0..4);
    w.commit().unwrap();
    add(&mut w, 1, 4..6); // pending: never seen by numpy
    let script = format!(
        "import numpy as np\n\
         for shard, n in (('0', 7), ('1', 4)):\n\
         \x20   i = np.load('{root}/' + shard + '/id.npy', mmap_mode='r')\n\
         \x20   f = np.load('{root}/' + shard + '/feature.npy', mmap_mode='r')\n\
         \x20   assert i.dtype == np.uint64 and i.shape == (n,), (i.dtype, i.shape)\n\
         \x20   assert f.dtype == np.float32 and f.shape == (n, 3), (f.dtype, f.shape)\n\
         \x20   s = int(shard)\n\
         \x20   assert (i == s * 1000000 + np.arange(n)).all()\n\
         \x20   assert (f.ravel() == s * 1000 + np.arange(n * 3)).all()\n\
         print('ok')\n",
        root = root.display()
    );
    assert_eq!(support::run_python(&py, &script, &[]).trim(), "ok");
    drop(w);
}

#[test]
fn finalize_never_leaves_a_partial_manifest_after_an_io_error() {
    // Every write, sync, rename, create and directory sync of a second
    // finalize fails in turn: each failure is reported, and the manifest is
    // the old one or the new one, whole.
    let build = |mem: &MemBackend, shards: &[(&str, u64)]| {
        let root = Path::new("/ds");
        for &(name, n) in shards {
            let mut w = ShardOptions::new()
                .columns(&columns())
                .open_with(mem.clone(), root, name)
                .unwrap();
            let (i, f) = (ids(0..n, 0), feats(0..n, 0));
            w.append(&Batch::new().column("id", &i).column("feature", &f))
                .unwrap();
            w.finish().unwrap();
        }
    };
    let root = Path::new("/ds");
    let manifest = root.join("manifest.json");
    let mut failures = 0;
    for op in [
        MemOp::Write,
        MemOp::Sync,
        MemOp::Rename,
        MemOp::Create,
        MemOp::SyncDir,
        MemOp::Remove,
    ] {
        for nth in 1..40 {
            let mem = MemBackend::new();
            build(&mem, &[("a", 2), ("b", 3)]);
            let old = dataset::finalize_with(&mem, root, None).unwrap().encode();
            build(&mem, &[("c", 1)]);
            let new_manifest = {
                let probe = MemBackend::new();
                build(&probe, &[("a", 2), ("b", 3), ("c", 1)]);
                dataset::finalize_with(&probe, root, None).unwrap().encode()
            };
            assert_ne!(old, new_manifest);
            mem.fail_at(op, nth);
            let result = dataset::finalize_with(&mem, root, None);
            mem.clear_failure();
            let now = mem.contents(&manifest).unwrap();
            match result {
                Ok(m) => {
                    assert_eq!(m.encode(), new_manifest);
                    assert_eq!(now, new_manifest);
                }
                Err(e) => {
                    failures += 1;
                    assert!(matches!(e, Error::Io { .. }), "{op:?} {nth}: {e}");
                    assert!(now == old || now == new_manifest, "{op:?} {nth}");
                    // A retry publishes.
                    assert_eq!(
                        dataset::finalize_with(&mem, root, None).unwrap().encode(),
                        new_manifest
                    );
                }
            }
        }
    }
    assert!(failures >= 5, "{failures}");
}

#[test]
fn the_reader_and_shard_status_run_in_memory() {
    // The same reader on the in-memory backend: beside a live writer it
    // shows committed rows only; a failed read is an error, never rows.
    let mem = MemBackend::new();
    let root = Path::new("/ds");
    let open = |name: &str| {
        ShardOptions::new()
            .columns(&columns())
            .open_with(mem.clone(), root, name)
            .unwrap()
    };
    let mut a = open("a");
    add(&mut a, 1, 0..4);
    a.commit().unwrap();
    add(&mut a, 1, 4..6); // pending
    let mut b = open("b");
    add(&mut b, 2, 0..3);
    assert_eq!(b.finish().unwrap(), 3);

    let mut r = DatasetReader::open_with(mem.clone(), root, ReadFrom::Auto).unwrap();
    assert!(!r.from_manifest());
    assert_eq!(r.pinned(), [("a".to_owned(), 4), ("b".to_owned(), 3)]);
    let want: Vec<u64> = [ids(0..4, 1), ids(0..3, 2)].concat();
    assert_eq!(r.column_slice::<u64>(0, 0..7).unwrap().as_ref(), &want[..]);
    assert_eq!(
        r.column_slice::<f32>(1, 4..7).unwrap().as_ref(),
        &feats(0..3, 2)[..]
    );
    let status = dataset::shard_status_with(&mem, root, "a")
        .unwrap()
        .unwrap();
    assert_eq!((status.rows, status.complete), (4, false));
    let status = dataset::shard_status_with(&mem, root, "b")
        .unwrap()
        .unwrap();
    assert_eq!((status.rows, status.complete), (3, true));
    assert_eq!(dataset::shard_status_with(&mem, root, "c").unwrap(), None);

    a.commit().unwrap();
    assert!(r.refresh().unwrap());
    assert_eq!(r.len(), 9);
    assert_eq!(a.finish().unwrap(), 6);
    dataset::finalize_with(&mem, root, None).unwrap();
    assert!(r.refresh().unwrap());
    assert!(r.from_manifest());
    assert_eq!(r.pinned(), [("a".to_owned(), 6), ("b".to_owned(), 3)]);

    let mut failed = 0;
    for nth in 1..60 {
        mem.fail_at(MemOp::Read, nth);
        let result = DatasetReader::open_with(mem.clone(), root, ReadFrom::Auto);
        mem.clear_failure();
        match result {
            Ok(r) => assert_eq!(r.pinned(), [("a".to_owned(), 6), ("b".to_owned(), 3)]),
            Err(e) => {
                failed += 1;
                assert!(matches!(e, Error::Io { .. }), "read {nth}: {e}");
            }
        }
    }
    assert!(failed >= 5, "{failed}");
}

#[test]
fn finalize_recovers_a_finish_cut_short_only_when_it_must() {
    // A shard whose finish was killed after its last record, before the
    // header rewrite: the record says complete with 5 rows, the feature
    // column's header still says 3. Finalize must not publish 5 rows that
    // numpy would not see; while another process holds the shard, it
    // counts as not complete and nothing changes; once free, finalize
    // recovers it (the header rewritten) and publishes it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build_shard(root, "a", 1, 5, true);
    let feature = root.join("a").join("feature.npy");
    let mut bytes = std::fs::read(&feature).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
    let at = bytes[..header_end]
        .windows(6)
        .position(|w| w == b"(5, 3)")
        .unwrap();
    bytes[at..at + 6].copy_from_slice(b"(3, 3)");
    std::fs::write(&feature, &bytes).unwrap();
    let untouched = std::fs::read(&feature).unwrap();

    let holder = std::fs::File::open(root.join("a").join("shard.group")).unwrap();
    holder.try_lock().unwrap();
    match finalize(root).unwrap_err() {
        Error::Incomplete { shards, .. } => assert_eq!(shards, ["a"]),
        other => panic!("{other}"),
    }
    assert_eq!(std::fs::read(&feature).unwrap(), untouched);
    assert!(!root.join("manifest.json").exists());
    drop(holder);

    let m = finalize(root).unwrap();
    assert_eq!(m.rows(), 5);
    let fixed = std::fs::read(&feature).unwrap();
    assert_ne!(fixed, untouched);
    assert!(String::from_utf8_lossy(&fixed[..header_end]).contains("(5, 3)"));
    // A clean complete shard is read without its lock: finalize again
    // beside a holder of the lock publishes the same manifest.
    let holder = std::fs::File::open(root.join("a").join("shard.group")).unwrap();
    holder.try_lock().unwrap();
    assert_eq!(finalize(root).unwrap(), m);
}
