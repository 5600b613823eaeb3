//! One test per seed function (`seed_<function>`), over the directory driver.

use std::fs;
use std::io::Write;

use oci_core::oci_spec::image::{Descriptor, MediaType, OciLayout};
use oci_core::seed::{self, InitOptions};
use oci_core::{Algorithm, BlobListing, ContentKind, Digest, Error, Location, Store, index};
use oci_dir::{DirLayout, DirOptions};
use serde_json::{Value, json};

use crate::common::{err, mode, new_layout, read_all, ref_names, temp_debris, umask};

/// Runs `seed::init` with `options` on a fresh, not yet existing directory.
fn init_with(options: &InitOptions) -> (tempfile::TempDir, DirLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = DirLayout::at(tmp.path().join("layout"), DirOptions::default()).unwrap();
    seed::init(&layout, options).unwrap();
    (tmp, layout)
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

const EMPTY_INDEX: &str =
    r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#;

/// A manifest descriptor for `label`, stored in `layout` (an index entry must point at stored
/// content).
fn manifest(layout: &DirLayout, label: &str) -> Descriptor {
    let digest = seed::write_blob(layout, label.as_bytes()).unwrap();
    Descriptor::new(MediaType::ImageManifest, label.len() as u64, digest)
}

// --- init ------------------------------------------------------------------------------------

#[test]
fn seed_init_default() {
    let (_tmp, layout) = init_with(&InitOptions::default());
    let root = layout.root();
    assert_eq!(
        read_json(&root.join("oci-layout")),
        json!({"imageLayoutVersion": "1.0.0"})
    );
    assert_eq!(
        fs::read_to_string(root.join("index.json")).unwrap(),
        EMPTY_INDEX
    );
    assert!(root.join("blobs").is_dir());
    assert!(temp_debris(root).is_empty());
    // The result is a layout that opens and takes blobs.
    let opened = DirLayout::open(root).unwrap();
    let digest = seed::write_blob(&opened, b"x").unwrap();
    assert_eq!(seed::read_blob(&opened, digest).unwrap(), b"x");
}

#[test]
fn seed_init_image_layout_version() {
    let (_tmp, layout) = init_with(&InitOptions {
        image_layout_version: Some("1.1.0".to_owned()),
        ..InitOptions::default()
    });
    assert_eq!(
        seed::read_image_layout(&layout)
            .unwrap()
            .image_layout_version(),
        "1.1.0"
    );
    assert_eq!(seed::IMAGE_LAYOUT_VERSION, "1.0.0");
}

#[test]
fn seed_init_skip_create_image_layout() {
    let (_tmp, layout) = init_with(&InitOptions {
        skip_create_image_layout: true,
        ..InitOptions::default()
    });
    assert!(!layout.root().join("oci-layout").exists());
    assert!(err(seed::read_image_layout(&layout)).is_not_found());
    assert_eq!(
        fs::read_to_string(layout.root().join("index.json")).unwrap(),
        EMPTY_INDEX
    );
    assert!(layout.root().join("blobs").is_dir());
}

#[test]
fn seed_init_skip_create_index() {
    let (_tmp, layout) = init_with(&InitOptions {
        skip_create_index: true,
        ..InitOptions::default()
    });
    assert!(!layout.root().join("index.json").exists());
    assert!(layout.root().join("oci-layout").is_file());
    assert!(layout.root().join("blobs").is_dir());
    assert!(err(seed::read_index(&layout)).is_not_found());
    // Without index.json it is not (yet) a layout to open.
    assert!(matches!(
        err(DirLayout::open(layout.root())),
        Error::InvalidLayout { .. }
    ));
    // Writing one makes it whole.
    seed::write_index(&layout, &index::empty_index()).unwrap();
    DirLayout::open(layout.root()).unwrap();
}

#[test]
fn seed_init_file_modes() {
    let (_tmp, layout) = init_with(&InitOptions::default());
    let umask = umask();
    assert_eq!(mode(&layout.root().join("oci-layout")), 0o444 & !umask);
    assert_eq!(mode(&layout.root().join("index.json")), 0o644 & !umask);
    // Rewriting keeps the modes.
    seed::write_index(&layout, &index::empty_index()).unwrap();
    assert_eq!(mode(&layout.root().join("index.json")), 0o644 & !umask);
    let digest = seed::write_blob(&layout, b"mode").unwrap();
    assert_eq!(
        mode(&layout.root().join(digest.blob_path())),
        0o644 & !umask
    );
}

#[test]
fn seed_init_refuses_existing_layout() {
    let (_tmp, layout) = init_with(&InitOptions::default());
    seed::put_manifest_descriptor_to_index(
        &layout,
        &index::with_ref_name(manifest(&layout, "m"), "v1"),
    )
    .unwrap();
    let before = fs::read(layout.root().join("index.json")).unwrap();
    for options in [
        InitOptions::default(),
        InitOptions {
            skip_create_index: true,
            ..InitOptions::default()
        },
    ] {
        let error = err(seed::init(&layout, &options));
        assert!(
            matches!(&error, Error::InvalidLayout { location, .. } if location == layout.location()),
            "{error:?}"
        );
    }
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    assert!(matches!(
        err(DirLayout::create(layout.root())),
        Error::InvalidLayout { .. }
    ));

    // Only an oci-layout (a layout whose index was skipped) is refused too.
    let (_tmp2, half) = init_with(&InitOptions {
        skip_create_index: true,
        ..InitOptions::default()
    });
    assert!(matches!(
        err(seed::init(&half, &InitOptions::default())),
        Error::InvalidLayout { .. }
    ));
}

/// `DirLayout::at` on a path that does not exist yet, reached through a symlinked directory,
/// then `seed::init`: the layout must work afterwards.
#[test]
fn seed_init_at_missing_path_behind_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("real")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
    let layout = DirLayout::at(tmp.path().join("link/layout"), DirOptions::default()).unwrap();
    seed::init(&layout, &InitOptions::default()).unwrap();
    let digest = seed::write_blob(&layout, b"behind a symlink").unwrap();
    assert_eq!(
        seed::read_blob(&layout, digest).unwrap(),
        b"behind a symlink"
    );
    assert!(
        tmp.path()
            .join("real/layout")
            .join(digest.blob_path())
            .is_file()
    );
}

