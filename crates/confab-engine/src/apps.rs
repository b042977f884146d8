//! Apps: creating them and their settings, finding one by a face's credentials (cached), the
//! rate buckets each app's calls count against, and "run once" (`once`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::limits::{Bucket, Limits, RateLimiter};
use crate::model::{App, AppKeys, AppLookup, Attrs, EasemobKeys, LeanCloudKeys, MaximKeys, Plan};
use crate::random::{random_lower, random_string};
use crate::runtime::{Caches, Claim, Dedup, Invalidate};
use crate::store::Store;

/// What `create_app` needs. Keys left as None are generated.
#[derive(Clone, Debug, Default)]
pub struct NewApp {
    pub name: String,
    pub plan: Plan,
    pub leancloud_app_id: Option<String>,
    pub leancloud_app_key: Option<String>,
    pub leancloud_master_key: Option<String>,
}

/// The apps service. It holds the `Store` (apps), the `Caches` (apps recently read, dropped on
/// every engine when one changes), the `RateLimiter` (the rate buckets' counters), the `Dedup`
/// ("run once") and the `Stamps` (a new app's id and time; the limiters' clock).
pub struct Apps {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) caches: Arc<Caches>,
    pub(crate) rates: Arc<dyn RateLimiter>,
    pub(crate) dedup: Arc<dyn Dedup>,
    pub(crate) stamps: Stamps,
}

impl Apps {
    pub async fn create_app(&self, new: NewApp) -> Result<App> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(Error::invalid("app name must be 1 to 64 printable characters"));
        }
        for key in [&new.leancloud_app_id, &new.leancloud_app_key, &new.leancloud_master_key].into_iter().flatten() {
            if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic() && c != ',') {
                return Err(Error::invalid("LeanCloud keys must be 1 to 128 printable ASCII characters without commas"));
            }
        }
        if self.store.find_app(&AppLookup::Name(name.clone())).await?.is_some() {
            return Err(Error::invalid(format!("an app named '{name}' exists already")));
        }
        let lc_id = new.leancloud_app_id.unwrap_or_else(|| format!("{}-cfb", random_string(18)));
        if self.store.find_app(&AppLookup::LeanCloud(lc_id.clone())).await?.is_some() {
            return Err(Error::invalid(format!("an app with LeanCloud app id '{lc_id}' exists already")));
        }
        let app = App {
            id: self.stamps.next_id(),
            name,
            plan: new.plan,
            created_at: self.stamps.now(),
            keys: AppKeys {
                leancloud: LeanCloudKeys {
                    app_id: lc_id,
                    app_key: new.leancloud_app_key.unwrap_or_else(|| random_string(24)),
                    master_key: new.leancloud_master_key.unwrap_or_else(|| random_string(24)),
                    hook_key: random_string(24),
                },
                easemob: EasemobKeys {
                    org_name: random_lower(10),
                    app_name: random_lower(8),
                    client_id: format!("YXA6{}", random_string(22)),
                    client_secret: format!("YXA6{}", random_string(27)),
                },
                maxim: MaximKeys { app_id: random_lower(12), admin_token: random_string(48) },
            },
            limit_overrides: Attrs::new(),
            limits: Limits::for_plan(new.plan),
        };
        self.store.create_app(&app).await?;
        Ok(app)
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        self.store.list_apps().await
    }

    /// Set one setting of an app (`key=value`; see [`Limits::set_override`]).
    pub async fn set_app_limit(&self, name: &str, key: &str, value: &str) -> Result<App> {
        self.set_app_settings(name, &[(key, value)]).await
    }

    /// Set several settings of an app at once: all of them, or none when one is refused. A
    /// running server sees them within `runtime::APP_CACHE_TTL`.
    pub async fn set_app_settings(&self, name: &str, settings: &[(&str, &str)]) -> Result<App> {
        let mut app = self.store.find_app(&AppLookup::Name(name.to_string())).await?.ok_or(Error::AppNotFound)?;
        for (key, value) in settings {
            Limits::set_override(app.plan, &mut app.limit_overrides, key, value)?;
        }
        self.store.set_app_limits(app.id, &app.limit_overrides).await?;
        app.limits = Limits::resolve(app.plan, &app.limit_overrides)?;
        self.caches.invalidate(Invalidate::Apps);
        Ok(app)
    }

    /// Whether the store answers a lookup by key (`/healthz`). Lookups have read connections of
    /// their own, so the answer does not wait behind a burst of long queries.
    pub async fn health(&self) -> Result<()> {
        self.store.find_app(&AppLookup::Name(String::new())).await.map(|_| ())
    }

    /// The app a face's credentials name, cached for a few seconds.
    pub async fn find_app(&self, lookup: &AppLookup) -> Result<Option<Arc<App>>> {
        if let Some(app) = self.caches.app(lookup) {
            return Ok(Some(app));
        }
        let Some(app) = self.store.find_app(lookup).await? else { return Ok(None) };
        let app = Arc::new(app);
        self.caches.remember_app(lookup, &app);
        Ok(Some(app))
    }

    /// Count one call against a rate bucket of the app; `RateLimited` when over.
    pub async fn rate_check(&self, app: &App, bucket: Bucket) -> Result<()> {
        self.rates.check(app.id, bucket.name(), app.limits.rate(bucket), self.stamps.now()).await
    }

    /// Count `cost` units against a bucket (a message quota counts each recipient).
    pub async fn rate_take(&self, app: &App, bucket: Bucket, cost: u32) -> Result<()> {
        self.rates.take(app.id, bucket.name(), bucket.name(), app.limits.rate(bucket), cost, self.stamps.now()).await
    }

    /// Count one call against the bucket's rule, on a counter of its own for `subject` (a rate
    /// "per user ID").
    pub async fn rate_check_for(&self, app: &App, bucket: Bucket, subject: &str) -> Result<()> {
        self.rates.take(app.id, bucket.name(), &format!("{bucket}/{subject}"), app.limits.rate(bucket), 1, self.stamps.now()).await
    }

    /// Run `f` once per (app, key) within the app's `dedup_window_secs`: a repeat gets the first
    /// call's result instead of running again (a repeat while the first still runs waits for it;
    /// a failed call is forgotten, so it can be retried).
    pub async fn once<F, Fut>(&self, app: &App, key: String, f: F) -> Result<serde_json::Value>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<serde_json::Value>>,
    {
        let window = app.limits.dedup_window_secs * 1000;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.stamps.now();
            match self.dedup.claim(app.id, &key, now, now + window).await? {
                Claim::Done(v) => return Ok(v),
                // a repeat while the first still runs waits for it (at most 10 s)
                Claim::Running if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                Claim::Running | Claim::First => break,
            }
        }
        let r = f().await;
        let kept = self.dedup.finish(app.id, &key, r.as_ref().ok(), self.stamps.now() + window).await;
        if let Err(e) = kept {
            tracing::warn!(app = app.id, error = %e, "could not remember a call's result");
        }
        r
    }
}
