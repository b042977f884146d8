//! The outbox runner: makes the calls the engine kept (`confab_engine::hooks`), each through the
//! sink that owns its kind, retrying with back-off until it is made or runs out of attempts
//! (then it is kept as failed, visible and requeueable: `confab app hooks NAME`). Items are
//! claimed with a lease, fairly across apps, so a restart (or, later, another node) picks up
//! what was not finished, and an app whose hook server is slow only waits on itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_engine::model::{App, AppLookup};
use confab_engine::{Engine, OutboxItem};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};

use crate::caller::Caller;

/// What became of one attempt.
#[derive(Debug)]
pub enum Delivery {
    /// Made; these calls follow from its answer (the push that `_receiversOffline` shaped).
    Done { then: Vec<OutboxItem> },
    /// Not made now; try again (after at least `after`, else the back-off).
    Retry { error: String, after: Option<Duration> },
    /// Cannot be made, ever (the app is gone, the item is malformed): kept as failed.
    Fail { error: String },
}

impl Delivery {
    pub fn done() -> Delivery {
        Delivery::Done { then: vec![] }
    }
    pub fn retry(error: impl Into<String>) -> Delivery {
        Delivery::Retry { error: error.into(), after: None }
    }
}

/// Who makes the outbox's calls of one kind (`OutboxItem::sink`).
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Make the call. A sink whose app no longer has it configured answers `done` (nothing to do).
    async fn deliver(&self, app: &App, item: &OutboxItem) -> Delivery;
}

#[derive(Clone, Debug)]
pub struct OutboxSettings {
    /// How often it looks for due items when nobody rang.
    pub poll: Duration,
    /// How long a claimed item is held before another claimer may take it (longer than any call).
    pub lease: Duration,
    /// Deliveries in flight, in all and per app.
    pub in_flight: usize,
    pub in_flight_per_app: usize,
    /// Attempts before an item is kept as failed; the waits between them double from
    /// `first_retry` up to `max_retry` (the defaults ride out about five hours of a hook server
    /// being down).
    pub max_attempts: u32,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How often the counters are added to the store's.
    pub stats_every: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            in_flight: 256,
            in_flight_per_app: 16,
            max_attempts: 16,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(3600),
            stats_every: Duration::from_secs(5),
        }
    }
}

impl OutboxSettings {
    /// The wait after the `attempts`th failed attempt.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self.first_retry.saturating_mul(1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(self.max_retry)
    }
}

/// The running outbox.
pub struct Outbox {
    engine: Arc<Engine>,
    sinks: HashMap<String, Arc<dyn Sink>>,
    caller: Arc<Caller>,
    settings: OutboxSettings,
    /// Deliveries in flight, by app.
    busy: Mutex<HashMap<i64, usize>>,
    /// The items being delivered (id → attempts so far): released at a stop that cuts them short.
    claimed: Mutex<HashMap<i64, u32>>,
    /// Rung when a delivery ends (there is room to claim more).
    freed: Notify,
}

/// Stops the runner when told.
pub struct OutboxHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    outbox: Arc<Outbox>,
}

impl OutboxHandle {
    /// Stop claiming; wait for deliveries in flight (up to `grace`) and flush the counters.
    /// Deliveries still going at the deadline are given up and their items released, due at
    /// once: the next start makes them again instead of waiting out their leases.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            self.outbox.release().await;
            self.outbox.flush_stats().await;
        }
    }
}

impl Outbox {
    pub fn new(engine: Arc<Engine>, caller: Arc<Caller>, sinks: HashMap<String, Arc<dyn Sink>>, settings: OutboxSettings) -> Arc<Outbox> {
        Arc::new(Outbox {
            engine,
            sinks,
            caller,
            settings,
            busy: Mutex::new(HashMap::new()),
            claimed: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        })
    }

