//! `image create`, `image unpack` and `inspect`: parse, call `oci-image`, print.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use oci_core::{Compression, Store, printable};
use oci_dir::{DirLayout, DirOptions};
use oci_image::inspect::{Content, Node};
use oci_image::{
    ImageBuilder, ImageConfig, LayerOptions, Mtime, Ownership, Progress, RuntimeOverrides,
    UnpackOptions, Whiteouts, platform,
};

use crate::args::AlgorithmArg;
use crate::usage::usage;

/// Build images.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image from a directory (or a tar file), optionally on a base image, store it in
    /// LAYOUT (created when missing), tag it REF and print its manifest digest.
    Create(Box<CreateArgs>),
    /// Assemble a multi-platform image: an index over image manifests already in LAYOUT (each
    /// entry's platform from its config), tagged REF; prints its digest.
    Index(IndexArgs),
    /// Unpack an image into DIR (missing or empty): its layers applied in order, each verified
    /// against its digest and diff_id; with `--bundle`, as a runtime bundle. Prints the manifest
    /// digest.
    Unpack(UnpackArgs),
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The layout directory.
    layout: PathBuf,
    /// The ref name to give the index.
    #[arg(long)]
    tag: String,
    /// The image manifests, by ref name or digest, one per platform.
    #[arg(required = true)]
    manifests: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The store: a layout directory or archive, `oci:DIR`, `oci-archive:FILE`,
    /// `docker://HOST/REPO`.
    pub store: std::ffi::OsString,
    /// A ref name or a digest.
    target: String,
    /// The directory to fill: missing (built beside it, renamed into place at the end) or
    /// empty (filled in place).
    dir: PathBuf,
    /// The platform to choose from an index, OS/ARCH[/VARIANT] [default: the host's].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Unpack as a user without privileges: owners left as the user's, devices as empty
    /// files [default: when not run as root].
    #[arg(long)]
    rootless: bool,
    /// What happens to whiteouts: `remove` applies them; `overlay` also keeps them as
    /// overlayfs does (0:0 character devices, the opaque attribute).
    #[arg(long, value_enum, default_value_t = WhiteoutsArg::Remove)]
    whiteouts: WhiteoutsArg,
    /// Make DIR an OCI runtime bundle: the root filesystem in DIR/rootfs and a config.json from
    /// the image config, written last, which `runc run` can start.
    #[arg(long)]
    bundle: bool,
    /// Print a JSON report instead of the manifest digest.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub registry: crate::args::RegistryArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum WhiteoutsArg {
    Remove,
    Overlay,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The layout directory; created when missing.
    layout: PathBuf,
    /// The ref name to give the image (replaces an entry of that name).
    #[arg(long, value_name = "REF")]
    tag: String,
    /// The directory whose tree becomes the layer.
    #[arg(long, value_name = "SRC", required_unless_present = "from_tar")]
    from_dir: Option<PathBuf>,
    /// A tar file (plain, gzip or zstd) to use as the layer instead of a directory.
    #[arg(long, value_name = "FILE", conflicts_with = "from_dir")]
    from_tar: Option<PathBuf>,
    /// An image in LAYOUT (ref name or digest) to build on: its layers and config are kept.
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// With --base and --from-dir: the layer holds only what SRC changes relative to the
    /// base's tree, with whiteouts for what SRC no longer has.
    #[arg(long, requires = "base", requires = "from_dir")]
    diff: bool,
    /// The layer's compression [default: gzip; for --from-tar, the file's own].
    #[arg(long, value_parser = crate::args::compression_parser())]
    compression: Option<Compression>,
    /// The compression level (gzip 0-9, default 6; zstd 1-22, default 3).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    level: Option<i32>,
    /// The image's platform, OS/ARCH[/VARIANT] [default: the base's, else the host's].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Entrypoint, one argument per use (`--entrypoint /bin/sh --entrypoint -c`).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// Cmd, one argument per use.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// An environment variable, NAME=VALUE (repeatable).
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// A label, KEY=VALUE (repeatable).
    #[arg(long, value_name = "K=V")]
    label: Vec<String>,
    /// The working directory.
    #[arg(long, value_name = "DIR")]
    workdir: Option<String>,
    /// The user (name, uid, user:group or uid:gid).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// A port to expose, PORT[/tcp|udp|sctp] (repeatable).
    #[arg(long, value_name = "PORT")]
    expose: Vec<String>,
    /// Record uid 0 and gid 0 for every file instead of their owners.
    #[arg(long)]
    root_owner: bool,
    /// The digest algorithm of the blobs.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Sha256)]
    algorithm: AlgorithmArg,
}

