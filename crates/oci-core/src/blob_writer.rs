//! [`BlobWriter`]: a blob being written, verified and published on commit.

use std::io::{Read, Write};

use oci_digest::{Algorithm, Digest};

use crate::{CopyError, Error, Result};

/// A blob being written: bytes go in through [`Write`], and [`BlobWriter::commit`] checks them
/// and publishes the blob under its digest. Dropping a writer without committing discards
/// everything written; nothing becomes visible.
pub trait BlobWriter: Write + Send {
    /// The algorithm the content is hashed with.
    fn algorithm(&self) -> Algorithm;

    /// Bytes written so far.
    fn bytes_written(&self) -> u64;

    /// Writes everything `reader` yields, to its end; returns how many bytes. A failure says
    /// whether reading `reader` or writing the blob failed. The default copies through a
    /// buffer; a writer with buffers of its own (the directory's chunks) reads straight into
    /// them and saves a copy of every byte.
    fn write_from(&mut self, reader: &mut dyn Read) -> Result<u64, CopyError> {
        crate::copy_stream(reader, self)
    }

    /// Checks the content against `size` and `expected` (each may be unknown), then publishes
    /// it and returns its digest. On a mismatch nothing is published and the error carries both
    /// values ([`Error::UnexpectedSize`], [`Error::UnexpectedDigest`]).
    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest>;
}

/// Checks what a blob writer hashed against what its caller expected; every store's
/// [`BlobWriter::commit`] calls this before publishing.
pub fn check_commit(
    actual: Digest,
    actual_size: u64,
    size: Option<u64>,
    expected: Option<Digest>,
) -> Result<()> {
    if let Some(expected_size) = size.filter(|&s| s != actual_size) {
        return Err(Error::UnexpectedSize {
            digest: expected.unwrap_or(actual),
            expected: expected_size,
            actual: actual_size,
        });
    }
    if let Some(expected) = expected.filter(|&e| e != actual) {
        return Err(Error::UnexpectedDigest { expected, actual });
    }
    Ok(())
}
