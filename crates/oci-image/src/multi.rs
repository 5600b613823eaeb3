//! A multi-platform image: an index over image manifests already stored.

use std::collections::HashSet;

use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
use oci_core::{Algorithm, Digest, Store, describe, index};

use crate::resolve::{is_image_manifest, resolve_target};
use crate::{Error, Result, platform};

/// Writes an image index over `manifests` (ref names or digests of image manifests in
/// `store`): each entry carries the manifest's media type, size and digest, and the platform
/// its config names. Two manifests for the same platform, a manifest without one, or anything
/// that is not an image manifest is refused. Returns the index's descriptor, to tag.
pub fn write_index(store: &dyn Store, manifests: &[String]) -> Result<Descriptor> {
    if manifests.is_empty() {
        return Err(Error::invalid(
            "index",
            "",
            "name at least one image manifest",
        ));
    }
    let mut entries = Vec::with_capacity(manifests.len());
    let mut platforms = HashSet::new();
    for name in manifests {
        let found = resolve_target(store, name)?;
        let media_type = found.media_type().to_string();
        if !is_image_manifest(&media_type) {
            return Err(Error::invalid(
                "index entry",
                name.clone(),
                format!("a {media_type}, not an image manifest"),
            ));
        }
        let digest = Digest::try_from(found.digest()).map_err(oci_core::Error::from)?;
        let described = describe::manifest_descriptor(store, digest)?;
        let Some(platform) = described.platform().clone() else {
            return Err(Error::invalid(
                "index entry",
                name.clone(),
                "its config names no platform (os and architecture)",
            ));
        };
        if !platforms.insert(platform::to_string(&platform)) {
            return Err(Error::invalid(
                "index entry",
                name.clone(),
                format!("a second image for {}", platform::to_string(&platform)),
            ));
        }
        entries.push(described);
    }
    let mut document = ImageIndex::default();
    document.set_manifests(entries);
    index::canonicalize(&mut document);
    let bytes =
        index::index_bytes(&document).map_err(|e| oci_core::Error::json(store.location(), e))?;
    let descriptor = Descriptor::new(
        MediaType::ImageIndex,
        bytes.len() as u64,
        Algorithm::Sha256.digest(&bytes),
    );
    store.push(&descriptor, &mut &bytes[..])?;
    Ok(descriptor)
}