/// Show the tree of an image: index → manifests (platform) → config summary and layers.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The store: a layout directory or archive, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
    /// `docker://HOST/REPO[:TAG|@DIGEST]`.
    pub layout: std::ffi::OsString,
    /// A ref name or a digest (needed unless the store's name carries one).
    target: Option<String>,
    /// Show only the manifests for OS/ARCH[/VARIANT].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Print JSON instead of a tree.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub registry: crate::args::RegistryArgs,
}

pub fn run(command: ImageCommand, options: DirOptions) -> Result<()> {
    match command {
        ImageCommand::Create(args) => create(&args, options),
        ImageCommand::Index(args) => {
            oci_core::validate_ref_name(&args.tag).map_err(usage)?;
            let layout = crate::commands::open_writable(&args.layout, options)?;
            let index = oci_image::write_index(&layout, &args.manifests)?;
            layout.tag(&index, &args.tag)?;
            crate::commands::println_out(index.digest().as_ref())
        }
        ImageCommand::Unpack(args) => {
            // Opened as every read command opens its store (docker:// included).
            let (store, _) = crate::commands::open_named(&args.store, options, &args.registry)?;
            unpack(&args, store.as_ref(), options)
        }
    }
}

/// `store` is whatever `open_readable` opened: a directory, an archive.
fn unpack(args: &UnpackArgs, store: &dyn Store, options: DirOptions) -> Result<()> {
    let platform = args
        .platform
        .as_deref()
        .map(platform::parse)
        .transpose()
        .map_err(usage)?;
    let mut unpack_options = UnpackOptions::for_current_user();
    unpack_options.rootless |= args.rootless;
    unpack_options.whiteouts = match args.whiteouts {
        WhiteoutsArg::Remove => Whiteouts::Remove,
        WhiteoutsArg::Overlay => Whiteouts::Overlay,
    };
    unpack_options.durable = options.durability == oci_dir::Durability::Durable;
    let image = oci_image::resolve_image(store, &args.target, platform.as_ref())?;
    let bar = TerminalProgress::new();
    let progress = bar.as_ref().map(|b| b as &dyn Progress);
    let report = if args.bundle {
        oci_image::unpack_bundle(store, &image, &args.dir, &unpack_options, progress)?
    } else {
        oci_image::unpack_image(store, &image, &args.dir, &unpack_options, progress)?
    };
    if args.json {
        let warnings: Vec<serde_json::Value> = report
            .warnings
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": w.path.to_string_lossy(),
                    "reason": w.reason,
                })
            })
            .collect();
        let json = serde_json::json!({
            "manifest": image.descriptor.digest().to_string(),
            "dir": args.dir.to_string_lossy(),
            "rootless": unpack_options.rootless,
            "bundle": args.bundle,
            "layers": report.layers,
            "entries": report.entries,
            "compressedBytes": report.compressed_bytes,
            "uncompressedBytes": report.uncompressed_bytes,
            "warnings": warnings,
        });
        return crate::commands::println_out(&serde_json::to_string_pretty(&json)?);
    }
    let mut stderr = io::stderr().lock();
    for warning in &report.warnings {
        writeln!(
            stderr,
            "warning: {}: {}",
            printable(&warning.path.to_string_lossy()),
            warning.reason
        )?;
    }
    drop(stderr);
    crate::commands::println_out(image.descriptor.digest().as_ref())
}

