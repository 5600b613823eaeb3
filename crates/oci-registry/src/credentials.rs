//! Registry credentials where docker, podman and skopeo keep them: the containers `auth.json`
//! files, Docker's `config.json` (and its legacy `.dockercfg`), and the credential helpers
//! those files name.
//!
//! **Lookup** reads, in this order, until one file has an answer (the order of
//! containers-auth.json(5) and `containers/image`'s `pkg/docker/config`):
//! 1. `--authfile FILE` ([`CredentialFiles::new`]'s `authfile`), else `$REGISTRY_AUTH_FILE`,
//!    else `${XDG_RUNTIME_DIR}/containers/auth.json` (`/run/containers/UID/auth.json` without
//!    `XDG_RUNTIME_DIR`). A file named by the user is the only one read, as skopeo and podman
//!    do (`$REGISTRY_AUTH_FILE` is their `--authfile` default).
//! 2. `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`;
//! 3. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`;
//! 4. `~/.dockercfg` (Docker's format before `config.json`: the `auths` map alone).
//!
//! In each file: a `credHelpers` entry for the registry sends the question to
//! `docker-credential-NAME get`; else the `auths` keys, most specific first
//! (`host/ns/repo`, `host/ns`, `host`), then any key that names the same registry in another
//! form (`https://host/v1/`, `http://host`, Docker Hub's `https://index.docker.io/v1/` for
//! `docker.io`); else the file's `credsStore` helper. An entry is `auth` (base64
//! `user:password`), or `username` and `password`, and may carry an `identitytoken`. A file
//! that is missing is skipped; one that does not parse is an error naming it.
//!
//! **Storing** ([`CredentialFiles::store`], [`CredentialFiles::erase`]) goes to one file,
//! [`CredentialFiles::login_file`]: the `--authfile`, else `$REGISTRY_AUTH_FILE`, else
//! Docker's `config.json`, the one file every tool reads and that outlives a reboot (podman's
//! default, under `XDG_RUNTIME_DIR`, is on a tmpfs). If that file names a helper for the
//! registry (`credHelpers`, else `credsStore`), the credentials go to the helper, as docker
//! does; else into the file's `auths`, written whole to a temporary file (mode 0600) and
//! renamed over it, every other key kept.
//!
//! The helper protocol is docker's: `docker-credential-NAME get|store|erase`, the server on
//! stdin for `get`/`erase` and `{"ServerURL","Username","Secret"}` for `store`;
//! `get` answers `{"Username","Secret"}`, a `<token>` user meaning an identity token, and
//! "credentials not found in native keychain" meaning none. The `docker_credential` crate
//! speaks only `get`, reads only Docker's file, and tells "not found" from a broken helper by
//! no means, so this module speaks it itself.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Docker Hub's name in references.
pub(crate) const DOCKER_HUB: &str = "docker.io";
/// The key Docker writes Docker Hub's credentials under.
pub(crate) const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// What a helper prints (and exits 1) when it holds nothing for the server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// A credentials file is small; more is refused rather than read into memory.
const FILE_LIMIT: u64 = 16 << 20;

/// What a credentials file is, which decides how its keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A containers `auth.json` (podman, skopeo, buildah): keys may name a namespace.
    Containers,
    /// Docker's `config.json`: the same format; its keys are registries.
    Docker,
    /// Docker's `~/.dockercfg`: the `auths` map alone, keys are registries or API URLs.
    DockerLegacy,
}

/// One file of the lookup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFile {
    /// Where it is (it may not exist).
    pub path: PathBuf,
    /// Its format.
    pub kind: FileKind,
}

/// The variables the files are found from. [`Environment::from_process`] reads them; a test
/// or an embedding program may set them itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// The user id, for `/run/containers/UID/auth.json`.
    pub uid: u32,
}

impl Environment {
    /// This process's variables (an empty one counts as unset, as the Go tools take it).
    pub fn from_process() -> Environment {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Environment {
            home: var("HOME"),
            docker_config: var("DOCKER_CONFIG"),
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            uid: rustix::process::getuid().as_raw(),
        }
    }
}

/// A user name and secret for a registry, and where it was found.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The user; `<token>` when the secret is an identity token.
    pub username: String,
    /// The password, or the identity token.
    pub secret: String,
    /// Where it came from.
    pub source: Location,
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (<hidden>) from {}", self.username, self.source)
    }
}

