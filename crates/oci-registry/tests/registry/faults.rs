//! Faults between the client and the real registry, made by the proxy: connections cut in the
//! middle of an upload or a download, 503 and 429 with `Retry-After`, bodies cut short or
//! corrupted. Each ends with the right content or with a clear error, and never with a tag
//! on something incomplete or a blob stored under a digest it does not match.

use std::time::{Duration, Instant};

use oci_core::MemoryStore;
use oci_core::prelude::*;
use oci_registry::RegistryOptions;

use crate::harness::{Variant, registry};
use crate::proxy::{Fault, FaultProxy};
use crate::{
    build_image, bytes, chain, layer_descriptor, open, options, read_blob, require_registry,
};

fn proxied(repository: &str, options: RegistryOptions) -> (FaultProxy, oci_registry::Registry) {
    let proxy = FaultProxy::start(&registry(Variant::Plain).host);
    let store = open(&proxy.host, repository, options);
    (proxy, store)
}

fn chunked() -> RegistryOptions {
    RegistryOptions {
        chunk_size: 1024,
        chunked_uploads: true,
        ..options()
    }
}

/// Pushes `image` straight to the registry (no proxy) under `tag`.
fn seed_registry(repository: &str, seed: &str, sizes: &[usize]) -> crate::TestImage {
    let image = build_image(seed, sizes);
    image.push_tagged(
        &open(&registry(Variant::Plain).host, repository, options()),
        "v1",
    );
    image
}

