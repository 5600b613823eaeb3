//! Image references as users write them: `HOST[:PORT]/REPO[:TAG|@DIGEST]`, with Docker Hub's
//! short forms (`alpine` is `docker.io/library/alpine:latest`).

use std::fmt;
use std::sync::LazyLock;

use oci_digest::Digest;
use regex::Regex;

use crate::ReferenceError;

/// Docker Hub's name in references.
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's older name ("the Docker Index"), which docker reads as [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Where Docker Hub's registry API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker writes Docker Hub's credentials under in `config.json`.
const DOCKER_HUB_CREDENTIALS: &str = "https://index.docker.io/v1/";
/// Where Docker Hub keeps its official images.
const OFFICIAL_NAMESPACE: &str = "library/";
/// The longest repository path the distribution project accepts (after `library/` is added).
const REPOSITORY_MAX: usize = 255;

/// The pieces of the grammar, as the distribution project writes them (`regexp.go` of
/// github.com/distribution/reference); `\w` is spelled out, since Go's is ASCII only.
mod grammar {
    pub const ALPHANUMERIC: &str = r"[a-z0-9]+";
    pub const SEPARATOR: &str = r"(?:[._]|__|[-]+)";
    pub const DOMAIN_NAME_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    pub const OPTIONAL_PORT: &str = r"(?::[0-9]+)?";
    pub const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";
    pub const TAG: &str = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    pub const DIGEST: &str =
        r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
    pub const IDENTIFIER: &str = r"[a-f0-9]{64}";
}

/// A regular expression of the grammar, matched whole.
fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("the distribution grammar is a valid regex")
}

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    use grammar::*;
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    anchored(&format!("(?:{domain_name}|{IPV6_ADDRESS}){OPTIONAL_PORT}"))
});
static REMOTE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    use grammar::*;
    let component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    anchored(&format!("{component}(?:/{component})*"))
});
static TAG: LazyLock<Regex> = LazyLock::new(|| anchored(grammar::TAG));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| anchored(grammar::DIGEST));
static IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| anchored(grammar::IDENTIFIER));

