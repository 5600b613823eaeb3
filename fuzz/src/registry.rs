//! The registry client's parsers: image references and `WWW-Authenticate` challenges, both
//! fed straight from what users type and what servers send.

use oci_registry::{ImageReference, parse_challenges};

/// `ImageReference::parse` of any text: an accepted reference is well formed (a registry, a
/// lowercase repository of plain components, a tag or a digest) and displays as text that
/// parses back to the same reference; a refusal is a short message that names the input.
pub fn image_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ImageReference::parse(text) {
        Ok(reference) => {
            assert!(!reference.registry.is_empty(), "{text:?}: no registry");
            assert!(!reference.repository.is_empty(), "{text:?}: no repository");
            assert!(
                !reference.repository.chars().any(|c| c.is_ascii_uppercase()),
                "{text:?}: an uppercase repository accepted"
            );
            assert!(
                reference
                    .repository
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != ".."),
                "{text:?}: a repository with an empty or dot component"
            );
            assert!(
                reference.tag.is_some() || reference.digest.is_some(),
                "{text:?}: neither tag nor digest"
            );
            let shown = reference.to_string();
            let again = ImageReference::parse(&shown).unwrap_or_else(|e| {
                panic!("{text:?} displays as {shown:?}, which does not parse: {e}")
            });
            assert_eq!(again, reference, "{text:?} displays as {shown:?}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= text.len().saturating_mul(8) + 512,
                "an error message out of proportion: {} bytes",
                message.len()
            );
        }
    }
}

/// `parse_challenges` of any header value: schemes and parameter names come out lowercase
/// and non-empty, and the challenges written back with quoted values parse to the same.
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let challenges = parse_challenges(text);
    for challenge in &challenges {
        assert!(!challenge.scheme.is_empty(), "{text:?}: an empty scheme");
        assert_eq!(challenge.scheme, challenge.scheme.to_ascii_lowercase());
        for name in challenge.params.keys() {
            assert!(!name.is_empty(), "{text:?}: an empty parameter name");
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }
    let written: Vec<String> = challenges
        .iter()
        .map(|challenge| {
            let params: Vec<String> = challenge
                .params
                .iter()
                .map(|(name, value)| {
                    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                    format!("{name}=\"{escaped}\"")
                })
                .collect();
            if params.is_empty() {
                challenge.scheme.clone()
            } else {
                format!("{} {}", challenge.scheme, params.join(", "))
            }
        })
        .collect();
    let again = parse_challenges(&written.join(", "));
    assert_eq!(again, challenges, "{text:?} written back as {written:?}");
}
