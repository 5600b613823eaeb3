//! An in-memory layout over a map, so the walk target needs no disk. Unlike
//! [`oci_core::MemoryStore`], which verifies what it is given, it stores a blob under whatever
//! digest it is given ([`MemLayout::insert`]), content matching or not, and keeps `index.json`
//! and `oci-layout` as raw bytes: that is how a fuzz input makes a corrupt layout, one whose
//! index does not parse, or one whose index refers to itself. What it hands out is verified
//! ([`Store::fetch`] wraps the bytes in a [`VerifyingReader`]), as a real store's reads are,
//! unless made [`MemLayout::without_read_verification`] (a directory layout opened with
//! `DirOptions::verify_reads` off: the only way a reader follows a cycle of references); what
//! is written through the [`Store`] interface is checked before it is stored.

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use oci_core::capability::{BlobListing, BlobRemoval, ExclusiveLock, LayoutFiles, StrayFile};
use oci_core::index::{self, IndexDocument};
use oci_core::oci_digest::{Hasher, VerifyingReader};
use oci_core::oci_spec::image::{Descriptor, ImageIndex};
use oci_core::{
    Algorithm, BlobWriter, ContentKind, Digest, Error, LayoutFile, Location, MAX_INDEX_SIZE,
    MetadataFile, Result, Store, check_commit, check_stored, read_bounded,
};

/// A layout held in a map from file to bytes. Manifests and blobs share one namespace, as in a
/// directory layout.
#[derive(Debug)]
pub struct MemLayout {
    location: Location,
    files: Mutex<HashMap<LayoutFile, Vec<u8>>>,
    verify_reads: bool,
    /// Held by every index change and by [`ExclusiveLock::run_exclusive`].
    index_lock: Mutex<()>,
}

impl Default for MemLayout {
    fn default() -> Self {
        MemLayout::new("mem")
    }
}

impl MemLayout {
    /// An empty layout (no `oci-layout`, no `index.json`) named `name` in messages.
    pub fn new(name: impl Into<String>) -> MemLayout {
        MemLayout {
            location: Location::Url(name.into()),
            files: Mutex::new(HashMap::new()),
            verify_reads: true,
            index_lock: Mutex::new(()),
        }
    }

    /// The same layout, whose [`Store::fetch`] hands out blobs as stored, unchecked.
    pub fn without_read_verification(self) -> MemLayout {
        MemLayout {
            verify_reads: false,
            ..self
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
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_lock(&self) -> MutexGuard<'_, ()> {
        self.index_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn location_of(&self, file: LayoutFile) -> Location {
        match file {
            LayoutFile::Blob(digest) => self.location.of_content(digest),
            _ => self.location.join(file.relative_path()),
        }
    }

    fn not_found(&self, file: LayoutFile) -> Error {
        Error::NotFound {
            location: self.location_of(file),
            digest: file.digest(),
        }
    }

    /// Read-modify-write of `index.json` under the index lock, as a directory layout does it.
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        let _lock = self.index_lock();
        let bytes = self.read_metadata(MetadataFile::Index)?;
        let mut document = IndexDocument::parse(bytes)
            .map_err(|e| Error::json(self.location_of(LayoutFile::Index), e))?;
        edit(&mut document)?;
        self.insert(LayoutFile::Index, document.to_bytes());
        Ok(())
    }
}

impl Store for MemLayout {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        Ok(self
            .files()
            .get(&LayoutFile::Blob(digest))
            .map(|bytes| bytes.len() as u64))
    }

