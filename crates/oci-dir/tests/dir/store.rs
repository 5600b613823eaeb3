//! The `Store` level over directories: copy_image, describe, tagging, concurrency.

use std::collections::BTreeSet;
use std::sync::Barrier;

use oci_core::oci_spec::image::{Arch, Descriptor, MediaType, Os};
use oci_core::{
    BlobListing, ContentKind, CopyOutcome, CopyReport, Digest, Error, Store, copy_image, describe,
    index, seed,
};
use oci_dir::DirLayout;
use serde_json::json;

use crate::common::{
    MANIFEST, OCI_CONFIG, OCI_INDEX, corpus_layout, digest_of, err, new_layout, new_layout_with,
    read_all, ref_names, relaxed, small_image, write_image,
};

#[test]
fn copy_image_between_dir_layouts() {
    let (_src_tmp, src) = new_layout_with(relaxed());
    let (_dst_tmp, dst) = new_layout();
    let image = small_image(&src);
    // An unrelated blob in the source is not copied.
    let unrelated = seed::write_blob(&src, b"unrelated").unwrap();

    let report = copy_image(&src, &dst, &image.manifest).unwrap();
    assert_eq!(
        counts(&report),
        (4, image.bytes(), 0, 0),
        "copied, bytes, present, mounted"
    );
    assert_eq!(report.items.len(), 4);
    assert_eq!(
        report
            .items
            .last()
            .map(|item| (item.descriptor.digest().to_string(), item.outcome)),
        Some((image.manifest.digest().to_string(), CopyOutcome::Copied)),
        "the manifest goes last, after what it points to"
    );
    let copied: BTreeSet<Digest> = dst.list_blobs().unwrap().into_iter().collect();
    assert_eq!(copied, image.digests());
    assert!(!dst.contains(ContentKind::Blob, unrelated).unwrap());
    for digest in image.digests() {
        assert_eq!(
            seed::read_blob(&dst, digest).unwrap(),
            seed::read_blob(&src, digest).unwrap()
        );
    }
    // Index entries are not touched.
    assert!(ref_names(&dst).is_empty());

    let again = copy_image(&src, &dst, &image.manifest).unwrap();
    assert_eq!(
        counts(&again),
        (0, 0, 4, 0),
        "copied, bytes, present, mounted"
    );
    assert!(
        again
            .items
            .iter()
            .all(|item| item.outcome == CopyOutcome::Present)
    );
}

#[test]
fn copy_image_nested_index_from_corpus() {
    // Entry "3" of ggcr-test_index is an OCI index (read straight from the read-only corpus).
    let src = DirLayout::open(corpus_layout("ggcr-test_index")).unwrap();
    let (_tmp, dst) = new_layout_with(relaxed());
    let root = src.resolve("3").unwrap();
    assert_eq!(root.media_type().to_string(), OCI_INDEX);
    let report = copy_image(&src, &dst, &root).unwrap();
    // The index, its manifest, that manifest's config and layer.
    let stored = dst.list_blobs().unwrap();
    assert_eq!(report.blobs_copied, stored.len());
    assert_eq!(stored.len(), 4);
    assert!(stored.contains(&digest_of(&root)));
    assert_eq!(report.blobs_present, 0);
    for digest in stored {
        assert_eq!(
            seed::read_blob(&dst, digest).unwrap(),
            seed::read_blob(&src, digest).unwrap()
        );
    }
}

#[test]
fn copy_image_follows_a_manifest_stored_as_descriptor_json() {
    // Entry "2" of ggcr-test_index is a manifest under `application/vnd.oci.descriptor.v1+json`;
    // fsck and gc follow it, so copy_image must copy its config and layer too (found by the
    // manifest_walk fuzz target: fuzz/regressions/manifest_walk/copy-image-skips-json-typed-document).
    let src = DirLayout::open(corpus_layout("ggcr-test_index")).unwrap();
    let (_tmp, dst) = new_layout_with(relaxed());
    let root = src.resolve("2").unwrap();
    assert_eq!(
        root.media_type().to_string(),
        "application/vnd.oci.descriptor.v1+json"
    );
    let report = copy_image(&src, &dst, &root).unwrap();
    assert_eq!(
        report.blobs_copied, 3,
        "the manifest, its config and its layer"
    );
    assert_eq!(dst.list_blobs().unwrap().len(), 3);
}

