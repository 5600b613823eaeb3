//! The archive backends as `Store`s: `TarWriter` filled by `copy_image`, `TarArchive` through
//! `&dyn Store` (what it can do and what it refuses), and `unpack` into a store with no files.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::referrers::{ArtifactFile, attach};
use oci_core::{Compression, Error, Location, MemoryStore, MetadataFile, StrayFile, StrayKind};
use oci_tar::{ExpansionLimit, TarArchive, TarWriter, pack, pack_to_file, unpack};

use crate::common::{
    build_image, list_blobs, manifests, new_layout, read_all_blobs, sha256, verify_blob_files,
};
use crate::interop::{skopeo, skopeo_available};

/// Copies the image tagged `v1` in `source` into a new archive at `path` through `copy_image`,
/// tags it there, and finishes the archive; returns how many blobs were copied.
fn copy_into_archive(source: &dyn Store, path: &Path) -> usize {
    let writer = TarWriter::new(fs::File::create(path).unwrap(), path);
    seed::init(&writer, &seed::InitOptions::default()).unwrap();
    let root = source.resolve("v1").unwrap();
    let report = copy_image(source, &writer, &root).unwrap();
    writer.tag(&root, "v1").unwrap();
    writer.finish().unwrap();
    report.blobs_copied
}

#[test]
fn copy_image_into_a_tar_writer_gives_an_archive_of_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let layout = new_layout(&dir.path().join("layout"));
    let memory = MemoryStore::named("memory");
    let with_skopeo =
        skopeo_available("store::copy_image_into_a_tar_writer_gives_an_archive_of_the_image");
    let mut archives = Vec::new();
    for (name, source) in [
        ("from-dir.tar", &layout as &dyn Store),
        ("from-memory.tar", &memory),
    ] {
        let manifest = build_image(source);
        let path = dir.path().join(name);
        assert_eq!(copy_into_archive(source, &path), 3, "{name}");

        let archive = TarArchive::open(&path).unwrap();
        assert!(
            archive.skipped().is_empty(),
            "{name}: {:?}",
            archive.skipped()
        );
        assert_eq!(manifests(&archive), manifests(source), "{name}");
        assert_eq!(read_all_blobs(&archive), read_all_blobs(source), "{name}");
        assert_eq!(
            seed::read_image_layout(&archive)
                .unwrap()
                .image_layout_version(),
            seed::IMAGE_LAYOUT_VERSION,
            "{name}"
        );
        let report = fsck(&archive).unwrap();
        assert!(report.is_clean(), "{name}: {:#?}", report.findings);
        assert_eq!(report.blobs_checked, 3, "{name}");

        if with_skopeo {
            let tmp = dir.path().join(format!("{name}.tmp"));
            fs::create_dir(&tmp).unwrap();
            let reference = format!("oci-archive:{}:v1", path.display());
            let raw = skopeo(&tmp, &["inspect", "--raw", &reference]);
            assert!(
                raw.stdout == manifest,
                "{name}: skopeo inspect --raw returned other bytes than the manifest:\n{}",
                String::from_utf8_lossy(&raw.stdout)
            );
            let inspected: serde_json::Value =
                serde_json::from_slice(&skopeo(&tmp, &["inspect", &reference]).stdout).unwrap();
            assert_eq!(inspected["Architecture"], "amd64", "{name}: {inspected}");
            assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1, "{name}");
        }
        archives.push(fs::read(&path).unwrap());
    }
    assert!(
        archives[0] == archives[1],
        "the same image copied from a directory and from memory gave different archives"
    );
}

