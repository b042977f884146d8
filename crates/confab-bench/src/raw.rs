//! A minimal LeanCloud realtime client over any byte stream: the HTTP upgrade and WebSocket
//! frames written by hand, so that holding thousands of idle sessions costs the load generator
//! almost nothing (no client-side WebSocket library and its buffers) and the server's memory is
//! what gets measured.

use anyhow::{bail, Context};
use confab_face_leancloud::realtime::proto::*;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A client frame (clients mask what they send): FIN + binary, the length, a mask, the payload.
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = rand_mask();
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x82);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn rand_mask() -> [u8; 4] {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.subsec_nanos());
    n.to_le_bytes()
}

/// One server frame at the start of `buf`: (opcode, payload range, frame length), or None if
/// more bytes are needed.
fn server_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, head) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() >= head + len).then_some((op, head..head + len, head + len))
}

/// The `session open` command.
pub fn open_command(app_id: &str, peer: &str) -> Vec<u8> {
    GenericCommand {
        cmd: Some(CommandType::Session as i32),
        op: Some(OpType::Open as i32),
        app_id: Some(app_id.to_string()),
        peer_id: Some(peer.to_string()),
        i: Some(1),
        session_message: Some(SessionCommand::default()),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Upgrade `io` to a WebSocket and open a session as `peer`; returns once `opened` arrived.
/// Frames pushed after it (the unread notification) are left unread, as an idle client would.
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, host: &str, app_id: &str, peer: &str) -> anyhow::Result<()> {
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: lc.protobuf2.3\r\n\r\n"
    );
    io.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let body_at = loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection during the upgrade");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        bail!("upgrade refused: {}", String::from_utf8_lossy(&buf[..body_at]));
    }
    buf.drain(..body_at);
    io.write_all(&client_frame(&open_command(app_id, peer))).await?;
    loop {
        while let Some((op, payload, len)) = server_frame(&buf) {
            if op == 0x8 {
                bail!("closed by the server");
            }
            if op == 0x2 {
                let c = GenericCommand::decode(&buf[payload]).context("a protobuf frame")?;
                if c.i == Some(1) {
                    if c.op != Some(OpType::Opened as i32) {
                        bail!("login refused: {c:?}");
                    }
                    return Ok(());
                }
            }
            buf.drain(..len);
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection before the session opened");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
