//! The tests of oci-tar: the writer, the reader (conformance corpus included), hostile
//! archives, unpack and pack, and interoperability with skopeo.

#![allow(clippy::unwrap_used)]

mod common;
mod hostile;
mod interop;
mod reader;
mod unpack_pack;
mod writer;
