//! A runtime bundle's config.json from an image config: the conversion rules one by one, the
//! user lookup confined to the rootfs, the atomic write, and the fields the image decides
//! against what `umoci unpack` writes for the same image.

use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};

use oci_core::oci_spec::image::ImageConfiguration;
use oci_image::bundle::{BundleOptions, runtime_config, write_bundle_config};
use serde_json::{Value, json};

use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      # a comment line\n\
                      app:x:1000:1000:App:/home/app:/bin/sh\n\
                      nohome:x:1001:1001:::/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nwheel:x:10:app\nstaff:x:50:\n";

/// An image config with `runtime` as its `config` object.
fn image_config(runtime: &Value) -> ImageConfiguration {
    serde_json::from_value(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap()
}

/// A bundle directory whose `rootfs/etc` holds [`PASSWD`] and [`GROUP`].
fn bundle_with_accounts() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let rootfs = tmp.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
    fs::write(rootfs.join("etc/group"), GROUP).unwrap();
    (tmp, rootfs)
}

/// The config.json value for `runtime` over the rootfs of `bundle`.
fn convert(bundle: &Path, runtime: &Value) -> oci_image::Result<Value> {
    let spec = runtime_config(
        &image_config(runtime),
        bundle,
        &bundle.join("rootfs"),
        &BundleOptions::default(),
    )?;
    Ok(serde_json::to_value(spec).unwrap())
}

fn user_of(bundle: &Path, user: &str) -> Value {
    convert(bundle, &json!({"User": user})).unwrap()["process"]["user"].clone()
}

#[test]
fn args_are_the_entrypoint_then_the_cmd_and_absent_without_either() {
    let (tmp, _) = bundle_with_accounts();
    let both = convert(
        tmp.path(),
        &json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]}),
    )
    .unwrap();
    assert_eq!(both["process"]["args"], json!(["/bin/sh", "-c", "echo hi"]));
    let cmd = convert(tmp.path(), &json!({"Cmd": ["/bin/hello"]})).unwrap();
    assert_eq!(cmd["process"]["args"], json!(["/bin/hello"]));
    let entrypoint = convert(tmp.path(), &json!({"Entrypoint": ["/app"]})).unwrap();
    assert_eq!(entrypoint["process"]["args"], json!(["/app"]));
    let neither = convert(tmp.path(), &json!({})).unwrap();
    assert_eq!(neither["process"].get("args"), None);
}

#[test]
fn env_keeps_the_images_variables_and_adds_only_what_it_lacks() {
    let (tmp, _) = bundle_with_accounts();
    let env = |runtime: Value| convert(tmp.path(), &runtime).unwrap()["process"]["env"].clone();
    assert_eq!(
        env(json!({"Env": ["A=B"], "User": "app"})),
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
            "A=B",
            "HOME=/home/app"
        ])
    );
    // The image's own PATH, TERM and HOME are never replaced or doubled.
    assert_eq!(
        env(json!({"Env": ["PATH=/opt/bin", "HOME=/data", "TERM=dumb"], "User": "app"})),
        json!(["PATH=/opt/bin", "HOME=/data", "TERM=dumb"])
    );
    // No passwd entry for the user: no HOME invented.
    assert_eq!(
        env(json!({"User": "5000"})),
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm"
        ])
    );
}

#[test]
fn cwd_is_the_working_dir_or_the_root() {
    let (tmp, _) = bundle_with_accounts();
    let config = convert(tmp.path(), &json!({"WorkingDir": "/srv/app"})).unwrap();
    assert_eq!(config["process"]["cwd"], "/srv/app");
    let config = convert(tmp.path(), &json!({})).unwrap();
    assert_eq!(config["process"]["cwd"], "/");
    assert_eq!(config["process"]["terminal"], false);
    assert_eq!(config["root"]["path"], "rootfs");
}

