//! [`Registry`]: one repository of a registry, as a [`Store`].

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
use oci_core::{
    Algorithm, BlobWriter, ContentKind, Digest, Location, Result, Store, check_commit,
    check_stored, index,
};
use ureq::http;

use crate::client::{Client, Payload, Request};
use crate::download::Download;
use crate::upload::{StreamingUpload, Upload, upload_known};
use crate::{Error, ImageReference, RegistryOptions};

/// Manifests and indexes larger than this are refused: the distribution spec has registries
/// accept at least 4 MiB, and no real one is larger.
pub const MAX_REGISTRY_MANIFEST: u64 = 4 << 20;

/// A page of a tag list larger than this is refused.
const TAG_LIST_LIMIT: u64 = 64 << 20;

/// The manifest media types a pull accepts, in the `Accept` header.
const MANIFEST_TYPES: [&str; 5] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.artifact.manifest.v1+json",
];

/// Docker's schema 1, which is refused.
const SCHEMA1_TYPES: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// A repository of a registry, reached over the OCI distribution API: blobs and manifests by
/// digest, tags as named index entries. It has none of the capabilities (a registry's blobs
/// are neither listed nor removed by clients, and it has no lock): gc of a registry is
/// refused, fsck checks one image at a time ([`oci_core::fsck::fsck_image`]).
pub struct Registry {
    client: Arc<Client>,
    repository: ImageReference,
    location: Location,
    /// Manifests this store pushed or read, by digest: a tag is a `PUT` of the manifest's
    /// bytes under the tag's name, and they need not be fetched again for it.
    manifests: Mutex<HashMap<Digest, (Vec<u8>, String)>>,
    /// Set to stop uploads between chunks (a Ctrl-C).
    cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A manifest from what was read already (always checked: it is in memory), or a blob's
    /// download, checked against its digest when `verify`.
    fn open_content(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
        verify: bool,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let location = self.at(digest);
        let not_found = |e: Error| match e.at(location.clone()) {
            oci_core::Error::NotFound { location, .. } => oci_core::Error::NotFound {
                location,
                digest: Some(digest),
            },
            other => other,
        };
        if kind == ContentKind::Manifest {
            let cached = self
                .manifests()
                .get(&digest)
                .map(|(bytes, _)| bytes.clone());
            let bytes = match cached {
                Some(bytes) => bytes,
                None => {
                    self.get_manifest(&digest.to_string(), Some(digest))
                        .map_err(not_found)?
                        .0
                }
            };
            return Ok(Box::new(VerifyingReader::new(
                io::Cursor::new(bytes),
                digest,
                size,
            )));
        }
        let download = Download::start(
            &self.client,
            self.path(ContentKind::Blob, &digest.to_string()),
            self.pull_scope(),
            size,
        )
        .map_err(not_found)?;
        if verify {
            Ok(Box::new(VerifyingReader::new(download, digest, size)))
        } else {
            Ok(Box::new(download))
        }
    }

    /// The repository `reference` names (its tag or digest are not part of the store; use
    /// [`ImageReference::target`] with [`Store::resolve`]).
    pub fn open(reference: &ImageReference, options: RegistryOptions) -> Result<Registry, Error> {
        let client = Client::new(reference, options)?;
        Ok(Registry::with_client(Arc::new(client), reference))
    }

    /// Another repository of the same registry, sharing its connections and tokens.
    pub fn with_client(client: Arc<Client>, reference: &ImageReference) -> Registry {
        let repository = reference.repository_only();
        Registry {
            location: Location::Url(format!(
                "docker://{}/{}",
                repository.registry, repository.repository
            )),
            client,
            repository,
            manifests: Mutex::new(HashMap::new()),
            cancel: None,
        }
    }

    /// Stops uploads between chunks once `flag` is set (and deletes their sessions).
    pub fn cancel_on(mut self, flag: Arc<AtomicBool>) -> Registry {
        self.cancel = Some(flag);
        self
    }

    /// The repository.
    pub fn reference(&self) -> &ImageReference {
        &self.repository
    }

