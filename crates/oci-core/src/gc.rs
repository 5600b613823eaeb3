//! Garbage collection: remove the blobs nothing live refers to.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::driver::{ImageDriver, StrayKind};
use crate::store::MAX_MANIFEST_SIZE;
use crate::{Error, Result, graph, seed, walk};

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
    /// Unreferenced blobs kept because they are younger than the grace period, or than the
    /// oldest write in flight.
    pub too_young: usize,
    /// Stale temp files removed.
    pub temp_files_removed: Vec<PathBuf>,
}

/// Marks from every `index.json` entry, recursively, keeps every manifest whose `subject` is
/// live (and what it refers to), and sweeps the rest that is older than the grace period (and
/// than the oldest write in flight, [`ImageDriver::writes_in_flight_since`]), along with stale
/// temp files. Runs under the layout's exclusive lock, so no tag lands between mark and sweep.
pub fn gc(driver: &dyn ImageDriver, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let mut outcome = Ok(());
    driver.exclusive(&mut || {
        outcome = mark_and_sweep(driver, options).map(|r| report = r);
        Ok(())
    })?;
    outcome.map(|()| report)
}

fn mark_and_sweep(driver: &dyn ImageDriver, options: &GcOptions) -> Result<GcReport> {
    // Older means last modified at or before this. A write still in flight may not have
    // tagged what it wrote yet: whatever the grace, nothing it can have written goes.
    let mut cutoff = SystemTime::now()
        .checked_sub(options.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if let Some(in_flight) = driver.writes_in_flight_since()? {
        cutoff = cutoff.min(in_flight);
    }
    let is_old = |modified: Option<SystemTime>| modified.is_none_or(|m| m <= cutoff);
    let index = seed::read_index(driver)?;
    let stored = driver.list_blobs()?;
    let strays = driver.stray_files()?;
    // Not blobs (a FIFO under a digest's name): nothing to judge, left for fsck to report.
    let not_regular: HashSet<Digest> = strays
        .iter()
        .filter_map(|stray| match stray.kind {
            StrayKind::NotRegular(digest) => Some(digest),
            _ => None,
        })
        .collect();
    let mut live = HashSet::new();
    mark(driver, index.manifests().iter().cloned(), &mut live)?;
    let referrers = referrer_candidates(driver, &stored, &live);
    keep_referrers(driver, referrers, &mut live)?;

    let mut report = GcReport {
        live: stored.iter().filter(|d| live.contains(*d)).count(),
        ..GcReport::default()
    };
    // Decided in full before anything goes: a blob that cannot be judged (not a regular file,
    // say) stops gc with nothing removed.
    let mut doomed = Vec::new();
    for digest in stored
        .into_iter()
        .filter(|d| !live.contains(d) && !not_regular.contains(d))
    {
        if is_old(driver.blob_modified(digest)?) {
            doomed.push((digest, driver.blob_size(digest)?));
        } else {
            report.too_young += 1;
        }
    }
    if options.dry_run {
        report.removed = doomed;
    } else {
        // Checked again as it goes: a writer may have re-put it since (blob puts take no lock).
        let candidates: Vec<Digest> = doomed.iter().map(|(digest, _)| *digest).collect();
        let removed: HashSet<Digest> = driver
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
    for stray in strays {
        if stray.kind == StrayKind::Temporary && is_old(stray.modified) {
            if !options.dry_run {
                driver.remove_stray(&stray)?;
            }
            report.temp_files_removed.push(stray.path);
        }
    }
    Ok(report)
}

/// The index entries that keep `digest` from gc: those it is reachable from, through what
/// gc follows (manifests, indexes, and the referrers it keeps). Empty when gc would take it.
pub fn users_of(driver: &dyn ImageDriver, digest: Digest) -> Result<Vec<Descriptor>> {
    let index = seed::read_index(driver)?;
    let stored = driver.list_blobs()?;
    let mut live = HashSet::new();
    mark(driver, index.manifests().iter().cloned(), &mut live)?;
    let referrers = referrer_candidates(driver, &stored, &live);
    keep_referrers(driver, referrers.clone(), &mut live)?;
    if !live.contains(&digest) {
        return Ok(Vec::new());
    }
    // Which entries: the same walk from each alone.
    let mut users = Vec::new();
    for entry in index.manifests() {
        let mut reached = HashSet::new();
        mark(driver, std::iter::once(entry.clone()), &mut reached)?;
        keep_referrers(driver, referrers.clone(), &mut reached)?;
        if reached.contains(&digest) {
            users.push(entry.clone());
        }
    }
    Ok(users)
}

/// Removes the blob `digest` unless gc would keep it ([`users_of`]): refused with
/// [`Error::BlobInUse`] naming the entries that use it. Runs under the layout's exclusive
/// lock, so no entry that uses it is added between the check and the removal.
pub fn remove_blob(driver: &dyn ImageDriver, digest: Digest) -> Result<()> {
    let mut outcome = Ok(());
    driver.exclusive(&mut || {
        outcome = users_of(driver, digest).and_then(|users| {
            if users.is_empty() {
                return seed::delete_blob(driver, digest);
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

/// Adds everything reachable from `roots` to `live`. A live manifest or index that is stored
/// but cannot be followed (unreadable, over the size limit, not parseable) stops gc: sweeping
/// then would remove the blobs it refers to.
fn mark(
    driver: &dyn ImageDriver,
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
        pending.extend(children(driver, &descriptor, digest)?);
    }
    Ok(())
}

/// What a live blob refers to. Blobs of JSON types that are not manifests (configs, say) may
/// simply not parse as one; a manifest or index must.
fn children(
    driver: &dyn ImageDriver,
    descriptor: &Descriptor,
    digest: Digest,
) -> Result<Vec<Descriptor>> {
    let media_type = descriptor.media_type().to_string();
    if !graph::may_have_references(&media_type) {
        return Ok(Vec::new());
    }
    let references = driver
        .blob_size(digest)
        .and_then(|size| {
            if size > MAX_MANIFEST_SIZE {
                return Err(Error::InvalidLayout {
                    path: driver.location().join(digest.blob_path()),
                    reason: format!("{size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"),
                });
            }
            graph::read_document(driver, digest)
        })
        .and_then(|bytes| {
            walk::references(&bytes).map_err(|source| Error::Json {
                path: driver.location().join(digest.blob_path()),
                source,
            })
        });
    match references {
        Ok(refs) => Ok(refs.children),
        // Nothing stored, nothing to keep (fsck reports the missing blob).
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) if walk::is_manifest_like(&media_type) => Err(Error::InvalidLayout {
            path: driver.location().join(digest.blob_path()),
            reason: format!(
                "cannot follow live {media_type} {digest} ({e}): gc removes nothing until it is \
                 repaired or untagged"
            ),
        }),
        Err(_) => Ok(Vec::new()),
    }
}

/// The stored blobs not in `live` that are manifests with a subject: (referrer, subject).
fn referrer_candidates(
    driver: &dyn ImageDriver,
    stored: &[Digest],
    live: &HashSet<Digest>,
) -> Vec<(Digest, Digest)> {
    stored
        .iter()
        .filter(|d| !live.contains(*d))
        .filter_map(|d| {
            let bytes = graph::read_if_json_object(driver, *d).ok()??;
            let subject = walk::references(&bytes).ok()?.subject?;
            Some((*d, Digest::try_from(subject.digest()).ok()?))
        })
        .collect()
}

/// Keeps the `candidates` (see [`referrer_candidates`]) whose subject is live, until nothing
/// changes: a signature of an SBOM of a live image stays too.
fn keep_referrers(
    driver: &dyn ImageDriver,
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
            let bytes = graph::read_document(driver, referrer)?;
            live.insert(referrer);
            if let Ok(refs) = walk::references(&bytes) {
                mark(driver, refs.children.into_iter(), live)?;
            }
        }
        candidates = rest;
    }
}