#[test]
fn user_forms_resolve_through_the_rootfs_accounts() {
    let (tmp, _) = bundle_with_accounts();
    let bundle = tmp.path();
    let cases = [
        ("", json!({"uid": 0, "gid": 0})),
        ("0", json!({"uid": 0, "gid": 0})),
        // Numeric user: its passwd group, no supplementary groups (conversion rules).
        ("1000", json!({"uid": 1000, "gid": 1000})),
        ("1000:50", json!({"uid": 1000, "gid": 50})),
        ("1000:extra", json!({"uid": 1000, "gid": 2000})),
        // By name without a group: the groups that list it.
        (
            "app",
            json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 10]}),
        ),
        ("app:extra", json!({"uid": 1000, "gid": 2000})),
        ("app:3000", json!({"uid": 1000, "gid": 3000})),
        // A uid the passwd file does not list: group 0, as runc and umoci do.
        ("5000", json!({"uid": 5000, "gid": 0})),
        ("5000:7", json!({"uid": 5000, "gid": 7})),
    ];
    for (user, expected) in cases {
        assert_eq!(user_of(bundle, user), expected, "User {user:?}");
    }
}

#[test]
fn a_user_or_group_name_the_rootfs_lacks_is_an_error_naming_the_file() {
    let (tmp, rootfs) = bundle_with_accounts();
    let error = convert(tmp.path(), &json!({"User": "nobody"})).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&rootfs.join("etc/passwd").display().to_string()),
        "{message}"
    );
    assert!(message.contains("\"nobody\""), "{message}");
    let error = convert(tmp.path(), &json!({"User": "app:nogroup"})).unwrap_err();
    assert!(error.to_string().contains("etc/group"), "{error}");
    // No passwd at all: numeric users still work, names cannot be resolved.
    fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    assert_eq!(
        user_of(tmp.path(), "1234:5"),
        json!({"uid": 1234, "gid": 5})
    );
    assert!(convert(tmp.path(), &json!({"User": "app"})).is_err());
}

/// A directory outside the rootfs standing for the host's `/etc`, with an account the image
/// does not have: a lookup that escapes the rootfs finds it.
fn host_etc(tmp: &Path) -> PathBuf {
    let host = tmp.join("host-etc");
    fs::create_dir_all(&host).unwrap();
    fs::write(
        host.join("passwd"),
        "hostonly:x:4242:4242:Host:/host:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        host.join("shadow"),
        "hostonly:x:4343:4343:Host:/host:/bin/sh\n",
    )
    .unwrap();
    fs::write(host.join("group"), "hostgroup:x:4242:app\n").unwrap();
    host
}

#[test]
fn the_account_lookup_never_leaves_the_rootfs() {
    // /etc itself a symlink: absolute to the host's directory, relative up and out of the
    // rootfs, and to the real host /etc.
    let tmp = TempDir::new().unwrap();
    let host = host_etc(tmp.path());
    for target in [
        host.clone(),
        PathBuf::from("../../host-etc"),
        PathBuf::from("../../../../../../../..").join(host.strip_prefix("/").unwrap()),
    ] {
        let bundle = tmp.path().join("bundle");
        let _ = fs::remove_dir_all(&bundle);
        fs::create_dir_all(bundle.join("rootfs")).unwrap();
        symlink(&target, bundle.join("rootfs/etc")).unwrap();
        let error = convert(&bundle, &json!({"User": "hostonly"})).unwrap_err();
        assert!(
            error.to_string().contains("not in it"),
            "/etc -> {}: {error}",
            target.display()
        );
        // No host account leaks into a numeric user either (no HOME, no group).
        let config = convert(&bundle, &json!({"User": "4242"})).unwrap();
        assert_eq!(config["process"]["user"], json!({"uid": 4242, "gid": 0}));
        assert!(!config["process"]["env"].to_string().contains("HOME"));
        // And a named group is not found in the host's group file.
        assert!(convert(&bundle, &json!({"User": "0:hostgroup"})).is_err());
    }

    // /etc/passwd a symlink to the host's shadow file: resolved inside the rootfs, where that
    // name is the image's own file.
    let bundle = tmp.path().join("bundle2");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join(host.strip_prefix("/").unwrap())).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    symlink(host.join("shadow"), rootfs.join("etc/passwd")).unwrap();
    assert!(convert(&bundle, &json!({"User": "hostonly"})).is_err());
    // The same absolute name, when the image has that file, is the image's.
    fs::write(
        rootfs.join(host.strip_prefix("/").unwrap()).join("shadow"),
        "inimage:x:77:78::/in:/bin/sh\n",
    )
    .unwrap();
    assert_eq!(user_of(&bundle, "inimage"), json!({"uid": 77, "gid": 78}));
}

