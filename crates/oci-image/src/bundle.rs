//! An OCI runtime bundle's `config.json` from an image config, by the image-spec's
//! [conversion rules](https://github.com/opencontainers/image-spec/blob/main/conversion.md).
//!
//! What the image decides:
//! - `process.args`: `Entrypoint` followed by `Cmd`. An image with neither gets no `args`: the
//!   bundle is valid, and a runtime refuses to start it until a command is given (umoci writes
//!   runc's default `sh` instead, a command the image never named).
//! - `process.env`: `PATH` (the usual default) and `TERM=xterm` unless the image sets them,
//!   then the image's `Env` in its order, then `HOME` from the user's `/etc/passwd` entry
//!   unless the image sets it: the converter may add variables, never change the image's.
//! - `process.cwd`: `WorkingDir`, else `/`.
//! - `process.user`: from `User` (`user`, `uid`, `user:group`, `uid:gid`, `uid:group`,
//!   `user:gid`; empty is root). Names are looked up in the rootfs's `/etc/passwd` and
//!   `/etc/group`; a user given without a group gets the passwd entry's group, and a user
//!   given by name without a group also the groups that list it as a member
//!   (`additionalGids`). A name not found is an error, as the conversion rules require.
//! - `annotations`: `org.opencontainers.image.{os,architecture,variant,os.version,os.features,
//!   author,created,stopSignal,exposedPorts}` from the fields that are set, then the labels,
//!   which win over any of those.
//!
//! What is ours (implementation-defined): `terminal` false (the bundle runs from a script or a
//! service as well as from a terminal), `root.path` `rootfs`, and runc's defaults as
//! `umoci unpack` writes them: the capabilities `CAP_AUDIT_WRITE`, `CAP_KILL`,
//! `CAP_NET_BIND_SERVICE`, `noNewPrivileges`, `RLIMIT_NOFILE` 1024, the mounts (`/proc`,
//! `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`, `/sys/fs/cgroup`), the pid,
//! network, ipc, uts and mount namespaces, no device access, and the masked and read-only
//! paths. Rootless ([`BundleOptions::rootless`]): a user namespace mapping container root to
//! the calling user and group, no network namespace (it could not be configured) and no
//! resources, `/sys` bind-mounted and no cgroup mount, as `umoci unpack --rootless` writes.
//!
//! **Confinement:** `/etc/passwd` and `/etc/group` are opened with `openat2` and
//! `RESOLVE_IN_ROOT` below a descriptor of the rootfs: every symlink on the way, absolute or
//! with `..`, resolves inside the rootfs, so an image whose `/etc` is a symlink to the host's
//! `/etc`, or whose `/etc/passwd` names `/etc/shadow`, reads its own files (or none), never the
//! host's. Where the kernel has no `openat2`, the path is walked one component at a time with
//! `O_NOFOLLOW`, and a symlink on it is an error. Only a regular file is read, and at most
//! [`MAX_ACCOUNT_FILE`] bytes of it.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Linux, LinuxDeviceCgroup, LinuxNamespaceType, LinuxResources, Mount, Process, Root, Spec, User,
    get_default_mounts, get_rootless_mounts,
};
use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::{Error, Result};

/// The largest `/etc/passwd` or `/etc/group` read: an image's account files are a few KiB, and
/// a crafted one must not exhaust memory.
pub const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// The `PATH` a process gets when the image sets none (runc's and umoci's default).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime-spec version written; every field written exists since 1.0.
const OCI_VERSION: &str = "1.0.2";

/// How a bundle's config is made and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleOptions {
    /// For a runtime run by an unprivileged user: a user namespace mapping container root to
    /// the calling user and group (see the module docs).
    pub rootless: bool,
    /// `config.json` and the bundle directory are fsynced (off under `--relaxed`).
    pub durable: bool,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            rootless: false,
            durable: true,
        }
    }
}

