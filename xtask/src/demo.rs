//! `cargo xtask demo`: the main job on the built-in example, through the real CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use oci_digest::Algorithm;
use serde_json::json;

use crate::{run as run_cmd, workspace_root};

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let root = workspace_root();
    let layout = dir.unwrap_or_else(|| root.join("target/demo/hello-layout"));
    if layout.exists() {
        fs::remove_dir_all(&layout).with_context(|| format!("clearing {}", layout.display()))?;
    }
    run_cmd("cargo", &["build", "--quiet", "--package", "oci-cli"])?;
    let cli = root.join("target/debug/oci-layout");
    let work = root.join("target/demo");
    fs::create_dir_all(&work)?;

    let layer_tar = deterministic_tar(&root.join("examples/hello/rootfs"))?;
    let diff_id = Algorithm::Sha256.digest(&layer_tar);
    let layer_path = work.join("layer.tar.gz");
    fs::write(&layer_path, gzip(&layer_tar)?)?;

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/hello"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created_by": "cargo xtask demo" }]
    });
    let config_path = work.join("config.json");
    fs::write(&config_path, serde_json::to_vec(&config)?)?;

    let layout_arg = layout.to_str().context("demo path is not UTF-8")?;
    cli_run(&cli, &["init", layout_arg])?;
    let layer = put(
        &cli,
        layout_arg,
        &layer_path,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )?;
    let config = put(
        &cli,
        layout_arg,
        &config_path,
        "application/vnd.oci.image.config.v1+json",
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer]
    });
    let manifest_path = work.join("manifest.json");
    fs::write(&manifest_path, serde_json::to_vec(&manifest)?)?;
    let manifest = put(
        &cli,
        layout_arg,
        &manifest_path,
        "application/vnd.oci.image.manifest.v1+json",
    )?;
    let digest = manifest["digest"].as_str().context("no digest printed")?;
    cli_run(&cli, &["tag", layout_arg, digest, "hello"])?;
    cli_run(&cli, &["ls", layout_arg, "--json"])?;

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

/// Stores a file with `blob put --json` and returns the printed descriptor.
fn put(cli: &Path, layout: &str, file: &Path, media_type: &str) -> Result<serde_json::Value> {
    let file = file.to_str().context("demo path is not UTF-8")?;
    let args = [
        "blob",
        "put",
        layout,
        file,
        "--media-type",
        media_type,
        "--json",
    ];
    eprintln!("$ oci-layout {}", args.join(" "));
    let output = Command::new(cli).args(args).output()?;
    if !output.status.success() {
        bail!(
            "blob put failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// A tar of `dir` in sorted order with fixed metadata, so the demo image is reproducible.
fn deterministic_tar(dir: &Path) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut paths = Vec::new();
    collect(dir, dir, &mut paths)?;
    paths.sort();
    for relative in paths {
        let full = dir.join(&relative);
        let metadata = fs::symlink_metadata(&full)?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if metadata.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, &relative, std::io::empty())?;
        } else {
            let data = fs::read(&full)?;
            let executable =
                std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 != 0;
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, &relative, data.as_slice())?;
        }
    }
    Ok(builder.into_inner()?)
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        out.push(path.strip_prefix(base)?.to_path_buf());
        if path.is_dir() {
            collect(base, &path, out)?;
        }
    }
    Ok(())
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}
