//! [`DockerArchive`]: a docker archive read in place, as a read-only store.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageManifestBuilder, MediaType,
};
use oci_core::{
    Algorithm, BlobListing, BlobWriter, Compression, ContentKind, Digest, Error, Location, Result,
    Store, index,
};

use super::decompressed;
use super::format::{Config, MANIFEST_FILE, MAX_METADATA_SIZE, ManifestItem, normalize_repo_tag};
use super::members::Members;
use crate::ExpansionLimit;
use crate::reader::{Span, SpanReader, plain_tar};

/// A docker archive (`docker save`, `skopeo copy ... docker-archive:`, `ctr images export`)
/// opened for reading in place, as a read-only [`Store`].
///
/// Opening reads the tar headers in one pass, then `manifest.json` and each image's config;
/// nothing is extracted. Each image is presented as an OCI image manifest synthesised from
/// its config and layers (see the module documentation), listed in [`Store::index`] once per
/// RepoTag (in docker's familiar form, `busybox:latest`) or untagged. The config is served
/// byte for byte, so its digest is docker's image ID; each layer is served uncompressed under
/// its diff_id (a gzip or zstd layer file is decompressed as it is read, and was decompressed
/// once at open to learn its size and check its diff_id), verified while read.
///
/// [`Store::resolve`] takes a RepoTag in any form docker accepts (`busybox`,
/// `docker.io/library/busybox:latest`) or `@N`, the Nth image of `manifest.json` (from 0).
#[derive(Debug)]
pub struct DockerArchive {
    location: Location,
    file: File,
    compression: Compression,
    images: Vec<Image>,
    blobs: HashMap<Digest, Blob>,
    manifests: HashMap<Digest, Vec<u8>>,
}

/// One image of `manifest.json`.
#[derive(Debug)]
struct Image {
    /// The synthesised manifest, with the config's platform.
    descriptor: Descriptor,
    /// Its RepoTags, normalised.
    repo_tags: Vec<String>,
}

/// A config or layer: where it is, how it is stored, and its size as served.
#[derive(Debug, Clone, Copy)]
struct Blob {
    span: Span,
    compression: Compression,
    size: u64,
}

