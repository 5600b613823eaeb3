//! `oci-layout`: read and write OCI image layouts from the command line.
//!
//! A thin shell over the libraries: parse the arguments, call `oci-core` and `oci-dir`, print.
//! Exit codes: 0 success, 1 failure, 2 usage. Errors are one line on stderr, `error: ...`.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod copy;
mod image;
mod integrity;
mod login;
mod usage;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let message = one_line(&err);
            let _ = writeln!(io::stderr(), "error: {message}");
            if usage::is_usage(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A reader that went away (`oci-layout blob get … | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || matches!(
                cause.downcast_ref::<oci_core::Error>(),
                Some(oci_core::Error::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe
            )
    })
}

/// The error and its causes on one line, each once: a library error's message does not
/// repeat its source.
fn one_line(err: &anyhow::Error) -> String {
    let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
    let message = causes.join(": ");
    // One line, and nothing in it (a name from a crafted layout) that a terminal acts on.
    oci_core::printable(&message.replace('\n', " ")).into_owned()
}
