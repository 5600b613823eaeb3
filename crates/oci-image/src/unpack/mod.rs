//! Unpacking an image into a root filesystem: its layers applied in order to a directory.
//!
//! - Every filesystem write goes through the confined root (the `confined` module): parents are
//!   resolved with `openat2(RESOLVE_IN_ROOT)` (or the same walk done by hand where the
//!   kernel lacks it), and each entry is created, removed or changed with an `*at` call or a
//!   descriptor that never follows its last component. No entry name, link target or
//!   whiteout reaches outside the target, whatever symlinks earlier entries planted.
//! - Each layer is verified while it is applied: the blob against its digest and size, the
//!   uncompressed stream against the config's `rootfs.diff_ids`. Reading, decompressing and
//!   hashing run on a second thread, a few chunks ahead of the thread that writes files, so
//!   memory stays bounded whatever the layer's size.
//! - The target ([`UnpackTarget`]): a missing directory is built beside it and renamed into
//!   place at the end, so an interrupted unpack leaves no directory at all; an existing
//!   empty one is filled in place (its owner and inode kept) and emptied again on failure;
//!   anything else is refused. One `syncfs` at the end when durable.
//!
//! Whiteouts follow the image-spec and umoci: `.wh.NAME` removes NAME of lower layers,
//! `.wh..wh..opq` empties its directory of lower layers' content, neither touches what the
//! same layer created, and a whiteout of an empty, `.` or `..` name is refused. With
//! [`Whiteouts::Overlay`] they are kept as overlayfs writes them (a `0:0` character device,
//! `trusted.overlay.opaque=y`; rootless, `user.overlay.opaque`).

mod apply;
mod confined;
mod names;
mod target;

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::Descriptor;
use oci_core::{ContentKind, Digest, Store};

use crate::progress::Stage;
use crate::{Error, Progress, ResolvedImage, Result};

pub use target::UnpackTarget;

/// What happens to whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Whiteouts {
    /// Applied and gone: what they hide is removed, they leave no trace (a root filesystem).
    #[default]
    Remove,
    /// Applied, and kept as overlayfs whiteouts, for a directory per layer that overlayfs
    /// mounts as a lower layer.
    Overlay,
}

/// How to unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Unpacking as a user without privileges: owners are left as the user's (the image's
    /// recorded in `user.rootlesscontainers`, as umoci does), device nodes become empty files
    /// (with a warning), and extended attributes the user may not set are warnings rather
    /// than errors.
    pub rootless: bool,
    /// What happens to whiteouts.
    pub whiteouts: Whiteouts,
    /// Sync the target's filesystem once at the end (`syncfs`), before the target appears
    /// complete. Never a sync per file.
    pub durable: bool,
}

impl Default for UnpackOptions {
    /// As root (owners and devices as the image says), whiteouts removed, durable.
    fn default() -> Self {
        UnpackOptions {
            rootless: false,
            whiteouts: Whiteouts::Remove,
            durable: true,
        }
    }
}

impl UnpackOptions {
    /// The defaults, rootless when the effective user is not root.
    pub fn for_current_user() -> Self {
        UnpackOptions {
            rootless: !rustix::process::geteuid().is_root(),
            ..UnpackOptions::default()
        }
    }
}

/// Something of the image left out or changed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackWarning {
    /// The entry's name as its layer gives it.
    pub path: PathBuf,
    /// What was done instead.
    pub reason: String,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Layers applied.
    pub layers: usize,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of layer blobs read (compressed).
    pub compressed_bytes: u64,
    /// Bytes of uncompressed tar streams read.
    pub uncompressed_bytes: u64,
    /// What was left out or changed, in order.
    pub warnings: Vec<UnpackWarning>,
}

