//! Interoperability with skopeo: it reads what we write, we read what it writes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use oci_core::prelude::*;
use oci_core::{BlobListing, Compression, index};
use oci_tar::{ExpansionLimit, TarArchive, pack_to_file, unpack};

use crate::common::{build_image, have, manifests, new_layout, verify_blob_files};

/// Whether skopeo is on `PATH`. When it is not, says so on stderr, visibly, and returns
/// false; or fails when `OCI_LAYOUT_REQUIRE_INTEROP` is set.
pub fn skopeo_available(test: &str) -> bool {
    if have("skopeo") {
        return true;
    }
    let message = format!("SKIPPED {test}: skopeo is not on PATH (install skopeo to run it)");
    assert!(
        std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
        "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
    );
    // libtest captures `eprintln!` of a passing test; the raw handle is not captured, so the
    // skip shows in a plain `cargo test` run.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    false
}

/// Runs skopeo with `args`, its temp files in `tmp`; it must succeed.
pub fn skopeo(tmp: &Path, args: &[&str]) -> Output {
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

#[test]
fn skopeo_reads_our_archives() {
    if !skopeo_available("interop::skopeo_reads_our_archives") {
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
    if !skopeo_available("interop::we_read_skopeo_archives") {
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
    layout.write_blob(Algorithm::Sha512, b"long name").unwrap();
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
