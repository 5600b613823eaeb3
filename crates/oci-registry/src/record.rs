//! Where this user pushed blobs before, so that a push to another repository of the same
//! registry can mount them instead of sending them again.
//!
//! One file per registry in the user's cache directory (`$XDG_CACHE_HOME/oci-layout`, else
//! `~/.cache/oci-layout`), never inside a layout: `blob-locations/<registry>.tsv`, a line
//! `<digest>\t<repository>` per blob pushed or mounted. It is a cache: a missing, unreadable or
//! stale record only means the bytes are sent (a mount the registry refuses costs one
//! request). It is kept under [`LIMIT`] bytes by dropping its older half.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use oci_core::Digest;

/// The size past which the older half of a record is dropped.
const LIMIT: u64 = 4 << 20;

fn record_path(registry: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    let name: String = registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(
        base.join("oci-layout/blob-locations")
            .join(format!("{name}.tsv")),
    )
}

/// The repositories of `registry` `digest` was pushed to, most recent first.
pub(crate) fn repositories_with(registry: &str, digest: Digest) -> Vec<String> {
    let Some(path) = record_path(registry) else {
        return Vec::new();
    };
    let Ok(text) = fs::read_to_string(&path) else {
        return Vec::new();
    };
    let key = digest.to_string();
    let mut found: Vec<String> = Vec::new();
    for line in text.lines().rev() {
        if let Some((d, repository)) = line.split_once('\t')
            && d == key
            && !found.iter().any(|r| r == repository)
        {
            found.push(repository.to_owned());
        }
    }
    found
}

/// Records that `digest` is in `repository` of `registry`. Failures are ignored: a record is
/// a shortcut, never needed.
pub(crate) fn note(registry: &str, repository: &str, digest: Digest) {
    let Some(path) = record_path(registry) else {
        return;
    };
    if repositories_with(registry, digest)
        .iter()
        .any(|r| r == repository)
    {
        return;
    }
    let Some(dir) = path.parent() else {
        return;
    };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    if fs::metadata(&path).is_ok_and(|m| m.len() > LIMIT) {
        trim(&path);
    }
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&path) {
        // One write of one short line: appends from concurrent pushes do not interleave.
        let _ = file.write_all(format!("{digest}\t{repository}\n").as_bytes());
    }
}

/// Keeps the newer half of the record.
fn trim(path: &std::path::Path) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len() / 2..].join("\n") + "\n";
    let temp = path.with_extension("tsv.tmp");
    if fs::write(&temp, kept).is_ok() {
        let _ = fs::rename(&temp, path);
    }
}
