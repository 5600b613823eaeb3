//! A layer from a directory tree.
//!
//! The tree is walked depth first, each directory's entries in byte order of their names, a
//! directory before what it contains; only one directory listing per level is held at a time.
//! It is read through directory descriptors, never by path ([`crate::source_tree`]): an entry
//! that changes between its listing and its opening (a file swapped for a symlink, a FIFO or
//! another file; a directory for a symlink) fails the layer with an error naming its whole
//! path, and nothing of what was swapped in is read.
//!
//! Each entry gets a GNU tar header with its mode (all 12 bits), numeric uid and gid (or 0,
//! [`Ownership::Root`]), mtime (or a fixed one, [`Mtime::Fixed`]), and no user or group names,
//! so the same tree gives the same bytes on any machine. Names are kept as bytes (names that are
//! not UTF-8 too); long names and link targets use GNU long-name entries.
//!
//! A PAX extended header before the entry carries what the GNU header cannot:
//! - an mtime before 1970 (`mtime=-315619200`; the header's own field says 0);
//! - the entry's extended attributes, as `SCHILY.xattr.<name>` records with the raw value
//!   (file capabilities in `security.capability`, `user.*`, `trusted.*`, POSIX ACLs in
//!   `system.posix_acl_*`), in byte order of their names, as GNU tar (`--xattrs`) and umoci
//!   write and restore them. Not stored: `security.selinux` and `system.nfs4_acl`, which
//!   describe the host (its SELinux policy, its NFS server) rather than the file, as umoci
//!   decides too; and, with a [`SkipReason`] in [`Layer::skipped`], an attribute with an empty
//!   value or a name that is not UTF-8 or holds `=`, which a PAX record cannot carry.
//!
//! What is stored of each kind of entry:
//! - A file with several links becomes a regular entry at the first path written (in walk
//!   order) and a hard-link entry to that path everywhere else; a hard-link entry is a name,
//!   so nothing is opened for it, and it carries no attributes (the first entry has them).
//! - Symlinks are stored, never followed; their targets are kept as they are.
//! - Empty directories, FIFOs and device nodes are stored (FIFOs and devices are never opened
//!   for reading).
//! - Sockets cannot be stored and are skipped, listed in [`Layer::skipped`]; so are their
//!   other hard links (all names of an inode have its type), so a hard link never names an
//!   entry that is not in the layer.
//! - The layout the layer is written into, when it lies inside the tree (known by the device
//!   and inode of the store's location, whatever path it was opened by), is skipped and
//!   listed; a source that is the layout itself is refused.
//!
//! A diff layer ([`write_dir_diff_layer`]) is the same walk over the same tree, compared entry
//! by entry with the base image's tree (read by `base_tree.rs`): what is unchanged is not
//! written, and what the base has and the tree lacks becomes a whiteout.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use oci_core::oci_spec::image::Descriptor;
use oci_core::{Location, Store};
use rustix::fs::FileType;
use tar::{EntryType, Header};

use crate::base_tree::{self, BaseEntry, BaseTree, Kind};
use crate::layer::{Layer, LayerOptions, LayerSink, Mtime, Ownership, SkipReason, Skipped};
use crate::progress::{NoProgress, Progress, Stage};
use crate::source_tree::{EntryStat, Listed, Node, OpenedEntry, SourceDir, Xattr};
use crate::{Error, Result};

/// Buffer between the tar builder and the hashing chain: file contents are read straight into
/// it, and the chain gets large writes.
const TAR_BUFFER: usize = 1 << 20;

/// Extended attributes that describe the host, not the file; never stored (see the module
/// docs).
const HOST_XATTRS: [&[u8]; 2] = [b"security.selinux", b"system.nfs4_acl"];

/// The PAX record prefix GNU tar, star, Go's archive/tar and umoci use for an attribute.
const XATTR_RECORD: &str = "SCHILY.xattr.";

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
    write_layer(store, dir, options, progress, None)
}

/// Writes a layer of what the tree at `dir` changes relative to the tree that `base_layers`
/// (bottom first, read from `store`) make: the entries that differ or are new, and a whiteout
/// (`.wh.NAME`) for each entry of the base the tree no longer has. An entry is unchanged when
/// its type, mode, owner, link target, device numbers, extended attributes and (for a file)
/// size match the base's and either its mtime does too or, when the mtime differs or is
/// fixed ([`Mtime::Fixed`]), its content hash does. A directory whose own metadata is
/// unchanged is not written, but its entries are compared; one whose metadata changed is
/// written as the directory entry alone. An entry replacing a base directory by something
/// else is preceded by a whiteout of that directory.
pub fn write_dir_diff_layer(
    store: &dyn Store,
    dir: &Path,
    base_layers: &[Descriptor],
    options: &LayerOptions,
    progress: Option<&dyn Progress>,
) -> Result<Layer> {
    let base = BaseTree::read(store, base_layers)?;
    write_layer(store, dir, options, progress, Some(&base))
}

