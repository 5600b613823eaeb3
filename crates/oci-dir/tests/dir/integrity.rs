//! fsck, gc and referrers through the library, on directory layouts: what they report, what
//! gc keeps, the referrers cache (counted reads), the index lock that `tag` checks under,
//! cycles and deep chains of indexes, and the bounds on what is read whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use oci_core::fsck::{Severity, fsck};
use oci_core::gc::{GcOptions, gc};
use oci_core::index::IndexDocument;
use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::referrers::{ArtifactFile, referrers};
use oci_core::{
    Algorithm, BlobWriter, ContentStore, Digest, Error, ImageDriver, LayoutFile, MAX_INDEX_SIZE,
    MetadataFile, Result, StrayFile, StrayKind, copy_image, graph, index, seed,
};
use oci_dir::{CACHE_DIR, DirLayout};
use serde_json::{Value, json};

use crate::common::{
    MANIFEST, OCI_INDEX, corpus_copy, digest_of, err, new_layout, new_layout_with, relaxed,
    small_image,
};

/// A driver that forwards everything to a [`DirLayout`], counting blob reads and, when told
/// to, removing one blob at the moment an index update starts: as a gc between `describe`
/// and the lock would.
struct Instrumented {
    inner: DirLayout,
    blob_reads: AtomicUsize,
    remove_on_update: Option<Digest>,
}

impl Instrumented {
    fn new(inner: DirLayout) -> Instrumented {
        Instrumented {
            inner,
            blob_reads: AtomicUsize::new(0),
            remove_on_update: None,
        }
    }

    fn reads(&self) -> usize {
        self.blob_reads.swap(0, Ordering::SeqCst)
    }
}

impl ImageDriver for Instrumented {
    fn location(&self) -> &Path {
        self.inner.root()
    }
    fn init(&self) -> Result<()> {
        self.inner.init()
    }
    fn reader(&self, file: LayoutFile) -> Result<Box<dyn Read + Send + '_>> {
        if matches!(file, LayoutFile::Blob(_)) {
            self.blob_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.reader(file)
    }
    fn write_file(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        self.inner.write_file(file, contents)
    }
    fn remove(&self, file: LayoutFile) -> Result<()> {
        self.inner.remove(file)
    }
    fn blob_writer(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        self.inner.blob_writer(algorithm)
    }
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        self.inner.list_blobs()
    }
    fn blob_size(&self, digest: Digest) -> Result<u64> {
        self.inner.blob_size(digest)
    }
    fn has_blobs_dir(&self) -> Result<bool> {
        self.inner.has_blobs_dir()
    }
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        if let Some(victim) = self.remove_on_update {
            seed::delete_blob(&self.inner, victim)?;
        }
        self.inner.update_index(edit)
    }
    fn exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.inner.exclusive(work)
    }
    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        self.inner.blob_modified(digest)
    }
    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        self.inner.stray_files()
    }
    fn remove_stray(&self, stray: &StrayFile) -> Result<()> {
        self.inner.remove_stray(stray)
    }
    fn read_cache(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_cache(name)
    }
    fn write_cache(&self, name: &str, contents: &[u8]) -> Result<()> {
        self.inner.write_cache(name, contents)
    }
}

