//! Stored credentials against the real registry (basic and token variants): the containers
//! `auth.json` and Docker's `config.json` in their lookup order, `--authfile`, namespaced
//! keys, a credential helper the test writes (a shell script speaking docker's helper
//! protocol, logging its calls), and `login` / `logout` writing them.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use oci_test_registry::harness::{BASIC_PASSWORD, BASIC_USER, RunningRegistry, Variant};
use oci_test_registry::tokens;
use serde_json::{Value, json};

use crate::copy::{Ctx, docker, oci, registry};
use crate::support::*;

/// `{"auth": base64(user:password)}`.
fn auth(user: &str, password: &str) -> Value {
    json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))})
}

fn write_json(path: &Path, value: &Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The user and password `variant` accepts, and a password it refuses.
fn accepted(variant: Variant) -> (&'static str, &'static str, &'static str) {
    match variant {
        Variant::Basic => (BASIC_USER, BASIC_PASSWORD, "not-wonderland"),
        _ => ("carol", tokens::PASSWORD, "let-me-out"),
    }
}

/// A credential helper `docker-credential-test` in its own directory: it keeps what it is
/// given in files under `store/` and logs each call (`ACTION SERVER`) to `calls.log`.
struct Helper {
    dir: PathBuf,
}

impl Helper {
    fn new(ctx: &Ctx) -> Helper {
        let dir = ctx.path("helper");
        fs::create_dir_all(dir.join("store")).unwrap();
        let script = format!(
            r#"#!/bin/sh
# docker's credential helper protocol: get/erase read the server on stdin, store reads
# {{"ServerURL","Username","Secret"}}; get answers {{"Username","Secret"}}.
dir='{dir}'
file() {{ printf '%s' "$1" | tr ':/' '__'; }}
case "$1" in
get)
    read -r server
    echo "get $server" >> "$dir/calls.log"
    if [ -f "$dir/store/$(file "$server")" ]; then
        cat "$dir/store/$(file "$server")"
    else
        echo "credentials not found in native keychain"
        exit 1
    fi ;;
store)
    input=$(cat)
    server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    echo "store $server" >> "$dir/calls.log"
    printf '%s' "$input" > "$dir/store/$(file "$server")" ;;
erase)
    read -r server
    echo "erase $server" >> "$dir/calls.log"
    if [ -f "$dir/store/$(file "$server")" ]; then
        rm "$dir/store/$(file "$server")"
    else
        echo "credentials not found in native keychain"
        exit 1
    fi ;;
*) echo "unknown action $1" >&2; exit 1 ;;
esac
"#,
            dir = dir.display()
        );
        let program = dir.join("docker-credential-test");
        fs::write(&program, script).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        Helper { dir }
    }

    /// Holds `user` and `password` for `server`, as a `store` would leave them.
    fn hold(&self, server: &str, user: &str, password: &str) {
        fs::write(
            self.dir.join("store").join(server.replace([':', '/'], "_")),
            json!({"ServerURL": server, "Username": user, "Secret": password}).to_string(),
        )
        .unwrap();
    }

    /// What the helper holds for `server`.
    fn held(&self, server: &str) -> Option<Value> {
        let file = self.dir.join("store").join(server.replace([':', '/'], "_"));
        fs::read(file)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `PATH` with the helper's directory first.
    fn path(&self) -> OsString {
        let mut paths = vec![self.dir.clone()];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        std::env::join_paths(paths).unwrap()
    }
}

/// Runs the binary in `ctx`'s environment with `env`, `input` on its standard input.
fn run_input(ctx: &Ctx, args: Vec<OsString>, env: &[(&str, &OsStr)], input: &str) -> Run {
    let mut child = ctx
        .command(&args, env)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused argument ends the binary before it reads its input; the write then fails
    // with a broken pipe, which is no failure of the test (the exit status says what matters).
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    wait(args, child)
}

/// `XDG_RUNTIME_DIR/containers/auth.json` and Docker's `config.json` of `ctx`.
fn auth_json(ctx: &Ctx) -> PathBuf {
    ctx.path("run/containers/auth.json")
}

fn config_json(ctx: &Ctx) -> PathBuf {
    ctx.path("docker-config/config.json")
}

#[test]
fn auth_json_is_read_before_config_json_and_authfile_alone() {
    for variant in [Variant::Basic, Variant::Token] {
        let Some(registry) = registry(
            "credentials::auth_json_is_read_before_config_json_and_authfile_alone",
            variant,
            false,
        ) else {
            return;
        };
        lookup_order(registry, variant);
    }
}

