//! OCI image layouts as directories.
//!
//! [`DirLayout`] is the directory driver: it implements [`oci_core::ImageDriver`], and with it
//! [`oci_core::ContentStore`] and every seed function in [`oci_core::seed`].
//!
//! What it guarantees:
//! - A blob is streamed to an anonymous `O_TMPFILE` (or, where the filesystem has none, a
//!   `.tmp-*` file in the same directory), checked against the expected size and digest, synced,
//!   and only then linked under `blobs/<alg>/<encoded>`. An existing blob is not rewritten.
//! - `index.json` is changed by read-modify-write under an exclusive lock on the layout
//!   directory. The new index is written under another name, synced, and swapped in by one
//!   rename: no torn index, no lost update when several processes tag at once. (The previous
//!   index is kept in `.oci-layout-cache/` and reused for the next update when no one else
//!   has it open, which spares the filesystem a free and a trim per update.)
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
//! ```
//! use oci_core::{Algorithm, ContentStore, seed};
//! use oci_core::oci_spec::image::MediaType;
//! use oci_dir::DirLayout;
//! use std::io::Write;
//!
//! let dir = tempfile::tempdir()?;
//! let layout = DirLayout::create(dir.path().join("layout"))?;
//!
//! let mut writer = layout.begin_blob(Algorithm::Sha256)?;
//! writer.write_all(b"hello")?;
//! let digest = writer.commit(Some(5), None)?;
//! assert_eq!(seed::read_blob(&layout, digest)?, b"hello");
//!
//! let config = seed::write_json_blob(&layout, &serde_json::json!({}), MediaType::ImageConfig)?;
//! layout.tag(config, "v1")?;
//! assert_eq!(layout.resolve("v1")?.size(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blob_writer;
mod create;
mod fsio;
mod index_record;
mod index_swap;
mod layout;
mod lease;
mod pipeline;
mod read_buffer;

pub use blob_writer::{DirBlobWriter, TEMP_PREFIX};
pub use create::INIT_MARKER;
pub use layout::{CACHE_DIR, DirLayout, DirOptions, Durability};
pub use lease::{LEASES_DIR, Lease};