/// A layout with the image `v1` and an SBOM attached to it, packed into `path`.
fn archive_with_a_referrer(dir: &Path, path: &Path) -> (Descriptor, Descriptor) {
    let layout = new_layout(&dir.join("source"));
    build_image(&layout);
    let subject = layout.resolve("v1").unwrap();
    let sbom = attach(
        &layout,
        &subject,
        "application/spdx+json",
        vec![ArtifactFile {
            title: "sbom.json".into(),
            source: Location::Path(dir.join("sbom.json")),
            media_type: "application/spdx+json".into(),
            content: Box::new(&br#"{"spdxVersion":"SPDX-2.3"}"#[..]),
        }],
        BTreeMap::new(),
    )
    .unwrap();
    pack_to_file(&layout, path, Compression::None).unwrap();
    (subject, sbom)
}

#[test]
fn an_archive_through_dyn_store_checks_lists_and_finds_referrers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let (subject, sbom) = archive_with_a_referrer(dir.path(), &path);
    let before = fs::read(&path).unwrap();
    let archive = TarArchive::open(&path).unwrap();
    let store: &dyn Store = &archive;

    let report = fsck(store).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    // The image's layer, config and manifest; the SBOM's empty config, file and manifest.
    assert_eq!(report.blobs_checked, 6);

    let subject_digest = Digest::try_from(subject.digest()).unwrap();
    let found = referrers(store, subject_digest, None).unwrap();
    let found: Vec<&str> = found.iter().map(|r| r.digest.as_str()).collect();
    assert_eq!(found, [sbom.digest().as_ref()]);
    let found = referrers(store, subject_digest, Some("application/spdx+json")).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert!(
        referrers(
            store,
            subject_digest,
            Some("application/vnd.cyclonedx+json")
        )
        .unwrap()
        .is_empty()
    );

    let listed = store
        .blob_listing()
        .expect("an archive lists its blobs")
        .list_blobs()
        .unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(
        listed,
        list_blobs(&oci_dir::DirLayout::open(dir.path().join("source")).unwrap())
    );
    assert!(store.blob_removal().is_none(), "an archive removes nothing");
    assert!(store.exclusive_lock().is_none(), "an archive has no lock");

    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "reading the archive changed it"
    );
}

#[test]
fn gc_of_an_archive_is_refused_naming_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    archive_with_a_referrer(dir.path(), &path);
    let before = fs::read(&path).unwrap();
    let archive = TarArchive::open(&path).unwrap();
    for dry_run in [false, true] {
        let options = GcOptions {
            grace: Duration::ZERO,
            dry_run,
        };
        let err = gc(&archive, &options).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot collect garbage: this store cannot remove blobs",
                path.display()
            )
        );
    }
    let blob = list_blobs(&archive)[0];
    let err = seed::delete_blob(&archive, blob).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot delete a blob: this store cannot remove blobs",
            path.display()
        )
    );
    assert_eq!(fs::read(&path).unwrap(), before);
    seed::read_blob(&archive, blob).unwrap();
}

/// Every way of writing into an archive being read fails, naming the archive and saying what
/// to do instead, and leaves the file as it was.
#[test]
fn an_archive_being_read_refuses_every_write_naming_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let (subject, _) = archive_with_a_referrer(dir.path(), &path);
    let before = fs::read(&path).unwrap();
    let archive = TarArchive::open(&path).unwrap();
    let files = archive
        .layout_files()
        .expect("an archive has a layout's files");
    let data = b"new content";
    let descriptor = Descriptor::new(MediaType::ImageLayer, data.len() as u64, sha256(data));
    let stray = StrayFile {
        location: Location::Path(path.join("blobs/sha256/xyz")),
        kind: StrayKind::NotADigest,
        modified: None,
    };
    let attempts: Vec<(&str, Error)> = vec![
        (
            "push",
            archive.push(&descriptor, &mut &data[..]).unwrap_err(),
        ),
        (
            "begin_blob",
            archive.begin_blob(Algorithm::Sha256).err().unwrap(),
        ),
        ("write_blob", seed::write_blob(&archive, data).unwrap_err()),
        ("tag", archive.tag(&subject, "v2").unwrap_err()),
        ("put_entry", archive.put_entry(&subject).unwrap_err()),
        ("remove_ref", archive.remove_ref("v1").unwrap_err()),
        (
            "write_index",
            seed::write_index(&archive, &oci_core::index::empty_index()).unwrap_err(),
        ),
        (
            "write_metadata",
            files
                .write_metadata(MetadataFile::ImageLayout, b"{}")
                .unwrap_err(),
        ),
        ("create_blobs_dir", files.create_blobs_dir().unwrap_err()),
        ("remove_stray", files.remove_stray(&stray).unwrap_err()),
    ];
    for (what, err) in attempts {
        assert!(matches!(err, Error::Unsupported { .. }), "{what}: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: an archive is read-only: unpack it into a layout directory to change it",
                path.display()
            ),
            "{what}"
        );
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(archive.resolve("v1").unwrap(), subject);
}

