//! Image references as docker reads them: `HOST[:PORT]/REPO[:TAG|@DIGEST]` by the grammar of
//! the distribution project (github.com/distribution/reference), with Docker Hub's short
//! names (`alpine` is `docker.io/library/alpine:latest`) and docker's familiar form back
//! (`busybox:latest`, the form `docker images` shows and `docker save` writes as a RepoTag).
//!
//! One grammar for the whole workspace: `docker://` names (oci-registry) and docker archives'
//! RepoTags (oci-tar) are parsed by the same [`ImageReference`], so a name that reaches a
//! registry is the name an archive holds. Its own crate, below both backends (which never
//! depend on each other) and without HTTP: it knows names, not where they lead, beyond
//! docker's conventions for Docker Hub ([`ImageReference::api_host`],
//! [`ImageReference::credential_key`]).
//!
//! ```
//! use oci_reference::ImageReference;
//!
//! let alpine = ImageReference::parse("alpine")?;
//! assert_eq!(alpine.to_string(), "docker.io/library/alpine:latest");
//! assert_eq!(alpine.api_host(), "registry-1.docker.io");
//!
//! // `Foo` is a host (it has an uppercase letter); the repository must be lowercase.
//! let named = ImageReference::parse("Foo/bar:1")?;
//! assert_eq!((named.registry.as_str(), named.repository.as_str()), ("Foo", "bar"));
//! assert!(ImageReference::parse("foo/Bar").is_err());
//!
//! // A docker archive's RepoTag, in docker's familiar form.
//! assert_eq!(
//!     ImageReference::familiar_repo_tag("docker.io/library/busybox")?,
//!     "busybox:latest"
//! );
//! assert_eq!(
//!     ImageReference::familiar_repo_tag("[::1]:5000/x:1")?,
//!     "[::1]:5000/x:1"
//! );
//! let error = ImageReference::familiar_repo_tag(&"a".repeat(64)).unwrap_err();
//! assert!(error.to_string().contains("image ID"), "{error}");
//! # Ok::<(), oci_reference::ReferenceError>(())
//! ```

mod reference;

pub use reference::ImageReference;

/// A reference that does not parse: the text given and why it is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The text given.
    pub reference: String,
    /// Why it is not one.
    pub reason: String,
}
