//! The members of a docker archive by name: where each regular file's content is, and where
//! each link leads, so that `manifest.json`'s paths are looked up as `docker load` does after
//! extracting (symlinks followed, never out of the archive), without extracting anything.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use oci_core::{Error, Location, Result};
use tar::EntryType;

use crate::reader::{Span, scan_entries};

/// Links followed before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// Where a name leads.
#[derive(Debug, Clone)]
enum Member {
    File(Span),
    /// A symlink or hard link, to this cleaned name (`None`: its target leaves the archive).
    Link(Option<String>),
    /// A directory, device, FIFO: nothing a manifest can name.
    Other,
}

/// Every member of the archive by its cleaned name (`./a//b` is `a/b`). The last member of a
/// name wins, as when tar extracts.
#[derive(Debug, Default)]
pub(crate) struct Members {
    by_name: HashMap<String, Member>,
}

impl Members {
    /// One pass over the headers of the plain tar in `file`.
    pub(crate) fn scan(file: &File, path: &Path) -> Result<Members> {
        let mut by_name = HashMap::new();
        scan_entries(file, path, |entry, span| {
            // A name that is not UTF-8 or leaves the archive is one no manifest can name.
            let name = std::str::from_utf8(&entry.path_bytes())
                .ok()
                .and_then(clean)?;
            let header = entry.header();
            let (member, kept) = match header.entry_type() {
                EntryType::Regular | EntryType::Continuous => (Member::File(span), Some(span)),
                EntryType::Symlink => {
                    let target = entry.link_name_bytes();
                    let target = target.as_deref().and_then(|t| std::str::from_utf8(t).ok());
                    // Relative to the link's directory; an absolute target is taken from the
                    // archive's root, as docker's scoped symlink resolution does.
                    let resolved = target.and_then(|target| match target.strip_prefix('/') {
                        Some(absolute) => clean(absolute),
                        None => {
                            let parent = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                            clean(&format!("{parent}/{target}"))
                        }
                    });
                    (Member::Link(resolved), None)
                }
                EntryType::Link => {
                    let target = entry.link_name_bytes();
                    let resolved = target
                        .as_deref()
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(clean);
                    (Member::Link(resolved), None)
                }
                _ => (Member::Other, None),
            };
            by_name.insert(name, member);
            kept
        })?;
        Ok(Members { by_name })
    }

    /// Where the regular file `name` (a path from `manifest.json`) is, through links.
    /// `archive` names the archive in errors.
    pub(crate) fn find(&self, archive: &Location, name: &str) -> Result<Span> {
        let invalid = |reason: String| Error::InvalidLayout {
            location: archive.join(name),
            reason,
        };
        let mut current = clean(name).ok_or_else(|| {
            invalid("the path leaves the archive (an absolute path or `..` above its root)".into())
        })?;
        for _ in 0..MAX_LINKS {
            match self.by_name.get(&current) {
                Some(Member::File(span)) => return Ok(*span),
                Some(Member::Link(Some(target))) => current = target.clone(),
                Some(Member::Link(None)) => {
                    return Err(invalid(format!(
                        "{current} is a link that leads out of the archive"
                    )));
                }
                Some(Member::Other) => {
                    return Err(invalid(format!("{current} is not a regular file")));
                }
                None => {
                    return Err(Error::NotFound {
                        location: archive.join(&current),
                        digest: None,
                    });
                }
            }
        }
        Err(invalid(format!("more than {MAX_LINKS} links to follow")))
    }
}

/// `name` with `.` and empty components dropped and `..` applied; `None` when it is absolute
/// or `..` climbs above the root.
pub(crate) fn clean(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        let cases = [
            ("manifest.json", Some("manifest.json")),
            ("./manifest.json", Some("manifest.json")),
            ("a//b/./c.tar", Some("a/b/c.tar")),
            ("a/../b.tar", Some("b.tar")),
            ("../x", None),
            ("a/../../x", None),
            ("/etc/passwd", None),
            (".", None),
        ];
        for (name, expected) in cases {
            assert_eq!(clean(name).as_deref(), expected, "{name}");
        }
    }
}
