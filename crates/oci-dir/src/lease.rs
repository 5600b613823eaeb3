//! Leases: how a writer tells gc that it is still writing, so that nothing it has written is
//! swept before it tags it (containerd protects content in flight the same way).
//!
//! A lease is a file in `.oci-layout-cache/leases/`, `flock`ed by its holder for as long as
//! it lives; its modification time is when it started. gc, under the layout's lock, sweeps
//! nothing modified after the start of the oldest lease whose lock is held. Every blob a
//! writer writes or re-puts is modified after its lease started (a re-put touches the blob),
//! so gc leaves it alone until the lease ends. A lease file whose lock can be taken was left
//! by a holder that died: it is a stray temp file that gc removes.
//!
//! A lease appears already locked (it is made as an anonymous `O_TMPFILE`, or a `.tmp-*` file
//! where there is none, locked, and only then linked under its name), and it is made under the layout's lock: so gc, which reads the
//! leases under that lock, sees every lease that was made before it started, and no lease that
//! it does not see can have written anything it judges.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_core::{CACHE_DIR, Error, Result, StrayFile, StrayKind};
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::fsio;
use crate::layout::DirLayout;

/// The directory of leases, inside [`CACHE_DIR`].
pub const LEASES_DIR: &str = "leases";

/// How much earlier than its lease file's modification time a lease is taken to start. Blobs
/// and the lease file get their times from the filesystem's clock, and one filesystem's can be
/// coarser than another's (a `blobs/` mounted inside the root, say): a blob written just after
/// the lease started must not look older than it.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// A writer's promise to gc, held until dropped: nothing written or re-put into the layout
/// while it lives is swept (see [`DirLayout::lease`]).
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    /// The layout's root.
    root: PathBuf,
    /// Locked while the lease lives; the lock goes when the file is closed.
    _file: File,
}

impl Lease {
    /// The lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Best effort: a lease file left behind is unlocked once closed, and gc removes it.
        let _ = fs::remove_file(&self.path);
        // And the directories, when empty, so that a lease leaves no trace: only under the
        // layout's lock, which is held wherever they are made and written into; when it is
        // taken (by a gc or an index update), empty directories stay, which is harmless.
        let Ok(root) = File::open(&self.root) else {
            return;
        };
        if root.try_lock().is_ok() {
            let cache = self.root.join(CACHE_DIR);
            let _ = fs::remove_dir(cache.join(LEASES_DIR));
            let _ = fs::remove_dir(cache);
        }
    }
}

/// `.oci-layout-cache/leases`, checked not to lead out of the root.
fn leases_dir(layout: &DirLayout) -> Result<PathBuf> {
    let dir = layout.root().join(CACHE_DIR).join(LEASES_DIR);
    fsio::ensure_within(layout.root(), &dir)?;
    Ok(dir)
}

/// Starts a lease on `layout`. Waits for a gc that is running to finish.
pub(crate) fn take(layout: &DirLayout) -> Result<Lease> {
    let dir = leases_dir(layout)?;
    let _lock = layout.lock()?;
    fsio::create_dir(&dir, false)?;
    let (file, named) = open_locked(&dir)?;
    // For whoever looks: who holds it.
    let mut writer = &file;
    writer
        .write_all(format!("pid {}\n", std::process::id()).as_bytes())
        .map_err(|e| Error::io(&dir, e))?;
    let path = link(&dir, &file, named.as_deref())?;
    // The temp name (where there is one) goes with `named`.
    Ok(Lease {
        path,
        root: layout.root().to_path_buf(),
        _file: file,
    })
}

/// A new file in `dir`, locked: anonymous where the filesystem allows it and `/proc` can name
/// it for the link, else a `.tmp-*` file (returned with its name, which goes when dropped).
fn open_locked(dir: &Path) -> Result<(File, Option<tempfile::TempPath>)> {
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    let anonymous = Path::new("/proc/self/fd")
        .is_dir()
        .then(|| rustix::fs::open(dir, flags, Mode::from_raw_mode(0o644)).ok())
        .flatten();
    let (file, named) = match anonymous {
        Some(fd) => (File::from(fd), None),
        None => {
            let (file, path) = tempfile::Builder::new()
                .prefix(crate::TEMP_PREFIX)
                .tempfile_in(dir)
                .map_err(|e| Error::io(dir, e))?
                .into_parts();
            (file, Some(path))
        }
    };
    file.lock().map_err(|e| Error::io(dir, e))?;
    Ok((file, named))
}

/// Gives the locked `file` (named `named`, when it has a name) a fresh random name in `dir`;
/// returns it.
fn link(dir: &Path, file: &File, named: Option<&Path>) -> Result<PathBuf> {
    let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    let (source, flags) = match named {
        Some(path) => (path, AtFlags::empty()),
        None => (Path::new(by_fd.as_str()), AtFlags::SYMLINK_FOLLOW),
    };
    let made = tempfile::Builder::new()
        .prefix("")
        .rand_bytes(16)
        .disable_cleanup(true)
        .make_in(dir, |path| {
            rustix::fs::linkat(rustix::fs::CWD, source, rustix::fs::CWD, path, flags)
                .map_err(io::Error::from)
        })
        .map_err(|e| Error::io(dir, e))?;
    Ok(made.path().to_path_buf())
}

/// A lease file, and whether its holder is alive (its lock is held).
struct Found {
    path: PathBuf,
    modified: Option<SystemTime>,
    live: bool,
}

/// Every lease file in the layout. Opens each to test its lock: no write.
fn survey(layout: &DirLayout) -> Result<Vec<Found>> {
    // A cache directory that leads out of the root holds no lease: none is made there.
    let Ok(dir) = leases_dir(layout) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for name in fsio::list_dir(&dir)? {
        let path = dir.join(&name);
        let file = match fsio::open_regular(&path, None) {
            Ok(file) => file,
            // Gone meanwhile (its holder dropped it).
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let modified = file.metadata().and_then(|m| m.modified()).ok();
        let live = match file.try_lock() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        };
        found.push(Found {
            path,
            modified,
            live,
        });
    }
    Ok(found)
}

/// The earliest modification time a blob written under a live lease can have; `None` when no
/// lease is live. Meaningful under the layout's lock (see the module's documentation).
pub(crate) fn oldest_live(layout: &DirLayout) -> Result<Option<SystemTime>> {
    let mut oldest: Option<SystemTime> = None;
    for lease in survey(layout)?.into_iter().filter(|l| l.live) {
        // A live lease of unknown age protects everything.
        let start = lease
            .modified
            .and_then(|m| m.checked_sub(CLOCK_MARGIN))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        oldest = Some(oldest.map_or(start, |o| o.min(start)));
    }
    Ok(oldest)
}

/// The lease files their holders left (unlocked), as stray temp files.
pub(crate) fn stale(layout: &DirLayout) -> Result<Vec<StrayFile>> {
    Ok(survey(layout)?
        .into_iter()
        .filter(|l| !l.live)
        .map(|l| StrayFile {
            location: l.path.into(),
            kind: StrayKind::Temporary,
            modified: l.modified,
        })
        .collect())
}
