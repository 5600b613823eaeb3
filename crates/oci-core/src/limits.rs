//! How much of a document is read whole, and the one bounded read that enforces it.

use std::io::Read;

use crate::{Error, Location, Result};

/// Manifests and indexes are read whole to find their children; the image-spec suggests
/// registries accept at least 4 MiB, and nothing legitimate comes near this.
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;

/// `index.json` is an image index like any other and is read whole: the same bound keeps a
/// hostile one (100 MB of `0,`, say, which parses into gigabytes) a clear error.
pub const MAX_INDEX_SIZE: u64 = MAX_MANIFEST_SIZE;

/// Reads `reader` to its end, refusing more than `limit` bytes with an error naming
/// `location`; I/O errors (verification failures among them) name it too.
pub fn read_bounded(reader: &mut dyn Read, limit: u64, location: &Location) -> Result<Vec<u8>> {
    read_bounded_sized(reader, limit, 0, location)
}

/// [`read_bounded`] of something whose length is known to be about `expected` bytes (a file's
/// size): the buffer is sized once, not doubled up to it, which for a multi-MiB `index.json`
/// costs more in copies and fresh pages than the parse that follows.
pub fn read_bounded_sized(
    reader: &mut dyn Read,
    limit: u64,
    expected: u64,
    location: &Location,
) -> Result<Vec<u8>> {
    let capacity = usize::try_from(expected.min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity.saturating_add(1));
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(location, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidLayout {
            location: location.clone(),
            reason: format!("over the {limit} byte limit"),
        });
    }
    Ok(bytes)
}
