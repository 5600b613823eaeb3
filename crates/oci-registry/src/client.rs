//! One registry, over HTTP: TLS or plain, authentication, retries.
//!
//! Every request goes through [`Client::send`], which:
//! - picks the scheme once (`https`; `http` when asked, or for a registry on this machine that
//!   answers `/v2/` over plain HTTP and not over HTTPS);
//! - sends the token cached for the request's scope, or basic credentials once the registry
//!   asked for them;
//! - on a 401, reads the challenge, gets a token (bearer: from the realm, with the
//!   credentials, for the service and scope) or takes the credentials (basic), and sends the
//!   request again once;
//! - on a passing failure (a cut connection, 408, 429, 5xx), waits (growing pauses, or the
//!   registry's `Retry-After`) and sends it again, a bounded number of times;
//! - when the registry still refuses what its challenge asked for, says why (an `Auth` error
//!   naming the registry).
//!
//! [`Client::expect`] also refuses an HTML page (not an answer of the registry API), and
//! [`Client::get_whole`] reads an answer whole, asking again when its body is cut.
//!
//! A request whose body is a stream cannot be sent twice: those are only ever sent after a
//! small request of the same scope has settled the authentication, and their failures go back
//! to the caller, which knows how to go on (an upload asks for its status).
//!
//! Redirects (blob downloads to storage) are followed; credentials go only to the same host.
//!
//! Each request goes through the proxy the environment names for its URL (`proxy.rs`), and
//! TLS trusts the system's roots plus the registry's certificate directory (`cert_dir.rs`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use ureq::http::{self, Response};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use ureq::{Agent, Body, SendBody};

use crate::cert_dir;
use crate::challenge::{Challenge, parse_challenges};
use crate::proxy::ProxySettings;
use crate::{CredentialFiles, Credentials, Error, ImageReference, RegistryOptions};

/// What a registry may say in an error body, kept for messages: more is not read.
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// A token response is small; more is refused.
const TOKEN_LIMIT: u64 = 1 << 20;

/// A request's body.
pub(crate) enum Payload<'a> {
    /// None.
    Empty,
    /// Bytes in memory: the request can be sent again.
    Bytes(&'a [u8]),
    /// A stream of this many bytes: sent once.
    Stream(&'a mut dyn Read, u64),
    /// A stream whose end the reader decides (chunked transfer encoding): sent once.
    Chunked(&'a mut dyn Read),
}

impl Payload<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Payload::Stream(..) | Payload::Chunked(..))
    }
}

/// One request, before authentication.
pub(crate) struct Request<'a> {
    pub method: http::Method,
    /// A path on the registry (`/v2/...`) or an absolute URL (an upload's `Location`).
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Payload<'a>,
    /// The token scope this needs: `repository:NAME:pull` or `repository:NAME:pull,push`.
    pub scope: String,
}

