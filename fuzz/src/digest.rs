//! `digest_parse`: the strict digest parser.

use std::path::Component;

use oci_digest::{Algorithm, Digest};

/// Parses `data` as UTF-8 (when it is) and as lossy UTF-8.
pub fn digest_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&String::from_utf8_lossy(data));
}

fn check(input: &str) {
    let parsed = Digest::parse(input);
    assert_eq!(
        input.parse::<Digest>().ok(),
        parsed.as_ref().ok().copied(),
        "FromStr and parse disagree"
    );
    let digest = match parsed {
        Ok(digest) => digest,
        Err(e) => {
            // Errors quote the input cut short: a hostile string must not flood a log line.
            let message = e.to_string();
            assert!(
                message.len() <= 1024,
                "error message of {} bytes",
                message.len()
            );
            return;
        }
    };
    assert_eq!(
        digest.to_string(),
        input,
        "accepted input must re-display as is"
    );
    assert_eq!(Digest::parse(&digest.to_string()), Ok(digest));
    let (name, encoded) = input.split_once(':').expect("a digest has a ':'");
    assert_eq!(Algorithm::from_name(name), Some(digest.algorithm()));
    assert_eq!(digest.encoded(), encoded);
    assert_eq!(encoded.len(), digest.algorithm().hex_len());
    assert_eq!(digest.as_bytes().len(), digest.algorithm().output_len());

    let path = digest.blob_path();
    let components: Vec<Component<'_>> = path.components().collect();
    assert_eq!(components.len(), 3, "blob path {path:?}");
    for component in &components {
        assert!(
            matches!(component, Component::Normal(part) if *part != ".."),
            "blob path {path:?} has a non-plain component {component:?}"
        );
    }
    assert_eq!(
        digest.blob_entry_name(),
        format!("blobs/{name}/{encoded}"),
        "tar entry name"
    );
    assert_eq!(path.to_str(), Some(digest.blob_entry_name().as_str()));
}
