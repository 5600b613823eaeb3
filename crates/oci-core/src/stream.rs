//! Copying a stream in large chunks.

use std::io::{self, Read, Write};

use oci_digest::io::BUFFER_SIZE;

/// Copies `reader` to `writer` through one large buffer and returns the byte count. `io::copy`
/// moves 8 KiB at a time, too little for the hashers behind blob readers and writers.
pub fn copy_stream(
    reader: &mut (impl Read + ?Sized),
    writer: &mut (impl Write + ?Sized),
) -> io::Result<u64> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buffer[..n])?;
        total += n as u64;
    }
}
