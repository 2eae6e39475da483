//! Early writeback: writers whose every commit syncs the rows (Fsync
//! appenders, groups) hand the rows to the device as they write them, in
//! steps of 1 MiB; Process appenders do not; the hint's failure changes
//! nothing. Counted on the memory backend, whose `MemOp::Writeback` counts
//! the hints (`docs/design.md`, "Commit").

use std::path::Path;

use npy_append::storage::{MemBackend, MemOp};
use npy_append::{AppendOptions, Durability, GroupOptions, MemberSpec};

const MIB: usize = 1 << 20;

/// Hints for `bytes` written past a header in one go: one per whole step
/// of 1 MiB handed over while writing, the rest left to the commit's sync.
/// Where the steps fall depends on the header's length and the write
/// chunks, so the last whole step may be left to the sync too.
fn assert_steps(hints: u64, bytes: usize) {
    let steps = (bytes / MIB) as u64;
    assert!(
        (steps.saturating_sub(1)..=steps).contains(&hints) && hints > 0,
        "{hints} hints for {bytes} bytes"
    );
}

fn appender_hints(durability: Durability, appends: &[usize]) -> u64 {
    let mem = MemBackend::new();
    let mut a = AppendOptions::new()
        .durability(durability)
        .open_with(mem.clone(), Path::new("/mem/a.npy"))
        .unwrap();
    for &bytes in appends {
        a.append(&vec![7u8; bytes]).unwrap();
        a.commit().unwrap();
    }
    a.close().unwrap();
    mem.count(MemOp::Writeback)
}

#[test]
fn an_fsync_appender_hands_large_appends_to_the_device_in_steps() {
    // 5.5 MiB in one append: the whole steps are handed over as they are
    // written; the last part is left to the commit's sync.
    assert_steps(
        appender_hints(Durability::Fsync, &[5 * MIB + MIB / 2]),
        5 * MIB + MIB / 2,
    );
    // A commit starts the counting again: 0.75 MiB + 0.75 MiB never make a
    // step on their own.
    assert_eq!(
        appender_hints(Durability::Fsync, &[3 * MIB / 4, 3 * MIB / 4]),
        0
    );
}

#[test]
fn small_commits_give_no_hint() {
    let commits = vec![8; 1000];
    assert_eq!(appender_hints(Durability::Fsync, &commits), 0);
}

#[test]
fn a_process_appender_gives_no_hint() {
    assert_eq!(appender_hints(Durability::Process, &[5 * MIB + MIB / 2]), 0);
}

#[test]
fn a_group_hands_every_members_rows_to_the_device() {
    let mem = MemBackend::new();
    let mut g = GroupOptions::new()
        .member(MemberSpec::of::<u8>("x.npy", &[]))
        .member(MemberSpec::of::<u8>("y.npy", &[16]))
        .open_with(mem.clone(), Path::new("/mem/g/data.group"))
        .unwrap();
    g.append(0, &vec![1u8; 3 * MIB]).unwrap();
    g.append(1, &vec![2u8; 2 * MIB]).unwrap();
    g.commit().unwrap();
    let hints = mem.count(MemOp::Writeback);
    assert!(
        (3..=5).contains(&hints),
        "{hints} hints for 3 + 2 MiB in two members"
    );
    g.close().unwrap();
}

#[test]
fn a_failed_hint_fails_nothing() {
    let mem = MemBackend::new();
    let path = Path::new("/mem/a.npy");
    let mut a = AppendOptions::new().open_with(mem.clone(), path).unwrap();
    mem.fail_at(MemOp::Writeback, 1);
    a.append(&vec![3u8; 3 * MIB]).unwrap();
    assert_eq!(a.commit().unwrap(), 3 * MIB as u64);
    assert_steps(mem.count(MemOp::Writeback), 3 * MIB);
    assert_eq!(a.close().unwrap(), 3 * MIB as u64);
    let bytes = mem.contents(path).unwrap();
    assert!(bytes.ends_with(&[3u8; 4096]) && bytes.len() > 3 * MIB);
}
