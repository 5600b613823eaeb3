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
    /// The referrers copied with it (empty unless asked for): OCI 1.1 referrers, and the
    /// images under cosign's tags.
    pub referrers: CopyReport,
    /// Cosign's tags copied with the image (`sha256-HEX.sig`, `.att`, `.sbom`), each with what
    /// it names; empty unless referrers were asked for.
    pub cosign_tags: Vec<(String, Descriptor)>,
}

impl CopySummary {
    /// The digest of the image copied.
    pub fn digest(&self) -> Result<Digest, oci_core::Error> {
        Ok(Digest::try_from(self.descriptor.digest())?)
    }
}

/// The suffixes of the tags cosign keeps an image's signatures, attestations and SBOMs under
/// (`SignatureTag`, `AttestationTag`, `SBOMTag` of sigstore/cosign `pkg/oci/remote`): cosign
/// does not use referrers, but tags named after the image's digest.
const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// A tag is at most this long (the distribution grammar), so longer cosign names cannot be.
const TAG_MAX: usize = 128;

/// Cosign's tags for an image: `ALGORITHM-HEX.sig`, `.att` and `.sbom`.
pub fn cosign_tags(digest: Digest) -> Vec<String> {
    COSIGN_SUFFIXES
        .iter()
        .map(|suffix| format!("{}-{}.{suffix}", digest.algorithm(), digest.encoded()))
        .filter(|tag| tag.len() <= TAG_MAX)
        .collect()
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
///
/// With [`CopyRequest::referrers`], the manifests that refer to the image are copied, and so
/// are the images under cosign's tags for each manifest copied ([`cosign_tags`]), under the
/// same tags, when the source has them.
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
    let into_registry = matches!(destination, StoreName::Registry(_));
    let summary = copy_into(src.as_ref(), &dst, root, tag, into_registry, request, true)?;
    dst.finish()?;
    Ok(summary)
}

/// Copies `root` from `src` into `dst`, with its referrers (and cosign's tags, when
/// `cosign`) where asked, and names it `tag` last.
fn copy_into(
    src: &dyn Store,
    dst: &Destination,
    root: Descriptor,
    tag: Option<String>,
    into_registry: bool,
    request: &CopyRequest<'_>,
    cosign: bool,
) -> Result<CopySummary, Error> {
    let image = copy_image_with(src, dst.store(), &root, &request.copy)?;
    let mut summary = CopySummary {
        descriptor: root,
        tag,
        image,
        referrers: CopyReport::default(),
        cosign_tags: Vec::new(),
    };
    if request.referrers {
        let subjects: Vec<Digest> = summary
            .image
            .items
            .iter()
            .filter(|item| ContentKind::of_descriptor(&item.descriptor) == ContentKind::Manifest)
            .filter_map(|item| Digest::try_from(item.descriptor.digest()).ok())
            .collect();
        summary.referrers = copy_referrers(src, dst.store(), &subjects, &request.copy)?;
        if cosign {
            for subject in &subjects {
                for name in cosign_tags(*subject) {
                    let found = match src.resolve(&name) {
                        Ok(found) => found,
                        Err(oci_core::Error::RefNotFound { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let report = copy_image_with(src, dst.store(), &found, &request.copy)?;
                    summary.referrers.bytes_copied += report.bytes_copied;
                    summary.referrers.items.extend(report.items);
                    dst.store().tag(&found, &name)?;
                    summary.cosign_tags.push((name, found));
                }
            }
        }
    }
    match &summary.tag {
        Some(name) => dst.store().tag(&summary.descriptor, name)?,
        // In a layout, an untagged entry keeps the image from gc and lists it.
        None if !into_registry => dst.store().put_entry(&summary.descriptor)?,
        None => {}
    }
    Ok(summary)
}

/// One tag of [`copy_all_tags`], and how its copy went.
#[derive(Debug)]
pub struct TagCopy {
    /// The tag (a layout's or archive's ref name).
    pub tag: String,
    /// What it names in the source.
    pub descriptor: Descriptor,
    /// The copy.
    pub outcome: Result<CopySummary, Error>,
}

/// Copies every tag of `source` (a registry repository's tags, following its paging; every
/// ref name in a layout's or archive's index) to `destination`, each under its tag, whole
/// (every platform of an index).
///
/// Neither name may point at an image (no tag, digest or `:REF`); a platform is refused. The
/// tags are copied one after the other; a tag that fails does not stop the others, and its
/// error is in its [`TagCopy`], except into an archive, which is written whole or not at all
/// (the first failure is the error, and no archive appears), and after a cancel (the copy
/// stops there). With [`CopyRequest::referrers`], each tag's referrers are copied too;
/// cosign's tags are tags like any other here.
pub fn copy_all_tags(
    source: &StoreName,
    destination: &StoreName,
    request: &CopyRequest<'_>,
) -> Result<Vec<TagCopy>, Error> {
    for name in [source, destination] {
        if let Some(reference) = name.reference() {
            return Err(Error::Selection {
                store: name.to_string(),
                reason: format!("names {reference}, but every tag is copied: name the store alone"),
            });
        }
    }
    if request.platform.is_some() {
        return Err(Error::Selection {
            store: source.to_string(),
            reason: "every tag is copied whole: a platform cannot be chosen".into(),
        });
    }
    let src = open_source(source, &request.source)?;
    let mut tagged: Vec<(String, Descriptor)> = Vec::new();
    for entry in src.index()?.manifests() {
        if let Some(name) = index::ref_name(entry)
            && !tagged.iter().any(|(seen, _)| seen == name)
        {
            tagged.push((name.to_owned(), entry.clone()));
        }
    }
    if tagged.is_empty() {
        return Err(Error::Selection {
            store: source.to_string(),
            reason: "holds no tagged image".into(),
        });
    }
    let dst = Destination::open(destination, &request.destination)?;
    let into_registry = matches!(destination, StoreName::Registry(_));
    let into_archive = matches!(destination, StoreName::Archive { .. });
    let mut copies = Vec::with_capacity(tagged.len());
    for (tag, descriptor) in tagged {
        let outcome = copy_into(
            src.as_ref(),
            &dst,
            descriptor.clone(),
            Some(tag.clone()),
            into_registry,
            request,
            false,
        );
        let failed = outcome.is_err();
        copies.push(TagCopy {
            tag,
            descriptor,
            outcome,
        });
        let cancelled = request
            .copy
            .cancel
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed));
        if failed && into_archive {
            let last = copies.pop().expect("the copy just pushed");
            return Err(Error::Selection {
                store: destination.to_string(),
                reason: format!(
                    "tag {}: {} (no archive written)",
                    last.tag,
                    last.outcome
                        .err()
                        .map(|e| error_chain(&e))
                        .unwrap_or_default()
                ),
            });
        }
        if cancelled {
            break;
        }
    }
    dst.finish()?;
    Ok(copies)
}

/// An error and its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
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
