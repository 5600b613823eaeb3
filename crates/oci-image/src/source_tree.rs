//! The source tree of a layer, reached through directory descriptors only.
//!
//! Whoever can write the tree can change it while a layer is being written: swap a file for
//! a symlink to `/etc/shadow`, or a directory for a symlink to `/etc`, while an earlier big
//! file is read. So no path is resolved twice. The root is opened once (the one path that is
//! followed, since the caller named it), and every entry is then reached from its parent's
//! descriptor by its name alone: listed with an lstat (`statat` with `AT_SYMLINK_NOFOLLOW`),
//! then opened with `openat` and `O_NOFOLLOW`, and `fstat`ed.
//!
//! **An entry that changes between its listing and its opening fails the layer.** The lstat of
//! the listing and the `fstat` of what was opened must agree on device, inode and type; when
//! they do not (or the open meets a symlink, or a non-directory where a directory was), the
//! error names the whole path ("changed while the layer was written") and nothing of the new
//! entry is read. Failing is the only answer that is always right: skipping would make a
//! layer that silently misses a file, and storing the new entry would store what someone put
//! there after the tree was listed.
//!
//! What is opened for what:
//! - a directory: `O_RDONLY | O_DIRECTORY`, then listed through that descriptor;
//! - a regular file: `O_RDONLY | O_NONBLOCK`, so that a FIFO or a device swapped in opens
//!   without waiting for a writer or a medium; its type is then checked, so it is never read.
//!   `O_NONBLOCK` is cleared once the descriptor is known to be a regular file;
//! - a symlink, FIFO or device: `O_PATH`, which reads nothing and calls no driver, only to
//!   check its identity and read its target and extended attributes;
//! - a socket: nothing (a layer cannot hold one).
//!
//! The walk holds one descriptor per level of the tree it is in, so a tree deeper than the
//! open-file limit fails with "too many open files", naming the path.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::{Error, Result};

/// What an lstat or `fstat` says of an entry, in the same widths on every architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryStat {
    pub(crate) file_type: FileType,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// The permission bits, setuid, setgid and sticky (12 bits).
    pub(crate) mode: u32,
    pub(crate) nlink: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) rdev: u64,
    pub(crate) size: u64,
    /// Whole seconds since the epoch; negative before 1970.
    pub(crate) mtime: i64,
}

impl EntryStat {
    /// Device and inode: what tells one file from another, whatever its names.
    pub(crate) fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The identity of what `path` names, following symlinks; `None` when it cannot be
    /// stat'ed.
    pub(crate) fn identity_of(path: &Path) -> Option<(u64, u64)> {
        rustix::fs::stat(path)
            .ok()
            .map(|stat| EntryStat::from(stat).identity())
    }
}

impl From<Stat> for EntryStat {
    // The fields of `struct stat` are `u64` on some architectures and narrower on others.
    #[allow(clippy::unnecessary_cast)]
    fn from(stat: Stat) -> Self {
        EntryStat {
            file_type: FileType::from_raw_mode(stat.st_mode),
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            mode: (stat.st_mode as u32) & 0o7777,
            nlink: stat.st_nlink as u64,
            uid: stat.st_uid,
            gid: stat.st_gid,
            rdev: stat.st_rdev as u64,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime: stat.st_mtime as i64,
        }
    }
}

