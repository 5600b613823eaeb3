//! The [`Digest`] value type and its strict parser.

use std::cmp::Ordering;
use std::fmt;
use std::hash::Hash;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Algorithm;

/// A content digest of a registered [`Algorithm`], such as `sha256:e3b0c4…`.
///
/// Only a value that passed the strict parser (or came out of a hasher) exists, so a `Digest`
/// can always be turned into a path inside a layout: its algorithm is a registered name and its
/// encoded part is lowercase hex of the algorithm's exact length.
#[derive(Clone, Copy)]
pub struct Digest {
    algorithm: Algorithm,
    bytes: [u8; Algorithm::MAX_OUTPUT_LEN],
}

/// Why a string is not a [`Digest`]. The variants follow the verdicts of the conformance
/// vectors: the grammar is broken, the length is wrong, or the algorithm is not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    /// The string does not match the image-spec digest grammar, or its encoded part is not
    /// lowercase hex.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidFormat {
        /// The offending input (shortened when long).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The encoded part has the wrong length for its algorithm.
    #[error("invalid digest {input:?}: {algorithm} needs {expected} hex characters, got {actual}")]
    InvalidLength {
        /// The offending input (shortened when long).
        input: String,
        /// The algorithm named.
        algorithm: Algorithm,
        /// The length the algorithm needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Grammatically valid, but the algorithm is not one this crate can hash.
    #[error("unsupported digest algorithm {algorithm:?} in {input:?}")]
    Unsupported {
        /// The offending input (shortened when long).
        input: String,
        /// The algorithm named.
        algorithm: String,
    },
}

/// Inputs in errors are cut to this many characters (as the messages print them, escaped) so
/// that a hostile 100 MB string does not end up in a log line.
const MAX_ERROR_INPUT: usize = 160;

pub(crate) fn excerpt(s: &str) -> String {
    // Count escaped widths: messages print inputs with `{:?}`, where one unprintable character
    // takes up to 10 bytes (`\u{10ffff}`).
    let mut width = 0;
    for (cut, c) in s.char_indices() {
        width += c.escape_debug().len();
        if width > MAX_ERROR_INPUT {
            return format!("{}…", &s[..cut]);
        }
    }
    s.to_owned()
}

fn is_algorithm_component(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `algorithm ::= component (separator component)*`, `separator ::= [+._-]`.
fn is_algorithm_grammar(algorithm: &str) -> bool {
    algorithm
        .split(['+', '.', '_', '-'])
        .all(is_algorithm_component)
}

/// `encoded ::= [a-zA-Z0-9=_-]+`.
fn is_encoded_grammar(encoded: &str) -> bool {
    !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

fn is_lower_hex(encoded: &str) -> bool {
    encoded
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Digest {
    pub(crate) fn from_raw(algorithm: Algorithm, bytes: [u8; Algorithm::MAX_OUTPUT_LEN]) -> Digest {
        Digest { algorithm, bytes }
    }

    /// Parses `input` strictly: image-spec grammar, a registered algorithm, the exact length,
    /// lowercase hex. Nothing is trimmed.
    pub fn parse(input: &str) -> Result<Digest, ParseDigestError> {
        let invalid = |reason| ParseDigestError::InvalidFormat {
            input: excerpt(input),
            reason,
        };
        let (algorithm, encoded) = input
            .split_once(':')
            .ok_or_else(|| invalid("missing ':' between algorithm and encoded part"))?;
        if !is_algorithm_grammar(algorithm) {
            return Err(invalid(
                "the algorithm part is not [a-z0-9]+ joined by [+._-]",
            ));
        }
        if !is_encoded_grammar(encoded) {
            return Err(invalid("the encoded part is not [a-zA-Z0-9=_-]+"));
        }
        let algorithm =
            Algorithm::from_name(algorithm).ok_or_else(|| ParseDigestError::Unsupported {
                input: excerpt(input),
                algorithm: excerpt(algorithm),
            })?;
        if encoded.len() != algorithm.hex_len() {
            return Err(ParseDigestError::InvalidLength {
                input: excerpt(input),
                algorithm,
                expected: algorithm.hex_len(),
                actual: encoded.len(),
            });
        }
        if !is_lower_hex(encoded) {
            return Err(invalid("the encoded part is not lowercase hex"));
        }
        let mut bytes = [0u8; Algorithm::MAX_OUTPUT_LEN];
        hex::decode_to_slice(encoded, &mut bytes[..algorithm.output_len()])
            .map_err(|_| invalid("the encoded part is not lowercase hex"))?;
        Ok(Digest { algorithm, bytes })
    }

    /// The digest's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.output_len()]
    }

    /// The encoded (lowercase hex) part, without the algorithm.
    pub fn encoded(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// The path of this blob relative to a layout root: `blobs/<alg>/<encoded>`.
    ///
    /// This is the only way the workspace builds a blob path, so no path is ever made from a
    /// string that was not validated.
    pub fn blob_path(&self) -> PathBuf {
        let mut path = PathBuf::from("blobs");
        path.push(self.algorithm.name());
        path.push(self.encoded());
        path
    }

    /// The tar entry name of this blob: `blobs/<alg>/<encoded>` with `/` separators.
    pub fn blob_entry_name(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.encoded())
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Digest {}

impl Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Digest {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.algorithm, self.as_bytes()).cmp(&(other.algorithm, other.as_bytes()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<&str> for Digest {
    type Error = ParseDigestError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Digest::parse(s)
    }
}

#[cfg(feature = "oci-spec")]
mod oci_spec_conversions {
    use super::{Digest, ParseDigestError};

    impl TryFrom<&oci_spec::image::Digest> for Digest {
        type Error = ParseDigestError;

        fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
            Digest::parse(d.as_ref())
        }
    }

    impl TryFrom<oci_spec::image::Digest> for Digest {
        type Error = ParseDigestError;

        fn try_from(d: oci_spec::image::Digest) -> Result<Self, Self::Error> {
            Digest::parse(d.as_ref())
        }
    }

    impl From<Digest> for oci_spec::image::Digest {
        fn from(d: Digest) -> Self {
            // Every `Digest` satisfies the image-spec grammar that oci-spec checks.
            d.to_string()
                .parse()
                .expect("a strict digest is a valid oci-spec digest")
        }
    }

    impl From<&Digest> for oci_spec::image::Digest {
        fn from(d: &Digest) -> Self {
            oci_spec::image::Digest::from(*d)
        }
    }
}
