//! Copying a stream in large chunks, telling a failed read from a failed write.

use std::fmt;
use std::io::{self, Read, Write};

use oci_digest::VerifyError;
use oci_digest::io::BUFFER_SIZE;

use crate::Location;

/// Which side of a copy failed: a full disk under the destination is not the source's fault,
/// and a message must name the one at fault.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the source failed (or it did not verify).
    Read(io::Error),
    /// Writing the destination failed.
    Write(io::Error),
}

impl CopyError {
    /// The underlying error, whichever side it came from.
    pub fn into_inner(self) -> io::Error {
        match self {
            CopyError::Read(e) | CopyError::Write(e) => e,
        }
    }
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "reading: {e}"),
            CopyError::Write(e) => write!(f, "writing: {e}"),
        }
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CopyError::Read(e) | CopyError::Write(e) => Some(e),
        }
    }
}

/// Copies `reader` to `writer` through one large buffer and returns the byte count. `io::copy`
/// moves 8 KiB at a time, too little for the hashers behind blob readers and writers.
pub fn copy_stream(
    reader: &mut (impl Read + ?Sized),
    writer: &mut (impl Write + ?Sized),
) -> Result<u64, CopyError> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        writer.write_all(&buffer[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Wraps `reader` so that its failures name `location`: a store that writes what the reader
/// yields reports a failed read through [`Error::io`](crate::Error::io), which then blames
/// `location` (a copy's source, a file being attached), not the store's own location.
/// Verification failures pass as they are.
pub fn attribute_reads<R: Read>(reader: R, location: Location) -> impl Read {
    AttributedReader { reader, location }
}

struct AttributedReader<R> {
    reader: R,
    location: Location,
}

impl<R: Read> Read for AttributedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf).map_err(|e| {
            if VerifyError::from_io(&e).is_some() || ReadFailure::is(&e) {
                e
            } else {
                io::Error::new(
                    e.kind(),
                    ReadFailure {
                        location: self.location.clone(),
                        source: e,
                    },
                )
            }
        })
    }
}

/// A read failure that knows where it happened, carried inside an `io::Error`.
#[derive(Debug)]
pub(crate) struct ReadFailure {
    pub location: Location,
    pub source: io::Error,
}

impl ReadFailure {
    fn is(error: &io::Error) -> bool {
        error
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<ReadFailure>().is_some())
    }

    /// The failure inside `error`, or `error` as it was.
    pub(crate) fn take(error: io::Error) -> Result<ReadFailure, io::Error> {
        if !ReadFailure::is(&error) {
            return Err(error);
        }
        let kind = error.kind();
        match error
            .into_inner()
            .map(<dyn std::error::Error + Send + Sync>::downcast)
        {
            Some(Ok(failure)) => Ok(*failure),
            // Checked above; rebuilt all the same rather than lost.
            Some(Err(inner)) => Err(io::Error::new(kind, inner)),
            None => Err(io::Error::from(kind)),
        }
    }
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.source)
    }
}

impl std::error::Error for ReadFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
