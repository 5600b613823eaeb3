//! A token server for the registry's `auth: token` (distribution's token authentication): it
//! checks basic credentials and issues JWTs signed RS256 with the test's signing key, the
//! signing certificate in the header's `x5c` (distribution 2.8 accepts a chain that ends in
//! its `rootcertbundle`). Signed with the `openssl` CLI, so the test needs no JWT crate.
//!
//! Any user whose password is [`PASSWORD`] gets what they ask for, except [`READER`], who only
//! ever gets `pull`. No credentials get a token granting nothing (as Docker Hub does for a
//! private repository); a wrong password gets a 401. Every request is recorded, so tests can
//! count what the client asked for.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::json;

use crate::harness::certificates;
use crate::http::{Response, decode, read_head, read_request_body};

/// The registry's `service`, the tokens' audience.
pub const SERVICE: &str = "oci-layout-test-registry";
/// The tokens' issuer.
pub const ISSUER: &str = "oci-layout-test-issuer";
/// The password every user has.
pub const PASSWORD: &str = "let-me-in";
/// A user who may only pull.
pub const READER: &str = "reader";

/// One request to the token endpoint.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The user, when credentials came.
    pub user: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The service asked for.
    pub service: Option<String>,
}

/// The running token server.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    requests: Mutex<Vec<TokenRequest>>,
}

impl TokenServer {
    /// The requests `user` made so far.
    pub fn requests_of(&self, user: &str) -> Vec<TokenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|r| r.user.as_deref() == Some(user))
            .cloned()
            .collect()
    }
}

/// The token server, started on first use.
pub fn server() -> &'static TokenServer {
    static SERVER: OnceLock<TokenServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        TokenServer {
            realm: format!("http://127.0.0.1:{port}/token"),
            requests: Mutex::new(Vec::new()),
        }
    })
}

fn serve(stream: std::net::TcpStream) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    while let Ok(Some(head)) = read_head(&mut reader) {
        if read_request_body(&mut reader, &head).is_err() {
            return;
        }
        let response = answer(&head);
        if response.write_to(&mut writer, head.method()).is_err() {
            return;
        }
    }
}

fn answer(head: &crate::http::Head) -> Response {
    let target = head.target();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut scopes = Vec::new();
    let mut service = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "scope" => scopes.push(decode(value)),
            "service" => service = Some(decode(value)),
            _ => {}
        }
    }
    let credentials = head
        .get("Authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    server()
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(TokenRequest {
            user: credentials.as_ref().map(|(u, _)| u.clone()),
            scopes: scopes.clone(),
            service,
        });
    let user = match credentials {
        Some((user, password)) if password == PASSWORD => Some(user),
        Some(_) => {
            return Response::new(401).json(&json!({
                "errors": [{"code": "UNAUTHORIZED", "message": "wrong user name or password"}]
            }));
        }
        None => None,
    };
    let access: Vec<serde_json::Value> = match &user {
        None => Vec::new(),
        Some(user) => scopes
            .iter()
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| user != READER || *a == "pull")
                    .collect();
                Some(json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect(),
    };
    let token = sign(user.as_deref().unwrap_or(""), &access);
    Response::new(200).json(&json!({"token": token, "expires_in": 300}))
}

fn sign(subject: &str, access: &[serde_json::Value]) -> String {
    static JTI: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let pem = std::fs::read_to_string(&certificates().signing_cert).expect("the signing cert");
    let der_base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [der_base64]});
    let claims = json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("token-{}", JTI.fetch_add(1, Ordering::Relaxed)),
        "access": access,
    });
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&certificates().signing_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(signing_input.as_bytes())
        .expect("feed openssl");
    let output = child.wait_with_output().expect("openssl signs");
    assert!(
        output.status.success(),
        "openssl dgst -sign: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{signing_input}.{}", url.encode(output.stdout))
}
