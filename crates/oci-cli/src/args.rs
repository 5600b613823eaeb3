//! The command line, as clap parses it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Read and write OCI image layouts.
#[derive(Debug, Parser)]
#[command(name = "oci-layout", version, about)]
pub struct Cli {
    /// Skip fsync: faster, still atomic, but a power loss may lose the latest writes.
    #[arg(long, global = true)]
    pub relaxed: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty layout in DIR (missing or empty; an existing directory is filled in
    /// place and keeps its owner, mode and attributes).
    Init {
        /// The directory to create the layout in.
        dir: PathBuf,
    },
    /// Work with blobs.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Name a stored manifest or index REF in the index, replacing any entry with that name.
    Tag {
        /// The layout.
        dir: PathBuf,
        /// The manifest or index to name.
        digest: String,
        /// The ref name (org.opencontainers.image.ref.name).
        reference: String,
    },
    /// Remove the index entries named REF (no error when there are none).
    Untag {
        /// The layout.
        dir: PathBuf,
        /// The ref name.
        reference: String,
    },
    /// List the index entries (of a registry repository: its tags).
    Ls {
        /// The store: a layout directory or archive, `oci:DIR`, `oci-archive:FILE`, or
        /// `docker://HOST/REPO`.
        dir: OsString,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Copy one image between layouts, archives and registries: `oci:DIR[:REF]`,
    /// `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG|:@N]`,
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (skopeo's names).
    Copy(crate::copy::CopyArgs),
    /// Write a layout as a tar archive, verifying every blob on the way.
    Pack {
        /// The layout directory.
        dir: PathBuf,
        /// The archive to write, or `-` for standard output. A file appears only once complete.
        archive: PathBuf,
        /// Compress the archive.
        #[arg(long, default_value = "none", value_parser = compression_parser())]
        compress: oci_core::Compression,
    },
    /// Check a layout or archive: metadata, ref names, and every blob reachable from the index.
    Fsck {
        /// The layout directory or archive; with `:REF` (or a registry's `docker://...:TAG`),
        /// that image only.
        layout: OsString,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Remove blobs nothing live refers to, and stale temp files.
    Gc {
        /// The layout directory.
        layout: PathBuf,
        /// List what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep anything younger than this (written but perhaps not tagged yet), e.g. 1h, 30m, 0s.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
    /// Attach files to SUBJECT as an OCI 1.1 artifact (a manifest whose subject is SUBJECT).
    Attach {
        /// The layout directory.
        layout: PathBuf,
        /// The subject: a ref name or a digest.
        subject: String,
        /// The artifact type, e.g. application/spdx+json.
        #[arg(long)]
        artifact_type: String,
        /// The files, one layer each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// An annotation of the artifact manifest.
        #[arg(long = "annotation", value_name = "K=V")]
        annotations: Vec<String>,
    },
    /// List the manifests whose subject is SUBJECT.
    Referrers {
        /// The store: a layout directory or archive, or `docker://HOST/REPO`.
        layout: OsString,
        /// The subject: a ref name or a digest.
        subject: String,
        /// Only referrers of this artifact type.
        #[arg(long)]
        artifact_type: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Unpack an archive (plain, gzip or zstd; `-` for standard input) into a layout directory:
    /// a new one when DIR is missing or empty (removed again if the unpack fails), else merged
    /// into the existing layout. A tag of the archive replaces the layout's tag of the same
    /// name; each one that then names another manifest is reported on stderr as
    /// `replaced tag NAME: OLD -> NEW`.
    Unpack {
        /// The archive, or `-` for standard input.
        archive: PathBuf,
        /// The layout directory.
        dir: PathBuf,
        /// Refuse an archive whose tar stream (decompressed) is larger than SIZE, e.g. 20G.
        /// Without it, only the free space where the blobs go bounds an unpack.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
    },
    /// Build images.
    #[command(subcommand)]
    Image(crate::image::ImageCommand),
    /// Show the tree of an image: index → manifests (platform) → config summary and layers.
    Inspect(crate::image::InspectArgs),
    /// Check a user and password against a registry, then store them where docker, podman
    /// and skopeo find them (see `--authfile`).
    Login(crate::login::LoginArgs),
    /// Remove the stored credentials of a registry.
    Logout(crate::login::LogoutArgs),
}

/// How a registry is reached, for commands that read one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// USER:PASS for the registry (else the stored credentials: see `login`).
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Read credentials from FILE only (auth.json or config.json format), not from
    /// $REGISTRY_AUTH_FILE, auth.json and Docker's config.json.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify the registry's TLS certificate [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Speak plain HTTP to the registry.
    #[arg(long)]
    pub plain_http: bool,
    /// The registry's CA certificates (*.crt) and client certificate (NAME.cert, NAME.key)
    /// [default: its directory in ~/.config/containers/certs.d, /etc/containers/certs.d or
    /// /etc/docker/certs.d].
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// `none`, `gzip` or `zstd`, listed in `--help` and checked by clap.
pub fn compression_parser() -> impl clap::builder::TypedValueParser<Value = oci_core::Compression> {
    let names = oci_core::Compression::ALL.map(oci_core::Compression::name);
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(names).map(|name| {
        name.parse::<oci_core::Compression>()
            .expect("clap only passes one of the names")
    })
}

#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store FILE (or standard input) as a blob and print its digest.
    Put {
        /// The layout.
        dir: PathBuf,
        /// The file to store; `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// The digest algorithm.
        #[arg(long, value_enum, default_value_t = AlgorithmArg::Sha256)]
        algorithm: AlgorithmArg,
        /// The media type for the printed descriptor.
        #[arg(long, default_value = "application/octet-stream")]
        media_type: String,
        /// Refuse the blob unless it has this digest.
        #[arg(long)]
        expect_digest: Option<String>,
        /// Refuse the blob unless it has this many bytes.
        #[arg(long)]
        expect_size: Option<u64>,
        /// Print the descriptor as JSON instead of the digest.
        #[arg(long)]
        json: bool,
    },
    /// Write a blob's verified bytes to standard output or to a file.
    Get {
        /// The layout directory or archive, or `docker://HOST/REPO`.
        dir: OsString,
        /// The blob's digest.
        digest: String,
        /// Write to FILE, which appears only once the content verified.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Delete a blob; one that a ref still uses (as gc judges it) only with --force.
    Rm {
        /// The layout.
        dir: PathBuf,
        /// The blob's digest.
        digest: String,
        /// Delete it even if the index still uses it (the images that do become incomplete).
        #[arg(long)]
        force: bool,
    },
    /// List the blobs.
    Ls {
        /// The layout directory or archive.
        dir: OsString,
        /// Print a JSON array of {digest, size}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    Sha256,
    Sha512,
    Blake3,
}

impl From<AlgorithmArg> for oci_core::Algorithm {
    fn from(arg: AlgorithmArg) -> Self {
        match arg {
            AlgorithmArg::Sha256 => oci_core::Algorithm::Sha256,
            AlgorithmArg::Sha512 => oci_core::Algorithm::Sha512,
            AlgorithmArg::Blake3 => oci_core::Algorithm::Blake3,
        }
    }
}

/// A byte count: digits, then optionally K, M, G or T (powers of 1024), optionally followed
/// by `iB` or `B` (`20G`, `512MiB`, `4096`).
fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| !c.is_ascii_digit());
    let unit = &text[digits.len()..];
    let shift = match unit
        .strip_suffix("iB")
        .or(unit.strip_suffix('B'))
        .unwrap_or(unit)
    {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit {unit:?}: use K, M, G or T")),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| "expected a number of bytes, e.g. 20G".to_owned())?;
    count
        .checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_owned())
}
