//! What a layer is once written, the options for writing one, and the single-pass chain every
//! layer's bytes go through.
//!
//! ```text
//! tar bytes ─► HashingWriter (diff_id) ─► Encoder (gzip/zstd/none, on worker threads)
//!           ─► BlobWriter (hashes the blob digest as it writes, publishes on commit)
//! ```
//!
//! One pass, nothing held whole: the uncompressed stream is hashed on its way into the
//! compressor and the compressed stream on its way to storage.

use std::io::{self, Write};
use std::path::PathBuf;

use oci_core::oci_digest::HashingWriter;
use oci_core::oci_spec::image::Descriptor;
use oci_core::{Algorithm, BlobWriter, Digest, Location, Store};

use crate::compression::{Compression, Encoder};
use crate::{Error, Result};

/// A layer stored as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob: layer media type, compressed size and digest.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar, as `rootfs.diff_ids` lists it.
    pub diff_id: Digest,
    /// The length of the uncompressed tar.
    pub uncompressed_size: u64,
    /// What of the source the layer leaves out, in walk order (empty for a layer from a tar).
    pub skipped: Vec<Skipped>,
}

/// Something of a source tree that a layer leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry, relative to the source directory.
    pub path: PathBuf,
    /// Why it, or part of it, is left out.
    pub reason: SkipReason,
}

/// Why a layer leaves something of its source out. `Display` says it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A socket: tar has no entry type for one. Its other hard links are sockets too, and are
    /// left out as well.
    Socket,
    /// The layout the layer is being written into, found inside the source tree (by device
    /// and inode, whatever path it was opened by).
    Layout,
    /// One extended attribute of the entry (the rest of the entry is stored) whose value is
    /// empty: a PAX record with an empty value means "no such record".
    EmptyXattr {
        /// The attribute's name.
        name: Vec<u8>,
    },
    /// One extended attribute of the entry whose name a PAX record cannot carry: not UTF-8,
    /// or holding `=`.
    UnnamableXattr {
        /// The attribute's name.
        name: Vec<u8>,
    },
    /// The extended attributes of this entry, and of every later symlink, FIFO and device of
    /// the walk: those are read through `/proc/self/fd`, which is not mounted. Reported once.
    XattrsWithoutProc,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Socket => f.write_str("a socket cannot be stored in a layer"),
            SkipReason::Layout => {
                f.write_str("the layout the layer is written into cannot be part of it")
            }
            SkipReason::EmptyXattr { name } => write!(
                f,
                "extended attribute {}: a PAX record cannot hold an empty value",
                String::from_utf8_lossy(name)
            ),
            SkipReason::UnnamableXattr { name } => write!(
                f,
                "extended attribute {}: a PAX record cannot name it (not UTF-8, or holds '=')",
                String::from_utf8_lossy(name)
            ),
            SkipReason::XattrsWithoutProc => f.write_str(
                "extended attributes of symlinks, FIFOs and devices are read through \
                 /proc/self/fd, which is not mounted: not stored for this entry nor any later one",
            ),
        }
    }
}

/// The modification time recorded for each entry of a layer made from a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mtime {
    /// Each file's own mtime (whole seconds; one before 1970 in a PAX `mtime` record).
    #[default]
    Keep,
    /// The same time for every entry, in seconds since the epoch: for reproducible layers.
    Fixed(u64),
}

impl Mtime {
    /// [`Mtime::Fixed`] at `SOURCE_DATE_EPOCH` when it is set, else [`Mtime::Keep`].
    pub fn from_env() -> Result<Mtime> {
        Ok(crate::source_date_epoch()?.map_or(Mtime::Keep, Mtime::Fixed))
    }
}

/// The owner recorded for each entry of a layer made from a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// Each file's numeric uid and gid.
    #[default]
    Keep,
    /// uid 0 and gid 0 for every entry (a tree built by an unprivileged user).
    Root,
}

/// How a layer is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOptions {
    /// The blob's compression.
    pub compression: Compression,
    /// The compression level; `None` for [`compression::default_level`](crate::compression::default_level).
    pub level: Option<i32>,
    /// The algorithm of the blob digest and the diff_id.
    pub algorithm: Algorithm,
    /// Entry mtimes (directories only).
    pub mtime: Mtime,
    /// Entry owners (directories only).
    pub ownership: Ownership,
    /// Compression worker threads (at least one). The output is the same for any number.
    pub threads: usize,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            compression: Compression::Gzip,
            level: None,
            algorithm: Algorithm::Sha256,
            mtime: Mtime::Keep,
            ownership: Ownership::Keep,
            threads: default_threads(),
        }
    }
}

/// One worker per core, at most four: past that the store's disk is the limit, and each
/// zstd worker holds a few MiB.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The chain of writers a layer's tar bytes go into; see the module docs.
pub(crate) struct LayerSink<'s> {
    chain: HashingWriter<Encoder<Box<dyn BlobWriter + 's>>>,
    compression: Compression,
    location: Location,
    /// Set when a write failed: tells the chain's errors from the source's.
    failed: bool,
}

impl<'s> LayerSink<'s> {
    pub(crate) fn new(store: &'s dyn Store, options: &LayerOptions) -> Result<Self> {
        let compression = options.compression;
        let level = crate::compression::check_level(
            compression,
            options
                .level
                .unwrap_or(crate::compression::default_level(compression)),
        )?;
        let blob = store.begin_blob(options.algorithm)?;
        let location = store.location().clone();
        let encoder = Encoder::new(blob, compression, level, options.threads)
            .map_err(|e| Error::store_io(&location, e))?;
        Ok(LayerSink {
            chain: HashingWriter::new(encoder, options.algorithm),
            compression,
            location,
            failed: false,
        })
    }

    /// Whether a write into the chain failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    fn record<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        self.failed |= result.is_err();
        result
    }

    /// Where errors of the chain are reported: the store.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Ends the compressed stream, commits the blob and describes the layer.
    pub(crate) fn finish(self) -> Result<Layer> {
        let (encoder, diff_id, uncompressed_size) = self.chain.finish();
        let blob = encoder
            .finish()
            .map_err(|e| Error::store_io(&self.location, e))?;
        let size = blob.bytes_written();
        let digest = blob.commit(Some(size), None)?;
        Ok(Layer {
            descriptor: Descriptor::new(self.compression.layer_media_type(), size, digest),
            diff_id,
            uncompressed_size,
            skipped: Vec::new(),
        })
    }
}

impl Write for LayerSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.chain.write(buf);
        self.record(result)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let result = self.chain.write_all(buf);
        self.record(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.chain.flush();
        self.record(result)
    }
}
