//! OCI image layouts as tar archives, both ways, streaming.
//!
//! - [`TarWriter`] writes a layout to any `Write` as an [`oci_core::Store`], so the seed
//!   functions, copies and image building work on it unchanged; output is deterministic.
//! - [`TarArchive`] reads an archive in place: one pass over the headers, then positional reads,
//!   verified while streaming. Nothing is extracted.
//! - [`unpack`] takes any archive stream (a pipe, gzip, zstd) into a directory layout, verifying
//!   each blob before it is published; [`pack`] / [`pack_to_file`] write one.
//!
//! Hostile archives: names with `..` or a leading `/`, links, devices, names that are not a
//! layout file, truncated archives and decompression bombs are refused or skipped with a
//! message; nothing is written outside the target and nothing outside the archive is read.
//!
//! ```
//! use oci_core::prelude::*;
//! use oci_core::oci_spec::image::MediaType;
//! use oci_tar::{TarArchive, TarWriter};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("layout.tar");
//! let archive = TarWriter::new(std::fs::File::create(&path)?, &path);
//! seed::init(&archive, &seed::InitOptions::default())?;
//! let config = seed::write_json_blob(&archive, &serde_json::json!({}), MediaType::ImageConfig)?;
//! archive.tag(&config, "v1")?;
//! archive.finish()?;
//!
//! let read = TarArchive::open(&path)?;
//! assert_eq!(read.resolve("v1")?.digest(), config.digest());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compression;
pub mod docker_archive;
mod entry_name;
mod framing;
mod output;
mod pack;
mod read_ahead;
mod reader;
mod space;
mod unpack;
mod writer;

pub use compression::ExpansionLimit;
pub use entry_name::{Disposition, EntryName, NameError, classify, disposition};
pub use output::OutputFile;
pub use pack::{PackReport, pack, pack_to_file};
pub use reader::TarArchive;
pub use unpack::{MAX_INDEX_SIZE, ReplacedTag, UnpackReport, unpack};
pub use writer::TarWriter;
