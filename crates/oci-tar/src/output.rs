//! Output files (`pack ARCHIVE`, `blob get -o FILE`): what is at the path decides how it is
//! written, as it does for a shell redirection.
//!
//! The path is resolved first, through any symlinks (`/dev/stdout` → `/proc/self/fd/1` → a
//! pipe). A regular file, or nothing, is written atomically: an anonymous temp file beside it,
//! synced, then renamed over it ([`atomic_write_file`]), so a failed write leaves the old file
//! or none. When the path was a symlink, it is the file the link leads to that is replaced
//! (or, for a dangling link, created): the link stays. A character or block device or a FIFO
//! is written through, as `>` would, never replaced: `/dev/null` stays a device and a reader
//! of the FIFO gets the bytes. A directory or a socket is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use atomic_write_file::AtomicWriteFile;
use atomic_write_file::unix::OpenOptionsExt as _;
use rustix::fs::OFlags;

/// Symlinks followed before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// A file being written for the user: see the module documentation for what the path may be.
pub struct OutputFile {
    target: Target,
}

enum Target {
    /// A regular file or a new one: appears (or is replaced) only on commit.
    Replace(AtomicWriteFile),
    /// A device or a FIFO: bytes go straight to it.
    Through(File),
}

impl OutputFile {
    /// Opens `path` for writing. A FIFO's open waits for a reader, as a shell's does.
    pub fn create(path: &Path) -> io::Result<OutputFile> {
        let target = match fs::metadata(path) {
            Ok(metadata) if metadata.is_file() => match named_file(path, &metadata)? {
                Some(file) => Target::Replace(replace(&file)?),
                // A regular file with no name to rename over (`/proc/self/fd/1` of a deleted
                // file): written in place, as a redirection would.
                None => Target::Through(open_through(path, true)?),
            },
            Ok(metadata) if metadata.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory",
                ));
            }
            Ok(metadata) if metadata.file_type().is_socket() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a socket: give a file, a FIFO or a device",
                ));
            }
            // Character and block devices, FIFOs.
            Ok(_) => Target::Through(open_through(path, false)?),
            // Nothing there, or a dangling symlink: the file it leads to is created.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Target::Replace(replace(&follow_links(path)?)?)
            }
            Err(e) => return Err(e),
        };
        Ok(OutputFile { target })
    }

    /// Finishes the output: a replaced or new file is synced and takes its name (then its
    /// directory is synced); a device or FIFO has had every byte already.
    pub fn commit(self) -> io::Result<()> {
        match self.target {
            Target::Replace(file) => file.commit(),
            Target::Through(mut file) => file.flush(),
        }
    }
}

impl OutputFile {
    /// Whether the output can seek back (to finish a header whose size was known only at the
    /// end): a regular file can; a FIFO or a terminal cannot.
    pub fn is_seekable(&self) -> bool {
        match &self.target {
            Target::Replace(_) => true,
            Target::Through(file) => file.metadata().is_ok_and(|m| m.is_file()),
        }
    }
}

impl Seek for OutputFile {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        match &mut self.target {
            Target::Replace(file) => file.seek(position),
            Target::Through(file) => file.seek(position),
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.target {
            Target::Replace(file) => file.write(data),
            Target::Through(file) => file.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Replace(file) => file.flush(),
            Target::Through(file) => file.flush(),
        }
    }
}

/// The output file: mode 0644 (less the umask) as before, not copied from a file it replaces.
fn replace(path: &Path) -> io::Result<AtomicWriteFile> {
    let mut options = AtomicWriteFile::options();
    options
        .mode(0o644)
        .preserve_mode(false)
        .preserve_owner(false);
    options.open(path)
}

fn open_through(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .truncate(truncate)
        // Writing to a terminal must not make it the controlling terminal.
        .custom_flags(OFlags::NOCTTY.bits() as i32)
        .open(path)
}

/// The path `path` leads to through symlinks at its last component; `path` itself when it
/// is none. A dangling link gives the missing path it names.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symlinks to follow"
    )))
}

/// The name of the regular file `path` leads to, checked to be that very file (the kernel's
/// links in `/proc` can name what is no longer there).
fn named_file(path: &Path, metadata: &fs::Metadata) -> io::Result<Option<PathBuf>> {
    let file = follow_links(path)?;
    Ok(fs::metadata(&file)
        .ok()
        .filter(|m| m.dev() == metadata.dev() && m.ino() == metadata.ino())
        .map(|_| file))
}
