//! `copy SRC DST`: one image from any store to any store.

use oci_core::oci_spec::image::{Descriptor, Platform};
use oci_core::{
    ContentKind, CopyOptions, CopyOutcome, CopyReport, Digest, Store, copy_image_with, index,
    referrers::copy_referrers, walk,
};

use crate::{Destination, Error, OpenOptions, StoreName, open_source};

/// How [`copy`] runs.
#[derive(Default)]
pub struct CopyRequest<'a> {
    /// One image of an index, for this platform; `None` copies the index whole, every
    /// platform (its digest is kept).
    pub platform: Option<Platform>,
    /// Also copy the manifests that refer to what is copied (signatures, SBOMs: OCI 1.1
    /// referrers), and theirs.
    pub referrers: bool,
    /// How the copy of blobs runs: jobs, progress, cancel.
    pub copy: CopyOptions<'a>,
    /// How the source is opened.
    pub source: OpenOptions,
    /// How the destination is opened.
    pub destination: OpenOptions,
}

/// What [`copy`] did.
#[derive(Debug, Clone)]
pub struct CopySummary {
    /// The image copied (a manifest or an index), as the source describes it.
    pub descriptor: Descriptor,
    /// The name it was given in the destination, if any.
    pub tag: Option<String>,
    /// The image's content.
    pub image: CopyReport,
    /// The referrers copied with it (empty unless asked for).
    pub referrers: CopyReport,
}

impl CopySummary {
    /// The digest of the image copied.
    pub fn digest(&self) -> Result<Digest, oci_core::Error> {
        Ok(Digest::try_from(self.descriptor.digest())?)
    }
}

/// Copies one image from `source` to `destination`.
///
/// The image: what the source name points at (a ref name or digest of a layout or archive, a
/// tag or digest of a registry); a layout or archive named without one holds exactly one
/// image, or the error lists the ones it holds. With a platform, the manifest for it is taken
/// out of an index.
///
/// Its name in the destination: the one the destination name gives (a registry's tag, a
/// layout's ref); else, for a layout or archive, the name it had in the source; else none
/// (an untagged index entry in a layout). A destination named by digest must be given that
/// very image. The name is written last, once everything under it is there.
pub fn copy(
    source: &StoreName,
    destination: &StoreName,
    request: &CopyRequest<'_>,
) -> Result<CopySummary, Error> {
    let src = open_source(source, &request.source)?;
    let (mut root, source_tag) = select(src.as_ref(), source, request.platform.as_ref())?;
    if let StoreName::DockerArchive { .. } = destination
        && request.platform.is_none()
        && walk::is_index_like(root.media_type().as_ref())
    {
        // A docker archive holds one platform of an image: this machine's, as skopeo picks.
        let target = root.digest().to_string();
        root = oci_image::select_manifest(
            src.as_ref(),
            &target,
            root,
            Some(&oci_image::platform::host()),
        )?;
    }
    let digest = Digest::try_from(root.digest()).map_err(oci_core::Error::from)?;
    if let Some(wanted) = destination.digest()
        && wanted != digest
    {
        return Err(Error::Selection {
            store: destination.to_string(),
            reason: format!("named by digest {wanted}, but the image copied is {digest}"),
        });
    }
    let dst = Destination::open(destination, &request.destination)?;
    let image = copy_image_with(src.as_ref(), dst.store(), &root, &request.copy)?;
    let referrers = if request.referrers {
        let subjects: Vec<Digest> = image
            .items
            .iter()
            .filter(|item| ContentKind::of_descriptor(&item.descriptor) == ContentKind::Manifest)
            .filter_map(|item| Digest::try_from(item.descriptor.digest()).ok())
            .collect();
        copy_referrers(src.as_ref(), dst.store(), &subjects, &request.copy)?
    } else {
        CopyReport::default()
    };
    let tag = match destination {
        StoreName::Registry(image) if image.digest.is_none() => image.tag.clone(),
        StoreName::Registry(_) => None,
        StoreName::DockerArchive {
            reference: Some(reference),
            ..
        } => Some(reference.clone()),
        StoreName::DockerArchive { .. } => repo_tag_of(source, source_tag),
        _ => destination
            .reference()
            .filter(|r| Digest::parse(r).is_err())
            .or(source_tag),
    };
    match &tag {
        Some(name) => dst.store().tag(&root, name)?,
        // In a layout, an untagged entry keeps the image from gc and lists it.
        None if !matches!(destination, StoreName::Registry(_)) => dst.store().put_entry(&root)?,
        None => {}
    }
    dst.finish()?;
    Ok(CopySummary {
        descriptor: root,
        tag,
        image,
        referrers,
    })
}

