//! A command that only reads never writes into what it reads: what `ls`, `blob get`, `blob ls`,
//! `fsck`, `referrers` and `inspect` do through the library leaves every path, mode, size and
//! mtime of the layout as it was (no cache, no lease, no temp file, no lock file).

use oci_core::gc::{GcOptions, gc};
use oci_core::referrers::referrers;
use oci_core::{
    BlobListing, ContentKind, Digest, LayoutFiles, MetadataFile, Store, describe, fsck::fsck, seed,
    walk,
};
use oci_dir::{CACHE_DIR, DirLayout};

use crate::common::{corpus_copy, read_all, snapshot};

/// Everything a reading command does, on a handle opened the way it opens one.
fn read_everything(layout: &DirLayout) {
    let opened = DirLayout::open(layout.root()).unwrap();
    let store: &dyn Store = &opened;
    let index = store.index().unwrap();
    opened.read_metadata(MetadataFile::Index).unwrap();
    seed::read_image_layout(store).unwrap();
    for entry in index.manifests() {
        let digest = Digest::try_from(entry.digest()).unwrap();
        if let Some(name) = oci_core::index::ref_name(entry) {
            store.resolve(name).unwrap();
        }
        // Broken content is an error here, not a reason to write.
        let _ = store
            .fetch(
                ContentKind::of_descriptor(entry),
                digest,
                Some(entry.size()),
            )
            .map(|reader| read_all(reader).map(drop));
        if walk::is_manifest_like(entry.media_type().as_ref()) {
            let _ = describe::manifest_descriptor(store, digest);
        }
        referrers(store, digest, None).unwrap();
    }
    for digest in opened.list_blobs().unwrap() {
        let _ = seed::read_blob(store, digest);
        store.stat(ContentKind::Blob, digest).unwrap();
    }
    opened.stray_files().unwrap();
    fsck(store).unwrap();
    let dry_run = GcOptions {
        dry_run: true,
        ..GcOptions::default()
    };
    gc(store, &dry_run).unwrap();
}

#[test]
fn reads_write_nothing_into_the_layout() {
    for folder in [
        "regclient-testrepo",
        "ggcr-test_index",
        "containers-image-delete_image_multiple_images",
    ] {
        let (_tmp, layout) = corpus_copy(folder);
        let before = snapshot(layout.root());
        read_everything(&layout);
        assert_eq!(snapshot(layout.root()), before, "{folder}");
        assert!(!layout.root().join(CACHE_DIR).exists(), "{folder}");
    }
}
