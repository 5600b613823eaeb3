//! Creating a layout in place, safe against crashes and concurrent creators.
//!
//! What makes a directory a layout is its `oci-layout` file. A creator decides what the
//! directory is under the directory's lock (the `flock` index updates take): a layout (it is
//! opened, not created), missing or empty (it is created), one left unfinished (see below),
//! or anything else that is not empty, which is not ours and is refused. It then fills the
//! directory in place, so the directory keeps its inode, owner, mode, extended attributes and
//! ACLs: first a marker file, [`INIT_MARKER`], which it keeps `flock`ed, then `blobs/` and
//! `index.json`, then whatever its caller puts in (an unpack's blobs and index), then
//! `oci-layout`, and it removes the marker last. Each step is synced before the next when
//! durable.
//!
//! - Readers refuse a directory that holds the marker ([`DirLayout::open`]): a layout being
//!   created, or whose creator was killed, is never opened.
//! - A concurrent creator finds the marker locked, waits for its lock, and looks again: it
//!   then opens the layout the other made (or, if that one failed and cleaned up, creates).
//! - A marker whose lock can be taken, and that is still the file at its name, was left by a
//!   creator that died: a directory that holds only it and our own files is reset and finished
//!   by the next creator; with anything else in it, it is refused. (A creator removes the
//!   marker before it lets go of its lock: a lock taken on a marker that is gone, or replaced,
//!   since it was opened was let go by a creator that finished, and the directory is looked
//!   at again.)
//! - A creator that fails removes what it wrote, and the directories it made (the root
//!   included), so a failed create leaves the directory as it found it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_core::{
    BLOBS_DIR, CACHE_DIR, Error, IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFiles, Result, index, seed,
};

use crate::blob_writer::TEMP_PREFIX;
use crate::fsio;
use crate::layout::DirLayout;

/// The file that marks a directory as a layout being created (or whose creation was
/// interrupted): written first, removed last.
pub const INIT_MARKER: &str = ".oci-layout-init";

const MARKER_TEXT: &[u8] =
    b"being initialised by oci-layout: not a layout until this file is gone\n";

/// How often a creator looks again after the directory went or changed under it (a creator
/// that failed removed the directory it had made) before giving up.
const ATTEMPTS: usize = 64;

/// What a creator found at the root.
pub(crate) enum Prepared {
    /// A finished layout.
    Layout(DirLayout),
    /// A directory this creator now fills.
    New(Creator),
}

/// A layout being created: holds the marker's lock until finished, and removes what it wrote
/// if dropped before.
pub(crate) struct Creator {
    layout: DirLayout,
    /// The marker, locked; `None` once finished.
    marker: Option<File>,
    /// The directories this creator made, outermost first.
    made: Vec<PathBuf>,
}

/// Looks at `layout`'s root under its lock and, unless it is a finished layout, starts
/// creating one there (see the module's documentation).
pub(crate) fn prepare(layout: DirLayout) -> Result<Prepared> {
    let root = layout.root().to_path_buf();
    let durable = layout.durable();
    let mut made = Vec::new();
    for _ in 0..ATTEMPTS {
        make_missing(&root, durable, &mut made)?;
        let Some(dir_lock) = lock_dir(&root)? else {
            continue;
        };
        let marker = match survey(&root)? {
            Survey::Layout => return Ok(Prepared::Layout(layout)),
            Survey::Foreign(name) => return Err(not_ours(&root, &name)),
            Survey::Empty => write_marker(&root, durable)?,
            Survey::Unfinished => {
                let marker_path = root.join(INIT_MARKER);
                let marker = match fsio::open_regular(&marker_path, None) {
                    Ok(marker) => marker,
                    // Its creator finished (or failed) since the survey: look again.
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => return Err(e),
                };
                match marker.try_lock() {
                    // A creator removes the marker before it lets go of its lock: a lock we
                    // get on a marker no longer at its name was let go by one that finished
                    // since we opened it, not by one that died. Look again.
                    Ok(()) if !still_named(&marker, &marker_path)? => continue,
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => {
                        // Being created: wait for its creator to finish or fail, then look
                        // again (without the directory's lock, which it may need meanwhile).
                        drop(dir_lock);
                        marker.lock().map_err(|e| Error::io(&marker_path, e))?;
                        continue;
                    }
                    Err(fs::TryLockError::Error(e)) => return Err(Error::io(&marker_path, e)),
                }
                // Its creator died: ours to finish, from the start.
                if let Some(name) = fsio::list_dir_all(&root)?
                    .into_iter()
                    .find(|name| !is_ours(name))
                {
                    return Err(Error::InvalidLayout {
                        location: root.into(),
                        reason: format!(
                            "holds an unfinished layout ({INIT_MARKER}) and {name:?}, which is \
                             not part of one: refusing to write into it"
                        ),
                    });
                }
                remove_ours(&root, false)?;
                marker
            }
        };
        return Ok(Prepared::New(Creator {
            layout,
            marker: Some(marker),
            made,
        }));
    }
    Err(Error::InvalidLayout {
        location: root.into(),
        reason: "kept disappearing while a layout was created in it: another process removes it"
            .into(),
    })
}

