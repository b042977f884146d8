//! Easemob's answers: the Usergrid-style success envelope (`action`, `entities`/`data`, …), the
//! error envelope `{error, exception, timestamp, duration, error_description}`, and the one place
//! where engine errors become Easemob errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_engine::{Error, Quota};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct EmError {
    pub status: StatusCode,
    pub error: String,
    pub exception: String,
    pub description: String,
    /// Seconds to wait before retrying (`Retry-After`), on rate-limit answers.
    pub retry_after: Option<u64>,
}

pub type EmResult<T> = Result<T, EmError>;

impl EmError {
    pub fn new(status: StatusCode, error: &str, exception: &str, description: impl Into<String>) -> Self {
        EmError { status, error: error.into(), exception: exception.into(), description: description.into(), retry_after: None }
    }
    pub fn illegal(description: impl Into<String>) -> Self {
        EmError::new(StatusCode::BAD_REQUEST, "illegal_argument", "java.lang.IllegalArgumentException", description)
    }
    pub fn invalid_parameter(description: impl Into<String>) -> Self {
        EmError::new(StatusCode::BAD_REQUEST, "invalid_parameter", "com.easemob.group.exception.InvalidParameterException", description)
    }
    pub fn bad_body() -> Self {
        EmError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_body",
            "InvalidRequestBodyException",
            "Request body is invalid. Please check body is correct.",
        )
    }
    pub fn json_parse(detail: impl Into<String>) -> Self {
        EmError::new(StatusCode::BAD_REQUEST, "json_parse", "com.fasterxml.jackson.core.JsonParseException", detail)
    }
    /// No token, or an expired one.
    pub fn unauthorized() -> Self {
        EmError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "EasemobSecurityException",
            "Unable to authenticate due to expired access token",
        )
    }
    /// A token confab did not issue, or one of another app.
    pub fn bad_token() -> Self {
        EmError::new(
            StatusCode::UNAUTHORIZED,
            "auth_bad_access_token",
            "EasemobSecurityException",
            "Unable to authenticate due to corrupt access token",
        )
    }
    /// A user token where the app token is needed.
    pub fn admin_required() -> Self {
        EmError::new(StatusCode::UNAUTHORIZED, "unauthorized", "EasemobSecurityException", "No admin user access authorized")
    }
    pub fn user_not_found() -> Self {
        EmError::new(StatusCode::NOT_FOUND, "service_resource_not_found", "UserNotFoundException", "Service resource not found")
    }
    pub fn forbidden(description: impl Into<String>) -> Self {
        EmError::new(StatusCode::FORBIDDEN, "forbidden_op", "com.easemob.group.exception.ForbiddenOpException", description)
    }
    pub fn exceed_limit(description: impl Into<String>) -> Self {
        EmError::new(StatusCode::FORBIDDEN, "exceed_limit", "com.easemob.group.exception.ExceedLimitException", description)
    }
    /// A plan quota passed (`Error::OverQuota`): the app's users are Easemob's edition limit
    /// (429); groups and chat rooms name the app key (`org#app`) when the call knows it.
    pub fn over_quota(quota: &Quota, app_key: Option<(&str, &str)>) -> Self {
        let key = app_key.map(|(org, app)| format!("appKey:{org}#{app} ")).unwrap_or_default();
        match quota {
            Quota::Users => EmError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "resource_limited",
                "ResourceLimitedException",
                "You have exceeded the limit of the Free edition. Please upgrade to higher edition.",
            ),
            Quota::Groups => EmError::exceed_limit(format!("{key}has create too many groups!")),
            Quota::Chatrooms => EmError::exceed_limit(format!("{key}has create too many chatrooms!")),
            Quota::GroupsPerUser(u) => EmError::exceed_limit(format!("user {u} has joined too many groups!")),
        }
    }
    pub fn not_found(description: impl Into<String>) -> Self {
        EmError::new(StatusCode::NOT_FOUND, "resource_not_found", "com.easemob.group.exception.ResourceNotFoundException", description)
    }
    pub fn rate_limited() -> Self {
        EmError::new(StatusCode::TOO_MANY_REQUESTS, "reach_limit", "EasemobLimitException", "This request has reached api limit")
    }
    /// Over a message quota (per minute or second): 403, not 429, as Easemob answers.
    pub fn message_quota() -> Self {
        EmError::new(StatusCode::FORBIDDEN, "message_send_error", "MessageSendException", "message send reach limit")
    }
    pub fn too_large() -> Self {
        EmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
            "RequestEntityTooLargeException",
            "the file size exceeds the maximum limit.",
        )
    }
}

