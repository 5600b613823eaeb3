//! The functions of the seed package, over any [`ImageDriver`].
//!
//! | seed (Go)                            | here                                   |
//! |--------------------------------------|----------------------------------------|
//! | `Init(img, opts)`                    | [`init`]                               |
//! | `WriteBlob` / `ReadBlob` / `DeleteBlob` | [`write_blob`] / [`read_blob`] / [`delete_blob`] |
//! | `GetBlobReader` / `NewBlobWriter`    | [`get_blob_reader`] / [`new_blob_writer`] |
//! | `WriteJSONBlob`                      | [`write_json_blob`]                    |
//! | `ReadIndex` / `WriteIndex`           | [`read_index`] / [`write_index`]       |
//! | `ReadImageLayout` / `WriteImageLayout` | [`read_image_layout`] / [`write_image_layout`] |
//! | `PutManifestDescriptorToIndex`       | [`put_manifest_descriptor_to_index`]   |
//! | `RemoveManifestDescriptorFromIndex`  | [`remove_manifest_descriptor_from_index`] |
//!
//! Unlike the seed, reads verify, writes are checked before they are published, and index
//! updates are one read-modify-write that a driver can make atomic.

use std::io::{Read, Write};

use oci_digest::{Algorithm, Digest, VerifyingReader};
use oci_spec::image::{Descriptor, ImageIndex, MediaType, OciLayout};

use crate::driver::{BlobWriter, ImageDriver, MetadataFile};
use crate::index;
use crate::layout_file::LayoutFile;
use crate::ref_name::validate_ref_name;
use crate::store::MAX_INDEX_SIZE;
use crate::{Error, Result};

/// The layout version `init` writes by default.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// Options of [`init`] (the seed's `InitOpts`).
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// The `imageLayoutVersion` to write; `None` for [`IMAGE_LAYOUT_VERSION`].
    pub image_layout_version: Option<String>,
    /// Do not create `oci-layout`.
    pub skip_create_image_layout: bool,
    /// Do not create `index.json`.
    pub skip_create_index: bool,
}

/// Creates a layout: the driver's `init`, then `oci-layout` (0444) and an empty `index.json`
/// (0644) unless the options skip them.
pub fn init<D: ImageDriver + ?Sized>(driver: &D, options: &InitOptions) -> Result<()> {
    driver.init()?;
    if !options.skip_create_image_layout {
        let version = options
            .image_layout_version
            .as_deref()
            .unwrap_or(IMAGE_LAYOUT_VERSION);
        write_image_layout(driver, &image_layout(version))?;
    }
    if !options.skip_create_index {
        write_index(driver, &index::empty_index())?;
    }
    Ok(())
}

fn image_layout(version: &str) -> OciLayout {
    serde_json::from_value(serde_json::json!({ "imageLayoutVersion": version }))
        .expect("a one-string object is a valid oci-layout")
}

fn json_error(
    driver: &(impl ImageDriver + ?Sized),
    file: LayoutFile,
    source: serde_json::Error,
) -> Error {
    Error::Json {
        path: driver.location().join(file.relative_path()),
        source,
    }
}

fn read_all<D: ImageDriver + ?Sized>(
    driver: &D,
    file: LayoutFile,
    reader: &mut dyn Read,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(driver.location().join(file.relative_path()), e))?;
    Ok(bytes)
}

/// Reads `index.json` or `oci-layout` whole, refusing more than [`MAX_INDEX_SIZE`] bytes.
pub(crate) fn read_metadata<D: ImageDriver + ?Sized>(
    driver: &D,
    file: LayoutFile,
) -> Result<Vec<u8>> {
    let path = driver.location().join(file.relative_path());
    let mut bytes = Vec::new();
    driver
        .reader(file)?
        .take(MAX_INDEX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    if bytes.len() as u64 > MAX_INDEX_SIZE {
        return Err(Error::InvalidLayout {
            path,
            reason: format!("over the {MAX_INDEX_SIZE} byte limit"),
        });
    }
    Ok(bytes)
}

/// Writes `bytes` as a sha256 blob and returns its digest.
pub fn write_blob<D: ImageDriver + ?Sized>(driver: &D, bytes: &[u8]) -> Result<Digest> {
    write_blob_with(driver, Algorithm::Sha256, bytes)
}

/// Writes `bytes` as a blob hashed with `algorithm`.
pub fn write_blob_with<D: ImageDriver + ?Sized>(
    driver: &D,
    algorithm: Algorithm,
    bytes: &[u8],
) -> Result<Digest> {
    let mut writer = driver.blob_writer(algorithm)?;
    writer
        .write_all(bytes)
        .map_err(|e| Error::io(driver.location(), e))?;
    writer.commit(Some(bytes.len() as u64), None)
}

/// Reads a whole blob, verified against its digest.
pub fn read_blob<D: ImageDriver + ?Sized>(driver: &D, digest: Digest) -> Result<Vec<u8>> {
    let mut reader = get_blob_reader(driver, digest, None)?;
    read_all(driver, LayoutFile::Blob(digest), &mut reader)
}

/// Opens a blob for streaming. The returned reader fails the read that reaches the end when
/// the content does not hash to `digest` (or is not `size` bytes, when given).
pub fn get_blob_reader<D: ImageDriver + ?Sized>(
    driver: &D,
    digest: Digest,
    size: Option<u64>,
) -> Result<VerifyingReader<Box<dyn Read + Send + '_>>> {
    let reader = driver.reader(LayoutFile::Blob(digest))?;
    Ok(VerifyingReader::new(reader, digest, size))
}

