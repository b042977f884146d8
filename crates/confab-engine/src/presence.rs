//! Presence answers "who is online, and where": sessions per user, and who is present in each
//! chat room (a chat room's membership is its present users).
//!
//! In one process: [`LocalPresence`]; a cluster keeps it where every node sees it (JetStream
//! key-value with heartbeats). So every call may fail, and its deadlines (a chat room's grace) are
//! wall-clock times, Unix ms from the engine's clock (`now`), never the process's `Instant`.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::error::Result;

/// One live session of a user: the node it is on and its id there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct SessionRef {
    pub node: u16,
    pub session: u64,
    /// Device tag for single-device login (LeanCloud `tag`), if any.
    pub tag: Option<String>,
    /// The device the session runs on (LeanCloud `deviceId`), if known.
    pub device: Option<String>,
}

/// How long a user who went offline stays in the chat rooms they joined, in ms: a client that
/// reconnects within this time is still in them (LeanCloud: 30 minutes).
pub const ROOM_GRACE_MS: i64 = 30 * 60_000;

/// Who is online and in which chat rooms. `now` is the engine's clock (Unix ms): a user who goes
/// offline stays in their chat rooms until `now + ROOM_GRACE_MS`. An error: presence could not be
/// reached (each caller says what it does then).
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// A session opened at `now`: the user is back in the chat rooms whose grace has not ended.
    async fn session_opened(&self, app: i64, user: &str, session: SessionRef, now: i64) -> Result<()>;
    /// A session ended at `now`; the user's last one starts their grace in their chat rooms.
    async fn session_closed(&self, app: i64, user: &str, session: &SessionRef, now: i64) -> Result<()>;
    async fn sessions(&self, app: i64, user: &str) -> Result<Vec<SessionRef>>;
    /// The subset of `users` with at least one session.
    async fn online(&self, app: i64, users: &[String]) -> Result<Vec<String>>;
    async fn online_count(&self, app: i64) -> Result<usize>;
    /// The user joins a chat room at `now` (offline: only for the grace).
    async fn room_join(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<()>;
    async fn room_leave(&self, app: i64, conv: i64, user: &str) -> Result<()>;
    /// Whether a user is in a chat room at `now` (online, or offline for less than the grace).
    async fn in_room(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<bool>;
    /// Up to `limit` users present (online) in a chat room.
    async fn room_members(&self, app: i64, conv: i64, limit: usize, now: i64) -> Result<Vec<String>>;
    /// How many users are present (online) in a chat room.
    async fn room_count(&self, app: i64, conv: i64, now: i64) -> Result<usize>;
    /// Everyone in a chat room at `now`: online, or offline for less than the grace; by user id.
    async fn room_roster(&self, app: i64, conv: i64, now: i64) -> Result<Vec<String>>;
    /// The chat rooms a user is in at `now` (as [`Presence::in_room`] says), by id.
    async fn rooms_of(&self, app: i64, user: &str, now: i64) -> Result<Vec<i64>>;
}

/// A chat room's members, with until when each stays while offline (Unix ms; None while online).
type Room = HashMap<String, Option<i64>>;

/// Whether a member whose grace runs `until` is still in the room at `now`.
pub fn stays(until: &Option<i64>, now: i64) -> bool {
    until.is_none_or(|u| now < u)
}

/// Presence for one node, in memory.
#[derive(Default)]
pub struct LocalPresence {
    /// A user's sessions: a few at most, so a vector (a B-tree node cost ~700 bytes a user).
    sessions: RwLock<HashMap<(i64, String), Vec<SessionRef>>>,
    rooms: RwLock<HashMap<(i64, i64), Room>>,
}

impl LocalPresence {
    /// Set the user's deadline in every room of the app they are in at `now` (a room whose grace
    /// ended is left, even if nobody looked since).
    fn set_offline_until(&self, app: i64, user: &str, until: Option<i64>, now: i64) {
        for ((a, _), members) in self.rooms.write().iter_mut() {
            if *a == app {
                match members.get_mut(user) {
                    Some(s) if stays(s, now) => *s = until,
                    Some(_) => {
                        members.remove(user);
                    }
                    None => {}
                }
            }
        }
    }

    /// A room's users at `now`, the offline ones within their grace too when `offline` is set.
    fn in_room_now(&self, app: i64, conv: i64, offline: bool, now: i64) -> Vec<String> {
        let mut rooms = self.rooms.write();
        let Some(members) = rooms.get_mut(&(app, conv)) else { return vec![] };
        members.retain(|_, until| stays(until, now));
        let mut v: Vec<String> = members.iter().filter(|(_, until)| offline || until.is_none()).map(|(u, _)| u.clone()).collect();
        v.sort_unstable();
        v
    }

    fn present(&self, app: i64, conv: i64, now: i64) -> Vec<String> {
        self.in_room_now(app, conv, false, now)
    }
}

#[async_trait]
impl Presence for LocalPresence {
    async fn session_opened(&self, app: i64, user: &str, session: SessionRef, now: i64) -> Result<()> {
        let mut map = self.sessions.write();
        let list = map.entry((app, user.to_string())).or_default();
        if !list.contains(&session) {
            list.push(session);
        }
        drop(map);
        self.set_offline_until(app, user, None, now);
        Ok(())
    }

    async fn session_closed(&self, app: i64, user: &str, session: &SessionRef, now: i64) -> Result<()> {
        let mut map = self.sessions.write();
        let key = (app, user.to_string());
        if let Some(list) = map.get_mut(&key) {
            list.retain(|s| s != session);
            if list.is_empty() {
                map.remove(&key);
                drop(map);
                self.set_offline_until(app, user, Some(now + ROOM_GRACE_MS), now);
            }
        }
        Ok(())
    }

    async fn sessions(&self, app: i64, user: &str) -> Result<Vec<SessionRef>> {
        Ok(self.sessions.read().get(&(app, user.to_string())).cloned().unwrap_or_default())
    }

    async fn online(&self, app: i64, users: &[String]) -> Result<Vec<String>> {
        let map = self.sessions.read();
        Ok(users.iter().filter(|u| map.contains_key(&(app, (*u).clone()))).cloned().collect())
    }

    async fn online_count(&self, app: i64) -> Result<usize> {
        Ok(self.sessions.read().keys().filter(|(a, _)| *a == app).count())
    }

    async fn room_join(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<()> {
        let online = self.sessions.read().contains_key(&(app, user.to_string()));
        let until = if online { None } else { Some(now + ROOM_GRACE_MS) };
        self.rooms.write().entry((app, conv)).or_default().insert(user.to_string(), until);
        Ok(())
    }

    async fn room_leave(&self, app: i64, conv: i64, user: &str) -> Result<()> {
        if let Some(m) = self.rooms.write().get_mut(&(app, conv)) {
            m.remove(user);
        }
        Ok(())
    }

    async fn in_room(&self, app: i64, conv: i64, user: &str, now: i64) -> Result<bool> {
        Ok(self.rooms.read().get(&(app, conv)).and_then(|m| m.get(user)).is_some_and(|until| stays(until, now)))
    }

    async fn room_members(&self, app: i64, conv: i64, limit: usize, now: i64) -> Result<Vec<String>> {
        Ok(self.present(app, conv, now).into_iter().take(limit).collect())
    }

    async fn room_count(&self, app: i64, conv: i64, now: i64) -> Result<usize> {
        Ok(self.present(app, conv, now).len())
    }

    async fn room_roster(&self, app: i64, conv: i64, now: i64) -> Result<Vec<String>> {
        Ok(self.in_room_now(app, conv, true, now))
    }

    async fn rooms_of(&self, app: i64, user: &str, now: i64) -> Result<Vec<i64>> {
        let rooms = self.rooms.read();
        let mut v: Vec<i64> = rooms
            .iter()
            .filter(|((a, _), m)| *a == app && m.get(user).is_some_and(|until| stays(until, now)))
            .map(|((_, c), _)| *c)
            .collect();
        v.sort_unstable();
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u64) -> SessionRef {
        SessionRef { node: 0, session: n, tag: None, device: None }
    }

    #[tokio::test]
    async fn offline_members_stay_in_rooms_but_are_not_present() {
        let p = LocalPresence::default();
        let s = session(1);
        let t = 1_000_000;
        p.session_opened(1, "alice", s.clone(), t).await.unwrap();
        p.room_join(1, 10, "alice", t).await.unwrap();
        assert_eq!(p.online(1, &["alice".into(), "bob".into()]).await.unwrap(), vec!["alice".to_string()]);
        assert_eq!(p.room_count(1, 10, t).await.unwrap(), 1);
        p.session_closed(1, "alice", &s, t).await.unwrap();
        assert_eq!(p.online_count(1).await.unwrap(), 0);
        assert!(p.room_members(1, 10, 10, t).await.unwrap().is_empty(), "offline users are not present");
        assert!(p.in_room(1, 10, "alice", t).await.unwrap(), "but they have not left within the grace period");
        p.session_opened(1, "alice", s.clone(), t).await.unwrap();
        assert_eq!(p.room_members(1, 10, 10, t).await.unwrap(), vec!["alice".to_string()], "back online, back in the room");
        p.room_leave(1, 10, "alice").await.unwrap();
        assert!(!p.in_room(1, 10, "alice", t).await.unwrap());
    }

    #[tokio::test]
    async fn the_grace_ends_at_a_wall_clock_deadline() {
        let p = LocalPresence::default();
        let (s, t) = (session(1), 5_000_000);
        p.session_opened(1, "alice", s.clone(), t).await.unwrap();
        p.room_join(1, 10, "alice", t).await.unwrap();
        p.room_join(1, 11, "alice", t).await.unwrap();
        // online, she stays however late it is
        assert!(p.in_room(1, 10, "alice", t + 10 * ROOM_GRACE_MS).await.unwrap());
        // offline at t + 1000: in until t + 1000 + grace, not at it
        let off = t + 1_000;
        p.session_closed(1, "alice", &s, off).await.unwrap();
        let last = off + ROOM_GRACE_MS - 1;
        assert!(p.in_room(1, 10, "alice", last).await.unwrap());
        assert_eq!(p.rooms_of(1, "alice", last).await.unwrap(), vec![10, 11]);
        assert_eq!(p.room_roster(1, 10, last).await.unwrap(), vec!["alice".to_string()]);
        assert_eq!(p.room_count(1, 10, last).await.unwrap(), 0, "in the room, not present");
        let gone = off + ROOM_GRACE_MS;
        assert!(!p.in_room(1, 10, "alice", gone).await.unwrap(), "the grace is over");
        assert!(p.rooms_of(1, "alice", gone).await.unwrap().is_empty());
        assert!(p.room_roster(1, 10, gone).await.unwrap().is_empty());
        // a user joined while offline has the grace from the join
        p.room_join(1, 12, "bob", t).await.unwrap();
        assert!(p.in_room(1, 12, "bob", t + ROOM_GRACE_MS - 1).await.unwrap());
        assert!(!p.in_room(1, 12, "bob", t + ROOM_GRACE_MS).await.unwrap());
    }

    #[tokio::test]
    async fn a_reconnect_within_the_grace_keeps_the_rooms_and_only_the_last_session_starts_it() {
        let p = LocalPresence::default();
        let (a, b, t) = (session(1), session(2), 9_000_000);
        p.session_opened(1, "alice", a.clone(), t).await.unwrap();
        p.session_opened(1, "alice", b.clone(), t).await.unwrap();
        p.room_join(1, 10, "alice", t).await.unwrap();
        p.session_closed(1, "alice", &a, t).await.unwrap();
        assert!(p.in_room(1, 10, "alice", t + 2 * ROOM_GRACE_MS).await.unwrap(), "one session left: still online");
        p.session_closed(1, "alice", &b, t).await.unwrap();
        p.session_opened(1, "alice", a.clone(), t + ROOM_GRACE_MS - 1).await.unwrap();
        assert!(p.in_room(1, 10, "alice", t + 2 * ROOM_GRACE_MS).await.unwrap(), "back within the grace: no deadline");
        // back after the grace: out of the room, though nobody looked at it in between
        p.session_closed(1, "alice", &a, t).await.unwrap();
        p.session_opened(1, "alice", a.clone(), t + ROOM_GRACE_MS).await.unwrap();
        assert!(!p.in_room(1, 10, "alice", t + ROOM_GRACE_MS).await.unwrap());
        assert!(p.rooms_of(1, "alice", t + ROOM_GRACE_MS).await.unwrap().is_empty());
    }
}
