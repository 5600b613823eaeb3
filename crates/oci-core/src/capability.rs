//! What only some stores can do, each a small trait of its own.
//!
//! A [`Store`](crate::Store) offers these through its `Option`-returning methods. The
//! operations that need one ask for it and fail with [`Error::Unsupported`](crate::Error)
//! when it is absent:
//!
//! | capability | offered by | needed by |
//! |---|---|---|
//! | [`LayoutFiles`] | directory, archive | `seed::init`, `seed::write_index`, the layout checks of fsck, gc's temp-file sweep |
//! | [`BlobListing`] | directory, archive, memory | gc, `blob ls` |
//! | [`BlobRemoval`] | directory, memory | gc, `seed::delete_blob` |
//! | [`ExclusiveLock`] | directory, memory | gc |
//! | [`ReferrersIndex`] | registry | `referrers` without walking every tag |

use std::time::SystemTime;

use oci_digest::Digest;

use crate::{Location, MetadataFile, Result};

/// The files a layout has besides its content: `oci-layout`, `index.json` as a file, the
/// `blobs/` directory, and files that do not belong.
pub trait LayoutFiles {
    /// Reads `oci-layout` or `index.json` whole, as stored, refusing more than
    /// [`MAX_INDEX_SIZE`](crate::MAX_INDEX_SIZE) bytes.
    fn read_metadata(&self, file: MetadataFile) -> Result<Vec<u8>>;

    /// Replaces `oci-layout` or `index.json` whole, atomically. `index.json` is replaced under
    /// the lock every index change takes, so it cannot lose a concurrent tag's update.
    fn write_metadata(&self, file: MetadataFile, contents: &[u8]) -> Result<()>;

    /// Creates the empty `blobs/` directory (the seed's driver `init`).
    fn create_blobs_dir(&self) -> Result<()>;

    /// Whether `blobs/` exists (the image-layout spec requires it, even when empty).
    fn has_blobs_dir(&self) -> Result<bool>;

    /// Files in the layout that are not layout files: temp files of interrupted writes, names
    /// under `blobs/` that are not digests, things that are not regular files. fsck reports
    /// them; gc removes stale temp files.
    fn stray_files(&self) -> Result<Vec<StrayFile>>;

    /// Removes a stray temp file reported by [`LayoutFiles::stray_files`].
    fn remove_stray(&self, stray: &StrayFile) -> Result<()>;
}

/// Listing every blob a store holds, whatever refers to it.
pub trait BlobListing {
    /// Every stored blob, by digest, in digest order. Names that are not valid digests are not
    /// listed (fsck reports them as strays); a digest name on something that is not a regular
    /// file may be, and is reported by [`LayoutFiles::stray_files`] as
    /// [`StrayKind::NotRegular`].
    fn list_blobs(&self) -> Result<Vec<Digest>>;
}

/// Removing blobs.
pub trait BlobRemoval {
    /// Removes a blob; a missing one is [`Error::NotFound`](crate::Error::NotFound).
    fn remove_blob(&self, digest: Digest) -> Result<()>;

    /// When a blob was last written or written again; `None` where the store keeps no such
    /// time (gc then treats the blob as old).
    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>>;

    /// The earliest modification time a blob can have that a write still in flight wrote or
    /// wrote again (the directory's leases): gc keeps everything modified after it, whatever
    /// its grace period, so a writer never finds what it wrote swept before it tags it. `None`
    /// when no write is known to be in flight.
    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>>;

    /// Removes each blob last modified at or before `cutoff`, judging its age again at the
    /// moment it goes, so a blob written again since gc looked stays; returns those removed.
    /// A missing blob is skipped.
    fn remove_stale_blobs(&self, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>>;
}

/// The lock that index changes take, held across a longer piece of work.
pub trait ExclusiveLock {
    /// Runs `work` while holding the lock every index change takes, so no entry is added or
    /// removed meanwhile (gc marks and sweeps under it). `work` must not change the index.
    fn run_exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()>;
}

/// The manifests that refer to a subject, as the store itself keeps them (the OCI 1.1
/// referrers API of a registry, or its `sha256-<hex>` tag fallback).
pub trait ReferrersIndex {
    /// The descriptors of the manifests whose `subject` is `subject` (with `artifactType` and
    /// `annotations` where the store records them); empty when there are none.
    fn referrers_of(&self, subject: Digest) -> Result<Vec<oci_spec::image::Descriptor>>;
}

/// What a stray file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrayKind {
    /// A temp file of a write that never finished.
    Temporary,
    /// A file under `blobs/<alg>/` whose name is not a valid digest.
    NotADigest,
    /// A valid digest name under `blobs/<alg>/` that is not a regular file (a FIFO, a device,
    /// a socket, a directory, a symlink): no blob can be read from it, and gc leaves it.
    NotRegular(Digest),
    /// Something else that is not a layout file (a directory of an unknown algorithm, a link).
    Other,
}

/// A file in a layout that is not part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrayFile {
    /// Where it is.
    pub location: Location,
    /// What it is.
    pub kind: StrayKind,
    /// When it was last modified, where known.
    pub modified: Option<SystemTime>,
}
