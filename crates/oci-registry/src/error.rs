//! The registry client's errors, and how they become the core's.

use std::io;

use oci_core::Location;

/// What can go wrong talking to a registry. Each names the URL or reference at fault; a
/// registry's own error message (its JSON `errors`) is part of the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text given.
        reference: String,
        /// Why it is not one.
        reason: String,
    },
    /// The registry answered with a status the operation cannot go on from.
    #[error("{method} {url}: {status}{detail}")]
    Status {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// `: ` and what the registry said, or nothing.
        detail: String,
    },
    /// The request could not be made or its answer not read: DNS, TCP, TLS, a cut connection.
    #[error("{method} {url}")]
    Transport {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// What went wrong.
        source: ureq::Error,
    },
    /// The TLS handshake failed for a certificate: the server's is not trusted, or the
    /// server refused the client's (or its absence). Not transient.
    #[error("{method} {url}: {detail}")]
    Tls {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// What is wrong, naming the host, and where certificates go.
        detail: String,
        /// The TLS error.
        source: ureq::Error,
    },
    /// Credentials were needed and none worked, or a token could not be had.
    #[error("authenticating to {registry}: {reason}")]
    Auth {
        /// The registry.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// The registry's answer is not what the protocol allows (a manifest too large, a media
    /// type that is not the document's, a digest that does not match, schema 1).
    #[error("{url}: {reason}")]
    Refused {
        /// What was asked for.
        url: String,
        /// Why the answer is refused.
        reason: String,
    },
    /// The client cannot be set up as asked (a certificate file that does not parse).
    #[error("{what}: {reason}")]
    Setup {
        /// The file or setting.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A reference that does not parse, in the registry's words (the same text).
impl From<oci_reference::ReferenceError> for Error {
    fn from(error: oci_reference::ReferenceError) -> Error {
        Error::InvalidReference {
            reference: error.reference,
            reason: error.reason,
        }
    }
}

impl Error {
    /// Whether the same request may succeed if sent again later: a cut connection, a timeout,
    /// 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::Transport { source, .. } => matches!(
                source,
                ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed
            ),
            _ => false,
        }
    }

    /// What kind of I/O failure this is: the transport's own, a time-out, else other.
    fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Transport {
                source: ureq::Error::Io(e),
                ..
            } => e.kind(),
            Error::Transport {
                source: ureq::Error::Timeout(_),
                ..
            } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        }
    }

    /// This error as the core's, at `location`: a 404 is [`oci_core::Error::NotFound`],
    /// anything else an I/O error whose source this is (a refused answer of kind
    /// `InvalidData`). Not `InvalidLayout`, which would call a registry's answer an invalid
    /// layout and drop the URL it came from.
    pub fn at(self, location: Location) -> oci_core::Error {
        match self {
            Error::Status { status: 404, .. } => oci_core::Error::NotFound {
                location,
                digest: None,
            },
            refused @ Error::Refused { .. } => oci_core::Error::Io {
                location,
                source: io::Error::new(io::ErrorKind::InvalidData, refused),
            },
            // The kind is kept, so that a copy knows a cut connection from a refusal.
            other => oci_core::Error::Io {
                location,
                source: io::Error::new(other.io_kind(), other),
            },
        }
    }
}
