//! A TCP proxy to a local service that can be told to stall: connections
//! made after `stall()` are accepted and then left unanswered, the way a
//! hung server behaves, while earlier ones keep working.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct StallingProxy {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl StallingProxy {
    pub fn to(target_port: u16) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (flag, hold) = (stalled.clone(), held.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if flag.load(Ordering::SeqCst) {
                    hold.lock().unwrap().push(client);
                } else if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) {
                    pipe(client, server);
                }
            }
        });
        StallingProxy {
            port,
            stalled,
            held,
        }
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Connections currently held unanswered.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

fn pipe(client: TcpStream, server: TcpStream) {
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        copy(client, s2);
        copy(server, c2);
    }
}
