//! Free space: what a decompression bomb really costs is disk, so whatever is written from a
//! decompressed archive (a blob `unpack` writes, the temp file the in-place reader fills) is
//! first checked against the free space of the filesystem it goes to.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// What is kept free whatever an archive claims: 1 GiB, or a twentieth of a smaller
/// filesystem.
fn reserve(total: u64) -> u64 {
    (total / 20).min(1 << 30)
}

/// The room on one filesystem, when it was looked at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    available: u64,
    reserve: u64,
}

impl Room {
    /// The room on the filesystem holding `path`; `None` when it cannot be told.
    pub(crate) fn at(path: &Path) -> Option<Room> {
        rustix::fs::statvfs(path).ok().map(Room::from)
    }

    /// The room on the filesystem holding `file`.
    pub(crate) fn of(file: &File) -> Option<Room> {
        rustix::fs::fstatvfs(file).ok().map(Room::from)
    }

    /// What can be written and still leave the reserve free.
    pub(crate) fn spare(&self) -> u64 {
        self.available.saturating_sub(self.reserve)
    }

    /// An error unless `bytes` fit and leave the reserve free.
    pub(crate) fn check(&self, bytes: u64, what: &str) -> io::Result<()> {
        if self.spare() >= bytes {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{what} needs {bytes} bytes, and only {} are free (of which {} are kept free)",
                self.available, self.reserve
            ),
        ))
    }
}

impl From<rustix::fs::StatVfs> for Room {
    fn from(stat: rustix::fs::StatVfs) -> Room {
        let total = stat.f_blocks.saturating_mul(stat.f_frsize);
        Room {
            available: stat.f_bavail.saturating_mul(stat.f_frsize),
            reserve: reserve(total),
        }
    }
}

/// The most a [`RoomChecked`] writes between two looks at the free space.
const CHECK_EVERY: u64 = 64 << 20;

/// Writes into a file, looking at the free space of its filesystem every [`CHECK_EVERY`]
/// bytes (and more often as it runs out): a write that would leave less than the reserve free
/// fails instead.
pub(crate) struct RoomChecked<'a> {
    file: &'a mut File,
    written: u64,
    /// Writes up to here need no new look.
    checked_up_to: u64,
}

impl<'a> RoomChecked<'a> {
    pub(crate) fn new(file: &'a mut File) -> RoomChecked<'a> {
        RoomChecked {
            file,
            written: 0,
            checked_up_to: 0,
        }
    }
}

impl Write for RoomChecked<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.written + data.len() as u64;
        if end > self.checked_up_to {
            self.checked_up_to = match Room::of(self.file) {
                Some(room) => {
                    let limit = self.written.saturating_add(room.spare());
                    if end > limit {
                        return Err(io::Error::new(
                            io::ErrorKind::StorageFull,
                            format!(
                                "{} bytes written, and going on would leave less than {} of \
                                 the {} bytes free there",
                                self.written, room.reserve, room.available
                            ),
                        ));
                    }
                    limit.min(self.written + CHECK_EVERY).max(end)
                }
                None => u64::MAX,
            };
        }
        let n = self.file.write(data)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