/// A name for a file type in messages.
pub(crate) fn describe(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// A directory of the tree, opened and checked; `path` is for messages only, never opened.
pub(crate) struct SourceDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// An entry as its directory's listing found it.
pub(crate) struct Listed {
    name: CString,
    pub(crate) stat: EntryStat,
}

impl Listed {
    pub(crate) fn name(&self) -> &OsStr {
        OsStr::from_bytes(self.name.as_bytes())
    }
}

/// An entry opened, checked to be the one listed.
pub(crate) struct OpenedEntry {
    pub(crate) node: Node,
    /// From the `fstat` of the opened descriptor.
    pub(crate) stat: EntryStat,
    /// For messages.
    pub(crate) path: PathBuf,
}

/// What was opened, by type. `O_PATH` descriptors (symlinks, FIFOs, devices) read nothing
/// and serve only to check identity, read a link's target and extended attributes.
pub(crate) enum Node {
    Dir(SourceDir),
    File(File),
    /// A symlink and its target, read through its descriptor (`readlinkat` with an empty
    /// name): the link that was checked, not whatever has its name now.
    Symlink(OwnedFd, PathBuf),
    /// A FIFO or a device.
    Special(OwnedFd),
}

/// One extended attribute, as bytes.
pub(crate) struct Xattr {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl SourceDir {
    /// Opens the root of the tree, following symlinks in `path` (the caller named it).
    pub(crate) fn open_root(path: &Path) -> Result<(SourceDir, EntryStat)> {
        let flags = OFlags::RDONLY
            | OFlags::DIRECTORY
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty()).map_err(|e| match e {
            Errno::NOTDIR => Error::Source {
                path: path.to_path_buf(),
                reason: "not a directory".to_owned(),
            },
            other => Error::io(path, other.into()),
        })?;
        let stat = fstat(&fd, path)?;
        let dir = SourceDir {
            fd,
            path: path.to_path_buf(),
        };
        Ok((dir, stat))
    }

    /// The path of the entry `name` of this directory, for messages.
    pub(crate) fn path_of(&self, entry: &Listed) -> PathBuf {
        self.path.join(entry.name())
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn path_of_name(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// Every entry but `.` and `..`, each with its lstat, in byte order of the names.
    pub(crate) fn list(&self) -> Result<Vec<Listed>> {
        let io_error = |e: Errno| Error::io(&self.path, e.into());
        let mut entries = Vec::new();
        for entry in Dir::read_from(&self.fd).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let stat =
                rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                    Error::io(self.path.join(OsStr::from_bytes(name.to_bytes())), e.into())
                })?;
            entries.push(Listed {
                name: name.to_owned(),
                stat: stat.into(),
            });
        }
        // Byte order of the names: the same on every machine, whatever `readdir` returns.
        entries.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(entries)
    }

    /// Opens `entry` (see the module docs for how each type is opened) and checks that it is
    /// what the listing found.
    pub(crate) fn open(&self, entry: &Listed) -> Result<OpenedEntry> {
        let path = self.path_of(entry);
        let listed = entry.stat;
        let flags = match listed.file_type {
            FileType::Directory => OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK,
            FileType::RegularFile => OFlags::RDONLY | OFlags::NONBLOCK,
            _ => OFlags::PATH,
        } | no_side_effects();
        let fd = match rustix::fs::openat(&self.fd, &entry.name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Gone: say so plainly.
            Err(Errno::NOENT) => return Err(Error::io(path, Errno::NOENT.into())),
            // O_NOFOLLOW met a symlink, O_DIRECTORY a non-directory, or something else was
            // refused: the entry is no longer what was listed, or it cannot be opened.
            Err(e) => {
                return Err(match self.relisted(entry) {
                    Some(now) if now == (listed.file_type, listed.identity()) => {
                        Error::io(path, e.into())
                    }
                    _ => changed(path, listed.file_type),
                });
            }
        };
        let stat = fstat(&fd, &path)?;
        if (stat.file_type, stat.identity()) != (listed.file_type, listed.identity()) {
            return Err(changed(path, listed.file_type));
        }
        let node = match stat.file_type {
            FileType::Directory => Node::Dir(SourceDir {
                fd,
                path: path.clone(),
            }),
            FileType::RegularFile => {
                // Known to be a regular file now: reads block as reads of files do.
                rustix::fs::fcntl_getfl(&fd)
                    .and_then(|flags| rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK))
                    .map_err(|e| Error::io(&path, e.into()))?;
                Node::File(File::from(fd))
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, c"", Vec::new())
                    .map_err(|e| Error::io(&path, e.into()))?;
                Node::Symlink(fd, PathBuf::from(OsStr::from_bytes(target.as_bytes())))
            }
            _ => Node::Special(fd),
        };
        Ok(OpenedEntry { node, stat, path })
    }

    /// The type and identity `entry`'s name has now, if it has one.
    fn relisted(&self, entry: &Listed) -> Option<(FileType, (u64, u64))> {
        let stat = rustix::fs::statat(&self.fd, &entry.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        let stat = EntryStat::from(stat);
        Some((stat.file_type, stat.identity()))
    }
}

/// Flags every open of the walk carries: no symlink followed, no descriptor leaked into a
/// child process, no terminal made the controlling one.
fn no_side_effects() -> OFlags {
    OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY
}

fn fstat(fd: &OwnedFd, path: &Path) -> Result<EntryStat> {
    rustix::fs::fstat(fd)
        .map(EntryStat::from)
        .map_err(|e| Error::io(path, e.into()))
}

