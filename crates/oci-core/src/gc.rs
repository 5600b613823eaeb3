//! Garbage collection: remove the blobs nothing live refers to.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::capability::{BlobListing, BlobRemoval, ExclusiveLock, StrayKind};
use crate::{ContentKind, Error, Location, Result, Store, graph, walk};

/// How [`gc`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Only blobs (and temp files) older than this are removed, so what another process has
    /// written but not yet tagged survives.
    pub grace: Duration,
    /// List what would go; change nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

/// What [`gc`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Unreferenced blobs removed, with their sizes.
    pub removed: Vec<(Digest, u64)>,
    /// Blobs that are live.
    pub live: usize,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub too_young: usize,
    /// Stale temp files removed.
    pub temp_files_removed: Vec<Location>,
}

/// Marks from every index entry, recursively, keeps every manifest whose `subject` is live (and
/// what it refers to), and sweeps the rest that is older than the grace period (and than the
/// oldest write in flight, [`BlobRemoval::writes_in_flight_since`]), along with stale temp
/// files where the store is a layout. Runs under the store's exclusive lock, so no
/// tag lands between mark and sweep.
///
/// Needs [`BlobListing`], [`BlobRemoval`] and [`ExclusiveLock`]: a store without them is
/// refused before anything is read.
pub fn gc(store: &dyn Store, options: &GcOptions) -> Result<GcReport> {
    let (listing, removal, lock) = capabilities(store, "collect garbage")?;
    let mut report = GcReport::default();
    let mut outcome = Ok(());
    lock.run_exclusive(&mut || {
        outcome = mark_and_sweep(store, listing, removal, options).map(|r| report = r);
        Ok(())
    })?;
    outcome.map(|()| report)
}

/// What gc and [`remove_blob`] need of a store, or the error naming what it lacks.
fn capabilities<'s>(
    store: &'s dyn Store,
    to: &str,
) -> Result<(
    &'s dyn BlobListing,
    &'s dyn BlobRemoval,
    &'s dyn ExclusiveLock,
)> {
    let missing = |what: &str| {
        Error::unsupported(
            store.location(),
            format!("cannot {to}: this store cannot {what}"),
        )
    };
    let listing = store
        .blob_listing()
        .ok_or_else(|| missing("list its blobs"))?;
    let removal = store
        .blob_removal()
        .ok_or_else(|| missing("remove blobs"))?;
    let lock = store
        .exclusive_lock()
        .ok_or_else(|| missing("lock out index changes"))?;
    Ok((listing, removal, lock))
}

/// Everything gc keeps: what the index reaches, and the referrers of that, to a fixpoint.
fn live_set(store: &dyn Store, stored: &[Digest]) -> Result<HashSet<Digest>> {
    let index = store.index()?;
    let mut live = HashSet::new();
    mark(store, index.manifests().iter().cloned(), &mut live)?;
    let candidates = referrer_candidates(store, stored, &live);
    keep_referrers(store, candidates, &mut live)?;
    Ok(live)
}

/// The index entries that keep `digest` from gc: those it is reachable from, through what gc
/// follows (manifests, indexes, and the referrers it keeps). Empty when gc would take it.
pub fn users_of(store: &dyn Store, digest: Digest) -> Result<Vec<Descriptor>> {
    let (listing, _, _) = capabilities(store, "tell what uses a blob")?;
    let stored = listing.list_blobs()?;
    if !live_set(store, &stored)?.contains(&digest) {
        return Ok(Vec::new());
    }
    let candidates = referrer_candidates(store, &stored, &HashSet::new());
    // Which entries: the same walk from each alone.
    let mut users = Vec::new();
    for entry in store.index()?.manifests() {
        let mut reached = HashSet::new();
        mark(store, std::iter::once(entry.clone()), &mut reached)?;
        keep_referrers(store, candidates.clone(), &mut reached)?;
        if reached.contains(&digest) {
            users.push(entry.clone());
        }
    }
    Ok(users)
}

/// Removes the blob `digest` unless gc would keep it ([`users_of`]): refused with
/// [`Error::BlobInUse`] naming the entries that use it. Runs under the store's exclusive lock,
/// so no entry that uses it is added between the check and the removal.
pub fn remove_blob(store: &dyn Store, digest: Digest) -> Result<()> {
    let (_, removal, lock) = capabilities(store, "remove a blob")?;
    let mut outcome = Ok(());
    lock.run_exclusive(&mut || {
        outcome = users_of(store, digest).and_then(|users| {
            if users.is_empty() {
                return removal.remove_blob(digest);
            }
            let names: Vec<String> = users
                .iter()
                .map(|entry| match crate::index::ref_name(entry) {
                    Some(name) => format!("ref \"{}\"", crate::printable(name)),
                    None => format!("the untagged entry {}", entry.digest()),
                })
                .collect();
            Err(Error::BlobInUse {
                digest,
                users: names.join(", "),
            })
        });
        Ok(())
    })?;
    outcome
}

