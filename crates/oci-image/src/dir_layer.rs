//! A layer from a directory tree.
//!
//! The tree is walked depth first, each directory's entries in byte order of their names, a
//! directory before what it contains; only one directory listing per level is held at a time.
//! Each entry gets a GNU tar header with its mode (all 12 bits), numeric uid and gid (or 0,
//! [`Ownership::Root`]), mtime (or a fixed one, [`Mtime::Fixed`]), and no user or group names,
//! so the same tree gives the same bytes on any machine. Names are kept as bytes (names that are
//! not UTF-8 too); long names and link targets use GNU long-name entries.
//!
//! - A file with several links becomes a regular entry at its first path (in walk order) and a
//!   hard-link entry to that path everywhere else.
//! - Symlinks are stored, never followed; their targets are kept as they are.
//! - Empty directories, FIFOs and device nodes are stored; sockets cannot be and are skipped
//!   (listed in [`Layer::skipped`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_core::{Location, Store};
use tar::{EntryType, Header};

use crate::layer::{Layer, LayerOptions, LayerSink, Mtime, Ownership};
use crate::progress::{NoProgress, Progress, Stage};
use crate::{Error, Result};

/// Buffer between the tar builder and the hashing chain: file contents are read straight into
/// it, and the chain gets large writes.
const TAR_BUFFER: usize = 1 << 20;

/// Writes a layer of the tree at `dir` into `store`; see the module docs for what is kept.
///
/// `progress`, when given, is told the total bytes of regular files (a quick walk first) and
/// each read.
pub fn write_dir_layer(
    store: &dyn Store,
    dir: &Path,
    options: &LayerOptions,
    progress: Option<&dyn Progress>,
) -> Result<Layer> {
    let metadata = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !metadata.is_dir() {
        return Err(Error::Source {
            path: dir.to_path_buf(),
            reason: "not a directory".to_owned(),
        });
    }
    let total = progress.map(|_| tree_size(dir)).transpose()?;
    let progress = progress.unwrap_or(&NoProgress);
    let _stage = Stage::start(progress, &format!("layer from {}", dir.display()), total);

    let sink = LayerSink::new(store, options)?;
    let location = sink.location().clone();
    let mut walker = Walker {
        root: dir,
        options,
        builder: tar::Builder::new(BufWriter::with_capacity(TAR_BUFFER, sink)),
        links: HashMap::new(),
        skipped: Vec::new(),
        progress,
        location: &location,
    };
    walker.walk(Path::new(""))?;
    let Walker {
        builder, skipped, ..
    } = walker;
    let buffered = builder
        .into_inner()
        .map_err(|e| Error::store_io(&location, e))?;
    let sink = buffered
        .into_inner()
        .map_err(|e| Error::store_io(&location, e.into_error()))?;
    let mut layer = sink.finish()?;
    layer.skipped = skipped;
    Ok(layer)
}

/// The bytes of regular files under `dir` (a file with several links once), for a progress
/// total.
fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut linked = std::collections::HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let metadata = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file()
                && (metadata.nlink() == 1 || linked.insert((metadata.dev(), metadata.ino())))
            {
                total += metadata.len();
            }
        }
    }
    Ok(total)
}

struct Walker<'a, 's> {
    root: &'a Path,
    options: &'a LayerOptions,
    builder: tar::Builder<BufWriter<LayerSink<'s>>>,
    /// (device, inode) of files with several links → the path of their first entry.
    links: HashMap<(u64, u64), PathBuf>,
    skipped: Vec<PathBuf>,
    progress: &'a dyn Progress,
    location: &'a Location,
}

