//! A fault proxy between the client and the real registry: it forwards every request as it
//! came (the `Host` header too, so the registry's upload `Location`s point back at the proxy)
//! and, where a test asked for it, breaks one: cuts the connection after some bytes of a
//! request or response body, answers 503 or 429 itself, declares and sends a shorter body,
//! flips a byte of a body, or drops an answer.
//!
//! Every request is recorded with the fault it met, so a test can say what the client did.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{Head, Response, read_head, read_request_body, read_response_body};
use crate::server::LoopbackServer;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward the head and this many bytes of the request body, then close both connections.
    CutRequestBody(usize),
    /// Send the response head and this many bytes of its body, then close.
    CutResponseBody(usize),
    /// Forward the request, and close without a word of the response.
    DropResponse,
    /// Answer with this status and `Retry-After` (when given), without forwarding.
    Status(u16, Option<&'static str>),
    /// Answer with only this many bytes of the body, declared as the whole.
    TruncateResponse(usize),
    /// Flip the bits of one byte in the middle of the response body.
    CorruptResponse,
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::CutRequestBody(_) => "cut-request",
            Fault::CutResponseBody(_) => "cut-response",
            Fault::DropResponse => "drop-response",
            Fault::Status(..) => "status",
            Fault::TruncateResponse(_) => "truncate",
            Fault::CorruptResponse => "corrupt",
        }
    }
}

struct Rule {
    method: &'static str,
    /// A substring of the target.
    path: String,
    /// How many matching requests to let through before it applies.
    skip: usize,
    /// How many more requests it applies to.
    times: usize,
    fault: Fault,
}

/// A request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The status the client got, when it got one.
    pub status: Option<u16>,
    /// The fault applied, if any.
    pub fault: Option<&'static str>,
    /// Whether the request carried `Authorization`.
    pub authorized: bool,
    /// The request body's length.
    pub body_length: usize,
}

