//! A CONNECT proxy, as `HTTPS_PROXY` names one: it answers `CONNECT HOST:PORT` with
//! `200 Connection established`, then tunnels bytes both ways, and records every target asked
//! for, so a test can say whether a client went through it. A target can be routed to another
//! address (a name that resolves nowhere to the registry on loopback): a client that reaches it
//! by that name cannot have gone around the proxy.
//!
//! Only CONNECT is served (ureq tunnels plain-HTTP requests through CONNECT as well); anything
//! else is answered 405.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::server::LoopbackServer;

struct State {
    routes: HashMap<String, String>,
    targets: Mutex<Vec<String>>,
}

/// A running proxy; stopped when dropped.
pub struct ConnectProxy {
    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY`.
    pub url: String,
    state: Arc<State>,
    _server: LoopbackServer,
}

impl ConnectProxy {
    /// A proxy that sends `CONNECT FROM` to `TO` for each of `routes`, and any other target
    /// where it names.
    pub fn start(routes: &[(&str, &str)]) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let state = Arc::new(State {
            routes: routes
                .iter()
                .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
                .collect(),
            targets: Mutex::new(Vec::new()),
        });
        let server = LoopbackServer::start(listener, Arc::clone(&state), serve);
        ConnectProxy {
            url: format!("http://{}", server.address()),
            state,
            _server: server,
        }
    }

    /// The `HOST:PORT` of every CONNECT so far, in order.
    pub fn targets(&self) -> Vec<String> {
        self.state
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn serve(state: &State, client: TcpStream) {
    let Ok(mut client_out) = client.try_clone() else {
        return;
    };
    let mut client_in = BufReader::new(client);
    let mut request_line = String::new();
    if client_in.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    // The rest of the head (Host, User-Agent, Proxy-Authorization) says nothing needed here.
    loop {
        let mut line = String::new();
        match client_in.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client_out.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    state
        .targets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(target.to_owned());
    let upstream_address = state.routes.get(target).map_or(target, String::as_str);
    let Ok(upstream) = TcpStream::connect(upstream_address) else {
        let _ = client_out.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    if client_out
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut upstream_out), Ok(mut upstream_in)) = (upstream.try_clone(), upstream.try_clone())
    else {
        return;
    };
    // Bytes the client sent after the head are already in the reader's buffer: they go first.
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Write);
    let _ = up.join();
    let _ = upstream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_connect_is_tunnelled_to_its_route_and_recorded() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let echo_address = echo.local_addr().expect("address").to_string();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = echo.accept() {
                let mut buffer = [0u8; 5];
                if stream.read_exact(&mut buffer).is_ok() {
                    let _ = stream.write_all(&buffer);
                }
            }
        });
        let proxy = ConnectProxy::start(&[("nowhere.test:443", &echo_address)]);
        let mut stream =
            TcpStream::connect(proxy.url.trim_start_matches("http://")).expect("connect");
        stream
            .write_all(b"CONNECT nowhere.test:443 HTTP/1.1\r\nHost: nowhere.test:443\r\n\r\nhello")
            .expect("write");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut blank = String::new();
        reader.read_line(&mut blank).expect("blank line");
        let mut echoed = [0u8; 5];
        reader.read_exact(&mut echoed).expect("echo");
        assert_eq!(&echoed, b"hello");
        assert_eq!(proxy.targets(), ["nowhere.test:443"]);
    }
}
