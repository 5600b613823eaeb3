//! Copying with the reads on a thread of their own: when the reader does real work per byte
//! (a verifying reader hashes), that work and the writes overlap instead of taking turns.

use std::io::{self, Read, Write};
use std::sync::mpsc::sync_channel;
use std::thread;

use oci_core::CopyError;

/// Large enough for few syscalls per GiB; a handful in flight stays far below the RSS bound.
const CHUNK_SIZE: usize = 1 << 20;
/// Chunks read ahead of the writer.
const QUEUE_DEPTH: usize = 4;

/// Copies `reader` to its end into `writer`; returns the bytes copied. `size_hint` only
/// sizes the buffers of small copies. A failed write stops the reader; a failed read stops
/// the copy after the chunks before it are written.
pub fn copy<R: Read + Send>(
    mut reader: R,
    writer: &mut dyn Write,
    size_hint: u64,
) -> Result<u64, CopyError> {
    let chunk_size = usize::try_from(size_hint)
        .unwrap_or(CHUNK_SIZE)
        .clamp(1, CHUNK_SIZE);
    let (to_writer, chunks) = sync_channel::<io::Result<Vec<u8>>>(QUEUE_DEPTH);
    let (spare_sender, spare) = sync_channel::<Vec<u8>>(QUEUE_DEPTH + 2);
    thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let mut chunk = spare.try_recv().unwrap_or_else(|_| vec![0; chunk_size]);
                chunk.resize(chunk_size, 0);
                let read = fill(&mut reader, &mut chunk).map(|n| {
                    chunk.truncate(n);
                    chunk
                });
                let done = !matches!(&read, Ok(chunk) if !chunk.is_empty());
                // The writer hung up: it failed, and says why.
                if to_writer.send(read).is_err() || done {
                    return;
                }
            }
        });
        let mut copied = 0u64;
        for read in chunks {
            let chunk = read.map_err(CopyError::Read)?;
            if chunk.is_empty() {
                break;
            }
            writer.write_all(&chunk).map_err(CopyError::Write)?;
            copied += chunk.len() as u64;
            let _ = spare_sender.try_send(chunk);
        }
        Ok(copied)
    })
}

/// Reads until `buffer` is full or the reader ends; returns how much was read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FailsAfter(usize);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn copies_everything_in_order() {
        let data: Vec<u8> = (0..5 * CHUNK_SIZE + 123).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let n = copy(&data[..], &mut out, data.len() as u64).expect("copies");
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
        let mut out = Vec::new();
        assert_eq!(copy(&b""[..], &mut out, 0).expect("copies nothing"), 0);
    }

    #[test]
    fn a_read_error_is_a_read_failure_after_what_came_before() {
        let mut out = Vec::new();
        let err = copy(FailsAfter(3 * CHUNK_SIZE), &mut out, 1 << 30).expect_err("read fails");
        assert!(matches!(err, CopyError::Read(e) if e.to_string() == "disk on fire"));
        assert_eq!(out.len(), 3 * CHUNK_SIZE);
    }

    #[test]
    fn a_write_error_is_a_write_failure() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("no space"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = vec![1u8; 3 * CHUNK_SIZE];
        let err = copy(&data[..], &mut Full, data.len() as u64).expect_err("write fails");
        assert!(matches!(err, CopyError::Write(e) if e.to_string() == "no space"));
    }
}
