//! The one error type of the core, shared by every store.

use std::io;

use oci_digest::{Digest, ParseDigestError, VerifyError};

use crate::Location;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a store. Every variant names the location
/// or digest involved. `Display` says what failed where; an underlying error is the
/// [`source`](std::error::Error::source), not repeated in the message, so a printer of the
/// whole chain (the CLI's `error: a: b: c` line) shows each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Content hashed to another digest than expected (the seed's `ErrUnexpectedDigest`).
    #[error("unexpected digest: expected {expected}, got {actual}")]
    UnexpectedDigest {
        /// What the caller or descriptor promised.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// Content has another size than expected (the seed's `ErrUnexpectedSize`).
    #[error("unexpected size for {digest}: expected {expected} bytes, got {actual}")]
    UnexpectedSize {
        /// The digest of the content (expected when reading, computed when writing).
        digest: Digest,
        /// What the caller or descriptor promised.
        expected: u64,
        /// What the content has.
        actual: u64,
    },
    /// Content, `index.json` or `oci-layout` is absent.
    #[error("{location}: not found")]
    NotFound {
        /// Where it was looked for.
        location: Location,
        /// The content's digest, when content was looked for.
        digest: Option<Digest>,
    },
    /// A ref name is not in the index.
    #[error("ref {name:?} not found in {location}")]
    RefNotFound {
        /// The ref name asked for.
        name: String,
        /// The store looked in.
        location: Location,
    },
    /// A string is not a valid digest.
    #[error(transparent)]
    InvalidDigest(#[from] ParseDigestError),
    /// A ref name does not match the image-spec grammar.
    #[error(
        "invalid ref name {name:?}: must be components of [A-Za-z0-9] joined by one of -._:@+ or --, separated by /"
    )]
    InvalidRefName {
        /// The offending name.
        name: String,
    },
    /// A media type does not match the RFC 6838 grammar.
    #[error(
        "invalid media type {value:?}: must be type/subtype (RFC 6838), e.g. application/spdx+json"
    )]
    InvalidMediaType {
        /// The offending value.
        value: String,
    },
    /// The store's structure or metadata is broken, or a document in it is unusable.
    #[error("invalid layout {location}: {reason}")]
    InvalidLayout {
        /// The file, blob or store at fault.
        location: Location,
        /// What is wrong.
        reason: String,
    },
    /// A JSON document does not parse as what it must be.
    #[error("{location}: invalid JSON")]
    Json {
        /// The file or blob at fault.
        location: Location,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The store cannot do this: it lacks a capability (a registry has no `oci-layout` file, an
    /// archive being read cannot be written).
    #[error("{location}: {reason}")]
    Unsupported {
        /// The store.
        location: Location,
        /// What it cannot do, and what to do instead.
        reason: String,
    },
    /// A blob something in the index still uses was to be removed.
    #[error("{digest} is still used by {users}: not removed")]
    BlobInUse {
        /// The blob.
        digest: Digest,
        /// The index entries that use it, for the message.
        users: String,
    },
    /// An I/O error, with the location it happened at.
    #[error("{location}")]
    Io {
        /// The file, directory or URL.
        location: Location,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error at `location`; verification failures carried inside it (see
    /// [`oci_digest::VerifyingReader`]) become [`Error::UnexpectedDigest`] and
    /// [`Error::UnexpectedSize`], and a failure of a reader made by [`attribute_reads`] names
    /// where that reader read from instead: whoever writes a stream it was handed reports the
    /// stream's failure, and the message must still blame the source, not the destination.
    ///
    /// [`attribute_reads`]: crate::attribute_reads
    pub fn io(location: impl Into<Location>, source: io::Error) -> Error {
        if let Some(verify) = VerifyError::from_io(&source) {
            return Error::from(verify.clone());
        }
        match crate::stream::ReadFailure::take(source) {
            Ok(failure) => Error::Io {
                location: failure.location,
                source: failure.source,
            },
            Err(source) => Error::Io {
                location: location.into(),
                source,
            },
        }
    }

    /// Content that is absent.
    pub fn content_not_found(location: impl Into<Location>, digest: Digest) -> Error {
        Error::NotFound {
            location: location.into(),
            digest: Some(digest),
        }
    }

    /// A document that does not parse.
    pub fn json(location: impl Into<Location>, source: serde_json::Error) -> Error {
        Error::Json {
            location: location.into(),
            source,
        }
    }

    /// What a store without a capability says when an operation needs it.
    pub fn unsupported(location: impl Into<Location>, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// True for missing content or a missing file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

impl From<VerifyError> for Error {
    fn from(err: VerifyError) -> Error {
        match err {
            VerifyError::Digest { expected, actual } => {
                Error::UnexpectedDigest { expected, actual }
            }
            VerifyError::Size {
                digest,
                expected,
                actual,
            } => Error::UnexpectedSize {
                digest,
                expected,
                actual,
            },
        }
    }
}