/// Where a credential is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In this file's `auths`.
    File(PathBuf),
    /// In the helper `docker-credential-NAME`, which this file names.
    Helper {
        /// The helper's NAME.
        name: String,
        /// The file whose `credHelpers` or `credsStore` names it.
        configured_in: PathBuf,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Helper {
                name,
                configured_in,
            } => write!(
                f,
                "the credential helper docker-credential-{name} (configured in {})",
                configured_in.display()
            ),
        }
    }
}

/// An `auths` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identitytoken: Option<String>,
}

/// What lookup reads of a file: the rest of it is left alone.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// The credential files of one environment, and an `--authfile` if one was given.
#[derive(Debug, Clone)]
pub struct CredentialFiles {
    authfile: Option<PathBuf>,
    environment: Environment,
}

impl CredentialFiles {
    /// The files of this process's environment; `authfile` (`--authfile`) is then the only
    /// one.
    pub fn new(authfile: Option<PathBuf>) -> CredentialFiles {
        CredentialFiles::with_environment(authfile, Environment::from_process())
    }

    /// The files of `environment`.
    pub fn with_environment(authfile: Option<PathBuf>, environment: Environment) -> Self {
        CredentialFiles {
            authfile,
            environment,
        }
    }

    /// The files read, in order (see the module docs). Missing ones are listed too.
    pub fn search_path(&self) -> Vec<CredentialFile> {
        let env = &self.environment;
        let named = |path: &PathBuf| CredentialFile {
            kind: kind_of(path),
            path: path.clone(),
        };
        if let Some(path) = self.authfile.as_ref().or(env.registry_auth_file.as_ref()) {
            return vec![named(path)];
        }
        let containers = |path: PathBuf| CredentialFile {
            path,
            kind: FileKind::Containers,
        };
        let mut files = vec![containers(match &env.xdg_runtime_dir {
            Some(dir) => dir.join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{}/auth.json", env.uid)),
        })];
        let config_home = env
            .xdg_config_home
            .clone()
            .or_else(|| env.home.as_ref().map(|home| home.join(".config")));
        if let Some(config_home) = config_home {
            files.push(containers(config_home.join("containers/auth.json")));
        }
        if let Some(docker) = self.docker_config_file() {
            files.push(docker);
        }
        if let Some(home) = &env.home {
            files.push(CredentialFile {
                path: home.join(".dockercfg"),
                kind: FileKind::DockerLegacy,
            });
        }
        files
    }

    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    fn docker_config_file(&self) -> Option<CredentialFile> {
        let env = &self.environment;
        let dir = env
            .docker_config
            .clone()
            .or_else(|| env.home.as_ref().map(|home| home.join(".docker")))?;
        Some(CredentialFile {
            path: dir.join("config.json"),
            kind: FileKind::Docker,
        })
    }

    /// The file `login` and `logout` change: `--authfile`, else `$REGISTRY_AUTH_FILE`, else
    /// Docker's `config.json` (see the module docs for why).
    pub fn login_file(&self) -> Result<CredentialFile, Error> {
        let env = &self.environment;
        if let Some(path) = self.authfile.as_ref().or(env.registry_auth_file.as_ref()) {
            return Ok(CredentialFile {
                kind: kind_of(path),
                path: path.clone(),
            });
        }
        self.docker_config_file().ok_or_else(|| Error::Setup {
            what: "the credentials file".into(),
            reason: "neither DOCKER_CONFIG nor HOME is set: give --authfile".into(),
        })
    }

