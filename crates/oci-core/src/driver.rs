//! The path-level driver: the seed's `ImageDriver`, one implementation per representation.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_digest::{Algorithm, Digest};

use crate::index::IndexDocument;
use crate::layout_file::LayoutFile;
use crate::{CopyError, Error, Result};

/// The small metadata files a driver writes whole (the seed's `Writer(path, perm)`). Blobs
/// are never written this way: they go through a [`BlobWriter`], which verifies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataFile {
    /// `oci-layout`, mode 0444.
    ImageLayout,
    /// `index.json`, mode 0644.
    Index,
}

impl MetadataFile {
    /// The same file as a [`LayoutFile`].
    pub fn as_layout_file(self) -> LayoutFile {
        match self {
            MetadataFile::ImageLayout => LayoutFile::ImageLayout,
            MetadataFile::Index => LayoutFile::Index,
        }
    }

    /// The permission bits the seed gives this file.
    pub fn mode(self) -> u32 {
        match self {
            MetadataFile::ImageLayout => 0o444,
            MetadataFile::Index => 0o644,
        }
    }
}

/// What a stray file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrayKind {
    /// A temp file of a write that never finished (`.tmp-*`).
    Temporary,
    /// A file under `blobs/<alg>/` whose name is not a valid digest.
    NotADigest,
    /// Something else that is not a layout file (a directory of an unknown algorithm, a link).
    Other,
    /// A valid digest name under `blobs/<alg>/` that is not a regular file (a FIFO, a device,
    /// a socket, a directory, a symlink): no blob can be read from it, and gc leaves it.
    NotRegular(Digest),
}

/// A file in a layout that is not part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrayFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub kind: StrayKind,
    /// When it was last modified, where known.
    pub modified: Option<SystemTime>,
}

/// A blob being written: bytes go in through [`Write`], and [`BlobWriter::commit`] checks them
/// and publishes the blob under its digest. Dropping a writer without committing discards
/// everything written; nothing becomes visible.
pub trait BlobWriter: Write + Send {
    /// The algorithm the content is hashed with.
    fn algorithm(&self) -> Algorithm;

    /// Bytes written so far.
    fn bytes_written(&self) -> u64;

    /// Writes everything `reader` yields, to its end; returns how many bytes. A failure says
    /// whether reading `reader` or writing the blob failed. The default copies through a
    /// buffer; a writer with buffers of its own (the directory driver's chunks) reads straight
    /// into them and saves a copy of every byte.
    fn write_from(&mut self, reader: &mut dyn Read) -> Result<u64, CopyError> {
        crate::copy_stream(reader, self)
    }

    /// Checks the content against `size` and `expected` (each may be unknown), then publishes
    /// it and returns its digest. On a mismatch nothing is published and the error carries both
    /// values ([`Error::UnexpectedSize`], [`Error::UnexpectedDigest`]).
    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest>;
}

/// Checks what a blob writer hashed against what its caller expected; every driver's
/// [`BlobWriter::commit`] calls this before publishing.
pub fn check_commit(
    actual: Digest,
    actual_size: u64,
    size: Option<u64>,
    expected: Option<Digest>,
) -> Result<()> {
    if let Some(expected_size) = size.filter(|&s| s != actual_size) {
        return Err(Error::UnexpectedSize {
            digest: expected.unwrap_or(actual),
            expected: expected_size,
            actual: actual_size,
        });
    }
    if let Some(expected) = expected.filter(|&e| e != actual) {
        return Err(Error::UnexpectedDigest { expected, actual });
    }
    Ok(())
}

/// One representation of a layout (a directory, a tar archive, …), addressed by file.
///
/// This is the seed's `ImageDriver`. The required methods are the representation's primitive
/// operations; the defaulted ones have correct but naive implementations that a driver
/// overrides when it can do better (the directory driver locks `index.json` updates, for one).
/// Everything above this level — the seed functions in [`crate::seed`] and the
/// [`ContentStore`](crate::ContentStore) every driver gets for free — is written once, here.
pub trait ImageDriver {
    /// Where the layout lives, for messages: a directory or an archive path.
    fn location(&self) -> &Path;

