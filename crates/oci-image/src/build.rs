//! Assembling an image: layers, config and manifest, on a base or from scratch.

use std::collections::BTreeMap;
use std::path::Path;

use oci_core::oci_spec::image::{
    Descriptor, History, ImageManifestBuilder, MediaType, Platform, SCHEMA_VERSION,
};
use oci_core::{Algorithm, Digest, Store, index};

use crate::config::{ImageConfig, RuntimeOverrides, now, rfc3339};
use crate::layer::{Layer, LayerOptions};
use crate::progress::Progress;
use crate::resolve::{ResolvedImage, oci_layer_media_type};
use crate::{Error, Result, dir_layer, tar_layer};

/// `org.opencontainers.image.base.digest`: the manifest an image was built on.
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";
/// `org.opencontainers.image.base.name`: the name of the base image.
pub const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";

/// Builds an image in a store: layers on top of a base (or of nothing), runtime settings, then
/// [`ImageBuilder::write`] stores the config and the manifest. Tagging is the caller's
/// ([`Store::tag`]).
pub struct ImageBuilder<'s> {
    store: &'s dyn Store,
    algorithm: Algorithm,
    config: ImageConfig,
    layers: Vec<Descriptor>,
    /// Positions in the history of the entries added here, which get the image's `created`.
    new_history: Vec<usize>,
    annotations: BTreeMap<String, String>,
    created: Option<u64>,
}

impl<'s> ImageBuilder<'s> {
    /// An image with no layers, for `platform`.
    pub fn new(store: &'s dyn Store, platform: &Platform) -> ImageBuilder<'s> {
        ImageBuilder {
            store,
            algorithm: Algorithm::Sha256,
            config: ImageConfig::new(platform),
            layers: Vec::new(),
            new_history: Vec::new(),
            annotations: BTreeMap::new(),
            created: None,
        }
    }

    /// An image on top of `base` (stored in the same store): its layers, its config (runtime
    /// settings, history, platform), and the `org.opencontainers.image.base.*` annotations
    /// (`base_name` is the name it was found by, when there was one).
    pub fn on_base(
        store: &'s dyn Store,
        base: ResolvedImage,
        base_name: Option<&str>,
    ) -> ImageBuilder<'s> {
        let layers = base
            .manifest
            .layers()
            .iter()
            .map(|layer| {
                let mut layer = layer.clone();
                layer.set_media_type(oci_layer_media_type(layer.media_type()));
                layer
            })
            .collect();
        let mut annotations = BTreeMap::new();
        annotations.insert(
            BASE_DIGEST_ANNOTATION.to_owned(),
            base.descriptor.digest().to_string(),
        );
        if let Some(name) = base_name {
            annotations.insert(BASE_NAME_ANNOTATION.to_owned(), name.to_owned());
        }
        ImageBuilder {
            store,
            algorithm: Algorithm::Sha256,
            config: base.config,
            layers,
            new_history: Vec::new(),
            annotations,
            created: None,
        }
    }

    /// The algorithm of the config and manifest digests (sha256 unless set).
    pub fn algorithm(&mut self, algorithm: Algorithm) -> &mut Self {
        self.algorithm = algorithm;
        self
    }

    /// The image's `created` time (and that of the history entries added here), in seconds
    /// since the epoch; the time of [`ImageBuilder::write`] unless set. Set it (for instance to
    /// `SOURCE_DATE_EPOCH`) for reproducible images.
    pub fn created_at(&mut self, seconds: u64) -> &mut Self {
        self.created = Some(seconds);
        self
    }

