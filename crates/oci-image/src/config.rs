//! The image configuration: oci-spec's type, what it does not model kept aside, and the
//! runtime settings a build changes.

use std::collections::BTreeMap;

use oci_core::Digest;
use oci_core::oci_spec::image::{Config, History, ImageConfiguration, Platform, RootFs};
use serde_json::{Map, Value};

use crate::{Error, Result, platform};

/// The top-level fields oci-spec's `ImageConfiguration` models.
const SPEC_KEYS: [&str; 10] = [
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "config",
    "rootfs",
    "history",
];

/// The runtime (`config`) fields oci-spec's `Config` models.
const RUNTIME_KEYS: [&str; 9] = [
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
];

/// An image configuration.
///
/// The typed part is oci-spec's [`ImageConfiguration`]. A base image's config may carry
/// fields oci-spec does not model (Docker's `Healthcheck`, `OnBuild`, `Shell`,
/// `container_config`, ...): they are kept aside and written back unchanged, so building on
/// a base loses nothing of its config.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    spec: ImageConfiguration,
    extra: Map<String, Value>,
    extra_runtime: Map<String, Value>,
}

impl ImageConfig {
    /// An empty config for `platform`: no layers, no runtime settings.
    pub fn new(platform: &Platform) -> ImageConfig {
        let mut spec = ImageConfiguration::default();
        spec.set_os(platform.os().clone());
        spec.set_architecture(platform.architecture().clone());
        spec.set_variant(platform.variant().clone());
        spec.set_rootfs(RootFs::default());
        ImageConfig {
            spec,
            extra: Map::new(),
            extra_runtime: Map::new(),
        }
    }

    /// Parses a stored config (OCI or Docker).
    pub fn parse(bytes: &[u8]) -> serde_json::Result<ImageConfig> {
        let value: Value = serde_json::from_slice(bytes)?;
        let mut extra = Map::new();
        let mut extra_runtime = Map::new();
        if let Value::Object(object) = &value {
            for (key, v) in object {
                if !SPEC_KEYS.contains(&key.as_str()) {
                    extra.insert(key.clone(), v.clone());
                }
            }
            if let Some(Value::Object(runtime)) = object.get("config") {
                for (key, v) in runtime {
                    if !RUNTIME_KEYS.contains(&key.as_str()) {
                        extra_runtime.insert(key.clone(), v.clone());
                    }
                }
            }
        }
        let spec = serde_json::from_value(value)?;
        Ok(ImageConfig {
            spec,
            extra,
            extra_runtime,
        })
    }

