//! `ws-fanout`: group chat through the realtime gateway with raw-protocol clients.
//!
//! `--conversations` groups of `--members` clients each, one WebSocket per client. In every group
//! member 0 sends as fast as its `--window` of unacknowledged messages allows; every other member
//! receives each message. The message text carries its send time, so a receiver measures the
//! delivery latency (send → engine → store → bus → push → client).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_face_leancloud::realtime::proto::*;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::fanout::{FanoutRun, Topology};
use crate::{Lc, Target};

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The bench clients' WebSocket read buffer.
const READ_BUFFER: usize = 8 * 1024;

/// A WebSocket to the gateway of node `node` (mod the number of nodes), binary protocol.
pub(crate) async fn socket(lc: &Lc, node: usize) -> anyhow::Result<Socket> {
    let url = lc.base(node).replacen("http", "ws", 1) + "/";
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", "lc.protobuf2.3".parse()?);
    // a small read buffer: tungstenite zeroes the free part of its read buffer before every read
    // (128 KiB by default), which was 13% of a fan-out run's samples for frames of ~100 bytes
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false).await?;
    Ok(ws)
}

/// `session open` for `peer` (with `i` 1), waiting for the `opened` reply; pushes before it are
/// dropped.
pub(crate) async fn open(ws: &mut Socket, app_id: &str, peer: &str, session: SessionCommand) -> anyhow::Result<GenericCommand> {
    let open = GenericCommand {
        cmd: Some(CommandType::Session as i32),
        op: Some(OpType::Open as i32),
        app_id: Some(app_id.to_string()),
        peer_id: Some(peer.to_string()),
        i: Some(1),
        session_message: Some(session),
        ..Default::default()
    };
    ws.send(Ws::Binary(open.encode_to_vec().into())).await?;
    loop {
        if let Some(Ws::Binary(b)) = ws.next().await.transpose()? {
            let c = GenericCommand::decode(&b[..])?;
            if c.i == Some(1) {
                anyhow::ensure!(c.op == Some(OpType::Opened as i32), "login failed: {c:?}");
                return Ok(c);
            }
        }
    }
}

async fn connect(lc: &Lc, node: usize, peer: &str) -> anyhow::Result<Socket> {
    let mut ws = socket(lc, node).await?;
    open(&mut ws, &lc.app_id, peer, SessionCommand::default()).await?;
    Ok(ws)
}

pub async fn fanout(t: Target, group: crate::fanout::GroupArgs, hook: Option<String>) -> anyhow::Result<()> {
    let lc = Arc::new(Lc::connect(&t).await?);
    let topo = group.topology(&t);
    fanout_on(&lc, &topo, hook.as_deref()).await?.print("ws-fanout", &topo);
    Ok(())
}

/// One `ws-fanout` run against `lc`'s server; with `hook`, through a `_messageReceived` hook (its
/// counters are printed after the run). With several nodes, member `k` of the run (group `g`'s
/// member `m` is `g * members + m`) connects to node `k` mod n, so that a group's members, and
/// the senders, are spread over the nodes and every message crosses between them.
pub(crate) async fn fanout_on(lc: &Arc<Lc>, topo: &Topology, hook: Option<&str>) -> anyhow::Result<FanoutRun> {
    let Topology { groups, members, .. } = *topo;
    let hook = match hook {
        Some(kind) => Some(crate::hook::Hook::start(lc, kind).await?),
        None => None,
    };
    let start = Instant::now();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for g in 0..groups {
        let ids: Vec<String> = (0..members).map(|m| format!("g{g}m{m}")).collect();
        let cid = lc.group(&ids).await?;
        for (m, id) in ids.iter().enumerate() {
            let ws = connect(lc, g * members + m, id).await.with_context(|| format!("connect {id}"))?;
            if m == 0 {
                senders.push(Sender { to: cid.clone(), from: id.clone(), ws });
            } else {
                receivers.push(ws);
            }
        }
    }
    let run = drive(Arc::new(LcWire), senders, receivers, topo, start).await?;
    if let Some(h) = hook {
        h.report(lc).await?;
    }
    Ok(run)
}

/// A WebSocket protocol's frames in a group fan-out over WebSockets (`ws-fanout`'s LeanCloud
/// realtime protocol, `msync-fanout`'s Easemob msync): what [`drive`] sends and reads.
pub(crate) trait Wire: Send + Sync + 'static {
    /// What a receiving connection keeps between frames.
    type Receiver: Default + Send;

    /// The frame by which `from` sends its `i`th message (from 2 up) to group `to`, its text
    /// `stamp` (µs since the run's start).
    fn message(&self, to: &str, from: &str, i: u64, stamp: u64) -> Vec<u8>;

    /// A frame a sender read: None, not an answer to a send; Some(true), a message accepted;
    /// Some(false), one refused (its place in the window is free again all the same).
    fn ack(&self, frame: &[u8]) -> Option<bool>;

    /// A frame a receiver read: the stamps of the messages it carries into `stamps`, the frames
    /// to answer it with (a pull) into `replies`.
    fn received(&self, state: &mut Self::Receiver, frame: &[u8], stamps: &mut Vec<u64>, replies: &mut Vec<Vec<u8>>);
}