// --- blobs -----------------------------------------------------------------------------------

#[test]
fn seed_write_blob() {
    let (_tmp, layout) = new_layout();
    for content in [&b""[..], b"hello", &[0u8; 300_000][..]] {
        let digest = seed::write_blob(&layout, content).unwrap();
        assert_eq!(digest, Algorithm::Sha256.digest(content));
        let path = layout
            .root()
            .join(format!("blobs/sha256/{}", digest.encoded()));
        assert_eq!(fs::read(&path).unwrap(), content);
    }
    // Writing the same content again is fine and gives the same digest.
    assert_eq!(
        seed::write_blob(&layout, b"hello").unwrap(),
        Algorithm::Sha256.digest(b"hello")
    );
    // Every algorithm, in its own directory.
    for algorithm in Algorithm::ALL {
        let digest = layout.write_blob(algorithm, b"per algorithm").unwrap();
        assert_eq!(digest, algorithm.digest(b"per algorithm"));
        let path = layout
            .root()
            .join(format!("blobs/{}/{}", algorithm.name(), digest.encoded()));
        assert_eq!(fs::read(&path).unwrap(), b"per algorithm");
    }
    assert!(temp_debris(layout.root()).is_empty());
}

#[test]
fn seed_read_blob() {
    let (_tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"content").unwrap();
    assert_eq!(seed::read_blob(&layout, digest).unwrap(), b"content");

    let absent = Algorithm::Sha256.digest(b"absent");
    match err(seed::read_blob(&layout, absent)) {
        Error::NotFound { location, digest } => {
            assert_eq!(digest, Some(absent));
            assert_eq!(location, layout.location().of_content(absent));
        }
        other => panic!("{other:?}"),
    }

    // A blob whose stored bytes do not hash to its name is refused.
    let path = layout.root().join(digest.blob_path());
    fs::write(&path, b"CONTENT").unwrap();
    match err(seed::read_blob(&layout, digest)) {
        Error::UnexpectedDigest { expected, actual } => {
            assert_eq!(expected, digest);
            assert_eq!(actual, Algorithm::Sha256.digest(b"CONTENT"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_get_blob_reader() {
    let (_tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"0123456789").unwrap();
    let read = |size| {
        seed::get_blob_reader(&layout, digest, size).and_then(|r| {
            read_all(r).map_err(|e| Error::io(layout.root().join(digest.blob_path()), e))
        })
    };
    assert_eq!(read(None).unwrap(), b"0123456789");
    assert_eq!(read(Some(10)).unwrap(), b"0123456789");
    for wrong in [9, 11, 0] {
        match err(read(Some(wrong))) {
            Error::UnexpectedSize {
                digest: d,
                expected,
                ..
            } => {
                assert_eq!((d, expected), (digest, wrong));
            }
            other => panic!("size {wrong}: {other:?}"),
        }
    }
    assert!(
        err(seed::get_blob_reader(&layout, Algorithm::Sha256.digest(b"no"), None).map(drop))
            .is_not_found()
    );
}

#[test]
fn seed_delete_blob() {
    let (_tmp, layout) = new_layout();
    let keep = seed::write_blob(&layout, b"keep").unwrap();
    let digest = seed::write_blob(&layout, b"delete me").unwrap();
    seed::delete_blob(&layout, digest).unwrap();
    assert!(!layout.root().join(digest.blob_path()).exists());
    assert!(!layout.contains(ContentKind::Blob, digest).unwrap());
    assert!(err(seed::read_blob(&layout, digest)).is_not_found());
    assert_eq!(layout.list_blobs().unwrap(), [keep]);
    // A second delete: the blob is gone.
    match err(seed::delete_blob(&layout, digest)) {
        Error::NotFound { digest: d, .. } => assert_eq!(d, Some(digest)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_write_json_blob() {
    let (_tmp, layout) = new_layout();
    let value = json!({"z": 1, "a": {"y": [3, 2], "b": null}, "os.version": "1"});
    let descriptor = seed::write_json_blob(&layout, &value, MediaType::ImageConfig).unwrap();
    let expected = br#"{"a":{"b":null,"y":[3,2]},"os.version":"1","z":1}"#;
    assert_eq!(descriptor.media_type(), &MediaType::ImageConfig);
    assert_eq!(descriptor.size(), expected.len() as u64);
    assert_eq!(
        descriptor.digest().to_string(),
        Algorithm::Sha256.digest(expected).to_string()
    );
    let stored = seed::read_blob(&layout, Digest::try_from(descriptor.digest()).unwrap()).unwrap();
    assert_eq!(stored, expected, "canonical JSON: sorted keys, compact");
}

// --- index.json and oci-layout ---------------------------------------------------------------

#[test]
fn seed_read_index() {
    let (_tmp, layout) = new_layout();
    let path = layout.root().join("index.json");
    assert!(seed::read_index(&layout).unwrap().manifests().is_empty());

    // Lenient: Docker's null list, no mediaType, unknown fields and media types.
    let m = Algorithm::Sha256.digest(b"m");
    fs::write(
        &path,
        br#"{"schemaVersion":2,"manifests":null,"x-extra":1}"#,
    )
    .unwrap();
    assert!(seed::read_index(&layout).unwrap().manifests().is_empty());
    fs::write(
        &path,
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"x-unknown","digest":"{m}","size":1,"x":{{}}}}]}}"#),
    )
    .unwrap();
    let idx = seed::read_index(&layout).unwrap();
    assert_eq!(idx.manifests().len(), 1);
    assert_eq!(idx.manifests()[0].media_type().to_string(), "x-unknown");

    fs::write(&path, b"{not json").unwrap();
    match err(seed::read_index(&layout)) {
        Error::Json { location, .. } => assert_eq!(location, Location::Path(path.clone())),
        other => panic!("{other:?}"),
    }
    fs::remove_file(&path).unwrap();
    assert!(err(seed::read_index(&layout)).is_not_found());
}

#[test]
fn seed_write_index() {
    let (_tmp, layout) = new_layout();
    let mut idx = index::parse_index(
        format!(
            r#"{{"schemaVersion":1,"annotations":{{"b":"2","a":"1"}},"manifests":[{{"mediaType":"{}","digest":"{}","size":1,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0"}}}}]}}"#,
            "application/vnd.oci.image.manifest.v1+json",
            Algorithm::Sha256.digest(b"m")
        )
        .as_bytes(),
    )
    .unwrap();
    idx.set_media_type(None);
    seed::write_index(&layout, &idx).unwrap();
    let written = fs::read(layout.root().join("index.json")).unwrap();
    assert_eq!(written, index::index_bytes(&idx).unwrap());
    let value: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(value["schemaVersion"], 2);
    assert_eq!(
        value["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(value["manifests"][0]["platform"]["os.version"], "10.0");
    let text = String::from_utf8(written).unwrap();
    assert!(
        text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap(),
        "{text}"
    );
    // Read back equal (after canonicalisation).
    let mut canonical = idx.clone();
    index::canonicalize(&mut canonical);
    assert_eq!(seed::read_index(&layout).unwrap(), canonical);
    assert!(temp_debris(layout.root()).is_empty());
}

#[test]
fn seed_read_image_layout() {
    let (_tmp, layout) = new_layout();
    assert_eq!(
        seed::read_image_layout(&layout)
            .unwrap()
            .image_layout_version(),
        "1.0.0"
    );
    let path = layout.root().join("oci-layout");
    fs::remove_file(&path).unwrap();
    assert!(err(seed::read_image_layout(&layout)).is_not_found());
    fs::write(&path, b"[]").unwrap();
    match err(seed::read_image_layout(&layout)) {
        Error::Json { location, .. } => assert_eq!(location, Location::Path(path.clone())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_write_image_layout() {
    let (_tmp, layout) = new_layout();
    let wanted: OciLayout = serde_json::from_value(json!({"imageLayoutVersion": "1.1.0"})).unwrap();
    // Replaces the 0444 file init wrote.
    seed::write_image_layout(&layout, &wanted).unwrap();
    assert_eq!(seed::read_image_layout(&layout).unwrap(), wanted);
    assert_eq!(
        read_json_file(&layout, "oci-layout"),
        json!({"imageLayoutVersion": "1.1.0"})
    );
    assert_eq!(mode(&layout.root().join("oci-layout")), 0o444 & !umask());
    assert!(temp_debris(layout.root()).is_empty());
}

fn read_json_file(layout: &DirLayout, name: &str) -> Value {
    read_json(&layout.root().join(name))
}

#[test]
fn seed_put_manifest_descriptor_to_index() {
    let (_tmp, layout) = new_layout();
    let put = |d: &Descriptor| seed::put_manifest_descriptor_to_index(&layout, d);
    let untagged = manifest(&layout, "untagged");
    put(&untagged).unwrap();
    put(&index::with_ref_name(manifest(&layout, "a"), "v1")).unwrap();
    put(&index::with_ref_name(manifest(&layout, "b"), "v2")).unwrap();
    // The same untagged entry again is not added twice.
    put(&untagged).unwrap();
    // Re-using a name replaces the entry.
    put(&index::with_ref_name(manifest(&layout, "c"), "v1")).unwrap();
    assert_eq!(
        ref_names(&layout),
        [None, Some("v2".to_owned()), Some("v1".to_owned())]
    );
    assert_eq!(
        layout.resolve("v1").unwrap().digest().to_string(),
        Algorithm::Sha256.digest(b"c").to_string()
    );
    // Another untagged entry is.
    put(&manifest(&layout, "other")).unwrap();
    assert_eq!(
        ref_names(&layout),
        [None, Some("v2".to_owned()), Some("v1".to_owned()), None]
    );
    // Invalid names are refused and change nothing.
    let before = fs::read(layout.root().join("index.json")).unwrap();
    for bad in ["", "../v1", "v1/", "a b"] {
        match err(put(&index::with_ref_name(manifest(&layout, "d"), bad))) {
            Error::InvalidRefName { name } => assert_eq!(name, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // So is an entry for a manifest that is not stored.
    let absent = Algorithm::Sha256.digest(b"absent");
    let dangling = Descriptor::new(MediaType::ImageManifest, 6, absent);
    match err(put(&index::with_ref_name(dangling, "v3"))) {
        Error::NotFound { digest, .. } => assert_eq!(digest, Some(absent)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
}

#[test]
fn seed_remove_manifest_descriptor_from_index() {
    let (_tmp, layout) = new_layout();
    for (label, name) in [("a", Some("v1")), ("u", None), ("b", Some("v2"))] {
        let d = manifest(&layout, label);
        let d = name.map_or(d.clone(), |n| index::with_ref_name(d, n));
        seed::put_manifest_descriptor_to_index(&layout, &d).unwrap();
    }
    // Absent: Ok, nothing changes.
    let before = fs::read(layout.root().join("index.json")).unwrap();
    seed::remove_manifest_descriptor_from_index(&layout, "absent").unwrap();
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // Empty name: an error.
    assert!(matches!(
        err(seed::remove_manifest_descriptor_from_index(&layout, "")),
        Error::InvalidRefName { name } if name.is_empty()
    ));
    seed::remove_manifest_descriptor_from_index(&layout, "v1").unwrap();
    assert_eq!(ref_names(&layout), [None, Some("v2".to_owned())]);
    assert!(matches!(
        err(layout.resolve("v1")),
        Error::RefNotFound { name, .. } if name == "v1"
    ));
}

#[test]
fn seed_remove_manifest_descriptor_from_index_duplicates() {
    let (_tmp, layout) =
        crate::common::corpus_copy("containers-image-delete_image_two_identical_references");
    seed::remove_manifest_descriptor_from_index(&layout, "1.0.0").unwrap();
    assert!(ref_names(&layout).is_empty());
}

// --- new_blob_writer -------------------------------------------------------------------------

/// Writes `content` through `new_blob_writer` and commits with `size` and `expected`.
fn commit(
    layout: &DirLayout,
    content: &[u8],
    size: Option<u64>,
    expected: Option<Digest>,
) -> oci_core::Result<Digest> {
    let mut writer = seed::new_blob_writer(layout, Algorithm::Sha256).unwrap();
    assert_eq!(writer.algorithm(), Algorithm::Sha256);
    for chunk in content.chunks(3) {
        writer.write_all(chunk).unwrap();
    }
    assert_eq!(writer.bytes_written(), content.len() as u64);
    writer.commit(size, expected)
}

#[test]
fn seed_new_blob_writer_commit_known_and_unknown() {
    let (_tmp, layout) = new_layout();
    for (i, (size_known, digest_known)) in
        [(false, false), (true, false), (false, true), (true, true)]
            .into_iter()
            .enumerate()
    {
        let content = format!("blob number {i}");
        let digest = Algorithm::Sha256.digest(content.as_bytes());
        let size = size_known.then_some(content.len() as u64);
        let expected = digest_known.then_some(digest);
        assert_eq!(
            commit(&layout, content.as_bytes(), size, expected).unwrap(),
            digest,
            "size {size:?}, digest {expected:?}"
        );
        assert_eq!(
            seed::read_blob(&layout, digest).unwrap(),
            content.as_bytes()
        );
    }
    assert_eq!(layout.list_blobs().unwrap().len(), 4);
}

#[test]
fn seed_new_blob_writer_unexpected_size() {
    let (_tmp, layout) = new_layout();
    let actual = Algorithm::Sha256.digest(b"12345");
    let claimed = Algorithm::Sha256.digest(b"other");
    // (size given, digest given) -> the digest the error names
    for (expected, named) in [
        (None, actual),
        (Some(actual), actual),
        (Some(claimed), claimed),
    ] {
        let error = err(commit(&layout, b"12345", Some(6), expected));
        match &error {
            Error::UnexpectedSize {
                digest,
                expected: e,
                actual: a,
            } => assert_eq!((*digest, *e, *a), (named, 6, 5)),
            other => panic!("{other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("expected 6") && message.contains("got 5"),
            "{message}"
        );
    }
    assert!(layout.list_blobs().unwrap().is_empty());
}

#[test]
fn seed_new_blob_writer_unexpected_digest() {
    let (_tmp, layout) = new_layout();
    let actual = Algorithm::Sha256.digest(b"12345");
    let claimed = Algorithm::Sha256.digest(b"other");
    for size in [None, Some(5)] {
        let error = err(commit(&layout, b"12345", size, Some(claimed)));
        match &error {
            Error::UnexpectedDigest {
                expected,
                actual: a,
            } => assert_eq!((*expected, *a), (claimed, actual)),
            other => panic!("{other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&claimed.to_string()) && message.contains(&actual.to_string()),
            "{message}"
        );
    }
    // A digest of another algorithm is a mismatch too.
    let sha512 = Algorithm::Sha512.digest(b"12345");
    assert!(matches!(
        err(commit(&layout, b"12345", None, Some(sha512))),
        Error::UnexpectedDigest { expected, .. } if expected == sha512
    ));
    assert!(layout.list_blobs().unwrap().is_empty());
}
