//! Writing a blob: stream to a temporary file, verify, sync, then publish under the digest.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_core::oci_digest::Hasher;
use oci_core::{Algorithm, BlobWriter, CopyError, Digest, Error, Result, check_commit};
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::fsio::sync_dir;
use crate::pipeline::{CHUNK_SIZE, Chunk, ChunkPool, Pipeline};

/// Prefix of named temporary files: what gc and fsck recognise as debris of an interrupted
/// write. Anonymous (`O_TMPFILE`) temporaries leave nothing behind at all.
pub const TEMP_PREFIX: &str = ".tmp-";

const BLOB_MODE: u32 = 0o644;

enum TempFile {
    /// An `O_TMPFILE` inode, linked to its name only once verified.
    Anonymous(File),
    /// A `.tmp-*` file in the blob directory, renamed once verified.
    Named(tempfile::NamedTempFile),
}

impl TempFile {
    fn create(dir: &Path) -> Result<TempFile> {
        if Path::new("/proc/self/fd").is_dir() {
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            if let Ok(fd) = rustix::fs::open(dir, flags, Mode::from_raw_mode(BLOB_MODE)) {
                return Ok(TempFile::Anonymous(File::from(fd)));
            }
        }
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::fs::Permissions::from_mode(BLOB_MODE))
            .tempfile_in(dir)
            .map(TempFile::Named)
            .map_err(|e| Error::io(dir, e))
    }

    /// A second handle on the file, opened with `O_DIRECT`; `None` where the filesystem does
    /// not take it.
    fn open_direct(&self) -> Option<File> {
        let flags = OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
        let fd = match self {
            // An O_TMPFILE (made without O_EXCL) can be opened again through /proc.
            TempFile::Anonymous(file) => rustix::fs::open(
                format!("/proc/self/fd/{}", file.as_raw_fd()).as_str(),
                flags,
                Mode::empty(),
            ),
            TempFile::Named(named) => {
                rustix::fs::open(named.path(), flags | OFlags::NOFOLLOW, Mode::empty())
            }
        };
        fd.ok().map(File::from)
    }

    fn file(&mut self) -> &mut File {
        match self {
            TempFile::Anonymous(file) => file,
            TempFile::Named(named) => named.as_file_mut(),
        }
    }

    /// Gives the content its final name. An existing blob of that name is kept as it is: the
    /// name is the content's digest, so it already holds these bytes.
    fn publish(self, target: &Path) -> Result<()> {
        // gc takes a blob's name away before it decides (see `DirLayout::remove_stale_blob`):
        // when the name goes between finding it taken and touching it, link again.
        for _ in 0..8 {
            match self.link(target)? {
                Linked::Published | Linked::Refreshed => return Ok(()),
                Linked::Vanished => {}
            }
        }
        Err(Error::io(
            target,
            io::Error::other("the blob kept disappearing while it was published"),
        ))
    }

    fn link(&self, target: &Path) -> Result<Linked> {
        let result = match self {
            TempFile::Anonymous(file) => {
                let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    fd_path.as_str(),
                    rustix::fs::CWD,
                    target,
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(io::Error::from)
            }
            TempFile::Named(named) => rustix::fs::linkat(
                rustix::fs::CWD,
                named.path(),
                rustix::fs::CWD,
                target,
                AtFlags::empty(),
            )
            .map_err(io::Error::from),
        };
        match result {
            Ok(()) => Ok(Linked::Published),
            // Same name, same content: but only a regular file can be that content.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match crate::fsio::regular_size(target, None) {
                    Err(e) if e.is_not_found() => return Ok(Linked::Vanished),
                    other => other?,
                };
                // Re-putting a blob makes it young again, so a gc running before the caller
                // tags it keeps it for the grace period.
                // Best effort: a blob another user wrote read-only cannot be touched, and
                // that only shortens its protection.
                let now = rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                };
                let times = rustix::fs::Timestamps {
                    last_access: now,
                    last_modification: now,
                };
                match rustix::fs::utimensat(
                    rustix::fs::CWD,
                    target,
                    &times,
                    AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Err(rustix::io::Errno::NOENT) => Ok(Linked::Vanished),
                    _ => Ok(Linked::Refreshed),
                }
            }
            Err(e) => Err(Error::io(target, e)),
        }
    }
}

/// What linking a finished blob to its name did.
enum Linked {
    /// The name is new.
    Published,
    /// The name was there, and is young again.
    Refreshed,
    /// The name was there, and then was not (gc took it): link again.
    Vanished,
}

/// The directory's [`BlobWriter`]. Small blobs are hashed and written on the caller's
/// thread; from the first full chunk on, a pipeline of a hashing and a writing thread takes
/// over.
pub struct DirBlobWriter {
    dir: PathBuf,
    temp: TempFile,
    algorithm: Algorithm,
    /// Until the pipeline starts.
    hasher: Option<Hasher>,
    pipeline: Option<Pipeline>,
    /// The layout's spare chunks, for the pipeline.
    chunks: Arc<ChunkPool>,
    /// The first `filled` bytes are content.
    chunk: Chunk,
    filled: usize,
    written: u64,
    durable: bool,
}

impl DirBlobWriter {
    pub(crate) fn new(
        dir: PathBuf,
        algorithm: Algorithm,
        durable: bool,
        chunks: &Arc<ChunkPool>,
    ) -> Result<DirBlobWriter> {
        let temp = TempFile::create(&dir)?;
        Ok(DirBlobWriter {
            dir,
            temp,
            algorithm,
            hasher: Some(algorithm.hasher()),
            pipeline: None,
            chunk: chunks.take(),
            chunks: Arc::clone(chunks),
            filled: 0,
            written: 0,
            durable,
        })
    }