fn write_layer(
    store: &dyn Store,
    dir: &Path,
    options: &LayerOptions,
    progress: Option<&dyn Progress>,
    base: Option<&BaseTree>,
) -> Result<Layer> {
    let (root, root_stat) = SourceDir::open_root(dir)?;
    let layout = store.location().as_path().and_then(EntryStat::identity_of);
    if layout == Some(root_stat.identity()) {
        return Err(Error::Source {
            path: dir.to_path_buf(),
            reason: "is the layout the layer is written into".to_owned(),
        });
    }
    let total = match progress {
        Some(_) => {
            let mut size = TreeSize {
                layout,
                linked: HashSet::new(),
                total: 0,
            };
            size.add(&root)?;
            Some(size.total)
        }
        None => None,
    };
    let progress = progress.unwrap_or(&NoProgress);
    let _stage = Stage::start(progress, &format!("layer from {}", dir.display()), total);

    let sink = LayerSink::new(store, options)?;
    let location = sink.location().clone();
    let mut walker = Walker {
        options,
        builder: tar::Builder::new(BufWriter::with_capacity(TAR_BUFFER, sink)),
        links: HashMap::new(),
        skipped: Vec::new(),
        progress,
        location: &location,
        layout,
        proc_missing_reported: false,
        base,
        emitted_links: HashSet::new(),
    };
    walker.walk(&root, Path::new(""))?;
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

/// The bytes of regular files in a tree (a file with several links once), for a progress
/// total; walked as the layer is, through descriptors.
struct TreeSize {
    layout: Option<(u64, u64)>,
    linked: HashSet<(u64, u64)>,
    total: u64,
}

impl TreeSize {
    fn add(&mut self, dir: &SourceDir) -> Result<()> {
        for entry in dir.list()? {
            let stat = entry.stat;
            if Some(stat.identity()) == self.layout {
                continue;
            }
            match stat.file_type {
                FileType::Directory => {
                    if let Node::Dir(sub) = dir.open(&entry)?.node {
                        self.add(&sub)?;
                    }
                }
                FileType::RegularFile if stat.nlink == 1 || self.linked.insert(stat.identity()) => {
                    self.total += stat.size;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A PAX record: key and raw value.
type Record = (String, Vec<u8>);

struct Walker<'a, 's> {
    options: &'a LayerOptions,
    builder: tar::Builder<BufWriter<LayerSink<'s>>>,
    /// (device, inode) of files with several links → the path of their first entry.
    links: HashMap<(u64, u64), PathBuf>,
    skipped: Vec<Skipped>,
    progress: &'a dyn Progress,
    location: &'a Location,
    /// (device, inode) of the store's location.
    layout: Option<(u64, u64)>,
    /// Whether [`SkipReason::XattrsWithoutProc`] was reported.
    proc_missing_reported: bool,
    /// The tree a diff layer is compared with; `None` for a whole tree.
    base: Option<&'a BaseTree>,
    /// (device, inode) of files with several links whose first entry was written.
    emitted_links: HashSet<(u64, u64)>,
}

/// How an entry of the tree stands against the base.
enum Against {
    /// Not written (a directory is still walked into).
    Unchanged,
    /// Written; `replaces_dir`: after a whiteout of the base's directory at that path.
    Changed { replaces_dir: bool },
}

impl Walker<'_, '_> {
    /// Appends the entries of `dir`, at `relative` in the layer, recursively.
    fn walk(&mut self, dir: &SourceDir, relative: &Path) -> Result<()> {
        let entries = dir.list()?;
        if let Some(base) = self.base {
            self.whiteout_removed(base, dir, &entries, relative)?;
        }
        for entry in entries {
            let path = relative.join(entry.name());
            if let Some(sub) = self.append(dir, &entry, &path)? {
                self.walk(&sub, &path)?;
            }
        }
        Ok(())
    }

    /// A whiteout for each entry the base has in the directory at `relative` and the tree
    /// has not, before the directory's entries.
    fn whiteout_removed(
        &mut self,
        base: &BaseTree,
        dir: &SourceDir,
        entries: &[Listed],
        relative: &Path,
    ) -> Result<()> {
        let key = relative.as_os_str().as_bytes();
        if !key.is_empty() && base.get(key).is_none_or(|e| e.kind != Kind::Directory) {
            return Ok(());
        }
        for name in base.children(key) {
            // The listing is in byte order of the names.
            let listed = entries.binary_search_by(|e| e.name().as_bytes().cmp(name.as_slice()));
            if listed.is_err() {
                let full = dir.path_of_name(std::ffi::OsStr::from_bytes(&name));
                self.write_whiteout(&full, relative, &name)?;
            }
        }
        Ok(())
    }

    /// `.wh.NAME` in the directory at `relative`: an empty regular file, mode 0, owner 0.
    fn write_whiteout(&mut self, full: &Path, relative: &Path, name: &[u8]) -> Result<()> {
        let mut whiteout = OsString::from(".wh.");
        whiteout.push(std::ffi::OsStr::from_bytes(name));
        let path = relative.join(whiteout);
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(match self.options.mtime {
            Mtime::Fixed(seconds) => seconds,
            Mtime::Keep => 0,
        });
        header.set_size(0);
        self.write(full, &[], |b| {
            b.append_data(&mut header, &path, io::empty())
        })
    }

    /// Compares an opened entry with the base's entry at `relative`, as
    /// [`write_dir_diff_layer`] says.
    fn against_base(
        &self,
        base: &BaseTree,
        opened: &OpenedEntry,
        records: &[Record],
        relative: &Path,
    ) -> Result<Against> {
        let Some(old) = base.get(relative.as_os_str().as_bytes()) else {
            return Ok(Against::Changed {
                replaces_dir: false,
            });
        };
        let changed = Against::Changed {
            replaces_dir: old.kind == Kind::Directory
                && opened.stat.file_type != FileType::Directory,
        };
        if self.same_metadata(old, opened, records) && self.same_content(old, opened)? {
            Ok(Against::Unchanged)
        } else {
            Ok(changed)
        }
    }

    /// Everything but a regular file's content and mtime, which [`Self::same_content`]
    /// judges; a non-regular entry's mtime too.
    fn same_metadata(&self, old: &BaseEntry, opened: &OpenedEntry, records: &[Record]) -> bool {
        let stat = &opened.stat;
        let kind = match stat.file_type {
            FileType::RegularFile => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            _ => return false,
        };
        let (uid, gid) = match self.options.ownership {
            Ownership::Keep => (stat.uid, stat.gid),
            Ownership::Root => (0, 0),
        };
        let xattrs: Vec<(Vec<u8>, Vec<u8>)> = records
            .iter()
            .filter_map(|(key, value)| {
                key.strip_prefix(XATTR_RECORD)
                    .map(|name| (name.as_bytes().to_vec(), value.clone()))
            })
            .collect();
        let link = match &opened.node {
            Node::Symlink(_, target) => Some(target.as_os_str().as_bytes().to_vec()),
            _ => None,
        };
        let device = match kind {
            Kind::CharDevice | Kind::BlockDevice => {
                (rustix::fs::major(stat.rdev), rustix::fs::minor(stat.rdev))
            }
            _ => (0, 0),
        };
        kind == old.kind
            && stat.mode == old.mode
            && (u64::from(uid), u64::from(gid)) == (old.uid, old.gid)
            && old.xattrs.as_ref() == Some(&xattrs)
            && link == old.link
            && device == old.device
            && (kind == Kind::Regular && stat.size == old.size
                || kind != Kind::Regular && self.mtime_of(stat) == old.mtime)
    }

    /// A regular file's: the same mtime (kept from the source), or else the same content
    /// hash. Anything else: nothing more to compare.
    fn same_content(&self, old: &BaseEntry, opened: &OpenedEntry) -> Result<bool> {
        let Node::File(file) = &opened.node else {
            return Ok(true);
        };
        if self.options.mtime == Mtime::Keep && opened.stat.mtime == old.mtime {
            return Ok(true);
        }
        let digest = base_tree::content_digest(ReadAt { file, offset: 0 })
            .map_err(|e| Error::io(&opened.path, e))?;
        Ok(Some(digest) == old.content)
    }

    /// The mtime an entry's header gets.
    fn mtime_of(&self, stat: &EntryStat) -> i64 {
        match self.options.mtime {
            Mtime::Keep => stat.mtime,
            Mtime::Fixed(seconds) => i64::try_from(seconds).unwrap_or(i64::MAX),
        }
    }

    /// A second name of a file already met: unchanged when the first name was not written
    /// (so the file is as the base had it there) and the base has the same file here.
    fn link_unchanged(
        &self,
        base: &BaseTree,
        identity: (u64, u64),
        first: &Path,
        relative: &Path,
    ) -> bool {
        if self.emitted_links.contains(&identity) {
            return false;
        }
        match (
            base.get(first.as_os_str().as_bytes()),
            base.get(relative.as_os_str().as_bytes()),
        ) {
            (Some(first), Some(here)) => first.kind == Kind::Regular && first == here,
            _ => false,
        }
    }

    fn skip(&mut self, relative: &Path, reason: SkipReason) {
        self.skipped.push(Skipped {
            path: relative.to_path_buf(),
            reason,
        });
    }

    /// Appends one entry; a directory is returned, opened, for the walk to go into.
    fn append(
        &mut self,
        parent: &SourceDir,
        entry: &Listed,
        relative: &Path,
    ) -> Result<Option<SourceDir>> {
        let listed = entry.stat;
        if Some(listed.identity()) == self.layout {
            self.skip(relative, SkipReason::Layout);
            return Ok(None);
        }
        // Before the hard-link check: every name of a socket is a socket, and none is stored.
        if listed.file_type == FileType::Socket {
            self.skip(relative, SkipReason::Socket);
            return Ok(None);
        }
        let linked = listed.file_type != FileType::Directory && listed.nlink > 1;
        if linked && let Some(first) = self.links.get(&listed.identity()) {
            let first = first.clone();
            if let Some(base) = self.base {
                if self.link_unchanged(base, listed.identity(), &first, relative) {
                    return Ok(None);
                }
                if base
                    .get(relative.as_os_str().as_bytes())
                    .is_some_and(|old| old.kind == Kind::Directory)
                {
                    let full = parent.path_of(entry);
                    self.write_whiteout(
                        &full,
                        relative.parent().unwrap_or(Path::new("")),
                        entry.name().as_bytes(),
                    )?;
                }
            }
            let mut header = self.header(&listed, EntryType::Link);
            let records = self.mtime_record(&listed).into_iter().collect::<Vec<_>>();
            let full = parent.path_of(entry);
            self.write(&full, &records, |b| {
                b.append_link(&mut header, relative, &first)
            })?;
            return Ok(None);
        }

        let opened = parent.open(entry)?;
        let records = self.records(&opened, relative)?;
        let stat = opened.stat;
        let full = parent.path_of(entry);
        if let Some(base) = self.base {
            match self.against_base(base, &opened, &records, relative)? {
                Against::Unchanged => {
                    if linked {
                        self.links.insert(listed.identity(), relative.to_path_buf());
                    }
                    return Ok(match opened.node {
                        Node::Dir(dir) => Some(dir),
                        _ => None,
                    });
                }
                Against::Changed { replaces_dir: true } => {
                    let parent_relative = relative.parent().unwrap_or(Path::new(""));
                    self.write_whiteout(&full, parent_relative, entry.name().as_bytes())?;
                }
                Against::Changed {
                    replaces_dir: false,
                } => {}
            }
        }
        let mut sub = None;
        match opened.node {
            Node::Dir(dir) => {
                let mut header = self.header(&stat, EntryType::Directory);
                let mut name = relative.as_os_str().to_owned();
                name.push("/");
                self.write(&full, &records, |b| {
                    b.append_data(&mut header, &name, io::empty())
                })?;
                sub = Some(dir);
            }
            Node::File(file) => self.append_file(relative, &full, &stat, &file, &records)?,
            Node::Symlink(_, target) => {
                let mut header = self.header(&stat, EntryType::Symlink);
                self.write(&full, &records, |b| {
                    b.append_link(&mut header, relative, &target)
                })?;
            }
            Node::Special(_) => match stat.file_type {
                FileType::Fifo => {
                    let mut header = self.header(&stat, EntryType::Fifo);
                    self.write(&full, &records, |b| {
                        b.append_data(&mut header, relative, io::empty())
                    })?;
                }
                FileType::CharacterDevice | FileType::BlockDevice => {
                    let entry_type = if stat.file_type == FileType::CharacterDevice {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    };
                    let mut header = self.header(&stat, entry_type);
                    header
                        .set_device_major(rustix::fs::major(stat.rdev))
                        .and_then(|()| header.set_device_minor(rustix::fs::minor(stat.rdev)))
                        .map_err(|e| Error::io(&full, e))?;
                    self.write(&full, &records, |b| {
                        b.append_data(&mut header, relative, io::empty())
                    })?;
                }
                other => {
                    return Err(Error::Source {
                        path: full,
                        reason: format!(
                            "a {} cannot be stored in a layer",
                            crate::source_tree::describe(other)
                        ),
                    });
                }
            },
        }
        if linked {
            self.links.insert(listed.identity(), relative.to_path_buf());
            self.emitted_links.insert(listed.identity());
        }
        Ok(sub)
    }

    fn header(&self, stat: &EntryStat, entry_type: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(stat.mode);
        let (uid, gid) = match self.options.ownership {
            Ownership::Keep => (stat.uid, stat.gid),
            Ownership::Root => (0, 0),
        };
        header.set_uid(u64::from(uid));
        header.set_gid(u64::from(gid));
        header.set_mtime(match self.options.mtime {
            // Before 1970: 0 here, the time in a PAX record (`mtime_record`).
            Mtime::Keep => u64::try_from(stat.mtime).unwrap_or(0),
            Mtime::Fixed(seconds) => seconds,
        });
        header.set_size(0);
        header
    }

    /// A PAX `mtime` record for an mtime the header cannot hold (before 1970).
    fn mtime_record(&self, stat: &EntryStat) -> Option<Record> {
        (self.options.mtime == Mtime::Keep && stat.mtime < 0)
            .then(|| ("mtime".to_owned(), stat.mtime.to_string().into_bytes()))
    }

    /// The PAX records of an opened entry: its mtime before 1970, its extended attributes.
    fn records(&mut self, opened: &OpenedEntry, relative: &Path) -> Result<Vec<Record>> {
        let mut records: Vec<Record> = self.mtime_record(&opened.stat).into_iter().collect();
        let Some(xattrs) = opened.xattrs()? else {
            if !self.proc_missing_reported {
                self.proc_missing_reported = true;
                self.skip(relative, SkipReason::XattrsWithoutProc);
            }
            return Ok(records);
        };
        for Xattr { name, value } in xattrs {
            if HOST_XATTRS.contains(&name.as_slice()) {
                continue;
            }
            let key = match std::str::from_utf8(&name) {
                Ok(text) if !text.contains('=') => format!("{XATTR_RECORD}{text}"),
                _ => {
                    self.skip(relative, SkipReason::UnnamableXattr { name });
                    continue;
                }
            };
            if value.is_empty() {
                self.skip(relative, SkipReason::EmptyXattr { name });
                continue;
            }
            records.push((key, value));
        }
        Ok(records)
    }

    /// A regular file: the header through the builder (which handles long names), then the
    /// content read straight into the tar buffer.
    fn append_file(
        &mut self,
        relative: &Path,
        full: &Path,
        stat: &EntryStat,
        file: &std::fs::File,
        records: &[Record],
    ) -> Result<()> {
        let size = stat.size;
        let mut header = self.header(stat, EntryType::Regular);
        header.set_size(size);
        // The header says `size`; `append_data` with no data writes the header alone and no
        // padding (0 bytes need none), and the content and its padding follow here.
        self.write(full, records, |b| {
            b.append_data(&mut header, relative, io::empty())
        })?;
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

    /// Runs a builder call, after the entry's PAX records if it has any. An error the chain
    /// reported is the store's; any other (the tar crate refusing a name) is the source
    /// file's.
    fn write(
        &mut self,
        full: &Path,
        records: &[Record],
        call: impl FnOnce(&mut tar::Builder<BufWriter<LayerSink<'_>>>) -> io::Result<()>,
    ) -> Result<()> {
        let builder = &mut self.builder;
        let written = if records.is_empty() {
            Ok(())
        } else {
            builder.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        };
        written
            .and_then(|()| call(builder))
            .map_err(|e| self.classify(full, e))
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

/// A file's content, exactly `remaining` bytes. A read error is kept aside so the caller can
/// tell it from an error of the writer.
struct SourceReader<'f, 'p> {
    file: &'f std::fs::File,
    remaining: u64,
    error: Option<io::Error>,
    progress: &'p dyn Progress,
}

impl Read for SourceReader<'_, '_> {
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

/// Reads a file from `offset` on with `pread`, leaving the descriptor's offset where it is
/// (the layer's copy of the content reads from it afterwards).
struct ReadAt<'f> {
    file: &'f std::fs::File,
    offset: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}
