//! LeanCloud's error format, `{"code": n, "error": "…"}` with an HTTP status, and the one place
//! where engine errors become it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_engine::model::ConvKind;
use confab_engine::{Error, Refused};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct LcError {
    pub status: StatusCode,
    pub code: i64,
    pub error: String,
    /// Seconds to wait before retrying (`Retry-After`), on rate-limit answers.
    pub retry_after: Option<u64>,
}

pub type LcResult<T> = Result<T, LcError>;

impl LcError {
    pub fn new(status: StatusCode, code: i64, error: impl Into<String>) -> Self {
        LcError { status, code, error: error.into(), retry_after: None }
    }
    pub fn unauthorized() -> Self {
        LcError::new(StatusCode::UNAUTHORIZED, 401, "Unauthorized.")
    }
    /// An app key used where the master key is needed.
    pub fn master_required() -> Self {
        LcError::new(StatusCode::FORBIDDEN, 119, "That operation isn't allowed for clients. The master key is required.")
    }
    /// A bad parameter (LeanCloud's catch-all code 1).
    pub fn param(msg: impl Into<String>) -> Self {
        LcError::new(StatusCode::BAD_REQUEST, 1, msg)
    }
    pub fn missing(name: &str) -> Self {
        LcError::param(format!("Missing required parameter '{name}'."))
    }
    pub fn wrong_type(name: &str, expected: &str) -> Self {
        LcError::new(StatusCode::BAD_REQUEST, 111, format!("Invalid value type for '{name}': expected {expected}."))
    }
    pub fn malformed_json() -> Self {
        LcError::new(StatusCode::BAD_REQUEST, 107, "Malformed json object. A json dictionary is expected.")
    }
    pub fn too_large() -> Self {
        LcError::new(StatusCode::PAYLOAD_TOO_LARGE, 413, "Payload Too Large.")
    }
    pub fn conversation_not_found() -> Self {
        LcError::new(StatusCode::NOT_FOUND, 4303, "CONVERSATION_NOT_FOUND: Conversation not found.")
    }
    pub fn message_not_found() -> Self {
        LcError::new(StatusCode::NOT_FOUND, 4404, "MESSAGE_NOT_FOUND: Message not found.")
    }
    pub fn signature_failed() -> Self {
        LcError::new(StatusCode::FORBIDDEN, 4302, "CONVERSATION_SIGNATURE_FAILED: Signature verification failed.")
    }
    pub fn invalid_session() -> Self {
        LcError::new(StatusCode::BAD_REQUEST, 211, "Could not find user.")
    }
}

impl From<Error> for LcError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        match e {
            Error::AppNotFound | Error::BadCredentials => LcError::unauthorized(),
            Error::ConversationNotFound => LcError::conversation_not_found(),
            Error::WrongKind { expected } => match expected {
                ConvKind::Chatroom => LcError::new(S::BAD_REQUEST, 4316, "TRANSIENT_CONVERSATION_REQUIRED: Not a chat room."),
                ConvKind::Service => LcError::new(S::BAD_REQUEST, 4313, "SYSTEM_CONVERSATION_REQUIRED: Not a service conversation."),
                _ => LcError::new(S::BAD_REQUEST, 4314, "NORMAL_CONVERSATION_REQUIRED: Not a normal conversation."),
            },
            Error::MessageNotFound => LcError::message_not_found(),
            Error::UserNotFound(_) => LcError::new(S::BAD_REQUEST, 211, "Could not find user."),
            Error::UserExists(_) => LcError::new(S::BAD_REQUEST, 202, "Username has already been taken."),
            Error::NotSender => LcError::new(S::FORBIDDEN, 4403, "MESSAGE_OWNERSHIP_REQUIRED: from_client is not the message's sender."),
            Error::NotMember => LcError::new(S::BAD_REQUEST, 4317, "CONVERSATION_MEMBERSHIP_REQUIRED: Not a member of the conversation."),
            Error::Muted => LcError::new(S::FORBIDDEN, 4315, "CONVERSATION_BLACKLISTED: Muted in the conversation."),
            Error::Blocked => LcError::new(S::FORBIDDEN, 4315, "CONVERSATION_BLACKLISTED: Blocked in the conversation."),
            Error::NotAllowed(m) => LcError::new(S::FORBIDDEN, 4320, format!("CONVERSATION_OPERATION_UNAUTHORIZED: {m}")),
            e @ Error::TooLate { .. } => LcError::new(S::FORBIDDEN, 4320, format!("CONVERSATION_OPERATION_UNAUTHORIZED: {e}")),
            Error::ConversationFull { max } => LcError::new(S::BAD_REQUEST, 4304, format!("CONVERSATION_FULL: At most {max} members.")),
            Error::Forbidden(m) => LcError::new(S::FORBIDDEN, 4308, format!("CONVERSATION_NOT_ALLOWED: {m}")),
            Error::Invalid(m) => LcError::param(m),
            Error::MessageTooLarge { max } => {
                LcError::new(S::PAYLOAD_TOO_LARGE, 4109, format!("FRAME_TOO_LONG: Message exceeds {max} bytes (push data included)."))
            }
            e @ (Error::TooLarge { .. } | Error::TooMany { .. } | Error::OverQuota { .. }) => LcError::param(capitalize(&e.to_string())),
            Error::RateLimited { retry_after_secs, .. } => {
                LcError { retry_after: Some(retry_after_secs), ..LcError::new(S::TOO_MANY_REQUESTS, 429, "Too many requests.") }
            }
            Error::Rejected { action, detail, failed, .. } => {
                let why =
                    if failed { "the app's hook failed".to_string() } else { detail.unwrap_or_else(|| "Rejected by the app.".into()) };
                let (code, name) = match action {
                    Refused::Message => (4402, "MESSAGE_REJECTED_BY_APP"),
                    Refused::Patch => (4405, "MESSAGE_UPDATE_REJECTED_BY_APP"),
                    Refused::Conversation => (4305, "CONVERSATION_REJECTED_BY_APP"),
                    // `_rtmClientSign`: LeanEngine's code for a refusal by cloud code
                    Refused::SignIn => return LcError::new(S::FORBIDDEN, 142, format!("Cloud Code validation failed: {why}.")),
                };
                LcError::new(S::FORBIDDEN, code, format!("{name}: {why}"))
            }
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                LcError::new(S::INTERNAL_SERVER_ERROR, 1, "Internal server error. No information available.")
            }
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

impl IntoResponse for LcError {
    fn into_response(self) -> Response {
        let retry = self.retry_after.map(|s| [(axum::http::header::RETRY_AFTER, s.to_string())]);
        (self.status, retry, Json(json!({"code": self.code, "error": self.error}))).into_response()
    }
}
