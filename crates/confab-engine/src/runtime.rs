//! The node runtime's small seams (design.md §7): state that lives in one process on one machine
//! and must be shared by the nodes of a cluster, each behind a trait with its in-process
//! implementation here (the bus and presence have their own modules).
//!
//! * [`Dedup`]: "run this once" (`Apps::once`, MaxIM's `transaction_id`): in a cluster the
//!   claim must be one for every node.
//! * [`Invalidation`]: the engine's caches (apps, tokens, users known to exist) are dropped on
//!   every node when something changes on one; [`LocalInvalidation`] carries the word between the
//!   engines of one process (tests run two engines on one store to prove it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::model::{App, AppLookup, Token};

// ------------------------------------------------------------------ dedup

/// What a claim on a key found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// Nobody ran it within the window: the caller runs it now.
    First,
    /// Another caller is running it.
    Running,
    /// It ran: its result.
    Done(Value),
}

/// Remembers which calls ran, and their results, for a window.
#[async_trait]
pub trait Dedup: Send + Sync + 'static {
    /// Claim `key` of `app` at `now` (Unix ms) until `until`.
    async fn claim(&self, app: i64, key: &str, now: i64, until: i64) -> Result<Claim>;
    /// The claimed call ended: its result kept until `until`, or (`None`: it failed) the claim
    /// dropped so it may run again.
    async fn finish(&self, app: i64, key: &str, result: Option<&Value>, until: i64) -> Result<()>;
}

/// Keys remembered at most, before the expired ones are dropped.
const SEEN_MAX: usize = 10_000;

/// Per (app, key): the result (None while running) and until when.
type Seen = HashMap<(i64, String), (Option<Value>, i64)>;

/// One process's memory of calls.
#[derive(Default)]
pub struct LocalDedup {
    seen: Mutex<Seen>,
}

#[async_trait]
impl Dedup for LocalDedup {
    async fn claim(&self, app: i64, key: &str, now: i64, until: i64) -> Result<Claim> {
        let mut seen = self.seen.lock();
        if seen.len() > SEEN_MAX {
            seen.retain(|_, (_, u)| *u > now);
        }
        let key = (app, key.to_string());
        match seen.get(&key) {
            Some((Some(v), u)) if *u > now => Ok(Claim::Done(v.clone())),
            Some((None, u)) if *u > now => Ok(Claim::Running),
            _ => {
                seen.insert(key, (None, until));
                Ok(Claim::First)
            }
        }
    }

