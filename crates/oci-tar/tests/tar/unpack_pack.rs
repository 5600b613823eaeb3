//! unpack into new and existing layouts, pack determinism, atomic pack_to_file, and a
//! property test of dir → pack → unpack.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
use oci_core::prelude::*;
use oci_core::{BlobListing, Compression, Location, index};
use oci_tar::{ExpansionLimit, TarArchive, pack, pack_to_file, unpack};
use proptest::prelude::*;

use crate::common::{
    Image, RawTar, list_blobs, manifests, new_layout, read_all_blobs, sha256, verify_blob_files,
};

#[test]
fn unpack_into_a_missing_directory() {
    let image = Image::new("fresh");
    let mut tar = RawTar::new();
    image.append_to(&mut tar);
    let bytes = tar.finish();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("does/not/exist");
    assert!(!target.exists());
    let layout = new_layout(&target);
    let report = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert_eq!(report.blobs_written, 3);
    assert_eq!(report.blobs_present, 0);
    assert_eq!(report.entries_merged, 1);
    assert!(report.skipped.is_empty());
    assert_eq!(verify_blob_files(&target), image.digests());
    assert_eq!(
        manifests(&layout),
        std::slice::from_ref(&image.manifest_descriptor)
    );
    assert_eq!(
        seed::read_image_layout(&layout)
            .unwrap()
            .image_layout_version(),
        "1.0.0"
    );
    // The unpacked layout opens as a layout from scratch.
    let reopened = oci_dir::DirLayout::open(&target).unwrap();
    assert_eq!(reopened.resolve("v1").unwrap(), image.manifest_descriptor);
}

#[test]
fn unpack_merges_into_an_existing_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = new_layout(&dir.path().join("layout"));
    // The existing layout: "v1" and "keep" tagged, one untagged entry, and a shared blob.
    let shared = seed::write_blob(&layout, b"shared blob").unwrap();
    let old_v1 = seed::write_json_blob(
        &layout,
        &serde_json::json!({"old": 1}),
        MediaType::ImageManifest,
    )
    .unwrap();
    let keep = seed::write_json_blob(
        &layout,
        &serde_json::json!({"keep": 1}),
        MediaType::ImageManifest,
    )
    .unwrap();
    let untagged = Descriptor::new(MediaType::ImageConfig, 11, shared);
    layout.tag(&old_v1, "v1").unwrap();
    layout.tag(&keep, "keep").unwrap();
    layout.put_entry(&untagged).unwrap();
    let before = verify_blob_files(layout.root());

    // The archive: a new "v1", the same untagged entry, a new untagged one, the shared blob
    // and new blobs.
    let source = new_layout(&dir.path().join("source"));
    seed::write_blob(&source, b"shared blob").unwrap();
    let new_v1 = seed::write_json_blob(
        &source,
        &serde_json::json!({"new": 1}),
        MediaType::ImageManifest,
    )
    .unwrap();
    let other = source.write_blob(Algorithm::Sha512, b"other").unwrap();
    let other_desc = Descriptor::new(MediaType::ImageLayer, 5, other);
    source.tag(&new_v1, "v1").unwrap();
    source.put_entry(&untagged).unwrap();
    source.put_entry(&other_desc).unwrap();
    let (bytes, _) = pack(
        &source,
        Vec::new(),
        Compression::None,
        "source.tar".as_ref(),
    )
    .unwrap();

    let report = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert_eq!(
        report.blobs_written, 2,
        "the new manifest and the sha512 blob"
    );
    assert_eq!(report.blobs_present, 1, "the shared blob");
    assert_eq!(report.entries_merged, 2, "v1 and the new untagged entry");
    // Issue #12, item 14: the tag that moved is reported, with both manifests.
    let replaced: Vec<(&str, &str, &str)> = report
        .replaced
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.previous.digest().as_ref(),
                r.current.digest().as_ref(),
            )
        })
        .collect();
    assert_eq!(
        replaced,
        [("v1", old_v1.digest().as_ref(), new_v1.digest().as_ref())]
    );

    let after = verify_blob_files(layout.root());
    let mut expected: BTreeSet<Digest> = before.into_iter().collect();
    expected.insert(Digest::try_from(new_v1.digest()).unwrap());
    expected.insert(other);
    assert_eq!(after, expected.into_iter().collect::<Vec<_>>());
    assert_eq!(layout.resolve("v1").unwrap().digest(), new_v1.digest());
    assert_eq!(layout.resolve("keep").unwrap().digest(), keep.digest());
    let entries = manifests(&layout);
    assert_eq!(
        entries
            .iter()
            .filter(|d| index::ref_name(d) == Some("v1"))
            .count(),
        1
    );
    assert_eq!(
        entries.iter().filter(|d| **d == untagged).count(),
        1,
        "not duplicated"
    );
    assert_eq!(entries.iter().filter(|d| **d == other_desc).count(), 1);
    assert_eq!(entries.len(), 4, "{entries:#?}");

    // Unpacking the same archive again changes nothing, and replaces no tag.
    let report = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert_eq!(report.blobs_written, 0);
    assert_eq!(report.blobs_present, 3);
    assert!(report.replaced.is_empty(), "{:?}", report.replaced);
    assert_eq!(manifests(&layout).len(), 4);
}

