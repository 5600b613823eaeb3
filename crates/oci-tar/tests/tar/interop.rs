//! Interoperability with skopeo: it reads what we write, we read what it writes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::{ContentStore, Digest, ImageDriver, index, seed};
use oci_tar::{Compression, ExpansionLimit, TarArchive, pack_to_file, unpack};

use crate::common::{have, manifests, new_layout, sha256, verify_blob_files};

fn skopeo_available() -> bool {
    if have("skopeo") {
        true
    } else {
        eprintln!("SKIPPED: skopeo is not on PATH; the skopeo interop test did not run");
        false
    }
}

fn skopeo(tmp: &Path, args: &[&str]) -> Output {
    let output = Command::new("skopeo")
        .args(args)
        // skopeo extracts oci-archive: references into TMPDIR; keep that inside the test.
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A real single-layer image: a gzip layer made from a tar, a config whose rootfs.diff_ids
/// names the uncompressed layer, a manifest, tagged `v1`. Returns the manifest bytes.
fn build_image(layout: &oci_dir::DirLayout) -> Vec<u8> {
    let mut layer_tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let content = b"hello from oci-tar\n";
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    layer_tar
        .append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let layer_tar = layer_tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = seed::write_blob(layout, &layer).unwrap();

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar).to_string()]},
    });
    let config = seed::write_json_blob(layout, &config, MediaType::ImageConfig).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [Descriptor::new(MediaType::ImageLayerGzip, layer.len() as u64, layer_digest)],
    });
    let manifest_desc = seed::write_json_blob(layout, &manifest, MediaType::ImageManifest).unwrap();
    layout.tag(manifest_desc.clone(), "v1").unwrap();
    seed::read_blob(layout, Digest::try_from(manifest_desc.digest()).unwrap()).unwrap()
}

#[test]
fn skopeo_reads_our_archives() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let layout = new_layout(&dir.path().join("layout"));
    let manifest = build_image(&layout);
    for (compression, name) in [
        (Compression::None, "ours.tar"),
        (Compression::Gzip, "ours-gzip.tar"),
        (Compression::Zstd, "ours-zstd.tar"),
    ] {
        let archive = dir.path().join(name);
        pack_to_file(&layout, &archive, compression).unwrap();
        let reference = format!("oci-archive:{}:v1", archive.display());
        let raw = skopeo(&tmp, &["inspect", "--raw", &reference]);
        assert!(
            raw.stdout == manifest,
            "skopeo inspect --raw returned other bytes than our manifest:\n{}",
            String::from_utf8_lossy(&raw.stdout)
        );
        let copy = dir.path().join(format!("{name}.copied"));
        let destination = format!("oci:{}:v1", copy.display());
        skopeo(
            &tmp,
            &[
                "--insecure-policy",
                "copy",
                "--quiet",
                &reference,
                &destination,
            ],
        );
        let copied = oci_dir::DirLayout::open(&copy).unwrap();
        assert_eq!(
            copied.resolve("v1").unwrap().digest(),
            layout.resolve("v1").unwrap().digest(),
            "skopeo copied the manifest unchanged"
        );
        assert_eq!(verify_blob_files(&copy), layout.list_blobs().unwrap());
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "skopeo left temp files"
    );
}

#[test]
fn we_read_skopeo_archives() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let source_root = dir.path().join("source");
    let layout = new_layout(&source_root);
    build_image(&layout);
    let archive_path = dir.path().join("s.tar");
    skopeo(
        &tmp,
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            &format!("oci:{}:v1", source_root.display()),
            &format!("oci-archive:{}:v1", archive_path.display()),
        ],
    );

    let archive = TarArchive::open(&archive_path).unwrap();
    assert!(archive.skipped().is_empty(), "{:?}", archive.skipped());
    let idx = archive.index().unwrap();
    assert_eq!(idx.manifests().len(), 1);
    assert_eq!(index::ref_name(&idx.manifests()[0]), Some("v1"));
    assert_eq!(
        archive.resolve("v1").unwrap().digest(),
        layout.resolve("v1").unwrap().digest()
    );
    assert_eq!(archive.list_blobs().unwrap(), layout.list_blobs().unwrap());
    for digest in archive.list_blobs().unwrap() {
        seed::read_blob(&archive, digest).unwrap();
    }

    let target = dir.path().join("unpacked");
    let unpacked = new_layout(&target);
    let report = unpack(
        std::fs::File::open(&archive_path).unwrap(),
        std::path::Path::new("archive"),
        &unpacked,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.blobs_written, 3);
    assert_eq!(verify_blob_files(&target), layout.list_blobs().unwrap());
    assert_eq!(manifests(&unpacked).len(), 1);
    assert_eq!(
        unpacked.resolve("v1").unwrap().digest(),
        layout.resolve("v1").unwrap().digest()
    );
}

#[test]
fn gnu_tar_archives_of_a_layout_read_cleanly() {
    if !have("tar") {
        eprintln!("SKIPPED: GNU tar is not on PATH; archives made with it were not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let layout = new_layout(&root);
    build_image(&layout);
    seed::write_blob_with(&layout, oci_core::Algorithm::Sha512, b"long name").unwrap();
    // `tar -C layout -cf x.tar .`: `./` prefixes, a `./` root entry, directory entries; the
    // posix format adds PAX headers, the gzip variant compression.
    for (name, args) in [
        ("gnu.tar", vec!["--format=gnu", "-cf"]),
        ("posix.tar", vec!["--format=posix", "-cf"]),
        ("gzip.tar", vec!["-czf"]),
    ] {
        let path = dir.path().join(name);
        let status = Command::new("tar")
            .args(&args)
            .arg(&path)
            .arg("-C")
            .arg(&root)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        let archive = TarArchive::open(&path).unwrap();
        assert!(
            archive.skipped().is_empty(),
            "{name}: {:?}",
            archive.skipped()
        );
        assert_eq!(
            archive.list_blobs().unwrap(),
            layout.list_blobs().unwrap(),
            "{name}"
        );
        for digest in archive.list_blobs().unwrap() {
            seed::read_blob(&archive, digest).unwrap();
        }
        assert_eq!(manifests(&archive), manifests(&layout), "{name}");

        let target = dir.path().join(format!("{name}.unpacked"));
        let unpacked = new_layout(&target);
        let report = unpack(
            std::fs::File::open(&path).unwrap(),
            std::path::Path::new("archive"),
            &unpacked,
            ExpansionLimit::default(),
        )
        .unwrap();
        assert!(report.skipped.is_empty(), "{name}: {:?}", report.skipped);
        assert_eq!(
            verify_blob_files(&target),
            layout.list_blobs().unwrap(),
            "{name}"
        );
        assert_eq!(manifests(&unpacked), manifests(&layout), "{name}");
    }
}
