//! A repository of a container registry, spoken to over the OCI distribution API, as an
//! [`oci_core::Store`]: copy, inspect, fsck and referrers work against it as against a layout
//! directory.
//!
//! - [`Registry`] is one repository. Content by digest: `HEAD`/`GET` of blobs (downloads
//!   resume with `Range` after a cut) and manifests (checked: size, digest, media type against
//!   the document, no schema 1); uploads in one request when small, in chunks held until the
//!   registry has them otherwise ([`RegistryOptions::chunk_size`]). Tags are index entries: a
//!   tag is a `PUT` of the manifest under its name.
//! - [`Client`] is one registry host: HTTPS with the system's roots (or plain HTTP where asked,
//!   and for a registry on this machine that does not speak TLS), anonymous, basic or bearer
//!   authentication (the `WWW-Authenticate` challenge, tokens cached per scope), retries
//!   with backoff on passing failures, credentials never sent to another host on a redirect.
//!   CA and client certificates from the registry's `certs.d` directory, as docker and
//!   podman keep them, or [`RegistryOptions::cert_dir`]; proxies from `HTTPS_PROXY`,
//!   `HTTP_PROXY` and `NO_PROXY`, read as Go programs read them (loopback never proxied).
//! - [`CredentialFiles`]: the credentials docker, podman and skopeo store (`auth.json`,
//!   `config.json`, credential helpers), looked up in the order those tools document, and
//!   stored and erased by `login` and `logout` ([`Client::check_credentials`] first).
//! - Referrers (OCI 1.1): [`Registry::referrers`] asks the registry's referrers API, or reads
//!   the index under the referrers tag schema ([`referrers_tag`]) where it has none; a pushed
//!   manifest with a `subject` is added to that index unless the registry says it took note.
//! - [`ImageReference`]: `HOST[:PORT]/REPO[:TAG|@DIGEST]`, normalised as docker does (the
//!   workspace's one reference grammar, from `oci-reference`; its [`ReferenceError`] is
//!   [`Error::InvalidReference`] here).
//!
//! Synchronous, like the rest of the workspace: a copy runs its blobs on threads.
//!
//! What needs no registry, run as a test:
//!
//! ```
//! use oci_registry::{ImageReference, parse_challenges, referrers_tag};
//!
//! let alpine = ImageReference::parse("alpine")?;
//! assert_eq!(
//!     (alpine.registry.as_str(), alpine.repository.as_str(), alpine.tag.as_deref()),
//!     ("docker.io", "library/alpine", Some("latest"))
//! );
//! let pinned = ImageReference::parse(
//!     "localhost:5000/team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
//! )?;
//! assert!(pinned.is_loopback() && pinned.tag.is_none());
//! assert!(pinned.digest.is_some());
//!
//! let challenges = parse_challenges(
//!     r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:team/app:pull""#,
//! );
//! assert_eq!(challenges[0].scheme, "bearer");
//! assert_eq!(challenges[0].param("Service"), Some("registry"));
//!
//! // Where a registry without the referrers API keeps an image's referrers.
//! let subject = pinned.digest.unwrap();
//! assert_eq!(referrers_tag(subject), format!("sha256-{}", "0".repeat(64)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Against a registry (here one on this machine):
//!
//! ```no_run
//! use oci_core::prelude::*;
//! use oci_registry::{ImageReference, Registry, RegistryOptions};
//!
//! let reference = ImageReference::parse("localhost:5000/hello:v1")?;
//! let registry = Registry::open(&reference, RegistryOptions::default())?;
//! let image = registry.resolve("v1")?;
//! let report = oci_core::fsck::fsck_image(&registry, &image)?;
//! assert!(report.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cert_dir;
mod challenge;
mod client;
mod credentials;
mod download;
mod error;
mod login;
mod options;
mod proxy;
mod record;
mod referrers;
mod store;
mod upload;

pub use challenge::{Challenge, parse_challenges};
pub use client::Client;
pub use credentials::{
    CredentialFile, CredentialFiles, Environment, FileKind, Location, StoredCredential,
};
pub use error::Error;
pub use login::{login, login_registry};
pub use oci_reference::{ImageReference, ReferenceError};
pub use options::{Credentials, RegistryOptions};
pub use referrers::referrers_tag;
pub use store::{MAX_REGISTRY_MANIFEST, Registry};
