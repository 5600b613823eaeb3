//! The confined root: every directory an unpack writes into is reached from the target's
//! descriptor, resolved as if the target were `/`.
//!
//! A path is resolved with `openat2(RESOLVE_IN_ROOT)`: `..` stops at the root and an absolute
//! symlink (`/etc`, planted by an earlier entry or layer) starts again from the root, so no
//! symlink can lead out of it. On a kernel without `openat2` (before 5.6, or a seccomp filter
//! that answers ENOSYS) the same resolution is done one component at a time ([`walk`]): each
//! component opened `O_PATH | O_NOFOLLOW`, a symlink read and its target's components walked
//! in its place, `..` popped off a stack of descriptors that never goes below the root.
//!
//! Where `openat2` finds nothing, the walk is tried too: it cleans each symlink's target
//! lexically before following it (`missing/../etc` is `etc`), as containerd's resolution
//! does, so links that containerd's unpacker resolves resolve here the same way. Both
//! resolutions stay below the root; they differ only in where such a target lands inside it.
//!
//! Only directories are resolved here. The last component of an entry is always acted on
//! with an `*at` call on its parent's descriptor that does not follow it (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`, `linkat` without `AT_SYMLINK_FOLLOW`), and metadata is changed
//! through a descriptor of the entry itself, so no chmod, chown, utime or setxattr ever goes
//! through a symlink.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How many symlinks one resolution may follow, as the kernel's own limit (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// The root every unpack path resolves in.
pub(crate) struct Root {
    fd: OwnedFd,
    /// Cleared when `openat2` answered ENOSYS: the component walk is used from then on.
    use_openat2: AtomicBool,
}

impl Root {
    /// The directory `fd` as the root.
    pub(crate) fn new(fd: OwnedFd) -> Root {
        Root {
            fd,
            use_openat2: AtomicBool::new(true),
        }
    }

    /// A root that always walks component by component, as on a kernel without `openat2`.
    #[cfg(test)]
    pub(crate) fn without_openat2(fd: OwnedFd) -> Root {
        Root {
            fd,
            use_openat2: AtomicBool::new(false),
        }
    }

    /// The directory `components` name, resolved inside the root, as an `O_PATH` descriptor.
    /// A missing directory is `ENOENT`; a component that is not a directory, `ENOTDIR`.
    pub(crate) fn open_dir(&self, components: &[&[u8]]) -> rustix::io::Result<OwnedFd> {
        if self.use_openat2.load(Ordering::Relaxed) {
            let path = join(components);
            match rustix::fs::openat2(
                &self.fd,
                path.as_slice(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::NOSYS) => self.use_openat2.store(false, Ordering::Relaxed),
                // The kernel retries a resolution that raced a rename; so do we. Where the
                // kernel finds nothing, the walk may: it cleans symlink targets lexically.
                Err(Errno::AGAIN | Errno::NOENT) => {}
                other => return other,
            }
        }
        walk(&self.fd, components, false)
    }

    /// [`Root::open_dir`], creating missing directories (mode 0755 less the umask) on the
    /// way, wherever the walk leads inside the root: through a symlink whose target does not
    /// exist yet, its target's directories are created.
    pub(crate) fn create_dir_all(&self, components: &[&[u8]]) -> rustix::io::Result<OwnedFd> {
        match self.open_dir(components) {
            Err(Errno::NOENT) => walk(&self.fd, components, true),
            other => other,
        }
    }
}

/// Resolves `components` below `root` one at a time, as `RESOLVE_IN_ROOT` does; with
/// `create`, a missing component is created as a directory.
pub(crate) fn walk(
    root: &OwnedFd,
    components: &[&[u8]],
    create: bool,
) -> rustix::io::Result<OwnedFd> {
    let mut pending: VecDeque<Vec<u8>> = components.iter().map(|c| c.to_vec()).collect();
    let mut stack: Vec<OwnedFd> = vec![reopen(root)?];
    let mut symlinks = 0;
    while let Some(component) = pending.pop_front() {
        match component.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let current = stack.last().expect("the stack always holds the root");
        let opened = match open_nofollow(current, &component) {
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(
                    current,
                    component.as_slice(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                open_nofollow(current, &component)?
            }
            other => other?,
        };
        let stat = rustix::fs::fstat(&opened)?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => stack.push(opened),
            FileType::Symlink => {
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(Errno::LOOP);
                }
                let target = rustix::fs::readlinkat(&opened, c"", Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    stack.truncate(1);
                }
                for part in clean_link_target(target).into_iter().rev() {
                    pending.push_front(part.to_vec());
                }
            }
            _ => return Err(Errno::NOTDIR),
        }
    }
    Ok(stack.pop().expect("the stack always holds the root"))
}