impl Creator {
    /// The layout being created (not openable by others until finished).
    pub(crate) fn layout(&self) -> &DirLayout {
        &self.layout
    }

    /// Writes `blobs/` and, unless the options skip it, an empty `index.json`.
    pub(crate) fn begin(&self, init: &seed::InitOptions) -> Result<()> {
        self.layout.create_blobs_dir()?;
        if !init.skip_create_index {
            seed::write_index(&self.layout, &index::empty_index())?;
        }
        Ok(())
    }

    /// Writes `oci-layout` (unless the options skip it), then removes the marker: from then on
    /// the directory is a layout.
    pub(crate) fn finish(mut self, init: &seed::InitOptions) -> Result<DirLayout> {
        let root = self.layout.root().to_path_buf();
        if !init.skip_create_image_layout {
            let version = init
                .image_layout_version
                .as_deref()
                .unwrap_or(seed::IMAGE_LAYOUT_VERSION);
            seed::write_image_layout(&self.layout, &seed::image_layout(version))?;
        }
        let marker = root.join(INIT_MARKER);
        fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        // A layout from here on, whatever follows; its lock goes last, so creators waiting
        // for it find the layout.
        let _unlocked_last = self.marker.take();
        if self.layout.durable() {
            fsio::sync_dir(&root)?;
        }
        Ok(self.layout.clone())
    }
}

