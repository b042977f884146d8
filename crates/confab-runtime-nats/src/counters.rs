//! The counters every node must share: rate limits, failed logins, and "run this once" — each a
//! value in the `counters` bucket changed by compare-and-set (`kv.rs`) with the rule a single
//! process applies in memory ([`BucketState::take`], [`Failures`], the dedup claim), so that an
//! app's allowance is one for the cluster, not one per node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_engine::limits::{BucketState, RateLimiter, RateRule};
use confab_engine::password::{login_refused, Failures, LoginBackoff};
use confab_engine::runtime::{Claim, Dedup};
use confab_engine::{Error, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kv::{token, Shared};

/// A shared counter out of reach: the call goes through (see the crate's doc), and the operator
/// hears of it, at most once every few seconds.
fn out_of_reach<T>(what: &str, e: &Error, go_on: T) -> T {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if LAST.swap(now, std::sync::atomic::Ordering::Relaxed) + 5 <= now {
        tracing::warn!(error = %e, "nats: {what} are out of reach: calls go through uncounted until NATS is back");
    }
    go_on
}

/// Rate limits, counted in the cluster's `counters` bucket (`r.<app>.<counter>`).
///
/// **Leases.** An app's counter is one key that every node's every call would otherwise write,
/// and compare-and-set on one key from several nodes falls over at a few thousand calls a second.
/// So a node takes a small part of an allowance at once (a lease, [`lease_size`]: a hundredth of
/// the smallest window, at most 64 units) and spends it locally for up to [`LEASE_FOR`]. The
/// cluster never admits more than the allowance (a lease is counted when taken); it may refuse up
/// to a lease per node early (units leased and not spent), and a lease taken just before a window
/// ends may be spent just after it. Rules small enough to need every unit (a hundred calls or
/// fewer) lease one unit: exact.
pub struct NatsRateLimiter {
    kv: Shared,
    leases: Mutex<HashMap<(i64, String), Lease>>,
}

/// Units of a counter this node holds, until when.
struct Lease {
    units: u32,
    until: Instant,
}

/// How long a lease may be spent.
pub const LEASE_FOR: Duration = Duration::from_secs(1);

/// Leases held at most before the spent and expired ones are dropped.
const LEASES_MAX: usize = 10_000;

/// The units a node takes at once under a rule.
pub fn lease_size(rule: RateRule) -> u32 {
    let smallest = [rule.per_second, rule.per_minute, rule.per_day].into_iter().flatten().min().unwrap_or(1);
    (smallest / 100).clamp(1, 64)
}

impl NatsRateLimiter {
    pub(crate) fn new(kv: Shared) -> NatsRateLimiter {
        NatsRateLimiter { kv, leases: Mutex::new(HashMap::new()) }
    }

    /// Spend `cost` from this node's lease on the counter, if it holds enough.
    fn spend(&self, key: &(i64, String), cost: u32) -> bool {
        let mut leases = self.leases.lock();
        match leases.get_mut(key) {
            Some(l) if l.units >= cost && l.until > Instant::now() => {
                l.units -= cost;
                true
            }
            _ => false,
        }
    }

    fn keep(&self, key: (i64, String), units: u32) {
        let mut leases = self.leases.lock();
        if leases.len() >= LEASES_MAX {
            let now = Instant::now();
            leases.retain(|_, l| l.units > 0 && l.until > now);
        }
        leases.insert(key, Lease { units, until: Instant::now() + LEASE_FOR });
    }
}

#[async_trait]
impl RateLimiter for NatsRateLimiter {
    async fn take(&self, app: i64, bucket: &str, counter: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error> {
        if rule.is_unlimited() {
            return Ok(());
        }
        let key = (app, counter.to_string());
        if self.spend(&key, cost) {
            return Ok(());
        }
        let lease = lease_size(rule).max(cost);
        // a whole lease if it fits in every window, else the call's own cost (or its refusal)
        let taken = self
            .kv
            .update(&format!("r.{app}.{}", token(counter)), |st: &mut BucketState| {
                if lease > cost {
                    let mut trial = st.clone();
                    if trial.take(bucket, rule, lease, now).is_ok() {
                        *st = trial;
                        return Ok(lease);
                    }
                }
                st.take(bucket, rule, cost, now).map(|()| cost)
            })
            .await;
        match taken {
            Ok(Ok(units)) => {
                if units > cost {
                    self.keep(key, units - cost);
                }
                Ok(())
            }
            Ok(Err(refused)) => Err(refused),
            Err(e) => out_of_reach("rate limits", &e, Ok(())),
        }
    }
}

/// Failed logins, counted in the cluster's `counters` bucket (`l.<app>.<key>`): guessing on
/// another node does not start over.
pub struct NatsLoginBackoff {
    pub(crate) kv: Shared,
}

fn login_key(app: i64, key: &str) -> String {
    format!("l.{app}.{}", token(key))
}

#[async_trait]
impl LoginBackoff for NatsLoginBackoff {
    async fn admit(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<()> {
        self.admit_counted(app, keys, now).await.unwrap_or_else(|e| out_of_reach("failed-login counts", &e, Ok(())))
    }

    async fn succeeded(&self, app: i64, keys: &[(String, u32)], _now: i64) -> Result<()> {
        for (k, _) in keys {
            let forgive = k.starts_with("user:");
            let done =
                self.kv.update(&login_key(app, k), |f: &mut Failures| if forgive { *f = Failures::default() } else { f.uncount() }).await;
            if let Err(e) = done {
                return out_of_reach("failed-login counts", &e, Ok(()));
            }
        }
        Ok(())
    }

    async fn withdrawn(&self, app: i64, keys: &[(String, u32)], _now: i64) -> Result<()> {
        for (k, _) in keys {
            if let Err(e) = self.kv.update(&login_key(app, k), |f: &mut Failures| f.uncount()).await {
                return out_of_reach("failed-login counts", &e, Ok(()));
            }
        }
        Ok(())
    }
}

impl NatsLoginBackoff {
    /// `admit`, or the error that kept the counts out of reach (the verdict inside).
    async fn admit_counted(&self, app: i64, keys: &[(String, u32)], now: i64) -> Result<Result<()>> {
        let mut wait = 0;
        for (k, _) in keys {
            if let Some(f) = self.kv.read::<Failures>(&login_key(app, k)).await? {
                wait = wait.max(f.wait(now));
            }
        }
        if wait > 0 {
            return Ok(Err(login_refused(wait)));
        }
        for (k, free) in keys {
            self.kv.update(&login_key(app, k), |f: &mut Failures| f.count_attempt(*free, now)).await?;
        }
        Ok(Ok(()))
    }
}

/// A claimed call: its result once it ran (none while it runs), and until when it is remembered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ran {
    result: Option<Value>,
    until: i64,
}

/// "Run this once", for the cluster (`d.<app>.<key>` in the `counters` bucket).
pub struct NatsDedup {
    pub(crate) kv: Shared,
}

#[async_trait]
impl Dedup for NatsDedup {
    async fn claim(&self, app: i64, key: &str, now: i64, until: i64) -> Result<Claim> {
        let claimed = self
            .kv
            .update(&format!("d.{app}.{}", token(key)), |ran: &mut Option<Ran>| match ran {
                Some(Ran { result: Some(v), until: u }) if *u > now => Claim::Done(v.clone()),
                Some(Ran { result: None, until: u }) if *u > now => Claim::Running,
                _ => {
                    *ran = Some(Ran { result: None, until });
                    Claim::First
                }
            })
            .await;
        claimed.or_else(|e| out_of_reach("run-once claims", &e, Ok(Claim::First)))
    }

    async fn finish(&self, app: i64, key: &str, result: Option<&Value>, until: i64) -> Result<()> {
        let ran = result.map(|v| Ran { result: Some(v.clone()), until });
        let done = self.kv.update(&format!("d.{app}.{}", token(key)), |r: &mut Option<Ran>| *r = ran.clone()).await;
        done.or_else(|e| out_of_reach("run-once claims", &e, Ok(())))
    }
}
