//! Power-loss simulation for the crash-state tests.
//!
//! [`SimBackend`] is an in-memory [`Backend`] that records every operation
//! (create, write, set_len, sync, remove, rename, directory sync) in order. For a
//! crash after the first `k` recorded operations, [`Model::at`] computes what
//! is durable (each file's bytes as of its last sync, the directory as of its
//! last directory sync) and the list of operations still pending, and
//! [`Model::choices`] / [`Model::build`] produce the disk images the fault
//! model allows:
//!
//! - any subset of the pending operations survives, applied in their order
//!   (a lost write, reordered writes);
//! - a pending write is torn at 512-byte sectors: each sector of its range
//!   holds the new bytes, the old bytes, zeros or garbage, or the write
//!   stopped after some sectors (the file grown only that far);
//! - a pending create, remove or rename of a directory entry may be undone
//!   (a rename is atomic: its target names the old file or the new one).
//!
//! `sync_data` / `sync_all` make one file's data and length durable;
//! only `sync_dir` makes directory entries (renames included) durable.
//!
//! Two additions model what other programs and paths see, both off unless
//! asked for: file identities ([`SimBackend::with_file_ids`],
//! [`SimBackend::from_image_with_ids`]: `Storage::file_id` reports a device
//! and an inode number that a crash image keeps, as a real file system
//! does) and symbolic links ([`SimBackend::link`], reported by
//! `Backend::read_link`; every other operation takes paths as they are).

#![allow(dead_code)]

pub mod predict;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use npy_append::storage::{Backend, OpenMode, Storage};

/// Sector size of the simulated disk.
pub const SECTOR: u64 = 512;

/// Files by path: a disk image with every byte durable.
pub type Image = BTreeMap<PathBuf, Vec<u8>>;

/// An inode number of the simulation.
pub type Ino = usize;

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new file and its directory entry.
    Create { path: PathBuf, ino: Ino },
    /// `write_at`.
    Write {
        ino: Ino,
        offset: u64,
        data: Vec<u8>,
    },
    /// `set_len`.
    SetLen { ino: Ino, len: u64 },
    /// `sync_data` or `sync_all`.
    Sync { ino: Ino, all: bool },
    /// Removal of a directory entry.
    Remove { path: PathBuf, ino: Ino },
    /// A directory entry moved to `to` (replacing what `to` named).
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: Ino,
    },
    /// `sync_dir`.
    SyncDir,
    /// An operation a broken protocol variant left out (keeps indices stable).
    Nop,
}

impl Op {
    /// A short description for violation reports.
    pub fn describe(&self, names: &BTreeMap<Ino, PathBuf>) -> String {
        let name = |ino: &Ino| {
            names
                .get(ino)
                .and_then(|p| p.file_name())
                .map_or_else(|| format!("ino{ino}"), |n| n.to_string_lossy().into_owned())
        };
        match self {
            Op::Create { ino, .. } => format!("create {}", name(ino)),
            Op::Write { ino, offset, data } => {
                format!(
                    "write {} [{offset}..{})",
                    name(ino),
                    offset + data.len() as u64
                )
            }
            Op::SetLen { ino, len } => format!("set_len {} {len}", name(ino)),
            Op::Sync { ino, all } => {
                format!(
                    "{} {}",
                    if *all { "sync_all" } else { "sync_data" },
                    name(ino)
                )
            }
            Op::Remove { ino, .. } => format!("remove {}", name(ino)),
            Op::Rename { from, to, .. } => format!(
                "rename {} -> {}",
                from.file_name().unwrap_or_default().to_string_lossy(),
                to.file_name().unwrap_or_default().to_string_lossy()
            ),
            Op::SyncDir => "sync_dir".to_owned(),
            Op::Nop => "(left out)".to_owned(),
        }
    }
}

#[derive(Debug, Default)]
struct Inode {
    bytes: Vec<u8>,
    locked_by: Option<u64>,
    /// The inode number `Storage::file_id` reports (when enabled).
    id: Ino,
}