impl Drop for Creator {
    fn drop(&mut self) {
        if self.marker.is_none() {
            return;
        }
        // Unfinished: a failure. Best effort; what stays keeps the marker (removed last), so it
        // is never taken for a layout, and the next creator resets it.
        if remove_ours(self.layout.root(), true).is_err() {
            return;
        }
        for dir in self.made.iter().rev() {
            // Fails, and stays, if another process put something in it meanwhile.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// What a directory holds, as far as creating a layout in it goes.
enum Survey {
    /// `oci-layout` and no marker.
    Layout,
    /// Nothing.
    Empty,
    /// The marker.
    Unfinished,
    /// Something that is not a layout: the name of one such thing.
    Foreign(String),
}

fn survey(root: &Path) -> Result<Survey> {
    let names = fsio::list_dir_all(root)?;
    Ok(if names.iter().any(|n| n == INIT_MARKER) {
        Survey::Unfinished
    } else if names.iter().any(|n| n == IMAGE_LAYOUT_FILE) {
        Survey::Layout
    } else if let Some(name) = names.into_iter().next() {
        Survey::Foreign(name)
    } else {
        Survey::Empty
    })
}

fn not_ours(root: &Path, name: &str) -> Error {
    Error::InvalidLayout {
        location: root.into(),
        reason: format!(
            "not empty ({name:?}) and not an OCI image layout (no {IMAGE_LAYOUT_FILE}): refusing \
             to write into it"
        ),
    }
}

/// Whether `name`, in a root, is one of the files a creator writes.
fn is_ours(name: &str) -> bool {
    [
        INIT_MARKER,
        BLOBS_DIR,
        INDEX_FILE,
        IMAGE_LAYOUT_FILE,
        CACHE_DIR,
    ]
    .contains(&name)
        || name.starts_with(TEMP_PREFIX)
}

/// Removes what a creator writes in `root` (the marker too, last, when `marker`).
fn remove_ours(root: &Path, marker: bool) -> Result<()> {
    for name in fsio::list_dir_all(root)? {
        if is_ours(&name) && name != INIT_MARKER {
            remove_any(&root.join(name))?;
        }
    }
    if marker {
        remove_any(&root.join(INIT_MARKER))?;
    }
    Ok(())
}

/// Removes a file, or a directory and what it holds; a link is removed, not followed.
fn remove_any(path: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Makes `root` and its missing parents; adds those it made to `made`. A directory another
/// process makes meanwhile is not this one's.
fn make_missing(root: &Path, durable: bool, made: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = root;
    loop {
        match fs::symlink_metadata(current) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(current),
            Err(e) => return Err(Error::io(current, e)),
        }
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => {
                if durable {
                    fsio::sync_dir(fsio::parent_of(dir))?;
                }
                made.push(dir.to_path_buf());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
    Ok(())
}

/// Opens the directory `root` and takes its lock; `None` when, by then, the name is gone or
/// names another directory (a failed creator removed the one it made).
fn lock_dir(root: &Path) -> Result<Option<File>> {
    let flags = libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let dir = match OpenOptions::new().read(true).custom_flags(flags).open(root) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
            return Err(Error::InvalidLayout {
                location: root.into(),
                reason: "not a directory".into(),
            });
        }
        Err(e) => return Err(Error::io(root, e)),
    };
    dir.lock().map_err(|e| Error::io(root, e))?;
    let locked = dir.metadata().map_err(|e| Error::io(root, e))?;
    let same = fs::symlink_metadata(root)
        .is_ok_and(|now| now.dev() == locked.dev() && now.ino() == locked.ino());
    Ok(same.then_some(dir))
}

/// Whether `file` is still the file named `path` (not removed, nor replaced, since it was
/// opened).
fn still_named(file: &File, path: &Path) -> Result<bool> {
    let opened = file.metadata().map_err(|e| Error::io(path, e))?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == opened.dev() && now.ino() == opened.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes the marker into the empty `root` and locks it.
fn write_marker(root: &Path, durable: bool) -> Result<File> {
    let path = root.join(INIT_MARKER);
    let mut marker = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    // No one else has it open yet: taken at once.
    marker.lock().map_err(|e| Error::io(&path, e))?;
    marker
        .write_all(MARKER_TEXT)
        .map_err(|e| Error::io(&path, e))?;
    if durable {
        marker.sync_all().map_err(|e| Error::io(&path, e))?;
        fsio::sync_dir(root)?;
    }
    Ok(marker)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Barrier;

    use oci_core::{Algorithm, ContentKind, Store};

    use crate::{DirLayout, DirOptions, Durability};

    /// Creators of one new layout, started together, each filling it with a blob of its own
    /// (as concurrent unpacks into a missing directory do): every one succeeds, with the same
    /// layout, and every blob is there at the end. A creator that opened the marker just as
    /// its creator finished used to take the lock it then got for that of a creator that died,
    /// and reset the finished layout.
    #[test]
    fn creators_racing_for_one_directory_all_end_with_the_same_layout() {
        const CREATORS: usize = 8;
        const ROUNDS: usize = 500;
        let options = DirOptions {
            durability: Durability::Relaxed,
            ..DirOptions::default()
        };
        for round in 0..ROUNDS {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("layout");
            let start = Barrier::new(CREATORS);
            let written: Vec<_> = std::thread::scope(|scope| {
                let creators: Vec<_> = (0..CREATORS)
                    .map(|i| {
                        let (root, start) = (&root, &start);
                        scope.spawn(move || {
                            start.wait();
                            DirLayout::open_or_create_then(root, options, |layout| {
                                layout.write_blob(
                                    Algorithm::Sha256,
                                    format!("round {round}, creator {i}").as_bytes(),
                                )
                            })
                        })
                    })
                    .collect();
                creators.into_iter().map(|c| c.join().unwrap()).collect()
            });
            let layout = DirLayout::open(&root).unwrap();
            for result in written {
                let (_, digest) = result.unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert!(
                    layout.contains(ContentKind::Blob, digest).unwrap(),
                    "round {round}: {digest} went"
                );
            }
        }
    }
}