/// A group's sending connection: `from`, logged in, sending to group `to`.
pub(crate) struct Sender {
    pub to: String,
    pub from: String,
    pub ws: Socket,
}

/// The sending and receiving of a WebSocket fan-out, its connections made and logged in: every
/// receiver counts the messages it reads, with their latency; every sender sends as `topo`'s
/// window (and rate) allow, for `topo.seconds`, then waits half a second for the last answers.
/// `start` is the instant the stamps count from. Refused sends are the run's `errors`.
pub(crate) async fn drive<W: Wire>(
    wire: Arc<W>,
    senders: Vec<Sender>,
    receivers: Vec<Socket>,
    topo: &Topology,
    start: Instant,
) -> anyhow::Result<FanoutRun> {
    let (window, seconds) = (topo.window, topo.seconds);
    let delivered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for mut ws in receivers {
        let (delivered, wire) = (delivered.clone(), wire.clone());
        tasks.spawn(async move {
            let (mut lat, mut state, mut stamps, mut replies) = (Vec::new(), W::Receiver::default(), Vec::new(), Vec::new());
            let stop = deadline + Duration::from_secs(2);
            while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(stop.into(), ws.next()).await {
                let Ws::Binary(b) = frame else { continue };
                wire.received(&mut state, &b, &mut stamps, &mut replies);
                let now = start.elapsed().as_micros() as u64;
                for sent in stamps.drain(..) {
                    lat.push(now.saturating_sub(sent) as u32);
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
                for r in replies.drain(..) {
                    if ws.send(Ws::Binary(r.into())).await.is_err() {
                        break;
                    }
                }
            }
            (lat, 0u64)
        });
    }
    let began = Instant::now();
    for Sender { to, from, ws } in senders {
        let mut pacer = topo.pacer();
        let (wire, refused) = (wire.clone(), refused.clone());
        tasks.spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let slots = Arc::new(Semaphore::new(window));
            let acks = slots.clone();
            let reader_wire = wire.clone();
            let reader = tokio::spawn(async move {
                let mut n = 0u64;
                while let Some(Ok(Ws::Binary(b))) = stream.next().await {
                    match reader_wire.ack(&b) {
                        Some(true) => n += 1,
                        Some(false) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        None => continue,
                    }
                    acks.add_permits(1);
                }
                n
            });
            let mut i = 1;
            while Instant::now() < deadline {
                if let Some(p) = &mut pacer {
                    p.tick().await;
                }
                let Ok(permit) = slots.acquire().await else { break };
                permit.forget();
                i += 1;
                let frame = wire.message(&to, &from, i, start.elapsed().as_micros() as u64);
                if sink.send(Ws::Binary(frame.into())).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = sink.close().await;
            let acked = reader.await.unwrap_or(0);
            (Vec::new(), acked)
        });
    }
    let run = crate::fanout::gather(tasks, &delivered, began, seconds).await?;
    Ok(FanoutRun { errors: refused.load(Ordering::Relaxed), ..run })
}

/// LeanCloud's realtime protocol (`lc.protobuf2.3`): a `direct` command to the conversation,
/// acknowledged by an `ack`; receivers get `direct` pushes.
struct LcWire;

impl Wire for LcWire {
    type Receiver = ();

    fn message(&self, to: &str, _from: &str, i: u64, stamp: u64) -> Vec<u8> {
        GenericCommand {
            cmd: Some(CommandType::Direct as i32),
            i: Some(i as i32),
            direct_message: Some(DirectCommand { cid: Some(to.to_string()), msg: Some(stamp.to_string()), ..Default::default() }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn ack(&self, frame: &[u8]) -> Option<bool> {
        GenericCommand::decode(frame).is_ok_and(|c| c.cmd == Some(CommandType::Ack as i32)).then_some(true)
    }

    fn received(&self, _: &mut (), frame: &[u8], stamps: &mut Vec<u64>, _: &mut Vec<Vec<u8>>) {
        let Ok(c) = GenericCommand::decode(frame) else { return };
        if let Some(sent) = c.direct_message.and_then(|d| d.msg).and_then(|m| m.parse::<u64>().ok()) {
            stamps.push(sent);
        }
    }
}