    /// Sets a manifest annotation.
    pub fn annotate(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The config as it stands.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The config, to change directly.
    pub fn config_mut(&mut self) -> &mut ImageConfig {
        &mut self.config
    }

    /// Applies runtime settings (see [`RuntimeOverrides`]).
    pub fn apply(&mut self, overrides: &RuntimeOverrides) -> Result<&mut Self> {
        self.config.apply(overrides)?;
        Ok(self)
    }

    /// Adds a stored layer on top, with a history entry `created_by`.
    pub fn add_layer(&mut self, layer: &Layer, created_by: &str) -> &mut Self {
        let mut history = History::default();
        history.set_created_by(Some(created_by.to_owned()));
        let position = self.config.spec().history().as_ref().map_or(0, Vec::len);
        self.config.push_layer(layer.diff_id, history);
        self.new_history.push(position);
        self.layers.push(layer.descriptor.clone());
        self
    }

    /// Writes a layer of the tree at `dir` ([`dir_layer::write_dir_layer`]) and adds it.
    pub fn add_dir_layer(
        &mut self,
        dir: &Path,
        options: &LayerOptions,
        progress: Option<&dyn Progress>,
    ) -> Result<Layer> {
        let layer = dir_layer::write_dir_layer(self.store, dir, options, progress)?;
        self.add_layer(&layer, "oci-layout image create --from-dir");
        Ok(layer)
    }

    /// Writes a layer of what the tree at `dir` changes relative to the image's layers so far
    /// (usually the base's), with whiteouts for what it removed
    /// ([`dir_layer::write_dir_diff_layer`]), and adds it.
    pub fn add_dir_diff_layer(
        &mut self,
        dir: &Path,
        options: &LayerOptions,
        progress: Option<&dyn Progress>,
    ) -> Result<Layer> {
        let layer =
            dir_layer::write_dir_diff_layer(self.store, dir, &self.layers, options, progress)?;
        self.add_layer(&layer, "oci-layout image create --from-dir --diff");
        Ok(layer)
    }

    /// Writes a layer from the tar file at `path` ([`tar_layer::write_tar_layer`]) and adds it.
    pub fn add_tar_layer(
        &mut self,
        path: &Path,
        options: &LayerOptions,
        progress: Option<&dyn Progress>,
    ) -> Result<Layer> {
        let layer = tar_layer::write_tar_layer(self.store, path, options, progress)?;
        self.add_layer(&layer, "oci-layout image create --from-tar");
        Ok(layer)
    }

    /// Stores the config and the manifest and returns the manifest's descriptor, with the
    /// platform set, ready to be tagged (see also [`ImageBuilder::write_and_tag`]).
    pub fn write(self) -> Result<Descriptor> {
        self.store_documents().map(|(manifest, _)| manifest)
    }

    /// [`ImageBuilder::write`]; also returns the descriptors the manifest names (config, then
    /// layers).
    fn store_documents(mut self) -> Result<(Descriptor, Vec<Descriptor>)> {
        let created = rfc3339(self.created.unwrap_or_else(now));
        self.config.spec_mut().set_created(Some(created.clone()));
        if !self.new_history.is_empty() {
            let mut history = self.config.spec().history().clone().unwrap_or_default();
            for &i in &self.new_history {
                if let Some(entry) = history.get_mut(i) {
                    entry.set_created(Some(created.clone()));
                }
            }
            self.config.spec_mut().set_history(Some(history));
        }
        let location = self.store.location().clone();
        let config_bytes = self.config.to_json().map_err(|e| Error::InvalidImage {
            location: location.clone(),
            reason: format!("cannot serialise the image config: {e}"),
        })?;
        let config = self.write_blob(&config_bytes, MediaType::ImageConfig)?;
        let mut manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(self.layers.clone())
            .build()
            .map_err(|e| Error::InvalidImage {
                location: location.clone(),
                reason: format!("cannot build the manifest: {e}"),
            })?;
        if !self.annotations.is_empty() {
            manifest.set_annotations(Some(self.annotations.clone().into_iter().collect()));
        }
        let manifest_bytes =
            index::to_canonical_json(&manifest).map_err(|e| Error::InvalidImage {
                location,
                reason: format!("cannot serialise the manifest: {e}"),
            })?;
        let mut descriptor = self.write_blob(&manifest_bytes, MediaType::ImageManifest)?;
        descriptor.set_platform(Some(self.config.platform()));
        let mut parts = vec![manifest.config().clone()];
        parts.extend(self.layers);
        Ok((descriptor, parts))
    }

    /// [`ImageBuilder::write`], then names the image `name` in the store's index. The tag
    /// requires the config and every layer to be stored, checked in the same step as the index
    /// update ([`Store::put_entries`], under the lock gc sweeps under): a gc or
    /// blob removal that took one while the image was built makes this fail, and never leaves
    /// the tag on an image with a hole. Returns the manifest's descriptor.
    pub fn write_and_tag(self, name: &str) -> Result<Descriptor> {
        oci_core::validate_ref_name(name)?;
        let store = self.store;
        let (manifest, parts) = self.store_documents()?;
        let required = parts
            .iter()
            .map(|part| Digest::try_from(part.digest()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(oci_core::Error::from)?;
        let entry = index::with_ref_name(manifest.clone(), name);
        store.put_entries(std::slice::from_ref(&entry), &required)?;
        Ok(manifest)
    }

    /// Stores a config or manifest under its media type ([`Store::push`]: a registry keeps
    /// manifests apart from blobs).
    fn write_blob(&self, bytes: &[u8], media_type: MediaType) -> Result<Descriptor> {
        let digest = self.algorithm.digest(bytes);
        let descriptor = Descriptor::new(media_type, bytes.len() as u64, digest);
        self.store.push(&descriptor, &mut &bytes[..])?;
        Ok(descriptor)
    }
}