    /// Creates the empty representation (the directory and `blobs/`; an archive's stream).
    fn init(&self) -> Result<()>;

    /// Opens a file for reading. Blob content is returned as stored: use
    /// [`crate::seed::get_blob_reader`] or [`ContentStore::open_blob`](crate::ContentStore::open_blob)
    /// for verified reads.
    fn reader(&self, file: LayoutFile) -> Result<Box<dyn Read + Send + '_>>;

    /// Replaces a metadata file with `contents`, atomically where the representation allows.
    fn write_file(&self, file: MetadataFile, contents: &[u8]) -> Result<()>;

    /// Removes a file. A missing file is [`Error::NotFound`].
    fn remove(&self, file: LayoutFile) -> Result<()>;

    /// Starts writing a blob hashed with `algorithm`.
    fn blob_writer(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>>;

    /// Starts writing a blob whose digest and size are known up front (copying, unpacking).
    /// A driver that must name an entry before its content (a tar stream) can then stream it
    /// instead of spooling it. The writer's `commit` still checks both. The default is
    /// [`ImageDriver::blob_writer`] for the digest's algorithm.
    fn blob_writer_for(&self, digest: Digest, size: u64) -> Result<Box<dyn BlobWriter + '_>> {
        let _ = size;
        self.blob_writer(digest.algorithm())
    }

    /// Every blob stored, by digest, in a stable order. Files under `blobs/` whose names are
    /// not valid digests are not listed (fsck reports them).
    fn list_blobs(&self) -> Result<Vec<Digest>>;

    /// The stored size of a blob. The default reads the blob through.
    fn blob_size(&self, digest: Digest) -> Result<u64> {
        let file = LayoutFile::Blob(digest);
        let mut reader = self.reader(file)?;
        io::copy(&mut reader, &mut io::sink())
            .map_err(|e| Error::io(self.location().join(file.relative_path()), e))
    }

    /// Whether the `blobs/` directory exists. The default is `true`, for representations
    /// without directories of their own (a tar archive need not hold directory entries).
    fn has_blobs_dir(&self) -> Result<bool> {
        Ok(true)
    }

    /// Whether a blob is stored.
    fn has_blob(&self, digest: Digest) -> Result<bool> {
        match self.blob_size(digest) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write of `index.json`: `edit` sees the current index and changes it, and the
    /// result is written back. The default is not safe against other processes; drivers whose
    /// storage is shared override it with a locked version.
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        let mut document = crate::seed::read_index_document(self)?;
        edit(&mut document)?;
        self.write_file(MetadataFile::Index, &document.to_bytes())
    }

