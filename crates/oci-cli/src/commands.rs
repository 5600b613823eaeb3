//! One function per command: open the layout, call the library, print.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_core::oci_spec::image::{Descriptor, MediaType, Platform};
use oci_core::{
    Algorithm, Compression, ContentKind, CopyError, Digest, Store, copy_stream, describe, index,
    printable, seed,
};
use oci_dir::{DirLayout, DirOptions, Durability};
use oci_tar::{ExpansionLimit, OutputFile};
pub(crate) use oci_transport::open_writable;
use oci_transport::{OpenOptions, StoreName, open_source};
use serde_json::{Value, json};

use crate::args::{BlobCommand, Cli, Command, RegistryArgs};
use crate::integrity;
use crate::usage::usage;

pub fn run(cli: Cli) -> Result<()> {
    let options = DirOptions {
        durability: if cli.relaxed {
            Durability::Relaxed
        } else {
            Durability::Durable
        },
        ..DirOptions::default()
    };
    match cli.command {
        Command::Init { dir } => {
            DirLayout::create_with(&dir, options, &seed::InitOptions::default())?;
            Ok(())
        }
        Command::Blob(blob) => run_blob(blob, options),
        Command::Tag {
            dir,
            digest,
            reference,
        } => tag(&open_writable(&dir, options)?, &digest, &reference),
        Command::Untag { dir, reference } => {
            oci_core::validate_ref_name(&reference).map_err(usage)?;
            open_writable(&dir, options)?.remove_ref(&reference)?;
            Ok(())
        }
        Command::Ls {
            dir,
            json,
            registry,
        } => list_entries(open_named(&dir, options, &registry)?.0.as_ref(), json),
        Command::Copy(args) => crate::copy::run(&args, options),
        Command::Pack {
            dir,
            archive,
            compress,
        } => pack(&open_writable(&dir, options)?, &archive, compress),
        Command::Unpack {
            archive,
            dir,
            max_size,
        } => unpack(&archive, &dir, options, ExpansionLimit { max_size }),
        Command::Fsck {
            layout,
            json,
            registry,
        } => {
            let (store, name) = open_named(&layout, options, &registry)?;
            integrity::fsck(store.as_ref(), name.reference().as_deref(), json)
        }
        Command::Gc {
            layout,
            dry_run,
            grace,
        } => integrity::gc(&open_writable(&layout, options)?, dry_run, grace),
        Command::Attach {
            layout,
            subject,
            artifact_type,
            files,
            annotations,
        } => {
            let layout = open_writable(&layout, options)?;
            // Until the artifact is recorded, gc sweeps nothing this writes.
            let _lease = layout.lease()?;
            integrity::attach(&layout, &subject, &artifact_type, &files, &annotations)
        }
        Command::Referrers {
            layout,
            subject,
            artifact_type,
            json,
            registry,
        } => integrity::referrers(
            open_named(&layout, options, &registry)?.0.as_ref(),
            &subject,
            artifact_type.as_deref(),
            json,
        ),
        Command::Image(command) => crate::image::run(command, options),
        Command::Login(args) => crate::login::login(&args),
        Command::Logout(args) => crate::login::logout(&args),
        Command::Inspect(args) => {
            let (store, name) = open_named(&args.layout, options, &args.registry)?;
            crate::image::inspect(&args, store.as_ref(), name.reference())
        }
    }
}

/// The store a name names (a layout directory or archive, `oci:`, `oci-archive:`,
/// `docker://`), opened to read, and the name.
pub(crate) fn open_named(
    text: &std::ffi::OsStr,
    dir: DirOptions,
    registry: &RegistryArgs,
) -> Result<(Box<dyn Store>, StoreName)> {
    let name = StoreName::parse_os(text).map_err(usage)?;
    let options = OpenOptions {
        dir,
        registry: registry.options()?,
    };
    Ok((open_source(&name, &options)?, name))
}

/// How standard output is named in messages.
const STDOUT: &str = "standard output";

fn is_stdio(path: &Path) -> bool {
    path == Path::new("-")
}

