//! Hashing and writing a blob off the caller's thread.
//!
//! The caller fills chunks; a hashing thread digests each one and hands it to a writing
//! thread, which writes it to the temp file. The caller's copying, the hash and the write then
//! overlap on separate cores. Chunks come back to the caller for reuse, so memory stays at a
//! few chunks whatever the blob's size.
//!
//! The writer writes with `O_DIRECT` where the filesystem takes it: straight from the chunk to
//! the device, with no copy into the page cache and no writeback left for the final fsync.
//! Allocating a GiB of fresh page cache is what a large blob write spent most of its system
//! time on, and on a VM that hands freed memory back to its host (free page reporting), each
//! fresh page is also a fault on the host: twice the time for the same bytes. Elsewhere it
//! writes through the page cache and starts each range's writeback early, so the final fsync
//! waits only for the last few chunks.

use std::fs::File;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use oci_core::oci_digest::Hasher;

/// The unit of work: large enough for the SIMD hashers and for few syscalls, small enough
/// that a handful in flight is little memory.
pub const CHUNK_SIZE: usize = 1 << 20;

/// What `O_DIRECT` asks of a buffer's address, a write's offset and its length: the logical
/// block size, at most a page on the devices this is meant for (a device asking for more
/// fails the write with `EINVAL`, and the writer falls back to the page cache).
const DIRECT_ALIGN: usize = 4096;

/// Chunks queued between two stages.
const QUEUE_DEPTH: usize = 4;

/// How much is written through the page cache before its writeback is started.
const WRITEBACK_STEP: u64 = 8 << 20;

/// How many spare chunks a pool keeps: what four blobs written at once hold in flight.
const POOL_LIMIT: usize = 4 * (2 * QUEUE_DEPTH + 4);

/// Chunks of finished blobs, kept for the next blobs of the same layout.
///
/// Without it every blob allocated its chunks afresh, and the allocator handed back what a
/// finished blob freed: a blob of 8 MiB took about 9 MiB of new pages, each a page fault and a
/// page to zero, as many bytes as it held. In a pull of 64 such layers that was a tenth of the
/// process's time. The pool lives as long as the layout (its clones share it) and holds at
/// most [`POOL_LIMIT`] chunks.
#[derive(Default)]
pub struct ChunkPool {
    spare: Mutex<Vec<Vec<u8>>>,
}

impl ChunkPool {
    /// A chunk to fill. A reused one holds an earlier blob's bytes; only the bytes a caller
    /// fills are ever read, so it is not zeroed.
    pub fn take(self: &Arc<ChunkPool>) -> Chunk {
        let reused = self.spare.lock().ok().and_then(|mut spare| spare.pop());
        let buf = reused.unwrap_or_else(|| vec![0; CHUNK_SIZE + DIRECT_ALIGN]);
        // The heap buffer never moves while the Vec is not resized, so neither does `start`.
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        Chunk {
            buf,
            start,
            pool: Arc::clone(self),
        }
    }

    fn give_back(&self, buf: Vec<u8>) {
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < POOL_LIMIT
        {
            spare.push(buf);
        }
    }

    #[cfg(test)]
    fn spare_count(&self) -> usize {
        self.spare.lock().map(|spare| spare.len()).unwrap_or(0)
    }
}

impl std::fmt::Debug for ChunkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkPool").finish_non_exhaustive()
    }
}

/// A [`CHUNK_SIZE`] buffer whose start is [`DIRECT_ALIGN`]-aligned, as `O_DIRECT` needs. It
/// goes back to its pool when dropped.
pub struct Chunk {
    buf: Vec<u8>,
    start: usize,
    pool: Arc<ChunkPool>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + CHUNK_SIZE]
    }
}

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + CHUNK_SIZE]
    }
}

/// A chunk and how many of its bytes are content (all but for the last).
type Filled = (Chunk, usize);

