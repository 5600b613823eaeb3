//! Checking a layout: structure, metadata, and every blob reachable from the index.

use std::collections::{HashMap, HashSet};
use std::io;

use oci_digest::Digest;
use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::Value;

use crate::capability::{LayoutFiles, StrayKind};
use crate::limits::MAX_MANIFEST_SIZE;
use crate::ref_name::is_valid_ref_name;
use crate::{ContentKind, Error, MetadataFile, Result, Store, graph, index, printable, seed, walk};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The layout is broken: content missing or wrong, metadata invalid.
    Error,
    /// Worth knowing, not corruption: debris of interrupted writes, blobs an exported partial
    /// image leaves out.
    Warning,
}

/// One problem, naming the digest or file it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// The digest or file concerned.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
}

/// What [`fsck`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    /// Every problem, in the order found.
    pub findings: Vec<Finding>,
    /// Blobs read and verified.
    pub blobs_checked: usize,
    /// Their bytes.
    pub bytes_checked: u64,
}

impl FsckReport {
    /// True when no finding is an error.
    pub fn is_clean(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    fn error(&mut self, subject: impl ToString, problem: impl Into<String>) {
        self.push(Severity::Error, subject, problem);
    }

    fn warning(&mut self, subject: impl ToString, problem: impl Into<String>) {
        self.push(Severity::Warning, subject, problem);
    }

    #[expect(
        clippy::needless_pass_by_value,
        reason = "call sites pass digests, paths and literals"
    )]
    fn push(&mut self, severity: Severity, subject: impl ToString, problem: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            subject: subject.to_string(),
            problem: problem.into(),
        });
    }
}

/// Where a descriptor was found, which decides how bad its absence is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// An `index.json` entry.
    Entry,
    /// A manifest listed by an index: exports of one platform (`ctr images export`) leave
    /// the others out, so a missing one is a warning.
    IndexChild,
    /// A manifest's config or layer, or an artifact's blob.
    Part,
    /// A referrer's subject, which may legitimately be absent.
    Subject,
}

/// What reading a blob once told us.
#[derive(Clone)]
enum BlobState {
    Present { size: u64 },
    Missing,
    Broken(String),
}

/// Checks a store: every descriptor reachable from its index (index → nested indexes →
/// manifests → config, layers, subject: present, size and digest match, JSON documents parse
/// as their media type says) and ref names; and, where the store is a layout
/// ([`LayoutFiles`]), `oci-layout`, `blobs/`, `index.json` as a file, and stray files.
/// Unknown media types are not errors. Fails only when the store cannot be read at all.
pub fn fsck(store: &dyn Store) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let entries = match store.layout_files() {
        Some(files) => {
            check_image_layout(files, &mut report);
            if !files.has_blobs_dir()? {
                report.error(
                    "blobs/",
                    "missing (the image-layout spec requires it, even when empty)",
                );
            }
            match check_index(files, &mut report) {
                Some(idx) => idx.manifests().clone(),
                None => Vec::new(),
            }
        }
        None => store.index()?.manifests().clone(),
    };
    for descriptor in &entries {
        if let Some(name) = index::ref_name(descriptor).filter(|n| !is_valid_ref_name(n)) {
            report.error(
                format!("ref \"{}\"", printable(name)),
                "invalid ref name (image-spec annotation grammar)",
            );
        }
    }
    let judged = walk_and_verify(store, &entries, &mut report)?;
    if let Some(files) = store.layout_files() {
        check_strays(files, &judged, &mut report)?;
    }
    Ok(report)
}

/// Checks one image (or index) of a store and everything it refers to: the form fsck takes
/// for a store too large to walk whole, such as a registry repository.
pub fn fsck_image(store: &dyn Store, root: &Descriptor) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    walk_and_verify(store, std::slice::from_ref(root), &mut report)?;
    Ok(report)
}

