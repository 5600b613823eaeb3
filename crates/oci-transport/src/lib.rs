//! Opening a store from the name a user gives it.
//!
//! A command line names stores as paths: a layout directory, or an archive file (plain, gzip
//! or zstd) read in place. This crate turns such a name into the right backend, so that the
//! CLI (and any other front end) holds no such logic. It is the one crate that knows every
//! backend; the backends never know each other.
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

use std::path::Path;

use oci_core::{Error, Result, Store};
use oci_dir::{DirLayout, DirOptions};
use oci_tar::TarArchive;

/// A store to read: the archive at `path` when it is a file (read in place, never
/// extracted), else the layout directory there.
pub fn open_readable(path: &Path, options: DirOptions) -> Result<Box<dyn Store>> {
    if path.is_file() {
        Ok(Box::new(TarArchive::open(path)?))
    } else {
        Ok(Box::new(DirLayout::open_with(path, options)?))
    }
}

/// A store to change: the layout directory at `path`. An archive is refused: it is written
/// whole, by packing a layout.
pub fn open_writable(path: &Path, options: DirOptions) -> Result<DirLayout> {
    if path.is_file() {
        return Err(Error::unsupported(
            path,
            "an archive is read-only: unpack it into a layout directory to change it",
        ));
    }
    DirLayout::open_with(path, options)
}
