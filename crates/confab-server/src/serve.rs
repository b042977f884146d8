//! The one port: accept connections, plain or TLS, and serve each with hyper the same way; close
//! them with a lingering close; at shutdown, stop accepting and give the connections a deadline.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::rtm_router::Tls;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// A closing connection reads what the client still sends for at most this long…
const LINGER: Duration = Duration::from_secs(30);
/// …and gives up sooner when the client sends nothing for this long.
const LINGER_IDLE: Duration = Duration::from_secs(5);

/// Serve `app` on `listener` (over TLS with `tls`) until `stop` says so (or its sender is gone);
/// then stop accepting, let each connection finish the request it is in (an idle one closes at
/// once), and after `grace` drop the connections that are left.
pub(crate) async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, app: Router, mut stop: watch::Receiver<bool>, grace: Duration) {
    let mut conns = JoinSet::new();
    let told = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    conns.spawn(connection(tcp, peer, tls.clone(), app.clone(), told.clone()));
                }
                Err(e) => {
                    // out of file descriptors, most likely: wait rather than spin
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let finished = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!(connections = conns.len(), ?grace, "connections still busy at the shutdown deadline are dropped");
        conns.shutdown().await;
    }
}

/// Until `stop` says so, or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One connection: the TLS handshake if any, then HTTP/1 or HTTP/2 with WebSocket upgrades.
async fn connection(tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, app: Router, mut stop: watch::Receiver<bool>) {
    let tcp = Linger::new(tcp);
    let Some(tls) = tls else { return http(tcp, peer, false, app, stop).await };
    let handshake = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE, tls.accept(tcp)) => r,
        _ = stopped(&mut stop) => return,
    };
    match handshake {
        Ok(Ok(stream)) => http(stream, peer, true, app, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serve one connection; each request carries the peer's address and whether the connection is
/// TLS (`rtm_router::Tls`: the RTM router answers `wss://` or `ws://` by it).
async fn http<I>(io: I, peer: SocketAddr, tls: bool, app: Router, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(Tls(tls));
        req
    }));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stopped(&mut stop) => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A TCP stream whose shutdown is a lingering close. After the last byte of the last answer it
/// sends its FIN, then reads and discards what the client still sends until the client closes
/// (or `LINGER`, or `LINGER_IDLE` without a byte). Closing a socket with unread bytes makes the
/// kernel answer with a reset, and a client that is still sending a body it will not be thanked
/// for (a 413, a refused token) would lose the answer it has not read yet.
struct Linger {
    tcp: TcpStream,
    /// Once closing: when the lingering started, and the timer that ends it.
    closing: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl Linger {
    fn new(tcp: TcpStream) -> Linger {
        Linger { tcp, closing: None }
    }
}

impl AsyncRead for Linger {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Linger {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
            this.closing = Some((Instant::now(), Box::pin(tokio::time::sleep(LINGER_IDLE))));
        }
        let Some((started, timer)) = this.closing.as_mut() else { return Poll::Ready(Ok(())) };
        let mut scratch = [0u8; 8192];
        loop {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {
                    let until = (Instant::now() + LINGER_IDLE).min(*started + LINGER);
                    timer.as_mut().reset(until);
                }
                // the client closed, or reset: nothing left to protect
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}
