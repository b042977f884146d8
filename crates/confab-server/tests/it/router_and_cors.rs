//! What an SDK given only `server` and a browser app on another origin need, over real HTTP:
//! LeanCloud's RTM router (`GET /v1/route`) names this server's WebSocket as the client reached it
//! (plain and TLS, the Host it used, a proxy's `X-Forwarded-*`), and the URL it names takes a
//! login; every face answers CORS as LeanCloud's API did — preflights without credentials or
//! rate limits, and `Access-Control-Allow-Origin` on every answer, errors included.

use std::sync::Arc;

use crate::common::ws::{Client, BINARY};
use crate::common::*;
use confab_engine::model::Plan;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

const ORIGIN: &str = "https://app.example.com";

/// An answer with its headers.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }

    /// The comma-separated values of a header, in lower case.
    fn list(&self, name: &str) -> Vec<String> {
        self.header(name).map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect()).unwrap_or_default()
    }

    /// `Access-Control-Allow-Origin: *`, and `Retry-After` readable by scripts.
    #[track_caller]
    fn assert_cors(&self, what: &str) {
        assert_eq!(self.header("access-control-allow-origin"), Some("*"), "{what}: {} {:?}", self.status, self.headers);
        assert!(self.list("access-control-expose-headers").contains(&"retry-after".to_string()), "{what}: {:?}", self.headers);
        assert_eq!(self.header("access-control-allow-credentials"), None, "{what}");
    }
}

