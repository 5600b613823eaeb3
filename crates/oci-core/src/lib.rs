//! The core of `oci-layout`: what an OCI image layout is, independent of where it is stored.
//!
//! A layout is `oci-layout`, `index.json` and `blobs/<alg>/<encoded>`. This crate knows that
//! structure and the rules around it, and nothing about filesystems or archives: those are the
//! drivers in sibling crates (`oci-dir`, `oci-tar`).
//!
//! Two levels:
//!
//! - [`ImageDriver`] is the seed's path-level driver: read a file, write a metadata file whole,
//!   remove a file, write a blob through a verifying [`BlobWriter`]. The seed's functions
//!   ([`seed`]) are written once over it.
//! - [`ContentStore`] addresses content: blobs by digest, index entries by ref name. Every
//!   driver is a store; a registry client can be one without being a driver. [`copy_image`]
//!   works between any two stores.
//!
//! Reading is lenient (unknown media types and fields, `"manifests": null`); writing is
//! canonical (schemaVersion 2, media type set, sorted keys).
//!
//! ```
//! use oci_core::{index, is_valid_ref_name};
//! use oci_spec::image::{Descriptor, MediaType};
//!
//! let mut idx = index::parse_index(br#"{"schemaVersion":2,"manifests":null}"#)?;
//! let digest = oci_digest::Algorithm::Sha256.digest(b"{}");
//! let manifest = Descriptor::new(MediaType::ImageManifest, 2, digest);
//! index::put_descriptor(&mut idx, index::with_ref_name(manifest.clone(), "v1"));
//! index::put_descriptor(&mut idx, index::with_ref_name(manifest, "v1"));
//! assert_eq!(idx.manifests().len(), 1, "a ref name resolves to exactly one entry");
//! assert!(index::resolve_ref(&idx, "v1").is_some());
//! assert!(!is_valid_ref_name("../v1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod describe;
mod driver;
mod error;
pub mod fsck;
pub mod gc;
pub mod graph;
pub mod index;
mod layout_file;
mod media_type;
mod printable;
mod ref_name;
pub mod referrers;
pub mod seed;
mod store;
mod stream;
pub mod walk;

pub use driver::{BlobWriter, ImageDriver, MetadataFile, StrayFile, StrayKind, check_commit};
pub use error::{Error, Result};
pub use layout_file::{BLOBS_DIR, CACHE_DIR, IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFile};
pub use media_type::validate_media_type;
pub use printable::printable;
pub use ref_name::{REF_NAME_ANNOTATION, is_valid_ref_name, validate_ref_name};
pub use store::{ContentStore, CopyReport, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE, copy_image};
pub use stream::{CopyError, copy_stream};

pub use oci_digest::{self, Algorithm, Digest};
pub use oci_spec;
