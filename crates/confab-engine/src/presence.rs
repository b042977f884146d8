//! Presence answers "who is online, and where": sessions per user, and who is present in each
//! chat room (a chat room's membership is its present users).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::RwLock;

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

/// How long a user who went offline stays in the chat rooms they joined: a client that
/// reconnects within this time is still in them (LeanCloud: 30 minutes).
pub const ROOM_GRACE: Duration = Duration::from_secs(30 * 60);

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    async fn session_opened(&self, app: i64, user: &str, session: SessionRef);
    async fn session_closed(&self, app: i64, user: &str, session: &SessionRef);
    async fn sessions(&self, app: i64, user: &str) -> Vec<SessionRef>;
    /// The subset of `users` with at least one session.
    async fn online(&self, app: i64, users: &[String]) -> Vec<String>;
    async fn online_count(&self, app: i64) -> usize;
    async fn room_join(&self, app: i64, conv: i64, user: &str);
    async fn room_leave(&self, app: i64, conv: i64, user: &str);
    /// Whether a user is in a chat room (online, or offline for less than [`ROOM_GRACE`]).
    async fn in_room(&self, app: i64, conv: i64, user: &str) -> bool;
    /// Up to `limit` users present (online) in a chat room.
    async fn room_members(&self, app: i64, conv: i64, limit: usize) -> Vec<String>;
    /// How many users are present (online) in a chat room.
    async fn room_count(&self, app: i64, conv: i64) -> usize;
    /// Everyone in a chat room: online, or offline for less than [`ROOM_GRACE`]; by user id.
    async fn room_roster(&self, app: i64, conv: i64) -> Vec<String>;
    /// The chat rooms a user is in (as [`Presence::in_room`] says), by id.
    async fn rooms_of(&self, app: i64, user: &str) -> Vec<i64>;
}

/// A chat room's members, with when each went offline (None while online).
type Room = HashMap<String, Option<Instant>>;

/// Presence for one node, in memory.
#[derive(Default)]
pub struct LocalPresence {
    /// A user's sessions: a few at most, so a vector (a B-tree node cost ~700 bytes a user).
    sessions: RwLock<HashMap<(i64, String), Vec<SessionRef>>>,
    rooms: RwLock<HashMap<(i64, i64), Room>>,
}

impl LocalPresence {
    fn set_offline_since(&self, app: i64, user: &str, since: Option<Instant>) {
        for ((a, _), members) in self.rooms.write().iter_mut() {
            if *a == app {
                if let Some(s) = members.get_mut(user) {
                    *s = since;
                }
            }
        }
    }

    /// A room's users, the offline ones within their grace too when `offline` is set.
    fn in_room_now(&self, app: i64, conv: i64, offline: bool) -> Vec<String> {
        let mut rooms = self.rooms.write();
        let Some(members) = rooms.get_mut(&(app, conv)) else { return vec![] };
        members.retain(|_, off| off.is_none_or(|t| t.elapsed() < ROOM_GRACE));
        let mut v: Vec<String> = members.iter().filter(|(_, off)| offline || off.is_none()).map(|(u, _)| u.clone()).collect();
        v.sort_unstable();
        v
    }

    fn present(&self, app: i64, conv: i64) -> Vec<String> {
        self.in_room_now(app, conv, false)
    }
}

#[async_trait]
impl Presence for LocalPresence {
    async fn session_opened(&self, app: i64, user: &str, session: SessionRef) {
        let mut map = self.sessions.write();
        let list = map.entry((app, user.to_string())).or_default();
        if !list.contains(&session) {
            list.push(session);
        }
        drop(map);
        self.set_offline_since(app, user, None);
    }

    async fn session_closed(&self, app: i64, user: &str, session: &SessionRef) {
        let mut map = self.sessions.write();
        let key = (app, user.to_string());
        if let Some(list) = map.get_mut(&key) {
            list.retain(|s| s != session);
            if list.is_empty() {
                map.remove(&key);
                drop(map);
                self.set_offline_since(app, user, Some(Instant::now()));
            }
        }
    }

    async fn sessions(&self, app: i64, user: &str) -> Vec<SessionRef> {
        self.sessions.read().get(&(app, user.to_string())).cloned().unwrap_or_default()
    }

    async fn online(&self, app: i64, users: &[String]) -> Vec<String> {
        let map = self.sessions.read();
        users.iter().filter(|u| map.contains_key(&(app, (*u).clone()))).cloned().collect()
    }

    async fn online_count(&self, app: i64) -> usize {
        self.sessions.read().keys().filter(|(a, _)| *a == app).count()
    }

    async fn room_join(&self, app: i64, conv: i64, user: &str) {
        let online = self.sessions.read().contains_key(&(app, user.to_string()));
        let since = if online { None } else { Some(Instant::now()) };
        self.rooms.write().entry((app, conv)).or_default().insert(user.to_string(), since);
    }

    async fn room_leave(&self, app: i64, conv: i64, user: &str) {
        if let Some(m) = self.rooms.write().get_mut(&(app, conv)) {
            m.remove(user);
        }
    }

    async fn in_room(&self, app: i64, conv: i64, user: &str) -> bool {
        self.rooms.read().get(&(app, conv)).and_then(|m| m.get(user)).is_some_and(|off| off.is_none_or(|t| t.elapsed() < ROOM_GRACE))
    }

    async fn room_members(&self, app: i64, conv: i64, limit: usize) -> Vec<String> {
        self.present(app, conv).into_iter().take(limit).collect()
    }

    async fn room_count(&self, app: i64, conv: i64) -> usize {
        self.present(app, conv).len()
    }

    async fn room_roster(&self, app: i64, conv: i64) -> Vec<String> {
        self.in_room_now(app, conv, true)
    }

    async fn rooms_of(&self, app: i64, user: &str) -> Vec<i64> {
        let rooms = self.rooms.read();
        let mut v: Vec<i64> = rooms
            .iter()
            .filter(|((a, _), m)| *a == app && m.get(user).is_some_and(|off| off.is_none_or(|t| t.elapsed() < ROOM_GRACE)))
            .map(|((_, c), _)| *c)
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offline_members_stay_in_rooms_but_are_not_present() {
        let p = LocalPresence::default();
        let s = SessionRef { node: 0, session: 1, tag: None, device: None };
        p.session_opened(1, "alice", s.clone()).await;
        p.room_join(1, 10, "alice").await;
        assert_eq!(p.online(1, &["alice".into(), "bob".into()]).await, vec!["alice".to_string()]);
        assert_eq!(p.room_count(1, 10).await, 1);
        p.session_closed(1, "alice", &s).await;
        assert_eq!(p.online_count(1).await, 0);
        assert!(p.room_members(1, 10, 10).await.is_empty(), "offline users are not present");
        assert!(p.in_room(1, 10, "alice").await, "but they have not left within the grace period");
        p.session_opened(1, "alice", s.clone()).await;
        assert_eq!(p.room_members(1, 10, 10).await, vec!["alice".to_string()], "back online, back in the room");
        p.room_leave(1, 10, "alice").await;
        assert!(!p.in_room(1, 10, "alice").await);
    }
}