/// An archive whose index names one tag twice (producers that append write that; the last
/// entry wins): the merge reports as replaced only what the target held, never the archive's
/// own first entry, and names what the tag ends on.
#[test]
fn a_tag_named_twice_in_the_archive_replaces_only_what_the_target_held() {
    let (first, second, held) = (
        Image::new("first"),
        Image::new("second"),
        Image::new("held"),
    );
    let mut tar = RawTar::new();
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in first.blobs().into_iter().chain(second.blobs()) {
        tar.blob(blob);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [first.manifest_descriptor, second.manifest_descriptor],
    }))
    .unwrap();
    tar.file("index.json", &index);
    let bytes = tar.finish();
    let dir = tempfile::tempdir().unwrap();

    // Into a new layout: no tag of the target moved.
    let layout = new_layout(&dir.path().join("new"));
    let report = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    assert!(report.replaced.is_empty(), "{:#?}", report.replaced);
    assert_eq!(
        manifests(&layout),
        std::slice::from_ref(&second.manifest_descriptor)
    );

    // Into a layout where v1 names a third image: that tag moved, to the last entry.
    let layout = new_layout(&dir.path().join("held"));
    for blob in held.blobs() {
        seed::write_blob(&layout, blob).unwrap();
    }
    layout.tag(&held.manifest_descriptor, "v1").unwrap();
    let report = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    let replaced: Vec<(&str, &str, &str)> = report
        .replaced
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.previous.digest().as_ref(),
                r.current.digest().as_ref(),
            )
        })
        .collect();
    assert_eq!(
        replaced,
        [(
            "v1",
            held.manifest_descriptor.digest().as_ref(),
            second.manifest_descriptor.digest().as_ref()
        )]
    );
    assert_eq!(
        manifests(&layout),
        std::slice::from_ref(&second.manifest_descriptor)
    );
}

/// A directory layout whose index updates start by removing one blob, as a gc (or a
/// `blob rm`) would between the unpack's last blob and its merge.
struct RemovedBeforeMerge {
    inner: oci_dir::DirLayout,
    victim: Digest,
}

impl Store for RemovedBeforeMerge {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn stat(&self, kind: ContentKind, digest: Digest) -> oci_core::Result<Option<u64>> {
        self.inner.stat(kind, digest)
    }
    fn fetch(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> oci_core::Result<Box<dyn std::io::Read + Send + '_>> {
        self.inner.fetch(kind, digest, size)
    }
    fn push(
        &self,
        descriptor: &Descriptor,
        content: &mut dyn std::io::Read,
    ) -> oci_core::Result<()> {
        self.inner.push(descriptor, content)
    }
    fn begin_blob(&self, algorithm: Algorithm) -> oci_core::Result<Box<dyn BlobWriter + '_>> {
        self.inner.begin_blob(algorithm)
    }
    fn index(&self) -> oci_core::Result<ImageIndex> {
        self.inner.index()
    }
    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> oci_core::Result<oci_core::index::PutOutcome> {
        seed::delete_blob(&self.inner, self.victim)?;
        self.inner.put_entries(entries, required)
    }
    fn remove_ref(&self, name: &str) -> oci_core::Result<bool> {
        self.inner.remove_ref(name)
    }
}

