//! [`DirLayout`]: the directory representation of a layout.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use oci_core::index::IndexDocument;
use oci_core::oci_digest::VerifyingReader;
use oci_core::oci_spec::image::{Descriptor, ImageIndex};
use oci_core::{
    Algorithm, BLOBS_DIR, BlobListing, BlobRemoval, BlobWriter, ContentKind, Digest, Error,
    ExclusiveLock, IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFile, LayoutFiles, Location, MetadataFile,
    Result, Store, StrayFile, StrayKind, check_stored, index, seed,
};

use crate::blob_writer::{DirBlobWriter, TEMP_PREFIX};
use crate::create::{INIT_MARKER, Prepared};
use crate::lease::Lease;
use crate::pipeline::ChunkPool;
use crate::{create, fsio, lease};

pub use oci_core::CACHE_DIR;

/// Whether writes wait for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every blob and index write is fsynced, and so is the directory that names it, before
    /// the call returns: a crash or power loss afterwards loses nothing.
    #[default]
    Durable,
    /// No fsync: atomicity is kept (a reader never sees a half-written blob or index) but a
    /// power loss may lose recent writes. For scratch layouts and bulk imports.
    Relaxed,
}

/// How a [`DirLayout`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirOptions {
    /// Whether writes wait for the disk.
    pub durability: Durability,
    /// Whether [`Store::fetch`] verifies content while streaming it (and so what
    /// [`Store::verifies_reads`] says). On by default; turn off only for content you trust.
    /// fsck and the seed's readers verify either way.
    pub verify_reads: bool,
    /// When a copy takes a blob from a layout directory on the same filesystem, hard-link it
    /// instead of cloning and verifying it: instant and free of space, and it trusts the
    /// source's bytes (`copy --link`). The link is touched, so gc's grace period protects it
    /// until it is tagged.
    pub link_local_blobs: bool,
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions {
            durability: Durability::Durable,
            verify_reads: true,
            link_local_blobs: false,
        }
    }
}

/// An OCI image layout stored as a directory.
#[derive(Debug, Clone)]
pub struct DirLayout {
    root: PathBuf,
    /// The root, as messages name it.
    location: Location,
    options: DirOptions,
    /// Buffers of finished blob writes, for the next ones (shared by clones).
    chunks: Arc<ChunkPool>,
}

impl DirLayout {
    /// Opens an existing layout with the default options (durable, verified reads).
    pub fn open(root: impl AsRef<Path>) -> Result<DirLayout> {
        DirLayout::open_with(root, DirOptions::default())
    }

    /// Opens an existing layout. The root must be a directory holding `index.json` and no
    /// [`INIT_MARKER`] (a layout still being created, or whose creator was interrupted), and a
    /// `blobs/` that resolves outside the root is refused.
    pub fn open_with(root: impl AsRef<Path>, options: DirOptions) -> Result<DirLayout> {
        let layout = DirLayout::at(root, options)?;
        if fs::symlink_metadata(layout.root.join(INIT_MARKER)).is_ok() {
            return Err(Error::InvalidLayout {
                location: layout.location.clone(),
                reason: format!(
                    "an unfinished layout ({INIT_MARKER} is there): being created by another \
                     process, or its creator was interrupted; run that command again, or \
                     delete the directory"
                ),
            });
        }
        let index = layout.root.join(INDEX_FILE);
        if !index.exists() {
            return Err(Error::InvalidLayout {
                location: layout.location.clone(),
                reason: format!("no {INDEX_FILE}: not an OCI image layout"),
            });
        }
        fsio::ensure_within(&layout.root, &layout.root.join(BLOBS_DIR))?;
        Ok(layout)
    }

    /// Creates a new layout at `root` (missing, or an empty directory). See
    /// [`DirLayout::create_with`].
    pub fn create(root: impl AsRef<Path>) -> Result<DirLayout> {
        DirLayout::create_with(root, DirOptions::default(), &seed::InitOptions::default())
    }

