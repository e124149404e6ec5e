//! The listener: binds the address, decides how clients authenticate, loads TLS, and serves
//! each connection on a task of its own until asked to stop.
//!
//! Guarantees:
//! - No password is accepted only on a loopback address; any other address needs
//!   `sql_password`, or the server does not start (a bad-input error).
//! - A bad, busy or insecure address and an unreadable certificate are refused before anything
//!   is served.
//! - Each connection has its own workspace and query thread, so one slow query blocks no other
//!   client; all share one engine runtime, so footers stay cached and all queries together stay
//!   within `memory_limit`.

use crate::auth::ScramConfig;
use crate::executor::ExecutorFactory;
use crate::handler::{Auth, Connection, Handlers};
use dbopt::{DbError, Workspace};
use pgwire::api::ConnectionManager;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The bound SQL endpoint.
pub struct SqlServer {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    auth: Auth,
    tls: Option<TlsAcceptor>,
}

impl SqlServer {
    /// Binds `addr` (port 0 picks a free one) with `ws`'s authentication and TLS settings.
    pub fn bind(addr: &str, ws: &Workspace) -> Result<SqlServer, DbError> {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            DbError::BadAddress(format!(
                "--sql-addr '{addr}' is not an address: use IP:PORT, e.g. 127.0.0.1:5433"
            ))
        })?;
        let settings = ws.config().settings();
        let tls_files = match (&settings.sql_tls_cert, &settings.sql_tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(DbError::BadArgument(
                    "TLS needs both sql_tls_cert and sql_tls_key: set both, or neither".into(),
                ));
            }
        };
        let auth = match &settings.sql_password {
            Some(password) => {
                let cert = match &tls_files {
                    Some((cert, _)) => Some(read_file(cert, "sql_tls_cert")?),
                    None => None,
                };
                Auth::Scram(Arc::new(ScramConfig::new(
                    &settings.sql_user,
                    password,
                    cert,
                )))
            }
            None if parsed.ip().is_loopback() => Auth::Trust,
            None => {
                return Err(DbError::BadAddress(format!(
                    "--sql-addr {parsed} is not a loopback address and no password is set: set \
                     sql_password (DBOPT_SQL_PASSWORD) or serve on 127.0.0.1"
                )));
            }
        };
        let tls = match &tls_files {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let listener = std::net::TcpListener::bind(parsed)
            .map_err(|e| dbopt::serve::bind_error(parsed, "--sql-addr", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| DbError::io("configuring the SQL listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DbError::io("reading the SQL listener's address", e))?;
        Ok(SqlServer {
            listener,
            addr,
            auth,
            tls,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// True when clients must give the password.
    pub fn requires_password(&self) -> bool {
        matches!(self.auth, Auth::Scram(_))
    }

    /// True when clients may (and with a password should) use TLS.
    pub fn offers_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves clients with `ws`'s configuration until `stop` is set, routing each statement
    /// across its table's live layouts when `routed` (else reading the active layout).
    /// Connections open at that moment end when the process does.
    pub async fn serve_until(
        self,
        ws: &Workspace,
        routed: bool,
        stop: Arc<AtomicBool>,
    ) -> Result<(), DbError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(|e| DbError::io("registering the SQL listener", e))?;
        let factory = ExecutorFactory {
            config: ws.config().clone(),
            clock: ws.clock().clone(),
            runtime: ws.shared_engine_runtime(),
            routed,
            log: Arc::new(dbopt::log_writer::QueryLogWriter::start(ws)?),
        };
        let manager = Arc::new(ConnectionManager::new());
        let seeds = AtomicU64::new(ws.clock().now_ms() as u64);
        while !stop.load(Ordering::SeqCst) {
            let accepted = tokio::time::timeout(POLL, listener.accept()).await;
            let (socket, peer) = match accepted {
                Err(_) => continue,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the SQL listener failed to accept");
                    continue;
                }
                Ok(Ok(pair)) => pair,
            };
            let seed = seeds.fetch_add(1, Ordering::Relaxed);
            let connection = Connection::new(
                factory.clone(),
                seed,
                self.auth.clone(),
                manager.clone(),
                watch_hang_up(&socket),
            );
            let tls = self.tls.clone();
            tokio::spawn(async move {
                tracing::debug!(%peer, "SQL client connected");
                if let Err(e) =
                    pgwire::tokio::process_socket(socket, tls, Handlers::new(connection)).await
                {
                    tracing::debug!(%peer, error = %e, "SQL connection ended with an error");
                }
            });
        }
        // Everything answered is in the query log before serve returns.
        factory.log.stop();
        Ok(())
    }
}

/// A flag that turns true when the client's side of `socket` closes, read from a duplicate of
/// its descriptor: the connection's own reader is busy with pgwire's message loop and sees no
/// hang-up while a query runs.
fn watch_hang_up(socket: &TcpStream) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let duplicate = socket_duplicate(socket);
    tokio::spawn(async move {
        let Some(peer) = duplicate else {
            return;
        };
        let mut byte = [0u8; 1];
        loop {
            tokio::select! {
                read = peer.peek(&mut byte) => match read {
                    // Unread messages (a pipelining client): look again shortly.
                    Ok(n) if n > 0 => tokio::time::sleep(POLL).await,
                    _ => break,
                },
                // The connection ended on its own: let go of the duplicate so the socket closes.
                () = tx.closed() => return,
            }
        }
        let _ = tx.send(true);
    });
    rx
}

fn socket_duplicate(socket: &TcpStream) -> Option<TcpStream> {
    let fd = std::os::fd::AsFd::as_fd(socket).try_clone_to_owned().ok()?;
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true).ok()?;
    TcpStream::from_std(std).ok()
}

fn read_file(path: &Path, key: &str) -> Result<Vec<u8>, DbError> {
    std::fs::read(path).map_err(|e| {
        DbError::BadFile(format!(
            "{key} {}: {e}: give a readable PEM file",
            path.display()
        ))
    })
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, DbError> {
    use rustls_pemfile::{certs, private_key};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        DbError::BadFile(format!(
            "{what}: {e}: give a PEM certificate chain and its private key"
        ))
    };
    let cert_pem = read_file(cert, "sql_tls_cert")?;
    let key_pem = read_file(key, "sql_tls_key")?;
    let chain = certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&format!("sql_tls_cert {}", cert.display()), &e))?;
    if chain.is_empty() {
        return Err(bad(
            &format!("sql_tls_cert {}", cert.display()),
            &"no certificate in the file",
        ));
    }
    let key_der = private_key(&mut key_pem.as_slice())
        .map_err(|e| bad(&format!("sql_tls_key {}", key.display()), &e))?
        .ok_or_else(|| {
            bad(
                &format!("sql_tls_key {}", key.display()),
                &"no private key in the file",
            )
        })?;
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| bad("sql_tls_cert and sql_tls_key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
