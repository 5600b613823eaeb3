//! From a ref name or digest to one image: through indexes, by platform.

use oci_core::oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, Platform};
use oci_core::{ContentKind, Digest, Location, Store, describe, graph, index, walk};

use crate::config::ImageConfig;
use crate::{Error, Result, platform};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// An image found in a store: its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The manifest's descriptor, with the platform it was chosen for when it came from an
    /// index.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config.
    pub config: ImageConfig,
}

/// Whether blobs of `media_type` are image manifests (OCI or Docker).
pub fn is_image_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// The descriptor `target` names: an index entry's ref name or, failing that, a digest of a
/// stored manifest or index.
pub fn resolve_target(store: &dyn Store, target: &str) -> Result<Descriptor> {
    match store.resolve(target) {
        Ok(descriptor) => Ok(with_real_media_type(store, descriptor)?),
        Err(not_found @ oci_core::Error::RefNotFound { .. }) => match Digest::parse(target) {
            Ok(digest) => Ok(describe::manifest_descriptor(store, digest)?),
            // `SHA256:…` is a valid ref name too: say both why it is not a digest and that
            // no ref has that name.
            Err(digest_error) if target.contains(':') => Err(Error::NoSuchTarget {
                digest_error: digest_error.to_string(),
                location: store.location().clone(),
            }),
            Err(_) => Err(not_found.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// An index entry whose media type is not one of a manifest or index (ggcr writes
/// `application/vnd.oci.descriptor.v1+json`) gets the one its document has.
pub(crate) fn with_real_media_type(
    store: &dyn Store,
    descriptor: Descriptor,
) -> Result<Descriptor> {
    let media_type = descriptor.media_type().to_string();
    if walk::is_manifest_like(&media_type) {
        return Ok(descriptor);
    }
    let digest = Digest::try_from(descriptor.digest()).map_err(oci_core::Error::from)?;
    if !store.contains(ContentKind::Blob, digest)? {
        return Ok(descriptor);
    }
    match describe::manifest_descriptor(store, digest) {
        Ok(described) => {
            let mut descriptor = descriptor;
            descriptor.set_media_type(described.media_type().clone());
            if descriptor.platform().is_none() {
                descriptor.set_platform(described.platform().clone());
            }
            Ok(descriptor)
        }
        // Not a JSON document at all: leave it, callers say what it is not.
        Err(_) => Ok(descriptor),
    }
}

/// The image `target` (ref name or digest) names, for `platform`.
///
/// Through an index (nested ones too) the first manifest for `platform` is chosen; without a
/// platform, the only image the index holds (attestations aside), else the host's. A manifest
/// named directly must be for `platform` when one is given and its config names one.
pub fn resolve_image(
    store: &dyn Store,
    target: &str,
    platform: Option<&Platform>,
) -> Result<ResolvedImage> {
    let descriptor = resolve_target(store, target)?;
    let named_directly = !walk::is_index_like(descriptor.media_type().as_ref());
    let descriptor = select_manifest(store, target, descriptor, platform)?;
    let media_type = descriptor.media_type().to_string();
    let digest = Digest::try_from(descriptor.digest()).map_err(oci_core::Error::from)?;
    if !is_image_manifest(&media_type) {
        return Err(Error::InvalidImage {
            location: store.location().of_content(digest),
            reason: format!("{target} is a {media_type}, not an image manifest or index"),
        });
    }
    let manifest = read_manifest(store, &descriptor)?;
    let config = read_config(store, manifest.config())?;
    if let Some(wanted) = platform.filter(|_| named_directly) {
        let offered = config.platform();
        if !platform::matches(wanted, &offered) {
            return Err(Error::PlatformNotFound {
                reference: target.to_owned(),
                location: store.location().clone(),
                platform: platform::to_string(wanted),
                available: platform::to_string(&offered),
            });
        }
    }
    let mut descriptor = descriptor;
    if descriptor.platform().is_none() {
        descriptor.set_platform(Some(config.platform()));
    }
    Ok(ResolvedImage {
        descriptor,
        manifest,
        config,
    })
}

/// When `descriptor` is an index, the manifest in it for `platform` (see [`resolve_image`]);
/// else `descriptor` itself.
pub fn select_manifest(
    store: &dyn Store,
    target: &str,
    descriptor: Descriptor,
    platform: Option<&Platform>,
) -> Result<Descriptor> {
    if !walk::is_index_like(descriptor.media_type().as_ref()) {
        return Ok(descriptor);
    }
    let mut candidates = Vec::new();
    collect_manifests(store, &descriptor, &mut candidates, 0)?;
    let runnable: Vec<&(Descriptor, Option<Platform>)> = candidates
        .iter()
        .filter(|(_, p)| !p.as_ref().is_some_and(platform::is_unknown))
        .collect();
    let chosen = match platform {
        Some(wanted) => runnable
            .iter()
            .find(|(_, p)| p.as_ref().is_some_and(|p| platform::matches(wanted, p))),
        None if runnable.len() == 1 => runnable.first(),
        None => {
            let host = platform::host();
            runnable
                .iter()
                .find(|(_, p)| p.as_ref().is_some_and(|p| platform::matches(&host, p)))
        }
    };
    if let Some((chosen, offered)) = chosen {
        let mut chosen = chosen.clone();
        if chosen.platform().is_none() {
            chosen.set_platform(offered.clone());
        }
        return Ok(chosen);
    }
    let available: Vec<String> = runnable
        .iter()
        .map(|(_, p)| {
            p.as_ref()
                .map_or_else(|| "unknown".to_owned(), platform::to_string)
        })
        .collect();
    Err(Error::PlatformNotFound {
        reference: target.to_owned(),
        location: store.location().clone(),
        platform: platform.map_or_else(
            || {
                format!(
                    "{} (the host's; pass a platform)",
                    platform::to_string(&platform::host())
                )
            },
            platform::to_string,
        ),
        available: if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        },
    })
}

/// Indexes nest; a cycle cannot (digests), but a deep chain is refused.
const MAX_DEPTH: usize = 8;

/// Every image manifest under the index `descriptor`, in order, with its platform (from the
/// entry, or else from the manifest's config when stored).
fn collect_manifests(
    store: &dyn Store,
    descriptor: &Descriptor,
    out: &mut Vec<(Descriptor, Option<Platform>)>,
    depth: usize,
) -> Result<()> {
    let digest = Digest::try_from(descriptor.digest()).map_err(oci_core::Error::from)?;
    if depth > MAX_DEPTH {
        return Err(Error::InvalidImage {
            location: store.location().of_content(digest),
            reason: format!("indexes nested more than {MAX_DEPTH} deep"),
        });
    }
    let index = read_index(store, descriptor)?;
    for child in index.manifests() {
        let child = with_real_media_type(store, child.clone())?;
        let media_type = child.media_type().to_string();
        if walk::is_index_like(&media_type) {
            collect_manifests(store, &child, out, depth + 1)?;
        } else if is_image_manifest(&media_type) {
            let platform = match child.platform() {
                Some(platform) => Some(platform.clone()),
                None => platform_from_config(store, &child)?,
            };
            out.push((child, platform));
        }
    }
    Ok(())
}

/// The platform a manifest's config names, when the manifest is stored.
pub(crate) fn platform_from_config(
    store: &dyn Store,
    manifest: &Descriptor,
) -> Result<Option<Platform>> {
    let digest = Digest::try_from(manifest.digest()).map_err(oci_core::Error::from)?;
    if !store.contains(ContentKind::Manifest, digest)? {
        return Ok(None);
    }
    Ok(describe::manifest_descriptor(store, digest)?
        .platform()
        .clone())
}

/// Reads a JSON document the descriptor names, verified against its digest and size.
pub(crate) fn read_document(store: &dyn Store, descriptor: &Descriptor) -> Result<Vec<u8>> {
    Ok(graph::read_described(store, descriptor)?)
}

/// Where the content a descriptor names is, for messages.
pub(crate) fn content_location(store: &dyn Store, descriptor: &Descriptor) -> Location {
    Digest::try_from(descriptor.digest()).map_or_else(
        |_| store.location().clone(),
        |d| store.location().of_content(d),
    )
}

fn json_error(
    store: &dyn Store,
    descriptor: &Descriptor,
    what: &str,
    e: &serde_json::Error,
) -> Error {
    Error::InvalidImage {
        location: content_location(store, descriptor),
        reason: format!("not a valid {what}: {e}"),
    }
}

/// Reads and parses an index, leniently.
pub(crate) fn read_index(store: &dyn Store, descriptor: &Descriptor) -> Result<ImageIndex> {
    let bytes = read_document(store, descriptor)?;
    index::parse_index(&bytes).map_err(|e| json_error(store, descriptor, "image index", &e))
}

/// Reads and parses an image manifest.
pub(crate) fn read_manifest(store: &dyn Store, descriptor: &Descriptor) -> Result<ImageManifest> {
    let bytes = read_document(store, descriptor)?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(store, descriptor, "image manifest", &e))
}

/// Reads and parses an image config; a config of another media type (an artifact's) is
/// refused.
pub(crate) fn read_config(store: &dyn Store, descriptor: &Descriptor) -> Result<ImageConfig> {
    let media_type = descriptor.media_type().to_string();
    if !matches!(media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) {
        return Err(Error::InvalidImage {
            location: content_location(store, descriptor),
            reason: format!("config has media type {media_type}: an artifact, not an image"),
        });
    }
    let bytes = read_document(store, descriptor)?;
    ImageConfig::parse(&bytes).map_err(|e| json_error(store, descriptor, "image config", &e))
}

/// The OCI media type for a layer of a Docker image (same bytes, OCI name).
pub(crate) fn oci_layer_media_type(media_type: &MediaType) -> MediaType {
    match media_type.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
        _ => media_type.clone(),
    }
}
