//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs the cargo-fuzz targets in `fuzz/`.
//!
//! With a nightly toolchain installed the targets are built with AddressSanitizer
//! (`cargo +nightly fuzz run`); without one, on stable with `-s none`. libFuzzer's working
//! corpus goes to `fuzz/target/corpus/<target>` (not committed); the committed seeds
//! (`fuzz/corpus/<target>`) and regressions (`fuzz/regressions/<target>`) are read, never
//! written. Crashes land in `fuzz/artifacts/<target>/`.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// The targets, in the order `cargo xtask fuzz` runs them (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [&str; 7] = [
    "digest_parse",
    "index_ops",
    "manifest_walk",
    "tar_reader",
    "compressed_reader",
    "image_reference",
    "www_authenticate",
];

const DEFAULT_SECONDS: u64 = 60;

pub fn run(args: &[String]) -> Result<()> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--seconds {value:?}: not a number of seconds"))?;
            }
            name if TARGETS.contains(&name) && target.is_none() => target = Some(name),
            other => bail!(
                "unknown fuzz target or option {other:?}; targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    check_cargo_fuzz()?;
    let nightly = has_nightly();
    eprintln!(
        "fuzzing with {}",
        if nightly {
            "AddressSanitizer (nightly toolchain found)"
        } else {
            "no sanitizer (-s none: no nightly toolchain)"
        }
    );
    let targets: Vec<&str> = target.map_or_else(|| TARGETS.to_vec(), |t| vec![t]);
    for target in targets {
        fuzz_one(target, seconds, nightly)?;
    }
    Ok(())
}

fn check_cargo_fuzz() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        bail!(
            "cargo-fuzz is not installed: install it with `cargo install cargo-fuzz`, then run again"
        );
    }
    Ok(())
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.starts_with("nightly"))
        })
}

fn fuzz_one(target: &str, seconds: u64, nightly: bool) -> Result<()> {
    let root = workspace_root();
    let fuzz = root.join("fuzz");
    let work = fuzz.join("target/corpus").join(target);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut corpora = vec![work, fuzz.join("corpus").join(target)];
    let regressions = fuzz.join("regressions").join(target);
    if regressions.is_dir() {
        corpora.push(regressions);
    }
    let mut command = Command::new("cargo");
    if nightly {
        command.arg("+nightly");
    }
    command.args(["fuzz", "run"]);
    if !nightly {
        command.args(["-s", "none"]);
    }
    command
        .arg(target)
        .args(&corpora)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // A hang is a bug too (a walk that does not terminate): fail an input after 30 s.
        .args(["-timeout=30", "-print_final_stats=1"])
        .current_dir(&root);
    eprintln!("$ {command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting cargo fuzz run {target}"))?;
    if !status.success() {
        bail!(
            "fuzz target {target} failed ({status}): the input is in fuzz/artifacts/{target}/. \
             Minimise it (`cargo fuzz tmin {target} ARTIFACT`), commit it under \
             fuzz/regressions/{target}/, fix the bug, and `cargo xtask ci` replays it"
        );
    }
    Ok(())
}
