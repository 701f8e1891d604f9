//! TLS for tests: a throwaway CA made with the openssl CLI, and a TLS
//! front (a terminating proxy) that puts one in front of a local service,
//! so a worker reaches Redis, RabbitMQ, PostgreSQL or S3 over TLS while the
//! test itself still reads the service directly.
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::TempDir;

/// A CA and one server certificate it signed.
pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    /// The server certificate is for 127.0.0.1 and localhost.
    pub fn new(name: &str) -> TestCa {
        TestCa::for_names(name, "DNS:localhost,IP:127.0.0.1")
    }

    /// The server certificate is for `names` (`subjectAltName` syntax).
    pub fn for_names(name: &str, names: &str) -> TestCa {
        let ca = TestCa {
            dir: TempDir::new("rstuf-ca"),
        };
        ca.openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
            ],
            &format!("/CN={name}"),
        );
        ca.openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
            ],
            "/CN=localhost",
        );
        std::fs::write(
            ca.dir.path().join("server.ext"),
            format!(
                "subjectAltName={names}\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        ca.openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
            ],
            "server.ext",
        );
        ca
    }

    fn openssl(&self, args: &[&str], last: &str) {
        super::run_ok(
            Command::new("openssl")
                .args(args)
                .arg(last)
                .current_dir(self.dir.path()),
        );
    }

    /// The CA certificate (PEM), what a client is told to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate and key (PEM), for servers the test starts.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let (cert, key) = self.server_files();
        let certs = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }
}

/// How a client starts TLS on the front's port.
#[derive(Clone, Copy)]
pub enum Protocol {
    /// TLS from the first byte: rediss, amqps, https.
    Direct,
    /// PostgreSQL: an SSLRequest answered with `S`, then TLS.
    Postgres,
}

/// A TLS-terminating proxy on 127.0.0.1 to a local plaintext port.
pub struct TlsFront {
    pub port: u16,
    plaintext_attempts: Arc<AtomicUsize>,
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl TlsFront {
    pub fn to(target_port: u16, protocol: Protocol, ca: &TestCa) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = ca.server_config();
        let plaintext_attempts = Arc::new(AtomicUsize::new(0));
        let counter = plaintext_attempts.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (config, counter) = (config.clone(), counter.clone());
                thread::spawn(move || {
                    if let Ok(true) = starts_tls(&client, protocol) {
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) {
                            let _ = relay(client, server, config);
                        }
                    } else {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        TlsFront {
            port,
            plaintext_attempts,
        }
    }

    /// Connections whose first bytes were not the start of TLS: a client
    /// falling back to plaintext would show here.
    pub fn plaintext_attempts(&self) -> usize {
        self.plaintext_attempts.load(Ordering::SeqCst)
    }
}

/// Whether the client begins TLS (answering PostgreSQL's SSLRequest).
fn starts_tls(mut client: &TcpStream, protocol: Protocol) -> io::Result<bool> {
    if let Protocol::Postgres = protocol {
        let mut request = [0u8; 8];
        client.read_exact(&mut request)?;
        if request != SSL_REQUEST {
            return Ok(false);
        }
        client.write_all(b"S")?;
    }
    let mut first = [0u8; 1];
    Ok(client.peek(&mut first)? == 1 && first[0] == TLS_HANDSHAKE_RECORD)
}

/// Decrypts from the client to the server and encrypts back, until either
/// side closes; `poll(2)` waits on both sockets.
fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    config: Arc<ServerConfig>,
) -> io::Result<()> {
    let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: client.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: server.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if fds[0].revents != 0 {
            if tls.read_tls(&mut client)? == 0 {
                break;
            }
            let processed = tls.process_new_packets();
            while tls.wants_write() {
                tls.write_tls(&mut client)?;
            }
            processed.map_err(io::Error::other)?;
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => return close(&server),
                    Ok(n) => server.write_all(&buf[..n])?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if fds[1].revents != 0 {
            let n = server.read(&mut buf)?;
            if n == 0 {
                break;
            }
            tls.writer().write_all(&buf[..n])?;
            while tls.wants_write() {
                tls.write_tls(&mut client)?;
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    close(&server)
}

fn close(stream: &TcpStream) -> io::Result<()> {
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}