/// A repository in a registry, and optionally a tag or digest in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The registry as named (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub registry: String,
    /// The repository path (`library/alpine`).
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// The digest, when given (`name@sha256:...`).
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses `HOST[:PORT]/REPO[:TAG|@DIGEST]` by the grammar of the distribution project,
    /// normalised as docker does (`ParseNormalizedNamed`): a first component is the host when
    /// it has a `.` or a `:`, is `localhost`, or has an uppercase letter; else the host is
    /// Docker Hub (`docker.io`, which `index.docker.io` also means), where a one-part path is
    /// under `library/`. No tag nor digest means `latest`; a tag and a digest are both kept
    /// (the digest is what is fetched).
    pub fn parse(text: &str) -> Result<ImageReference, ReferenceError> {
        let mut reference = ImageReference::parse_parts(text)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some("latest".to_owned());
        }
        Ok(reference)
    }

    /// [`ImageReference::parse`] of a repository alone (`HOST[:PORT]/REPO`): a tag or digest
    /// is refused, and none is assumed.
    pub fn parse_repository(text: &str) -> Result<ImageReference, ReferenceError> {
        let reference = ImageReference::parse_parts(text)?;
        if let Some(target) = reference.target() {
            return Err(ReferenceError {
                reference: text.to_owned(),
                reason: format!(
                    "names {target} in {}/{}, where a whole repository is meant",
                    reference.registry, reference.repository
                ),
            });
        }
        Ok(reference)
    }

    /// A RepoTag of a docker archive (`NAME[:TAG]`, by [`ImageReference::parse`]'s grammar) in
    /// docker's familiar form, the one `docker images` shows and `docker save` writes:
    /// `busybox:latest` for `docker.io/library/busybox:latest`, `user/app:1` on Docker Hub,
    /// `HOST[:PORT]/REPO:TAG` elsewhere. A name without a tag gets `latest`; a digest is
    /// refused (a RepoTag names a tag), as is a name docker would refuse.
    pub fn familiar_repo_tag(text: &str) -> Result<String, ReferenceError> {
        let reference = ImageReference::parse(text)?;
        if reference.digest.is_some() {
            return Err(ReferenceError {
                reference: text.to_owned(),
                reason: "a RepoTag is NAME:TAG, not a digest".to_owned(),
            });
        }
        Ok(reference.familiar())
    }

    /// This reference in docker's familiar form (`FamiliarString` of the distribution
    /// project): without `docker.io/`, and on Docker Hub without `library/` when one component
    /// follows it (`busybox:latest`, `user/app:v1`, `library/a/b`); elsewhere as displayed.
    pub fn familiar(&self) -> String {
        Familiar(self).to_string()
    }

    fn parse_parts(text: &str) -> Result<ImageReference, ReferenceError> {
        let invalid = |reason: String| ReferenceError {
            reference: text.to_owned(),
            reason,
        };
        if text.trim() != text || text.is_empty() {
            return Err(invalid("empty, or spaces around it".into()));
        }
        if IDENTIFIER.is_match(text) {
            return Err(invalid(
                "64 hex digits are an image ID, not a repository name".into(),
            ));
        }
        let (registry, rest) = split_registry(text);
        if !DOMAIN.is_match(&registry) {
            return Err(invalid(format!("invalid registry host {registry:?}")));
        }
        let (name, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest.as_str(), None),
        };
        // Past the host, a `:` can only start the tag.
        let (repository, tag) = match name.split_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (name, None),
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "repository names must be lowercase ({repository:?})"
            )));
        }
        if !REMOTE_NAME.is_match(repository) {
            return Err(invalid(format!(
                "invalid repository name {repository:?} (lowercase letters and digits, \
                 separated by `.`, `_`, `__`, dashes or `/`)"
            )));
        }
        if repository.len() > REPOSITORY_MAX {
            return Err(invalid(format!(
                "the repository name is longer than {REPOSITORY_MAX} characters"
            )));
        }
        if let Some(tag) = tag
            && !TAG.is_match(tag)
        {
            return Err(invalid(format!(
                "invalid tag {tag:?} (up to 128 letters, digits, `_`, `.` and `-`, not starting \
                 with `.` or `-`)"
            )));
        }
        let digest = digest
            .map(|digest| {
                if !DIGEST.is_match(digest) {
                    return Err(invalid(format!("invalid digest {digest:?}")));
                }
                Digest::parse(digest).map_err(|e| invalid(e.to_string()))
            })
            .transpose()?;
        Ok(ImageReference {
            registry,
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The host (and port) the registry API answers on: Docker Hub's is not `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The key a credential for this registry is stored under in `config.json`.
    pub fn credential_key(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_CREDENTIALS
        } else {
            &self.registry
        }
    }

    /// What names the image in the repository: the digest when there is one, else the tag.
    pub fn target(&self) -> Option<String> {
        self.digest
            .map(|d| d.to_string())
            .or_else(|| self.tag.clone())
    }

    /// The same repository, nothing in it named.
    pub fn repository_only(&self) -> ImageReference {
        ImageReference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// Whether the registry is this machine (`localhost`, `127.0.0.0/8`, `::1`), where a
    /// registry without TLS is used over plain HTTP, as docker does.
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The registry of a reference and the rest of it, as docker splits them (`splitDockerDomain`
/// of the distribution project), with Docker Hub's official images under `library/`.
fn split_registry(text: &str) -> (String, String) {
    let (registry, rest) = match text.split_once('/') {
        // One component: a Docker Hub name, even `localhost` or `example.com` (as docker).
        None => (DOCKER_HUB, text),
        Some((first, rest)) if first == DOCKER_HUB_LEGACY => (DOCKER_HUB, rest),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        Some(_) => (DOCKER_HUB, text),
    };
    if registry == DOCKER_HUB && !rest.contains('/') {
        return (registry.to_owned(), format!("{OFFICIAL_NAMESPACE}{rest}"));
    }
    (registry.to_owned(), rest.to_owned())
}

/// The host of `HOST[:PORT]` (an IPv6 literal without its brackets).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl ImageReference {
    /// `[:TAG][@DIGEST]`, what follows the name.
    fn fmt_target(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        self.fmt_target(f)
    }
}

/// [`ImageReference::familiar`], written.
struct Familiar<'a>(&'a ImageReference);

impl fmt::Display for Familiar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reference = self.0;
        if reference.registry != DOCKER_HUB {
            return reference.fmt(f);
        }
        let repository = reference
            .repository
            .strip_prefix(OFFICIAL_NAMESPACE)
            .filter(|rest| !rest.contains('/'))
            .unwrap_or(&reference.repository);
        f.write_str(repository)?;
        reference.fmt_target(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_as_docker_does() {
        let r = ImageReference::parse("alpine").expect("valid");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.credential_key(), "https://index.docker.io/v1/");
        let r = ImageReference::parse("localhost:5000/a/b:v1").expect("valid");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "a/b", Some("v1"))
        );
        assert!(r.is_loopback());
        assert!(
            ImageReference::parse("127.0.0.1:5000/x")
                .expect("valid")
                .is_loopback()
        );
        assert!(
            !ImageReference::parse("example.com/x")
                .expect("valid")
                .is_loopback()
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageReference::parse(&format!("example.com/x@{digest}")).expect("valid");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.map(|d| d.to_string()), Some(digest));
        for bad in [
            "",
            " alpine",
            "upper/Case",
            "a//b",
            "example.com/x@sha256:abc",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
