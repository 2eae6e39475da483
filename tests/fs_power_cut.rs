//! Real power cuts: a writer process appends with `Durability::Fsync` to a
//! file on a loop-mounted ext4 (and XFS) file system, and at a random
//! instant the file system is shut down WITHOUT flushing its log (the
//! shutdown ioctl with the NOLOGFLUSH flag: whatever the file system had not
//! yet written to the device or committed in its log is lost, as after a
//! power cut; writes the device completed survive, as on a disk that honours
//! flushes, since the loop device's image lives on the host). The parent then
//! kills the writer, unmounts, mounts again (the log is replayed), recovers
//! and checks:
//!
//! - `open_or_recover` succeeds;
//! - the committed rows are at least the last acknowledged commit, and are
//!   exactly that commit or the one in flight (a commit boundary);
//! - every row holds its value, the header's shape equals the rows and the
//!   file ends there;
//! - `close` leaves no journal, and numpy loads a sample of the files.
//!
//! The writer (`child_fs_writer`, which does nothing unless
//! `NPY_APPEND_FSCUT_CHILD` is set) appends rows of 16 `u64` whose value `j`
//! in row `i` is `16 * i + j`, commits batches of 1 to 64,000 rows, closes
//! and reopens now and then, and prints `committing T` before and
//! `committed N` after each commit. The parent checks a copy of the files
//! and leaves the originals as the cut left them, so the next writer
//! recovers them itself and some cuts land during that recovery; some files
//! are new, so some cuts land during their creation.
//!
//! Teeth: the same cuts catch writers whose commits are not durable, so the
//! test can fail: `*_loses_unsynced` (a writer under `Durability::Process`)
//! and `*_catches_no_data_sync` (a broken protocol: a commit's rows are not
//! synced before its journal record) must each lose an acknowledged commit
//! or fail to recover. `*_process_recovers` checks that after cuts under
//! `Durability::Process`, recovery still succeeds and leaves a well-formed
//! file (it prints how many acknowledged commits were lost).
//!
//! Append groups (`*_group`, `*_group_process`): a writer appends the same
//! rows to two members and commits them together, under either durability.
//! After each cut both members hold one commit's rows, every row as
//! written; under Fsync that commit is the last acknowledged one or the one
//! in flight; under Process recovery succeeds (after a refusal that changes
//! nothing, accepting the loss) and the cuts must lose some unsynced
//! commit. `*_group_catches_no_data_sync` must catch a group whose member
//! syncs do nothing.
//!
//! Needs root, loop devices, `losetup`, `mount`, `mkfs.ext4` and `mkfs.xfs`:
//! without them each test prints `SKIP fs_power_cut_<fs>: <reason>` and
//! passes, except under `CI=true`, where that is a failure. Every mount and
//! loop device is removed when the test ends, also when it fails.
//!
//! Environment: `NPY_APPEND_FS_CUTS` (default 150) cuts per file system (a
//! third of that under Process durability), `NPY_APPEND_SEED` replays a
//! run's random choices (the seed is printed; the instants of the cuts still
//! depend on timing).
#![cfg(target_os = "linux")]

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use npy_append::storage::{Backend, FsBackend, FsFile, OpenMode, Storage};
use npy_append::{AppendOptions, Appender, Durability, Found};
use support::u64rows::{
    ROW, ROW_BYTES, Rng, read_npy_header, rows, seed_from_env_or_time, value, verify_file,
};

const CHILD_ENV: &str = "NPY_APPEND_FSCUT_CHILD";
const CHILD_SEED_ENV: &str = "NPY_APPEND_FSCUT_CHILD_SEED";
/// How the writer commits: a [`Mode`] name.
const CHILD_MODE_ENV: &str = "NPY_APPEND_FSCUT_CHILD_MODE";
/// Prefix of the lines the writer prints, to tell them from libtest's output.
const TAG: &str = "@npy-fscut ";
/// Part of every image file name, so that loop devices left by a run that
/// was itself killed can be recognised and removed.
const IMAGE_MARKER: &str = "npy-append-fscut-";
/// Prefix of the directories holding the checked copies.
const CHECKS_PREFIX: &str = "npy-append-fscut-checks-";

/// The writer closes the file at this many rows (about 19 MB).
const MAX_ROWS: u64 = 150_000;

/// `_IOR('X', 125, __u32)`: `EXT4_IOC_SHUTDOWN`, and the same number is
/// `XFS_IOC_GOINGDOWN`.
const IOC_SHUTDOWN: u32 = (2 << 30) | (4 << 16) | ((b'X' as u32) << 8) | 125;
/// `EXT4_GOING_FLAGS_NOLOGFLUSH` = `XFS_FSOP_GOING_FLAGS_NOLOGFLUSH`: shut
/// down without writing the log, so uncommitted metadata is lost.
const GOING_FLAGS_NOLOGFLUSH: u32 = 2;

fn cuts_per_fs() -> usize {
    std::env::var("NPY_APPEND_FS_CUTS").map_or(150, |s| {
        s.trim()
            .parse()
            .expect("NPY_APPEND_FS_CUTS must be a number")
    })
}

/// Prints one tagged line and flushes it (one `write` of a short line to a
/// pipe is atomic, so the parent never sees half a line).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG}{line}").unwrap();
    out.flush().unwrap();
}

/// How the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `Durability::Fsync`: every acknowledged commit must survive.
    Fsync,
    /// `Durability::Process`: commits are not synced.
    Process,
    /// A broken protocol: `Durability::Fsync` through a backend whose
    /// `sync_data` of the `.npy` does nothing once rows were written through
    /// the handle (creation and recovery still sync), so a commit's journal
    /// record can reach the disk before the rows it counts.
    NoDataSync,
    /// An append group of two members under `Durability::Fsync`.
    GroupFsync,
    /// The same group under `Durability::Process`.
    GroupProcess,
    /// The group under `Durability::Fsync` through [`NoDataSync`]: a broken
    /// protocol whose records can reach the disk before the rows they count.
    GroupNoDataSync,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fsync => "fsync",
            Mode::Process => "process",
            Mode::NoDataSync => "no-data-sync",
            Mode::GroupFsync => "group-fsync",
            Mode::GroupProcess => "group-process",
            Mode::GroupNoDataSync => "group-no-data-sync",
        }
    }
}

/// `FsBackend`, except that `sync_data` on a `.npy` handle that wrote rows
/// does nothing.
#[derive(Debug, Clone, Copy)]
struct NoDataSync;

struct NoDataSyncFile {
    inner: FsFile,
    npy: bool,
    /// Whether rows (anything past the first 64 bytes, where a header
    /// ends at the earliest) were written through this handle.
    wrote_rows: std::sync::atomic::AtomicBool,
}

impl Storage for NoDataSyncFile {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if offset >= 64 {
            self.wrote_rows
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.inner.write_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if self.npy && self.wrote_rows.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            self.inner.sync_data()
        }
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.inner.sync_all()
    }
    fn try_lock(&self) -> std::io::Result<bool> {
        self.inner.try_lock()
    }
}