fn changed(path: PathBuf, listed: FileType) -> Error {
    Error::Source {
        path,
        reason: format!(
            "changed while the layer was written: no longer the {} it was listed as",
            describe(listed)
        ),
    }
}

impl OpenedEntry {
    /// The extended attributes of the entry, in byte order of their names; `None` when they
    /// cannot be read safely (a symlink, FIFO or device while `/proc` is not mounted).
    ///
    /// A directory or a regular file: `flistxattr` and `fgetxattr` on its descriptor. An
    /// `O_PATH` descriptor (symlink, FIFO, device) refuses those (`EBADF`), and a symlink
    /// cannot be opened otherwise without following it; its attributes are read through
    /// `/proc/self/fd/N` with the following `listxattr` and `getxattr`: that name resolves to
    /// exactly the inode the descriptor holds, without a lookup by name that a swap could
    /// redirect (an `llistxattr` on the entry's path would walk every component again).
    pub(crate) fn xattrs(&self) -> Result<Option<Vec<Xattr>>> {
        let read = match &self.node {
            Node::Dir(dir) => read_xattrs(&FdXattrs(dir.fd.as_fd())),
            Node::File(file) => read_xattrs(&FdXattrs(file.as_fd())),
            Node::Symlink(fd, _) | Node::Special(fd) => {
                let proc_path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .expect("a decimal number holds no NUL");
                match read_xattrs(&ProcXattrs(&proc_path)) {
                    // The descriptor is open, so only a missing /proc explains it.
                    Err(Errno::NOENT) => return Ok(None),
                    other => other,
                }
            }
        };
        read.map(Some).map_err(|e| Error::io(&self.path, e.into()))
    }
}

/// The calls that read extended attributes, by descriptor or by name. A `None` buffer asks
/// for the size.
trait XattrSource {
    fn list(&self, buf: Option<&mut [u8]>) -> rustix::io::Result<usize>;
    fn get(&self, name: &CStr, buf: Option<&mut [u8]>) -> rustix::io::Result<usize>;
}

struct FdXattrs<'f>(std::os::fd::BorrowedFd<'f>);

impl XattrSource for FdXattrs<'_> {
    fn list(&self, buf: Option<&mut [u8]>) -> rustix::io::Result<usize> {
        match buf {
            Some(buf) => rustix::fs::flistxattr(self.0, buf),
            None => rustix::fs::flistxattr_query(self.0),
        }
    }
    fn get(&self, name: &CStr, buf: Option<&mut [u8]>) -> rustix::io::Result<usize> {
        match buf {
            Some(buf) => rustix::fs::fgetxattr(self.0, name, buf),
            None => rustix::fs::fgetxattr_query(self.0, name),
        }
    }
}

struct ProcXattrs<'p>(&'p CStr);

impl XattrSource for ProcXattrs<'_> {
    fn list(&self, buf: Option<&mut [u8]>) -> rustix::io::Result<usize> {
        match buf {
            Some(buf) => rustix::fs::listxattr(self.0, buf),
            None => rustix::fs::listxattr_query(self.0),
        }
    }
    fn get(&self, name: &CStr, buf: Option<&mut [u8]>) -> rustix::io::Result<usize> {
        match buf {
            Some(buf) => rustix::fs::getxattr(self.0, name, buf),
            None => rustix::fs::getxattr_query(self.0, name),
        }
    }
}

fn read_xattrs(source: &dyn XattrSource) -> rustix::io::Result<Vec<Xattr>> {
    let list = match read_sized(|buf| source.list(buf)) {
        Ok(list) => list,
        // A filesystem without extended attributes has none.
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Vec::new();
    for name in list.split(|&b| b == 0).filter(|name| !name.is_empty()) {
        let c_name = CString::new(name).expect("split at every NUL");
        match read_sized(|buf| source.get(&c_name, buf)) {
            Ok(value) => xattrs.push(Xattr {
                name: name.to_vec(),
                value,
            }),
            // Removed since it was listed: there is nothing to keep.
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    xattrs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(xattrs)
}

/// Reads a list or a value whose size the kernel tells first; again if it grew in between.
fn read_sized(
    mut read: impl FnMut(Option<&mut [u8]>) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    loop {
        let size = read(None)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0; size];
        match read(Some(&mut buf)) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}