/// The image `name` points at in `store`, for `platform`, and the name it has there.
fn select(
    store: &dyn Store,
    name: &StoreName,
    platform: Option<&Platform>,
) -> Result<(Descriptor, Option<String>), Error> {
    let (descriptor, tag, target) = match name.reference() {
        Some(reference) => {
            let descriptor = oci_image::resolve_target(store, &reference)?;
            let tag = match name {
                // `@N` names no tag: the image's first RepoTag is its name.
                StoreName::DockerArchive { .. } => index::ref_name(&descriptor).map(str::to_owned),
                _ => Digest::parse(&reference)
                    .is_err()
                    .then(|| reference.clone()),
            };
            (descriptor, tag, reference)
        }
        None => {
            let entries = store.index()?.manifests().clone();
            let mut digests: Vec<String> = entries.iter().map(|d| d.digest().to_string()).collect();
            digests.dedup();
            match entries.as_slice() {
                [] => {
                    return Err(Error::Selection {
                        store: name.to_string(),
                        reason: "holds no image".into(),
                    });
                }
                [only] => {
                    let tag = index::ref_name(only).map(str::to_owned);
                    (only.clone(), tag, only.digest().to_string())
                }
                several if digests.len() == 1 => {
                    let tag = several
                        .iter()
                        .find_map(|d| index::ref_name(d))
                        .map(str::to_owned);
                    (several[0].clone(), tag, several[0].digest().to_string())
                }
                several => {
                    let names: Vec<String> = several
                        .iter()
                        .map(|d| {
                            index::ref_name(d).map_or_else(
                                || format!("{} (untagged)", d.digest()),
                                |n| oci_core::printable(n).into_owned(),
                            )
                        })
                        .collect();
                    return Err(Error::Selection {
                        store: name.to_string(),
                        reason: format!(
                            "holds {} images; name one (NAME:REF): {}",
                            several.len(),
                            names.join(", ")
                        ),
                    });
                }
            }
        }
    };
    if platform.is_none() {
        return Ok((descriptor, tag));
    }
    let chosen = oci_image::select_manifest(store, &target, descriptor, platform)?;
    Ok((chosen, tag))
}

/// The RepoTag a docker archive written without one gets: the source's `NAME:TAG` where it
/// has one (a registry's tag, a docker archive's RepoTag, a layout's ref that is one), else
/// none, as skopeo does.
fn repo_tag_of(source: &StoreName, source_tag: Option<String>) -> Option<String> {
    let candidate = match source {
        StoreName::Registry(image) if image.digest.is_none() && image.tag.is_some() => {
            image.to_string()
        }
        StoreName::Registry(_) => return None,
        _ => source_tag.filter(|tag| tag.contains(':'))?,
    };
    oci_tar::docker_archive::normalize_repo_tag(&candidate).ok()
}

/// What a copy did to each digest, for reports: `copied`, `present` or `mounted`.
pub fn outcome_name(outcome: CopyOutcome) -> &'static str {
    match outcome {
        CopyOutcome::Copied => "copied",
        CopyOutcome::Present => "present",
        CopyOutcome::Mounted => "mounted",
    }
}