fn create(args: &CreateArgs, options: DirOptions) -> Result<()> {
    // Every value given is checked before anything is written (a usage error, exit 2).
    oci_core::validate_ref_name(&args.tag).map_err(usage)?;
    let platform = args
        .platform
        .as_deref()
        .map(platform::parse)
        .transpose()
        .map_err(usage)?;
    let overrides = overrides(args).map_err(usage)?;
    ImageConfig::new(&platform::host())
        .apply(&overrides)
        .map_err(usage)?;
    let epoch = oci_image::source_date_epoch().map_err(usage)?;
    let compression = match (&args.from_dir, &args.from_tar, args.compression) {
        (_, _, Some(compression)) => compression,
        (Some(_), _, None) => Compression::Gzip,
        (None, Some(file), None) => oci_image::compression::of_file(file)?,
        (None, None, None) => bail!("give --from-dir SRC or --from-tar FILE"),
    };
    if let Some(level) = args.level {
        oci_image::compression::check_level(compression, level).map_err(usage)?;
    }
    let layout = open_or_create(&args.layout, options)?;
    // Until the tag is written, gc sweeps nothing this writes.
    let _lease = layout.lease()?;

    let mut builder = match &args.base {
        Some(base) => {
            let resolved = oci_image::resolve_image(&layout, base, platform.as_ref())?;
            ImageBuilder::on_base(&layout, resolved, Some(base.as_str()))
        }
        None => ImageBuilder::new(&layout, &platform.unwrap_or_else(platform::host)),
    };
    let algorithm = args.algorithm.into();
    builder.algorithm(algorithm);
    if let Some(epoch) = epoch {
        builder.created_at(epoch);
    }
    let layer_options = LayerOptions {
        compression,
        level: args.level,
        algorithm,
        mtime: epoch.map_or(Mtime::Keep, Mtime::Fixed),
        ownership: if args.root_owner {
            Ownership::Root
        } else {
            Ownership::Keep
        },
        ..LayerOptions::default()
    };
    let bar = TerminalProgress::new();
    let progress = bar.as_ref().map(|b| b as &dyn Progress);
    let layer = match (&args.from_dir, &args.from_tar) {
        (Some(dir), _) if args.diff => builder.add_dir_diff_layer(dir, &layer_options, progress)?,
        (Some(dir), _) => builder.add_dir_layer(dir, &layer_options, progress)?,
        (None, Some(file)) => builder.add_tar_layer(file, &layer_options, progress)?,
        (None, None) => bail!("give --from-dir SRC or --from-tar FILE"),
    };
    let mut stderr = io::stderr().lock();
    for skipped in &layer.skipped {
        writeln!(
            stderr,
            "warning: {}: {}; skipped",
            skipped.path.display(),
            skipped.reason
        )?;
    }
    drop(stderr);
    builder.apply(&overrides)?;
    let manifest = builder.write_and_tag(&args.tag)?;
    crate::commands::println_out(manifest.digest().as_ref())
}

fn overrides(args: &CreateArgs) -> Result<RuntimeOverrides> {
    let mut labels = std::collections::BTreeMap::new();
    for label in &args.label {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => bail!("invalid label {label:?}: expected KEY=VALUE"),
        }
    }
    Ok(RuntimeOverrides {
        entrypoint: (!args.entrypoint.is_empty()).then(|| args.entrypoint.clone()),
        cmd: (!args.cmd.is_empty()).then(|| args.cmd.clone()),
        env: args.env.clone(),
        labels,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        exposed_ports: args.expose.clone(),
    })
}

/// The layout at `path`, created when missing or empty (as `DirLayout::open_or_create`: a
/// layout another process creates at once is opened); an archive is refused.
fn open_or_create(path: &Path, options: DirOptions) -> Result<DirLayout> {
    if path.is_file() {
        return Ok(crate::commands::open_writable(path, options)?);
    }
    Ok(DirLayout::open_or_create(path, options)?)
}

/// A progress bar on stderr, only when stderr is a terminal.
struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    fn new() -> Option<TerminalProgress> {
        if !io::stderr().is_terminal() {
            return None;
        }
        Some(TerminalProgress {
            bar: ProgressBar::hidden(),
        })
    }
}

