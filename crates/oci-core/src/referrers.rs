//! OCI 1.1 referrers: the manifests whose `subject` is a given manifest, and attaching one.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

use oci_digest::{Algorithm, Digest};
use oci_spec::image::{Descriptor, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::driver::ImageDriver;
use crate::layout_file::LayoutFile;
use crate::{ContentStore, CopyError, Error, Result, graph, index, seed, walk};

/// Name of the cache [`referrers`] keeps through [`ImageDriver::write_cache`].
pub const REFERRERS_CACHE: &str = "referrers.json";

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

/// The referrers of every subject reachable from one state of `index.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReferrersIndex {
    /// Digest of the `index.json` bytes this was built from: blobs never change, so the
    /// index is valid exactly as long as `index.json` is.
    index_digest: String,
    by_subject: BTreeMap<String, Vec<Referrer>>,
}

/// The manifests whose `subject` is `subject`, optionally only those of `artifact_type`.
///
/// Answered from a referrers index the library keeps (through [`ImageDriver::write_cache`]);
/// it is rebuilt, by one walk of the manifests reachable from `index.json`, only when
/// `index.json` has changed since.
pub fn referrers(
    driver: &dyn ImageDriver,
    subject: Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>> {
    let index_bytes = graph::read_metadata(driver, LayoutFile::Index)?;
    let index_digest = Algorithm::Sha256.digest(&index_bytes).to_string();
    // A cache that cannot be read (or parsed) only costs a rebuild, like one that cannot be
    // written.
    let cached = driver
        .read_cache(REFERRERS_CACHE)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<ReferrersIndex>(&bytes).ok())
        .filter(|cache| cache.index_digest == index_digest);
    let referrers_index = match cached {
        Some(cache) => cache,
        None => {
            let built = build(driver, &index_bytes, index_digest)?;
            if let Ok(bytes) = serde_json::to_vec(&built) {
                // A cache that cannot be written only costs the next call a rebuild.
                let _ = driver.write_cache(REFERRERS_CACHE, &bytes);
            }
            built
        }
    };
    Ok(referrers_index
        .by_subject
        .get(&subject.to_string())
        .into_iter()
        .flatten()
        .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
        .cloned()
        .collect())
}

fn build(
    driver: &dyn ImageDriver,
    index_bytes: &[u8],
    index_digest: String,
) -> Result<ReferrersIndex> {
    let idx = index::parse_index(index_bytes).map_err(|source| Error::Json {
        path: driver.location().join(LayoutFile::Index.relative_path()),
        source,
    })?;
    let mut built = ReferrersIndex {
        index_digest,
        by_subject: BTreeMap::new(),
    };
    let mut seen = HashSet::new();
    let mut pending: Vec<Descriptor> = idx.manifests().clone();
    while let Some(descriptor) = pending.pop() {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            continue;
        };
        if !seen.insert(digest) || !graph::may_have_references(descriptor.media_type().as_ref()) {
            continue;
        }
        let Ok(bytes) = graph::read_document(driver, digest) else {
            continue;
        };
        let Ok(refs) = walk::references(&bytes) else {
            continue;
        };
        if let Some(subject) = &refs.subject {
            let referrer = describe_referrer(digest, &bytes, &descriptor);
            let list = built
                .by_subject
                .entry(subject.digest().to_string())
                .or_default();
            if !list.iter().any(|r| r.digest == referrer.digest) {
                list.push(referrer);
            }
        }
        pending.extend(
            refs.children
                .into_iter()
                .filter(|c| graph::may_have_references(c.media_type().as_ref())),
        );
    }
    Ok(built)
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

/// One file of an artifact.
pub struct ArtifactFile {
    /// Its name, recorded as the layer's `org.opencontainers.image.title`.
    pub title: String,
    /// Where its content comes from (its whole path), for messages.
    pub source: PathBuf,
    /// The layer media type.
    pub media_type: String,
    /// Its content.
    pub content: Box<dyn Read>,
}

/// Writes an artifact manifest whose `subject` is `subject`: the empty config, one layer per
/// file, `artifactType` and `annotations` set; and records it in `index.json` (untagged) so
/// that gc keeps it. Returns its descriptor.
pub fn attach(
    driver: &dyn ImageDriver,
    subject: &Descriptor,
    artifact_type: &str,
    files: Vec<ArtifactFile>,
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor> {
    crate::validate_media_type(artifact_type)?;
    let empty = seed::write_json_blob(driver, &json!({}), MediaType::EmptyJSON)?;
    let mut written = vec![Digest::try_from(empty.digest())?];
    let mut layers = Vec::new();
    for mut file in files {
        let mut writer = driver.blob_writer(Algorithm::Sha256)?;
        writer.write_from(&mut file.content).map_err(|e| match e {
            CopyError::Read(e) => Error::io(&file.source, e),
            CopyError::Write(e) => Error::io(driver.location(), e),
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
        "subject": serde_json::to_value(subject_descriptor(subject)).map_err(|source| Error::Json {
            path: driver.location().to_path_buf(),
            source,
        })?,
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let mut descriptor = seed::write_json_blob(driver, &manifest, MediaType::ImageManifest)?;
    descriptor.set_artifact_type(Some(MediaType::from(artifact_type)));
    if !annotations.is_empty() {
        descriptor.set_annotations(Some(annotations.into_iter().collect()));
    }
    // Through the store, which checks under the index lock that the manifest and everything
    // written for it are still there.
    ContentStore::put_entry_requiring(driver, descriptor.clone(), &written)?;
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
