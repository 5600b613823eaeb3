//! Integration tests of the directory backend, and through it of oci-core's `Store` trait and
//! its capabilities, seed functions, copy and describe: the shared conformance layouts, one
//! test per seed function, crash-safe blob writes, verified reads, hostile layouts, concurrent
//! index updates, fsck, gc and referrers (`integrity`), the prelude as a user's only import,
//! and reads that write nothing (`read_only`).
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
mod prelude;
mod read_only;
mod seed;
mod store;
