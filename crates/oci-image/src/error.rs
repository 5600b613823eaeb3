//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use oci_core::Location;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building or reading an image. Every variant names the path,
/// location, reference or value at fault; an underlying error is the `source`, not repeated
/// in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The content store failed or refused: a missing blob, a digest mismatch, an I/O error in
    /// the layout.
    #[error(transparent)]
    Store(#[from] oci_core::Error),
    /// Reading the source of a layer (a directory tree, a tar file) failed.
    #[error("{path}")]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The source of a layer cannot be used as it is (not a directory, not a tar, a file that
    /// changed while it was read).
    #[error("{path}: {reason}")]
    Source {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A stored document is not what an image needs (a manifest without a config, a config
    /// that does not parse).
    #[error("{location}: {reason}")]
    InvalidImage {
        /// The content at fault.
        location: Location,
        /// What is wrong.
        reason: String,
    },
    /// An index has no manifest for the platform asked for.
    #[error(
        "{reference} in {location}: no manifest for platform {platform} (available: {available})"
    )]
    PlatformNotFound {
        /// The ref name or digest that was resolved.
        reference: String,
        /// The store.
        location: Location,
        /// The platform asked for, as `os/arch[/variant]`.
        platform: String,
        /// The platforms the index offers, comma-separated.
        available: String,
    },
    /// What was asked for is neither a ref name of the index nor a valid digest.
    #[error("{digest_error}, and no ref of that name in {location}")]
    NoSuchTarget {
        /// Why it is not a digest.
        digest_error: String,
        /// The store.
        location: Location,
    },
    /// A layer could not be unpacked: its blob or its uncompressed stream is not what the
    /// image says, or one of its entries could not be applied (named in `what`).
    #[error("{location}: {what}")]
    Unpack {
        /// The layer's blob.
        location: Location,
        /// Which layer, which entry, and what went wrong.
        what: String,
        /// The underlying error, when there is one.
        source: Option<io::Error>,
    },
    /// A value given by the caller is invalid (a platform, an `env` entry, a level).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidValue {
        /// What the value is for (`platform`, `env`, `gzip level`, ...).
        what: &'static str,
        /// The value as given.
        value: String,
        /// What is expected instead.
        reason: String,
    },
}

impl Error {
    /// A source I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An I/O error while writing into the store at `location`.
    pub(crate) fn store_io(location: impl Into<Location>, source: io::Error) -> Error {
        Error::Store(oci_core::Error::io(location, source))
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidValue {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
