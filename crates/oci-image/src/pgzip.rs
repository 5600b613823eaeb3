//! Parallel gzip, the way pigz does it: one gzip member, deflated in independent chunks on
//! worker threads.
//!
//! The input is cut into [`CHUNK_SIZE`] chunks. Each is deflated as raw deflate, primed with the
//! last 32 KiB of the chunk before it as dictionary (so the ratio is that of a single stream),
//! and ended with a sync flush, which leaves the output byte-aligned; the last chunk ends the
//! stream instead. The chunks' outputs, concatenated in order between a gzip header and a
//! trailer holding the CRC-32 and length of the whole input, are one ordinary gzip member:
//! every gzip reader reads it, including the single-member readers that stop after the first
//! member of a multi-member file.
//!
//! The output depends only on the input and the level, never on the number of workers or on
//! scheduling, so layers stay reproducible. Memory is bounded: at most `2 × workers + 1`
//! chunks (and their outputs) are in flight, and a writer blocks until the oldest is done.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Input bytes per chunk.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// Deflate's window: the dictionary each chunk is primed with.
const DICTIONARY_SIZE: usize = 32 * 1024;

struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// A gzip writer that compresses on `workers` threads; see the module docs.
pub(crate) struct ParallelGzip<W: Write> {
    /// `None` only once `finish` has taken it.
    out: Option<W>,
    level: u32,
    chunk: Vec<u8>,
    dictionary: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    /// Results of dispatched chunks, oldest first.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub(crate) fn new(out: W, level: u32, workers: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, queue) = sync_channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        let handles = (0..workers)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || work(&queue, level))
            })
            .collect();
        ParallelGzip {
            out: Some(out),
            level,
            chunk: Vec::with_capacity(CHUNK_SIZE),
            dictionary: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            pending: VecDeque::new(),
            max_pending: 2 * workers + 1,
            jobs: Some(jobs),
            workers: handles,
            header_written: false,
        }
    }

    fn out(&mut self) -> &mut W {
        self.out
            .as_mut()
            .expect("the writer is taken only by finish")
    }

    fn header(&self) -> [u8; 10] {
        // No name, no mtime (reproducible); XFL as zlib sets it; OS 255 ("unknown"), as Go and
        // flate2 write it.
        let xfl = match self.level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
    }

    /// Sends the current chunk to a worker; writes finished chunks out, in order.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            let header = self.header();
            self.out().write_all(&header)?;
            self.header_written = true;
        }
        let input = std::mem::replace(
            &mut self.chunk,
            Vec::with_capacity(if last { 0 } else { CHUNK_SIZE }),
        );
        self.crc.update(&input);
        self.total_in += input.len() as u64;
        let tail = &input[input.len().saturating_sub(DICTIONARY_SIZE)..];
        let dictionary = std::mem::replace(&mut self.dictionary, tail.to_vec());
        let (done, result) = sync_channel(1);
        let job = Job {
            input,
            dictionary,
            last,
            done,
        };
        self.jobs
            .as_ref()
            .expect("jobs close only in finish or drop")
            .send(job)
            .map_err(|_| worker_gone())?;
        self.pending.push_back(result);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        // Whatever is already done goes out now, so the output keeps flowing.
        while let Some(front) = self.pending.front() {
            match front.try_recv() {
                Ok(output) => {
                    self.pending.pop_front();
                    self.out().write_all(&output?)?;
                }
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(front) = self.pending.pop_front() {
            let output = front.recv().map_err(|_| worker_gone())??;
            self.out().write_all(&output)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let crc = std::mem::take(&mut self.crc);
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32, as RFC 1952 defines it.
        trailer[4..].copy_from_slice(&((self.total_in & 0xffff_ffff) as u32).to_le_bytes());
        self.out().write_all(&trailer)?;
        self.shutdown();
        Ok(self.out.take().expect("the writer is taken only here"))
    }

    fn shutdown(&mut self) {
        self.jobs = None;
        for handle in self.workers.drain(..) {
            // A worker that panicked already failed its job; its result was an error above.
            let _ = handle.join();
        }
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let room = CHUNK_SIZE - self.chunk.len();
            let n = room.min(rest.len());
            self.chunk.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.chunk.len() == CHUNK_SIZE {
                self.dispatch(false)?;
            }
        }
        Ok(buf.len())
    }

    /// Writes out the chunks that are done; a partial chunk stays until it is full, since
    /// cutting it short would make the output depend on when `flush` was called.
    fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }
}

impl<W: Write> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a gzip worker thread died")
}

/// A worker: takes jobs until the queue closes.
fn work(queue: &Mutex<Receiver<Job>>, level: u32) {
    let mut compress = Compress::new(flate2::Compression::new(level), false);
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        compress.reset();
        let result = deflate_chunk(&mut compress, &job);
        // The writer may be gone (an error elsewhere); nothing to report to then.
        let _ = job.done.send(result);
    }
}

fn deflate_chunk(compress: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    if !job.dictionary.is_empty() {
        compress
            .set_dictionary(&job.dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.input;
    let mut output = Vec::with_capacity(input.len() / 2 + 1024);
    let start = compress.total_in();
    loop {
        if output.capacity() - output.len() < 1024 {
            output.reserve(output.capacity().max(64 * 1024));
        }
        let consumed =
            usize::try_from(compress.total_in() - start).expect("a chunk fits in memory");
        let status = compress
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() - start == input.len() as u64;
        match (job.last, status) {
            (true, Status::StreamEnd) => break,
            // zlib's rule: a flush is complete when deflate returns with output space left.
            (false, _) if all_in && output.len() < output.capacity() => break,
            _ => {}
        }
    }
    Ok(output)
}
