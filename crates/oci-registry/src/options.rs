//! How a registry is reached: TLS, plain HTTP, credentials, retries, chunk sizes.

use std::path::PathBuf;
use std::time::Duration;

/// Who the client says it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// What the credential files of docker, podman and skopeo hold for the repository, and
    /// the helpers they name ([`crate::CredentialFiles`]), else anonymous.
    Stored {
        /// Only this file (`--authfile`); else `$REGISTRY_AUTH_FILE`, else the usual ones.
        authfile: Option<PathBuf>,
    },
    /// This user and password.
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: String,
    },
    /// None at all.
    Anonymous,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::Stored { authfile: None }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Stored { authfile } => write!(f, "Stored({authfile:?})"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <hidden>)"),
            Credentials::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// How a registry is reached.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Verify the registry's TLS certificate (against the system's roots and
    /// [`RegistryOptions::ca_certificates`]). Off is skopeo's `--tls-verify=false`.
    pub tls_verify: bool,
    /// Speak plain HTTP. Without it, a registry on this machine (`localhost`, `127.0.0.0/8`,
    /// `::1`) that does not speak TLS is reached over plain HTTP anyway, as docker does.
    pub plain_http: bool,
    /// More trusted roots, PEM.
    pub ca_certificates: Vec<Vec<u8>>,
    /// A client certificate chain and its key, PEM, for registries that ask for one. When
    /// set, it is offered rather than one of a certificate directory.
    pub client_certificate: Option<(Vec<u8>, Vec<u8>)>,
    /// The directory of CA certificates (`*.crt`) and client pairs (`NAME.cert`, `NAME.key`)
    /// for the registry (skopeo's `--cert-dir`). `None`: the registry's own directory under
    /// `~/.config/containers/certs.d/`, `/etc/containers/certs.d/` or `/etc/docker/certs.d/`
    /// (the first that exists), as docker and podman read them. Its CAs are trusted besides
    /// the system's roots and [`RegistryOptions::ca_certificates`].
    pub cert_dir: Option<PathBuf>,
    /// Who the client says it is.
    pub credentials: Credentials,
    /// How often a request that failed for a passing reason (a cut connection, 408, 429,
    /// 5xx) is sent again, with growing pauses (or the registry's `Retry-After`).
    pub retries: u32,
    /// How long a connection, a token request, or any one read or write may stall.
    pub timeout: Duration,
    /// Blobs up to this size are uploaded in one `PUT`, from memory (so a cut upload is sent
    /// again at once). With [`RegistryOptions::chunked_uploads`], larger ones go in chunks of
    /// this size (raised to a registry's `OCI-Chunk-Min-Length`); blobs whose digest is known
    /// only at the end (written with `begin_blob`) always do.
    pub chunk_size: usize,
    /// Send a large blob of known digest in `PATCH`es of `chunk_size`, each held in memory
    /// until the registry has it, so that a cut chunk goes on from where the registry
    /// stopped. Off by default: a large blob then streams from its source in one `PATCH`, as
    /// skopeo and crane send it. Distribution syncs its upload file at the end of every
    /// request (and cannot go on after a cut inside one anyway), so chunks make it write
    /// in many small synchronous steps; a cut stream is sent again whole by the copy. Turn it
    /// on for a registry (or a proxy before it) that limits the size of a request.
    pub chunked_uploads: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            tls_verify: true,
            plain_http: false,
            ca_certificates: Vec::new(),
            client_certificate: None,
            cert_dir: None,
            credentials: Credentials::default(),
            retries: 5,
            timeout: Duration::from_secs(60),
            chunk_size: 8 << 20,
            chunked_uploads: false,
        }
    }
}