fn run_blob(command: BlobCommand, options: DirOptions) -> Result<()> {
    match command {
        BlobCommand::Put {
            dir,
            file,
            algorithm,
            media_type,
            expect_digest,
            expect_size,
            json,
        } => {
            let layout = open_writable(&dir, options)?;
            let expected = expect_digest
                .as_deref()
                .map(Digest::parse)
                .transpose()
                .map_err(usage)?;
            oci_core::validate_media_type(&media_type).map_err(usage)?;
            // An expected digest decides the algorithm: hashing with another could never match.
            let algorithm = expected.map_or(Algorithm::from(algorithm), |d| d.algorithm());
            let descriptor = put_blob(
                &layout,
                file.as_deref(),
                algorithm,
                &media_type,
                expect_size,
                expected,
            )?;
            if json {
                print_json(&serde_json::to_value(&descriptor)?)
            } else {
                println_out(descriptor.digest().as_ref())
            }
        }
        BlobCommand::Get {
            dir,
            digest,
            output,
            registry,
        } => {
            let digest = Digest::parse(&digest).map_err(usage)?;
            get_blob(
                open_named(&dir, options, &registry)?.0.as_ref(),
                digest,
                output.as_deref(),
            )
        }
        BlobCommand::Rm { dir, digest, force } => {
            let digest = Digest::parse(&digest).map_err(usage)?;
            let layout = open_writable(&dir, options)?;
            if force {
                seed::delete_blob(&layout, digest)?;
            } else {
                match oci_core::gc::remove_blob(&layout, digest) {
                    Err(e @ oci_core::Error::BlobInUse { .. }) => {
                        bail!("{e} (--force removes it anyway)")
                    }
                    other => other?,
                }
            }
            Ok(())
        }
        BlobCommand::Ls { dir, json } => list_blobs(
            open_named(&dir, options, &RegistryArgs::default())?
                .0
                .as_ref(),
            json,
        ),
    }
}

fn put_blob(
    layout: &DirLayout,
    file: Option<&Path>,
    algorithm: Algorithm,
    media_type: &str,
    expect_size: Option<u64>,
    expected: Option<Digest>,
) -> Result<Descriptor> {
    let mut input: Box<dyn Read> = match file {
        Some(path) if !is_stdio(path) => {
            Box::new(File::open(path).with_context(|| format!("{}", path.display()))?)
        }
        _ => Box::new(io::stdin().lock()),
    };
    let mut writer = layout.begin_blob(algorithm)?;
    // Name the source: reading a directory, say, opens fine and fails only here.
    let source = match file {
        Some(path) if path != Path::new("-") => path.display().to_string(),
        _ => "standard input".to_owned(),
    };
    writer.write_from(&mut input).map_err(|e| match e {
        CopyError::Read(e) => {
            anyhow::Error::new(e).context(format!("reading the blob from {source}"))
        }
        CopyError::Write(e) => oci_core::Error::io(layout.location(), e).into(),
    })?;
    let size = writer.bytes_written();
    let digest = writer.commit(expect_size, expected)?;
    Ok(Descriptor::new(MediaType::from(media_type), size, digest))
}

fn get_blob(layout: &dyn Store, digest: Digest, output: Option<&Path>) -> Result<()> {
    let blob = layout.location().of_content(digest);
    let size = layout
        .stat(ContentKind::Blob, digest)?
        .ok_or_else(|| oci_core::Error::content_not_found(&blob, digest))?;
    let mut reader = layout.fetch(ContentKind::Blob, digest, Some(size))?;
    let copy_error = |out: &Path, e| match e {
        CopyError::Read(e) => oci_core::Error::io(&blob, e),
        CopyError::Write(e) => oci_core::Error::io(out, e),
    };
    let Some(output) = output else {
        let stdout_label = Path::new(STDOUT);
        let mut stdout = io::stdout().lock();
        copy_stream(&mut reader, &mut stdout).map_err(|e| copy_error(stdout_label, e))?;
        return Ok(stdout
            .flush()
            .map_err(|e| oci_core::Error::io(stdout_label, e))?);
    };
    // A regular file is written beside the destination, synced, and named only once verified:
    // a failed or killed get leaves no file. A device or FIFO is written through.
    let mut out = OutputFile::create(output).map_err(|e| oci_core::Error::io(output, e))?;
    copy_stream(&mut reader, &mut out).map_err(|e| copy_error(output, e))?;
    out.commit().map_err(|e| oci_core::Error::io(output, e))?;
    Ok(())
}

fn tag(layout: &DirLayout, digest: &str, reference: &str) -> Result<()> {
    let digest = Digest::parse(digest).map_err(usage)?;
    oci_core::validate_ref_name(reference).map_err(usage)?;
    let descriptor = describe::manifest_descriptor(layout, digest)?;
    layout.tag(&descriptor, reference)?;
    Ok(())
}

