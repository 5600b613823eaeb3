//! [`TarArchive`]: a layout archive read in place, without extracting it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::{Descriptor, ImageIndex};
use oci_core::{
    Algorithm, BlobListing, BlobWriter, Compression, ContentKind, CopyError, Digest, Error,
    LayoutFile, LayoutFiles, Location, MetadataFile, Result, Store, StrayFile, StrayKind, index,
};

use crate::compression::{self, ExpansionLimit, tar_error_text};
use crate::entry_name::{Disposition, NameError, classify, disposition};
use crate::space::RoomChecked;

/// Where an entry's content is in the archive file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// The archive in `file` as a plain tar in a file that positional reads can serve: `file`
/// itself, or, when it is gzip or zstd (magic bytes), an anonymous temp file it is
/// decompressed into, checked against the free space there as it grows (see
/// [`ExpansionLimit`] for why not against a ratio).
pub(crate) fn plain_tar(
    mut file: File,
    path: &Path,
    limit: ExpansionLimit,
) -> Result<(File, Compression)> {
    file.rewind().map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    let compression = Compression::detect(&head[..n]);
    if compression == Compression::None {
        return Ok((file, compression));
    }
    let temp_dir = std::env::temp_dir();
    let mut spool = tempfile::tempfile().map_err(|e| Error::io(&temp_dir, e))?;
    {
        let (_, mut plain) =
            compression::decompress(&file, limit).map_err(|e| Error::io(path, e))?;
        let mut room_checked = RoomChecked::new(&mut spool);
        oci_core::copy_stream(&mut plain, &mut room_checked).map_err(|e| match e {
            CopyError::Read(e) => Error::io(path, e),
            CopyError::Write(e) => Error::Io {
                source: io::Error::new(
                    e.kind(),
                    format!("decompressing {} into a temp file: {e}", path.display()),
                ),
                location: temp_dir.clone().into(),
            },
        })?;
    }
    spool.rewind().map_err(|e| Error::io(path, e))?;
    Ok((spool, compression))
}

/// One pass over the headers of the plain tar in `file`, handing each entry and where its
/// content is to `visit`; then checks that every span `visit` kept (it returns them) lies
/// within the file, since a truncated archive can end inside its last entry.
pub(crate) fn scan_entries(
    file: &File,
    path: &Path,
    mut visit: impl FnMut(&tar::Entry<'_, &File>, Span) -> Option<Span>,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidLayout {
        location: path.into(),
        reason,
    };
    let mut archive = tar::Archive::new(file);
    let iter = archive
        .entries_with_seek()
        .map_err(|e| invalid(tar_error_text(&e, true)))?;
    let mut first = true;
    let mut kept_end = 0u64;
    for entry in iter {
        let entry = entry.map_err(|e| invalid(tar_error_text(&e, first)))?;
        first = false;
        let span = Span {
            offset: entry.raw_file_position(),
            size: entry.size(),
        };
        if let Some(kept) = visit(&entry, span) {
            kept_end = kept_end.max(kept.offset.saturating_add(kept.size));
        }
    }
    let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if kept_end > length {
        return Err(invalid(format!(
            "truncated: an entry's content ends at byte {kept_end}, the archive at {length}"
        )));
    }
    Ok(())
}

/// A layout archive opened for reading in place.
///
/// Opening reads the tar headers only, in one pass, recording where each layout file's content
/// is; reads then go straight to those offsets with positional reads, so one open archive can
/// serve several readers. Nothing is extracted. A compressed archive (gzip or zstd, detected by
/// magic bytes) is first decompressed to an anonymous temp file, checked against the free space
/// there as it grows (see [`ExpansionLimit`] for why not against a ratio).
///
/// A [`Store`] with [`LayoutFiles`] and [`BlobListing`]. Read-only: its write methods fail
/// with [`Error::Unsupported`].
#[derive(Debug)]
pub struct TarArchive {
    location: Location,
    file: File,
    compression: Compression,
    entries: HashMap<LayoutFile, Span>,
    skipped: Vec<String>,
    /// The skipped entries, as fsck reports them.
    strays: Vec<StrayFile>,
}

impl TarArchive {
    /// Opens the archive at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<TarArchive> {
        TarArchive::open_with(path, ExpansionLimit::default())
    }

    /// Opens the archive at `path`, with a custom bound on decompression.
    pub fn open_with(path: impl AsRef<Path>, limit: ExpansionLimit) -> Result<TarArchive> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                location: Location::Path(path.clone()),
                digest: None,
            },
            _ => Error::io(&path, e),
        })?;
        TarArchive::from_file_with(file, path, limit)
    }

    /// Reads the archive in an open file, from its start: an anonymous temp file, or one opened
    /// with flags of the caller's choosing. `label` names the archive in messages.
    ///
    /// ```
    /// use oci_core::prelude::*;
    /// use oci_tar::{TarArchive, TarWriter};
    /// use std::io::Write;
    ///
    /// let writer = TarWriter::new(Vec::new(), "mem.tar");
    /// seed::init(&writer, &seed::InitOptions::default())?;
    /// let digest = seed::write_blob(&writer, b"hello")?;
    /// let mut file = tempfile::tempfile()?;
    /// file.write_all(&writer.finish()?)?;
    ///
    /// let archive = TarArchive::from_file(file, "mem.tar")?;
    /// assert_eq!(seed::read_blob(&archive, digest)?, b"hello");
    /// assert!(archive.index()?.manifests().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(file: File, label: impl Into<PathBuf>) -> Result<TarArchive> {
        TarArchive::from_file_with(file, label, ExpansionLimit::default())
    }

    /// [`TarArchive::from_file`] with a custom bound on decompression.
    pub fn from_file_with(
        file: File,
        label: impl Into<PathBuf>,
        limit: ExpansionLimit,
    ) -> Result<TarArchive> {
        let path = label.into();
        let (file, compression) = plain_tar(file, &path, limit)?;
        let Scan {
            entries,
            skipped,
            strays,
        } = scan(&file, &path)?;
        if !entries.contains_key(&LayoutFile::Index) {
            return Err(Error::InvalidLayout {
                location: Location::Path(path),
                reason: "no index.json: not an OCI image layout archive".into(),
            });
        }
        Ok(TarArchive {
            location: Location::Path(path),
            file,
            compression,
            entries,
            skipped,
            strays,
        })
    }

    /// The compression the archive was stored with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Entries that were not taken, each with the reason (links, devices, invalid names, …).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn read_only(&self) -> Error {
        Error::unsupported(
            &self.location,
            "an archive is read-only: unpack it into a layout directory to change it",
        )
    }

    fn span(&self, file: LayoutFile) -> Result<Span> {
        self.entries
            .get(&file)
            .copied()
            .ok_or_else(|| Error::NotFound {
                location: self.location.join(file.relative_path()),
                digest: file.digest(),
            })
    }

    fn reader(&self, file: LayoutFile) -> Result<SpanReader<'_>> {
        Ok(SpanReader::new(&self.file, self.span(file)?))
    }
}

