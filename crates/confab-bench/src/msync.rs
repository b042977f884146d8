//! `msync-fanout`: `ws-fanout`'s group fan-out through the Easemob msync gateway (`GET
//! /websocket`, the official web SDK's protocol, `specs/easemob-msync.md`) with raw msync clients.
//!
//! Users and groups are made through the Easemob REST face with the app token (a user token per
//! member from `POST /token` `grant_type=inherit`, `autoCreateUser`; a group per run from `POST
//! /chatgroups`, owned by its sender). Every member is a WebSocket logged in with `PROVISION`
//! (the user token after `$t$`, one device `bench` per user). The sender sends `SYNC` CHAT metas
//! to the group, within its window of metas awaiting their answer (`CommSyncDL` with the meta's
//! id and the server's); a receiver answers each `NOTICE` with a `SYNC` pull of the queue (one
//! pull at a time: a NOTICE during a pull makes one more pull after it, a page that is not the
//! last is followed by the next), and the latency is from the send to the page that carries the
//! meta. The sending and the counting are `ws-fanout`'s ([`crate::ws::drive`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use confab_face_easemob::msync::proto::m_sync::Command;
use confab_face_easemob::msync::proto::message_body::content::Type as CType;
use confab_face_easemob::msync::proto::message_body::{Content, Type as BType};
use confab_face_easemob::msync::proto::meta::NameSpace;
use confab_face_easemob::msync::proto::*;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::fanout::{FanoutRun, Topology};
use crate::ws::{Sender, Socket, Wire};

/// The app limits an msync run needs out of the way (the runs measure the server, not the
/// limiter): the REST calls that make its users, tokens and groups, and the group message quota.
pub(crate) const LIMITS: [(&str, &str); 3] = [
    ("rates.em.default.per_second", "100000000"),
    ("rates.em.token.per_second", "100000000"),
    ("rates.em.msg.chatgroups.per_second", "100000000"),
];

/// One app's Easemob face on a confab (or the nodes of a cluster): the app token, and the user
/// tokens made so far (a user is made once, by its first token).
pub(crate) struct Em {
    /// Each node's base URL, `http://host:port`.
    bases: Vec<String>,
    /// `/{org}/{app}`.
    prefix: String,
    /// `org#app`, the SDK's `appKey`.
    app_key: String,
    auth: String,
    http: reqwest::Client,
    tokens: parking_lot::Mutex<HashMap<String, String>>,
}

