//! fsck, gc and referrers through the library, on directory layouts: what they report, what
//! gc keeps, referrers walking the index without writing anything (counted reads), the index
//! lock that `tag` checks under, cycles and deep chains of indexes, and the bounds on what is
//! read whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use oci_core::fsck::{Severity, fsck};
use oci_core::gc::{GcOptions, gc};
use oci_core::oci_spec::image::{Descriptor, ImageIndex, MediaType};
use oci_core::referrers::{ArtifactFile, referrers};
use oci_core::{
    Algorithm, BlobListing, BlobRemoval, BlobWriter, ContentKind, Digest, Error, ExclusiveLock,
    LayoutFiles, Location, MAX_INDEX_SIZE, Result, Store, StrayKind, copy_image, graph, index,
    seed,
};
use oci_dir::{CACHE_DIR, DirLayout, DirOptions};
use serde_json::{Value, json};

use crate::common::{
    MANIFEST, OCI_INDEX, corpus_copy, digest_of, err, new_layout, new_layout_with, relaxed,
    small_image, snapshot,
};

/// A store that forwards everything to a [`DirLayout`], counting content reads and, when told
/// to, removing one blob at the moment an index change starts: as a gc between `describe`
/// and the lock would. Every method the layout implements is forwarded, capabilities
/// included (a capability left out would make gc or fsck refuse the wrapper, not run
/// without it); the provided ones (`tag`, `put_entry`, `read_document`…) stay as `Store`
/// writes them, over the methods here, so they go through the instrumentation.
struct Instrumented {
    inner: DirLayout,
    content_reads: AtomicUsize,
    remove_on_update: Option<Digest>,
    /// Offer no [`ExclusiveLock`], as a wrapper that forgot it would.
    without_lock: bool,
}

impl Instrumented {
    fn new(inner: DirLayout) -> Instrumented {
        Instrumented {
            inner,
            content_reads: AtomicUsize::new(0),
            remove_on_update: None,
            without_lock: false,
        }
    }

    /// Content reads since the last call.
    fn reads(&self) -> usize {
        self.content_reads.swap(0, Ordering::SeqCst)
    }
}

impl Store for Instrumented {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn stat(&self, kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        self.inner.stat(kind, digest)
    }
    fn fetch(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        self.content_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch(kind, digest, size)
    }
    fn verifies_reads(&self) -> bool {
        self.inner.verifies_reads()
    }
    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        self.inner.push(descriptor, content)
    }
    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        self.inner.begin_blob(algorithm)
    }
    fn index(&self) -> Result<ImageIndex> {
        self.inner.index()
    }
    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        if let Some(victim) = self.remove_on_update {
            seed::delete_blob(&self.inner, victim)?;
        }
        self.inner.put_entries(entries, required)
    }
    fn remove_ref(&self, name: &str) -> Result<bool> {
        self.inner.remove_ref(name)
    }
    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        self.inner.layout_files()
    }
    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        self.inner.blob_listing()
    }
    fn blob_removal(&self) -> Option<&dyn BlobRemoval> {
        self.inner.blob_removal()
    }
    fn exclusive_lock(&self) -> Option<&dyn ExclusiveLock> {
        if self.without_lock {
            None
        } else {
            self.inner.exclusive_lock()
        }
    }
}

fn no_grace() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    }
}

/// The path a location of a directory layout is.
fn path_of(location: &Location) -> PathBuf {
    location
        .as_path()
        .expect("a directory layout names paths")
        .to_path_buf()
}

fn set_age(path: &Path, age: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// fsck
// ---------------------------------------------------------------------------------------------

#[test]
fn fsck_counts_what_it_verifies() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let report = fsck(&layout).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.findings.is_empty());
    assert_eq!(report.blobs_checked, image.digests().len());
    assert_eq!(report.bytes_checked, image.bytes());
    // Each blob is verified once, however many descriptors (and tags) refer to it.
    layout.tag(&image.manifest, "v2").unwrap();
    assert_eq!(fsck(&layout).unwrap().blobs_checked, image.digests().len());
}

