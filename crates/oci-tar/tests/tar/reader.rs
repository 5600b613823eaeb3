//! TarArchive: the conformance corpus, producer variations, reading in place, compression.

use std::collections::BTreeSet;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::{BlobListing, Compression, Error, index, walk};
use oci_tar::{ExpansionLimit, TarArchive, TarWriter};

use crate::common::{
    Image, RawTar, blob_size, chain, corpus, has, have, new_layout, raw_header, sha256,
    verify_blob_files, zstd_rle_frame,
};

fn archive_path(name: &str) -> std::path::PathBuf {
    let path = corpus().join("archives").join(name);
    assert!(path.is_file(), "corpus archive missing: {}", path.display());
    path
}

/// The blob digests GNU tar lists in an archive (a cross-check of what TarArchive lists).
fn gnu_tar_blobs(path: &Path) -> Option<Vec<Digest>> {
    if !have("tar") {
        eprintln!("note: GNU tar not on PATH, corpus listings not cross-checked");
        return None;
    }
    let out = Command::new("tar").arg("tf").arg(path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut digests: Vec<Digest> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim_start_matches("./").strip_prefix("blobs/sha256/"))
        .filter(|hex| !hex.is_empty())
        .map(|hex| Digest::parse(&format!("sha256:{hex}")).unwrap())
        .collect();
    digests.sort();
    Some(digests)
}

/// Opens a corpus archive, checks its blob list against GNU tar and that every blob verifies.
fn open_corpus(name: &str, blob_count: usize) -> TarArchive {
    let path = archive_path(name);
    let archive = TarArchive::open(&path).unwrap();
    assert_eq!(archive.compression(), Compression::None);
    assert!(
        archive.skipped().is_empty(),
        "{name}: {:?}",
        archive.skipped()
    );
    let blobs = archive.list_blobs().unwrap();
    assert_eq!(blobs.len(), blob_count, "{name}: {blobs:?}");
    if let Some(listed) = gnu_tar_blobs(&path) {
        assert_eq!(blobs, listed, "{name}: TarArchive and GNU tar disagree");
    }
    for digest in &blobs {
        let data = seed::read_blob(&archive, *digest)
            .unwrap_or_else(|e| panic!("{name}: {digest} does not verify: {e}"));
        assert_eq!(blob_size(&archive, *digest), data.len() as u64);
    }
    archive
}

#[test]
fn corpus_docker_save_null_manifests_reads_as_empty_index() {
    let archive = open_corpus("docker-save-v25-hello-world.tar", 4);
    let idx = archive.index().unwrap();
    assert_eq!(
        idx.manifests().len(),
        0,
        "\"manifests\": null is an empty index"
    );
    let expected: BTreeSet<&str> = [
        "12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43",
        "411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe",
        "ac09ed77c1b58dc3f93528f17515cb1c5487fa8f304ba2ed54d0f14686f1136e",
        "ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44",
    ]
    .into();
    let listed: Vec<String> = archive
        .list_blobs()
        .unwrap()
        .iter()
        .map(Digest::encoded)
        .collect();
    assert_eq!(
        listed.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        seed::read_image_layout(&archive)
            .unwrap()
            .image_layout_version(),
        "1.0.0"
    );
}