#[test]
fn copy_image_walks_a_manifest_first_met_as_a_plain_blob() {
    // An index lists the same manifest twice, as a plain blob (walked first) and as a manifest:
    // its config and layers are still copied.
    let (_src_tmp, src) = new_layout_with(relaxed());
    let (_dst_tmp, dst) = new_layout_with(relaxed());
    let image = small_image(&src);
    let mut as_blob = image.manifest.clone();
    as_blob.set_media_type(MediaType::Other("application/octet-stream".into()));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [image.manifest, as_blob],
    });
    let root = seed::write_json_blob(&src, &index, MediaType::ImageIndex).unwrap();
    let report = copy_image(&src, &dst, &root).unwrap();
    let mut expected = image.digests();
    expected.insert(digest_of(&root));
    let copied: BTreeSet<Digest> = dst.list_blobs().unwrap().into_iter().collect();
    assert_eq!(copied, expected);
    assert_eq!(report.blobs_copied, expected.len());
    assert_eq!(report.blobs_present, 0);
}

#[test]
fn gc_keeps_the_children_of_a_manifest_first_met_as_a_plain_blob() {
    // The index names one manifest twice, as a plain blob (marked first) and as a manifest:
    // its config and layers are live (fuzz/regressions/manifest_walk/
    // gc-marks-a-blob-met-first-as-a-layer).
    let (_tmp, layout) = new_layout_with(relaxed());
    let image = small_image(&layout);
    let mut as_blob = image.manifest.clone();
    as_blob.set_media_type(MediaType::Other("application/octet-stream".into()));
    layout.tag(&image.manifest, "v1").unwrap();
    layout.tag(&as_blob, "raw").unwrap();
    let options = oci_core::gc::GcOptions {
        grace: std::time::Duration::ZERO,
        dry_run: false,
    };
    let report = oci_core::gc::gc(&layout, &options).unwrap();
    assert_eq!(report.removed, []);
    assert_eq!(report.live, image.digests().len());
    assert!(oci_core::fsck::fsck(&layout).unwrap().is_clean());
}

#[test]
fn copy_image_refuses_broken_content() {
    // "1.0.0" has a config whose descriptor says 585 bytes where the blob has 584.
    let src = DirLayout::open(corpus_layout(
        "containers-image-delete_image_multiple_images",
    ))
    .unwrap();
    let (_tmp, dst) = new_layout_with(relaxed());
    let root = src.resolve("1.0.0").unwrap();
    assert!(matches!(
        err(copy_image(&src, &dst, &root)),
        Error::UnexpectedSize {
            expected: 585,
            actual: 584,
            ..
        }
    ));
    let config = "sha256:913cf3a39d377faf89ed388ad913a318a390488c9f34c46e43424795cdabffe8";
    assert!(
        !dst.contains(ContentKind::Blob, Digest::parse(config).unwrap())
            .unwrap()
    );
    // The images of that layout whose descriptors are right copy fine.
    let report = copy_image(&src, &dst, &src.resolve("3.18").unwrap()).unwrap();
    assert_eq!(report.blobs_copied + report.blobs_present, 3);
    assert!(
        dst.contains(ContentKind::Blob, Digest::parse(config).unwrap())
            .unwrap()
    );

    // A root that is missing.
    let src = DirLayout::open(corpus_layout("ggcr-test_gc_image_unknown_mediatype")).unwrap();
    let root = src.index().unwrap().manifests()[0].clone();
    assert!(err(copy_image(&src, &dst, &root)).is_not_found());
}

/// Writes `config` and a manifest of `manifest_type` for it, and describes the manifest.
fn describe_image(
    layout: &DirLayout,
    config: &serde_json::Value,
    config_type: &str,
    manifest_type: Option<&str>,
) -> (Descriptor, u64, Digest) {
    let config = seed::write_json_blob(layout, config, MediaType::from(config_type)).unwrap();
    let mut manifest = json!({"schemaVersion": 2, "config": config, "layers": []});
    if let Some(t) = manifest_type {
        manifest["mediaType"] = json!(t);
    }
    let written = seed::write_json_blob(layout, &manifest, MediaType::ImageManifest).unwrap();
    let digest = digest_of(&written);
    let described = describe::manifest_descriptor(layout, digest).unwrap();
    (described, written.size(), digest)
}

