//! The app's-code service: the app's hooks (set once by the server), the outbox their calls wait
//! in and the runner that makes them (`confab-hooks`), the hooks' report and counters, and the
//! sign-in question asked of them. The hook types themselves live in `hooks.rs`.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{Refused, Result};
use crate::hooks::{AppNote, Before, Hooks, OutboxItem, Verdict};
use crate::ids::Stamps;
use crate::model::{App, User};
use crate::store::{HookStat, Store};
use crate::teller::Teller;

/// What an app's hooks did: calls waiting to be made, calls that failed for good (the oldest
/// first), and the counters of every call made.
#[derive(Clone, Debug, Serialize)]
pub struct HookReport {
    pub pending: i64,
    pub failed: i64,
    pub failed_items: Vec<OutboxItem>,
    pub stats: Vec<HookStat>,
}

/// The app's-code service: setting the app's hooks, running their outbox (claim, keep, done,
/// retry), their report and counters, and asking them whether a user may sign in. Built by
/// `Engine::new`, reached as `engine.app_code()`.
///
/// It holds only what it uses:
/// * `store`: the outbox (`outbox_*`) and the hook counters (`hook_stats*`);
/// * `stamps`: the engine's clock (when failed calls are due again);
/// * `teller`: the hooks (their shared `OnceLock`, set here), the outbox's bell, and asking the
///   hooks before an action.
pub struct AppCode {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) stamps: Stamps,
    pub(crate) teller: Teller,
}

impl AppCode {
    /// Let the app's own code take part from now on (once; later calls are ignored).
    pub fn set_hooks(&self, hooks: Arc<dyn Hooks>) {
        let _ = self.teller.hooks.set(hooks);
    }

    /// The app's code; `NoHooks` until the server sets it.
    pub fn hooks(&self) -> &dyn Hooks {
        self.teller.hooks()
    }

    /// Rung whenever calls are put in the outbox.
    pub fn outbox_bell(&self) -> &tokio::sync::Notify {
        &self.teller.bell
    }

    /// An app's hook calls: what waits, what failed (at most `limit` listed), the counters.
    pub async fn hook_report(&self, app: &App, limit: usize) -> Result<HookReport> {
        let (pending, failed) = self.store.outbox_counts(app.id).await?;
        let failed_items = self.store.outbox_list(app.id, true, limit).await?;
        let stats = self.store.hook_stats(app.id).await?;
        Ok(HookReport { pending, failed, failed_items, stats })
    }

    /// Claim the calls due at `now` for a runner (`Store::outbox_claim`): each is due again at
    /// `lease_until` should the runner die; at most `per_app` of one app and `limit` in all,
    /// none of the apps in `skip`.
    pub async fn claim_hook_calls(
        &self,
        now: i64,
        lease_until: i64,
        per_app: usize,
        limit: usize,
        skip: &[i64],
    ) -> Result<Vec<OutboxItem>> {
        self.store.outbox_claim(now, lease_until, per_app, limit, skip).await
    }

    /// Keep calls to make later (follow-ups of a call that was made).
    pub async fn keep_hook_calls(&self, items: &[OutboxItem]) -> Result<()> {
        self.store.outbox_add(items).await?;
        self.teller.bell.notify_one();
        Ok(())
    }

    /// These calls were made: forget them.
    pub async fn hook_calls_made(&self, ids: &[i64]) -> Result<()> {
        self.store.outbox_done(ids).await
    }

    /// A call was not made: due again at `next_at`, or (`failed`) kept as failed.
    pub async fn hook_call_not_made(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
        self.store.outbox_retry(id, attempts, next_at, error, failed).await
    }

    /// Add to the apps' hook counters.
    pub async fn add_hook_stats(&self, stats: &[HookStat]) -> Result<()> {
        self.store.hook_stats_add(stats).await
    }

    /// Try an app's failed hook calls again, from their first attempt; how many.
    pub async fn retry_failed_hooks(&self, app: &App) -> Result<u64> {
        let n = self.store.outbox_requeue_failed(app.id, self.stamps.now()).await?;
        self.teller.bell.notify_one();
        Ok(n)
    }

    /// May `user`, known by the session `session`, be signed in to realtime? The app's hooks
    /// say (`Error::Rejected` with `Refused::SignIn` when not).
    pub async fn may_sign_in(&self, app: &App, user: &User, session: &str) -> Result<()> {
        match self.teller.ask(app, Some(Before::SignIn { user, session })).await? {
            Verdict::Vanish => Err(AppNote::default().refusing(Refused::SignIn)),
            _ => Ok(()),
        }
    }
}