#[derive(Debug, Default)]
struct Sim {
    dir: BTreeMap<PathBuf, Ino>,
    inodes: Vec<Inode>,
    /// The image the recording started from (all durable).
    initial: Image,
    trace: Vec<Op>,
    /// Whether `Storage::file_id` reports `(SIM_DEVICE, id)`.
    file_ids: bool,
    /// The inode number of the next created file.
    next_id: Ino,
    /// Symbolic links: link path -> target as stored.
    links: BTreeMap<PathBuf, PathBuf>,
    /// Links the backend does not report (`read_link` says `None`) while
    /// `open`, `exists` and `is_same_file` follow them, as the kernel does:
    /// a library that does not look for links.
    links_hidden: bool,
}

/// The device number [`SimBackend`] files report.
pub const SIM_DEVICE: u64 = 0x5153;

/// An in-memory file system that records every operation.
#[derive(Debug, Clone, Default)]
pub struct SimBackend {
    sim: Arc<Mutex<Sim>>,
}

/// An open file of [`SimBackend`].
#[derive(Debug)]
pub struct SimFile {
    ino: Ino,
    handle: u64,
    writable: bool,
    sim: Arc<Mutex<Sim>>,
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl Sim {
    /// `path` as the kernel resolves it: links followed when they are
    /// hidden from `read_link` (else the library resolves them itself and
    /// every operation takes its path as it is).
    fn kernel_path(&self, path: &Path) -> PathBuf {
        let mut current = path.to_path_buf();
        if self.links_hidden {
            for _ in 0..40 {
                match self.links.get(&current) {
                    Some(target) if target.is_absolute() => current = target.clone(),
                    Some(target) => {
                        current = current
                            .parent()
                            .unwrap_or_else(|| Path::new(""))
                            .join(target);
                    }
                    None => break,
                }
            }
        }
        current
    }
}

fn lock(m: &Mutex<Sim>) -> MutexGuard<'_, Sim> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimBackend {
    /// A file system holding `image`, all of it durable; recording starts now.
    pub fn from_image(image: &Image) -> Self {
        let mut sim = Sim {
            initial: image.clone(),
            ..Sim::default()
        };
        for (path, bytes) in image {
            let ino = sim.inodes.len();
            sim.dir.insert(path.clone(), ino);
            sim.inodes.push(Inode {
                bytes: bytes.clone(),
                locked_by: None,
                id: ino,
            });
        }
        sim.next_id = sim.inodes.len();
        Self {
            sim: Arc::new(Mutex::new(sim)),
        }
    }

    /// Makes `Storage::file_id` report `(SIM_DEVICE, inode)`. Inode numbers
    /// are those of the trace ([`Ino`]: the files of the initial image in
    /// path order, then each created file), so [`Model::build_with_inos`]
    /// tells which file of a crash image is which.
    pub fn with_file_ids(self) -> Self {
        lock(&self.sim).file_ids = true;
        self
    }

    /// A file system holding `image`, all of it durable, whose files report
    /// the inode numbers `ids` (those of [`Model::build_with_inos`], or any
    /// other, e.g. for a file another program created); a file without one
    /// and every file created from now on gets a new number, above every
    /// number in `ids` and above `1 << 20` (above the inodes of any trace
    /// of these tests).
    pub fn from_image_with_ids(image: &Image, ids: &BTreeMap<PathBuf, Ino>) -> Self {
        let backend = Self::from_image(image).with_file_ids();
        {
            let mut sim = lock(&backend.sim);
            let mut next = ids.values().max().map_or(0, |m| m + 1).max(1 << 20);
            let dir: Vec<(PathBuf, Ino)> = sim.dir.iter().map(|(p, &i)| (p.clone(), i)).collect();
            for (path, ino) in dir {
                sim.inodes[ino].id = ids.get(&path).copied().unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
            }
            sim.next_id = next;
        }
        backend
    }

    /// Adds a symbolic link at `link` to `target` (stored as given: a
    /// relative target is relative to the link's directory, and this
    /// backend does not resolve `..`).
    pub fn link(&self, link: &Path, target: &Path) {
        lock(&self.sim)
            .links
            .insert(link.to_path_buf(), target.to_path_buf());
    }

    /// Hides the links from `Backend::read_link` while `open`, `exists` and
    /// `is_same_file` follow them, as the kernel does: the file system a
    /// library sees when it does not look for links.
    pub fn hide_links(&self) {
        lock(&self.sim).links_hidden = true;
    }