#[test]
fn describe_manifest_descriptor_fills_platform() {
    let (_tmp, layout) = new_layout_with(relaxed());
    let config =
        json!({"architecture": "arm64", "os": "linux", "variant": "v8", "os.version": "6.1"});
    for (manifest_type, config_type) in [
        (Some(MANIFEST), OCI_CONFIG),
        (None, OCI_CONFIG),
        (
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            "application/vnd.docker.container.image.v1+json",
        ),
    ] {
        let (described, size, digest) =
            describe_image(&layout, &config, config_type, manifest_type);
        assert_eq!(
            described.media_type().to_string(),
            manifest_type.unwrap_or(MANIFEST)
        );
        assert_eq!(described.size(), size);
        assert_eq!(digest_of(&described), digest);
        let platform = described.platform().clone().expect("a platform");
        assert_eq!(platform.architecture(), &Arch::ARM64);
        assert_eq!(platform.os(), &Os::Linux);
        assert_eq!(platform.variant().as_deref(), Some("v8"));
        assert_eq!(platform.os_version().as_deref(), Some("6.1"));
        // And it is written with the spec's key.
        let mut idx = index::empty_index();
        index::put_descriptor(&mut idx, described);
        let text = String::from_utf8(index::index_bytes(&idx).unwrap()).unwrap();
        assert!(text.contains(r#""os.version":"6.1""#), "{text}");
    }
}

#[test]
fn describe_manifest_descriptor_without_platform() {
    let (_tmp, layout) = new_layout_with(relaxed());
    // A config of another type (an artifact), or one that names no os.
    for (config, config_type) in [
        (
            json!({"architecture": "amd64", "os": "linux"}),
            "application/vnd.cncf.helm.config.v1+json",
        ),
        (json!({"architecture": "amd64"}), OCI_CONFIG),
        (json!({"architecture": "", "os": "linux"}), OCI_CONFIG),
    ] {
        let (described, _, _) = describe_image(&layout, &config, config_type, Some(MANIFEST));
        assert_eq!(described.platform(), &None, "{config} as {config_type}");
    }
    // artifactType is carried over.
    let artifact = json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": "application/example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                   "digest": seed::write_blob(&layout, b"{}").unwrap().to_string()},
        "layers": []
    });
    let written = seed::write_json_blob(&layout, &artifact, MediaType::ImageManifest).unwrap();
    let described = describe::manifest_descriptor(&layout, digest_of(&written)).unwrap();
    assert_eq!(
        described
            .artifact_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("application/example.sbom")
    );
    assert_eq!(described.platform(), &None);
}

#[test]
fn describe_manifest_descriptor_of_index_and_others() {
    let (_tmp, layout) = new_layout_with(relaxed());
    let image = small_image(&layout);
    // An index without mediaType is recognised by its shape.
    let idx = json!({"schemaVersion": 2, "manifests": [image.manifest]});
    let written = seed::write_json_blob(&layout, &idx, MediaType::ImageIndex).unwrap();
    let described = describe::manifest_descriptor(&layout, digest_of(&written)).unwrap();
    assert_eq!(described.media_type().to_string(), OCI_INDEX);
    assert_eq!(described.size(), written.size());
    assert_eq!(described.platform(), &None);

    // Not a manifest: an error naming the blob.
    let config = digest_of(&image.config);
    assert!(matches!(
        err(describe::manifest_descriptor(&layout, config)),
        Error::InvalidLayout { location, .. } if location == layout.location().of_content(config)
    ));
    // Missing: NotFound.
    let absent = oci_core::Algorithm::Sha256.digest(b"absent");
    assert!(err(describe::manifest_descriptor(&layout, absent)).is_not_found());
}

