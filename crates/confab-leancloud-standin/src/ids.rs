//! Deterministic hashing and LeanCloud-shaped identifiers, times and password hashes.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha512;

/// One round of splitmix64: the mixing step every derived value goes through.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of a few numbers (seed, tag, serial, index …): the source of every generated value.
pub(crate) fn h(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243f_6a88_85a3_08d3, |acc, p| mix(acc ^ mix(*p)))
}

/// 16 pseudo-random bytes from a few numbers.
pub(crate) fn h128(parts: &[u64]) -> [u8; 16] {
    let a = h(parts);
    let b = mix(a ^ 0x5851_f42d_4c95_7f2d);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// A LeanCloud message id: 16 bytes in base64 without padding, 22 characters of
/// `A–Z a–z 0–9 + _` (the documented ids mix `+` and `_`: `4XC_IHK+Ry6CXzIPq_nc7Q`).
pub fn msg_id_from_bytes(bytes: &[u8; 16]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('/', "_")
}

/// A Mongo-style objectId: 24 lowercase hex, the first 8 the creation time in seconds (so ids sort
/// by creation time, as LeanCloud's do), the rest derived from `parts`.
pub fn object_id(created_ms: i64, parts: &[u64]) -> String {
    let secs = (created_ms.max(0) / 1000) as u32;
    let tail = h(parts);
    format!("{secs:08x}{tail:016x}")
}

/// `_Conversation.uniqueId` as confab computes it (`confab-engine` `conv::unique_id`): md5 hex of the
/// sorted, de-duplicated member ids concatenated without a separator (`BillGates`,`SteveJobs` →
/// `6c7b0e5afcae9aa1139a0afa25833dec`, the docs' example).
pub fn unique_id(members: &[String]) -> String {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    hex::encode(Md5::digest(sorted.concat().as_bytes()))
}

/// The id of a service conversation's per-subscriber log: `md5(sysConvId + ":" + clientId)` (the v1
/// REST doc's rule for "one user's messages with a system conversation").
pub fn subscriber_log_id(conv: &str, client: &str) -> String {
    hex::encode(Md5::digest(format!("{conv}:{client}").as_bytes()))
}

/// LeanCloud's `_User` password hash: `hv = SHA-512(salt ‖ password)`, then 512 times
/// `hv = SHA-512(hv)`, stored as standard base64.
pub fn password_hash(salt: &str, password: &str) -> String {
    let mut hv = Sha512::new().chain_update(salt.as_bytes()).chain_update(password.as_bytes()).finalize();
    for _ in 0..512 {
        hv = Sha512::digest(hv);
    }
    STANDARD.encode(hv)
}

/// `n` characters of `[a-z0-9]` (LeanCloud's salts and session tokens look like this).
pub(crate) fn lower_alnum(n: usize, parts: &[u64]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut k = 0u64;
    while out.len() < n {
        let mut v = h(&[h(parts), k]);
        for _ in 0..8 {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[(v % 36) as usize] as char);
            v /= 36;
        }
        k += 1;
    }
    out
}

/// An opaque `scan` cursor: the last objectId's 12 bytes in URL-safe base64 (16 characters, the
/// length of the docs' example cursor `pQRhIrac3AEpLzCA`).
pub(crate) fn scan_cursor(object_id: &str) -> String {
    match hex::decode(object_id) {
        Ok(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        Err(_) => URL_SAFE_NO_PAD.encode(object_id.as_bytes()),
    }
}

/// The objectId a cursor stands for, if it is one of ours.
pub(crate) fn scan_cursor_decode(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    if bytes.len() == 12 {
        Some(hex::encode(bytes))
    } else {
        String::from_utf8(bytes).ok()
    }
}

/// Milliseconds since the epoch as LeanCloud writes dates: `2015-06-21T18:02:52.249Z`.
pub fn iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, mmm) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{mmm:03}Z")
}

/// A LeanCloud `Date` value: `{"__type":"Date","iso":…}`.
pub fn date(ms: i64) -> serde_json::Value {
    serde_json::json!({"__type": "Date", "iso": iso(ms)})
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_matches_the_documented_vector() {
        assert_eq!(
            password_hash("h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2", "password"),
            "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug=="
        );
    }

    #[test]
    fn unique_id_matches_the_documented_example() {
        assert_eq!(unique_id(&["SteveJobs".into(), "BillGates".into()]), "6c7b0e5afcae9aa1139a0afa25833dec");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso(1_434_909_772_249), "2015-06-21T18:02:52.249Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn msg_ids_look_like_leanclouds() {
        for i in 0..1000u64 {
            let id = msg_id_from_bytes(&h128(&[i]));
            assert_eq!(id.len(), 22);
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_'), "{id}");
        }
    }

    #[test]
    fn scan_cursors_round_trip() {
        let id = object_id(1_700_000_000_000, &[1, 2]);
        assert_eq!(id.len(), 24);
        let c = scan_cursor(&id);
        assert_eq!(c.len(), 16);
        assert_eq!(scan_cursor_decode(&c).as_deref(), Some(id.as_str()));
    }
}
