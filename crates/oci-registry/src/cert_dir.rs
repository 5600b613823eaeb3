//! A registry's CA and client certificates, from the directories docker and containers/image
//! read them from.
//!
//! For the registry `HOST[:PORT]` (as named in the reference: `docker.io` for Docker Hub), the
//! first of these that exists is read, as containers/image does:
//! `$HOME/.config/containers/certs.d/HOST[:PORT]/`, `/etc/containers/certs.d/HOST[:PORT]/`,
//! `/etc/docker/certs.d/HOST[:PORT]/`. [`RegistryOptions::cert_dir`] (skopeo's `--cert-dir`)
//! names the one directory to read instead.
//!
//! In the directory, `*.crt` files are CA certificates (trusted besides the system's roots),
//! and `NAME.cert` with `NAME.key` is a client certificate and its key, offered when the
//! registry asks for one. A `.cert` without its `.key` (or a `.key` without its `.cert`) is an
//! error, as it is to docker: a CA saved as `.cert` would otherwise be silently ignored. Other
//! files are ignored.
//!
//! [`RegistryOptions::cert_dir`]: crate::RegistryOptions::cert_dir

use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// The per-host directories, in the order they are looked for; `$HOME`'s comes first.
const SYSTEM_CERT_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// What a certificate directory holds, read but not yet parsed.
#[derive(Debug, Default)]
pub(crate) struct CertDirectory {
    /// Each `*.crt`: its path and PEM.
    pub cas: Vec<(PathBuf, Vec<u8>)>,
    /// The first `NAME.cert` and `NAME.key` pair (by name): their paths and PEM.
    pub client: Option<ClientPair>,
}

/// A client certificate chain and its key, as files.
#[derive(Debug)]
pub(crate) struct ClientPair {
    pub cert_path: PathBuf,
    pub cert_pem: Vec<u8>,
    pub key_path: PathBuf,
    pub key_pem: Vec<u8>,
}

/// The certificates for `registry`: from `explicit` when given (which must then exist), else
/// from the first per-host directory that exists (none: nothing to add).
pub(crate) fn load(explicit: Option<&Path>, registry: &str) -> Result<CertDirectory, Error> {
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            return Err(Error::Setup {
                what: format!("the certificate directory {}", dir.display()),
                reason: "is not a directory".into(),
            });
        }
        return read(dir);
    }
    match per_host_directory(&system_bases(), registry)? {
        Some(dir) => read(&dir),
        None => Ok(CertDirectory::default()),
    }
}

/// `$HOME/.config/containers/certs.d`, then [`SYSTEM_CERT_DIRS`].
fn system_bases() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| Path::new(&home).join(".config/containers/certs.d"));
    home.into_iter()
        .chain(SYSTEM_CERT_DIRS.iter().map(PathBuf::from))
        .collect()
}

/// The first `BASE/REGISTRY` that exists, of `bases`.
fn per_host_directory(bases: &[PathBuf], registry: &str) -> Result<Option<PathBuf>, Error> {
    for base in bases {
        let dir = base.join(registry);
        match std::fs::metadata(&dir) {
            Ok(_) => return Ok(Some(dir)),
            // Missing or out of reach (a user's run cannot read root's): the next one, as
            // containers/image does.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) => {}
            Err(e) => return Err(file_error(&dir, &e)),
        }
    }
    Ok(None)
}

/// Reads `dir` (see the module docs).
fn read(dir: &Path) -> Result<CertDirectory, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| file_error(dir, &e))?;
        // A name that is not UTF-8 cannot end in one of the suffixes read here.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    let mut found = CertDirectory::default();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            found.cas.push((path.clone(), read_file(&path)?));
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key_name = format!("{base}.key");
            if !names.contains(&key_name) {
                return Err(Error::Setup {
                    what: format!("the client certificate {}", path.display()),
                    reason: format!(
                        "has no key {key_name} beside it (a CA certificate is named *.crt)"
                    ),
                });
            }
            if found.client.is_none() {
                let key_path = dir.join(&key_name);
                found.client = Some(ClientPair {
                    cert_pem: read_file(&path)?,
                    cert_path: path,
                    key_pem: read_file(&key_path)?,
                    key_path,
                });
            }
        } else if let Some(base) = name.strip_suffix(".key") {
            let cert_name = format!("{base}.cert");
            if !names.contains(&cert_name) {
                return Err(Error::Setup {
                    what: format!("the client key {}", path.display()),
                    reason: format!("has no client certificate {cert_name} beside it"),
                });
            }
        }
    }
    Ok(found)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| file_error(path, &e))
}

fn file_error(path: &Path, error: &io::Error) -> Error {
    Error::Setup {
        what: path.display().to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for name in files {
            std::fs::write(dir.path().join(name), format!("{name}\n")).expect("write");
        }
        dir
    }

    #[test]
    fn crt_files_are_cas_and_a_cert_with_its_key_is_the_client_pair() {
        let dir = dir_with(&["b.crt", "a.crt", "client.cert", "client.key", "README"]);
        let found = load(Some(dir.path()), "ignored:5000").expect("loads");
        let cas: Vec<_> = found
            .cas
            .iter()
            .map(|(p, pem)| (p.clone(), pem.clone()))
            .collect();
        assert_eq!(
            cas,
            [
                (dir.path().join("a.crt"), b"a.crt\n".to_vec()),
                (dir.path().join("b.crt"), b"b.crt\n".to_vec())
            ]
        );
        let client = found.client.expect("a client pair");
        assert_eq!(client.cert_path, dir.path().join("client.cert"));
        assert_eq!(client.cert_pem, b"client.cert\n");
        assert_eq!(client.key_pem, b"client.key\n");
    }

    #[test]
    fn a_cert_without_its_key_and_a_key_without_its_cert_are_errors_naming_the_file() {
        for (files, named) in [
            (&["ca.cert"][..], "ca.cert"),
            (&["client.cert", "other.key"][..], "client.cert"),
            (&["client.key"][..], "client.key"),
        ] {
            let dir = dir_with(files);
            let error = load(Some(dir.path()), "h")
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains(&dir.path().join(named).display().to_string()),
                "{error}"
            );
        }
    }

    #[test]
    fn a_named_directory_must_exist() {
        let dir = dir_with(&[]);
        let missing = dir.path().join("missing");
        let error = load(Some(&missing), "h").expect_err("refused").to_string();
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }

    #[test]
    fn the_first_per_host_directory_that_exists_is_the_one_read() {
        let root = dir_with(&[]);
        let bases: Vec<PathBuf> = ["home", "containers", "docker"]
            .iter()
            .map(|name| root.path().join(name))
            .collect();
        assert_eq!(
            per_host_directory(&bases, "registry.example:5000").expect("looks"),
            None
        );
        for base in &bases[1..] {
            std::fs::create_dir_all(base.join("registry.example:5000")).expect("mkdir");
        }
        std::fs::create_dir_all(bases[0].join("other.example")).expect("mkdir");
        assert_eq!(
            per_host_directory(&bases, "registry.example:5000").expect("looks"),
            Some(bases[1].join("registry.example:5000"))
        );
    }

    #[test]
    fn an_empty_directory_adds_nothing() {
        let dir = dir_with(&[]);
        let found = load(Some(dir.path()), "h").expect("loads");
        assert!(found.cas.is_empty() && found.client.is_none());
    }
}