/// The runtime config for running `config`'s image from `rootfs` (see the module docs).
///
/// `root.path` is `rootfs` relative to `bundle_dir` when it lies directly in it as `rootfs`,
/// else `rootfs` as given. The user named by the image is looked up in `rootfs`, confined to
/// it.
pub fn runtime_config(
    config: &ImageConfiguration,
    bundle_dir: &Path,
    rootfs: &Path,
    options: &BundleOptions,
) -> Result<Spec> {
    let runtime = config.config().clone().unwrap_or_default();
    let accounts = Accounts { rootfs };
    let user = resolve_user(runtime.user().as_deref().unwrap_or(""), &accounts)?;

    let image_env = runtime.env().clone().unwrap_or_default();
    let sets = |name: &str| {
        image_env
            .iter()
            .any(|entry| entry.split_once('=').map_or(entry.as_str(), |(n, _)| n) == name)
    };
    let mut env = Vec::new();
    if !sets("PATH") {
        env.push(DEFAULT_PATH.to_owned());
    }
    if !sets("TERM") {
        env.push("TERM=xterm".to_owned());
    }
    env.extend(image_env.iter().cloned());
    if let Some(home) = &user.home
        && !sets("HOME")
    {
        env.push(format!("HOME={home}"));
    }

    let args: Vec<String> = runtime
        .entrypoint()
        .iter()
        .flatten()
        .chain(runtime.cmd().iter().flatten())
        .cloned()
        .collect();
    let cwd = runtime
        .working_dir()
        .as_deref()
        .filter(|dir| !dir.is_empty())
        .unwrap_or("/");

    let mut process = Process::default();
    process
        .set_terminal(Some(false))
        .set_args((!args.is_empty()).then_some(args))
        .set_env(Some(env))
        .set_cwd(PathBuf::from(cwd))
        .set_user(user.spec);

    let root_path = if rootfs == bundle_dir.join("rootfs") {
        PathBuf::from("rootfs")
    } else {
        rootfs.to_path_buf()
    };
    let mut root = Root::default();
    root.set_path(root_path).set_readonly(None);

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_owned())
        .set_hostname(Some("oci-layout".to_owned()))
        .set_process(Some(process))
        .set_root(Some(root))
        .set_annotations(Some(annotations(config)));
    if options.rootless {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let mut linux = Linux::rootless(uid, gid);
        without_cgroup_namespace(&mut linux);
        spec.set_linux(Some(linux))
            .set_mounts(Some(rootless_mounts()));
    } else {
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all.set_allow(false).set_access(Some("rwm".to_owned()));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![deny_all]));
        let mut linux = Linux::default();
        linux.set_resources(Some(resources));
        without_cgroup_namespace(&mut linux);
        spec.set_linux(Some(linux))
            .set_mounts(Some(get_default_mounts()));
    }
    Ok(spec)
}

/// Writes `config.json` into `bundle_dir`, atomically: a temp file beside it renamed over the
/// name, so the name never holds a partial config. Call it last, once the rootfs is complete:
/// a bundle without `config.json` is not runnable, and an interrupted one must not look so.
pub fn write_bundle_config(
    bundle_dir: &Path,
    rootfs: &Path,
    config: &ImageConfiguration,
    options: &BundleOptions,
) -> Result<()> {
    let spec = runtime_config(config, bundle_dir, rootfs, options)?;
    let target = bundle_dir.join("config.json");
    let mut json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Source {
        path: target.clone(),
        reason: format!("cannot serialise the runtime config: {e}"),
    })?;
    json.push(b'\n');
    let mut temp = tempfile::Builder::new()
        .prefix(".config.json-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(bundle_dir)
        .map_err(|e| Error::io(bundle_dir, e))?;
    temp.write_all(&json)
        .map_err(|e| Error::io(temp.path(), e))?;
    if options.durable {
        temp.as_file()
            .sync_all()
            .map_err(|e| Error::io(temp.path(), e))?;
    }
    temp.persist(&target)
        .map_err(|e| Error::io(&target, e.error))?;
    if options.durable {
        File::open(bundle_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::io(bundle_dir, e))?;
    }
    Ok(())
}

/// The implicit annotations of the conversion rules, then the labels, which take precedence.
fn annotations(config: &ImageConfiguration) -> std::collections::HashMap<String, String> {
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        annotations.insert(format!("org.opencontainers.image.{key}"), value);
    };
    put("os", config.os().to_string());
    put("architecture", config.architecture().to_string());
    if let Some(variant) = config.variant() {
        put("variant", variant.clone());
    }
    if let Some(version) = config.os_version() {
        put("os.version", version.clone());
    }
    if let Some(features) = config.os_features().as_ref().filter(|f| !f.is_empty()) {
        put("os.features", features.join(","));
    }
    if let Some(author) = config.author() {
        put("author", author.clone());
    }
    if let Some(created) = config.created() {
        put("created", created.clone());
    }
    if let Some(runtime) = config.config() {
        if let Some(signal) = runtime.stop_signal() {
            put("stopSignal", signal.clone());
        }
        if let Some(ports) = runtime.exposed_ports().as_ref().filter(|p| !p.is_empty()) {
            let mut ports = ports.clone();
            ports.sort_unstable();
            put("exposedPorts", ports.join(","));
        }
        for (key, value) in runtime.labels().iter().flatten() {
            annotations.insert(key.clone(), value.clone());
        }
    }
    annotations.into_iter().collect()
}

/// runc's default namespaces (as `runc spec` 1.1 and umoci write them) have no cgroup
/// namespace; oci-spec's add one.
fn without_cgroup_namespace(linux: &mut Linux) {
    let namespaces = linux.namespaces().clone().map(|mut namespaces| {
        namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Cgroup);
        namespaces
    });
    linux.set_namespaces(namespaces);
}

/// runc's rootless mounts: `/sys` bind-mounted read-only (sysfs cannot be mounted without the
/// network namespace's owner), no `gid=5` on `/dev/pts`, no cgroup mount.
fn rootless_mounts() -> Vec<Mount> {
    let mut mounts = get_rootless_mounts();
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    for mount in &mut mounts {
        if mount.destination() == Path::new("/sys") {
            mount.set_typ(Some("bind".to_owned())).set_options(Some(
                ["rbind", "nosuid", "noexec", "nodev", "ro"]
                    .map(str::to_owned)
                    .to_vec(),
            ));
        }
    }
    mounts
}

