//! [`DockerArchiveWriter`]: a docker archive written as a copy streams into it.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::{Mutex, MutexGuard};

use oci_core::oci_digest::Hasher;
use oci_core::oci_spec::image::{Descriptor, ImageIndex};
use oci_core::{
    Algorithm, BlobWriter, Compression, ContentKind, CopyError, Digest, Error, Location,
    MAX_MANIFEST_SIZE, Result, Store, index, read_bounded,
};
use serde::Deserialize;
use tar::EntryType;

use super::decompressed;
use super::format::{
    Config, MANIFEST_FILE, MAX_METADATA_SIZE, ManifestItem, REPOSITORIES_FILE, normalize_repo_tag,
};
use crate::framing;

/// The mode of every file written, as docker 25 writes them.
const FILE_MODE: u32 = 0o644;
/// Chunks handed from the thread reading (and decompressing) a layer to the one hashing and
/// writing it; a few in flight stay far below the RSS bound.
const CHUNK_SIZE: usize = 1 << 20;
const QUEUE_DEPTH: usize = 4;

/// Moves the output to a position; set only by [`DockerArchiveWriter::seekable`], where the
/// output type can seek.
type SeekFn<W> = fn(&mut W, SeekFrom) -> io::Result<u64>;

/// A docker archive written to any [`Write`] as a [`Store`], so that [`oci_core::copy_image`]
/// writes one as it streams an image: layers as they arrive, the config, and
/// `manifest.json` (and `repositories`) at [`DockerArchiveWriter::finish`].
///
/// Layers are stored uncompressed, as `docker load` and skopeo expect, named as skopeo names
/// them: `<diff_id hex>.tar`, the config `<digest hex>.json`. A gzip or zstd layer is
/// decompressed on its way in, and its diff_id hashed as it goes; when the image's manifest
/// arrives, every layer's diff_id is checked against the config's. The size of a decompressed
/// layer is known only at its end: on a [`DockerArchiveWriter::seekable`] output (a regular
/// file) its header is written first with a placeholder and rewritten once the size is known,
/// so the layer is written once; on any other output (a pipe) it is spooled to an anonymous
/// temp file first, never to memory.
///
/// Only images: a manifest list or index is refused (a docker archive holds one platform of
/// an image: pick it before the copy). Manifests are not stored (the format has no place for
/// them); their digests are remembered so that a copy can name the image.
///
/// Any failure once bytes of a member are in the stream poisons the writer: every later call
/// fails, and the output must be discarded (an [`crate::OutputFile`] not committed leaves
/// nothing at its path).
pub struct DockerArchiveWriter<W: Write + Send> {
    label: PathBuf,
    location: Location,
    state: Mutex<State<W>>,
}

struct State<W> {
    out: W,
    seek: Option<SeekFn<W>>,
    /// Bytes written so far: where the next member starts.
    position: u64,
    /// Layers written, by the digest they were pushed under: their diff_id.
    layers: HashMap<Digest, Digest>,
    /// Diff_ids already in the archive (two compressed forms of one layer are written once).
    diff_ids: HashMap<Digest, u64>,
    /// Configs written: their diff_ids.
    configs: HashMap<Digest, Vec<Digest>>,
    /// Images, by manifest digest, in the order their manifests came.
    images: Vec<Image>,
    poisoned: Option<String>,
}

struct Image {
    descriptor: Descriptor,
    config: Digest,
    layers: Vec<Digest>,
    repo_tags: Vec<String>,
}

impl<W: Write + Send> DockerArchiveWriter<W> {
    /// A writer onto `out`, which cannot seek (a pipe): a compressed layer is spooled to a
    /// temp file to learn its size before it is written. `label` names the archive in
    /// messages.
    pub fn new(out: W, label: impl Into<PathBuf>) -> DockerArchiveWriter<W> {
        DockerArchiveWriter::with_seek(out, label, None)
    }