    /// The canonical bytes: keys sorted, compact, the kept-aside fields merged back in.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut value = serde_json::to_value(&self.spec)?;
        if let Value::Object(object) = &mut value {
            for (key, v) in &self.extra {
                object.entry(key.clone()).or_insert_with(|| v.clone());
            }
            if !self.extra_runtime.is_empty() {
                let runtime = object
                    .entry("config")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(runtime) = runtime {
                    for (key, v) in &self.extra_runtime {
                        runtime.entry(key.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        oci_core::index::to_canonical_json(&value)
    }

    /// The typed configuration.
    pub fn spec(&self) -> &ImageConfiguration {
        &self.spec
    }

    /// The typed configuration, to change.
    pub fn spec_mut(&mut self) -> &mut ImageConfiguration {
        &mut self.spec
    }

    /// The fields oci-spec does not model, as read (top level, then inside `config`).
    pub fn unmodelled(&self) -> (&Map<String, Value>, &Map<String, Value>) {
        (&self.extra, &self.extra_runtime)
    }

    /// The platform the config names (os, architecture, variant, os.version, os.features).
    pub fn platform(&self) -> Platform {
        let mut platform = platform::build(
            &self.spec.os().to_string(),
            &self.spec.architecture().to_string(),
            self.spec.variant().as_deref().filter(|v| !v.is_empty()),
        );
        platform.set_os_version(self.spec.os_version().clone());
        platform.set_os_features(self.spec.os_features().clone());
        platform
    }

    /// Appends a layer: its diff_id to `rootfs.diff_ids`, and `history` to the history.
    pub fn push_layer(&mut self, diff_id: Digest, history: History) {
        self.spec
            .rootfs_mut()
            .diff_ids_mut()
            .push(diff_id.to_string());
        let mut entries = self.spec.history().clone().unwrap_or_default();
        entries.push(history);
        self.spec.set_history(Some(entries));
    }

    /// Applies runtime settings; see [`RuntimeOverrides`] for how each one combines with what
    /// is there.
    pub fn apply(&mut self, overrides: &RuntimeOverrides) -> Result<()> {
        let mut runtime = self.spec.config().clone().unwrap_or_default();
        if let Some(entrypoint) = &overrides.entrypoint {
            runtime.set_entrypoint(non_empty(entrypoint));
            if overrides.cmd.is_none() {
                // As with Dockerfile's ENTRYPOINT: the base's Cmd was arguments for the base's
                // entrypoint, not for this one.
                runtime.set_cmd(None);
            }
        }
        if let Some(cmd) = &overrides.cmd {
            runtime.set_cmd(non_empty(cmd));
        }
        if !overrides.env.is_empty() {
            let mut env = runtime.env().clone().unwrap_or_default();
            for entry in &overrides.env {
                let Some((name, _)) = entry.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                    return Err(Error::invalid("env", entry, "expected NAME=VALUE"));
                };
                let prefix = format!("{name}=");
                match env
                    .iter_mut()
                    .find(|e| e.starts_with(&prefix) || *e == name)
                {
                    Some(existing) => existing.clone_from(entry),
                    None => env.push(entry.clone()),
                }
            }
            runtime.set_env(Some(env));
        }
        if !overrides.labels.is_empty() {
            let mut labels = runtime.labels().clone().unwrap_or_default();
            for (key, value) in &overrides.labels {
                if key.is_empty() {
                    return Err(Error::invalid(
                        "label",
                        format!("={value}"),
                        "expected KEY=VALUE",
                    ));
                }
                labels.insert(key.clone(), value.clone());
            }
            runtime.set_labels(Some(labels));
        }
        if !overrides.exposed_ports.is_empty() {
            let mut ports = runtime.exposed_ports().clone().unwrap_or_default();
            for port in &overrides.exposed_ports {
                let port = normalize_port(port)?;
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
            ports.sort();
            runtime.set_exposed_ports(Some(ports));
        }
        if let Some(dir) = &overrides.working_dir {
            runtime.set_working_dir(Some(dir.clone()).filter(|d| !d.is_empty()));
        }
        if let Some(user) = &overrides.user {
            runtime.set_user(Some(user.clone()).filter(|u| !u.is_empty()));
        }
        let empty = runtime == Config::default() && self.extra_runtime.is_empty();
        self.spec
            .set_config(if empty { None } else { Some(runtime) });
        Ok(())
    }
}

fn non_empty(args: &[String]) -> Option<Vec<String>> {
    if args.is_empty() {
        None
    } else {
        Some(args.to_vec())
    }
}

/// `80` → `80/tcp`; `53/udp` stays; anything else is refused.
fn normalize_port(port: &str) -> Result<String> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let valid_number = number.parse::<u16>().is_ok_and(|n| n > 0);
    if !valid_number || !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(Error::invalid(
            "exposed port",
            port,
            "expected PORT or PORT/tcp|udp|sctp, PORT in 1..=65535",
        ));
    }
    Ok(format!("{number}/{protocol}"))
}

/// Runtime settings for a new image (Docker's `config` object). `None` and empty lists leave
/// what is there (a base image's settings) unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOverrides {
    /// `Entrypoint`. Setting it without [`RuntimeOverrides::cmd`] clears a base image's
    /// `Cmd`, as Dockerfile's `ENTRYPOINT` does; an empty list removes it.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`; an empty list removes it.
    pub cmd: Option<Vec<String>>,
    /// `Env` entries, `NAME=VALUE`; each replaces an entry of the same name.
    pub env: Vec<String>,
    /// `Labels`, added to (or replacing) the base's.
    pub labels: BTreeMap<String, String>,
    /// `WorkingDir`; empty removes it.
    pub working_dir: Option<String>,
    /// `User`; empty removes it.
    pub user: Option<String>,
    /// `ExposedPorts`, `PORT[/tcp|udp|sctp]`, added to the base's.
    pub exposed_ports: Vec<String>,
}

/// The last second RFC 3339 can write (`9999-12-31T23:59:59Z`): a later `created` has five
/// year digits, which Go's time parser (skopeo, containerd) refuses.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH` (seconds since the epoch) when it is set and not empty; an error when
/// it is not a number, as the reproducible-builds specification asks, or past
/// [`MAX_TIMESTAMP`].
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.is_empty() => match value.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_TIMESTAMP => Ok(Some(seconds)),
            Ok(_) => Err(Error::invalid(
                "SOURCE_DATE_EPOCH",
                value,
                "after 9999-12-31T23:59:59Z, which a timestamp cannot say",
            )),
            Err(_) => Err(Error::invalid(
                "SOURCE_DATE_EPOCH",
                value,
                "expected a number of seconds since 1970-01-01T00:00:00Z",
            )),
        },
        _ => Ok(None),
    }
}

/// RFC 3339 UTC for seconds since the epoch: `1970-01-01T00:00:00Z`.
pub fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (no negative days here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Seconds since the epoch now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
