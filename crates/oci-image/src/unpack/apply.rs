//! Applying one layer's tar stream to the confined root: entries, whiteouts, metadata.
//!
//! Nothing already on disk is ever written into: a regular file is always a new inode
//! (`O_CREAT | O_EXCL` after removing what had its name), so a hard link made by a lower
//! layer keeps the content the image gave it when a later layer replaces the file it was
//! linked to. Directories get their owner, mode and times at the very end ([`Applier::finish`]),
//! deepest first: until then they stay writable and searchable by the unpacking user (a
//! rootless unpack of a `0555` directory can still fill it), and no child written later
//! changes a directory's mtime after it was set.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::confined::{self, Root};
use super::names::{self, Kind};
use super::{UnpackOptions, UnpackWarning, Whiteouts};

/// Why an entry could not be applied.
#[derive(Debug)]
pub(crate) struct ApplyError {
    /// The entry's name as the layer gives it (empty: the tar stream itself).
    pub(crate) entry: Vec<u8>,
    pub(crate) reason: Option<String>,
    pub(crate) source: Option<io::Error>,
}

impl ApplyError {
    fn io(entry: &[u8], source: impl Into<io::Error>) -> ApplyError {
        ApplyError {
            entry: entry.to_vec(),
            reason: None,
            source: Some(source.into()),
        }
    }

    fn invalid(entry: &[u8], reason: impl Into<String>) -> ApplyError {
        ApplyError {
            entry: entry.to_vec(),
            reason: Some(reason.into()),
            source: None,
        }
    }

    fn stream(source: io::Error) -> ApplyError {
        ApplyError {
            entry: Vec::new(),
            reason: None,
            source: Some(source),
        }
    }
}

type ApplyResult<T = ()> = std::result::Result<T, ApplyError>;

/// A directory's metadata, applied at the end.
struct DirMeta {
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: Timespec,
}

/// The metadata of one entry, with its PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Applies layers, one after another, to one root.
pub(crate) struct Applier<'a> {
    root: &'a Root,
    options: &'a UnpackOptions,
    /// Deferred directory metadata, by cleaned path.
    dirs: HashMap<Vec<u8>, DirMeta>,
    /// Every path the current layer created (and their parents): a whiteout never removes
    /// them.
    created: HashSet<Vec<u8>>,
    /// The last parent directory resolved, valid until anything is removed.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    buffer: Vec<u8>,
    pub(crate) warnings: Vec<UnpackWarning>,
    pub(crate) entries: u64,
}

/// Big enough that a file's content goes in a few writes.
const COPY_BUFFER: usize = 256 * 1024;