    /// Creates a new layout with the given options, in place: a missing `root` is made (with
    /// its missing parents), an existing empty directory is filled and keeps its inode, owner,
    /// mode, extended attributes and ACLs.
    ///
    /// It is not a layout until it is finished: [`INIT_MARKER`] is written first and removed
    /// last, after `blobs/`, `index.json` and then `oci-layout`; [`DirLayout::open`] refuses a
    /// directory that holds it. A crash leaves the marker, and the next create there starts
    /// again (a directory holding the marker and anything but a layout's files is refused). A
    /// failure removes what was written and the directories made.
    ///
    /// Refused: an existing layout (one with `oci-layout`), and a directory that is not empty
    /// and holds no `oci-layout` (not ours to write into). When another process creates a
    /// layout at `root` at the same time, this one waits for it and is then refused, as over
    /// any existing layout; [`DirLayout::open_or_create`] opens it instead.
    pub fn create_with(
        root: impl AsRef<Path>,
        options: DirOptions,
        init: &seed::InitOptions,
    ) -> Result<DirLayout> {
        match create::prepare(DirLayout::at(root, options)?)? {
            Prepared::Layout(layout) => Err(Error::InvalidLayout {
                location: layout.location,
                reason: format!(
                    "already holds a layout ({IMAGE_LAYOUT_FILE}): refusing to initialise over it"
                ),
            }),
            Prepared::New(creator) => {
                creator.begin(init)?;
                creator.finish(init)
            }
        }
    }

    /// Opens the layout at `root`, or creates one there (as [`DirLayout::create_with`], with
    /// the default [`seed::InitOptions`]) when `root` is missing or an empty directory.
    /// Processes that do this at once all end with the same layout. A directory that is not
    /// empty and holds no `oci-layout` is refused.
    pub fn open_or_create(root: impl AsRef<Path>, options: DirOptions) -> Result<DirLayout> {
        DirLayout::open_or_create_then(root, options, |_| Ok(())).map(|(layout, ())| layout)
    }

    /// [`DirLayout::open_or_create`], then `fill` on the layout; when the layout is created
    /// here, `fill` runs before it is finished: no one can open it until `fill` has succeeded
    /// (concurrent creators wait), and when `fill` fails, everything written and every
    /// directory made is removed again (an existing empty directory is left empty). A crash
    /// during `fill` leaves an unfinished layout ([`INIT_MARKER`]), which is never opened and
    /// which the next create there starts again. For writers that fill a new layout whole (an
    /// unpack into a new directory).
    pub fn open_or_create_then<T>(
        root: impl AsRef<Path>,
        options: DirOptions,
        fill: impl FnOnce(&DirLayout) -> Result<T>,
    ) -> Result<(DirLayout, T)> {
        match create::prepare(DirLayout::at(root, options)?)? {
            Prepared::Layout(layout) => {
                let layout = DirLayout::open_with(&layout.root, options)?;
                let filled = fill(&layout)?;
                Ok((layout, filled))
            }
            Prepared::New(creator) => {
                let init = seed::InitOptions::default();
                creator.begin(&init)?;
                let filled = fill(creator.layout())?;
                Ok((creator.finish(&init)?, filled))
            }
        }
    }

    /// Starts a lease: until it is dropped, gc sweeps nothing written or re-put into the
    /// layout, whatever its grace period. Take one before writing blobs that a tag will name
    /// at the end (`image create`, `unpack` and `attach` do), so a concurrent
    /// `gc --grace 0s` cannot leave the tag on an image with a hole. The lease is a locked file
    /// in `.oci-layout-cache/leases/`, removed when dropped (gc removes one its holder left by
    /// dying). Waits for a gc that is running to finish.
    pub fn lease(&self) -> Result<Lease> {
        lease::take(self)
    }