impl DockerArchive {
    /// Opens the docker archive at `path` (plain, or gzip or zstd as a whole).
    pub fn open(path: impl AsRef<Path>) -> Result<DockerArchive> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                location: Location::Path(path.clone()),
                digest: None,
            },
            _ => Error::io(&path, e),
        })?;
        DockerArchive::from_file(file, path)
    }

    /// Reads the docker archive in an open file, from its start; `label` names it in messages.
    pub fn from_file(file: File, label: impl Into<PathBuf>) -> Result<DockerArchive> {
        let path: PathBuf = label.into();
        let (file, compression) = plain_tar(file, &path, ExpansionLimit::default())?;
        let members = Members::scan(&file, &path)?;
        let mut archive = DockerArchive {
            location: Location::Path(path),
            file,
            compression,
            images: Vec::new(),
            blobs: HashMap::new(),
            manifests: HashMap::new(),
        };
        let manifest_location = archive.location.join(MANIFEST_FILE);
        let span = members
            .find(&archive.location, MANIFEST_FILE)
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::InvalidLayout {
                    location: manifest_location.clone(),
                    reason: "not in the archive: not a docker archive".into(),
                },
                e => e,
            })?;
        let bytes = archive.read_small(span, &manifest_location)?;
        let items: Option<Vec<ManifestItem>> =
            serde_json::from_slice(&bytes).map_err(|e| Error::json(&manifest_location, e))?;
        // docker load refuses `null` too: it is a writer's bug, not an empty archive.
        let items = items.ok_or_else(|| Error::InvalidLayout {
            location: manifest_location.clone(),
            reason: "null, not a list of images".into(),
        })?;
        for (position, item) in items.iter().enumerate() {
            let image = archive.add_image(&members, position, item)?;
            archive.images.push(image);
        }
        Ok(archive)
    }

    /// The compression the archive was stored with as a whole.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Reads a small member whole (`manifest.json`, a config), bounded.
    fn read_small(&self, span: Span, location: &Location) -> Result<Vec<u8>> {
        if span.size > MAX_METADATA_SIZE {
            return Err(Error::InvalidLayout {
                location: location.clone(),
                reason: format!(
                    "{} bytes, over the {MAX_METADATA_SIZE} byte limit",
                    span.size
                ),
            });
        }
        let mut bytes = Vec::with_capacity(span.size as usize);
        SpanReader::new(&self.file, span)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(location, e))?;
        Ok(bytes)
    }

    /// Indexes the config and layers of `manifest.json`'s item `position` and synthesises its
    /// manifest.
    fn add_image(
        &mut self,
        members: &Members,
        position: usize,
        item: &ManifestItem,
    ) -> Result<Image> {
        let at_item = || self.location.join(format!("{MANIFEST_FILE} @{position}"));
        let repo_tags = item
            .repo_tags
            .iter()
            .map(|tag| {
                normalize_repo_tag(tag).map_err(|reason| Error::InvalidLayout {
                    location: at_item(),
                    reason: format!("RepoTag {:?}: {reason}", oci_core::printable(tag)),
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let config_location = self.location.join(&item.config);
        let config_span = members.find(&self.location, &item.config)?;
        let config_bytes = self.read_small(config_span, &config_location)?;
        let config_digest = Algorithm::Sha256.digest(&config_bytes);
        if let Some(named) = digest_in_name(&item.config)
            && named != config_digest
        {
            return Err(Error::InvalidLayout {
                location: config_location,
                reason: format!(
                    "the config is named for {named} but its content is {config_digest}"
                ),
            });
        }
        let config = Config::parse(&config_bytes, &config_location)?;
        if config.diff_ids.len() != item.layers.len() {
            return Err(Error::InvalidLayout {
                location: at_item(),
                reason: format!(
                    "{} layer files, but the config {config_digest} has {} diff_ids",
                    item.layers.len(),
                    config.diff_ids.len()
                ),
            });
        }
        self.blobs.insert(
            config_digest,
            Blob {
                span: config_span,
                compression: Compression::None,
                size: config_span.size,
            },
        );

        let mut layers = Vec::with_capacity(item.layers.len());
        for (layer_path, &diff_id) in item.layers.iter().zip(&config.diff_ids) {
            let blob = match self.blobs.get(&diff_id) {
                Some(blob) => *blob,
                None => {
                    let span = members.find(&self.location, layer_path)?;
                    let blob = self.layer_blob(span, diff_id, &self.location.join(layer_path))?;
                    self.blobs.insert(diff_id, blob);
                    blob
                }
            };
            layers.push(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageLayer)
                    .digest(diff_id)
                    .size(blob.size)
                    .build()
                    .expect("media type, digest and size are set"),
            );
        }
        let config_descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageConfig)
            .digest(config_digest)
            .size(config_span.size)
            .build()
            .expect("media type, digest and size are set");
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_descriptor)
            .layers(layers)
            .build()
            .expect("schema version, config and layers are set");
        let bytes = index::to_canonical_json(&manifest).map_err(|e| Error::json(at_item(), e))?;
        let digest = Algorithm::Sha256.digest(&bytes);
        let mut descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(digest)
            .size(bytes.len() as u64)
            .build()
            .expect("media type, digest and size are set");
        descriptor.set_platform(config.platform);
        self.manifests.insert(digest, bytes);
        Ok(Image {
            descriptor,
            repo_tags,
        })
    }

    /// A layer file: plain, served as it is (verified against its diff_id as it is read); or
    /// gzip or zstd, decompressed once now, to learn its size and check its diff_id.
    fn layer_blob(&self, span: Span, diff_id: Digest, location: &Location) -> Result<Blob> {
        let mut head = [0u8; 4];
        let n = SpanReader::new(&self.file, span)
            .read(&mut head)
            .map_err(|e| Error::io(location, e))?;
        let compression = Compression::detect(&head[..n]);
        if compression == Compression::None {
            return Ok(Blob {
                span,
                compression,
                size: span.size,
            });
        }
        let mut plain = decompressed(SpanReader::new(&self.file, span), compression)
            .map_err(|e| Error::io(location, e))?;
        let mut hasher = diff_id.algorithm().hasher();
        let mut buffer = vec![0u8; oci_core::oci_digest::io::BUFFER_SIZE];
        let mut size = 0u64;
        loop {
            let n = match plain.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(location, e)),
            };
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        let actual = hasher.finalize();
        if actual != diff_id {
            return Err(Error::InvalidLayout {
                location: location.clone(),
                reason: format!(
                    "the {compression} layer decompresses to {actual}, not its diff_id {diff_id}"
                ),
            });
        }
        Ok(Blob {
            span,
            compression,
            size,
        })
    }

    fn read_only(&self) -> Error {
        Error::unsupported(
            &self.location,
            "a docker archive is read-only: copy it into a layout (oci:DIR) to change it",
        )
    }
}

