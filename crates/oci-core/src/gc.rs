//! Garbage collection: remove the blobs nothing live refers to.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::driver::{ImageDriver, StrayKind};
use crate::layout_file::LayoutFile;
use crate::store::MAX_MANIFEST_SIZE;
use crate::{Result, graph, seed, walk};

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
    pub temp_files_removed: Vec<PathBuf>,
}

/// Marks from every `index.json` entry, recursively, keeps every manifest whose `subject` is
/// live (and what it refers to), and sweeps the rest that is older than the grace period,
/// along with stale temp files. Runs under the layout's exclusive lock, so no tag lands
/// between mark and sweep.
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
    let now = SystemTime::now();
    let is_old = |modified: Option<SystemTime>| {
        modified.is_none_or(|m| now.duration_since(m).unwrap_or_default() >= options.grace)
    };
    let index = seed::read_index(driver)?;
    let stored = driver.list_blobs()?;
    let mut live = HashSet::new();
    mark(driver, index.manifests().iter().cloned(), &mut live);
    keep_referrers(driver, &stored, &mut live);

    let mut report = GcReport {
        live: stored.iter().filter(|d| live.contains(*d)).count(),
        ..GcReport::default()
    };
    for digest in stored.into_iter().filter(|d| !live.contains(d)) {
        if !is_old(driver.blob_modified(digest)?) {
            report.too_young += 1;
            continue;
        }
        let size = driver.blob_size(digest)?;
        if !options.dry_run {
            match driver.remove(LayoutFile::Blob(digest)) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        report.removed.push((digest, size));
    }
    for stray in driver.stray_files()? {
        if stray.kind == StrayKind::Temporary && is_old(stray.modified) {
            if !options.dry_run {
                driver.remove_stray(&stray)?;
            }
            report.temp_files_removed.push(stray.path);
        }
    }
    Ok(report)
}

/// Adds everything reachable from `roots` to `live`.
fn mark(
    driver: &dyn ImageDriver,
    roots: impl Iterator<Item = Descriptor>,
    live: &mut HashSet<Digest>,
) {
    let mut pending: Vec<Descriptor> = roots.collect();
    while let Some(descriptor) = pending.pop() {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            continue;
        };
        if !live.insert(digest) {
            continue;
        }
        if let Some(refs) = graph::references_of(driver, &descriptor) {
            pending.extend(refs.children);
        }
    }
}

/// Keeps unreferenced manifests whose subject is live (OCI 1.1 referrers), until nothing
/// changes: a signature of an SBOM of a live image stays too.
fn keep_referrers(driver: &dyn ImageDriver, stored: &[Digest], live: &mut HashSet<Digest>) {
    let mut candidates: Vec<(Digest, Digest)> = stored
        .iter()
        .filter(|d| !live.contains(*d))
        .filter(|d| {
            driver
                .blob_size(**d)
                .is_ok_and(|size| size <= MAX_MANIFEST_SIZE)
        })
        .filter_map(|d| {
            let bytes = graph::read_document(driver, *d).ok()?;
            let subject = walk::references(&bytes).ok()?.subject?;
            Some((*d, Digest::try_from(subject.digest()).ok()?))
        })
        .collect();
    loop {
        let (kept, rest): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(_, subject)| live.contains(subject));
        if kept.is_empty() {
            return;
        }
        for (referrer, _) in kept {
            let bytes = graph::read_document(driver, referrer).unwrap_or_default();
            live.insert(referrer);
            if let Ok(refs) = walk::references(&bytes) {
                mark(driver, refs.children.into_iter(), live);
            }
        }
        candidates = rest;
    }
}