/// One pass over the headers. The last entry of a name wins, as when tar extracts.
/// What a scan found: where each layout file is, and the entries not taken (with the reason,
/// and as fsck reports them).
struct Scan {
    entries: HashMap<LayoutFile, Span>,
    skipped: Vec<String>,
    strays: Vec<StrayFile>,
}

fn scan(file: &File, path: &Path) -> Result<Scan> {
    let mut entries = HashMap::new();
    let mut skipped = Vec::new();
    let mut strays = Vec::new();
    scan_entries(file, path, |entry, span| {
        match disposition(&entry.path_bytes(), entry.header().entry_type()) {
            Disposition::Take(layout_file) => {
                entries.insert(layout_file, span);
                return Some(span);
            }
            Disposition::Ignore => {}
            Disposition::Skip(why) => {
                let raw = entry.path_bytes();
                let kind = match classify(&raw) {
                    Err(NameError::InvalidBlobName { .. }) => StrayKind::NotADigest,
                    _ => StrayKind::Other,
                };
                let name = String::from_utf8_lossy(&raw);
                let location = Location::Path(PathBuf::from(format!("{}/{name}", path.display())));
                skipped.push(why);
                strays.push(StrayFile {
                    location,
                    kind,
                    modified: None,
                });
            }
        }
        None
    })?;
    Ok(Scan {
        entries,
        skipped,
        strays,
    })
}

/// Reads one entry's bytes with positional reads on the shared file.
pub(crate) struct SpanReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl<'a> SpanReader<'a> {
    pub(crate) fn new(file: &'a File, span: Span) -> SpanReader<'a> {
        SpanReader {
            file,
            position: span.offset,
            end: span.offset + span.size,
        }
    }
}

impl Read for SpanReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.position;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside an entry",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

impl Store for TarArchive {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        Ok(self
            .entries
            .get(&LayoutFile::Blob(digest))
            .map(|span| span.size))
    }

    fn fetch(
        &self,
        _kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let reader = self.reader(LayoutFile::Blob(digest))?;
        Ok(Box::new(VerifyingReader::new(reader, digest, size)))
    }

    fn fetch_unverified(
        &self,
        _kind: ContentKind,
        digest: Digest,
        _size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.reader(LayoutFile::Blob(digest))?))
    }

    fn verifies_reads(&self) -> bool {
        true
    }

    fn push(&self, _: &Descriptor, _: &mut dyn Read) -> Result<()> {
        Err(self.read_only())
    }

    fn begin_blob(&self, _: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Err(self.read_only())
    }

    fn index(&self) -> Result<ImageIndex> {
        let bytes = self.read_metadata(MetadataFile::Index)?;
        index::parse_index(&bytes)
            .map_err(|e| Error::json(self.location.join(oci_core::INDEX_FILE), e))
    }

    fn put_entries(&self, _: &[Descriptor], _: &[Digest]) -> Result<oci_core::index::PutOutcome> {
        Err(self.read_only())
    }

    fn remove_ref(&self, _: &str) -> Result<bool> {
        Err(self.read_only())
    }

    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        Some(self)
    }

    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        Some(self)
    }
}

impl LayoutFiles for TarArchive {
    fn read_metadata(&self, file: MetadataFile) -> Result<Vec<u8>> {
        let layout_file = file.as_layout_file();
        let mut reader = self.reader(layout_file)?;
        oci_core::read_bounded(
            &mut reader,
            oci_core::MAX_INDEX_SIZE,
            &self.location.join(layout_file.relative_path()),
        )
    }

    fn write_metadata(&self, _: MetadataFile, _: &[u8]) -> Result<()> {
        Err(self.read_only())
    }

    fn create_blobs_dir(&self) -> Result<()> {
        Err(self.read_only())
    }

    /// An archive need not hold directory entries: `blobs/` is there when the archive says so
    /// or holds a blob, and its absence is not worth a finding.
    fn has_blobs_dir(&self) -> Result<bool> {
        Ok(true)
    }

    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        Ok(self.strays.clone())
    }

    fn remove_stray(&self, _: &StrayFile) -> Result<()> {
        Err(self.read_only())
    }
}

impl BlobListing for TarArchive {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests: Vec<Digest> = self.entries.keys().filter_map(LayoutFile::digest).collect();
        digests.sort();
        Ok(digests)
    }
}