/// Issue #12, item 3: an unpack merges its entries only while every blob it wrote or found is
/// still stored; a blob taken meanwhile fails it, naming the blob, with the index unchanged.
#[test]
fn unpack_merges_nothing_when_one_of_its_blobs_went_before_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let source = new_layout(&dir.path().join("source"));
    let config =
        seed::write_json_blob(&source, &serde_json::json!({}), MediaType::ImageConfig).unwrap();
    let manifest = seed::write_json_blob(
        &source,
        &serde_json::json!({"schemaVersion": 2, "config": config, "layers": []}),
        MediaType::ImageManifest,
    )
    .unwrap();
    source.tag(&manifest, "v1").unwrap();
    let (bytes, _) = pack(&source, Vec::new(), Compression::None, "s.tar".as_ref()).unwrap();

    let layout = new_layout(&dir.path().join("layout"));
    let before = fs::read(layout.root().join("index.json")).unwrap();
    let victim = Digest::try_from(config.digest()).unwrap();
    let racing = RemovedBeforeMerge {
        inner: layout.clone(),
        victim,
    };
    let error = unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &racing,
        ExpansionLimit::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains(&victim.to_string()), "{error}");
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // Without the race, the same archive merges.
    unpack(
        &bytes[..],
        std::path::Path::new("archive"),
        &layout,
        ExpansionLimit::default(),
    )
    .unwrap();
    layout.resolve("v1").unwrap();
}

/// A layout with blobs of every algorithm, tags, untagged entries.
fn sample_layout(root: &std::path::Path) -> oci_dir::DirLayout {
    let layout = new_layout(root);
    let image = Image::new("sample");
    for blob in image.blobs() {
        seed::write_blob(&layout, blob).unwrap();
    }
    layout.tag(&image.manifest_descriptor, "v1").unwrap();
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
fn pack_unpack_pack_is_byte_identical() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        let source = sample_layout(&dir.path().join("source"));
        let first = dir.path().join("first.tar");
        let report = pack_to_file(&source, &first, compression).unwrap();
        assert_eq!(report.blobs, 5);

        let copy = new_layout(&dir.path().join("copy"));
        unpack(
            fs::File::open(&first).unwrap(),
            std::path::Path::new("archive"),
            &copy,
            ExpansionLimit::default(),
        )
        .unwrap();
        let second = dir.path().join("second.tar");
        pack_to_file(&copy, &second, compression).unwrap();
        let (a, b) = (fs::read(&first).unwrap(), fs::read(&second).unwrap());
        assert!(a == b, "{compression:?}: pack → unpack → pack differs");

        // And packing the same layout twice, or to a Vec, gives the same bytes.
        let (again, _) = pack(&source, Vec::new(), compression, "x".as_ref()).unwrap();
        assert!(again == a, "{compression:?}: pack is not deterministic");

        let archive = TarArchive::open(&first).unwrap();
        assert_eq!(archive.compression(), compression);
        assert_eq!(read_all_blobs(&archive), read_all_blobs(&source));
        assert_eq!(manifests(&archive), manifests(&source));
        assert_eq!(manifests(&copy), manifests(&source));
    }
}

#[test]
fn pack_of_an_archive_equals_pack_of_its_layout() {
    // TarArchive is a driver too: repacking an archive gives the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let source = sample_layout(&dir.path().join("source"));
    let first = dir.path().join("first.tar.zst");
    pack_to_file(&source, &first, Compression::Zstd).unwrap();
    let archive = TarArchive::open(&first).unwrap();
    let (from_archive, _) = pack(&archive, Vec::new(), Compression::Zstd, "x".as_ref()).unwrap();
    assert!(from_archive == fs::read(&first).unwrap());
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out.tar.") || n.starts_with("out"))
        .collect()
}

