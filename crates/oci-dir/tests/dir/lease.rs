//! Leases: what a writer holds so that gc, whatever its grace period, sweeps nothing it writes
//! before it tags it (issue #12, item 3).

use std::fs;
use std::sync::mpsc;
use std::time::Duration;

use oci_core::fsck::fsck;
use oci_core::gc::{GcOptions, gc};
use oci_core::{ContentKind, LayoutFiles, Location, Store, StrayKind, seed};
use oci_dir::{CACHE_DIR, DirLayout, LEASES_DIR};

use crate::common::{digest_of, new_layout, small_image};

fn no_grace() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    }
}

/// gc with no grace, from another handle on another thread, while the writer holds a lease
/// between writing an image and tagging it: the tag lands on a whole image.
#[test]
fn gc_sweeps_nothing_written_under_a_live_lease() {
    let (_tmp, layout) = new_layout();
    let (written_tx, written_rx) = mpsc::channel();
    let (swept_tx, swept_rx) = mpsc::channel();
    let writer = {
        let layout = layout.clone();
        std::thread::spawn(move || {
            let lease = layout.lease().unwrap();
            let image = small_image(&layout);
            written_tx.send(()).unwrap();
            swept_rx.recv().unwrap();
            layout.tag(&image.manifest, "v1").unwrap();
            drop(lease);
            image
        })
    };
    written_rx.recv().unwrap();
    let other = DirLayout::open(layout.root()).unwrap();
    let report = gc(&other, &no_grace()).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.too_young, 4, "{report:?}");
    swept_tx.send(()).unwrap();
    let image = writer.join().unwrap();

    for digest in image.digests() {
        assert!(
            layout.contains(ContentKind::Blob, digest).unwrap(),
            "{digest}"
        );
    }
    let report = fsck(&layout).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // The lease is gone with its holder, leaving no trace; what is not tagged is swept again.
    assert!(!layout.root().join(CACHE_DIR).join(LEASES_DIR).exists());
    let garbage = seed::write_blob(&layout, b"garbage").unwrap();
    let report = gc(&layout, &no_grace()).unwrap();
    assert_eq!(report.removed, [(garbage, 7)]);
}

/// A blob that was there before the lease and is put again under it is protected too: the
/// re-put makes it young.
#[test]
fn a_blob_re_put_under_a_lease_is_kept() {
    let (_tmp, layout) = new_layout();
    let old = seed::write_blob(&layout, b"old content").unwrap();
    let path = layout.root().join(old.blob_path());
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let lease = layout.lease().unwrap();
    assert_eq!(seed::write_blob(&layout, b"old content").unwrap(), old);
    let report = gc(&layout, &no_grace()).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    drop(lease);
    let report = gc(&layout, &no_grace()).unwrap();
    assert_eq!(report.removed, [(old, 11)]);
}

/// A lease left by a holder that died (its lock free) protects nothing: fsck reports it as a
/// temp file and gc removes it.
#[test]
fn a_lease_left_by_a_dead_holder_is_debris() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let leases = layout.root().join(CACHE_DIR).join(LEASES_DIR);
    fs::create_dir_all(&leases).unwrap();
    let dead = leases.join("0123456789abcdef");
    fs::write(&dead, b"pid 1\n").unwrap();

    let strays: Vec<_> = layout
        .stray_files()
        .unwrap()
        .into_iter()
        .filter(|s| s.location == Location::Path(dead.clone()))
        .collect();
    assert_eq!(strays.len(), 1);
    assert_eq!(strays[0].kind, StrayKind::Temporary);
    let report = gc(&layout, &no_grace()).unwrap();
    assert_eq!(report.removed.len(), 4, "{report:?}");
    assert_eq!(report.temp_files_removed, [Location::Path(dead.clone())]);
    assert!(!dead.exists());
    assert!(
        !layout
            .contains(ContentKind::Blob, digest_of(&image.manifest))
            .unwrap()
    );
}

/// A live lease is no stray, and a dry run changes nothing.
#[test]
fn a_live_lease_is_not_debris() {
    let (_tmp, layout) = new_layout();
    let lease = layout.lease().unwrap();
    assert!(lease.path().starts_with(layout.root()));
    assert!(layout.stray_files().unwrap().is_empty());
    let report = fsck(&layout).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    gc(&layout, &no_grace()).unwrap();
    assert!(lease.path().exists());
    let path = lease.path().to_path_buf();
    drop(lease);
    assert!(!path.exists());
    assert!(
        !layout.root().join(CACHE_DIR).exists(),
        "a lease left a trace"
    );
}

/// Opening, reading and checking a layout leave no lease (nor anything else) behind.
#[test]
fn reading_takes_no_lease() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let opened = DirLayout::open(layout.root()).unwrap();
    opened.resolve("v1").unwrap();
    fsck(&opened).unwrap();
    assert!(!layout.root().join(CACHE_DIR).join(LEASES_DIR).exists());
}
