//! Large appends are written in chunks that end on 128 KiB boundaries of the
//! file, each checksummed after its write (`src/write/data_file.rs`). An
//! append that starts mid-chunk and spans several chunks must commit rows
//! whose checksum recovery accepts after a crash, and a chunk that fails to
//! write must leave the previous commit, under both durabilities.

use std::path::Path;

use npy_append::storage::{MemBackend, MemOp};
use npy_append::{AppendOptions, Durability, Error};

/// Bytes of the large append: from offset 128 + 1,000, it ends three
/// chunks later, 1,905 bytes into a fifth.
const LARGE: usize = 3 * (128 << 10) + 777;

fn rows(start: usize, n: usize) -> Vec<u8> {
    (start..start + n).map(|i| (i % 251) as u8).collect()
}

fn path() -> &'static Path {
    Path::new("/mem/a.npy")
}

#[test]
fn a_large_append_across_chunks_recovers_after_a_crash() {
    for durability in [Durability::Fsync, Durability::Process] {
        let mem = MemBackend::new();
        let options = AppendOptions::new().durability(durability);
        let mut a = options.clone().open_with(mem.clone(), path()).unwrap();
        a.append(&rows(0, 1000)).unwrap();
        a.commit().unwrap();
        a.append(&rows(1000, LARGE)).unwrap();
        assert_eq!(a.commit().unwrap(), (1000 + LARGE) as u64);
        // The writer dies: recovery checks the newest commit's checksum.
        drop(a);
        let a = options.open_with(mem.clone(), path()).unwrap();
        assert_eq!(a.len(), (1000 + LARGE) as u64, "{durability:?}");
        assert_eq!(a.close().unwrap(), (1000 + LARGE) as u64);
        let bytes = mem.contents(path()).unwrap();
        assert!(bytes.ends_with(&rows(0, 1000 + LARGE)), "{durability:?}");
    }
}

#[test]
fn a_failed_chunk_leaves_the_previous_commit() {
    for durability in [Durability::Fsync, Durability::Process] {
        let mem = MemBackend::new();
        let options = AppendOptions::new().durability(durability);
        let mut a = options.clone().open_with(mem.clone(), path()).unwrap();
        a.append(&rows(0, 1000)).unwrap();
        a.commit().unwrap();
        // The second write from now on, the large append's second chunk
        // (the rows are buffered, and written at the commit), fails.
        mem.fail_at(MemOp::Write, 2);
        a.append(&rows(1000, LARGE)).unwrap();
        let err = a.commit().unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(a.is_poisoned());
        mem.clear_failure();
        drop(a);
        let a = options.open_with(mem.clone(), path()).unwrap();
        assert_eq!(a.len(), 1000, "{durability:?}");
        assert_eq!(a.close().unwrap(), 1000);
        let bytes = mem.contents(path()).unwrap();
        assert!(bytes.ends_with(&rows(0, 1000)), "{durability:?}");
    }
}
