//! Per-device delivery: which queues have something for a device (the UNREAD answer), and the
//! pages a device pulls.
//!
//! A queue is a conversation as the device's user names it: the peer's user JID for a
//! one-to-one conversation, the group's JID for a group (spec §6). What a device got is kept in
//! the store (namespace `msync_devices`, one collection per `user\u{1f}resource`): per
//! conversation the last message the device got (`{seq, ts, id}`), and when the device was first
//! seen (`~since`). A session reads them at login and keeps them, writing them behind (at least
//! every second while they move, and when it ends): on a cluster a device that reconnects to
//! another node finds where it was. Items expire after [`DEVICE_TTL_DAYS`] without use (devices
//! with random resources come and go).
//!
//! A conversation the device has no position in yet starts from what no device of the user got
//! (the member's delivered cursor, shared by every face) or what arrived after the device was
//! first seen, whichever is earlier: a new device gets the offline messages; a known device
//! gets a new conversation's messages even when another device of the user got them first. At
//! most [`BACKLOG_MAX`] of the newest, as Easemob keeps a bounded number per conversation.
//!
//! A pull is answered from what the connection holds when it can (`held.rs`: the messages the
//! dispatcher handed it), else from the store. Each page a device takes moves the member's
//! delivered cursor too, as its position is written (delivery receipts for senders who asked,
//! LeanCloud's `ack_at`).

use std::collections::HashMap;

use bytes::Bytes;
use confab_engine::entries::ns;
use confab_engine::model::{App, Audience, ConvKind, Conversation, Cursor, Message, Priority};
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};
use confab_engine::{Engine, Entry, EntryFilter, EntryQuery, Position, PutRule};
use prost::Message as _;
use serde_json::json;

use super::body::{self, sender_resource};
use super::frames::{group_jid, is_group, user_jid};
use super::held::{Held, Pos, Take};
use super::proto::message_body::Type as BType;
use super::proto::meta::NameSpace;
use super::proto::{key_value, Jid, KeyValue, Meta};

/// Metas in one page.
pub const PAGE: usize = 20;
/// Most messages a conversation's backlog holds for a device that has no position in it.
pub const BACKLOG_MAX: i64 = 200;
/// Every this many flushes, a device's delivered cursors follow its positions (sooner where a
/// sender waits for a receipt).
const CURSOR_EVERY: u64 = 10;
/// A device's positions are forgotten after this long without use.
pub const DEVICE_TTL_DAYS: i64 = 30;
/// Most conversations the UNREAD answer looks at (the user's newest).
const CONVERSATIONS_MAX: i64 = 100;
const SINCE: &str = "~since";
/// When the device's last session wrote its positions (its end, or its last second).
const SEEN: &str = "~seen";

/// A logged-in device, and where it got to in each conversation: read from the store at login,
/// then kept here and written behind ([`Device::flush`], at least every second while it moves,
/// and when the connection ends). A position lost in a crash makes the device pull again what it
/// had (its SDK drops a message id it has).
pub struct Device {
    pub app: std::sync::Arc<App>,
    /// `org#app`.
    pub app_key: String,
    pub user: String,
    pub resource: String,
    positions: HashMap<i64, Pos>,
    /// When the device was first seen.
    since: i64,
    /// When its last session was last heard of (None: never), and when this one began.
    seen: Option<i64>,
    login_at: i64,
    /// Positions not written yet.
    dirty: HashMap<i64, Pos>,
    /// Positions the member's delivered cursor has not followed yet, and of those the
    /// conversations where a sender waits for a delivery receipt.
    uncursored: HashMap<i64, Pos>,
    receipts_due: std::collections::HashSet<i64>,
    /// Last pages answered since the client was last heard from: written once it is heard from
    /// again ([`Device::heard`]), forgotten if the connection drops first (and pulled again).
    unheard: HashMap<i64, (Pos, bool)>,
    /// Flushes so far (every [`CURSOR_EVERY`]th moves every cursor).
    flushes: u64,
    /// The conversations positions were moved in (a cursor moves with a position).
    convs: HashMap<i64, Conversation>,
}

/// A conversation as a queue of this device's: the conversation, how it is addressed in a
/// `MessageBody` (one-to-one or group) and the name it goes by (peer or group id).
pub struct Queue {
    pub conv: Conversation,
    pub kind: BType,
    pub name: String,
}

