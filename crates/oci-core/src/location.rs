//! Where a store, or something in it, is: a path or a URL. Errors name one.

use std::fmt;
use std::path::{Path, PathBuf};

use oci_digest::Digest;

/// A place in some store, as messages name it: a filesystem path (a layout directory, an
/// archive, a file inside either) or a URL (a registry repository, a blob in it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file or directory.
    Path(PathBuf),
    /// A URL, or anything else that is not a local path (`docker://host/repo`, `memory`).
    Url(String),
}

impl Location {
    /// The path, when this is one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Location::Path(path) => Some(path),
            Location::Url(_) => None,
        }
    }

    /// A place inside this one: `relative` joined to a path, appended to a URL after a `/`.
    pub fn join(&self, relative: impl AsRef<Path>) -> Location {
        let relative = relative.as_ref();
        match self {
            Location::Path(path) => Location::Path(path.join(relative)),
            Location::Url(url) => Location::Url(format!(
                "{}/{}",
                url.trim_end_matches('/'),
                relative.display()
            )),
        }
    }

    /// Where the content `digest` is: `blobs/<alg>/<encoded>` below a path, `URL@digest` for
    /// a store that is not a layout directory.
    pub fn of_content(&self, digest: Digest) -> Location {
        match self {
            Location::Path(_) => self.join(digest.blob_path()),
            Location::Url(url) => Location::Url(format!("{url}@{digest}")),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path(path) => path.display().fmt(f),
            Location::Url(url) => f.write_str(url),
        }
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Path(path)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Path(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Path(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}