    /// A driver for `root` without checking what is there (the seed's constructor): use this
    /// before [`seed::init`] with custom [`seed::InitOptions`].
    pub fn at(root: impl AsRef<Path>, options: DirOptions) -> Result<DirLayout> {
        let root = root.as_ref();
        let root = match fs::canonicalize(root) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                canonical_missing(root).map_err(|e| Error::io(root, e))?
            }
            Err(e) => return Err(Error::io(root, e)),
        };
        Ok(DirLayout {
            location: Location::Path(root.clone()),
            root,
            options,
            chunks: Arc::default(),
        })
    }

    /// The layout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options in force.
    pub fn options(&self) -> DirOptions {
        self.options
    }

    pub(crate) fn durable(&self) -> bool {
        self.options.durability == Durability::Durable
    }

    fn path_of(&self, file: LayoutFile) -> PathBuf {
        self.root.join(file.relative_path())
    }

    /// `blobs/<alg>`, after checking that it does not lead out of the root. One check covers
    /// both names: it looks at `blobs` on the way to `blobs/<alg>`.
    fn algorithm_dir(&self, algorithm: Algorithm) -> Result<PathBuf> {
        let dir = self.root.join(BLOBS_DIR).join(algorithm.name());
        fsio::ensure_within(&self.root, &dir)?;
        Ok(dir)
    }

    fn checked_path(&self, file: LayoutFile) -> Result<PathBuf> {
        if let LayoutFile::Blob(digest) = file {
            self.algorithm_dir(digest.algorithm())?;
        }
        Ok(self.path_of(file))
    }

    /// Replaces `file` atomically with what `write` writes: a temp file beside it, synced when
    /// durable, renamed over it.
    fn replace_metadata(
        &self,
        file: MetadataFile,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<()> {
        let target = self.path_of(file.as_layout_file());
        let temp = fsio::write_temp(&self.root, file.mode(), self.durable(), write)?;
        temp.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        if self.durable() {
            fsio::sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Takes the layout's exclusive lock: a lock on the root directory itself, so no extra
    /// file is needed and the lock survives `index.json` being replaced by rename.
    pub(crate) fn lock(&self) -> Result<File> {
        let dir = File::open(&self.root).map_err(|e| Error::io(&self.root, e))?;
        dir.lock().map_err(|e| Error::io(&self.root, e))?;
        Ok(dir)
    }
}

/// The canonical form a missing `path` will have once created: its nearest existing ancestor,
/// canonicalised, joined with the missing names. Without this, a root reached through a
/// symlink or given as a relative path would not be a prefix of the canonical paths
/// [`fsio::ensure_within`] compares it with, and every blob operation after `init` would fail.
fn canonical_missing(path: &Path) -> io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        let Some(name) = current.file_name() else {
            // Ends in `..` or is a root: leave it as given.
            return Ok(path.to_path_buf());
        };
        missing.push(name);
        current = fsio::parent_of(current);
        match fs::canonicalize(current) {
            Ok(mut real) => {
                real.extend(missing.iter().rev());
                return Ok(real);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
}

/// How many removals run at once. An unlink can wait on the device (on a filesystem mounted
/// with `discard`, say, it waits for the trim), and those waits overlap; the CPU work is small.
const REMOVAL_THREADS: usize = 8;

/// [`remove_if_stale`] for each of `digests`, spread over [`REMOVAL_THREADS`] threads; returns
/// those removed. The first error wins.
fn remove_all_if_stale(dir: &Path, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>> {
    let per_thread = digests.len().div_ceil(REMOVAL_THREADS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = digests
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || -> Result<Vec<Digest>> {
                    let mut removed = Vec::new();
                    for &digest in chunk {
                        if remove_if_stale(dir, digest, cutoff)? {
                            removed.push(digest);
                        }
                    }
                    Ok(removed)
                })
            })
            .collect();
        let mut removed = Vec::new();
        for worker in workers {
            match worker.join() {
                Ok(result) => removed.extend(result?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(removed)
    })
}

/// The body of [`DirLayout::remove_stale_blobs`] for one blob, in `dir` (the digest's checked algorithm
/// directory), without the sync.
fn remove_if_stale(dir: &Path, digest: Digest, cutoff: SystemTime) -> Result<bool> {
    let path = dir.join(digest.encoded());
    let aside = dir.join(format!("{TEMP_PREFIX}gc-{}", digest.encoded()));
    match fs::rename(&path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, e)),
    }
    let modified = fs::symlink_metadata(&aside)
        .and_then(|m| m.modified())
        .map_err(|e| Error::io(&aside, e))?;
    let stale = modified <= cutoff;
    if !stale {
        // A writer may already have linked a new copy under the name: same content.
        match fs::hard_link(&aside, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    fs::remove_file(&aside).map_err(|e| Error::io(&aside, e))?;
    Ok(stale)
}

impl DirLayout {
    /// Read-modify-write of `index.json` under the layout's exclusive lock: `edit` sees the
    /// current index and changes it, and the result replaces the file by rename (synced, and
    /// the root synced, when durable), so a reader sees the old index or the new one.
    fn update_index(&self, edit: &mut dyn FnMut(&mut IndexDocument) -> Result<()>) -> Result<()> {
        let _lock = self.lock()?;
        let path = self.path_of(LayoutFile::Index);
        let bytes = fsio::read_regular(&path, oci_core::MAX_INDEX_SIZE)?;
        let mut document = IndexDocument::parse(bytes).map_err(|e| Error::json(&path, e))?;
        edit(&mut document)?;
        self.replace_metadata(MetadataFile::Index, &mut |out| document.write_to(out))
    }

    fn blob_path(&self, digest: Digest) -> Result<PathBuf> {
        self.checked_path(LayoutFile::Blob(digest))
    }

    /// A writer for a blob hashed with `algorithm`, into its checked algorithm directory.
    fn blob_writer(&self, algorithm: Algorithm) -> Result<DirBlobWriter> {
        let dir = self.algorithm_dir(algorithm)?;
        fsio::create_dir(&dir, self.durable())?;
        DirBlobWriter::new(dir, algorithm, self.durable(), &self.chunks)
    }
}

impl Store for DirLayout {
    fn location(&self) -> &Location {
        &self.location
    }

    fn stat(&self, _kind: ContentKind, digest: Digest) -> Result<Option<u64>> {
        match fsio::regular_size(&self.blob_path(digest)?, Some(digest)) {
            Ok(size) => Ok(Some(size)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn fetch(
        &self,
        _kind: ContentKind,
        digest: Digest,
        size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let file = fsio::open_regular(&self.blob_path(digest)?, Some(digest))?;
        if self.options.verify_reads {
            Ok(Box::new(VerifyingReader::new(file, digest, size)))
        } else {
            Ok(Box::new(file))
        }
    }

    fn fetch_unverified(
        &self,
        _kind: ContentKind,
        digest: Digest,
        _size: Option<u64>,
    ) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(fsio::open_regular(
            &self.blob_path(digest)?,
            Some(digest),
        )?))
    }

    fn push(&self, descriptor: &Descriptor, content: &mut dyn Read) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())?;
        let mut writer = self.blob_writer(digest.algorithm())?;
        writer
            .write_from(content)
            .map_err(|e| Error::io(self.location.of_content(digest), e.into_inner()))?;
        Box::new(writer).commit(Some(descriptor.size()), Some(digest))?;
        Ok(())
    }

    fn verifies_reads(&self) -> bool {
        self.options.verify_reads
    }

    fn begin_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(self.blob_writer(algorithm)?))
    }

    fn index(&self) -> Result<ImageIndex> {
        let path = self.path_of(LayoutFile::Index);
        let bytes = fsio::read_regular(&path, oci_core::MAX_INDEX_SIZE)?;
        index::parse_index(&bytes).map_err(|e| Error::json(&path, e))
    }

    /// One locked update for all of them.
    fn put_entries(
        &self,
        entries: &[Descriptor],
        required: &[Digest],
    ) -> Result<oci_core::index::PutOutcome> {
        let mut outcome = oci_core::index::PutOutcome::default();
        self.update_index(&mut |document| {
            // Checked under the index lock, which gc holds while it marks and sweeps: an
            // entry is never written for content that a concurrent gc has just removed.
            check_stored(self, entries, required)?;
            outcome = document
                .put_all(entries)
                .map_err(|e| Error::json(self.path_of(LayoutFile::Index), e))?;
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
                .map_err(|e| Error::json(self.path_of(LayoutFile::Index), e))?;
            Ok(())
        })?;
        Ok(removed > 0)
    }

    /// A blob of a layout directory on the same filesystem is cloned (`copy_file_range`, a
    /// reflink where the filesystem has them) and verified before it is published, or, with
    /// [`DirOptions::link_local_blobs`], hard-linked.
    fn mount_from(
        &self,
        descriptor: &Descriptor,
        source: &dyn Store,
    ) -> Result<Option<oci_core::CopyOutcome>> {
        let Ok(digest) = Digest::try_from(descriptor.digest()) else {
            return Ok(None);
        };
        // Only a layout directory: its blobs are files under its root.
        let Some(source_root) = source.location().as_path() else {
            return Ok(None);
        };
        if source.layout_files().is_none() || !source_root.is_dir() {
            return Ok(None);
        }
        let Ok(source_file) =
            fsio::open_regular(&source_root.join(digest.blob_path()), Some(digest))
        else {
            return Ok(None);
        };
        let dir = self.algorithm_dir(digest.algorithm())?;
        fsio::create_dir(&dir, self.durable())?;
        let taken = crate::blob_writer::take_local(
            &dir,
            &source_file,
            digest,
            descriptor.size(),
            self.options.link_local_blobs,
            self.durable(),
        )?;
        Ok(taken.then_some(oci_core::CopyOutcome::Copied))
    }

    fn layout_files(&self) -> Option<&dyn LayoutFiles> {
        Some(self)
    }

    fn blob_listing(&self) -> Option<&dyn BlobListing> {
        Some(self)
    }

    fn blob_removal(&self) -> Option<&dyn BlobRemoval> {
        Some(self)
    }

    fn exclusive_lock(&self) -> Option<&dyn ExclusiveLock> {
        Some(self)
    }
}

