//! Opening stores from the paths users give: a layout directory, an archive read in place
//! (plain, gzip, zstd), what is refused and how it is named.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::prelude::*;
use oci_core::{Compression, Error, Location};
use oci_dir::{DirLayout, DirOptions, Durability};
use oci_transport::{open_readable, open_writable};

/// A layout at `root` holding two blobs, one tagged `v1`, one untagged; returns the tagged
/// entry.
fn layout_at(root: &Path) -> Descriptor {
    let layout = DirLayout::create(root).unwrap();
    let data = b"layer content";
    let digest = seed::write_blob(&layout, data).unwrap();
    let entry = Descriptor::new(MediaType::ImageLayer, data.len() as u64, digest);
    layout.tag(&entry, "v1").unwrap();
    let other = layout.write_blob(Algorithm::Blake3, b"other").unwrap();
    layout
        .put_entry(&Descriptor::new(MediaType::ImageLayer, 5, other))
        .unwrap();
    layout.resolve("v1").unwrap()
}

/// Every file under `dir` with its bytes, to tell that nothing was written or extracted.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files.sort();
    files
}

fn blobs_of(store: &dyn Store) -> Vec<Digest> {
    store
        .blob_listing()
        .expect("lists its blobs")
        .list_blobs()
        .unwrap()
}

#[test]
fn a_directory_opens_as_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let tagged = layout_at(&root);
    let root = fs::canonicalize(&root).unwrap();

    let store = open_readable(&root, DirOptions::default()).unwrap();
    assert_eq!(store.location(), &Location::Path(root.clone()));
    assert_eq!(store.resolve("v1").unwrap(), tagged);
    let digest = Digest::try_from(tagged.digest()).unwrap();
    assert_eq!(
        seed::read_blob(store.as_ref(), digest).unwrap(),
        b"layer content"
    );
    assert_eq!(store.index().unwrap().manifests().len(), 2);
    // A directory is a whole layout: its files, and what gc needs.
    assert!(store.layout_files().is_some());
    assert_eq!(blobs_of(store.as_ref()).len(), 2);
    assert!(store.blob_removal().is_some());
    assert!(store.exclusive_lock().is_some());

    let options = DirOptions {
        durability: Durability::Relaxed,
        verify_reads: true,
        link_local_blobs: false,
    };
    let layout = open_writable(&root, options).unwrap();
    assert_eq!(layout.root(), root);
    assert_eq!(layout.options(), options);
    layout.tag(&tagged, "v2").unwrap();
    let reopened = open_readable(&root, DirOptions::default()).unwrap();
    assert_eq!(reopened.resolve("v2").unwrap().digest(), tagged.digest());
}

#[test]
fn an_archive_opens_read_only_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    layout_at(&root);
    let layout = DirLayout::open(&root).unwrap();
    for (compression, name) in [
        (Compression::None, "image.tar"),
        (Compression::Gzip, "image.tar.gz"),
        (Compression::Zstd, "image.tar.zst"),
    ] {
        let archives = dir.path().join(format!("{name}.d"));
        fs::create_dir(&archives).unwrap();
        let path = archives.join(name);
        oci_tar::pack_to_file(&layout, &path, compression).unwrap();
        let before = files_under(&archives);

        let store = open_readable(&path, DirOptions::default()).unwrap();
        assert_eq!(store.location(), &Location::Path(path.clone()), "{name}");
        assert_eq!(store.index().unwrap(), layout.index().unwrap(), "{name}");
        assert_eq!(blobs_of(store.as_ref()), blobs_of(&layout), "{name}");
        for digest in blobs_of(store.as_ref()) {
            assert_eq!(
                seed::read_blob(store.as_ref(), digest).unwrap(),
                seed::read_blob(&layout, digest).unwrap(),
                "{name}: {digest}"
            );
        }
        assert!(fsck(store.as_ref()).unwrap().is_clean(), "{name}");
        // Read-only: nothing to remove blobs or lock with.
        assert!(store.blob_removal().is_none(), "{name}");
        assert!(store.exclusive_lock().is_none(), "{name}");
        let err = store.tag(&layout.resolve("v1").unwrap(), "v2").unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{name}: {err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{name}: {err}"
        );
        drop(store);
        // In place: nothing extracted beside it, nothing written into it.
        assert_eq!(files_under(&archives), before, "{name}");
    }
}

#[test]
fn writing_into_an_archive_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    layout_at(&root);
    let path = dir.path().join("image.tar.zst");
    oci_tar::pack_to_file(&DirLayout::open(&root).unwrap(), &path, Compression::Zstd).unwrap();
    let before = files_under(dir.path());

    let err = open_writable(&path, DirOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: an archive is read-only: unpack it into a layout directory to change it",
            path.display()
        )
    );
    assert_eq!(files_under(dir.path()), before);
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-layout");
    let errors = [
        open_readable(&missing, DirOptions::default())
            .err()
            .unwrap(),
        open_writable(&missing, DirOptions::default()).unwrap_err(),
    ];
    for err in errors {
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }
    assert!(!missing.exists(), "opening created {}", missing.display());

    // Neither a layout directory nor an archive: named too.
    let garbage = dir.path().join("notes.txt");
    fs::write(&garbage, [0x42; 1024]).unwrap();
    let err = open_readable(&garbage, DirOptions::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = open_readable(&empty, DirOptions::default()).err().unwrap();
    assert!(
        err.to_string().contains(&empty.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_url_of_an_unknown_transport_is_refused_naming_it() {
    for name in [
        "http://registry.example/app:v1",
        "docker-daemon://app:v1",
        "s3://bucket/key",
    ] {
        let err = oci_transport::StoreName::parse(name)
            .unwrap_err()
            .to_string();
        let scheme = name.split_once("://").unwrap().0;
        assert!(
            err.contains(name) && err.contains(&format!("unknown transport {scheme}://")),
            "{err}"
        );
    }
    // A path with `://` further on is still a path; `docker://` is the registry.
    assert!(matches!(
        oci_transport::StoreName::parse("oci:dir/a://b").unwrap(),
        oci_transport::StoreName::Layout { .. }
    ));
    assert!(matches!(
        oci_transport::StoreName::parse("docker://registry.example/app:v1").unwrap(),
        oci_transport::StoreName::Registry(_)
    ));
}

#[test]
fn a_name_that_is_not_utf8_is_a_plain_path() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"layout-\xff");
    match oci_transport::StoreName::parse_os(name).unwrap() {
        oci_transport::StoreName::Layout { path, reference } => {
            assert_eq!(path.as_os_str(), name);
            assert_eq!(reference, None);
        }
        other => panic!("{other:?}"),
    }
}
