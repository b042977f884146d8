//! The caller: the app named by `/{org_name}/{app_name}`, and `Authorization: Bearer <token>` —
//! an app token (`client_credentials`), a user token (`password` or `inherit`), or a dynamic
//! `dt-` token an app server signs itself.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use base64::Engine as _;
use confab_engine::model::{App, AppLookup, TokenKind, User};
use confab_engine::{Actor, Engine};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::envelope::{Answer, EmError, EmResult};

#[derive(Clone)]
pub struct EmState {
    pub engine: Arc<Engine>,
}

/// A stable UUID-shaped id for an engine id (Easemob entities carry `uuid`s).
pub fn uuid(id: i64) -> String {
    let x = (id as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    let h = format!("{x:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The request as Easemob's envelope echoes it: org, app, the URI and the query parameters.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub org: String,
    pub app_name: String,
    pub uri: String,
    pub params: Map<String, Value>,
}

impl Ctx {
    fn from_parts(parts: &Parts, org: &str, app: &str) -> Ctx {
        let host = parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let uri = format!("http://{host}{}", parts.uri.path());
        let mut params = Map::new();
        if let Some(q) = parts.uri.query() {
            for (k, v) in url_pairs(q) {
                if let Some(a) = params.entry(k).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(json!(v));
                }
            }
        }
        Ctx { org: org.to_string(), app_name: app.to_string(), uri, params }
    }

    /// The Usergrid envelope's common fields for an answer to `action`.
    pub fn envelope(&self, app: &App, action: &str, path: &str) -> Answer {
        let mut a = Answer(Map::new())
            .with("action", json!(action))
            .with("application", json!(uuid(app.id)))
            .with("applicationName", json!(self.app_name))
            .with("organization", json!(self.org))
            .with("path", json!(path))
            .with("uri", json!(self.uri));
        if !self.params.is_empty() {
            a = a.with("params", Value::Object(self.params.clone()));
        }
        a
    }
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().unwrap_or_default()).map(|Query(v)| v).unwrap_or_default()
}

/// Path parameters by name (`org`, `app`, `username`, `group_id`, …).
pub struct P(pub HashMap<String, String>);

impl P {
    pub fn get(&self, k: &str) -> EmResult<&str> {
        self.0.get(k).map(String::as_str).ok_or_else(|| EmError::illegal(format!("{k} is required")))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for P {
    type Rejection = EmError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> EmResult<Self> {
        let Path(m) = Path::<HashMap<String, String>>::from_request_parts(parts, s).await.map_err(|e| EmError::illegal(e.body_text()))?;
        Ok(P(m))
    }
}

/// The app of the path, without checking any token (open registration, `/token`).
pub struct AppOf {
    pub app: Arc<App>,
    pub ctx: Ctx,
}

async fn app_of(parts: &mut Parts, s: &EmState) -> EmResult<AppOf> {
    let P(p) = P::from_request_parts(parts, s).await?;
    let (org, name) = (p.get("org").cloned().unwrap_or_default(), p.get("app").cloned().unwrap_or_default());
    let app = s.engine.apps().find_app(&AppLookup::Easemob { org: org.clone(), app: name.clone() }).await?.ok_or_else(|| {
        EmError::new(
            axum::http::StatusCode::NOT_FOUND,
            "organization_application_not_found",
            "OrganizationApplicationNotFoundException",
            format!(
                "Could not find application for {org}/{name} from URI: {org}/{name}{}",
                parts.uri.path().split(&format!("{org}/{name}")).nth(1).unwrap_or("")
            ),
        )
    })?;
    let ctx = Ctx::from_parts(parts, &org, &name);
    Ok(AppOf { app, ctx })
}

impl FromRequestParts<EmState> for AppOf {
    type Rejection = EmError;
    async fn from_request_parts(parts: &mut Parts, s: &EmState) -> EmResult<Self> {
        app_of(parts, s).await
    }
}

/// The credential a route needs (the route table, each family's `routes()`, names one for every
/// route). A handler may ask for more (a user token sends only as its user, reads only a room it
/// is in), never for less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: `/token`, whose grant decides (`inherit` needs the app token).
    None,
    /// The URL is the credential: a chat file's download (and its share secret), a signed,
    /// short-lived export link. The handler checks it.
    Link,
    /// The app token, unless the app has open registration.
    AppUnlessOpen,
    /// The app token.
    App,
    /// Any token of the app: the app token, a user token or a dynamic token.
    Token,
    /// The app token, or the token of the user the path names (`{username}`).
    AppOrUser,
    /// As `AppOrUser`, refused as user metadata refuses (401 `metadata_error`).
    MetadataOwner,
}

/// The route table's guard: the request carries what `need` says, or is refused with Easemob's
/// 401 (`unauthorized` no token or not enough, `auth_bad_access_token` a token that is not
/// this app's). The caller it resolved is left for the handler.
pub fn guard<'a>(s: &'a EmState, need: &'a Need, parts: &'a mut Parts) -> confab_routes::Checked<'a> {
    confab_routes::checked(check(s, *need, parts))
}