    fn with_seek(
        out: W,
        label: impl Into<PathBuf>,
        seek: Option<SeekFn<W>>,
    ) -> DockerArchiveWriter<W> {
        let label = label.into();
        DockerArchiveWriter {
            location: Location::Path(label.clone()),
            label,
            state: Mutex::new(State {
                out,
                seek,
                position: 0,
                layers: HashMap::new(),
                diff_ids: HashMap::new(),
                configs: HashMap::new(),
                images: Vec::new(),
                poisoned: None,
            }),
        }
    }

    /// Writes `manifest.json`, `repositories` (when an image has a RepoTag) and the
    /// end-of-archive marker, and returns the output (flushed).
    pub fn finish(self) -> Result<W> {
        let label = self.label.clone();
        let mut state = self.state.into_inner().map_err(|_| poisoned_lock(&label))?;
        state.check(&label)?;
        let items: Vec<ManifestItem> = state
            .images
            .iter()
            .map(|image| ManifestItem {
                config: config_name(image.config),
                repo_tags: image.repo_tags.clone(),
                layers: image
                    .layers
                    .iter()
                    .map(|layer| layer_name(state.layers[layer]))
                    .collect(),
            })
            .collect();
        let manifest = serde_json::to_vec(&items).map_err(|e| Error::json(&label, e))?;
        let repositories = repositories(&state);
        let io = |e| Error::io(&label, e);
        state.write_file(MANIFEST_FILE, &manifest).map_err(io)?;
        if let Some(repositories) = repositories {
            state
                .write_file(REPOSITORIES_FILE, &repositories)
                .map_err(io)?;
        }
        framing::write_end(&mut state.out).map_err(io)?;
        state.out.flush().map_err(io)?;
        Ok(state.out)
    }