impl Backend for NoDataSync {
    type File = NoDataSyncFile;
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<NoDataSyncFile> {
        Ok(NoDataSyncFile {
            inner: FsBackend.open(path, mode)?,
            // A `.npy` (a file or a group member), not a journal.
            npy: path.extension().is_some_and(|e| e == "npy"),
            wrote_rows: false.into(),
        })
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        FsBackend.exists(path)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        FsBackend.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        FsBackend.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        FsBackend.sync_dir(dir)
    }
    fn is_same_file(&self, file: &NoDataSyncFile, path: &Path) -> std::io::Result<bool> {
        FsBackend.is_same_file(&file.inner, path)
    }
}

/// The writer process; returns at once in a normal test run. Once the file
/// system is shut down its calls fail and it panics; the parent kills it
/// anyway.
#[test]
fn child_fs_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    match std::env::var(CHILD_MODE_ENV).unwrap().as_str() {
        "fsync" => write_until_killed(FsBackend, &path, Durability::Fsync, seed),
        "process" => write_until_killed(FsBackend, &path, Durability::Process, seed),
        "no-data-sync" => write_until_killed(NoDataSync, &path, Durability::Fsync, seed),
        "group-fsync" => write_group_until_killed(FsBackend, &path, Durability::Fsync, seed),
        "group-process" => write_group_until_killed(FsBackend, &path, Durability::Process, seed),
        "group-no-data-sync" => {
            write_group_until_killed(NoDataSync, &path, Durability::Fsync, seed);
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Appends, commits and now and then closes and reopens the file at `path`
/// until it holds `MAX_ROWS` rows, saying what it does.
fn write_until_killed<B: Backend + Copy>(
    backend: B,
    path: &Path,
    durability: Durability,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let open = |rng: &mut Rng| {
        say("opening");
        let w = if durability == Durability::Fsync && path.exists() && rng.below(2) == 0 {
            // The options of the plain entry point (`open_or_recover`): an
            // existing file knows its dtype and shape.
            AppendOptions::new().open_with(backend, path).unwrap()
        } else {
            let options = AppendOptions::new()
                .dtype("<u8")
                .unwrap()
                .row_shape(&[ROW])
                .durability(durability);
            match options.clone().open_with(backend, path) {
                Ok(w) => w,
                // A power cut under process durability can keep a header
                // write and the rows it claims but not the record that
                // commits them (or keep the record and lose its rows): as
                // another program's write would leave the file. Recovery
                // refuses it and changes nothing; accepting the loss, it
                // recovers to the journal's last intact commit.
                Err(e @ npy_append::Error::JournalDisagrees { .. })
                    if durability == Durability::Process =>
                {
                    let files = || {
                        (
                            std::fs::read(path).unwrap(),
                            std::fs::read(npy_append::journal_path(path)).unwrap(),
                        )
                    };
                    let before = files();
                    let again = options.clone().open_with(backend, path);
                    assert!(again.is_err(), "refused once, opened the second time");
                    assert!(files() == before, "a refused open changed the files: {e}");
                    say("refused");
                    options.accept_loss(true).open_with(backend, path).unwrap()
                }
                Err(e) => panic!("opening failed: {e}"),
            }
        };
        assert_eq!(w.durability(), durability);
        say(&format!("opened {}", w.len()));
        w
    };
    let mut w = open(&mut rng);
    loop {
        let start = w.len();
        if start >= MAX_ROWS {
            let n = w.close().unwrap();
            say(&format!("closed {n}"));
            say("done");
            return;
        }
        // Mostly small commits; one in eight spans several MiB.
        let size = if rng.below(8) == 0 {
            16_384 + rng.below(48_000)
        } else {
            1 + rng.below(2000)
        };
        let target = (start + size).min(MAX_ROWS);
        let mut next = start;
        while next < target {
            let n = (1 + rng.below(9000)).min(target - next);
            w.append(&rows(next, n)).unwrap();
            next += n;
        }
        say(&format!("committing {target}"));
        let n = w.commit().unwrap();
        assert_eq!(n, target);
        say(&format!("committed {n}"));
        if rng.below(16) == 0 {
            // A clean close and reopen now and then, so cuts land there too.
            let n = w.close().unwrap();
            say(&format!("closed {n}"));
            w = open(&mut rng);
        }
    }
}

/// What the writer said before the cut.
#[derive(Default, Debug)]
struct Heard {
    opened: Option<u64>,
    /// Rows of the last commit, open or close that returned.
    acked: u64,
    /// Commits that returned.
    commits: u64,
    /// Rows of the last commit that was started and has not returned.
    in_flight: Option<u64>,
    /// The last line was `closed`: the file was closed when the cut came
    /// (or the writer was reopening it).
    closing: bool,
    done: bool,
    /// The open refused the file (process durability, see
    /// `write_until_killed`), then recovered it accepting the loss.
    refused: bool,
}

impl Heard {
    fn hear(&mut self, line: &str) {
        // libtest may print "test child_fs_writer ... " first on the same line.
        let Some((_, msg)) = line.split_once(TAG) else {
            return;
        };
        let mut words = msg.split(' ');
        let word = words.next().unwrap_or_default();
        let number = words.next().and_then(|n| n.parse::<u64>().ok());
        match (word, number) {
            ("opened", Some(n)) => {
                self.opened.get_or_insert(n);
                self.acked = self.acked.max(n);
                self.closing = false;
            }
            ("committing", Some(n)) => self.in_flight = Some(n),
            ("committed", Some(n)) => {
                self.acked = n;
                self.commits += 1;
                self.in_flight = None;
            }
            ("closed", Some(n)) => {
                self.acked = n;
                self.closing = true;
            }
            ("done", None) => self.done = true,
            ("refused", None) => self.refused = true,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Loop devices and mounts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FsKind {
    Ext4,
    Xfs,
}

impl FsKind {
    fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    fn mkfs(self) -> &'static str {
        match self {
            FsKind::Ext4 => "mkfs.ext4",
            FsKind::Xfs => "mkfs.xfs",
        }
    }

    fn mkfs_args(self) -> &'static [&'static str] {
        match self {
            FsKind::Ext4 => &["-q", "-F"],
            FsKind::Xfs => &["-q", "-f"],
        }
    }

    /// Image size: XFS refuses file systems under 300 MB. The image is
    /// sparse, so only what is written takes disk space.
    fn image_bytes(self) -> u64 {
        match self {
            FsKind::Ext4 => 256 << 20,
            FsKind::Xfs => 320 << 20,
        }
    }
}

/// The full path of the program `name`, searched in `PATH` and the sbin
/// directories (often missing from a non-root `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs a program to completion: its stdout, or an error naming the command
/// and its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let exe = find_program(program).ok_or_else(|| format!("{program} not found"))?;
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this machine cannot run the test for `kind`, if it cannot.
fn missing_prerequisite(kind: FsKind) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (mounting a loop device needs root)".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop devices (/dev/loop-control missing)".into());
    }
    for program in ["losetup", "mount", "umount", kind.mkfs()] {
        if find_program(program).is_none() {
            let hint = if kind == FsKind::Xfs && program == "mkfs.xfs" {
                " (install xfsprogs; scripts/test.sh does as root)"
            } else {
                ""
            };
            return Some(format!("{program} not found{hint}"));
        }
    }
    let supported = |name: &str| {
        std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|s| s.lines().any(|l| l.split_whitespace().last() == Some(name)))
    };
    if !supported(kind.name()) {
        // A module not loaded yet is loaded on demand.
        let _ = run("modprobe", &[kind.name()]);
        if !supported(kind.name()) {
            return Some(format!("the kernel does not support {}", kind.name()));
        }
    }
    None
}