/// The digest a config's name claims: docker's `<hex>.json` and docker 25's
/// `blobs/sha256/<hex>`; `None` for a name that claims none.
fn digest_in_name(name: &str) -> Option<Digest> {
    let name = super::members::clean(name)?;
    let file = name.rsplit('/').next().unwrap_or(&name);
    if let Some(hex) = file.strip_suffix(".json") {
        return Digest::parse(&format!("sha256:{hex}")).ok();
    }
    let (dir, hex) = name.rsplit_once('/')?;
    let algorithm = dir.strip_prefix("blobs/")?;
    Digest::parse(&format!("{algorithm}:{hex}")).ok()
}

impl DockerArchive {
    /// A config or layer as served: its member, decompressed when the file is compressed.
    fn open_blob(&self, digest: Digest) -> Result<impl Read + Send + '_> {
        let blob = self.blobs.get(&digest).ok_or_else(|| Error::NotFound {
            location: self.location.of_content(digest),
            digest: Some(digest),
        })?;
        decompressed(SpanReader::new(&self.file, blob.span), blob.compression)
            .map_err(|e| Error::io(self.location.of_content(digest), e))
    }
}

impl Store for DockerArchive {
    fn location(&self) -> &Location {
        &self.location
    }

    /// Manifests and blobs are one namespace here, as in a layout.
    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        Ok(match self.manifests.get(&digest) {
            Some(bytes) => Some(bytes.len() as u64),
            None => self.blobs.get(&digest).map(|blob| blob.size),
        })
    }

    fn fetch(
        &self,
        _kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        if let Some(bytes) = self.manifests.get(&digest) {
            return Ok(Box::new(VerifyingReader::new(&bytes[..], digest, size)));
        }
        let plain = self.open_blob(digest)?;
        let size = size.or(self.blobs.get(&digest).map(|blob| blob.size));
        Ok(Box::new(VerifyingReader::new(plain, digest, size)))
    }

    fn fetch_unverified(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        if self.manifests.contains_key(&digest) {
            return self.fetch(kind, digest, size);
        }
        Ok(Box::new(self.open_blob(digest)?))
    }

    fn verifies_reads(&self) -> bool {
        true
    }

    fn push(&self, _: &Descriptor, _: &mut dyn Read) -> Result<()> {
        Err(self.read_only())
    }

    fn begin_blob(&self, _: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Err(self.read_only())
    }

    /// One entry per RepoTag of each image, named by it; an image without any, untagged.
    fn index(&self) -> Result<ImageIndex> {
        Ok(super::format::index_of(
            self.images
                .iter()
                .map(|image| (&image.descriptor, &image.repo_tags[..])),
        ))
    }

    fn resolve(&self, name: &str) -> Result<Descriptor> {
        let not_found = || Error::RefNotFound {
            name: name.to_owned(),
            location: self.location.clone(),
        };
        if let Some(position) = name.strip_prefix('@') {
            let image = position
                .parse::<usize>()
                .ok()
                .and_then(|i| self.images.get(i))
                .ok_or_else(|| Error::InvalidLayout {
                    location: self.location.clone(),
                    reason: format!(
                        "no image @{position}: the archive holds {} (@0 to @{})",
                        self.images.len(),
                        self.images.len().saturating_sub(1)
                    ),
                })?;
            let descriptor = image.descriptor.clone();
            return Ok(match image.repo_tags.first() {
                Some(tag) => index::with_ref_name(descriptor, tag),
                None => descriptor,
            });
        }
        let wanted = normalize_repo_tag(name).map_err(|_| not_found())?;
        self.images
            .iter()
            .find(|image| image.repo_tags.contains(&wanted))
            .map(|image| index::with_ref_name(image.descriptor.clone(), &wanted))
            .ok_or_else(not_found)
    }

    fn put_entries(&self, _: &[Descriptor], _: &[Digest]) -> Result<oci_core::index::PutOutcome> {
        Err(self.read_only())
    }

    fn remove_ref(&self, _: &str) -> Result<bool> {
        Err(self.read_only())
    }

    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        Some(self)
    }
}

impl BlobListing for DockerArchive {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests: Vec<Digest> = self
            .blobs
            .keys()
            .chain(self.manifests.keys())
            .copied()
            .collect();
        digests.sort();
        Ok(digests)
    }
}
