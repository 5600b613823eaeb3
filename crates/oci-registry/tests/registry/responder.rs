//! A loopback HTTP server that answers with whatever a test's handler says: a registry that
//! does what distribution 2.8 does not (see `fake_registry`), or one that misbehaves (HTML,
//! a huge manifest, a redirect to another host, a token endpoint that never answers).

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::{Head, Response, read_head, read_request_body};
use oci_test_registry::server::LoopbackServer;

/// A request the responder got.
#[derive(Debug, Clone)]
pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Request {
    pub fn method(&self) -> &str {
        self.head.method()
    }

    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target().split('?').next().unwrap_or("")
    }
}

/// What to answer.
pub enum Reply {
    /// This response.
    Respond(Response),
    /// This response's head, then `length` bytes of `{` (declared with `Content-Length` when
    /// `declared`, else sent until the client goes away), written as the client reads.
    Endless {
        response: Response,
        length: u64,
        declared: bool,
    },
    /// Nothing, for this long, then close.
    Hang(Duration),
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct State {
    handler: Box<Handler>,
    requests: Mutex<Vec<Request>>,
}

/// A running responder; stopped when dropped.
pub struct Responder {
    /// `IP:PORT`.
    pub host: String,
    state: Arc<State>,
    _server: LoopbackServer,
}

impl Responder {
    /// Serves `handler` on a free port of 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Responder {
        Responder::start_on("127.0.0.1", handler)
    }

    /// Serves `handler` on a free port of `ip` (another loopback address is "another host").
    pub fn start_on(
        ip: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Responder {
        let listener = TcpListener::bind((ip, 0)).expect("bind the responder");
        let state = Arc::new(State {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
        });
        let server = LoopbackServer::start(listener, Arc::clone(&state), serve);
        Responder {
            host: server.address().to_owned(),
            state,
            _server: server,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn serve(state: &State, stream: TcpStream) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Ok(Some(head)) = read_head(&mut reader) else {
            return;
        };
        let Ok(body) = read_request_body(&mut reader, &head) else {
            return;
        };
        let request = Request { head, body };
        state
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request.clone());
        match (state.handler)(&request) {
            Reply::Respond(response) => {
                if response.write_to(&mut out, request.method()).is_err() {
                    return;
                }
            }
            Reply::Endless {
                response,
                length,
                declared,
            } => {
                let _ = endless(&mut out, &response, length, declared);
                return;
            }
            Reply::Hang(duration) => {
                std::thread::sleep(duration);
                return;
            }
        }
    }
}

fn endless(
    out: &mut TcpStream,
    response: &Response,
    length: u64,
    declared: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if declared {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    } else {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let block = [b'{'; 64 << 10];
    let mut left = length;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    Ok(())
}
