//! `login` and `logout`: credentials checked against the registry, then stored where the
//! other tools find them ([`CredentialFiles`]).

use crate::{
    Client, CredentialFiles, Credentials, Error, ImageReference, Location, RegistryOptions,
};

/// The registry a `login HOST` means: `HOST[:PORT]`, also as docker takes it, a URL
/// (`https://HOST/v1/` is cut to its host); Docker Hub's names (`docker.io`,
/// `index.docker.io`, `registry-1.docker.io`) are `docker.io`.
pub fn login_registry(text: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidReference {
        reference: text.to_owned(),
        reason: reason.to_owned(),
    };
    let stripped = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let host = stripped.split('/').next().unwrap_or(stripped);
    if host.is_empty() {
        return Err(invalid("no registry host"));
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if !valid || host.starts_with(['-', '.', ':']) {
        return Err(invalid("not a registry host[:port]"));
    }
    let host = host.to_ascii_lowercase();
    Ok(match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    })
}

/// Checks `username` and `password` against `registry` ([`Client::check_credentials`],
/// reached as `options` says), then stores them ([`CredentialFiles::store`]); returns where.
/// Nothing is stored when the registry refuses them.
pub fn login(
    registry: &str,
    username: &str,
    password: &str,
    options: RegistryOptions,
    files: &CredentialFiles,
) -> Result<Location, Error> {
    let client = Client::new(
        &registry_only(registry),
        RegistryOptions {
            credentials: Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            ..options
        },
    )?;
    client.check_credentials()?;
    files.store(registry, username, password)
}

/// A reference to a registry and no repository.
fn registry_only(registry: &str) -> ImageReference {
    ImageReference {
        registry: registry.to_owned(),
        repository: String::new(),
        tag: None,
        digest: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_hosts_are_read_as_docker_reads_them() {
        for (given, expected) in [
            ("localhost:5000", "localhost:5000"),
            ("Registry.Example", "registry.example"),
            ("https://registry.example/v1/", "registry.example"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("[::1]:5000", "[::1]:5000"),
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
        ] {
            assert_eq!(
                login_registry(given).ok().as_deref(),
                Some(expected),
                "{given}"
            );
        }
        for bad in ["", "https://", "-x", "a b", "host;rm", "a@b"] {
            assert!(login_registry(bad).is_err(), "{bad:?}");
        }
    }
}
