//! Compressed archives: detected by magic bytes, decompressed with a bound on expansion.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use oci_core::Compression;

/// Limits on decompression, against archives that expand without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionLimit {
    /// Output allowed per input byte once past [`ExpansionLimit::free_bytes`]. gzip cannot
    /// exceed about 1032:1, so real gzip archives never reach the default.
    pub max_ratio: u64,
    /// Output always allowed, whatever the ratio.
    pub free_bytes: u64,
}

impl Default for ExpansionLimit {
    fn default() -> Self {
        ExpansionLimit {
            max_ratio: 2048,
            free_bytes: 64 << 20,
        }
    }
}

/// Counts the compressed bytes consumed.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count.set(self.count.get() + amount as u64);
        self.inner.consume(amount);
    }
}

/// Fails the read that takes the output past the limit.
struct LimitedExpansion<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
    produced: u64,
    limit: ExpansionLimit,
}

impl<R: Read> Read for LimitedExpansion<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let allowed = self
            .limit
            .free_bytes
            .saturating_add(self.consumed.get().saturating_mul(self.limit.max_ratio));
        if self.produced > allowed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "compressed stream expands beyond {}:1 ({} bytes from {}): refusing it as a decompression bomb",
                    self.limit.max_ratio,
                    self.produced,
                    self.consumed.get()
                ),
            ));
        }
        Ok(n)
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
    let consumed = Rc::new(Cell::new(0));
    let counted = CountingReader {
        inner: buffered,
        count: Rc::clone(&consumed),
    };
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::None => return Ok((compression, Box::new(counted))),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(counted)?),
    };
    Ok((
        compression,
        Box::new(LimitedExpansion {
            inner: decoder,
            consumed,
            produced: 0,
            limit,
        }),
    ))
}