    /// The operations recorded so far.
    pub fn trace(&self) -> Vec<Op> {
        lock(&self.sim).trace.clone()
    }

    /// How many operations were recorded so far.
    pub fn ops(&self) -> usize {
        lock(&self.sim).trace.len()
    }

    /// The image the recording started from.
    pub fn initial(&self) -> Image {
        lock(&self.sim).initial.clone()
    }

    /// The files as a process sees them now (page cache included).
    pub fn current(&self) -> Image {
        let sim = lock(&self.sim);
        sim.dir
            .iter()
            .map(|(p, &ino)| (p.clone(), sim.inodes[ino].bytes.clone()))
            .collect()
    }
}

impl Backend for SimBackend {
    type File = SimFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        let mut sim = lock(&self.sim);
        let path = &sim.kernel_path(path);
        let ino = match mode {
            OpenMode::Read | OpenMode::ReadWrite => *sim
                .dir
                .get(path)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?,
            OpenMode::CreateNew => {
                if sim.dir.contains_key(path) {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                let ino = sim.inodes.len();
                let id = sim.next_id;
                sim.next_id += 1;
                sim.inodes.push(Inode {
                    id,
                    ..Inode::default()
                });
                sim.dir.insert(path.to_path_buf(), ino);
                sim.trace.push(Op::Create {
                    path: path.to_path_buf(),
                    ino,
                });
                ino
            }
        };
        Ok(SimFile {
            ino,
            handle: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
            writable: mode != OpenMode::Read,
            sim: Arc::clone(&self.sim),
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let sim = lock(&self.sim);
        Ok(sim.dir.contains_key(&sim.kernel_path(path)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut sim = lock(&self.sim);
        let ino = sim
            .dir
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        sim.trace.push(Op::Remove {
            path: path.to_path_buf(),
            ino,
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut sim = lock(&self.sim);
        let ino = sim
            .dir
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        sim.dir.insert(to.to_path_buf(), ino);
        sim.trace.push(Op::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            ino,
        });
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        lock(&self.sim).trace.push(Op::SyncDir);
        Ok(())
    }

    fn is_same_file(&self, file: &SimFile, path: &Path) -> io::Result<bool> {
        let sim = lock(&self.sim);
        Ok(sim.dir.get(&sim.kernel_path(path)) == Some(&file.ino))
    }

    fn read_link(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        let sim = lock(&self.sim);
        if sim.links_hidden {
            return Ok(None);
        }
        Ok(sim.links.get(path).cloned())
    }
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened read-only",
            ))
        }
    }
}

impl Storage for SimFile {
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.sim).inodes[self.ino].bytes.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let sim = lock(&self.sim);
        let bytes = &sim.inodes[self.ino].bytes;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut sim = lock(&self.sim);
        apply_write(&mut sim.inodes[self.ino].bytes, offset, buf);
        sim.trace.push(Op::Write {
            ino: self.ino,
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut sim = lock(&self.sim);
        sim.inodes[self.ino].bytes.resize(len as usize, 0);
        sim.trace.push(Op::SetLen { ino: self.ino, len });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        lock(&self.sim).trace.push(Op::Sync {
            ino: self.ino,
            all: false,
        });
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        lock(&self.sim).trace.push(Op::Sync {
            ino: self.ino,
            all: true,
        });
        Ok(())
    }

    fn file_id(&self) -> io::Result<Option<(u64, u64)>> {
        let sim = lock(&self.sim);
        Ok(sim
            .file_ids
            .then(|| (SIM_DEVICE, sim.inodes[self.ino].id as u64)))
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut sim = lock(&self.sim);
        let inode = &mut sim.inodes[self.ino];
        match inode.locked_by {
            Some(owner) if owner != self.handle => Ok(false),
            _ => {
                inode.locked_by = Some(self.handle);
                Ok(true)
            }
        }
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut sim = lock(&self.sim);
        let inode = &mut sim.inodes[self.ino];
        if inode.locked_by == Some(self.handle) {
            inode.locked_by = None;
        }
    }
}

/// A rename of `ino` from `from` to `to` reaching the directory: atomic, so
/// `to` names either its old file or `ino`, never nothing.
fn rename_entry(dir: &mut BTreeMap<PathBuf, Ino>, from: &Path, to: &Path, ino: Ino) {
    if dir.get(from) == Some(&ino) {
        dir.remove(from);
    }
    dir.insert(to.to_path_buf(), ino);
}

fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let (start, end) = (offset as usize, offset as usize + data.len());
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a torn write left in one sector of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectorFate {
    /// The new bytes.
    New,
    /// The bytes before the write (zeros past the old end of the file).
    Old,
    /// Zeros.
    Zero,
    /// Garbage.
    Garbage,
}

/// What survives of one pending operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Applied.
    Keep,
    /// Lost.
    Drop,
    /// A write torn: one fate per sector of its range; the file grows to the
    /// end of the write.
    Torn(Vec<SectorFate>),
    /// A write that stopped after its first `n` sectors (the file grew only
    /// that far).
    Stopped(usize),
}

