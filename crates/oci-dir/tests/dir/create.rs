//! `DirLayout::create` and `open_or_create`: a layout filled in place behind a marker, a
//! directory that is not ours refused, concurrent creators ending with one layout, and a
//! failed or interrupted create never taken for a layout.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use oci_core::{BlobListing, Error, Store, fsck::fsck, seed};
use oci_dir::{DirLayout, DirOptions, INIT_MARKER};

use crate::common::*;

fn is_layout(root: &Path) {
    assert!(root.join("blobs").is_dir(), "{}", root.display());
    assert!(root.join("oci-layout").is_file(), "{}", root.display());
    assert!(!root.join(INIT_MARKER).exists(), "{}", root.display());
    let opened = DirLayout::open(root).unwrap();
    seed::read_image_layout(&opened).unwrap();
    let report = fsck(&opened).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a creator that died after writing its marker and some of the layout leaves.
fn interrupted_create(root: &Path) {
    fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    fs::write(root.join(INIT_MARKER), b"being initialised by oci-layout\n").unwrap();
    fs::write(
        root.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    fs::write(root.join("blobs/sha256/0123"), b"debris").unwrap();
}

#[test]
fn create_into_a_missing_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b/layout");
    let layout = DirLayout::create(&root).unwrap();
    assert_eq!(layout.root(), fs::canonicalize(&root).unwrap());
    is_layout(&root);
    assert_eq!(names(&root), ["blobs", "index.json", "oci-layout"]);
    assert_eq!(names(tmp.path()), ["a"], "nothing left beside it");
}

/// Issue #12, item 5: an existing empty directory is filled, not replaced: it keeps its inode,
/// owner, group, mode and extended attributes.
#[test]
fn create_fills_an_empty_directory_in_place_keeping_owner_mode_and_xattrs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("empty");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    // As root (as CI and many image builders run), the owner to keep is nobody:nogroup.
    let is_root = fs::metadata(tmp.path()).unwrap().uid() == 0;
    if is_root {
        // nobody:nogroup
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    }
    rustix::fs::setxattr(
        &root,
        "user.oci-layout-test",
        b"kept",
        rustix::fs::XattrFlags::CREATE,
    )
    .expect("the temporary directory's filesystem takes user xattrs");
    let before = fs::metadata(&root).unwrap();

    DirLayout::create(&root).unwrap();
    is_layout(&root);
    let after = fs::metadata(&root).unwrap();
    assert_eq!(after.ino(), before.ino(), "replaced, not filled in place");
    assert_eq!(after.permissions().mode() & 0o7777, 0o700);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if is_root {
        assert_eq!((after.uid(), after.gid()), (65534, 65534));
    }
    let mut value = [0u8; 16];
    let len = rustix::fs::getxattr(&root, "user.oci-layout-test", &mut value).unwrap();
    assert_eq!(&value[..len], b"kept");
}

/// Issue #12, item 4: a directory holding someone else's `index.json` is not a layout.
#[test]
fn create_refuses_a_non_empty_directory_without_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    fs::create_dir(&root).unwrap();
    let theirs = br#"{"my":"app"}"#;
    fs::write(root.join("index.json"), theirs).unwrap();
    for attempt in [
        DirLayout::create(&root).map(drop),
        DirLayout::open_or_create(&root, DirOptions::default()).map(drop),
        DirLayout::open_or_create_then(&root, DirOptions::default(), |_| Ok(())).map(drop),
    ] {
        let error = err(attempt);
        assert!(matches!(error, Error::InvalidLayout { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&*root.to_string_lossy()), "{message}");
        assert!(message.contains("oci-layout"), "{message}");
    }
    assert_eq!(fs::read(root.join("index.json")).unwrap(), theirs);
    assert_eq!(names(&root), ["index.json"], "nothing written");
}

#[test]
fn create_refuses_an_existing_layout_and_open_or_create_opens_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    let layout = DirLayout::create(&root).unwrap();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let index = fs::read(root.join("index.json")).unwrap();
    let error = DirLayout::create(&root).unwrap_err();
    assert!(matches!(error, Error::InvalidLayout { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&*root.to_string_lossy()),
        "{error}"
    );
    assert_eq!(fs::read(root.join("index.json")).unwrap(), index);
    let opened = DirLayout::open_or_create(&root, DirOptions::default()).unwrap();
    assert_eq!(opened.resolve("v1").unwrap(), image_entry(&image, "v1"));
}

fn image_entry(image: &Image, name: &str) -> oci_core::oci_spec::image::Descriptor {
    oci_core::index::with_ref_name(image.manifest.clone(), name)
}

