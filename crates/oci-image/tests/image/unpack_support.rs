//! Layers written byte by byte (so that names no well-behaved writer produces, `..`,
//! absolute, `.`, PAX records that contradict the header, can be tested), images of them in
//! memory, a sandbox with a canary tree beside the target, and snapshots of trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use oci_core::oci_spec::image::{Descriptor, MediaType};
use oci_core::{Algorithm, MemoryStore, Store};
use oci_image::{ImageBuilder, Layer, ResolvedImage, platform, resolve_image};

/// One tar entry.
pub struct Entry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    mode: u32,
    content: Vec<u8>,
    pax: Vec<(String, Vec<u8>)>,
    /// A size for the ustar header other than the content's.
    header_size: Option<u64>,
    device: (u32, u32),
    mtime: u64,
    owner: (u64, u64),
}

impl Entry {
    fn new(name: impl AsRef<[u8]>, kind: u8, mode: u32) -> Entry {
        Entry {
            name: name.as_ref().to_vec(),
            kind,
            link: Vec::new(),
            mode,
            content: Vec::new(),
            pax: Vec::new(),
            header_size: None,
            device: (0, 0),
            mtime: 1_600_000_000,
            owner: (0, 0),
        }
    }

    /// Whether the entry's name ends in a whiteout (`.wh.` anything).
    pub fn is_whiteout(&self) -> bool {
        self.name
            .rsplit(|&b| b == b'/')
            .find(|c| !c.is_empty())
            .is_some_and(|last| last.starts_with(b".wh."))
    }

    pub fn with_pax(mut self, key: &str, value: impl AsRef<[u8]>) -> Entry {
        self.pax.push((key.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn with_header_size(mut self, size: u64) -> Entry {
        self.header_size = Some(size);
        self
    }

    pub fn with_mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    pub fn with_owner(mut self, uid: u64, gid: u64) -> Entry {
        self.owner = (uid, gid);
        self
    }
}

pub fn dir(name: impl AsRef<[u8]>, mode: u32) -> Entry {
    Entry::new(name, b'5', mode)
}

pub fn file(name: impl AsRef<[u8]>, content: impl AsRef<[u8]>, mode: u32) -> Entry {
    let mut entry = Entry::new(name, b'0', mode);
    entry.content = content.as_ref().to_vec();
    entry
}

/// A symlink `name` -> `target` (containerd's `tc.Symlink(target, name)` order reversed).
pub fn symlink_entry(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
    let mut entry = Entry::new(name, b'2', 0o777);
    entry.link = target.as_ref().to_vec();
    entry
}

/// A hard link `name` to `target`.
pub fn link(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
    let mut entry = Entry::new(name, b'1', 0o644);
    entry.link = target.as_ref().to_vec();
    entry
}

pub fn fifo(name: impl AsRef<[u8]>, mode: u32) -> Entry {
    Entry::new(name, b'6', mode)
}

pub fn char_device(name: impl AsRef<[u8]>, mode: u32, major: u32, minor: u32) -> Entry {
    let mut entry = Entry::new(name, b'3', mode);
    entry.device = (major, minor);
    entry
}

/// A whiteout or any other empty regular file.
pub fn empty(name: impl AsRef<[u8]>) -> Entry {
    file(name, b"", 0o644)
}

fn octal(field: &mut [u8], value: u64) {
    let last = field.len() - 1;
    let digits = format!("{value:0last$o}");
    field[..last].copy_from_slice(digits.as_bytes());
    field[last] = 0;
}

/// A ustar header with the fields as given, names copied as bytes (no checks).
fn header(name: &[u8], kind: u8, link: &[u8], mode: u32, size: u64, entry: &Entry) -> [u8; 512] {
    let mut block = [0u8; 512];
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "use PAX for long names"
    );
    block[..name.len()].copy_from_slice(name);
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], entry.owner.0);
    octal(&mut block[116..124], entry.owner.1);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], entry.mtime);
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], u64::from(entry.device.0));
    octal(&mut block[337..345], u64::from(entry.device.1));
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    octal(&mut block[148..155], u64::from(sum));
    block[155] = b' ';
    block
}

fn pad(out: &mut Vec<u8>) {
    let rest = out.len() % 512;
    if rest != 0 {
        out.resize(out.len() + 512 - rest, 0);
    }
}