/// Unpacks `image` from `store` into the directory `target`, which must be missing or empty
/// (see [`UnpackTarget`]). On success the directory holds the image's root filesystem; on
/// failure it is missing (when it was) or empty again.
pub fn unpack_image(
    store: &dyn Store,
    image: &ResolvedImage,
    target: &Path,
    options: &UnpackOptions,
    progress: Option<&dyn Progress>,
) -> Result<UnpackReport> {
    // A layer that cannot be unpacked is refused before anything is created.
    check_layers(store, image)?;
    let prepared = UnpackTarget::prepare(target)?;
    let report = apply_layers(store, image, prepared.path(), options, progress)?;
    prepared.publish(options.durable)?;
    Ok(report)
}

/// Unpacks `image` as an OCI runtime bundle in `bundle_dir` (missing or empty, as for
/// [`unpack_image`]): the root filesystem in `rootfs/`, then `config.json` from the image
/// config ([`crate::bundle`]), written last so that a bundle that was interrupted never
/// looks runnable; a missing directory appears only once both are there.
pub fn unpack_bundle(
    store: &dyn Store,
    image: &ResolvedImage,
    bundle_dir: &Path,
    options: &UnpackOptions,
    progress: Option<&dyn Progress>,
) -> Result<UnpackReport> {
    check_layers(store, image)?;
    let prepared = UnpackTarget::prepare(bundle_dir)?;
    let rootfs = prepared.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
    let report = apply_layers(store, image, &rootfs, options, progress)?;
    let bundle_options = crate::bundle::BundleOptions {
        rootless: options.rootless,
        durable: options.durable,
    };
    crate::bundle::write_bundle_config(
        prepared.path(),
        &rootfs,
        image.config.spec(),
        &bundle_options,
    )?;
    prepared.publish(options.durable)?;
    Ok(report)
}

/// Applies the layers of `image` to the directory `root`, which exists (usually an
/// [`UnpackTarget`]'s path, or a `rootfs` inside it). Nothing is synced and nothing is
/// cleaned up on failure: [`unpack_image`] does both.
pub fn apply_layers(
    store: &dyn Store,
    image: &ResolvedImage,
    root: &Path,
    options: &UnpackOptions,
    progress: Option<&dyn Progress>,
) -> Result<UnpackReport> {
    let layers = check_layers(store, image)?;
    let root_fd = rustix::fs::open(
        root,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(root, e.into()))?;
    let confined_root = confined::Root::new(root_fd);
    let mut applier = apply::Applier::new(&confined_root, options);
    let mut report = UnpackReport::default();
    let count = layers.len();
    for (index, (descriptor, digest, diff_id)) in layers.iter().enumerate() {
        let number = index + 1;
        let location = store.location().of_content(*digest);
        let label = format!("layer {number}/{count}");
        let _stage = Stage::start(
            progress.unwrap_or(&crate::NoProgress),
            &label,
            Some(descriptor.size()),
        );
        let unpack_error = |what: String, source: Option<io::Error>| Error::Unpack {
            location: location.clone(),
            what,
            source,
        };
        let streamed = stream_layer(store, descriptor, *digest, *diff_id, progress, |stream| {
            applier.apply_layer(stream)
        });
        match streamed {
            Ok(sizes) => {
                report.compressed_bytes += sizes.compressed;
                report.uncompressed_bytes += sizes.uncompressed;
            }
            Err(LayerError::Read(e)) => {
                return Err(unpack_error(format!("layer {number} of {count}"), Some(e)));
            }
            Err(LayerError::DiffId { actual }) => {
                return Err(unpack_error(
                    format!(
                        "layer {number} of {count}: uncompressed content is {actual}, the config's diff_id is {diff_id}"
                    ),
                    None,
                ));
            }
            Err(LayerError::Apply(e)) => {
                let entry = String::from_utf8_lossy(&e.entry).into_owned();
                let what = match (&e.reason, entry.is_empty()) {
                    (Some(reason), true) => format!("layer {number} of {count}: {reason}"),
                    (Some(reason), false) => {
                        format!("layer {number} of {count}, {entry}: {reason}")
                    }
                    (None, true) => format!("layer {number} of {count}: not a valid tar stream"),
                    (None, false) => format!("layer {number} of {count}, {entry}"),
                };
                return Err(unpack_error(what, e.source));
            }
        }
        report.layers += 1;
    }
    applier.finish().map_err(|e| Error::Unpack {
        location: store.location().clone(),
        what: format!(
            "setting the metadata of directory {}",
            String::from_utf8_lossy(&e.entry)
        ),
        source: e.source,
    })?;
    report.entries = applier.entries;
    report.warnings = std::mem::take(&mut applier.warnings);
    Ok(report)
}

