//! [`TarWriter`]: a layout written as a tar stream, through the core driver traits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use oci_core::index::IndexDocument;
use oci_core::oci_digest::Hasher;
use oci_core::oci_spec::image::{Descriptor, ImageIndex};
use oci_core::{
    Algorithm, BLOBS_DIR, BlobListing, BlobWriter, ContentKind, CopyError, Digest, Error,
    IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFiles, Location, MetadataFile, Result, Store, StrayFile,
    check_commit, check_stored, copy_stream, index,
};
use tar::EntryType;

use crate::{framing, read_ahead};

const BLOB_MODE: u32 = 0o644;

/// A layout written as a tar archive to any [`Write`]: a file, a pipe, standard output.
///
/// It is a [`Store`] with [`LayoutFiles`] and [`BlobListing`], so [`oci_core::seed`],
/// [`oci_core::copy_image`] and image building work on it unchanged; what has gone into the
/// stream cannot be read back. Blobs go into the stream as they are committed; `index.json`
/// and `oci-layout` are kept in memory and written by [`TarWriter::finish`], after the blobs,
/// as every producer does. A blob whose digest and size are known up front ([`Store::push`])
/// streams straight into the archive; any other ([`Store::begin_blob`]) is spooled to an
/// anonymous temp file, never to memory.
///
/// The same blobs written in the same order with the same index give the same bytes: mtime 0,
/// uid/gid 0, no user names, fixed modes, GNU long names for `blobs/sha512/<128 hex>`.
///
/// A size or digest mismatch of a streamed blob leaves wrong bytes in the stream, so it
/// poisons the writer: every later call fails, saying the archive is invalid.
pub struct TarWriter<W: Write + Send> {
    label: PathBuf,
    location: Location,
    state: Mutex<State<W>>,
    /// One blob at a time goes into the stream: a streamed blob holds this from its header
    /// to its commit, and a spooled blob's commit and an index edit wait for it, so writers
    /// on several threads (a copy with `-j N`) take turns rather than fail.
    turn: Mutex<()>,
}

struct State<W> {
    out: W,
    started: bool,
    algorithm_dirs: BTreeSet<Algorithm>,
    blobs: BTreeMap<Digest, u64>,
    index: Option<Vec<u8>>,
    image_layout: Option<Vec<u8>>,
    streaming: bool,
    poisoned: Option<String>,
}

impl<W: Write + Send> TarWriter<W> {
    /// A writer onto `out`; `label` names the archive in messages (its path, or `-`).
    pub fn new(out: W, label: impl Into<PathBuf>) -> TarWriter<W> {
        let label = label.into();
        TarWriter {
            location: Location::Path(label.clone()),
            label,
            state: Mutex::new(State {
                out,
                started: false,
                algorithm_dirs: BTreeSet::new(),
                blobs: BTreeMap::new(),
                index: None,
                image_layout: None,
                streaming: false,
                poisoned: None,
            }),
            turn: Mutex::new(()),
        }
    }

    /// Writes `index.json`, `oci-layout` and the end-of-archive marker, and returns the
    /// underlying writer (flushed).
    pub fn finish(self) -> Result<W> {
        let label = self.label.clone();
        let mut state = self.state.into_inner().map_err(|_| poisoned_lock(&label))?;
        state.check(&label)?;
        state.start(&label)?;
        let io = |e| Error::io(&label, e);
        if let Some(index) = state.index.take() {
            framing::write_file(
                &mut state.out,
                INDEX_FILE,
                MetadataFile::Index.mode(),
                &index,
            )
            .map_err(io)?;
        }
        if let Some(layout) = state.image_layout.take() {
            framing::write_file(
                &mut state.out,
                IMAGE_LAYOUT_FILE,
                MetadataFile::ImageLayout.mode(),
                &layout,
            )
            .map_err(io)?;
        }
        framing::write_end(&mut state.out).map_err(io)?;
        state.out.flush().map_err(io)?;
        Ok(state.out)
    }