    /// The credential for `repository` of `registry` (as [`crate::ImageReference`] names
    /// them: `docker.io` for Docker Hub), from the first file that has one.
    pub fn lookup(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<StoredCredential>, Error> {
        for file in self.search_path() {
            let Some(config) = read_config(&file)? else {
                continue;
            };
            if let Some(found) = lookup_in(&config, &file, registry, repository)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Stores `username` and `secret` for `registry` in [`CredentialFiles::login_file`], or
    /// in the helper it names for the registry; says where.
    pub fn store(&self, registry: &str, username: &str, secret: &str) -> Result<Location, Error> {
        let file = self.login_file()?;
        let config = read_config(&file)?.unwrap_or_default();
        let key = registry_key(registry);
        if let Some(helper) = helper_for(&config, registry) {
            helper_store(&helper.name, &helper.server, username, secret)?;
            return Ok(Location::Helper {
                name: helper.name,
                configured_in: file.path,
            });
        }
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{secret}"));
        let entry = AuthEntry {
            auth: Some(auth),
            ..AuthEntry::default()
        };
        edit_auths(&file, |auths| {
            // Other spellings of the same registry would be read before or after this one
            // depending on their order: one entry per registry.
            auths.retain(|k, _| !same_registry_key(k, registry, file.kind));
            auths.insert(
                key.clone(),
                serde_json::to_value(&entry).expect("an entry of strings serialises"),
            );
            true
        })?;
        Ok(Location::File(file.path))
    }

    /// Removes the credential for `registry` from [`CredentialFiles::login_file`] (and from
    /// the helper it names for the registry); says where it was, or `None` when it was in
    /// neither.
    pub fn erase(&self, registry: &str) -> Result<Option<Location>, Error> {
        let file = self.login_file()?;
        let Some(config) = read_config(&file)? else {
            return Ok(None);
        };
        let mut erased = None;
        if let Some(helper) = helper_for(&config, registry)
            && helper_erase(&helper.name, &helper.server)?
        {
            erased = Some(Location::Helper {
                name: helper.name,
                configured_in: file.path.clone(),
            });
        }
        let in_file = config
            .auths
            .keys()
            .any(|k| same_registry_key(k, registry, file.kind));
        if in_file {
            edit_auths(&file, |auths| {
                auths.retain(|k, _| !same_registry_key(k, registry, file.kind));
                true
            })?;
            erased = erased.or(Some(Location::File(file.path)));
        }
        Ok(erased)
    }

    /// A credential for `registry` in a file read before [`CredentialFiles::login_file`]:
    /// what a lookup would find instead of one `login` stores.
    pub fn shadowing(&self, registry: &str) -> Result<Option<StoredCredential>, Error> {
        let login_file = self.login_file()?;
        for file in self.search_path() {
            if file.path == login_file.path {
                break;
            }
            let Some(config) = read_config(&file)? else {
                continue;
            };
            if let Some(found) = lookup_in(&config, &file, registry, "")? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Removes every `auths` entry of [`CredentialFiles::login_file`] and, for each
    /// `credHelpers` entry, the helper's credential; returns what was removed. A `credsStore`
    /// helper is left alone: the protocol's `list` would be needed to find what it holds for
    /// whom, and it may hold other programs' secrets.
    pub fn erase_all(&self) -> Result<Vec<(String, Location)>, Error> {
        let file = self.login_file()?;
        let Some(config) = read_config(&file)? else {
            return Ok(Vec::new());
        };
        let mut erased = Vec::new();
        for (server, name) in &config.cred_helpers {
            if !name.is_empty() && helper_erase(name, server)? {
                erased.push((
                    server.clone(),
                    Location::Helper {
                        name: name.clone(),
                        configured_in: file.path.clone(),
                    },
                ));
            }
        }
        if !config.auths.is_empty() {
            edit_auths(&file, |auths| {
                auths.clear();
                true
            })?;
            erased.extend(
                config
                    .auths
                    .keys()
                    .map(|k| (k.clone(), Location::File(file.path.clone()))),
            );
        }
        Ok(erased)
    }
}

/// `auth.json` unless the name says Docker's.
fn kind_of(path: &Path) -> FileKind {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(".dockercfg") => FileKind::DockerLegacy,
        Some("config.json") => FileKind::Docker,
        _ => FileKind::Containers,
    }
}

/// The key a credential for `registry` is written under: Docker Hub's is its old API URL,
/// as docker writes it (and podman and skopeo read it).
pub(crate) fn registry_key(registry: &str) -> String {
    if normalise_registry(registry) == normalise_registry(DOCKER_HUB) {
        DOCKER_HUB_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// Docker Hub's names, as one.
fn normalise_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

/// The registry a file key names, in the normalised form: the host of a URL key
/// (`https://host/v1/`, `http://host`), any key of a legacy file cut at its first `/`.
fn normalise_key(key: &str, kind: FileKind) -> &str {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    let host = if kind == FileKind::DockerLegacy || stripped.len() != key.len() {
        stripped.split('/').next().unwrap_or(stripped)
    } else {
        stripped
    };
    normalise_registry(host)
}

/// Whether `key` names `registry` itself (in any spelling), not a namespace in it.
fn same_registry_key(key: &str, registry: &str, kind: FileKind) -> bool {
    key == registry || normalise_key(key, kind) == normalise_registry(registry)
}

/// The `auths` keys to try for `repository` of `registry`, most specific first: the
/// repository, each namespace above it, the registry (a legacy file: the registry alone).
fn lookup_keys(registry: &str, repository: &str, kind: FileKind) -> Vec<String> {
    let mut keys = Vec::new();
    if kind != FileKind::DockerLegacy && !repository.is_empty() {
        let mut key = format!("{registry}/{repository}");
        loop {
            keys.push(key.clone());
            match key.rfind('/') {
                Some(slash) if slash > registry.len() => key.truncate(slash),
                _ => break,
            }
        }
    }
    keys.push(registry.to_owned());
    keys
}

/// A helper named for a registry, and the server name it is asked with.
struct HelperChoice {
    name: String,
    server: String,
}

/// The helper `config` names for `registry`: its `credHelpers` entry (under the registry's
/// name, or for Docker Hub docker's key too), else `credsStore`. Helpers are asked with the
/// key docker uses (Docker Hub's API URL, else `host[:port]`).
fn helper_for(config: &ConfigFile, registry: &str) -> Option<HelperChoice> {
    let key = registry_key(registry);
    let named = [registry, key.as_str()]
        .into_iter()
        .find_map(|k| config.cred_helpers.get(k).filter(|name| !name.is_empty()));
    if let Some(name) = named {
        return Some(HelperChoice {
            name: name.clone(),
            server: key,
        });
    }
    config
        .creds_store
        .as_ref()
        .filter(|name| !name.is_empty())
        .map(|name| HelperChoice {
            name: name.clone(),
            server: key,
        })
}

/// The credential `config` (read from `file`) holds for `repository` of `registry`.
fn lookup_in(
    config: &ConfigFile,
    file: &CredentialFile,
    registry: &str,
    repository: &str,
) -> Result<Option<StoredCredential>, Error> {
    let helper_location = |name: &str| Location::Helper {
        name: name.to_owned(),
        configured_in: file.path.clone(),
    };
    // A registry's own helper comes first; `credsStore` only after the file's entries, which
    // docker leaves empty (`{}`) when a store holds the secret.
    let key = registry_key(registry);
    if let Some(name) = [registry, key.as_str()]
        .into_iter()
        .find_map(|k| config.cred_helpers.get(k).filter(|name| !name.is_empty()))
    {
        return Ok(
            helper_get(name, &key)?.map(|(username, secret)| StoredCredential {
                username,
                secret,
                source: helper_location(name),
            }),
        );
    }
    let exact = lookup_keys(registry, repository, file.kind)
        .into_iter()
        .find_map(|k| config.auths.get(&k).map(|entry| (k, entry)));
    let entry = exact.or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| normalise_key(k, file.kind) == normalise_registry(registry))
            .map(|(k, entry)| (k.clone(), entry))
    });
    if let Some((key, entry)) = entry
        && let Some((username, secret)) = decode_entry(entry, &key, &file.path)?
    {
        return Ok(Some(StoredCredential {
            username,
            secret,
            source: Location::File(file.path.clone()),
        }));
    }
    match config
        .creds_store
        .as_deref()
        .filter(|name| !name.is_empty())
    {
        Some(name) => Ok(
            helper_get(name, &key)?.map(|(username, secret)| StoredCredential {
                username,
                secret,
                source: helper_location(name),
            }),
        ),
        None => Ok(None),
    }
}

/// The user and secret of an `auths` entry: its identity token (as the `<token>` user), else
/// `auth`, else `username` and `password`. An empty entry (docker's marker for a credential
/// in a store) is none.
fn decode_entry(
    entry: &AuthEntry,
    key: &str,
    path: &Path,
) -> Result<Option<(String, String)>, Error> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(("<token>".to_owned(), token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let invalid = |reason: &str| Error::Setup {
            what: format!("{} (the entry {key:?})", path.display()),
            reason: reason.to_owned(),
        };
        let config = base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
        let decoded = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
            .decode(auth.trim())
            .map_err(|_| invalid("its auth is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid("its auth is not UTF-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("its auth is not USER:PASSWORD"))?;
        return Ok(Some((
            username.to_owned(),
            password.trim_matches('\0').to_owned(),
        )));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(Some((username.clone(), password.clone())))
        }
        _ => Ok(None),
    }
}

/// A file's credentials, `None` when it does not exist.
fn read_config(file: &CredentialFile) -> Result<Option<ConfigFile>, Error> {
    let Some(bytes) = read_limited(&file.path)? else {
        return Ok(None);
    };
    let invalid = |e: serde_json::Error| Error::Setup {
        what: file.path.display().to_string(),
        reason: format!("not a credentials file: {e}"),
    };
    if file.kind == FileKind::DockerLegacy {
        let auths = serde_json::from_slice(&bytes).map_err(invalid)?;
        return Ok(Some(ConfigFile {
            auths,
            ..ConfigFile::default()
        }));
    }
    // An empty file is what a user gets from `touch`: nothing in it.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(ConfigFile::default()));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(invalid)
}

fn read_limited(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let failed = |e: io::Error| Error::Setup {
        what: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let mut bytes = Vec::new();
    file.take(FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > FILE_LIMIT {
        return Err(Error::Setup {
            what: path.display().to_string(),
            reason: format!("larger than {FILE_LIMIT} bytes: not a credentials file"),
        });
    }
    Ok(Some(bytes))
}

/// Rewrites `file` with its `auths` changed by `edit` (when it returns true), every other key
/// of the file as it was. The new file is written beside it (mode 0600), synced and renamed
/// over it, so a reader sees the old file or the new one; a symbolic link is followed, as
/// docker follows it, so that a config kept elsewhere stays where it is.
fn edit_auths(
    file: &CredentialFile,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<(), Error> {
    let failed = |what: &Path, e: &dyn fmt::Display| Error::Setup {
        what: what.display().to_string(),
        reason: e.to_string(),
    };
    let path = match std::fs::canonicalize(&file.path) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => file.path.clone(),
        Err(e) => return Err(failed(&file.path, &e)),
    };
    let mut document: serde_json::Map<String, serde_json::Value> = match read_limited(&path)? {
        Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Setup {
                what: path.display().to_string(),
                reason: format!("not a credentials file (a JSON object): {e}"),
            })?,
        _ => serde_json::Map::new(),
    };
    let document = if file.kind == FileKind::DockerLegacy {
        // The legacy file is the `auths` map itself.
        if !edit(&mut document) {
            return Ok(());
        }
        document
    } else {
        let mut auths = match document.remove("auths") {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(auths)) => auths,
            Some(_) => return Err(failed(&path, &"its \"auths\" is not an object")),
        };
        if !edit(&mut auths) {
            return Ok(());
        }
        document.insert("auths".into(), serde_json::Value::Object(auths));
        document
    };
    let mut bytes = serde_json::to_vec_pretty(&document).expect("a JSON value serialises to bytes");
    bytes.push(b'\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed(dir, &e))?;
    }
    let mut options = atomic_write_file::OpenOptions::new();
    {
        use atomic_write_file::unix::OpenOptionsExt as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        options.preserve_mode(false).mode(0o600);
    }
    let mut out = options.open(&path).map_err(|e| failed(&path, &e))?;
    out.write_all(&bytes).map_err(|e| failed(&path, &e))?;
    out.commit().map_err(|e| failed(&path, &e))
}

/// The helper's full program name.
fn helper_program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Runs `docker-credential-NAME action` with `input` on stdin: its exit status and stdout.
fn run_helper(name: &str, action: &str, input: &[u8]) -> Result<(bool, String, String), Error> {
    let program = helper_program(name);
    let failed = |reason: String| Error::Setup {
        what: format!("the credential helper {program} ({action})"),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            failed(if e.kind() == io::ErrorKind::NotFound {
                "not found on PATH".to_owned()
            } else {
                e.to_string()
            })
        })?;
    // A helper that exits without reading its input closes the pipe: its exit says more.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    ))
}

/// The error of a helper that failed: what it said, one line.
fn helper_failed(name: &str, action: &str, stdout: &str, stderr: &str) -> Error {
    let said = [stdout, stderr]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Error::Setup {
        what: format!("the credential helper {} ({action})", helper_program(name)),
        reason: if said.is_empty() {
            "failed and said nothing".to_owned()
        } else {
            format!("failed: {}", oci_core::printable(&said.replace('\n', " ")))
        },
    }
}

/// `get`: the user and secret the helper holds for `server`, `None` when it holds none.
fn helper_get(name: &str, server: &str) -> Result<Option<(String, String)>, Error> {
    let (ok, stdout, stderr) = run_helper(name, "get", server.as_bytes())?;
    if !ok {
        if stdout == HELPER_NOT_FOUND {
            return Ok(None);
        }
        return Err(helper_failed(name, "get", &stdout, &stderr));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        #[serde(default)]
        username: String,
        #[serde(default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(&stdout).map_err(|e| Error::Setup {
        what: format!("the credential helper {} (get)", helper_program(name)),
        reason: format!("answered something that is not the helper protocol's JSON: {e}"),
    })?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some((answer.username, answer.secret)))
}