/// Layer media types an unpack reads; by their first bytes, whatever compression they name.
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// Every layer with its digest and diff_id, checked before anything is written: a layer
/// whose content is not in the image (foreign, non-distributable) or of a type that is not a
/// layer is refused, and so is a config whose diff_ids do not match the layers.
fn check_layers(
    store: &dyn Store,
    image: &ResolvedImage,
) -> Result<Vec<(Descriptor, Digest, Digest)>> {
    let layers = image.manifest.layers();
    let diff_ids = image.config.spec().rootfs().diff_ids();
    let manifest_location = || {
        Digest::try_from(image.descriptor.digest()).map_or_else(
            |_| store.location().clone(),
            |d| store.location().of_content(d),
        )
    };
    if layers.len() != diff_ids.len() {
        return Err(Error::InvalidImage {
            location: manifest_location(),
            reason: format!(
                "{} layers but the config lists {} diff_ids",
                layers.len(),
                diff_ids.len()
            ),
        });
    }
    let count = layers.len();
    let mut checked = Vec::with_capacity(count);
    for (index, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let digest = Digest::try_from(layer.digest()).map_err(oci_core::Error::from)?;
        let media_type = layer.media_type().to_string();
        let refuse = |reason: String| Error::InvalidImage {
            location: store.location().of_content(digest),
            reason: format!("layer {} of {count}: {reason}", index + 1),
        };
        if media_type.contains("nondistributable") || media_type.contains("foreign") {
            return Err(refuse(format!(
                "a foreign (non-distributable) layer, {media_type}: its content is not part of the image and is not unpacked"
            )));
        }
        if !LAYER_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(refuse(format!(
                "media type {media_type} is not a layer this unpacks"
            )));
        }
        let diff_id = Digest::parse(diff_id)
            .map_err(|e| refuse(format!("the config's diff_id {diff_id:?}: {e}")))?;
        checked.push((layer.clone(), digest, diff_id));
    }
    Ok(checked)
}

struct LayerSizes {
    compressed: u64,
    uncompressed: u64,
}

enum LayerError {
    /// Reading, decompressing or verifying the blob failed.
    Read(io::Error),
    /// The uncompressed stream is not the one the config names.
    DiffId { actual: Digest },
    /// An entry could not be applied.
    Apply(apply::ApplyError),
}

/// The size of the chunks the reading thread hands over, and how many may wait.
const CHUNK: usize = 256 * 1024;
const CHUNKS_AHEAD: usize = 8;

/// What the reading thread sends.
enum Chunk {
    Data(Vec<u8>),
    End,
}

