//! OCI image layouts as directories.
//!
//! [`DirLayout`] is the directory backend: it implements [`oci_core::Store`] and every
//! capability ([`oci_core::LayoutFiles`], [`oci_core::BlobListing`],
//! [`oci_core::BlobRemoval`], [`oci_core::ExclusiveLock`]), so every operation of `oci-core`
//! (fsck, gc, referrers, copy, the seed functions) runs on it.
//!
//! What it guarantees:
//! - A blob is streamed to an anonymous `O_TMPFILE` (or, where the filesystem has none, a
//!   `.tmp-*` file in the same directory), checked against the expected size and digest, synced,
//!   and only then linked under `blobs/<alg>/<encoded>`. An existing blob is not rewritten.
//! - `index.json` is changed by read-modify-write under an exclusive lock on the layout
//!   directory. The new index is written under another name, synced, and swapped in by one
//!   rename: no torn index, no lost update when several processes tag at once.
//! - A new layout is never taken for a finished one: [`DirLayout::create`] fills the directory
//!   in place behind a marker file ([`INIT_MARKER`]) that it writes first and removes last,
//!   after `oci-layout`; readers refuse a directory that holds it, and concurrent creators
//!   wait for it. A non-empty directory without `oci-layout` is not ours and is refused.
//! - A writer holding a [`Lease`] ([`DirLayout::lease`]) keeps gc from sweeping what it writes
//!   until it has tagged it, whatever gc's grace period.
//! - [`Durability::Relaxed`] skips the fsyncs for scratch and bulk work; atomicity stays.
//! - Reads verify while streaming (opt out with [`DirOptions::verify_reads`]), open no symlink,
//!   FIFO or device as a blob, and a `blobs/` that resolves outside the root is refused.
//!
//! `use oci_dir::DirLayout` and `oci_core::prelude::*` are all a user needs for put, get,
//! tag, list, fsck and gc:
//!
//! ```
//! use oci_core::prelude::*;
//! use oci_core::oci_spec::image::MediaType;
//! use oci_dir::DirLayout;
//! use std::io::{Read, Write};
//!
//! let dir = tempfile::tempdir()?;
//! let layout = DirLayout::create(dir.path().join("layout"))?;
//!
//! // Put: streamed, verified against what the caller expects, synced, then published.
//! let mut writer = layout.begin_blob(Algorithm::Sha256)?;
//! writer.write_all(b"hello")?;
//! let digest = writer.commit(Some(5), None)?;
//!
//! // Get: verified while it streams.
//! let mut hello = String::new();
//! layout.fetch(ContentKind::Blob, digest, Some(5))?.read_to_string(&mut hello)?;
//! assert_eq!(hello, "hello");
//!
//! // Tag and list.
//! let config = seed::write_json_blob(&layout, &serde_json::json!({}), MediaType::ImageConfig)?;
//! let manifest = seed::write_json_blob(
//!     &layout,
//!     &serde_json::json!({"schemaVersion": 2, "config": config, "layers": []}),
//!     MediaType::ImageManifest,
//! )?;
//! layout.tag(&manifest, "v1")?;
//! assert_eq!(layout.index()?.manifests().len(), 1);
//!
//! // Check and collect: "hello" is referred to by nothing.
//! assert!(fsck(&layout)?.is_clean());
//! let options = GcOptions { grace: std::time::Duration::ZERO, dry_run: false };
//! assert_eq!(gc(&layout, &options)?.removed, vec![(digest, 5)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blob_writer;
mod create;
mod fsio;
mod layout;
mod lease;
mod pipeline;

pub use blob_writer::{DirBlobWriter, TEMP_PREFIX};
pub use create::INIT_MARKER;
pub use layout::{CACHE_DIR, DirLayout, DirOptions, Durability};
pub use lease::{LEASES_DIR, Lease};