fn lookup_order(registry: &RunningRegistry, variant: Variant) {
    let ctx = Ctx::new();
    let (user, good, bad) = accepted(variant);
    let (src, digest) = ctx.image("src", "v1", &format!("order-{variant:?}"), &[]);
    let target = docker(
        registry,
        &format!("order-{variant:?}/app:v1").to_lowercase(),
    );
    let host = registry.host.as_str();

    // The right password in config.json, a wrong one in auth.json: auth.json is read first.
    write_json(
        &config_json(&ctx),
        &json!({"auths": {host: auth(user, good)}}),
    );
    write_json(&auth_json(&ctx), &json!({"auths": {host: auth(user, bad)}}));
    let run = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .failure_naming(&[host, "unauthorized"]);
    eprintln!(
        "{variant:?}, a wrong password in auth.json: {}",
        run.stderr.trim_end()
    );
    // auth.json without an entry for the registry: config.json's is used.
    write_json(
        &auth_json(&ctx),
        &json!({"auths": {"elsewhere.example": auth(user, bad)}}),
    );
    let pushed = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .success()
        .line();
    assert_eq!(pushed, digest);

    // --authfile: that file only, though config.json holds the right password.
    let named = ctx.path("named-auth.json");
    write_json(&named, &json!({"auths": {}}));
    ctx.run(args!["copy", oci(&src, "v1"), target, "--authfile", named])
        .failure_naming(&[host, "unauthorized"]);
    // $REGISTRY_AUTH_FILE too, as skopeo and podman take it.
    let env = [("REGISTRY_AUTH_FILE", named.as_os_str())];
    ctx.run_with(args!["ls", docker(registry, "x/y")], &env)
        .failure_naming(&[host, "unauthorized"]);

    // A credHelpers entry in the named file: the helper is asked, with the registry's host.
    let helper = Helper::new(&ctx);
    helper.hold(host, user, good);
    write_json(&named, &json!({"credHelpers": {host: "test"}}));
    let path = helper.path();
    let env = [("PATH", path.as_os_str())];
    let pulled = ctx.path("pulled");
    let got = ctx
        .run_with(
            args!["copy", target, oci(&pulled, "v1"), "--src-authfile", named],
            &env,
        )
        .success()
        .line();
    assert_eq!(got, digest);
    assert!(
        helper.calls().contains(&format!("get {host}")),
        "{:?}",
        helper.calls()
    );
    // The same helper from auth.json's credHelpers, for the read commands.
    write_json(&auth_json(&ctx), &json!({"credHelpers": {host: "test"}}));
    fs::remove_file(config_json(&ctx)).unwrap();
    let listed = ctx
        .run_with(
            args![
                "ls",
                docker(registry, &format!("order-{variant:?}/app").to_lowercase()),
                "--json"
            ],
            &env,
        )
        .success()
        .json();
    assert_eq!(listed[0]["digest"], digest.as_str());
    // A helper that holds nothing: anonymous, refused, naming the registry.
    fs::remove_file(helper.dir.join("store").join(host.replace(':', "_"))).unwrap();
    ctx.run_with(args!["copy", oci(&src, "v1"), target], &env)
        .failure_naming(&[host, "unauthorized"]);
}

#[test]
fn the_most_specific_namespace_key_wins() {
    let Some(registry) = registry(
        "credentials::the_most_specific_namespace_key_wins",
        Variant::Basic,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, _) = ctx.image("src", "v1", "namespaces", &[]);
    let host = registry.host.as_str();
    write_json(
        &ctx.path("home/.config/containers/auth.json"),
        &json!({"auths": {
            format!("{host}/team"): auth(BASIC_USER, BASIC_PASSWORD),
            host: auth(BASIC_USER, "wrong"),
        }}),
    );
    ctx.run(args![
        "copy",
        oci(&src, "v1"),
        docker(registry, "team/app:v1")
    ])
    .success();
    ctx.run(args![
        "copy",
        oci(&src, "v1"),
        docker(registry, "teams/app:v1")
    ])
    .failure_naming(&[host, "unauthorized"]);
}