    async fn finish(&self, app: i64, key: &str, result: Option<&Value>, until: i64) -> Result<()> {
        let mut seen = self.seen.lock();
        let key = (app, key.to_string());
        match result {
            Some(v) => {
                seen.insert(key, (Some(v.clone()), until));
            }
            None => {
                seen.remove(&key);
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ caches

/// A change that makes cached copies wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invalidate {
    /// An app's settings or keys changed.
    Apps,
    /// Tokens were revoked.
    Tokens,
    /// A user was deleted.
    User { app: i64, id: String },
}

/// Carries invalidations to every engine (every node of a cluster).
pub trait Invalidation: Send + Sync + 'static {
    fn publish(&self, what: Invalidate);
    /// What other engines publish from now on.
    fn subscribe(&self) -> broadcast::Receiver<Invalidate>;
}

/// The engines of one process.
pub struct LocalInvalidation {
    tx: broadcast::Sender<Invalidate>,
}

impl Default for LocalInvalidation {
    fn default() -> Self {
        LocalInvalidation { tx: broadcast::channel(1024).0 }
    }
}

impl Invalidation for LocalInvalidation {
    fn publish(&self, what: Invalidate) {
        // nobody listening is fine
        let _ = self.tx.send(what);
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidate> {
        self.tx.subscribe()
    }
}

/// How long an app read from the store is trusted.
pub const APP_CACHE_TTL: Duration = Duration::from_secs(3);
/// Users remembered as existing, at most (then the memory starts over).
const KNOWN_USERS_MAX: usize = 100_000;
/// How long a token read from the store is trusted (a revocation on another node is seen
/// within this time even without an invalidation).
pub const TOKEN_CACHE_AGE: Duration = Duration::from_secs(3);
const TOKEN_CACHE_MAX: usize = 100_000;

struct TokenCache {
    generation: u64,
    tokens: HashMap<String, (Token, Instant)>,
}

/// The engine's caches, dropped by the invalidations it hears (its own included).
pub(crate) struct Caches {
    apps: Mutex<HashMap<AppLookup, (Arc<App>, Instant)>>,
    known_users: Mutex<HashSet<(i64, String)>>,
    tokens: Mutex<TokenCache>,
    heard: Mutex<broadcast::Receiver<Invalidate>>,
    invalidation: Arc<dyn Invalidation>,
}

impl Caches {
    pub(crate) fn new(invalidation: Arc<dyn Invalidation>) -> Caches {
        Caches {
            apps: Mutex::new(HashMap::new()),
            known_users: Mutex::new(HashSet::new()),
            tokens: Mutex::new(TokenCache { generation: 0, tokens: HashMap::new() }),
            heard: Mutex::new(invalidation.subscribe()),
            invalidation,
        }
    }

    /// Drop what this engine has and tell the others.
    pub(crate) fn invalidate(&self, what: Invalidate) {
        self.apply(&what);
        self.invalidation.publish(what);
    }

    fn apply(&self, what: &Invalidate) {
        match what {
            Invalidate::Apps => self.apps.lock().clear(),
            Invalidate::Tokens => self.tokens_revoked(),
            Invalidate::User { app, id } => {
                self.known_users.lock().remove(&(*app, id.clone()));
                self.tokens_revoked();
            }
        }
    }

    fn tokens_revoked(&self) {
        let mut t = self.tokens.lock();
        t.generation += 1;
        t.tokens.clear();
    }

    /// Apply what the other engines said since the last look.
    fn catch_up(&self) {
        let mut heard = self.heard.lock();
        loop {
            match heard.try_recv() {
                Ok(what) => self.apply(&what),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    // too much was said to replay: forget everything
                    self.apps.lock().clear();
                    self.known_users.lock().clear();
                    self.tokens_revoked();
                }
                Err(_) => return,
            }
        }
    }

    pub(crate) fn app(&self, lookup: &AppLookup) -> Option<Arc<App>> {
        self.catch_up();
        self.apps.lock().get(lookup).filter(|(_, at)| at.elapsed() < APP_CACHE_TTL).map(|(a, _)| a.clone())
    }

    pub(crate) fn remember_app(&self, lookup: &AppLookup, app: &Arc<App>) {
        self.apps.lock().insert(lookup.clone(), (app.clone(), Instant::now()));
    }

    pub(crate) fn user_known(&self, app: i64, id: &str) -> bool {
        self.catch_up();
        self.known_users.lock().contains(&(app, id.to_string()))
    }

    pub(crate) fn remember_users(&self, app: i64, ids: impl ExactSizeIterator<Item = String>) {
        let mut known = self.known_users.lock();
        if known.len() + ids.len() > KNOWN_USERS_MAX {
            known.clear();
        }
        known.extend(ids.map(|id| (app, id)));
    }

    /// A token read recently, and the generation to remember a fresh read under.
    pub(crate) fn token(&self, token: &str) -> (Option<Token>, u64) {
        self.catch_up();
        let t = self.tokens.lock();
        (t.tokens.get(token).filter(|(_, at)| at.elapsed() < TOKEN_CACHE_AGE).map(|(t, _)| t.clone()), t.generation)
    }

    /// Remember a token read at `generation`, unless a revocation came in between (a read that
    /// raced a revocation must not bring the revoked token back).
    pub(crate) fn remember_token(&self, generation: u64, token: &str, t: &Token) {
        let mut c = self.tokens.lock();
        if generation != c.generation {
            return;
        }
        if c.tokens.len() >= TOKEN_CACHE_MAX {
            c.tokens.clear();
        }
        c.tokens.insert(token.to_string(), (t.clone(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TokenKind;

    fn token(s: &str) -> Token {
        Token {
            token: s.into(),
            app: 1,
            user: Some("u".into()),
            kind: TokenKind::EasemobUser,
            created_at: 0,
            expires_at: None,
            device: None,
        }
    }

    #[test]
    fn a_token_read_before_a_revocation_is_not_remembered_after_it() {
        let c = Caches::new(Arc::new(LocalInvalidation::default()));
        let (_, before) = c.token("a");
        c.remember_token(before, "a", &token("a"));
        assert!(c.token("a").0.is_some());
        // a read starts, a revocation happens, the read finishes
        let (_, read_at) = c.token("b");
        c.invalidate(Invalidate::Tokens);
        c.remember_token(read_at, "b", &token("b"));
        assert!(c.token("a").0.is_none() && c.token("b").0.is_none(), "the revocation emptied the cache and the racing read was dropped");
        let (_, now) = c.token("b");
        c.remember_token(now, "b", &token("b"));
        assert!(c.token("b").0.is_some());
    }

    #[test]
    fn another_engines_invalidation_reaches_this_one() {
        let shared: Arc<dyn Invalidation> = Arc::new(LocalInvalidation::default());
        let (a, b) = (Caches::new(shared.clone()), Caches::new(shared));
        a.remember_users(1, ["tom".to_string()].into_iter());
        let (_, g) = a.token("t");
        a.remember_token(g, "t", &token("t"));
        b.invalidate(Invalidate::User { app: 1, id: "tom".into() });
        assert!(!a.user_known(1, "tom"), "B's deletion reached A's known users");
        assert!(a.token("t").0.is_none(), "and A's tokens");
    }

    #[tokio::test]
    async fn a_claim_runs_once_and_a_failure_frees_it() {
        let d = LocalDedup::default();
        assert_eq!(d.claim(1, "k", 0, 100).await.unwrap(), Claim::First);
        assert_eq!(d.claim(1, "k", 1, 100).await.unwrap(), Claim::Running);
        d.finish(1, "k", None, 100).await.unwrap();
        assert_eq!(d.claim(1, "k", 2, 100).await.unwrap(), Claim::First, "a failed call may run again");
        d.finish(1, "k", Some(&serde_json::json!(7)), 100).await.unwrap();
        assert_eq!(d.claim(1, "k", 3, 100).await.unwrap(), Claim::Done(serde_json::json!(7)));
        assert_eq!(d.claim(1, "k", 100, 200).await.unwrap(), Claim::First, "after the window it runs again");
        assert_eq!(d.claim(2, "k", 3, 100).await.unwrap(), Claim::First, "keys are per app");
    }
}