    /// Appends the blob `digest` of `size` bytes that `content` yields, trusting `content` to
    /// check it: a reader from [`Store::fetch`] (a verifying reader) fails the read that
    /// reaches a wrong end, so the content is hashed once, as it is read, not a second time
    /// on the way in. That failure, or any other, poisons the archive.
    ///
    /// Reading (and so hashing) runs on a thread of its own, a few chunks ahead of the writes
    /// into the archive, so the hash and the output's copy overlap on two cores.
    pub fn append_verified(
        &self,
        digest: Digest,
        size: u64,
        content: impl Read + Send,
    ) -> Result<()> {
        let turn = self.take_turn()?;
        let mut state = self.lock_stream(&turn)?;
        if state.blobs.contains_key(&digest) {
            return Ok(());
        }
        state.begin_blob_entry(&self.label, digest, size)?;
        match read_ahead::copy(content, &mut state.out, size) {
            Ok(n) if n == size => {}
            // The reader checked the size; this keeps the stream's framing right whatever.
            Ok(n) => {
                let why = format!("blob {digest} gave {n} of its {size} bytes");
                return Err(state.poison(&self.label, why));
            }
            // The source's fault (it did not verify, or could not be read): named by digest.
            Err(CopyError::Read(e)) => {
                let _ = state.poison(&self.label, format!("reading blob {digest}: {e}"));
                return Err(Error::io(Location::Url(format!("blob {digest}")), e));
            }
            Err(CopyError::Write(e)) => return Err(state.output_failed(&self.label, digest, e)),
        }
        if let Err(e) = framing::write_padding(&mut state.out, size) {
            return Err(state.output_failed(&self.label, digest, e));
        }
        state.blobs.insert(digest, size);
        Ok(())
    }

    /// The state, to read it or to edit what is kept for `finish`; refused once poisoned.
    fn lock(&self) -> Result<MutexGuard<'_, State<W>>> {
        let state = self.state.lock().map_err(|_| poisoned_lock(&self.label))?;
        if let Some(why) = &state.poisoned {
            return Err(State::<W>::invalid(&self.label, why));
        }
        Ok(state)
    }

    /// The state, to write into the stream: the caller holds the turn, so no streamed blob
    /// can be half-written (checked all the same: interleaved bytes would corrupt the archive).
    fn lock_stream(&self, _turn: &MutexGuard<'_, ()>) -> Result<MutexGuard<'_, State<W>>> {
        let state = self.state.lock().map_err(|_| poisoned_lock(&self.label))?;
        state.check(&self.label)?;
        Ok(state)
    }

    fn write_only(&self, what: &str) -> Error {
        Error::unsupported(
            &self.location,
            format!("a tar stream being written cannot {what}"),
        )
    }

    /// Starts a blob of known digest and size, streamed straight into the archive; `turn` is
    /// held until the writer is committed or dropped.
    fn blob_writer_for(
        &self,
        turn: &MutexGuard<'_, ()>,
        digest: Digest,
        size: u64,
    ) -> Result<StreamingBlobWriter<'_, W>> {
        let mut state = self.lock_stream(turn)?;
        if state.blobs.contains_key(&digest) {
            // Already in the archive: verify the content, write nothing.
            return Ok(StreamingBlobWriter::new(self, digest, size, false));
        }
        state.begin_blob_entry(&self.label, digest, size)?;
        state.streaming = true;
        Ok(StreamingBlobWriter::new(self, digest, size, true))
    }

    /// Waits for the stream to be free (see [`TarWriter::turn`]).
    fn take_turn(&self) -> Result<MutexGuard<'_, ()>> {
        self.turn.lock().map_err(|_| poisoned_lock(&self.label))
    }

    /// Read-modify-write of the index kept for `finish`.
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        let _turn = self.take_turn()?;
        let mut state = self.lock()?;
        let location = self.location.join(INDEX_FILE);
        let bytes = state.index.clone().ok_or_else(|| Error::NotFound {
            location: location.clone(),
            digest: None,
        })?;
        let mut document = IndexDocument::parse(bytes).map_err(|e| Error::json(&location, e))?;
        edit(&mut document)?;
        state.index = Some(document.to_bytes());
        Ok(())
    }
}

