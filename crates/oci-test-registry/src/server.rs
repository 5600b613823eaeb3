//! The skeleton every test double here shares: a listener on loopback, a thread that accepts,
//! a thread per connection, and a handle that stops accepting when dropped.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A running server; it stops accepting when dropped (connections being served run on).
pub struct LoopbackServer {
    address: String,
    stopped: Arc<AtomicBool>,
}

impl LoopbackServer {
    /// Serves each connection to `listener` with `serve(&state, connection)` on a thread of
    /// its own.
    pub fn start<S: Send + Sync + 'static>(
        listener: TcpListener,
        state: Arc<S>,
        serve: fn(&S, TcpStream),
    ) -> LoopbackServer {
        let address = listener.local_addr().expect("its address").to_string();
        let stopped = Arc::new(AtomicBool::new(false));
        let accepting = Arc::clone(&stopped);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(&state, stream));
            }
        });
        LoopbackServer { address, stopped }
    }

    /// `IP:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}
