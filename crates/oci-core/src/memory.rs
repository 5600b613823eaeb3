//! [`MemoryStore`]: a store with no files, and the worked example of a backend.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use oci_digest::{Algorithm, Digest, Hasher, VerifyingReader};
use oci_spec::image::{Descriptor, ImageIndex};

use crate::capability::{BlobListing, BlobRemoval, ExclusiveLock};
use crate::index::IndexDocument;
use crate::{
    BlobWriter, ContentKind, Error, Location, Result, Store, check_commit, check_stored, index,
};

/// Content and an index held in memory. Manifests and blobs share one namespace, as in a
/// layout. Useful for tests, for building an image before deciding where it goes, and as the
/// smallest complete backend: [`Store`] plus [`BlobListing`], [`BlobRemoval`] and
/// [`ExclusiveLock`], so everything in this crate runs on it, gc included.
///
/// ```
/// use oci_core::prelude::*;
/// use oci_core::MemoryStore;
///
/// let store = MemoryStore::new();
/// let digest = store.write_blob(Algorithm::Sha256, b"hello")?;
/// assert!(store.contains(ContentKind::Blob, digest)?);
/// assert!(fsck(&store)?.is_clean());
/// # Ok::<(), oci_core::Error>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    location: Location,
    state: Mutex<State>,
    /// Held by every index change and by [`ExclusiveLock::run_exclusive`].
    index_lock: Mutex<()>,
}

#[derive(Debug)]
struct State {
    blobs: BTreeMap<Digest, Stored>,
    index: IndexDocument,
}

#[derive(Debug, Clone)]
struct Stored {
    bytes: Arc<[u8]>,
    modified: SystemTime,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store, named `memory` in messages.
    pub fn new() -> MemoryStore {
        MemoryStore::named("memory")
    }

    /// An empty store with a name for messages.
    pub fn named(name: impl Into<String>) -> MemoryStore {
        MemoryStore {
            location: Location::Url(name.into()),
            state: Mutex::new(State {
                blobs: BTreeMap::new(),
                index: IndexDocument::from_index(&index::empty_index())
                    .expect("the empty index serialises"),
            }),
            index_lock: Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left no half-made change: every change is one insert
        // or one replacement.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn index_lock(&self) -> MutexGuard<'_, ()> {
        self.index_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes checked content; content already there is kept and touched, as a re-put.
    fn publish(&self, digest: Digest, bytes: Vec<u8>) {
        let modified = SystemTime::now();
        self.state()
            .blobs
            .entry(digest)
            .and_modify(|stored| stored.modified = modified)
            .or_insert_with(|| Stored {
                bytes: bytes.into(),
                modified,
            });
    }
}

impl Store for MemoryStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        Ok(self
            .state()
            .blobs
            .get(&digest)
            .map(|stored| stored.bytes.len() as u64))
    }

    fn fetch(
        &self,
        _kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let stored =
            self.state().blobs.get(&digest).cloned().ok_or_else(|| {
                Error::content_not_found(self.location.of_content(digest), digest)
            })?;
        let reader = io::Cursor::new(stored.bytes);
        Ok(Box::new(VerifyingReader::new(reader, digest, size)))
    }

    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let mut writer = self.begin_blob(digest.algorithm())?;
        writer
            .write_from(content)
            .map_err(|e| Error::io(self.location.of_content(digest), e.into_inner()))?;
        writer.commit(Some(descriptor.size()), Some(digest))?;
        Ok(())
    }

    fn verifies_reads(&self) -> bool {
        true
    }

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(MemoryBlobWriter {
            store: self,
            hasher: algorithm.hasher(),
            bytes: Vec::new(),
        }))
    }

    fn index(&self) -> Result<ImageIndex> {
        self.state()
            .index
            .to_index()
            .map_err(|e| Error::json(&self.location, e))
    }

    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<crate::index::PutOutcome> {
        let _lock = self.index_lock();
        check_stored(self, entries, required)?;
        self.state()
            .index
            .put_all(entries)
            .map_err(|e| Error::json(&self.location, e))
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        if name.is_empty() {
            return Err(Error::InvalidRefName {
                name: String::new(),
            });
        }
        let _lock = self.index_lock();
        let removed = self
            .state()
            .index
            .remove_ref(name)
            .map_err(|e| Error::json(&self.location, e))?;
        Ok(removed > 0)
    }

    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        Some(self)
    }

    fn blob_removal(&self) -> Option<&dyn BlobRemoval> {
        Some(self)
    }

    fn exclusive_lock(&self) -> Option<&dyn ExclusiveLock> {
        Some(self)
    }
}

impl BlobListing for MemoryStore {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        Ok(self.state().blobs.keys().copied().collect())
    }
}

impl BlobRemoval for MemoryStore {
    fn remove_blob(&self, digest: Digest) -> Result<()> {
        match self.state().blobs.remove(&digest) {
            Some(_) => Ok(()),
            None => Err(Error::content_not_found(
                self.location.of_content(digest),
                digest,
            )),
        }
    }

    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        match self.state().blobs.get(&digest) {
            Some(stored) => Ok(Some(stored.modified)),
            None => Err(Error::content_not_found(
                self.location.of_content(digest),
                digest,
            )),
        }
    }

    /// A writer into memory holds the store while it writes; nothing is in flight that gc
    /// could take from it between a write and a tag except by a caller's own ordering.
    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

    fn remove_stale_blobs(&self, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>> {
        // One lock for the batch: judged and removed together, so nothing re-put in between.
        let mut state = self.state();
        let mut removed = Vec::new();
        for digest in digests {
            if state
                .blobs
                .get(digest)
                .is_some_and(|stored| stored.modified <= cutoff)
            {
                state.blobs.remove(digest);
                removed.push(*digest);
            }
        }
        Ok(removed)
    }
}

impl ExclusiveLock for MemoryStore {
    fn run_exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let _lock = self.index_lock();
        work()
    }
}

/// A blob being written to a [`MemoryStore`]: held in memory, hashed as it comes.
struct MemoryBlobWriter<'s> {
    store: &'s MemoryStore,
    hasher: Hasher,
    bytes: Vec<u8>,
}

impl Write for MemoryBlobWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for MemoryBlobWriter<'_> {
    fn algorithm(&self) -> Algorithm {
        self.hasher.algorithm()
    }

    fn bytes_written(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        let writer = *self;
        let digest = writer.hasher.finalize();
        check_commit(digest, writer.bytes.len() as u64, size, expected)?;
        writer.store.publish(digest, writer.bytes);
        Ok(digest)
    }
}
