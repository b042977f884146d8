//! Presence for a cluster: who is online on which node, and who is in which chat room, in the
//! `presence` bucket where every node reads and writes it (each change a compare-and-set,
//! `kv.rs`). The rules are [`confab_engine::presence`]'s: a user offline stays in their chat rooms
//! for [`ROOM_GRACE_MS`]. What a single process knows by itself — that a session ended — a
//! cluster learns also from a node's death (`nodes.rs`): the sessions of a dead node are gone,
//! and its users' chat-room presence counts as having ended when the node was last known alive
//! (so they stay in their rooms for the grace and are back when they reconnect elsewhere).
//!
//! Keys: `s.<app>.<user>` a user's sessions; `r.<app>.<conv>` a chat room's members; `u.<app>.<user>`
//! the chat rooms a user is in (so that going online or offline reaches each).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_nats::jetstream::kv::Operation;
use async_trait::async_trait;
use confab_engine::presence::{stays, Presence, SessionRef, ROOM_GRACE_MS};
use confab_engine::Result;
use futures_util::StreamExt;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::kv::{decode, nats_err, token, Shared};
use crate::nodes::Nodes;

/// A session with the incarnation of the node that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Live {
    session: SessionRef,
    incarnation: u64,
}

/// A user's sessions (the key is deleted when there are none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct UserSessions {
    sessions: Vec<Live>,
}

/// A chat-room member: online (on a node, in an incarnation, since `at`), or offline until a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stay {
    Online { node: u16, incarnation: u64, at: i64 },
    Until(i64),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Room {
    members: BTreeMap<String, Stay>,
}

/// The chat rooms a user is in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct UserRooms {
    rooms: BTreeSet<i64>,
}

/// Presence in the cluster's `presence` bucket, with this node's mirror of who is online where.
pub struct NatsPresence {
    kv: Shared,
    nodes: Arc<Nodes>,
    mirror: Arc<Mirror>,
}

fn sessions_key(app: i64, user: &str) -> String {
    format!("s.{app}.{}", token(user))
}

fn room_key(app: i64, conv: i64) -> String {
    format!("r.{app}.{conv}")
}

fn rooms_key(app: i64, user: &str) -> String {
    format!("u.{app}.{}", token(user))
}

impl NatsPresence {
    pub(crate) async fn start(kv: Shared, nodes: Arc<Nodes>) -> Result<(Arc<NatsPresence>, JoinHandle<()>)> {
        let (mirror, task) = Mirror::start(&kv).await?;
        Ok((Arc::new(NatsPresence { kv, nodes, mirror }), task))
    }

    /// The nodes (other than this one) holding sessions of these users, as this node's mirror
    /// knows them (the bus routes events by it).
    pub(crate) fn nodes_of<'a>(&self, app: i64, users: impl IntoIterator<Item = &'a String>) -> BTreeSet<u16> {
        let me = self.nodes.me();
        let map = self.mirror.online.read();
        let mut out = BTreeSet::new();
        for u in users {
            if let Some(on) = map.get(&sessions_key(app, u)) {
                out.extend(on.iter().filter(|(n, inc)| *n != me && self.nodes.alive(*n, *inc)).map(|(n, _)| *n));
            }
        }
        out
    }

    fn alive(&self, l: &Live) -> bool {
        self.nodes.alive(l.session.node, l.incarnation)
    }

    /// Whether a member stays in a room at `now`.
    fn stays(&self, s: &Stay, now: i64) -> bool {
        match *s {
            Stay::Online { node, incarnation, at } => self.nodes.alive(node, incarnation) || now < at + ROOM_GRACE_MS,
            Stay::Until(until) => stays(&Some(until), now),
        }
    }

    fn online(&self, s: &Stay) -> bool {
        matches!(*s, Stay::Online { node, incarnation, .. } if self.nodes.alive(node, incarnation))
    }

    async fn live_sessions(&self, app: i64, user: &str) -> Result<Vec<Live>> {
        let s: Option<UserSessions> = self.kv.read(&sessions_key(app, user)).await?;
        Ok(s.map(|s| s.sessions.into_iter().filter(|l| self.alive(l)).collect()).unwrap_or_default())
    }

    /// Set the user's stay in each of their rooms (a room whose grace ended is left).
    async fn set_stay(&self, app: i64, user: &str, stay: Stay, now: i64) -> Result<()> {
        let rooms: Option<UserRooms> = self.kv.read(&rooms_key(app, user)).await?;
        for conv in rooms.map(|r| r.rooms).unwrap_or_default() {
            let left = self
                .kv
                .update(&room_key(app, conv), |room: &mut Room| match room.members.get(user) {
                    Some(s) if self.stays(s, now) => {
                        room.members.insert(user.to_string(), stay);
                        false
                    }
                    _ => {
                        room.members.remove(user);
                        true
                    }
                })
                .await?;
            if left {
                self.kv.update(&rooms_key(app, user), |r: &mut UserRooms| r.rooms.remove(&conv)).await?;
            }
        }
        Ok(())
    }

    async fn room(&self, app: i64, conv: i64) -> Result<Room> {
        Ok(self.kv.read(&room_key(app, conv)).await?.unwrap_or_default())
    }
}

#[async_trait]
impl Presence for NatsPresence {
    async fn session_opened(&self, app: i64, user: &str, session: SessionRef, now: i64) -> Result<()> {
        let live = Live { session: session.clone(), incarnation: self.nodes.incarnation() };
        self.kv
            .update(&sessions_key(app, user), |s: &mut UserSessions| {
                s.sessions.retain(|l| self.alive(l) && l.session != session);
                s.sessions.push(live.clone());
            })
            .await?;
        let stay = Stay::Online { node: session.node, incarnation: live.incarnation, at: now };
        self.set_stay(app, user, stay, now).await
    }

