//! Streaming adapters: hash what passes through, and verify it against what was expected.

use std::io::{self, Read, Write};

use crate::{Algorithm, Digest, Hasher};

/// Buffer size for bulk reads and hashing: large enough for the SIMD back ends to run at full
/// speed and for few system calls, small enough to stay in a core's L2 cache, so the kernel's
/// copy into it and the hash that reads it back both hit the cache. A buffer larger than L2
/// sends every byte out to L3 or memory between the two; reading a page-cached GiB into
/// 256 KiB buffers took three times the system time of 64 KiB ones here (see
/// docs/benchmarks.md).
pub const BUFFER_SIZE: usize = 64 * 1024;

/// Content did not match what its descriptor promised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The content hashed to another digest.
    #[error("unexpected digest: expected {expected}, got {actual}")]
    Digest {
        /// The digest the content was expected to have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// The content has another length.
    #[error("unexpected size for {digest}: expected {expected} bytes, got {actual}")]
    Size {
        /// The digest of the content being read.
        digest: Digest,
        /// The size the content was expected to have.
        expected: u64,
        /// The size seen (a lower bound when the content was too long).
        actual: u64,
    },
}

impl VerifyError {
    /// Finds a `VerifyError` carried inside an I/O error, as [`VerifyingReader`] reports it.
    pub fn from_io(err: &io::Error) -> Option<&VerifyError> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<VerifyError>())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// A reader that hashes what passes through and checks it against an expected digest and size.
///
/// The read that reaches the end of the content fails with [`io::ErrorKind::InvalidData`]
/// (carrying a [`VerifyError`]) when the content does not match, and so does every read after
/// it: a consumer never sees a clean end of file for bad content. Content longer than the
/// expected size fails as soon as the excess is read.
#[derive(Debug)]
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    expected_size: Option<u64>,
    state: State,
    seen: u64,
}

#[derive(Debug)]
enum State {
    Hashing(Hasher),
    Verified,
    Failed(VerifyError),
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must yield exactly the content of `expected` (and `expected_size`
    /// bytes, when given).
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        VerifyingReader {
            inner,
            expected,
            expected_size,
            state: State::Hashing(expected.algorithm().hasher()),
            seen: 0,
        }
    }

    /// The digest the content must have.
    pub fn expected_digest(&self) -> Digest {
        self.expected
    }

    /// The size the content must have, when one was given.
    pub fn expected_size(&self) -> Option<u64> {
        self.expected_size
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    /// Unwraps the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn size_error(&self) -> VerifyError {
        VerifyError::Size {
            digest: self.expected,
            expected: self.expected_size.unwrap_or_default(),
            actual: self.seen,
        }
    }

    /// Checks the content once its end is reached.
    fn verdict(&self, hasher: Hasher) -> Result<(), VerifyError> {
        if self.expected_size.is_some_and(|size| size != self.seen) {
            return Err(self.size_error());
        }
        let actual = hasher.finalize();
        if actual != self.expected {
            return Err(VerifyError::Digest {
                expected: self.expected,
                actual,
            });
        }
        Ok(())
    }

    fn fail(&mut self, err: VerifyError) -> io::Error {
        self.state = State::Failed(err.clone());
        err.into_io()
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            State::Hashing(_) => {}
            State::Verified => return Ok(0),
            State::Failed(err) => return Err(err.clone().into_io()),
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            let State::Hashing(hasher) = std::mem::replace(&mut self.state, State::Verified) else {
                unreachable!("checked above")
            };
            return match self.verdict(hasher) {
                Ok(()) => Ok(0),
                Err(err) => Err(self.fail(err)),
            };
        }
        self.seen += n as u64;
        if self.expected_size.is_some_and(|size| self.seen > size) {
            let err = self.size_error();
            return Err(self.fail(err));
        }
        if let State::Hashing(hasher) = &mut self.state {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A writer that hashes everything written through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `algorithm`.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: algorithm.hasher(),
            written: 0,
        }
    }

    /// The number of bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// A reference to the inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the digest of what was written, and its length.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finalize(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Hash only what the inner writer accepted, so a short write stays consistent.
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
