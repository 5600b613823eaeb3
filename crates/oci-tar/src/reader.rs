//! [`TarArchive`]: a layout archive read in place, without extracting it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use oci_core::{
    Algorithm, BlobWriter, CopyError, Digest, Error, ImageDriver, LayoutFile, MetadataFile, Result,
    StrayFile, StrayKind,
};

use crate::compression::{self, Compression, ExpansionLimit, tar_error_text};
use crate::entry_name::{Disposition, NameError, classify, disposition};
use crate::space::RoomChecked;

/// Where an entry's content is in the archive file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    offset: u64,
    size: u64,
}

/// A layout archive opened for reading in place.
///
/// Opening reads the tar headers only, in one pass, recording where each layout file's content
/// is; reads then go straight to those offsets with positional reads, so one open archive can
/// serve several readers. Nothing is extracted. A compressed archive (gzip or zstd, detected by
/// magic bytes) is first decompressed to an anonymous temp file, checked against the free space
/// there as it grows (see [`ExpansionLimit`] for why not against a ratio).
///
/// Read-only: the write methods of [`ImageDriver`] fail with a message saying to unpack first.
#[derive(Debug)]
pub struct TarArchive {
    path: PathBuf,
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
                path: path.clone(),
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
    /// use oci_core::{ContentStore, seed};
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
        mut file: File,
        label: impl Into<PathBuf>,
        limit: ExpansionLimit,
    ) -> Result<TarArchive> {
        let path = label.into();
        file.rewind().map_err(|e| Error::io(&path, e))?;
        let mut head = [0u8; 4];
        let n = file.read(&mut head).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&path, e))?;
        let compression = Compression::detect(&head[..n]);
        if compression != Compression::None {
            // Bounded by the free space where it goes (see `space`), not by a ratio.
            let temp_dir = std::env::temp_dir();
            let mut spool = tempfile::tempfile().map_err(|e| Error::io(&temp_dir, e))?;
            {
                let (_, mut plain) =
                    compression::decompress(&file, limit).map_err(|e| Error::io(&path, e))?;
                let mut room_checked = RoomChecked::new(&mut spool);
                oci_core::copy_stream(&mut plain, &mut room_checked).map_err(|e| match e {
                    CopyError::Read(e) => Error::io(&path, e),
                    CopyError::Write(e) => Error::Io {
                        source: io::Error::new(
                            e.kind(),
                            format!("decompressing {} into a temp file: {e}", path.display()),
                        ),
                        path: temp_dir.clone(),
                    },
                })?;
            }
            spool.rewind().map_err(|e| Error::io(&path, e))?;
            file = spool;
        }
        let Scan {
            entries,
            skipped,
            strays,
        } = scan(&file, &path)?;
        if !entries.contains_key(&LayoutFile::Index) {
            return Err(Error::InvalidLayout {
                path,
                reason: "no index.json: not an OCI image layout archive".into(),
            });
        }
        Ok(TarArchive {
            path,
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
        Error::Unsupported {
            path: self.path.clone(),
            reason: "archives are read-only; unpack it first (oci-layout unpack ARCHIVE DIR)"
                .into(),
        }
    }

    fn span(&self, file: LayoutFile) -> Result<Span> {
        self.entries
            .get(&file)
            .copied()
            .ok_or_else(|| Error::NotFound {
                path: self.path.join(file.relative_path()),
                digest: file.digest(),
            })
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
    let invalid = |reason: String| Error::InvalidLayout {
        path: path.to_path_buf(),
        reason,
    };
    let mut archive = tar::Archive::new(file);
    let mut entries = HashMap::new();
    let mut skipped = Vec::new();
    let mut strays = Vec::new();
    let iter = archive
        .entries_with_seek()
        .map_err(|e| invalid(tar_error_text(&e, true)))?;
    let mut first = true;
    for entry in iter {
        let entry = entry.map_err(|e| invalid(tar_error_text(&e, first)))?;
        first = false;
        match disposition(&entry.path_bytes(), entry.header().entry_type()) {
            Disposition::Take(layout_file) => {
                let span = Span {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                };
                entries.insert(layout_file, span);
            }
            Disposition::Ignore => {}
            Disposition::Skip(why) => {
                let raw = entry.path_bytes();
                let kind = match classify(&raw) {
                    Err(NameError::InvalidBlobName { .. }) => StrayKind::NotADigest,
                    _ => StrayKind::Other,
                };
                let name = String::from_utf8_lossy(&raw);
                let path = PathBuf::from(format!("{}/{name}", path.display()));
                skipped.push(why);
                strays.push(StrayFile {
                    path,
                    kind,
                    modified: None,
                });
            }
        }
    }
    // A truncated archive can end inside the last entry: its content must be all there.
    let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if let Some((file, span)) = entries
        .iter()
        .find(|(_, s)| s.offset.saturating_add(s.size) > length)
    {
        return Err(invalid(format!(
            "truncated: {file} needs {} bytes at offset {}",
            span.size, span.offset
        )));
    }
    Ok(Scan {
        entries,
        skipped,
        strays,
    })
}

/// Reads one entry's bytes with positional reads on the shared file.
struct SpanReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
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

impl ImageDriver for TarArchive {
    fn location(&self) -> &Path {
        &self.path
    }

    fn init(&self) -> Result<()> {
        Err(self.read_only())
    }

    fn reader(&self, file: LayoutFile) -> Result<Box<dyn Read + Send + '_>> {
        let span = self.span(file)?;
        Ok(Box::new(SpanReader {
            file: &self.file,
            position: span.offset,
            end: span.offset + span.size,
        }))
    }

    fn write_file(&self, _: MetadataFile, _: &[u8]) -> Result<()> {
        Err(self.read_only())
    }

    fn remove(&self, _: LayoutFile) -> Result<()> {
        Err(self.read_only())
    }

    fn blob_writer(&self, _: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Err(self.read_only())
    }

    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        Ok(self.strays.clone())
    }

    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests: Vec<Digest> = self.entries.keys().filter_map(LayoutFile::digest).collect();
        digests.sort();
        Ok(digests)
    }

    fn blob_size(&self, digest: Digest) -> Result<u64> {
        Ok(self.span(LayoutFile::Blob(digest))?.size)
    }

    fn update_index(
        &self,
        _: &mut dyn FnMut(&mut oci_core::index::IndexDocument) -> Result<()>,
    ) -> Result<()> {
        Err(self.read_only())
    }
}
