//! Strict OCI content digests.
//!
//! A [`Digest`] is one value over several hash kinds: it carries its [`Algorithm`] (sha256,
//! sha512 or blake3) and the raw digest bytes, so callers never thread a generic hasher type
//! through their signatures. It is `Copy`, compares and hashes by value, and can only be made
//! by the strict parser or by a [`Hasher`]; that is why it is the only thing the workspace
//! builds blob paths from ([`Digest::blob_path`]).
//!
//! ```
//! use oci_digest::{Algorithm, Digest, VerifyingReader};
//! use std::io::Read;
//!
//! let digest = Algorithm::Sha256.digest(b"abc");
//! assert_eq!(
//!     digest.to_string(),
//!     "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
//! );
//! assert_eq!(digest, Digest::parse(&digest.to_string())?);
//! assert!(Digest::parse("sha256:../../etc/passwd").is_err());
//!
//! // A verifying reader fails the read that reaches the end when the content is wrong.
//! let mut out = Vec::new();
//! let err = VerifyingReader::new(&b"abd"[..], digest, Some(3))
//!     .read_to_end(&mut out)
//!     .unwrap_err();
//! assert!(err.to_string().contains("unexpected digest"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Parsing
//!
//! [`Digest::parse`] follows the image-spec grammar (`algorithm ":" encoded`), then requires a
//! registered algorithm ([`ParseDigestError::Unsupported`] otherwise), the algorithm's exact
//! length ([`ParseDigestError::InvalidLength`]) and lowercase hex
//! ([`ParseDigestError::InvalidFormat`]). Nothing is trimmed or case-folded.
//!
//! # Adding an algorithm
//!
//! 1. Implement [`HashFunction`] for the hash state type (`update` and `finalize_into`).
//! 2. Register it: add a variant to [`Algorithm`] and its row (name, output length,
//!    constructor) in `Algorithm::registration`, and list it in [`Algorithm::ALL`].
//!
//! The compiler points at the one `match` that needs the new row; parsing, hashing, paths and
//! the verifying adapters pick the algorithm up from there.

mod algorithm;
mod digest;
mod hasher;
pub mod io;

pub use algorithm::{Algorithm, HashFunction};
pub use digest::{Digest, ParseDigestError};
pub use hasher::Hasher;
pub use io::{HashingWriter, VerifyError, VerifyingReader};
