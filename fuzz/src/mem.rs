//! An in-memory [`ImageDriver`] over a map, so the walk target needs no disk. It stores blobs
//! under whatever digest it is given ([`MemDriver::insert`]), content matching or not: that is
//! how a fuzz input makes a corrupt layout, or one whose index refers to itself.

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use oci_core::{
    Algorithm, BlobWriter, Digest, Error, ImageDriver, LayoutFile, MetadataFile, Result,
    check_commit,
};
use oci_digest::Hasher;

/// A layout held in a map from file to bytes.
#[derive(Debug)]
pub struct MemDriver {
    location: PathBuf,
    files: Mutex<HashMap<LayoutFile, Vec<u8>>>,
}

impl Default for MemDriver {
    fn default() -> Self {
        MemDriver::new("mem:")
    }
}

impl MemDriver {
    /// An empty layout (no `oci-layout`, no `index.json`) named `location` in messages.
    pub fn new(location: impl Into<PathBuf>) -> MemDriver {
        MemDriver {
            location: location.into(),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `bytes` as `file`, as is: a blob need not hash to its digest.
    pub fn insert(&self, file: LayoutFile, bytes: Vec<u8>) {
        self.files().insert(file, bytes);
    }

    /// Every file and its bytes.
    pub fn snapshot(&self) -> HashMap<LayoutFile, Vec<u8>> {
        self.files().clone()
    }

    fn files(&self) -> MutexGuard<'_, HashMap<LayoutFile, Vec<u8>>> {
        // A panic while holding the lock is a fuzz crash already; the map is still usable.
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn not_found(&self, file: LayoutFile) -> Error {
        Error::NotFound {
            path: self.location.join(file.relative_path()),
            digest: file.digest(),
        }
    }
}

impl ImageDriver for MemDriver {
    fn location(&self) -> &Path {
        &self.location
    }

    fn init(&self) -> Result<()> {
        Ok(())
    }

    fn reader(&self, file: LayoutFile) -> Result<Box<dyn Read + Send + '_>> {
        let bytes = self
            .files()
            .get(&file)
            .cloned()
            .ok_or_else(|| self.not_found(file))?;
        Ok(Box::new(Cursor::new(bytes)))
    }

    fn write_file(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        self.insert(file.as_layout_file(), contents.to_vec());
        Ok(())
    }

    fn remove(&self, file: LayoutFile) -> Result<()> {
        match self.files().remove(&file) {
            Some(_) => Ok(()),
            None => Err(self.not_found(file)),
        }
    }

    fn blob_writer(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(MemBlobWriter {
            driver: self,
            hasher: algorithm.hasher(),
            bytes: Vec::new(),
        }))
    }

    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests: Vec<Digest> = self.files().keys().filter_map(LayoutFile::digest).collect();
        digests.sort();
        Ok(digests)
    }

    fn blob_size(&self, digest: Digest) -> Result<u64> {
        let file = LayoutFile::Blob(digest);
        self.files()
            .get(&file)
            .map(|bytes| bytes.len() as u64)
            .ok_or_else(|| self.not_found(file))
    }
}

/// Hashes while buffering; publishes on a commit that checks out.
struct MemBlobWriter<'a> {
    driver: &'a MemDriver,
    hasher: Hasher,
    bytes: Vec<u8>,
}

impl Write for MemBlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for MemBlobWriter<'_> {
    fn algorithm(&self) -> Algorithm {
        self.hasher.algorithm()
    }

    fn bytes_written(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        let MemBlobWriter {
            driver,
            hasher,
            bytes,
        } = *self;
        let digest = hasher.finalize();
        check_commit(digest, bytes.len() as u64, size, expected)?;
        driver.insert(LayoutFile::Blob(digest), bytes);
        Ok(digest)
    }
}
