//! `cargo xtask demo`: the main job on the built-in example, through the real CLI.
//!
//! Builds `examples/hello/hello.rs` as a static binary with the machine's `rustc`, puts it at
//! `/bin/hello` of a copy of `examples/hello/rootfs` in `target/demo/hello-rootfs`, builds an
//! image of that tree with `oci-layout image create`, lists and inspects it, has skopeo read
//! it back when skopeo is installed, unpacks it as a runtime bundle with `oci-layout image
//! unpack --bundle`, and, where `runc` is installed and we are root, runs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{run as run_cmd, workspace_root};

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let root = workspace_root();
    let layout = dir.unwrap_or_else(|| root.join("target/demo/hello-layout"));
    let bundle = PathBuf::from(format!("{}-bundle", layout.display()));
    let rootfs = root.join("target/demo/hello-rootfs");
    for stale in [&layout, &bundle, &rootfs] {
        if stale.exists() {
            fs::remove_dir_all(stale).with_context(|| format!("clearing {}", stale.display()))?;
        }
    }
    build_rootfs(&root, &rootfs)?;
    run_cmd("cargo", &["build", "--quiet", "--package", "oci-cli"])?;
    let cli = root.join("target/debug/oci-layout");
    let layout_arg = layout.to_str().context("demo path is not UTF-8")?;
    let rootfs_arg = rootfs.to_str().context("workspace path is not UTF-8")?;
    let bundle_arg = bundle.to_str().context("demo path is not UTF-8")?;

    cli_run(
        &cli,
        &[
            "image",
            "create",
            layout_arg,
            "--tag",
            "hello",
            "--from-dir",
            rootfs_arg,
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

    unpack_bundle(&cli, layout_arg, bundle_arg)?;
    run_in_runc(&bundle)
}

/// `target/demo/hello-rootfs`: the example's tree and the static `/bin/hello` built from
/// `examples/hello/hello.rs` (into `target/`, never into the source tree).
fn build_rootfs(root: &Path, rootfs: &Path) -> Result<()> {
    copy_tree(&root.join("examples/hello/rootfs"), rootfs)?;
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let hello = bin.join("hello");
    // crt-static: glibc linked in, so the binary needs no loader or libc in the image.
    run_cmd(
        "rustc",
        &[
            "--edition=2024",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            "examples/hello/hello.rs",
            "-o",
            hello.to_str().context("workspace path is not UTF-8")?,
        ],
    )
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// `oci-layout image unpack LAYOUT hello BUNDLE --bundle`.
fn unpack_bundle(cli: &Path, layout: &str, bundle: &str) -> Result<()> {
    cli_run(
        cli,
        &["image", "unpack", layout, "hello", bundle, "--bundle"],
    )
}

/// `runc run` of the bundle, where runc is installed and we are root; its output is shown as
/// it comes.
fn run_in_runc(bundle: &Path) -> Result<()> {
    let runc_works = Command::new("runc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !runc_works {
        eprintln!(
            "(runc is not installed: skipping the run; the bundle is in {})",
            bundle.display()
        );
        return Ok(());
    }
    if !fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        eprintln!(
            "(not root: skipping `runc run`; the bundle is in {})",
            bundle.display()
        );
        return Ok(());
    }
    let id = format!("oci-layout-demo-{}", std::process::id());
    let bundle_arg = bundle.to_str().context("demo path is not UTF-8")?;
    // stdin from /dev/null: the bundle's process has no terminal.
    eprintln!("$ runc run --bundle {bundle_arg} {id}");
    let status = Command::new("runc")
        .args(["run", "--bundle", bundle_arg, &id])
        .stdin(Stdio::null())
        .status()
        .context("starting runc")?;
    if !status.success() {
        bail!("`runc run --bundle {bundle_arg} {id}` failed ({status})");
    }
    Ok(())
}

fn cli_run(cli: &Path, args: &[&str]) -> Result<()> {
    run_cmd(cli.to_str().context("target path is not UTF-8")?, args)
}