/// One pending operation at a crash point.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Index of the operation in the trace.
    pub index: usize,
    /// The operation.
    pub op: Op,
}

/// The state of the simulated disk after the first `k` operations of a trace.
#[derive(Debug, Clone)]
pub struct Model {
    durable: Vec<Vec<u8>>,
    dir: BTreeMap<PathBuf, Ino>,
    /// Pending operations in trace order.
    pub pending: Vec<Pending>,
}

/// The sectors a write of `len` bytes at `offset` touches.
fn sectors(offset: u64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let first = offset / SECTOR;
    let last = (offset + len as u64 - 1) / SECTOR;
    (last - first + 1) as usize
}

impl Model {
    /// The pending operations of `trace` (run from `initial`) that `fates`
    /// does not keep, for messages: "every pending operation kept" when
    /// none.
    pub fn describe_lost(&self, fates: &[Fate], trace: &[Op], initial: &Image) -> String {
        let names = names(initial, trace);
        let lost: Vec<String> = self
            .pending
            .iter()
            .zip(fates)
            .filter(|(_, f)| **f != Fate::Keep)
            .map(|(p, f)| {
                let fate = match f {
                    Fate::Drop => "lost".to_owned(),
                    Fate::Torn(s) => format!("torn {s:?}"),
                    Fate::Stopped(n) => format!("stopped after {n} sectors"),
                    Fate::Keep => String::new(),
                };
                format!("#{} {} {fate}", p.index, p.op.describe(&names))
            })
            .collect();
        if lost.is_empty() {
            "every pending operation kept".to_owned()
        } else {
            lost.join("; ")
        }
    }

    /// The disk after the first `k` operations of `trace`, recorded from `initial`.
    pub fn at(initial: &Image, trace: &[Op], k: usize) -> Self {
        let mut model = Self {
            durable: Vec::new(),
            dir: BTreeMap::new(),
            pending: Vec::new(),
        };
        for (path, bytes) in initial {
            model.dir.insert(path.clone(), model.durable.len());
            model.durable.push(bytes.clone());
        }
        for (index, op) in trace.iter().take(k).enumerate() {
            match op {
                Op::Create { ino, .. } => {
                    while model.durable.len() <= *ino {
                        model.durable.push(Vec::new());
                    }
                    model.pending.push(Pending {
                        index,
                        op: op.clone(),
                    });
                }
                Op::Write { .. } | Op::SetLen { .. } | Op::Remove { .. } | Op::Rename { .. } => {
                    model.pending.push(Pending {
                        index,
                        op: op.clone(),
                    });
                }
                Op::Sync { ino, .. } => {
                    let mut bytes = std::mem::take(&mut model.durable[*ino]);
                    model.pending.retain(|p| match &p.op {
                        Op::Write {
                            ino: i,
                            offset,
                            data,
                        } if i == ino => {
                            apply_write(&mut bytes, *offset, data);
                            false
                        }
                        Op::SetLen { ino: i, len } if i == ino => {
                            bytes.resize(*len as usize, 0);
                            false
                        }
                        _ => true,
                    });
                    model.durable[*ino] = bytes;
                }
                Op::SyncDir => {
                    let dir = &mut model.dir;
                    model.pending.retain(|p| match &p.op {
                        Op::Create { path, ino } => {
                            dir.insert(path.clone(), *ino);
                            false
                        }
                        Op::Remove { path, .. } => {
                            dir.remove(path);
                            false
                        }
                        Op::Rename { from, to, ino } => {
                            rename_entry(dir, from, to, *ino);
                            false
                        }
                        _ => true,
                    });
                }
                Op::Nop => {}
            }
        }
        model
    }