/// The process's user, and its home directory when the passwd file names one.
#[derive(Debug, PartialEq)]
struct ResolvedUser {
    spec: User,
    home: Option<String>,
}

/// `/etc/passwd` and `/etc/group` of a rootfs, read confined to it.
struct Accounts<'r> {
    rootfs: &'r Path,
}

/// One line of `/etc/passwd`.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of `/etc/group`.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

impl Accounts<'_> {
    /// The file's text; `None` when the rootfs has no such file.
    fn read(&self, name: &str) -> Result<Option<String>> {
        let relative = Path::new("etc").join(name);
        let path = self.rootfs.join(&relative);
        let Some(file) = open_in_root(self.rootfs, &relative)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        (&file)
            .take(MAX_ACCOUNT_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > MAX_ACCOUNT_FILE {
            return Err(Error::Source {
                path,
                reason: format!("larger than {MAX_ACCOUNT_FILE} bytes"),
            });
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn passwd(&self) -> Result<Vec<PasswdEntry>> {
        let text = self.read("passwd")?.unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                if line.starts_with('#') || fields.len() < 7 {
                    return None;
                }
                Some(PasswdEntry {
                    name: fields[0].to_owned(),
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                    home: fields[5].to_owned(),
                })
            })
            .collect())
    }

    fn groups(&self) -> Result<Vec<GroupEntry>> {
        let text = self.read("group")?.unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                if line.starts_with('#') || fields.len() < 4 {
                    return None;
                }
                Some(GroupEntry {
                    name: fields[0].to_owned(),
                    gid: fields[2].parse().ok()?,
                    members: fields[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect())
    }

    fn not_found(&self, file: &str, what: &str, value: &str) -> Error {
        Error::Source {
            path: self.rootfs.join("etc").join(file),
            reason: format!("the image's user names {what} {value:?}, which is not in it"),
        }
    }
}

/// `Config.User` as the conversion rules read it (see the module docs).
fn resolve_user(user: &str, accounts: &Accounts<'_>) -> Result<ResolvedUser> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = accounts.passwd()?;
    let (uid, entry) = match user_part.parse::<u32>() {
        Ok(uid) => (uid, passwd.iter().find(|e| e.uid == uid)),
        Err(_) => {
            let entry = passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| accounts.not_found("passwd", "user", user_part))?;
            (entry.uid, Some(entry))
        }
    };
    let by_name = user_part.parse::<u32>().is_err();
    let mut additional = Vec::new();
    let gid = match group_part.filter(|g| !g.is_empty()) {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                accounts
                    .groups()?
                    .iter()
                    .find(|g| g.name == group)
                    .ok_or_else(|| accounts.not_found("group", "group", group))?
                    .gid
            }
        },
        None => {
            let gid = entry.map_or(0, |e| e.gid);
            if by_name {
                for group in accounts.groups()? {
                    if group.members.iter().any(|m| m == user_part)
                        && group.gid != gid
                        && !additional.contains(&group.gid)
                    {
                        additional.push(group.gid);
                    }
                }
            }
            gid
        }
    };
    let mut spec = User::default();
    spec.set_uid(uid)
        .set_gid(gid)
        .set_additional_gids((!additional.is_empty()).then_some(additional));
    Ok(ResolvedUser {
        spec,
        home: entry.map(|e| e.home.clone()).filter(|h| !h.is_empty()),
    })
}

/// Opens `relative` (no `..`, not absolute) below `root` for reading, every symlink resolved
/// inside `root`; `None` when it does not exist. Only a regular file is returned.
fn open_in_root(root: &Path, relative: &Path) -> Result<Option<File>> {
    let path = root.join(relative);
    let root_fd = rustix::fs::openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(root, e.into()))?;
    // O_NONBLOCK: a FIFO planted at the name opens without waiting for a writer; it is then
    // refused by type, never read.
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let opened = match rustix::fs::openat2(
        &root_fd,
        relative,
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(Errno::NOSYS) => open_by_components(&root_fd, relative, flags),
        other => other,
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::io(&path, e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io(&path, e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Error::Source {
            path,
            reason: "not a regular file".to_owned(),
        });
    }
    rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| Error::io(&path, e.into()))?;
    Ok(Some(File::from(fd)))
}

/// `openat2`'s fallback: one component at a time, none of them followed if a symlink
/// (`ELOOP`: refused, since only the kernel can resolve one inside the root safely).
fn open_by_components(
    root: &OwnedFd,
    relative: &Path,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    let names: Vec<&OsStr> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((last, dirs)) = names.split_last() else {
        return Err(Errno::INVAL);
    };
    let mut dir: Option<OwnedFd> = None;
    for name in dirs {
        let parent = dir.as_ref().unwrap_or(root);
        dir = Some(rustix::fs::openat(
            parent,
            *name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
    }
    let parent = dir.as_ref().unwrap_or(root);
    rustix::fs::openat(parent, *last, flags | OFlags::NOFOLLOW, Mode::empty())
}
