//! Request extraction: credentials (`X-LC-Id` with `X-LC-Key` or `X-LC-Sign`), JSON bodies and
//! query strings, each failing with LeanCloud's own errors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use confab_engine::model::{App, AppLookup, ConvKind, ConvRef, Conversation, Message};
use confab_engine::Engine;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::error::{LcError, LcResult};

#[derive(Clone)]
pub struct LcState {
    pub engine: Arc<Engine>,
}

/// An authenticated caller: the app, whether it used the master key, and its address.
pub struct Client {
    pub app: Arc<App>,
    pub master: bool,
    pub ip: Option<String>,
}

/// A caller that used the master key.
pub struct Master(pub Client);

/// The credential a route needs (the route table in `lib.rs` names one for every route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `X-LC-Id` with the app key (or the master key, or `X-LC-Sign` of either).
    AppKey,
    /// The master key.
    Master,
    /// The master key; or, when the app turned history signatures on, the app key with a
    /// signature for this client and conversation.
    MasterOrSignature,
    /// The app key and a `_User` session token. The token names the user the call is for, and
    /// travels in a header, the query or the body as the call has it: the handler checks it.
    UserSession,
    /// The app key and a realtime session token of the `client_id` parameter
    /// (`X-LC-IM-Session-Token`), as the realtime SDK sends on its REST calls.
    ImSession,
}

/// The route table's guard: the request carries what `need` says, or is refused with
/// LeanCloud's error (401 `Unauthorized.`, 403 119 master key required, 403 4302 a bad history
/// signature, 401 4112 no realtime session).
pub fn guard<'a>(s: &'a LcState, need: &'a Need, parts: &'a mut Parts) -> confab_routes::Checked<'a> {
    confab_routes::checked(check(s, *need, parts))
}

async fn check(s: &LcState, need: Need, parts: &mut Parts) -> LcResult<()> {
    let c = Client::from_request_parts(parts, s).await?;
    match need {
        Need::AppKey | Need::UserSession => Ok(()),
        Need::Master if c.master => Ok(()),
        Need::Master => Err(LcError::master_required()),
        Need::MasterOrSignature => {
            let Path(id) = Path::<String>::from_request_parts(parts, s).await.map_err(|_| LcError::conversation_not_found())?;
            let p = Params::from_request_parts(parts, s).await?;
            crate::messages::history_access(&c, &p, &id, s.engine.now())
        }
        Need::ImSession => {
            let p = Params::from_request_parts(parts, s).await?;
            let client = crate::sdk_rest::im_client(s, &c, &parts.headers, &p).await?;
            parts.extensions.insert(ImClient(client));
            Ok(())
        }
    }
}

/// The client whose realtime session token the guard checked (`Need::ImSession` routes).
#[derive(Clone)]
pub struct ImClient(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ImClient {
    type Rejection = LcError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> LcResult<Self> {
        parts.extensions.get::<ImClient>().cloned().ok_or_else(|| LcError::new(StatusCode::UNAUTHORIZED, 4112, "SESSION_TOKEN_EXPIRED"))
    }
}

fn header<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| h.get(*n).and_then(|v| v.to_str().ok())).map(str::trim)
}

/// Equality that takes the same time wherever the inputs differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `X-LC-Sign` check: `sign = md5(timestamp + key)` in lowercase hex (uppercase fails, as
/// LeanCloud documents).
pub fn sign_ok(sign: &str, timestamp: &str, key: &str) -> bool {
    let expected = hex::encode(Md5::digest(format!("{timestamp}{key}").as_bytes()));
    ct_eq(sign, &expected)
}