impl Em {
    /// The app whose Easemob credentials `keys` holds (`app create --json`'s `easemob`) on the
    /// nodes at `bases`; asks for the app token.
    pub async fn new(bases: &[String], keys: &Value) -> anyhow::Result<Em> {
        let key = |k: &str| keys[k].as_str().map(str::to_string).with_context(|| format!("easemob.{k}"));
        let (org, app) = (key("org_name")?, key("app_name")?);
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        let bases: Vec<String> = bases.iter().map(|b| b.trim_end_matches('/').to_string()).collect();
        anyhow::ensure!(!bases.is_empty(), "no server URL");
        let prefix = format!("/{org}/{app}");
        let grant = json!({"grant_type": "client_credentials", "client_id": key("client_id")?, "client_secret": key("client_secret")?});
        let r: Value = http.post(format!("{}{prefix}/token", bases[0])).json(&grant).send().await?.error_for_status()?.json().await?;
        let auth = format!("Bearer {}", r["access_token"].as_str().context("the app token")?);
        Ok(Em { bases, prefix, app_key: format!("{org}#{app}"), auth, http, tokens: Default::default() })
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{}{path}", self.bases[0], self.prefix))
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// A user token for `user`, who is registered (without a password) if new.
    async fn token(&self, user: &str) -> anyhow::Result<String> {
        if let Some(t) = self.tokens.lock().get(user) {
            return Ok(t.clone());
        }
        let r = self.post("/token", json!({"grant_type": "inherit", "username": user, "autoCreateUser": true})).await?;
        let t = r["access_token"].as_str().context("access_token")?.to_string();
        self.tokens.lock().insert(user.to_string(), t.clone());
        Ok(t)
    }

    /// A group of `owner` and `members`; its id.
    async fn group(&self, owner: &str, members: &[String]) -> anyhow::Result<String> {
        let body = json!({"groupname": "bench group", "desc": "bench", "public": true, "owner": owner, "members": members});
        let r = self.post("/chatgroups", body).await?;
        Ok(r["data"]["groupid"].as_str().context("groupid")?.to_string())
    }

    /// `user`'s device `bench` logged in on node `node` (mod the number of nodes).
    async fn connect(&self, node: usize, user: &str) -> anyhow::Result<Socket> {
        let token = self.token(user).await?;
        let url = self.bases[node % self.bases.len()].replacen("http", "ws", 1) + "/websocket";
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        let p = Provision {
            os_type: Some(16),
            version: Some("4.21.1".into()),
            device_name: Some("webim".into()),
            resource: Some("bench".into()),
            compress_type: vec![0],
            encrypt_type: vec![0],
            session_id: Some("1:".into()),
            ..Default::default()
        };
        let login = MSync {
            guid: Some(Jid { client_resource: Some("bench".into()), ..jid(&self.app_key, user, false) }),
            auth: Some(format!("$t${token}")),
            ..frame(Command::Provision, p.encode_to_vec())
        };
        ws.send(Ws::Binary(login.encode_to_vec().into())).await?;
        loop {
            let Some(Ws::Binary(b)) = ws.next().await.transpose()? else { continue };
            let m = MSync::decode(&b[..])?;
            if m.command == Some(Command::Provision as i32) {
                let p = Provision::decode(m.payload.as_deref().unwrap_or_default())?;
                let ok = p.status.as_ref().is_some_and(|s| s.error_code.unwrap_or(0) == 0);
                anyhow::ensure!(ok, "login refused: {:?}", p.status);
                return Ok(ws);
            }
        }
    }
}

fn jid(app_key: &str, name: &str, group: bool) -> Jid {
    let domain = if group { "conference.easemob.com" } else { "easemob.com" };
    Jid { app_key: Some(app_key.into()), name: Some(name.into()), domain: Some(domain.into()), client_resource: None }
}

fn frame(c: Command, payload: Vec<u8>) -> MSync {
    MSync { command: Some(c as i32), payload: Some(payload), encrypt_type: vec![0], ..Default::default() }
}

fn sync(ul: CommSyncUl) -> Vec<u8> {
    frame(Command::Sync, ul.encode_to_vec()).encode_to_vec()
}

/// The sync answer a frame carries, if it is one.
fn sync_dl(frame: &[u8]) -> Option<CommSyncDl> {
    let m = MSync::decode(frame).ok()?;
    (m.command == Some(Command::Sync as i32)).then(|| CommSyncDl::decode(m.payload.as_deref().unwrap_or_default()).ok())?
}

/// The msync protocol's side of a fan-out: sends are CHAT metas to the group, answered with
/// their meta id; receivers pull on NOTICE.
struct MsyncWire {
    app_key: String,
}

/// A receiver's pulls: the queue it was told of, whether a pull is under way, and whether a
/// NOTICE came during it.
#[derive(Default)]
struct Pulls {
    queue: Option<Jid>,
    pulling: bool,
    again: bool,
}

impl Wire for MsyncWire {
    type Receiver = Pulls;

