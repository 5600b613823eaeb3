//! An image built where there are no files (`oci_core::MemoryStore`), then copied into a
//! directory layout that fsck and skopeo read: the builder, resolve and inspect work over any
//! store, and `copy_image` carries everything the image needs.

use std::io::Write as _;
use std::process::{Command, Stdio};

use oci_core::MemoryStore;
use oci_core::prelude::*;
use oci_image::inspect::Content;

use super::*;

/// A plain tar of two files, made with the tar crate (not by us).
fn small_tar(path: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("etc/hostname", &b"memory\n"[..]),
        ("app/run", &b"#!/bin/sh\n"[..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        builder.append_data(&mut header, name, content).unwrap();
    }
    fs::write(path, builder.into_inner().unwrap()).unwrap();
}

/// Whether skopeo is on `PATH`. When it is not, says so where a plain `cargo test` shows it
/// (or fails, when `OCI_LAYOUT_REQUIRE_INTEROP` is set).
fn have_skopeo(test: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join("skopeo"))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    if !found {
        let message = format!("SKIPPED {test}: skopeo not on PATH (install skopeo to run it)");
        assert!(
            std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
            "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
        );
        // libtest captures the output of passing tests, but not the raw handle.
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    }
    found
}

/// `skopeo inspect [extra] oci:DIR:REF`, as JSON.
fn skopeo_inspect(dir: &Path, reference: &str, extra: &[&str]) -> serde_json::Value {
    let output = Command::new("skopeo")
        .arg("inspect")
        .args(extra)
        .arg(format!("oci:{}:{reference}", dir.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo inspect {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn an_image_built_in_memory_resolves_inspects_and_copies_into_a_layout_skopeo_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    sample_tree(&root);
    let tar_file = tmp.path().join("layer.tar");
    small_tar(&tar_file);

    let store = MemoryStore::named("memory://build");
    assert!(store.layout_files().is_none(), "a store with no files");
    let mut image = ImageBuilder::new(&store, &platform::parse("linux/arm64/v8").unwrap());
    let fixed = LayerOptions {
        mtime: Mtime::Fixed(1_600_000_000),
        ..options(Compression::Gzip)
    };
    let dir_layer = image.add_dir_layer(&root, &fixed, None).unwrap();
    let tar_layer = image
        .add_tar_layer(&tar_file, &options(Compression::Zstd), None)
        .unwrap();
    image.created_at(1_600_000_000);
    image
        .apply(&RuntimeOverrides {
            cmd: Some(vec!["/app/run".into()]),
            ..RuntimeOverrides::default()
        })
        .unwrap();
    let manifest = image.write_and_tag("v1").unwrap();
    let manifest_digest = Digest::try_from(manifest.digest()).unwrap();
    let layer_digests = [
        dir_layer.descriptor.digest().to_string(),
        tar_layer.descriptor.digest().to_string(),
    ];
    let diff_ids = [dir_layer.diff_id.to_string(), tar_layer.diff_id.to_string()];

    // Resolved by its tag, in memory.
    let resolved = resolve_image(&store, "v1", None).unwrap();
    assert_eq!(resolved.descriptor.digest(), manifest.digest());
    let layers: Vec<String> = resolved
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    assert_eq!(layers, layer_digests);
    assert_eq!(
        resolved.manifest.layers()[1].media_type(),
        &MediaType::ImageLayerZstd
    );
    assert_eq!(resolved.config.spec().rootfs().diff_ids(), &diff_ids);
    assert_eq!(
        platform::to_string(&resolved.config.platform()),
        "linux/arm64/v8"
    );

    // Inspected: every part stored, the config as it was built.
    let node = oci_image::inspect(&store, "v1", None).unwrap();
    assert_eq!(node.digest, manifest_digest.to_string());
    assert!(node.missing_blobs().is_empty(), "{node:?}");
    let Content::Image { config, layers } = &node.content else {
        panic!("not an image: {node:?}")
    };
    let summary = config.image.as_ref().unwrap();
    assert_eq!(summary.platform.to_string(), "linux/arm64/v8");
    assert_eq!(summary.cmd.as_deref(), Some(&["/app/run".to_owned()][..]));
    assert_eq!(summary.diff_ids, diff_ids);
    assert_eq!(summary.created.as_deref(), Some("2020-09-13T12:26:40Z"));
    let inspected: Vec<&str> = layers.iter().map(|l| l.blob.digest.as_str()).collect();
    assert_eq!(inspected, layer_digests);
    assert!(fsck(&store).unwrap().is_clean());

    // Copied into a directory layout: every blob once, byte for byte, and a clean fsck there.
    let dir = tmp.path().join("copy");
    let layout = DirLayout::create(&dir).unwrap();
    let report = copy_image(&store, &layout, &manifest).unwrap();
    let stored = store.blob_listing().unwrap().list_blobs().unwrap();
    assert_eq!(stored.len(), 4, "two layers, a config and a manifest");
    let total: u64 = stored
        .iter()
        .map(|&d| store.stat(ContentKind::Blob, d).unwrap().unwrap())
        .sum();
    assert_eq!(
        (
            report.blobs_copied,
            report.bytes_copied,
            report.blobs_present,
            report.blobs_mounted
        ),
        (4, total, 0, 0),
        "copied, bytes, present, mounted"
    );
    for &digest in &stored {
        assert_eq!(
            fs::read(dir.join(digest.blob_path())).unwrap(),
            seed::read_blob(&store, digest).unwrap(),
            "{digest}"
        );
    }
    layout.tag(&manifest, "v1").unwrap();
    let report = fsck(&layout).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let copied = resolve_image(&layout, "v1", None).unwrap();
    assert_eq!(copied.descriptor.digest(), manifest.digest());
    assert_eq!(copied.config.spec().rootfs().diff_ids(), &diff_ids);

    // A second copy finds everything there and writes nothing.
    let again = copy_image(&store, &layout, &manifest).unwrap();
    assert_eq!((again.blobs_copied, again.blobs_present), (0, 4));

    if !have_skopeo(
        "memory_store::an_image_built_in_memory_resolves_inspects_and_copies_into_a_layout_skopeo_reads",
    ) {
        return;
    }
    let inspected = skopeo_inspect(&dir, "v1", &[]);
    assert_eq!(inspected["Digest"], manifest_digest.to_string());
    assert_eq!(inspected["Architecture"], "arm64");
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Layers"], serde_json::json!(layer_digests));
    let config = skopeo_inspect(&dir, "v1", &["--config"]);
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["/app/run"]));
}
