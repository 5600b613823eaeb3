//! The real registry: Debian's `docker-registry` (distribution 2.8), one process per variant
//! (no auth, htpasswd, token, TLS) for the whole test binary, on a free loopback port with its
//! storage in a temporary directory.
//!
//! Nothing in a static is dropped at exit, so the processes and files are left to a janitor:
//! a `sh` whose stdin is a pipe this process holds. Each registry's pid is written to it; when
//! this process ends (however it ends), the pipe closes, and the janitor kills every registry
//! and removes the temporary directory.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::tokens::{self, TokenServer};

/// Which registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// No authentication, plain HTTP.
    Plain,
    /// `htpasswd` basic authentication, plain HTTP.
    Basic,
    /// Token authentication: a bearer challenge whose realm is the test's token server.
    Token,
    /// HTTPS with a certificate from the test's own CA, no authentication.
    Tls,
    /// HTTPS as [`Variant::Tls`], and a client certificate signed by the test's CA required
    /// (`http.tls.clientcas`).
    MutualTls,
}

/// The user and password the `Basic` registry accepts.
pub const BASIC_USER: &str = "alice";
/// See [`BASIC_USER`].
pub const BASIC_PASSWORD: &str = "wonderland";

/// A running registry.
pub struct RunningRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Its storage directory (`rootdirectory`), where a test can look at or damage what it
    /// stored.
    pub storage: PathBuf,
    /// Kept so the process is not reaped behind the janitor's back.
    _process: Mutex<Child>,
}

/// The temporary directory of this test binary, and the janitor that cleans up after it.
struct Workspace {
    root: PathBuf,
    janitor: Mutex<ChildStdin>,
}

/// Whether `docker-registry` can be run. When it cannot, says so on stderr, visibly, and
/// returns false; or fails when `OCI_LAYOUT_REQUIRE_INTEROP` is set.
pub fn available(test: &str) -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        ["docker-registry", "openssl", "htpasswd"]
            .iter()
            .all(|tool| have(tool))
    });
    if found {
        return true;
    }
    let message = format!(
        "SKIP {test}: docker-registry, openssl or htpasswd is not on PATH (apt-get install \
         docker-registry apache2-utils openssl to run it)"
    );
    assert!(
        std::env::var_os("OCI_LAYOUT_REQUIRE_INTEROP").is_none(),
        "{message}, and OCI_LAYOUT_REQUIRE_INTEROP is set"
    );
    // libtest captures `eprintln!` of a passing test; the raw handle is not captured.
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    false
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// Skips the test (see [`available`]) unless the tools are there.
#[macro_export]
macro_rules! require_registry {
    ($test:expr) => {
        if !$crate::harness::available($test) {
            return;
        }
    };
}

fn workspace() -> &'static Workspace {
    static WORKSPACE: OnceLock<Workspace> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("oci-registry-tests.")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        #[expect(
            clippy::zombie_processes,
            reason = "the janitor outlives this process on purpose: it cleans up after it"
        )]
        let janitor = Command::new("sh")
            .arg("-c")
            .arg(r#"pids=""; while read -r pid; do pids="$pids $pid"; done; [ -n "$pids" ] && kill $pids 2>/dev/null; sleep 0.2; rm -rf "$1""#)
            .arg("janitor")
            .arg(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
        Workspace {
            root,
            janitor: Mutex::new(janitor.stdin.expect("stdin is piped")),
        }
    })
}

/// The test binary's temporary directory (removed at exit).
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace().root.join(name);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A name that resolves nowhere, in the server certificate besides `127.0.0.1` and
/// `localhost`: a registry named so is reached only through a proxy that knows where it is.
pub const UNRESOLVABLE_HOST: &str = "registry.oci-layout.test";

/// The certificates the test makes: a CA, a server certificate it signs for `127.0.0.1`,
/// `localhost` and [`UNRESOLVABLE_HOST`], a client certificate it signs, and a self-signed
/// token-signing certificate with its RSA key.
pub struct Certificates {
    /// The CA, PEM.
    pub ca_pem: Vec<u8>,
    /// The server certificate, PEM, signed by the CA.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The CA's certificate file.
    pub ca_cert: PathBuf,
    /// A client certificate, PEM, signed by the CA (`clientAuth`).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The token-signing certificate, self-signed.
    pub signing_cert: PathBuf,
    /// Its RSA key.
    pub signing_key: PathBuf,
}

/// The certificates, made on first use.
pub fn certificates() -> &'static Certificates {
    static CERTIFICATES: OnceLock<Certificates> = OnceLock::new();
    CERTIFICATES.get_or_init(|| {
        let dir = scratch("certificates");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let path = |name: &str| dir.join(name);
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=oci-layout test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            path("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,\
             DNS:registry.oci-layout.test\n",
        )
        .expect("write the extensions");
        openssl(
            &dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "client.key",
                    "-out",
                    "client.csr",
                    "-subj",
                    "/CN=oci-layout test client",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            path("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .expect("write the extensions");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.pem",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "signing.key",
                "-out",
                "signing.pem",
                "-days",
                "2",
                "-subj",
                "/CN=oci-layout test token issuer",
            ],
        );
        Certificates {
            ca_pem: std::fs::read(path("ca.pem")).expect("the CA"),
            ca_cert: path("ca.pem"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            signing_cert: path("signing.pem"),
            signing_key: path("signing.key"),
        }
    })
}

