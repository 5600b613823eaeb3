//! The content-store level: blobs by digest and index entries by ref name.
//!
//! [`ImageDriver`] addresses files; [`ContentStore`] addresses content. Every driver is a store
//! through the blanket implementation below, and a store that has no files at all (a registry)
//! implements [`ContentStore`] directly. [`copy_image`] is written against this trait only, so
//! it copies between any two stores.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use oci_digest::{Algorithm, Digest, VerifyingReader};
use oci_spec::image::{Descriptor, ImageIndex};

use crate::driver::{BlobWriter, ImageDriver};
use crate::layout_file::LayoutFile;
use crate::ref_name::validate_ref_name;
use crate::{CopyError, Error, Result, graph, index, seed, walk};

/// Blobs by digest, index entries by ref name.
pub trait ContentStore {
    /// Where the store is, for messages.
    fn location(&self) -> &Path;

    /// Whether the blob is present.
    fn has_blob(&self, digest: Digest) -> Result<bool>;

    /// Opens a blob. Unless the store's user turned verification off, the reader fails the
    /// read that reaches the end when the content does not match `digest` (and `size`).
    fn open_blob(&self, digest: Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>>;

    /// Starts writing a blob; see [`BlobWriter::commit`].
    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>>;

    /// Starts writing a blob whose digest and size are known (see
    /// [`ImageDriver::blob_writer_for`]).
    fn begin_known_blob(&self, digest: Digest, size: u64) -> Result<Box<dyn BlobWriter + '_>> {
        let _ = size;
        self.begin_blob(digest.algorithm())
    }

    /// The top-level index.
    fn index(&self) -> Result<ImageIndex>;

    /// Adds an index entry; an entry with a ref name replaces every older one with that name.
    /// The manifest it points at must be stored (drivers check under the index lock).
    fn put_entry(&self, descriptor: Descriptor) -> Result<()> {
        self.put_entry_requiring(descriptor, &[])
    }

    /// [`ContentStore::put_entry`], which also fails unless every blob of `required` is
    /// stored, checked in the same step as the manifest (under the index lock, which gc
    /// holds while it sweeps). For a writer that names what it has just written (an image's
    /// config and layers, an artifact's files): a concurrent gc or blob removal then makes the
    /// write fail, never leaves an entry on an image with a hole. Entries for images that are
    /// partial on purpose go through `put_entry`, which requires the manifest only.
    fn put_entry_requiring(&self, descriptor: Descriptor, required: &[Digest]) -> Result<()>;

    /// Removes the entries named `name`; returns whether there were any.
    fn remove_ref(&self, name: &str) -> Result<bool>;

    /// The descriptor named `name`.
    fn resolve(&self, name: &str) -> Result<Descriptor> {
        index::resolve_ref(&self.index()?, name)
            .cloned()
            .ok_or_else(|| Error::RefNotFound {
                name: name.to_owned(),
                path: self.location().to_path_buf(),
            })
    }

    /// Names `descriptor` `name`, replacing whatever had that name.
    fn tag(&self, descriptor: Descriptor, name: &str) -> Result<()> {
        validate_ref_name(name)?;
        self.put_entry(index::with_ref_name(descriptor, name))
    }
}

impl<D: ImageDriver + ?Sized> ContentStore for D {
    fn location(&self) -> &Path {
        ImageDriver::location(self)
    }

    fn has_blob(&self, digest: Digest) -> Result<bool> {
        ImageDriver::has_blob(self, digest)
    }

    fn open_blob(&self, digest: Digest, size: Option<u64>) -> Result<Box<dyn Read + Send + '_>> {
        let reader = self.reader(LayoutFile::Blob(digest))?;
        if self.verifies_reads() {
            Ok(Box::new(VerifyingReader::new(reader, digest, size)))
        } else {
            Ok(reader)
        }
    }

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        self.blob_writer(algorithm)
    }

    fn begin_known_blob(&self, digest: Digest, size: u64) -> Result<Box<dyn BlobWriter + '_>> {
        self.blob_writer_for(digest, size)
    }

    fn index(&self) -> Result<ImageIndex> {
        seed::read_index(self)
    }

    fn put_entry_requiring(&self, descriptor: Descriptor, required: &[Digest]) -> Result<()> {
        if let Some(name) = index::ref_name(&descriptor) {
            validate_ref_name(name)?;
        }
        let digest = Digest::try_from(descriptor.digest())?;
        self.update_index(&mut |idx| {
            // Checked under the index lock, which gc holds while it marks and sweeps: an entry
            // is never written for a manifest that a concurrent gc has just removed.
            if !ImageDriver::has_blob(self, digest)? {
                return Err(Error::blob_not_found(
                    ImageDriver::location(self).join(digest.blob_path()),
                    digest,
                ));
            }
            for &blob in required {
                if !ImageDriver::has_blob(self, blob)? {
                    return Err(Error::InvalidLayout {
                        path: ImageDriver::location(self).join(blob.blob_path()),
                        reason: format!(
                            "{blob}, part of {digest}, is not stored any more (removed by a \
                             gc or blob rm while it was written?): nothing was tagged"
                        ),
                    });
                }
            }
            idx.put(&descriptor).map_err(|e| index_json_error(self, e))
        })?;
        Ok(())
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        if name.is_empty() {
            return Err(Error::InvalidRefName {
                name: String::new(),
            });
        }
        let mut removed = 0;
        self.update_index(&mut |idx| {
            removed = idx
                .remove_ref(name)
                .map_err(|e| index_json_error(self, e))?;
            Ok(())
        })?;
        Ok(removed > 0)
    }
}