fn poisoned_lock(label: &Path) -> Error {
    Error::unsupported(label, "the archive is invalid: a writer panicked")
}

impl<W: Write> State<W> {
    fn invalid(label: &Path, why: &str) -> Error {
        Error::InvalidLayout {
            location: label.into(),
            reason: format!("the archive is invalid and takes no more writes: {why}"),
        }
    }

    fn check(&self, label: &Path) -> Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(Self::invalid(label, why));
        }
        if self.streaming {
            return Err(Error::unsupported(
                label,
                "a blob is being streamed into the archive; commit it first",
            ));
        }
        Ok(())
    }

    fn poison(&mut self, label: &Path, why: String) -> Error {
        let error = Error::InvalidLayout {
            location: label.into(),
            reason: format!("the archive is invalid: {why}"),
        };
        self.poisoned = Some(why);
        error
    }

    /// Writing the output failed (a full disk, a reader that went away): the stream is cut
    /// short, so the writer is poisoned, and the error names the output with the system's
    /// error as it is, so a closed pipe can still be told from a real failure.
    fn output_failed(&mut self, label: &Path, digest: impl fmt::Display, e: io::Error) -> Error {
        self.poisoned = Some(format!("writing {digest} failed: {e}"));
        Error::io(label, e)
    }

    /// The `blobs/` entry comes first. A failed write may have left part of a header in the
    /// stream, so it poisons the writer.
    fn start(&mut self, label: &Path) -> Result<()> {
        if !self.started {
            if let Err(e) = framing::write_dir(&mut self.out, &format!("{BLOBS_DIR}/")) {
                return Err(self.output_failed(label, format_args!("the {BLOBS_DIR}/ entry"), e));
            }
            self.started = true;
        }
        Ok(())
    }

    /// Writes the headers of a blob entry (and its `blobs/<alg>/` entry the first time). A
    /// failed write may have left part of a header in the stream, so it poisons the writer.
    fn begin_blob_entry(&mut self, label: &Path, digest: Digest, size: u64) -> Result<()> {
        self.start(label)?;
        let mut written = Ok(());
        if self.algorithm_dirs.insert(digest.algorithm()) {
            written = framing::write_dir(
                &mut self.out,
                &format!("{BLOBS_DIR}/{}/", digest.algorithm()),
            );
        }
        written = written.and_then(|()| {
            framing::write_header(
                &mut self.out,
                &digest.blob_entry_name(),
                EntryType::Regular,
                BLOB_MODE,
                size,
            )
        });
        written.map_err(|e| self.output_failed(label, format_args!("the header of {digest}"), e))
    }
}

