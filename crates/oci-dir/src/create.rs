//! Creating a layout whole: built in a staging directory beside the root, then renamed to it.
//!
//! `rename(2)` of a directory onto a missing name, or onto an empty directory, is atomic: a
//! crash leaves either no layout at the root (and a staging directory, swept by the next
//! create) or a complete one.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_core::{Error, Result, seed};

use crate::fsio;
use crate::layout::DirLayout;

/// What follows `.<name>` in the name of a staging directory, before its random part.
pub const STAGING_MARKER: &str = ".oci-layout-new-";

/// How often a staging directory swept away by another process between its creation and its
/// lock is made again before giving up.
const ATTEMPTS: usize = 8;

/// Builds `layout` (whose root is canonical, missing or an empty directory, and has a file
/// name) in a staging directory and renames it to the root, giving it `permissions` (those of
/// the empty directory it replaces). `Ok(false)` when it cannot be done this way (the parent
/// is not writable, the root is a mount point) and the caller should create in place.
pub(crate) fn create_by_rename(
    layout: &DirLayout,
    permissions: Option<Permissions>,
    init: &seed::InitOptions,
) -> Result<bool> {
    let root = layout.root();
    let Some(name) = root.file_name() else {
        return Ok(false);
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(STAGING_MARKER);
    let parent = fsio::parent_of(root);
    fsio::create_dir(parent, layout.durable())?;
    sweep_stale(parent, &prefix);
    // What cannot be made beside the root (in `/proc`, say) cannot be made at all: the root
    // is what the message must name.
    let staging = Staging::create(parent, &prefix).map_err(|e| match e {
        Error::Io { source, .. } => Error::Io {
            path: root.to_path_buf(),
            source: io::Error::new(source.kind(), format!("cannot be created: {source}")),
        },
        other => other,
    })?;
    let Some(mut staging) = staging else {
        return Ok(false);
    };

    let staged = DirLayout::at(&staging.path, layout.options())?;
    // Files and the directories naming them are synced as they are written (when durable).
    seed::init(&staged, init)?;
    if layout.durable() {
        fsio::sync_dir(&staging.path)?;
    }
    if let Some(permissions) = permissions {
        staging
            .lock
            .set_permissions(permissions)
            .map_err(|e| Error::io(&staging.path, e))?;
    }
    match fs::rename(&staging.path, root) {
        Ok(()) => staging.armed = false,
        // A mount point cannot be replaced.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(false),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOTDIR)
            ) =>
        {
            return Err(Error::InvalidLayout {
                path: root.to_path_buf(),
                reason: format!(
                    "was filled by another process while a layout was built beside it ({e}): \
                     refusing to initialise over it"
                ),
            });
        }
        Err(e) => return Err(Error::io(root, e)),
    }
    if layout.durable() {
        fsio::sync_dir(parent)?;
    }
    Ok(true)
}

/// Removes the staging directories (`prefix*`) in `parent` whose lock can be taken: their
/// builder died. Best effort: what cannot be listed, locked or removed stays for a later run.
fn sweep_stale(parent: &Path, prefix: &OsStr) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        // A directory, not a link to one.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if dir.try_lock().is_ok() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// A locked staging directory, removed on drop unless it was renamed.
struct Staging {
    path: PathBuf,
    /// The directory itself, `flock`ed for as long as it is built.
    lock: File,
    armed: bool,
}

impl Staging {
    /// Creates `parent/prefix<random>` (mode from the umask) and locks it. `None` when the
    /// parent is not writable.
    fn create(parent: &Path, prefix: &OsStr) -> Result<Option<Staging>> {
        for _ in 0..ATTEMPTS {
            let made = tempfile::Builder::new()
                .prefix(prefix)
                .rand_bytes(12)
                .disable_cleanup(true)
                .make_in(parent, |path| fs::create_dir(path));
            let path = match made {
                Ok(made) => made.path().to_path_buf(),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
                Err(e) => return Err(Error::io(parent, e)),
            };
            let Ok(lock) = File::open(&path) else {
                // Swept by another create before it could be opened.
                continue;
            };
            let mut staging = Staging {
                path,
                lock,
                armed: true,
            };
            staging
                .lock
                .lock()
                .map_err(|e| Error::io(&staging.path, e))?;
            // Another create may have swept it between its creation and the lock: go on only
            // if the name still leads to the directory locked.
            let locked = staging
                .lock
                .metadata()
                .map_err(|e| Error::io(&staging.path, e))?;
            let same = fs::symlink_metadata(&staging.path)
                .is_ok_and(|now| now.dev() == locked.dev() && now.ino() == locked.ino());
            if same {
                return Ok(Some(staging));
            }
            // Gone already; the name is not ours any more.
            staging.armed = false;
        }
        Err(Error::InvalidLayout {
            path: parent.to_path_buf(),
            reason: format!(
                "staging directories {}* kept disappearing: another process removes them",
                prefix.to_string_lossy()
            ),
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            // Still locked: no other create sweeps it while it goes.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