    fn lock(&self) -> Result<MutexGuard<'_, State<W>>> {
        let state = self.state.lock().map_err(|_| poisoned_lock(&self.label))?;
        state.check(&self.label)?;
        Ok(state)
    }

    fn write_only(&self, what: &str) -> Error {
        Error::unsupported(
            &self.location,
            format!("a docker archive being written cannot {what}"),
        )
    }

    /// A config: read whole (it is small), checked, parsed for its diff_ids, written.
    fn put_config(
        &self,
        state: &mut State<W>,
        digest: Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<()> {
        let location = self.location.of_content(digest);
        let bytes = oci_core::read_bounded_sized(content, MAX_METADATA_SIZE, size, &location)?;
        check_content(digest, size, &bytes)?;
        let config = Config::parse(&bytes, &location)?;
        state
            .write_file(&config_name(digest), &bytes)
            .map_err(|e| state.output_failed(&self.label, digest, e))?;
        state.configs.insert(digest, config.diff_ids);
        Ok(())
    }

    /// A layer: stored uncompressed under its diff_id.
    fn put_layer(
        &self,
        state: &mut State<W>,
        digest: Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<()> {
        let mut head = [0u8; 4];
        let head_len = fill(content, &mut head).map_err(|e| self.source_failed(digest, e))?;
        let mut content = Counted {
            inner: (&head[..head_len]).chain(content),
            count: 0,
        };
        let compression = Compression::detect(&head[..head_len]);
        let diff_id = if compression == Compression::None {
            // The layer is its own diff_id: name and size are known now.
            let name = layer_name(digest);
            state
                .write_header(&name, size)
                .map_err(|e| state.output_failed(&self.label, digest, e))?;
            let written = stream_hashed(&mut content, &mut state.out, digest.algorithm());
            let (actual, n) = self.settle(state, digest, written)?;
            state.position += n;
            if n != size || actual != digest || content.count != size {
                return Err(state.poison(
                    &self.label,
                    format!("layer {digest}: got {n} bytes hashing to {actual}"),
                ));
            }
            state
                .finish_member(n)
                .map_err(|e| state.output_failed(&self.label, digest, e))?;
            digest
        } else {
            let mut plain = decompressed(&mut content, compression)
                .map_err(|e| self.source_failed(digest, e))?;
            // The diff_id is hashed with the layer's own algorithm; the config has the last
            // word, when the manifest arrives.
            let algorithm = digest.algorithm();
            let diff_id = match state.seek {
                Some(seek) => self.write_sized_later(state, &mut plain, algorithm, seek, digest)?,
                None => self.write_spooled(state, &mut plain, algorithm, digest)?,
            };
            drop(plain);
            if content.count != size {
                return Err(state.poison(
                    &self.label,
                    format!(
                        "layer {digest}: {} compressed bytes, its descriptor says {size}",
                        content.count
                    ),
                ));
            }
            diff_id
        };
        state.layers.insert(digest, diff_id);
        Ok(())
    }

    /// A decompressed layer on a seekable output: a placeholder header, the content, then the
    /// header again with the name and size now known.
    fn write_sized_later(
        &self,
        state: &mut State<W>,
        plain: &mut dyn Read,
        algorithm: Algorithm,
        seek: SeekFn<W>,
        digest: Digest,
    ) -> Result<Digest> {
        let start = state.position;
        let placeholder = placeholder_name(algorithm);
        let header_len = state
            .write_header(&placeholder, 0)
            .map_err(|e| state.output_failed(&self.label, digest, e))?;
        let written = stream_hashed(plain, &mut state.out, algorithm);
        let (diff_id, n) = self.settle(state, digest, written)?;
        // Another compressed form of a layer already written gives a second member of the
        // same name and content, which every reader takes as one.
        let rewritten = seek(&mut state.out, SeekFrom::Start(start))
            .and_then(|_| {
                let mut header = Vec::with_capacity(header_len as usize);
                framing::write_header(
                    &mut header,
                    &layer_name(diff_id),
                    EntryType::Regular,
                    FILE_MODE,
                    n,
                )?;
                debug_assert_eq!(header.len() as u64, header_len);
                state.out.write_all(&header)
            })
            .and_then(|()| seek(&mut state.out, SeekFrom::Start(start + header_len + n)));
        rewritten.map_err(|e| state.output_failed(&self.label, digest, e))?;
        state.position = start + header_len + n;
        state
            .finish_member(n)
            .map_err(|e| state.output_failed(&self.label, digest, e))?;
        state.diff_ids.insert(diff_id, n);
        Ok(diff_id)
    }

    /// A decompressed layer on an output that cannot seek: spooled, then written.
    fn write_spooled(
        &self,
        state: &mut State<W>,
        plain: &mut dyn Read,
        algorithm: Algorithm,
        digest: Digest,
    ) -> Result<Digest> {
        let temp_dir = std::env::temp_dir();
        let mut spool = tempfile::tempfile().map_err(|e| Error::io(&temp_dir, e))?;
        let spooled = stream_hashed(plain, &mut spool, algorithm);
        let (diff_id, n) = match spooled {
            Ok(done) => done,
            Err(CopyError::Read(e)) => return Err(self.source_failed(digest, e)),
            Err(CopyError::Write(e)) => return Err(Error::io(&temp_dir, e)),
        };
        if state.diff_ids.contains_key(&diff_id) {
            return Ok(diff_id);
        }
        spool.rewind().map_err(|e| Error::io(&temp_dir, e))?;
        state
            .write_header(&layer_name(diff_id), n)
            .map_err(|e| state.output_failed(&self.label, digest, e))?;
        match oci_core::copy_stream(&mut spool, &mut state.out) {
            Ok(copied) if copied == n => {}
            Ok(copied) => {
                return Err(state.poison(
                    &self.label,
                    format!("spooled layer {diff_id} shrank to {copied} of {n} bytes"),
                ));
            }
            Err(CopyError::Read(e)) => {
                let _ = state.poison(&self.label, format!("reading spooled layer {diff_id}: {e}"));
                return Err(Error::io(&temp_dir, e));
            }
            Err(CopyError::Write(e)) => return Err(state.output_failed(&self.label, digest, e)),
        }
        state.position += n;
        state
            .finish_member(n)
            .map_err(|e| state.output_failed(&self.label, digest, e))?;
        state.diff_ids.insert(diff_id, n);
        Ok(diff_id)
    }

    /// The end of a member's content streamed into the output: its digest and length, or the
    /// writer poisoned (the header promised bytes that did not come) and the error blamed on
    /// the side that failed.
    fn settle(
        &self,
        state: &mut State<W>,
        digest: Digest,
        written: Result<(Digest, u64), CopyError>,
    ) -> Result<(Digest, u64)> {
        match written {
            Ok(done) => Ok(done),
            Err(CopyError::Read(e)) => {
                let _ = state.poison(&self.label, format!("reading layer {digest}: {e}"));
                Err(self.source_failed(digest, e))
            }
            Err(CopyError::Write(e)) => Err(state.output_failed(&self.label, digest, e)),
        }
    }

    /// The source's failure (it did not verify, could not be read, or would not decompress),
    /// named by the layer's digest.
    fn source_failed(&self, digest: Digest, e: io::Error) -> Error {
        Error::io(Location::Url(format!("layer {digest}")), e)
    }

    /// A manifest: not stored, but checked against what was written (the config, and each
    /// layer's diff_id against the config's), and remembered as an image.
    fn put_manifest(
        &self,
        state: &mut State<W>,
        descriptor: &Descriptor,
        content: &mut dyn Read,
    ) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let location = self.location.of_content(digest);
        let bytes = read_bounded(content, MAX_MANIFEST_SIZE, &location)?;
        check_content(digest, descriptor.size(), &bytes)?;
        let manifest: ManifestFacts =
            serde_json::from_slice(&bytes).map_err(|e| Error::json(&location, e))?;
        let media_type = manifest
            .media_type
            .unwrap_or_else(|| descriptor.media_type().to_string());
        let Some(config) = manifest.config else {
            return Err(Error::unsupported(
                &self.location,
                format!(
                    "{digest} is an index or manifest list ({media_type}): a docker archive holds \
                     one platform of an image; choose one with --platform"
                ),
            ));
        };
        let config = Digest::parse(&config.digest)?;
        let diff_ids = state.configs.get(&config).ok_or_else(|| Error::NotFound {
            location: self.location.of_content(config),
            digest: Some(config),
        })?;
        if diff_ids.len() != manifest.layers.len() {
            let why = format!(
                "manifest {digest} has {} layers, its config {config} {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            );
            return Err(state.poison(&self.label, why));
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (position, (layer, &expected)) in manifest.layers.iter().zip(diff_ids).enumerate() {
            let layer = Digest::parse(&layer.digest)?;
            let actual = *state.layers.get(&layer).ok_or_else(|| Error::NotFound {
                location: self.location.of_content(layer),
                digest: Some(layer),
            })?;
            if actual != expected {
                let why = format!(
                    "layer {position} ({layer}) has diff_id {actual}, but the config {config} says \
                     {expected}"
                );
                return Err(state.poison(&self.label, why));
            }
            layers.push(layer);
        }
        if !state
            .images
            .iter()
            .any(|i| i.descriptor.digest() == descriptor.digest())
        {
            state.images.push(Image {
                descriptor: descriptor.clone(),
                config,
                layers,
                repo_tags: Vec::new(),
            });
        }
        Ok(())
    }
}

fn poisoned_lock(label: &Path) -> Error {
    Error::unsupported(label, "the archive is invalid: a writer panicked")
}

/// What a manifest says that a docker archive needs (an index has no `config`).
#[derive(Deserialize)]
struct ManifestFacts {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<DescriptorFacts>,
    #[serde(default)]
    layers: Vec<DescriptorFacts>,
}

#[derive(Deserialize)]
struct DescriptorFacts {
    digest: String,
}

fn check_content(digest: Digest, size: u64, bytes: &[u8]) -> Result<()> {
    let actual = digest.algorithm().digest(bytes);
    oci_core::check_commit(actual, bytes.len() as u64, Some(size), Some(digest))
}

fn config_name(digest: Digest) -> String {
    format!("{}.json", digest.encoded())
}

fn layer_name(diff_id: Digest) -> String {
    format!("{}.tar", diff_id.encoded())
}

/// A name as long as any layer name of `algorithm`, so that the header rewritten over it
/// takes the same bytes (a long name's GNU record included).
fn placeholder_name(algorithm: Algorithm) -> String {
    format!("{}.tar", "0".repeat(algorithm.digest(b"").encoded().len()))
}

/// `repositories` as docker 25 writes it: repository → tag → the top layer's diff_id hex;
/// `None` when no image has a RepoTag.
fn repositories<W>(state: &State<W>) -> Option<Vec<u8>> {
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in &state.images {
        let Some(top) = image.layers.last().map(|layer| state.layers[layer]) else {
            continue;
        };
        for repo_tag in &image.repo_tags {
            if let Some((name, tag)) = repo_tag.rsplit_once(':') {
                repositories
                    .entry(name.to_owned())
                    .or_default()
                    .insert(tag.to_owned(), top.encoded().to_owned());
            }
        }
    }
    (!repositories.is_empty()).then(|| serde_json::to_vec(&repositories).unwrap_or_default())
}

impl<W: Write + Seek + Send> DockerArchiveWriter<W> {
    /// A writer onto an output that can seek back (a regular file): a compressed layer is
    /// decompressed straight into the archive, its header finished once its size is known.
    pub fn seekable(out: W, label: impl Into<PathBuf>) -> DockerArchiveWriter<W> {
        DockerArchiveWriter::with_seek(out, label, Some(Seek::seek))
    }
}

impl<W: Write> State<W> {
    fn check(&self, label: &Path) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(Error::InvalidLayout {
                location: label.into(),
                reason: format!("the archive is invalid and takes no more writes: {why}"),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, label: &Path, why: String) -> Error {
        let error = Error::InvalidLayout {
            location: label.into(),
            reason: format!("the archive is invalid: {why}"),
        };
        self.poisoned = Some(why);
        error
    }

    /// Writing the output failed: the stream is cut short, so the writer is poisoned, and the
    /// error names the output with the system's error as it is.
    fn output_failed(&mut self, label: &Path, digest: Digest, e: io::Error) -> Error {
        self.poisoned = Some(format!("writing {digest} failed: {e}"));
        Error::io(label, e)
    }

    /// Writes a member's header(s); returns their length.
    fn write_header(&mut self, name: &str, size: u64) -> io::Result<u64> {
        let mut header = Vec::with_capacity(1024);
        framing::write_header(&mut header, name, EntryType::Regular, FILE_MODE, size)?;
        self.out.write_all(&header)?;
        self.position += header.len() as u64;
        Ok(header.len() as u64)
    }

    /// The padding after a member of `size` bytes.
    fn finish_member(&mut self, size: u64) -> io::Result<()> {
        let padding = (512 - size % 512) % 512;
        framing::write_padding(&mut self.out, size)?;
        self.position += padding;
        Ok(())
    }

    fn write_file(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_header(name, bytes.len() as u64)?;
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        self.finish_member(bytes.len() as u64)
    }
}

/// Counts what passes.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads until `buffer` is full or the reader ends; returns how much was read.
fn fill(reader: &mut (impl Read + ?Sized), buffer: &mut [u8]) -> io::Result<usize> {
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

/// Copies `reader` to its end into `out`, hashing what passes with `algorithm`; returns the
/// digest and length. The reads (and whatever work the reader does: the source's own
/// verification, decompression) stay on this thread; the hashing and the writes run on
/// another, a few chunks behind, so the two halves overlap on two cores.
fn stream_hashed(
    reader: &mut dyn Read,
    out: &mut (impl Write + Send + ?Sized),
    algorithm: Algorithm,
) -> Result<(Digest, u64), CopyError> {
    let (to_writer, chunks) = sync_channel::<Vec<u8>>(QUEUE_DEPTH);
    let (spare_sender, spare) = sync_channel::<Vec<u8>>(QUEUE_DEPTH + 2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> io::Result<(Hasher, u64)> {
            let mut hasher = algorithm.hasher();
            let mut written = 0u64;
            for chunk in chunks {
                hasher.update(&chunk);
                out.write_all(&chunk)?;
                written += chunk.len() as u64;
                let _ = spare_sender.try_send(chunk);
            }
            Ok((hasher, written))
        });
        let mut read_error = None;
        loop {
            let mut chunk = spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE]);
            chunk.resize(CHUNK_SIZE, 0);
            match fill(reader, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    // The writer hung up: it failed, and says why below.
                    if to_writer.send(chunk).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        drop(to_writer);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the archive's writer thread panicked")));
        match (read_error, written) {
            (_, Err(e)) => Err(CopyError::Write(e)),
            (Some(e), Ok(_)) => Err(CopyError::Read(e)),
            (None, Ok((hasher, n))) => Ok((hasher.finalize(), n)),
        }
    })
}

impl<W: Write + Send> Store for DockerArchiveWriter<W> {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        let state = self.lock()?;
        let written = state.layers.contains_key(&digest)
            || state.configs.contains_key(&digest)
            || state
                .images
                .iter()
                .any(|image| image.descriptor.digest().to_string() == digest.to_string());
        // The size as pushed is not kept; presence is what a copy asks.
        Ok(written.then_some(0))
    }

    fn fetch(
        &self,
        _: ContentKind,
        _: Digest,
        _: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        Err(self.write_only("read back what it wrote"))
    }

    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let size = descriptor.size();
        let mut state = self.lock()?;
        let media_type = descriptor.media_type().to_string();
        if ContentKind::of(&media_type) == ContentKind::Manifest {
            return self.put_manifest(&mut state, descriptor, content);
        }
        if state.layers.contains_key(&digest) || state.configs.contains_key(&digest) {
            return Ok(());
        }
        if is_layer(&media_type) {
            self.put_layer(&mut state, digest, size, content)
        } else {
            self.put_config(&mut state, digest, size, content)
        }
    }

    fn begin_blob(&self, _: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Err(self.write_only(
            "take a blob of unknown digest (copy an image into it; build images in a layout)",
        ))
    }

    fn index(&self) -> Result<ImageIndex> {
        let state = self.lock()?;
        Ok(super::format::index_of(
            state
                .images
                .iter()
                .map(|image| (&image.descriptor, &image.repo_tags[..])),
        ))
    }

    /// An entry's ref name is a RepoTag (normalised as docker does); an image written but
    /// never named is kept untagged.
    fn put_entries(
        &self,
        entries: &[Descriptor],
        _required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        let mut state = self.lock()?;
        let mut tags = Vec::with_capacity(entries.len());
        for entry in entries {
            let position = state
                .images
                .iter()
                .position(|image| image.descriptor.digest() == entry.digest())
                .ok_or_else(|| {
                    Error::unsupported(
                        &self.location,
                        format!(
                            "{} is not an image written into this archive: a docker archive \
                             names only the images it holds",
                            entry.digest()
                        ),
                    )
                })?;
            let tag = index::ref_name(entry)
                .map(|name| {
                    normalize_repo_tag(name).map_err(|reason| Error::InvalidLayout {
                        location: self.location.clone(),
                        reason: format!("RepoTag {:?}: {reason}", oci_core::printable(name)),
                    })
                })
                .transpose()?;
            tags.push((position, tag));
        }
        for (position, tag) in tags {
            if let Some(tag) = tag {
                for image in &mut state.images {
                    image.repo_tags.retain(|t| *t != tag);
                }
                state.images[position].repo_tags.push(tag);
            }
        }
        Ok(oci_core::index::PutOutcome::default())
    }

    /// A RepoTag is not an OCI ref name (`app:v1_x` is a valid tag): checked by docker's rules.
    fn tag(&self, target: &Descriptor, name: &str) -> Result<()> {
        self.put_entries(&[index::with_ref_name(target.clone(), name)], &[])
            .map(drop)
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        let Ok(tag) = normalize_repo_tag(name) else {
            return Ok(false);
        };
        let mut state = self.lock()?;
        let mut removed = false;
        for image in &mut state.images {
            let before = image.repo_tags.len();
            image.repo_tags.retain(|t| *t != tag);
            removed |= image.repo_tags.len() != before;
        }
        Ok(removed)
    }
}

/// Whether a blob of `media_type` is a layer (OCI's and Docker's, any compression, and the
/// non-distributable ones), as opposed to a config.
fn is_layer(media_type: &str) -> bool {
    media_type.contains(".layer.") || media_type.contains(".rootfs.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_is_as_long_as_a_layer_name() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512, Algorithm::Blake3] {
            let diff_id = algorithm.digest(b"layer");
            assert_eq!(placeholder_name(algorithm).len(), layer_name(diff_id).len());
        }
    }
}