async fn send(srv: &TestServer, method: Method, path: &str, headers: &[(&str, &str)], body: Option<String>) -> Answer {
    let mut req = srv.http.request(method, format!("{}{path}", srv.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.expect("request");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.expect("body");
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// What `leancloud-realtime` 4.3.1 sends: `appId`, `secure`, `_t`; no credential.
async fn route(srv: &TestServer, app_id: &str, headers: &[(&str, &str)]) -> Answer {
    send(srv, Method::GET, &format!("/v1/route?appId={app_id}&secure=true&_t=1700000000000"), headers, None).await
}

/// The router's answer: `server` and `secondary` (the same URL) and `ttl`; kept by no cache.
#[track_caller]
fn assert_routed(a: &Answer, url: &str) {
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body, json!({"server": url, "secondary": url, "ttl": 3600}));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

/// A login over the WebSocket at `url`, as the SDK makes it: the subprotocol echoed, then
/// `session open` answered `opened`.
async fn logs_in(url: &str, app_id: &str, tls: Option<Arc<rustls::ClientConfig>>) {
    let mut c = Client::connect_with(url, Some(BINARY), tls).await;
    assert_eq!(c.protocol.as_deref(), Some(BINARY));
    c.open(app_id, Some("alice")).await;
}

#[tokio::test]
async fn the_router_names_the_plain_websocket_by_the_host_the_client_used() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let port = srv.addr().port();

    let r = route(&srv, app.app_id(), &[]).await;
    assert_routed(&r, &format!("ws://127.0.0.1:{port}/"));
    logs_in(r.body["server"].as_str().unwrap(), app.app_id(), None).await;
    // the name the client gave the server, with its port or without
    assert_routed(&route(&srv, app.app_id(), &[("host", "chat.example.com:8080")]).await, "ws://chat.example.com:8080/");
    assert_routed(&route(&srv, app.app_id(), &[("host", "chat.example.com")]).await, "ws://chat.example.com/");
    // behind a proxy that ends TLS: what the client used, from the proxy's headers
    let proxied = [("x-forwarded-proto", "https"), ("x-forwarded-host", "chat.example.com")];
    assert_routed(&route(&srv, app.app_id(), &proxied).await, "wss://chat.example.com/");
    let proto_only = [("host", "chat.example.com"), ("x-forwarded-proto", "https")];
    assert_routed(&route(&srv, app.app_id(), &proto_only).await, "wss://chat.example.com/");
    // the SDK's `ssl: false` does not change what the port speaks
    let r = send(&srv, Method::GET, &format!("/v1/route?appId={}&secure=false", app.app_id()), &[], None).await;
    assert_routed(&r, &format!("ws://127.0.0.1:{port}/"));

    // an unknown app, or none, is LeanCloud's 404, with the realtime code for an unknown app
    for query in ["appId=no-such-app&secure=true", "secure=true", "appId="] {
        let r = send(&srv, Method::GET, &format!("/v1/route?{query}"), &[], None).await;
        assert_eq!((r.status, &r.body["code"]), (404, &json!(4100)), "{query}: {:?}", r.body);
        assert!(r.body["error"].is_string());
    }
    // another face's app id is not a LeanCloud app id
    let r = route(&srv, &app.app.keys.maxim.app_id, &[]).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    srv.stop().await;
}

#[tokio::test]
async fn the_router_of_a_tls_server_names_its_wss_address() {
    let (srv, cert) = TestServer::start_tls().await;
    let app = srv.app(Plan::Standard).await;
    let port = srv.addr().port();

    let r = route(&srv, app.app_id(), &[]).await;
    assert_routed(&r, &format!("wss://127.0.0.1:{port}/"));
    logs_in(r.body["server"].as_str().unwrap(), app.app_id(), Some(tls_client(cert))).await;
    assert_routed(&route(&srv, app.app_id(), &[("host", "chat.example.com")]).await, "wss://chat.example.com/");
    assert_routed(&route(&srv, app.app_id(), &[("host", "chat.example.com:8443")]).await, "wss://chat.example.com:8443/");
    let r = send(&srv, Method::GET, &format!("/v1/route?appId={}&secure=false", app.app_id()), &[], None).await;
    assert_routed(&r, &format!("wss://127.0.0.1:{port}/"));
    srv.stop().await;
}

/// A browser's preflight of `method path` asking for `headers`: answered without a credential,
/// for any origin, allowing the method and every header, kept for a day.
async fn preflight(srv: &TestServer, method: &str, path: &str, headers: &[&str]) {
    let asked = headers.join(",");
    let mut h = vec![("origin", ORIGIN), ("access-control-request-method", method)];
    if !headers.is_empty() {
        h.push(("access-control-request-headers", &asked));
    }
    let a = send(srv, Method::OPTIONS, path, &h, None).await;
    let what = format!("preflight of {method} {path}");
    assert!(a.status == 200 || a.status == 204, "{what}: {} {:?}", a.status, a.body);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"), "{what}: {:?}", a.headers);
    assert!(a.list("access-control-allow-methods").contains(&method.to_ascii_lowercase()), "{what}: {:?}", a.headers);
    let allowed = a.list("access-control-allow-headers");
    for header in headers {
        assert!(allowed.contains(&header.to_ascii_lowercase()), "{what}: {header} not in {allowed:?}");
    }
    assert_eq!(a.header("access-control-max-age"), Some("86400"), "{what}");
    assert_eq!(a.header("access-control-allow-credentials"), None, "{what}");
}

#[tokio::test]
async fn every_face_answers_preflights_without_credentials() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let em = &app.app.keys.easemob;
    let em_base = format!("/{}/{}", em.org_name, em.app_name);
    // LeanCloud: the headers of its API's own list, and the legacy aliases the face reads
    let lc = ["Content-Type", "X-LC-Id", "X-LC-Key", "X-LC-Sign", "X-LC-Session", "X-LC-Prod", "X-LC-UA"];
    preflight(&srv, "POST", "/1.2/rtm/conversations", &lc).await;
    preflight(&srv, "PUT", "/1.2/rtm/conversations/abc", &lc).await;
    preflight(&srv, "DELETE", "/1.2/rtm/conversations/abc/members", &lc).await;
    preflight(&srv, "GET", "/1.1/rtm/notifications", &["X-LC-Id", "X-LC-Key", "X-LC-IM-Session-Token"]).await;
    let legacy = ["X-AVOSCloud-Application-Id", "X-AVOSCloud-Application-Key", "X-AVOSCloud-Session-Token", "X-Uluru-Application-Id"];
    preflight(&srv, "POST", "/1.1/login", &legacy).await;
    // MaxIM
    let mx = ["app_id", "access-token", "user_id", "group_id", "Content-Type"];
    preflight(&srv, "POST", "/message/send", &mx).await;
    preflight(&srv, "GET", "/user/profile", &mx).await;
    preflight(&srv, "POST", "/token/user", &["app_id", "Content-Type"]).await;
    // Easemob (uploads add restrict-access, downloads share-secret and X-Requested-With)
    let em_headers = ["Authorization", "Content-Type", "Accept", "restrict-access", "share-secret", "X-Requested-With"];
    preflight(&srv, "POST", &format!("{em_base}/users"), &em_headers).await;
    preflight(&srv, "PUT", &format!("{em_base}/users/alice"), &em_headers).await;
    preflight(&srv, "POST", &format!("{em_base}/chatfiles"), &em_headers).await;
    preflight(&srv, "POST", &format!("{em_base}/token"), &["Content-Type"]).await;
    // the server's own routes, and paths no route claims
    preflight(&srv, "GET", "/v1/route", &[]).await;
    preflight(&srv, "GET", "/healthz", &[]).await;
    preflight(&srv, "POST", "/1.2/rtm/no/such/route", &lc).await;
    preflight(&srv, "PATCH", "/nowhere", &["X-LC-Id"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_origin_header_errors_included() {
    let srv = TestServer::start_with(|c| c.max_body_bytes = 64 * 1024).await;
    let app = srv.app(Plan::Standard).await;
    let o = [("origin", ORIGIN)];
    let lc_master = format!("{},master", app.master_key());
    let master = [("origin", ORIGIN), ("x-lc-id", app.app_id()), ("x-lc-key", lc_master.as_str())];
    let em = &app.app.keys.easemob;
    let em_base = format!("/{}/{}", em.org_name, em.app_name);

    let r = send(&srv, Method::GET, "/healthz", &o, None).await;
    assert_eq!(r.status, 200);
    r.assert_cors("healthz");
    let r = route(&srv, app.app_id(), &o).await;
    assert_eq!(r.status, 200);
    r.assert_cors("the router");
    let r = route(&srv, "no-such-app", &o).await;
    assert_eq!(r.status, 404);
    r.assert_cors("the router's 404");
    // LeanCloud: a success, a 401, a 404, a 413
    let r = send(&srv, Method::POST, "/1.2/rtm/conversations", &master, Some(json!({"m": ["a", "b"]}).to_string())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.assert_cors("LeanCloud 200");
    let cid = r.body["objectId"].as_str().expect("objectId").to_string();
    let r = send(&srv, Method::GET, "/1.2/rtm/conversations", &o, None).await;
    assert_eq!((r.status, &r.body["code"]), (401, &json!(401)));
    r.assert_cors("LeanCloud 401");
    let r = send(&srv, Method::GET, "/1.2/rtm/no/such/route", &master, None).await;
    assert_eq!(r.status, 404);
    r.assert_cors("LeanCloud 404");
    let big = json!({"m": ["a", "b"], "name": "x".repeat(128 * 1024)}).to_string();
    let r = send(&srv, Method::POST, "/1.2/rtm/conversations", &master, Some(big)).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    r.assert_cors("LeanCloud 413");
    // MaxIM: its refusals are HTTP 200 with a code
    let r = send(&srv, Method::GET, "/user/profile", &[("origin", ORIGIN), ("app_id", &app.app.keys.maxim.app_id)], None).await;
    assert_eq!((r.status, &r.body["code"]), (200, &json!(10003)), "{:?}", r.body);
    r.assert_cors("MaxIM refusal");
    // Easemob: a 401 and a 404
    let r = send(&srv, Method::GET, &format!("{em_base}/users"), &o, None).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    r.assert_cors("Easemob 401");
    let r = send(&srv, Method::GET, &format!("{em_base}/no/such/route"), &o, None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    r.assert_cors("Easemob 404");
    // a path no face claims
    let r = send(&srv, Method::GET, "/nowhere", &o, None).await;
    assert_eq!(r.status, 404);
    r.assert_cors("unrouted 404");

    // a 429, and preflights cost nothing of the allowance
    srv.engine().apps().set_app_limit(&app.app.name, "rates.lc.message.per_minute", "2").await.unwrap();
    let messages = format!("/1.2/rtm/conversations/{cid}/messages");
    for _ in 0..10 {
        preflight(&srv, "POST", &messages, &["X-LC-Id", "X-LC-Key", "Content-Type"]).await;
    }
    let body = || Some(json!({"from_client": "a", "message": "hi"}).to_string());
    for i in 0..2 {
        let r = send(&srv, Method::POST, &messages, &master, body()).await;
        assert_eq!(r.status, 200, "message {i} after the preflights: {:?}", r.body);
        r.assert_cors("a message");
    }
    let r = send(&srv, Method::POST, &messages, &master, body()).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(r.header("retry-after").is_some());
    r.assert_cors("LeanCloud 429");
    srv.stop().await;
}