pub struct Pipeline {
    to_hasher: Option<SyncSender<Filled>>,
    spare: Receiver<Chunk>,
    pool: Arc<ChunkPool>,
    hasher: Option<JoinHandle<Hasher>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl Pipeline {
    /// Starts the two threads. `file` is the writer thread's own handle on the temp file, and
    /// `direct` one opened with `O_DIRECT`, when the filesystem allows it.
    pub fn start(
        hasher: Hasher,
        file: File,
        direct: Option<File>,
        durable: bool,
        pool: Arc<ChunkPool>,
    ) -> io::Result<Pipeline> {
        let (to_hasher, hasher_input) = sync_channel::<Filled>(QUEUE_DEPTH);
        let (to_writer, writer_input) = sync_channel::<Filled>(QUEUE_DEPTH);
        let (spare_sender, spare) = sync_channel::<Chunk>(2 * QUEUE_DEPTH + 2);
        let hasher = thread::Builder::new()
            .name("blob-hash".into())
            .spawn(move || {
                let mut hasher = hasher;
                for (chunk, len) in hasher_input {
                    hasher.update(&chunk[..len]);
                    if to_writer.send((chunk, len)).is_err() {
                        break;
                    }
                }
                hasher
            })?;
        let writer = thread::Builder::new()
            .name("blob-write".into())
            .spawn(move || {
                let mut writer = ChunkWriter {
                    file,
                    direct,
                    durable,
                    written: 0,
                    flushed: 0,
                };
                for (chunk, len) in writer_input {
                    writer.write(&chunk[..len])?;
                    // A full return queue only means the caller has buffers enough.
                    let _ = spare_sender.try_send(chunk);
                }
                Ok(())
            })?;
        Ok(Pipeline {
            to_hasher: Some(to_hasher),
            spare,
            pool,
            hasher: Some(hasher),
            writer: Some(writer),
        })
    }

    /// A chunk to fill: one this blob's writer returned when there is one, else the pool's.
    pub fn spare_chunk(&self) -> Chunk {
        self.spare.try_recv().unwrap_or_else(|_| self.pool.take())
    }

    /// Queues the first `len` bytes of `chunk`; all of them except for the last chunk. When a
    /// stage has stopped, the writer's error is returned.
    pub fn send(&mut self, chunk: Chunk, len: usize) -> io::Result<()> {
        let sent = self
            .to_hasher
            .as_ref()
            .is_some_and(|to_hasher| to_hasher.send((chunk, len)).is_ok());
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

/// The writing thread's state: where the next chunk goes, and how it is written.
struct ChunkWriter {
    file: File,
    direct: Option<File>,
    durable: bool,
    written: u64,
    /// Through the page cache: how much has had its writeback started.
    flushed: u64,
}

impl ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let offset = self.written;
        self.written += data.len() as u64;
        if let Some(direct) = &self.direct {
            // Every chunk but the last is whole, so offsets stay aligned; the last one's
            // unaligned tail goes through the page cache.
            let aligned = data.len() - data.len() % DIRECT_ALIGN;
            match direct.write_all_at(&data[..aligned], offset) {
                Ok(()) => {
                    return self
                        .file
                        .write_all_at(&data[aligned..], offset + aligned as u64);
                }
                // The device wants more alignment than this, say: the page cache it is.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(data, offset)?;
        if self.durable && self.written - self.flushed >= WRITEBACK_STEP {
            start_writeback(&self.file, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_chunk_is_the_next_one_taken_and_the_pool_keeps_at_most_its_limit() {
        let pool = Arc::new(ChunkPool::default());
        let first = pool.take();
        let address = first.as_ptr();
        drop(first);
        assert_eq!(pool.spare_count(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the spare buffer was not reused");
        assert_eq!(again.as_ptr() as usize % DIRECT_ALIGN, 0);
        assert_eq!(again.len(), CHUNK_SIZE);
        drop(again);

        let many: Vec<Chunk> = (0..POOL_LIMIT + 5).map(|_| pool.take()).collect();
        drop(many);
        assert_eq!(pool.spare_count(), POOL_LIMIT);
    }
}
