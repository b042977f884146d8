//! Where an app's own code is reached: its hook servers and its push relay. Part of an app's
//! settings (`Limits::hooks`, `Limits::push`), set like every limit with
//! `confab app set NAME hooks.leancloud.url=… push.webhook_url=…`; empty means off.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Error;

/// The app's hook servers, one per vendor's way of calling them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookSettings {
    pub leancloud: LeanCloudHooks,
    pub easemob: EasemobHooks,
    pub maxim: MaximHooks,
}

/// LeanCloud IM hooks: a LeanEngine-compatible server (`POST {url}/1.1/functions/<hook>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeanCloudHooks {
    /// The hook server's base URL; empty: no hooks.
    pub url: String,
    /// A failed blocking hook refuses the operation instead of letting it through (LeanCloud's
    /// console switch; off by default: fail open).
    pub fail_on_error: bool,
    /// How long a blocking hook may take, in ms (LeanCloud does not document its own).
    pub timeout_ms: u64,
    /// The service-conversation web hook (服务号消息回调): users' messages to service
    /// conversations are POSTed there; empty: none.
    pub service_url: String,
}

impl Default for LeanCloudHooks {
    fn default() -> Self {
        LeanCloudHooks { url: String::new(), fail_on_error: false, timeout_ms: 5000, service_url: String::new() }
    }
}

/// Easemob message callbacks: one pre-send rule and one post-send rule, sharing the secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EasemobHooks {
    /// Post-send callbacks (messages and events); empty: none.
    pub url: String,
    /// The rule's secret for the `security` signature.
    pub secret: String,
    /// Pre-send callback; empty: none.
    pub pre_send_url: String,
    /// How long a pre-send answer is waited for, in ms (Easemob: 200).
    pub pre_send_wait_ms: u64,
    /// What happens when the pre-send answer is late or malformed: `pass` or `block`.
    pub pre_send_policy: String,
    /// Whether the sender is told of a block (报错); otherwise they believe the message was sent.
    pub pre_send_report: bool,
    /// Post-send: also one `chat_offline` callback per offline recipient.
    pub post_send_offline: bool,
}

impl Default for EasemobHooks {
    fn default() -> Self {
        EasemobHooks {
            url: String::new(),
            secret: String::new(),
            pre_send_url: String::new(),
            pre_send_wait_ms: 200,
            pre_send_policy: "pass".into(),
            pre_send_report: true,
            post_send_offline: true,
        }
    }
}

/// MaxIM message subscription: every message POSTed to `url` with the header `signature`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaximHooks {
    pub url: String,
    pub secret: String,
}

/// The offline push hand-off: confab speaks to no vendor push service; it POSTs each push to
/// the app's relay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushSettings {
    /// Where pushes go; empty: no pushes.
    pub webhook_url: String,
    /// The HMAC-SHA256 key of the `X-Confab-Signature` header; empty: the app's LeanCloud
    /// master key.
    pub secret: String,
    /// The app's default push (LeanCloud's console template), with `${convId}`,
    /// `${timestamp}` and `${fromClientId}` substituted.
    pub template: Value,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            webhook_url: String::new(), secret: String::new(), template: json!({"alert": "您有新的消息", "badge": "Increment"})
        }
    }
}

/// The most a secret may hold, in bytes.
const SECRET_MAX: usize = 256;

fn check_url(key: &str, url: &str) -> Result<(), Error> {
    if url.is_empty() {
        return Ok(());
    }
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
    if !host_ok || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!("{key} must be an http:// or https:// URL (or empty to turn it off), not '{url}'")));
    }
    Ok(())
}

fn check_secret(key: &str, s: &str) -> Result<(), Error> {
    if s.len() > SECRET_MAX || s.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{key} must be at most {SECRET_MAX} printable characters")));
    }
    Ok(())
}

fn check_range(key: &str, v: u64, min: u64, max: u64) -> Result<(), Error> {
    if !(min..=max).contains(&v) {
        return Err(Error::invalid(format!("{key} must be between {min} and {max}")));
    }
    Ok(())
}

impl HookSettings {
    /// The values `confab app set` refuses.
    pub fn validate(&self) -> Result<(), Error> {
        check_url("hooks.leancloud.url", &self.leancloud.url)?;
        check_url("hooks.leancloud.service_url", &self.leancloud.service_url)?;
        check_range("hooks.leancloud.timeout_ms", self.leancloud.timeout_ms, 10, 60_000)?;
        check_url("hooks.easemob.url", &self.easemob.url)?;
        check_url("hooks.easemob.pre_send_url", &self.easemob.pre_send_url)?;
        check_secret("hooks.easemob.secret", &self.easemob.secret)?;
        check_range("hooks.easemob.pre_send_wait_ms", self.easemob.pre_send_wait_ms, 10, 60_000)?;
        if !matches!(self.easemob.pre_send_policy.as_str(), "pass" | "block") {
            return Err(Error::invalid("hooks.easemob.pre_send_policy must be 'pass' or 'block'"));
        }
        check_url("hooks.maxim.url", &self.maxim.url)?;
        check_secret("hooks.maxim.secret", &self.maxim.secret)?;
        Ok(())
    }
}

impl PushSettings {
    pub fn validate(&self) -> Result<(), Error> {
        check_url("push.webhook_url", &self.webhook_url)?;
        check_secret("push.secret", &self.secret)?;
        if !self.template.is_object() {
            return Err(Error::invalid("push.template must be a JSON object"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_or_empty() {
        assert!(check_url("k", "").is_ok());
        assert!(check_url("k", "http://127.0.0.1:3000").is_ok());
        assert!(check_url("k", "https://hooks.example.com/base").is_ok());
        for bad in ["ftp://x", "127.0.0.1:3000", "http://", "http:///path", "http://a b"] {
            assert!(check_url("k", bad).is_err(), "{bad} refused");
        }
    }

    #[test]
    fn defaults_are_the_vendors() {
        let h = HookSettings::default();
        assert_eq!(h.easemob.pre_send_wait_ms, 200);
        assert_eq!(h.easemob.pre_send_policy, "pass");
        assert!(!h.leancloud.fail_on_error);
        assert!(h.validate().is_ok());
        assert!(PushSettings::default().validate().is_ok());
    }
}