/// Streams one layer: a second thread reads the blob (verified against `digest`),
/// decompresses it and hashes the tar stream, sending it in chunks; `apply` consumes them on
/// this thread. Both verdicts are in before this returns `Ok`.
fn stream_layer(
    store: &dyn Store,
    descriptor: &Descriptor,
    digest: Digest,
    diff_id: Digest,
    progress: Option<&dyn Progress>,
    apply: impl FnOnce(&mut dyn Read) -> std::result::Result<(), apply::ApplyError>,
) -> std::result::Result<LayerSizes, LayerError> {
    let compressed = AtomicU64::new(0);
    let size = Some(descriptor.size());
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<Chunk>(CHUNKS_AHEAD);
        let (spare_sender, spare_receiver) = sync_channel::<Vec<u8>>(CHUNKS_AHEAD + 2);
        let compressed = &compressed;
        let reader = scope.spawn(move || {
            read_layer(
                store,
                digest,
                size,
                diff_id.algorithm(),
                compressed,
                &sender,
                &spare_receiver,
            )
        });
        let mut stream = ChunkReader {
            receiver,
            spare: spare_sender,
            current: Vec::new(),
            position: 0,
            ended: false,
            progress,
            reported: 0,
            compressed,
        };
        let applied = apply(&mut stream);
        // The tar stream may end (its end-of-archive blocks) before the blob does: read on,
        // so that both digests are checked over everything.
        let drained = if applied.is_ok() {
            io::copy(&mut stream, &mut io::sink()).map(drop)
        } else {
            Ok(())
        };
        // Whatever happened, the reading thread stops once its channel is closed.
        drop(stream);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread reading the layer panicked")));
        match (read, applied, drained) {
            // A failed read explains a broken stream: it comes first.
            (Err(e), _, _) => Err(LayerError::Read(e)),
            (Ok(_), Err(e), _) => Err(LayerError::Apply(e)),
            (Ok(_), Ok(()), Err(e)) => Err(LayerError::Read(e)),
            (Ok((uncompressed, actual)), Ok(()), Ok(())) => {
                if actual == diff_id {
                    Ok(LayerSizes {
                        compressed: compressed.load(Ordering::Relaxed),
                        uncompressed,
                    })
                } else {
                    Err(LayerError::DiffId { actual })
                }
            }
        }
    })
}

/// The reading thread: blob → verify → decompress → hash → chunks. Returns the length and
/// digest of the uncompressed stream, after the blob's own verdict.
fn read_layer(
    store: &dyn Store,
    digest: Digest,
    size: Option<u64>,
    diff_algorithm: oci_core::Algorithm,
    compressed: &AtomicU64,
    sender: &SyncSender<Chunk>,
    spares: &Receiver<Vec<u8>>,
) -> io::Result<(u64, Digest)> {
    let blob = store
        .fetch(ContentKind::Blob, digest, size)
        .map_err(io::Error::other)?;
    let blob: Box<dyn Read + Send> = if store.verifies_reads() {
        blob
    } else {
        Box::new(VerifyingReader::new(blob, digest, size))
    };
    let mut blob = CountingReader {
        inner: blob,
        count: compressed,
    };
    let mut buffered = BufReader::with_capacity(CHUNK, &mut blob);
    let mut hasher = diff_algorithm.hasher();
    let mut uncompressed = 0u64;
    {
        let (_, mut decoder) = crate::compression::decoder(&mut buffered)?;
        loop {
            let mut chunk = spares.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
            chunk.resize(CHUNK, 0);
            let n = read_full(&mut decoder, &mut chunk)?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            hasher.update(&chunk);
            uncompressed += n as u64;
            if sender.send(Chunk::Data(chunk)).is_err() {
                // The applying side stopped; its error is the one reported.
                return Err(io::Error::other("unpack stopped"));
            }
        }
    }
    // What the decompressor left unread (padding after the last gzip member, say) is still
    // part of the blob, and its digest covers it.
    io::copy(&mut buffered, &mut io::sink())?;
    let _ = sender.send(Chunk::End);
    Ok((uncompressed, hasher.finalize()))
}

/// Fills `buffer` as far as the stream goes.
fn read_full(reader: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

struct CountingReader<'c, R> {
    inner: R,
    count: &'c AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The applying side of the channel, as a reader; reports progress on this thread.
struct ChunkReader<'p> {
    receiver: Receiver<Chunk>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    ended: bool,
    progress: Option<&'p dyn Progress>,
    reported: u64,
    compressed: &'p AtomicU64,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Chunk::Data(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    self.position = 0;
                    let _ = self.spare.try_send(used);
                    if let Some(progress) = self.progress {
                        let now = self.compressed.load(Ordering::Relaxed);
                        progress.advance(now.saturating_sub(self.reported));
                        self.reported = now;
                    }
                }
                Ok(Chunk::End) => self.ended = true,
                // The reading thread failed; its error is reported once it is joined.
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the layer's stream ended early",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