#[test]
fn corpus_ctr_export_has_only_the_amd64_blobs() {
    let archive = open_corpus("ctr-export-hello-world.tar", 4);
    let idx = archive.index().unwrap();
    assert_eq!(idx.manifests().len(), 1);
    let list = archive.resolve("latest").unwrap();
    assert_eq!(
        list.media_type().to_string(),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let list_digest = Digest::try_from(list.digest()).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut archive
            .fetch(ContentKind::Manifest, list_digest, Some(list.size()))
            .unwrap(),
        &mut bytes,
    )
    .unwrap();
    let children = walk::references(&bytes).unwrap().children;
    assert_eq!(children.len(), 11, "hello-world lists 11 platforms");
    let mut present = 0;
    let mut absent = 0;
    for child in &children {
        let digest = Digest::try_from(child.digest()).unwrap();
        let platform = child.platform().as_ref().unwrap();
        let amd64_linux =
            platform.architecture().to_string() == "amd64" && platform.os().to_string() == "linux";
        if amd64_linux {
            present += 1;
            let manifest = seed::read_blob(&archive, digest).unwrap();
            let refs = walk::references(&manifest).unwrap().children;
            assert_eq!(refs.len(), 2, "config and one layer");
            for r in refs {
                let d = Digest::try_from(r.digest()).unwrap();
                let data = seed::read_blob(&archive, d).unwrap();
                assert_eq!(data.len() as u64, r.size());
            }
        } else {
            absent += 1;
            assert!(!has(&archive, digest), "{digest}");
            let err = seed::read_blob(&archive, digest).unwrap_err();
            assert!(
                matches!(err, Error::NotFound { digest: Some(d), .. } if d == digest),
                "{err}"
            );
        }
    }
    assert_eq!((present, absent), (1, 10));
}

#[test]
fn corpus_skopeo_archive_has_one_named_entry() {
    let archive = open_corpus("skopeo-1.9-oci-archive.tar", 3);
    let idx = archive.index().unwrap();
    assert_eq!(idx.manifests().len(), 1);
    assert_eq!(index::ref_name(&idx.manifests()[0]), Some("v1.0"));
    let manifest = archive.resolve("v1.0").unwrap();
    assert_eq!(
        manifest.digest().to_string(),
        "sha256:98ceaf93e482fe91b9bfd6bba07137c098e49ee2d55e69f09fb6c951e75e0e46"
    );
    assert_eq!(manifest.size(), 344);
    let digest = Digest::try_from(manifest.digest()).unwrap();
    let children = walk::references(&seed::read_blob(&archive, digest).unwrap())
        .unwrap()
        .children;
    for child in children {
        let d = Digest::try_from(child.digest()).unwrap();
        assert!(has(&archive, d), "{d}");
    }
}

