//! Layouts crafted to lead reads or writes astray: symlinks out of the root, FIFOs, directories.

use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use oci_core::{
    Algorithm, BlobListing, ContentKind, Error, LayoutFiles, Location, Store, StrayKind, seed,
};
use oci_dir::DirLayout;

use crate::common::{err, new_layout, read_all};

/// What reading `digest` gives through every read path, checked to be `InvalidLayout` naming
/// the blob's path (and never its content).
fn check_refused(layout: &DirLayout, digest: oci_core::Digest) {
    let path = layout.root().join(digest.blob_path());
    let outcomes = [
        ("seed::read_blob", seed::read_blob(layout, digest).map(drop)),
        (
            "fetch",
            layout
                .fetch(ContentKind::Blob, digest, None)
                .and_then(|r| read_all(r).map(drop).map_err(|e| Error::io(&path, e))),
        ),
        ("stat", layout.stat(ContentKind::Blob, digest).map(drop)),
        (
            "contains",
            layout.contains(ContentKind::Blob, digest).map(drop),
        ),
    ];
    for (how, outcome) in outcomes {
        match outcome {
            Err(Error::InvalidLayout { location, .. }) => {
                assert_eq!(location, Location::Path(path.clone()), "{how}");
            }
            other => panic!("{how} of {}: {other:?}", path.display()),
        }
    }
}

#[test]
fn hostile_blobs_dir_symlink_outside_root() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(outside.join("sha256")).unwrap();
    let secret = Algorithm::Sha256.digest(b"secret");
    fs::write(outside.join("sha256").join(secret.encoded()), b"secret").unwrap();

    let root = tmp.path().join("layout");
    let layout = DirLayout::create(&root).unwrap();
    fs::remove_dir(root.join("blobs")).unwrap();
    symlink(&outside, root.join("blobs")).unwrap();

    let error = err(DirLayout::open(&root));
    match &error {
        Error::InvalidLayout { location, reason } => {
            let path = location
                .as_path()
                .expect("a directory layout's location is a path");
            assert!(path.ends_with("layout/blobs"), "{}", path.display());
            assert!(reason.contains("outside"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("blobs"), "{error}");

    // A driver made before the swap refuses too, for reads and writes.
    assert!(matches!(
        err(seed::read_blob(&layout, secret)),
        Error::InvalidLayout { .. }
    ));
    assert!(matches!(
        err(seed::write_blob(&layout, b"x")),
        Error::InvalidLayout { .. }
    ));
    assert!(matches!(
        err(layout.list_blobs()),
        Error::InvalidLayout { .. }
    ));
    assert!(matches!(
        err(seed::delete_blob(&layout, secret)),
        Error::InvalidLayout { .. }
    ));
    assert!(outside.join("sha256").join(secret.encoded()).exists());
    assert_eq!(fs::read_dir(outside.join("sha256")).unwrap().count(), 1);
}

#[test]
fn hostile_algorithm_dir_symlink_outside_root() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let secret = Algorithm::Sha256.digest(b"secret");
    fs::write(outside.join(secret.encoded()), b"secret").unwrap();
    let (_keep, layout) = new_layout();
    symlink(&outside, layout.root().join("blobs/sha256")).unwrap();

    assert!(matches!(
        err(seed::read_blob(&layout, secret)),
        Error::InvalidLayout { .. }
    ));
    assert!(matches!(
        err(seed::write_blob(&layout, b"x")),
        Error::InvalidLayout { .. }
    ));
    assert!(matches!(
        err(seed::delete_blob(&layout, secret)),
        Error::InvalidLayout { .. }
    ));
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn hostile_blob_symlink_to_outside_file() {
    let (tmp, layout) = new_layout();
    // The outside file holds exactly the content the blob's name promises, so only refusing
    // the symlink keeps it out.
    let outside = tmp.path().join("outside-secret");
    fs::write(&outside, b"secret").unwrap();
    let digest = Algorithm::Sha256.digest(b"secret");
    fs::create_dir_all(layout.root().join("blobs/sha256")).unwrap();
    symlink(&outside, layout.root().join(digest.blob_path())).unwrap();
    check_refused(&layout, digest);
}

#[test]
fn hostile_blob_fifo() {
    let (_tmp, layout) = new_layout();
    let digest = Algorithm::Sha256.digest(b"fifo");
    fs::create_dir_all(layout.root().join("blobs/sha256")).unwrap();
    let path = layout.root().join(digest.blob_path());
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success(), "mkfifo failed");

    // Nobody ever writes to the FIFO: a reader that opened it blocking would hang forever.
    let (done, result) = mpsc::channel();
    let thread_layout = layout.clone();
    std::thread::spawn(move || {
        check_refused(&thread_layout, digest);
        done.send(()).unwrap();
    });
    match result.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("reading a FIFO blob blocked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the FIFO checks failed"),
    }
}

#[test]
fn hostile_blob_directory() {
    let (_tmp, layout) = new_layout();
    let digest = Algorithm::Sha256.digest(b"dir");
    fs::create_dir_all(layout.root().join(digest.blob_path())).unwrap();
    check_refused(&layout, digest);
    // Writing that content fails (the name is taken by something that is not the blob), the
    // directory is not replaced or entered, and reads still refuse it.
    let err = seed::write_blob(&layout, b"dir").unwrap_err();
    assert!(matches!(err, Error::InvalidLayout { .. }), "{err}");
    assert!(layout.root().join(digest.blob_path()).is_dir());
    assert_eq!(
        fs::read_dir(layout.root().join(digest.blob_path()))
            .unwrap()
            .count(),
        0
    );
    check_refused(&layout, digest);
}

/// A FIFO under a digest's name is no blob: `stat` is an error, not a size; `list_blobs` does
/// not list it; `stray_files` reports it as `NotRegular`; fsck reports it and gc leaves it.
#[test]
fn a_fifo_named_like_a_blob_is_not_a_blob() {
    let (_tmp, layout) = new_layout();
    let real = seed::write_blob(&layout, b"a real blob").unwrap();
    let digest = Algorithm::Sha256.digest(b"fifo");
    let path = layout.root().join(digest.blob_path());
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success(), "mkfifo failed");

    match err(layout.stat(ContentKind::Blob, digest)) {
        Error::InvalidLayout { location, reason } => {
            assert_eq!(location, Location::Path(path.clone()));
            assert!(reason.contains("not a regular file"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(layout.list_blobs().unwrap(), [real]);
    let strays = layout.stray_files().unwrap();
    assert_eq!(strays.len(), 1, "{strays:?}");
    assert_eq!(strays[0].kind, StrayKind::NotRegular(digest));
    assert_eq!(strays[0].location, Location::Path(path.clone()));

    let report = oci_core::fsck::fsck(&layout).unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.subject.contains(&digest.encoded().to_string())),
        "{report:?}"
    );
    let options = oci_core::gc::GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let swept = oci_core::gc::gc(&layout, &options).unwrap();
    assert_eq!(swept.removed, [(real, 11)]);
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_fifo());
}
