//! Integration tests of the registry store against real parts: Debian's `docker-registry`
//! (distribution 2.8) with no auth, htpasswd, token auth and TLS (`harness`), a token server
//! (`tokens`), a fault proxy between the client and the registry (`proxy`), all three from
//! the dev-only crate `oci-test-registry`, and a small
//! responder for what 2.8 lacks and for registries that misbehave (`responder`,
//! `fake_registry`). Everything listens on loopback.
//!
//! Without `docker-registry` (or `openssl`, `htpasswd`) the tests that need it print `SKIP`
//! and pass; with `OCI_LAYOUT_REQUIRE_INTEROP=1` they fail instead.
#![allow(clippy::unwrap_used)]

mod responder;
// The real registry, token server and fault proxy, shared with the CLI tests.
use oci_test_registry::{harness, http, proxy, require_registry, tokens};

mod fake_registry;

mod auth;
mod bad_input;
mod content;
mod docker_formats;
mod faults;
mod referrers;
mod spec_extras;
mod tls;

use std::io::Read;
use std::time::Duration;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::{MemoryStore, index};
use oci_registry::{Credentials, ImageReference, Registry, RegistryOptions};
use serde_json::json;

/// Options for a test: no Docker config from the machine, few and quick retries, a timeout
/// that fails a hung test in seconds rather than a minute.
pub fn options() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        retries: 3,
        timeout: Duration::from_secs(10),
        ..RegistryOptions::default()
    }
}

/// The repository `repository` of the registry at `host`.
pub fn open(host: &str, repository: &str, options: RegistryOptions) -> Registry {
    let reference = ImageReference::parse(&format!("{host}/{repository}")).unwrap();
    Registry::open(&reference, options).unwrap()
}

/// An error and its sources, joined with ": " as the CLI prints them.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `size` bytes that differ with `seed`.
pub fn bytes(seed: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut counter = 0u64;
    while out.len() < size {
        let block = Algorithm::Sha256.digest(format!("{seed}/{counter}").as_bytes());
        out.extend_from_slice(block.to_string().as_bytes());
        counter += 1;
    }
    out.truncate(size);
    out
}

/// A descriptor of `content` as a layer.
pub fn layer_descriptor(content: &[u8]) -> Descriptor {
    Descriptor::new(
        MediaType::ImageLayer,
        content.len() as u64,
        Algorithm::Sha256.digest(content),
    )
}

/// An image in memory: a config, layers of `layer_sizes`, a manifest.
pub struct TestImage {
    /// Where it is.
    pub store: MemoryStore,
    /// Its manifest.
    pub manifest: Descriptor,
    /// Its config blob.
    pub config: Digest,
    /// Its layers.
    pub layers: Vec<Digest>,
}

impl TestImage {
    /// Every blob of the image (config and layers).
    pub fn blobs(&self) -> Vec<Digest> {
        let mut all = vec![self.config];
        all.extend(&self.layers);
        all
    }

    /// The manifest's digest.
    pub fn digest(&self) -> Digest {
        Digest::try_from(self.manifest.digest()).unwrap()
    }

    /// Copies the image into `store` and tags it `tag`.
    pub fn push_tagged(&self, store: &dyn Store, tag: &str) {
        oci_core::copy_image(&self.store, store, &self.manifest).unwrap();
        store.tag(&self.manifest, tag).unwrap();
    }

    /// `store` resolves `tag` to this image's manifest and serves every blob as it is here.
    pub fn assert_held_by(&self, store: &dyn Store, tag: &str) {
        assert_eq!(store.resolve(tag).unwrap().digest(), self.manifest.digest());
        for blob in self.blobs() {
            assert_eq!(
                read_blob(store, blob).unwrap(),
                read_blob(&self.store, blob).unwrap()
            );
        }
    }
}

/// An image whose content differs with `seed`, with layers of `layer_sizes` bytes.
pub fn build_image(seed: &str, layer_sizes: &[usize]) -> TestImage {
    let store = MemoryStore::named(format!("memory:{seed}"));
    let config_bytes = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"seed": seed}},
    }))
    .unwrap();
    let config = store.write_blob(Algorithm::Sha256, &config_bytes).unwrap();
    let mut layers = Vec::new();
    let mut layer_entries = Vec::new();
    for (i, &size) in layer_sizes.iter().enumerate() {
        let content = bytes(&format!("{seed}/layer{i}"), size);
        let digest = store.write_blob(Algorithm::Sha256, &content).unwrap();
        layers.push(digest);
        layer_entries.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest.to_string(),
            "size": size,
        }));
    }
    let manifest_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layer_entries,
    }))
    .unwrap();
    let manifest = Descriptor::new(
        MediaType::ImageManifest,
        manifest_bytes.len() as u64,
        Algorithm::Sha256.digest(&manifest_bytes),
    );
    store.push(&manifest, &mut &manifest_bytes[..]).unwrap();
    TestImage {
        store,
        manifest,
        config,
        layers,
    }
}

/// Reads a blob whole from `store`, verified.
pub fn read_blob(store: &dyn Store, digest: Digest) -> oci_core::Result<Vec<u8>> {
    let mut reader = store.fetch(ContentKind::Blob, digest, None)?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| oci_core::Error::io(store.location(), e))?;
    Ok(out)
}

/// The tags of `store`'s index, sorted.
pub fn tags(store: &dyn Store) -> Vec<String> {
    let mut names: Vec<String> = store
        .index()
        .unwrap()
        .manifests()
        .iter()
        .filter_map(|d| index::ref_name(d).map(str::to_owned))
        .collect();
    names.sort();
    names
}