#[test]
fn corpus_archives_unpack_into_verified_layouts() {
    for (name, blobs, entries) in [
        ("docker-save-v25-hello-world.tar", 4, 0),
        ("ctr-export-hello-world.tar", 4, 1),
        ("skopeo-1.9-oci-archive.tar", 3, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let layout = new_layout(&dir.path().join("layout"));
        let report = oci_tar::unpack(
            std::fs::File::open(archive_path(name)).unwrap(),
            std::path::Path::new("archive"),
            &layout,
            ExpansionLimit::default(),
        )
        .unwrap();
        assert_eq!(report.blobs_written, blobs, "{name}");
        assert_eq!(report.entries_merged, entries, "{name}");
        assert!(report.skipped.is_empty(), "{name}: {:?}", report.skipped);
        assert_eq!(verify_blob_files(layout.root()).len(), blobs, "{name}");
        assert_eq!(layout.index().unwrap().manifests().len(), entries, "{name}");
    }
}

#[test]
fn producer_variations_are_accepted() {
    let image = Image::new("variations");
    let long_blob = b"a blob with a PAX long name".to_vec();
    let long_digest = Algorithm::Sha512.digest(&long_blob);
    let gnu_blob = b"a blob with a GNU long name".to_vec();
    let gnu_digest = Algorithm::Sha512.digest(&gnu_blob);
    let mut tar = RawTar::new();
    tar.dir("./")
        .dir("./blobs/")
        .dir("./blobs/sha256/")
        .dir("blobs/sha512")
        .file("manifest.json", b"[]")
        .file("repositories", b"{}")
        // A tar of a directory this library updated carries its cache.
        .dir("./.oci-layout-cache/")
        .file("./.oci-layout-cache/index.json.spare", b"{}");
    // `./` prefixes on layout files.
    tar.file("./oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    tar.file(
        &format!("./{}", sha256(&image.layer).blob_entry_name()),
        &image.layer,
    );
    tar.file(&sha256(&image.config).blob_entry_name(), &image.config);
    // Duplicates: the manifest twice, the first copy corrupt; the last one wins.
    let mut corrupt = image.manifest.clone();
    corrupt[0] ^= 0xff;
    tar.file(&sha256(&image.manifest).blob_entry_name(), &corrupt);
    tar.file(
        &format!("./{}", sha256(&image.manifest).blob_entry_name()),
        &image.manifest,
    );
    // A PAX long name (ustar header, name in the extended header).
    {
        let name = long_digest.blob_entry_name();
        tar.builder
            .append_pax_extensions([("path", name.as_bytes())])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..11].copy_from_slice(b"pax-trimmed");
        header.set_size(long_blob.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.builder.append(&header, &long_blob[..]).unwrap();
    }
    // A GNU long name, as the tar crate writes it.
    {
        let mut header = tar::Header::new_gnu();
        header.set_size(gnu_blob.len() as u64);
        header.set_mode(0o644);
        tar.builder
            .append_data(&mut header, gnu_digest.blob_entry_name(), &gnu_blob[..])
            .unwrap();
    }
    // index.json twice: the first says "old", the last one wins.
    let old_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [index::with_ref_name(image.manifest_descriptor.clone(), "old")],
    }))
    .unwrap();
    tar.file("./index.json", &old_index);
    tar.file("index.json", &image.index);
    let bytes = tar.finish();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("variations.tar");
    std::fs::write(&path, &bytes).unwrap();
    let archive = TarArchive::open(&path).unwrap();
    assert!(
        archive.skipped().is_empty(),
        "./, directories and known extras are taken silently: {:?}",
        archive.skipped()
    );
    let mut expected = image.digests();
    expected.push(long_digest);
    expected.push(gnu_digest);
    expected.sort();
    assert_eq!(archive.list_blobs().unwrap(), expected);
    assert_eq!(seed::read_blob(&archive, long_digest).unwrap(), long_blob);
    assert_eq!(seed::read_blob(&archive, gnu_digest).unwrap(), gnu_blob);
    assert_eq!(
        seed::read_blob(&archive, sha256(&image.manifest)).unwrap(),
        image.manifest,
        "the last copy of a duplicate wins"
    );
    assert!(archive.resolve("old").is_err(), "the first index.json lost");
    assert_eq!(
        archive.resolve("v1").unwrap().digest(),
        image.manifest_descriptor.digest()
    );

    // Unpack takes the same archive the same way.
    let layout = new_layout(&dir.path().join("layout"));
    // The corrupt first copy of the manifest is refused by the streaming unpack (it cannot know
    // a good copy follows); without it the archive unpacks whole.
    let err = oci_tar::unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&sha256(&image.manifest).to_string()),
        "{err}"
    );
    verify_blob_files(layout.root());
}

#[test]
fn producer_variations_unpack() {
    let image = Image::new("unpack variations");
    let mut tar = RawTar::new();
    tar.dir("./").dir("./blobs/").dir("./blobs/sha256/");
    tar.file("manifest.json", b"[]");
    tar.file("./oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in image.blobs() {
        tar.file(&format!("./{}", sha256(blob).blob_entry_name()), blob);
    }
    tar.blob(&image.config); // a duplicate, identical
    let old_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [index::with_ref_name(image.manifest_descriptor.clone(), "old")],
    }))
    .unwrap();
    tar.file("./index.json", &old_index);
    tar.file("index.json", &image.index);
    let bytes = tar.finish();

    let dir = tempfile::tempdir().unwrap();
    let layout = new_layout(&dir.path().join("layout"));
    let report = oci_tar::unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.blobs_written, 3);
    assert_eq!(report.blobs_present, 1, "the duplicate config");
    assert_eq!(verify_blob_files(layout.root()), image.digests());
    assert!(layout.resolve("old").is_err(), "the last index.json wins");
    assert_eq!(layout.index().unwrap().manifests().len(), 1);
    assert_eq!(
        layout.resolve("v1").unwrap().digest(),
        image.manifest_descriptor.digest()
    );
}

