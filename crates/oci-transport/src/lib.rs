//! Stores by the names users give them, and copies between them.
//!
//! Names follow skopeo's transport syntax ([`StoreName`]): `oci:DIR[:REF]` (a layout
//! directory), `oci-archive:FILE[:REF]` (an archive, plain, gzip or zstd, read in place or
//! written whole), `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (a registry repository); a
//! plain path is a layout directory, or an archive when it is a file. This crate turns them
//! into the right backend ([`open_source`], [`Destination`]) and copies one image between any
//! two ([`copy`]), or every tag of one into another ([`copy_all_tags`]), so that the CLI (and any other front end) holds no such logic. It is the
//! one crate that knows every backend; the backends never know each other.
//!
//! ```
//! use oci_core::prelude::*;
//! use oci_dir::{DirLayout, DirOptions};
//!
//! let tmp = tempfile::tempdir()?;
//! DirLayout::create(tmp.path().join("img"))?;
//! let store = oci_transport::open_readable(&tmp.path().join("img"), DirOptions::default())?;
//! assert!(store.index()?.manifests().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod copy;
mod error;
mod name;
mod open;

pub use copy::{CopyRequest, CopySummary, TagCopy, copy, copy_all_tags, cosign_tags, outcome_name};
pub use error::Error;
pub use name::StoreName;
pub use open::{Destination, OpenOptions, open_readable, open_source, open_writable};
