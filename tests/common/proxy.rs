//! A TCP proxy to a local service that can be told to stall or to go down:
//! after `stall()` new connections are accepted and then left unanswered,
//! the way a hung server behaves, while earlier ones keep working; after
//! `go_down()` every open connection is cut and new ones are refused, the
//! way a crashed server behaves. `recover()` passes new connections
//! through again (stalled ones stay stalled, as a client's hung request
//! would).
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const PASS: u8 = 0;
const STALL: u8 = 1;
const DOWN: u8 = 2;

/// Client sides of the connections being piped, to cut them on `go_down`.
type Live = Arc<Mutex<HashMap<u64, TcpStream>>>;

pub struct StallingProxy {
    pub port: u16,
    target_port: u16,
    mode: Arc<AtomicU8>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    live: Live,
}

impl StallingProxy {
    pub fn to(target_port: u16) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let held = Arc::new(Mutex::new(Vec::new()));
        let live: Live = Arc::default();
        let (flag, hold, piped) = (mode.clone(), held.clone(), live.clone());
        thread::spawn(move || {
            // Polled, so that going down can close the port (connections
            // are then refused, as by a server that is not running).
            let mut open = Some(listener);
            loop {
                let down = flag.load(Ordering::SeqCst) == DOWN;
                if down {
                    open = None;
                } else if open.is_none() {
                    open = TcpListener::bind(("127.0.0.1", port)).ok();
                }
                let accepted = open
                    .as_ref()
                    .map(|l| l.set_nonblocking(true).and_then(|()| l.accept()));
                let Some(Ok((client, _))) = accepted else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                if flag.load(Ordering::SeqCst) == STALL {
                    hold.lock().unwrap().push(client);
                } else if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) {
                    pipe(client, server, &piped);
                }
            }
        });
        StallingProxy {
            port,
            target_port,
            mode,
            held,
            live,
        }
    }

    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
    }

    /// Cuts every piped connection and closes the port: new connections
    /// are refused.
    pub fn go_down(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        for (_, stream) in self.live.lock().unwrap().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// New connections reach the service again.
    pub fn recover(&self) {
        self.mode.store(PASS, Ordering::SeqCst);
    }

    /// Passes new connections again and hands the held ones to the service,
    /// which answers them late: a hung request that completes after all.
    pub fn resume_held(&self) {
        self.recover();
        for client in self.held.lock().unwrap().drain(..) {
            let _ = client.set_nonblocking(false);
            if let Ok(server) = TcpStream::connect(("127.0.0.1", self.target_port)) {
                pipe(client, server, &self.live);
            }
        }
    }

    /// Closes the connections held unanswered: their requests fail now
    /// instead of at the client's timeout.
    pub fn release_held(&self) {
        self.held.lock().unwrap().clear();
    }

    /// Held connections whose client still waits for an answer (has not
    /// given up and closed its end).
    pub fn waiting_clients(&self) -> usize {
        let mut held = self.held.lock().unwrap();
        held.iter_mut().map(still_open).filter(|open| *open).count()
    }

    /// Connections currently held unanswered.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

/// Reads what the client sent (it is never answered) until the socket
/// would block (open) or ends (closed by the client).
fn still_open(stream: &mut TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
}

fn pipe(client: TcpStream, server: TcpStream, live: &Live) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        let live = live.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
            live.lock().unwrap().remove(&id);
        });
    };
    if let (Ok(c2), Ok(s2), Ok(c3)) = (client.try_clone(), server.try_clone(), client.try_clone()) {
        live.lock().unwrap().insert(id, c3);
        copy(client, s2);
        copy(server, c2);
    }
}
