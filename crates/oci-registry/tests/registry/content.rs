//! Blobs, manifests and tags against the real registry, with no authentication.

use std::io::Write;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::{MemoryStore, index};
use oci_dir::DirLayout;

use crate::harness::{Variant, registry};
use crate::proxy::FaultProxy;
use crate::{
    build_image, bytes, chain, layer_descriptor, open, options, read_blob, require_registry, tags,
};

#[test]
fn a_small_blob_goes_in_one_request_and_comes_back() {
    require_registry!("a_small_blob_goes_in_one_request_and_comes_back");
    let proxy = FaultProxy::start(&registry(Variant::Plain).host);
    let store = open(&proxy.host, "content/small", options());
    let content = bytes("small", 3000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    store.push(&descriptor, &mut &content[..]).unwrap();

    assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), Some(3000));
    assert_eq!(read_blob(&store, digest).unwrap(), content);
    assert!(proxy.seen_matching("PATCH", "/blobs/uploads/").is_empty());
    let puts = proxy.seen_matching("PUT", "/blobs/uploads/");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].body_length, 3000);
}

#[test]
fn a_large_blob_goes_in_chunks_of_the_chunk_size() {
    require_registry!("a_large_blob_goes_in_chunks_of_the_chunk_size");
    let proxy = FaultProxy::start(&registry(Variant::Plain).host);
    let chunked = oci_registry::RegistryOptions {
        chunk_size: 1024,
        chunked_uploads: true,
        ..options()
    };
    let store = open(&proxy.host, "content/large", chunked);
    // Known digest (a copy): push.
    let content = bytes("large", 10_000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    store.push(&descriptor, &mut &content[..]).unwrap();
    let patches = proxy.seen_matching("PATCH", "/blobs/uploads/");
    assert_eq!(
        patches.iter().map(|p| p.body_length).collect::<Vec<_>>(),
        [vec![1024; 9], vec![784]].concat()
    );
    assert_eq!(read_blob(&store, digest).unwrap(), content);

    // Digest known at the end (a layer being built): begin_blob.
    let streamed = bytes("streamed", 5000);
    let mut writer = store.begin_blob(Algorithm::Sha256).unwrap();
    for piece in streamed.chunks(700) {
        writer.write_all(piece).unwrap();
    }
    let written = writer.commit(Some(5000), None).unwrap();
    assert_eq!(written, Algorithm::Sha256.digest(&streamed));
    assert_eq!(read_blob(&store, written).unwrap(), streamed);
    // Chunks of the chunk size, whatever the sizes of the writes.
    let streamed_patches: Vec<usize> = proxy.seen_matching("PATCH", "/blobs/uploads/")
        [patches.len()..]
        .iter()
        .map(|p| p.body_length)
        .collect();
    assert_eq!(streamed_patches, [1024, 1024, 1024, 1024, 904]);
}

#[test]
fn a_large_blob_of_known_digest_streams_in_one_patch() {
    require_registry!("a_large_blob_of_known_digest_streams_in_one_patch");
    let proxy = FaultProxy::start(&registry(Variant::Plain).host);
    let store = open(
        &proxy.host,
        "content/streamed",
        oci_registry::RegistryOptions {
            chunk_size: 1024,
            ..options()
        },
    );
    let content = bytes("streamed whole", 10_000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    store.push(&descriptor, &mut &content[..]).unwrap();
    let patches = proxy.seen_matching("PATCH", "/blobs/uploads/");
    assert_eq!(
        patches.iter().map(|p| p.body_length).collect::<Vec<_>>(),
        [10_000]
    );
    assert_eq!(read_blob(&store, digest).unwrap(), content);
}

#[test]
fn absent_content_is_none_and_not_found() {
    require_registry!("absent_content_is_none_and_not_found");
    let store = open(&registry(Variant::Plain).host, "content/absent", options());
    let digest = Algorithm::Sha256.digest(b"never pushed");
    assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), None);
    assert_eq!(store.stat(ContentKind::Manifest, digest).unwrap(), None);
    assert!(!store.contains(ContentKind::Blob, digest).unwrap());
    let error = store.fetch(ContentKind::Blob, digest, None).err().unwrap();
    assert!(error.is_not_found(), "{error:?}");
    assert!(error.to_string().contains(&digest.to_string()), "{error}");
    let error = store.resolve("no-such-tag").unwrap_err();
    assert!(
        matches!(error, oci_core::Error::RefNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("no-such-tag"), "{error}");
}

#[test]
fn a_blob_that_does_not_match_its_descriptor_is_refused_and_not_stored() {
    require_registry!("a_blob_that_does_not_match_its_descriptor_is_refused_and_not_stored");
    // One request; streamed in one PATCH; in chunks.
    for (chunk_size, chunked_uploads) in [(1 << 20, false), (1000, false), (1000, true)] {
        let store = open(
            &registry(Variant::Plain).host,
            "content/mismatch",
            oci_registry::RegistryOptions {
                chunk_size,
                chunked_uploads,
                ..options()
            },
        );
        let promised = bytes(&format!("promised {chunk_size} {chunked_uploads}"), 4000);
        let delivered = bytes(&format!("delivered {chunk_size} {chunked_uploads}"), 4000);
        let descriptor = layer_descriptor(&promised);
        let digest = Digest::try_from(descriptor.digest()).unwrap();
        let error = store.push(&descriptor, &mut &delivered[..]).unwrap_err();
        let text = chain(&error);
        assert!(text.contains(&digest.to_string()), "{text}");
        assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), None);
        let actual = Algorithm::Sha256.digest(&delivered);
        assert_eq!(store.stat(ContentKind::Blob, actual).unwrap(), None);

        // Shorter than the descriptor says.
        let error = store.push(&descriptor, &mut &promised[..3999]).unwrap_err();
        assert!(
            chain(&error).contains(&digest.to_string()),
            "{}",
            chain(&error)
        );
        assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), None);

        // Streamed, with the digest the caller expected.
        let mut writer = store.begin_blob(Algorithm::Sha256).unwrap();
        writer.write_all(&delivered).unwrap();
        let error = writer.commit(Some(4000), Some(digest)).unwrap_err();
        assert!(
            matches!(error, oci_core::Error::UnexpectedDigest { .. }),
            "{error:?}"
        );
        assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), None);
        assert_eq!(store.stat(ContentKind::Blob, actual).unwrap(), None);
    }
}