    /// The image in which every pending operation is applied (what the next
    /// process sees after a kill).
    pub fn all_kept(&self) -> Vec<Fate> {
        vec![Fate::Keep; self.pending.len()]
    }

    /// Builds the image for `fates` (one per pending operation).
    pub fn build(&self, fates: &[Fate], garbage_seed: u64) -> Image {
        self.build_with_inos(fates, garbage_seed).0
    }

    /// [`Model::build`], and the inode of the trace each path of the image
    /// names (for [`SimBackend::from_image_with_ids`]).
    pub fn build_with_inos(
        &self,
        fates: &[Fate],
        garbage_seed: u64,
    ) -> (Image, BTreeMap<PathBuf, Ino>) {
        let mut files = self.durable.clone();
        let mut dir = self.dir.clone();
        for (p, fate) in self.pending.iter().zip(fates) {
            if *fate == Fate::Drop {
                continue;
            }
            match (&p.op, fate) {
                (Op::Create { path, ino }, _) => {
                    dir.insert(path.clone(), *ino);
                }
                (Op::Remove { path, .. }, _) => {
                    dir.remove(path);
                }
                (Op::Rename { from, to, ino }, _) => rename_entry(&mut dir, from, to, *ino),
                (Op::SetLen { ino, len }, _) => files[*ino].resize(*len as usize, 0),
                (Op::Write { ino, offset, data }, Fate::Keep) => {
                    apply_write(&mut files[*ino], *offset, data);
                }
                (Op::Write { ino, offset, data }, Fate::Stopped(n)) => {
                    let sector_end = (offset / SECTOR + *n as u64) * SECTOR;
                    let keep = sector_end.saturating_sub(*offset).min(data.len() as u64) as usize;
                    apply_write(&mut files[*ino], *offset, &data[..keep]);
                }
                (Op::Write { ino, offset, data }, Fate::Torn(sector_fates)) => {
                    let bytes = &mut files[*ino];
                    let end = *offset as usize + data.len();
                    let old_len = bytes.len();
                    if old_len < end {
                        bytes.resize(end, 0);
                    }
                    let mut rng = Rng::new(garbage_seed ^ ((p.index as u64) << 20));
                    for (at, &new) in (*offset as usize..end).zip(data) {
                        let s = (at as u64 / SECTOR - offset / SECTOR) as usize;
                        bytes[at] = match sector_fates.get(s).copied().unwrap_or(SectorFate::New) {
                            SectorFate::New => new,
                            SectorFate::Old => bytes[at],
                            SectorFate::Zero => 0,
                            SectorFate::Garbage => rng.next() as u8,
                        };
                    }
                }
                (Op::Sync { .. } | Op::SyncDir | Op::Nop, _) => {}
                (_, Fate::Drop) => {}
            }
        }
        let image = dir
            .iter()
            .map(|(path, &ino)| (path.clone(), files[ino].clone()))
            .collect();
        (image, dir)
    }

    /// Whether `fates` keeps a prefix of the pending operations in their
    /// order (at most one of them torn, at the cut): the disk wrote back in
    /// order and stopped.
    pub fn is_in_order(fates: &[Fate]) -> bool {
        let cut = fates
            .iter()
            .position(|f| *f != Fate::Keep)
            .unwrap_or(fates.len());
        fates.iter().skip(cut + 1).all(|f| *f == Fate::Drop)
    }

