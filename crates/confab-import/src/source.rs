//! LeanCloud's REST API, read with the master key while it still answers: conversations and
//! member roles (`/1.1/scan/classes/…`, by objectId), service-conversation subscribers, and
//! every conversation's history (`/1.2/rtm/…/messages`, oldest first, 1,000 a page).
//!
//! LeanCloud limits requests in flight (429 "Too many requests."); a 429, a 5xx or a network
//! error is tried again after a pause (its `Retry-After`, or 1 s doubling to a minute), up to
//! `ATTEMPTS` times, never fatal on the first try. A 401 or 403 is not: the key is wrong.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::ImportError;

/// Tries of one request before the import stops (it resumes from its checkpoints).
const ATTEMPTS: u32 = 8;
const LONGEST_PAUSE: Duration = Duration::from_secs(60);
/// History and scan pages, LeanCloud's largest.
pub const PAGE: usize = 1000;
/// Subscriber pages, LeanCloud's largest.
const SUBSCRIBER_PAGE: usize = 50;

#[derive(Clone)]
pub struct Source {
    base: String,
    app_id: String,
    master_key: String,
    http: reqwest::Client,
    /// The first pause after a failure (tests shorten it).
    pub first_pause: Duration,
}

/// Where a history walk is: after this (timestamp, msg-id).
pub type After = Option<(i64, String)>;

impl Source {
    pub fn new(url: &str, app_id: &str, master_key: &str) -> Result<Source, ImportError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| ImportError::Source(e.to_string()))?;
        Ok(Source {
            base: url.trim_end_matches('/').to_string(),
            app_id: app_id.to_string(),
            master_key: master_key.to_string(),
            http,
            first_pause: Duration::from_secs(1),
        })
    }

    /// One GET, tried again on 429, 5xx and network errors.
    async fn get(&self, path: &str) -> Result<Value, ImportError> {
        let url = format!("{}{path}", self.base);
        let mut pause = self.first_pause;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let r =
                self.http.get(&url).header("X-LC-Id", &self.app_id).header("X-LC-Key", format!("{},master", self.master_key)).send().await;
            let wait = match r {
                Ok(resp) if resp.status().is_success() => {
                    return resp.json().await.map_err(|e| ImportError::Source(format!("GET {path}: the answer is not JSON: {e}")));
                }
                Ok(resp) if matches!(resp.status().as_u16(), 401 | 403) => {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(ImportError::Auth(format!("GET {path}: {body}")));
                }
                Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                    let after =
                        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).map(Duration::from_secs);
                    last = format!("HTTP {}", resp.status().as_u16());
                    after.unwrap_or(pause)
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    return Err(ImportError::Refused { status, what: format!("GET {path}: {body}") });
                }
                Err(e) => {
                    last = e.to_string();
                    pause
                }
            };
            tracing::debug!(%path, attempt, error = %last, "retrying");
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait.min(LONGEST_PAUSE)).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
        Err(ImportError::Source(format!("GET {path}: {last}, {ATTEMPTS} times")))
    }

    /// Whether the URL answers and the keys are right; nothing is written before this passes.
    pub async fn probe(&self) -> Result<(), ImportError> {
        let url = format!("{}/1.1/scan/classes/_Conversation?limit=1", self.base);
        let r = self
            .http
            .get(&url)
            .header("X-LC-Id", &self.app_id)
            .header("X-LC-Key", format!("{},master", self.master_key))
            .send()
            .await
            .map_err(|e| ImportError::Source(format!("{}: {e}", self.base)))?;
        match r.status().as_u16() {
            401 | 403 => Err(ImportError::Auth(format!(
                "{} refused the app id and master key ({}): check --source-app-id and --source-master-key",
                self.base,
                r.text().await.unwrap_or_default()
            ))),
            // a busy source is fine: the import will wait for it
            s if (200..300).contains(&s) || s == 429 || s >= 500 => Ok(()),
            s => Err(ImportError::Source(format!("{} does not answer as LeanCloud's API (HTTP {s} to {url})", self.base))),
        }
    }

    /// One page of a class, by objectId; the cursor of the next, None at the end.
    pub async fn scan(&self, class: &str, cursor: Option<&str>) -> Result<(Vec<Map<String, Value>>, Option<String>), ImportError> {
        let mut path = format!("/1.1/scan/classes/{class}?limit={PAGE}");
        if let Some(c) = cursor {
            path += &format!("&cursor={}", urlencoding::encode(c));
        }
        let v = self.get(&path).await?;
        let rows = v.get("results").and_then(Value::as_array).ok_or_else(|| ImportError::Source(format!("GET {path}: no results")))?;
        let rows = rows.iter().filter_map(|r| r.as_object().cloned()).collect();
        Ok((rows, v.get("cursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_string)))
    }

    /// The next page of a history, oldest first, after `after`.
    pub async fn history(&self, path: &str, after: &After) -> Result<Vec<Value>, ImportError> {
        let mut q = format!("{path}?reversed=true&limit={PAGE}");
        if let Some((ts, id)) = after {
            q += &format!("&timestamp={ts}&msgid={}", urlencoding::encode(id));
        }
        match self.get(&q).await? {
            Value::Array(a) => Ok(a),
            other => Err(ImportError::Source(format!("GET {q}: not an array: {}", crate::clip(&other.to_string())))),
        }
    }

    /// A service conversation's subscribers, every one.
    pub async fn subscribers(&self, conv: &str) -> Result<Vec<String>, ImportError> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let mut path = format!("/1.2/rtm/service-conversations/{}/subscribers?limit={SUBSCRIBER_PAGE}", urlencoding::encode(conv));
            if let Some(last) = out.last() {
                path += &format!("&client_id={}", urlencoding::encode(last));
            }
            let page = match self.get(&path).await? {
                Value::Array(a) => a,
                other => return Err(ImportError::Source(format!("GET {path}: not an array: {}", crate::clip(&other.to_string())))),
            };
            let n = page.len();
            out.extend(page.iter().filter_map(|s| s.get("subscriber").and_then(Value::as_str)).map(str::to_string));
            if n < SUBSCRIBER_PAGE {
                return Ok(out);
            }
        }
    }
}