impl Queue {
    pub fn jid(&self, app_key: &str) -> Jid {
        match self.kind {
            BType::Chat => user_jid(app_key, &self.name, None),
            _ => group_jid(app_key, self.conv.id),
        }
    }
}

/// A page of a queue: its metas (encoded), and the key of the next page (None: the last).
pub struct Page {
    pub metas: Vec<Bytes>,
    pub next_key: Option<u64>,
}

impl Device {
    /// The device logs in: first seen now, unless it was seen before; its positions are read.
    pub async fn login(
        engine: &Engine,
        app: std::sync::Arc<App>,
        app_key: String,
        user: String,
        resource: String,
    ) -> confab_engine::Result<Device> {
        let mut d = Device {
            app,
            app_key,
            user,
            resource,
            positions: HashMap::new(),
            since: engine.now(),
            seen: None,
            login_at: engine.now(),
            dirty: HashMap::new(),
            uncursored: HashMap::new(),
            receipts_due: Default::default(),
            unheard: HashMap::new(),
            flushes: 0,
            convs: HashMap::new(),
        };
        let e = Entry::new(ns::MSYNC_DEVICES, d.key(), SINCE, json!({"ts": engine.now()})).expiring(d.expiry(engine));
        let rule = PutRule { overwrite: confab_engine::Overwrite::Never, max_items: None };
        engine.collections().put(&d.app, vec![e], rule).await?;
        let q = EntryQuery::all(EntryFilter::collection(ns::MSYNC_DEVICES, d.key()));
        for e in engine.collections().list(&d.app, &q).await? {
            let n = |k: &str| e.value.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
            if e.item == SINCE {
                d.since = n("ts");
            } else if e.item == SEEN {
                d.seen = Some(n("ts"));
            } else if let Ok(conv) = e.item.parse::<i64>() {
                d.positions.insert(conv, Pos { seq: n("seq"), ts: n("ts"), id: n("id") });
            }
        }
        Ok(d)
    }

    /// The time the device was away, if it was here before: from its last session's last word
    /// to this login.
    pub fn away(&self) -> Option<(i64, i64)> {
        self.seen.map(|s| (s, self.login_at))
    }

    fn key(&self) -> String {
        format!("{}\u{1f}{}", self.user, self.resource)
    }

    fn expiry(&self, engine: &Engine) -> Option<i64> {
        Some(engine.now() + DEVICE_TTL_DAYS * 86_400_000)
    }

    /// The device got to `p` in `conv` (written by the next [`Device::flush`]), from the store:
    /// its cursor follows at the next flush too.
    fn save(&mut self, conv: &Conversation, p: Pos) {
        self.convs.entry(conv.id).or_insert_with(|| conv.clone());
        self.moved(conv.id, p, true);
    }

    /// A last page of `conv` was answered up to `p` (`receipt`: a message on it asked for
    /// receipts). The next pull goes on from there; the store hears of it once the client is
    /// heard from after it ([`Device::heard`]): a page written into a connection that just
    /// dropped did not reach the device, which pulls those messages again when it is back.
    fn answered(&mut self, conv: i64, p: Pos, receipt: bool) {
        self.positions.insert(conv, p);
        let e = self.unheard.entry(conv).or_insert((p, false));
        *e = (p, e.1 || receipt);
    }

    /// The client was heard from: the last pages answered before reached it.
    pub fn heard(&mut self) {
        for (conv, (p, receipt)) in std::mem::take(&mut self.unheard) {
            self.dirty.insert(conv, p);
            self.uncursored.insert(conv, p);
            if receipt {
                self.receipts_due.insert(conv);
            }
        }
    }

    /// The device got to `p` in `conv`; `receipt`: a message it passed asked for receipts.
    fn moved(&mut self, conv: i64, p: Pos, receipt: bool) {
        if self.unheard.get(&conv).is_some_and(|(u, _)| u.seq <= p.seq) {
            self.unheard.remove(&conv);
        }
        self.positions.insert(conv, p);
        self.dirty.insert(conv, p);
        self.uncursored.insert(conv, p);
        if receipt {
            self.receipts_due.insert(conv);
        }
    }

