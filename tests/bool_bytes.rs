//! One rule for `bool` (`|b1`) bytes other than 0 and 1: every writer
//! refuses them at append (naming the dtype, appending nothing), typed reads refuse them as corruption (a Rust `bool` holding
//! another byte is undefined behaviour), and raw byte reads show them as
//! they are.

use std::path::Path;

use npy_append::dataset::{self, Batch, Column};
use npy_append::storage::MemBackend;
use npy_append::{
    AppendOptions, Error, GroupOptions, GroupReader, MemberSpec, RaggedOptions, RaggedReader,
    Reader,
};

/// Asserts `e` is the refusal of a bool byte, naming the dtype.
fn assert_bool_refusal(e: Error) {
    match &e {
        Error::InvalidArgument { what, .. } => {
            assert!(what.contains("|b1") && what.contains("0x02"), "{e}");
            assert!(what.contains("nothing was appended"), "{e}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn the_appender_refuses_other_bytes_and_appends_nothing() {
    let mem = MemBackend::new();
    let path = Path::new("/mem/b.npy");
    let mut w = AppendOptions::new()
        .dtype("|b1")
        .unwrap()
        .open_with(mem.clone(), path)
        .unwrap();
    assert_bool_refusal(w.append_bytes(&[1, 0, 2]).unwrap_err());
    assert_eq!(w.pending_rows(), 0);
    w.append_bytes(&[1, 0, 1]).unwrap();
    assert_bool_refusal(w.append_bytes(&[0, 2]).unwrap_err());
    assert_bool_refusal(w.append_bytes_at(3, &[2]).unwrap_err());
    assert!(!w.is_poisoned());
    assert_eq!(w.pending_rows(), 3);
    assert_eq!(w.commit().unwrap(), 3);
    w.close().unwrap();
    let r = Reader::open_with(mem, path).unwrap();
    assert_eq!(r.as_slice::<bool>().unwrap(), &[true, false, true]);
}

#[test]
fn typed_reads_refuse_other_bytes_and_raw_reads_show_them() {
    // A file numpy could write with `np.uint8` values viewed as bool.
    let mem = MemBackend::new();
    let path = Path::new("/mem/foreign.npy");
    let dtype = npy_append::format::dtype::Dtype::parse("|b1").unwrap();
    let mut bytes = npy_append::format::header::build(&dtype, false, &[3]).unwrap();
    let data_at = bytes.len() as u64;
    bytes.extend([1, 7, 0]);
    mem.put(path, &bytes);
    let r = Reader::open_with(mem.clone(), path).unwrap();
    assert_eq!(r.bytes(0..3).unwrap(), &[1, 7, 0]);
    assert_eq!(r.rows_as::<bool>(0..1).unwrap(), &[true]);
    match r.as_slice::<bool>() {
        Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, Some(data_at + 1)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Appending to it takes 0 and 1 only; the foreign byte stays as it is.
    let mut w = AppendOptions::new().open_with(mem.clone(), path).unwrap();
    assert_bool_refusal(w.append_bytes(&[2]).unwrap_err());
    w.append::<bool>(&[false]).unwrap();
    w.close().unwrap();
    let r = Reader::open_with(mem, path).unwrap();
    assert_eq!(r.bytes(0..4).unwrap(), &[1, 7, 0, 0]);
}

#[test]
fn group_members_and_group_readers_follow_the_rule() {
    let mem = MemBackend::new();
    let path = Path::new("/mem/g/g.group");
    let mut g = GroupOptions::new()
        .member(MemberSpec::of::<u32>("a.npy", &[]))
        .member(MemberSpec::new("flags.npy", "|b1", &[2]).unwrap())
        .open_with(mem.clone(), path)
        .unwrap();
    g.append::<u32>(0, &[5]).unwrap();
    assert_bool_refusal(g.append_bytes(1, &[1, 2]).unwrap_err());
    assert_bool_refusal(g.append_bytes_at(1, 0, &[2, 0]).unwrap_err());
    assert!(!g.is_poisoned());
    assert_eq!(g.pending_rows(1), 0);
    g.append_bytes(1, &[1, 0]).unwrap();
    g.commit().unwrap();
    g.close().unwrap();
    let r = GroupReader::open_with(mem.clone(), path).unwrap();
    assert_eq!(r.as_slice::<bool>(1).unwrap(), &[true, false]);
    // A byte another program put there: typed reads refuse it, raw bytes show it.
    let member = Path::new("/mem/g/flags.npy");
    let mut bytes = mem.contents(member).unwrap();
    let last = bytes.len() - 1;
    bytes[last] = 9;
    mem.put(member, &bytes);
    let r = GroupReader::open_with(mem, path).unwrap();
    assert!(matches!(r.as_slice::<bool>(1), Err(Error::Corrupt { .. })));
    assert_eq!(r.bytes(1, 0..1).unwrap(), &[1, 9]);
}

#[test]
fn ragged_values_follow_the_rule() {
    let mem = MemBackend::new();
    let path = Path::new("/mem/r/r.group");
    let mut w = RaggedOptions::new("|b1", &[])
        .unwrap()
        .open_with(mem.clone(), path)
        .unwrap();
    w.append_batch_bytes(&[1, 1, 0], &[2, 1]).unwrap();
    assert_bool_refusal(w.append_batch_bytes(&[1, 2], &[2]).unwrap_err());
    assert_eq!(w.pending_sequences(), 2);
    assert_eq!(w.commit().unwrap(), 2);
    w.close().unwrap();
    let r = RaggedReader::open_with(mem, path, "values.npy", "offsets.npy").unwrap();
    assert_eq!(r.get::<bool>(0).unwrap(), &[true, true]);
    assert_eq!(r.get::<bool>(1).unwrap(), &[false]);
}

#[test]
fn a_shard_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    let columns = vec![
        Column::of::<u64>("id", &[]),
        Column::with_descr("ok", "|b1", &[]).unwrap(),
    ];
    let mut w = dataset::open_shard(&root, "s0", Some(&columns)).unwrap();
    let ids = 1u64.to_ne_bytes();
    let e = w.append_bytes(&[&ids, &[2]]).unwrap_err();
    assert_bool_refusal(e);
    // The id column was not appended to either: the columns stay in step.
    assert_eq!(w.pending_rows(), 0);
    let e = w
        .append(&Batch::new().column("id", &[1u64]).column_bytes("ok", &[3]))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    w.append(&Batch::new().column("id", &[1u64]).column("ok", &[true]))
        .unwrap();
    assert_eq!(w.commit().unwrap(), 1);
    w.close().unwrap();
    let r = dataset::DatasetReader::open(&root).unwrap();
    assert_eq!(r.len(), 1);
    let reader = r.shard_reader(0).unwrap();
    assert_eq!(reader.rows(0), 1);
    assert_eq!(reader.rows(1), 1);
}