/// fsck's job is to hash what is stored: it does so on a handle whose reads do not verify
/// (`verify_reads: false`, for content a user trusts) as well, and finds the corruption.
#[test]
fn fsck_verifies_content_of_a_layout_opened_without_read_verification() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let layer = digest_of(&image.layers[0]);
    let path = layout.root().join(layer.blob_path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let trusting = DirLayout::open_with(
        layout.root(),
        DirOptions {
            verify_reads: false,
            ..DirOptions::default()
        },
    )
    .unwrap();
    for (handle, store) in [("verifying", &layout), ("trusting", &trusting)] {
        let report = fsck(store).unwrap();
        let errors: Vec<_> = report.errors().collect();
        assert_eq!(errors.len(), 1, "{handle}: {report:?}");
        assert_eq!(errors[0].subject, layer.to_string(), "{handle}");
        assert!(
            errors[0].problem.contains("hashes to"),
            "{handle}: {errors:?}"
        );
    }
}

#[test]
fn fsck_reports_a_missing_blobs_directory() {
    let (_tmp, layout) = new_layout();
    assert!(layout.has_blobs_dir().unwrap());
    fs::remove_dir(layout.root().join("blobs")).unwrap();
    assert!(!layout.has_blobs_dir().unwrap());
    let report = fsck(&layout).unwrap();
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].severity, Severity::Error);
    assert_eq!(report.findings[0].subject, "blobs/");
    // A file where the directory should be is no directory either.
    fs::write(layout.root().join("blobs"), b"").unwrap();
    assert!(!layout.has_blobs_dir().unwrap());
}

