//! OCI 1.1 referrers: the manifests whose `subject` is a given manifest, and attaching one.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use oci_digest::{Algorithm, Digest};
use oci_spec::image::{Descriptor, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{CopyError, Error, Result, Store, graph, seed, walk};

/// The media type of the empty config of an artifact (`{}`).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// A manifest that refers to a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// The referrer's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its `artifactType` (or, for an image manifest without one, its config's media type).
    pub artifact_type: Option<String>,
    /// Its size.
    pub size: u64,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The manifests whose `subject` is `subject`, optionally only those of `artifact_type`, in
/// the order a walk of the index meets them.
///
/// Asked of the store's own index of them where it keeps one ([`Store::referrers_index`]: a
/// registry's referrers API), else found by one walk of the documents reachable from the
/// index. Nothing is written: a command that only reads leaves the store as it found it (see
/// docs/architecture.md for why there is no cache).
pub fn referrers(
    store: &dyn Store,
    subject: Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>> {
    if let Some(kept) = store.referrers_index() {
        return Ok(kept
            .referrers_of(subject)?
            .iter()
            .map(referrer_of_descriptor)
            .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
            .collect());
    }
    let subject = subject.to_string();
    let mut found: Vec<Referrer> = Vec::new();
    let mut seen = HashSet::new();
    let mut pending: Vec<Descriptor> = store.index()?.manifests().clone();
    pending.reverse();
    while let Some(descriptor) = pending.pop() {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            continue;
        };
        if !seen.insert(digest) || !graph::may_have_references(descriptor.media_type().as_ref()) {
            continue;
        }
        // Unreadable or not a document: fsck's business, not a reason to fail the listing.
        let Ok(bytes) = graph::read_described(store, &descriptor) else {
            continue;
        };
        let Ok(refs) = walk::references(&bytes) else {
            continue;
        };
        if refs
            .subject
            .as_ref()
            .is_some_and(|s| s.digest().to_string() == subject)
        {
            let referrer = describe_referrer(digest, &bytes, &descriptor);
            if artifact_type.is_none_or(|t| referrer.artifact_type.as_deref() == Some(t))
                && !found.iter().any(|r| r.digest == referrer.digest)
            {
                found.push(referrer);
            }
        }
        pending.extend(
            refs.children
                .into_iter()
                .rev()
                .filter(|c| graph::may_have_references(c.media_type().as_ref())),
        );
    }
    Ok(found)
}

/// A referrer as a referrers index lists it: what its descriptor says.
fn referrer_of_descriptor(descriptor: &Descriptor) -> Referrer {
    Referrer {
        digest: descriptor.digest().to_string(),
        media_type: descriptor.media_type().to_string(),
        artifact_type: descriptor.artifact_type().as_ref().map(ToString::to_string),
        size: descriptor.size(),
        annotations: descriptor
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }
}

fn describe_referrer(digest: Digest, bytes: &[u8], descriptor: &Descriptor) -> Referrer {
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let artifact_type =
        text(value.get("artifactType")).or_else(|| text(value.pointer("/config/mediaType")));
    let annotations = value
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Referrer {
        digest: digest.to_string(),
        media_type: text(value.get("mediaType"))
            .unwrap_or_else(|| descriptor.media_type().to_string()),
        artifact_type,
        size: bytes.len() as u64,
        annotations,
    }
}

/// Copies the manifests whose subject is one of `subjects` from `src` to `dst`, and theirs in
/// turn (a signature of an SBOM), each with everything it refers to; each is recorded in
/// `dst`'s index untagged, as [`attach`] records one, so gc keeps it and a walk finds it (a
/// registry keeps its own referrers index instead). Returns what was copied, all together.
pub fn copy_referrers(
    src: &dyn Store,
    dst: &dyn Store,
    subjects: &[Digest],
    options: &crate::CopyOptions<'_>,
) -> Result<crate::CopyReport> {
    let mut report = crate::CopyReport::default();
    let mut pending: Vec<Digest> = subjects.to_vec();
    let mut seen: HashSet<Digest> = subjects.iter().copied().collect();
    while let Some(subject) = pending.pop() {
        for referrer in referrers(src, subject, None)? {
            let digest = Digest::parse(&referrer.digest)?;
            if !seen.insert(digest) {
                continue;
            }
            let mut descriptor = Descriptor::new(
                MediaType::from(referrer.media_type.as_str()),
                referrer.size,
                digest,
            );
            if let Some(artifact_type) = &referrer.artifact_type {
                descriptor.set_artifact_type(Some(MediaType::from(artifact_type.as_str())));
            }
            let copied = crate::copy_image_with(src, dst, &descriptor, options)?;
            report.absorb(copied);
            dst.put_entry(&descriptor)?;
            pending.push(digest);
        }
    }
    Ok(report)
}

/// One file of an artifact.
pub struct ArtifactFile {
    /// Its name, recorded as the layer's `org.opencontainers.image.title`.
    pub title: String,
    /// Where its content comes from, for messages (the whole path of a file).
    pub source: crate::Location,
    /// The layer media type.
    pub media_type: String,
    /// Its content.
    pub content: Box<dyn Read>,
}

/// Writes an artifact manifest whose `subject` is `subject`: the empty config, one layer per
/// file, `artifactType` and `annotations` set; and records it in `index.json` (untagged) so
/// that gc keeps it. Returns its descriptor.
pub fn attach(
    store: &dyn Store,
    subject: &Descriptor,
    artifact_type: &str,
    files: Vec<ArtifactFile>,
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    crate::validate_media_type(artifact_type)?;
    let empty = seed::write_json_blob(store, &json!({}), MediaType::EmptyJSON)?;
    let mut written = vec![Digest::try_from(empty.digest())?];
    let mut layers = Vec::new();
    for mut file in files {
        let mut writer = store.begin_blob(Algorithm::Sha256)?;
        writer.write_from(&mut file.content).map_err(|e| match e {
            CopyError::Read(e) => Error::io(file.source.clone(), e),
            CopyError::Write(e) => Error::io(store.location(), e),
        })?;
        let size = writer.bytes_written();
        let digest = writer.commit(None, None)?;
        written.push(digest);
        layers.push(json!({
            "mediaType": file.media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": { "org.opencontainers.image.title": file.title },
        }));
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": empty,
        "layers": layers,
        "subject": serde_json::to_value(subject_descriptor(subject))
            .map_err(|e| Error::json(store.location(), e))?,
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let mut descriptor = seed::write_json_blob(store, &manifest, MediaType::ImageManifest)?;
    descriptor.set_artifact_type(Some(MediaType::from(artifact_type)));
    if !annotations.is_empty() {
        descriptor.set_annotations(Some(annotations.into_iter().collect()));
    }
    // The store checks, under the index lock, that the manifest and everything written for it
    // are still there.
    store.put_entries(std::slice::from_ref(&descriptor), &written)?;
    Ok(descriptor)
}

/// A subject descriptor carries what identifies the manifest: media type, digest, size.
fn subject_descriptor(subject: &Descriptor) -> Descriptor {
    Descriptor::new(
        subject.media_type().clone(),
        subject.size(),
        subject.digest().clone(),
    )
}
