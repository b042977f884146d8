//! The one HTTP caller for an app's own code: every hook, callback, webhook and push goes
//! through it, so every call has a deadline, a bounded answer, a bounded number in flight per
//! app (a slow hook server holds up its own app's calls, never another's), and counts in the
//! app's counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_engine::HookStat;
use parking_lot::Mutex;

/// One call.
#[derive(Clone, Debug)]
pub struct Request {
    pub app: i64,
    /// Whose call it is: `leancloud`, `easemob`, `maxim`, `push`.
    pub sink: &'static str,
    /// What it is: the hook, callback or event (the counters' key).
    pub name: String,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body.
    pub body: Vec<u8>,
    /// The deadline of the whole call, answer included.
    pub timeout: Duration,
    /// The longest answer read; a longer one fails the call.
    pub max_answer: usize,
}

/// An answer (any status: what a status means is the sink's to say).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A call that got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The app already has `max_in_flight` calls waiting on its hook servers.
    Busy,
    Timeout,
    Unreachable(String),
    /// The answer was longer than allowed.
    TooLarge,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Busy => write!(f, "too many calls in flight to the app's hook servers"),
            CallError::Timeout => write!(f, "no answer in time"),
            CallError::Unreachable(e) => write!(f, "unreachable: {e}"),
            CallError::TooLarge => write!(f, "the answer is too long"),
        }
    }
}

/// How the caller behaves.
#[derive(Clone, Debug)]
pub struct CallerSettings {
    /// Calls one app may have waiting at once (blocking hooks and outbox deliveries together).
    pub max_in_flight_per_app: usize,
    pub connect_timeout: Duration,
}

impl Default for CallerSettings {
    fn default() -> Self {
        CallerSettings { max_in_flight_per_app: 128, connect_timeout: Duration::from_secs(3) }
    }
}

type StatKey = (i64, &'static str, String);

pub struct Caller {
    http: reqwest::Client,
    settings: CallerSettings,
    in_flight: Mutex<HashMap<i64, usize>>,
    /// Counts since they were last taken (`take_stats`).
    stats: Mutex<HashMap<StatKey, HookStat>>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// One app's slot for a call in flight, given back when dropped.
struct Slot<'a> {
    caller: &'a Caller,
    app: i64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut m = self.caller.in_flight.lock();
        if let Some(n) = m.get_mut(&self.app) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.app);
            }
        }
    }
}

impl Caller {
    pub fn new(settings: CallerSettings, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Caller {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            // a hook server answers where it was asked; a redirect is a wrong URL
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Caller { http, settings, in_flight: Mutex::new(HashMap::new()), stats: Mutex::new(HashMap::new()), clock }
    }

    fn slot(&self, app: i64) -> Option<Slot<'_>> {
        let mut m = self.in_flight.lock();
        let n = m.entry(app).or_default();
        if *n >= self.settings.max_in_flight_per_app {
            return None;
        }
        *n += 1;
        Some(Slot { caller: self, app })
    }

    /// Calls an app has in flight now.
    pub fn in_flight(&self, app: i64) -> usize {
        self.in_flight.lock().get(&app).copied().unwrap_or(0)
    }

    /// POST a JSON body. An answer of any status is `Ok`; it counts as a failure unless 2xx.
    pub async fn post(&self, r: Request) -> Result<Answer, CallError> {
        let Some(_slot) = self.slot(r.app) else {
            self.record(r.app, r.sink, &r.name, 0, true, false);
            return Err(CallError::Busy);
        };
        let started = Instant::now();
        let result = tokio::time::timeout(r.timeout, self.exchange(&r)).await.unwrap_or(Err(CallError::Timeout));
        let ms = started.elapsed().as_millis() as u64;
        let failed = !matches!(&result, Ok(a) if a.ok());
        self.record(r.app, r.sink, &r.name, ms, failed, result.as_ref().err() == Some(&CallError::Timeout));
        result
    }

    async fn exchange(&self, r: &Request) -> Result<Answer, CallError> {
        let mut req = self.http.post(&r.url).header("content-type", "application/json").body(r.body.clone());
        for (k, v) in &r.headers {
            req = req.header(*k, v);
        }
        let mut resp = req.send().await.map_err(|e| CallError::Unreachable(without_url(e)))?;
        let status = resp.status().as_u16();
        if resp.content_length().is_some_and(|n| n as usize > r.max_answer) {
            return Err(CallError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| CallError::Unreachable(without_url(e)))? {
            if body.len() + chunk.len() > r.max_answer {
                return Err(CallError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body: body.into() })
    }

    /// Make a call after the fact whose answer means nothing but its status (a webhook, a
    /// relay): any 2xx is made; anything else is tried again later. `who` names the receiver
    /// in the error kept with the item.
    pub async fn deliver(&self, r: Request, who: &str) -> crate::outbox::Delivery {
        use crate::outbox::Delivery;
        match self.post(r).await {
            Ok(a) if a.ok() => Delivery::done(),
            Ok(a) => Delivery::retry(format!("{who} answered {}", a.status)),
            Err(e) => Delivery::retry(e.to_string()),
        }
    }

    /// Count one call (for a 2xx answer the sink found unusable: `failed`).
    pub fn record(&self, app: i64, sink: &'static str, name: &str, ms: u64, failed: bool, timed_out: bool) {
        let now = (self.clock)();
        let mut stats = self.stats.lock();
        let s = stats.entry((app, sink, name.to_string())).or_insert_with(|| HookStat {
            app,
            sink: sink.to_string(),
            name: name.to_string(),
            ..Default::default()
        });
        s.record(ms, failed, timed_out);
        s.updated_at = now;
    }

    /// A call that was answered 2xx, counted as a success, turned out unusable (a malformed
    /// answer): count it as failed.
    pub fn answer_unusable(&self, app: i64, sink: &'static str, name: &str) {
        let mut stats = self.stats.lock();
        if let Some(s) = stats.get_mut(&(app, sink, name.to_string())) {
            s.failures += 1;
        }
    }

    /// The counts since the last take, to be added to the store's.
    pub fn take_stats(&self) -> Vec<HookStat> {
        std::mem::take(&mut *self.stats.lock()).into_values().collect()
    }
}

/// A transport error's text without the URL (which may carry a secret in its query).
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad answer body"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