    /// Whether positions wait to be written.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Write the positions that moved, and when the session was last heard of (always when it
    /// `ends`), and move the member's delivered cursors after them (every face's: delivery
    /// receipts, LeanCloud's `ack_at`): at once where a sender waits for a receipt, else every
    /// [`CURSOR_EVERY`]th flush and when the session ends. Kept to be written again if the store
    /// refuses.
    pub async fn flush(&mut self, engine: &Engine, ends: bool) -> confab_engine::Result<()> {
        if self.dirty.is_empty() && !ends {
            return Ok(());
        }
        self.flushes += 1;
        let all = ends || self.flushes.is_multiple_of(CURSOR_EVERY);
        let item = |item: String, value| Entry::new(ns::MSYNC_DEVICES, self.key(), item, value).expiring(self.expiry(engine));
        let mut entries: Vec<Entry> =
            self.dirty.iter().map(|(conv, p)| item(conv.to_string(), json!({"seq": p.seq, "ts": p.ts, "id": p.id}))).collect();
        entries.push(item(SEEN.to_string(), json!({"ts": engine.now()})));
        engine.collections().put(&self.app, entries, PutRule::default()).await?;
        self.dirty.clear();
        let due: Vec<(i64, Pos)> = if all {
            self.uncursored.drain().collect()
        } else {
            let due = &self.receipts_due;
            self.uncursored.extract_if(|id, _| due.contains(id)).collect()
        };
        self.receipts_due.retain(|id| self.uncursored.contains_key(id));
        for (id, p) in due {
            if p.id <= 0 {
                continue;
            }
            let conv = match self.convs.get(&id) {
                Some(c) => c.clone(),
                None => match engine.conversations().conversation(&self.app, id, None).await {
                    Ok(c) => self.convs.entry(id).or_insert(c).clone(),
                    Err(_) => continue,
                },
            };
            let moved = engine.messages().advance_cursor(&self.app, &conv, &self.user, Cursor::Delivered, Position::Message(p.id)).await;
            if let Err(e) = moved {
                tracing::debug!(error = %e, "a pulled page did not move the delivered cursor");
            }
        }
        Ok(())
    }

    /// A page of a queue from what the connection holds (`held.rs`), if memory can answer; as
    /// [`Device::pull`] answers from the store.
    pub fn pull_held(&mut self, held: &mut Held, key: &str, page_key: Option<u64>) -> Option<Page> {
        let conv = held.conv_of(key)?;
        let mut at = *self.positions.get(&conv)?;
        if let Some(k) = page_key.filter(|k| *k > 0) {
            let k = i64::try_from(k).ok()?;
            match held.find(key, k) {
                Some(p) if p.seq > at.seq => {
                    let receipt = held.receipts_through(key, at, p);
                    at = p;
                    self.moved(conv, p, receipt);
                }
                Some(_) => {}
                None if k == at.id => {}
                None => return None,
            }
        }
        held.passed(key, at);
        let Take::Kept(kept, more) = held.after(key, at, PAGE) else { return None };
        let metas = kept
            .iter()
            .filter(|k| !(k.recalled || k.from == self.user && k.resource.as_deref() == Some(self.resource.as_str())))
            .map(|k| k.meta.clone())
            .collect();
        Some(match kept.last().map(|k| k.pos) {
            Some(p) if more => Page { metas, next_key: Some(p.id as u64) },
            Some(p) => {
                self.answered(conv, p, kept.iter().any(|k| k.receipt));
                held.caught_up(key, conv, p);
                Page { metas, next_key: None }
            }
            None => Page { metas, next_key: None },
        })
    }

    /// Whether the device gets this message: not one it sent itself, addressed to its user,
    /// not recalled.
    fn wants(&self, m: &Message) -> bool {
        let own = m.from == self.user && sender_resource(m) == Some(self.resource.as_str());
        let addressed = match &m.audience {
            Audience::All => true,
            Audience::Only(users) => users.contains(&self.user),
        };
        !own && addressed && m.recalled_at.is_none()
    }

    /// The queue a conversation is for this device's user (None: not one msync speaks of).
    pub async fn queue_of(&self, engine: &Engine, conv: Conversation) -> confab_engine::Result<Option<Queue>> {
        queue_of(engine, &self.app, &self.user, conv).await
    }

