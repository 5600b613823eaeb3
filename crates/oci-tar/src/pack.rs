//! Packing a layout into an archive.

use std::io::{self, Write};
use std::path::Path;

use oci_core::{Compression, ContentKind, Error, Result, Store, StrayKind, attribute_reads, seed};

use crate::output::OutputFile;
use crate::writer::TarWriter;

/// What [`pack`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackReport {
    /// Blobs written into the archive.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// A compressing writer that can be finished (the compressed stream needs its trailer).
enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(out: W, compression: Compression) -> io::Result<Compressor<W>> {
        Ok(match compression {
            Compression::None => Compressor::None(out),
            // GzEncoder writes mtime 0 and no file name: the output stays deterministic.
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(out) => Ok(out),
            Compressor::Gzip(encoder) => encoder.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(out) => out.write(data),
            Compressor::Gzip(encoder) => encoder.write(data),
            Compressor::Zstd(encoder) => encoder.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(out) => out.flush(),
            Compressor::Gzip(encoder) => encoder.flush(),
            Compressor::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// Writes every blob of `source` (verified while copied, in digest order), then its
/// `index.json` (canonical) and `oci-layout`, as a tar stream to `out`. Returns `out`. The
/// source must be able to list its blobs ([`oci_core::BlobListing`]).
///
/// The same layout always gives the same bytes, so pack → unpack → pack is byte-identical.
pub fn pack<W: Write + Send>(
    source: &dyn Store,
    out: W,
    compression: Compression,
    label: &Path,
) -> Result<(W, PackReport)> {
    let listing = source.blob_listing().ok_or_else(|| {
        Error::unsupported(
            source.location(),
            "cannot pack: this store cannot list its blobs",
        )
    })?;
    // Something under a blob's name that is not a regular file is a blob gone wrong: packing
    // around it would hand on a hole no one asked for.
    if let Some(files) = source.layout_files()
        && let Some(stray) = files
            .stray_files()?
            .into_iter()
            .find(|stray| matches!(stray.kind, StrayKind::NotRegular(_)))
    {
        return Err(Error::InvalidLayout {
            location: stray.location,
            reason: "not a regular file under a blob's name: nothing packed (fsck reports it)"
                .into(),
        });
    }
    let compressor = Compressor::new(out, compression).map_err(|e| Error::io(label, e))?;
    let archive = TarWriter::new(compressor, label);
    seed::init(
        &archive,
        &seed::InitOptions {
            skip_create_image_layout: true,
            skip_create_index: true,
            ..seed::InitOptions::default()
        },
    )?;
    let mut report = PackReport::default();
    for digest in listing.list_blobs()? {
        let Some(size) = source.stat(ContentKind::Blob, digest)? else {
            continue;
        };
        let reader = source.fetch(ContentKind::Blob, digest, Some(size))?;
        // A failed read is the source's: the message names the blob there.
        let reader = attribute_reads(reader, source.location().of_content(digest));
        archive.append_verified(digest, size, reader)?;
        report.blobs += 1;
        report.bytes += size;
    }
    seed::write_index(&archive, &source.index()?)?;
    let layout = match seed::read_image_layout(source) {
        Ok(layout) => layout,
        // A store that is not a layout, or a layout without the file: the current version.
        Err(e) if e.is_not_found() || matches!(e, Error::Unsupported { .. }) => {
            seed::image_layout(seed::IMAGE_LAYOUT_VERSION)
        }
        Err(e) => return Err(e),
    };
    seed::write_image_layout(&archive, &layout)?;
    let out = archive
        .finish()?
        .finish()
        .map_err(|e| Error::io(label, e))?;
    Ok((out, report))
}

/// [`pack`] into the file `path`, which is resolved as a shell redirection resolves it (see
/// [`OutputFile`]): a regular file (or a new one) appears only once complete and synced, so a
/// failed pack leaves no output file and does not replace an existing one; a device or a FIFO
/// (`/dev/null`, `/dev/stdout` on a pipe) is written through, never replaced.
///
/// A regular file is written through [`atomic_write_file`]: an anonymous `O_TMPFILE` in the
/// target's directory, synced, linked as `.<name>.<random>` and renamed over the target, then
/// the directory synced. A pack that is killed leaves nothing behind, except in the moment
/// between that link and the rename, when the complete archive is left under the temporary
/// name. On a filesystem without `O_TMPFILE` the archive is written under that name
/// throughout, and a killed pack leaves it, partial (a failed one removes it). The file gets
/// mode 0644 less the umask, whatever the mode of a file it replaces.
pub fn pack_to_file(
    source: &dyn Store,
    path: &Path,
    compression: Compression,
) -> Result<PackReport> {
    let output = OutputFile::create(path).map_err(|e| Error::io(path, e))?;
    let (file, report) = pack(
        source,
        io::BufWriter::with_capacity(1 << 20, output),
        compression,
        path,
    )?;
    let output = file
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    // Syncs the file, links and renames it, syncs the directory.
    output.commit().map_err(|e| Error::io(path, e))?;
    Ok(report)
}