struct State {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`, to put in references.
    pub host: String,
    state: Arc<State>,
    _server: LoopbackServer,
}

impl FaultProxy {
    /// A proxy to the registry at `upstream` (`127.0.0.1:PORT`, plain HTTP).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let server = LoopbackServer::start(listener, Arc::clone(&state), serve);
        FaultProxy {
            host: server.address().to_owned(),
            state,
            _server: server,
        }
    }

    /// Applies `fault` to the next `times` requests of `method` whose target contains `path`.
    pub fn inject(&self, method: &'static str, path: &str, times: usize, fault: Fault) {
        self.inject_after(method, path, 0, times, fault);
    }

    /// Lets `skip` such requests through, then applies `fault` to the next `times`.
    pub fn inject_after(
        &self,
        method: &'static str,
        path: &str,
        skip: usize,
        times: usize,
        fault: Fault,
    ) {
        lock(&self.state.rules).push(Rule {
            method,
            path: path.to_owned(),
            skip,
            times,
            fault,
        });
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// The requests of `method` whose target contains `path`.
    pub fn seen_matching(&self, method: &str, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.target.contains(path))
            .collect()
    }
}

fn record(state: &State, seen: &Seen) {
    lock(&state.seen).push(seen.clone());
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fault for this request, if a rule matches (counting it down).
fn take_fault(state: &State, head: &Head) -> Option<Fault> {
    let mut rules = lock(&state.rules);
    let rule = rules
        .iter_mut()
        .find(|r| r.times > 0 && r.method == head.method() && head.target().contains(&r.path))?;
    if rule.skip > 0 {
        rule.skip -= 1;
        return None;
    }
    rule.times -= 1;
    Some(rule.fault.clone())
}

fn serve(state: &State, client: TcpStream) {
    let Ok(mut client_out) = client.try_clone() else {
        return;
    };
    let mut client_in = BufReader::new(client);
    loop {
        let Ok(Some(mut head)) = read_head(&mut client_in) else {
            return;
        };
        let Ok(body) = read_request_body(&mut client_in, &head) else {
            return;
        };
        let fault = take_fault(state, &head);
        let mut seen = Seen {
            method: head.method().to_owned(),
            target: head.target().to_owned(),
            status: None,
            fault: fault.as_ref().map(Fault::name),
            authorized: head.get("Authorization").is_some(),
            body_length: body.len(),
        };
        let keep_going = exchange(
            state,
            &mut head,
            &body,
            fault.as_ref(),
            &mut client_out,
            &mut seen,
        );
        if !keep_going {
            let _ = client_out.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Handles one request; returns whether the client connection stays open. The request is
/// recorded before the client hears anything, so what a test reads after an answer is whole.
fn exchange(
    state: &State,
    head: &mut Head,
    body: &[u8],
    fault: Option<&Fault>,
    client: &mut TcpStream,
    seen: &mut Seen,
) -> bool {
    let method = head.method().to_owned();
    if let Some(&Fault::Status(status, retry_after)) = fault {
        let mut response = Response::new(status).json(&serde_json::json!({
            "errors": [{"code": "UNAVAILABLE", "message": "the proxy says: not now"}]
        }));
        if let Some(retry_after) = retry_after {
            response = response.header("Retry-After", retry_after);
        }
        seen.status = Some(status);
        record(state, seen);
        return response.write_to(client, &method).is_ok();
    }
    let Ok(mut upstream) = TcpStream::connect(&state.upstream) else {
        record(state, seen);
        return false;
    };
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(30)));
    head.remove("Transfer-Encoding");
    head.set("Connection", "close");
    if !body.is_empty() || head.get("Content-Length").is_some() {
        head.set("Content-Length", body.len().to_string());
    }
    if let Some(&Fault::CutRequestBody(after)) = fault {
        // The registry gets part of the body and then the end of the stream; its answer (if
        // any) is read and dropped so it has dealt with the cut before the client goes on.
        let _ = upstream.write_all(&head.to_bytes());
        let _ = upstream.write_all(&body[..after.min(body.len())]);
        let _ = upstream.shutdown(Shutdown::Write);
        let _ = upstream.read_to_end(&mut Vec::new());
        record(state, seen);
        return false;
    }
    let answer = (|| {
        upstream.write_all(&head.to_bytes()).ok()?;
        upstream.write_all(body).ok()?;
        let mut upstream_in = BufReader::new(upstream);
        let response_head = read_head(&mut upstream_in).ok()??;
        let response_body = read_response_body(&mut upstream_in, &response_head, &method).ok()?;
        Some((response_head, response_body))
    })();
    let Some((mut response_head, mut response_body)) = answer else {
        record(state, seen);
        return false;
    };
    seen.status = Some(response_head.status());
    record(state, seen);
    response_head.remove("Transfer-Encoding");
    response_head.remove("Connection");
    let has_body = method != "HEAD" && response_head.status() != 204;
    if has_body || response_head.get("Content-Length").is_none() {
        response_head.set("Content-Length", response_body.len().to_string());
    }
    match fault {
        Some(Fault::DropResponse) => return false,
        Some(&Fault::CutResponseBody(after)) => {
            let _ = client.write_all(&response_head.to_bytes());
            let _ = client.write_all(&response_body[..after.min(response_body.len())]);
            let _ = client.flush();
            return false;
        }
        Some(&Fault::TruncateResponse(keep)) => {
            response_body.truncate(keep);
            response_head.set("Content-Length", response_body.len().to_string());
        }
        Some(Fault::CorruptResponse) if !response_body.is_empty() => {
            let middle = response_body.len() / 2;
            response_body[middle] ^= 0xff;
        }
        _ => {}
    }
    if client.write_all(&response_head.to_bytes()).is_err() {
        return false;
    }
    if method != "HEAD" && client.write_all(&response_body).is_err() {
        return false;
    }
    client.flush().is_ok()
}