/// Which key the headers prove: Some(true) master, Some(false) app key, None neither.
fn check_keys(h: &HeaderMap, app: &App) -> Option<bool> {
    let keys = &app.keys.leancloud;
    if let Some(k) = header(h, &["x-lc-key", "x-avoscloud-application-key", "x-uluru-application-key"]) {
        return match k.strip_suffix(",master") {
            Some(mk) => ct_eq(mk, &keys.master_key).then_some(true),
            None => ct_eq(k, &keys.app_key).then_some(false),
        };
    }
    if let Some(mk) = header(h, &["x-avoscloud-master-key", "x-uluru-master-key"]) {
        return ct_eq(mk, &keys.master_key).then_some(true);
    }
    if let Some(s) = header(h, &["x-lc-sign", "x-avoscloud-request-sign"]) {
        let parts: Vec<&str> = s.split(',').collect();
        return match parts.as_slice() {
            [sign, ts] => sign_ok(sign, ts, &keys.app_key).then_some(false),
            [sign, ts, "master"] => sign_ok(sign, ts, &keys.master_key).then_some(true),
            _ => None,
        };
    }
    None
}

impl FromRequestParts<LcState> for Client {
    type Rejection = LcError;

    async fn from_request_parts(parts: &mut Parts, state: &LcState) -> LcResult<Self> {
        let id = header(&parts.headers, &["x-lc-id", "x-avoscloud-application-id", "x-uluru-application-id"])
            .ok_or_else(LcError::unauthorized)?;
        let app = state.engine.apps().find_app(&AppLookup::LeanCloud(id.to_string())).await?.ok_or_else(LcError::unauthorized)?;
        let master = check_keys(&parts.headers, &app).ok_or_else(LcError::unauthorized)?;
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Client { app, master, ip })
    }
}

impl FromRequestParts<LcState> for Master {
    type Rejection = LcError;

    async fn from_request_parts(parts: &mut Parts, state: &LcState) -> LcResult<Self> {
        let c = Client::from_request_parts(parts, state).await?;
        if !c.master {
            return Err(LcError::master_required());
        }
        Ok(Master(c))
    }
}

/// A JSON object body. An empty body is an empty object.
pub struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = LcError;

    async fn from_request(req: Request, state: &S) -> LcResult<Self> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                LcError::too_large()
            } else {
                LcError::param(rej.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(Body(m)),
            _ => Err(LcError::malformed_json()),
        }
    }
}

/// Read typed fields of a JSON object, failing with LeanCloud's errors.
pub trait Fields {
    fn field(&self, k: &str) -> Option<&Value>;

    fn opt_str(&self, k: &str) -> LcResult<Option<String>> {
        match self.field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(LcError::wrong_type(k, "a string")),
        }
    }
    fn req_str(&self, k: &str) -> LcResult<String> {
        self.opt_str(k)?.ok_or_else(|| LcError::missing(k))
    }
    fn opt_bool(&self, k: &str) -> LcResult<Option<bool>> {
        match self.field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(LcError::wrong_type(k, "a boolean")),
        }
    }
    fn flag(&self, k: &str) -> LcResult<bool> {
        Ok(self.opt_bool(k)?.unwrap_or(false))
    }
    /// An integer, given as a JSON number or a decimal string.
    fn opt_i64(&self, k: &str) -> LcResult<Option<i64>> {
        match self.field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| LcError::wrong_type(k, "an integer")),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| LcError::wrong_type(k, "an integer")),
            Some(_) => Err(LcError::wrong_type(k, "an integer")),
        }
    }
    fn req_i64(&self, k: &str) -> LcResult<i64> {
        self.opt_i64(k)?.ok_or_else(|| LcError::missing(k))
    }
    /// An array of strings with at most `max` items.
    fn opt_strs(&self, k: &str, max: Option<usize>) -> LcResult<Option<Vec<String>>> {
        let items = match self.field(k) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(LcError::wrong_type(k, "an array of strings")),
        };
        if let Some(max) = max {
            if items.len() > max {
                return Err(LcError::param(format!("Too many items in '{k}' (at most {max}).")));
            }
        }
        items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| LcError::wrong_type(k, "an array of strings")))
            .collect::<LcResult<_>>()
            .map(Some)
    }
    fn req_strs(&self, k: &str, max: Option<usize>) -> LcResult<Vec<String>> {
        self.opt_strs(k, max)?.ok_or_else(|| LcError::missing(k))
    }
    /// Text content: a string, or a JSON object/array given inline (serialized as sent).
    fn opt_text(&self, k: &str) -> LcResult<Option<String>> {
        match self.field(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v.to_string())),
            Some(_) => Err(LcError::wrong_type(k, "a string or a JSON object")),
        }
    }
}