/// What has gone into the stream stays there: a `TarWriter` says what it holds, but does not
/// give it back.
#[test]
fn a_tar_writer_holds_what_it_wrote_but_cannot_read_it_back() {
    let writer = TarWriter::new(Vec::new(), "out.tar");
    seed::init(&writer, &seed::InitOptions::default()).unwrap();
    let data = b"written into the stream";
    let digest = seed::write_blob(&writer, data).unwrap();
    assert!(writer.contains(ContentKind::Blob, digest).unwrap());
    assert_eq!(
        writer.stat(ContentKind::Blob, digest).unwrap(),
        Some(data.len() as u64)
    );
    assert_eq!(list_blobs(&writer), [digest]);
    // The index is kept until the end, so it can still be read and edited.
    let descriptor = Descriptor::new(MediaType::ImageLayer, data.len() as u64, digest);
    writer.tag(&descriptor, "v1").unwrap();
    assert_eq!(writer.resolve("v1").unwrap().digest(), descriptor.digest());

    let expected = "out.tar: a tar stream being written cannot read back a blob";
    let err = writer
        .fetch(ContentKind::Blob, digest, None)
        .err()
        .expect("fetch from a writer");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(err.to_string(), expected);
    assert_eq!(
        seed::read_blob(&writer, digest).unwrap_err().to_string(),
        expected
    );
    // So it is no source to copy from; but a failed read leaves the archive whole.
    let err = copy_image(&writer, &MemoryStore::new(), &descriptor).unwrap_err();
    assert_eq!(err.to_string(), expected);

    let bytes = writer.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    fs::write(&path, bytes).unwrap();
    let archive = TarArchive::open(&path).unwrap();
    assert_eq!(seed::read_blob(&archive, digest).unwrap(), data);
    assert_eq!(archive.resolve("v1").unwrap().digest(), descriptor.digest());
}

/// A layout with blobs of every algorithm, a tag and an untagged entry.
fn mixed_layout(root: &Path) -> oci_dir::DirLayout {
    let layout = new_layout(root);
    build_image(&layout);
    let long = layout.write_blob(Algorithm::Sha512, &[7u8; 3000]).unwrap();
    let b3 = layout.write_blob(Algorithm::Blake3, b"b3").unwrap();
    layout
        .put_entry(&Descriptor::new(MediaType::ImageLayer, 3000, long))
        .unwrap();
    layout
        .tag(&Descriptor::new(MediaType::ImageLayer, 2, b3), "blake")
        .unwrap();
    layout
}

#[test]
fn unpack_into_a_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let source = mixed_layout(&dir.path().join("source"));
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (bytes, _) = pack(&source, Vec::new(), compression, "source.tar".as_ref()).unwrap();
        let memory = MemoryStore::named("memory");
        let report = unpack(
            &bytes[..],
            Path::new("source.tar"),
            &memory,
            ExpansionLimit::default(),
        )
        .unwrap();
        assert_eq!(report.blobs_written, 5, "{compression:?}");
        assert_eq!(report.entries_merged, 3, "{compression:?}");
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!(read_all_blobs(&memory), read_all_blobs(&source));
        assert_eq!(manifests(&memory), manifests(&source));
        let checked = fsck(&memory).unwrap();
        assert!(checked.is_clean(), "{:#?}", checked.findings);

        // Back out of memory: the same archive, byte for byte.
        let (again, _) = pack(&memory, Vec::new(), compression, "source.tar".as_ref()).unwrap();
        assert!(
            again == bytes,
            "{compression:?}: dir → tar → memory → tar differs"
        );

        // And on into a directory, from the memory store.
        let target = dir.path().join(format!("{compression:?}"));
        let copied = new_layout(&target);
        let root = memory.resolve("v1").unwrap();
        copy_image(&memory, &copied, &root).unwrap();
        assert_eq!(verify_blob_files(&target).len(), 3);
    }
}
