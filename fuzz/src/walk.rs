//! `manifest_walk`: the reference walker on arbitrary bytes, then fsck, gc and copy_image over
//! an in-memory layout whose blobs, index and references the input chooses.
//!
//! # Input format
//!
//! The input is split at NUL bytes: the first part is `index.json`, each further part (at most
//! [`MAX_SLOTS`]) a blob slot whose first byte is a mode and the rest its content. In the index
//! and in blob contents, `@X` (X a hex digit) stands for slot X's digest and `#X` for its size,
//! so that inputs can refer to each other's blobs without knowing a hash.
//!
//! Mode bit 0 clear: the blob is stored under the digest of its content. Set: under a fixed
//! digest of the slot number, whatever the content — a corrupt blob, and the only way to build
//! a cycle (a manifest listing itself) in content-addressed storage. The mode shifted right by
//! one, modulo 3, picks the algorithm. The seeds use ASCII `0` (sha256, true digest) and `1`
//! (sha256, fixed digest); a mode byte of NUL would read as a separator. A slot that a true-digest slot refers to before it is computed, or that does not
//! exist, resolves to the fixed digest: a missing blob.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use oci_core::gc::{GcOptions, gc};
use oci_core::oci_spec::image::Descriptor;
use oci_core::{LayoutFile, MAX_MANIFEST_SIZE, Store, copy_image, fsck::fsck, graph, walk};
use oci_digest::{Algorithm, Digest};

use crate::MemLayout;

/// The most blob slots an input makes (`@0` … `@f`).
pub const MAX_SLOTS: usize = 16;

/// See the module docs for the input format.
pub fn manifest_walk(data: &[u8]) {
    if let Ok(refs) = walk::references(data) {
        for child in refs.children.iter().chain(&refs.subject) {
            // Digests in descriptors are only strings until parsed; nothing here may panic.
            let _ = Digest::try_from(child.digest());
        }
    }
    // Verified reads, as every store reads by default; then unverified, as a directory layout
    // opened with `verify_reads` off reads: the only way to follow a cycle of references.
    check(&build(data), true);
    check(&build(data).without_read_verification(), false);
}

/// Builds the layout an input describes.
pub(crate) fn build(data: &[u8]) -> MemLayout {
    let mut parts = data.split(|&b| b == 0);
    let index_template = parts.next().unwrap_or_default();
    let slots: Vec<(u8, &[u8])> = parts
        .take(MAX_SLOTS)
        .map(|part| match part.split_first() {
            Some((&mode, content)) => (mode, content),
            None => (0, part),
        })
        .collect();
    let algorithm = |mode: u8| Algorithm::ALL[usize::from(mode >> 1) % Algorithm::ALL.len()];
    let fixed = |i: usize| {
        let mode = slots.get(i).map_or(0, |(mode, _)| *mode);
        algorithm(mode).digest(format!("slot {i}").as_bytes())
    };
    let mut keys: Vec<Digest> = (0..MAX_SLOTS).map(fixed).collect();
    let mut sizes: Vec<u64> = (0..MAX_SLOTS)
        .map(|i| slots.get(i).map_or(0, |(_, content)| content.len() as u64))
        .collect();
    let mut contents = Vec::with_capacity(slots.len());
    for (i, (mode, template)) in slots.iter().enumerate() {
        let content = substitute(template, &keys, &sizes);
        if mode & 1 == 0 {
            keys[i] = algorithm(*mode).digest(&content);
        }
        sizes[i] = content.len() as u64;
        contents.push(content);
    }
    let layout = MemLayout::default();
    layout.insert(
        LayoutFile::ImageLayout,
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    layout.insert(LayoutFile::Index, substitute(index_template, &keys, &sizes));
    for (key, content) in keys.iter().zip(contents) {
        layout.insert(LayoutFile::Blob(*key), content);
    }
    layout
}

/// Replaces `@X` by slot X's digest and `#X` by its size.
fn substitute(template: &[u8], keys: &[Digest], sizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut bytes = template.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        let slot = bytes
            .peek()
            .and_then(|&next| char::from(next).to_digit(16))
            .map(|x| x as usize);
        match (b, slot) {
            (b'@', Some(slot)) => {
                bytes.next();
                write!(out, "{}", keys[slot]).expect("writing to a Vec");
            }
            (b'#', Some(slot)) => {
                bytes.next();
                write!(out, "{}", sizes[slot]).expect("writing to a Vec");
            }
            _ => out.push(b),
        }
    }
    out
}

