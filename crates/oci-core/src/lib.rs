//! The core of `oci-layout`: what an OCI image store is, independent of where it is kept.
//!
//! One trait, [`Store`], is what every backend implements: a directory layout (`oci-dir`), an
//! archive being read or written (`oci-tar`), a registry repository, and [`MemoryStore`] here.
//! It addresses content by digest ([`Store::stat`], [`Store::fetch`], [`Store::push`],
//! [`Store::begin_blob`]) and index entries by ref name ([`Store::index`],
//! [`Store::put_entry`], [`Store::remove_ref`], [`Store::resolve`], [`Store::tag`]). Reads are
//! verified while they stream; writes are checked before anything is visible.
//!
//! What only some stores can do is a small trait of its own ([`capability`]): the files of a
//! layout ([`LayoutFiles`]), listing and removing blobs ([`BlobListing`], [`BlobRemoval`]),
//! a lock gc can hold ([`ExclusiveLock`]). Everything else is written once, here, over
//! `&dyn Store`: [`fsck`](fsck::fsck), [`gc`](gc::gc), [`referrers`](referrers::referrers),
//! [`copy_image`], [`describe`], and the seed package's functions ([`seed`]). An operation
//! that needs a capability a store lacks fails with [`Error::Unsupported`], naming it.
//!
//! Reading is lenient (unknown media types and fields, `"manifests": null`); writing is
//! canonical (schemaVersion 2, media type set, sorted keys). This crate never touches the
//! filesystem.
//!
//! One import gives what a user needs for put, get, tag, list, fsck and gc:
//!
//! ```
//! use oci_core::prelude::*;
//! use oci_core::MemoryStore;
//! use oci_core::oci_spec::image::MediaType;
//!
//! let store = MemoryStore::new();
//! let config = seed::write_json_blob(&store, &serde_json::json!({}), MediaType::ImageConfig)?;
//! let manifest = seed::write_json_blob(
//!     &store,
//!     &serde_json::json!({"schemaVersion": 2, "config": config, "layers": []}),
//!     MediaType::ImageManifest,
//! )?;
//! store.tag(&manifest, "v1")?;
//! assert_eq!(store.resolve("v1")?.digest(), manifest.digest());
//! assert!(fsck(&store)?.is_clean());
//! let swept = gc(&store, &GcOptions { grace: std::time::Duration::ZERO, dry_run: false })?;
//! assert!(swept.removed.is_empty(), "everything is reachable from v1");
//! # Ok::<(), oci_core::Error>(())
//! ```

mod blob_writer;
pub mod capability;
mod compression;
mod copy;
pub mod describe;
mod error;
pub mod fsck;
pub mod gc;
pub mod graph;
pub mod index;
mod layout_file;
mod limits;
mod location;
mod media_type;
mod memory;
mod printable;
mod ref_name;
pub mod referrers;
pub mod seed;
mod store;
mod stream;
pub mod walk;

pub use blob_writer::{BlobWriter, check_commit};
pub use capability::{
    BlobListing, BlobRemoval, ExclusiveLock, LayoutFiles, ReferrersIndex, StrayFile, StrayKind,
};
pub use compression::Compression;
pub use copy::{
    Cancelled, CopiedItem, CopyOptions, CopyOutcome, CopyProgress, CopyReport, copy_image,
    copy_image_with,
};
pub use error::{Error, Result};
pub use layout_file::{
    BLOBS_DIR, CACHE_DIR, IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFile, MetadataFile,
};
pub use limits::{MAX_INDEX_SIZE, MAX_MANIFEST_SIZE, read_bounded, read_bounded_sized};
pub use location::Location;
pub use media_type::validate_media_type;
pub use memory::MemoryStore;
pub use printable::printable;
pub use ref_name::{REF_NAME_ANNOTATION, is_valid_ref_name, validate_ref_name};
pub use store::{ContentKind, Store, check_stored};
pub use stream::{CopyError, attribute_reads, copy_stream};

pub use oci_digest::{self, Algorithm, Digest};
pub use oci_spec;

/// What a user of any store needs in scope: the store trait, content kinds, digests, and the
/// operations written over every store.
pub mod prelude {
    pub use crate::fsck::fsck;
    pub use crate::gc::{GcOptions, gc};
    pub use crate::referrers::referrers;
    pub use crate::{
        Algorithm, BlobWriter, ContentKind, Digest, Store, copy_image, describe, seed,
    };
}
