//! `copy SRC DST`: parse, call `oci_transport::copy`, print.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use oci_core::{CopyOptions, CopyOutcome, CopyProgress, Digest};
use oci_dir::DirOptions;
use oci_image::platform;
use oci_registry::{Credentials, RegistryOptions};
use oci_transport::{CopyRequest, CopySummary, OpenOptions, StoreName, TagCopy, outcome_name};
use serde_json::json;

use crate::args::RegistryArgs;
use crate::commands::{print_json, println_out};
use crate::usage::usage;

/// Copy one image between layouts, archives and registries.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Where from: `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
    /// `docker-archive:FILE[:NAME:TAG|:@N]` (docker save), `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    /// Out of a docker archive an OCI manifest is made (it keeps none): a new manifest digest,
    /// the same config (image ID) and diff_ids.
    source: std::ffi::OsString,
    /// Where to: the same forms. A layout gets REF, else the source's name; a registry the
    /// tag given (`latest` when none); a docker archive the RepoTag NAME:TAG, else the
    /// source's NAME:TAG if it has one. Into a docker archive: one platform (--platform, else
    /// this machine's), layers uncompressed (so their digests and the manifest's change; the
    /// config, the image ID and the diff_ids stay).
    destination: std::ffi::OsString,
    /// Every platform of an index (the default: the index's digest is kept).
    #[arg(long, conflicts_with = "platform")]
    all: bool,
    /// Every tag of the source (a registry repository's tags; a layout's or archive's ref
    /// names), each under its tag; SRC and DST name no tag, digest or REF. A tag that fails
    /// is reported and the others go on; the exit status is 1 if any failed.
    #[arg(long, conflicts_with_all = ["platform", "all", "digestfile"])]
    all_tags: bool,
    /// Only the image for OS/ARCH[/VARIANT] of an index.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Also copy the artifacts whose subject is the image (signatures, SBOMs), and the images
    /// under cosign's tags for it (`sha256-HEX.sig`, `.att`, `.sbom`).
    #[arg(long)]
    referrers: bool,
    /// Blobs copied at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// USER:PASS for the one side that is a registry.
    #[arg(long, value_name = "USER:PASS")]
    creds: Option<String>,
    /// USER:PASS for the source registry.
    #[arg(long, value_name = "USER:PASS")]
    src_creds: Option<String>,
    /// USER:PASS for the destination registry.
    #[arg(long, value_name = "USER:PASS")]
    dest_creds: Option<String>,
    /// Read registry credentials from FILE only (auth.json or config.json format), not from
    /// $REGISTRY_AUTH_FILE, auth.json and Docker's config.json.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// The credentials file for the source registry.
    #[arg(long, value_name = "FILE")]
    src_authfile: Option<PathBuf>,
    /// The credentials file for the destination registry.
    #[arg(long, value_name = "FILE")]
    dest_authfile: Option<PathBuf>,
    /// Verify the registries' TLS certificates [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Verify the source registry's TLS certificate [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    src_tls_verify: Option<bool>,
    /// Verify the destination registry's TLS certificate [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: Option<bool>,
    /// Speak plain HTTP to the registries.
    #[arg(long)]
    plain_http: bool,
    /// CA certificates (*.crt) and client certificate (NAME.cert, NAME.key) for the one side
    /// that is a registry [default: its directory in ~/.config/containers/certs.d,
    /// /etc/containers/certs.d or /etc/docker/certs.d].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// The source registry's certificate directory (see --cert-dir).
    #[arg(long, value_name = "DIR")]
    src_cert_dir: Option<PathBuf>,
    /// The destination registry's certificate directory (see --cert-dir).
    #[arg(long, value_name = "DIR")]
    dest_cert_dir: Option<PathBuf>,
    /// Into a layout directory on the same filesystem as a source layout: hard-link blobs
    /// instead of cloning and verifying them (trusts the source's bytes; see the README).
    #[arg(long)]
    link: bool,
    /// Write the copied image's digest to FILE.
    #[arg(long, value_name = "FILE")]
    digestfile: Option<PathBuf>,
    /// Print a JSON report of what was copied, found present, and mounted.
    #[arg(long)]
    json: bool,
}

