//! Integration tests of the directory driver, and through it of oci-core's seed functions,
//! content store, copy and describe: the shared conformance layouts, one test per seed function,
//! crash-safe blob writes, verified reads, hostile layouts, concurrent index updates, and fsck,
//! gc and referrers (`integrity`).
//!
//! Tests that write work on fresh temporary layouts or on copies of corpus layouts; the corpus
//! itself is only read.
#![allow(clippy::unwrap_used)]

mod blobs;
mod common;
mod conformance;
mod create;
mod hostile;
mod index_file;
mod integrity;
mod lease;
mod seed;
mod store;
