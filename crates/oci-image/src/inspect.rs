//! What an image is made of, as a tree: index → manifests (with platforms) → config summary
//! and layers. Serialises to the JSON `oci-layout inspect --json` prints.

use std::collections::BTreeMap;

use oci_core::oci_spec::image::{Descriptor, Platform};
use oci_core::{ContentKind, Digest, Store, walk};
use serde::Serialize;

use crate::config::ImageConfig;
use crate::resolve::{self, is_image_manifest};
use crate::{Error, Result, platform};

/// One node of the tree: a descriptor and what its blob holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// The ref name, for the root when it was named by one.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The media type.
    pub media_type: String,
    /// The digest.
    pub digest: String,
    /// The size in bytes.
    pub size: u64,
    /// The platform of a manifest (from its index entry, or its config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSummary>,
    /// The artifact type, when the descriptor names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// What the blob holds.
    #[serde(flatten)]
    pub content: Content,
}

/// What a node's blob holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Content {
    /// An index: its manifests (only those for the platform asked for, when one was).
    Index {
        /// The entries, in order.
        manifests: Vec<Node>,
    },
    /// An image manifest.
    Image {
        /// The config.
        config: Box<ConfigSummary>,
        /// The layers, bottom first.
        layers: Vec<LayerSummary>,
    },
    /// The blob is not in the store (an archive with one platform's blobs, say).
    Missing,
    /// A blob this does not look into (an artifact manifest, an unknown media type).
    Other,
}

/// A platform, as the image-spec spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSummary {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `variant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformSummary {
    fn of(platform: &Platform) -> PlatformSummary {
        PlatformSummary {
            os: platform.os().to_string(),
            architecture: platform.architecture().to_string(),
            variant: platform.variant().clone().filter(|v| !v.is_empty()),
        }
    }
}

impl std::fmt::Display for PlatformSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A blob: media type, size, digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobSummary {
    /// The media type.
    pub media_type: String,
    /// The size in bytes.
    pub size: u64,
    /// The digest.
    pub digest: String,
}

impl BlobSummary {
    fn of(descriptor: &Descriptor) -> BlobSummary {
        BlobSummary {
            media_type: descriptor.media_type().to_string(),
            size: descriptor.size(),
            digest: descriptor.digest().to_string(),
        }
    }
}

/// A layer, and whether it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    /// The blob.
    #[serde(flatten)]
    pub blob: BlobSummary,
    /// The blob is not in the store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

/// The config blob and, when it is stored and an image config, what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSummary {
    /// The blob.
    #[serde(flatten)]
    pub blob: BlobSummary,
    /// What the config says; `None` when the blob is missing or not an image config.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSummary>,
    /// The blob is not in the store.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

/// The parts of an image config a person looks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The platform it names.
    pub platform: PlatformSummary,
    /// `created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `config.Entrypoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `config.Cmd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `config.Env`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `config.WorkingDir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `config.User`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `config.Labels`, sorted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `config.ExposedPorts`, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// The number of `history` entries.
    pub history: usize,
}

impl ImageSummary {
    /// The summary of a config.
    pub fn of(config: &ImageConfig) -> ImageSummary {
        let spec = config.spec();
        let runtime = spec.config().clone().unwrap_or_default();
        let mut exposed_ports = runtime.exposed_ports().clone().unwrap_or_default();
        exposed_ports.sort();
        ImageSummary {
            platform: PlatformSummary::of(&config.platform()),
            created: spec.created().clone(),
            entrypoint: runtime.entrypoint().clone(),
            cmd: runtime.cmd().clone(),
            env: runtime.env().clone().unwrap_or_default(),
            working_dir: runtime.working_dir().clone(),
            user: runtime.user().clone(),
            labels: runtime
                .labels()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            exposed_ports,
            diff_ids: spec.rootfs().diff_ids().clone(),
            history: spec.history().as_ref().map_or(0, Vec::len),
        }
    }
}

impl Node {
    /// The digests of the blobs the image needs and the store lacks: the node itself, and the
    /// config and layers of every manifest that is stored. A manifest an index lists but the
    /// store lacks is not one of them: leaving other platforms out is what partial exports
    /// do (it shows as a [`Content::Missing`] node).
    pub fn missing_blobs(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if matches!(self.content, Content::Missing) {
            missing.push(self.digest.clone());
        }
        self.collect_missing_parts(&mut missing);
        missing
    }

    fn collect_missing_parts(&self, missing: &mut Vec<String>) {
        match &self.content {
            Content::Index { manifests } => {
                for child in manifests {
                    child.collect_missing_parts(missing);
                }
            }
            Content::Image { config, layers } => {
                if config.missing {
                    missing.push(config.blob.digest.clone());
                }
                missing.extend(
                    layers
                        .iter()
                        .filter(|layer| layer.missing)
                        .map(|layer| layer.blob.digest.clone()),
                );
            }
            Content::Missing | Content::Other => {}
        }
    }
}

