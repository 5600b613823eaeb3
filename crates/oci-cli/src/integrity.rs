//! fsck, gc, attach and referrers: parse, call `oci_core`, print.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use oci_core::oci_spec::image::Descriptor;
use oci_core::referrers::ArtifactFile;
use oci_core::{
    Digest, Location, Store, describe, fsck as check, gc as collect, printable, referrers as refs,
};
use serde_json::json;

use crate::commands::{print_json, print_out};
use crate::usage::usage;

/// The digest a subject names: a digest as such, else a ref of the index. An input that is
/// neither says both why it is not a digest and that no ref has that name.
fn subject_digest(driver: &dyn Store, subject: &str) -> Result<Digest> {
    let parse_error = match Digest::parse(subject) {
        Ok(digest) => return Ok(digest),
        Err(e) => e,
    };
    match driver.resolve(subject) {
        Ok(descriptor) => Ok(Digest::try_from(descriptor.digest())?),
        Err(oci_core::Error::RefNotFound { location, .. }) if subject.contains(':') => Err(
            anyhow!("{parse_error}, and no ref of that name in {location}"),
        ),
        Err(e) => Err(e.into()),
    }
}

/// The descriptor of a stored subject, read from its blob (not copied from an index entry,
/// which may be stale or wrong): an artifact is attached only to a manifest that is there.
fn subject_descriptor(driver: &dyn Store, subject: &str) -> Result<Descriptor> {
    let digest = subject_digest(driver, subject)?;
    Ok(describe::manifest_descriptor(driver, digest)?)
}

/// The whole store, or with `image` (a ref name, tag or digest) that image and what it
/// refers to.
pub fn fsck(driver: &dyn Store, image: Option<&str>, as_json: bool) -> Result<()> {
    let report = match image {
        Some(image) => {
            let root = oci_image::resolve_target(driver, image)?;
            check::fsck_image(driver, &root)?
        }
        None => check::fsck(driver)?,
    };
    if as_json {
        print_json(&json!({
            "clean": report.is_clean(),
            "blobsChecked": report.blobs_checked,
            "bytesChecked": report.bytes_checked,
            "findings": report.findings,
        }))?;
    } else {
        let mut out = String::new();
        for finding in &report.findings {
            let level = match finding.severity {
                check::Severity::Error => "error",
                check::Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "{level}: {}: {}\n",
                printable(&finding.subject),
                printable(&finding.problem)
            ));
        }
        let errors = report.errors().count();
        out.push_str(&format!(
            "{}: {} blobs ({} bytes) verified, {errors} errors, {} warnings\n",
            driver.location(),
            report.blobs_checked,
            report.bytes_checked,
            report.findings.len() - errors,
        ));
        print_out(&out)?;
    }
    if !report.is_clean() {
        // The findings are the output; the exit code says they include errors.
        std::process::exit(1);
    }
    Ok(())
}

pub fn gc(driver: &dyn Store, dry_run: bool, grace: Duration) -> Result<()> {
    let report = collect::gc(driver, &collect::GcOptions { grace, dry_run })?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    for (digest, size) in &report.removed {
        out.push_str(&format!("{verb} {digest} ({size} bytes)\n"));
    }
    for path in &report.temp_files_removed {
        out.push_str(&format!("{verb} {}\n", printable(&path.to_string())));
    }
    let freed: u64 = report.removed.iter().map(|(_, size)| size).sum();
    out.push_str(&format!(
        "{} blobs live, {} {verb} ({freed} bytes), {} unreferenced but younger than {}\n",
        report.live,
        report.removed.len(),
        report.too_young,
        humantime::format_duration(grace),
    ));
    print_out(&out)
}

pub fn attach(
    driver: &dyn Store,
    subject: &str,
    artifact_type: &str,
    files: &[PathBuf],
    annotations: &[String],
) -> Result<()> {
    oci_core::validate_media_type(artifact_type).map_err(usage)?;
    let subject = subject_descriptor(driver, subject)?;
    let mut parsed = BTreeMap::new();
    for annotation in annotations {
        let Some((key, value)) = annotation.split_once('=') else {
            return Err(usage(anyhow!("annotation {annotation:?} is not KEY=VALUE")));
        };
        parsed.insert(key.to_owned(), value.to_owned());
    }
    let mut artifact_files = Vec::new();
    for path in files {
        let content = File::open(path).with_context(|| format!("{}", path.display()))?;
        let title = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        artifact_files.push(ArtifactFile {
            title,
            source: Location::from(path),
            media_type: "application/octet-stream".to_owned(),
            content: Box::new(content),
        });
    }
    let descriptor = refs::attach(driver, &subject, artifact_type, artifact_files, parsed)?;
    print_out(&format!("{}\n", descriptor.digest()))
}

pub fn referrers(
    driver: &dyn Store,
    subject: &str,
    artifact_type: Option<&str>,
    as_json: bool,
) -> Result<()> {
    if let Some(artifact_type) = artifact_type {
        oci_core::validate_media_type(artifact_type).map_err(usage)?;
    }
    // Only the digest matters: a subject need not be stored to have referrers.
    let digest = subject_digest(driver, subject)?;
    let found = refs::referrers(driver, digest, artifact_type)?;
    if as_json {
        return print_json(&serde_json::to_value(&found)?);
    }
    let out: String = found
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\n",
                printable(&r.digest),
                printable(r.artifact_type.as_deref().unwrap_or("-")),
                r.size
            )
        })
        .collect();
    print_out(&out)
}