    pub fn start(self: &Arc<Self>) -> OutboxHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.clone().run(stopped));
        OutboxHandle { stop, task, outbox: self.clone() }
    }

    /// Give up the deliveries in flight: their items are due again now, attempts unchanged.
    async fn release(&self) {
        let claimed: Vec<(i64, u32)> = self.claimed.lock().drain().collect();
        let now = self.engine.now();
        for (id, attempts) in claimed {
            if let Err(e) = self.engine.app_code().hook_call_not_made(id, attempts, now, "interrupted by a shutdown", false).await {
                tracing::warn!(error = %e, "could not release a hook call cut short by a shutdown");
            }
        }
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel::<i64>();
        let flusher = tokio::spawn(flush_done(self.engine.clone(), done_rx));
        let mut stats = tokio::time::interval(self.settings.stats_every);
        loop {
            if *stopped.borrow() {
                break;
            }
            self.claim_and_start(&done_tx).await;
            tokio::select! {
                _ = self.engine.app_code().outbox_bell().notified() => {}
                _ = self.freed.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = stats.tick() => self.flush_stats().await,
                _ = stopped.changed() => {}
            }
        }
        // let deliveries in flight end; what does not end in time is due again after its lease
        while self.busy.lock().values().sum::<usize>() > 0 {
            tokio::select! {
                _ = self.freed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        drop(done_tx);
        let _ = flusher.await;
        self.flush_stats().await;
    }

    async fn flush_stats(&self) {
        let stats = self.caller.take_stats();
        if stats.is_empty() {
            return;
        }
        if let Err(e) = self.engine.app_code().add_hook_stats(&stats).await {
            tracing::warn!(error = %e, "could not keep the hook counters");
        }
    }

    /// Claim what there is room for, and start delivering it.
    async fn claim_and_start(self: &Arc<Self>, done: &mpsc::UnboundedSender<i64>) {
        loop {
            let (room, full): (usize, Vec<i64>) = {
                let busy = self.busy.lock();
                let total: usize = busy.values().sum();
                let full = busy.iter().filter(|(_, n)| **n >= self.settings.in_flight_per_app).map(|(a, _)| *a).collect();
                (self.settings.in_flight.saturating_sub(total), full)
            };
            if room == 0 {
                return;
            }
            let now = self.engine.now();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            let items = match self.engine.app_code().claim_hook_calls(now, lease_until, self.settings.in_flight_per_app, room, &full).await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the outbox");
                    return;
                }
            };
            if items.is_empty() {
                return;
            }
            for item in items {
                *self.busy.lock().entry(item.app).or_default() += 1;
                self.claimed.lock().insert(item.id, item.attempts);
                let (me, done) = (self.clone(), done.clone());
                tokio::spawn(async move {
                    let (app, id) = (item.app, item.id);
                    me.deliver(item, &done).await;
                    me.claimed.lock().remove(&id);
                    let mut busy = me.busy.lock();
                    if let Some(n) = busy.get_mut(&app) {
                        *n -= 1;
                        if *n == 0 {
                            busy.remove(&app);
                        }
                    }
                    drop(busy);
                    me.freed.notify_one();
                });
            }
        }
    }

    async fn deliver(&self, item: OutboxItem, done: &mpsc::UnboundedSender<i64>) {
        let outcome = match (self.sinks.get(&item.sink), self.engine.apps().find_app(&AppLookup::Id(item.app)).await) {
            (None, _) => Delivery::Fail { error: format!("nobody makes '{}' calls", item.sink) },
            (_, Ok(None)) => Delivery::Fail { error: "the app is gone".into() },
            (_, Err(e)) => Delivery::Retry { error: e.to_string(), after: None },
            (Some(sink), Ok(Some(app))) => sink.deliver(&app, &item).await,
        };
        let result = match outcome {
            Delivery::Done { mut then } => {
                if !then.is_empty() {
                    let now = self.engine.now();
                    for t in &mut then {
                        (t.id, t.app, t.created_at, t.next_at) = (self.engine.next_id(), item.app, now, now);
                    }
                    if let Err(e) = self.engine.app_code().keep_hook_calls(&then).await {
                        // the item stays (its lease lapses) and is made again, follow-ups and all
                        tracing::warn!(app = item.app, error = %e, "could not keep follow-up calls");
                        return;
                    }
                }
                let _ = done.send(item.id);
                return;
            }
            Delivery::Retry { error, after } => {
                let attempts = item.attempts + 1;
                let failed = attempts >= self.settings.max_attempts;
                let wait = after.unwrap_or_default().max(self.settings.backoff(attempts));
                if failed {
                    tracing::warn!(app = item.app, sink = item.sink, name = item.name, attempts, error, "a hook call failed for good");
                }
                self.engine
                    .app_code()
                    .hook_call_not_made(item.id, attempts, self.engine.now() + wait.as_millis() as i64, &error, failed)
                    .await
            }
            Delivery::Fail { error } => {
                tracing::warn!(app = item.app, sink = item.sink, name = item.name, error, "a hook call cannot be made");
                self.engine.app_code().hook_call_not_made(item.id, item.attempts + 1, self.engine.now(), &error, true).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(app = item.app, error = %e, "could not record a hook call's outcome");
        }
    }
}

/// Forget made items, many at a time.
async fn flush_done(engine: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<i64>) {
    while let Some(first) = rx.recv().await {
        let mut ids = vec![first];
        while let Ok(id) = rx.try_recv() {
            ids.push(id);
            if ids.len() >= 512 {
                break;
            }
        }
        if let Err(e) = engine.app_code().hook_calls_made(&ids).await {
            // they are made again when their leases lapse: at least once, never lost
            tracing::warn!(error = %e, "could not forget made hook calls");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = OutboxSettings::default();
        assert_eq!(s.backoff(1), Duration::from_secs(1));
        assert_eq!(s.backoff(2), Duration::from_secs(2));
        assert_eq!(s.backoff(5), Duration::from_secs(16));
        assert_eq!(s.backoff(13), Duration::from_secs(3600));
        assert_eq!(s.backoff(40), Duration::from_secs(3600));
        let total: u64 = (1..s.max_attempts).map(|a| s.backoff(a).as_secs()).sum();
        assert!((4 * 3600..6 * 3600).contains(&total), "about five hours of waiting before an item fails: {total} s");
    }
}
