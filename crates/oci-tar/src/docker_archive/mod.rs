//! Docker archives: what `docker save` writes and `docker load` reads, read in place as a
//! store ([`DockerArchive`]) and written as a copy streams into one ([`DockerArchiveWriter`]).
//!
//! The format is a tar holding `manifest.json` (`[{"Config": PATH, "RepoTags": ["name:tag"],
//! "Layers": [PATH, ...]}]`, one item per image), each image's config and one layer file per
//! layer. Producers place them differently: legacy docker (`<id>/layer.tar`, `<id>/json`),
//! skopeo (`<diffid-hex>.tar`, `<config-hex>.json`, and legacy `<id>/layer.tar` symlinks),
//! docker 25+ (an OCI layout, `blobs/sha256/<hex>` for everything); only `manifest.json`'s
//! paths matter, looked up through links, never outside the archive. Layer files are
//! normally uncompressed (the file's digest is the layer's diff_id); gzip and zstd ones
//! (containerd's `ctr images export`) are accepted, as docker and containers/image accept
//! them.
//!
//! A docker archive keeps no manifest. Reading, each image is presented as an OCI image
//! manifest synthesised from its config (kept byte for byte: its digest is docker's image ID)
//! and its layers, each an uncompressed `application/vnd.oci.image.layer.v1.tar` under its
//! diff_id. skopeo synthesises a Docker schema 2 manifest instead, whose layer media type
//! says gzip for what is a plain tar; OCI has a media type for an uncompressed layer, so the
//! manifest says what the bytes are. Writing, layers are stored uncompressed (a compressed one
//! is decompressed on the way and checked against the config's diff_id), so the manifest
//! a copy back produces differs from the one copied in whenever the layers were compressed;
//! the config, and so the image ID and the diff_ids, stay.

mod format;
mod members;
mod reader;
mod writer;

pub use format::normalize_repo_tag;
pub use reader::DockerArchive;
pub use writer::DockerArchiveWriter;

use std::io::{self, BufReader, Read};

use oci_core::Compression;

use crate::compression::Decoder;

/// A layer's plain bytes, as the archive holds them and as a config's diff_id hashes them.
/// Read through a large buffer: the decoders read in small pieces.
fn decompressed<R: Read>(input: R, compression: Compression) -> io::Result<Decoder<BufReader<R>>> {
    Decoder::new(BufReader::with_capacity(1 << 20, input), compression)
}