/// Writes a certificate directory as docker reads one into `dir` (created): the test's CA as
/// `ca.crt` when `ca`, the client pair as `client.cert` and `client.key` when `client`.
pub fn write_cert_dir(dir: &Path, ca: bool, client: bool) {
    std::fs::create_dir_all(dir).expect("create the certificate directory");
    let certificates = certificates();
    let mut files = Vec::new();
    if ca {
        files.push((&certificates.ca_cert, "ca.crt"));
    }
    if client {
        files.push((&certificates.client_cert, "client.cert"));
        files.push((&certificates.client_key, "client.key"));
    }
    for (from, name) in files {
        std::fs::copy(from, dir.join(name)).expect("copy a certificate");
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The registry of `variant`, started on first use.
pub fn registry(variant: Variant) -> &'static RunningRegistry {
    static REGISTRIES: [OnceLock<RunningRegistry>; 5] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = match variant {
        Variant::Plain => 0,
        Variant::Basic => 1,
        Variant::Token => 2,
        Variant::Tls => 3,
        Variant::MutualTls => 4,
    };
    REGISTRIES[slot].get_or_init(|| start(variant))
}

fn start(variant: Variant) -> RunningRegistry {
    let name = format!("{variant:?}").to_lowercase();
    let dir = scratch(&format!("registry-{name}"));
    let auth = match variant {
        Variant::Plain | Variant::Tls | Variant::MutualTls => String::new(),
        Variant::Basic => {
            let output = Command::new("htpasswd")
                .args(["-Bbn", BASIC_USER, BASIC_PASSWORD])
                .output()
                .expect("htpasswd runs");
            assert!(output.status.success(), "htpasswd failed");
            let file = dir.join("htpasswd");
            std::fs::write(&file, output.stdout).expect("write htpasswd");
            format!(
                "auth:\n  htpasswd:\n    realm: oci-layout-tests\n    path: {}\n",
                file.display()
            )
        }
        Variant::Token => {
            let server: &TokenServer = tokens::server();
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm,
                tokens::SERVICE,
                tokens::ISSUER,
                certificates().signing_cert.display()
            )
        }
    };
    let tls = match variant {
        Variant::Tls => format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            certificates().server_cert.display(),
            certificates().server_key.display()
        ),
        Variant::MutualTls => format!(
            "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            certificates().server_cert.display(),
            certificates().server_key.display(),
            certificates().ca_cert.display()
        ),
        _ => String::new(),
    };
    let mut last_log = String::new();
    for _ in 0..10 {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n  secret: oci-layout-test-secret\n{tls}{auth}",
            storage = dir.join("storage").display(),
        );
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).expect("write the registry config");
        let log = dir.join("registry.log");
        let log_file = std::fs::File::create(&log).expect("create the log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("docker-registry runs");
        writeln!(
            workspace()
                .janitor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            "{}",
            child.id()
        )
        .expect("tell the janitor");
        if wait_until_up(&mut child, variant, &host) {
            return RunningRegistry {
                host,
                storage: dir.join("storage"),
                _process: Mutex::new(child),
            };
        }
        let _ = child.kill();
        let _ = child.wait();
        last_log = std::fs::read_to_string(&log).unwrap_or_default();
        if !last_log.contains("address already in use") {
            break;
        }
    }
    panic!("docker-registry ({variant:?}) did not start:\n{last_log}");
}

/// A port nothing listens on now (it may be taken before the registry binds it: the caller
/// tries again then).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Polls `/v2/` until the registry answers as a registry, or it exits.
fn wait_until_up(child: &mut Child, variant: Variant, host: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tls = ureq::tls::TlsConfig::builder();
    let https = matches!(variant, Variant::Tls | Variant::MutualTls);
    if https {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&ca_roots()));
    }
    if variant == Variant::MutualTls {
        tls = tls.client_cert(Some(client_pair()));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .tls_config(tls.build())
        .build()
        .into();
    let scheme = if https { "https" } else { "http" };
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(host).is_ok()
            && let Ok(response) = agent.get(&format!("{scheme}://{host}/v2/")).call()
            && response
                .headers()
                .contains_key("Docker-Distribution-Api-Version")
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn ca_roots() -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(&certificates().ca_pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

fn client_pair() -> ureq::tls::ClientCert {
    let read = |path: &Path| std::fs::read(path).expect("the client pair");
    let chain: Vec<_> = ureq::tls::parse_pem(&read(&certificates().client_cert))
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    let key = ureq::tls::parse_pem(&read(&certificates().client_key))
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(key)) => Some(key),
            _ => None,
        })
        .expect("the client key");
    ureq::tls::ClientCert::new_with_certs(&chain, key)
}