impl<W: Write + Send> Store for TarWriter<W> {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        Ok(self.lock()?.blobs.get(&digest).copied())
    }

    fn fetch(
        &self,
        _: ContentKind,
        _: Digest,
        _: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        Err(self.write_only("read back a blob"))
    }

    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let turn = self.take_turn()?;
        let mut writer = self.blob_writer_for(&turn, digest, descriptor.size())?;
        writer
            .write_from(content)
            .map_err(|e| Error::io(self.location.of_content(digest), e.into_inner()))?;
        Box::new(writer).commit(Some(descriptor.size()), Some(digest))?;
        Ok(())
    }

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        // Fail early on a poisoned archive rather than after spooling the blob (a busy one is
        // waited for at the commit).
        drop(self.lock()?);
        let spool = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        Ok(Box::new(SpooledBlobWriter {
            archive: self,
            spool,
            hasher: algorithm.hasher(),
            written: 0,
        }))
    }

    fn index(&self) -> Result<ImageIndex> {
        let bytes = self.read_metadata(MetadataFile::Index)?;
        index::parse_index(&bytes).map_err(|e| Error::json(self.location.join(INDEX_FILE), e))
    }

    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        // Checked before the edit, not under the lock it holds: nothing leaves an archive
        // being written, so what is there now is there at the end.
        check_stored(self, entries, required)?;
        let mut outcome = oci_core::index::PutOutcome::default();
        self.update_index(&mut |document| {
            outcome = document
                .put_all(entries)
                .map_err(|e| Error::json(self.location.join(INDEX_FILE), e))?;
            Ok(())
        })?;
        Ok(outcome)
    }

    fn remove_ref(&self, name: &str) -> Result<bool> {
        if name.is_empty() {
            return Err(Error::InvalidRefName {
                name: String::new(),
            });
        }
        let mut removed = 0;
        self.update_index(&mut |document| {
            removed = document
                .remove_ref(name)
                .map_err(|e| Error::json(self.location.join(INDEX_FILE), e))?;
            Ok(())
        })?;
        Ok(removed > 0)
    }

    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        Some(self)
    }

    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        Some(self)
    }
}

impl<W: Write + Send> LayoutFiles for TarWriter<W> {
    fn read_metadata(&self, file: MetadataFile) -> Result<Vec<u8>> {
        let state = self.lock()?;
        let bytes = match file {
            MetadataFile::Index => state.index.clone(),
            MetadataFile::ImageLayout => state.image_layout.clone(),
        };
        bytes.ok_or_else(|| Error::NotFound {
            location: self.location.join(file.as_layout_file().relative_path()),
            digest: None,
        })
    }

    fn write_metadata(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        let mut state = self.lock()?;
        match file {
            MetadataFile::Index => state.index = Some(contents.to_vec()),
            MetadataFile::ImageLayout => state.image_layout = Some(contents.to_vec()),
        }
        Ok(())
    }

    fn create_blobs_dir(&self) -> Result<()> {
        let turn = self.take_turn()?;
        self.lock_stream(&turn)?.start(&self.label)
    }

    fn has_blobs_dir(&self) -> Result<bool> {
        Ok(true)
    }

    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        Ok(Vec::new())
    }

    fn remove_stray(&self, _: &StrayFile) -> Result<()> {
        Err(self.write_only("remove a file"))
    }
}

impl<W: Write + Send> BlobListing for TarWriter<W> {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        Ok(self.lock()?.blobs.keys().copied().collect())
    }
}

/// A blob of unknown digest: spooled to an anonymous temp file, then copied into the archive
/// once verified.
struct SpooledBlobWriter<'a, W: Write + Send> {
    archive: &'a TarWriter<W>,
    spool: File,
    hasher: Hasher,
    written: u64,
}

impl<W: Write + Send> Write for SpooledBlobWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.spool.write(data)?;
        self.hasher.update(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.flush()
    }
}

impl<W: Write + Send> BlobWriter for SpooledBlobWriter<'_, W> {
    fn algorithm(&self) -> Algorithm {
        self.hasher.algorithm()
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn commit(self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        let SpooledBlobWriter {
            archive,
            mut spool,
            hasher,
            written,
        } = *self;
        let digest = hasher.finalize();
        check_commit(digest, written, size, expected)?;
        let turn = archive.take_turn()?;
        let label = &archive.label;
        let mut state = archive.lock_stream(&turn)?;
        if state.blobs.contains_key(&digest) {
            return Ok(digest);
        }
        state.begin_blob_entry(label, digest, written)?;
        spool.rewind().map_err(|e| Error::io(label, e))?;
        let copied = copy_stream(&mut spool, &mut state.out);
        match copied {
            Ok(n) if n == written => {}
            Ok(n) => {
                return Err(state.poison(
                    label,
                    format!("spooled blob {digest} shrank to {n} of {written} bytes"),
                ));
            }
            Err(CopyError::Read(e)) => {
                return Err(state.poison(label, format!("reading spooled blob {digest}: {e}")));
            }
            Err(CopyError::Write(e)) => return Err(state.output_failed(label, digest, e)),
        }
        if let Err(e) = framing::write_padding(&mut state.out, written) {
            return Err(state.output_failed(label, digest, e));
        }
        state.blobs.insert(digest, written);
        Ok(digest)
    }
}

