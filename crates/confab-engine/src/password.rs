//! Passwords: argon2id with deliberate parameters, a bounded number of hashes at once, each on a
//! buffer allocated once and reused; a bounded queue in front; and the back-off that makes
//! failed logins cheap to repeat.
//!
//! Why the buffers: one argon2 hash fills `m_cost` KiB of memory (19 MiB here). Allocated per
//! hash on whichever blocking thread runs it, those blocks stay with the allocator's per-thread
//! arenas after use; a flood of 64 concurrent logins took the server from 56 MB to 3.5 GB. Here
//! `workers` hashes run at once, each on a pool buffer, so password hashing holds exactly
//! `workers × m_cost` KiB, whatever comes in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// How passwords are hashed, and how many at once.
#[derive(Clone, Debug, PartialEq)]
pub struct HashSettings {
    /// Hashes computed at once (each holds `m_cost_kib` of memory while it runs).
    pub workers: usize,
    /// Hashes that may wait for a worker; beyond, a login is answered "too many requests".
    pub queue: usize,
    /// argon2id memory per hash, KiB. OWASP's first recommendation: 19 MiB, 2 passes, 1 lane.
    pub m_cost_kib: u32,
    pub t_cost: u32,
}

impl Default for HashSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashSettings { workers: cores.clamp(1, 4), queue: 64, m_cost_kib: Params::DEFAULT_M_COST, t_cost: Params::DEFAULT_T_COST }
    }
}

/// Stored hashes with more memory than this are refused rather than verified (a hash confab did
/// not make, e.g. imported, could otherwise make each login allocate without bound).
const MAX_VERIFY_KIB: u32 = 64 * 1024;

/// The rate bucket a refused login is counted against (in the errors faces see).
pub const LOGIN_BUCKET: &str = "login";

/// How an imported LeanCloud `_User` password is stored until its first login: LeanCloud's
/// scheme, `$leancloud-sha512$<salt>$<base64 hash>` (hash = SHA-512(salt ‖ password), then 512
/// more SHA-512 rounds). A login that passes it is re-hashed with argon2id.
pub const LEANCLOUD_PREFIX: &str = "$leancloud-sha512$";

/// A LeanCloud password hash as stored here.
pub fn leancloud_hash(salt: &str, hash: &str) -> String {
    format!("{LEANCLOUD_PREFIX}{salt}${hash}")
}

/// Whether a stored hash is one to replace with argon2id at the next good login.
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with(LEANCLOUD_PREFIX)
}