fn index_json_error<D: ImageDriver + ?Sized>(driver: &D, source: serde_json::Error) -> Error {
    Error::Json {
        path: ImageDriver::location(driver).join(LayoutFile::Index.relative_path()),
        source,
    }
}

/// Manifests and indexes are read whole to find their children; the image-spec suggests
/// registries accept at least 4 MiB, and nothing legitimate comes near this.
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;

/// `index.json` is an image index like any other and is read whole: the same bound keeps a
/// hostile one (100 MB of `0,`, say, which parses into gigabytes) a clear error.
pub const MAX_INDEX_SIZE: u64 = MAX_MANIFEST_SIZE;

/// What [`copy_image`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Blobs written to the destination.
    pub blobs_copied: usize,
    /// Bytes written to the destination.
    pub bytes_copied: u64,
    /// Blobs the destination already had.
    pub blobs_present: usize,
}

/// Copies everything `root` refers to, recursively, from `src` to `dst`, verifying each blob
/// on the way. Blobs `dst` already has are not copied again. Index entries are not touched:
/// name the result with [`ContentStore::tag`].
///
/// What is followed is what gc keeps: the references of manifests and indexes, and of any JSON
/// blob that parses as one ([`graph::may_have_references`]; ggcr stores manifests under
/// `application/vnd.oci.descriptor.v1+json`). A blob is read for references the first time a
/// descriptor names it with such a media type, even when another descriptor named it as a
/// plain blob before.
pub fn copy_image(
    src: &dyn ContentStore,
    dst: &dyn ContentStore,
    root: &Descriptor,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut copied = HashSet::new();
    let mut walked = HashSet::new();
    let mut pending = vec![root.clone()];
    while let Some(descriptor) = pending.pop() {
        let digest = Digest::try_from(descriptor.digest())?;
        let media_type = descriptor.media_type().to_string();
        let size = descriptor.size();
        let manifest_like = walk::is_manifest_like(&media_type);
        if manifest_like && size > MAX_MANIFEST_SIZE {
            return Err(Error::InvalidLayout {
                path: src.location().join(digest.blob_path()),
                reason: format!(
                    "manifest {digest} claims {size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"
                ),
            });
        }
        let document = graph::may_have_references(&media_type) && size <= MAX_MANIFEST_SIZE;
        if document && walked.insert(digest) {
            let mut bytes = Vec::new();
            src.open_blob(digest, Some(size))?
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(src.location().join(digest.blob_path()), e))?;
            match walk::references(&bytes) {
                Ok(refs) => pending.extend(refs.children),
                Err(source) if manifest_like => {
                    return Err(Error::Json {
                        path: src.location().join(digest.blob_path()),
                        source,
                    });
                }
                // Any other JSON blob (a config) that is not a document refers to nothing.
                Err(_) => {}
            }
            if copied.insert(digest) {
                copy_blob(
                    &mut io::Cursor::new(bytes),
                    src,
                    dst,
                    digest,
                    size,
                    &mut report,
                )?;
            }
        } else if !copied.insert(digest) {
            continue;
        } else if dst.has_blob(digest)? {
            report.blobs_present += 1;
        } else {
            let mut reader = src.open_blob(digest, Some(size))?;
            copy_blob(&mut reader, src, dst, digest, size, &mut report)?;
        }
    }
    Ok(report)
}

fn copy_blob(
    reader: &mut dyn Read,
    src: &dyn ContentStore,
    dst: &dyn ContentStore,
    digest: Digest,
    size: u64,
    report: &mut CopyReport,
) -> Result<()> {
    if dst.has_blob(digest)? {
        report.blobs_present += 1;
        return Ok(());
    }
    let mut writer = dst.begin_known_blob(digest, size)?;
    writer.write_from(reader).map_err(|e| match e {
        CopyError::Read(e) => Error::io(src.location().join(digest.blob_path()), e),
        CopyError::Write(e) => Error::io(dst.location().join(digest.blob_path()), e),
    })?;
    writer.commit(Some(size), Some(digest))?;
    report.blobs_copied += 1;
    report.bytes_copied += size;
    Ok(())
}
