//! Filesystem primitives with the guarantees the layout needs: no symlink followed at the last
//! component, only regular files opened, and fsync of files and directories on demand.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_core::{Digest, Error, Result};
use rustix::fs::OFlags;

/// Opens an existing regular file for reading without following a symlink at `path` and
/// without blocking on a FIFO; anything that is not a regular file is refused.
pub fn open_regular(path: &Path, digest: Option<Digest>) -> Result<File> {
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags as i32)
        .open(path)
        .map_err(|e| classify(path, digest, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
    if !metadata.is_file() {
        return Err(not_regular(path));
    }
    Ok(file)
}

/// Reads a whole regular file (as [`open_regular`] opens it) of at most `limit` bytes, into a
/// buffer sized once from its length.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut file = open_regular(path, None)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    oci_core::read_bounded_sized(&mut file, limit, len, &path.into())
}

/// The size of a regular file at `path`, not following a symlink.
pub fn regular_size(path: &Path, digest: Option<Digest>) -> Result<u64> {
    let metadata = fs::symlink_metadata(path).map_err(|e| classify(path, digest, e))?;
    if !metadata.is_file() {
        return Err(not_regular(path));
    }
    Ok(metadata.len())
}

fn not_regular(path: &Path) -> Error {
    Error::InvalidLayout {
        location: path.into(),
        reason: "not a regular file (symlinks, FIFOs, devices and directories are refused)".into(),
    }
}

/// Maps an OS error on `path`: a missing file is [`Error::NotFound`]; a symlink refused by
/// `O_NOFOLLOW` is an invalid layout.
pub fn classify(path: &Path, digest: Option<Digest>, err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            location: path.into(),
            digest,
        },
        _ if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            not_regular(path)
        }
        _ => Error::io(path, err),
    }
}

/// A `.tmp-*` file in `dir` with mode `mode`, holding what `write` writes (through a 256 KiB
/// buffer) and synced when `durable`: the new version of a file about to replace another.
pub fn write_temp(
    dir: &Path,
    mode: u32,
    durable: bool,
    write: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new()
        .prefix(crate::TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let mut out = io::BufWriter::with_capacity(256 << 10, temp);
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(out.get_ref().path(), e))?;
    let temp = out
        .into_inner()
        .map_err(|e| Error::io(dir, e.into_error()))?;
    if durable {
        temp.as_file()
            .sync_all()
            .map_err(|e| Error::io(temp.path(), e))?;
    }
    Ok(temp)
}

/// Flushes a directory's entries (a created, renamed or removed name) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Fails unless `path`, once resolved, is inside `root` (itself canonical). A missing `path`
/// passes: nothing can escape through it.
pub fn ensure_within(root: &Path, path: &Path) -> Result<()> {
    if plainly_within(root, path) {
        return Ok(());
    }
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(root) => Ok(()),
        Ok(real) => Err(Error::InvalidLayout {
            location: path.into(),
            reason: format!(
                "resolves to {}, outside the layout root {}",
                real.display(),
                root.display()
            ),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The cheap case of [`ensure_within`], a few `lstat`s instead of a `readlink` per component
/// of the whole path (gc checks every blob it removes): `path` is `root` joined with plain
/// names, none of them a symlink, so it cannot lead out. `false` means "resolve it", not
/// "outside".
fn plainly_within(root: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(root) else {
        return false;
    };
    let mut current = root.to_path_buf();
    for component in rest.components() {
        let std::path::Component::Normal(name) = component else {
            return false;
        };
        current.push(name);
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => return false,
            Ok(_) => {}
            // Nothing further down exists, so nothing can lead out through it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => return false,
        }
    }
    true
}

/// Creates `dir` (and missing parents up to an existing one); when durable, syncs the parent so
/// the new name survives a crash. Returns the path.
pub fn create_dir(dir: &Path, durable: bool) -> Result<PathBuf> {
    match fs::create_dir(dir) {
        Ok(()) => {
            if durable {
                sync_dir(parent_of(dir))?;
            }
            Ok(dir.to_path_buf())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir.to_path_buf()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && dir.parent().is_some_and(|p| !p.as_os_str().is_empty()) =>
        {
            create_dir(parent_of(dir), durable)?;
            create_dir(dir, durable)
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The directory holding `path`; `.` for a bare relative name.
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The UTF-8 names in `dir` (others are not layout files and are skipped); empty when `dir`
/// does not exist.
pub fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every name in the directory `dir`, those that are not UTF-8 converted lossily (they are
/// never layout files, and are only named in messages).
pub fn list_dir_all(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