#[test]
fn fsck_of_an_oversized_index_is_a_finding() {
    let (_tmp, layout) = new_layout();
    let mut bytes = seed::read_index(&layout)
        .map(|idx| index::index_bytes(&idx).unwrap())
        .unwrap();
    bytes.pop();
    bytes.resize(MAX_INDEX_SIZE as usize + 1, b' ');
    bytes.push(b'}');
    fs::write(layout.root().join("index.json"), &bytes).unwrap();
    let report = fsck(&layout).unwrap();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].subject, "index.json");
    assert!(report.findings[0].problem.contains("byte limit"));
    match err(seed::read_index(&layout)) {
        Error::InvalidLayout { location, reason } => {
            assert_eq!(location, Location::Path(layout.root().join("index.json")));
            assert!(reason.contains(&MAX_INDEX_SIZE.to_string()), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // At the limit exactly, it is read.
    bytes.truncate(MAX_INDEX_SIZE as usize - 1);
    bytes.push(b'}');
    fs::write(layout.root().join("index.json"), &bytes).unwrap();
    assert!(seed::read_index(&layout).unwrap().manifests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// gc
// ---------------------------------------------------------------------------------------------

const GC_GARBAGE: &str = "sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0";

#[test]
fn gc_report_of_ggcr_test_gc_index() {
    let (_tmp, layout) = corpus_copy("ggcr-test_gc_index");
    let garbage = Digest::parse(GC_GARBAGE).unwrap();
    let stored: BTreeSet<Digest> = layout.list_blobs().unwrap().into_iter().collect();

    let young = gc(&layout, &GcOptions::default()).unwrap();
    assert_eq!((young.live, young.too_young), (5, 1));
    assert!(young.removed.is_empty());

    let dry = gc(
        &layout,
        &GcOptions {
            grace: Duration::ZERO,
            dry_run: true,
        },
    )
    .unwrap();
    assert_eq!(dry.removed, [(garbage, 114)]);
    assert!(
        layout.contains(ContentKind::Blob, garbage).unwrap(),
        "a dry run removes nothing"
    );

    let report = gc(&layout, &no_grace()).unwrap();
    assert_eq!(report.removed, [(garbage, 114)]);
    assert_eq!((report.live, report.too_young), (5, 0));
    let left: BTreeSet<Digest> = layout.list_blobs().unwrap().into_iter().collect();
    assert_eq!(stored.difference(&left).collect::<Vec<_>>(), [&garbage]);
    assert!(fsck(&layout).unwrap().findings.is_empty());
}

#[test]
fn gc_removes_stale_temp_files_of_blobs_index_and_cache() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    // The cache directory holds leases; a temp file in it is debris as well.
    fs::create_dir(layout.root().join(CACHE_DIR)).unwrap();
    let root = layout.root();
    let temps: Vec<PathBuf> = [
        ".tmp-index",
        "blobs/sha256/.tmp-blob",
        &format!("{CACHE_DIR}/.tmp-cache"),
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    for temp in &temps {
        fs::write(temp, b"debris").unwrap();
    }
    let strays: BTreeMap<PathBuf, StrayKind> = layout
        .stray_files()
        .unwrap()
        .into_iter()
        .map(|s| (path_of(&s.location), s.kind))
        .collect();
    assert_eq!(
        strays,
        temps
            .iter()
            .map(|t| (t.clone(), StrayKind::Temporary))
            .collect()
    );
    let report = gc(&layout, &GcOptions::default()).unwrap();
    assert!(report.temp_files_removed.is_empty(), "young ones stay");
    set_age(&temps[0], Duration::from_secs(7200));
    let report = gc(&layout, &GcOptions::default()).unwrap();
    assert_eq!(
        report.temp_files_removed,
        [Location::Path(temps[0].clone())]
    );
    let report = gc(&layout, &no_grace()).unwrap();
    let removed: Vec<PathBuf> = report.temp_files_removed.iter().map(path_of).collect();
    assert_eq!(removed, temps[1..]);
    assert!(layout.stray_files().unwrap().is_empty());
    assert!(report.removed.is_empty(), "the image is live");
}

/// A store that does not offer the lock gc needs (here a wrapper that does not forward it) is
/// refused before anything is read or removed, with an error that says what is missing.
#[test]
fn gc_refuses_a_store_without_the_exclusive_lock() {
    let (_tmp, layout) = new_layout();
    let garbage = seed::write_blob(&layout, b"garbage").unwrap();
    let mut forgetful = Instrumented::new(layout.clone());
    forgetful.without_lock = true;
    let error = err(gc(&forgetful, &no_grace()));
    assert!(matches!(error, Error::Unsupported { .. }), "{error:?}");
    assert!(
        error.to_string().contains("cannot lock out index changes"),
        "{error}"
    );
    assert_eq!(forgetful.reads(), 0);
    assert!(layout.contains(ContentKind::Blob, garbage).unwrap());
    // With it, the same gc runs.
    forgetful.without_lock = false;
    assert_eq!(gc(&forgetful, &no_grace()).unwrap().removed, [(garbage, 7)]);
}

#[test]
fn gc_stops_below_a_live_manifest_it_cannot_parse() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    // A manifest that refers to the image's blobs but does not parse (a negative size).
    let broken = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": image.config,
        "layers": [{"mediaType": "application/octet-stream", "digest": image.layers[0].digest(), "size": -1}],
    });
    let bytes = serde_json::to_vec(&broken).unwrap();
    let digest = seed::write_blob(&layout, &bytes).unwrap();
    let descriptor = Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest);
    layout.tag(&descriptor, "broken").unwrap();
    let before = layout.list_blobs().unwrap();
    match err(gc(&layout, &no_grace())) {
        Error::InvalidLayout { location, reason } => {
            assert_eq!(location, layout.location().of_content(digest));
            assert!(reason.contains("gc removes nothing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(layout.list_blobs().unwrap(), before);
}

#[test]
fn remove_stale_blobs_judges_the_age_with_the_name_taken_away() {
    let (_tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"unreferenced").unwrap();
    let path = layout.root().join(digest.blob_path());
    let cutoff = SystemTime::now() - Duration::from_secs(3600);
    let removes = |layout: &DirLayout| {
        !layout
            .remove_stale_blobs(&[digest], cutoff)
            .unwrap()
            .is_empty()
    };
    // Young: given back under its name, same inode.
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
    assert!(!removes(&layout));
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap()),
        inode
    );
    // Old: gone. A re-put makes it young again (the writer side of the same protocol).
    set_age(&path, Duration::from_secs(7200));
    seed::write_blob(&layout, b"unreferenced").unwrap();
    assert!(!removes(&layout));
    set_age(&path, Duration::from_secs(7200));
    assert!(removes(&layout));
    assert!(!path.exists());
    // Missing: nothing to do. And never a `.tmp-gc-*` name left behind.
    assert!(!removes(&layout));
    assert!(crate::common::temp_debris(layout.root()).is_empty());
    // A blob put after gc took it is simply stored again.
    seed::write_blob(&layout, b"unreferenced").unwrap();
    assert_eq!(seed::read_blob(&layout, digest).unwrap(), b"unreferenced");
}

#[test]
fn read_if_json_object_reads_only_what_can_be_a_manifest() {
    let (_tmp, layout) = new_layout();
    let layer = seed::write_blob(&layout, &[0x1f, 0x8b, 8, 0, b'{']).unwrap();
    let array = seed::write_blob(&layout, b"[1]").unwrap();
    let empty = seed::write_blob(&layout, b"").unwrap();
    let spaced = seed::write_blob(&layout, b" \n\t {\"subject\": null}").unwrap();
    // Whitespace longer than the first read still finds the object behind it.
    let mut padded = vec![b' '; 100 << 10];
    padded.extend_from_slice(b"{}");
    let padded_digest = seed::write_blob(&layout, &padded).unwrap();
    for digest in [layer, array, empty] {
        assert_eq!(graph::read_if_json_object(&layout, digest).unwrap(), None);
    }
    assert_eq!(
        graph::read_if_json_object(&layout, spaced)
            .unwrap()
            .as_deref(),
        Some(&b" \n\t {\"subject\": null}"[..])
    );
    assert_eq!(
        graph::read_if_json_object(&layout, padded_digest).unwrap(),
        Some(padded)
    );
}

#[test]
fn remove_stale_blobs_removes_exactly_the_old_ones_of_a_batch() {
    let (_tmp, layout) = new_layout();
    let cutoff = SystemTime::now() - Duration::from_secs(3600);
    let mut old = Vec::new();
    let mut young = Vec::new();
    for i in 0..40 {
        let digest = seed::write_blob(&layout, format!("blob {i}").as_bytes()).unwrap();
        if i % 3 == 0 {
            young.push(digest);
        } else {
            set_age(
                &layout.root().join(digest.blob_path()),
                Duration::from_secs(7200),
            );
            old.push(digest);
        }
    }
    let blake3 = layout
        .write_blob(Algorithm::Blake3, b"other algorithm")
        .unwrap();
    set_age(
        &layout.root().join(blake3.blob_path()),
        Duration::from_secs(7200),
    );
    old.push(blake3);
    let missing = seed::write_blob(&layout, b"gone before gc").unwrap();
    seed::delete_blob(&layout, missing).unwrap();

    let mut batch: Vec<Digest> = old.iter().chain(&young).copied().collect();
    batch.push(missing);
    let mut removed = layout.remove_stale_blobs(&batch, cutoff).unwrap();
    removed.sort();
    old.sort();
    assert_eq!(removed, old);
    assert_eq!(layout.list_blobs().unwrap().len(), young.len());
    for digest in young {
        assert!(layout.contains(ContentKind::Blob, digest).unwrap());
    }
    assert!(crate::common::temp_debris(layout.root()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// tag under the index lock
// ---------------------------------------------------------------------------------------------

#[test]
fn tag_fails_when_gc_removes_the_manifest_before_the_index_lock() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let digest = digest_of(&image.manifest);
    let mut racing = Instrumented::new(layout.clone());
    racing.remove_on_update = Some(digest);
    let before = fs::read(layout.root().join("index.json")).unwrap();
    let error = err(racing.tag(&image.manifest, "v1"));
    match &error {
        Error::NotFound { digest: d, .. } => assert_eq!(*d, Some(digest)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // put_entry, which attach uses, checks the same way.
    let other = small_image(&layout);
    racing.remove_on_update = Some(digest_of(&other.manifest));
    assert!(err(racing.put_entry(&other.manifest)).is_not_found());
    // Without the race, the same calls succeed.
    let third = small_image(&layout);
    racing.remove_on_update = None;
    racing.tag(&third.manifest, "v1").unwrap();
    assert_eq!(
        layout.resolve("v1").unwrap().digest(),
        third.manifest.digest()
    );
}

/// Issue #12, item 3: a writer that names what it wrote requires all of it, under the lock.
#[test]
fn put_entries_requiring_fails_when_a_part_went_before_the_index_lock() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let parts: Vec<Digest> = std::iter::once(&image.config)
        .chain(&image.layers)
        .map(digest_of)
        .collect();
    let layer = digest_of(&image.layers[1]);
    let mut racing = Instrumented::new(layout.clone());
    racing.remove_on_update = Some(layer);
    let before = fs::read(layout.root().join("index.json")).unwrap();
    let tagged = index::with_ref_name(image.manifest.clone(), "v1");
    let error = err(racing.put_entries(std::slice::from_ref(&tagged), &parts));
    assert!(error.to_string().contains(&layer.to_string()), "{error}");
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // put_entry requires the manifest only: a partial image can still be named.
    racing.remove_on_update = None;
    racing.put_entry(&tagged).unwrap();
    // With every part stored, it succeeds.
    let whole = small_image(&layout);
    let parts: Vec<Digest> = std::iter::once(&whole.config)
        .chain(&whole.layers)
        .map(digest_of)
        .collect();
    let tagged = index::with_ref_name(whole.manifest.clone(), "v2");
    racing
        .put_entries(std::slice::from_ref(&tagged), &parts)
        .unwrap();
    assert_eq!(
        layout.resolve("v2").unwrap().digest(),
        whole.manifest.digest()
    );
}

#[test]
fn attach_records_the_artifact_only_if_it_is_still_stored() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    // The artifact manifest's digest is only known once written, so remove every blob the
    // update could be about: the image's manifest stays (it is what the artifact refers to).
    let probe = oci_core::referrers::attach(
        &layout,
        &image.manifest,
        "application/example",
        vec![],
        BTreeMap::new(),
    )
    .unwrap();
    let mut racing = Instrumented::new(layout.clone());
    racing.remove_on_update = Some(digest_of(&probe));
    let before = fs::read(layout.root().join("index.json")).unwrap();
    let error = err(oci_core::referrers::attach(
        &racing,
        &image.manifest,
        "application/example",
        vec![],
        BTreeMap::new(),
    ));
    assert!(error.is_not_found(), "{error}");
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// referrers
// ---------------------------------------------------------------------------------------------

/// There is no referrers cache any more: every call walks the index (it reads the manifests
/// again), follows a change of the index at once, and writes nothing into the layout. A cache
/// file an older version left is neither read nor touched.
#[test]
fn referrers_walk_the_index_each_time_and_write_nothing() {
    let (_tmp, layout) = corpus_copy("regclient-testrepo");
    let counted = Instrumented::new(layout.clone());
    let before = snapshot(layout.root());
    let v2 = digest_of(&layout.resolve("v2").unwrap());
    let first = referrers(&counted, v2, None).unwrap();
    assert_eq!(first.len(), 2);
    assert!(counted.reads() > 10, "the first call walks the manifests");
    let second = referrers(&counted, v2, None).unwrap();
    assert_eq!(second, first);
    assert!(counted.reads() > 10, "the second call walks them again");
    let v3 = digest_of(&layout.resolve("v3").unwrap());
    assert_eq!(referrers(&counted, v3, None).unwrap().len(), 2);
    assert_eq!(
        referrers(&counted, v2, Some("application/example.signature"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        snapshot(layout.root()),
        before,
        "referrers wrote into the layout"
    );
    assert!(!layout.root().join(CACHE_DIR).exists());

    // After a change of index.json, the same walk.
    counted.remove_ref("b1").unwrap();
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
    assert!(counted.reads() > 10);
    assert!(!layout.root().join(CACHE_DIR).exists());

    // An old cache file, garbage or not, changes nothing and is left as it is.
    fs::create_dir(layout.root().join(CACHE_DIR)).unwrap();
    let cache = layout.root().join(CACHE_DIR).join("referrers.json");
    fs::write(&cache, b"not json").unwrap();
    let before = snapshot(layout.root());
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
    assert!(counted.reads() > 10);
    assert_eq!(snapshot(layout.root()), before);
}

#[test]
fn attach_then_referrers_through_the_library() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let annotations = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let artifact = oci_core::referrers::attach(
        &layout,
        &image.manifest,
        "application/spdx+json",
        vec![ArtifactFile {
            title: "sbom.json".into(),
            source: Location::Path("sbom.json".into()),
            media_type: "application/spdx+json".into(),
            content: Box::new(&b"{}"[..]),
        }],
        annotations.clone(),
    )
    .unwrap();
    let found = referrers(&layout, digest_of(&image.manifest), None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest, artifact.digest().to_string());
    assert_eq!(
        found[0].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    assert_eq!(found[0].size, artifact.size());
    assert_eq!(found[0].annotations, annotations);
    // gc keeps it and its blobs; fsck finds nothing.
    assert!(gc(&layout, &no_grace()).unwrap().removed.is_empty());
    assert!(fsck(&layout).unwrap().findings.is_empty());
}

#[test]
fn a_cache_directory_that_leads_outside_is_not_used() {
    let (tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(&image.manifest, "v1").unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("referrers.json"), b"{}").unwrap();
    std::os::unix::fs::symlink(&outside, layout.root().join(CACHE_DIR)).unwrap();
    assert!(
        referrers(&layout, digest_of(&image.manifest), None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(fs::read(outside.join("referrers.json")).unwrap(), b"{}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    let strays = layout.stray_files().unwrap();
    assert_eq!(strays.len(), 1);
    assert_eq!(strays[0].kind, StrayKind::Other);
    assert!(
        gc(&layout, &no_grace())
            .unwrap()
            .temp_files_removed
            .is_empty()
    );
    assert!(layout.root().join(CACHE_DIR).is_symlink());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Cycles and depth
// ---------------------------------------------------------------------------------------------

/// Stores `content` under the name of `label`'s digest: a blob that does not hash to its name.
fn forge(layout: &DirLayout, label: &str, content: &Value) -> Digest {
    let digest = Algorithm::Sha256.digest(label.as_bytes());
    fs::create_dir_all(layout.root().join("blobs/sha256")).unwrap();
    fs::write(
        layout.root().join(digest.blob_path()),
        serde_json::to_vec(content).unwrap(),
    )
    .unwrap();
    digest
}

fn index_of(children: &[Digest]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children
            .iter()
            .map(|d| json!({"mediaType": OCI_INDEX, "digest": d.to_string(), "size": 100}))
            .collect::<Vec<_>>(),
    })
}

#[test]
fn cycles_of_indexes_end_every_walk() {
    let (_tmp, layout) = new_layout();
    let a = Algorithm::Sha256.digest(b"a");
    let b = Algorithm::Sha256.digest(b"b");
    let mut with_subject = index_of(&[b]);
    with_subject["subject"] = json!({"mediaType": OCI_INDEX, "digest": b.to_string(), "size": 100});
    forge(&layout, "a", &with_subject);
    forge(&layout, "b", &index_of(&[a, b]));
    let size = layout.stat(ContentKind::Blob, a).unwrap().unwrap();
    layout
        .put_entry(&index::with_ref_name(
            Descriptor::new(MediaType::ImageIndex, size, a),
            "loop",
        ))
        .unwrap();

    let report = fsck(&layout).unwrap();
    assert_eq!(report.errors().count(), 1, "{report:?}");
    assert_eq!(report.findings[0].subject, a.to_string());

    // Documents are read verified: a forged one cannot be followed, so gc stops there,
    // naming it, and removes nothing; referrers does not take it for a referrer.
    let before = layout.list_blobs().unwrap();
    match err(gc(&layout, &no_grace())) {
        Error::InvalidLayout { location, reason } => {
            assert_eq!(location, layout.location().of_content(a));
            assert!(reason.contains("gc removes nothing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(layout.list_blobs().unwrap(), before);
    assert!(referrers(&layout, b, None).unwrap().is_empty());

    // Read as content the user trusts (no verification), the cycle is followed, and ends.
    let trusting = DirLayout::open_with(
        layout.root(),
        DirOptions {
            verify_reads: false,
            ..DirOptions::default()
        },
    )
    .unwrap();
    let collected = gc(&trusting, &no_grace()).unwrap();
    assert!(collected.removed.is_empty());
    assert_eq!(collected.live, 2);
    assert_eq!(referrers(&trusting, b, None).unwrap().len(), 1);

    let (_tmp2, target) = new_layout();
    let entry = layout.resolve("loop").unwrap();
    assert!(matches!(
        err(copy_image(&layout, &target, &entry)),
        Error::UnexpectedDigest { .. }
    ));
    assert!(target.list_blobs().unwrap().is_empty());
}

/// A chain of indexes, each listing the next, two thousand deep: honest content, so every
/// walk follows it to the end. A recursive walk would need a frame per level, more than a
/// test thread's 2 MiB stack holds at this depth; these are loops over a work list.
#[test]
fn a_chain_of_two_thousand_nested_indexes() {
    const DEPTH: usize = 2_000;
    let (_tmp, layout) = new_layout_with(relaxed());
    let leaf =
        seed::write_json_blob(&layout, &json!({"leaf": true}), MediaType::ImageConfig).unwrap();
    let subject = leaf.clone();
    let mut next = seed::write_json_blob(
        &layout,
        &json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": leaf,
            "layers": [],
            "subject": subject,
        }),
        MediaType::ImageManifest,
    )
    .unwrap();
    for _ in 0..DEPTH {
        let mut index = index::empty_index();
        index.set_manifests(vec![next]);
        next = seed::write_json_blob(&layout, &index, MediaType::ImageIndex).unwrap();
    }
    layout.tag(&next, "deep").unwrap();
    let report = fsck(&layout).unwrap();
    assert!(report.findings.is_empty(), "{:?}", &report.findings[..1]);
    assert_eq!(report.blobs_checked, DEPTH + 2);
    let collected = gc(&layout, &no_grace()).unwrap();
    assert_eq!((collected.live, collected.removed.len()), (DEPTH + 2, 0));
    assert_eq!(
        referrers(&layout, digest_of(&subject), None).unwrap().len(),
        1
    );
    let (_tmp2, target) = new_layout_with(relaxed());
    let copied = copy_image(&layout, &target, &next).unwrap();
    assert_eq!(copied.blobs_copied, DEPTH + 2);
}

/// A copy reads the source without its own check (the destination hashes what it stores),
/// so a blob that rotted in the source must still be refused by the destination: nothing of
/// it stored, nothing tagged, whichever layer it is.
#[test]
fn copy_image_refuses_a_layer_that_rotted_in_the_source_and_stores_none_of_it() {
    for trusting_source in [false, true] {
        let (_tmp, layout) = new_layout();
        let image = small_image(&layout);
        let rotten = Digest::try_from(image.layers[1].digest()).unwrap();
        let path = layout.root().join(rotten.blob_path());
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let source = DirLayout::open_with(
            layout.root(),
            DirOptions {
                verify_reads: !trusting_source,
                ..DirOptions::default()
            },
        )
        .unwrap();
        let (_tmp2, target) = new_layout();
        let error = err(copy_image(&source, &target, &image.manifest));
        assert!(
            matches!(&error, Error::UnexpectedDigest { expected, .. } if *expected == rotten),
            "{error:?}"
        );
        assert!(!target.contains(ContentKind::Blob, rotten).unwrap());
        assert!(
            !target
                .contains(
                    ContentKind::Blob,
                    Digest::try_from(image.manifest.digest()).unwrap()
                )
                .unwrap()
        );
        assert!(target.index().unwrap().manifests().is_empty());
    }
}

#[test]
fn copy_image_refuses_absurd_sizes() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    let (_tmp2, target) = new_layout();
    // A layer descriptor of u64::MAX bytes: the copy fails verifying it, and stores nothing
    // unverified.
    let mut absurd = image.layers[0].clone();
    absurd.set_size(u64::MAX);
    let error = err(copy_image(&layout, &target, &absurd));
    assert!(matches!(error, Error::UnexpectedSize { .. }), "{error:?}");
    assert!(target.list_blobs().unwrap().is_empty());
    // A manifest descriptor that claims more than a manifest may be is refused before reading.
    let mut manifest = image.manifest.clone();
    manifest.set_size(u64::MAX);
    assert!(matches!(
        err(copy_image(&layout, &target, &manifest)),
        Error::InvalidLayout { .. }
    ));
}