    fn message(&self, to: &str, from: &str, i: u64, stamp: u64) -> Vec<u8> {
        let body = MessageBody {
            r#type: Some(BType::Groupchat as i32),
            from: Some(Jid { name: Some(from.into()), ..Default::default() }),
            to: Some(Jid { name: Some(to.into()), ..Default::default() }),
            contents: vec![Content { r#type: Some(CType::Text as i32), text: Some(stamp.to_string()), ..Default::default() }],
            ..Default::default()
        };
        let meta = Meta {
            id: Some(i),
            to: Some(jid(&self.app_key, to, true)),
            ns: Some(NameSpace::Chat as i32),
            payload: Some(body.encode_to_vec()),
            ..Default::default()
        };
        sync(CommSyncUl { meta: Some(meta), ..Default::default() })
    }

    fn ack(&self, frame: &[u8]) -> Option<bool> {
        let dl = sync_dl(frame)?;
        dl.meta_id?;
        Some(dl.status.is_none_or(|s| s.error_code.unwrap_or(0) == 0))
    }

    fn received(&self, st: &mut Pulls, frame: &[u8], stamps: &mut Vec<u64>, replies: &mut Vec<Vec<u8>>) {
        let Ok(m) = MSync::decode(frame) else { return };
        let pull = |queue: &Jid, key| sync(CommSyncUl { queue: Some(queue.clone()), key, ..Default::default() });
        match Command::try_from(m.command.unwrap_or(0)) {
            Ok(Command::Notice) => {
                let Ok(n) = CommNotice::decode(m.payload.as_deref().unwrap_or_default()) else { return };
                let Some(q) = n.queue else { return };
                if st.pulling {
                    st.again = true;
                } else {
                    st.pulling = true;
                    replies.push(pull(&q, None));
                }
                st.queue = Some(q);
            }
            Ok(Command::Sync) => {
                let Ok(dl) = CommSyncDl::decode(m.payload.as_deref().unwrap_or_default()) else { return };
                for meta in &dl.metas {
                    let Ok(b) = MessageBody::decode(meta.payload.as_deref().unwrap_or_default()) else { continue };
                    if let Some(sent) = b.contents.first().and_then(|c| c.text.as_deref()).and_then(|t| t.parse().ok()) {
                        stamps.push(sent);
                    }
                }
                let Some(q) = st.queue.clone() else { return };
                match dl.next_key.filter(|_| dl.is_last == Some(false)) {
                    Some(key) => replies.push(pull(&q, Some(key))),
                    None if st.again => {
                        st.again = false;
                        replies.push(pull(&q, None));
                    }
                    None => st.pulling = false,
                }
            }
            _ => {}
        }
    }
}

/// `msync-fanout` against a confab in this process (its `bench` app, its Easemob limits raised).
pub async fn fanout(t: crate::Target, group: crate::fanout::GroupArgs) -> anyhow::Result<()> {
    anyhow::ensure!(t.url.is_empty(), "msync-fanout starts its own server: drop --url (fanout-rig runs it against confab serve)");
    let lc = crate::Lc::connect(&t).await?;
    let (server, _) = lc._server.as_ref().context("in-process server")?;
    for (k, v) in LIMITS {
        server.engine.apps().set_app_limit("bench", k, v).await.map_err(anyhow::Error::msg)?;
    }
    let app = server
        .engine
        .apps()
        .find_app(&confab_engine::model::AppLookup::Name("bench".into()))
        .await
        .map_err(anyhow::Error::msg)?
        .context("the bench app")?;
    let e = &app.keys.easemob;
    let keys = json!({"org_name": e.org_name, "app_name": e.app_name, "client_id": e.client_id, "client_secret": e.client_secret});
    let em = Em::new(&lc.bases, &keys).await?;
    let topo = group.topology(&t);
    fanout_on(&em, &topo).await?.print("msync-fanout", &topo);
    Ok(())
}

/// One `msync-fanout` run: a new group per group of the topology (users `e{g}m{m}`, member 0
/// the owner and sender); member `k` of the run connects to node `k` mod n, as in `ws-fanout`.
pub(crate) async fn fanout_on(em: &Em, topo: &Topology) -> anyhow::Result<FanoutRun> {
    let start = Instant::now();
    let (mut senders, mut receivers) = (Vec::new(), Vec::new());
    for g in 0..topo.groups {
        let ids: Vec<String> = (0..topo.members).map(|m| format!("e{g}m{m}")).collect();
        for id in &ids {
            em.token(id).await?;
        }
        let gid = em.group(&ids[0], &ids[1..]).await?;
        for (m, id) in ids.iter().enumerate() {
            let ws = em.connect(g * topo.members + m, id).await.with_context(|| format!("connect {id}"))?;
            if m == 0 {
                senders.push(Sender { to: gid.clone(), from: id.clone(), ws });
            } else {
                receivers.push(ws);
            }
        }
    }
    crate::ws::drive(Arc::new(MsyncWire { app_key: em.app_key.clone() }), senders, receivers, topo, start).await
}