    /// The client, to open other repositories of the same registry with.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    pub(crate) fn name(&self) -> &str {
        &self.repository.repository
    }

    pub(crate) fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.name())
    }

    fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.name())
    }

    fn manifests(&self) -> MutexGuard<'_, HashMap<Digest, (Vec<u8>, String)>> {
        self.manifests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn path(&self, kind: ContentKind, reference: &str) -> String {
        let namespace = match kind {
            ContentKind::Blob => "blobs",
            ContentKind::Manifest => "manifests",
        };
        format!("/v2/{}/{namespace}/{reference}", self.name())
    }

    fn at(&self, digest: Digest) -> Location {
        self.location.of_content(digest)
    }

    /// `HEAD` of a manifest by tag or digest: its descriptor, or `None`.
    fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>, Error> {
        let request = Request::new(
            http::Method::HEAD,
            self.path(ContentKind::Manifest, reference),
            self.pull_scope(),
        )
        .header("Accept", MANIFEST_TYPES.join(", "));
        let response = self.client.expect(request, &[200, 404])?;
        if response.status() == 404 {
            return Ok(None);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("Content-Type").unwrap_or_default();
        // Said at once, before anything asks for the document it cannot use.
        if SCHEMA1_TYPES[..2].contains(&media_type.as_str()) {
            return Err(Error::Refused {
                url: self
                    .client
                    .url(&self.path(ContentKind::Manifest, reference)),
                reason: format!(
                    "a Docker schema 1 manifest ({media_type}): not supported (convert it with a \
                     newer docker, or pull by a schema 2 digest)"
                ),
            });
        }
        let size = header("Content-Length").and_then(|v| v.parse::<u64>().ok());
        let digest = header("Docker-Content-Digest").and_then(|d| Digest::parse(&d).ok());
        match (digest, size) {
            (Some(digest), Some(size)) if !media_type.is_empty() => Ok(Some(Descriptor::new(
                MediaType::from(media_type.as_str()),
                size,
                digest,
            ))),
            // A registry that does not say: the document itself does.
            _ => {
                let (bytes, media_type, digest) = self.get_manifest(reference, None)?;
                Ok(Some(Descriptor::new(
                    MediaType::from(media_type.as_str()),
                    bytes.len() as u64,
                    digest,
                )))
            }
        }
    }

    /// `GET` of a manifest by tag or digest: its bytes, media type and digest, checked: at most
    /// [`MAX_REGISTRY_MANIFEST`] bytes, the digest asked for (or, by tag, the one the
    /// registry names), a media type that is the document's, not schema 1.
    pub(crate) fn get_manifest(
        &self,
        reference: &str,
        expected: Option<Digest>,
    ) -> Result<(Vec<u8>, String, Digest), Error> {
        let target = self.path(ContentKind::Manifest, reference);
        let url = self.client.url(&target);
        let (parts, bytes) = self.client.get_whole(
            || {
                Request::new(http::Method::GET, target.clone(), self.pull_scope())
                    .header("Accept", MANIFEST_TYPES.join(", "))
            },
            &[200],
            MAX_REGISTRY_MANIFEST,
            "a manifest",
        )?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header("Content-Type").unwrap_or_default();
        let named = header("Docker-Content-Digest");
        let refused = |reason: String| Error::Refused {
            url: url.clone(),
            reason,
        };
        // The digest first: bytes damaged on the way are not the registry's manifest, whatever
        // they parse as.
        let algorithm = expected.map_or(Algorithm::Sha256, |d| d.algorithm());
        let actual = algorithm.digest(&bytes);
        if let Some(expected) = expected.filter(|&e| e != actual) {
            return Err(refused(format!(
                "the manifest hashes to {actual}, not the {expected} asked for"
            )));
        }
        if expected.is_none()
            && let Some(named) = named.as_deref().and_then(|d| Digest::parse(d).ok())
            && named.algorithm() == Algorithm::Sha256
            && named != actual
        {
            return Err(refused(format!(
                "the registry says the manifest is {named}, and it hashes to {actual}"
            )));
        }
        let media_type = check_media_type(&bytes, &media_type).map_err(&refused)?;
        self.manifests()
            .insert(actual, (bytes.clone(), media_type.clone()));
        Ok((bytes, media_type, actual))
    }

    /// Stores a manifest under `reference` (its digest, or a tag); returns whether the
    /// registry said it took note of the manifest's `subject` (`OCI-Subject`).
    pub(crate) fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<bool, Error> {
        let request = Request::new(
            http::Method::PUT,
            self.path(ContentKind::Manifest, reference),
            self.push_scope(),
        )
        .header("Content-Type", media_type)
        .body(Payload::Bytes(bytes));
        let response = self.client.expect(request, &[201, 200])?;
        Ok(response.headers().contains_key("OCI-Subject"))
    }

    /// Every tag, following the registry's paging (`Link: <...>; rel="next"`). A repository
    /// nothing was pushed to has none (registries answer its list with 404 `NAME_UNKNOWN`), as
    /// it has no manifest to resolve.
    pub fn tags(&self) -> Result<Vec<String>, Error> {
        let mut tags = Vec::new();
        let first = format!("/v2/{}/tags/list?n=1000", self.name());
        let mut next = Some(first.clone());
        while let Some(target) = next.take() {
            let url = self.client.url(&target);
            let expected: &[u16] = if target == first { &[200, 404] } else { &[200] };
            let (parts, body) = self.client.get_whole(
                || Request::new(http::Method::GET, target.clone(), self.pull_scope()),
                expected,
                TAG_LIST_LIMIT,
                "a tag list",
            )?;
            if parts.status == 404 {
                break;
            }
            next = parts
                .headers
                .get("Link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let page: TagList = serde_json::from_slice(&body).map_err(|e| Error::Refused {
                url,
                reason: format!("not a tag list: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }
}

/// The media type a manifest's bytes carry, checked against what the registry said: a
/// manifest served as an index (or the other way round) is refused, and so is schema 1.
fn check_media_type(bytes: &[u8], served: &str) -> std::result::Result<String, String> {
    let served = served.split(';').next().unwrap_or("").trim();
    let document: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON ({e})"))?;
    if document
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64)
        == Some(1)
        || SCHEMA1_TYPES[..2].contains(&served)
    {
        return Err("a Docker schema 1 manifest: not supported (convert it with a newer docker, or pull by a schema 2 digest)".into());
    }
    let declared = document
        .get("mediaType")
        .and_then(serde_json::Value::as_str);
    let shape_is_index = document.get("manifests").is_some();
    let media_type = match declared {
        Some(declared) => declared.to_owned(),
        None if served.is_empty() || served == "application/json" => {
            if shape_is_index {
                MANIFEST_TYPES[0].to_owned()
            } else {
                MANIFEST_TYPES[1].to_owned()
            }
        }
        None => served.to_owned(),
    };
    if !served.is_empty() && served != "application/json" && served != media_type {
        return Err(format!(
            "served as {served}, but the document says {media_type}"
        ));
    }
    let is_index = oci_core::walk::is_index_like(&media_type);
    if is_index != shape_is_index {
        return Err(format!(
            "a {media_type} that is shaped as the other kind of document"
        ));
    }
    Ok(media_type)
}

/// The target of a `Link: <url>; rel="next"` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

impl Store for Registry {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        if kind == ContentKind::Manifest {
            return Ok(self
                .head_manifest(&digest.to_string())
                .map_err(|e| e.at(self.at(digest)))?
                .map(|d| d.size()));
        }
        let request = Request::new(
            http::Method::HEAD,
            self.path(ContentKind::Blob, &digest.to_string()),
            self.pull_scope(),
        );
        let response = self
            .client
            .expect(request, &[200, 404])
            .map_err(|e| unknown_algorithm(e, digest).at(self.at(digest)))?;
        if response.status() == 404 {
            return Ok(None);
        }
        Ok(response
            .headers()
            .get("Content-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    fn fetch(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        self.open_content(kind, digest, size, true)
    }

    fn fetch_unverified(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        self.open_content(kind, digest, size, false)
    }

    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let location = self.at(digest);
        let size = descriptor.size();
        if ContentKind::of_descriptor(descriptor) == ContentKind::Manifest {
            let bytes = oci_core::read_bounded(content, MAX_REGISTRY_MANIFEST, &location)?;
            check_commit(
                digest.algorithm().digest(&bytes),
                bytes.len() as u64,
                Some(size),
                Some(digest),
            )?;
            let media_type = descriptor.media_type().to_string();
            let noted = self
                .put_manifest(&digest.to_string(), &bytes, &media_type)
                .map_err(|e| e.at(location.clone()))?;
            self.record_referrer(&bytes, descriptor, noted)
                .map_err(|e| e.at(location))?;
            self.manifests().insert(digest, (bytes, media_type));
            return Ok(());
        }
        upload_known(
            &self.client,
            self.name(),
            digest,
            size,
            content,
            None,
            self.cancel.as_deref(),
        )
        .map_err(|e| e.at(location))?;
        crate::record::note(&self.repository.registry, self.name(), digest);
        Ok(())
    }

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(RegistryBlobWriter {
            registry: self,
            state: StreamingUpload {
                upload: None,
                buffer: Vec::new(),
                hasher: algorithm.hasher(),
                written: 0,
            },
            algorithm,
        }))
    }

    fn index(&self) -> Result<ImageIndex> {
        let tags = self.tags().map_err(|e| e.at(self.location.clone()))?;
        let mut entries = Vec::with_capacity(tags.len());
        for tag in tags {
            if let Some(descriptor) = self
                .head_manifest(&tag)
                .map_err(|e| e.at(self.location.join(&tag)))?
            {
                entries.push(index::with_ref_name(descriptor, &tag));
            }
        }
        let mut idx = index::empty_index();
        idx.set_manifests(entries);
        Ok(idx)
    }

    /// A `HEAD` of the tag (or digest), not a listing of every tag.
    fn resolve(&self, name: &str) -> Result<Descriptor> {
        let found = self
            .head_manifest(name)
            .map_err(|e| e.at(self.location.join(name)))?;
        found.ok_or_else(|| oci_core::Error::RefNotFound {
            name: name.to_owned(),
            location: self.location.clone(),
        })
    }

    /// A tag is a `PUT` of the manifest under the tag's name; an untagged entry is the
    /// manifest itself, stored already.
    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        check_stored(self, entries, required)?;
        let mut outcome = oci_core::index::PutOutcome::default();
        for entry in entries {
            let Some(name) = index::ref_name(entry) else {
                continue;
            };
            outcome.added += 1;
            let digest = Digest::try_from(entry.digest())?;
            let location = self.location.join(name);
            if let Some(previous) = self
                .head_manifest(name)
                .map_err(|e| e.at(location.clone()))?
                && previous.digest() != entry.digest()
            {
                outcome.replaced.push(index::with_ref_name(previous, name));
            }
            let cached = self.manifests().get(&digest).cloned();
            let (bytes, media_type) = match cached {
                Some(found) => found,
                None => {
                    let (bytes, media_type, _) = self
                        .get_manifest(&digest.to_string(), Some(digest))
                        .map_err(|e| e.at(location.clone()))?;
                    (bytes, media_type)
                }
            };
            self.put_manifest(name, &bytes, &media_type)
                .map_err(|e| e.at(location))?;
        }
        Ok(outcome)
    }

    /// Mounts the blob from the source's repository when the source is another repository of
    /// this registry, or from one this client pushed it to before (the record in the user's
    /// cache directory).
    fn mount_from(
        &self,
        descriptor: &Descriptor,
        source: &dyn Store,
    ) -> Result<Option<oci_core::CopyOutcome>> {
        if ContentKind::of_descriptor(descriptor) != ContentKind::Blob {
            return Ok(None);
        }
        let digest = Digest::try_from(descriptor.digest())?;
        let mut candidates = Vec::new();
        if let oci_core::Location::Url(url) = source.location()
            && let Some(rest) = url.strip_prefix("docker://")
            && let Some((registry, repository)) = rest.split_once('/')
            && registry == self.repository.registry
            && repository != self.name()
        {
            candidates.push(repository.to_owned());
        }
        for recorded in crate::record::repositories_with(&self.repository.registry, digest) {
            if recorded != self.name() && !candidates.contains(&recorded) {
                candidates.push(recorded);
            }
        }
        for from in candidates {
            match Upload::start(&self.client, self.name(), Some((digest, &from))) {
                Ok(crate::upload::Started::Mounted) => {
                    crate::record::note(&self.repository.registry, self.name(), digest);
                    return Ok(Some(oci_core::CopyOutcome::Mounted));
                }
                // Not there, or not readable with these credentials: the session it opened
                // instead is deleted when dropped, and the bytes are sent.
                Ok(crate::upload::Started::Session(_)) | Err(_) => {}
            }
        }
        Ok(None)
    }

    fn referrers_index(&self) -> Option<&dyn oci_core::ReferrersIndex> {
        Some(self)
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        Err(oci_core::Error::unsupported(
            self.location.join(name),
            "the distribution API cannot remove a tag alone (only a manifest, with all its tags)",
        ))
    }
}