fn mark_and_sweep(
    store: &dyn Store,
    listing: &dyn BlobListing,
    removal: &dyn BlobRemoval,
    options: &GcOptions,
) -> Result<GcReport> {
    // Older means last modified at or before this. A write still in flight may not have
    // tagged what it wrote yet: whatever the grace, nothing it can have written goes.
    let mut cutoff = SystemTime::now()
        .checked_sub(options.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if let Some(in_flight) = removal.writes_in_flight_since()? {
        cutoff = cutoff.min(in_flight);
    }
    let is_old = |modified: Option<SystemTime>| modified.is_none_or(|m| m <= cutoff);
    let stored = listing.list_blobs()?;
    let live = live_set(store, &stored)?;

    let mut report = GcReport {
        live: stored.iter().filter(|d| live.contains(*d)).count(),
        ..GcReport::default()
    };
    // Decided in full before anything goes: a blob that cannot be judged stops gc with
    // nothing removed.
    let mut doomed = Vec::new();
    for digest in stored.into_iter().filter(|d| !live.contains(d)) {
        if !is_old(removal.blob_modified(digest)?) {
            report.too_young += 1;
            continue;
        }
        // Gone since the listing (another gc): nothing to do.
        if let Some(size) = store.stat(ContentKind::Blob, digest)? {
            doomed.push((digest, size));
        }
    }
    if options.dry_run {
        report.removed = doomed;
    } else {
        // Checked again as it goes: a writer may have re-put it since (blob puts take no lock).
        let candidates: Vec<Digest> = doomed.iter().map(|(digest, _)| *digest).collect();
        let removed: HashSet<Digest> = removal
            .remove_stale_blobs(&candidates, cutoff)?
            .into_iter()
            .collect();
        for (digest, size) in doomed {
            if removed.contains(&digest) {
                report.removed.push((digest, size));
            } else {
                report.too_young += 1;
            }
        }
    }
    if let Some(files) = store.layout_files() {
        for stray in files.stray_files()? {
            if stray.kind == StrayKind::Temporary && is_old(stray.modified) {
                if !options.dry_run {
                    files.remove_stray(&stray)?;
                }
                report.temp_files_removed.push(stray.location);
            }
        }
    }
    Ok(report)
}

/// Adds everything reachable from `roots` to `live`. A live manifest or index that is stored
/// but cannot be followed (unreadable, over the size limit, not parseable) stops gc: sweeping
/// then would remove the blobs it refers to.
fn mark(
    store: &dyn Store,
    roots: impl Iterator<Item = Descriptor>,
    live: &mut HashSet<Digest>,
) -> Result<()> {
    let mut pending: Vec<Descriptor> = roots.collect();
    // Kept apart from `live`: a blob first met under a media type that cannot have
    // references (a layer, say) may be named as a manifest further on, and must then be read.
    let mut walked = HashSet::new();
    while let Some(descriptor) = pending.pop() {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            continue;
        };
        live.insert(digest);
        if !graph::may_have_references(descriptor.media_type().as_ref()) || !walked.insert(digest) {
            continue;
        }
        pending.extend(children(store, &descriptor, digest)?);
    }
    Ok(())
}

/// What a live blob refers to. Blobs of JSON types that are not manifests (configs, say) may
/// simply not parse as one; a manifest or index must.
fn children(store: &dyn Store, descriptor: &Descriptor, digest: Digest) -> Result<Vec<Descriptor>> {
    let media_type = descriptor.media_type().to_string();
    if !graph::may_have_references(&media_type) {
        return Ok(Vec::new());
    }
    let location = store.location().of_content(digest);
    // Read as stored, whatever size the descriptor claims: what gc keeps depends on what is
    // there.
    let references = store
        .read_document(ContentKind::of(&media_type), digest, None)
        .and_then(|bytes| walk::references(&bytes).map_err(|e| Error::json(&location, e)));
    match references {
        Ok(refs) => Ok(refs.children),
        // Nothing stored, nothing to keep (fsck reports the missing blob).
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) if walk::is_manifest_like(&media_type) => Err(Error::InvalidLayout {
            location,
            reason: format!(
                "cannot follow live {media_type} {digest} ({}): gc removes nothing until it is \
                 repaired or untagged",
                crate::fsck::error_chain(&e)
            ),
        }),
        Err(_) => Ok(Vec::new()),
    }
}

/// The stored blobs not in `live` that are manifests with a subject: (referrer, subject).
fn referrer_candidates(
    store: &dyn Store,
    stored: &[Digest],
    live: &HashSet<Digest>,
) -> Vec<(Digest, Digest)> {
    stored
        .iter()
        .filter(|d| !live.contains(*d))
        .filter_map(|d| {
            let bytes = graph::read_if_json_object(store, *d).ok()??;
            let subject = walk::references(&bytes).ok()?.subject?;
            Some((*d, Digest::try_from(subject.digest()).ok()?))
        })
        .collect()
}

/// Keeps the `candidates` (see [`referrer_candidates`]) whose subject is live, until nothing
/// changes: a signature of an SBOM of a live image stays too.
fn keep_referrers(
    store: &dyn Store,
    mut candidates: Vec<(Digest, Digest)>,
    live: &mut HashSet<Digest>,
) -> Result<()> {
    loop {
        let (kept, rest): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(_, subject)| live.contains(subject));
        if kept.is_empty() {
            return Ok(());
        }
        for (referrer, _) in kept {
            // It parsed as a manifest with a subject when it became a candidate.
            let bytes = store.read_document(ContentKind::Blob, referrer, None)?;
            live.insert(referrer);
            if let Ok(refs) = walk::references(&bytes) {
                mark(store, refs.children.into_iter(), live)?;
            }
        }
        candidates = rest;
    }
}