    /// Runs `work` while holding the layout's exclusive lock, the one
    /// [`ImageDriver::update_index`] takes, so no index update interleaves with it (gc marks
    /// and sweeps under it). `work` must not call `update_index`. The default takes no lock.
    fn exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        work()
    }

    /// When a blob was last written or re-put; `None` where the representation has no such
    /// time (gc then treats the blob as old).
    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        let _ = digest;
        Ok(None)
    }

    /// The earliest modification time a blob can have that a write still in flight wrote or
    /// re-put (the directory driver's leases): gc keeps every blob and temp file modified after
    /// it, whatever its grace period, so a writer never finds what it wrote swept before it
    /// tags it. `None` when no write is known to be in flight, which is all a representation
    /// without shared storage can say (the default).
    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

    /// Removes a blob last modified at or before `cutoff` (or of unknown age); returns whether
    /// it did. A blob re-put after `cutoff` (see [`ImageDriver::blob_modified`]) stays, and so
    /// does a missing one. gc sweeps through this. The default checks, then removes, so a
    /// re-put between the two is lost; the directory driver closes that gap.
    fn remove_stale_blob(&self, digest: Digest, cutoff: SystemTime) -> Result<bool> {
        if self.blob_modified(digest)?.is_some_and(|m| m > cutoff) {
            return Ok(false);
        }
        match self.remove(LayoutFile::Blob(digest)) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`ImageDriver::remove_stale_blob`] over many blobs; returns those removed. A driver
    /// overrides it when a batch is cheaper than its parts (the directory driver syncs each
    /// directory once, not once per blob).
    fn remove_stale_blobs(&self, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>> {
        let mut removed = Vec::new();
        for &digest in digests {
            if self.remove_stale_blob(digest, cutoff)? {
                removed.push(digest);
            }
        }
        Ok(removed)
    }

    /// Files in the layout that are not layout files: temp files of interrupted writes, names
    /// under `blobs/` that are not digests. fsck reports them; gc removes stale temp files.
    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        Ok(Vec::new())
    }

    /// Removes a stray file reported by [`ImageDriver::stray_files`].
    fn remove_stray(&self, stray: &StrayFile) -> Result<()> {
        Err(Error::Unsupported {
            path: stray.path.clone(),
            reason: "this representation cannot remove files".into(),
        })
    }

    /// Reads a cache the library keeps beside the layout (e.g. the referrers index); `None`
    /// when there is none. The default keeps no cache.
    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let _ = name;
        Ok(None)
    }

    /// Replaces a cache (see [`ImageDriver::read_cache`]); the default drops it.
    fn write_cache(&self, name: &str, contents: &[u8]) -> Result<()> {
        let _ = (name, contents);
        Ok(())
    }

    /// Whether verified reads are on (the default). A driver may let its user turn them off
    /// for trusted, hot data; reads through [`crate::seed::get_blob_reader`] always verify.
    fn verifies_reads(&self) -> bool {
        true
    }
}

/// A reference to a driver is a driver, so `&&dyn ImageDriver` coerces to `&dyn ContentStore`
/// and generic code can take drivers by reference.
impl<T: ImageDriver + ?Sized> ImageDriver for &T {
    fn location(&self) -> &Path {
        (**self).location()
    }
    fn init(&self) -> Result<()> {
        (**self).init()
    }
    fn reader(&self, file: LayoutFile) -> Result<Box<dyn Read + Send + '_>> {
        (**self).reader(file)
    }
    fn write_file(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        (**self).write_file(file, contents)
    }
    fn remove(&self, file: LayoutFile) -> Result<()> {
        (**self).remove(file)
    }
    fn blob_writer(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        (**self).blob_writer(algorithm)
    }
    fn blob_writer_for(&self, digest: Digest, size: u64) -> Result<Box<dyn BlobWriter + '_>> {
        (**self).blob_writer_for(digest, size)
    }
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        (**self).list_blobs()
    }
    fn blob_size(&self, digest: Digest) -> Result<u64> {
        (**self).blob_size(digest)
    }
    fn has_blobs_dir(&self) -> Result<bool> {
        (**self).has_blobs_dir()
    }
    fn has_blob(&self, digest: Digest) -> Result<bool> {
        (**self).has_blob(digest)
    }
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        (**self).update_index(edit)
    }
    fn exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        (**self).exclusive(work)
    }
    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        (**self).blob_modified(digest)
    }
    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>> {
        (**self).writes_in_flight_since()
    }
    fn remove_stale_blob(&self, digest: Digest, cutoff: SystemTime) -> Result<bool> {
        (**self).remove_stale_blob(digest, cutoff)
    }
    fn remove_stale_blobs(&self, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>> {
        (**self).remove_stale_blobs(digests, cutoff)
    }
    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        (**self).stray_files()
    }
    fn remove_stray(&self, stray: &StrayFile) -> Result<()> {
        (**self).remove_stray(stray)
    }
    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        (**self).read_cache(name)
    }
    fn write_cache(&self, name: &str, contents: &[u8]) -> Result<()> {
        (**self).write_cache(name, contents)
    }
    fn verifies_reads(&self) -> bool {
        (**self).verifies_reads()
    }
}
