//! The functions of the seed package, over any [`Store`].
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
//! Each is a thin wrapper over [`Store`] and its capabilities, with their guarantees: reads
//! verify, writes are checked before they are published, [`put_manifest_descriptor_to_index`]
//! checks that the manifest is stored (under the lock gc takes), and [`write_index`] replaces
//! `index.json` under the lock every index change takes.

use std::io::Read;

use oci_digest::{Algorithm, Digest};
use oci_spec::image::{Descriptor, ImageIndex, MediaType, OciLayout, OciLayoutBuilder};

use crate::capability::{BlobRemoval, LayoutFiles};
use crate::{BlobWriter, ContentKind, Error, MetadataFile, Result, Store, index};

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

/// Creates a layout's files in a store that has them: `blobs/`, then an empty `index.json`
/// (0644), then `oci-layout` (0444) last, since it is what makes a directory a layout.
/// Refused, with nothing written, where `index.json` or `oci-layout` is already there: an
/// empty index written over a layout's would drop every entry it has.
pub fn init(store: &dyn Store, options: &InitOptions) -> Result<()> {
    let files = layout_files(store, "initialise a layout")?;
    for file in [MetadataFile::Index, MetadataFile::ImageLayout] {
        match files.read_metadata(file) {
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
            Ok(_) => {
                return Err(Error::InvalidLayout {
                    location: store.location().clone(),
                    reason: format!(
                        "already holds {}: refusing to initialise over a layout",
                        file.as_layout_file().relative_path().display()
                    ),
                });
            }
        }
    }
    files.create_blobs_dir()?;
    if !options.skip_create_index {
        write_index(store, &index::empty_index())?;
    }
    if !options.skip_create_image_layout {
        let version = options
            .image_layout_version
            .as_deref()
            .unwrap_or(IMAGE_LAYOUT_VERSION);
        write_image_layout(store, &image_layout(version))?;
    }
    Ok(())
}

/// The `oci-layout` document of a layout of `version`.
pub fn image_layout(version: &str) -> OciLayout {
    OciLayoutBuilder::default()
        .image_layout_version(version)
        .build()
        .expect("the one field is set")
}

/// Writes `bytes` as a sha256 blob and returns its digest.
pub fn write_blob(store: &dyn Store, bytes: &[u8]) -> Result<Digest> {
    store.write_blob(Algorithm::Sha256, bytes)
}

/// Reads a whole blob, verified against its digest (whatever the store's options say).
pub fn read_blob(store: &dyn Store, digest: Digest) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    get_blob_reader(store, digest, None)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(store.location().of_content(digest), e))?;
    Ok(bytes)
}

/// Opens a blob for streaming. The reader fails the read that reaches the end when the content
/// does not hash to `digest` (or is not `size` bytes, when given), whatever the store's
/// options say.
pub fn get_blob_reader(
    store: &dyn Store,
    digest: Digest,
    size: Option<u64>,
) -> Result<Box<dyn Read + Send + '_>> {
    crate::store::fetch_verified(store, ContentKind::Blob, digest, size)
}

/// Starts writing a blob (the seed's `NewBlobWriter`).
pub fn new_blob_writer(
    store: &dyn Store,
    algorithm: Algorithm,
) -> Result<Box<dyn BlobWriter + '_>> {
    store.begin_blob(algorithm)
}

/// Deletes a blob; a missing blob is [`Error::NotFound`]. Needs [`BlobRemoval`].
pub fn delete_blob(store: &dyn Store, digest: Digest) -> Result<()> {
    blob_removal(store, "delete a blob")?.remove_blob(digest)
}

/// Serialises `value` as canonical JSON (sorted keys), writes it as a sha256 blob and returns
/// its descriptor. A manifest or index (by `media_type`) goes in as one, through
/// [`Store::push`].
pub fn write_json_blob<T: serde::Serialize>(
    store: &dyn Store,
    value: &T,
    media_type: MediaType,
) -> Result<Descriptor> {
    let bytes = index::to_canonical_json(value).map_err(|e| Error::json(store.location(), e))?;
    let digest = Algorithm::Sha256.digest(&bytes);
    let descriptor = Descriptor::new(media_type, bytes.len() as u64, digest);
    store.push(&descriptor, &mut &bytes[..])?;
    Ok(descriptor)
}

/// Reads the index, leniently (see [`index::parse_index`]).
pub fn read_index(store: &dyn Store) -> Result<ImageIndex> {
    store.index()
}

/// Replaces `index.json` with `index`, written canonically (schemaVersion 2, media type set,
/// keys sorted), under the lock every index change takes. Needs [`LayoutFiles`].
pub fn write_index(store: &dyn Store, index: &ImageIndex) -> Result<()> {
    let files = layout_files(store, "write index.json")?;
    let bytes = index::index_bytes(index).map_err(|e| Error::json(store.location(), e))?;
    files.write_metadata(MetadataFile::Index, &bytes)
}

/// Reads `oci-layout`. Needs [`LayoutFiles`].
pub fn read_image_layout(store: &dyn Store) -> Result<OciLayout> {
    let bytes = layout_files(store, "read oci-layout")?.read_metadata(MetadataFile::ImageLayout)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::json(metadata_location(store, MetadataFile::ImageLayout), e))
}

/// Writes `oci-layout`. Needs [`LayoutFiles`].
pub fn write_image_layout(store: &dyn Store, layout: &OciLayout) -> Result<()> {
    let files = layout_files(store, "write oci-layout")?;
    let bytes = serde_json::to_vec(layout).map_err(|e| Error::json(store.location(), e))?;
    files.write_metadata(MetadataFile::ImageLayout, &bytes)
}

/// Adds a manifest descriptor to the index ([`Store::put_entry`]): the manifest must be
/// stored. When it carries a ref name, the name is validated and every older entry with that
/// name is removed, in the same update.
pub fn put_manifest_descriptor_to_index(store: &dyn Store, descriptor: &Descriptor) -> Result<()> {
    if let Some(name) = index::ref_name(descriptor) {
        crate::validate_ref_name(name)?;
    }
    store.put_entry(descriptor)
}

/// Removes every index entry named `name`. A name that is absent is not an error; an empty
/// name is.
pub fn remove_manifest_descriptor_from_index(store: &dyn Store, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidRefName {
            name: String::new(),
        });
    }
    store.remove_ref(name).map(drop)
}

/// Where a metadata file of `store` is, for messages.
pub(crate) fn metadata_location(store: &dyn Store, file: MetadataFile) -> crate::Location {
    store.location().join(file.as_layout_file().relative_path())
}

/// The store's [`LayoutFiles`], or the error that says it has none.
pub(crate) fn layout_files<'s>(store: &'s dyn Store, to: &str) -> Result<&'s dyn LayoutFiles> {
    store.layout_files().ok_or_else(|| {
        Error::unsupported(
            store.location(),
            format!("cannot {to}: not an image layout"),
        )
    })
}

/// The store's [`BlobRemoval`], or the error that says it has none.
pub(crate) fn blob_removal<'s>(store: &'s dyn Store, to: &str) -> Result<&'s dyn BlobRemoval> {
    store.blob_removal().ok_or_else(|| {
        Error::unsupported(
            store.location(),
            format!("cannot {to}: this store cannot remove blobs"),
        )
    })
}