#[test]
fn an_upload_in_one_request_cut_in_the_middle_is_sent_again_whole() {
    require_registry!("an_upload_in_one_request_cut_in_the_middle_is_sent_again_whole");
    let (proxy, store) = proxied("faults/cut-put", options());
    proxy.inject("PUT", "/blobs/uploads/", 1, Fault::CutRequestBody(1500));
    let content = bytes("cut put", 4000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    let outcome = store.push(&descriptor, &mut &content[..]);
    assert!(outcome.is_ok(), "{}", chain(&outcome.unwrap_err()));
    assert_eq!(read_blob(&store, digest).unwrap(), content);
    assert_eq!(
        proxy.seen_matching("PUT", "/blobs/uploads/")[0].fault,
        Some("cut-request")
    );
}

#[test]
fn an_upload_whose_last_answer_is_lost_is_settled_by_asking() {
    require_registry!("an_upload_whose_last_answer_is_lost_is_settled_by_asking");
    for options in [options(), chunked()] {
        let chunk_size = options.chunk_size;
        let (proxy, store) = proxied("faults/lost-answer", options);
        // The registry finishes the upload; the client never hears it.
        proxy.inject("PUT", "/blobs/uploads/", 1, Fault::DropResponse);
        let content = bytes(&format!("lost answer {chunk_size}"), 4000);
        let descriptor = layer_descriptor(&content);
        let digest = Digest::try_from(descriptor.digest()).unwrap();
        let outcome = store.push(&descriptor, &mut &content[..]);
        assert!(outcome.is_ok(), "{}", chain(&outcome.unwrap_err()));
        assert_eq!(read_blob(&store, digest).unwrap(), content);
    }
}

#[test]
fn an_upload_cut_inside_a_chunk_ends_clearly_and_stores_nothing() {
    require_registry!("an_upload_cut_inside_a_chunk_ends_clearly_and_stores_nothing");
    let (proxy, store) = proxied("faults/cut-patch", chunked());
    let content = bytes("cut patch", 5000);
    let descriptor = layer_descriptor(&content);
    let digest = Digest::try_from(descriptor.digest()).unwrap();
    // The second chunk is cut after 500 of its 1024 bytes. Distribution 2.8 cannot go on
    // from a session a cut left inside a PATCH, and the chunks before are not held: the push
    // fails, saying so, and nothing is stored.
    proxy.inject_after("PATCH", "/blobs/uploads/", 1, 1, Fault::CutRequestBody(500));
    let text = chain(&store.push(&descriptor, &mut &content[..]).unwrap_err());
    assert!(text.contains(&digest.to_string()), "{text}");
    assert!(text.contains("upload must start again"), "{text}");
    assert_eq!(store.stat(ContentKind::Blob, digest).unwrap(), None);
    // Started again, it goes through.
    store.push(&descriptor, &mut &content[..]).unwrap();
    assert_eq!(read_blob(&store, digest).unwrap(), content);

    // In a copy: the image is not there, and no tag can be put on it.
    let image = build_image("cut patch image", &[5000]);
    proxy.inject("PATCH", "/blobs/uploads/", 1, Fault::CutRequestBody(100));
    let text = chain(&copy_image(&image.store, &store, &image.manifest).unwrap_err());
    assert!(text.contains(&proxy.host), "{text}");
    assert!(text.contains("upload must start again"), "{text}");
    assert_eq!(
        store.stat(ContentKind::Manifest, image.digest()).unwrap(),
        None
    );
    assert!(store.tag(&image.manifest, "v1").is_err());
    assert!(store.resolve("v1").is_err());
}

#[test]
fn a_streamed_upload_cut_in_the_middle_is_sent_again_from_the_start_by_the_copy() {
    require_registry!(
        "a_streamed_upload_cut_in_the_middle_is_sent_again_from_the_start_by_the_copy"
    );
    // Larger than the chunk size, not chunked: one streamed PATCH, which the proxy cuts.
    let small_chunks = RegistryOptions {
        chunk_size: 1024,
        ..options()
    };
    let (proxy, store) = proxied("faults/cut-stream", small_chunks);
    let image = build_image("cut stream image", &[10_000]);
    proxy.inject("PATCH", "/blobs/uploads/", 1, Fault::CutRequestBody(3000));
    let report = copy_image(&image.store, &store, &image.manifest);
    assert!(report.is_ok(), "{}", chain(&report.unwrap_err()));
    let patches = proxy.seen_matching("PATCH", "/blobs/uploads/");
    assert_eq!(
        patches
            .iter()
            .map(|p| (p.body_length, p.fault))
            .collect::<Vec<_>>(),
        [(10_000, Some("cut-request")), (10_000, None)],
        "the cut upload, then the whole blob again in a new session"
    );
    for &layer in &image.layers {
        assert_eq!(
            read_blob(&store, layer).unwrap(),
            read_blob(&image.store, layer).unwrap()
        );
    }
    store.tag(&image.manifest, "v1").unwrap();
    assert_eq!(
        store.resolve("v1").unwrap().digest(),
        image.manifest.digest()
    );
}

#[test]
fn a_download_cut_in_the_middle_resumes_where_it_stopped() {
    require_registry!("a_download_cut_in_the_middle_resumes_where_it_stopped");
    let image = seed_registry("faults/cut-get", "cut get", &[50_000]);
    let (proxy, store) = proxied("faults/cut-get", options());
    proxy.inject("GET", "/blobs/sha256:", 2, Fault::CutResponseBody(20_000));
    let layer = image.layers[0];
    let expected = read_blob(&image.store, layer).unwrap();
    // With the size known (a copy) and without.
    let mut reader = store.fetch(ContentKind::Blob, layer, Some(50_000)).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
    assert_eq!(got, expected);
    assert_eq!(read_blob(&store, layer).unwrap(), expected);
    let gets = proxy.seen_matching("GET", &format!("/blobs/{layer}"));
    assert_eq!(gets.len(), 4, "{gets:?}");

    let copy = MemoryStore::new();
    proxy.inject("GET", "/blobs/sha256:", 1, Fault::CutResponseBody(100));
    copy_image(&store, &copy, &image.manifest).unwrap();
    assert_eq!(read_blob(&copy, layer).unwrap(), expected);
}

#[test]
fn a_manifest_download_cut_in_the_middle_is_read_again() {
    require_registry!("a_manifest_download_cut_in_the_middle_is_read_again");
    let image = seed_registry("faults/cut-manifest", "cut manifest", &[10]);
    let (proxy, store) = proxied("faults/cut-manifest", options());
    proxy.inject("GET", "/manifests/", 1, Fault::CutResponseBody(100));
    let copy = MemoryStore::new();
    let outcome = copy_image(&store, &copy, &image.manifest);
    assert!(outcome.is_ok(), "{}", chain(&outcome.unwrap_err()));
    assert!(
        copy.contains(ContentKind::Manifest, image.digest())
            .unwrap()
    );
}

#[test]
fn busy_answers_are_waited_out_as_the_registry_asks() {
    require_registry!("busy_answers_are_waited_out_as_the_registry_asks");
    let image = build_image("busy", &[100, 3000]);
    let (proxy, store) = proxied("faults/busy", chunked());
    proxy.inject("HEAD", "/blobs/", 1, Fault::Status(503, Some("1")));
    proxy.inject("POST", "/blobs/uploads/", 1, Fault::Status(429, Some("1")));
    proxy.inject("PATCH", "/blobs/uploads/", 1, Fault::Status(503, None));
    proxy.inject("PUT", "/manifests/", 1, Fault::Status(429, Some("1")));
    proxy.inject("GET", "/blobs/sha256:", 1, Fault::Status(503, Some("1")));
    let started = Instant::now();
    image.push_tagged(&store, "v1");
    image.assert_held_by(&store, "v1");
    // Four answers asked for a second each.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let faulted: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.fault.is_some())
        .collect();
    assert_eq!(faulted.len(), 5, "{faulted:?}");
}

#[test]
fn a_registry_that_stays_unavailable_is_a_clear_error() {
    require_registry!("a_registry_that_stays_unavailable_is_a_clear_error");
    let image = seed_registry("faults/unavailable", "unavailable", &[10]);
    let (proxy, store) = proxied(
        "faults/unavailable",
        RegistryOptions {
            retries: 2,
            ..options()
        },
    );
    proxy.inject(
        "HEAD",
        "/manifests/",
        usize::MAX,
        Fault::Status(503, Some("0")),
    );
    proxy.inject("GET", "/blobs/", usize::MAX, Fault::Status(429, Some("0")));
    let text = chain(&store.resolve("v1").unwrap_err());
    assert!(
        text.contains(&format!(
            "http://{}/v2/faults/unavailable/manifests/v1",
            proxy.host
        )),
        "{text}"
    );
    assert!(text.contains("503 Service Unavailable"), "{text}");
    assert_eq!(proxy.seen_matching("HEAD", "/manifests/v1").len(), 3);

    let text = chain(&read_blob(&store, image.layers[0]).unwrap_err());
    assert!(text.contains(&image.layers[0].to_string()), "{text}");
    assert!(text.contains("429 Too Many Requests"), "{text}");
}

#[test]
fn a_body_cut_short_is_read_again_or_refused() {
    require_registry!("a_body_cut_short_is_read_again_or_refused");
    let image = seed_registry("faults/truncated", "truncated", &[30_000]);
    let layer = image.layers[0];
    let expected = read_blob(&image.store, layer).unwrap();
    let (proxy, store) = proxied("faults/truncated", options());

    // Once, the size known: the rest is asked for.
    proxy.inject(
        "GET",
        &format!("/blobs/{layer}"),
        1,
        Fault::TruncateResponse(10_000),
    );
    let mut reader = store.fetch(ContentKind::Blob, layer, Some(30_000)).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
    assert_eq!(got, expected);

    // Every time, a third: each resumed read brings the next third.
    proxy.inject(
        "GET",
        &format!("/blobs/{layer}"),
        3,
        Fault::TruncateResponse(10_000),
    );
    let mut reader = store.fetch(ContentKind::Blob, layer, Some(30_000)).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut got).unwrap();
    assert_eq!(got, expected);
    let ranges: Vec<_> = proxy
        .seen_matching("GET", &format!("/blobs/{layer}"))
        .into_iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(ranges[2..], [Some(200), Some(206), Some(206)]);

    // Without the size, the short body looks whole: the digest refuses it.
    proxy.inject(
        "GET",
        &format!("/blobs/{layer}"),
        1,
        Fault::TruncateResponse(10_000),
    );
    let text = chain(&read_blob(&store, layer).unwrap_err());
    assert!(text.contains(&layer.to_string()), "{text}");

    // Every time, nothing: an error naming the blob, after a few tries.
    proxy.inject(
        "GET",
        &format!("/blobs/{layer}"),
        usize::MAX,
        Fault::TruncateResponse(0),
    );
    let copy = MemoryStore::new();
    let text = chain(&copy_image(&store, &copy, &image.manifest).unwrap_err());
    assert!(text.contains(&layer.to_string()), "{text}");
    assert!(!copy.contains(ContentKind::Blob, layer).unwrap());
    let text = chain(&read_blob(&store, layer).unwrap_err());
    assert!(text.contains(&layer.to_string()), "{text}");

    // A manifest cut short does not pass for the manifest.
    proxy.inject(
        "GET",
        "/manifests/",
        usize::MAX,
        Fault::TruncateResponse(50),
    );
    let fresh = open(&proxy.host, "faults/truncated", options());
    let text = chain(
        &fresh
            .read_document(ContentKind::Manifest, image.digest(), None)
            .unwrap_err(),
    );
    assert!(text.contains(&image.digest().to_string()), "{text}");
    assert!(text.contains("the manifest hashes to sha256:"), "{text}");
}

