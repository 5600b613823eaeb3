//! Following the content graph: which content a document refers to.

use std::io::{self, Read};

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::limits::{MAX_MANIFEST_SIZE, read_bounded};
use crate::walk;
use crate::{ContentKind, Result, Store};

/// Whether content described with `media_type` may be a manifest or index worth parsing:
/// manifest types, and any JSON type (ggcr writes manifests under
/// `application/vnd.oci.descriptor.v1+json`; a config simply has no references).
pub fn may_have_references(media_type: &str) -> bool {
    walk::is_manifest_like(media_type) || media_type.ends_with("json")
}

/// Reads the stored document `descriptor` points at ([`Store::read_document`] in the
/// namespace its media type says).
pub fn read_described(store: &dyn Store, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let digest = Digest::try_from(descriptor.digest())?;
    store.read_document(
        ContentKind::of_descriptor(descriptor),
        digest,
        Some(descriptor.size()),
    )
}

/// [`Store::read_document`] of a blob that may be a JSON object; `None`, after reading only
/// its first bytes, when it cannot be one (its first byte other than JSON whitespace is not
/// `{`). gc reads every unreferenced blob to look for a `subject`; layers need not be read
/// whole.
pub fn read_if_json_object(store: &dyn Store, digest: Digest) -> Result<Option<Vec<u8>>> {
    const READ_SIZE: usize = 64 << 10;
    let location = store.location().of_content(digest);
    let mut reader = store.fetch(ContentKind::Blob, digest, None)?;
    let mut bytes = Vec::new();
    // Read until the first byte that is not whitespace shows, or the end.
    let first = loop {
        let start = bytes.len();
        bytes.resize(start + READ_SIZE, 0);
        let n = match reader.read(&mut bytes[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                bytes.truncate(start);
                continue;
            }
            Err(e) => return Err(crate::Error::io(&location, e)),
        };
        bytes.truncate(start + n);
        if n == 0 {
            return Ok(None);
        }
        if let Some(&byte) = bytes[start..].iter().find(|b| !b.is_ascii_whitespace()) {
            break byte;
        }
    };
    if first != b'{' {
        return Ok(None);
    }
    let limit = MAX_MANIFEST_SIZE.saturating_sub(bytes.len() as u64);
    let rest = read_bounded(&mut reader, limit, &location)?;
    bytes.extend_from_slice(&rest);
    Ok(Some(bytes))
}