/// A directory whose creator died is never opened as a layout; the next create starts it
/// again, and one holding anything else is refused.
#[test]
fn an_interrupted_create_is_refused_by_readers_and_finished_by_the_next_create() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    interrupted_create(&root);
    let error = err(DirLayout::open(&root));
    assert!(
        error.to_string().contains(INIT_MARKER) && error.to_string().contains("unfinished"),
        "{error}"
    );

    let layout = DirLayout::create(&root).unwrap();
    is_layout(&root);
    assert!(layout.list_blobs().unwrap().is_empty(), "started again");

    let other = tmp.path().join("other");
    interrupted_create(&other);
    fs::write(other.join("notes.txt"), b"mine").unwrap();
    let error = err(DirLayout::open_or_create(&other, DirOptions::default()));
    assert!(error.to_string().contains("notes.txt"), "{error}");
    assert_eq!(fs::read(other.join("notes.txt")).unwrap(), b"mine");
    assert!(other.join(INIT_MARKER).exists());
}

/// Issue #12, item 8: creators racing for one missing directory all end with the same layout.
#[test]
fn concurrent_open_or_create_all_succeed_with_one_layout() {
    const CREATORS: usize = 6;
    for round in 0..4 {
        let tmp = tempfile::tempdir().unwrap();
        let root = Arc::new(tmp.path().join("new/layout"));
        let start = Arc::new(Barrier::new(CREATORS));
        let workers: Vec<_> = (0..CREATORS)
            .map(|i| {
                let (root, start) = (Arc::clone(&root), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let layout = DirLayout::open_or_create(&*root, DirOptions::default())?;
                    let image = small_image(&layout);
                    layout.tag(&image.manifest, &format!("t{i}"))
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        is_layout(&root);
        let layout = DirLayout::open(&*root).unwrap();
        assert_eq!(ref_names(&layout).len(), CREATORS, "round {round}");
    }
}

/// A creator that is filling a new layout holds others off until it is done: they then open
/// what it made, with what it put in.
#[test]
fn a_concurrent_creator_waits_for_the_fill_and_opens_its_result() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    let (filling_tx, filling_rx) = mpsc::channel();
    let filler = {
        let root = root.clone();
        std::thread::spawn(move || {
            DirLayout::open_or_create_then(&root, DirOptions::default(), |layout| {
                filling_tx.send(()).unwrap();
                let image = small_image(layout);
                std::thread::sleep(Duration::from_millis(300));
                layout.tag(&image.manifest, "filled")
            })
            .map(drop)
        })
    };
    filling_rx.recv().unwrap();
    assert!(
        DirLayout::open(&root).is_err(),
        "open while being filled: {:?}",
        names(&root)
    );
    let waiter = DirLayout::open_or_create(&root, DirOptions::default()).unwrap();
    waiter.resolve("filled").unwrap();
    filler.join().unwrap().unwrap();
    is_layout(&root);
}

/// A fill that fails leaves the directory as it was: a missing one (and the parents made for
/// it) gone, an empty one empty, the same inode.
#[test]
fn a_failed_fill_removes_what_it_created() {
    let tmp = tempfile::tempdir().unwrap();
    let failing = |layout: &DirLayout| -> oci_core::Result<()> {
        small_image(layout);
        Err(Error::InvalidLayout {
            location: layout.location().clone(),
            reason: "the fill failed".into(),
        })
    };
    let missing = tmp.path().join("a/b/layout");
    let error = err(DirLayout::open_or_create_then(
        &missing,
        DirOptions::default(),
        failing,
    ));
    assert!(error.to_string().contains("the fill failed"), "{error}");
    assert_eq!(names(tmp.path()), Vec::<String>::new());

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let inode = fs::metadata(&empty).unwrap().ino();
    err(DirLayout::open_or_create_then(
        &empty,
        DirOptions::default(),
        failing,
    ));
    assert_eq!(names(&empty), Vec::<String>::new());
    assert_eq!(fs::metadata(&empty).unwrap().ino(), inode);
    // And it can be filled afterwards.
    DirLayout::open_or_create_then(&empty, DirOptions::default(), |layout| {
        layout.tag(&small_image(layout).manifest, "v1")
    })
    .unwrap();
    is_layout(&empty);
}

/// A marker whose creator is alive (its lock held) is waited for, not taken over.
#[test]
fn a_live_marker_is_waited_for() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    fs::create_dir(&root).unwrap();
    let marker = File::create(root.join(INIT_MARKER)).unwrap();
    marker.lock().unwrap();
    let waiter = {
        let root = root.clone();
        std::thread::spawn(move || DirLayout::open_or_create(&root, DirOptions::default()))
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !waiter.is_finished(),
        "a live creator's marker was not waited for"
    );
    // The creator finishes: a layout, marker gone.
    seed::init(
        &DirLayout::at(&root, DirOptions::default()).unwrap(),
        &seed::InitOptions::default(),
    )
    .unwrap();
    fs::remove_file(root.join(INIT_MARKER)).unwrap();
    drop(marker);
    waiter.join().unwrap().unwrap();
    is_layout(&root);
}