impl oci_core::ReferrersIndex for Registry {
    /// [`Registry::referrers`]: the referrers API, or the referrers tag where there is none.
    fn referrers_of(&self, subject: Digest) -> Result<Vec<Descriptor>> {
        self.referrers(subject, None)
            .map_err(|e| e.at(self.at(subject)))
    }
}

/// A blob streamed to a registry as it is made (`Store::begin_blob`).
struct RegistryBlobWriter<'r> {
    registry: &'r Registry,
    state: StreamingUpload<'r>,
    algorithm: Algorithm,
}

impl RegistryBlobWriter<'_> {
    fn chunk(&mut self) -> std::result::Result<(), Error> {
        if self.state.upload.is_none() {
            match Upload::start(&self.registry.client, self.registry.name(), None)? {
                crate::upload::Started::Session(upload) => self.state.upload = Some(upload),
                crate::upload::Started::Mounted => unreachable_mount(),
            }
        }
        self.state.flush_full()
    }
}

/// A session opened without `mount=` is never answered with a mount.
fn unreachable_mount() {}

impl RegistryBlobWriter<'_> {
    /// How much the buffer holds before it is sent: the chunk size, raised to the registry's
    /// minimum once the session says it.
    fn buffer_limit(&self) -> usize {
        self.state.upload.as_ref().map_or_else(
            || self.registry.client.options().chunk_size.max(1),
            Upload::chunk_size,
        )
    }
}

