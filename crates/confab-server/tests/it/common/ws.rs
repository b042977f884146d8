//! The one LeanCloud realtime test client: a real WebSocket to the server's gateway, commands
//! in the negotiated format (binary protobuf, or base64 protobuf in text frames), requests
//! numbered and answered by `i`, pushes that arrive while a reply is awaited kept for later.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use confab_face_leancloud::realtime::codec;
use confab_face_leancloud::realtime::proto::*;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The binary subprotocol (what the SDKs use in Node and native apps).
pub const BINARY: &str = "lc.protobuf2.3";
/// The base64 subprotocol (browsers that cannot send binary frames).
pub const BASE64: &str = "lc.proto2base64.3";
/// How long a reply or push may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for a frame that must not come.
pub const QUIET: Duration = Duration::from_millis(400);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A test client on one WebSocket: sends commands in the negotiated format, numbers requests,
/// and keeps pushes that arrive while it waits for a reply.
pub struct Client {
    pub ws: Ws,
    /// Replies come as base64 text frames (`lc.proto2base64.3`).
    pub base64: bool,
    /// The subprotocol the server echoed.
    pub protocol: Option<String>,
    next_i: i32,
    /// Pushes that came while a reply was awaited, oldest first.
    pub pushes: VecDeque<GenericCommand>,
}

/// `ws://127.0.0.1:PORT` from the harness's `http://…` (`wss://` from `https://`).
pub fn ws_url(base: &str) -> String {
    base.replacen("http", "ws", 1)
}

