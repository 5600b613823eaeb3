//! The one error type of the core, shared by every driver.

use std::io;
use std::path::PathBuf;

use oci_digest::{Digest, ParseDigestError, VerifyError};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a layout. Every variant names the path or
/// digest involved, so its `Display` is a complete one-line message.
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
    /// A blob, `index.json` or `oci-layout` is absent.
    #[error("{path}: not found")]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
        /// The blob's digest, when a blob was looked for.
        digest: Option<Digest>,
    },
    /// A ref name is not in the index.
    #[error("ref {name:?} not found in {path}")]
    RefNotFound {
        /// The ref name asked for.
        name: String,
        /// The index looked in.
        path: PathBuf,
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
    /// The layout's structure or metadata is broken.
    #[error("invalid layout {path}: {reason}")]
    InvalidLayout {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON document does not parse as what it must be.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file or blob at fault.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The store cannot do this operation (for example, writing to a read-only archive).
    #[error("{path}: {reason}")]
    Unsupported {
        /// The store.
        path: PathBuf,
        /// Why, and what to do instead.
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
    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error on `path`; verification failures carried inside it (see
    /// [`oci_digest::VerifyingReader`]) become [`Error::UnexpectedDigest`] and
    /// [`Error::UnexpectedSize`].
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        if let Some(verify) = VerifyError::from_io(&source) {
            return Error::from(verify.clone());
        }
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A blob that is absent.
    pub fn blob_not_found(path: impl Into<PathBuf>, digest: Digest) -> Error {
        Error::NotFound {
            path: path.into(),
            digest: Some(digest),
        }
    }

    /// True for a missing blob or file.
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
