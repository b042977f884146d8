//! LeanCloud signatures: HMAC-SHA1 keyed with the master key, lowercase hex.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use confab_engine::model::LeanCloudKeys;

use crate::extract::ct_eq;

/// How long a signature stays valid.
pub const VALIDITY_MS: i64 = 6 * 3600 * 1000;

pub fn hmac_sha1_hex(key: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A signature timestamp in ms; values below 10^12 are taken as seconds (old docs and demos
/// sign with seconds).
pub fn ts_ms(ts: i64) -> i64 {
    if ts < 1_000_000_000_000 {
        ts * 1000
    } else {
        ts
    }
}

/// Check a signature over `msg` (HMAC-SHA1 with the master key) made at `ts` (ms or s), valid for
/// six hours.
pub fn check(master_key: &str, msg: &str, signature: &str, ts: i64, now: i64) -> bool {
    (now - ts_ms(ts)).abs() <= VALIDITY_MS && ct_eq(&hmac_sha1_hex(master_key, msg), signature)
}

/// The login signature: `appid:clientid::timestamp:nonce`.
pub fn login(master_key: &str, app_id: &str, client_id: &str, ts: i64, nonce: &str) -> String {
    hmac_sha1_hex(master_key, &format!("{app_id}:{client_id}::{ts}:{nonce}"))
}

/// The signature parameters of a history query.
pub struct HistorySignature<'a> {
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub ts: &'a str,
    pub signature: &'a str,
}

/// Check a history query signature. The documented string is
/// `appid:client_id:convid:nonce:signature_ts`; the official demo signs
/// `appid:client_id:convid:signature_ts:nonce`, so both are accepted. Valid for six hours.
pub fn history_ok(keys: &LeanCloudKeys, conv: &str, h: &HistorySignature, now: i64) -> bool {
    let Ok(t) = h.ts.parse::<i64>() else { return false };
    if (now - ts_ms(t)).abs() > VALIDITY_MS {
        return false;
    }
    let (app, client, nonce, ts) = (&keys.app_id, h.client_id, h.nonce, h.ts);
    [format!("{app}:{client}:{conv}:{nonce}:{ts}"), format!("{app}:{client}:{conv}:{ts}:{nonce}")]
        .iter()
        .any(|m| ct_eq(&hmac_sha1_hex(&keys.master_key, m), h.signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hmac_sha1_vector() {
        // RFC 2202 test case 2
        assert_eq!(hmac_sha1_hex("Jefe", "what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    fn ok(keys: &LeanCloudKeys, conv: &str, ts: &str, signature: &str, now: i64) -> bool {
        history_ok(keys, conv, &HistorySignature { client_id: "bob", nonce: "n1", ts, signature }, now)
    }

    #[test]
    fn history_signature_orders_and_expiry() {
        let keys = LeanCloudKeys { app_id: "app".into(), app_key: "ak".into(), master_key: "mk".into(), hook_key: "hk".into() };
        let now = 1_700_000_000_000;
        let ts = now.to_string();
        let doc = hmac_sha1_hex("mk", &format!("app:bob:42:n1:{ts}"));
        let demo = hmac_sha1_hex("mk", &format!("app:bob:42:{ts}:n1"));
        assert!(ok(&keys, "42", &ts, &doc, now));
        assert!(ok(&keys, "42", &ts, &demo, now));
        assert!(!ok(&keys, "43", &ts, &doc, now));
        assert!(!ok(&keys, "42", &ts, &doc, now + VALIDITY_MS + 1));
        let secs = (now / 1000).to_string();
        assert!(ok(&keys, "42", &secs, &hmac_sha1_hex("mk", &format!("app:bob:42:n1:{secs}")), now));
    }
}