/// Registry options from the flags of one side.
pub(crate) fn registry_options(
    creds: Option<&str>,
    authfile: Option<&Path>,
    tls_verify: Option<bool>,
    plain_http: bool,
) -> Result<RegistryOptions> {
    let credentials = match creds {
        None => Credentials::Stored {
            authfile: authfile.map(Path::to_path_buf),
        },
        Some(creds) => match creds.split_once(':') {
            Some((username, password)) if !username.is_empty() => Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            _ => return Err(usage(anyhow::anyhow!("--creds must be USER:PASS"))),
        },
    };
    Ok(RegistryOptions {
        tls_verify: tls_verify.unwrap_or(true),
        plain_http,
        credentials,
        ..RegistryOptions::default()
    })
}

impl RegistryArgs {
    /// The options these flags ask for.
    pub(crate) fn options(&self) -> Result<RegistryOptions> {
        Ok(RegistryOptions {
            cert_dir: self.cert_dir.clone(),
            ..registry_options(
                self.creds.as_deref(),
                self.authfile.as_deref(),
                self.tls_verify,
                self.plain_http,
            )?
        })
    }
}

pub fn run(args: &CopyArgs, dir: DirOptions) -> Result<()> {
    let parse = if args.all_tags {
        StoreName::parse_whole
    } else {
        StoreName::parse_os
    };
    let source = parse(&args.source).map_err(usage)?;
    let destination = parse(&args.destination).map_err(usage)?;
    let both_registries =
        matches!(source, StoreName::Registry(_)) && matches!(destination, StoreName::Registry(_));
    if args.creds.is_some() && both_registries {
        bail!(usage(anyhow::anyhow!(
            "--creds is for the one side that is a registry; both are: use --src-creds and --dest-creds"
        )));
    }
    // A client certificate is an identity, like a password: not offered to both registries
    // on one word.
    if args.cert_dir.is_some() && both_registries {
        bail!(usage(anyhow::anyhow!(
            "--cert-dir is for the one side that is a registry; both are: use --src-cert-dir and --dest-cert-dir"
        )));
    }
    let platform = args
        .platform
        .as_deref()
        .map(platform::parse)
        .transpose()
        .map_err(usage)?;
    let side = |creds: &Option<String>,
                authfile: &Option<PathBuf>,
                tls: Option<bool>,
                cert_dir: &Option<PathBuf>| {
        Ok::<_, anyhow::Error>(RegistryOptions {
            cert_dir: cert_dir.clone().or_else(|| args.cert_dir.clone()),
            ..registry_options(
                creds.as_deref().or(args.creds.as_deref()),
                authfile.as_deref().or(args.authfile.as_deref()),
                tls.or(args.tls_verify),
                args.plain_http,
            )?
        })
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        // A second Ctrl-C finds the handler set already; the first stops the copy cleanly.
        let _ = ctrlc::set_handler(move || {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let bars = Bars::new();
    let request = CopyRequest {
        platform,
        referrers: args.referrers,
        copy: CopyOptions {
            jobs: usize::from(args.jobs),
            progress: bars.as_ref().map(|b| b as &dyn CopyProgress),
            cancel: Some(&cancel),
        },
        source: OpenOptions {
            dir,
            registry: side(
                &args.src_creds,
                &args.src_authfile,
                args.src_tls_verify,
                &args.src_cert_dir,
            )?,
        },
        destination: OpenOptions {
            dir: DirOptions {
                link_local_blobs: args.link,
                ..dir
            },
            registry: side(
                &args.dest_creds,
                &args.dest_authfile,
                args.dest_tls_verify,
                &args.dest_cert_dir,
            )?,
        },
    };
    if args.all_tags {
        let copies = oci_transport::copy_all_tags(&source, &destination, &request);
        if let Some(bars) = &bars {
            bars.clear();
        }
        let copies = copies.with_context(|| format!("copying {source} to {destination}"))?;
        return report_tags(args, &source, &destination, &copies);
    }
    let summary = oci_transport::copy(&source, &destination, &request);
    if let Some(bars) = &bars {
        bars.clear();
    }
    let summary = summary.with_context(|| format!("copying {source} to {destination}"))?;
    let digest = summary.digest()?;
    if let Some(path) = &args.digestfile {
        std::fs::write(path, digest.to_string()).with_context(|| path.display().to_string())?;
    }
    if !args.json {
        return println_out(&digest.to_string());
    }
    let mut report = summary_json(&summary)?;
    report["source"] = json!(source.to_string());
    report["destination"] = json!(destination.to_string());
    print_json(&report)
}

/// What one image's copy did, as `--json` reports it.
fn summary_json(summary: &CopySummary) -> Result<serde_json::Value> {
    let mut by_outcome: HashMap<&str, Vec<serde_json::Value>> = HashMap::new();
    for item in summary.image.items.iter().chain(&summary.referrers.items) {
        by_outcome
            .entry(outcome_name(item.outcome))
            .or_default()
            .push(json!({
                "digest": item.descriptor.digest().to_string(),
                "mediaType": item.descriptor.media_type().to_string(),
                "size": item.descriptor.size(),
            }));
    }
    let cosign: Vec<serde_json::Value> = summary
        .cosign_tags
        .iter()
        .map(|(tag, descriptor)| json!({"tag": tag, "digest": descriptor.digest().to_string()}))
        .collect();
    Ok(json!({
        "digest": summary.digest()?.to_string(),
        "mediaType": summary.descriptor.media_type().to_string(),
        "tag": summary.tag,
        "bytesCopied": summary.image.bytes_copied + summary.referrers.bytes_copied,
        "copied": by_outcome.remove("copied").unwrap_or_default(),
        "present": by_outcome.remove("present").unwrap_or_default(),
        "mounted": by_outcome.remove("mounted").unwrap_or_default(),
        "cosignTags": cosign,
    }))
}

/// Prints what `copy --all-tags` did: a line `TAG DIGEST` per tag copied (or a JSON report
/// of every tag), each failure on stderr; an error when any failed.
fn report_tags(
    args: &CopyArgs,
    source: &StoreName,
    destination: &StoreName,
    copies: &[TagCopy],
) -> Result<()> {
    let mut failed = Vec::new();
    let mut tags = Vec::with_capacity(copies.len());
    for copy in copies {
        let tag = oci_core::printable(&copy.tag).into_owned();
        match &copy.outcome {
            Ok(summary) => {
                if args.json {
                    tags.push(summary_json(summary)?);
                } else {
                    println_out(&format!("{tag} {}", summary.digest()?))?;
                }
            }
            Err(error) => {
                let mut message = error.to_string();
                let mut cause = std::error::Error::source(error);
                while let Some(next) = cause {
                    message = format!("{message}: {next}");
                    cause = next.source();
                }
                let message = oci_core::printable(&message.replace('\n', " ")).into_owned();
                let _ = writeln!(io::stderr(), "error: tag {tag}: {message}");
                if args.json {
                    tags.push(json!({
                        "tag": copy.tag,
                        "digest": copy.descriptor.digest().to_string(),
                        "error": message,
                    }));
                }
                failed.push(tag);
            }
        }
    }
    if args.json {
        print_json(&json!({
            "source": source.to_string(),
            "destination": destination.to_string(),
            "tags": tags,
        }))?;
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} tags failed: {}",
            failed.len(),
            copies.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// A bar per blob being sent and one for the whole copy, on a terminal only.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    fn new() -> Option<Bars> {
        if !io::stderr().is_terminal() {
            return None;
        }
        let multi = MultiProgress::new();
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("copied {bytes} {bytes_per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(Bars {
            multi,
            total,
            blobs: Mutex::new(HashMap::new()),
        })
    }

    fn clear(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }

    fn blobs(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, ProgressBar>> {
        self.blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl CopyProgress for Bars {
    fn start(&self, digest: Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let short = digest.encoded();
        bar.set_message(short[..12.min(short.len())].to_owned());
        if let Some(old) = self.blobs().insert(digest, bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, digest: Digest, bytes: u64) {
        if let Some(bar) = self.blobs().get(&digest) {
            bar.inc(bytes);
        }
        self.total.inc(bytes);
    }

    fn finish(&self, digest: Digest, outcome: CopyOutcome) {
        if let Some(bar) = self.blobs().remove(&digest) {
            bar.finish_and_clear();
        }
        if outcome != CopyOutcome::Copied {
            self.total
                .set_message(format!("({} {})", outcome_name(outcome), digest));
        }
    }
}
