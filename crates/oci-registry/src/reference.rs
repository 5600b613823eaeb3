//! Image references as users write them: `HOST[:PORT]/REPO[:TAG|@DIGEST]`, with Docker Hub's
//! short forms (`alpine` is `docker.io/library/alpine:latest`).

use std::fmt;

use oci_core::Digest;
use oci_spec::distribution::Reference;

use crate::Error;

/// Docker Hub's name in references.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker writes Docker Hub's credentials under in `config.json`.
const DOCKER_HUB_CREDENTIALS: &str = "https://index.docker.io/v1/";

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
    /// normalised as docker does: no host means Docker Hub, a one-part Hub path is under
    /// `library/`, and no tag nor digest means `latest`.
    pub fn parse(text: &str) -> Result<ImageReference, Error> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: text.to_owned(),
            reason,
        };
        if text.trim() != text || text.is_empty() {
            return Err(invalid("empty, or spaces around it".into()));
        }
        let parsed: Reference = text.parse().map_err(|e| invalid(format!("{e}")))?;
        // The grammar's path components are lowercase; docker says so rather than guess.
        if parsed.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase".into()));
        }
        let digest = parsed
            .digest()
            .map(|d| Digest::parse(d).map_err(|e| invalid(e.to_string())))
            .transpose()?;
        // `name@digest` alone: the parser adds no tag then, and none is wanted.
        let tag = parsed.tag().map(str::to_owned);
        Ok(ImageReference {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag,
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

/// The host of `HOST[:PORT]` (an IPv6 literal without its brackets).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
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
            "UPPER/case",
            "a//b",
            "example.com/x@sha256:abc",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
