//! The counters every node must share: rate limits, failed logins, and "run this once" — each a
//! value in the `counters` bucket changed by compare-and-set (`kv.rs`) with the rule a single
//! process applies in memory ([`BucketState::take`], [`Failures`], the dedup claim), so that an
//! app's allowance is one for the cluster, not one per node.

use async_trait::async_trait;
use confab_engine::limits::{BucketState, RateLimiter, RateRule};
use confab_engine::password::{login_refused, Failures, LoginBackoff};
use confab_engine::runtime::{Claim, Dedup};
use confab_engine::{Error, Result};
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
pub struct NatsRateLimiter {
    pub(crate) kv: Shared,
}

#[async_trait]
impl RateLimiter for NatsRateLimiter {
    async fn take(&self, app: i64, bucket: &str, counter: &str, rule: RateRule, cost: u32, now: i64) -> Result<(), Error> {
        if rule.is_unlimited() {
            return Ok(());
        }
        match self.kv.update(&format!("r.{app}.{}", token(counter)), |st: &mut BucketState| st.take(bucket, rule, cost, now)).await {
            Ok(verdict) => verdict,
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