async fn check(s: &EmState, need: Need, parts: &mut Parts) -> EmResult<()> {
    let c = match need {
        Need::None | Need::Link => return Ok(()),
        Need::AppUnlessOpen => {
            let AppOf { app, .. } = app_of(parts, s).await?;
            if app.limits.em_open_registration || has_app_token(s, &app, &parts.headers).await? {
                return Ok(());
            }
            return Err(EmError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "EasemobSecurityException",
                "Open registration doesn't allow, so register user need token,",
            ));
        }
        Need::App | Need::Token | Need::AppOrUser | Need::MetadataOwner => Caller::resolve(parts, s).await?,
    };
    match (need, &c.user) {
        (Need::App, Some(_)) => return Err(EmError::admin_required()),
        (Need::AppOrUser | Need::MetadataOwner, Some(u)) => {
            let P(p) = P::from_request_parts(parts, s).await?;
            let named = p.get("username").map(|n| crate::users::username(n));
            if !matches!(named, Some(Ok(n)) if n == u.id) {
                return Err(if need == Need::MetadataOwner { crate::social::metadata_auth() } else { EmError::admin_required() });
            }
        }
        _ => {}
    }
    parts.extensions.insert(c);
    Ok(())
}

/// An authenticated caller: the app token, or a user's token.
#[derive(Clone)]
pub struct Caller {
    pub app: Arc<App>,
    pub ctx: Ctx,
    /// The user of a user token; None for the app token.
    pub user: Option<User>,
}

/// A caller with the app token.
pub struct Admin {
    pub app: Arc<App>,
    pub ctx: Ctx,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.is_none()
    }
    pub fn actor(&self) -> Actor {
        match &self.user {
            Some(u) => Actor::User(u.id.clone()),
            None => Actor::Admin,
        }
    }
    /// The app token, or the user's own token for a resource of that user.
    pub fn may_act_for(&self, username: &str) -> EmResult<()> {
        match &self.user {
            None => Ok(()),
            Some(u) if u.id == username => Ok(()),
            Some(_) => Err(EmError::admin_required()),
        }
    }
}

/// Verify a dynamic token: `base64url("dt-" + {"signature","appkey","userId","curTime","ttl"})`,
/// signed `hex(sha256(clientId + appkey + userId + curTime + ttl + clientSecret))`, times in
/// seconds. The user it names, if valid now.
fn dynamic_token(app: &App, token: &str, now_ms: i64) -> Option<String> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(token).ok())?;
    let text = String::from_utf8(raw).ok()?;
    let v: Value = serde_json::from_str(text.strip_prefix("dt-")?).ok()?;
    let k = &app.keys.easemob;
    let appkey = format!("{}#{}", k.org_name, k.app_name);
    let field = |n: &str| v.get(n).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()));
    let (user, cur, ttl, sig) = (field("userId")?, field("curTime")?, field("ttl")?, field("signature")?);
    if field("appkey")? != appkey {
        return None;
    }
    let expected = hex::encode(Sha256::digest(format!("{}{appkey}{user}{cur}{ttl}{}", k.client_id, k.client_secret).as_bytes()));
    let (cur_s, ttl_s): (i64, i64) = (cur.parse().ok()?, ttl.parse().ok()?);
    (ct_eq(&expected, &sig.to_ascii_lowercase()) && (cur_s + ttl_s) * 1000 > now_ms).then_some(user.to_lowercase())
}