/// The tree under `target` (a ref name or a digest). With `platform`, an index shows only
/// the manifests for it, and naming none is an error.
pub fn inspect(store: &dyn Store, target: &str, platform: Option<&Platform>) -> Result<Node> {
    let descriptor = resolve::resolve_target(store, target)?;
    let mut node = describe_node(store, &descriptor, platform, 0)?;
    if Digest::parse(target).map_or(true, |d| d.to_string() != node.digest) {
        node.reference = Some(target.to_owned());
    }
    if let Some(wanted) = platform {
        let found = match &node.content {
            Content::Index { .. } => count_images(&node) > 0,
            Content::Image { config, .. } => config
                .image
                .as_ref()
                .is_none_or(|image| platform::matches(wanted, &platform_of(&image.platform))),
            _ => true,
        };
        if !found {
            let everything = describe_node(store, &descriptor, None, 0)?;
            let mut available = Vec::new();
            collect_platforms(&everything, &mut available);
            return Err(Error::PlatformNotFound {
                reference: target.to_owned(),
                location: store.location().clone(),
                platform: platform::to_string(wanted),
                available: if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                },
            });
        }
    }
    Ok(node)
}

fn platform_of(summary: &PlatformSummary) -> Platform {
    platform::build(
        &summary.os,
        &summary.architecture,
        summary.variant.as_deref(),
    )
}

fn collect_platforms(node: &Node, out: &mut Vec<String>) {
    match &node.content {
        Content::Index { manifests } => manifests.iter().for_each(|m| collect_platforms(m, out)),
        Content::Image { .. } => {
            if let Some(platform) = &node.platform {
                out.push(platform.to_string());
            }
        }
        _ => {}
    }
}

fn count_images(node: &Node) -> usize {
    match &node.content {
        Content::Index { manifests } => manifests.iter().map(count_images).sum(),
        Content::Image { .. } => 1,
        _ => 0,
    }
}

const MAX_DEPTH: usize = 8;

fn describe_node(
    store: &dyn Store,
    descriptor: &Descriptor,
    wanted: Option<&Platform>,
    depth: usize,
) -> Result<Node> {
    let digest = Digest::try_from(descriptor.digest()).map_err(oci_core::Error::from)?;
    let media_type = descriptor.media_type().to_string();
    let mut node = Node {
        reference: None,
        media_type: media_type.clone(),
        digest: digest.to_string(),
        size: descriptor.size(),
        platform: descriptor.platform().as_ref().map(PlatformSummary::of),
        artifact_type: descriptor.artifact_type().as_ref().map(ToString::to_string),
        content: Content::Other,
    };
    if !store.contains(ContentKind::of(&media_type), digest)? {
        node.content = Content::Missing;
        return Ok(node);
    }
    if walk::is_index_like(&media_type) && depth < MAX_DEPTH {
        let index = resolve::read_index(store, descriptor)?;
        let mut manifests = Vec::new();
        for child in index.manifests() {
            let child = resolve::with_real_media_type(store, child.clone())?;
            let mut child = describe_node(store, &child, wanted, depth + 1)?;
            if let Some(wanted) = wanted {
                let keep = match &child.content {
                    Content::Index { manifests } => !manifests.is_empty(),
                    _ => child
                        .platform
                        .as_ref()
                        .is_some_and(|p| platform::matches(wanted, &platform_of(p))),
                };
                if !keep {
                    continue;
                }
            }
            child.reference = None;
            manifests.push(child);
        }
        node.content = Content::Index { manifests };
    } else if is_image_manifest(&media_type) {
        let manifest = resolve::read_manifest(store, descriptor)?;
        let config_descriptor = manifest.config();
        let config_digest =
            Digest::try_from(config_descriptor.digest()).map_err(oci_core::Error::from)?;
        let missing = !store.contains(ContentKind::Blob, config_digest)?;
        let image = if missing {
            None
        } else {
            match resolve::read_config(store, config_descriptor) {
                Ok(config) => Some(ImageSummary::of(&config)),
                Err(Error::InvalidImage { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        if node.platform.is_none() {
            node.platform = image.as_ref().map(|i| i.platform.clone());
        }
        node.content = Content::Image {
            config: Box::new(ConfigSummary {
                blob: BlobSummary::of(config_descriptor),
                image,
                missing,
            }),
            layers: manifest
                .layers()
                .iter()
                .map(|layer| {
                    let digest = Digest::try_from(layer.digest()).map_err(oci_core::Error::from)?;
                    Ok(LayerSummary {
                        blob: BlobSummary::of(layer),
                        missing: !store.contains(ContentKind::Blob, digest)?,
                    })
                })
                .collect::<Result<_>>()?,
        };
    }
    Ok(node)
}