impl Walker<'_, '_> {
    /// Appends the entries of the directory `relative` (to the root), recursively.
    fn walk(&mut self, relative: &Path) -> Result<()> {
        let dir = self.root.join(relative);
        let mut entries: Vec<(OsString, Metadata)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            // `DirEntry::metadata` does not follow symlinks: an lstat relative to the listing.
            let metadata = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
            entries.push((entry.file_name(), metadata));
        }
        // Byte order of the names (`OsString`'s order on Unix): the same on every machine.
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (name, metadata) in entries {
            let path = relative.join(&name);
            self.append(&path, &metadata)?;
            if metadata.is_dir() {
                self.walk(&path)?;
            }
        }
        Ok(())
    }

    fn header(&self, metadata: &Metadata, entry_type: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(metadata.mode() & 0o7777);
        let (uid, gid) = match self.options.ownership {
            Ownership::Keep => (metadata.uid(), metadata.gid()),
            Ownership::Root => (0, 0),
        };
        header.set_uid(u64::from(uid));
        header.set_gid(u64::from(gid));
        header.set_mtime(match self.options.mtime {
            Mtime::Keep => u64::try_from(metadata.mtime()).unwrap_or(0),
            Mtime::Fixed(seconds) => seconds,
        });
        header.set_size(0);
        header
    }

    fn append(&mut self, relative: &Path, metadata: &Metadata) -> Result<()> {
        let full = self.root.join(relative);
        let file_type = metadata.file_type();
        if !file_type.is_dir() && metadata.nlink() > 1 {
            let key = (metadata.dev(), metadata.ino());
            if let Some(first) = self.links.get(&key) {
                let mut header = self.header(metadata, EntryType::Link);
                let first = first.clone();
                return self.write(&full, |b| b.append_link(&mut header, relative, &first));
            }
            self.links.insert(key, relative.to_path_buf());
        }
        if file_type.is_dir() {
            let mut header = self.header(metadata, EntryType::Directory);
            let mut name = relative.as_os_str().to_owned();
            name.push("/");
            self.write(&full, |b| b.append_data(&mut header, &name, io::empty()))
        } else if file_type.is_file() {
            self.append_file(relative, &full, metadata)
        } else if file_type.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| Error::io(&full, e))?;
            let mut header = self.header(metadata, EntryType::Symlink);
            self.write(&full, |b| b.append_link(&mut header, relative, &target))
        } else if file_type.is_fifo() {
            let mut header = self.header(metadata, EntryType::Fifo);
            self.write(&full, |b| b.append_data(&mut header, relative, io::empty()))
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let entry_type = if file_type.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            let mut header = self.header(metadata, entry_type);
            let (major, minor) = device_numbers(metadata.rdev());
            header
                .set_device_major(major)
                .and_then(|()| header.set_device_minor(minor))
                .map_err(|e| Error::io(&full, e))?;
            self.write(&full, |b| b.append_data(&mut header, relative, io::empty()))
        } else {
            self.skipped.push(relative.to_path_buf());
            Ok(())
        }
    }

    /// A regular file: the header through the builder (which handles long names), then the
    /// content read straight into the tar buffer.
    fn append_file(&mut self, relative: &Path, full: &Path, metadata: &Metadata) -> Result<()> {
        let size = metadata.len();
        let file = File::open(full).map_err(|e| Error::io(full, e))?;
        let mut header = self.header(metadata, EntryType::Regular);
        header.set_size(size);
        // The header says `size`; `append_data` with no data writes the header alone and no
        // padding (0 bytes need none), and the content and its padding follow here.
        self.write(full, |b| b.append_data(&mut header, relative, io::empty()))?;
        let mut source = SourceReader {
            file,
            remaining: size,
            error: None,
            progress: self.progress,
        };
        // `io::copy` into a `BufWriter` reads straight into the writer's buffer.
        let copied = io::copy(&mut source, self.builder.get_mut()).map_err(|e| {
            match source.error.take() {
                Some(read_error) => Error::io(full, read_error),
                None => self.classify(full, e),
            }
        })?;
        if copied != size {
            return Err(Error::Source {
                path: full.to_path_buf(),
                reason: format!("file shrank from {size} to {copied} bytes while it was read"),
            });
        }
        let padding = (512 - size % 512) % 512;
        self.builder
            .get_mut()
            .write_all(&[0u8; 512][..padding as usize])
            .map_err(|e| self.classify(full, e))
    }

    /// Runs a builder call. An error the chain reported is the store's; any other (the tar
    /// crate refusing a name) is the source file's.
    fn write(
        &mut self,
        full: &Path,
        call: impl FnOnce(&mut tar::Builder<BufWriter<LayerSink<'_>>>) -> io::Result<()>,
    ) -> Result<()> {
        call(&mut self.builder).map_err(|e| self.classify(full, e))
    }

    fn classify(&self, full: &Path, e: io::Error) -> Error {
        if self.builder.get_ref().get_ref().failed() {
            Error::store_io(self.location, e)
        } else {
            Error::Source {
                path: full.to_path_buf(),
                reason: e.to_string(),
            }
        }
    }
}

/// Linux's `major()` and `minor()` of a `dev_t`.
fn device_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// A file's content, exactly `remaining` bytes. A read error is kept aside so the caller can
/// tell it from an error of the writer.
struct SourceReader<'p> {
    file: File,
    remaining: u64,
    error: Option<io::Error>,
    progress: &'p dyn Progress,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        match self.file.read(&mut buf[..max]) {
            Ok(n) => {
                self.remaining -= n as u64;
                self.progress.advance(n as u64);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(io::Error::new(kind, "reading the source failed"))
            }
        }
    }
}
