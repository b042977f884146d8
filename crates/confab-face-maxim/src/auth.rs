//! Who calls: headers `app_id`, `access-token` (the app's admin token, or a user token from
//! `/token/*`), and `user_id` / `group_id`, which only the admin token may use to act as a user or
//! as a group's admin.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use confab_engine::model::{App, AppLookup, TokenKind, User};
use confab_engine::{Actor, Engine};
use serde_json::{Map, Value};

use crate::envelope::{code, MxError, MxResult};

#[derive(Clone)]
pub struct MxState {
    pub engine: Arc<Engine>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Equality that takes the same time wherever the inputs differ.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The app named by the `app_id` header (for the calls that need no token).
pub struct AppOnly(pub Arc<App>);

async fn app_of(parts: &Parts, s: &MxState) -> MxResult<Arc<App>> {
    let id = header(&parts.headers, "app_id").ok_or_else(|| MxError::new(code::NO_SUCH_APP, "app_id header is missing"))?;
    s.engine
        .apps()
        .find_app(&AppLookup::Maxim(id.to_string()))
        .await?
        .ok_or_else(|| MxError::new(code::NO_SUCH_APP, "no app with this app_id"))
}

impl FromRequestParts<MxState> for AppOnly {
    type Rejection = MxError;
    async fn from_request_parts(parts: &mut Parts, s: &MxState) -> MxResult<Self> {
        Ok(AppOnly(app_of(parts, s).await?))
    }
}

/// The credential a route needs (the route table in `lib.rs` names one for every route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The `app_id` header alone: logging in, registering one user.
    AppId,
    /// The app's admin token.
    Admin,
    /// The admin token or a user token of the app.
    Token,
}

/// The route table's guard: the request carries what `need` says, or is refused with MaxIM's
/// codes (40000 unknown app, 10003 no token, 10008 a token that is not this app's, 10010 a user
/// token where the admin token is needed). The caller it resolved is left for the handler.
pub fn guard<'a>(s: &'a MxState, need: &'a Need, parts: &'a mut Parts) -> confab_routes::Checked<'a> {
    confab_routes::checked(check(s, *need, parts))
}

async fn check(s: &MxState, need: Need, parts: &mut Parts) -> MxResult<()> {
    if need == Need::AppId {
        return app_of(parts, s).await.map(drop);
    }
    let c = Caller::resolve(parts, s).await?;
    if need == Need::Admin && !c.admin {
        return Err(MxError::new(code::NO_PERMISSION, "this call needs the app's admin token"));
    }
    parts.extensions.insert(c);
    Ok(())
}

/// An authenticated caller.
#[derive(Clone)]
pub struct Caller {
    pub app: Arc<App>,
    /// Used the admin token.
    pub admin: bool,
    /// The user acting: the token's, or (admin token only) the `user_id` header's.
    pub user: Option<User>,
    /// The group the admin token acts for (`group_id` header).
    pub group: Option<i64>,
}

impl Caller {
    /// Who acts for the engine: the user, or the app's server with admin rights.
    pub fn actor(&self) -> Actor {
        match &self.user {
            Some(u) => Actor::User(u.id.clone()),
            None => Actor::Admin,
        }
    }

    /// The acting user, which this call needs (with the admin token: the `user_id` header).
    pub fn me(&self) -> MxResult<&User> {
        self.user.as_ref().ok_or_else(|| MxError::param("this call acts as a user: with the admin token, set the user_id header"))
    }
}

impl FromRequestParts<MxState> for Caller {
    type Rejection = MxError;

    /// The caller the guard resolved (or, on a route without one, resolved now).
    async fn from_request_parts(parts: &mut Parts, s: &MxState) -> MxResult<Self> {
        match parts.extensions.get::<Caller>() {
            Some(c) => Ok(c.clone()),
            None => Caller::resolve(parts, s).await,
        }
    }
}

