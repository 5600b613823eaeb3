//! Copying an image, or anything else a descriptor roots, from one store to another.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    /// Blobs the destination took from another of its repositories without their bytes
    /// being sent ([`Store::mount_from`]).
    pub blobs_mounted: usize,
    /// What happened to each piece, in push order.
    pub items: Vec<CopiedItem>,
}

impl CopyReport {
    /// Adds what another copy did.
    pub fn absorb(&mut self, other: CopyReport) {
        self.blobs_copied += other.blobs_copied;
        self.bytes_copied += other.bytes_copied;
        self.blobs_present += other.blobs_present;
        self.blobs_mounted += other.blobs_mounted;
        self.items.extend(other.items);
    }
}

/// What happened to one piece of content in a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedItem {
    /// The content.
    pub descriptor: Descriptor,
    /// What was done with it.
    pub outcome: CopyOutcome,
}

/// What was done with one piece of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOutcome {
    /// Its bytes were sent.
    Copied,
    /// The destination had it.
    Present,
    /// The destination took it from elsewhere without its bytes.
    Mounted,
}

/// Told how a copy goes, from several threads.
pub trait CopyProgress: Sync {
    /// A blob of `size` bytes starts being sent.
    fn start(&self, digest: Digest, size: u64) {
        let _ = (digest, size);
    }

    /// `bytes` more of `digest` were read from the source.
    fn advance(&self, digest: Digest, bytes: u64) {
        let _ = (digest, bytes);
    }

    /// `digest` is done (sent, found present or mounted).
    fn finish(&self, digest: Digest, outcome: CopyOutcome) {
        let _ = (digest, outcome);
    }
}

/// How [`copy_image_with`] runs.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    /// Blobs sent at once (at least one). Documents go one by one after what they name.
    pub jobs: usize,
    /// Told how the copy goes.
    pub progress: Option<&'a dyn CopyProgress>,
    /// Set to stop the copy: no blob starts after it is set, and a blob being sent fails at
    /// its next read.
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for CopyOptions<'_> {
    fn default() -> Self {
        CopyOptions {
            jobs: 1,
            progress: None,
            cancel: None,
        }
    }
}

impl std::fmt::Debug for CopyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

/// One piece of content to copy, in the order it is pushed.
struct Node {
    descriptor: Descriptor,
    digest: Digest,
    /// The document's bytes, read (and verified) while walking; `None` for a blob, which is
    /// streamed when its turn comes.
    document: Option<Vec<u8>>,
}

/// How often a blob whose sending was cut (the connection, not the content) is sent again
/// from the start, read again from the source.
const SEND_ATTEMPTS: usize = 3;

/// Copies everything `root` refers to, recursively, from `src` to `dst`, one blob at a time:
/// [`copy_image_with`] with the default options.
pub fn copy_image(src: &dyn Store, dst: &dyn Store, root: &Descriptor) -> Result<CopyReport> {
    copy_image_with(src, dst, root, &CopyOptions::default())
}

/// Copies everything `root` refers to, recursively, from `src` to `dst`, verifying each piece
/// on the way. Content `dst` already has is neither sent nor read; content `dst` can take
/// from another of its repositories is mounted ([`Store::mount_from`]). Index entries are not
/// touched: name the result with [`Store::tag`] once this returned.
///
/// Content is pushed children first: the blobs (layers, and configs and other leaves),
/// `options.jobs` at a time, then the manifests that name them, then the indexes that name
/// those; so a store that checks references on arrival (a registry) never sees a manifest
/// before what it names, and a copy that fails leaves no manifest naming what is missing.
/// A blob whose sending is cut (the connection, not the content) is sent again from the
/// start, a bounded number of times.
///
/// What is followed is what gc keeps: the references of manifests and indexes, and of any JSON
/// blob that parses as one ([`graph::may_have_references`]; ggcr stores manifests under
/// `application/vnd.oci.descriptor.v1+json`).
pub fn copy_image_with(
    src: &dyn Store,
    dst: &dyn Store,
    root: &Descriptor,
    options: &CopyOptions<'_>,
) -> Result<CopyReport> {
    let nodes = plan(src, root)?;
    let (blobs, documents): (Vec<Node>, Vec<Node>) =
        nodes.into_iter().partition(|node| node.document.is_none());
    let report = Mutex::new(CopyReport::default());
    send_all(src, dst, &blobs, options, &report)?;
    for node in &documents {
        cancelled(options, dst, node.digest)?;
        let outcome = send(src, dst, node, options)?;
        record(&report, node, outcome, options);
    }
    Ok(report
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// Sends `blobs` on `options.jobs` threads; the first error stops the others.
fn send_all(
    src: &dyn Store,
    dst: &dyn Store,
    blobs: &[Node],
    options: &CopyOptions<'_>,
    report: &Mutex<CopyReport>,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || {
        loop {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(node) = blobs.get(i) else {
                return;
            };
            let result =
                cancelled(options, dst, node.digest).and_then(|()| send(src, dst, node, options));
            match result {
                Ok(outcome) => record(report, node, outcome, options),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    first_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_or_insert(e);
                    return;
                }
            }
        }
    };
    let jobs = options.jobs.clamp(1, blobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 1..jobs {
            scope.spawn(worker);
        }
        worker();
    });
    match first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// What a cancelled copy fails with, as the cause of its error. Not an
/// `io::ErrorKind::Interrupted` error: by `Read`'s convention that one means "read again", so
/// every read loop on the way (`read_to_end`, `io::copy`, the writers' own) would retry it for
/// ever, spinning instead of stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted: the copy was cancelled")
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(cancelled: Cancelled) -> io::Error {
        io::Error::other(cancelled)
    }
}

