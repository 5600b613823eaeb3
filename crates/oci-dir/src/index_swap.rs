//! Replacing `index.json` under the layout lock without freeing the old file's blocks.
//!
//! Replacing a file by rename frees the old one, and on a filesystem mounted with `discard`
//! freeing waits for a trim: 6-11 ms for a 2.6 MB index on the benchmark machine, more than the
//! read, parse, write and fsync of a tag together. So the previous index is kept as a spare,
//! [`SPARE_INDEX`] in the cache directory, and the next update rewrites the spare in place,
//! syncs it, and swaps the two names with one `renameat2(RENAME_EXCHANGE)`. A reader opening
//! `index.json` gets the old file or the new one, each complete, exactly as with rename.
//!
//! A spare is rewritten only when nobody can be reading it:
//! - it has one link, so it is not shared with, say, a `cp -al` snapshot of the layout;
//! - the kernel grants a write lease on it, which it does only when no other open file
//!   description refers to the file (a reader that opened `index.json` before that file
//!   became the spare, say). The lease is dropped at once: after that the file can only be
//!   reached through the spare's own name, which no reader opens.
//!
//! Otherwise, or where the filesystem cannot exchange names, the new index goes through a
//! fresh temp file as before, and the old index becomes the spare when it can.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use oci_core::{Error, Result};
use rustix::fs::{CWD, OFlags, RenameFlags};

use crate::fsio;

/// The previous `index.json`, kept inside the cache directory for reuse.
pub const SPARE_INDEX: &str = "index.json.spare";

const WRITE_BUFFER: usize = 256 << 10;

/// Replaces `index` (a file directly in `root`) with what `write` writes, giving it `mode`;
/// `spare` is where the old index is kept, in `cache` (a directory inside `root`). Fsyncs
/// the new file and `root` when `durable`. The caller holds the layout's exclusive lock: only
/// one updater may rewrite the spare.
pub fn replace_index(
    root: &Path,
    cache: &Path,
    durable: bool,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let index = root.join(oci_core::INDEX_FILE);
    // A cache directory that leads out of the layout is not used: the old index would be
    // moved there.
    let spare = fsio::ensure_within(root, cache)
        .is_ok()
        .then(|| cache.join(SPARE_INDEX));
    let reusable = spare
        .as_deref()
        .and_then(|path| open_unshared(path).map(|file| (path, file)));
    match reusable {
        Some((spare, file)) => {
            rewrite(&file, mode, write).map_err(|e| Error::io(spare, e))?;
            if durable {
                file.sync_data().map_err(|e| Error::io(spare, e))?;
            }
            drop(file);
            match exchange(spare, &index) {
                Ok(()) => {}
                Err(e) if exchange_unsupported(&e) => {
                    fs::rename(spare, &index).map_err(|e| Error::io(&index, e))?;
                }
                Err(e) => return Err(Error::io(&index, e)),
            }
        }
        None => {
            let temp = fsio::write_temp(root, mode, durable, write)?.into_temp_path();
            match exchange(&temp, &index) {
                // The temp name now holds the old index.
                Ok(()) => keep_as_spare(temp, cache, spare.as_deref()),
                Err(e) if exchange_unsupported(&e) => {
                    temp.persist(&index)
                        .map_err(|e| Error::io(&index, e.error))?;
                }
                Err(e) => return Err(Error::io(&index, e)),
            }
        }
    }
    if durable {
        fsio::sync_dir(root)?;
    }
    Ok(())
}

/// The spare, open for writing, if it is a regular file with one link that nobody else has
/// open; `None` when it is missing or anything else.
fn open_unshared(spare: &Path) -> Option<File> {
    // Non-blocking: an open that would wait for another holder's lease fails instead.
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags as i32)
        .open(spare)
        .ok()?;
    let metadata = file.metadata().ok()?;
    (metadata.is_file() && metadata.nlink() == 1 && no_other_open(&file)).then_some(file)
}

