//! How a registry is reached: TLS, plain HTTP, credentials, retries, chunk sizes.

use std::time::Duration;

/// Who the client says it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// What Docker's `config.json` holds for the registry (`$DOCKER_CONFIG`,
    /// `~/.docker/config.json`: `auths`, `credsStore`, `credHelpers`), else anonymous.
    #[default]
    DockerConfig,
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

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::DockerConfig => f.write_str("DockerConfig"),
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
    /// A client certificate chain and its key, PEM, for registries that ask for one.
    pub client_certificate: Option<(Vec<u8>, Vec<u8>)>,
    /// Who the client says it is.
    pub credentials: Credentials,
    /// How often a request that failed for a passing reason (a cut connection, 408, 429,
    /// 5xx) is sent again, with growing pauses (or the registry's `Retry-After`).
    pub retries: u32,
    /// How long a connection, a token request, or any one read or write may stall.
    pub timeout: Duration,
    /// Blobs up to this size are uploaded in one request; larger ones in chunks of this size,
    /// each held in memory until the registry has it (so a cut chunk is sent again, not the
    /// whole blob). Raised to a registry's `OCI-Chunk-Min-Length`.
    pub chunk_size: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            tls_verify: true,
            plain_http: false,
            ca_certificates: Vec::new(),
            client_certificate: None,
            credentials: Credentials::DockerConfig,
            retries: 5,
            timeout: Duration::from_secs(60),
            chunk_size: 8 << 20,
        }
    }
}
