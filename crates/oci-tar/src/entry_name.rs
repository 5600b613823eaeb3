//! What a tar entry's name means in a layout, and which names are refused.

use oci_core::{
    Algorithm, BLOBS_DIR, CACHE_DIR, Digest, IMAGE_LAYOUT_FILE, INDEX_FILE, LayoutFile,
};

/// Top-level files that producers put beside a layout (`docker save` writes both).
const KNOWN_EXTRAS: [&str; 2] = ["manifest.json", "repositories"];

/// What an entry of a layout archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryName {
    /// `oci-layout`, `index.json` or `blobs/<alg>/<encoded>`.
    File(LayoutFile),
    /// `./`, `blobs/` or `blobs/<alg>/`: structure only.
    Directory,
    /// A file layouts do not define but producers add (`manifest.json` and `repositories` from
    /// `docker save`): ignored without a word.
    KnownExtra(String),
    /// Any other name: ignored, with a message.
    Unknown(String),
}

/// Why an entry is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An absolute name, or one with `..`.
    #[error("entry {0:?} leads outside the layout")]
    Escapes(String),
    /// A name under `blobs/` that is not a valid digest path.
    #[error("entry {name:?} is not a valid blob path: {reason}")]
    InvalidBlobName {
        /// The entry name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A name that is not UTF-8.
    #[error("entry name {0:?} is not UTF-8")]
    NotUtf8(String),
}

/// Classifies a tar entry name: `./` prefixes and a trailing `/` are accepted, `..` and
/// absolute names are refused, and anything under `blobs/` must be a valid digest path.
pub fn classify(raw: &[u8]) -> Result<EntryName, NameError> {
    let name = std::str::from_utf8(raw)
        .map_err(|_| NameError::NotUtf8(String::from_utf8_lossy(raw).into_owned()))?;
    if name.starts_with('/') {
        return Err(NameError::Escapes(name.to_owned()));
    }
    let components: Vec<&str> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.contains(&"..") {
        return Err(NameError::Escapes(name.to_owned()));
    }
    match components.as_slice() {
        // `./`, the root that `tar -C layout -cf x.tar .` writes first.
        [] if !name.is_empty() => Ok(EntryName::Directory),
        [file] if *file == IMAGE_LAYOUT_FILE => Ok(EntryName::File(LayoutFile::ImageLayout)),
        [file] if *file == INDEX_FILE => Ok(EntryName::File(LayoutFile::Index)),
        [dir] if *dir == BLOBS_DIR => Ok(EntryName::Directory),
        [dir, algorithm] if *dir == BLOBS_DIR && Algorithm::from_name(algorithm).is_some() => {
            Ok(EntryName::Directory)
        }
        [dir, algorithm, encoded] if *dir == BLOBS_DIR => {
            Digest::parse(&format!("{algorithm}:{encoded}"))
                .map(|digest| EntryName::File(LayoutFile::Blob(digest)))
                .map_err(|e| NameError::InvalidBlobName {
                    name: name.to_owned(),
                    reason: e.to_string(),
                })
        }
        [dir, ..] if *dir == BLOBS_DIR => Err(NameError::InvalidBlobName {
            name: name.to_owned(),
            reason: "expected blobs/<algorithm>/<encoded>".into(),
        }),
        [file] if KNOWN_EXTRAS.contains(file) => Ok(EntryName::KnownExtra(name.to_owned())),
        // A tar of a layout directory made by another tool carries this library's caches.
        [dir, ..] if *dir == CACHE_DIR => Ok(EntryName::KnownExtra(name.to_owned())),
        _ => Ok(EntryName::Unknown(name.to_owned())),
    }
}

/// What a reader does with one archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A layout file to read.
    Take(LayoutFile),
    /// Structure or a known extra: nothing to do, nothing to say.
    Ignore,
    /// Not taken, for this reason.
    Skip(String),
}

/// Decides what to do with an entry from its raw name and type: only regular files named as
/// layout files are taken; links, devices and unknown or hostile names are skipped with a reason.
pub fn disposition(raw: &[u8], entry_type: tar::EntryType) -> Disposition {
    let shown = String::from_utf8_lossy(raw);
    match classify(raw) {
        Err(e) => Disposition::Skip(e.to_string()),
        Ok(EntryName::Directory) if entry_type.is_dir() => Disposition::Ignore,
        Ok(EntryName::KnownExtra(_)) => Disposition::Ignore,
        Ok(EntryName::Unknown(_)) => {
            Disposition::Skip(format!("entry {shown:?} is not part of a layout: ignored"))
        }
        Ok(EntryName::File(file))
            if matches!(
                entry_type,
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) =>
        {
            Disposition::Take(file)
        }
        Ok(_) => Disposition::Skip(format!(
            "entry {shown:?} is a {entry_type:?}, not a regular file: ignored"
        )),
    }
}
