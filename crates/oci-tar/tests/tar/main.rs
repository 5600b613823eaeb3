//! The tests of oci-tar: the writer, the reader (conformance corpus included), hostile
//! archives, unpack and pack, both backends as stores, which side a failure is blamed on, and
//! interoperability with skopeo.

#![allow(clippy::unwrap_used)]

mod attribution;
mod common;
mod hostile;
mod interop;
mod reader;
mod store;
mod unpack_pack;
mod writer;
