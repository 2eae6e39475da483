//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Crash-safe appends to NumPy files: inspect, verify, recover, append, follow.
///
/// Exit codes: 0 success; 1 `verify` found a problem; 2 bad usage, bad input
/// or an error (explained on stderr).
#[derive(Debug, Parser)]
#[command(name = "npy-append", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show dtype, shape, header, committed rows and journal state (read-only);
    /// for an append group's journal: its members, its state and what
    /// recovery would do.
    Info(InfoArgs),
    /// Check that a file is a clean, consistent .npy (read-only): exit 0 if
    /// so, 1 if it needs recovery, is inconsistent or numpy refuses its
    /// header, 2 if it cannot be read or used. Given an append group's
    /// journal: exit 0 if the group was closed cleanly and every member is
    /// at its committed rows, 1 otherwise.
    Verify(FileArg),
    /// Bring a crashed writer's file to its last commit and close it cleanly.
    Recover(RecoverArgs),
    /// Append raw rows read from stdin, printing `committed N` after each commit.
    Append(AppendArgs),
    /// Print the committed row count each time it changes, until interrupted.
    Follow(FileArg),
}

/// A single file.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The .npy file.
    pub file: PathBuf,
}

/// Arguments of `info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The .npy file, or an append group's journal.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `recover` does with bytes past the header's data of a file that
/// has no journal (not left by npy-append).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tail {
    /// Change nothing and fail.
    Refuse,
    /// Cut the file to the rows its header describes.
    Cut,
    /// Keep the whole rows found past the header, cut a partial one.
    Adopt,
    /// Keep the whole rows found past the header, and a partial one
    /// completed with zero bytes.
    AdoptZeroFill,
}

/// What `recover` does with a file that has no journal and is shorter
/// than its header says (its header's rows are not all there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShortFile {
    /// Change nothing and fail.
    Refuse,
    /// Keep the whole rows the file holds, cut a partial last row, and
    /// rewrite the header to the rows kept.
    Keep,
    /// Keep the whole rows and complete a partial last row with zero bytes.
    ZeroFill,
}

/// Arguments of `recover`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one independent command-line flag"
)]
pub struct RecoverArgs {
    /// The .npy file.
    pub file: PathBuf,
    /// Say what recovery would do and change nothing (takes no lock).
    #[arg(long)]
    pub dry_run: bool,
    /// Bytes past the header's data in a file without a journal.
    #[arg(long, value_enum, default_value_t = Tail::Refuse)]
    pub tail: Tail,
    /// A file without a journal that is shorter than its header (a copy cut
    /// short): refuse, or salvage the rows it holds.
    #[arg(long, value_enum, default_value_t = ShortFile::Refuse)]
    pub short_file: ShortFile,
    /// Recover to the journal's last commit even when the file is in a state
    /// its journal cannot explain (another program rewrote or replaced it;
    /// refused by default, nothing changed), cutting what the journal does
    /// not commit.
    #[arg(long)]
    pub accept_loss: bool,
    /// Rename a <file>.journal that npy-append did not write to
    /// <file>.journal.foreign and go on (refused by default, nothing
    /// changed; it is never removed).
    #[arg(long)]
    pub move_aside_journal: bool,
    /// Print what was done (or, with --dry-run, would be done) as one JSON
    /// object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a returned commit survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Synced to disk: survives power loss.
    Fsync,
    /// Written to the kernel: survives a kill of this process, not power loss.
    Process,
}

/// Arguments of `append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The .npy file (created when missing; then --dtype is needed).
    pub file: PathBuf,
    /// numpy's descr of the dtype, as numpy prints it: `<f4`, `|u1`, or a
    /// structured list such as "[('a', '<i4'), ('b', '<f8', (3,))]".
    #[arg(long, value_name = "DESCR")]
    pub dtype: Option<String>,
    /// The shape of one row, comma-separated (`128` or `3,4`); empty or
    /// omitted for a new file: scalar rows (a 1-D array).
    #[arg(long, value_name = "D1,D2,...", value_parser = parse_row_shape)]
    pub row_shape: Option<RowShape>,
    /// Commit every ROWS rows (and always at the end of the input).
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_every: Option<u64>,
    /// What a commit survives.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    pub durability: DurabilityArg,
}

/// A parsed `--row-shape`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowShape(pub Vec<u64>);

fn parse_row_shape(text: &str) -> Result<RowShape, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(RowShape(Vec::new()));
    }
    text.split(',')
        .map(|d| {
            d.trim().parse::<u64>().map_err(|_| {
                format!("{d:?} is not a dimension: give non-negative integers separated by commas, such as 3,4")
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RowShape)
}