/// Reports the files that are not part of the layout; `judged` are the digests the walk
/// already reported on.
fn check_strays(
    files: &dyn LayoutFiles,
    judged: &HashSet<Digest>,
    report: &mut FsckReport,
) -> Result<()> {
    for stray in files.stray_files()? {
        let subject = printable(&stray.location.to_string()).into_owned();
        match stray.kind {
            StrayKind::Temporary => report.warning(
                subject,
                "leftover temp file of an interrupted write (gc removes it)",
            ),
            StrayKind::NotADigest => report.error(
                subject,
                "file under blobs/ whose name is not a valid digest",
            ),
            StrayKind::Other => report.warning(subject, "not a layout file"),
            // Reachable, it was reported by its digest already.
            StrayKind::NotRegular(digest) if judged.contains(&digest) => {}
            StrayKind::NotRegular(_) => report.error(
                subject,
                "not a regular file under a blob's name (a FIFO, device, socket, directory or \
                 link): no blob; gc leaves it",
            ),
        }
    }
    Ok(())
}

fn check_image_layout(files: &dyn LayoutFiles, report: &mut FsckReport) {
    let layout = files
        .read_metadata(MetadataFile::ImageLayout)
        .and_then(|bytes| {
            serde_json::from_slice::<oci_spec::image::OciLayout>(&bytes)
                .map_err(|e| Error::json(std::path::Path::new(crate::IMAGE_LAYOUT_FILE), e))
        });
    match layout {
        Ok(layout) if layout.image_layout_version() == seed::IMAGE_LAYOUT_VERSION => {}
        Ok(layout) => report.error(
            "oci-layout",
            format!(
                "imageLayoutVersion is {:?}, not {:?}",
                layout.image_layout_version(),
                seed::IMAGE_LAYOUT_VERSION
            ),
        ),
        Err(e) if e.is_not_found() => report.error("oci-layout", "missing"),
        Err(e) => report.error("oci-layout", error_chain(&e)),
    }
}

/// Checks `index.json` strictly, then returns it as a lenient reader sees it.
fn check_index(
    files: &dyn LayoutFiles,
    report: &mut FsckReport,
) -> Option<oci_spec::image::ImageIndex> {
    let bytes = match files.read_metadata(MetadataFile::Index) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => {
            report.error("index.json", "missing");
            return None;
        }
        // Over the size limit, not a regular file, unreadable: a finding like any other.
        Err(e) => {
            report.error("index.json", error_chain(&e));
            return None;
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            report.error("index.json", format!("not JSON: {e}"));
            return None;
        }
    };
    // Parsed once: a large index.json is not held twice.
    drop(bytes);
    match value.get("schemaVersion").and_then(Value::as_u64) {
        Some(2) => {}
        other => report.error("index.json", format!("schemaVersion is {other:?}, not 2")),
    }
    match value.get("manifests") {
        Some(Value::Array(_)) => {}
        Some(Value::Null) => report.error("index.json", "\"manifests\" is null (read as empty)"),
        None => report.error("index.json", "no \"manifests\" (read as empty)"),
        Some(_) => report.error("index.json", "\"manifests\" is not an array"),
    }
    match index::parse_index_value(value) {
        Ok(idx) => Some(idx),
        Err(e) => {
            report.error(
                "index.json",
                format!("does not parse as an image index: {e}"),
            );
            None
        }
    }
}

