//! Following the content graph of a stored layout: which blobs a blob refers to.

use std::io::{self, Read};

use oci_digest::Digest;
use oci_spec::image::Descriptor;

use crate::driver::ImageDriver;
use crate::layout_file::LayoutFile;
use crate::store::MAX_MANIFEST_SIZE;
use crate::walk::{self, References};
use crate::{Error, Result};

/// Whether a blob described with `media_type` may be a manifest or index worth parsing:
/// manifest types, and any JSON type (ggcr writes manifests under
/// `application/vnd.oci.descriptor.v1+json`; a config simply has no references).
pub fn may_have_references(media_type: &str) -> bool {
    walk::is_manifest_like(media_type) || media_type.ends_with("json")
}

/// Reads a stored JSON document of at most [`MAX_MANIFEST_SIZE`] bytes, unverified (callers
/// that need verification hash it themselves).
pub fn read_document(driver: &dyn ImageDriver, digest: Digest) -> Result<Vec<u8>> {
    let mut reader = driver
        .reader(LayoutFile::Blob(digest))?
        .take(MAX_MANIFEST_SIZE + 1);
    read_rest(driver, digest, &mut reader, Vec::new())
}

/// Reads the rest of a document onto `bytes`, refusing more than [`MAX_MANIFEST_SIZE`] bytes
/// in all (`reader` is bounded one byte over, so an oversized one is seen).
fn read_rest(
    driver: &dyn ImageDriver,
    digest: Digest,
    reader: &mut dyn Read,
    mut bytes: Vec<u8>,
) -> Result<Vec<u8>> {
    let path = driver.location().join(digest.blob_path());
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    if bytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(Error::InvalidLayout {
            path,
            reason: format!("document {digest} is over the {MAX_MANIFEST_SIZE} byte limit"),
        });
    }
    Ok(bytes)
}

/// [`read_document`] of a blob that may be a JSON object; `None`, after reading only its
/// first bytes, when it cannot be one (its first byte other than JSON whitespace is not `{`).
/// gc reads every unreferenced blob to look for a `subject`; layers need not be read whole.
pub fn read_if_json_object(driver: &dyn ImageDriver, digest: Digest) -> Result<Option<Vec<u8>>> {
    const READ_SIZE: usize = 64 << 10;
    let path = driver.location().join(digest.blob_path());
    let mut reader = driver
        .reader(LayoutFile::Blob(digest))?
        .take(MAX_MANIFEST_SIZE + 1);
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
            Err(e) => return Err(Error::io(&path, e)),
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
    read_rest(driver, digest, &mut reader, bytes).map(Some)
}

/// The references of the blob a descriptor points at, when it is a manifest or index that is
/// present. `None` for blobs that cannot refer to anything, are absent, or do not parse.
pub fn references_of(driver: &dyn ImageDriver, descriptor: &Descriptor) -> Option<References> {
    let digest = Digest::try_from(descriptor.digest()).ok()?;
    if !may_have_references(descriptor.media_type().as_ref()) {
        return None;
    }
    let size = driver.blob_size(digest).ok()?;
    if size > MAX_MANIFEST_SIZE {
        return None;
    }
    walk::references(&read_document(driver, digest).ok()?).ok()
}

/// Reads `index.json` or `oci-layout` whole, refusing more than
/// [`MAX_INDEX_SIZE`](crate::MAX_INDEX_SIZE) bytes.
pub fn read_metadata(driver: &dyn ImageDriver, file: LayoutFile) -> Result<Vec<u8>> {
    crate::seed::read_metadata(driver, file)
}
