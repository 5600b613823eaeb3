//! [`Store`]: the one interface every backend implements.

use std::io::{Read, Write};

use oci_digest::{Algorithm, Digest, VerifyingReader};
use oci_spec::image::{Descriptor, ImageIndex};

use crate::capability::{BlobListing, BlobRemoval, ExclusiveLock, LayoutFiles, ReferrersIndex};
use crate::limits::{MAX_MANIFEST_SIZE, read_bounded};
use crate::ref_name::validate_ref_name;
use crate::{BlobWriter, Error, Location, Result, index, walk};

/// Checks what [`Store::put_entries`] requires before it changes the index: every entry's ref
/// name valid, the content every entry points at stored, and every digest of `required`.
/// Backends call it inside the change, under their index lock.
pub fn check_stored(store: &dyn Store, entries: &[Descriptor], required: &[Digest]) -> Result<()> {
    let mut named = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(name) = index::ref_name(entry) {
            validate_ref_name(name)?;
        }
        let digest = Digest::try_from(entry.digest())?;
        named.push(digest);
        if !store.contains(ContentKind::of_descriptor(entry), digest)? {
            return Err(Error::content_not_found(
                store.location().of_content(digest),
                digest,
            ));
        }
    }
    for &blob in required {
        if !store.contains(ContentKind::Blob, blob)? {
            let of = named
                .first()
                .map_or_else(String::new, |digest| format!(", part of {digest},"));
            return Err(Error::InvalidLayout {
                location: store.location().of_content(blob),
                reason: format!(
                    "{blob}{of} is not stored any more (removed by a gc or blob rm while it was \
                     written?): nothing was tagged"
                ),
            });
        }
    }
    Ok(())
}

/// Opens content for a caller that must verify it whatever the store's options (fsck, the
/// seed's readers): [`Store::fetch`], wrapped in a [`VerifyingReader`] unless the store's own
/// reads verify ([`Store::verifies_reads`]), so the content is hashed once either way.
pub(crate) fn fetch_verified(
    store: &dyn Store,
    kind: ContentKind,
    digest: Digest,
    size: Option<u64>,
) -> Result<Box<dyn Read + Send + '_>> {
    let reader = store.fetch(kind, digest, size)?;
    if store.verifies_reads() {
        Ok(reader)
    } else {
        Ok(Box::new(VerifyingReader::new(reader, digest, size)))
    }
}

/// Which namespace a digest is looked up in. A layout keeps manifests as blobs like any other;
/// a registry serves them apart (`/manifests/` and `/blobs/`), so every content operation says
/// which one it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// A layer, a config, any content that is not a manifest or an index.
    Blob,
    /// A manifest or an index (image, artifact, Docker schema 2 or manifest list).
    Manifest,
}

impl ContentKind {
    /// The kind of content described with `media_type`.
    pub fn of(media_type: &str) -> ContentKind {
        if walk::is_manifest_like(media_type) {
            ContentKind::Manifest
        } else {
            ContentKind::Blob
        }
    }

    /// The kind of content `descriptor` describes.
    pub fn of_descriptor(descriptor: &Descriptor) -> ContentKind {
        ContentKind::of(descriptor.media_type().as_ref())
    }
}

/// Content by digest and index entries by ref name: what a directory layout, an archive, a
/// registry repository and an in-memory store all are.
///
/// The required methods are a backend's primitives. The provided ones are written with them
/// and are never wrong for any backend; a backend overrides one only to do the same faster.
/// What only some backends can do (list every blob, remove blobs, hold a lock, have the files
/// of a layout) is a separate small trait, reached through the `Option`-returning methods at
/// the end: an operation that needs one fails with [`Error::Unsupported`] naming what is
/// missing when a store does not offer it, and never runs without it.
///
/// Every read is verified: a reader from [`Store::fetch`] fails the read that reaches the end
/// when the content does not match its digest (and size), unless the store's user turned that
/// off for content they trust ([`Store::verifies_reads`] then says `false`, and fsck and the
/// seed's readers verify by themselves). Every write is checked before it is visible:
/// [`BlobWriter::commit`] and [`Store::push`] publish nothing that does not match.
pub trait Store: Send + Sync {
    /// Where the store is, for messages.
    fn location(&self) -> &Location;

    /// The stored size of the content `digest` names, or `None` when it is absent.
    fn stat(&self, kind: ContentKind, digest: Digest) -> Result<Option<u64>>;