/// A tar stream of `entries`, ended with two zero blocks.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        if !entry.pax.is_empty() {
            let mut records = Vec::new();
            for (key, value) in &entry.pax {
                let body_len = key.len() + value.len() + 3;
                let mut len = body_len + 1;
                while format!("{len}").len() + body_len != len {
                    len += 1;
                }
                records.extend_from_slice(format!("{len} {key}=").as_bytes());
                records.extend_from_slice(value);
                records.push(b'\n');
            }
            out.extend_from_slice(&header(
                b"PaxHeaders/x",
                b'x',
                b"",
                0o644,
                records.len() as u64,
                entry,
            ));
            out.extend_from_slice(&records);
            pad(&mut out);
        }
        let size = entry.header_size.unwrap_or(entry.content.len() as u64);
        out.extend_from_slice(&header(
            &entry.name,
            entry.kind,
            &entry.link,
            entry.mode,
            size,
            entry,
        ));
        out.extend_from_slice(&entry.content);
        pad(&mut out);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// Stores uncompressed `layers` and an image of them in `store`; returns it resolved.
pub fn image_of(store: &MemoryStore, layers: &[Vec<u8>]) -> ResolvedImage {
    let mut builder = ImageBuilder::new(store, &platform::parse("linux/amd64").unwrap());
    for bytes in layers {
        let digest = store.write_blob(Algorithm::Sha256, bytes).unwrap();
        let layer = Layer {
            descriptor: Descriptor::new(MediaType::ImageLayer, bytes.len() as u64, digest),
            diff_id: digest,
            uncompressed_size: bytes.len() as u64,
            skipped: Vec::new(),
        };
        builder.add_layer(&layer, "test");
    }
    let manifest = builder.write().unwrap();
    resolve_image(store, manifest.digest().as_ref(), None).unwrap()
}

/// A temporary directory holding a canary tree (`canary/`) beside the target (`dir`, not
/// created).
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        fs::create_dir_all(canary.join("dir/sub")).unwrap();
        fs::write(canary.join("file"), "canary").unwrap();
        fs::write(canary.join("dir/sub/deep"), "deep canary").unwrap();
        fs::write(canary.join("perm400"), "...").unwrap();
        fs::set_permissions(canary.join("perm400"), fs::Permissions::from_mode(0o400)).unwrap();
        fs::write(canary.join("also-exists-outside-root"), "...").unwrap();
        fs::set_permissions(
            canary.join("also-exists-outside-root"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        fs::set_permissions(canary.join("dir"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("file", canary.join("link")).unwrap();
        // Old times, so that a change shows.
        for path in ["file", "dir/sub/deep", "dir/sub", "dir", "perm400", ""] {
            let path = canary.join(path);
            let old = fs::FileTimes::new()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000));
            fs::File::open(&path).unwrap().set_times(old).unwrap();
        }
        Sandbox { tmp }
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("dir")
    }

    pub fn canary(&self) -> PathBuf {
        self.tmp.path().join("canary")
    }

    /// Everything in the sandbox but the target.
    pub fn outside(&self) -> Snapshot {
        let mut snapshot = snapshot(self.tmp.path());
        snapshot.retain(|path, _| !(path == Path::new("dir") || path.starts_with("dir/")));
        snapshot
    }
}

/// What a tree holds: per path, its type, mode, owner, size, content, link target, mtime.
pub type Snapshot = BTreeMap<PathBuf, String>;

pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, relative: &Path, out: &mut Snapshot) {
    let mut names: Vec<_> = fs::read_dir(root.join(relative))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let path = relative.join(&name);
        let full = root.join(&path);
        let meta = fs::symlink_metadata(&full).unwrap();
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            "dir".to_owned()
        } else if kind.is_symlink() {
            format!(
                "symlink -> {}",
                fs::read_link(&full).unwrap().as_os_str().to_string_lossy()
            )
        } else if kind.is_file() {
            format!(
                "file {:?}",
                String::from_utf8_lossy(&fs::read(&full).unwrap())
            )
        } else if kind.is_fifo() {
            "fifo".to_owned()
        } else if kind.is_char_device() {
            format!("char {}", meta.rdev())
        } else {
            "other".to_owned()
        };
        let mtime = if kind.is_dir() {
            // A directory's mtime is checked only outside the target, where nothing may
            // change; inside, it is asserted where it matters.
            meta.mtime().to_string()
        } else {
            format!("{}.{}", meta.mtime(), meta.mtime_nsec())
        };
        out.insert(
            path.clone(),
            format!(
                "{what} mode {:o} owner {}:{} mtime {mtime}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            ),
        );
        if kind.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// `path` resolved inside `root` as the container would see it (every symlink, the last
/// one too, resolved with `root` as `/`): its device and inode.
pub fn identity_in_root(root: &Path, path: &str) -> Option<(u64, u64)> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root_fd: OwnedFd =
        rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).ok()?;
    let fd = rustix::fs::openat2(
        &root_fd,
        path.trim_start_matches('/'),
        OFlags::PATH,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .ok()?;
    let stat = rustix::fs::fstat(&fd).ok()?;
    Some((stat.st_dev, stat.st_ino))
}

/// The bytes of an absolute path, for entry names.
pub fn bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}
