//! `append`: raw rows from stdin, committed in groups, `committed N` printed
//! after each commit.

use std::io::{self, IsTerminal, Read};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use npy_append::{AppendOptions, Appender, Durability, Found};

use crate::args::{AppendArgs, DurabilityArg, RowShape};
use crate::output::{self, Failure};

/// Bytes read from stdin at a time.
const CHUNK: usize = 1 << 20;
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// `npy-append append FILE [--dtype DESCR] [--row-shape D1,D2,...]
/// [--commit-every ROWS] [--durability fsync|process]`.
pub fn append(args: &AppendArgs) -> Result<ExitCode, Failure> {
    let path = &args.file;
    let shown = path.display();
    let mut options = AppendOptions::new().durability(match args.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::Process => Durability::Process,
    });
    if let Some(descr) = &args.dtype {
        options = options.dtype(descr).map_err(|e| {
            Failure::lib(path, &e)
                .hint("give numpy's descr, such as '<f4' or \"[('a', '<i4'), ('b', '<f8', (3,))]\"")
        })?;
    }
    if let Some(RowShape(shape)) = &args.row_shape {
        options = options.row_shape(shape);
    }
    let writer = options.open(path).map_err(|e| Failure::lib(path, &e))?;
    let report = writer.report();
    if report.found == Found::Journal || report.changed_file() {
        // A crashed writer's file: say what recovery did before appending.
        output::note(format_args!(
            "npy-append: note: {shown}: recovered: {report}"
        ));
    }
    let Some(row_bytes) = writer.row_bytes() else {
        return Err(Failure::new(format!(
            "{shown}: the file does not exist, and a new file needs its dtype"
        ))
        .hint(format!(
            "npy-append append {shown} --dtype '<f4' [--row-shape 128] < rows.bin"
        )));
    };
    let row_len = usize::try_from(row_bytes).map_err(|_| {
        Failure::new(format!(
            "{shown}: rows of {row_bytes} bytes are too large for this machine"
        ))
    })?;
    let mut job = Job {
        writer,
        row_len,
        commit_every: args.commit_every,
        pending: 0,
        printed: false,
        appended_bytes: 0,
        progress: io::stderr().is_terminal().then(Progress::new),
    };
    let partial = job.read_all(io::stdin().lock())?;
    let Job {
        writer,
        pending,
        printed,
        progress,
        ..
    } = job;
    let rows = writer.close().map_err(|e| Failure::lib(path, &e))?;
    // The close committed the pending rows; the last line is always the total.
    if pending > 0 || !printed {
        output::line(format_args!("committed {rows}"))?;
    }
    if let Some(p) = progress {
        p.finish(rows);
    }
    if partial > 0 {
        return Err(Failure::new(format!(
            "{shown}: the input ended with {partial} bytes after the last whole row (a row is {row_bytes} bytes); \
             the {rows} whole rows are committed, the partial row was not written"
        ))
        .hint("send whole rows in the file's dtype layout (C order, the dtype's byte order)"));
    }
    Ok(ExitCode::SUCCESS)
}

struct Job {
    writer: Appender,
    row_len: usize,
    commit_every: Option<u64>,
    /// Rows appended since the last commit.
    pending: u64,
    /// Whether a `committed N` line was printed.
    printed: bool,
    appended_bytes: u64,
    progress: Option<Progress>,
}

impl Job {
    /// Appends every whole row of `input`; returns the length of a partial
    /// row left at the end.
    ///
    /// Reads into one buffer and appends its whole rows from there (a
    /// partial row moves to the front), so each byte is copied once on its
    /// way to the library. The buffer grows past `CHUNK` only while a row
    /// longer than it arrives, never ahead of the data.
    fn read_all(&mut self, mut input: impl Read) -> Result<usize, Failure> {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                buf.resize(buf.len() + CHUNK, 0);
            }
            let n = match input.read(buf.get_mut(filled..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::new(format!(
                        "{}: reading rows from stdin: {e}; the rows committed so far are kept",
                        self.writer.path().display()
                    )));
                }
            };
            filled += n;
            let whole = filled / self.row_len * self.row_len;
            if whole > 0 {
                self.feed(buf.get(..whole).unwrap_or_default())?;
                buf.copy_within(whole..filled, 0);
                filled -= whole;
            }
            if let Some(p) = &mut self.progress {
                p.tick(self.writer.len() + self.pending, self.appended_bytes);
            }
        }
        Ok(filled)
    }

    /// Appends whole rows, committing at every `commit_every` boundary.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Failure> {
        let path = self.writer.path().to_path_buf();
        while !bytes.is_empty() {
            let rows_here = bytes.len() / self.row_len;
            let take = match self.commit_every {
                Some(every) => usize::try_from(every.saturating_sub(self.pending))
                    .map_or(rows_here, |left| left.min(rows_here)),
                None => rows_here,
            };
            let (now, rest) = bytes
                .split_at_checked(take * self.row_len)
                .unwrap_or((bytes, &[]));
            self.writer
                .append_bytes(now)
                .map_err(|e| Failure::lib(&path, &e))?;
            self.pending += take as u64;
            self.appended_bytes += now.len() as u64;
            if self.commit_every.is_some_and(|every| self.pending >= every) {
                let rows = self.writer.commit().map_err(|e| Failure::lib(&path, &e))?;
                self.pending = 0;
                output::line(format_args!("committed {rows}"))?;
                self.printed = true;
            }
            bytes = rest;
        }
        Ok(())
    }
}

/// A progress line on a terminal: rows, bytes, rate.
struct Progress {
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
        }
    }

    fn tick(&mut self, rows: u64, bytes: u64) {
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            #[expect(
                clippy::cast_precision_loss,
                reason = "an approximate rate for display"
            )]
            let mb = bytes as f64 / 1e6;
            output::progress(format_args!(
                "\r{rows} rows, {mb:.1} MB, {:.1} MB/s\x1b[K",
                mb / secs
            ));
        }
    }

    fn finish(&self, rows: u64) {
        output::note(format_args!(
            "\rdone: {rows} rows committed in {:.1} s\x1b[K",
            self.start.elapsed().as_secs_f64()
        ));
    }
}