#[test]
fn a_corrupted_body_is_refused_and_not_stored() {
    require_registry!("a_corrupted_body_is_refused_and_not_stored");
    let image = seed_registry("faults/corrupt", "corrupt", &[30_000]);
    let layer = image.layers[0];
    let (proxy, store) = proxied("faults/corrupt", options());
    proxy.inject(
        "GET",
        &format!("/blobs/{layer}"),
        usize::MAX,
        Fault::CorruptResponse,
    );
    let text = chain(&read_blob(&store, layer).unwrap_err());
    assert!(text.contains(&layer.to_string()), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let layout = oci_dir::DirLayout::create(dir.path().join("layout")).unwrap();
    let error = copy_image(&store, &layout, &image.manifest).unwrap_err();
    assert!(
        chain(&error).contains(&layer.to_string()),
        "{}",
        chain(&error)
    );
    assert!(!layout.contains(ContentKind::Blob, layer).unwrap());
    assert!(
        !layout
            .contains(ContentKind::Manifest, image.digest())
            .unwrap()
    );

    proxy.inject("GET", "/manifests/", usize::MAX, Fault::CorruptResponse);
    let fresh = open(&proxy.host, "faults/corrupt", options());
    let text = chain(
        &fresh
            .read_document(ContentKind::Manifest, image.digest(), None)
            .unwrap_err(),
    );
    assert!(text.contains(&image.digest().to_string()), "{text}");
    assert!(text.contains("the manifest hashes to sha256:"), "{text}");
    // A tag is never put on a manifest read corrupted.
    let copy = MemoryStore::new();
    assert!(copy_image(&fresh, &copy, &image.manifest).is_err());
    assert!(
        !copy
            .contains(ContentKind::Manifest, image.digest())
            .unwrap()
    );
}