impl Caller {
    async fn resolve(parts: &Parts, s: &MxState) -> MxResult<Self> {
        let app = app_of(parts, s).await?;
        let h = &parts.headers;
        let token = header(h, "access-token").ok_or_else(|| MxError::new(code::NO_TOKEN, "access-token header is missing"))?;
        let admin = ct_eq(token, &app.keys.maxim.admin_token);
        let user_id =
            header(h, "user_id").map(|v| v.parse::<i64>().map_err(|_| MxError::param("user_id must be an integer"))).transpose()?;
        let group_id =
            header(h, "group_id").map(|v| v.parse::<i64>().map_err(|_| MxError::param("group_id must be an integer"))).transpose()?;
        let user = if admin {
            match user_id {
                Some(num) => Some(s.engine.users().user_by_num(&app, num).await?),
                None => None,
            }
        } else {
            let t = s
                .engine
                .users()
                .check_token(&app, token, TokenKind::MaximUser)
                .await?
                .ok_or_else(|| MxError::new(code::BAD_TOKEN, "access-token is invalid or expired"))?;
            let user = s
                .engine
                .users()
                .get_user(&app, t.user.as_deref().unwrap_or_default())
                .await
                .map_err(|_| MxError::new(code::BAD_TOKEN, "access-token is invalid"))?;
            // only the admin token acts for others
            if user_id.is_some_and(|n| n != user.num) || group_id.is_some() {
                return Err(MxError::new(code::NO_PERMISSION, "only the admin token may set user_id or group_id"));
            }
            Some(user)
        };
        Ok(Caller { app, admin, user, group: if admin { group_id } else { None } })
    }
}

/// A JSON object body (an empty body is an empty object).
pub struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = MxError;
    async fn from_request(req: Request, state: &S) -> MxResult<Self> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| MxError::param(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(Body(m)),
            _ => Err(MxError::param("the body must be a JSON object")),
        }
    }
}

/// Query-string parameters (the one reader every face shares), refused with 10002.
pub type Params = confab_routes::Params<MxError>;

impl confab_routes::ParamRejection for MxError {
    fn malformed(text: String) -> Self {
        MxError::param(text)
    }
    fn wrong_type(key: &str, expected: &str) -> Self {
        MxError::param(format!("{key} must be {expected}"))
    }
}

/// Typed fields of a body or a query string, failing with 10002.
pub trait Fields {
    fn raw(&self, k: &str) -> Option<Value>;

    fn opt_i64(&self, k: &str) -> MxResult<Option<i64>> {
        match self.raw(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| MxError::param(format!("{k} must be an integer"))),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| MxError::param(format!("{k} must be an integer"))),
            Some(_) => Err(MxError::param(format!("{k} must be an integer"))),
        }
    }
    fn req_i64(&self, k: &str) -> MxResult<i64> {
        self.opt_i64(k)?.ok_or_else(|| MxError::param(format!("{k} is required")))
    }
    fn opt_str(&self, k: &str) -> MxResult<Option<String>> {
        match self.raw(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(MxError::param(format!("{k} must be a string"))),
        }
    }
    fn req_str(&self, k: &str) -> MxResult<String> {
        self.opt_str(k)?.ok_or_else(|| MxError::param(format!("{k} is required")))
    }
    fn opt_bool(&self, k: &str) -> MxResult<Option<bool>> {
        match self.raw(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(MxError::param(format!("{k} must be a boolean"))),
        }
    }
    /// A list of integer ids, at most `max`.
    fn ids(&self, k: &str, max: usize) -> MxResult<Vec<i64>> {
        let items = match self.raw(k) {
            None | Some(Value::Null) => return Ok(vec![]),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(MxError::param(format!("{k} must be a list of integers"))),
        };
        if items.len() > max {
            return Err(MxError::param(format!("{k} has more than {max} ids")));
        }
        items.iter().map(|v| v.as_i64().ok_or_else(|| MxError::param(format!("{k} must be a list of integers")))).collect()
    }
}

impl Fields for Body {
    fn raw(&self, k: &str) -> Option<Value> {
        self.0.get(k).cloned()
    }
}

impl Fields for Map<String, Value> {
    fn raw(&self, k: &str) -> Option<Value> {
        self.get(k).cloned()
    }
}

impl Fields for Params {
    fn raw(&self, k: &str) -> Option<Value> {
        Params::raw(self, k).map(|v| Value::String(v.to_string()))
    }
}

/// A body field or, failing that, a query parameter (MaxIM's group calls take either).
pub struct Either<'a>(pub &'a Body, pub &'a Params);

impl Fields for Either<'_> {
    fn raw(&self, k: &str) -> Option<Value> {
        self.0.raw(k).or_else(|| Fields::raw(self.1, k))
    }
}