impl Write for RegistryBlobWriter<'_> {
    /// Takes what fits in the buffer: each chunk is the chunk size, whatever the sizes of the
    /// writes. A blob no larger than one chunk is sent in one request at the commit; the
    /// session starts when more comes.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.state.buffer.len() >= self.buffer_limit() {
            self.chunk().map_err(io::Error::other)?;
        }
        let room = self.buffer_limit().saturating_sub(self.state.buffer.len());
        let taken = &data[..data.len().min(room)];
        self.state.hasher.update(taken);
        self.state.buffer.extend_from_slice(taken);
        self.state.written += taken.len() as u64;
        Ok(taken.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for RegistryBlobWriter<'_> {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn bytes_written(&self) -> u64 {
        self.state.written
    }

    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        let mut writer = *self;
        let registry = writer.registry;
        let hasher = std::mem::replace(&mut writer.state.hasher, writer.algorithm.hasher());
        let digest = hasher.finalize();
        // Checked before the registry is told: on a mismatch the session is deleted.
        check_commit(digest, writer.state.written, size, expected)?;
        let location = registry.at(digest);
        let mut finish = || -> std::result::Result<(), Error> {
            match writer.state.upload.take() {
                None => {
                    // Small: one request.
                    match Upload::start(&registry.client, registry.name(), None)? {
                        crate::upload::Started::Session(upload) => {
                            upload.put_whole(&writer.state.buffer, digest)
                        }
                        crate::upload::Started::Mounted => Ok(()),
                    }
                }
                Some(mut upload) => {
                    if !writer.state.buffer.is_empty() {
                        upload.send_chunk(&writer.state.buffer)?;
                    }
                    upload.finish(digest)
                }
            }
        };
        finish().map_err(|e| e.at(location))?;
        Ok(digest)
    }
}