/// A symlink's target with `NAME/..` pairs removed lexically, as Go's `filepath.Clean` in
/// containerd's resolution does (`missing/../etc` is `etc`); leading `..` are kept, for the
/// walk to apply (never above the root).
fn clean_link_target(target: &[u8]) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|last| *last != b"..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts
}

fn open_nofollow(dir: &OwnedFd, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn reopen(dir: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `components` joined with `/` (empty: `.`).
pub(crate) fn join(components: &[&[u8]]) -> Vec<u8> {
    if components.is_empty() {
        return b".".to_vec();
    }
    let mut path = Vec::with_capacity(components.iter().map(|c| c.len() + 1).sum());
    for (i, component) in components.iter().enumerate() {
        if i > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(component);
    }
    path
}

/// Opens `name` in `dir` for reading its entries, never following a symlink.
pub(crate) fn open_dir_nofollow(dir: impl AsFd, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The names in the directory `dir` (a readable descriptor), `.` and `..` left out.
pub(crate) fn list(dir: impl AsFd) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Removes `name` from `dir`, a directory with everything in it; never follows a symlink
/// (a symlink is removed, not what it points at). A missing `name` is not an error.
pub(crate) fn remove_tree(dir: impl AsFd, name: &[u8]) -> rustix::io::Result<()> {
    let dir = dir.as_fd();
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        // unlink of a directory: EISDIR on Linux (EPERM elsewhere).
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let child = match open_dir_nofollow(dir, name) {
        Ok(child) => child,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for grandchild in list(&child)? {
        remove_tree(&child, &grandchild)?;
    }
    drop(child);
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::symlink;

    use super::*;

    fn identity(fd: &OwnedFd) -> (u64, u64) {
        let stat = rustix::fs::fstat(fd).unwrap();
        (stat.st_dev, stat.st_ino)
    }

    fn root_path(tmp: &tempfile::TempDir) -> std::path::PathBuf {
        tmp.path().join("root")
    }

    fn open(path: &std::path::Path) -> OwnedFd {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// The component walk (the fallback for kernels without `openat2`) resolves every path
    /// `RESOLVE_IN_ROOT` resolves as it does: symlinks up and out, absolute ones, `..` past
    /// the root, chains, loops, a file in the middle; and where the kernel finds nothing
    /// because a symlink's target goes through a missing directory, the walk cleans the
    /// target lexically.
    #[test]
    fn the_walk_resolves_as_openat2_in_root_does() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::create_dir_all(tmp.path().join("outside/sub")).unwrap();
        std::fs::write(root.join("file"), "").unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../etc", root.join("up")).unwrap();
        symlink("../outside", root.join("out")).unwrap();
        symlink("/abs/sub", root.join("chain")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("/nowhere", root.join("dangling")).unwrap();
        let cases: &[&[&[u8]]] = &[
            &[],
            &[b"etc"],
            &[b"abs"],
            &[b"abs", b"sub"],
            &[b"up", b"sub"],
            &[b"..", b"..", b"etc"],
            &[b"out"],
            &[b"chain", b"..", b".."],
            &[b"loop"],
            &[b"dangling"],
            &[b"file"],
            &[b"file", b"x"],
        ];
        let with_openat2 = Root::new(open(&root));
        let walking = Root::without_openat2(open(&root));
        for case in cases {
            let expected = with_openat2.open_dir(case).map(|fd| identity(&fd));
            let walked = walking.open_dir(case).map(|fd| identity(&fd));
            assert_eq!(
                walked,
                expected,
                "{:?}",
                join(case).escape_ascii().to_string()
            );
        }
        symlink("missing/../../etc", root.join("through-missing")).unwrap();
        assert_eq!(
            rustix::fs::openat2(
                open(&root),
                "through-missing",
                OFlags::PATH,
                Mode::empty(),
                ResolveFlags::IN_ROOT
            )
            .err(),
            Some(Errno::NOENT)
        );
        for root in [&with_openat2, &walking] {
            let fd = root.open_dir(&[b"through-missing", b"sub"]).unwrap();
            assert_eq!(
                identity(&fd),
                identity(&open(&root_path(&tmp).join("etc/sub")))
            );
        }
        // What a symlink out of the root reaches is the root's own directory of that name.
        let out = walking.open_dir(&[b"up", b"sub"]).unwrap();
        assert_eq!(identity(&out), identity(&open(&root.join("etc/sub"))));
        // Creating through a dangling absolute symlink creates its target inside the root.
        walking.create_dir_all(&[b"dangling", b"x"]).unwrap();
        assert!(root.join("nowhere/x").is_dir());
        assert!(!std::path::Path::new("/nowhere").exists());
    }
}
