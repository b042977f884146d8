//! The route table every face builds its router from. Each row states a method, a path and the
//! credential the route needs (the face's own `Need` type); the router is made from the rows, and
//! each row's handler sits behind the face's guard, which checks that credential before the
//! handler runs. So a route cannot exist without a stated credential, the statement is data a test
//! can walk (`confab-server/tests/it/auth_table.rs`), and the check is one function per face.
//! Beside it, the one query-string reader every face uses (`Params`, each face answering a bad
//! parameter in its own format).
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, on, MethodFilter, MethodRouter};
use axum::Router;

mod params;
pub use params::{ParamRejection, Params};

/// What a route is: method, path (axum's `{param}` syntax) and the credential it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route<N> {
    pub method: Method,
    pub path: String,
    pub need: N,
}

/// A route and its handler.
pub struct Row<S, N> {
    pub route: Route<N>,
    handler: MethodRouter<S>,
}

fn row<S, N, H, T>(method: Method, filter: MethodFilter, path: impl Into<String>, need: N, handler: H) -> Row<S, N>
where
    S: Clone + Send + Sync + 'static,
    H: Handler<T, S>,
    T: 'static,
{
    Row { route: Route { method, path: path.into(), need }, handler: on(filter, handler) }
}

/// `GET path`, needing `need`.
pub fn get<S: Clone + Send + Sync + 'static, N, H: Handler<T, S>, T: 'static>(path: impl Into<String>, need: N, h: H) -> Row<S, N> {
    row(Method::GET, MethodFilter::GET, path, need, h)
}

/// `POST path`, needing `need`.
pub fn post<S: Clone + Send + Sync + 'static, N, H: Handler<T, S>, T: 'static>(path: impl Into<String>, need: N, h: H) -> Row<S, N> {
    row(Method::POST, MethodFilter::POST, path, need, h)
}

/// `PUT path`, needing `need`.
pub fn put<S: Clone + Send + Sync + 'static, N, H: Handler<T, S>, T: 'static>(path: impl Into<String>, need: N, h: H) -> Row<S, N> {
    row(Method::PUT, MethodFilter::PUT, path, need, h)
}

/// `DELETE path`, needing `need`.
pub fn delete<S: Clone + Send + Sync + 'static, N, H: Handler<T, S>, T: 'static>(path: impl Into<String>, need: N, h: H) -> Row<S, N> {
    row(Method::DELETE, MethodFilter::DELETE, path, need, h)
}

impl<S, N> Row<S, N> {
    /// The row under a path prefix.
    pub fn under(mut self, prefix: &str) -> Self {
        self.route.path = format!("{prefix}{}", self.route.path);
        self
    }

    /// The handler changed by `f` (say, a layer that tells it which kind of resource it serves).
    pub fn map(mut self, f: impl FnOnce(MethodRouter<S>) -> MethodRouter<S>) -> Self {
        self.handler = f(self.handler);
        self
    }
}

/// What a guard's check returns: nothing to say (the handler runs), or the refusal.
pub type Checked<'a> = Pin<Box<dyn Future<Output = Result<(), Response>> + Send + 'a>>;

/// A guard's check from an async one that fails with the face's error.
pub fn checked<'a, E: IntoResponse>(check: impl Future<Output = Result<(), E>> + Send + 'a) -> Checked<'a> {
    Box::pin(async move { check.await.map_err(IntoResponse::into_response) })
}

/// A face's guard: checks that the request's head carries what `need` says, and may leave what it
/// resolved (the caller) in the head's extensions for the handler.
pub type Guard<S, N> = for<'a> fn(&'a S, &'a N, &'a mut Parts) -> Checked<'a>;

/// The rows' routes, without their handlers: the table as data.
pub fn table<S, N: Clone>(rows: &[Row<S, N>]) -> Vec<Route<N>> {
    rows.iter().map(|r| r.route.clone()).collect()
}

/// `router` answering every method on each prefix, and on every path under it, with `answer`
/// (a face's 404 for its unknown paths).
pub fn answer_under<S, H, T>(mut router: Router<S>, prefixes: &[&str], answer: H) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    H: Handler<T, S>,
    T: 'static,
{
    for prefix in prefixes {
        router = router.route(prefix, any(answer.clone())).route(&format!("{prefix}/{{*rest}}"), any(answer.clone()));
    }
    router
}

/// A router of the rows, every handler behind `guard` with its row's need.
pub fn router<S, N>(rows: Vec<Row<S, N>>, state: &S, guard: Guard<S, N>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    N: Clone + Send + Sync + 'static,
{
    let mut r = Router::new();
    for Row { route, handler } in rows {
        let need = route.need;
        let check = move |State(s): State<S>, req: Request, next: Next| {
            let need = need.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                match guard(&s, &need, &mut parts).await {
                    Ok(()) => next.run(Request::from_parts(parts, body)).await,
                    Err(refusal) => refusal,
                }
            }
        };
        r = r.route(&route.path, handler.route_layer(middleware::from_fn_with_state(state.clone(), check)));
    }
    r
}

/// The need of a route anyone may call (`/healthz`; the WebSocket upgrade, whose protocol logs in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Open;

/// The guard of open routes: nothing to check.
pub fn open<'a, S>(_: &'a S, _: &'a Open, _: &'a mut Parts) -> Checked<'a> {
    checked(async { Ok::<(), Response>(()) })
}