    /// Torn variants of the write at pending index `i`.
    fn tears(&self, i: usize, rng: &mut Rng) -> Vec<Fate> {
        let Op::Write { offset, data, .. } = &self.pending[i].op else {
            return Vec::new();
        };
        let n = sectors(*offset, data.len());
        use SectorFate::{Garbage, New, Old, Zero};
        let mut out = vec![Fate::Torn(vec![Zero; n]), Fate::Torn(vec![Garbage; n])];
        if n >= 2 {
            let half = n / 2;
            let split = |a: SectorFate, b: SectorFate| {
                (0..n)
                    .map(|s| if s < half { a } else { b })
                    .collect::<Vec<_>>()
            };
            out.push(Fate::Torn(split(New, Old)));
            out.push(Fate::Torn(split(Old, New)));
            out.push(Fate::Torn(split(New, Zero)));
            out.push(Fate::Torn(split(New, Garbage)));
            out.push(Fate::Torn(
                (0..n).map(|s| if s % 2 == 0 { New } else { Old }).collect(),
            ));
            out.push(Fate::Torn(
                (0..n).map(|s| if s + 1 == n { New } else { Old }).collect(),
            ));
            out.push(Fate::Torn(
                (0..n)
                    .map(|_| [New, Old, Zero, Garbage][rng.below(4) as usize])
                    .collect(),
            ));
            out.push(Fate::Stopped(half));
            out.push(Fate::Stopped(1));
        }
        out
    }

    /// The crash images this model enumerates at this crash point, as fates
    /// of the pending operations: every subset when there are at most
    /// `exhaustive` pending operations, else the structured cases (none, all,
    /// each one alone, each one left out, every in-order prefix) and
    /// `samples` seeded random subsets; then torn versions of the pending
    /// writes (at most `max_torn` of them, the latest first).
    pub fn choices(
        &self,
        rng: &mut Rng,
        exhaustive: usize,
        samples: usize,
        max_torn: usize,
    ) -> Vec<Vec<Fate>> {
        let p = self.pending.len();
        let mut out: Vec<Vec<Fate>> = Vec::new();
        let mask = |m: u64| -> Vec<Fate> {
            (0..p)
                .map(|i| {
                    if m >> i & 1 == 1 {
                        Fate::Keep
                    } else {
                        Fate::Drop
                    }
                })
                .collect()
        };
        if p <= exhaustive {
            for m in 0..(1u64 << p) {
                out.push(mask(m));
            }
        } else {
            out.push(vec![Fate::Drop; p]);
            out.push(vec![Fate::Keep; p]);
            for i in 0..p {
                let mut only = vec![Fate::Drop; p];
                only[i] = Fate::Keep;
                out.push(only);
                let mut without = vec![Fate::Keep; p];
                without[i] = Fate::Drop;
                out.push(without);
            }
            for cut in 1..p {
                out.push(
                    (0..p)
                        .map(|i| if i < cut { Fate::Keep } else { Fate::Drop })
                        .collect(),
                );
            }
            for _ in 0..samples {
                out.push(mask(rng.next()));
            }
        }
        let writes: Vec<usize> = (0..p)
            .rev()
            .filter(|&i| matches!(self.pending[i].op, Op::Write { .. }))
            .take(max_torn)
            .collect();
        for w in writes {
            for tear in self.tears(w, rng) {
                // The torn write with everything else kept, and as the cut
                // of an in-order prefix.
                let mut others_kept = vec![Fate::Keep; p];
                others_kept[w] = tear.clone();
                out.push(others_kept);
                let prefix: Vec<Fate> = (0..p)
                    .map(|i| match i.cmp(&w) {
                        std::cmp::Ordering::Less => Fate::Keep,
                        std::cmp::Ordering::Equal => tear.clone(),
                        std::cmp::Ordering::Greater => Fate::Drop,
                    })
                    .collect();
                out.push(prefix);
                // And with a random subset of the others.
                let mut random: Vec<Fate> = (0..p)
                    .map(|_| {
                        if rng.below(2) == 0 {
                            Fate::Keep
                        } else {
                            Fate::Drop
                        }
                    })
                    .collect();
                random[w] = tear.clone();
                out.push(random);
                if p <= exhaustive {
                    let mut alone = vec![Fate::Drop; p];
                    alone[w] = tear.clone();
                    out.push(alone);
                }
            }
        }
        out
    }
}

/// Names of the inodes of a trace (for messages).
pub fn names(initial: &Image, trace: &[Op]) -> BTreeMap<Ino, PathBuf> {
    let mut names: BTreeMap<Ino, PathBuf> = initial
        .keys()
        .enumerate()
        .map(|(i, p)| (i, p.clone()))
        .collect();
    for op in trace {
        if let Op::Create { path, ino } = op {
            names.insert(*ino, path.clone());
        }
    }
    names
}