impl<'a> Applier<'a> {
    pub(crate) fn new(root: &'a Root, options: &'a UnpackOptions) -> Applier<'a> {
        Applier {
            root,
            options,
            dirs: HashMap::new(),
            created: HashSet::new(),
            parent_cache: None,
            buffer: vec![0; COPY_BUFFER],
            warnings: Vec::new(),
            entries: 0,
        }
    }

    /// Applies one layer's (uncompressed) tar stream. Returns with the stream read up to
    /// the tar's end-of-archive marker; the caller reads the rest.
    pub(crate) fn apply_layer(&mut self, tar_stream: &mut dyn Read) -> ApplyResult {
        self.created.clear();
        let mut archive = tar::Archive::new(tar_stream);
        for entry in archive.entries().map_err(ApplyError::stream)? {
            let entry = entry.map_err(ApplyError::stream)?;
            self.apply_entry(entry)?;
            self.entries += 1;
        }
        Ok(())
    }

    fn apply_entry(&mut self, mut entry: tar::Entry<'_, &mut dyn Read>) -> ApplyResult {
        let raw_name = entry.path_bytes().into_owned();
        let entry_type = entry.header().entry_type();
        match entry_type {
            // Metadata for the whole archive, and the records the tar crate already folded
            // into the entry that follows them.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => return Ok(()),
            _ => {}
        }
        let components = names::clean(&raw_name);
        let Some((&last, parent)) = components.split_last() else {
            // `.`, `/`, `..`: the root is the target itself, whose owner and mode are the
            // user's; a non-directory there (umoci CVE-2021-29136) cannot replace it.
            if !entry_type.is_dir() {
                self.warn(&raw_name, "names the root directory; skipped");
            }
            return Ok(());
        };
        match names::kind(last) {
            Kind::Entry => {}
            Kind::AufsMeta => return Ok(()),
            Kind::InvalidWhiteout => {
                return Err(ApplyError::invalid(
                    &raw_name,
                    "whiteout of an invalid name (empty, `.` or `..`)",
                ));
            }
            Kind::Opaque => return self.opaque(&raw_name, parent),
            Kind::Whiteout(name) => return self.whiteout(&raw_name, parent, name),
        }
        let mut meta = read_meta(&mut entry).map_err(|e| ApplyError::io(&raw_name, e))?;
        // Rootless, the image's owner is recorded where umoci records it (a symlink can hold
        // no user.* attribute: its owner is lost, as with umoci).
        if self.options.rootless
            && entry_type != tar::EntryType::Symlink
            && entry_type != tar::EntryType::Link
            && let Some(record) = rootless_owner_record(meta.uid, meta.gid)
        {
            meta.xattrs.push((ROOTLESS_OWNER_XATTR.to_vec(), record));
        }
        let link_name = entry.link_name_bytes().map(std::borrow::Cow::into_owned);
        let path = confined::join(&components);
        self.note_created(&components);
        // A path that is now anything but a directory has no directory metadata to apply.
        if !entry_type.is_dir() {
            self.dirs.remove(&path);
        }
        let parent_fd = self
            .parent(parent)
            .map_err(|e| ApplyError::io(&raw_name, e))?;
        let io_error = |e: Errno| ApplyError::io(&raw_name, e);
        match entry_type {
            tar::EntryType::Directory => {
                self.make_dir(&parent_fd, last).map_err(io_error)?;
                if !meta.xattrs.is_empty() {
                    let dir = confined::open_dir_nofollow(&parent_fd, last).map_err(io_error)?;
                    self.set_xattrs_fd(&dir, &raw_name, &meta.xattrs)?;
                }
                self.dirs.insert(
                    path,
                    DirMeta {
                        mode: meta.mode,
                        owner: self.owner(&meta),
                        mtime: meta.mtime,
                    },
                );
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.write_file(&parent_fd, last, &raw_name, &mut entry, &meta)?;
            }
            tar::EntryType::Symlink => {
                let Some(target) = link_name else {
                    return Err(ApplyError::invalid(&raw_name, "symlink without a target"));
                };
                self.replace(&parent_fd, last, |dir| {
                    rustix::fs::symlinkat(target.as_slice(), dir, last)
                })
                .map_err(io_error)?;
                self.finish_node(&parent_fd, last, &raw_name, &meta, false)?;
            }
            tar::EntryType::Link => {
                let Some(target) = link_name else {
                    return Err(ApplyError::invalid(&raw_name, "hard link without a target"));
                };
                self.hard_link(&parent_fd, last, &components, &raw_name, &target)?;
            }
            tar::EntryType::Fifo => {
                self.replace(&parent_fd, last, |dir| {
                    rustix::fs::mknodat(dir, last, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                })
                .map_err(io_error)?;
                self.finish_node(&parent_fd, last, &raw_name, &meta, true)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let file_type = if entry_type == tar::EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                if self.options.rootless {
                    // umoci's choice: the path exists, as an empty file, so that bind mounts
                    // of the host's device onto it work.
                    self.replace(&parent_fd, last, |dir| {
                        rustix::fs::openat(
                            dir,
                            last,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                        .map(drop)
                    })
                    .map_err(io_error)?;
                    self.warn(
                        &raw_name,
                        &format!(
                            "device {major}:{minor} cannot be created rootless; an empty file instead"
                        ),
                    );
                } else {
                    self.replace(&parent_fd, last, |dir| {
                        rustix::fs::mknodat(
                            dir,
                            last,
                            file_type,
                            Mode::from_raw_mode(0o600),
                            rustix::fs::makedev(major, minor),
                        )
                    })
                    .map_err(io_error)?;
                }
                self.finish_node(&parent_fd, last, &raw_name, &meta, true)?;
            }
            other => {
                return Err(ApplyError::invalid(
                    &raw_name,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        Ok(())
    }

    /// The parent directory of an entry, created (with its own parents) when missing.
    fn parent(&mut self, components: &[&[u8]]) -> rustix::io::Result<OwnedFd> {
        let path = confined::join(components);
        if let Some((cached, fd)) = &self.parent_cache
            && *cached == path
        {
            return fd
                .try_clone()
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO));
        }
        let fd = self.root.create_dir_all(components)?;
        let clone = fd
            .try_clone()
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
        self.parent_cache = Some((path, clone));
        Ok(fd)
    }

    /// Something was removed: a cached resolution may no longer hold.
    fn forget_resolutions(&mut self) {
        self.parent_cache = None;
    }

    fn note_created(&mut self, components: &[&[u8]]) {
        for end in (1..=components.len()).rev() {
            if !self.created.insert(confined::join(&components[..end])) {
                break;
            }
        }
    }

    /// Creates `name` in `dir` with `create`; when something already has the name, removes
    /// it (a directory with all it holds) and creates again.
    fn replace(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        create: impl Fn(&OwnedFd) -> rustix::io::Result<()>,
    ) -> rustix::io::Result<()> {
        match create(dir) {
            Err(Errno::EXIST) => {
                self.forget_resolutions();
                confined::remove_tree(dir, name)?;
                create(dir)
            }
            other => other,
        }
    }

    fn make_dir(&mut self, parent: &OwnedFd, name: &[u8]) -> rustix::io::Result<()> {
        let mkdir = |dir: &OwnedFd| rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700));
        match mkdir(parent) {
            Err(Errno::EXIST) => {
                let existing = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
                if FileType::from_raw_mode(existing.st_mode) == FileType::Directory {
                    // Layers merge into an existing directory.
                    return Ok(());
                }
                self.forget_resolutions();
                confined::remove_tree(parent, name)?;
                mkdir(parent)
            }
            other => other,
        }
    }

    fn write_file(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        raw_name: &[u8],
        content: &mut dyn Read,
        meta: &Meta,
    ) -> ApplyResult {
        let create = |dir: &OwnedFd| {
            rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        let file = match create(parent) {
            Err(Errno::EXIST) => {
                self.forget_resolutions();
                confined::remove_tree(parent, name).map_err(|e| ApplyError::io(raw_name, e))?;
                create(parent)
            }
            other => other,
        }
        .map_err(|e| ApplyError::io(raw_name, e))?;
        let mut file = std::fs::File::from(file);
        loop {
            let n = match content.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ApplyError::stream(e)),
            };
            io::Write::write_all(&mut file, &self.buffer[..n])
                .map_err(|e| ApplyError::io(raw_name, e))?;
        }
        let fd: OwnedFd = file.into();
        let io_error = |e: Errno| ApplyError::io(raw_name, e);
        if let Some((uid, gid)) = self.owner(meta) {
            rustix::fs::fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(io_error)?;
        }
        // After the chown, which clears setuid and setgid.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(io_error)?;
        self.set_xattrs_fd(&fd, raw_name, &meta.xattrs)?;
        rustix::fs::futimens(&fd, &times(meta.mtime)).map_err(io_error)?;
        Ok(())
    }

    /// Owner, mode (unless a symlink, whose mode means nothing), xattrs and times of a node
    /// just created that cannot be opened for writing (a symlink, a FIFO, a device): through
    /// an `O_PATH | O_NOFOLLOW` descriptor of the node itself.
    fn finish_node(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        raw_name: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> ApplyResult {
        let io_error = |e: Errno| ApplyError::io(raw_name, e);
        let node = rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_error)?;
        if let Some((uid, gid)) = self.owner(meta) {
            rustix::fs::chownat(
                &node,
                c"",
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_error)?;
        }
        if chmod {
            // fchmod refuses an O_PATH descriptor; its /proc link names the node itself
            // (a magic link the kernel resolves to that inode, never a path to re-walk).
            rustix::fs::chmodat(
                rustix::fs::CWD,
                proc_fd_path(&node, None).as_c_str(),
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(io_error)?;
        }
        if !meta.xattrs.is_empty() {
            let path = proc_fd_path(parent, Some(name));
            for (key, value) in &meta.xattrs {
                let result = rustix::fs::lsetxattr(
                    path.as_c_str(),
                    key.as_slice(),
                    value,
                    XattrFlags::empty(),
                );
                self.xattr_result(result, raw_name, key)?;
            }
        }
        rustix::fs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_error)?;
        Ok(())
    }

    fn hard_link(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        components: &[&[u8]],
        raw_name: &[u8],
        raw_target: &[u8],
    ) -> ApplyResult {
        let target = names::clean(raw_target);
        let Some((&target_name, target_parent)) = target.split_last() else {
            return Err(ApplyError::invalid(
                raw_name,
                "hard link to the root directory",
            ));
        };
        if target == components {
            return Err(ApplyError::invalid(raw_name, "hard link to itself"));
        }
        let missing = || {
            ApplyError::invalid(
                raw_name,
                format!(
                    "hard link to {}, which no earlier entry created",
                    String::from_utf8_lossy(raw_target)
                ),
            )
        };
        let source_dir = match self.root.open_dir(target_parent) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR) => return Err(missing()),
            Err(e) => return Err(ApplyError::io(raw_name, e)),
        };
        // No AT_SYMLINK_FOLLOW: a link to a symlink is a link to the symlink itself.
        let link = |dir: &OwnedFd| {
            rustix::fs::linkat(&source_dir, target_name, dir, name, AtFlags::empty())
        };
        match link(parent) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(missing()),
            Err(Errno::EXIST) => {
                let source =
                    rustix::fs::statat(&source_dir, target_name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| ApplyError::io(raw_name, e))?;
                let existing = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ApplyError::io(raw_name, e))?;
                if (source.st_dev, source.st_ino) == (existing.st_dev, existing.st_ino) {
                    return Ok(());
                }
                self.forget_resolutions();
                confined::remove_tree(parent, name).map_err(|e| ApplyError::io(raw_name, e))?;
                link(parent).map_err(|e| match e {
                    Errno::NOENT => missing(),
                    e => ApplyError::io(raw_name, e),
                })
            }
            Err(e) => Err(ApplyError::io(raw_name, e)),
        }
    }

    /// `.wh.NAME` in `parent`: NAME, unless this layer created it.
    fn whiteout(&mut self, raw_name: &[u8], parent: &[&[u8]], name: &[u8]) -> ApplyResult {
        let mut target = parent.to_vec();
        target.push(name);
        let target_path = confined::join(&target);
        if self.created.contains(&target_path) {
            return Ok(());
        }
        self.dirs.remove(&target_path);
        let io_error = |e: Errno| ApplyError::io(raw_name, e);
        let Some(dir) = self.whiteout_parent(parent, raw_name)? else {
            return Ok(());
        };
        self.forget_resolutions();
        confined::remove_tree(&dir, name).map_err(io_error)?;
        if self.options.whiteouts == Whiteouts::Overlay {
            rustix::fs::mknodat(&dir, name, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(io_error)?;
            self.note_created(&target);
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `parent`: what lower layers put there goes.
    fn opaque(&mut self, raw_name: &[u8], parent: &[&[u8]]) -> ApplyResult {
        let io_error = |e: Errno| ApplyError::io(raw_name, e);
        let Some(dir) = self.whiteout_parent(parent, raw_name)? else {
            return Ok(());
        };
        let readable = rustix::fs::openat(
            &dir,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_error)?;
        let parent_path = confined::join(parent);
        for name in confined::list(&readable).map_err(io_error)? {
            let mut path = if parent.is_empty() {
                Vec::new()
            } else {
                parent_path.clone()
            };
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            if !self.created.contains(&path) {
                self.forget_resolutions();
                confined::remove_tree(&readable, &name).map_err(io_error)?;
            }
        }
        if self.options.whiteouts == Whiteouts::Overlay {
            // Rootless, overlayfs reads the user namespace's attribute (`userxattr`).
            let key: &[u8] = if self.options.rootless {
                b"user.overlay.opaque"
            } else {
                b"trusted.overlay.opaque"
            };
            rustix::fs::fsetxattr(&readable, key, b"y", XattrFlags::empty()).map_err(io_error)?;
        }
        self.note_created(parent);
        Ok(())
    }

    /// The directory a whiteout acts in; `None` when there is none (nothing to remove).
    fn whiteout_parent(
        &mut self,
        parent: &[&[u8]],
        raw_name: &[u8],
    ) -> ApplyResult<Option<OwnedFd>> {
        match self.root.open_dir(parent) {
            Ok(dir) => Ok(Some(dir)),
            Err(Errno::NOENT | Errno::NOTDIR) if self.options.whiteouts == Whiteouts::Remove => {
                Ok(None)
            }
            Err(Errno::NOENT) => self
                .root
                .create_dir_all(parent)
                .map(Some)
                .map_err(|e| ApplyError::io(raw_name, e)),
            Err(e) => Err(ApplyError::io(raw_name, e)),
        }
    }

    fn owner(&self, meta: &Meta) -> Option<(u32, u32)> {
        (!self.options.rootless).then_some((meta.uid, meta.gid))
    }

    fn set_xattrs_fd(
        &mut self,
        fd: &OwnedFd,
        raw_name: &[u8],
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> ApplyResult {
        for (key, value) in xattrs {
            let result = rustix::fs::fsetxattr(fd, key.as_slice(), value, XattrFlags::empty());
            self.xattr_result(result, raw_name, key)?;
        }
        Ok(())
    }

    /// Rootless, an attribute the user may not set (`security.*`, `trusted.*`) or a
    /// filesystem without them is a warning; as root, an error: the image would not be what
    /// it says (a binary without its capabilities).
    fn xattr_result(
        &mut self,
        result: rustix::io::Result<()>,
        raw_name: &[u8],
        key: &[u8],
    ) -> ApplyResult {
        match result {
            Ok(()) => Ok(()),
            Err(e @ (Errno::PERM | Errno::OPNOTSUPP | Errno::ACCESS)) if self.options.rootless => {
                self.warn(
                    raw_name,
                    &format!(
                        "extended attribute {} not set: {}",
                        String::from_utf8_lossy(key),
                        io::Error::from(e)
                    ),
                );
                Ok(())
            }
            Err(e) => Err(ApplyError {
                entry: raw_name.to_vec(),
                reason: Some(format!(
                    "extended attribute {}",
                    String::from_utf8_lossy(key)
                )),
                source: Some(e.into()),
            }),
        }
    }

    fn warn(&mut self, raw_name: &[u8], reason: &str) {
        self.warnings.push(UnpackWarning {
            path: PathBuf::from(OsStr::from_bytes(raw_name)),
            reason: reason.to_owned(),
        });
    }

    /// Directories' owners, modes and times, deepest first. A directory a later layer removed
    /// or replaced is skipped.
    pub(crate) fn finish(&mut self) -> std::result::Result<(), ApplyError> {
        let mut dirs: Vec<(Vec<u8>, DirMeta)> = self.dirs.drain().collect();
        dirs.sort_by_key(|(path, _)| {
            std::cmp::Reverse(path.iter().filter(|&&b| b == b'/').count())
        });
        for (path, meta) in dirs {
            let components = names::clean(&path);
            let Some((&name, parent)) = components.split_last() else {
                continue;
            };
            let dir = match self
                .root
                .open_dir(parent)
                .and_then(|parent| confined::open_dir_nofollow(&parent, name))
            {
                Ok(dir) => dir,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(ApplyError::io(&path, e)),
            };
            let io_error = |e: Errno| ApplyError::io(&path, e);
            if let Some((uid, gid)) = meta.owner {
                rustix::fs::fchown(&dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                    .map_err(io_error)?;
            }
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(meta.mode)).map_err(io_error)?;
            rustix::fs::futimens(&dir, &times(meta.mtime)).map_err(io_error)?;
        }
        Ok(())
    }
}

/// The attribute in which a rootless unpack records an entry's owner from the image, for a
/// later repack: the rootlesscontainers.io convention umoci reads and writes.
pub(crate) const ROOTLESS_OWNER_XATTR: &[u8] = b"user.rootlesscontainers";

/// `rootlesscontainers.Resource { uid, gid }` in protobuf, with `u32::MAX` ("no change")
/// for an id of 0, as umoci writes it; `None` for `0:0`, which needs no record.
fn rootless_owner_record(uid: u32, gid: u32) -> Option<Vec<u8>> {
    const NO_CHANGE: u32 = u32::MAX;
    if (uid, gid) == (0, 0) {
        return None;
    }
    let mut record = Vec::with_capacity(12);
    for (tag, id) in [(0x08u8, uid), (0x10u8, gid)] {
        record.push(tag);
        let mut value = if id == 0 { NO_CHANGE } else { id };
        while value >= 0x80 {
            record.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        record.push(value as u8);
    }
    Some(record)
}

/// `/proc/self/fd/N`, or `/proc/self/fd/N/NAME`.
fn proc_fd_path(fd: &OwnedFd, name: Option<&[u8]>) -> CString {
    let mut path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()).into_bytes();
    if let Some(name) = name {
        path.push(b'/');
        path.extend_from_slice(name);
    }
    // A tar name cannot hold a NUL (it ends the field), nor can a PAX one that we accept:
    // rustix refuses such a name before this is reached.
    CString::new(path).unwrap_or_default()
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

/// The entry's mode, owner, mtime and xattrs: the ustar header's, overridden by its PAX
/// records (`uid`, `gid`, `mtime`, `SCHILY.xattr.*`).
fn read_meta(entry: &mut tar::Entry<'_, &mut dyn Read>) -> io::Result<Meta> {
    let header = entry.header();
    let mut meta = Meta {
        mode: header.mode()? & 0o7777,
        uid: u32::try_from(header.uid()?).unwrap_or(u32::MAX),
        gid: u32::try_from(header.gid()?).unwrap_or(u32::MAX),
        mtime: Timespec {
            tv_sec: i64::try_from(header.mtime()?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for record in pax {
            let record = record?;
            let value = record.value_bytes();
            match record.key_bytes() {
                b"uid" => meta.uid = parse_id(value, "uid")?,
                b"gid" => meta.gid = parse_id(value, "gid")?,
                b"mtime" => meta.mtime = parse_pax_time(value)?,
                key => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        meta.xattrs.push((name.to_vec(), value.to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn invalid_data(what: &str, value: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid PAX {what} {:?}", String::from_utf8_lossy(value)),
    )
}

fn parse_id(value: &[u8], what: &str) -> io::Result<u32> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| invalid_data(what, value))
}

/// A PAX time: seconds, optionally negative, optionally with a fraction.
fn parse_pax_time(value: &[u8]) -> io::Result<Timespec> {
    let text = std::str::from_utf8(value).map_err(|_| invalid_data("mtime", value))?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = seconds.parse().map_err(|_| invalid_data("mtime", value))?;
    let digits: String = fraction.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid_data("mtime", value));
    }
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}")
            .parse::<i64>()
            .map_err(|_| invalid_data("mtime", value))?
    };
    Ok(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}
