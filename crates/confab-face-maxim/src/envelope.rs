//! MaxIM's answer format: HTTP 200 with `{code, message, data}` (code 200 is success), and the
//! one place where engine errors become MaxIM codes.

use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_engine::Error;
use serde_json::{json, Map, Value};

/// Codes from the MaxIM docs (`1xxxx` users, `2xxxx` groups, `4xxxx` apps).
pub mod code {
    pub const OK: i64 = 200;
    pub const NO_SUCH_USER: i64 = 10000;
    pub const BAD_PARAM: i64 = 10002;
    pub const NO_TOKEN: i64 = 10003;
    pub const USER_EXISTS: i64 = 10004;
    pub const BAD_TOKEN: i64 = 10008;
    pub const NO_PERMISSION: i64 = 10010;
    pub const SERVER_ERROR: i64 = 20000;
    pub const NO_SUCH_GROUP: i64 = 20001;
    pub const NOT_MEMBER: i64 = 20002;
    pub const OWNER_CANNOT_LEAVE: i64 = 20004;
    pub const GROUP_FULL: i64 = 20010;
    pub const NEEDS_ADMIN: i64 = 20012;
    pub const NEEDS_OWNER: i64 = 20013;
    pub const ALREADY_MEMBER: i64 = 20017;
    pub const BLOCKED: i64 = 20018;
    pub const NO_SUCH_APP: i64 = 40000;
    /// Not documented by MaxIM (its SDK names the error MessageRateLimitExceeded): confab uses
    /// the HTTP status's number.
    pub const RATE_LIMITED: i64 = 429;
    /// Not documented by MaxIM (no message error codes are): an unknown or foreign message.
    pub const NO_SUCH_MESSAGE: i64 = 30404;
}

#[derive(Debug, Clone, PartialEq)]
pub struct MxError {
    pub code: i64,
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`, beside MaxIM's HTTP 200), on rate limits.
    pub retry_after: Option<u64>,
}

pub type MxResult<T> = Result<T, MxError>;

impl MxError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        MxError { code, message: message.into(), retry_after: None }
    }
    pub fn param(message: impl Into<String>) -> Self {
        MxError::new(code::BAD_PARAM, message)
    }
}

impl From<Error> for MxError {
    fn from(e: Error) -> Self {
        let text = e.to_string();
        let retry_after = match &e {
            Error::RateLimited { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        };
        let c = match e {
            Error::AppNotFound => code::NO_SUCH_APP,
            Error::UserNotFound(_) => code::NO_SUCH_USER,
            Error::UserExists(_) => code::USER_EXISTS,
            Error::BadCredentials => code::BAD_PARAM,
            Error::ConversationNotFound | Error::WrongKind { .. } => code::NO_SUCH_GROUP,
            Error::NotMember => code::NOT_MEMBER,
            Error::ConversationFull { .. } => code::GROUP_FULL,
            Error::Blocked => code::BLOCKED,
            Error::NotAllowed(_) | Error::TooLate { .. } => code::NEEDS_ADMIN,
            Error::NotSender | Error::Muted | Error::Forbidden(_) | Error::Rejected { .. } => code::NO_PERMISSION,
            Error::MessageNotFound => code::NO_SUCH_MESSAGE,
            Error::Invalid(_)
            | Error::MessageTooLarge { .. }
            | Error::TooLarge { .. }
            | Error::TooMany { .. }
            | Error::OverQuota { .. } => code::BAD_PARAM,
            Error::RateLimited { .. } => code::RATE_LIMITED,
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                return MxError::new(code::SERVER_ERROR, "server error");
            }
        };
        MxError { retry_after, ..MxError::new(c, text) }
    }
}

fn body(code: i64, message: Option<String>, data: Value, extra: Map<String, Value>) -> Response {
    let mut o = json!({"code": code, "message": message, "data": data});
    if let Value::Object(m) = &mut o {
        m.extend(extra);
    }
    Json(o).into_response()
}

impl IntoResponse for MxError {
    fn into_response(self) -> Response {
        let retry = self.retry_after.map(|s| [(axum::http::header::RETRY_AFTER, s.to_string())]);
        (retry, body(self.code, Some(self.message), Value::Null, Map::new())).into_response()
    }
}

/// A successful answer: `data`, and the wrapper's extra top-level fields (`msg_ids`, `cursor`…).
pub struct Data(pub Value, pub Map<String, Value>);

impl Data {
    pub fn of(data: Value) -> Data {
        Data(data, Map::new())
    }
    pub fn with(mut self, key: &str, v: Value) -> Data {
        self.1.insert(key.to_string(), v);
        self
    }
}

impl IntoResponse for Data {
    fn into_response(self) -> Response {
        body(code::OK, None, self.0, self.1)
    }
}

pub type Reply = MxResult<Data>;