#[test]
fn login_then_copy_then_logout_then_copy_fails() {
    let Some(registry) = registry(
        "credentials::login_then_copy_then_logout_then_copy_fails",
        Variant::Basic,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (src, digest) = ctx.image("src", "v1", "login", &[]);
    let target = docker(registry, "login/app:v1");
    let host = registry.host.as_str();
    let config = config_json(&ctx);
    // What the file held before: kept.
    write_json(
        &config,
        &json!({"auths": {"other.example": auth("bob", "x")}, "psFormat": "table {{.ID}}"}),
    );
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();

    let run = run_input(
        &ctx,
        args!["login", host, "-u", BASIC_USER, "--password-stdin"],
        &[],
        &format!("{BASIC_PASSWORD}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&config.display().to_string()),
        "{}",
        run.stderr
    );
    assert_eq!(mode(&config) & 0o777, 0o600);
    let stored = read_json(&config);
    assert_eq!(stored["auths"][host], auth(BASIC_USER, BASIC_PASSWORD));
    assert_eq!(stored["auths"]["other.example"], auth("bob", "x"));
    assert_eq!(stored["psFormat"], "table {{.ID}}");
    assert_eq!(
        names_in(config.parent().unwrap()),
        ["config.json"],
        "no temporary file left"
    );

    let pushed = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .success()
        .line();
    assert_eq!(pushed, digest);

    let run = ctx.run(args!["logout", host]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("removed"), "{}", run.stderr);
    let stored = read_json(&config);
    assert!(stored["auths"].get(host).is_none(), "{stored}");
    assert_eq!(stored["auths"]["other.example"], auth("bob", "x"));
    assert_eq!(stored["psFormat"], "table {{.ID}}");

    let run = ctx
        .run(args!["copy", oci(&src, "v1"), target])
        .failure_naming(&[host, "unauthorized"]);
    eprintln!("after logout: {}", run.stderr.trim_end());
    ctx.run(args!["logout", host])
        .failure_naming(&[host, "not logged in"]);
}

#[test]
fn login_with_wrong_credentials_fails_and_writes_nothing() {
    for variant in [Variant::Basic, Variant::Token] {
        let Some(registry) = registry(
            "credentials::login_with_wrong_credentials_fails_and_writes_nothing",
            variant,
            false,
        ) else {
            return;
        };
        let ctx = Ctx::new();
        let (user, good, bad) = accepted(variant);
        let host = registry.host.as_str();
        let config = config_json(&ctx);
        let run = run_input(
            &ctx,
            args!["login", host, "-u", user, "--password-stdin"],
            &[],
            bad,
        )
        .failure_naming(&[host, "unauthorized"]);
        eprintln!("{variant:?}, wrong password: {}", run.stderr.trim_end());
        assert!(!config.exists(), "{variant:?}: the file was written");
        // The right one, on the command line: works, with a warning.
        let run = ctx.run(args!["login", host, "-u", user, "-p", good]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("warning:"), "{}", run.stderr);
        assert_eq!(read_json(&config)["auths"][host], auth(user, good));
        // A wrong one now leaves the good one in place.
        run_input(
            &ctx,
            args!["login", host, "-u", user, "--password-stdin"],
            &[],
            bad,
        )
        .failure_naming(&[host, "unauthorized"]);
        assert_eq!(read_json(&config)["auths"][host], auth(user, good));
    }
}

#[test]
fn login_and_logout_go_through_the_configured_helper() {
    let Some(registry) = registry(
        "credentials::login_and_logout_go_through_the_configured_helper",
        Variant::Token,
        false,
    ) else {
        return;
    };
    let ctx = Ctx::new();
    let (user, good, _) = accepted(Variant::Token);
    let (src, digest) = ctx.image("src", "v1", "helper-login", &[]);
    let target = docker(registry, "helper/app:v1");
    let host = registry.host.as_str();
    let helper = Helper::new(&ctx);
    let path = helper.path();
    let env = [("PATH", path.as_os_str())];
    let authfile = ctx.path("auth.json");
    write_json(&authfile, &json!({"credsStore": "test"}));
    let before = fs::read(&authfile).unwrap();

    let run = run_input(
        &ctx,
        args![
            "login",
            host,
            "-u",
            user,
            "--password-stdin",
            "--authfile",
            authfile
        ],
        &env,
        good,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("docker-credential-test"),
        "{}",
        run.stderr
    );
    assert_eq!(
        helper.held(host),
        Some(json!({"ServerURL": host, "Username": user, "Secret": good}))
    );
    assert_eq!(
        fs::read(&authfile).unwrap(),
        before,
        "the secret is not in the file"
    );

    let pushed = ctx
        .run_with(
            args!["copy", oci(&src, "v1"), target, "--authfile", authfile],
            &env,
        )
        .success()
        .line();
    assert_eq!(pushed, digest);

    let run = ctx.run_with(args!["logout", host, "--authfile", authfile], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(helper.held(host), None);
    assert_eq!(
        helper.calls(),
        [
            format!("store {host}"),
            format!("get {host}"),
            format!("erase {host}")
        ]
    );
    ctx.run_with(
        args!["copy", oci(&src, "v1"), target, "--authfile", authfile],
        &env,
    )
    .failure_naming(&[host, "unauthorized"]);
    ctx.run_with(args!["logout", host, "--authfile", authfile], &env)
        .failure_naming(&[host, "not logged in"]);
}

#[test]
fn login_without_a_user_or_password_to_read_says_what_to_give() {
    let ctx = Ctx::new();
    // Standard input is not a terminal here: nothing can be asked for.
    ctx.run(args!["login", "registry.example", "-u", "alice"])
        .usage_error_naming(&["--password-stdin"]);
    run_input(
        &ctx,
        args!["login", "registry.example", "--password-stdin"],
        &[],
        "secret\n",
    )
    .usage_error_naming(&["-u USER"]);
    ctx.run(args!["login", "registry example", "-u", "a", "-p", "b"])
        .usage_error_naming(&["registry example"]);
    assert!(!config_json(&ctx).exists());
}
