//! The scrape endpoint (`RSTUF_METRICS_ADDR`): `GET /metrics` on one
//! thread with blocking sockets. Scrapes come every few seconds from one
//! Prometheus, so serving them one at a time is enough, and a read timeout
//! keeps a client that never finishes its request from blocking the next.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use log::{debug, info};

const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A scrape request is a request line and a few headers.
const MAX_REQUEST: usize = 8 * 1024;

/// Binds `addr` now (so a taken port is a startup error) and serves
/// scrapes on a thread of its own until the process ends.
pub fn serve(addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream.and_then(answer) {
                    Ok(()) => {}
                    Err(e) => debug!("metrics: a scrape failed: {e}"),
                }
            }
        })?;
    info!("metrics: serving http://{bound}/metrics");
    Ok(bound)
}

fn answer(mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let response = respond(&head);
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line ending the headers.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn respond(head: &str) -> String {
    let mut words = head.split_whitespace();
    let (method, target) = (words.next(), words.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    match (method, path) {
        (Some("GET"), Some("/metrics")) => reply(
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &super::render(),
        ),
        (Some("GET"), _) => reply("404 Not Found", "text/plain", "try /metrics\n"),
        _ => reply("405 Method Not Allowed", "text/plain", "GET only\n"),
    }
}

fn reply(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let ok = respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("# TYPE rstuf_worker_consumers gauge"), "{ok}");
        assert!(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        assert!(respond("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(respond("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(respond("").starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn a_scrape_over_tcp_gets_the_exposition() {
        let addr = serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        assert!(
            body.contains("rstuf_worker_broker_reconnects_total "),
            "{body}"
        );
    }
}