    fn fetch(
        &self,
        _kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let file = LayoutFile::Blob(digest);
        let bytes = self
            .files()
            .get(&file)
            .cloned()
            .ok_or_else(|| self.not_found(file))?;
        let reader = Cursor::new(bytes);
        if self.verify_reads {
            Ok(Box::new(VerifyingReader::new(reader, digest, size)))
        } else {
            Ok(Box::new(reader))
        }
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

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(MemBlobWriter {
            layout: self,
            hasher: algorithm.hasher(),
            bytes: Vec::new(),
        }))
    }

    fn index(&self) -> Result<ImageIndex> {
        let bytes = self.read_metadata(MetadataFile::Index)?;
        index::parse_index(&bytes).map_err(|e| Error::json(self.location_of(LayoutFile::Index), e))
    }

    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        let mut outcome = oci_core::index::PutOutcome::default();
        self.update_index(&mut |document| {
            check_stored(self, entries, required)?;
            outcome = document
                .put_all(entries)
                .map_err(|e| Error::json(self.location_of(LayoutFile::Index), e))?;
            Ok(())
        })?;
        Ok(outcome)
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        if name.is_empty() {
            return Err(Error::InvalidRefName {
                name: String::new(),
            });
        }
        let mut removed = 0;
        self.update_index(&mut |document| {
            removed = document
                .remove_ref(name)
                .map_err(|e| Error::json(self.location_of(LayoutFile::Index), e))?;
            Ok(())
        })?;
        Ok(removed > 0)
    }

    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        Some(self)
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

impl LayoutFiles for MemLayout {
    fn read_metadata(&self, file: MetadataFile) -> Result<Vec<u8>> {
        let file = file.as_layout_file();
        let bytes = self
            .files()
            .get(&file)
            .cloned()
            .ok_or_else(|| self.not_found(file))?;
        read_bounded(&mut &bytes[..], MAX_INDEX_SIZE, &self.location_of(file))
    }

    fn write_metadata(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        // Under the index lock, like every other change of the index.
        let _lock = (file == MetadataFile::Index).then(|| self.index_lock());
        self.insert(file.as_layout_file(), contents.to_vec());
        Ok(())
    }

    /// A map has no directories: `blobs/` is always there.
    fn create_blobs_dir(&self) -> Result<()> {
        Ok(())
    }

    fn has_blobs_dir(&self) -> Result<bool> {
        Ok(true)
    }

    /// A map keyed by [`LayoutFile`] cannot hold anything else.
    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        Ok(Vec::new())
    }

    fn remove_stray(&self, stray: &StrayFile) -> Result<()> {
        Err(Error::NotFound {
            location: stray.location.clone(),
            digest: None,
        })
    }
}

impl BlobListing for MemLayout {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests: Vec<Digest> = self.files().keys().filter_map(LayoutFile::digest).collect();
        digests.sort();
        Ok(digests)
    }
}

/// No modification times are kept: gc takes every blob as old, whatever its grace.
impl BlobRemoval for MemLayout {
    fn remove_blob(&self, digest: Digest) -> Result<()> {
        let file = LayoutFile::Blob(digest);
        match self.files().remove(&file) {
            Some(_) => Ok(()),
            None => Err(self.not_found(file)),
        }
    }

    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        let file = LayoutFile::Blob(digest);
        if self.files().contains_key(&file) {
            Ok(None)
        } else {
            Err(self.not_found(file))
        }
    }

    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

    fn remove_stale_blobs(&self, digests: &[Digest], _cutoff: SystemTime) -> Result<Vec<Digest>> {
        let mut files = self.files();
        Ok(digests
            .iter()
            .copied()
            .filter(|digest| files.remove(&LayoutFile::Blob(*digest)).is_some())
            .collect())
    }
}

impl ExclusiveLock for MemLayout {
    fn run_exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let _lock = self.index_lock();
        work()
    }
}

/// Hashes while buffering; publishes on a commit that checks out.
struct MemBlobWriter<'a> {
    layout: &'a MemLayout,
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
            layout,
            hasher,
            bytes,
        } = *self;
        let digest = hasher.finalize();
        check_commit(digest, bytes.len() as u64, size, expected)?;
        layout.insert(LayoutFile::Blob(digest), bytes);
        Ok(digest)
    }
}
