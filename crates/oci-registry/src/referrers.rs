//! OCI 1.1 referrers in a registry: the manifests whose `subject` is a given manifest.
//!
//! A registry with the referrers API lists them (`GET /v2/<name>/referrers/<digest>`) and says
//! so when a manifest with a `subject` is pushed (`OCI-Subject`). A registry without it (such
//! as distribution 2.8) keeps nothing: the client that pushes a referrer records it in an
//! index under the referrers tag schema (`sha256-<hex>` for `sha256:<hex>`), and readers fall
//! back to that tag when the API answers 404. Being a tag, that index is also an entry of
//! [`Store::index`](oci_core::Store::index), so the core's index walk finds these referrers.

use oci_core::Digest;
use oci_core::oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};
use ureq::http;

use crate::client::{Request, encode};
use crate::{Error, Registry};

const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A page of referrers larger than this is refused.
const REFERRERS_LIMIT: u64 = 4 << 20;

/// The tag the referrers of `subject` are listed under where the registry has no referrers
/// API: the algorithm (at most 32 characters), `-`, the encoded part (at most 64), with what a
/// tag cannot hold replaced by `-`.
pub fn referrers_tag(subject: Digest) -> String {
    let text = subject.to_string();
    let (algorithm, encoded) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let tag_char = |c: char| {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '-'
        }
    };
    let algorithm: String = algorithm.chars().take(32).map(tag_char).collect();
    let encoded: String = encoded.chars().take(64).map(tag_char).collect();
    format!("{algorithm}-{encoded}")
}

impl Registry {
    /// The manifests whose `subject` is `subject` (only those of `artifact_type` when given),
    /// as descriptors with their `artifactType` and annotations: from the registry's referrers
    /// API (every page), or, where it has none, from the index under [`referrers_tag`] (none
    /// when that tag is absent or not an index).
    pub fn referrers(
        &self,
        subject: Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, Error> {
        let mut target = format!("/v2/{}/referrers/{subject}", self.name());
        if let Some(artifact_type) = artifact_type {
            target.push_str(&format!("?artifactType={}", encode(artifact_type)));
        }
        let mut found = Vec::new();
        let mut next = Some(target);
        let mut filtered = true;
        let mut first = true;
        while let Some(target) = next.take() {
            let url = self.client().url(&target);
            let expected: &[u16] = if first { &[200, 404] } else { &[200] };
            let (parts, body) = self.client().get_whole(
                || {
                    Request::new(http::Method::GET, target.clone(), self.pull_scope())
                        .header("Accept", INDEX_MEDIA_TYPE)
                },
                expected,
                REFERRERS_LIMIT,
                "a referrers list",
            )?;
            if first && parts.status == 404 {
                return self.referrers_from_tag(subject, artifact_type);
            }
            first = false;
            filtered &= parts
                .headers
                .get("OCI-Filters-Applied")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            next = parts
                .headers
                .get("Link")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::store::next_link);
            let page = index_manifests(&body).ok_or_else(|| Error::Refused {
                url,
                reason: "the referrers list is not an image index".into(),
            })?;
            found.extend(page);
        }
        if !filtered {
            found.retain(|d| of_type(d, artifact_type));
        }
        Ok(found)
    }

    /// The referrers listed under the referrers tag.
    fn referrers_from_tag(
        &self,
        subject: Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, Error> {
        let Some(manifests) = self.referrers_in_tag(subject)? else {
            return Ok(Vec::new());
        };
        Ok(manifests
            .into_iter()
            .filter(|d| of_type(d, artifact_type))
            .collect())
    }

    /// The descriptors of the index under the referrers tag of `subject`; `None` when there is
    /// no such tag, or it names something other than an image index.
    fn referrers_in_tag(&self, subject: Digest) -> Result<Option<Vec<Descriptor>>, Error> {
        let tag = referrers_tag(subject);
        match self.get_manifest(&tag, None) {
            Ok((bytes, media_type, _)) if media_type == INDEX_MEDIA_TYPE => {
                Ok(index_manifests(&bytes))
            }
            Ok(_) => Ok(None),
            Err(Error::Status { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// After `manifest` (pushed as `pushed`) was stored: when it has a `subject` and the
    /// registry did not say it took note (`OCI-Subject`), adds it to the index under the
    /// subject's referrers tag, as the distribution spec has clients do. An index already
    /// listing it is left alone; a tag that holds something other than an index is refused
    /// rather than replaced.
    pub(crate) fn record_referrer(
        &self,
        manifest: &[u8],
        pushed: &Descriptor,
        registry_noted: bool,
    ) -> Result<(), Error> {
        if registry_noted {
            return Ok(());
        }
        let Ok(document) = serde_json::from_slice::<Value>(manifest) else {
            return Ok(());
        };
        let Some(subject) = document
            .pointer("/subject/digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
        else {
            return Ok(());
        };
        let tag = referrers_tag(subject);
        let mut manifests = match self.get_manifest(&tag, None) {
            Ok((bytes, media_type, _)) => {
                let listed = (media_type == INDEX_MEDIA_TYPE)
                    .then(|| serde_json::from_slice::<Value>(&bytes).ok())
                    .flatten()
                    .and_then(|index| index.get("manifests").and_then(Value::as_array).cloned());
                match listed {
                    Some(listed) => listed,
                    None => {
                        return Err(Error::Refused {
                            url: self
                                .client()
                                .url(&format!("/v2/{}/manifests/{tag}", self.name())),
                            reason: format!(
                                "the referrers tag {tag} holds a {media_type}, not an image \
                                 index: the referrer {} was not added to it",
                                pushed.digest()
                            ),
                        });
                    }
                }
            }
            Err(Error::Status { status: 404, .. }) => Vec::new(),
            Err(other) => return Err(other),
        };
        let digest = pushed.digest().to_string();
        if manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
        {
            return Ok(());
        }
        let artifact_type = document
            .get("artifactType")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .or_else(|| {
                document
                    .pointer("/config/mediaType")
                    .and_then(Value::as_str)
            });
        let mut entry = json!({
            "mediaType": pushed.media_type().to_string(),
            "digest": digest,
            "size": pushed.size(),
        });
        if let Some(artifact_type) = artifact_type {
            entry["artifactType"] = json!(artifact_type);
        }
        if let Some(annotations) = document.get("annotations").filter(|a| a.is_object()) {
            entry["annotations"] = annotations.clone();
        }
        manifests.push(entry);
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).expect("a JSON value serialises");
        self.put_manifest(&tag, &bytes, INDEX_MEDIA_TYPE).map(drop)
    }
}

/// The descriptors of an image index's `manifests`; `None` when the bytes are not one.
fn index_manifests(bytes: &[u8]) -> Option<Vec<Descriptor>> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Descriptor>,
    }
    serde_json::from_slice::<Index>(bytes)
        .ok()
        .map(|index| index.manifests)
}

fn of_type(descriptor: &Descriptor, artifact_type: Option<&str>) -> bool {
    artifact_type.is_none_or(|wanted| {
        descriptor
            .artifact_type()
            .as_ref()
            .is_some_and(|t: &MediaType| t.to_string() == wanted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tags_follow_the_schema() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            referrers_tag(Digest::parse(&sha256).expect("valid")),
            format!("sha256-{}", "a".repeat(64))
        );
        let sha512 = format!("sha512:{}", "b".repeat(128));
        assert_eq!(
            referrers_tag(Digest::parse(&sha512).expect("valid")),
            format!("sha512-{}", "b".repeat(64))
        );
    }
}