    /// Opens stored content for streaming. The reader fails the read that reaches the end when
    /// the content does not hash to `digest`, or is not `size` bytes when `size` is given; a
    /// missing one is [`Error::NotFound`].
    fn fetch(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>>;

    /// [`Store::fetch`] for a caller that checks the content itself: a copy hands the reader
    /// to [`Store::push`] of another store, which hashes what arrives and publishes nothing
    /// that does not match. The same bytes without the store's own check, so a blob is hashed
    /// once on its way rather than twice. The default is [`Store::fetch`]: never wrong, it only
    /// hashes once more.
    fn fetch_unverified(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        self.fetch(kind, digest, size)
    }

    /// Stores content whose descriptor is known (a copy), checked against its digest and size
    /// before it becomes visible. The descriptor's media type says which namespace it goes
    /// to ([`ContentKind::of`]) and, for a manifest, is its content type. A store that already
    /// holds it may return without reading `content`.
    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()>;

    /// Starts writing a blob whose digest is known only at the end (a layer being built); see
    /// [`BlobWriter::commit`]. Manifests are stored with [`Store::push`].
    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>>;

    /// Every index entry, named or not.
    fn index(&self) -> Result<ImageIndex>;

    /// Adds index entries, in order, in one change where the store can: an entry with a ref
    /// name replaces every other entry of that name, and an untagged entry identical to one
    /// already there is not added again. Returns the entries the store held before this call
    /// that were replaced by name.
    ///
    /// Nothing changes unless the content every entry points at is stored, and so is every
    /// digest of `required` (what the caller wrote for them: an image's config and layers).
    /// The store checks ([`check_stored`]) atomically with the change where it has a lock gc
    /// honours, so no entry ever names content that a concurrent gc has just removed, and a
    /// writer that tags what it wrote fails rather than leave an image with a hole. Images
    /// that are partial on purpose are put with no `required`.
    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<crate::index::PutOutcome>;

    /// Adds one index entry ([`Store::put_entries`]).
    fn put_entry(&self, entry: &Descriptor) -> Result<()> {
        self.put_entries(std::slice::from_ref(entry), &[]).map(drop)
    }

    /// Removes the entries named `name`; returns whether there were any.
    fn remove_ref(&self, name: &str) -> Result<bool>;

    /// The entry named `name`.
    fn resolve(&self, name: &str) -> Result<Descriptor> {
        index::resolve_ref(&self.index()?, name)
            .cloned()
            .ok_or_else(|| Error::RefNotFound {
                name: name.to_owned(),
                location: self.location().clone(),
            })
    }

    /// Names `target` `name`, replacing whatever had that name.
    fn tag(&self, target: &Descriptor, name: &str) -> Result<()> {
        validate_ref_name(name)?;
        self.put_entry(&index::with_ref_name(target.clone(), name))
    }

    /// Whether the content `digest` names is stored.
    fn contains(&self, kind: ContentKind, digest: Digest) -> Result<bool> {
        Ok(self.stat(kind, digest)?.is_some())
    }

    /// Reads a manifest, index or other JSON document whole, verified, refusing more than
    /// [`MAX_MANIFEST_SIZE`] bytes.
    fn read_document(
        &self,
        kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>> {
        let location = self.location().of_content(digest);
        if let Some(size) = size.filter(|&size| size > MAX_MANIFEST_SIZE) {
            return Err(Error::InvalidLayout {
                location,
                reason: format!(
                    "document of {size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"
                ),
            });
        }
        let mut reader = self.fetch(kind, digest, size)?;
        read_bounded(&mut reader, MAX_MANIFEST_SIZE, &location)
    }

    /// Takes the blob `descriptor` names from `source` without its bytes streaming through a
    /// copy, when the two stores can: a registry mounts a blob from another repository of the
    /// same registry ([`CopyOutcome::Mounted`](crate::CopyOutcome::Mounted)); a directory
    /// clones one from a layout on the same filesystem (`copy_file_range`, verified;
    /// [`CopyOutcome::Copied`](crate::CopyOutcome::Copied)). `None` when it cannot, which is
    /// the default and never wrong: the copy then streams the bytes.
    fn mount_from(
        &self,
        descriptor: &Descriptor,
        source: &dyn Store,
    ) -> Result<Option<crate::CopyOutcome>> {
        let _ = (descriptor, source);
        Ok(None)
    }

    /// Stores `bytes` as a blob hashed with `algorithm`; returns its digest.
    fn write_blob(&self, algorithm: Algorithm, bytes: &[u8]) -> Result<Digest> {
        let mut writer = self.begin_blob(algorithm)?;
        writer
            .write_all(bytes)
            .map_err(|e| Error::io(self.location(), e))?;
        writer.commit(Some(bytes.len() as u64), None)
    }

    /// Whether every reader [`Store::fetch`] returns verifies what it reads. `false`, the
    /// default, is never wrong: a caller that must verify whatever the store's options say
    /// (fsck, the seed's readers) then hashes the content itself. A store whose reads verify
    /// says `true` and saves that second hash.
    fn verifies_reads(&self) -> bool {
        false
    }

    /// The files of an image layout (`oci-layout`, `blobs/`, stray files), where the store is
    /// one.
    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        None
    }

    /// Listing every stored blob, where the store can.
    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        None
    }

    /// Removing blobs, where the store can.
    fn blob_removal(&self) -> Option<&dyn BlobRemoval> {
        None
    }

    /// The lock that keeps index changes out while gc marks and sweeps, where the store has one.
    fn exclusive_lock(&self) -> Option<&dyn ExclusiveLock> {
        None
    }

    /// An index of the manifests that refer to a subject, kept by the store itself (a
    /// registry's referrers API), where it has one; without it, referrers are found by walking
    /// the index.
    fn referrers_index(&self) -> Option<&dyn ReferrersIndex> {
        None
    }
}