fn no_grace() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    }
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
    layout.tag(image.manifest.clone(), "v1").unwrap();
    let report = fsck(&layout).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.findings.is_empty());
    assert_eq!(report.blobs_checked, image.digests().len());
    assert_eq!(report.bytes_checked, image.bytes());
    // Each blob is verified once, however many descriptors (and tags) refer to it.
    layout.tag(image.manifest.clone(), "v2").unwrap();
    assert_eq!(fsck(&layout).unwrap().blobs_checked, image.digests().len());
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
        Error::InvalidLayout { path, reason } => {
            assert!(path.ends_with("index.json"), "{}", path.display());
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
        ContentStore::has_blob(&layout, garbage).unwrap(),
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
    layout.tag(image.manifest.clone(), "v1").unwrap();
    referrers(&layout, digest_of(&image.manifest), None).unwrap();
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
        .map(|s| (s.path, s.kind))
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
    assert_eq!(report.temp_files_removed, [temps[0].clone()]);
    let report = gc(&layout, &no_grace()).unwrap();
    assert_eq!(report.temp_files_removed, temps[1..]);
    assert!(layout.stray_files().unwrap().is_empty());
    assert!(report.removed.is_empty(), "the image is live");
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
    layout.tag(descriptor, "broken").unwrap();
    let before = layout.list_blobs().unwrap();
    match err(gc(&layout, &no_grace())) {
        Error::InvalidLayout { path, reason } => {
            assert!(path.ends_with(digest.encoded()), "{}", path.display());
            assert!(reason.contains("gc removes nothing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(layout.list_blobs().unwrap(), before);
}

#[test]
fn remove_stale_blob_judges_the_age_with_the_name_taken_away() {
    let (_tmp, layout) = new_layout();
    let digest = seed::write_blob(&layout, b"unreferenced").unwrap();
    let path = layout.root().join(digest.blob_path());
    let cutoff = SystemTime::now() - Duration::from_secs(3600);
    // Young: given back under its name, same inode.
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
    assert!(!layout.remove_stale_blob(digest, cutoff).unwrap());
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap()),
        inode
    );
    // Old: gone. A re-put makes it young again (the writer side of the same protocol).
    set_age(&path, Duration::from_secs(7200));
    seed::write_blob(&layout, b"unreferenced").unwrap();
    assert!(!layout.remove_stale_blob(digest, cutoff).unwrap());
    set_age(&path, Duration::from_secs(7200));
    assert!(layout.remove_stale_blob(digest, cutoff).unwrap());
    assert!(!path.exists());
    // Missing: nothing to do. And never a `.tmp-gc-*` name left behind.
    assert!(!layout.remove_stale_blob(digest, cutoff).unwrap());
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
    let blake3 = seed::write_blob_with(&layout, Algorithm::Blake3, b"other algorithm").unwrap();
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
        assert!(ImageDriver::has_blob(&layout, digest).unwrap());
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
    let error = err(racing.tag(image.manifest.clone(), "v1"));
    match &error {
        Error::NotFound { digest: d, .. } => assert_eq!(*d, Some(digest)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // put_entry, which attach uses, checks the same way.
    let other = small_image(&layout);
    racing.remove_on_update = Some(digest_of(&other.manifest));
    assert!(err(racing.put_entry(other.manifest.clone())).is_not_found());
    // Without the race, the same calls succeed.
    let third = small_image(&layout);
    racing.remove_on_update = None;
    racing.tag(third.manifest.clone(), "v1").unwrap();
    assert_eq!(
        layout.resolve("v1").unwrap().digest(),
        third.manifest.digest()
    );
}

/// Issue #12, item 3: a writer that names what it wrote requires all of it, under the lock.
#[test]
fn put_entry_requiring_fails_when_a_part_went_before_the_index_lock() {
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
    let error = err(racing.put_entry_requiring(tagged.clone(), &parts));
    assert!(error.to_string().contains(&layer.to_string()), "{error}");
    assert_eq!(fs::read(layout.root().join("index.json")).unwrap(), before);
    // put_entry requires the manifest only: a partial image can still be named.
    racing.remove_on_update = None;
    racing.put_entry(tagged.clone()).unwrap();
    // With every part stored, it succeeds.
    let whole = small_image(&layout);
    let parts: Vec<Digest> = std::iter::once(&whole.config)
        .chain(&whole.layers)
        .map(digest_of)
        .collect();
    racing
        .put_entry_requiring(index::with_ref_name(whole.manifest.clone(), "v2"), &parts)
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
    layout.tag(image.manifest.clone(), "v1").unwrap();
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
// referrers and their cache
// ---------------------------------------------------------------------------------------------

#[test]
fn referrers_second_call_reads_no_blob_until_index_json_changes() {
    let (_tmp, layout) = corpus_copy("regclient-testrepo");
    let counted = Instrumented::new(layout.clone());
    let v2 = digest_of(&layout.resolve("v2").unwrap());
    let first = referrers(&counted, v2, None).unwrap();
    assert_eq!(first.len(), 2);
    assert!(counted.reads() > 10, "the first call walks the manifests");
    let second = referrers(&counted, v2, None).unwrap();
    assert_eq!(second, first);
    assert_eq!(counted.reads(), 0, "the second call read a blob");
    // Other subjects and filters come from the same cache.
    let v3 = digest_of(&layout.resolve("v3").unwrap());
    assert_eq!(referrers(&counted, v3, None).unwrap().len(), 2);
    assert_eq!(
        referrers(&counted, v2, Some("application/example.signature"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(counted.reads(), 0);

    // Any change to index.json is a new cache key.
    counted.remove_ref("b1").unwrap();
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
    assert!(counted.reads() > 10, "rebuilt after index.json changed");
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
    assert_eq!(counted.reads(), 0);

    // A cache that is unreadable or garbage is rebuilt, never an error.
    let cache = layout.root().join(CACHE_DIR).join("referrers.json");
    fs::write(&cache, b"not json").unwrap();
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
    assert!(counted.reads() > 0);
    fs::remove_file(&cache).unwrap();
    fs::create_dir(&cache).unwrap();
    assert_eq!(referrers(&counted, v2, None).unwrap(), first);
}

#[test]
fn attach_then_referrers_through_the_library() {
    let (_tmp, layout) = new_layout();
    let image = small_image(&layout);
    layout.tag(image.manifest.clone(), "v1").unwrap();
    let annotations = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let artifact = oci_core::referrers::attach(
        &layout,
        &image.manifest,
        "application/spdx+json",
        vec![ArtifactFile {
            title: "sbom.json".into(),
            source: "sbom.json".into(),
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
    layout.tag(image.manifest.clone(), "v1").unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("referrers.json"), b"{}").unwrap();
    // The tag left a cache directory (holding the previous index); a link takes its place.
    fs::remove_dir_all(layout.root().join(CACHE_DIR)).unwrap();
    std::os::unix::fs::symlink(&outside, layout.root().join(CACHE_DIR)).unwrap();
    assert!(matches!(
        err(layout.read_cache("referrers.json")),
        Error::InvalidLayout { .. }
    ));
    assert!(layout.write_cache("referrers.json", b"[]").is_err());
    assert!(
        referrers(&layout, digest_of(&image.manifest), None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(fs::read(outside.join("referrers.json")).unwrap(), b"{}");
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
    let size = layout.blob_size(a).unwrap();
    layout
        .put_entry(index::with_ref_name(
            Descriptor::new(MediaType::ImageIndex, size, a),
            "loop",
        ))
        .unwrap();

    let report = fsck(&layout).unwrap();
    assert_eq!(report.errors().count(), 1, "{report:?}");
    assert_eq!(report.findings[0].subject, a.to_string());

    let collected = gc(&layout, &no_grace()).unwrap();
    assert!(collected.removed.is_empty());
    assert_eq!(collected.live, 2);

    assert_eq!(referrers(&layout, b, None).unwrap().len(), 1);

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
    layout.tag(next.clone(), "deep").unwrap();
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
