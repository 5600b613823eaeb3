//! Streaming unpack: any archive stream (plain, gzip, zstd; a file or a pipe) into a directory
//! layout, verifying every blob before it is published.

use std::io::{self, Read};
use std::path::Path;

use oci_core::oci_spec::image::{Descriptor, MediaType, OciLayout};
use oci_core::{ContentKind, Error, LayoutFile, Location, Result, Store, attribute_reads, index};

use crate::compression::{self, ExpansionLimit, tar_error_text};
use crate::entry_name::{Disposition, disposition};
use crate::space::Room;

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
    /// Index entries put into the target's index: every named one, and each untagged one
    /// the target did not already hold.
    pub entries_merged: usize,
    /// Entries not taken, each with its reason.
    pub skipped: Vec<String>,
    /// Tags of the target that an archive entry of the same name replaced with another
    /// manifest, one per ref name and previous digest.
    pub replaced: Vec<ReplacedTag>,
}

/// A ref name that pointed at one manifest in the target and, after a merge, at another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedTag {
    /// The ref name.
    pub name: String,
    /// What it named before.
    pub previous: Descriptor,
    /// What it names now.
    pub current: Descriptor,
}

/// Unpacks the archive stream `input` (named `source` in messages) into `target`.
///
/// Every blob is streamed through the target's blob writer with the digest and size its
/// entry name and header give, so it is verified before it becomes visible; a corrupt blob
/// stops the unpack with an error naming it and leaves nothing unverified behind. Before a
/// blob is written, the size its header claims is checked against the free space where the
/// target is (a reserve kept free): a decompression bomb is refused before it fills the disk.
/// The archive's index entries are then merged into the target's index
/// ([`Store::put_entries`], one locked update in a directory): an entry with a ref name
/// replaces the target's entries of that name (each replaced with another manifest is listed
/// in [`UnpackReport::replaced`]), an untagged one is added unless an identical one is there.
/// That update first checks that every blob of the archive is still stored: one that a
/// concurrent gc or blob removal took meanwhile fails the unpack, with the index unchanged. (Blobs the archive does not hold are not required: an archive may hold part
/// of an image on purpose, one platform of an index, say.)
pub fn unpack(
    input: impl Read,
    source: &Path,
    target: &dyn Store,
    limit: ExpansionLimit,
) -> Result<UnpackReport> {
    let label = target.location().clone();
    let stream_error = |e: io::Error, at_start: bool| Error::InvalidLayout {
        location: source.into(),
        reason: tar_error_text(&e, at_start),
    };
    let (_, plain) = compression::decompress(input, limit).map_err(|e| stream_error(e, true))?;
    let mut archive = tar::Archive::new(plain);
    let mut report = UnpackReport::default();
    let mut index_bytes = None;
    let mut layout_bytes = None;
    // Written or found: what the merge requires to be stored.
    let mut blobs = Vec::new();
    let mut at_start = true;
    for entry in archive.entries().map_err(|e| stream_error(e, true))? {
        let mut entry = entry.map_err(|e| stream_error(e, at_start))?;
        at_start = false;
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
                blobs.push(digest);
                if target.contains(ContentKind::Blob, digest)? {
                    report.blobs_present += 1;
                    continue;
                }
                if let Some(room) = label.as_path().and_then(Room::at) {
                    room.check(size, &format!("the archive's blob {digest}"))
                        .map_err(|e| Error::io(&label, e))?;
                }
                // A layout does not say what a blob is: in a layout, every kind is a blob. A
                // failed read of the archive is the archive's fault, and says so.
                let descriptor =
                    Descriptor::new(MediaType::Other(OCTET_STREAM.into()), size, digest);
                let mut content = attribute_reads(
                    TarReadErrors(&mut entry),
                    Location::Path(source.to_path_buf()),
                );
                target.push(&descriptor, &mut content)?;
                report.blobs_written += 1;
            }
            LayoutFile::Index => {
                index_bytes = Some(read_small(&mut entry, MAX_INDEX_SIZE, &shown, source)?);
            }
            LayoutFile::ImageLayout => {
                layout_bytes = Some(read_small(
                    &mut entry,
                    MAX_IMAGE_LAYOUT_SIZE,
                    &shown,
                    source,
                )?);
            }
        }
    }
    if let Some(bytes) = layout_bytes {
        let layout: OciLayout = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(source.join("oci-layout"), e))?;
        if !layout.image_layout_version().starts_with("1.") {
            return Err(Error::InvalidLayout {
                location: source.into(),
                reason: format!(
                    "imageLayoutVersion {:?} is not 1.x",
                    layout.image_layout_version()
                ),
            });
        }
    }
    let bytes = index_bytes.ok_or_else(|| Error::InvalidLayout {
        location: source.into(),
        reason: "no index.json: not an OCI image layout archive".into(),
    })?;
    let incoming =
        index::parse_index(&bytes).map_err(|e| Error::json(source.join("index.json"), e))?;
    for descriptor in incoming.manifests() {
        if let Some(name) = index::ref_name(descriptor) {
            oci_core::validate_ref_name(name)?;
        }
    }
    // Under the lock gc sweeps under, everything the archive held must still be stored: what
    // is there now stays until the index names it.
    let merged = target
        .put_entries(incoming.manifests(), &blobs)
        .map_err(|e| match e {
            Error::InvalidLayout { location, reason } if reason.contains("not stored any more") => {
                Error::InvalidLayout {
                    location,
                    reason: reason.replace(
                        "while it was written?): nothing was tagged",
                        "while the unpack ran?): nothing was merged; unpack again",
                    ),
                }
            }
            other => other,
        })?;
    report.entries_merged = merged.added;
    // Each tag moved to another manifest, once per name and what it named before.
    for previous in merged.replaced {
        let Some(name) = index::ref_name(&previous).map(str::to_owned) else {
            continue;
        };
        let Some(current) = incoming
            .manifests()
            .iter()
            .rev()
            .find(|d| index::ref_name(d) == Some(name.as_str()))
        else {
            continue;
        };
        let listed = report
            .replaced
            .iter()
            .any(|r| r.name == name && r.previous.digest() == previous.digest());
        if previous.digest() != current.digest() && !listed {
            report.replaced.push(ReplacedTag {
                name,
                previous,
                current: current.clone(),
            });
        }
    }
    Ok(report)
}

fn read_small(entry: &mut impl Read, limit: u64, shown: &str, label: &Path) -> Result<Vec<u8>> {
    oci_core::read_bounded(
        entry,
        limit,
        &Location::Path(label.join(format!("{shown} (in the archive)"))),
    )
}

/// The media type of content whose type is not known.
const OCTET_STREAM: &str = "application/octet-stream";

/// An archive entry whose read errors say what is wrong with the archive, never its bytes.
struct TarReadErrors<R>(R);

impl<R: Read> Read for TarReadErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), tar_error_text(&e, false)))
    }
}