impl LayoutFiles for DirLayout {
    fn read_metadata(&self, file: MetadataFile) -> Result<Vec<u8>> {
        fsio::read_regular(
            &self.path_of(file.as_layout_file()),
            oci_core::MAX_INDEX_SIZE,
        )
    }

    fn write_metadata(&self, file: MetadataFile, contents: &[u8]) -> Result<()> {
        match file {
            // Under the index lock, like every other change of the index.
            MetadataFile::Index => {
                let _lock = self.lock()?;
                self.replace_metadata(file, &mut |out| out.write_all(contents))
            }
            MetadataFile::ImageLayout => {
                self.replace_metadata(file, &mut |out| out.write_all(contents))
            }
        }
    }

    fn create_blobs_dir(&self) -> Result<()> {
        fsio::create_dir(&self.root.join(BLOBS_DIR), self.durable())?;
        Ok(())
    }

    fn has_blobs_dir(&self) -> Result<bool> {
        let blobs = self.root.join(BLOBS_DIR);
        match fs::symlink_metadata(&blobs) {
            Ok(metadata) => Ok(metadata.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&blobs, e)),
        }
    }

    fn stray_files(&self) -> Result<Vec<StrayFile>> {
        let mut strays = Vec::new();
        let stray = |path: PathBuf, kind| {
            let modified = fs::symlink_metadata(&path).and_then(|m| m.modified()).ok();
            StrayFile {
                location: Location::Path(path),
                kind,
                modified,
            }
        };
        for name in fsio::list_dir(&self.root)? {
            if name.starts_with(TEMP_PREFIX) {
                strays.push(stray(self.root.join(&name), StrayKind::Temporary));
            }
        }
        let blobs = self.root.join(BLOBS_DIR);
        fsio::ensure_within(&self.root, &blobs)?;
        for algorithm_name in fsio::list_dir(&blobs)? {
            let dir = blobs.join(&algorithm_name);
            let Some(algorithm) = Algorithm::from_name(&algorithm_name) else {
                strays.push(stray(dir, StrayKind::Other));
                continue;
            };
            fsio::ensure_within(&self.root, &dir)?;
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            let mut named = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                if let Some(name) = entry.file_name().to_str() {
                    // The type from the directory entry: no stat per blob.
                    named.push((
                        name.to_owned(),
                        entry.file_type().is_ok_and(|t| t.is_file()),
                    ));
                }
            }
            named.sort();
            for (name, is_file) in named {
                if name.starts_with(TEMP_PREFIX) {
                    strays.push(stray(dir.join(&name), StrayKind::Temporary));
                    continue;
                }
                match Digest::parse(&format!("{algorithm}:{name}")) {
                    Err(_) => strays.push(stray(dir.join(&name), StrayKind::NotADigest)),
                    Ok(digest) if !is_file => {
                        strays.push(stray(dir.join(&name), StrayKind::NotRegular(digest)));
                    }
                    Ok(_) => {}
                }
            }
        }
        // A cache write interrupted before its rename. A cache "directory" that is something
        // else (a link, say) is not ours: reported, not entered.
        let cache = self.root.join(CACHE_DIR);
        match fs::symlink_metadata(&cache) {
            Ok(metadata) if metadata.is_dir() => {
                for name in fsio::list_dir(&cache)? {
                    if name.starts_with(TEMP_PREFIX) {
                        strays.push(stray(cache.join(&name), StrayKind::Temporary));
                    }
                }
                // Leases whose holders died.
                strays.extend(lease::stale(self)?);
            }
            Ok(_) => strays.push(stray(cache, StrayKind::Other)),
            Err(_) => {}
        }
        Ok(strays)
    }

    fn remove_stray(&self, stray: &StrayFile) -> Result<()> {
        // Only what stray_files reports, and only inside the layout.
        let Some(path) = stray.location.as_path() else {
            return Ok(());
        };
        let parent = path.parent().unwrap_or(&self.root);
        fsio::ensure_within(&self.root, parent)?;
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl BlobListing for DirLayout {
    fn list_blobs(&self) -> Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for algorithm in Algorithm::ALL {
            let dir = self.algorithm_dir(algorithm)?;
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                // A digest name on a FIFO or a directory is no blob (a stray, fsck's business):
                // the type from the directory entry, no stat per blob.
                if !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if let Ok(digest) = Digest::parse(&format!("{algorithm}:{name}")) {
                    digests.push(digest);
                }
            }
        }
        digests.sort();
        Ok(digests)
    }
}