#[test]
fn open_reads_headers_not_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar");
    let archive = TarWriter::new(std::fs::File::create(&path).unwrap(), &path);
    seed::init(&archive, &seed::InitOptions::default()).unwrap();
    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    let big_digest = sha256(&big);
    let big_descriptor = Descriptor::new(MediaType::ImageLayer, big.len() as u64, big_digest);
    archive.push(&big_descriptor, &mut &big[..]).unwrap();
    let small = seed::write_blob(&archive, b"small").unwrap();
    archive.tag(&big_descriptor, "big").unwrap();
    archive.finish().unwrap();

    // Find the blob's content in the file and corrupt its middle.
    let bytes_offset = {
        let file = std::fs::File::open(&path).unwrap();
        let mut tar = tar::Archive::new(file);
        let name = big_digest.blob_entry_name();
        tar.entries_with_seek()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path_bytes().as_ref() == name.as_bytes())
            .unwrap()
            .raw_file_position()
    };
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xAB; 4096], bytes_offset + (32 << 20))
        .unwrap();
    drop(file);

    let read = TarArchive::open(&path).unwrap();
    assert_eq!(read.list_blobs().unwrap().len(), 2);
    assert_eq!(blob_size(&read, big_digest), big.len() as u64);
    assert_eq!(read.resolve("big").unwrap().size(), big.len() as u64);
    assert_eq!(seed::read_blob(&read, small).unwrap(), b"small");
    let err = seed::read_blob(&read, big_digest).unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedDigest { expected, .. } if expected == big_digest),
        "{err}"
    );
}

fn compressed(plain: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => plain.to_vec(),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(plain).unwrap();
            encoder.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(plain, 3).unwrap(),
    }
}

#[test]
fn compressed_archives_detected_by_magic() {
    let image = Image::new("compressed");
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    let plain = tar.finish();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        // The name says plain tar; the bytes say otherwise.
        let path = dir.path().join("image.tar");
        std::fs::write(&path, compressed(&plain, compression)).unwrap();
        let archive = TarArchive::open(&path).unwrap();
        assert_eq!(archive.compression(), compression);
        assert_eq!(archive.list_blobs().unwrap(), image.digests());
        for blob in image.blobs() {
            assert_eq!(seed::read_blob(&archive, sha256(blob)).unwrap(), blob);
        }
        assert_eq!(
            archive.resolve("v1").unwrap().digest(),
            image.manifest_descriptor.digest()
        );

        let layout = new_layout(&dir.path().join("layout"));
        let report = oci_tar::unpack(
            std::fs::File::open(&path).unwrap(),
            std::path::Path::new("archive"),
            &layout,
            ExpansionLimit::default(),
        )
        .unwrap();
        assert_eq!(report.blobs_written, 3, "{compression:?}");
        assert_eq!(verify_blob_files(layout.root()), image.digests());
        assert!(layout.resolve("v1").is_ok());
    }
}

/// A valid archive holding a 200 MiB blob of zeros, zstd-compressed to a few KiB. Streamed,
/// so the test never holds the 200 MiB.
fn zstd_bomb() -> (Vec<u8>, Digest) {
    use std::io::Read;
    const SIZE: u64 = 200 << 20;
    let zeros = || std::io::repeat(0).take(SIZE);
    let (digest, _) = Algorithm::Sha256.digest_reader(zeros()).unwrap();
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let mut builder = tar::Builder::new(encoder);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    builder
        .append(
            &raw_header(b"oci-layout", tar::EntryType::Regular, layout.len() as u64),
            &layout[..],
        )
        .unwrap();
    let name = digest.blob_entry_name();
    builder
        .append(
            &raw_header(name.as_bytes(), tar::EntryType::Regular, SIZE),
            zeros(),
        )
        .unwrap();
    builder
        .append(
            &raw_header(b"index.json", tar::EntryType::Regular, index.len() as u64),
            &index[..],
        )
        .unwrap();
    (builder.into_inner().unwrap().finish().unwrap(), digest)
}