/// A request for `url` offering `protocol` (if any).
pub fn ws_request(url: &str, protocol: Option<&str>) -> Request {
    let mut req = url.into_client_request().expect("ws request");
    if let Some(p) = protocol {
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    req
}

impl Client {
    /// A client on a WebSocket already open, speaking `protocol`.
    pub fn wrap(ws: Ws, protocol: Option<String>, base64: bool) -> Client {
        Client { ws, base64, protocol, next_i: 1, pushes: VecDeque::new() }
    }

    /// Connect to `url` offering `protocol`, over TLS trusting `tls` when given; binary unless
    /// the server echoed the base64 subprotocol.
    pub async fn connect_with(url: &str, protocol: Option<&str>, tls: Option<Arc<rustls::ClientConfig>>) -> Client {
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let (ws, resp) = tokio_tungstenite::connect_async_tls_with_config(ws_request(url, protocol), None, false, connector)
            .await
            .expect("websocket handshake");
        let echoed = resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
        let base64 = echoed.as_deref() == Some(BASE64);
        Client::wrap(ws, echoed, base64)
    }

    /// Connect to `url` offering `protocol`; binary unless the server echoed the base64 one.
    pub async fn connect_url(url: &str, protocol: Option<&str>) -> Client {
        Client::connect_with(url, protocol, None).await
    }

    /// Connect to the server's root with the default (binary) subprotocol.
    pub async fn connect(base: &str) -> Client {
        Client::connect_url(&format!("{}/", ws_url(base)), Some(BINARY)).await
    }

    /// Connect to the server's root and open a session for `peer` (asserted `opened`).
    pub async fn login(base: &str, app_id: &str, peer: &str) -> Client {
        let mut c = Client::connect(base).await;
        c.open(app_id, Some(peer)).await;
        c
    }

    pub async fn send_raw(&mut self, m: WsMessage) {
        self.ws.send(m).await.expect("send frame");
    }

    /// Send a command as it is (its `i` untouched).
    pub async fn send(&mut self, cmd: &GenericCommand) {
        let bytes = cmd.encode_to_vec();
        let m = if self.base64 { WsMessage::Text(codec::to_text(&bytes).into()) } else { WsMessage::Binary(bytes.into()) };
        self.send_raw(m).await;
    }

    /// The next data frame, raw; None on timeout. Panics on close or error.
    pub async fn next_frame(&mut self, within: Duration) -> Option<WsMessage> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let m = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("connection ended while waiting for a frame"),
                Ok(Some(Err(e))) => panic!("websocket error while waiting for a frame: {e}"),
                Ok(Some(Ok(m))) => m,
            };
            match m {
                WsMessage::Binary(_) | WsMessage::Text(_) => return Some(m),
                WsMessage::Close(c) => panic!("connection closed while waiting for a frame: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next command off the wire (not from the push buffer); None on timeout.
    pub async fn next_cmd(&mut self, within: Duration) -> Option<GenericCommand> {
        let m = self.next_frame(within).await?;
        Some(decode_frame(&m))
    }

    /// Send a request with a fresh `i` and wait for the frame with that `i`, keeping pushes.
    pub async fn request(&mut self, mut cmd: GenericCommand) -> GenericCommand {
        let i = self.next_i;
        self.next_i += 1;
        cmd.i = Some(i);
        self.send(&cmd).await;
        self.reply_to(i).await
    }

    /// Wait for the reply with this `i`, keeping pushes (frames without `i`) for later.
    pub async fn reply_to(&mut self, i: i32) -> GenericCommand {
        loop {
            let c = self.next_cmd(WAIT).await.unwrap_or_else(|| panic!("no reply with i={i} within {WAIT:?}"));
            match c.i {
                Some(x) if x == i => return c,
                None | Some(0) => self.pushes.push_back(c),
                Some(x) => panic!("reply with unexpected i={x} while waiting for i={i}: {c:?}"),
            }
        }
    }

    /// The next push (a frame without `i`); None if none comes within `within`.
    pub async fn push_within(&mut self, within: Duration) -> Option<GenericCommand> {
        if let Some(p) = self.pushes.pop_front() {
            return Some(p);
        }
        let c = self.next_cmd(within).await?;
        assert!(c.i.unwrap_or(0) == 0, "expected a push, got a reply: {c:?}");
        Some(c)
    }

    /// The next push; fails the test if none comes.
    pub async fn push(&mut self) -> GenericCommand {
        self.push_within(WAIT).await.expect("a push")
    }

    /// The next push of this command type, skipping pushes of other types (unread notices and
    /// the like); fails the test if none comes.
    pub async fn push_of(&mut self, cmd: CommandType) -> GenericCommand {
        loop {
            let p = self.push_within(WAIT).await.unwrap_or_else(|| panic!("no {cmd:?} push within {WAIT:?}"));
            if p.cmd == Some(cmd as i32) {
                return p;
            }
        }
    }

    /// The next `direct` push, skipping other pushes (unread notices and the like).
    pub async fn direct_push(&mut self) -> GenericCommand {
        self.push_of(CommandType::Direct).await
    }

    /// Assert that no `direct` push arrives for a while.
    pub async fn no_direct(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET;
        while let Some(p) = self.push_within(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            assert_ne!(p.cmd, Some(CommandType::Direct as i32), "unexpected direct push: {p:?}");
        }
    }

    /// `session open` for `peer` (None: anonymous), answered with `opened` (asserted).
    pub async fn open(&mut self, app_id: &str, peer: Option<&str>) -> GenericCommand {
        let r = self.request(open_cmd(app_id, peer, SessionCommand { ua: Some("rust-test".into()), ..Default::default() })).await;
        assert_opened(&r);
        r
    }

    /// `echo` with a fresh `i`, answered with the same `i`.
    pub async fn echo(&mut self) {
        let r = self.request(command(CommandType::Echo, None)).await;
        assert_eq!(r.cmd, Some(CommandType::Echo as i32), "echo reply: {r:?}");
    }

    /// `direct` send as `peer` (None: the first session) to `cid`.
    pub async fn send_text(&mut self, peer: Option<&str>, cid: &str, text: &str) -> GenericCommand {
        let mut c = command(CommandType::Direct, None);
        c.peer_id = peer.map(str::to_string);
        c.direct_message = Some(DirectCommand { cid: Some(cid.into()), msg: Some(text.into()), ..Default::default() });
        self.request(c).await
    }

    /// Read until the server closes the connection: the close code, or None if the socket just
    /// dropped. Data frames before the close are counted.
    pub async fn closed(&mut self, within: Duration) -> (Option<u16>, usize) {
        let mut frames = 0;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("the server did not close the connection within {within:?}"),
                Ok(None) | Ok(Some(Err(_))) => return (None, frames),
                Ok(Some(Ok(WsMessage::Close(c)))) => return (c.map(|f| u16::from(f.code)), frames),
                Ok(Some(Ok(WsMessage::Binary(_) | WsMessage::Text(_)))) => frames += 1,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// A frame as a command: binary protobuf, or base64 protobuf in a text frame.
pub fn decode_frame(m: &WsMessage) -> GenericCommand {
    match m {
        WsMessage::Binary(b) => codec::decode(b).expect("a binary frame is a GenericCommand"),
        WsMessage::Text(t) => codec::decode_text(t.as_str()).expect("a text frame is base64 of a GenericCommand"),
        other => panic!("not a data frame: {other:?}"),
    }
}

pub fn command(cmd: CommandType, op: Option<OpType>) -> GenericCommand {
    GenericCommand { cmd: Some(cmd as i32), op: op.map(|o| o as i32), ..Default::default() }
}

pub fn open_cmd(app_id: &str, peer: Option<&str>, sm: SessionCommand) -> GenericCommand {
    let mut c = command(CommandType::Session, Some(OpType::Open));
    c.app_id = Some(app_id.to_string());
    c.peer_id = peer.map(str::to_string);
    c.session_message = Some(sm);
    c
}

#[track_caller]
pub fn assert_opened(r: &GenericCommand) {
    assert_eq!(r.cmd, Some(CommandType::Session as i32), "open reply: {r:?}");
    assert_eq!(r.op, Some(OpType::Opened as i32), "open reply: {r:?}");
}

/// Assert an `error` reply with this code.
#[track_caller]
pub fn assert_error(r: &GenericCommand, code: i32) {
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "expected error {code}, got {r:?}");
    let e = r.error_message.as_ref().expect("errorMessage");
    assert_eq!(e.code, code, "error code in {r:?}");
    assert!(!e.reason.is_empty(), "error reason in {r:?}");
}
