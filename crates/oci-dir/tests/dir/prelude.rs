//! A directory layout used as a library user would, with `oci_core::prelude::*` and
//! `oci_dir::DirLayout` as the only imports from the workspace: put, fetch, tag, index, fsck,
//! gc. A trait or function the common case needs and the prelude lacks fails to compile here.

use std::io::{Read, Write};
use std::time::Duration;

use oci_core::prelude::*;
use oci_dir::DirLayout;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

#[test]
fn put_fetch_tag_index_fsck_gc_with_the_prelude_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = DirLayout::create(tmp.path().join("layout")).unwrap();

    // Put a layer, streamed, and read it back verified.
    let mut writer = layout.begin_blob(Algorithm::Sha256).unwrap();
    writer.write_all(b"layer content").unwrap();
    let layer = writer.commit(Some(13), None).unwrap();
    assert_eq!(layer, Algorithm::Sha256.digest(b"layer content"));
    let mut read = Vec::new();
    layout
        .fetch(ContentKind::Blob, layer, Some(13))
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert_eq!(read, b"layer content");
    assert_eq!(layout.stat(ContentKind::Blob, layer).unwrap(), Some(13));

    // An image on top of it, tagged.
    let config = seed::write_json_blob(
        &layout,
        &serde_json::json!({"architecture": "amd64", "os": "linux"}),
        CONFIG.into(),
    )
    .unwrap();
    let manifest = seed::write_json_blob(
        &layout,
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": [{"mediaType": LAYER, "digest": layer.to_string(), "size": 13}],
        }),
        MANIFEST.into(),
    )
    .unwrap();
    let described =
        describe::manifest_descriptor(&layout, manifest.digest().try_into().unwrap()).unwrap();
    layout.tag(&described, "v1").unwrap();

    let index = layout.index().unwrap();
    assert_eq!(index.manifests().len(), 1);
    assert_eq!(layout.resolve("v1").unwrap().digest(), manifest.digest());
    let platform = layout.resolve("v1").unwrap().platform().clone().unwrap();
    assert_eq!(platform.os().to_string(), "linux");

    // Check and collect: the image is whole and live; a stray blob goes.
    let report = fsck(&layout).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.blobs_checked, 3);
    let stray = layout.write_blob(Algorithm::Blake3, b"stray").unwrap();
    let options = GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let swept = gc(&layout, &options).unwrap();
    assert_eq!(swept.removed, [(stray, 5)]);
    assert_eq!(swept.live, 3);
    assert!(!layout.contains(ContentKind::Blob, stray).unwrap());

    // Untagged, the image is garbage too.
    assert!(layout.remove_ref("v1").unwrap());
    assert_eq!(gc(&layout, &options).unwrap().removed.len(), 3);
    assert!(layout.index().unwrap().manifests().is_empty());
}