impl<'a> Request<'a> {
    pub fn new(method: http::Method, target: impl Into<String>, scope: impl Into<String>) -> Self {
        Request {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Payload::Empty,
            scope: scope.into(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Payload<'a>) -> Self {
        self.body = body;
        self
    }
}

/// What the client knows of the registry's authentication.
#[derive(Default)]
struct AuthState {
    /// The registry asked for basic credentials.
    basic: bool,
    /// The registry's bearer challenge (realm, service).
    bearer: Option<Challenge>,
    /// Tokens by scope, as `Authorization` values.
    tokens: HashMap<String, String>,
    /// The credentials, once looked up.
    credentials: Option<Option<(String, String)>>,
}

/// A registry host.
pub struct Client {
    reference: ImageReference,
    agent: Agent,
    options: RegistryOptions,
    scheme: OnceLock<&'static str>,
    auth: Mutex<AuthState>,
    /// Whether a client certificate is offered when a server asks for one.
    offers_client_certificate: bool,
    /// The environment's proxies, chosen per request (the agent has none).
    proxies: ProxySettings,
}

impl Client {
    /// A client of the registry `reference` names (its repository and tag are ignored).
    pub fn new(reference: &ImageReference, options: RegistryOptions) -> Result<Client, Error> {
        let (tls, offers_client_certificate) = tls_config(&options, &reference.registry)?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(options.timeout))
            .timeout_recv_response(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .timeout_per_write(Some(options.timeout))
            .max_redirects(10)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .proxy(None)
            .user_agent(concat!("oci-layout/", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .build();
        Ok(Client {
            reference: reference.repository_only(),
            agent: config.into(),
            options,
            scheme: OnceLock::new(),
            auth: Mutex::new(AuthState::default()),
            offers_client_certificate,
            proxies: ProxySettings::from_env()?,
        })
    }

    /// The registry as named.
    pub fn registry(&self) -> &str {
        &self.reference.registry
    }

    /// The options in force.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    fn auth(&self) -> MutexGuard<'_, AuthState> {
        self.auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `https`, or `http` when asked for or when a loopback registry does not speak TLS.
    ///
    /// A loopback registry is taken to be plain HTTP only when `/v2/` fails over HTTPS and
    /// answers over HTTP as a registry does (200 or 401). How the HTTPS attempt failed says
    /// little (a plain server may answer the TLS hello with an HTTP 400, or close), and a TLS
    /// server answers plain HTTP too (with a 400): so a registry whose certificate is not
    /// trusted stays on HTTPS, and its requests fail saying so, rather than go in the clear.
    fn scheme(&self) -> &'static str {
        self.scheme.get_or_init(|| {
            if self.options.plain_http {
                return "http";
            }
            if !self.reference.is_loopback() {
                return "https";
            }
            let host = self.reference.api_host();
            if self.get(&format!("https://{host}/v2/")).call().is_ok() {
                return "https";
            }
            match self.get(&format!("http://{host}/v2/")).call() {
                Ok(response) if matches!(response.status().as_u16(), 200 | 401) => "http",
                _ => "https",
            }
        })
    }

    /// The absolute URL of `target` (a `/v2/...` path, or already absolute).
    pub(crate) fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_owned()
        } else {
            format!("{}://{}{target}", self.scheme(), self.reference.api_host())
        }
    }

    /// Sends `request` (see the module docs); returns the registry's answer, whatever its
    /// status, once authentication and passing failures are dealt with.
    pub(crate) fn send(&self, mut request: Request<'_>) -> Result<Response<Body>, Error> {
        let url = self.url(&request.target);
        let method = method_name(&request.method);
        let mut attempt = 0;
        let mut authenticated_again = false;
        loop {
            let authorization = self.authorization(&request.scope)?;
            let result = self.send_once(&url, &mut request, authorization.as_deref());
            let replayable = request.body.replayable();
            match result {
                Ok(response) if response.status() == 401 && replayable && !authenticated_again => {
                    authenticated_again = true;
                    self.answer_challenge(&response, &request.scope, authorization.is_some())?;
                }
                // Refused with what the challenge asked for (or a stream that cannot be sent
                // again): say why, naming the registry.
                Ok(response) if response.status() == 401 => {
                    return Err(self.refusal(&response, &request.scope));
                }
                Ok(response)
                    if replayable
                        && attempt < self.options.retries
                        && is_transient_status(response.status().as_u16()) =>
                {
                    attempt += 1;
                    std::thread::sleep(pause(attempt, retry_after(&response)));
                }
                Ok(response) => return Ok(response),
                Err(e) => {
                    let error = self.transport_error(method, &url, e);
                    if replayable && attempt < self.options.retries && error.is_transient() {
                        attempt += 1;
                        std::thread::sleep(pause(attempt, None));
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// [`Client::send`], then a status other than `expected` is an error carrying what the
    /// registry said. So is an HTML page: the registry API never answers with one, and a web
    /// server that answers every path with its page (a portal, a proxy's login, a mistyped
    /// host) would otherwise pass for a registry holding everything asked for.
    pub(crate) fn expect(
        &self,
        request: Request<'_>,
        expected: &[u16],
    ) -> Result<Response<Body>, Error> {
        let method = method_name(&request.method);
        let url = self.url(&request.target);
        let response = self.send(request)?;
        if !expected.contains(&response.status().as_u16()) {
            return Err(status_error(method, url, response));
        }
        let html = response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        if html {
            return Err(Error::Refused {
                url: format!("{method} {url}"),
                reason: format!(
                    "the server answered {} with an HTML page, not the registry API (is {} a registry?)",
                    response.status().as_u16(),
                    self.reference.registry
                ),
            });
        }
        Ok(response)
    }

    /// A `GET` (`request` makes it, for each attempt) whose answer, with a status of
    /// `expected`, is read whole: at most `limit` bytes, refused as `what` over the limit. A body
    /// cut by a passing failure is asked for again, as a request that fails is: an answer is of
    /// no use until it is whole.
    pub(crate) fn get_whole(
        &self,
        request: impl Fn() -> Request<'static>,
        expected: &[u16],
        limit: u64,
        what: &str,
    ) -> Result<(http::response::Parts, Vec<u8>), Error> {
        let mut attempt = 0;
        loop {
            let request = request();
            let url = self.url(&request.target);
            let over_limit = |url: String| Error::Refused {
                url,
                reason: format!("{what} over the {limit} byte limit"),
            };
            let (parts, body) = self.expect(request, expected)?.into_parts();
            if body.content_length().is_some_and(|length| length > limit) {
                return Err(over_limit(url));
            }
            match body.into_with_config().limit(limit).read_to_vec() {
                Ok(bytes) => return Ok((parts, bytes)),
                Err(ureq::Error::BodyExceedsLimit(_)) => return Err(over_limit(url)),
                Err(source) => {
                    let error = Error::Transport {
                        method: "GET",
                        url,
                        source,
                    };
                    if attempt < self.options.retries && error.is_transient() {
                        attempt += 1;
                        std::thread::sleep(pause(attempt, None));
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    fn send_once(
        &self,
        url: &str,
        request: &mut Request<'_>,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(authorization) = authorization {
            builder = builder.header("Authorization", authorization);
        }
        // Bytes are read from a copy of the slice: the payload keeps them whole for the next
        // attempt.
        let mut bytes_left: &[u8] = &[];
        let body = match &mut request.body {
            Payload::Empty => {
                if matches!(
                    request.method,
                    http::Method::PUT | http::Method::POST | http::Method::PATCH
                ) {
                    builder = builder.header("Content-Length", "0");
                }
                SendBody::from_reader(&mut bytes_left)
            }
            Payload::Bytes(bytes) => {
                builder = builder.header("Content-Length", bytes.len().to_string());
                bytes_left = bytes;
                SendBody::from_reader(&mut bytes_left)
            }
            Payload::Stream(reader, length) => {
                builder = builder.header("Content-Length", length.to_string());
                SendBody::from_reader(*reader)
            }
            Payload::Chunked(reader) => SendBody::from_reader(*reader),
        };
        let request = builder.body(body).map_err(ureq::Error::Http)?;
        match self.proxies.for_url(url) {
            Some(proxy) => {
                let request = self
                    .agent
                    .configure_request(request)
                    .proxy(Some(proxy.clone()))
                    .build();
                self.agent.run(request)
            }
            None => self.agent.run(request),
        }
    }

    /// A `GET` of `url`, through the proxy for it.
    fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let request = self.agent.get(url);
        match self.proxies.for_url(url) {
            Some(proxy) => request.config().proxy(Some(proxy.clone())).build(),
            None => request,
        }
    }

    /// The `Authorization` value for `scope`, when the registry asked for one before.
    fn authorization(&self, scope: &str) -> Result<Option<String>, Error> {
        let bearer = {
            let auth = self.auth();
            if let Some(token) = auth.tokens.get(scope) {
                return Ok(Some(token.clone()));
            }
            if auth.basic {
                drop(auth);
                return Ok(self
                    .credentials()?
                    .map(|(user, password)| basic_value(&user, &password)));
            }
            auth.bearer.clone()
        };
        match bearer {
            Some(challenge) => self.fetch_token(&challenge, scope).map(Some),
            None => Ok(None),
        }
    }

    /// Learns from a 401 what the registry wants, and gets it.
    fn answer_challenge(
        &self,
        response: &Response<Body>,
        scope: &str,
        sent_something: bool,
    ) -> Result<(), Error> {
        let challenges = challenges_of(response);
        let refused = |reason: &str| Error::Auth {
            registry: self.reference.registry.clone(),
            reason: reason.to_owned(),
        };
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let mut auth = self.auth();
            // A token we sent was refused: a new one for this scope.
            auth.tokens.remove(scope);
            auth.bearer = Some(bearer.clone());
            drop(auth);
            self.fetch_token(bearer, scope)?;
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some((user, _)) = self.credentials()? else {
                return Err(refused(&format!(
                    "unauthorized: the registry asks for a user and password, and none is \
                     configured for it (--creds, or oci-layout login {})",
                    self.reference.registry
                )));
            };
            let mut auth = self.auth();
            if auth.basic && sent_something {
                return Err(refused(&format!(
                    "unauthorized: the registry refused the user and password of {user}"
                )));
            }
            auth.basic = true;
            return Ok(());
        }
        Err(refused(
            "401 Unauthorized, with no challenge this client understands",
        ))
    }

    /// Why a request that carried what the registry asked for was still refused (401).
    fn refusal(&self, response: &Response<Body>, scope: &str) -> Error {
        let challenges = challenges_of(response);
        let credentials = match self.credentials() {
            Ok(credentials) => credentials,
            Err(e) => return e,
        };
        let reason = match credentials {
            None => format!(
                "unauthorized: the registry refused anonymous access, and no user and password \
                 is configured for it (--creds, or oci-layout login {})",
                self.reference.registry
            ),
            Some((user, _))
                if challenges
                    .iter()
                    .any(|c| c.param("error") == Some("insufficient_scope")) =>
            {
                format!("access denied to {user}: the registry does not grant {scope}")
            }
            Some((user, _)) if challenges.iter().any(|c| c.scheme == "bearer") => {
                format!("unauthorized: the registry refused the token issued to {user} for {scope}")
            }
            Some((user, _)) => {
                format!("unauthorized: the registry refused the user and password of {user}")
            }
        };
        Error::Auth {
            registry: self.reference.registry.clone(),
            reason,
        }
    }

    /// A bearer token for `scope`, from the challenge's realm (cached per scope).
    fn fetch_token(&self, challenge: &Challenge, scope: &str) -> Result<String, Error> {
        let registry = &self.reference.registry;
        let auth_error = |reason: String| Error::Auth {
            registry: registry.clone(),
            reason,
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| auth_error("a bearer challenge without a realm".into()))?;
        let mut query = Vec::new();
        if let Some(service) = challenge.param("service") {
            query.push(format!("service={}", encode(service)));
        }
        for scope in scope.split(' ').filter(|s| !s.is_empty()) {
            query.push(format!("scope={}", encode(scope)));
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{}", query.join("&"));
        // Credentials go to the realm only over TLS, or to this machine.
        let mut request = self.get(&url);
        let credentials = self.credentials()?;
        if let Some((user, password)) = &credentials
            && (url.starts_with("https://") || self.reference.is_loopback())
        {
            request = request.header("Authorization", &basic_value(user, password));
        }
        let mut response = request
            .call()
            .map_err(|e| self.transport_error("GET", &url, e))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 if credentials.is_some() => {
                return Err(auth_error(format!(
                    "unauthorized: the token endpoint refused the user and password ({})",
                    status_error("GET", url, response)
                )));
            }
            401 | 403 => {
                return Err(auth_error(format!(
                    "unauthorized: the token endpoint wants a user and password, and none is \
                     configured for {registry} (--creds, or oci-layout login {registry}) ({})",
                    status_error("GET", url, response)
                )));
            }
            _ => return Err(status_error("GET", url, response)),
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(TOKEN_LIMIT)
            .read_to_vec()
            .map_err(|e| Error::Transport {
                method: "GET",
                url: url.clone(),
                source: e,
            })?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            auth_error(format!(
                "the token endpoint {url} answered something that is not a token ({e})"
            ))
        })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_error(format!("the token endpoint {url} gave no token")))?;
        let value = format!("Bearer {token}");
        self.auth().tokens.insert(scope.to_owned(), value.clone());
        Ok(value)
    }

    /// The error for a request to `url` that could not be made: [`Error::Tls`], saying what
    /// is wrong and where certificates go, when the TLS handshake failed for a certificate.
    fn transport_error(&self, method: &'static str, url: &str, source: ureq::Error) -> Error {
        let host = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.split('/').next().unwrap_or(rest));
        let certs_d = format!(
            "--cert-dir DIR, or /etc/containers/certs.d/{}/",
            self.reference.registry
        );
        let detail = match tls_failure(&source) {
            Some(rustls::Error::InvalidCertificate(_)) => Some(format!(
                "the TLS certificate of {host} is not trusted: put the CA that issued it, as \
                 a *.crt file, in {certs_d} (or --tls-verify=false not to check it)"
            )),
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::UnknownCA
                | rustls::AlertDescription::CertificateUnknown
                | rustls::AlertDescription::UnsupportedCertificate
                | rustls::AlertDescription::CertificateExpired
                | rustls::AlertDescription::CertificateRevoked,
            )) => Some(if self.offers_client_certificate {
                format!("{host} refused the client certificate offered")
            } else {
                format!(
                    "{host} asks for a client certificate, and none is configured: put \
                         NAME.cert and NAME.key in {certs_d}"
                )
            }),
            _ => None,
        };
        match detail {
            Some(detail) => Error::Tls {
                method,
                url: url.to_owned(),
                detail,
                source,
            },
            None => Error::Transport {
                method,
                url: url.to_owned(),
                source,
            },
        }
    }

    /// The credentials for this repository, looked up once: those given, or what the
    /// credential files and their helpers hold ([`crate::CredentialFiles`]). A file that does
    /// not parse or a helper that fails is an error (asked again next time), not "none".
    pub(crate) fn credentials(&self) -> Result<Option<(String, String)>, Error> {
        let mut auth = self.auth();
        if let Some(known) = &auth.credentials {
            return Ok(known.clone());
        }
        let found = match &self.options.credentials {
            Credentials::Anonymous => None,
            Credentials::Basic { username, password } => Some((username.clone(), password.clone())),
            // An identity token is an OAuth refresh token; it is sent as the password of the
            // `<token>` user, which registries that issue them accept.
            Credentials::Stored { authfile } => CredentialFiles::new(authfile.clone())
                .lookup(&self.reference.registry, &self.reference.repository)?
                .map(|found| (found.username, found.secret)),
        };
        auth.credentials = Some(found.clone());
        Ok(found)
    }

    /// Whether the registry takes the credentials: `GET /v2/` through the challenge it
    /// answers (basic, or a token issued for them), as `docker login` checks them. A registry
    /// that asks for nothing takes any; a refusal is an [`Error::Auth`] naming the registry.
    pub fn check_credentials(&self) -> Result<(), Error> {
        // No scope: the token asked for grants nothing, but is issued only to a known user.
        self.expect(Request::new(http::Method::GET, "/v2/", ""), &[200])
            .map(drop)
    }
}

/// The challenges of a 401.
fn challenges_of(response: &Response<Body>) -> Vec<Challenge> {
    response
        .headers()
        .get_all("WWW-Authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::PUT => "PUT",
        http::Method::POST => "POST",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        _ => "request",
    }
}

fn basic_value(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Percent-encodes a query value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The pause before attempt `attempt` (from 1): the registry's `Retry-After` when it gave one
/// (capped), else 250 ms doubled each time, at most 8 s.
fn pause(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .map(|d| d.min(Duration::from_secs(60)))
        .unwrap_or_else(|| Duration::from_millis(250 << (attempt - 1).min(5)))
}

/// `Retry-After` in seconds (an HTTP date is taken as "a second").
fn retry_after(response: &Response<Body>) -> Option<Duration> {
    let value = response.headers().get("Retry-After")?.to_str().ok()?;
    Some(
        value
            .trim()
            .parse::<u64>()
            .map_or(Duration::from_secs(1), Duration::from_secs),
    )
}

/// The error for an unexpected status, with the registry's own words when it gave any (its
/// JSON `errors`, else the kind of body it sent: never the body itself).
pub(crate) fn status_error(
    method: &'static str,
    url: String,
    mut response: Response<Body>,
) -> Error {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .unwrap_or_default();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut detail = format!(" {reason}");
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<RegistryError>,
    }
    #[derive(serde::Deserialize)]
    struct RegistryError {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body) {
        for error in errors.errors.iter().take(3) {
            detail.push_str(": ");
            if let Some(code) = &error.code {
                detail.push_str(code);
            }
            if let Some(message) = &error.message {
                detail.push(' ');
                detail.push_str(&oci_core::printable(message));
            }
        }
    } else if !body.is_empty() && !content_type.is_empty() {
        detail.push_str(&format!(
            " (the registry answered {} bytes of {})",
            body.len(),
            oci_core::printable(&content_type)
        ));
    }
    Error::Status {
        method,
        url,
        status,
        detail,
    }
}

/// The TLS error under a failed request, if that is what failed.
fn tls_failure(error: &ureq::Error) -> Option<&rustls::Error> {
    match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// TLS as `options` ask for `registry`: the system's roots, the CAs given and those of the
/// registry's certificate directory; the client certificate given, else the directory's.
/// Also says whether a client certificate is offered.
fn tls_config(options: &RegistryOptions, registry: &str) -> Result<(TlsConfig, bool), Error> {
    let directory = cert_dir::load(options.cert_dir.as_deref(), registry)?;
    let mut builder = TlsConfig::builder();
    if !options.tls_verify {
        builder = builder.disable_verification(true);
    } else {
        let mut roots: Vec<Certificate<'static>> = Vec::new();
        let native = rustls_native_certs::load_native_certs();
        roots.extend(
            native
                .certs
                .into_iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
        );
        for pem in &options.ca_certificates {
            roots.extend(certificates(pem, "a CA certificate")?);
        }
        for (path, pem) in &directory.cas {
            roots.extend(certificates(
                pem,
                &format!("the CA certificate {}", path.display()),
            )?);
        }
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    let client = match (&options.client_certificate, &directory.client) {
        (Some((chain, key)), _) => Some((
            certificates(chain, "the client certificate")?,
            private_key(key, "the client key")?,
        )),
        (None, Some(pair)) => Some((
            certificates(
                &pair.cert_pem,
                &format!("the client certificate {}", pair.cert_path.display()),
            )?,
            private_key(
                &pair.key_pem,
                &format!("the client key {}", pair.key_path.display()),
            )?,
        )),
        (None, None) => None,
    };
    let offers_client_certificate = client.is_some();
    if let Some((chain, key)) = client {
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok((builder.build(), offers_client_certificate))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<Certificate<'static>>, Error> {
    let mut found = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => found.push(cert),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Setup {
                    what: what.to_owned(),
                    reason: format!("not PEM: {e}"),
                });
            }
        }
    }
    if found.is_empty() {
        return Err(Error::Setup {
            what: what.to_owned(),
            reason: "holds no certificate".into(),
        });
    }
    Ok(found)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKey<'static>, Error> {
    for item in ureq::tls::parse_pem(pem) {
        if let Ok(PemItem::PrivateKey(key)) = item {
            return Ok(key);
        }
    }
    Err(Error::Setup {
        what: what.to_owned(),
        reason: "holds no private key (PEM)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_honour_retry_after() {
        assert_eq!(pause(1, None), Duration::from_millis(250));
        assert_eq!(pause(3, None), Duration::from_millis(1000));
        assert_eq!(pause(9, None), Duration::from_millis(8000));
        assert_eq!(
            pause(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            pause(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
