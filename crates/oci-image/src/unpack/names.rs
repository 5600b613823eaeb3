//! Entry names: cleaned to components below the root, and whiteouts recognised.

/// The prefix of a whiteout's name (`.wh.NAME` removes `NAME`).
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name of an opaque-directory marker.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of aufs' own metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): never unpacked.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// The components of an entry name, lexically cleaned as if the root were `/`: empty and `.`
/// components dropped, `..` removing the one before it and stopping at the root. A leading
/// `/` means the root, as in every other unpacker. An empty result names the root itself.
pub(crate) fn clean(name: &[u8]) -> Vec<&[u8]> {
    let mut components: Vec<&[u8]> = Vec::new();
    for component in name.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                components.pop();
            }
            _ => components.push(component),
        }
    }
    components
}

/// What an entry whose cleaned name ends in `last` does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// An ordinary entry.
    Entry,
    /// `.wh..wh..opq`: its directory hides what lower layers put in it.
    Opaque,
    /// `.wh.NAME`: NAME, from lower layers, is removed.
    Whiteout(&'a [u8]),
    /// Another `.wh..wh.` name: aufs' metadata, skipped.
    AufsMeta,
    /// `.wh.` followed by a name no entry can have (empty, `.`, `..`): refused.
    InvalidWhiteout,
}

/// Classifies the last component of a cleaned name.
pub(crate) fn kind(last: &[u8]) -> Kind<'_> {
    if last == OPAQUE_MARKER {
        return Kind::Opaque;
    }
    if last.starts_with(AUFS_META_PREFIX) {
        return Kind::AufsMeta;
    }
    match last.strip_prefix(WHITEOUT_PREFIX) {
        None => Kind::Entry,
        Some(b"" | b"." | b"..") => Kind::InvalidWhiteout,
        Some(name) => Kind::Whiteout(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: &[&str]) {
        let cleaned: Vec<&[u8]> = clean(name.as_bytes());
        let expected: Vec<&[u8]> = expected.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(cleaned, expected, "{name:?}");
    }

    #[test]
    fn names_are_cleaned_below_the_root() {
        check("etc/passwd", &["etc", "passwd"]);
        check("./etc//passwd/", &["etc", "passwd"]);
        check("/etc/passwd", &["etc", "passwd"]);
        check("../../etc/passwd", &["etc", "passwd"]);
        check("a/b/../../../c", &["c"]);
        check("dne/../.wh.etc", &[".wh.etc"]);
        check(".", &[]);
        check("/", &[]);
        check("..", &[]);
        check("", &[]);
    }

    #[test]
    fn whiteouts_are_recognised_and_checked() {
        assert_eq!(kind(b"passwd"), Kind::Entry);
        assert_eq!(kind(b".wh.passwd"), Kind::Whiteout(b"passwd"));
        assert_eq!(kind(b".wh..wh..opq"), Kind::Opaque);
        assert_eq!(kind(b".wh..wh.plnk"), Kind::AufsMeta);
        assert_eq!(kind(b".wh."), Kind::InvalidWhiteout);
        assert_eq!(kind(b".wh.."), Kind::InvalidWhiteout);
        assert_eq!(kind(b".wh..."), Kind::InvalidWhiteout);
        assert_eq!(kind(b".wh....x"), Kind::Whiteout(b"...x"));
    }
}
