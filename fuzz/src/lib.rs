//! The bodies of oci-layout's fuzz targets.
//!
//! Each `fuzz_targets/<name>.rs` is one line calling the function of the same name here, so
//! that the replay test (`tests/replay.rs`) can run every committed input (`corpus/<name>/`,
//! `regressions/<name>/`) through exactly the code libFuzzer ran, as an ordinary test on stable.
//!
//! Every target asserts invariants besides "no panic"; a failed assertion is a crash.
//!
//! | target | what it feeds | what it checks |
//! |---|---|---|
//! | [`digest_parse`] | `Digest::parse` | accepted input re-displays identically; `blob_path` is 3 plain components; errors stay short |
//! | [`index_ops`] | `index::parse_index`, then put/remove | the index agrees with a model; canonical bytes re-parse to the same entries |
//! | [`manifest_walk`] | `walk::references`, then fsck, gc (dry run), copy_image on an in-memory layout ([`MemLayout`]), read verified and unverified | no panic, termination (cycles included, when unverified), gc keeps what the index reaches, dry run changes nothing, a copy holds what it refers to |
//! | [`tar_reader`] | `TarArchive`, `unpack` | every listed blob reads; unpack writes only verified layout files inside the target |
//! | [`compressed_reader`] | the same through gzip/zstd decoders | the expansion limit holds |
//! | [`image_reference`] | `oci_registry::ImageReference::parse` | accepted references are well formed and round-trip through their display |
//! | [`www_authenticate`] | `oci_registry::parse_challenges` | lowercase non-empty schemes and names; challenges written back parse the same |

mod digest;
mod index;
mod mem;
mod registry;
mod tar;
mod walk;

pub use digest::digest_parse;
pub use index::index_ops;
pub use mem::MemLayout;
pub use registry::{image_reference, www_authenticate};
pub use tar::{compressed_reader, tar_reader};
pub use walk::manifest_walk;

/// A target's body: one input, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target, by name, for the replay test and tools.
pub const TARGETS: [(&str, Target); 7] = [
    ("digest_parse", digest_parse),
    ("index_ops", index_ops),
    ("manifest_walk", manifest_walk),
    ("tar_reader", tar_reader),
    ("compressed_reader", compressed_reader),
    ("image_reference", image_reference),
    ("www_authenticate", www_authenticate),
];