#[test]
fn an_image_copies_in_tags_resolves_and_copies_back_whole() {
    require_registry!("an_image_copies_in_tags_resolves_and_copies_back_whole");
    let image = build_image("round trip", &[100, 5000, 70_000]);
    let store = open(
        &registry(Variant::Plain).host,
        "content/round-trip",
        oci_registry::RegistryOptions {
            chunk_size: 16 << 10,
            ..options()
        },
    );
    let report = copy_image(&image.store, &store, &image.manifest).unwrap();
    assert_eq!(report.blobs_copied, 5);
    store.tag(&image.manifest, "v1").unwrap();

    let resolved = store.resolve("v1").unwrap();
    assert_eq!(resolved.digest(), image.manifest.digest());
    assert_eq!(resolved.size(), image.manifest.size());
    assert_eq!(resolved.media_type(), &MediaType::ImageManifest);
    assert_eq!(tags(&store), ["v1"]);
    assert!(
        oci_core::fsck::fsck_image(&store, &resolved)
            .unwrap()
            .is_clean()
    );

    // A second copy finds everything there.
    let again = copy_image(&image.store, &store, &image.manifest).unwrap();
    assert_eq!((again.blobs_copied, again.blobs_present), (0, 5));

    // Back into a layout directory, through a fresh client.
    let fresh = open(
        &registry(Variant::Plain).host,
        "content/round-trip",
        options(),
    );
    let root = fresh.resolve("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = DirLayout::create(dir.path().join("layout")).unwrap();
    copy_image(&fresh, &layout, &root).unwrap();
    layout.tag(&root, "v1").unwrap();
    assert!(fsck(&layout).unwrap().is_clean());
    for blob in image.blobs() {
        assert_eq!(
            read_blob(&layout, blob).unwrap(),
            read_blob(&image.store, blob).unwrap()
        );
    }
}

#[test]
fn a_tag_moves_and_reports_what_it_replaced() {
    require_registry!("a_tag_moves_and_reports_what_it_replaced");
    let first = build_image("tag first", &[10]);
    let second = build_image("tag second", &[20]);
    let store = open(&registry(Variant::Plain).host, "content/retag", options());
    copy_image(&first.store, &store, &first.manifest).unwrap();
    copy_image(&second.store, &store, &second.manifest).unwrap();
    store.tag(&first.manifest, "latest").unwrap();
    let replaced = store
        .put_entries(
            &[index::with_ref_name(second.manifest.clone(), "latest")],
            &[],
        )
        .unwrap();
    assert_eq!(replaced.added, 1);
    assert_eq!(replaced.replaced.len(), 1);
    assert_eq!(replaced.replaced[0].digest(), first.manifest.digest());
    assert_eq!(
        store.resolve("latest").unwrap().digest(),
        second.manifest.digest()
    );

    let error = store.remove_ref("latest").unwrap_err();
    assert!(error.to_string().contains("cannot remove a tag"), "{error}");
    assert_eq!(
        store.resolve("latest").unwrap().digest(),
        second.manifest.digest()
    );
}

#[test]
fn a_tag_is_refused_while_what_it_needs_is_missing() {
    require_registry!("a_tag_is_refused_while_what_it_needs_is_missing");
    let image = build_image("tag requires", &[10, 20]);
    let store = open(
        &registry(Variant::Plain).host,
        "content/requires",
        options(),
    );
    // Not pushed at all: nothing to tag.
    let error = store.tag(&image.manifest, "v1").unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(
        error.to_string().contains(&image.digest().to_string()),
        "{error}"
    );
    assert!(store.resolve("v1").is_err());

    // A tag that needs a blob the registry lacks (as when a blob written for the image was
    // lost on the way).
    copy_image(&image.store, &store, &image.manifest).unwrap();
    let missing = Algorithm::Sha256.digest(b"not there");
    let error = store
        .put_entries(
            &[index::with_ref_name(image.manifest.clone(), "v1")],
            &[missing],
        )
        .unwrap_err();
    assert!(error.to_string().contains(&missing.to_string()), "{error}");
    assert!(store.resolve("v1").is_err());
}

#[test]
fn every_tag_is_listed_in_the_index() {
    require_registry!("every_tag_is_listed_in_the_index");
    let store = open(&registry(Variant::Plain).host, "content/listed", options());
    let first = build_image("listed first", &[10]);
    let second = build_image("listed second", &[10]);
    copy_image(&first.store, &store, &first.manifest).unwrap();
    copy_image(&second.store, &store, &second.manifest).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    for (i, name) in names.iter().enumerate() {
        let image = if i % 2 == 0 { &first } else { &second };
        store.tag(&image.manifest, name).unwrap();
    }
    assert_eq!(tags(&store), names);
    for entry in store.index().unwrap().manifests() {
        let name = index::ref_name(entry).unwrap();
        let expected = if ["a", "c", "e"].contains(&name) {
            &first
        } else {
            &second
        };
        assert_eq!(entry.digest(), expected.manifest.digest(), "{name}");
        assert_eq!(entry.size(), expected.manifest.size(), "{name}");
    }
}

#[test]
fn a_repository_never_pushed_to_has_no_tags() {
    require_registry!("a_repository_never_pushed_to_has_no_tags");
    // distribution answers its tag list with 404 NAME_UNKNOWN.
    let empty = open(
        &registry(Variant::Plain).host,
        "content/never-pushed",
        options(),
    );
    let listed = empty.index().map_err(|e| chain(&e));
    assert!(
        listed.as_ref().is_ok_and(|i| i.manifests().is_empty()),
        "{listed:?}"
    );
    assert!(matches!(
        empty.resolve("latest"),
        Err(oci_core::Error::RefNotFound { .. })
    ));
}

#[test]
fn an_index_of_images_goes_in_children_first() {
    require_registry!("an_index_of_images_goes_in_children_first");
    let amd = build_image("index amd64", &[30]);
    let arm = build_image("index arm64", &[40]);
    let source = MemoryStore::new();
    for image in [&amd, &arm] {
        copy_image(&image.store, &source, &image.manifest).unwrap();
    }
    let index_bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd.manifest.digest().to_string(), "size": amd.manifest.size(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm.manifest.digest().to_string(), "size": arm.manifest.size(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let root = Descriptor::new(
        MediaType::ImageIndex,
        index_bytes.len() as u64,
        Algorithm::Sha256.digest(&index_bytes),
    );
    source.push(&root, &mut &index_bytes[..]).unwrap();

    let store = open(&registry(Variant::Plain).host, "content/index", options());
    copy_image(&source, &store, &root).unwrap();
    store.tag(&root, "multi").unwrap();
    let resolved = store.resolve("multi").unwrap();
    assert_eq!(resolved.media_type(), &MediaType::ImageIndex);
    assert_eq!(resolved.digest(), root.digest());
    let back = MemoryStore::new();
    copy_image(&store, &back, &resolved).unwrap();
    for blob in amd.blobs().into_iter().chain(arm.blobs()) {
        assert!(back.contains(ContentKind::Blob, blob).unwrap());
    }
}

#[test]
fn a_blake3_blob_is_refused_saying_the_registry_does_not_take_blake3() {
    require_registry!("a_blake3_blob_is_refused_saying_the_registry_does_not_take_blake3");
    let store = open(&registry(Variant::Plain).host, "content/blake3", options());
    let content = bytes("blake3 layer", 3000);
    let digest = Algorithm::Blake3.digest(&content);
    let descriptor = Descriptor::new(MediaType::ImageLayer, content.len() as u64, digest);
    // What a copy asks first: is it there?
    let error = store.stat(ContentKind::Blob, digest).unwrap_err();
    let text = chain(&error);
    assert!(
        text.contains(&digest.to_string())
            && text.contains("the registry does not accept blake3 digests"),
        "{text}"
    );
    assert!(store.push(&descriptor, &mut &content[..]).is_err());
    assert!(tags(&store).is_empty());
}
