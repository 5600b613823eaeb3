//! Copying an image, or anything else a descriptor roots, from one store to another.

use std::collections::HashSet;

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::limits::MAX_MANIFEST_SIZE;
use crate::{ContentKind, Error, Result, Store, attribute_reads, graph, walk};

/// What [`copy_image`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Blobs and documents written to the destination.
    pub blobs_copied: usize,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Blobs and documents the destination already had.
    pub blobs_present: usize,
}

/// One piece of content to copy, in the order it is pushed.
struct Node {
    descriptor: Descriptor,
    digest: Digest,
    /// The document's bytes, read (and verified) while walking; `None` for a blob, which is
    /// streamed when its turn comes.
    document: Option<Vec<u8>>,
}

/// Copies everything `root` refers to, recursively, from `src` to `dst`, verifying each piece
/// on the way. Content `dst` already has is not copied again, nor read. Index entries are not
/// touched: name the result with [`Store::tag`].
///
/// Content is pushed children first (layers and configs, then the manifests that name them,
/// then the indexes that name those), so a store that checks references on arrival (a
/// registry) never sees a manifest before what it names.
///
/// What is followed is what gc keeps: the references of manifests and indexes, and of any JSON
/// blob that parses as one ([`graph::may_have_references`]; ggcr stores manifests under
/// `application/vnd.oci.descriptor.v1+json`).
pub fn copy_image(src: &dyn Store, dst: &dyn Store, root: &Descriptor) -> Result<CopyReport> {
    let nodes = plan(src, root)?;
    let mut report = CopyReport::default();
    for node in nodes {
        let kind = ContentKind::of_descriptor(&node.descriptor);
        if dst.contains(kind, node.digest)? {
            report.blobs_present += 1;
            continue;
        }
        match &node.document {
            Some(bytes) => dst.push(&node.descriptor, &mut &bytes[..])?,
            None => {
                // The destination checks what arrives against the descriptor. A failed read is
                // the source's, and the message names it there, not the destination.
                let reader = src.fetch(kind, node.digest, Some(node.descriptor.size()))?;
                let mut reader = attribute_reads(reader, src.location().of_content(node.digest));
                dst.push(&node.descriptor, &mut reader)?;
            }
        }
        report.blobs_copied += 1;
        report.bytes_copied += node.descriptor.size();
    }
    Ok(report)
}

/// Everything under `root`, in push order: each document after everything it refers to.
fn plan(src: &dyn Store, root: &Descriptor) -> Result<Vec<Node>> {
    enum Visit {
        // Boxed: a descriptor is large, and most of the stack is these.
        Enter(Box<Descriptor>),
        /// Everything the innermost open document refers to is planned: it comes next.
        Leave,
    }
    let mut nodes: Vec<Node> = Vec::new();
    // (digest, read as a document): a blob first met as a plain blob may be named as a
    // manifest further on, and must then be read for its references.
    let mut planned: HashSet<(Digest, bool)> = HashSet::new();
    let mut in_progress: HashSet<Digest> = HashSet::new();
    let mut stack = vec![Visit::Enter(Box::new(root.clone()))];
    // Documents whose children are being planned, innermost last.
    let mut open: Vec<Node> = Vec::new();
    while let Some(visit) = stack.pop() {
        match visit {
            Visit::Leave => {
                let node = open
                    .pop()
                    .expect("every Leave follows the Enter that opened it");
                in_progress.remove(&node.digest);
                nodes.push(node);
            }
            Visit::Enter(descriptor) => {
                let descriptor = *descriptor;
                let digest = Digest::try_from(descriptor.digest())?;
                let media_type = descriptor.media_type().to_string();
                let size = descriptor.size();
                let manifest_like = walk::is_manifest_like(&media_type);
                if manifest_like && size > MAX_MANIFEST_SIZE {
                    return Err(Error::InvalidLayout {
                        location: src.location().of_content(digest),
                        reason: format!(
                            "manifest {digest} claims {size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"
                        ),
                    });
                }
                let document = graph::may_have_references(&media_type) && size <= MAX_MANIFEST_SIZE;
                if !planned.insert((digest, document)) || in_progress.contains(&digest) {
                    continue;
                }
                if !document {
                    nodes.push(Node {
                        descriptor,
                        digest,
                        document: None,
                    });
                    continue;
                }
                let bytes = graph::read_described(src, &descriptor)?;
                let children = match walk::references(&bytes) {
                    Ok(refs) => refs.children,
                    Err(e) if manifest_like => {
                        return Err(Error::json(src.location().of_content(digest), e));
                    }
                    // Any other JSON blob (a config) that is not a document refers to nothing.
                    Err(_) => Vec::new(),
                };
                in_progress.insert(digest);
                open.push(Node {
                    descriptor,
                    digest,
                    document: Some(bytes),
                });
                stack.push(Visit::Leave);
                stack.extend(
                    children
                        .into_iter()
                        .rev()
                        .map(|child| Visit::Enter(Box::new(child))),
                );
            }
        }
    }
    Ok(dedupe(nodes))
}

/// A digest planned both as a blob and as a document is pushed once, in its first place.
fn dedupe(nodes: Vec<Node>) -> Vec<Node> {
    let mut seen = HashSet::new();
    nodes
        .into_iter()
        .filter(|node| seen.insert(node.digest))
        .collect()
}