/// Prints the SKIP line, or fails under `CI=true`.
fn skip(test: &str, reason: &str) {
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{test}: cannot run under CI=true: {reason}"
    );
    eprintln!("SKIP {test}: {reason}");
}

/// Loop devices whose image is one of ours (by its file name) and the mount
/// points of each, from `losetup` and `/proc/self/mounts`.
fn our_loop_devices() -> Vec<(String, Vec<String>)> {
    let Ok(list) = run(
        "losetup",
        &["--list", "--noheadings", "--raw", "-O", "NAME,BACK-FILE"],
    ) else {
        return Vec::new();
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    list.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, back)| back.contains(IMAGE_MARKER))
        .map(|(dev, _)| {
            let points = mounts
                .lines()
                .filter_map(|m| {
                    let mut f = m.split(' ');
                    (f.next() == Some(dev)).then(|| f.next().unwrap_or_default().to_owned())
                })
                .collect();
            (dev.to_owned(), points)
        })
        .collect()
}

/// A file system on a loop device over a sparse image in a temporary
/// directory under the target directory, mounted at `mnt`. Dropping it
/// unmounts and detaches the device (also while a failed test unwinds).
struct LoopFs {
    kind: FsKind,
    dev: String,
    mnt: PathBuf,
    mounted: bool,
    /// Holds the image and the mount point; removed after the drop.
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// Creates the image, attaches it, makes the file system and mounts it.
    /// `Err((skip, reason))`: `skip` when the machine has no free loop
    /// device (a reason to skip), otherwise a failure.
    fn new(kind: FsKind) -> Result<Self, (bool, String)> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{IMAGE_MARKER}{}-", kind.name()))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| (false, format!("temporary directory: {e}")))?;
        let image = dir
            .path()
            .join(format!("{IMAGE_MARKER}{}.img", kind.name()));
        File::create(&image)
            .and_then(|f| f.set_len(kind.image_bytes()))
            .map_err(|e| (false, format!("creating {}: {e}", image.display())))?;
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| (false, format!("mount point: {e}")))?;
        let dev = run("losetup", &["--find", "--show", image.to_str().unwrap()])
            .map_err(|e| (true, format!("no loop device: {e}")))?
            .trim()
            .to_owned();
        // From here on, Drop detaches the device.
        let mut fs = LoopFs {
            kind,
            dev,
            mnt,
            mounted: false,
            _dir: dir,
        };
        let mut args = kind.mkfs_args().to_vec();
        args.push(&fs.dev);
        run(kind.mkfs(), &args).map_err(|e| (false, e))?;
        fs.mount().map_err(|e| (false, e))?;
        Ok(fs)
    }

    fn mount(&mut self) -> Result<(), String> {
        run(
            "mount",
            &[
                "-t",
                self.kind.name(),
                &self.dev,
                self.mnt.to_str().unwrap(),
            ],
        )?;
        self.mounted = true;
        Ok(())
    }

    /// Unmounts, retrying for a second while the mount is busy (a process
    /// that was just killed may still be releasing its files).
    fn unmount(&mut self) -> Result<(), String> {
        let mut tries = 0;
        loop {
            match run("umount", &[self.mnt.to_str().unwrap()]) {
                Ok(_) => break,
                Err(e) if tries < 50 && e.contains("busy") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
        self.mounted = false;
        Ok(())
    }

    /// Shuts the file system down without flushing its log: what was not
    /// durable yet is lost, later I/O fails.
    fn cut(&self) {
        let dir = File::open(&self.mnt).unwrap();
        let mut flags: u32 = GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: the descriptor is open for the call and the argument is
        // the `__u32` the ioctl reads.
        let rc = unsafe {
            libc::ioctl(
                dir.as_raw_fd(),
                IOC_SHUTDOWN as _,
                std::ptr::from_mut(&mut flags),
            )
        };
        assert_eq!(
            rc,
            0,
            "{} shutdown ioctl: {}",
            self.kind.name(),
            std::io::Error::last_os_error()
        );
    }

    /// Unmounts and mounts again: the file system replays its log.
    fn remount(&mut self) {
        self.unmount()
            .unwrap_or_else(|e| panic!("unmounting after a cut: {e}"));
        self.mount()
            .unwrap_or_else(|e| panic!("mounting after a cut: {e}"));
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted && self.unmount().is_err() {
            // Something still holds it (a failed test's writer): detach it
            // lazily, so the device goes away once it is released.
            let _ = run("umount", &["-l", self.mnt.to_str().unwrap()]);
        }
        if let Err(e) = run("losetup", &["-d", &self.dev]) {
            eprintln!("fs_power_cut: detaching {}: {e}", self.dev);
        }
        // The kernel detaches in the background: wait, so that the next
        // test does not take the device for a leftover.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && our_loop_devices().iter().any(|(d, _)| *d == self.dev) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A writer process, killed and reaped when dropped.
struct ChildGuard(Child);

type Lines = mpsc::Receiver<String>;
type Join<T> = std::thread::JoinHandle<T>;

/// Starts a writer on `path`: the process, its stdout lines, and the
/// threads reading its stdout and stderr (the second returns all of it).
fn spawn_writer(
    exe: &Path,
    path: &Path,
    seed: u64,
    mode: Mode,
) -> (ChildGuard, Lines, Join<()>, Join<String>) {
    let mut child = ChildGuard(
        Command::new(exe)
            .args([
                "--exact",
                "child_fs_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, path)
            .env(CHILD_SEED_ENV, seed.to_string())
            .env(CHILD_MODE_ENV, mode.name())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (child, rx, reader, err_reader)
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Cuts the file system under the running writer `child`, kills it, hears
/// the rest of what it said and mounts the file system again; returns the
/// writer's exit status and its stderr.
fn cut_and_remount(
    fs: &mut LoopFs,
    mut child: ChildGuard,
    rx: &Lines,
    reader: Join<()>,
    err_reader: Join<String>,
    heard: &mut Heard,
) -> (std::process::ExitStatus, String) {
    fs.cut();
    let _ = child.0.kill();
    let status = child.0.wait().unwrap();
    reader.join().unwrap();
    for line in rx.try_iter() {
        heard.hear(&line);
    }
    let stderr = err_reader.join().unwrap();
    drop(child);
    fs.remount();
    (status, stderr)
}

/// Starts a writer of `path` in `mode` and cuts the file system once it
/// acknowledged `commits` commits; kills it, hears the rest of what it said
/// and mounts the file system again.
fn cut_after_commits(
    fs: &mut LoopFs,
    exe: &Path,
    path: &Path,
    seed: u64,
    mode: Mode,
    commits: u64,
    test: &str,
) -> Heard {
    let (child, rx, reader, err_reader) = spawn_writer(exe, path, seed, mode);
    let mut heard = Heard::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while heard.commits < commits {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => heard.hear(&line),
            Err(e) => panic!(
                "{test}: the writer made no commits ({e}):\n{}",
                err_reader.join().unwrap()
            ),
        }
    }
    cut_and_remount(fs, child, &rx, reader, err_reader, &mut heard);
    heard
}

/// Copies every file of directory `from` into `to` (created).
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, to.join(from.file_name().unwrap())).unwrap();
    }
}

/// Serializes the tests of this binary and runs of it in other processes:
/// they compete for the same two cores and loop devices, and while the lock
/// is held any loop device of ours is a leftover of a run that was killed.
fn exclusive() -> File {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fs_power_cut.lock");
    let file = File::create(&path).unwrap();
    file.lock().unwrap();
    for (dev, points) in our_loop_devices() {
        eprintln!("fs_power_cut: removing leftover {dev} (mounted at {points:?})");
        for point in points {
            let _ = run("umount", &["-l", &point]);
        }
        let _ = run("losetup", &["-d", &dev]);
    }
    // And their images and copies.
    for entry in std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(IMAGE_MARKER) || name.starts_with(CHECKS_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    file
}

/// The mounted file system for `test`, and the lock serializing the tests;
/// `None` after printing a SKIP line when this machine cannot run it.
fn setup(kind: FsKind, test: &str) -> Option<(File, LoopFs)> {
    if let Some(reason) = missing_prerequisite(kind) {
        skip(test, &reason);
        return None;
    }
    let lock = exclusive();
    match LoopFs::new(kind) {
        Ok(fs) => Some((lock, fs)),
        Err((true, reason)) => {
            skip(test, &reason);
            None
        }
        Err((false, e)) => panic!("{test}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// The test.

#[derive(Default)]
struct Stats {
    acked_commits: u64,
    max_rows: u64,
    rows_kept: u64,
    recoveries_that_cut: u64,
    bytes_cut: u64,
    header_rewrites: u64,
    in_flight_kept: u64,
    in_flight_lost: u64,
    cuts_in_creation: u64,
    cuts_in_recovery: u64,
    cuts_in_close: u64,
    files: u64,
}

/// Copies the `.npy` and its journal (those that exist) to `copy`.
fn copy_pair(path: &Path, copy: &Path) {
    for (from, to) in [
        (path.to_path_buf(), copy.to_path_buf()),
        (
            npy_append::journal_path(path),
            npy_append::journal_path(copy),
        ),
    ] {
        if from.exists() {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }
}

/// Recovers the file at `path`, checks it against what the writer said
/// (`base`: rows committed before this writer started), closes it and
/// returns the committed rows.
fn recover_and_check(
    path: &Path,
    base: u64,
    heard: &Heard,
    stats: &mut Stats,
    context: &str,
) -> u64 {
    let journal = npy_append::journal_path(path);
    let had_journal = journal.exists();
    let w = Appender::open_or_recover(path)
        .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
    let rows = w.len();
    let report = w.report().clone();
    assert_eq!(report.committed_rows, rows, "{context}: report {report}");
    assert_eq!(w.pending_rows(), 0, "{context}");
    let acked = heard.acked.max(base);
    assert!(
        rows >= acked,
        "{context}: {rows} rows recovered but {acked} were acknowledged ({report})"
    );
    assert!(
        rows == acked || Some(rows) == heard.in_flight,
        "{context}: {rows} rows recovered: neither the acknowledged {acked} nor the commit in \
         flight {:?} ({report})",
        heard.in_flight
    );
    if had_journal && path.exists() {
        assert!(
            report.found == Found::Journal
                || (report.found == Found::Clean && report.journal_discarded),
            "{context}: a journal was there, but the report says {report}"
        );
    }
    assert_eq!(
        report.dropped_rows, 0,
        "{context}: fsync commits dropped ({report})"
    );
    if path.exists() {
        verify_file(path, rows, context);
    } else {
        assert_eq!(rows, 0, "{context}: rows without a file");
    }
    if let Some(t) = heard.in_flight.filter(|&t| t > acked) {
        if rows == t {
            stats.in_flight_kept += 1;
        } else {
            stats.in_flight_lost += 1;
        }
    }
    if report.bytes_cut > 0 {
        stats.recoveries_that_cut += 1;
        stats.bytes_cut += report.bytes_cut;
    }
    if report.header_rewritten {
        stats.header_rewrites += 1;
    }
    let n = w
        .close()
        .unwrap_or_else(|e| panic!("{context}: close after recovery failed: {e}"));
    assert_eq!(n, rows, "{context}: close");
    assert!(!journal.exists(), "{context}: journal left after close");
    if path.exists() {
        verify_file(path, rows, &format!("{context}, after close"));
    }
    rows
}

fn power_cuts(kind: FsKind) {
    let test = format!("fs_power_cut_{}", kind.name());
    // The lock is declared first so that it is dropped last, after the
    // file system is gone.
    let Some((_lock, mut fs)) = setup(kind, &test) else {
        return;
    };
    let cuts = cuts_per_fs();
    let seed = seed_from_env_or_time();
    println!(
        "{test}: seed {seed} (NPY_APPEND_SEED={seed} replays the choices), {cuts} cuts on {}",
        fs.dev
    );
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let checks = tempfile::Builder::new()
        .prefix(CHECKS_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut stats = Stats::default();
    let mut generation = 0;
    let mut path = fs.mnt.join(format!("data-{generation}.npy"));
    stats.files = 1;
    let mut base = 0u64;
    let mut samples: Vec<(PathBuf, u64)> = Vec::new();
    let started = Instant::now();

    for round in 0..cuts {
        let context = format!("{test}, cut {round} (seed {seed})");
        let fresh = !path.exists() && !npy_append::journal_path(&path).exists();
        let needs_recovery = npy_append::journal_path(&path).exists();
        let (mut child, rx, reader, err_reader) =
            spawn_writer(&exe, &path, rng.next(), Mode::Fsync);

        let mut heard = Heard::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    heard.hear(&line);
                    if line.contains(TAG) && line.ends_with("opening") {
                        break;
                    }
                }
                Err(e) => panic!(
                    "{context}: the writer did not start ({e}):\n{}",
                    err_reader.join().unwrap()
                ),
            }
        }
        // One cut in three within the first 4 ms (creating or recovering
        // the file); the rest after 1..12 acknowledged commits (counted, so
        // that the cuts land mid-file however fast the machine is) and
        // 0..3 ms more, at a random step of the next commit.
        if rng.below(3) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(4000)));
        } else {
            let commits = 1 + rng.below(12);
            while heard.commits < commits && !heard.done {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) => heard.hear(&line),
                    Err(_) => break, // the writer died: reported below
                }
            }
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            for line in rx.try_iter() {
                heard.hear(&line);
            }
            assert!(
                status.success() && heard.done,
                "{context}: the writer failed before the cut ({status}):\n{}",
                err_reader.join().unwrap()
            );
        }
        let (status, stderr) = cut_and_remount(&mut fs, child, &rx, reader, err_reader, &mut heard);

        if heard.opened.is_none() && !heard.done {
            if fresh {
                stats.cuts_in_creation += 1;
            } else if needs_recovery {
                stats.cuts_in_recovery += 1;
            }
        }
        if heard.closing {
            stats.cuts_in_close += 1;
        }
        if let Some(opened) = heard.opened {
            // The writer recovered what the previous cut left: the same
            // state this test's own recovery of a copy found.
            assert_eq!(
                opened, base,
                "{context}: the writer opened {opened} rows, a copy recovered {base} \
                 (writer status {status}):\n{stderr}"
            );
        }
        stats.acked_commits += heard.commits;

        // Check a copy; the writer of the next round recovers the original.
        let copy = checks.path().join(format!("cut-{round}.npy"));
        copy_pair(&path, &copy);
        let rows = recover_and_check(&copy, base, &heard, &mut stats, &context);
        stats.max_rows = stats.max_rows.max(rows);
        stats.rows_kept += rows;
        base = rows;
        if round % 5 == 0 && rows > 0 {
            samples.push((copy, rows));
        } else {
            let _ = std::fs::remove_file(&copy);
        }

        // A new file when this one is full, and now and then anyway, so that
        // cuts land in creation too.
        if rows >= MAX_ROWS || heard.done || rng.below(5) == 0 {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(npy_append::journal_path(&path));
            generation += 1;
            path = fs.mnt.join(format!("data-{generation}.npy"));
            stats.files += 1;
            base = 0;
        }
    }

    // Recover the last file in place, on the remounted file system.
    let heard = Heard::default();
    let rows = recover_and_check(
        &path,
        base,
        &heard,
        &mut stats,
        &format!("{test}: final in-place recovery (seed {seed})"),
    );
    assert_eq!(rows, base, "{test}: in place vs. copy");
    let elapsed = started.elapsed();
    println!(
        "{test}: {cuts} cuts survived in {:.1} s (seed {seed}): {} acknowledged commits, \
         max {} rows, {} rows kept in total, {} files; {} recoveries cut {} bytes, \
         {} rewrote the header; commits in flight: {} kept, {} lost; cuts before the writer had \
         opened: {} creating a new file, {} recovering one; {} after a close",
        elapsed.as_secs_f64(),
        stats.acked_commits,
        stats.max_rows,
        stats.rows_kept,
        stats.files,
        stats.recoveries_that_cut,
        stats.bytes_cut,
        stats.header_rewrites,
        stats.in_flight_kept,
        stats.in_flight_lost,
        stats.cuts_in_creation,
        stats.cuts_in_recovery,
        stats.cuts_in_close,
    );
    assert!(
        stats.acked_commits > 0,
        "{test}: no commit was ever acknowledged: the cuts proved nothing"
    );
    assert!(
        stats.recoveries_that_cut > 0 || cuts < 20,
        "{test}: no recovery ever cut bytes: the cuts never landed in a commit"
    );
    drop(fs);
    assert!(
        our_loop_devices().is_empty(),
        "{test}: a loop device is left: {:?}",
        our_loop_devices()
    );

    let Some(py) = support::require_numpy(&test) else {
        return;
    };
    let mut args: Vec<String> = Vec::new();
    for (copy, rows) in &samples {
        args.push(copy.display().to_string());
        args.push(rows.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run_python(
        &py,
        r"
import sys
import numpy as np
args = sys.argv[1:]
for k in range(0, len(args), 2):
    path, rows = args[k], int(args[k + 1])
    expected = np.arange(rows * 16, dtype=np.uint64).reshape(rows, 16)
    for mode in (None, 'r'):
        a = np.load(path, mmap_mode=mode)
        assert a.dtype == np.dtype('<u8'), (path, a.dtype)
        assert a.shape == (rows, 16), (path, a.shape, rows)
        assert np.array_equal(a, expected), path
print('numpy read', len(args) // 2, 'files')
",
        &args,
    );
    assert!(
        out.contains(&format!("numpy read {} files", samples.len())),
        "{test}: numpy check printed {out:?}"
    );
    println!("{test}: {}", out.trim());
}

/// Teeth: the same cuts must catch a writer whose acknowledged commits are
/// not durable: one under `Durability::Process` (commits not synced) and
/// one with the broken protocol of [`Mode::NoDataSync`] (the journal record
/// synced, the rows it counts not). Each must lose an acknowledged commit,
/// fail to recover or keep wrong rows within 10 cuts; else the cuts would
/// not be dropping unsynced writes and the Fsync test would prove nothing.
fn cuts_catch(kind: FsKind, mode: Mode) {
    let test = match mode {
        Mode::Process => format!("fs_power_cut_{}_loses_unsynced", kind.name()),
        _ => format!(
            "fs_power_cut_{}_catches_{}",
            kind.name(),
            mode.name().replace('-', "_")
        ),
    };
    // The lock is declared first so that it is dropped last, after the
    // file system is gone.
    let Some((_lock, mut fs)) = setup(kind, &test) else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let checks = tempfile::Builder::new()
        .prefix(CHECKS_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut outcomes = Vec::new();
    for round in 0..10 {
        let path = fs.mnt.join(format!("{}-{round}.npy", mode.name()));
        // Cut once a few commits were acknowledged since the file was
        // created (creating a file syncs it).
        let heard = cut_after_commits(&mut fs, &exe, &path, 1 + round, mode, 5, &test);
        let copy = checks.path().join(format!("{}-{round}.npy", mode.name()));
        copy_pair(&path, &copy);
        let (caught, outcome) = match Appender::open_or_recover(&copy) {
            Ok(w) => {
                let rows = w.len();
                let wrong = wrong_rows(&copy, rows);
                (
                    rows < heard.acked || wrong != Ok(0),
                    format!(
                        "{rows} of {} acknowledged rows, wrong rows: {wrong:?} ({})",
                        heard.acked,
                        w.report()
                    ),
                )
            }
            Err(e) => (
                true,
                format!("{} rows acknowledged, recovery failed: {e}", heard.acked),
            ),
        };
        if caught {
            println!("{test}: cut {round} caught it, as it must: {outcome}");
            return;
        }
        outcomes.push(outcome);
    }
    panic!(
        "{test}: 10 cuts never caught the {} writer: {outcomes:#?}",
        mode.name()
    );
}

#[test]
fn fs_power_cut_ext4_catches_no_data_sync() {
    cuts_catch(FsKind::Ext4, Mode::NoDataSync);
}

#[test]
fn fs_power_cut_xfs_catches_no_data_sync() {
    cuts_catch(FsKind::Xfs, Mode::NoDataSync);
}

#[test]
fn fs_power_cut_ext4_loses_unsynced() {
    cuts_catch(FsKind::Ext4, Mode::Process);
}

#[test]
fn fs_power_cut_xfs_loses_unsynced() {
    cuts_catch(FsKind::Xfs, Mode::Process);
}

#[test]
fn fs_power_cut_ext4() {
    power_cuts(FsKind::Ext4);
}

#[test]
fn fs_power_cut_xfs() {
    power_cuts(FsKind::Xfs);
}

/// Rows of `value(i, j)` that the `.npy` at `path` gets wrong, or why it is
/// not a `.npy` of exactly `rows` rows.
fn wrong_rows(path: &Path, rows: u64) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading: {e}"))?;
    let (header_len, _, shape) = std::panic::catch_unwind(|| read_npy_header(&bytes))
        .map_err(|_| "bad header".to_owned())?;
    if shape != [rows, ROW] {
        return Err(format!("header shape {shape:?} for {rows} rows"));
    }
    if bytes.len() as u64 != header_len + rows * ROW_BYTES {
        return Err(format!("{} bytes for {rows} rows", bytes.len()));
    }
    let data = &bytes[header_len as usize..];
    Ok(data
        .chunks_exact(ROW_BYTES as usize)
        .enumerate()
        .filter(|(i, row)| {
            row.chunks_exact(8).enumerate().any(|(j, w)| {
                u64::from_le_bytes(w.try_into().unwrap()) != value(*i as u64, j as u64)
            })
        })
        .count() as u64)
}

/// The same cuts with a writer under `Durability::Process` (commits not
/// synced, so a cut may lose acknowledged commits): recovery must still
/// succeed and leave a well-formed `.npy` whose header matches its length.
/// Prints how often acknowledged commits were lost and how often rows were
/// wrong (the design does not check the rows of older unsynced commits).
fn process_durability_cuts(kind: FsKind) {
    let test = format!("fs_power_cut_{}_process_recovers", kind.name());
    let Some((_lock, mut fs)) = setup(kind, &test) else {
        return;
    };
    let cuts = (cuts_per_fs() / 3).max(1);
    let seed = seed_from_env_or_time();
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let checks = tempfile::Builder::new()
        .prefix(CHECKS_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut generation = 0;
    let mut path = fs.mnt.join(format!("process-{generation}.npy"));
    let (mut failed, mut lost, mut wrong, mut bad_files, mut fine) = (0, 0, 0, 0, 0);
    let (mut done, mut refused, mut writer_refused) = (0, 0, 0);
    let mut examples = Vec::new();
    for round in 0..cuts {
        let (child, rx, reader, err_reader) = spawn_writer(&exe, &path, rng.next(), Mode::Process);
        let mut heard = Heard::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while heard.opened.is_none() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => heard.hear(&line),
                Err(e) => panic!(
                    "{test}: the writer did not open ({e}):\n{}",
                    err_reader.join().unwrap()
                ),
            }
        }
        // Unsynced commits are quick: cut within 15 ms, mostly before the
        // writer reaches its last row and closes (which syncs).
        std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        cut_and_remount(&mut fs, child, &rx, reader, err_reader, &mut heard);
        if heard.done {
            done += 1;
        }
        if heard.refused {
            writer_refused += 1;
        }
        let copy = checks.path().join(format!("process-{round}.npy"));
        copy_pair(&path, &copy);
        let recovered = match Appender::open_or_recover(&copy) {
            // Refused: the file holds rows its header claims that no intact
            // commit explains (see `write_until_killed`). Nothing changed;
            // accepting the loss recovers it.
            Err(e @ npy_append::Error::JournalDisagrees { .. }) => {
                let pair = |p: &Path| {
                    (
                        std::fs::read(p).unwrap(),
                        std::fs::read(npy_append::journal_path(p)).ok(),
                    )
                };
                let mut original = checks.path().join("original.npy");
                copy_pair(&path, &original);
                assert!(
                    pair(&copy) == pair(&original),
                    "{test}: a refused recovery changed the file: {e}"
                );
                std::fs::remove_file(&original).unwrap();
                original.set_extension("npy.journal");
                let _ = std::fs::remove_file(&original);
                refused += 1;
                AppendOptions::new().accept_loss(true).open(&copy)
            }
            other => other,
        };
        match recovered {
            Err(e) => {
                failed += 1;
                examples.push(format!("cut {round}: recovery failed: {e}"));
            }
            Ok(w) => {
                let rows = w.len();
                match wrong_rows(&copy, rows) {
                    Err(e) => {
                        bad_files += 1;
                        examples.push(format!("cut {round}: {e} ({})", w.report()));
                    }
                    Ok(0) if rows >= heard.acked => fine += 1,
                    Ok(0) => lost += 1,
                    Ok(n) => {
                        wrong += 1;
                        examples.push(format!(
                            "cut {round}: {n} of {rows} rows wrong ({})",
                            w.report()
                        ));
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(npy_append::journal_path(&copy));
        if rng.below(3) == 0 {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(npy_append::journal_path(&path));
            generation += 1;
            path = fs.mnt.join(format!("process-{generation}.npy"));
        }
    }
    println!(
        "{test}: {cuts} cuts (seed {seed}): {fine} kept every acknowledged commit ({done} after the \
         writer closed), {lost} lost some, {wrong} kept wrong rows, {bad_files} left a bad file, \
         {failed} recoveries failed; {refused} recoveries (and {writer_refused} reopening \
         writers) refused a file whose header claims rows no intact commit explains, changing \
         nothing, and recovered it accepting the loss"
    );
    for e in &examples {
        println!("  {e}");
    }
    assert!(
        failed == 0 && bad_files == 0,
        "{test}: after cuts under Process durability, {failed} recoveries failed and {bad_files} \
         left a malformed file (seed {seed}): {examples:#?}"
    );
}

#[test]
fn fs_power_cut_ext4_process_recovers() {
    process_durability_cuts(FsKind::Ext4);
}

#[test]
fn fs_power_cut_xfs_process_recovers() {
    process_durability_cuts(FsKind::Xfs);
}

// ---------------------------------------------------------------------------
// Append groups: two members committed together.

/// The group's members: the same rows of `value(i, j)` in both (a member is
/// checked on its own with `wrong_rows`), grown together.
const GROUP_MEMBERS: [&str; 2] = ["a.npy", "b.npy"];

fn group_options(durability: Durability) -> npy_append::GroupOptions {
    GROUP_MEMBERS.iter().fold(
        npy_append::GroupOptions::new().durability(durability),
        |g, name| g.member(npy_append::MemberSpec::of::<u64>(name, &[ROW])),
    )
}

/// Opens (recovering) the group at `path`; under Process durability a group
/// refused with `JournalDisagrees` (a power cut kept a member's header and
/// rows, not their record) must be unchanged and is then opened accepting
/// the loss. Returns the group and whether it was refused.
fn open_group<B: Backend + Copy>(
    backend: B,
    path: &Path,
    durability: Durability,
) -> (npy_append::AppendGroup<B>, bool) {
    match group_options(durability).open_with(backend, path) {
        Ok(g) => (g, false),
        Err(e @ npy_append::Error::JournalDisagrees { .. })
            if durability == Durability::Process =>
        {
            let dir = path.parent().unwrap();
            let files = || {
                let mut v: Vec<_> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| {
                        let p = e.unwrap().path();
                        let bytes = std::fs::read(&p).unwrap();
                        (p, bytes)
                    })
                    .collect();
                v.sort();
                v
            };
            let before = files();
            assert!(group_options(durability).open_with(backend, path).is_err());
            assert!(files() == before, "a refused open changed the files: {e}");
            let g = group_options(durability)
                .accept_loss(true)
                .open_with(backend, path)
                .unwrap_or_else(|e| panic!("opening with accept_loss failed: {e}"));
            (g, true)
        }
        Err(e) => panic!("opening the group failed: {e}"),
    }
}

/// The group writer: appends the same rows to both members, commits, now
/// and then closes and reopens, until `MAX_ROWS / 4` rows; says what it
/// does as `write_until_killed` does.
fn write_group_until_killed<B: Backend + Copy>(
    backend: B,
    path: &Path,
    durability: Durability,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let max = MAX_ROWS / 4;
    let open = || {
        say("opening");
        let (g, refused) = open_group(backend, path, durability);
        if refused {
            say("refused");
        }
        say(&format!("opened {}", g.rows(0)));
        g
    };
    let mut g = open();
    loop {
        let start = g.rows(0);
        if start >= max {
            let n = g.close().unwrap();
            say(&format!("closed {}", n[0]));
            say("done");
            return;
        }
        let size = if rng.below(8) == 0 {
            4096 + rng.below(12_000)
        } else {
            1 + rng.below(500)
        };
        let target = (start + size).min(max);
        let batch = rows(start, target - start);
        for m in 0..GROUP_MEMBERS.len() {
            g.append(m, &batch).unwrap();
        }
        say(&format!("committing {target}"));
        let n = g.commit().unwrap();
        assert_eq!(n, [target, target]);
        say(&format!("committed {target}"));
        if rng.below(16) == 0 {
            let n = g.close().unwrap();
            say(&format!("closed {}", n[0]));
            g = open();
        }
    }
}

/// Power cuts of a group writer (`Mode::GroupFsync` or `GroupProcess`):
/// after each, a copy of the group is recovered and checked. Both members
/// must hold the same rows (one commit) and be well-formed `.npy` files
/// whose rows are as written; under Fsync the rows are the last
/// acknowledged commit or the one in flight. Under Process a cut may lose
/// acknowledged commits (counted) and rows of older commits may be wrong
/// (counted: the documented limit); recovery must still succeed, possibly
/// after refusing (unchanged) and being told to accept the loss.
fn group_power_cuts(kind: FsKind, durability: Durability) {
    let mode = if durability == Durability::Fsync {
        Mode::GroupFsync
    } else {
        Mode::GroupProcess
    };
    let test = format!(
        "fs_power_cut_{}_{}",
        kind.name(),
        mode.name().replace('-', "_")
    );
    let Some((_lock, mut fs)) = setup(kind, &test) else {
        return;
    };
    let cuts = (cuts_per_fs() / 3).max(1);
    let seed = seed_from_env_or_time();
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().unwrap();
    let checks = tempfile::Builder::new()
        .prefix(CHECKS_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut generation = 0;
    let mnt = fs.mnt.clone();
    let group_at = |generation: u32| {
        let dir = mnt.join(format!("group-{generation}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("data.group")
    };
    let mut path = group_at(generation);
    let (mut acked_commits, mut in_flight_kept, mut lost, mut wrong) = (0, 0, 0, 0);
    let (mut refused, mut dropped, mut fine) = (0, 0, 0);
    for round in 0..cuts {
        let context = format!("{test}, cut {round} (seed {seed})");
        let (child, rx, reader, err_reader) = spawn_writer(&exe, &path, rng.next(), mode);
        let mut heard = Heard::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while heard.opened.is_none() && !heard.done {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => heard.hear(&line),
                Err(e) => panic!(
                    "{context}: the writer did not open ({e}):\n{}",
                    err_reader.join().unwrap()
                ),
            }
        }
        let commits = rng.below(10);
        while heard.commits < commits && !heard.done {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => heard.hear(&line),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let (_, stderr) = cut_and_remount(&mut fs, child, &rx, reader, err_reader, &mut heard);
        acked_commits += heard.commits;

        // Check a copy of the group's directory; the next writer recovers
        // the original.
        let copy_dir = checks.path().join(format!("cut-{round}"));
        copy_files(path.parent().unwrap(), &copy_dir);
        let copy = copy_dir.join("data.group");
        let rows = if copy.exists() {
            let (g, was_refused) = open_group(FsBackend, &copy, durability);
            refused += u64::from(was_refused);
            dropped += u64::from(g.dropped_rows().iter().any(|&d| d > 0));
            let rows = g.member_rows();
            g.close()
                .unwrap_or_else(|e| panic!("{context}: close failed: {e}"));
            assert!(
                rows.iter().all(|&r| r == rows[0]),
                "{context}: the members hold different rows: {rows:?}"
            );
            rows[0]
        } else {
            0
        };
        for name in GROUP_MEMBERS {
            let member = copy_dir.join(name);
            if !member.exists() {
                assert_eq!(rows, 0, "{context}: {name} is missing");
                continue;
            }
            match wrong_rows(&member, rows) {
                Ok(0) => {}
                Ok(n) if durability == Durability::Process => {
                    wrong += 1;
                    println!("  {context}: {name}: {n} of {rows} rows wrong");
                }
                Ok(n) => panic!("{context}: {name}: {n} of {rows} rows wrong"),
                Err(e) => panic!("{context}: {name} is not well formed: {e}\n{stderr}"),
            }
        }
        if durability == Durability::Fsync {
            assert!(
                rows == heard.acked || Some(rows) == heard.in_flight,
                "{context}: recovered {rows} rows; acknowledged {}, in flight {:?}",
                heard.acked,
                heard.in_flight
            );
            in_flight_kept += u64::from(rows != heard.acked);
        } else if rows >= heard.acked {
            fine += 1;
        } else {
            lost += 1;
        }
        let _ = std::fs::remove_dir_all(&copy_dir);
        if heard.done || rng.below(4) == 0 {
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
            generation += 1;
            path = group_at(generation);
        }
    }
    println!(
        "{test}: {cuts} cuts (seed {seed}): {acked_commits} acknowledged commits; {}",
        if durability == Durability::Fsync {
            format!(
                "every member at the last acknowledged commit or the one in flight \
                 ({in_flight_kept} kept the one in flight), every row as written"
            )
        } else {
            format!(
                "{fine} kept every acknowledged commit, {lost} lost some, {dropped} recoveries \
                 dropped rows of the newest commit, {refused} refused (unchanged) then \
                 recovered accepting the loss, {wrong} members with rows of older commits \
                 not as written"
            )
        }
    );
    assert!(acked_commits > 0, "{test}: no commit was acknowledged");
    // Teeth: the cuts drop unsynced writes of a group too.
    assert!(
        durability == Durability::Fsync || lost > 0 || cuts < 20,
        "{test}: no cut lost an unsynced commit: the cuts prove nothing"
    );
}

/// Teeth: the cuts catch a group whose commits write their record before
/// the rows it counts are durable ([`Mode::GroupNoDataSync`]): within 10
/// cuts a recovery fails, loses an acknowledged commit or keeps wrong rows.
fn group_cuts_catch_no_data_sync(kind: FsKind) {
    let test = format!("fs_power_cut_{}_group_catches_no_data_sync", kind.name());
    let Some((_lock, mut fs)) = setup(kind, &test) else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let checks = tempfile::Builder::new()
        .prefix(CHECKS_PREFIX)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut outcomes = Vec::new();
    for round in 0..10 {
        let dir = fs.mnt.join(format!("broken-{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.group");
        let heard = cut_after_commits(
            &mut fs,
            &exe,
            &path,
            1 + round,
            Mode::GroupNoDataSync,
            5,
            &test,
        );
        let copy_dir = checks.path().join(format!("broken-{round}"));
        copy_files(&dir, &copy_dir);
        let outcome = match group_options(Durability::Fsync).open(copy_dir.join("data.group")) {
            Ok(g) => {
                let rows = g.rows(0);
                drop(g);
                let wrong: Vec<_> = GROUP_MEMBERS
                    .iter()
                    .map(|m| wrong_rows(&copy_dir.join(m), rows))
                    .collect();
                let caught = rows < heard.acked || wrong.iter().any(|w| *w != Ok(0));
                (
                    caught,
                    format!("{rows} of {} acknowledged rows, {wrong:?}", heard.acked),
                )
            }
            Err(e) => (
                true,
                format!("{} rows acknowledged, recovery failed: {e}", heard.acked),
            ),
        };
        if outcome.0 {
            println!("{test}: cut {round} caught it, as it must: {}", outcome.1);
            return;
        }
        outcomes.push(outcome.1);
    }
    panic!("{test}: 10 cuts never caught the broken group writer: {outcomes:#?}");
}

#[test]
fn fs_power_cut_ext4_group_catches_no_data_sync() {
    group_cuts_catch_no_data_sync(FsKind::Ext4);
}

#[test]
fn fs_power_cut_xfs_group_catches_no_data_sync() {
    group_cuts_catch_no_data_sync(FsKind::Xfs);
}

#[test]
fn fs_power_cut_ext4_group() {
    group_power_cuts(FsKind::Ext4, Durability::Fsync);
}

#[test]
fn fs_power_cut_xfs_group() {
    group_power_cuts(FsKind::Xfs, Durability::Fsync);
}

#[test]
fn fs_power_cut_ext4_group_process() {
    group_power_cuts(FsKind::Ext4, Durability::Process);
}

#[test]
fn fs_power_cut_xfs_group_process() {
    group_power_cuts(FsKind::Xfs, Durability::Process);
}

// ---------------------------------------------------------------------------
// A full disk: nothing changes but what can be finished.

/// Fills the file system holding `dir` until a write fails for lack of
/// space; the filler file is `dir/filler`.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = File::create(&filler).unwrap();
    for chunk in [1 << 20, 4096, 512, 1] {
        let bytes = vec![0xAB_u8; chunk];
        while f.write_all(&bytes).and_then(|()| f.sync_all()).is_ok() {}
    }
    filler
}

/// The writer of `path` killed after `commits` commits of 1000 rows and
/// 10 more rows written but not committed.
fn killed_with_a_tail(path: &Path, commits: u64) {
    let mut w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .durability(Durability::Process)
        .buffer_bytes(64)
        .open(path)
        .unwrap();
    for c in 0..commits {
        w.append(&rows(c * 1000, 1000)).unwrap();
        w.commit().unwrap();
    }
    w.append(&rows(commits * 1000, 10)).unwrap();
    drop(w);
}

fn bytes_of(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

#[test]
fn full_ext4_disk_during_open_and_recovery() {
    let test = "full_ext4_disk_during_open_and_recovery";
    let Some((_lock, fs)) = setup(FsKind::Ext4, test) else {
        return;
    };
    let dir = fs.mnt.clone();
    let (clean, crashed, new) = (
        dir.join("clean.npy"),
        dir.join("crashed.npy"),
        dir.join("new.npy"),
    );
    let mut w = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .open(&clean)
        .unwrap();
    w.append(&rows(0, 100)).unwrap();
    w.close().unwrap();
    killed_with_a_tail(&crashed, 3);
    let filler = fill(&dir);

    // Opening a clean file needs a journal: refused, nothing left behind.
    let before = bytes_of(&clean);
    let err = Appender::open_or_recover(&clean)
        .err()
        .expect("the disk is full");
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("free space") && message.contains("last commit"),
        "{message}"
    );
    assert_eq!(bytes_of(&clean), before);
    assert!(
        !npy_append::journal_path(&clean).exists(),
        "a journal was left"
    );
    assert_eq!(
        npy_append::FileStatus::read(&clean).unwrap().state,
        npy_append::FileState::Clean
    );

    // Creating a new file: nothing is left either.
    let err = AppendOptions::new()
        .dtype("<u8")
        .unwrap()
        .row_shape(&[ROW])
        .open(&new)
        .err()
        .expect("the disk is full");
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    assert!(!new.exists() && !npy_append::journal_path(&new).exists());

    // Recovering the crashed writer's file needs no new space (it cuts,
    // rewrites in place): it succeeds, or fails and changes nothing.
    let before = (
        bytes_of(&crashed),
        bytes_of(&npy_append::journal_path(&crashed)),
    );
    match AppendOptions::new().recover(&crashed) {
        Ok(outcome) => assert_eq!(outcome.report.committed_rows, 3000),
        Err(e) => {
            assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull), "{e}");
            assert_eq!(
                (
                    bytes_of(&crashed),
                    bytes_of(&npy_append::journal_path(&crashed))
                ),
                before
            );
        }
    }

    // Appending on the full disk: the commit fails, the last one is kept.
    std::fs::remove_file(&filler).unwrap();
    let mut w = Appender::open_or_recover(&clean).unwrap();
    let filler = fill(&dir);
    let failed = w
        .append(&rows(100, 20_000))
        .and_then(|()| w.commit().map(|_| ()));
    let err = failed.expect_err("the disk is full");
    assert!(err.to_string().contains("free space"), "{err}");
    drop(w);

    // With space again, everything is where its last commit left it.
    std::fs::remove_file(&filler).unwrap();
    let w = Appender::open_or_recover(&clean).unwrap();
    assert_eq!(w.len(), 100);
    w.close().unwrap();
    assert_eq!(wrong_rows(&clean, 100), Ok(0));
    let w = Appender::open_or_recover(&crashed).unwrap();
    assert_eq!(w.len(), 3000);
    w.close().unwrap();
    assert_eq!(wrong_rows(&crashed, 3000), Ok(0));
    drop(fs);
}
