//! Store names in skopeo's transport syntax.

use std::fmt;
use std::path::PathBuf;

use oci_core::Digest;
use oci_registry::ImageReference;

use crate::Error;

/// A store, and optionally an image in it, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreName {
    /// `oci:DIR[:REF]`, or a bare directory: a layout directory.
    Layout {
        /// The directory.
        path: PathBuf,
        /// A ref name or digest in its index.
        reference: Option<String>,
    },
    /// `oci-archive:FILE[:REF]`, or a bare file: a layout archive (plain, gzip or zstd).
    Archive {
        /// The archive file.
        path: PathBuf,
        /// A ref name or digest in its index.
        reference: Option<String>,
    },
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a repository of a registry.
    Registry(ImageReference),
    /// `docker-archive:FILE[:REF]`: what `docker save` writes and `docker load` reads.
    DockerArchive {
        /// The archive file.
        path: PathBuf,
        /// A RepoTag in docker's familiar form (`busybox:latest`), or `@N`, the Nth image of
        /// `manifest.json` (from 0; as a source only).
        reference: Option<String>,
    },
}

impl StoreName {
    /// Parses a store name: `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
    /// `docker-archive:FILE[:NAME:TAG|:@N]`,
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (Docker Hub's short names too), or a plain
    /// path (an existing file is an archive, anything else a layout directory). As in skopeo,
    /// the path of `oci:` and `oci-archive:` ends at its first `:`.
    pub fn parse(text: &str) -> Result<StoreName, Error> {
        if let Some(reference) = text.strip_prefix("docker://") {
            return Ok(StoreName::Registry(
                ImageReference::parse(reference).map_err(|e| Error::Name {
                    name: text.to_owned(),
                    reason: e.to_string(),
                })?,
            ));
        }
        StoreName::parse_other(text)
    }

    /// [`StoreName::parse`] of a whole store, no image in it named: a registry repository
    /// with no tag nor digest (none is assumed), a layout or archive with no `:REF`.
    pub fn parse_whole(text: &std::ffi::OsStr) -> Result<StoreName, Error> {
        let name = match text.to_str() {
            Some(text) => match text.strip_prefix("docker://") {
                Some(reference) => StoreName::Registry(
                    ImageReference::parse_repository(reference).map_err(|e| Error::Name {
                        name: text.to_owned(),
                        reason: e.to_string(),
                    })?,
                ),
                None => StoreName::parse_other(text)?,
            },
            None => StoreName::bare(PathBuf::from(text)),
        };
        if let Some(reference) = name.reference() {
            return Err(Error::Name {
                name: name.to_string(),
                reason: format!("names {reference} in the store, where a whole store is meant"),
            });
        }
        Ok(name)
    }

    /// Every name but `docker://`.
    fn parse_other(text: &str) -> Result<StoreName, Error> {
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), Error> {
            let (path, reference) = match rest.split_once(':') {
                Some((path, reference)) => (path, Some(reference.to_owned())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(Error::Name {
                    name: text.to_owned(),
                    reason: "no path".into(),
                });
            }
            if reference.as_deref() == Some("") {
                return Err(Error::Name {
                    name: text.to_owned(),
                    reason: "an empty reference after the path's `:`".into(),
                });
            }
            Ok((PathBuf::from(path), reference))
        };
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, reference) = split(rest)?;
            return Ok(StoreName::Archive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, reference) = split(rest)?;
            let reference = reference
                .map(|reference| normalize_archive_reference(&reference))
                .transpose()
                .map_err(|reason| Error::Name {
                    name: text.to_owned(),
                    reason,
                })?;
            return Ok(StoreName::DockerArchive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, reference) = split(rest)?;
            return Ok(StoreName::Layout { path, reference });
        }
        // `http://...`, `docker-daemon://...`: a URL is never a path a user meant.
        if let Some((scheme, _)) = text.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(Error::Name {
                name: text.to_owned(),
                reason: format!(
                    "unknown transport {scheme}:// (the transports are oci:, oci-archive:, docker-archive:, docker://)"
                ),
            });
        }
        if let Some((transport, _)) = text.split_once(':')
            && !transport.contains('/')
            && transport
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
            && ["docker-daemon", "containers-storage", "dir", "docker"].contains(&transport)
        {
            return Err(Error::Name {
                name: text.to_owned(),
                reason: format!(
                    "the {transport}: transport is not supported (oci:, oci-archive:, docker-archive:, docker://)"
                ),
            });
        }
        if text.is_empty() {
            return Err(Error::Name {
                name: text.to_owned(),
                reason: "empty".into(),
            });
        }
        Ok(StoreName::bare(PathBuf::from(text)))
    }

    /// [`StoreName::parse`] of a command-line argument: one that is not UTF-8 can only be a
    /// plain path (every transport prefix is ASCII), and a path need not be UTF-8.
    pub fn parse_os(text: &std::ffi::OsStr) -> Result<StoreName, Error> {
        match text.to_str() {
            Some(text) => StoreName::parse(text),
            None => Ok(StoreName::bare(PathBuf::from(text))),
        }
    }

    /// A plain path: an existing file is an archive, anything else a layout directory.
    fn bare(path: PathBuf) -> StoreName {
        if path.is_file() {
            StoreName::Archive {
                path,
                reference: None,
            }
        } else {
            StoreName::Layout {
                path,
                reference: None,
            }
        }
    }

    /// The image the name points at in its store, if it names one: a ref name or digest in a
    /// layout or archive; a tag or digest in a registry.
    pub fn reference(&self) -> Option<String> {
        match self {
            StoreName::Layout { reference, .. }
            | StoreName::Archive { reference, .. }
            | StoreName::DockerArchive { reference, .. } => reference.clone(),
            StoreName::Registry(image) => image.target(),
        }
    }

    /// The digest the name points at, when it points at one.
    pub fn digest(&self) -> Option<Digest> {
        match self {
            StoreName::Registry(image) => image.digest,
            StoreName::DockerArchive { .. } => None,
            _ => self.reference().and_then(|r| Digest::parse(&r).ok()),
        }
    }
}

/// A docker archive's `:REF`: `@N`, or a RepoTag in docker's familiar form.
fn normalize_archive_reference(reference: &str) -> Result<String, String> {
    if let Some(position) = reference.strip_prefix('@') {
        return match position.parse::<usize>() {
            Ok(_) if position.bytes().all(|b| b.is_ascii_digit()) => Ok(reference.to_owned()),
            _ => Err(format!(
                "@{position}: a source index is @N, N a number from 0"
            )),
        };
    }
    oci_tar::docker_archive::normalize_repo_tag(reference)
        .map_err(|reason| format!("{reference}: {reason}"))
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>,
                    prefix: &str,
                    path: &PathBuf,
                    reference: &Option<String>| {
            write!(f, "{prefix}{}", path.display())?;
            if let Some(reference) = reference {
                write!(f, ":{reference}")?;
            }
            Ok(())
        };
        match self {
            StoreName::Layout { path, reference } => with(f, "oci:", path, reference),
            StoreName::Archive { path, reference } => with(f, "oci-archive:", path, reference),
            StoreName::Registry(image) => write!(f, "docker://{image}"),
            StoreName::DockerArchive { path, reference } => {
                with(f, "docker-archive:", path, reference)
            }
        }
    }
}
