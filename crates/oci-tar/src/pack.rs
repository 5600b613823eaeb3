//! Packing a layout into an archive.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};

use oci_core::{Error, ImageDriver, Result, copy_stream, seed};

use crate::compression::Compression;
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
/// `index.json` (canonical) and `oci-layout`, as a tar stream to `out`. Returns `out`.
///
/// The same layout always gives the same bytes, so pack → unpack → pack is byte-identical.
pub fn pack<W: Write + Send>(
    source: &dyn ImageDriver,
    out: W,
    compression: Compression,
    label: &Path,
) -> Result<(W, PackReport)> {
    let compressor = Compressor::new(out, compression).map_err(|e| Error::io(label, e))?;
    let archive = TarWriter::new(compressor, label);
    archive.init()?;
    let mut report = PackReport::default();
    for digest in source.list_blobs()? {
        let size = source.blob_size(digest)?;
        let mut reader = seed::get_blob_reader(source, digest, Some(size))?;
        let mut writer = archive.blob_writer_for(digest, size)?;
        copy_stream(&mut reader, &mut writer)
            .map_err(|e| Error::io(source.location().join(digest.blob_path()), e))?;
        writer.commit(Some(size), Some(digest))?;
        report.blobs += 1;
        report.bytes += size;
    }
    seed::write_index(&archive, &seed::read_index(source)?)?;
    let layout = match seed::read_image_layout(source) {
        Ok(layout) => layout,
        Err(e) if e.is_not_found() => serde_json::from_value(
            serde_json::json!({ "imageLayoutVersion": seed::IMAGE_LAYOUT_VERSION }),
        )
        .expect("a one-string object is a valid oci-layout"),
        Err(e) => return Err(e),
    };
    seed::write_image_layout(&archive, &layout)?;
    let out = archive
        .finish()?
        .finish()
        .map_err(|e| Error::io(label, e))?;
    Ok((out, report))
}

/// [`pack`] into the file `path`, which appears only once complete and synced: a failed pack
/// leaves no output file and does not replace an existing one.
///
/// The archive is written to an anonymous `O_TMPFILE` in the target's directory and linked to
/// its name at the end, so a pack that is killed leaves nothing behind either. On a
/// filesystem without `O_TMPFILE` it is a `.tmp-pack-*` file beside the target instead, which a
/// killed pack does leave (a failed one removes it).
pub fn pack_to_file(
    source: &dyn ImageDriver,
    path: &Path,
    compression: Compression,
) -> Result<PackReport> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let output = Output::create(parent).map_err(|e| Error::io(parent, e))?;
    let (file, report) = pack(
        source,
        io::BufWriter::with_capacity(1 << 20, output),
        compression,
        path,
    )?;
    let output = file
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    output.file().sync_all().map_err(|e| Error::io(path, e))?;
    output
        .persist(parent, path)
        .map_err(|e| Error::io(path, e))?;
    if let Ok(dir) = fs::File::open(parent) {
        dir.sync_all().map_err(|e| Error::io(parent, e))?;
    }
    Ok(report)
}

const TEMP_PREFIX: &str = ".tmp-pack-";

/// The file an archive is written to before it gets its name.
enum Output {
    /// Nameless until linked: nothing to clean up, whatever happens to the process.
    Anonymous(fs::File),
    /// Where the filesystem has no `O_TMPFILE`.
    Named(tempfile::NamedTempFile),
}

impl Output {
    fn create(dir: &Path) -> io::Result<Output> {
        if Path::new("/proc/self/fd").is_dir() {
            let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
            if let Ok(fd) = rustix::fs::open(dir, flags, Mode::from_raw_mode(0o644)) {
                return Ok(Output::Anonymous(fs::File::from(fd)));
            }
        }
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)
            .map(Output::Named)
    }

    fn file(&self) -> &fs::File {
        match self {
            Output::Anonymous(file) => file,
            Output::Named(named) => named.as_file(),
        }
    }

    /// Names the finished file `path`, replacing what was there.
    fn persist(self, dir: &Path, path: &Path) -> io::Result<()> {
        let file = match self {
            Output::Named(named) => return named.persist(path).map(drop).map_err(|e| e.error),
            Output::Anonymous(file) => file,
        };
        let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        let link = |target: &Path| {
            rustix::fs::linkat(
                rustix::fs::CWD,
                fd_path.as_str(),
                rustix::fs::CWD,
                target,
                AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(io::Error::from)
        };
        match link(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // linkat does not replace: link under a temporary name, then rename over the
                // old file (a kill between the two leaves that name behind, briefly visible).
                let temp = tempfile::Builder::new()
                    .prefix(TEMP_PREFIX)
                    .make_in(dir, |temp| link(temp))?;
                temp.persist(path).map(drop).map_err(|e| e.error)
            }
            other => other,
        }
    }
}

impl Write for Output {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Output::Anonymous(file) => file.write(data),
            Output::Named(named) => named.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Anonymous(file) => file.flush(),
            Output::Named(named) => named.flush(),
        }
    }
}
