//! The record of where the parts of `index.json` lie (see
//! [`IndexDocument::write_recorded`](oci_core::index::IndexDocument::write_recorded)), kept in
//! the cache directory: read before an edit (as any cache is, `DirLayout::read_cache`),
//! rewritten after it.
//!
//! It is a cache in the full sense: missing, stale or damaged, it is ignored and the index is
//! parsed, so it is neither synced nor replaced atomically. It is overwritten in place (a
//! rename would free the old file's blocks, which waits for a trim on a `discard` mount); a torn
//! write fails the record's own hash.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

use crate::fsio;

/// The record's name in the cache directory.
pub const INDEX_RECORD: &str = "index.json.outline";

/// Overwrites the record in `cache` with `record`, if the cache directory is inside the
/// layout at `root` and the record is a regular file with one link (or missing). Errors are
/// ignored: the next edit then finds no record, or one that fails its hash, and parses.
pub fn write(root: &Path, cache: &Path, mode: u32, record: &[u8]) {
    if fsio::ensure_within(root, cache).is_err() || fsio::create_dir(cache, false).is_err() {
        return;
    }
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits();
    let Ok(file) = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(mode)
        .custom_flags(flags as i32)
        .open(cache.join(INDEX_RECORD))
    else {
        return;
    };
    let unshared = file.metadata().is_ok_and(|m| m.is_file() && m.nlink() == 1);
    if unshared && file.write_all_at(record, 0).is_ok() {
        let _ = file.set_len(record.len() as u64);
    }
}
