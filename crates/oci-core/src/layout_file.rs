//! The files a layout is made of.

use std::fmt;
use std::path::PathBuf;

use oci_digest::Digest;

/// Name of the layout marker file.
pub const IMAGE_LAYOUT_FILE: &str = "oci-layout";
/// Name of the top-level index.
pub const INDEX_FILE: &str = "index.json";
/// Name of the blob directory.
pub const BLOBS_DIR: &str = "blobs";
/// Where this library keeps what it can rebuild or do without; other tools ignore it, and
/// archive readers skip it silently.
pub const CACHE_DIR: &str = ".oci-layout-cache";

/// One file of a layout. Backends that store files take this instead of a free-form path, so
/// no caller can name a file outside the layout: a blob path is always built from a validated
/// [`Digest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayoutFile {
    /// `oci-layout`.
    ImageLayout,
    /// `index.json`.
    Index,
    /// `blobs/<alg>/<encoded>`.
    Blob(Digest),
}

impl LayoutFile {
    /// The path relative to the layout root.
    pub fn relative_path(&self) -> PathBuf {
        match self {
            LayoutFile::ImageLayout => PathBuf::from(IMAGE_LAYOUT_FILE),
            LayoutFile::Index => PathBuf::from(INDEX_FILE),
            LayoutFile::Blob(digest) => digest.blob_path(),
        }
    }

    /// The blob's digest, for a blob.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            LayoutFile::Blob(digest) => Some(*digest),
            _ => None,
        }
    }
}

impl fmt::Display for LayoutFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutFile::ImageLayout => f.write_str(IMAGE_LAYOUT_FILE),
            LayoutFile::Index => f.write_str(INDEX_FILE),
            LayoutFile::Blob(digest) => f.write_str(&digest.blob_entry_name()),
        }
    }
}

/// The small metadata files a layout writes whole (the seed's `Writer(path, perm)`). Blobs
/// are never written this way: they go through a [`BlobWriter`](crate::BlobWriter), which
/// verifies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataFile {
    /// `oci-layout`, mode 0444.
    ImageLayout,
    /// `index.json`, mode 0644.
    Index,
}

impl MetadataFile {
    /// The same file as a [`LayoutFile`].
    pub fn as_layout_file(self) -> LayoutFile {
        match self {
            MetadataFile::ImageLayout => LayoutFile::ImageLayout,
            MetadataFile::Index => LayoutFile::Index,
        }
    }

    /// The permission bits the seed gives this file.
    pub fn mode(self) -> u32 {
        match self {
            MetadataFile::ImageLayout => 0o444,
            MetadataFile::Index => 0o644,
        }
    }
}
