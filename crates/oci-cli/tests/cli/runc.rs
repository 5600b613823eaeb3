//! The built-in example runs: `examples/hello/hello.rs` built static, packed by `image
//! create`, unpacked as a bundle by `image unpack --bundle` (rootfs and config.json) and
//! started by `runc run`; it prints the image's `/etc/motd`.
//!
//! Needs `rustc` (always there) and `runc`, and root. Where any is missing, or runc
//! cannot start a container here, the test prints `SKIPPED ...`; with
//! `OCI_LAYOUT_REQUIRE_INTEROP=1` (CI, which installs runc and runs as root) that is a failure.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

const TEST: &str = "runc::the_example_image_runs_under_runc_from_our_bundle";

/// Says why the test cannot run here, visibly, or fails when CI requires it to run.
fn skip(why: &str) {
    let message = format!("SKIPPED {TEST}: {why}");
    assert!(
        std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
        "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
    );
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

#[test]
fn the_example_image_runs_under_runc_from_our_bundle() {
    if !have(TEST, &["runc", "rustc"]) {
        return;
    }
    if fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return skip("not root (runc run needs root)");
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let layout = Layout::new();
    let work = layout.scratch();
    let rootfs = work.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let motd = fs::read(workspace.join("examples/hello/rootfs/etc/motd")).unwrap();
    fs::write(rootfs.join("etc/motd"), &motd).unwrap();
    tool(
        "rustc",
        &[
            "--edition=2024".as_ref(),
            "-C".as_ref(),
            "target-feature=+crt-static".as_ref(),
            workspace.join("examples/hello/hello.rs").as_os_str(),
            "-o".as_ref(),
            rootfs.join("bin/hello").as_os_str(),
        ],
    );
    run(args![
        "image",
        "create",
        layout.dir,
        "--tag",
        "hello",
        "--from-dir",
        rootfs,
        "--cmd",
        "/bin/hello"
    ])
    .success();

    // Our own unpack, as a bundle: the rootfs, then config.json.
    let bundle = work.join("bundle");
    run(args![
        "image", "unpack", layout.dir, "hello", bundle, "--bundle"
    ])
    .success();
    assert!(bundle.join("config.json").is_file());
    assert!(bundle.join("rootfs/bin/hello").is_file());

    let id = format!("oci-layout-test-{}", std::process::id());
    let output = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // runc got as far as starting the image's program: whatever failed is the image's (the
    // shell script this example once was fails here with `exec /bin/hello: no such file or
    // directory`).
    assert!(
        !stderr.contains("/bin/hello"),
        "runc run of the example failed ({}): {stderr}",
        output.status
    );
    if !output.status.success() {
        // A container that was created but failed is removed, so no state is left behind.
        let _ = Command::new("runc")
            .args(["delete", "--force", &id])
            .output();
        return skip(&format!(
            "runc cannot start a container here ({}): {}",
            output.status,
            stderr.trim()
        ));
    }
    assert_eq!(output.stdout, motd, "what /bin/hello printed");
}