fn platform_string(platform: &Platform) -> String {
    let mut s = format!("{}/{}", platform.os(), platform.architecture());
    if let Some(variant) = platform.variant() {
        s.push('/');
        s.push_str(variant);
    }
    s
}

fn list_entries(layout: &dyn Store, as_json: bool) -> Result<()> {
    let idx = layout.index()?;
    if as_json {
        let entries: Vec<Value> = idx
            .manifests()
            .iter()
            .map(|d| {
                json!({
                    "ref": index::ref_name(d),
                    "digest": d.digest().to_string(),
                    "mediaType": d.media_type().to_string(),
                    "size": d.size(),
                    "platform": d.platform().as_ref().map(platform_json),
                })
            })
            .collect();
        return print_json(&Value::Array(entries));
    }
    let mut out = String::new();
    for d in idx.manifests() {
        let platform = d
            .platform()
            .as_ref()
            .map(platform_string)
            .unwrap_or_else(|| "-".into());
        // Names from the index, which anyone may have written: escaped, so that none can
        // forge a line or a column.
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            printable(index::ref_name(d).unwrap_or("-")),
            printable(d.digest().as_ref()),
            printable(d.media_type().as_ref()),
            d.size(),
            printable(&platform)
        ));
    }
    print_out(&out)
}

/// A platform as the image-spec spells it (`os.version`, not oci-spec's `os_version`).
fn platform_json(platform: &Platform) -> Value {
    let mut value = json!({ "architecture": platform.architecture().to_string(), "os": platform.os().to_string() });
    if let Some(variant) = platform.variant() {
        value["variant"] = json!(variant);
    }
    if let Some(version) = platform.os_version() {
        value["os.version"] = json!(version);
    }
    value
}

fn list_blobs(layout: &dyn Store, as_json: bool) -> Result<()> {
    let listing = layout.blob_listing().ok_or_else(|| {
        oci_core::Error::unsupported(layout.location(), "this store cannot list its blobs")
    })?;
    let digests = listing.list_blobs()?;
    if as_json {
        let entries = digests
            .iter()
            .filter_map(|d| match layout.stat(ContentKind::Blob, *d) {
                Ok(Some(size)) => Some(Ok(json!({ "digest": d.to_string(), "size": size }))),
                // Removed since it was listed.
                Ok(None) => None,
                Err(e) => Some(Err(e.into())),
            })
            .collect::<Result<Vec<Value>>>()?;
        return print_json(&Value::Array(entries));
    }
    let out: String = digests.iter().map(|d| format!("{d}\n")).collect();
    print_out(&out)
}

fn pack(layout: &DirLayout, archive: &Path, compression: Compression) -> Result<()> {
    if is_stdio(archive) {
        let stdout = io::BufWriter::with_capacity(1 << 20, io::stdout());
        let label = Path::new(STDOUT);
        let (mut out, _) = oci_tar::pack(layout, stdout, compression, label)?;
        out.flush().map_err(|e| oci_core::Error::io(label, e))?;
    } else {
        oci_tar::pack_to_file(layout, archive, compression)?;
    }
    Ok(())
}

fn unpack(archive: &Path, dir: &Path, options: DirOptions, limit: ExpansionLimit) -> Result<()> {
    let input: Box<dyn Read> = if is_stdio(archive) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(archive).with_context(|| format!("{}", archive.display()))?)
    };
    if dir.is_file() {
        open_writable(dir, options)?;
    }
    let source = if is_stdio(archive) {
        Path::new("standard input")
    } else {
        archive
    };
    // Into a new layout, finished only once the unpack succeeded (removed again if it fails);
    // else merged into the existing one.
    let (_, report) = DirLayout::open_or_create_then(dir, options, |layout| {
        // Until the index is merged, gc sweeps nothing this writes.
        let _lease = layout.lease()?;
        oci_tar::unpack(input, source, layout, limit)
    })?;
    let mut stderr = io::stderr().lock();
    for skipped in &report.skipped {
        writeln!(stderr, "warning: {skipped}")?;
    }
    for replaced in &report.replaced {
        writeln!(
            stderr,
            "replaced tag {}: {} -> {}",
            replaced.name,
            replaced.previous.digest(),
            replaced.current.digest()
        )?;
    }
    Ok(())
}

pub(crate) fn print_json(value: &Value) -> Result<()> {
    println_out(&serde_json::to_string_pretty(value)?)
}

pub(crate) fn println_out(line: &str) -> Result<()> {
    print_out(&format!("{line}\n"))
}

pub(crate) fn print_out(text: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
