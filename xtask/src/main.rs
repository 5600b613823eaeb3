//! `cargo xtask`: the one entry point for the project's checks and demos.
//!
//! ```text
//! cargo xtask ci                               fmt check, clippy -D warnings, every test,
//!                                              the crash harness, fuzz corpus replay
//!                                              (what CI runs)
//! cargo xtask tidy                             the boundaries of docs/architecture.md, checked
//! cargo xtask demo [DIR]                       build, unpack and run examples/hello with the CLI
//! cargo xtask fuzz [TARGET] [--seconds N]      run the fuzz targets (all in turn, 60 s each)
//! cargo xtask bench [--quick] [--only NAME]    our commands against their references,
//!                                              written to docs/benchmarks.md
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod bench;
mod demo;
mod fuzz;
mod tidy;

const USAGE: &str = "usage: cargo xtask ci | cargo xtask tidy | cargo xtask demo [DIR] | \
                     cargo xtask fuzz [TARGET] [--seconds N] | \
                     cargo xtask bench [--quick] [--only NAME[,NAME]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("demo") => demo::run(args.get(1).map(PathBuf::from)),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|options| bench::run(&options)),
        _ => {
            eprintln!("{USAGE}");
            eprintln!("fuzz targets: {}", fuzz::TARGETS.join(", "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root, echoing it, and fails when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    run_with_env(program, args, &[])
}

/// [`run`] with environment variables set for the command.
pub fn run_with_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn ci() -> Result<()> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    tidy::run()?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace", "--no-fail-fast"])?;
    // Every public item documented, every intra-doc link resolving.
    run_with_env(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--exclude", "xtask"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // The crash-safety harness: ignored by a plain `cargo test` (it takes about a minute).
    run(
        "cargo",
        &[
            "test",
            "-p",
            "oci-cli",
            "--test",
            "cli",
            "--",
            "--ignored",
            "--exact",
            "crash::sigkill_at_random_moments",
            "--nocapture",
        ],
    )?;
    // oci-digest must stand alone, without its optional oci-spec conversions.
    run(
        "cargo",
        &["test", "-p", "oci-digest", "--no-default-features"],
    )?;
    fuzz_replay()
}

/// The fuzz crate is its own workspace: format, lint and replay its committed corpus
/// (`fuzz/tests/replay.rs`). Without its default `libfuzzer` feature no libFuzzer is built,
/// so this runs on stable.
fn fuzz_replay() -> Result<()> {
    let manifest = ["--manifest-path", "fuzz/Cargo.toml"];
    run(
        "cargo",
        &[&["fmt"][..], &manifest, &["--", "--check"]].concat(),
    )?;
    let build = [&manifest[..], &["--no-default-features", "--all-targets"]].concat();
    run(
        "cargo",
        &[&["clippy"][..], &build, &["--", "-D", "warnings"]].concat(),
    )?;
    run("cargo", &[&["test"][..], &build].concat())?;
    Ok(())
}