fn verify_leancloud(password: &str, stored: &str) -> Option<bool> {
    use base64::Engine as _;
    use sha2::{Digest, Sha512};
    let (salt, want) = stored.strip_prefix(LEANCLOUD_PREFIX)?.split_once('$')?;
    let want = base64::engine::general_purpose::STANDARD.decode(want).ok()?;
    let mut hv = Sha512::new().chain_update(salt.as_bytes()).chain_update(password.as_bytes()).finalize();
    for _ in 0..512 {
        hv = Sha512::digest(hv);
    }
    // constant-time comparison
    Some(want.len() == hv.len() && want.iter().zip(hv.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0)
}

/// Counts callers inside (queued or hashing); leaving is dropping the guard.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Hasher {
    settings: HashSettings,
    params: Params,
    slots: Arc<Semaphore>,
    inside: Arc<AtomicUsize>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Hasher {
    pub fn new(settings: HashSettings) -> Result<Hasher> {
        let params = Params::new(settings.m_cost_kib, settings.t_cost, 1, None).map_err(Error::internal)?;
        let workers = settings.workers.max(1);
        Ok(Hasher {
            settings: HashSettings { workers, ..settings },
            params,
            slots: Arc::new(Semaphore::new(workers)),
            inside: Arc::new(AtomicUsize::new(0)),
            buffers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn settings(&self) -> &HashSettings {
        &self.settings
    }

    /// Run `f` on a worker with a pool buffer of at least `blocks` blocks. Refused at once when
    /// the queue is full; once admitted it runs to the end even if the caller goes away, so
    /// never more than `workers` hashes run.
    async fn run<T: Send + 'static>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Result<T> {
        let limit = self.settings.workers + self.settings.queue;
        if self.inside.fetch_add(1, Ordering::AcqRel) >= limit {
            self.inside.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::RateLimited { bucket: LOGIN_BUCKET.into(), retry_after_secs: 1 });
        }
        let admitted = Admission(self.inside.clone());
        let permit = self.slots.clone().acquire_owned().await.map_err(Error::internal)?;
        let pool = self.buffers.clone();
        let own = self.params.block_count();
        tokio::task::spawn_blocking(move || {
            let (_admitted, _permit) = (admitted, permit);
            // the pool's buffers fit our own parameters; a bigger stored hash gets its own, once
            let mut buf = if blocks <= own { pool.lock().pop() } else { None }.unwrap_or_else(|| vec![Block::default(); blocks.max(own)]);
            let r = f(&mut buf);
            if buf.len() == own {
                pool.lock().push(buf);
            }
            r
        })
        .await
        .map_err(Error::internal)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`) for this password.
    pub async fn hash(&self, password: String) -> Result<String> {
        let params = self.params.clone();
        let salt = SaltString::generate(&mut OsRng);
        self.run(params.block_count(), move |buf| {
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            let mut salt_bytes = [0u8; 64];
            let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes).map_err(Error::internal)?;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                .hash_password_into_with_memory(password.as_bytes(), raw_salt, &mut out, buf)
                .map_err(Error::internal)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(Error::internal)?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out).map_err(Error::internal)?),
            };
            Ok(phc.to_string())
        })
        .await?
    }

    /// Whether the password matches a stored PHC string (argon2, any parameters up to 64 MiB), or
    /// an imported LeanCloud hash.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool> {
        if is_legacy(&stored) {
            return verify_leancloud(&password, &stored).ok_or_else(|| Error::internal("a LeanCloud password hash that does not parse"));
        }
        let params = {
            let phc = PasswordHash::new(&stored).map_err(Error::internal)?;
            Params::try_from(&phc).map_err(Error::internal)?
        };
        if params.m_cost() > MAX_VERIFY_KIB {
            return Err(Error::internal("a stored password hash asks for more memory than confab verifies with"));
        }
        self.run(params.block_count(), move |buf| {
            let phc = PasswordHash::new(&stored).map_err(Error::internal)?;
            let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else { return Ok(false) };
            let algorithm = Algorithm::try_from(phc.algorithm).map_err(Error::internal)?;
            let version = phc.version.map(Version::try_from).transpose().map_err(Error::internal)?.unwrap_or_default();
            let mut salt_bytes = [0u8; 64];
            let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(Error::internal)?;
            let mut out = vec![0u8; expected.len()];
            let params = Params::new(params.m_cost(), params.t_cost(), params.p_cost(), Some(expected.len())).map_err(Error::internal)?;
            Argon2::new(algorithm, version, params)
                .hash_password_into_with_memory(password.as_bytes(), raw_salt, &mut out, buf)
                .map_err(Error::internal)?;
            // Output's equality is constant-time
            Ok(Output::new(&out).map_err(Error::internal)? == expected)
        })
        .await?
    }
}

/// Failed logins are remembered per user and per client address: after a few, the next attempt
/// must wait, doubling each time up to a ceiling, and is refused without hashing anything. A
/// success clears the user's count (not the address's: one good account must not launder a
/// guessing address).
///
/// In one process: [`LocalLoginBackoff`]; a cluster keeps the counts where every node sees them
/// (NATS KV or the database), so that guessing on another node does not start over. Time is the
/// engine's clock (Unix ms). An error other than [`Error::RateLimited`] means the counts could
/// not be reached.
#[async_trait]
pub trait LoginBackoff: Send + Sync + 'static {
    /// Admit a login attempt at `now`, or refuse it (`RateLimited`, with how long to wait) while
    /// any key backs off. An admitted attempt counts as a failure until it succeeds: a burst of
    /// concurrent attempts gets no more through than the allowance. `keys`: [`login_keys`].
    async fn admit(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()>;

    /// The admitted attempt had the right password: the user's failures are forgiven, and the
    /// attempt is taken off the address's count.
    async fn succeeded(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()>;

    /// The admitted attempt came to no verdict (the hashing queue was full, the store failed):
    /// it is taken off every count (a wait already running stays).
    async fn withdrawn(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()>;
}

/// The login back-off of one process, in memory. Entries are forgotten a while after their last
/// failure, and the map is pruned, so it stays bounded.
#[derive(Default)]
pub struct LocalLoginBackoff {
    failures: Mutex<HashMap<(i64, String), Failures>>,
}

/// One key's failed logins: what a login back-off keeps per (app, key), in memory or, in a
/// cluster, where every node reads and writes it (its methods are the rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failures {
    count: u32,
    last: i64,
    until: i64,
}

impl Failures {
    /// How long an attempt must still wait at `now` (0 or less: none).
    pub fn wait(&self, now: i64) -> i64 {
        self.until - now
    }

    /// An admitted attempt counts as a failure (until it succeeds or is withdrawn); past `free`
    /// failures, the key backs off, doubling each time.
    pub fn count_attempt(&mut self, free: u32, now: i64) {
        if self.last + FORGET_MS <= now {
            *self = Failures::default();
        }
        self.count += 1;
        self.last = now;
        if self.count >= free {
            let doublings = (self.count - free).min(20);
            self.until = now + (FIRST_WAIT_MS << doublings).min(MAX_WAIT_MS);
        }
    }

    /// The attempt is taken off the count (a wait already running stays).
    pub fn uncount(&mut self) {
        self.count = self.count.saturating_sub(1);
    }

    /// Long enough after its last failure (and its wait) to be forgotten.
    pub fn forgotten(&self, now: i64) -> bool {
        self.last + FORGET_MS <= now && self.until <= now - FORGET_MS
    }
}

/// The refusal of an attempt that must wait `wait` ms more.
pub fn login_refused(wait: i64) -> Error {
    Error::RateLimited { bucket: LOGIN_BUCKET.into(), retry_after_secs: ((wait + 999) / 1000) as u64 }
}

/// Failures allowed before back-off: per user, per address.
const FREE_PER_USER: u32 = 5;
const FREE_PER_ADDR: u32 = 20;
/// The first wait, and the longest.
const FIRST_WAIT_MS: i64 = 1_000;
const MAX_WAIT_MS: i64 = 5 * 60_000;
/// A key is forgotten this long after its last failure.
const FORGET_MS: i64 = 15 * 60_000;
/// Above this many keys, forgotten ones are pruned; above twice as many, no new key is added.
const PRUNE_AT: usize = 10_000;

/// The keys a login attempt is counted under.
pub fn login_keys(login: &str, addr: Option<&str>) -> Vec<(String, u32)> {
    let mut keys = vec![(format!("user:{login}"), FREE_PER_USER)];
    if let Some(a) = addr {
        keys.push((format!("addr:{a}"), FREE_PER_ADDR));
    }
    keys
}

#[async_trait]
impl LoginBackoff for LocalLoginBackoff {
    async fn admit(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()> {
        self.admit_now(app, keys, now)
    }

    async fn succeeded(&self, app: i64, keys: &[(String, u32)], _now: i64) -> Result<()> {
        self.uncount(app, keys, true);
        Ok(())
    }

    async fn withdrawn(&self, app: i64, keys: &[(String, u32)], _now: i64) -> Result<()> {
        self.uncount(app, keys, false);
        Ok(())
    }
}

impl LocalLoginBackoff {
    fn admit_now(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()> {
        let mut map = self.failures.lock();
        let wait = keys.iter().filter_map(|(k, _)| map.get(&(app, k.clone()))).map(|f| f.wait(now)).max().unwrap_or(0);
        if wait > 0 {
            return Err(login_refused(wait));
        }
        if map.len() > PRUNE_AT {
            map.retain(|_, f| !f.forgotten(now));
        }
        for (k, free) in keys {
            let key = (app, k.clone());
            if !map.contains_key(&key) && map.len() >= 2 * PRUNE_AT {
                continue;
            }
            map.entry(key).or_default().count_attempt(*free, now);
        }
        Ok(())
    }

    fn uncount(&self, app: i64, keys: &[(String, u32)], forgive_user: bool) {
        let mut map = self.failures.lock();
        for (k, _) in keys {
            let key = (app, k.clone());
            if forgive_user && k.starts_with("user:") {
                map.remove(&key);
            } else if let Some(f) = map.get_mut(&key) {
                f.uncount();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.failures.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn small() -> Hasher {
        Hasher::new(HashSettings { workers: 2, queue: 2, m_cost_kib: 1024, t_cost: 1 }).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_both_ways_with_the_argon2_crate() {
        let h = small();
        let mine = h.hash("correct horse".into()).await.unwrap();
        assert!(mine.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{mine}");
        assert!(h.verify("correct horse".into(), mine.clone()).await.unwrap());
        assert!(!h.verify("wrong horse".into(), mine.clone()).await.unwrap());
        // the argon2 crate reads ours, and we read its (default parameters: hashes stored before)
        let parsed = PasswordHash::new(&mine).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"battery staple", &salt).unwrap().to_string();
        assert!(h.verify("battery staple".into(), theirs.clone()).await.unwrap());
        assert!(!h.verify("battery stapler".into(), theirs).await.unwrap());
    }

    #[tokio::test]
    async fn leancloud_hashes_verify_with_leancloud_s_algorithm() {
        // LeanCloud's own test vector (its export guide)
        let stored = leancloud_hash(
            "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2",
            "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug==",
        );
        let h = small();
        assert!(h.verify("password".into(), stored.clone()).await.unwrap());
        assert!(!h.verify("Password".into(), stored.clone()).await.unwrap());
        assert!(is_legacy(&stored));
        assert!(h.verify("x".into(), format!("{LEANCLOUD_PREFIX}nosep")).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_refused_at_once_and_buffers_are_reused() {
        let h = Arc::new(Hasher::new(HashSettings { workers: 1, queue: 1, m_cost_kib: 8 * 1024, t_cost: 2 }).unwrap());
        let stored = h.hash("pw".into()).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (h, s) = (h.clone(), stored.clone());
            tasks.push(tokio::spawn(async move { h.verify("pw".into(), s).await }));
        }
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(ok) => assert!(ok),
                Err(Error::RateLimited { bucket, retry_after_secs }) => {
                    assert_eq!((bucket.as_str(), retry_after_secs), (LOGIN_BUCKET, 1));
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(refused >= 1, "eight at once with one worker and a queue of one: some are refused");
        assert_eq!(h.buffers.lock().len(), 1, "one worker, one buffer, reused");
    }

    fn wait(r: Result<()>) -> u64 {
        match r {
            Err(Error::RateLimited { retry_after_secs, .. }) => retry_after_secs,
            Ok(()) => 0,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn backoff_doubles_per_user_forgives_on_success_and_forgets() {
        let b = LocalLoginBackoff::default();
        let keys = login_keys("alice", Some("10.0.0.1"));
        let mut now = 1_000_000;
        // five attempts (failed: never forgiven) are admitted, the sixth waits a second
        for _ in 0..FREE_PER_USER {
            assert_eq!(wait(b.admit(1, &keys, now).await), 0);
        }
        assert_eq!(wait(b.admit(1, &keys, now).await), 1);
        now += 1_000;
        assert_eq!(wait(b.admit(1, &keys, now).await), 0, "admitted after the wait");
        assert_eq!(wait(b.admit(1, &keys, now).await), 2, "that failure doubled the wait");
        // another app, another user: not affected
        b.admit(2, &keys, now).await.unwrap();
        b.admit(1, &login_keys("bob", None), now).await.unwrap();
        // a success forgives the user, not the address
        b.succeeded(1, &keys, now).await.unwrap();
        b.admit(1, &login_keys("alice", None), now).await.unwrap();
        // forgotten after a quiet while
        now += FORGET_MS + MAX_WAIT_MS;
        b.admit(1, &keys, now).await.unwrap();
    }

    #[tokio::test]
    async fn a_burst_gets_no_more_through_than_the_allowance() {
        let b = LocalLoginBackoff::default();
        let keys = login_keys("alice", None);
        let mut admitted = 0;
        for _ in 0..64 {
            admitted += usize::from(b.admit(1, &keys, 5_000).await.is_ok());
        }
        assert_eq!(admitted, FREE_PER_USER as usize);
        // a right password among them forgives the user at once
        b.succeeded(1, &keys, 5_000).await.unwrap();
        b.admit(1, &keys, 5_000).await.unwrap();
        // an attempt that came to no verdict does not count
        let carol = login_keys("carol", None);
        for _ in 0..20 {
            b.admit(1, &carol, 6_000).await.unwrap();
            b.withdrawn(1, &carol, 6_000).await.unwrap();
        }
    }

    #[tokio::test]
    async fn backoff_stays_bounded() {
        let b = LocalLoginBackoff::default();
        for i in 0..(3 * PRUNE_AT) {
            b.admit(1, &login_keys(&format!("u{i}"), None), 0).await.unwrap();
        }
        assert!(b.len() <= 2 * PRUNE_AT + 1, "{}", b.len());
        // later, the stale ones are pruned to make room
        b.admit(1, &login_keys("late", None), FORGET_MS * 2).await.unwrap();
        assert!(b.len() < 10, "{}", b.len());
    }
}
