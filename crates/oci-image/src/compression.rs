//! Layer compression: the media types, detection by magic bytes, and the compressing writer.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::pgzip::ParallelGzip;
use crate::{Error, Result};

pub use oci_core::Compression;

/// Detects the compression of a file from its first bytes.
pub fn of_file(path: &Path) -> Result<Compression> {
    let mut head = [0u8; 4];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(Compression::detect(&head[..filled]))
}

/// The level used when none is given: gzip 6 (zlib's default), zstd 3 (zstd's default).
pub fn default_level(compression: Compression) -> i32 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 6,
        Compression::Zstd => 3,
    }
}

/// Checks a level for `compression`: gzip 0–9, zstd 1–22 (libzstd also takes 0, its default,
/// and negative fast levels; they are refused here, as the help says 1–22).
pub fn check_level(compression: Compression, level: i32) -> Result<i32> {
    let (name, range) = match compression {
        Compression::None => return Ok(0),
        Compression::Gzip => ("gzip level", 0..=9),
        Compression::Zstd => ("zstd level", 1..=*zstd::compression_level_range().end()),
    };
    if range.contains(&level) {
        Ok(level)
    } else {
        Err(Error::invalid(
            name,
            level.to_string(),
            format!("must be in {}..={}", range.start(), range.end()),
        ))
    }
}

/// A writer that compresses into `W`; [`Encoder::finish`] ends the stream and returns `W`.
pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// `threads` compression workers (at least one). Both parallel formats give the same
    /// bytes whatever the number of workers, so an image is reproducible across machines.
    pub(crate) fn new(
        inner: W,
        compression: Compression,
        level: i32,
        threads: usize,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        Ok(match compression {
            Compression::None => Encoder::None(inner),
            Compression::Gzip => Encoder::Gzip(ParallelGzip::new(inner, level as u32, threads)),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                // libzstd's own workers; with at least one, the output does not depend on
                // how many there are.
                encoder.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
                Encoder::Zstd(encoder)
            }
        })
    }

    /// Ends the compressed stream and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(inner) => Ok(inner),
            Encoder::Gzip(gzip) => gzip.finish(),
            Encoder::Zstd(zstd) => zstd.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(inner) => inner.write(buf),
            Encoder::Gzip(gzip) => gzip.write(buf),
            Encoder::Zstd(zstd) => zstd.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.write_all(buf),
            Encoder::Gzip(gzip) => gzip.write_all(buf),
            Encoder::Zstd(zstd) => zstd.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.flush(),
            Encoder::Gzip(gzip) => gzip.flush(),
            Encoder::Zstd(zstd) => zstd.flush(),
        }
    }
}

/// The decompressed stream of `input`, by its first bytes, and the compression found.
pub(crate) fn decoder<'a, R: io::BufRead + 'a>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let compression = Compression::detect(input.fill_buf()?);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    };
    Ok((compression, reader))
}