impl BlobRemoval for DirLayout {
    fn remove_blob(&self, digest: Digest) -> Result<()> {
        let path = self.blob_path(digest)?;
        fs::remove_file(&path).map_err(|e| fsio::classify(&path, Some(digest), e))?;
        if self.durable() {
            fsio::sync_dir(fsio::parent_of(&path))?;
        }
        Ok(())
    }

    /// The start of the oldest live lease (see [`DirLayout::lease`]).
    fn writes_in_flight_since(&self) -> Result<Option<SystemTime>> {
        lease::oldest_live(self)
    }

    fn blob_modified(&self, digest: Digest) -> Result<Option<SystemTime>> {
        let path = self.blob_path(digest)?;
        let metadata =
            fs::symlink_metadata(&path).map_err(|e| fsio::classify(&path, Some(digest), e))?;
        Ok(metadata.modified().ok())
    }

    /// Takes each blob's name away first (a rename to a `.tmp-gc-*` name), then judges its
    /// age: a writer that re-puts the blob touches it before the rename, and the blob is given
    /// back, or finds the name gone after it and links its own copy (see the blob writer).
    /// Either way a blob that was just put survives. Each directory is checked and synced
    /// once for the batch: removals need no durability of their own (a removal lost to a
    /// crash leaves a blob the next gc takes).
    fn remove_stale_blobs(&self, digests: &[Digest], cutoff: SystemTime) -> Result<Vec<Digest>> {
        let mut removed = Vec::new();
        for algorithm in Algorithm::ALL {
            let batch: Vec<Digest> = digests
                .iter()
                .copied()
                .filter(|d| d.algorithm() == algorithm)
                .collect();
            if batch.is_empty() {
                continue;
            }
            let dir = self.algorithm_dir(algorithm)?;
            removed.extend(remove_all_if_stale(&dir, &batch, cutoff)?);
            if self.durable() {
                fsio::sync_dir(&dir)?;
            }
        }
        Ok(removed)
    }
}

impl ExclusiveLock for DirLayout {
    fn run_exclusive(&self, work: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let _lock = self.lock()?;
        work()
    }
}
