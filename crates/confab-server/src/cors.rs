//! CORS for every face, in one layer around the whole router: browser apps on other origins call
//! confab's REST as they called LeanCloud's, Easemob's or MaxIM's.
//!
//! The policy is LeanCloud's API's (its CDN guide, "跨域访问出现异常", gives the headers to copy):
//! any origin (`Access-Control-Allow-Origin: *`, never with credentials: every face authenticates
//! with headers, none with cookies), the methods `GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH`, a
//! preflight kept for a day (`Access-Control-Max-Age: 86400`), and the request headers each face
//! reads (below). `Retry-After` (every face's 429) and `Content-Disposition` (Easemob's file
//! downloads) are exposed to scripts.
//!
//! A preflight (`OPTIONS`) is answered here, 200 with an empty body, before any route, guard or
//! rate limit sees it: it needs no credential and costs no allowance. Every other answer, errors
//! included (401, 404, 413, 429, …), gets `Access-Control-Allow-Origin`, so a browser app can read
//! why it was refused. A face that starts reading a new request header adds it here.

use std::time::Duration;

use axum::http::header::{CONTENT_DISPOSITION, RETRY_AFTER};
use axum::http::{HeaderName, Method};
use tower_http::cors::{Any, CorsLayer};

/// How long a browser may keep a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(86_400);

/// The request headers browsers may send, by face (lower case, as HTTP/2 and `HeaderName` want).
pub const ALLOWED_HEADERS: &[&str] = &[
    // any face
    "accept",
    "content-type",
    "origin",
    "x-requested-with",
    // LeanCloud (the list of its API), and the legacy aliases the face still reads
    "x-lc-id",
    "x-lc-key",
    "x-lc-sign",
    "x-lc-session",
    "x-lc-prod",
    "x-lc-ua",
    "x-lc-im-session-token",
    "x-avoscloud-application-id",
    "x-avoscloud-application-key",
    "x-avoscloud-master-key",
    "x-avoscloud-request-sign",
    "x-avoscloud-session-token",
    "x-uluru-application-id",
    "x-uluru-application-key",
    "x-uluru-master-key",
    // MaxIM
    "app_id",
    "access-token",
    "user_id",
    "group_id",
    // Easemob
    "authorization",
    "restrict-access",
    "share-secret",
];

/// The methods of every face's routes, as LeanCloud listed them.
pub const ALLOWED_METHODS: [Method; 7] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS, Method::PATCH];

/// The layer (`Router::layer(cors::layer())`).
pub fn layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(ALLOWED_METHODS)
        .allow_headers(ALLOWED_HEADERS.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>())
        .expose_headers([RETRY_AFTER, CONTENT_DISPOSITION])
        .max_age(MAX_AGE)
}