/// The original failure: honest, highly compressible data (200 MiB of zeros, over 32000:1 in
/// zstd, far past the old 2048:1 bound) opens in place and unpacks.
#[test]
fn highly_compressible_honest_archive_is_read_and_unpacked() {
    let (archive, digest) = zstd_bomb();
    assert!(
        archive.len() < 1 << 20,
        "the archive is {} bytes",
        archive.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.tar.zst");
    std::fs::write(&path, &archive).unwrap();

    let opened = TarArchive::open(&path).unwrap();
    assert_eq!(blob_size(&opened, digest), 200 << 20);
    let target = dir.path().join("layout");
    let layout = new_layout(&target);
    let report = oci_tar::unpack(
        std::fs::File::open(&path).unwrap(),
        &path,
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert_eq!(report.blobs_written, 1);
    assert_eq!(verify_blob_files(&target), vec![digest]);
}

#[test]
fn max_size_bounds_the_decompressed_stream() {
    let (archive, digest) = zstd_bomb();
    let limit = ExpansionLimit {
        max_size: Some(1 << 20),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.tar.zst");
    std::fs::write(&path, &archive).unwrap();

    // Both errors name the archive; the bound is their cause.
    let err = TarArchive::open_with(&path, limit).unwrap_err();
    assert_eq!(err.to_string(), path.display().to_string());
    assert!(
        chain(&err).contains("over the 1048576 byte limit"),
        "{}",
        chain(&err)
    );
    let target = dir.path().join("layout");
    let layout = new_layout(&target);
    let err =
        oci_tar::unpack(std::fs::File::open(&path).unwrap(), &path, &layout, limit).unwrap_err();
    let message = chain(&err);
    assert!(message.contains("over the 1048576 byte limit"), "{message}");
    assert!(
        err.to_string().contains("zeros.tar.zst"),
        "names the archive: {message}"
    );
    assert!(verify_blob_files(&target).is_empty());
    assert!(!has(&layout, digest));
}

/// A bomb: a blob entry claiming 1 PiB (more than any test machine has free), then zeros as
/// zstd RLE blocks (32768:1) until the stream is cut off. unpack refuses it at its header,
/// before writing a byte; the stream below is never read to its end.
#[test]
fn a_bomb_claiming_more_than_the_free_space_is_refused_before_it_is_written() {
    const CLAIMED: u64 = 1 << 50;
    let mut tar = Vec::new();
    let name = Algorithm::Sha256.digest(b"bomb").blob_entry_name();
    tar.extend_from_slice(raw_header(name.as_bytes(), tar::EntryType::Regular, CLAIMED).as_bytes());
    let bomb = zstd_rle_frame(&tar, 1 << 30);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("layout");
    let layout = new_layout(&target);
    let err = oci_tar::unpack(
        &bomb[..],
        Path::new("bomb.tar.zst"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap_err();
    // What lacks the room is the target; the cause says how much was claimed.
    assert_eq!(err.to_string(), target.display().to_string());
    let message = chain(&err);
    assert!(
        message.contains(&format!("needs {CLAIMED} bytes")),
        "{message}"
    );
    assert!(message.contains("free"), "{message}");
    assert!(verify_blob_files(&target).is_empty());
}

#[test]
fn not_a_tar_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.tar");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&[0x42; 1024]).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    drop(file);
    let err = TarArchive::open(&path).unwrap_err();
    assert!(matches!(err, Error::InvalidLayout { .. }), "{err}");
    let err = TarArchive::open(dir.path().join("missing.tar")).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let layout = new_layout(&dir.path().join("layout"));
    assert!(
        oci_tar::unpack(
            &[0x42u8; 1024][..],
            std::path::Path::new("archive"),
            &layout,
            ExpansionLimit::default()
        )
        .is_err()
    );
}