    /// The queue a pull names: a peer's JID (their one-to-one conversation), or a group's.
    pub async fn queue_named(&self, engine: &Engine, jid: &Jid) -> confab_engine::Result<Option<Queue>> {
        let name = jid.name.as_deref().unwrap_or("").trim().to_lowercase();
        let conv = if is_group(jid) {
            match name.parse::<i64>() {
                Ok(id) => engine.conversations().conversation(&self.app, id, None).await.ok(),
                Err(_) => None,
            }
        } else if name.is_empty() {
            None
        } else {
            engine.conversations().find_direct_conversation(&self.app, &self.user, &name).await?
        };
        match conv {
            Some(c) if engine.conversations().is_member(&self.app, &c, &self.user).await.unwrap_or(false) => self.queue_of(engine, c).await,
            _ => Ok(None),
        }
    }

    /// The backlog of a conversation the device has no position in: the messages it wants
    /// that no device of the user got or that came after the device was first seen, oldest
    /// first, at most `BACKLOG_MAX`; and the newest message looked at.
    async fn backlog(&self, engine: &Engine, conv: &Conversation, since: i64) -> confab_engine::Result<(Vec<Message>, Option<Pos>)> {
        if conv.last_seq == 0 {
            return Ok((vec![], None));
        }
        let delivered = engine.conversations().member(&self.app, conv, &self.user).await.map(|m| m.delivered_seq).unwrap_or(0);
        let q = HistoryQuery {
            scope: HistoryScope::Conv(conv.id),
            older_than: None,
            newer_than: None,
            ascending: false,
            limit: BACKLOG_MAX.min(self.app.limits.history_max_limit),
            mtype: None,
        };
        let newest = engine.messages().history(&self.app, &q).await?;
        let top = newest.first().map(|m| Pos { seq: m.seq, ts: m.timestamp, id: m.id });
        let mut wanted: Vec<Message> =
            newest.into_iter().filter(|m| (m.seq > delivered || m.timestamp >= since) && self.wants(m)).collect();
        wanted.reverse();
        Ok((wanted, top))
    }

    /// The UNREAD answer: every queue with something for this device, with how much (an
    /// estimate for conversations the device has a position in: their newest sequence number
    /// past it). A conversation with nothing for the device gets a position now, so that the
    /// next heartbeat does not look at it again.
    pub async fn unread(&mut self, engine: &Engine) -> confab_engine::Result<Vec<(Queue, u32)>> {
        let mut out = Vec::new();
        for conv in engine.conversations().user_conversations(&self.app, &self.user, CONVERSATIONS_MAX).await? {
            let n = match self.positions.get(&conv.id) {
                Some(p) => (conv.last_seq - p.seq).max(0),
                None => {
                    let (wanted, top) = self.backlog(engine, &conv, self.since).await?;
                    if wanted.is_empty() {
                        if let Some(top) = top {
                            self.save(&conv, top);
                        }
                    }
                    wanted.len() as i64
                }
            };
            if n > 0 {
                if let Some(q) = self.queue_of(engine, conv).await? {
                    out.push((q, n.min(i64::from(u32::MAX)) as u32));
                }
            }
        }
        Ok(out)
    }

    /// A page of a queue. A pull with `key` (the last message of the page before) says the
    /// device has everything up to it. The last page counts as delivered once it is answered.
    pub async fn pull(&mut self, engine: &Engine, q: &Queue, key: Option<u64>) -> confab_engine::Result<Page> {
        let conv = &q.conv;
        let mut at = self.positions.get(&conv.id).copied();
        if let Some(k) = key.filter(|k| *k > 0).and_then(|k| i64::try_from(k).ok()) {
            if let Ok(m) = engine.messages().message(&self.app, k).await {
                if m.conv == conv.id && at.is_none_or(|p| m.seq > p.seq) {
                    let p = Pos { seq: m.seq, ts: m.timestamp, id: m.id };
                    self.save(conv, p);
                    at = Some(p);
                }
            }
        }
        // the messages after the position, oldest first; or the backlog
        let (scanned, full) = match at {
            Some(p) => {
                let limit = (PAGE as i64 * 2).min(self.app.limits.history_max_limit);
                let hq = HistoryQuery {
                    scope: HistoryScope::Conv(conv.id),
                    older_than: None,
                    newer_than: Some(Bound { timestamp: p.ts, id: None, inclusive: true }),
                    ascending: true,
                    limit,
                    mtype: None,
                };
                let got = engine.messages().history(&self.app, &hq).await?;
                let full = got.len() as i64 >= limit;
                (got.into_iter().filter(|m| m.seq > p.seq).collect::<Vec<_>>(), full)
            }
            None => {
                let (wanted, top) = self.backlog(engine, conv, self.since).await?;
                if wanted.is_empty() {
                    if let Some(top) = top {
                        self.save(conv, top);
                    }
                }
                (wanted, false)
            }
        };
        let mut metas = Vec::new();
        let mut last: Option<Pos> = None;
        let mut rest = false;
        for m in &scanned {
            if metas.len() == PAGE {
                rest = true;
                break;
            }
            if self.wants(m) {
                metas.push(Bytes::from(self.meta(q, m).encode_to_vec()));
            }
            last = Some(Pos { seq: m.seq, ts: m.timestamp, id: m.id });
        }
        let more = rest || full;
        match last {
            Some(p) if more => Ok(Page { metas, next_key: Some(p.id as u64) }),
            Some(p) => {
                self.convs.entry(conv.id).or_insert_with(|| conv.clone());
                self.answered(conv.id, p, true);
                Ok(Page { metas, next_key: None })
            }
            None => Ok(Page { metas, next_key: None }),
        }
    }

