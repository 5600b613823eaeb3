//! Compressed archives: detected by magic bytes, decompressed with a bound on expansion.

use std::io::{self, BufRead, BufReader, Read};

use oci_core::Compression;

/// A bound on how large an archive's tar stream (decompressed) may be.
///
/// There is no bound on the ratio: zstd reaches 32768:1 on honest data (a disk image of
/// zeros), so any ratio that stops a bomb also stops real archives. What a bomb costs is disk
/// (every blob [`unpack`](crate::unpack) writes, and the temp file the in-place reader
/// decompresses into), and that is checked against the free space of the filesystem as it is
/// written; this bound caps the rest, the time spent decompressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpansionLimit {
    /// The most bytes the tar stream may have; `None` for no bound but free space.
    pub max_size: Option<u64>,
}

/// Fails the read that takes the output past the limit.
struct Limited<R> {
    inner: R,
    produced: u64,
    max_size: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        if self.produced > self.max_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the archive's tar stream is over the {} byte limit",
                    self.max_size
                ),
            ));
        }
        Ok(n)
    }
}

/// An error of the stream under the tar parser (reading, decompressing, the size bound), told
/// apart from the parser's own: those quote header bytes, which may be anything (the first
/// line of `/etc/passwd`, escape sequences).
#[derive(Debug)]
struct StreamError(io::Error);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Marks every error of `inner` as a [`StreamError`].
struct MarkErrors<R>(R);

impl<R: Read> Read for MarkErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), StreamError(e)))
    }
}

/// What went wrong reading a tar stream, for a message: the stream's own error (reading,
/// decompressing, the size bound) as it is; the tar parser's as what it means, with its text
/// only when that is one of its fixed ones (the others quote the header's bytes).
/// `at_start`: no entry was read yet.
pub(crate) fn tar_error_text(err: &io::Error, at_start: bool) -> String {
    const FIXED: [&str; 4] = [
        "archive header checksum mismatch",
        "failed to read entire block",
        "unexpected EOF during skip",
        "size overflow",
    ];
    if err
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<StreamError>().is_some())
    {
        return err.to_string();
    }
    let what = if at_start {
        "not a tar archive"
    } else {
        "corrupt or truncated tar"
    };
    let text = err.to_string();
    if FIXED.contains(&text.as_str()) {
        format!("{what} ({text})")
    } else {
        format!("{what} (a header does not parse)")
    }
}

/// The plain bytes of a stream compressed as `compression` (or not at all).
///
/// An enum rather than a boxed reader: it is `Send` exactly when its input is, so a docker
/// archive's reader can hand a layer to another thread and its writer can decompress a
/// borrowed stream with the same code.
pub(crate) enum Decoder<R: BufRead> {
    Plain(R),
    /// Boxed: its state is most of the enum's size, and there is one per stream.
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    pub(crate) fn new(input: R, compression: Compression) -> io::Result<Decoder<R>> {
        Ok(match compression {
            Compression::None => Decoder::Plain(input),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(input)))
            }
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(input)?),
        })
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(plain) => plain.read(buf),
            Decoder::Gzip(gzip) => gzip.read(buf),
            Decoder::Zstd(zstd) => zstd.read(buf),
        }
    }
}

/// Wraps `input` in the decompressor its first bytes call for, bounded by `limit`. Returns the
/// detected compression and the plain tar stream.
pub fn decompress<'a>(
    input: impl Read + 'a,
    limit: ExpansionLimit,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    // Small on purpose: a read at least this large, made when the buffer is empty, bypasses
    // it, so a plain archive's blob data goes straight into the blob writer's chunks (with
    // 1 MiB here, most of it was copied through this buffer first). Tar headers and the
    // decompressors' own reads are far smaller than this.
    let mut buffered = BufReader::with_capacity(64 << 10, input);
    let compression = Compression::detect(buffered.fill_buf()?);
    let plain: Box<dyn Read + 'a> = Box::new(Decoder::new(buffered, compression)?);
    let bounded: Box<dyn Read + 'a> = match limit.max_size {
        Some(max_size) => Box::new(Limited {
            inner: plain,
            produced: 0,
            max_size,
        }),
        None => plain,
    };
    Ok((compression, Box::new(MarkErrors(bounded))))
}