/// Starts writing a blob (the seed's `NewBlobWriter`).
pub fn new_blob_writer<D: ImageDriver + ?Sized>(
    driver: &D,
    algorithm: Algorithm,
) -> Result<Box<dyn BlobWriter + '_>> {
    driver.blob_writer(algorithm)
}

/// Deletes a blob; a missing blob is [`Error::NotFound`].
pub fn delete_blob<D: ImageDriver + ?Sized>(driver: &D, digest: Digest) -> Result<()> {
    driver.remove(LayoutFile::Blob(digest))
}

/// Serialises `value` as canonical JSON (sorted keys), writes it as a sha256 blob and returns
/// its descriptor.
pub fn write_json_blob<D, T>(driver: &D, value: &T, media_type: MediaType) -> Result<Descriptor>
where
    D: ImageDriver + ?Sized,
    T: serde::Serialize,
{
    let bytes = index::to_canonical_json(value).map_err(|source| Error::Json {
        path: driver.location().to_path_buf(),
        source,
    })?;
    let digest = write_blob(driver, &bytes)?;
    Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
}

/// Reads `index.json`, leniently (see [`index::parse_index`]); one over [`MAX_INDEX_SIZE`]
/// bytes is refused.
pub fn read_index<D: ImageDriver + ?Sized>(driver: &D) -> Result<ImageIndex> {
    let bytes = read_metadata(driver, LayoutFile::Index)?;
    index::parse_index(&bytes).map_err(|e| json_error(driver, LayoutFile::Index, e))
}

/// Reads `index.json` for an edit (see [`index::IndexDocument`]); one over
/// [`MAX_INDEX_SIZE`] bytes is refused.
pub fn read_index_document<D: ImageDriver + ?Sized>(driver: &D) -> Result<index::IndexDocument> {
    let bytes = read_metadata(driver, LayoutFile::Index)?;
    index::IndexDocument::parse(bytes).map_err(|e| json_error(driver, LayoutFile::Index, e))
}

/// Writes `index.json` canonically (schemaVersion 2, media type set, keys sorted).
pub fn write_index<D: ImageDriver + ?Sized>(driver: &D, index: &ImageIndex) -> Result<()> {
    let bytes = index::index_bytes(index).map_err(|e| json_error(driver, LayoutFile::Index, e))?;
    driver.write_file(MetadataFile::Index, &bytes)
}

/// Reads `oci-layout`.
pub fn read_image_layout<D: ImageDriver + ?Sized>(driver: &D) -> Result<OciLayout> {
    let bytes = read_metadata(driver, LayoutFile::ImageLayout)?;
    serde_json::from_slice(&bytes).map_err(|e| json_error(driver, LayoutFile::ImageLayout, e))
}

/// Writes `oci-layout`.
pub fn write_image_layout<D: ImageDriver + ?Sized>(driver: &D, layout: &OciLayout) -> Result<()> {
    let bytes =
        serde_json::to_vec(layout).map_err(|e| json_error(driver, LayoutFile::ImageLayout, e))?;
    driver.write_file(MetadataFile::ImageLayout, &bytes)
}

/// Adds a manifest descriptor to the index. When it carries a ref name, the name is validated
/// and every older entry with that name is removed, in the same update.
pub fn put_manifest_descriptor_to_index<D: ImageDriver + ?Sized>(
    driver: &D,
    descriptor: &Descriptor,
) -> Result<()> {
    if let Some(name) = index::ref_name(descriptor) {
        validate_ref_name(name)?;
    }
    driver.update_index(&mut |idx| {
        idx.put(descriptor)
            .map_err(|e| json_error(driver, LayoutFile::Index, e))
    })?;
    Ok(())
}

/// Removes every index entry named `name`. A name that is absent is not an error; an empty
/// name is.
pub fn remove_manifest_descriptor_from_index<D: ImageDriver + ?Sized>(
    driver: &D,
    name: &str,
) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidRefName {
            name: String::new(),
        });
    }
    driver.update_index(&mut |idx| {
        idx.remove_ref(name)
            .map(drop)
            .map_err(|e| json_error(driver, LayoutFile::Index, e))
    })?;
    Ok(())
}