    /// Where the device is in a conversation, if anywhere.
    pub fn position(&self, conv: i64) -> Option<Pos> {
        self.positions.get(&conv).copied()
    }

    /// A stored message as the meta a device pulls.
    fn meta(&self, q: &Queue, m: &Message) -> Meta {
        meta_of(&self.app_key, q.kind, &q.name, &self.user, m)
    }
}

/// The queue a conversation is for `user` (None: not one msync speaks of): the peer of a
/// one-to-one conversation, else the group or chat room.
pub async fn queue_of(engine: &Engine, app: &App, user: &str, conv: Conversation) -> confab_engine::Result<Option<Queue>> {
    match conv.kind {
        ConvKind::Normal if conv.unique => {
            let members = engine.conversations().members(app, &conv).await?;
            let peer = match members.as_slice() {
                [a, b] if *a == user => b.clone(),
                [a, b] if *b == user => a.clone(),
                [a] if *a == user => a.clone(),
                _ => return Ok(Some(Queue { name: conv.id.to_string(), kind: BType::Groupchat, conv })),
            };
            Ok(Some(Queue { conv, kind: BType::Chat, name: peer }))
        }
        ConvKind::Normal | ConvKind::Temporary => Ok(Some(Queue { name: conv.id.to_string(), kind: BType::Groupchat, conv })),
        ConvKind::Chatroom => Ok(Some(Queue { name: conv.id.to_string(), kind: BType::Chatroom, conv })),
        _ => Ok(None),
    }
}

/// A stored message as a CHAT meta. `kind` and `name` are how `viewer` addresses the
/// conversation (for a one-to-one conversation, the peer); the meta goes to the peer, or to the
/// sender's peer when the viewer sent it.
pub fn meta_of(app_key: &str, kind: BType, name: &str, viewer: &str, m: &Message) -> Meta {
    let (to_name, to) = match kind {
        BType::Chat => {
            // from the peer to the viewer, or from the viewer (another device) to the peer
            let to = if m.from == viewer { name } else { viewer };
            (to.to_string(), user_jid(app_key, to, None))
        }
        _ => (name.to_string(), group_jid(app_key, m.conv)),
    };
    // a chat room message's priority, as the SDK reads it (`chatroom_msg_tag`: 0 high, 2 low)
    let ext = match (kind, m.priority) {
        (BType::Chatroom, p) => {
            let tag = match p {
                Priority::High => 0,
                Priority::Normal => 1,
                Priority::Low => 2,
            };
            let kv = KeyValue {
                key: Some("chatroom_msg_tag".into()),
                r#type: Some(key_value::ValueType::Int as i32),
                varint_value: Some(tag),
                ..Default::default()
            };
            vec![kv]
        }
        _ => vec![],
    };
    Meta {
        id: Some(m.id as u64),
        from: Some(user_jid(app_key, &m.from, sender_resource(m))),
        to: Some(to),
        timestamp: Some(m.timestamp.max(0) as u64),
        ns: Some(NameSpace::Chat as i32),
        payload: Some(body::payload(m, kind, &to_name)),
        ext,
        ..Default::default()
    }
}