#[test]
fn a_fifo_or_directory_at_etc_passwd_is_refused_without_blocking() {
    let (tmp, rootfs) = bundle_with_accounts();
    fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        rootfs.join("etc/passwd"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let error = convert(tmp.path(), &json!({"User": "app"})).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    fs::remove_file(rootfs.join("etc/passwd")).unwrap();
    fs::create_dir(rootfs.join("etc/passwd")).unwrap();
    assert!(convert(tmp.path(), &json!({"User": "app"})).is_err());
}

#[test]
fn annotations_carry_the_implicit_fields_and_labels_win() {
    let (tmp, rootfs) = bundle_with_accounts();
    let config: ImageConfiguration = serde_json::from_value(json!({
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {
            "Labels": {"org.opencontainers.image.os": "from-label", "team": "x"},
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "StopSignal": "SIGINT",
        },
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let spec = runtime_config(&config, tmp.path(), &rootfs, &BundleOptions::default()).unwrap();
    let annotations = serde_json::to_value(spec.annotations()).unwrap();
    assert_eq!(
        annotations,
        json!({
            "org.opencontainers.image.os": "from-label",
            "org.opencontainers.image.architecture": "arm64",
            "org.opencontainers.image.variant": "v8",
            "org.opencontainers.image.created": "2024-01-02T03:04:05Z",
            "org.opencontainers.image.stopSignal": "SIGINT",
            "org.opencontainers.image.exposedPorts": "53/udp,80/tcp",
            "team": "x",
        })
    );
}

#[test]
fn write_bundle_config_replaces_config_json_whole_and_leaves_no_temp_file() {
    let (tmp, rootfs) = bundle_with_accounts();
    let config = image_config(&json!({"Cmd": ["/bin/hello"], "User": "app"}));
    fs::write(tmp.path().join("config.json"), "stale").unwrap();
    write_bundle_config(tmp.path(), &rootfs, &config, &BundleOptions::default()).unwrap();
    let written: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(written["process"]["args"], json!(["/bin/hello"]));
    assert_eq!(written["process"]["user"]["uid"], 1000);
    let namespaces = written["linux"]["namespaces"].to_string();
    assert!(
        namespaces.contains("mount") && !namespaces.contains("user"),
        "{namespaces}"
    );
    let mut names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["config.json", "rootfs"]);
    let mode = fs::metadata(tmp.path().join("config.json")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o644);

    // A config that cannot be made (a user the image lacks) leaves the old file alone.
    let bad = image_config(&json!({"Cmd": ["/bin/hello"], "User": "nobody"}));
    assert!(write_bundle_config(tmp.path(), &rootfs, &bad, &BundleOptions::default()).is_err());
    let again: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(again, written);
}

#[test]
fn a_rootless_bundle_maps_root_to_the_calling_user_in_a_user_namespace() {
    let (tmp, rootfs) = bundle_with_accounts();
    let options = BundleOptions {
        rootless: true,
        durable: false,
    };
    let config = image_config(&json!({"Cmd": ["/bin/hello"]}));
    write_bundle_config(tmp.path(), &rootfs, &config, &options).unwrap();
    let written: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("config.json")).unwrap()).unwrap();
    let linux = &written["linux"];
    let uid = fs::metadata("/proc/self").unwrap().uid();
    let gid = fs::metadata("/proc/self").unwrap().gid();
    assert_eq!(
        linux["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}])
    );
    assert_eq!(
        linux["gidMappings"],
        json!([{"containerID": 0, "hostID": gid, "size": 1}])
    );
    let types: Vec<&str> = linux["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    let mounts = written["mounts"].to_string();
    assert!(
        !mounts.contains("cgroup") && !mounts.contains("gid=5"),
        "{mounts}"
    );
}

/// An object of arrays with each array sorted.
fn sorted_sets(value: &Value) -> Value {
    let mut value = value.clone();
    for set in value.as_object_mut().unwrap().values_mut() {
        set.as_array_mut()
            .unwrap()
            .sort_by_key(|v| v.as_str().unwrap().to_owned());
    }
    value
}

/// The fields the image decides, as umoci writes them and as we do, for one image.
#[test]
fn the_image_decided_fields_match_umoci_unpack() {
    if !have_tool(
        "umoci",
        "bundle::the_image_decided_fields_match_umoci_unpack",
    ) {
        return;
    }
    let tmp = TempDir::new().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/passwd"), PASSWD).unwrap();
    fs::write(tree.join("etc/group"), GROUP).unwrap();
    let layout_dir = tmp.path().join("layout");
    let layout = DirLayout::create(&layout_dir).unwrap();

    // Not "1000": for a numeric user umoci adds the supplementary groups that list the
    // user's name, which the conversion rules say not to (docs/format-notes.md).
    let users = ["app", "app:extra", "1000:50", "", "5000"];
    for (n, user) in users.into_iter().enumerate() {
        let mut image = ImageBuilder::new(&layout, &platform::parse("linux/amd64").unwrap());
        image
            .add_dir_layer(&tree, &LayerOptions::default(), None)
            .unwrap();
        image
            .apply(&RuntimeOverrides {
                entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
                cmd: Some(vec!["echo hello".into()]),
                env: vec!["A=B".into(), "EMPTY=".into()],
                labels: BTreeMap::from([("team".into(), "x".into())]),
                working_dir: Some("/srv".into()),
                user: (!user.is_empty()).then(|| user.to_owned()),
                exposed_ports: vec!["8080/tcp".into()],
            })
            .unwrap();
        let manifest = image.write().unwrap();
        let tag = format!("u{n}");
        layout.tag(&manifest, &tag).unwrap();

        let bundle = tmp.path().join(format!("bundle{n}"));
        let output = Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{tag}", layout_dir.display()))
            .arg(&bundle)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let theirs: Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        let resolved = resolve_image(&layout, &tag, None).unwrap();
        let ours = serde_json::to_value(
            runtime_config(
                resolved.config.spec(),
                &bundle,
                &bundle.join("rootfs"),
                &BundleOptions::default(),
            )
            .unwrap(),
        )
        .unwrap();

        let context = format!("User {user:?}");
        for field in ["args", "env", "cwd"] {
            assert_eq!(
                ours["process"][field], theirs["process"][field],
                "{context}: {field}"
            );
        }
        assert_eq!(
            ours["process"]["user"], theirs["process"]["user"],
            "{context}: user"
        );
        assert_eq!(ours["root"], theirs["root"], "{context}: root");
        // umoci writes `author` and `stopSignal` even when the image has none (as ""); we
        // write only what the image sets. Every other annotation is the same.
        let mut their_annotations = theirs["annotations"].as_object().unwrap().clone();
        their_annotations
            .retain(|key, value| !(value == "" && key.starts_with("org.opencontainers.image.")));
        assert_eq!(
            ours["annotations"],
            Value::Object(their_annotations),
            "{context}"
        );
        // The defaults we take from runc, as umoci does; capability sets in any order.
        assert_eq!(
            sorted_sets(&ours["process"]["capabilities"]),
            sorted_sets(&theirs["process"]["capabilities"]),
            "{context}: capabilities"
        );
        for field in ["rlimits", "noNewPrivileges"] {
            assert_eq!(
                ours["process"][field], theirs["process"][field],
                "{context}: {field}"
            );
        }
        assert_eq!(ours["mounts"], theirs["mounts"], "{context}: mounts");
        for field in ["namespaces", "resources"] {
            assert_eq!(
                ours["linux"][field], theirs["linux"][field],
                "{context}: {field}"
            );
        }
        // What umoci masks we mask; what it makes read-only we make read-only or mask (the
        // lists are newer runc's: longer, `/proc/asound` masked).
        let masked = ours["linux"]["maskedPaths"].as_array().unwrap();
        let read_only = ours["linux"]["readonlyPaths"].as_array().unwrap();
        for path in theirs["linux"]["maskedPaths"].as_array().unwrap() {
            assert!(masked.contains(path), "{context}: {path} not masked");
        }
        for path in theirs["linux"]["readonlyPaths"].as_array().unwrap() {
            assert!(
                masked.contains(path) || read_only.contains(path),
                "{context}: {path} neither read-only nor masked"
            );
        }
    }
}