/// `store`: gives the helper `username` and `secret` for `server`.
fn helper_store(name: &str, server: &str, username: &str, secret: &str) -> Result<(), Error> {
    let input = serde_json::json!({
        "ServerURL": server,
        "Username": username,
        "Secret": secret,
    })
    .to_string();
    let (ok, stdout, stderr) = run_helper(name, "store", input.as_bytes())?;
    if ok {
        Ok(())
    } else {
        Err(helper_failed(name, "store", &stdout, &stderr))
    }
}

/// `erase`: whether the helper held something for `server` (and now does not).
fn helper_erase(name: &str, server: &str) -> Result<bool, Error> {
    let (ok, stdout, stderr) = run_helper(name, "erase", server.as_bytes())?;
    match (ok, stdout.as_str()) {
        (true, _) => Ok(true),
        (false, HELPER_NOT_FOUND) => Ok(false),
        (false, _) => Err(helper_failed(name, "erase", &stdout, &stderr)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> ConfigFile {
        serde_json::from_value(json).expect("a config")
    }

    fn auth(user: &str, password: &str) -> serde_json::Value {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        serde_json::json!({ "auth": encoded })
    }

    /// The user `config` (a file of `kind`) gives for `registry`/`repository`.
    fn user_for(
        config: &ConfigFile,
        kind: FileKind,
        registry: &str,
        repository: &str,
    ) -> Option<String> {
        let file = CredentialFile {
            path: PathBuf::from("/nowhere/auth.json"),
            kind,
        };
        lookup_in(config, &file, registry, repository)
            .expect("no helper is asked")
            .map(|found| found.username)
    }

    #[test]
    fn the_most_specific_key_wins() {
        let file = config(serde_json::json!({"auths": {
            "registry.example/team/app": auth("app", "p"),
            "registry.example/team": auth("team", "p"),
            "registry.example": auth("host", "p"),
            "registry.example:5000": auth("port", "p"),
        }}));
        let check = |repository: &str, expected: &str| {
            assert_eq!(
                user_for(&file, FileKind::Containers, "registry.example", repository).as_deref(),
                Some(expected),
                "{repository}"
            );
        };
        check("team/app", "app");
        check("team/app/sub", "app");
        check("team/other", "team");
        check("team", "team");
        check("teams/app", "host");
        check("other", "host");
        assert_eq!(
            user_for(
                &file,
                FileKind::Containers,
                "registry.example:5000",
                "team/app"
            )
            .as_deref(),
            Some("port")
        );
        assert_eq!(
            user_for(&file, FileKind::Containers, "registry.example:5001", "x"),
            None
        );
    }

    #[test]
    fn lookup_keys_go_from_the_repository_up_to_the_registry() {
        assert_eq!(
            lookup_keys("quay.io", "ns/sub/image", FileKind::Docker),
            [
                "quay.io/ns/sub/image",
                "quay.io/ns/sub",
                "quay.io/ns",
                "quay.io"
            ]
        );
        assert_eq!(
            lookup_keys("localhost:5000", "a", FileKind::Containers),
            ["localhost:5000/a", "localhost:5000"]
        );
        assert_eq!(
            lookup_keys("quay.io", "ns/image", FileKind::DockerLegacy),
            ["quay.io"]
        );
    }

    #[test]
    fn legacy_url_keys_and_docker_hub_keys_match_as_docker_matches_them() {
        let cases = [
            // key in the file, registry asked for, whether it matches
            ("https://index.docker.io/v1/", "docker.io", true),
            ("index.docker.io", "docker.io", true),
            ("docker.io", "docker.io", true),
            ("registry-1.docker.io", "docker.io", true),
            ("https://registry.example/v1/", "registry.example", true),
            ("http://registry.example", "registry.example", true),
            (
                "https://registry.example:5000/v2/",
                "registry.example:5000",
                true,
            ),
            ("https://registry.example:5000", "registry.example", false),
            ("registry.example.com", "registry.example", false),
            ("https://index.docker.io/v1/", "quay.io", false),
        ];
        for (key, registry, matches) in cases {
            let file = config(serde_json::json!({"auths": { key: auth("u", "p") }}));
            assert_eq!(
                user_for(&file, FileKind::Docker, registry, "library/alpine").is_some(),
                matches,
                "{key} for {registry}"
            );
        }
        // A legacy file's keys are cut at their first `/`, URL or not.
        let legacy = config(serde_json::json!({"auths": {"quay.io/ns": auth("u", "p")}}));
        assert!(user_for(&legacy, FileKind::DockerLegacy, "quay.io", "ns/x").is_some());
        assert!(user_for(&legacy, FileKind::Docker, "quay.io", "other/x").is_none());
    }

    #[test]
    fn an_exact_key_wins_over_another_spelling_of_the_registry() {
        let file = config(serde_json::json!({"auths": {
            "https://index.docker.io/v1/": auth("docker", "p"),
            "docker.io": auth("podman", "p"),
        }}));
        assert_eq!(
            user_for(&file, FileKind::Docker, "docker.io", "library/alpine").as_deref(),
            Some("podman")
        );
    }

    #[test]
    fn entries_decode_as_docker_writes_them() {
        let path = Path::new("/x/config.json");
        let entry =
            |json: serde_json::Value| -> AuthEntry { serde_json::from_value(json).unwrap() };
        let decode = |json| decode_entry(&entry(json), "k", path);
        assert_eq!(
            decode(auth("user", "pass:with:colons")).unwrap(),
            Some(("user".into(), "pass:with:colons".into()))
        );
        // Docker writes no padding in some versions.
        assert_eq!(
            decode(serde_json::json!({"auth": "dTpw"})).unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(
            decode(serde_json::json!({"auth": "dTpwcQ"})).unwrap(),
            Some(("u".into(), "pq".into()))
        );
        assert_eq!(
            decode(serde_json::json!({"username": "u", "password": "p"})).unwrap(),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(
            decode(serde_json::json!({"auth": "dTpw", "identitytoken": "refresh"})).unwrap(),
            Some(("<token>".into(), "refresh".into()))
        );
        // docker's marker for a credential kept in a store.
        assert_eq!(decode(serde_json::json!({})).unwrap(), None);
        let error = decode(serde_json::json!({"auth": "bm9jb2xvbg=="}))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/x/config.json") && error.contains("USER:PASSWORD"),
            "{error}"
        );
        assert!(decode(serde_json::json!({"auth": "!!"})).is_err());
    }

    #[test]
    fn the_search_path_is_the_documented_one() {
        let env = Environment {
            home: Some("/home/u".into()),
            docker_config: None,
            registry_auth_file: None,
            xdg_runtime_dir: Some("/run/user/1000".into()),
            xdg_config_home: None,
            uid: 1000,
        };
        let paths = |files: &CredentialFiles| -> Vec<(String, FileKind)> {
            files
                .search_path()
                .into_iter()
                .map(|f| (f.path.display().to_string(), f.kind))
                .collect()
        };
        let files = CredentialFiles::with_environment(None, env.clone());
        assert_eq!(
            paths(&files),
            [
                (
                    "/run/user/1000/containers/auth.json".into(),
                    FileKind::Containers
                ),
                (
                    "/home/u/.config/containers/auth.json".into(),
                    FileKind::Containers
                ),
                ("/home/u/.docker/config.json".into(), FileKind::Docker),
                ("/home/u/.dockercfg".into(), FileKind::DockerLegacy),
            ]
        );
        assert_eq!(
            files.login_file().unwrap().path,
            Path::new("/home/u/.docker/config.json")
        );
        let moved = Environment {
            docker_config: Some("/etc/dc".into()),
            xdg_runtime_dir: None,
            xdg_config_home: Some("/cfg".into()),
            uid: 0,
            ..env.clone()
        };
        let files = CredentialFiles::with_environment(None, moved);
        assert_eq!(
            paths(&files),
            [
                ("/run/containers/0/auth.json".into(), FileKind::Containers),
                ("/cfg/containers/auth.json".into(), FileKind::Containers),
                ("/etc/dc/config.json".into(), FileKind::Docker),
                ("/home/u/.dockercfg".into(), FileKind::DockerLegacy),
            ]
        );
        assert_eq!(
            files.login_file().unwrap().path,
            Path::new("/etc/dc/config.json")
        );
        // A file the user names is the only one read, and the one written.
        let named = Environment {
            registry_auth_file: Some("/a/auth.json".into()),
            ..env.clone()
        };
        let files = CredentialFiles::with_environment(None, named.clone());
        assert_eq!(
            paths(&files),
            [("/a/auth.json".into(), FileKind::Containers)]
        );
        let files = CredentialFiles::with_environment(Some("/b/config.json".into()), named);
        assert_eq!(paths(&files), [("/b/config.json".into(), FileKind::Docker)]);
        assert_eq!(
            files.login_file().unwrap().path,
            Path::new("/b/config.json")
        );
        let homeless = CredentialFiles::with_environment(None, Environment::default());
        assert!(homeless.login_file().is_err());
    }

    #[test]
    fn store_and_erase_change_one_registry_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker/config.json");
        fs_write_json(
            &path,
            &serde_json::json!({
                "auths": {
                    "index.docker.io": auth("old", "p"),
                    "https://registry.example/v1/": auth("old", "p"),
                    "registry.example/team": auth("team", "p"),
                    "other.example": auth("other", "p"),
                },
                "currentContext": "default",
                "detachKeys": "ctrl-e,e",
            }),
        );
        let files = CredentialFiles::with_environment(Some(path.clone()), Environment::default());
        assert_eq!(
            files.store("docker.io", "hub", "secret").unwrap(),
            Location::File(path.clone())
        );
        assert_eq!(
            files.store("registry.example", "new", "secret").unwrap(),
            Location::File(path.clone())
        );
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "auths": {
                    DOCKER_HUB_KEY: auth("hub", "secret"),
                    "registry.example": auth("new", "secret"),
                    "registry.example/team": auth("team", "p"),
                    "other.example": auth("other", "p"),
                },
                "currentContext": "default",
                "detachKeys": "ctrl-e,e",
            })
        );
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let found = files
            .lookup("docker.io", "library/alpine")
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.username.as_str(), found.secret.as_str()),
            ("hub", "secret")
        );
        let found = files
            .lookup("registry.example", "team/app")
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "team");

        assert_eq!(
            files.erase("registry.example").unwrap(),
            Some(Location::File(path.clone()))
        );
        assert_eq!(files.erase("registry.example").unwrap(), None);
        assert_eq!(
            files
                .lookup("registry.example", "team/app")
                .unwrap()
                .unwrap()
                .username,
            "team",
            "a namespace's entry is not the registry's"
        );
        let erased: Vec<String> = files
            .erase_all()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            erased,
            [DOCKER_HUB_KEY, "other.example", "registry.example/team"]
        );
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "auths": {},
                "currentContext": "default",
                "detachKeys": "ctrl-e,e",
            })
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, "{not json").unwrap();
        let files = CredentialFiles::with_environment(Some(path.clone()), Environment::default());
        for error in [
            files.lookup("registry.example", "a").unwrap_err(),
            files.store("registry.example", "u", "p").unwrap_err(),
        ] {
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{not json",
            "left as it was"
        );
    }

    fn fs_write_json(path: &Path, value: &serde_json::Value) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec(value).unwrap()).unwrap();
    }

    #[test]
    fn docker_hub_is_written_under_dockers_key() {
        assert_eq!(registry_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("localhost:5000"), "localhost:5000");
    }
}
