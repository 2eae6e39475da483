//! `npy-append`: inspect, verify, recover, append to and follow `.npy` files
//! written by the `npy_append` library.
//!
//! Exit codes, for every subcommand: 0 success; 1 a check found a problem
//! (`verify`); 2 bad usage, bad input or an error, with a message on stderr
//! naming the file, the problem and what to do. The tool never panics on
//! file content.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![warn(clippy::pedantic)]
#![allow(
    clippy::doc_markdown,
    reason = "clap prints the doc comments as help text, where backticks would show"
)]

mod append;
mod args;
mod follow;
mod group;
mod inspect;
mod json;
mod output;
mod recover;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => inspect::info(&a),
        Command::Verify(a) => inspect::verify(&a),
        Command::Recover(a) => recover::recover(&a),
        Command::Append(a) => append::append(&a),
        Command::Follow(a) => follow::follow(&a),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            failure.report();
            ExitCode::from(output::EXIT_ERROR)
        }
    }
}
