//! Copying a stream in large chunks, telling a failed read from a failed write.

use std::fmt;
use std::io::{self, Read, Write};

use oci_digest::io::BUFFER_SIZE;

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