fn cancelled(options: &CopyOptions<'_>, dst: &dyn Store, digest: Digest) -> Result<()> {
    if options.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(Error::io(
            dst.location().of_content(digest),
            Cancelled.into(),
        ));
    }
    Ok(())
}

fn record(
    report: &Mutex<CopyReport>,
    node: &Node,
    outcome: CopyOutcome,
    options: &CopyOptions<'_>,
) {
    let mut report = report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match outcome {
        CopyOutcome::Copied => {
            report.blobs_copied += 1;
            report.bytes_copied += node.descriptor.size();
        }
        CopyOutcome::Present => report.blobs_present += 1,
        CopyOutcome::Mounted => report.blobs_mounted += 1,
    }
    report.items.push(CopiedItem {
        descriptor: node.descriptor.clone(),
        outcome,
    });
    if let Some(progress) = options.progress {
        progress.finish(node.digest, outcome);
    }
}

/// Copies one piece: nothing when `dst` has it, a mount when it can, else its bytes.
fn send(
    src: &dyn Store,
    dst: &dyn Store,
    node: &Node,
    options: &CopyOptions<'_>,
) -> Result<CopyOutcome> {
    let kind = ContentKind::of_descriptor(&node.descriptor);
    if dst.contains(kind, node.digest)? {
        return Ok(CopyOutcome::Present);
    }
    // A config is read as a document too, but it is a blob like the layers: mounted (or
    // cloned, or linked) like them, rather than sent again from memory.
    if kind == ContentKind::Blob
        && let Some(outcome) = dst.mount_from(&node.descriptor, src)?
    {
        return Ok(outcome);
    }
    if let Some(bytes) = &node.document {
        dst.push(&node.descriptor, &mut &bytes[..])?;
        return Ok(CopyOutcome::Copied);
    }
    let size = node.descriptor.size();
    let mut attempt = 1;
    loop {
        if let Some(progress) = options.progress {
            progress.start(node.digest, size);
        }
        // The destination checks what arrives against the descriptor (so the source's own
        // check would hash the blob a second time). A failed read is the source's, and the
        // message names it there, not the destination.
        let reader = src.fetch_unverified(kind, node.digest, Some(size))?;
        let reader = Observed {
            inner: reader,
            digest: node.digest,
            options,
        };
        let at_source = src.location().of_content(node.digest);
        let mut reader = attribute_reads(reader, at_source.clone());
        match dst.push(&node.descriptor, &mut reader) {
            Ok(()) => return Ok(CopyOutcome::Copied),
            Err(e) if attempt < SEND_ATTEMPTS && is_cut(&e, &at_source) => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Whether a failed push was a cut connection on the destination's side: the content may go
/// through when sent again. A failed read of the source (a truncated archive, a download
/// that could not resume) is not: reading it again fails the same way, and a destination
/// that takes one blob at a time (an archive being written) cannot start the blob again.
fn is_cut(error: &Error, at_source: &crate::Location) -> bool {
    matches!(
        error,
        Error::Io { source, location } if location != at_source && matches!(
            source.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::TimedOut
                | io::ErrorKind::UnexpectedEof
        )
    )
}

/// A source reader that tells the progress what it read and stops when the copy is
/// cancelled.
struct Observed<'a, R> {
    inner: R,
    digest: Digest,
    options: &'a CopyOptions<'a>,
}

impl<R: Read> Read for Observed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .options
            .cancel
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(Cancelled.into());
        }
        let n = self.inner.read(buf)?;
        if let Some(progress) = self.options.progress {
            progress.advance(self.digest, n as u64);
        }
        Ok(n)
    }
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
