//! Docker's formats: schema 2 manifests and manifest lists go through a copy byte for byte
//! (their digests kept) against the real registry; schema 1, which names no config by digest,
//! is refused clearly (from the in-memory registry: distribution 2.8 no longer accepts
//! schema 1 pushes, so it cannot be made to serve one).

use oci_core::MemoryStore;
use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use serde_json::json;

use crate::fake_registry::{Behaviour, FakeRegistry};
use crate::harness::{Variant, registry};
use crate::{bytes, chain, open, options, require_registry};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Stores `bytes` as a document of `media_type` and returns its descriptor.
fn document(store: &MemoryStore, media_type: &str, bytes: &[u8]) -> Descriptor {
    let descriptor = Descriptor::new(
        MediaType::from(media_type),
        bytes.len() as u64,
        Algorithm::Sha256.digest(bytes),
    );
    store.push(&descriptor, &mut &bytes[..]).unwrap();
    descriptor
}

/// A Docker schema 2 image for `architecture`, written as docker writes it (indented JSON,
/// so that a client that re-serialised it would change its digest).
fn docker_image(store: &MemoryStore, architecture: &str) -> Descriptor {
    let config = serde_json::to_vec_pretty(&json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let config = (
        store.write_blob(Algorithm::Sha256, &config).unwrap(),
        config.len(),
    );
    let layer = bytes(&format!("docker layer {architecture}"), 20_000);
    let layer = (
        store.write_blob(Algorithm::Sha256, &layer).unwrap(),
        layer.len(),
    );
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.1, "digest": config.0.to_string()},
        "layers": [{"mediaType": DOCKER_LAYER, "size": layer.1, "digest": layer.0.to_string()}],
    }))
    .unwrap();
    document(store, DOCKER_MANIFEST, &manifest)
}

fn manifest_bytes(store: &dyn Store, digest: Digest) -> Vec<u8> {
    let mut reader = store.fetch(ContentKind::Manifest, digest, None).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut out).unwrap();
    out
}

#[test]
fn docker_schema_2_manifests_and_lists_copy_byte_for_byte() {
    require_registry!("docker_schema_2_manifests_and_lists_copy_byte_for_byte");
    let source = MemoryStore::named("memory:docker");
    let amd64 = docker_image(&source, "amd64");
    let arm64 = docker_image(&source, "arm64");
    let entry = |descriptor: &Descriptor, architecture: &str| {
        json!({
            "mediaType": DOCKER_MANIFEST,
            "size": descriptor.size(),
            "digest": descriptor.digest().to_string(),
            "platform": {"architecture": architecture, "os": "linux"},
        })
    };
    let list = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")],
    }))
    .unwrap();
    let list = document(&source, DOCKER_LIST, &list);

    let store = open(&registry(Variant::Plain).host, "docker/list", options());
    copy_image(&source, &store, &list).unwrap();
    store.tag(&list, "multi").unwrap();

    let resolved = store.resolve("multi").unwrap();
    assert_eq!(resolved.digest(), list.digest());
    assert_eq!(resolved.media_type(), &MediaType::from(DOCKER_LIST));
    // Back into memory: every document the same bytes, so the same digests.
    let back = MemoryStore::named("memory:back");
    copy_image(&store, &back, &resolved).unwrap();
    for descriptor in [&list, &amd64, &arm64] {
        let digest = Digest::try_from(descriptor.digest()).unwrap();
        assert_eq!(
            manifest_bytes(&back, digest),
            manifest_bytes(&source, digest),
            "{digest}"
        );
    }
    assert!(
        oci_core::fsck::fsck_image(&store, &resolved)
            .unwrap()
            .is_clean()
    );
}

#[test]
fn a_schema_1_manifest_is_refused_naming_its_media_type() {
    let (fake, server) = FakeRegistry::serve(Behaviour::default());
    let signed = serde_json::to_vec(&json!({
        "schemaVersion": 1,
        "name": "old/image",
        "tag": "v1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": Algorithm::Sha256.digest(b"layer").to_string()}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [],
    }))
    .unwrap();
    fake.put_tag(
        "v1",
        &signed,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    );
    let store = open(&server.host, "old/image", options());
    let error = store.resolve("v1").unwrap_err();
    let text = chain(&error);
    assert!(
        text.contains("schema 1") || text.contains("v1+prettyjws"),
        "{text}"
    );
    assert!(text.contains("old/image"), "{text}");
    // Asked for by digest (a copy's next step), the document is refused too.
    let digest = Algorithm::Sha256.digest(&signed);
    let read = store
        .fetch(ContentKind::Manifest, digest, None)
        .and_then(|mut reader| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut out)
                .map_err(|e| oci_core::Error::io(store.location(), e))
        });
    let text = chain(&read.unwrap_err());
    assert!(text.contains("schema 1"), "{text}");
}
