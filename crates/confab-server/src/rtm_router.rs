//! LeanCloud's RTM router, `GET /v1/route?appId=…`: how the realtime SDK finds the WebSocket when
//! the app gives it `server` (the host of its API) rather than `RTMServers`.
//!
//! `leancloud-realtime` 4.3.1 (`Realtime._fetchRTMServers`) asks `https://<server>/v1/route` with
//! `appId`, `secure` (its `ssl` option), `_t` (a cache buster) and, in WeChat, `features`; it
//! reads `server` and `secondary` (the URLs it tries in turn) and `ttl` (seconds it keeps them;
//! without one it keeps them for good). The Swift SDK asks the same with `secure=1` and needs
//! `server` and a numeric `ttl`. The answer names this server's WebSocket as the client reached
//! it: `wss://` when the connection is TLS (`ws://` when not), the host and port the request was
//! addressed to (`Host`, or the authority of an absolute or HTTP/2 request), path `/`. Behind a
//! reverse proxy, `X-Forwarded-Proto` (`https`/`http`) and `X-Forwarded-Host` name what the
//! client used instead. They are taken from any client: the answer goes only to the client that
//! sent them, and `Cache-Control: no-store` keeps a shared cache from handing it to another.
//! `secure` is not obeyed: one port speaks either TLS or plain, and the answer says which.
//!
//! An unknown `appId` (or none) is answered as LeanCloud's router did, 404; the body is
//! LeanCloud's error format with the realtime code for an unknown app (4100, as a `session open`
//! for it gets).

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, HOST};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use confab_engine::model::AppLookup;
use confab_engine::Engine;
use confab_face_leancloud::error::LcError;
use serde_json::json;

/// How long an SDK may keep the answer, in seconds.
pub const TTL_SECS: u64 = 3600;

/// Whether the connection a request came on is TLS; the serve loop puts it in every request's
/// extensions. Missing (a router served some other way) counts as plain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tls(pub bool);

/// `GET /v1/route`.
pub async fn route(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<Vec<(String, String)>>,
    tls: Option<Extension<Tls>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let app_id = params.into_iter().find_map(|(k, v)| (k == "appId").then_some(v)).unwrap_or_default();
    let found = if app_id.is_empty() { Ok(None) } else { engine.apps().find_app(&AppLookup::LeanCloud(app_id)).await };
    match found {
        Ok(Some(_)) => {}
        Ok(None) => return LcError::new(StatusCode::NOT_FOUND, 4100, "App not found or disabled by its owner.").into_response(),
        Err(e) => return LcError::from(e).into_response(),
    }
    let tls = tls.is_some_and(|Extension(Tls(t))| t);
    let Some(url) = websocket_url(&headers, &uri, tls) else {
        return LcError::param("The request names no host (Host header).").into_response();
    };
    let no_store = [(CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    (no_store, Json(json!({"server": url, "secondary": url, "ttl": TTL_SECS}))).into_response()
}

/// `ws(s)://host[:port]/` as the client addressed this server, or None without a host.
pub fn websocket_url(headers: &HeaderMap, uri: &Uri, tls: bool) -> Option<String> {
    let secure = match forwarded(headers, "x-forwarded-proto").map(str::to_ascii_lowercase).as_deref() {
        Some("https" | "wss") => true,
        Some("http" | "ws") => false,
        _ => tls,
    };
    let host = forwarded(headers, "x-forwarded-host")
        .and_then(authority)
        .or_else(|| uri.authority().cloned())
        .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()).and_then(authority))?;
    Some(format!("{}://{host}/", if secure { "wss" } else { "ws" }))
}

/// The first value of a proxy's header (a chain of proxies appends theirs after it).
fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let first = headers.get(name)?.to_str().ok()?.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// `host[:port]`, nothing more (no user info).
fn authority(s: &str) -> Option<Authority> {
    Authority::from_str(s).ok().filter(|a| !a.as_str().contains('@') && !a.host().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(pairs: &[(&str, &str)], uri: &str, tls: bool) -> Option<String> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_str(k).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        websocket_url(&h, &uri.parse().unwrap(), tls)
    }

    #[test]
    fn the_scheme_follows_the_connection_or_the_proxy() {
        assert_eq!(url(&[("host", "chat.example.com")], "/v1/route", false).unwrap(), "ws://chat.example.com/");
        assert_eq!(url(&[("host", "chat.example.com:8443")], "/v1/route", true).unwrap(), "wss://chat.example.com:8443/");
        let proxied = [("host", "10.0.0.5:8080"), ("x-forwarded-proto", "HTTPS, http"), ("x-forwarded-host", "chat.example.com, inner")];
        assert_eq!(url(&proxied, "/v1/route", false).unwrap(), "wss://chat.example.com/");
        assert_eq!(url(&[("host", "a:1"), ("x-forwarded-proto", "http")], "/", true).unwrap(), "ws://a:1/");
        // an unknown protocol is no protocol
        assert_eq!(url(&[("host", "a"), ("x-forwarded-proto", "gopher")], "/", true).unwrap(), "wss://a/");
    }

    #[test]
    fn the_host_is_the_requests_authority_and_nothing_else() {
        assert_eq!(url(&[("host", "[::1]:9000")], "/", false).unwrap(), "ws://[::1]:9000/");
        // an absolute request (and HTTP/2's :authority) names the host in the URI
        assert_eq!(url(&[("host", "ignored")], "https://chat.example.com/v1/route", true).unwrap(), "wss://chat.example.com/");
        // a forwarded host that is not a host is ignored
        assert_eq!(url(&[("host", "real:1"), ("x-forwarded-host", "a/b")], "/", false).unwrap(), "ws://real:1/");
        assert_eq!(url(&[("host", "evil@real")], "/", false), None);
        assert_eq!(url(&[("host", "a b")], "/", false), None);
        assert_eq!(url(&[], "/", false), None);
    }
}