impl Fields for Body {
    fn field(&self, k: &str) -> Option<&Value> {
        self.0.get(k)
    }
}

impl Fields for Map<String, Value> {
    fn field(&self, k: &str) -> Option<&Value> {
        self.get(k)
    }
}

/// Query-string parameters (the one reader every face shares), refused in LeanCloud's format.
pub type Params = confab_routes::Params<LcError>;

impl confab_routes::ParamRejection for LcError {
    fn malformed(text: String) -> Self {
        LcError::param(text)
    }
    fn wrong_type(key: &str, expected: &str) -> Self {
        LcError::wrong_type(key, expected)
    }
}

/// Prefix of temporary conversation ids (the SDK recognises temporary conversations by it).
pub const TEMP_PREFIX: &str = "_tmp:";

/// One of confab's own ids: decimal, and small enough. Anything else a client sends in its place
/// is an id an import kept (a LeanCloud objectId is 24 hex digits, a msg-id 22 characters), so
/// the two never collide.
pub fn own_id(s: &str) -> Option<i64> {
    (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A confab conversation id from a path (temporary ones carry `_tmp:`), for the calls that take
/// only those (temporary conversations are never imported).
pub fn conv_id(s: &str) -> LcResult<i64> {
    own_id(s.strip_prefix(TEMP_PREFIX).unwrap_or(s)).ok_or_else(LcError::conversation_not_found)
}

/// The conversation a LeanCloud id names: confab's (decimal, `_tmp:` before a temporary one's),
/// or the objectId an imported conversation had at LeanCloud.
pub async fn find_conversation(engine: &Engine, app: &App, s: &str) -> confab_engine::Result<Conversation> {
    match own_id(s.strip_prefix(TEMP_PREFIX).unwrap_or(s)) {
        Some(id) => engine.conversations().conversation(app, id, None).await,
        None => engine.imports().conversation_by_foreign(app, s).await,
    }
}

/// A confab message id, for what is never imported (broadcasts).
pub fn msg_id(s: &str) -> LcResult<i64> {
    own_id(s).ok_or_else(LcError::message_not_found)
}

/// The message a LeanCloud message id names: confab's, or the msg-id an imported message had.
pub async fn find_message_id(engine: &Engine, app: &App, s: &str) -> confab_engine::Result<i64> {
    match own_id(s) {
        Some(id) => Ok(id),
        None => Ok(engine.imports().message_by_foreign(app, s).await?.id),
    }
}

/// How LeanCloud names a conversation: the id it had at LeanCloud if it was imported, else
/// confab's; `_tmp:` before a temporary conversation's.
pub fn cid(c: &Conversation) -> String {
    render_cid(c.id, c.kind, c.foreign_id.as_deref())
}

/// The same, from an event's reference.
pub fn cid_of(c: &ConvRef) -> String {
    render_cid(c.id, c.kind, c.foreign_id.as_deref())
}

pub fn render_cid(id: i64, kind: ConvKind, foreign: Option<&str>) -> String {
    match (foreign, kind) {
        (Some(f), _) => f.to_string(),
        (None, ConvKind::Temporary) => format!("{TEMP_PREFIX}{id}"),
        (None, _) => id.to_string(),
    }
}

/// How LeanCloud names a message: the msg-id it had at LeanCloud if it was imported, else
/// confab's id.
pub fn mid(m: &Message) -> String {
    m.foreign_id.clone().unwrap_or_else(|| m.id.to_string())
}

/// The same, for a message named by (id, foreign id).
pub fn mid_of(id: i64, foreign: Option<&str>) -> String {
    foreign.map_or_else(|| id.to_string(), str::to_string)
}
