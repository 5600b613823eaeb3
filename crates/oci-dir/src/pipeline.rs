//! Hashing and writing a blob off the caller's thread.
//!
//! The caller fills chunks; a hashing thread digests each one and hands it to a writing
//! thread, which writes it to the temp file and, when durable, starts its writeback at once.
//! The caller's copying, the hash and the write then overlap on separate cores, and the final
//! fsync waits only for the last few chunks instead of the whole blob. Chunks come back to the
//! caller for reuse, so memory stays at a few chunks whatever the blob's size.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};

use oci_core::oci_digest::Hasher;

/// The unit of work: large enough for the SIMD hashers and for few syscalls, small enough
/// that a handful in flight is little memory.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Chunks queued between two stages.
const QUEUE_DEPTH: usize = 4;

/// How much is written before its writeback is started.
const WRITEBACK_STEP: u64 = 8 << 20;

pub struct Pipeline {
    to_hasher: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    hasher: Option<JoinHandle<Hasher>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl Pipeline {
    /// Starts the two threads; `file` is the writer thread's own handle on the temp file.
    pub fn start(hasher: Hasher, file: File, durable: bool) -> io::Result<Pipeline> {
        let (to_hasher, hasher_input) = sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let (to_writer, writer_input) = sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let (spare_sender, spare) = sync_channel::<Vec<u8>>(2 * QUEUE_DEPTH + 2);
        let hasher = thread::Builder::new()
            .name("blob-hash".into())
            .spawn(move || {
                let mut hasher = hasher;
                for chunk in hasher_input {
                    hasher.update(&chunk);
                    if to_writer.send(chunk).is_err() {
                        break;
                    }
                }
                hasher
            })?;
        let writer = thread::Builder::new()
            .name("blob-write".into())
            .spawn(move || write_chunks(file, &writer_input, &spare_sender, durable))?;
        Ok(Pipeline {
            to_hasher: Some(to_hasher),
            spare,
            hasher: Some(hasher),
            writer: Some(writer),
        })
    }

    /// A chunk buffer to fill, [`CHUNK_SIZE`] long: a returned one when there is one (its
    /// old bytes are to be overwritten, so it is not zeroed again).
    pub fn spare_buffer(&self) -> Vec<u8> {
        let mut chunk = self.spare.try_recv().unwrap_or_default();
        chunk.resize(CHUNK_SIZE, 0);
        chunk
    }

    /// Queues a chunk. When a stage has stopped, the writer's error is returned.
    pub fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        let sent = self
            .to_hasher
            .as_ref()
            .is_some_and(|to_hasher| to_hasher.send(chunk).is_ok());
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// Waits for every chunk to be hashed and written; returns the hasher.
    pub fn finish(mut self) -> io::Result<Hasher> {
        drop(self.to_hasher.take());
        let hasher = self.hasher.take().map(JoinHandle::join);
        let written = self.writer.take().map(JoinHandle::join);
        match (hasher, written) {
            (Some(Ok(hasher)), Some(Ok(Ok(())))) => Ok(hasher),
            (_, Some(Ok(Err(e)))) => Err(e),
            _ => Err(io::Error::other("a blob pipeline thread panicked")),
        }
    }

    fn stopped(&mut self) -> io::Error {
        drop(self.to_hasher.take());
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the blob pipeline stopped"),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Abandoned (not committed): let the threads drain and end.
        drop(self.to_hasher.take());
    }
}

fn write_chunks(
    mut file: File,
    input: &Receiver<Vec<u8>>,
    spare: &SyncSender<Vec<u8>>,
    durable: bool,
) -> io::Result<()> {
    let mut written = 0u64;
    let mut flushed = 0u64;
    for chunk in input {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
        if durable && written - flushed >= WRITEBACK_STEP {
            start_writeback(&file, flushed, written - flushed);
            flushed = written;
        }
        // A full return queue only means the caller has buffers enough.
        let _ = spare.try_send(chunk);
    }
    Ok(())
}

/// Asks the kernel to start writing a range back now rather than at the final fsync. Only a
/// hint: the fsync at commit is what makes the blob durable, so an error here is ignored.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    #[expect(
        unsafe_code,
        reason = "sync_file_range has no safe wrapper in std or rustix"
    )]
    // SAFETY: the fd is open for the whole call (borrowed from `file`); the call reads no
    // memory of ours and only schedules I/O on that file.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}