impl Progress for TerminalProgress {
    fn start(&self, label: &str, total_bytes: Option<u64>) {
        let template = if total_bytes.is_some() {
            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
        } else {
            "{msg} {spinner} {bytes} {bytes_per_sec}"
        };
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bar.set_style(style);
        self.bar.set_length(total_bytes.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(label.to_owned());
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `layout` is a directory or an archive, as `open_readable` opened it.
pub fn inspect(args: &InspectArgs, layout: &dyn Store, named: Option<String>) -> Result<()> {
    let platform = args
        .platform
        .as_deref()
        .map(platform::parse)
        .transpose()
        .map_err(usage)?;
    let Some(target) = args.target.clone().or(named) else {
        bail!(usage(anyhow::anyhow!(
            "name the image: inspect STORE REF, or a store name with it (oci:DIR:REF, docker://HOST/REPO:TAG)"
        )));
    };
    let node = oci_image::inspect(layout, &target, platform.as_ref())?;
    if args.json {
        crate::commands::println_out(&serde_json::to_string_pretty(&node)?)?;
    } else {
        let mut out = String::new();
        render(&node, 0, &mut out);
        crate::commands::print_out(&out)?;
    }
    // Shown, then a failure: what was asked for cannot be used as it is.
    let missing = node.missing_blobs();
    if let Some(first) = missing.first() {
        bail!(
            "{} is incomplete: {} blob(s) not in {}, first {first}",
            target.escape_debug(),
            missing.len(),
            layout.location()
        );
    }
    Ok(())
}

/// The tree as text, two spaces per level.
fn render(node: &Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let kind = match &node.content {
        Content::Index { .. } => "index",
        Content::Image { .. } => "manifest",
        Content::Missing => "missing",
        Content::Other => "blob",
    };
    // Every string here comes from the layout, which anyone may have written: escaped, so
    // that none can forge a line.
    let _ = write!(
        out,
        "{pad}{kind} {} {} {}",
        printable(&node.digest),
        printable(&node.media_type),
        human(node.size)
    );
    if let Some(reference) = &node.reference {
        let _ = write!(out, " ref={}", printable(reference));
    }
    if let Some(platform) = &node.platform {
        let _ = write!(out, " platform={}", printable(&platform.to_string()));
    }
    if let Some(artifact_type) = &node.artifact_type {
        let _ = write!(out, " artifactType={}", printable(artifact_type));
    }
    if matches!(node.content, Content::Missing) {
        out.push_str(" (not in this layout)");
    }
    out.push('\n');
    match &node.content {
        Content::Index { manifests } => {
            for child in manifests {
                render(child, depth + 1, out);
            }
        }
        Content::Image { config, layers } => {
            let pad = "  ".repeat(depth + 1);
            let _ = write!(
                out,
                "{pad}config {} {} {}",
                printable(&config.blob.digest),
                printable(&config.blob.media_type),
                human(config.blob.size)
            );
            if config.missing {
                out.push_str(" (not in this layout)");
            }
            out.push('\n');
            if let Some(image) = &config.image {
                let detail = format!("{pad}  ");
                let mut line = |key: &str, value: String| {
                    let _ = writeln!(out, "{detail}{key}: {}", printable(&value));
                };
                line("platform", image.platform.to_string());
                if let Some(created) = &image.created {
                    line("created", created.clone());
                }
                if let Some(entrypoint) = &image.entrypoint {
                    line("entrypoint", json_list(entrypoint));
                }
                if let Some(cmd) = &image.cmd {
                    line("cmd", json_list(cmd));
                }
                for env in &image.env {
                    line("env", env.clone());
                }
                if let Some(dir) = &image.working_dir {
                    line("workdir", dir.clone());
                }
                if let Some(user) = &image.user {
                    line("user", user.clone());
                }
                for (key, value) in &image.labels {
                    line("label", format!("{key}={value}"));
                }
                if !image.exposed_ports.is_empty() {
                    line("exposed", image.exposed_ports.join(" "));
                }
                line(
                    "layers",
                    format!(
                        "{} diff_ids, {} history entries",
                        image.diff_ids.len(),
                        image.history
                    ),
                );
            }
            let _ = writeln!(out, "{pad}layers ({})", layers.len());
            for layer in layers {
                let _ = write!(
                    out,
                    "{pad}  {} {} {}",
                    printable(&layer.blob.digest),
                    printable(&layer.blob.media_type),
                    human(layer.blob.size)
                );
                if layer.missing {
                    out.push_str(" (not in this layout)");
                }
                out.push('\n');
            }
        }
        Content::Missing | Content::Other => {}
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// `1234 B`, `12.3 KiB`, `4.5 MiB`, ...
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
