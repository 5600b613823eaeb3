//! `cargo xtask demo`: the main job on the built-in example, through the real CLI.
//!
//! Builds an image from `examples/hello/rootfs` with `oci-layout image create`, lists and
//! inspects it, and has skopeo read it back when skopeo is installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::{run as run_cmd, workspace_root};

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let root = workspace_root();
    let layout = dir.unwrap_or_else(|| root.join("target/demo/hello-layout"));
    if layout.exists() {
        fs::remove_dir_all(&layout).with_context(|| format!("clearing {}", layout.display()))?;
    }
    run_cmd("cargo", &["build", "--quiet", "--package", "oci-cli"])?;
    let cli = root.join("target/debug/oci-layout");
    let layout_arg = layout.to_str().context("demo path is not UTF-8")?;

    cli_run(
        &cli,
        &[
            "image",
            "create",
            layout_arg,
            "--tag",
            "hello",
            "--from-dir",
            "examples/hello/rootfs",
            "--cmd",
            "/bin/hello",
        ],
    )?;
    cli_run(&cli, &["ls", layout_arg])?;
    cli_run(&cli, &["inspect", layout_arg, "hello"])?;

    if Command::new("skopeo")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok()
    {
        run_cmd("skopeo", &["inspect", &format!("oci:{layout_arg}:hello")])?;
    } else {
        eprintln!("(skopeo is not installed: skipping the read-back by skopeo)");
    }
    eprintln!("\nlayout written to {}", layout.display());
    Ok(())
}

fn cli_run(cli: &Path, args: &[&str]) -> Result<()> {
    run_cmd(cli.to_str().context("target path is not UTF-8")?, args)
}
