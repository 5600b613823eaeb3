//! The directory an unpack fills: missing, empty, or refused.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, RenameFlags};

use super::confined;
use crate::{Error, Result};

/// Where an unpack writes until it is done, and how it is made visible.
///
/// - A missing directory is built in a new directory beside it (`.NAME.unpack-PID-N`, in
///   the same parent so the final rename stays on one filesystem) and renamed into place by
///   [`UnpackTarget::publish`]: until then nothing is at the target's path, so a killed
///   unpack leaves no directory there (only the temporary one, which a later unpack does not
///   mistake for a result).
/// - An existing empty directory is filled in place: it keeps its inode, owner, mode and
///   attributes. Dropped without being published, it is emptied again.
/// - Anything else (a non-empty directory, a file) is refused before anything is written.
#[derive(Debug)]
pub struct UnpackTarget {
    /// Where the content goes.
    work: PathBuf,
    /// The path asked for, where a missing target is renamed to.
    target: PathBuf,
    in_place: bool,
    published: bool,
}

impl UnpackTarget {
    /// Checks `target` and prepares the directory to write into.
    pub fn prepare(target: &Path) -> Result<UnpackTarget> {
        match fs::symlink_metadata(target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(target, e)),
            Ok(_) => {
                let mut entries = fs::read_dir(target).map_err(|e| Error::io(target, e))?;
                if entries.next().is_some() {
                    return Err(Error::Source {
                        path: target.to_owned(),
                        reason: "not empty: an unpack needs a missing or empty directory".into(),
                    });
                }
                return Ok(UnpackTarget {
                    work: target.to_owned(),
                    target: target.to_owned(),
                    in_place: true,
                    published: false,
                });
            }
        }
        let name = target.file_name().ok_or_else(|| Error::Source {
            path: target.to_owned(),
            reason: "names no directory (it ends in `..` or is a root)".into(),
        })?;
        let parent = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut attempt = 0u32;
        loop {
            let mut work_name = OsString::from(".");
            work_name.push(name);
            work_name.push(format!(".unpack-{}-{attempt}", std::process::id()));
            let work = parent.join(work_name);
            // 0777 less the umask: the mode a `mkdir` of the target would have given it.
            match fs::DirBuilder::new().mode(0o777).create(&work) {
                Ok(()) => {
                    return Ok(UnpackTarget {
                        work,
                        target: target.to_owned(),
                        in_place: false,
                        published: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1;
                }
                Err(e) => return Err(Error::io(parent, e)),
            }
        }
    }

    /// The directory to write into.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// Makes the result visible: syncs its filesystem once when `durable`, then renames a
    /// new directory into place (refusing to replace anything that appeared at the target
    /// meanwhile).
    pub fn publish(mut self, durable: bool) -> Result<()> {
        if durable {
            let dir = fs::File::open(&self.work).map_err(|e| Error::io(&self.work, e))?;
            rustix::fs::syncfs(&dir).map_err(|e| Error::io(&self.work, e.into()))?;
        }
        if !self.in_place {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &self.work,
                rustix::fs::CWD,
                &self.target,
                RenameFlags::NOREPLACE,
            )
            .map_err(|e| Error::io(&self.target, e.into()))?;
            if durable {
                let parent = match self.target.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                };
                fs::File::open(parent)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|e| Error::io(parent, e))?;
            }
        }
        self.published = true;
        Ok(())
    }
}

impl Drop for UnpackTarget {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        if self.in_place {
            // Emptied, not removed: the directory was the caller's.
            if let Ok(dir) = rustix::fs::open(
                &self.work,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) && let Ok(names) = confined::list(&dir)
            {
                for name in names {
                    let _ = confined::remove_tree(&dir, &name);
                }
            }
        } else if let Some((name, parent)) = self
            .work
            .file_name()
            .map(|name| (name, self.work.parent().unwrap_or(Path::new("."))))
        {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            if let Ok(dir) = rustix::fs::open(
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                // Best effort: a failure here must not hide the one that got us here.
                let _ = confined::remove_tree(&dir, std::os::unix::ffi::OsStrExt::as_bytes(name));
            }
        }
    }
}