/// A blob of known digest and size, streamed straight into the archive.
struct StreamingBlobWriter<'a, W: Write + Send> {
    archive: &'a TarWriter<W>,
    expected: Digest,
    size: u64,
    hasher: Hasher,
    written: u64,
    /// False when the archive already holds the blob: the content is checked, not written.
    into_archive: bool,
    committed: bool,
}

impl<'a, W: Write + Send> StreamingBlobWriter<'a, W> {
    fn new(archive: &'a TarWriter<W>, expected: Digest, size: u64, into_archive: bool) -> Self {
        StreamingBlobWriter {
            archive,
            expected,
            size,
            hasher: expected.algorithm().hasher(),
            written: 0,
            into_archive,
            committed: false,
        }
    }

    fn fail(&self, why: &str) -> io::Error {
        if self.into_archive
            && let Ok(mut state) = self.archive.state.lock()
        {
            state.streaming = false;
            let _ = state.poison(&self.archive.label, why.to_owned());
        }
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the archive is invalid: {why}"),
        )
    }
}

impl<W: Write + Send> Write for StreamingBlobWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.written + data.len() as u64 > self.size {
            return Err(self.fail(&format!(
                "blob {} is longer than its {} bytes",
                self.expected, self.size
            )));
        }
        if self.into_archive {
            let mut state = self
                .archive
                .state
                .lock()
                .map_err(|_| io::Error::other("archive lock poisoned"))?;
            if let Err(e) = state.out.write_all(data) {
                // The output's own error, kind and all: the caller names the output.
                state.streaming = false;
                state.poisoned = Some(format!("writing blob {} failed: {e}", self.expected));
                return Err(e);
            }
        }
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send> BlobWriter for StreamingBlobWriter<'_, W> {
    fn algorithm(&self) -> Algorithm {
        self.expected.algorithm()
    }

    fn bytes_written(&self) -> u64 {
        self.written
    }

    fn commit(mut self: Box<Self>, size: Option<u64>, expected: Option<Digest>) -> Result<Digest> {
        self.committed = true;
        let hasher = std::mem::replace(&mut self.hasher, self.expected.algorithm().hasher());
        let actual = hasher.finalize();
        let checked = check_commit(actual, self.written, Some(self.size), Some(self.expected))
            .and_then(|()| check_commit(actual, self.written, size, expected));
        if !self.into_archive {
            return checked.map(|()| actual);
        }
        let label = &self.archive.label;
        let mut state = self
            .archive
            .state
            .lock()
            .map_err(|_| poisoned_lock(label))?;
        state.streaming = false;
        if let Err(e) = checked {
            return Err(state.poison(label, e.to_string()));
        }
        if let Err(e) = framing::write_padding(&mut state.out, self.written) {
            return Err(state.output_failed(label, actual, e));
        }
        state.blobs.insert(actual, self.written);
        Ok(actual)
    }
}

impl<W: Write + Send> Drop for StreamingBlobWriter<'_, W> {
    fn drop(&mut self) {
        if self.into_archive && !self.committed {
            // The header promised `size` bytes that never came: the stream is unusable.
            let _ = self.fail(&format!(
                "blob {} was abandoned after {} of {} bytes",
                self.expected, self.written, self.size
            ));
        }
    }
}
