//! `npy-append info` and `verify` of an append group's journal: the
//! members, the state and what recovery would do (planned by the same code
//! the group's writer runs), read-only, in text and JSON.

use std::path::Path;
use std::process::Command;

use npy_append::{GroupOptions, GroupStatus, MemberRecovery, MemberSpec};

const BIN: &str = env!("CARGO_BIN_EXE_npy-append");

/// Exit code and stdout of the tool with `args`.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let code = out.status.code().unwrap();
    assert!(
        matches!(code, 0..=2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn options() -> GroupOptions {
    GroupOptions::new()
        .member(MemberSpec::of::<u32>("a.npy", &[]))
        .member(MemberSpec::of::<f32>("b.npy", &[2]))
        .buffer_bytes(1)
}

/// Every file of the group's directory with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn info_and_verify_read_a_group_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.group");
    let p = path.to_str().unwrap();
    let mut g = options().open(&path).unwrap();
    g.append::<u32>(0, &[1, 2]).unwrap();
    g.append::<f32>(1, &[0.0; 4]).unwrap();
    g.commit().unwrap();
    g.close().unwrap();

    let (code, out) = run(&["verify", p]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("closed cleanly") && out.contains("a.npy 2, b.npy 2"),
        "{out}"
    );
    let (code, out) = run(&["info", p]);
    assert_eq!(code, 0);
    assert!(out.contains("state           clean"), "{out}");
    assert!(out.contains("writer          finished"), "{out}");
    assert!(
        out.contains("member b.npy    dtype '<f4', rows of shape (2,), 2 committed rows"),
        "{out}"
    );

    // A writer that died with uncommitted rows in a member.
    let mut g = options().open(&path).unwrap();
    g.append::<u32>(0, &[3]).unwrap();
    drop(g);
    let before = snapshot(dir.path());
    let (code, out) = run(&["verify", p]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("needs recovery") && out.contains("did not close"),
        "{out}"
    );
    assert!(out.contains("a.npy: cut 4 bytes"), "{out}");
    let (code, json) = run(&["info", "--json", p]);
    assert_eq!(code, 0);
    for want in [
        r#""kind": "group""#,
        r#""state": "needs-recovery""#,
        r#""writer": "died""#,
        r#""closed": false"#,
        r#""action": "changes", "bytes_cut": 4"#,
        r#""name": "b.npy""#,
    ] {
        assert!(json.contains(want), "{want} not in {json}");
    }
    // Read-only: nothing changed.
    assert_eq!(snapshot(dir.path()), before);

    // What the tool said is what the writer's open does.
    let status = GroupStatus::read(&path).unwrap();
    let planned: Vec<_> = status.members.iter().map(|m| m.recovery.clone()).collect();
    let g = options().open(&path).unwrap();
    assert_eq!(g.bytes_cut(), 4);
    assert!(matches!(
        planned[0],
        MemberRecovery::Changes { bytes_cut: 4, .. }
    ));
    assert_eq!(planned[1], MemberRecovery::Nothing);
    g.close().unwrap();
    assert_eq!(run(&["verify", p]).0, 0);

    // A member another program rewrote: recovery refuses, verify says so.
    let b = dir.path().join("b.npy");
    let mut bytes = std::fs::read(&b).unwrap();
    bytes.truncate(bytes.len() - 4);
    std::fs::write(&b, &bytes).unwrap();
    let (code, out) = run(&["verify", p]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("inconsistent") && out.contains("b.npy"),
        "{out}"
    );
    let (_, json) = run(&["info", "--json", p]);
    assert!(json.contains(r#""action": "refuses""#), "{json}");
}

/// `npy-append recover` of a group journal: a Process group after a power
/// loss that kept only part of its newest commit falls back, every member
/// alike (the dry run says so first and changes nothing); a header that
/// claims rows the journal does not commit is refused, nothing changed,
/// until `--accept-loss`.
#[test]
fn recover_brings_a_process_group_back_after_a_power_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.group");
    let p = path.to_str().unwrap();
    let process = || options().durability(npy_append::Durability::Process);
    let mut g = process().open(&path).unwrap();
    g.append::<u32>(0, &[1, 2]).unwrap();
    g.append::<f32>(1, &[0.5; 4]).unwrap();
    g.commit().unwrap();
    g.append::<u32>(0, &[3, 4, 5]).unwrap();
    g.append::<f32>(1, &[1.5; 6]).unwrap();
    g.commit().unwrap();
    drop(g);
    // The power loss kept a.npy's header and one row of the newest commit.
    let a = dir.path().join("a.npy");
    let bytes = std::fs::read(&a).unwrap();
    std::fs::write(&a, &bytes[..bytes.len() - 8]).unwrap();
    let before = snapshot(dir.path());
    let (code, out) = run(&["verify", p]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("a.npy 2, b.npy 2") && out.contains("drop the newest commit's last 3 rows"),
        "{out}"
    );
    let (code, out) = run(&["recover", "--dry-run", p]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("dry run: recovery would keep a.npy 2, b.npy 2"),
        "{out}"
    );
    let (code, json) = run(&["recover", "--dry-run", "--json", p]);
    assert_eq!(code, 0, "{json}");
    assert!(
        json.contains(r#""rows_dropped": 3"#) && json.contains(r#""dry_run": true"#),
        "{json}"
    );
    assert_eq!(snapshot(dir.path()), before, "a dry run changed files");
    let (code, out) = run(&["recover", p]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("recovered: kept a.npy 2 (dropped 3), b.npy 2 (dropped 3)"),
        "{out}"
    );
    let g = options().open(&path).unwrap();
    assert_eq!(g.member_rows(), [2, 2]);
    assert_eq!(g.dropped_rows(), [0, 0]);
    g.close().unwrap();
    assert_eq!(
        npy_append::Reader::open(&a)
            .unwrap()
            .as_slice::<u32>()
            .unwrap(),
        [1, 2]
    );

    // The group journal as it was before a commit, beside the members after
    // it: their headers claim rows the journal does not commit.
    let path = dir.path().join("h.group");
    let p = path.to_str().unwrap();
    let members = || {
        GroupOptions::new()
            .member(MemberSpec::of::<u32>("c.npy", &[]))
            .durability(npy_append::Durability::Process)
    };
    let mut g = members().open(&path).unwrap();
    let journal_before = std::fs::read(&path).unwrap();
    g.append::<u32>(0, &[7, 8]).unwrap();
    g.commit().unwrap();
    drop(g);
    std::fs::write(&path, &journal_before).unwrap();
    let before = snapshot(dir.path());
    let out = Command::new(BIN).args(["recover", p]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("refused and changed nothing"),
        "{err}"
    );
    assert!(err.contains("header says 2 rows"), "{err}");
    assert_eq!(snapshot(dir.path()), before, "a refusal changed files");
    let (code, out) = run(&["recover", "--accept-loss", "--dry-run", p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would keep c.npy 0"), "{out}");
    assert_eq!(run(&["recover", "--accept-loss", p]).0, 0);
    assert_eq!(members().open(&path).unwrap().member_rows(), [0]);
}