/// Rate buckets whose excess Easemob answers as a message quota (403) rather than 429.
pub const MESSAGE_QUOTA_PREFIX: &str = "em.msg.";

impl From<Error> for EmError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let text = e.to_string();
        match e {
            Error::AppNotFound => {
                EmError::new(S::NOT_FOUND, "organization_application_not_found", "OrganizationApplicationNotFoundException", text)
            }
            Error::UserNotFound(_) => EmError::user_not_found(),
            Error::UserExists(u) => EmError::new(
                S::BAD_REQUEST,
                "duplicate_unique_property_exists",
                "org.apache.usergrid.persistence.exceptions.DuplicateUniquePropertyExistsException",
                format!("Entity user requires that property named username be unique, value of {u} exists"),
            ),
            Error::BadCredentials => EmError::new(S::BAD_REQUEST, "invalid_grant", "EasemobSecurityException", "invalid password"),
            Error::ConversationNotFound | Error::WrongKind { .. } => EmError::new(
                S::NOT_FOUND,
                "service_resource_not_found",
                "com.easemob.group.exception.ServiceResourceNotFoundException",
                "do not find this group",
            ),
            Error::MessageNotFound => EmError::new(S::NOT_FOUND, "resource_not_found", "MessageNotFoundException", "message not found"),
            Error::NotMember => EmError::forbidden("users are not members of this group!"),
            Error::ConversationFull { .. } => EmError::exceed_limit("members size is greater than max user size !"),
            Error::OverQuota { quota, .. } => EmError::over_quota(&quota, None),
            Error::Blocked => EmError::forbidden("user is in the blacklist of this group"),
            Error::Muted => EmError::forbidden("user is muted"),
            Error::NotAllowed(m) | Error::Forbidden(m) => EmError::forbidden(m),
            Error::TooLate { .. } => {
                EmError::new(S::FORBIDDEN, "message_recall_error", "MessageRecallException", "exceed recall time limit")
            }
            Error::NotSender => EmError::forbidden("only the sender may change this message"),
            Error::MessageTooLarge { .. } => {
                EmError::new(S::BAD_REQUEST, "message_send_error", "MessageSendException", "message is too large")
            }
            Error::Invalid(m) => EmError::illegal(m),
            Error::TooLarge { .. } | Error::TooMany { .. } => EmError::illegal(text),
            Error::RateLimited { bucket, retry_after_secs } => {
                let e = if bucket.starts_with(MESSAGE_QUOTA_PREFIX) { EmError::message_quota() } else { EmError::rate_limited() };
                EmError { retry_after: Some(retry_after_secs), ..e }
            }
            // what Easemob's pre-send callback shows the sender: the app's code, else its defaults
            Error::Rejected { code, failed, .. } => EmError::forbidden(match (code, failed) {
                (_, true) => "custom internal error".to_string(),
                (Some(c), _) if !c.is_empty() => c,
                (Some(_), _) => "Message blocked by external logic".to_string(),
                (None, _) => "custom logic denied".to_string(),
            }),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                EmError::new(S::INTERNAL_SERVER_ERROR, "internal_server_error", "InternalServerErrorException", "internal server error")
            }
        }
    }
}

pub fn now_ms() -> i64 {
    confab_engine::time::now_ms()
}

impl IntoResponse for EmError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.error,
            "exception": self.exception,
            "timestamp": now_ms(),
            "duration": 0,
            "error_description": self.description,
        });
        let retry = self.retry_after.map(|s| [(axum::http::header::RETRY_AFTER, s.to_string())]);
        (self.status, retry, Json(body)).into_response()
    }
}

/// A successful answer: any JSON object, with `timestamp` and `duration` filled in.
pub struct Answer(pub Map<String, Value>);

pub type Reply = EmResult<Answer>;

impl Answer {
    /// A bare answer (for families with their own small envelope).
    pub fn bare(v: Value) -> Answer {
        Answer(v.as_object().cloned().unwrap_or_default())
    }
    pub fn with(mut self, k: &str, v: Value) -> Answer {
        self.0.insert(k.to_string(), v);
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(mut self) -> Response {
        self.0.entry("timestamp").or_insert(json!(now_ms()));
        self.0.entry("duration").or_insert(json!(0));
        Json(Value::Object(self.0)).into_response()
    }
}