/// Whether `file` is open through no other file description, anywhere: the kernel grants a
/// write lease only then. The lease is released before returning, so a later open by someone
/// else never waits on it and never signals this process.
fn no_other_open(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    #[expect(
        unsafe_code,
        reason = "F_SETLEASE has no safe wrapper in std or rustix"
    )]
    // SAFETY: `fd` is open for both calls (borrowed from `file`); F_SETLEASE reads no memory
    // of ours and only changes the lease held through this file description.
    unsafe {
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_WRLCK) != 0 {
            return false;
        }
        libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) == 0
    }
}

/// Writes the new contents over `file` from its start, cuts what is left of the old ones, and
/// gives it `mode`. Pages that already hold the right bytes are not written: a tag appends
/// to the index, so the spare (the index of two updates ago) differs from the new one only
/// near its end, and the fsync then writes those pages instead of the whole file.
fn rewrite(
    file: &File,
    mode: u32,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let old_len = file.metadata()?.len();
    let mut out = ChangedPagesWriter {
        file,
        old_len,
        offset: 0,
        pending: Vec::with_capacity(WRITE_BUFFER),
        old: vec![0; WRITE_BUFFER],
    };
    write(&mut out)?;
    out.flush()?;
    let len = out.offset;
    if len != old_len {
        file.set_len(len)?;
    }
    if file.metadata()?.permissions().mode() & 0o7777 != mode {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The unit compared and written by [`ChangedPagesWriter`]: the page cache's.
const PAGE: usize = 4096;

/// Writes a stream over an existing file, leaving alone the pages whose bytes are already
/// those of the stream.
struct ChangedPagesWriter<'a> {
    file: &'a File,
    old_len: u64,
    /// Where `pending` goes in the file.
    offset: u64,
    pending: Vec<u8>,
    /// The file's current bytes under `pending`.
    old: Vec<u8>,
}

impl ChangedPagesWriter<'_> {
    fn write_pending(&mut self) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let new = &self.pending[..];
        // What the file holds of this range today; beyond its end, nothing to compare.
        let comparable = usize::try_from(self.old_len.saturating_sub(self.offset))
            .unwrap_or(usize::MAX)
            .min(new.len());
        let old = &mut self.old[..comparable];
        self.file.read_exact_at(old, self.offset)?;
        let mut run_start = None;
        for page_start in (0..new.len()).step_by(PAGE) {
            let page_end = (page_start + PAGE).min(new.len());
            let unchanged =
                page_end <= comparable && new[page_start..page_end] == old[page_start..page_end];
            match (unchanged, run_start) {
                (false, None) => run_start = Some(page_start),
                (true, Some(start)) => {
                    self.file
                        .write_all_at(&new[start..page_start], self.offset + start as u64)?;
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run_start {
            self.file
                .write_all_at(&new[start..], self.offset + start as u64)?;
        }
        self.offset += new.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl Write for ChangedPagesWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len().min(WRITE_BUFFER - self.pending.len());
        self.pending.extend_from_slice(&bytes[..taken]);
        if self.pending.len() == WRITE_BUFFER {
            self.write_pending()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.write_pending()
    }
}

/// Swaps the names `a` and `b` atomically; both must exist.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

/// Whether `renameat2` failed because this kernel or filesystem has no `RENAME_EXCHANGE`.
fn exchange_unsupported(err: &io::Error) -> bool {
    [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP].contains(&err.raw_os_error().unwrap_or(0))
}

/// Moves the old index, now under the temp name, to the spare's name. The new index is already
/// in place, so a failure here only costs the reuse: the old file is removed instead (or, if
/// even that fails, left as a temp file that fsck reports and gc sweeps).
fn keep_as_spare(old_index: tempfile::TempPath, cache: &Path, spare: Option<&Path>) {
    let kept = spare.is_some_and(|spare| {
        fsio::create_dir(cache, false).is_ok() && fs::rename(&old_index, spare).is_ok()
    });
    if kept {
        // The file now lives under the spare's name; nothing is left to delete.
        let _ = old_index.keep();
    }
}