/// An error and its causes, as one line: findings are read by people, and the cause is the
/// useful part of an I/O error.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Returns the digests it judged.
fn walk_and_verify(
    store: &dyn Store,
    entries: &[Descriptor],
    report: &mut FsckReport,
) -> Result<HashSet<Digest>> {
    let mut states: HashMap<Digest, BlobState> = HashMap::new();
    let mut checked: HashSet<(Digest, u64, bool)> = HashSet::new();
    let mut pending: Vec<(Descriptor, Edge)> = entries
        .iter()
        .rev()
        .map(|d| (d.clone(), Edge::Entry))
        .collect();
    while let Some((descriptor, edge)) = pending.pop() {
        let digest = match Digest::try_from(descriptor.digest()) {
            Ok(digest) => digest,
            Err(e) => {
                report.warning(descriptor.digest(), format!("not checked: {e}"));
                continue;
            }
        };
        let is_document = graph::may_have_references(descriptor.media_type().as_ref());
        if !checked.insert((digest, descriptor.size(), is_document)) {
            continue;
        }
        let state = states
            .entry(digest)
            .or_insert_with(|| verify_content(store, &descriptor, digest, report))
            .clone();
        match state {
            BlobState::Missing => match edge {
                Edge::IndexChild => report.warning(
                    digest,
                    "missing manifest listed by an index (a partial export?)",
                ),
                Edge::Subject => report.warning(digest, "missing subject of a referrer"),
                Edge::Entry | Edge::Part => report.error(digest, "missing blob"),
            },
            BlobState::Broken(problem) => report.error(digest, problem),
            BlobState::Present { size } => {
                if size != descriptor.size() {
                    report.error(
                        digest,
                        format!(
                            "size mismatch: descriptor says {} bytes, blob has {size}",
                            descriptor.size()
                        ),
                    );
                    continue;
                }
                if is_document && size > MAX_MANIFEST_SIZE {
                    if walk::is_manifest_like(descriptor.media_type().as_ref()) {
                        report.error(
                            digest,
                            format!(
                                "manifest of {size} bytes, over the {MAX_MANIFEST_SIZE} byte limit: not followed"
                            ),
                        );
                    }
                } else if is_document {
                    let bytes = graph::read_described(store, &descriptor)?;
                    check_document(digest, descriptor.media_type().as_ref(), &bytes, report);
                    if let Ok(refs) = walk::references(&bytes) {
                        let child_edge =
                            if walk::is_index_like(&document_media_type(&bytes, &descriptor)) {
                                Edge::IndexChild
                            } else {
                                Edge::Part
                            };
                        pending.extend(refs.children.into_iter().rev().map(|c| (c, child_edge)));
                        pending.extend(refs.subject.map(|s| (s, Edge::Subject)));
                    }
                }
            }
        }
    }
    Ok(states.into_keys().collect())
}

fn document_media_type(bytes: &[u8], descriptor: &Descriptor) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| descriptor.media_type().to_string())
}

/// Reads content through once, hashing it.
fn verify_content(
    store: &dyn Store,
    descriptor: &Descriptor,
    digest: Digest,
    report: &mut FsckReport,
) -> BlobState {
    let kind = ContentKind::of_descriptor(descriptor);
    let size = match store.stat(kind, digest) {
        Ok(Some(size)) => size,
        Ok(None) => return BlobState::Missing,
        Err(e) => return BlobState::Broken(error_chain(&e)),
    };
    // Hashed here whatever the store's options say: checking is what fsck is for.
    let result =
        crate::store::fetch_verified(store, kind, digest, Some(size)).and_then(|mut reader| {
            crate::copy_stream(&mut reader, &mut io::sink())
                .map_err(|e| Error::io(store.location().of_content(digest), e.into_inner()))
        });
    match result {
        Ok(n) => {
            report.blobs_checked += 1;
            report.bytes_checked += n;
            BlobState::Present { size }
        }
        Err(Error::UnexpectedDigest { actual, .. }) => {
            BlobState::Broken(format!("content hashes to {actual}"))
        }
        Err(e) => BlobState::Broken(error_chain(&e)),
    }
}

/// A manifest or index must parse as its media type says.
fn check_document(digest: Digest, media_type: &str, bytes: &[u8], report: &mut FsckReport) {
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) if walk::is_manifest_like(media_type) => {
            return report.error(digest, format!("{media_type} is not JSON: {e}"));
        }
        Err(_) => return,
    };
    index::platform_keys(&mut value, index::PlatformKeys::FromSpec);
    let parsed = if walk::is_index_like(media_type) {
        serde_json::from_value::<oci_spec::image::ImageIndex>(value).map(drop)
    } else if walk::is_manifest_like(media_type)
        && media_type != "application/vnd.oci.artifact.manifest.v1+json"
    {
        serde_json::from_value::<oci_spec::image::ImageManifest>(value).map(drop)
    } else {
        Ok(())
    };
    if let Err(e) = parsed {
        report.error(digest, format!("does not parse as {media_type}: {e}"));
    }
}