#[test]
fn failed_pack_to_file_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = sample_layout(&dir.path().join("source"));
    // Corrupt one blob in place (same size, other content).
    let victim = sha256(&Image::new("sample").layer);
    let path = source.root().join(victim.blob_path());
    let mut perms = fs::metadata(&path).unwrap().permissions();
    perms.set_mode(0o644);
    fs::set_permissions(&path, perms).unwrap();
    let mut data = fs::read(&path).unwrap();
    data[0] ^= 0x55;
    fs::File::create(&path).unwrap().write_all(&data).unwrap();

    let out_dir = dir.path().join("out-dir");
    fs::create_dir(&out_dir).unwrap();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let out = out_dir.join("out.tar");
        let err = pack_to_file(&source, &out, compression).unwrap_err();
        assert!(err.to_string().contains(&victim.to_string()), "{err}");
        assert!(
            !out.exists(),
            "{compression:?}: a failed pack left {}",
            out.display()
        );
        assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));
    }
    // A failed pack does not replace an existing file either.
    let out = out_dir.join("out.tar");
    fs::write(&out, b"previous").unwrap();
    pack_to_file(&source, &out, Compression::None).unwrap_err();
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    assert_eq!(leftovers(&out_dir), ["out.tar"]);
}

#[test]
fn pack_to_file_output_mode_is_0644_less_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let source = sample_layout(&dir.path().join("source"));
    let out_dir = dir.path().join("out-dir");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("out.tar");
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    pack_to_file(&source, &out, Compression::None).unwrap();
    let fresh = mode(&out);
    assert_eq!(fresh & !0o644, 0, "{fresh:o}");
    // Replacing a file with another mode does not take its mode.
    fs::set_permissions(&out, fs::Permissions::from_mode(0o600)).unwrap();
    pack_to_file(&source, &out, Compression::None).unwrap();
    assert_eq!(mode(&out), fresh);
    assert_eq!(leftovers(&out_dir), ["out.tar"]);
}

/// A random small layout: blobs (algorithm, content), tags (name, blob index), untagged
/// entries (blob indexes).
#[derive(Debug, Clone)]
struct Spec {
    blobs: Vec<(Algorithm, Vec<u8>)>,
    tags: Vec<(String, usize)>,
    untagged: Vec<usize>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let algorithm = prop_oneof![
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512),
        Just(Algorithm::Blake3)
    ];
    let blob = (algorithm, proptest::collection::vec(any::<u8>(), 0..2048));
    (
        proptest::collection::vec(blob, 1..8),
        proptest::collection::vec(("[a-z0-9]{1,6}(\\.[a-z0-9]{1,4})?", any::<usize>()), 0..4),
        proptest::collection::vec(any::<usize>(), 0..3),
    )
        .prop_map(|(blobs, tags, untagged)| {
            let n = blobs.len();
            Spec {
                tags: tags.into_iter().map(|(t, i)| (t, i % n)).collect(),
                untagged: untagged.into_iter().map(|i| i % n).collect(),
                blobs,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_layouts_round_trip(spec in spec()) {
        let dir = tempfile::tempdir().unwrap();
        let source = new_layout(&dir.path().join("source"));
        let mut descriptors = Vec::new();
        for (algorithm, content) in &spec.blobs {
            let digest = source.write_blob(*algorithm, content).unwrap();
            descriptors.push(Descriptor::new(MediaType::ImageLayer, content.len() as u64, digest));
        }
        for (name, i) in &spec.tags {
            source.tag(&descriptors[*i], name).unwrap();
        }
        let mut seen = BTreeSet::new();
        for i in &spec.untagged {
            if seen.insert(*i) {
                source.put_entry(&descriptors[*i]).unwrap();
            }
        }

        let (bytes, report) = pack(&source, Vec::new(), Compression::None, "p.tar".as_ref()).unwrap();
        prop_assert_eq!(report.blobs, list_blobs(&source).len());
        let target = new_layout(&dir.path().join("target"));
        let unpacked = unpack(&bytes[..], std::path::Path::new("archive"), &target, ExpansionLimit::default()).unwrap();
        prop_assert!(unpacked.skipped.is_empty());
        prop_assert_eq!(read_all_blobs(&target), read_all_blobs(&source));
        prop_assert_eq!(verify_blob_files(target.root()), source.list_blobs().unwrap());
        prop_assert_eq!(manifests(&target), manifests(&source));
        for (name, _) in &spec.tags {
            prop_assert_eq!(target.resolve(name).unwrap(), source.resolve(name).unwrap());
        }
    }
}
