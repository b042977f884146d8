//! HTTP/1.1 by hand over one TCP (or TLS) connection, so a test controls keep-alive, how the
//! request is written and what the client sees after the answer: the bytes, a clean end of
//! stream, or a reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// How long one read or write may take before the test calls it lost.
pub const WAIT: Duration = Duration::from_secs(10);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where to connect: the address, and the certificate to trust if the server speaks TLS.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub fn plain(addr: SocketAddr) -> Target {
        Target { addr, tls: None }
    }

    /// TLS, trusting only `cert` (DER).
    pub fn tls(addr: SocketAddr, cert: rustls::pki_types::CertificateDer<'static>) -> Target {
        Target { addr, tls: Some(super::tls_client(cert)) }
    }

    pub async fn connect(&self) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(self.addr).await?;
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a name");
                Box::new(tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?)
            }
        };
        let (r, w) = tokio::io::split(io);
        Ok(Conn { r: BufReader::new(r), w: Some(w) })
    }
}

/// A body being written in the background; it gives the writer back when done.
pub type Sending = tokio::task::JoinHandle<(WriteHalf<Box<dyn Io>>, std::io::Result<()>)>;

/// One connection, its two directions apart so a body can be written while the answer is read.
pub struct Conn {
    r: BufReader<ReadHalf<Box<dyn Io>>>,
    w: Option<WriteHalf<Box<dyn Io>>>,
}

/// An answer as it came.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The answer says the server closes the connection after it.
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(WAIT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {} ({e})", kind(&e))),
        Err(_) => Err(format!("{what}: nothing within {WAIT:?}")),
    }
}

fn kind(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "reset",
        std::io::ErrorKind::UnexpectedEof => "end of stream",
        std::io::ErrorKind::BrokenPipe => "broken pipe",
        _ => "error",
    }
}

impl Conn {
    /// Write these bytes now.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = self.w.as_mut().ok_or("the writer is busy")?;
        timed("writing", async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
    }

    /// Write `body` in the background after `pause` (a body may come a round trip after the head,
    /// and be more than the server reads before it answers); `writer_done` gives the connection
    /// its writer back.
    pub fn write_in_background(&mut self, pause: Duration, body: &Body) -> Sending {
        let mut w = self.w.take().expect("the writer");
        let (bytes, piece) = match body {
            Body::Paced(b) => (b.clone(), PIECE),
            other => (other.bytes(), usize::MAX),
        };
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let r = async {
                for (i, p) in bytes.chunks(piece.min(bytes.len().max(1))).enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    w.write_all(p).await?;
                    w.flush().await?;
                }
                Ok(())
            }
            .await;
            (w, r)
        })
    }

    /// Wait for the background writer and take it back; its error, if the body could not be sent.
    pub async fn writer_done(&mut self, job: Sending) -> Result<(), String> {
        let (w, r) = tokio::time::timeout(WAIT, job)
            .await
            .map_err(|_| format!("the body was not sent within {WAIT:?}"))?
            .map_err(|e| e.to_string())?;
        self.w = Some(w);
        r.map_err(|e| format!("sending the body: {} ({e})", kind(&e)))
    }

    /// Read one whole answer: head, then a body by `Content-Length` or chunked.
    pub async fn answer(&mut self) -> Result<Answer, String> {
        let mut line = String::new();
        let n = timed("reading the status line", self.r.read_line(&mut line)).await?;
        if n == 0 {
            return Err("reading the status line: end of stream".into());
        }
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("not a status line: {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            let n = timed("reading the headers", self.r.read_line(&mut h)).await?;
            if n == 0 {
                return Err("reading the headers: end of stream".into());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').ok_or_else(|| format!("not a header: {h:?}"))?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut a = Answer { status, headers, body: Vec::new() };
        if let Some(len) = a.header("content-length") {
            let len: usize = len.parse().map_err(|_| format!("content-length {len:?}"))?;
            a.body = vec![0; len];
            timed("reading the body", self.r.read_exact(&mut a.body)).await?;
        } else if a.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                timed("reading a chunk size", self.r.read_line(&mut size)).await?;
                let size = usize::from_str_radix(size.trim(), 16).map_err(|_| format!("chunk size {size:?}"))?;
                let mut chunk = vec![0; size + 2];
                timed("reading a chunk", self.r.read_exact(&mut chunk)).await?;
                if size == 0 {
                    break;
                }
                a.body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok(a)
    }

    /// After an answer that closes the connection: a clean end of stream, not more bytes or a reset.
    pub async fn end_of_stream(&mut self) -> Result<(), String> {
        let mut rest = Vec::new();
        timed("after the answer", self.r.read_to_end(&mut rest)).await?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} more bytes after the answer", rest.len()))
        }
    }
}

/// A request head: the request line, these headers, `Host` and the body's framing.
pub fn head(method: &str, path: &str, headers: &[(&str, &str)], body: &Body) -> Vec<u8> {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    match body {
        Body::Sized(b) | Body::Paced(b) => h.push_str(&format!("Content-Length: {}\r\n", b.len())),
        Body::Stalled(b) => h.push_str(&format!("Content-Length: {}\r\n", 2 * b.len())),
        Body::Chunked(_) => h.push_str("Transfer-Encoding: chunked\r\n"),
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// A request body and how it is framed.
#[derive(Clone)]
pub enum Body {
    Sized(Vec<u8>),
    /// Sent as one chunk and the last chunk.
    Chunked(Vec<u8>),
    /// Announced twice as long as it is: the client stops half-way.
    Stalled(Vec<u8>),
    /// Sent in pieces of `PIECE` bytes a millisecond apart, as over a slow uplink.
    Paced(Vec<u8>),
}

/// The pieces of a `Body::Paced`.
pub const PIECE: usize = 64 * 1024;

impl Body {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Sized(b) | Body::Stalled(b) | Body::Paced(b) => b.clone(),
            Body::Chunked(b) => {
                let mut out = format!("{:x}\r\n", b.len()).into_bytes();
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n0\r\n\r\n");
                out
            }
        }
    }
}
