//! Time formats shared by the faces and stores.

use chrono::{DateTime, SecondsFormat, Utc};

/// Wall-clock time in Unix ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// ISO-8601 in UTC with milliseconds, as LeanCloud writes dates: `2020-05-26T06:42:31.482Z`.
pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse an ISO-8601 / RFC 3339 date-time into Unix ms.
pub fn parse_iso(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.timestamp_millis())
}

/// Start of the UTC day containing `ms`.
pub fn utc_day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_590_475_351_482), "2020-05-26T06:42:31.482Z");
        assert_eq!(parse_iso("2020-05-26T06:42:31.482Z"), Some(1_590_475_351_482));
        assert_eq!(parse_iso("2020-05-26T14:42:31.482+08:00"), Some(1_590_475_351_482));
        assert_eq!(parse_iso("yesterday"), None);
    }
}
