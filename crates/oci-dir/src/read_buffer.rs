//! A buffer to read a file whole into, backed by transparent huge pages when the file is large.
//!
//! Each fresh 4 KiB page of a buffer costs a fault, an allocation and a clear, and an unmap at
//! the end. A tag into a 2.6 MB `index.json` read into a `Vec` spent more on its 640 page faults
//! than on the copy (2 ms of a 10 ms tag). Memory advised for huge pages takes two faults for
//! the same file. The kernel may still give small pages (`transparent_hugepage` set to
//! `never`, or no free huge page): then it costs what a `Vec` costs.

use std::io::{self, Read};
use std::ops::Range;

use memmap2::{Advice, MmapMut, MmapOptions};

/// The size of a huge page on x86-64 and arm64 with 4 KiB pages.
const HUGE_PAGE: usize = 2 << 20;

/// Below this many bytes the buffer is a `Vec`: one huge page costs about as much to clear as a
/// few hundred small-page faults save.
const HUGE_PAGE_FROM: usize = 1 << 20;

/// The bytes read, in whichever memory suited their size.
pub struct ReadBuffer {
    storage: Storage,
}

enum Storage {
    Heap(Vec<u8>),
    Mapped { map: MmapMut, filled: Range<usize> },
}

impl ReadBuffer {
    /// Reads `reader` to its end into a buffer made for `expected` bytes. It reads on past
    /// `expected` (a file that grew meanwhile is still read whole), and stops after `limit`
    /// bytes: the caller checks the length.
    pub fn read_to_end(reader: &mut dyn Read, expected: usize, limit: u64) -> io::Result<Self> {
        let mut reader = reader.take(limit);
        // One byte over the length, so that the read that finds the end needs no new room.
        let capacity = expected.saturating_add(1);
        let Some(mut map) = huge_page_map(capacity) else {
            let mut bytes = Vec::with_capacity(capacity);
            reader.read_to_end(&mut bytes)?;
            return Ok(ReadBuffer {
                storage: Storage::Heap(bytes),
            });
        };
        // Huge pages back only aligned 2 MiB ranges: the text starts at one.
        let start = map.as_ptr().align_offset(HUGE_PAGE).min(map.len());
        let mut end = start;
        while end < map.len() {
            match reader.read(&mut map[end..]) {
                Ok(0) => {
                    return Ok(ReadBuffer {
                        storage: Storage::Mapped {
                            map,
                            filled: start..end,
                        },
                    });
                }
                Ok(n) => end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Full: the file outgrew the mapping, so the rest goes where it can grow.
        let mut bytes = map[start..end].to_vec();
        reader.read_to_end(&mut bytes)?;
        Ok(ReadBuffer {
            storage: Storage::Heap(bytes),
        })
    }

    /// The number of bytes read.
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        match &self.storage {
            Storage::Heap(bytes) => bytes,
            Storage::Mapped { map, filled } => &map[filled.clone()],
        }
    }
}

/// An anonymous mapping with room for `capacity` bytes from a huge-page boundary, advised for
/// huge pages; `None` for a small capacity, or if the system refuses the mapping.
fn huge_page_map(capacity: usize) -> Option<MmapMut> {
    if capacity < HUGE_PAGE_FROM {
        return None;
    }
    // Whole huge pages, and one more of slack to align the start; the slack is never touched,
    // so it takes no memory.
    let len = capacity
        .checked_next_multiple_of(HUGE_PAGE)?
        .checked_add(HUGE_PAGE)?;
    let map = MmapOptions::new().len(len).map_anon().ok()?;
    // Advice only: refused (no THP in the kernel), the mapping still works with small pages.
    let _ = map.advise(Advice::HugePage);
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], expected: usize, limit: u64) -> Vec<u8> {
        ReadBuffer::read_to_end(&mut &bytes[..], expected, limit)
            .map(|buffer| buffer.as_ref().to_vec())
            .unwrap_or_default()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn reads_small_and_large_files_whole() {
        for len in [
            0,
            1,
            4096,
            HUGE_PAGE_FROM - 1,
            HUGE_PAGE_FROM,
            3 * HUGE_PAGE + 17,
        ] {
            let bytes = pattern(len);
            assert_eq!(read(&bytes, len, u64::MAX), bytes, "{len} bytes");
        }
    }

    #[test]
    fn a_file_that_grew_past_the_mapping_is_read_whole() {
        // Expected 1 MiB, so the mapping holds 2 MiB (plus slack): the file is 5 MiB.
        let bytes = pattern(5 * HUGE_PAGE / 2);
        assert_eq!(read(&bytes, HUGE_PAGE_FROM, u64::MAX), bytes);
    }

    #[test]
    fn a_file_that_shrank_is_read_to_its_end() {
        let bytes = pattern(HUGE_PAGE_FROM + 5);
        assert_eq!(read(&bytes, 2 * HUGE_PAGE, u64::MAX), bytes);
    }

    #[test]
    fn reading_stops_at_the_limit() {
        let bytes = pattern(3 * HUGE_PAGE);
        for expected in [10, HUGE_PAGE_FROM] {
            let limit = HUGE_PAGE as u64 + 1;
            assert_eq!(
                read(&bytes, expected, limit),
                bytes[..HUGE_PAGE + 1],
                "expected {expected}"
            );
        }
    }
}
