//! The media type grammar (RFC 6838), for media types a user gives (`artifactType`).

use crate::{Error, Result};

/// Checks `value` is `type/subtype`, each 1-127 of `[A-Za-z0-9!#$&^_.+-]` starting with a
/// letter or digit, optionally followed by `;` parameters in printable ASCII.
pub fn validate_media_type(value: &str) -> Result<()> {
    let (essence, parameters) = match value.split_once(';') {
        Some((essence, parameters)) => (essence, Some(parameters)),
        None => (value, None),
    };
    let valid = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| is_restricted_name(kind) && is_restricted_name(subtype))
        && parameters.is_none_or(|p| p.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidMediaType {
            value: value.to_owned(),
        })
    }
}

fn is_restricted_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=127).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(b))
}

#[cfg(test)]
mod tests {
    use super::validate_media_type;

    #[test]
    fn media_types_follow_rfc_6838() {
        for valid in [
            "application/spdx+json",
            "application/vnd.oci.image.manifest.v1+json",
            "text/plain; charset=utf-8",
            "a/b",
        ] {
            assert!(validate_media_type(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "", "x", "/", "a/", "/b", "a/b/c", "a b/c", "-a/b", "a/b\n", "ä/b",
        ] {
            assert!(validate_media_type(invalid).is_err(), "{invalid:?}");
        }
    }
}