    /// Hands a full chunk to the pipeline, starting it the first time.
    fn dispatch(&mut self) -> io::Result<()> {
        if self.pipeline.is_none() {
            let hasher = self
                .hasher
                .take()
                .expect("the hasher is here until the pipeline starts");
            let file = self.temp.file().try_clone()?;
            // A durable write goes to the device anyway; written past the page cache it leaves
            // nothing for the final fsync to flush. A relaxed write stays cached, so the next
            // reader of the blob finds it in memory.
            let direct = if self.durable {
                self.temp.open_direct()
            } else {
                None
            };
            self.pipeline = Some(Pipeline::start(
                hasher,
                file,
                direct,
                self.durable,
                Arc::clone(&self.chunks),
            )?);
        }
        let pipeline = self.pipeline.as_mut().expect("started above");
        let chunk = std::mem::replace(&mut self.chunk, pipeline.spare_chunk());
        let len = std::mem::take(&mut self.filled);
        pipeline.send(chunk, len)
    }

    /// Hashes and writes what is left; returns the finished hasher.
    fn finish(&mut self) -> io::Result<Hasher> {
        match self.pipeline.take() {
            Some(mut pipeline) => {
                if self.filled > 0 {
                    let chunk = std::mem::replace(&mut self.chunk, pipeline.spare_chunk());
                    pipeline.send(chunk, std::mem::take(&mut self.filled))?;
                }
                pipeline.finish()
            }
            None => {
                let mut hasher = self
                    .hasher
                    .take()
                    .expect("no pipeline, so the hasher is here");
                let content = &self.chunk[..self.filled];
                hasher.update(content);
                self.temp.file().write_all(content)?;
                Ok(hasher)
            }
        }
    }
}

impl Write for DirBlobWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(CHUNK_SIZE - self.filled);
            self.chunk[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == CHUNK_SIZE {
                self.dispatch()?;
            }
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for DirBlobWriter {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn write_from(&mut self, reader: &mut dyn Read) -> Result<u64, CopyError> {
        let start = self.written;
        loop {
            if self.filled == CHUNK_SIZE {
                self.dispatch().map_err(CopyError::Write)?;
            }
            let n = match reader.read(&mut self.chunk[self.filled..]) {
                Ok(0) => return Ok(self.written - start),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            self.filled += n;
            self.written += n as u64;
        }
    }

    fn commit(mut self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        let hasher = self.finish().map_err(|e| Error::io(&self.dir, e))?;
        let actual = hasher.finalize();
        // On a mismatch the temp file is dropped with `self`, which discards it: nothing was
        // ever visible.
        check_commit(actual, self.written, size, expected)?;
        if self.durable {
            self.temp
                .file()
                .sync_all()
                .map_err(|e| Error::io(&self.dir, e))?;
        }
        let DirBlobWriter {
            dir, temp, durable, ..
        } = *self;
        let target = dir.join(actual.encoded());
        temp.publish(&target)?;
        if durable {
            sync_dir(&dir)?;
        }
        Ok(actual)
    }
}

/// Takes the blob `digest` (`size` bytes) from `source`, an open file on the filesystem of
/// `dir`, into `dir` without streaming it through the process: cloned with `copy_file_range`
/// into a temp file, hashed from there and checked, synced and published as any blob; or,
/// with `link`, hard-linked (trusting the source) and touched. `false` when the two are not
/// on one filesystem or the kernel cannot clone: the caller streams the bytes instead.
pub(crate) fn take_local(
    dir: &Path,
    source: &File,
    digest: Digest,
    size: u64,
    link: bool,
    durable: bool,
) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let same_filesystem = source
        .metadata()
        .ok()
        .zip(std::fs::metadata(dir).ok())
        .is_some_and(|(a, b)| a.dev() == b.dev());
    if !same_filesystem {
        return Ok(false);
    }
    let target = dir.join(digest.encoded());
    if link {
        let by_fd = format!("/proc/self/fd/{}", source.as_raw_fd());
        let linked = rustix::fs::linkat(
            rustix::fs::CWD,
            by_fd.as_str(),
            rustix::fs::CWD,
            &target,
            AtFlags::SYMLINK_FOLLOW,
        );
        match linked {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(_) => return Ok(false),
        }
        // Young again, as a re-put is: gc's grace period covers it until it is tagged.
        let now = rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        };
        let _ = rustix::fs::utimensat(
            rustix::fs::CWD,
            &target,
            &rustix::fs::Timestamps {
                last_access: now,
                last_modification: now,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        );
        if durable {
            sync_dir(dir)?;
        }
        return Ok(true);
    }
    let mut temp = TempFile::create(dir)?;
    let mut copied = 0u64;
    while copied < size {
        let mut from = copied;
        let want = usize::try_from(size - copied)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(source, Some(&mut from), &*temp.file(), None, want) {
            Ok(0) => break,
            Ok(n) => copied += n as u64,
            // No clone across these two, or not on this kernel: stream instead.
            Err(_) if copied == 0 => return Ok(false),
            Err(e) => return Err(Error::io(dir, io::Error::from(e))),
        }
    }
    // Verified from the clone itself, as a streamed write is verified as it arrives.
    let mut hasher = digest.algorithm().hasher();
    let mut buffer = vec![0u8; CHUNK_SIZE];
    let mut read = 0u64;
    let file = temp.file();
    loop {
        let n = std::os::unix::fs::FileExt::read_at(&*file, &mut buffer, read)
            .map_err(|e| Error::io(dir, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    check_commit(hasher.finalize(), read, Some(size), Some(digest))?;
    if durable {
        temp.file().sync_all().map_err(|e| Error::io(dir, e))?;
    }
    temp.publish(&target)?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(true)
}