/// The user a user token (`password` or `inherit` grant) or a dynamic token names, if it is
/// valid now: the one check REST callers and the msync gateway's login share.
pub async fn user_of_token(engine: &Engine, app: &App, token: &str) -> confab_engine::Result<Option<String>> {
    Ok(match engine.users().check_token(app, token, TokenKind::EasemobUser).await? {
        Some(t) => t.user,
        None => dynamic_token(app, token, engine.now()),
    })
}

/// Equality that takes the same time wherever the inputs differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Authorization: Bearer <token>` of a request ("" when there is none).
pub fn bearer(headers: &axum::http::HeaderMap) -> &str {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or("")
}

/// Whether a request carries the app token (for the endpoints whose token is conditional).
pub async fn has_app_token(s: &EmState, app: &App, headers: &axum::http::HeaderMap) -> EmResult<bool> {
    Ok(s.engine.users().check_token(app, bearer(headers), TokenKind::EasemobApp).await?.is_some())
}

impl FromRequestParts<EmState> for Caller {
    type Rejection = EmError;
    /// The caller the guard resolved (or, on a route without one, resolved now).
    async fn from_request_parts(parts: &mut Parts, s: &EmState) -> EmResult<Self> {
        match parts.extensions.get::<Caller>() {
            Some(c) => Ok(c.clone()),
            None => Caller::resolve(parts, s).await,
        }
    }
}

impl Caller {
    async fn resolve(parts: &mut Parts, s: &EmState) -> EmResult<Self> {
        let AppOf { app, ctx } = app_of(parts, s).await?;
        let token = bearer(&parts.headers);
        if token.is_empty() {
            return Err(EmError::unauthorized());
        }
        let engine = &s.engine;
        if let Some(t) = engine.users().check_token(&app, token, TokenKind::EasemobApp).await? {
            let _ = t;
            return Ok(Caller { app, ctx, user: None });
        }
        let Some(user_id) = user_of_token(engine, &app, token).await? else { return Err(EmError::bad_token()) };
        let user = engine.users().get_user(&app, &user_id).await.map_err(|_| EmError::bad_token())?;
        if user.disabled {
            return Err(EmError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "EasemobSecurityException",
                "user not activated",
            ));
        }
        Ok(Caller { app, ctx, user: Some(user) })
    }
}

impl FromRequestParts<EmState> for Admin {
    type Rejection = EmError;
    async fn from_request_parts(parts: &mut Parts, s: &EmState) -> EmResult<Self> {
        let c = Caller::from_request_parts(parts, s).await?;
        if !c.is_admin() {
            return Err(EmError::admin_required());
        }
        Ok(Admin { app: c.app, ctx: c.ctx })
    }
}

/// A JSON body: an object or an array (batch calls). An empty body is `{}`.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = EmError;
    async fn from_request(req: Request, state: &S) -> EmResult<Self> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                EmError::too_large()
            } else {
                EmError::illegal(e.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(json!({})));
        }
        serde_json::from_slice::<Value>(&bytes).map(Body).map_err(|e| EmError::json_parse(format!("Unexpected character: {e}")))
    }
}

impl Body {
    pub fn obj(&self) -> EmResult<&Map<String, Value>> {
        self.0.as_object().ok_or_else(EmError::bad_body)
    }
}

/// Query-string parameters (the one reader every face shares), refused as `illegal_argument`.
pub type Params = confab_routes::Params<EmError>;

impl confab_routes::ParamRejection for EmError {
    fn malformed(text: String) -> Self {
        EmError::illegal(text)
    }
    fn wrong_type(key: &str, expected: &str) -> Self {
        EmError::illegal(format!("{key} must be {expected}"))
    }
}