    async fn session_closed(&self, app: i64, user: &str, session: &SessionRef, now: i64) -> Result<()> {
        let left = self
            .kv
            .update(&sessions_key(app, user), |s: &mut UserSessions| {
                s.sessions.retain(|l| self.alive(l) && &l.session != session);
                s.sessions.clone()
            })
            .await?;
        match left.first() {
            // the user's last session: their grace in their rooms starts now
            None => self.set_stay(app, user, Stay::Until(now + ROOM_GRACE_MS), now).await,
            // still online elsewhere: their rooms follow a session that lives on
            Some(l) => {
                let stay = Stay::Online { node: l.session.node, incarnation: l.incarnation, at: now };
                self.set_stay(app, user, stay, now).await
            }
        }
    }

    async fn sessions(&self, app: i64, user: &str) -> Result<Vec<SessionRef>> {
        Ok(self.live_sessions(app, user).await?.into_iter().map(|l| l.session).collect())
    }

    async fn online(&self, app: i64, users: &[String]) -> Result<Vec<String>> {
        let map = self.mirror.online.read();
        Ok(users
            .iter()
            .filter(|u| map.get(&sessions_key(app, u)).is_some_and(|on| on.iter().any(|(n, inc)| self.nodes.alive(*n, *inc))))
            .cloned()
            .collect())
    }

    async fn online_count(&self, app: i64) -> Result<usize> {
        let prefix = format!("s.{app}.");
        let map = self.mirror.online.read();
        Ok(map.iter().filter(|(k, on)| k.starts_with(&prefix) && on.iter().any(|(n, inc)| self.nodes.alive(*n, *inc))).count())
    }

    async fn room_join(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<()> {
        let stay = match self.live_sessions(app, user).await?.first() {
            Some(l) => Stay::Online { node: l.session.node, incarnation: l.incarnation, at: now },
            None => Stay::Until(now + ROOM_GRACE_MS),
        };
        self.kv.update(&rooms_key(app, user), |r: &mut UserRooms| r.rooms.insert(conv)).await?;
        self.kv
            .update(&room_key(app, conv), |room: &mut Room| {
                room.members.insert(user.to_string(), stay);
            })
            .await
    }

    async fn room_leave(&self, app: i64, conv: i64, user: &str) -> Result<()> {
        self.kv
            .update(&room_key(app, conv), |room: &mut Room| {
                room.members.remove(user);
            })
            .await?;
        self.kv.update(&rooms_key(app, user), |r: &mut UserRooms| r.rooms.remove(&conv)).await.map(drop)
    }

    async fn in_room(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<bool> {
        Ok(self.room(app, conv).await?.members.get(user).is_some_and(|s| self.stays(s, now)))
    }

    async fn room_members(&self, app: i64, conv: i64, limit: usize, _now: i64) -> Result<Vec<String>> {
        Ok(self.room(app, conv).await?.members.into_iter().filter(|(_, s)| self.online(s)).map(|(u, _)| u).take(limit).collect())
    }

    async fn room_count(&self, app: i64, conv: i64, _now: i64) -> Result<usize> {
        Ok(self.room(app, conv).await?.members.values().filter(|s| self.online(s)).count())
    }

    async fn room_roster(&self, app: i64, conv: i64, now: i64) -> Result<Vec<String>> {
        Ok(self.room(app, conv).await?.members.into_iter().filter(|(_, s)| self.stays(s, now)).map(|(u, _)| u).collect())
    }

    async fn rooms_of(&self, app: i64, user: &str, now: i64) -> Result<Vec<i64>> {
        let rooms: Option<UserRooms> = self.kv.read(&rooms_key(app, user)).await?;
        let mut out = Vec::new();
        for conv in rooms.map(|r| r.rooms).unwrap_or_default() {
            if self.in_room(app, conv, user, now).await? {
                out.push(conv);
            }
        }
        Ok(out)
    }
}

/// This node's copy of who is online on which node (`s.*` keys: the nodes and incarnations of
/// each user's sessions), kept by watching the bucket: what the bus routes by, and what online
/// checks read, without a round trip.
pub(crate) struct Mirror {
    online: RwLock<HashMap<String, Vec<(u16, u64)>>>,
}

impl Mirror {
    async fn start(kv: &Shared) -> Result<(Arc<Mirror>, JoinHandle<()>)> {
        let mirror = Arc::new(Mirror { online: RwLock::new(HashMap::new()) });
        let mut watch = kv.store().watch_with_history("s.>").await.map_err(nats_err)?;
        let m = mirror.clone();
        let task = tokio::spawn(async move {
            while let Some(entry) = watch.next().await {
                match entry {
                    Ok(e) if e.operation == Operation::Put => match decode::<UserSessions>(&e.value) {
                        Ok(s) => {
                            let on = s.sessions.iter().map(|l| (l.session.node, l.incarnation)).collect();
                            m.online.write().insert(e.key, on);
                        }
                        Err(err) => tracing::warn!(error = %err, key = %e.key, "nats: a presence entry does not read"),
                    },
                    Ok(e) => {
                        m.online.write().remove(&e.key);
                    }
                    Err(e) => tracing::warn!(error = %e, "nats: watching presence"),
                }
            }
        });
        Ok((mirror, task))
    }
}
