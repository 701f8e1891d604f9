//! `amqps://`: RabbitMQ over rustls, inside amiquip's own event loop.
//!
//! amiquip encrypts only through native-tls (OpenSSL here), which the static
//! image cannot carry, but it runs any stream implementing its `IoStream`.
//! So the handshake is done here, blocking and with the socket's timeouts,
//! and the established session is handed to amiquip as a non-blocking
//! stream that keeps amiquip's edge-triggered contract: `read` says
//! `WouldBlock` only when the socket did, and `write` reports bytes written
//! only once their TLS records reached the socket.
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use amiquip::{Connection, IoStream};
use mio::{Evented, Poll, PollOpt, Ready, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::topology::{login, nonblocking};
use super::{AmqpUrl, Error};
use crate::tls::{self, Verify};

/// Opens an AMQP connection over TLS on `tcp`, verifying the server's
/// certificate.
pub(crate) fn connect(
    url: &AmqpUrl,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<Connection, Error> {
    let (session, tcp) = handshake(url, tcp)?;
    let stream = TlsStream {
        session,
        tcp: nonblocking(url, tcp)?,
        withheld: 0,
    };
    login(url, stream, timeout)
}

/// A blocking TLS stream on `tcp`, for the quarantine's bare AMQP connection.
pub(crate) fn blocking(
    url: &AmqpUrl,
    tcp: TcpStream,
) -> Result<StreamOwned<ClientConnection, TcpStream>, Error> {
    let (session, tcp) = handshake(url, tcp)?;
    Ok(StreamOwned::new(session, tcp))
}

/// The TLS handshake, within the socket's read and write timeouts.
fn handshake(url: &AmqpUrl, mut tcp: TcpStream) -> Result<(ClientConnection, TcpStream), Error> {
    let config = client_config(url)?;
    let name = ServerName::try_from(url.host().to_owned()).map_err(|e| {
        failed(
            url,
            "starting TLS",
            format!(
                "{:?} cannot be checked against a certificate: {e}",
                url.host()
            ),
        )
    })?;
    let mut session = ClientConnection::new(config, name)
        .map_err(|e| failed(url, "starting TLS", e.to_string()))?;
    while session.is_handshaking() {
        session.complete_io(&mut tcp).map_err(|e| {
            let detail = match tls::certificate_hint(&e) {
                Some(hint) => format!("{e}; {hint}"),
                None => e.to_string(),
            };
            failed(url, "the TLS handshake", detail)
        })?;
    }
    Ok((session, tcp))
}

fn client_config(url: &AmqpUrl) -> Result<Arc<ClientConfig>, Error> {
    tls::client_config(None, Verify::Full)
        .map(Arc::new)
        .map_err(|e| failed(url, "setting up TLS", e.to_string()))
}

fn failed(url: &AmqpUrl, action: &str, detail: String) -> Error {
    Error::Broker {
        broker: url.to_string(),
        action: action.to_owned(),
        hint: "",
        detail,
    }
}

/// An established TLS session on a non-blocking socket.
struct TlsStream {
    session: ClientConnection,
    tcp: mio::net::TcpStream,
    /// Bytes at the start of the next `write` already taken into TLS records
    /// that did not all reach the socket; amiquip offers them again (it
    /// retries from where it was told it stopped) and they are then
    /// reported, not encrypted twice.
    withheld: usize,
}

impl TlsStream {
    /// Sends queued TLS records; `WouldBlock` if the socket took not all.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            self.session.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // Nothing decrypted is waiting: read records until the socket
            // would block (amiquip's edge-triggered poll needs that).
            if self.session.read_tls(&mut self.tcp)? == 0 {
                // End of stream; the reader now tells clean from abrupt.
                continue;
            }
            let processed = self.session.process_new_packets();
            // Answers the peer expects (alerts, key updates) go out now;
            // a full socket leaves them for the next write.
            match self.flush_records() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_records()?;
        if self.withheld > 0 {
            let sent = std::mem::take(&mut self.withheld);
            if buf.len() < sent {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the bytes of an unfinished TLS write were not offered again",
                ));
            }
            return Ok(sent);
        }
        let taken = self.session.writer().write(buf)?;
        match self.flush_records() {
            Ok(()) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.withheld = taken;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }
}

impl Evented for TlsStream {
    fn register(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.tcp.register(poll, token, interest, opts)
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.tcp.reregister(poll, token, interest, opts)
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        self.tcp.deregister(poll)
    }
}

impl IoStream for TlsStream {}
