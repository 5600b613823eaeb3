//! What a docker archive's metadata says: `manifest.json` items, the few facts of an image
//! config a docker archive needs (its diff_ids and platform), and RepoTags as docker
//! normalises them.

use oci_core::index;
use oci_core::oci_spec::image::{Arch, Descriptor, ImageIndex, Os, Platform, PlatformBuilder};
use oci_core::{Digest, Error, Location, Result};
use oci_reference::ImageReference;
use serde::{Deserialize, Serialize};

/// `manifest.json` at the archive's root.
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
/// The legacy `repositories` file: repository → tag → the top layer's ID.
pub(crate) const REPOSITORIES_FILE: &str = "repositories";
/// The most bytes of `manifest.json` or a config read (containers/image's bounds are 20 and
/// 4 MiB).
pub(crate) const MAX_METADATA_SIZE: u64 = 20 << 20;

/// One image of `manifest.json`, with the fields docker and skopeo write, in their order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestItem {
    /// The config's path in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// `name:tag` references; `null` in some docker versions.
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// The layer files' paths, in order.
    #[serde(rename = "Layers", default, deserialize_with = "null_as_empty")]
    pub layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// What a docker archive needs of an image config: the diff_ids, and the platform for the
/// index entry. Everything else is kept as the bytes were.
#[derive(Debug, Deserialize)]
struct ConfigFacts {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    rootfs: Option<RootFs>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A parsed config: its diff_ids in order and its platform.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub diff_ids: Vec<Digest>,
    pub platform: Option<Platform>,
}

impl Config {
    /// Parses the config at `location` for its diff_ids and platform.
    pub(crate) fn parse(bytes: &[u8], location: &Location) -> Result<Config> {
        let facts: ConfigFacts =
            serde_json::from_slice(bytes).map_err(|e| Error::json(location, e))?;
        let invalid = |reason: String| Error::InvalidLayout {
            location: location.clone(),
            reason,
        };
        let rootfs = facts
            .rootfs
            .ok_or_else(|| invalid("the image config has no rootfs".into()))?;
        let diff_ids = rootfs
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d).map_err(|e| invalid(format!("diff_id {d:?}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let platform = (!facts.os.is_empty() && !facts.architecture.is_empty()).then(|| {
            let mut builder = PlatformBuilder::default()
                .os(Os::from(facts.os.as_str()))
                .architecture(Arch::from(facts.architecture.as_str()));
            if let Some(variant) = facts.variant.filter(|v| !v.is_empty()) {
                builder = builder.variant(variant);
            }
            builder.build().expect("os and architecture are set")
        });
        Ok(Config { diff_ids, platform })
    }
}

/// A RepoTag in docker's familiar form, the one `docker images` shows and `docker save`
/// writes: `busybox:latest` for `docker.io/library/busybox:latest`, `user/app:1` on Docker
/// Hub, `HOST[:PORT]/REPO:TAG` elsewhere. A name without a tag gets `latest`; a digest or a
/// name docker would refuse is an error (the reason). The grammar is the one `docker://`
/// names are parsed by ([`ImageReference::familiar_repo_tag`]).
pub fn normalize_repo_tag(text: &str) -> std::result::Result<String, String> {
    ImageReference::familiar_repo_tag(text).map_err(|e| e.reason)
}

/// The index of a docker archive's images: one entry per RepoTag, named by it; an image
/// without any, one untagged entry.
pub(crate) fn index_of<'a>(
    images: impl IntoIterator<Item = (&'a Descriptor, &'a [String])>,
) -> ImageIndex {
    let mut entries = Vec::new();
    for (descriptor, repo_tags) in images {
        if repo_tags.is_empty() {
            entries.push(descriptor.clone());
        }
        for tag in repo_tags {
            entries.push(index::with_ref_name(descriptor.clone(), tag));
        }
    }
    let mut index = index::empty_index();
    index.set_manifests(entries);
    index
}

#[cfg(test)]
mod tests {
    use super::normalize_repo_tag;

    #[test]
    fn repo_tags_take_dockers_familiar_form() {
        let cases = [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            ("docker.io/library/busybox:latest", "busybox:latest"),
            ("library/busybox:latest", "busybox:latest"),
            ("docker.io/user/app:v1", "user/app:v1"),
            ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
            ("quay.io/org/app", "quay.io/org/app:latest"),
            // Where oci-spec's parser, used before, read docker's grammar wrong.
            ("[::1]:5000/x:1", "[::1]:5000/x:1"),
            // `Foo` is a host (an uppercase letter), `bar` the repository.
            ("Foo/bar:1", "Foo/bar:1"),
            ("library/busybox", "busybox:latest"),
            ("docker.io/user/app", "user/app:latest"),
            ("index.docker.io/library/x:1", "x:1"),
            ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                normalize_repo_tag(text).ok().as_deref(),
                Some(expected),
                "{text}"
            );
        }
        for bad in [
            "",
            " busybox",
            "Busybox:1",
            "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            // An image ID, not a name.
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "exa_mple.com/x:1",
            "busybox:tâg",
        ] {
            assert!(normalize_repo_tag(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
