//! Streaming unpack: any archive stream (plain, gzip, zstd; a file or a pipe) into a directory
//! layout, verifying every blob before it is published.

use std::io::Read;

use oci_core::oci_spec::image::{Descriptor, MediaType, OciLayout};
use oci_core::{ContentKind, Error, LayoutFile, Location, Result, Store, index};

use crate::compression::{self, ExpansionLimit};
use crate::entry_name::{Disposition, disposition};

/// `index.json` is read whole; the bound every driver reads it with (a larger one unpacked
/// could not be read back).
pub const MAX_INDEX_SIZE: u64 = oci_core::MAX_INDEX_SIZE;
/// `oci-layout` is one short JSON object.
const MAX_IMAGE_LAYOUT_SIZE: u64 = 64 << 10;

/// What [`unpack`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackReport {
    /// Blobs verified and written.
    pub blobs_written: usize,
    /// Blobs the target already had (still verified as they were read).
    pub blobs_present: usize,
    /// Index entries put into the target's index.
    pub entries_merged: usize,
    /// Entries not taken, each with its reason.
    pub skipped: Vec<String>,
}

/// Unpacks the archive stream `input` into `target`.
///
/// Every blob is streamed through the target's blob writer with the digest and size its
/// entry name and header give, so it is verified before it becomes visible; a corrupt blob
/// stops the unpack with an error naming it and leaves nothing unverified behind. The archive's
/// index entries are then merged into the target's index ([`Store::put_entries`], one locked
/// update in a directory): an entry with a ref name replaces the target's entries of that
/// name, an untagged one is added unless an identical one is there.
pub fn unpack(input: impl Read, target: &dyn Store, limit: ExpansionLimit) -> Result<UnpackReport> {
    let label = target.location().clone();
    let stream_error = |e| Error::InvalidLayout {
        location: label.clone(),
        reason: format!("reading the archive: {e}"),
    };
    let (_, plain) = compression::decompress(input, limit).map_err(stream_error)?;
    let mut archive = tar::Archive::new(plain);
    let mut report = UnpackReport::default();
    let mut index_bytes = None;
    let mut layout_bytes = None;
    for entry in archive.entries().map_err(stream_error)? {
        let mut entry = entry.map_err(stream_error)?;
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let file = match disposition(&entry.path_bytes(), entry.header().entry_type()) {
            Disposition::Take(file) => file,
            Disposition::Ignore => continue,
            Disposition::Skip(why) => {
                report.skipped.push(why);
                continue;
            }
        };
        let size = entry.size();
        match file {
            LayoutFile::Blob(digest) => {
                if target.contains(ContentKind::Blob, digest)? {
                    report.blobs_present += 1;
                    continue;
                }
                // A layout does not say what a blob is: in a layout, every kind is a blob.
                let descriptor =
                    Descriptor::new(MediaType::Other(OCTET_STREAM.into()), size, digest);
                target.push(&descriptor, &mut entry)?;
                report.blobs_written += 1;
            }
            LayoutFile::Index => {
                index_bytes = Some(read_small(&mut entry, MAX_INDEX_SIZE, &shown, &label)?);
            }
            LayoutFile::ImageLayout => {
                layout_bytes = Some(read_small(
                    &mut entry,
                    MAX_IMAGE_LAYOUT_SIZE,
                    &shown,
                    &label,
                )?);
            }
        }
    }
    if let Some(bytes) = layout_bytes {
        let layout: OciLayout = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(label.join("oci-layout (in the archive)"), e))?;
        if !layout.image_layout_version().starts_with("1.") {
            return Err(Error::InvalidLayout {
                location: label,
                reason: format!(
                    "the archive's imageLayoutVersion {:?} is not 1.x",
                    layout.image_layout_version()
                ),
            });
        }
    }
    let bytes = index_bytes.ok_or_else(|| Error::InvalidLayout {
        location: label.clone(),
        reason: "the archive has no index.json".into(),
    })?;
    let incoming = index::parse_index(&bytes)
        .map_err(|e| Error::json(label.join("index.json (in the archive)"), e))?;
    for descriptor in incoming.manifests() {
        if let Some(name) = index::ref_name(descriptor) {
            oci_core::validate_ref_name(name)?;
        }
    }
    target.put_entries(incoming.manifests())?;
    report.entries_merged = incoming.manifests().len();
    Ok(report)
}

/// The media type of content whose type is not known.
const OCTET_STREAM: &str = "application/octet-stream";

fn read_small(entry: &mut impl Read, limit: u64, shown: &str, label: &Location) -> Result<Vec<u8>> {
    oci_core::read_bounded(
        entry,
        limit,
        &label.join(format!("{shown} (in the archive)")),
    )
}