/// Runs fsck, a dry-run gc and copy_image over `layout`, whose reads are verified or not.
fn check(layout: &MemLayout, verified: bool) {
    let before = layout.snapshot();
    // Everything is readable, so fsck reports findings and never fails.
    let report = fsck(layout).unwrap_or_else(|e| panic!("fsck failed on a readable layout: {e}"));
    let _ = report.is_clean();

    let options = GcOptions {
        grace: Duration::ZERO,
        dry_run: true,
    };
    if let Ok(gc_report) = gc(layout, &options) {
        let stored = before.keys().filter(|f| f.digest().is_some()).count();
        assert_eq!(
            gc_report.live + gc_report.removed.len() + gc_report.too_young,
            stored,
            "gc accounts for every blob"
        );
        let index = layout.index().expect("gc read this index");
        for digest in reachable(&before, index.manifests(), verified) {
            assert!(
                !gc_report.removed.iter().any(|(d, _)| *d == digest),
                "gc would remove {digest}, reachable from the index"
            );
        }
    }
    assert!(
        layout.snapshot() == before,
        "a dry-run gc changed the layout"
    );

    let Ok(index) = layout.index() else {
        return;
    };
    for entry in index.manifests().iter().take(4) {
        let copy = MemLayout::new("mem-copy");
        if copy_image(layout, &copy, entry).is_err() {
            continue;
        }
        let copied = copy.snapshot();
        for (file, bytes) in &copied {
            let digest = file.digest().expect("copy_image writes blobs only");
            assert_eq!(
                digest.algorithm().digest(bytes),
                digest,
                "copy_image wrote an unverified blob"
            );
        }
        // A copy that succeeded holds everything gc would keep for this entry.
        for digest in reachable(&before, std::slice::from_ref(entry), verified) {
            let valid = before
                .get(&LayoutFile::Blob(digest))
                .is_some_and(|bytes| digest.algorithm().digest(bytes) == digest);
            assert!(
                !valid || copied.contains_key(&LayoutFile::Blob(digest)),
                "copy_image of {} succeeded without {digest}, which it refers to",
                entry.digest()
            );
        }
    }
}

/// The model of what is live: every digest reachable from `roots` through children (not
/// subjects), where a blob's references are read whenever any descriptor names it with a
/// media type that may have some ([`graph::may_have_references`]), whatever other
/// descriptors call it, and its stored bytes are within the document size limit and, when
/// reads are `verified`, hash to its digest. Read from the layout's files, not through the
/// store, so that it does not share the store's reading code with what it checks.
fn reachable(
    files: &HashMap<LayoutFile, Vec<u8>>,
    roots: &[Descriptor],
    verified: bool,
) -> HashSet<Digest> {
    let mut digests = HashSet::new();
    let mut walked = HashSet::new();
    let mut pending = roots.to_vec();
    while let Some(descriptor) = pending.pop() {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            continue;
        };
        digests.insert(digest);
        if graph::may_have_references(descriptor.media_type().as_ref())
            && walked.insert(digest)
            && let Some(bytes) = files.get(&LayoutFile::Blob(digest)).filter(|bytes| {
                bytes.len() as u64 <= MAX_MANIFEST_SIZE
                    && (!verified || digest.algorithm().digest(bytes) == digest)
            })
            && let Ok(refs) = walk::references(bytes)
        {
            pending.extend(refs.children);
        }
    }
    digests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/manifest_walk/");
        std::fs::read(format!("{path}{name}")).expect("a committed seed")
    }

    /// The seeds reach deep: the image template is a clean layout that gc keeps whole, so
    /// mutations start from a full walk, not from a parse error.
    #[test]
    fn image_template_builds_a_clean_layout() {
        let layout = build(&seed("template-image-with-referrer"));
        let report = fsck(&layout).expect("fsck");
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.blobs_checked, 3, "manifest, config, layer");
        let options = GcOptions {
            grace: Duration::ZERO,
            dry_run: true,
        };
        let gc_report = gc(&layout, &options).expect("gc");
        assert_eq!(
            gc_report.live, 4,
            "the referrer is kept for its live subject"
        );
        assert!(gc_report.removed.is_empty());
    }

    /// A self-referencing index is stored under a fixed digest. fsck reports it either way.
    /// Read verified, it does not hash to its name, so gc cannot follow it and refuses to run
    /// (a live index it cannot read might hold what it would sweep); read unverified, gc
    /// follows the cycle, terminates, and keeps everything.
    #[test]
    fn self_referencing_index_terminates() {
        for name in [
            "template-self-referencing-index",
            "template-two-index-cycle",
        ] {
            let options = GcOptions {
                grace: Duration::ZERO,
                dry_run: true,
            };
            let layout = build(&seed(name));
            let report = fsck(&layout).expect("fsck");
            assert!(!report.is_clean(), "{name}: a blob under a wrong digest");
            let index = layout.index().expect("the index parses");
            let entry = Digest::try_from(index.manifests()[0].digest()).expect("a digest");
            match gc(&layout, &options) {
                Err(oci_core::Error::InvalidLayout { location, reason }) => {
                    assert_eq!(location, layout.location().of_content(entry), "{name}");
                    assert!(reason.contains("cannot follow live"), "{name}: {reason}");
                }
                other => panic!("{name}: gc over an unreadable live index: {other:?}"),
            }

            let layout = layout.without_read_verification();
            let report = fsck(&layout).expect("fsck");
            // Followed, the cycle's own descriptors are wrong: they give the size of the
            // template, not of the content.
            assert!(!report.is_clean(), "{name}: {:?}", report.findings);
            let gc_report = gc(&layout, &options).expect("gc");
            assert!(gc_report.removed.is_empty(), "{name}");
            assert_eq!(
                gc_report.live,
                layout.snapshot().len() - 2,
                "{name}: every blob is in the cycle"
            );
        }
    }
}
