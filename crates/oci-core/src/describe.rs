//! Building the index descriptor of a manifest that is already stored.

use oci_digest::Digest;
use oci_spec::image::{Descriptor, MediaType, Platform};
use serde_json::Value;

use crate::{ContentKind, Error, Result, Store};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Reads a stored JSON document (verified, at most
/// [`MAX_MANIFEST_SIZE`](crate::MAX_MANIFEST_SIZE) bytes) and parses it.
pub fn read_json(store: &dyn Store, kind: ContentKind, digest: Digest) -> Result<(Value, u64)> {
    let bytes = store.read_document(kind, digest, None)?;
    let value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::json(store.location().of_content(digest), e))?;
    Ok((value, bytes.len() as u64))
}

/// The descriptor an index entry for the stored manifest or index `digest` should carry:
/// media type (from the document, or inferred from its shape when it has none), size,
/// `artifactType`, and the platform when it is an image manifest whose config names one.
pub fn manifest_descriptor(store: &dyn Store, digest: Digest) -> Result<Descriptor> {
    let (document, size) = read_json(store, ContentKind::Manifest, digest)?;
    let media_type = media_type_of(&document).ok_or_else(|| Error::InvalidLayout {
        location: store.location().of_content(digest),
        reason: format!(
            "blob {digest} is not a manifest or index (no mediaType, no manifests or config)"
        ),
    })?;
    let mut descriptor = Descriptor::new(MediaType::from(media_type.as_str()), size, digest);
    if let Some(artifact_type) = document.get("artifactType").and_then(Value::as_str) {
        descriptor.set_artifact_type(Some(MediaType::from(artifact_type)));
    }
    if matches!(media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST) {
        descriptor.set_platform(platform_of_manifest(store, &document)?);
    }
    Ok(descriptor)
}

fn media_type_of(document: &Value) -> Option<String> {
    if let Some(media_type) = document.get("mediaType").and_then(Value::as_str) {
        return Some(media_type.to_owned());
    }
    if document.get("manifests").is_some_and(Value::is_array) {
        Some(OCI_INDEX.to_owned())
    } else if document.get("config").is_some_and(Value::is_object) {
        Some(OCI_MANIFEST.to_owned())
    } else {
        None
    }
}

fn platform_of_manifest(store: &dyn Store, manifest: &Value) -> Result<Option<Platform>> {
    let Some(config) = manifest.get("config") else {
        return Ok(None);
    };
    let config: Descriptor = match serde_json::from_value(config.clone()) {
        Ok(config) => config,
        Err(_) => return Ok(None),
    };
    let config_type = config.media_type().to_string();
    if !matches!(config_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) {
        return Ok(None);
    }
    let digest = Digest::try_from(config.digest())?;
    let (config, _) = read_json(store, ContentKind::Blob, digest)?;
    Ok(platform_of_config(&config))
}

/// The platform an image config names, when it names an architecture and an os.
pub fn platform_of_config(config: &Value) -> Option<Platform> {
    let mut platform = serde_json::Map::new();
    // Field names as oci-spec's `Platform` deserialises them; see `index::platform_keys`.
    for (from, to) in [
        ("architecture", "architecture"),
        ("os", "os"),
        ("variant", "variant"),
        ("os.version", "os_version"),
    ] {
        if let Some(value) = config
            .get(from)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            platform.insert(to.to_owned(), Value::from(value));
        }
    }
    if let Some(features) = config.get("os.features").filter(|f| f.is_array()) {
        platform.insert("os_features".to_owned(), features.clone());
    }
    if !(platform.contains_key("architecture") && platform.contains_key("os")) {
        return None;
    }
    serde_json::from_value(Value::Object(platform)).ok()
}