#[test]
fn store_tag_resolve_remove() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    layout.tag(&image.manifest, "latest").unwrap();
    let resolved = layout.resolve("v1").unwrap();
    assert_eq!(resolved.digest(), image.manifest.digest());
    assert_eq!(index::ref_name(&resolved), Some("v1"));
    for bad in ["", "../x", "a//b"] {
        assert!(matches!(
            err(layout.tag(&image.manifest, bad)),
            Error::InvalidRefName { .. }
        ));
    }
    assert!(layout.remove_ref("v1").unwrap());
    assert!(!layout.remove_ref("v1").unwrap());
    assert_eq!(ref_names(&layout), [Some("latest".to_owned())]);
    assert!(matches!(
        err(layout.resolve("v1")),
        Error::RefNotFound { .. }
    ));
    // The blob itself reads through the store.
    let digest = digest_of(&image.manifest);
    let bytes = read_all(
        layout
            .fetch(ContentKind::Manifest, digest, Some(image.manifest.size()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(bytes.len() as u64, image.manifest.size());
}

#[test]
fn concurrent_tagging_from_8_threads() {
    const THREADS: usize = 8;
    let (_tmp, layout) = new_layout();
    let images: Vec<Descriptor> = (0..THREADS)
        .map(|i| {
            write_image(
                &layout,
                &json!({"architecture": "amd64", "os": "linux", "n": i}),
                &[],
            )
            .manifest
        })
        .collect();
    let root = layout.root().to_path_buf();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for (i, manifest) in images.iter().enumerate() {
            let (root, barrier) = (&root, &barrier);
            scope.spawn(move || {
                let mine = DirLayout::open(root).unwrap();
                barrier.wait();
                mine.tag(manifest, &format!("t{i}")).unwrap();
            });
        }
    });
    let names: BTreeSet<String> = ref_names(&layout).into_iter().flatten().collect();
    let expected: BTreeSet<String> = (0..THREADS).map(|i| format!("t{i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(layout.index().unwrap().manifests().len(), THREADS);
    for (i, manifest) in images.iter().enumerate() {
        assert_eq!(
            layout.resolve(&format!("t{i}")).unwrap().digest(),
            manifest.digest()
        );
    }
    assert!(crate::common::temp_debris(layout.root()).is_empty());
}

/// `Store::push`: content of a known descriptor, checked before it is visible. A mismatch in
/// digest or size (short or long) is refused and leaves nothing: no blob under the digest's
/// name, no temp file, nothing listed.
#[test]
fn push_of_content_that_does_not_match_is_refused_and_nothing_is_visible() {
    let (_tmp, layout) = new_layout();
    let content = b"pushed content";
    let digest = oci_core::Algorithm::Sha256.digest(content);
    let size = content.len() as u64;
    let other = oci_core::Algorithm::Sha256.digest(b"other content");
    for (media_type, what) in [
        (MediaType::ImageLayer, "a layer"),
        (MediaType::ImageManifest, "a manifest"),
    ] {
        for (descriptor, offered, expected) in [
            // The digest of other content.
            (
                Descriptor::new(media_type.clone(), size, other),
                &content[..],
                "digest",
            ),
            // The right digest, content cut short or with more behind it.
            (
                Descriptor::new(media_type.clone(), size, digest),
                &content[..size as usize - 1],
                "size",
            ),
            (
                Descriptor::new(media_type.clone(), size, digest),
                &b"pushed content and more"[..],
                "size",
            ),
            // The right content, a wrong size claimed.
            (
                Descriptor::new(media_type.clone(), size + 1, digest),
                &content[..],
                "size",
            ),
        ] {
            let error = err(layout.push(&descriptor, &mut &offered[..]));
            match (&error, expected) {
                (Error::UnexpectedDigest { .. }, "digest")
                | (Error::UnexpectedSize { .. }, "size") => {}
                _ => panic!("{what}, {expected}: {error:?}"),
            }
            let blobs = crate::common::files_under(&layout.root().join("blobs"));
            assert!(blobs.is_empty(), "{what}, {expected}: left {blobs:?}");
            assert!(crate::common::temp_debris(layout.root()).is_empty());
            assert!(
                !layout
                    .contains(ContentKind::of(media_type.as_ref()), digest)
                    .unwrap()
            );
            assert!(!layout.contains(ContentKind::Blob, other).unwrap());
            assert!(layout.list_blobs().unwrap().is_empty());
        }
    }
    // What matches is stored, under its digest, and reads back verified.
    let descriptor = Descriptor::new(MediaType::ImageLayer, size, digest);
    layout.push(&descriptor, &mut &content[..]).unwrap();
    assert_eq!(layout.list_blobs().unwrap(), [digest]);
    assert_eq!(seed::read_blob(&layout, digest).unwrap(), content);
}

/// `put_entries` with `required`: when a required blob is missing nothing changes, for every
/// entry of the call; with all of them stored, every entry lands in one change.
#[test]
fn put_entries_fails_and_leaves_the_index_when_a_required_blob_is_missing() {
    let (_tmp, layout) = new_layout();
    let first = small_image(&layout);
    let second = write_image(&layout, &json!({"image": 2}), &[b"another layer"]);
    let entries = [
        index::with_ref_name(first.manifest.clone(), "first"),
        index::with_ref_name(second.manifest.clone(), "second"),
    ];
    let required: Vec<Digest> = [&first, &second]
        .iter()
        .flat_map(|image| std::iter::once(&image.config).chain(&image.layers))
        .map(digest_of)
        .collect();
    let missing = digest_of(&second.layers[0]);
    seed::delete_blob(&layout, missing).unwrap();
    let before = std::fs::read(layout.root().join("index.json")).unwrap();

    let error = err(layout.put_entries(&entries, &required));
    assert!(matches!(error, Error::InvalidLayout { .. }), "{error:?}");
    assert!(error.to_string().contains(&missing.to_string()), "{error}");
    assert_eq!(
        std::fs::read(layout.root().join("index.json")).unwrap(),
        before
    );
    assert!(layout.index().unwrap().manifests().is_empty());

    // A required digest that was never stored at all is refused the same way.
    let never = oci_core::Algorithm::Sha256.digest(b"never written");
    assert!(
        err(layout.put_entries(&entries[..1], &[never]))
            .to_string()
            .contains(&never.to_string())
    );
    assert_eq!(
        std::fs::read(layout.root().join("index.json")).unwrap(),
        before
    );

    // Put back, both entries land, replacing nothing.
    seed::write_blob(&layout, b"another layer").unwrap();
    let put = layout.put_entries(&entries, &required).unwrap();
    assert!(put.replaced.is_empty());
    assert_eq!(put.added, 2);
    assert_eq!(
        ref_names(&layout),
        [Some("first".to_owned()), Some("second".to_owned())]
    );
    // Moving a name returns the entry it replaced.
    let moved = index::with_ref_name(second.manifest.clone(), "first");
    let put = layout
        .put_entries(std::slice::from_ref(&moved), &required)
        .unwrap();
    assert_eq!(put.replaced, [entries[0].clone()]);
    assert_eq!(put.added, 1);
}

/// fsck and gc through `&dyn Store` and `Box<dyn Store>`, as a program that picks its backend
/// at run time calls them: the same results as on the concrete type.
#[test]
fn fsck_and_gc_through_dyn_store() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let garbage = seed::write_blob(&layout, b"garbage").unwrap();

    let store: &dyn Store = &layout;
    let report = oci_core::fsck::fsck(store).unwrap();
    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(report.blobs_checked, image.digests().len());
    let options = oci_core::gc::GcOptions {
        grace: std::time::Duration::ZERO,
        dry_run: false,
    };
    let swept = oci_core::gc::gc(store, &options).unwrap();
    assert_eq!(swept.removed, [(garbage, 7)]);
    assert_eq!(swept.live, image.digests().len());

    let boxed: Box<dyn Store> = Box::new(DirLayout::open(layout.root()).unwrap());
    let garbage = seed::write_blob(boxed.as_ref(), b"more garbage").unwrap();
    assert!(oci_core::fsck::fsck(boxed.as_ref()).unwrap().is_clean());
    let swept = oci_core::gc::gc(boxed.as_ref(), &options).unwrap();
    assert_eq!(swept.removed, [(garbage, 12)]);
    assert_eq!(
        layout
            .list_blobs()
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        image.digests()
    );
}

fn counts(report: &CopyReport) -> (usize, u64, usize, usize) {
    (
        report.blobs_copied,
        report.bytes_copied,
        report.blobs_present,
        report.blobs_mounted,
    )
}
