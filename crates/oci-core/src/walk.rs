//! What a manifest or index refers to: the edges of the content graph.

use oci_spec::image::Descriptor;
use serde_json::Value;

/// Media types whose blobs are JSON documents that refer to other blobs.
const MANIFEST_LIKE: [&str; 5] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Whether blobs of `media_type` are manifests or indexes, whose children should be walked.
pub fn is_manifest_like(media_type: &str) -> bool {
    MANIFEST_LIKE.contains(&media_type)
}

/// Whether blobs of `media_type` are indexes (lists of manifests).
pub fn is_index_like(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// The parts of a manifest or index that refer to other blobs.
#[derive(Debug, Default, Clone)]
pub struct References {
    /// `manifests`, `config`, `layers` and `blobs`: what the document is made of.
    pub children: Vec<Descriptor>,
    /// `subject`: the manifest this one refers to (OCI 1.1 referrers), not part of it.
    pub subject: Option<Descriptor>,
}

/// Reads the references of a manifest or index document. Unknown fields are ignored; a
/// descriptor that does not parse is an error, since following it is impossible.
pub fn references(document: &[u8]) -> serde_json::Result<References> {
    let mut value: Value = serde_json::from_slice(document)?;
    crate::index::platform_keys(&mut value, crate::index::PlatformKeys::FromSpec);
    let mut refs = References::default();
    for key in ["manifests", "layers", "blobs"] {
        if let Some(Value::Array(items)) = value.get(key) {
            for item in items {
                refs.children.push(descriptor(item)?);
            }
        }
    }
    if let Some(config) = value.get("config").filter(|v| !v.is_null()) {
        refs.children.push(descriptor(config)?);
    }
    if let Some(subject) = value.get("subject").filter(|v| !v.is_null()) {
        refs.subject = Some(descriptor(subject)?);
    }
    Ok(refs)
}

fn descriptor(value: &Value) -> serde_json::Result<Descriptor> {
    serde::Deserialize::deserialize(value)
}