/// A registry that does not know a digest's algorithm answers `400 Bad Request` to any
/// request naming it (distribution knows sha256 and sha512 only): said in words, since a bare
/// 400 does not tell the user that the registry cannot hold this image at all.
fn unknown_algorithm(error: Error, digest: Digest) -> Error {
    match error {
        Error::Status {
            method,
            url,
            status: 400,
            detail,
        } if !matches!(digest.algorithm(), Algorithm::Sha256 | Algorithm::Sha512) => {
            Error::Status {
                method,
                url,
                status: 400,
                detail: format!(
                    "{detail}: the registry does not accept {} digests",
                    digest.algorithm()
                ),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_media_types() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
        assert!(check_media_type(manifest, "application/vnd.oci.image.manifest.v1+json").is_ok());
        assert!(check_media_type(manifest, "application/vnd.oci.image.index.v1+json").is_err());
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            check_media_type(index, "application/vnd.oci.image.index.v1+json").as_deref(),
            Ok("application/vnd.oci.image.index.v1+json")
        );
        let lying = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{}}"#;
        assert!(check_media_type(lying, "application/vnd.oci.image.index.v1+json").is_err());
        let schema1 = br#"{"schemaVersion":1,"name":"x"}"#;
        assert!(
            check_media_type(
                schema1,
                "application/vnd.docker.distribution.manifest.v1+prettyjws"
            )
            .is_err_and(|reason| reason.contains("schema 1"))
        );
    }
}
