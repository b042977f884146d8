//! An answer given before the request body was read — a refused login, a body over the size limit,
//! a GET or DELETE whose body no handler reads — must not break the connection: the next request
//! on it works, or the answer said `Connection: close`, came whole, and the stream then ended
//! cleanly (never a reset). Raw HTTP/1.1 on one connection a round, 30 rounds a case. The body is
//! written apart from the head, as most clients do, and half the rounds send it a little later,
//! as it comes over a real network: after the server may already have answered.

use crate::common::raw::{self, Answer, Body, Target};
use crate::common::*;
use confab_engine::model::Plan;
use confab_server::early_answer::DRAIN_MAX;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

const ROUNDS: usize = 30;
/// How much later than the head the body leaves in the odd rounds: about a round trip.
const LATER: Duration = Duration::from_millis(30);

/// One kind of request answered early.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Body,
    status: u16,
    /// A small body is read to its end, so the connection stays open; a large one may close it.
    small: bool,
    /// The client sends the whole body before it reads (as many do): a reset while it sends
    /// loses the answer.
    body_first: bool,
    /// Rounds run at once (a stalled body waits out the server's patience in each).
    parallel: usize,
}

impl Case {
    fn new(name: &'static str, method: &'static str, path: String, headers: &[(&str, &str)], body: Body, status: u16) -> Case {
        let size = match &body {
            Body::Sized(b) | Body::Chunked(b) | Body::Paced(b) => b.len(),
            Body::Stalled(_) => usize::MAX,
        };
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Case { name, method, path, headers, body, status, small: size as u64 <= DRAIN_MAX, body_first: false, parallel: 1 }
    }

    fn body_first(self) -> Case {
        Case { body_first: true, ..self }
    }

    fn parallel(self) -> Case {
        Case { parallel: ROUNDS, ..self }
    }
}

enum Outcome {
    KeptAlive,
    Closed,
}

/// Some JSON of about `n` bytes.
fn json_of(n: usize) -> Vec<u8> {
    format!("{{\"name\":\"{}\",\"m\":[\"a\",\"b\"]}}", "x".repeat(n)).into_bytes()
}

/// One round: the request on a fresh connection, its answer, then the next request or the end.
async fn round(target: &Target, case: &Case, pause: Duration) -> Result<Outcome, String> {
    let mut c = target.connect().await.map_err(|e| format!("connecting: {e}"))?;
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    c.write(&raw::head(case.method, &case.path, &headers, &case.body)).await?;
    let mut writer = Some(c.write_in_background(pause, &case.body));
    if case.body_first {
        c.writer_done(writer.take().expect("the writer")).await?;
    }
    let a = c.answer().await?;
    check_answer(case, &a)?;
    if a.closes() {
        return c.end_of_stream().await.map(|_| Outcome::Closed);
    }
    if let Some(w) = writer {
        c.writer_done(w).await?;
    }
    c.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.map_err(|e| format!("the next request: {e}"))?;
    let next = c.answer().await.map_err(|e| format!("the next request: {e}"))?;
    if next.status != 200 {
        return Err(format!("the next request: status {}", next.status));
    }
    Ok(Outcome::KeptAlive)
}

/// The answer is the one expected, whole: its status and a JSON body of the length announced.
fn check_answer(case: &Case, a: &Answer) -> Result<(), String> {
    let body = String::from_utf8_lossy(&a.body);
    if a.status != case.status {
        return Err(format!("status {} ({body})", a.status));
    }
    serde_json::from_slice::<Value>(&a.body).map_err(|e| format!("not a whole JSON answer ({e}): {body}"))?;
    Ok(())
}

/// Every case `ROUNDS` times; one report line a case, then the failures.
async fn check(scheme: &str, target: &Target, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let (mut kept, mut closed, mut failed) = (0, 0, 0);
        let outcomes = futures_util::stream::iter(0..ROUNDS)
            .map(|i| async move {
                let pause = if i % 2 == 1 { LATER } else { Duration::ZERO };
                match round(target, case, pause).await {
                    Ok(Outcome::Closed) if case.small => Err("closed although the body was small".to_string()),
                    other => other,
                }
            })
            .buffered(case.parallel)
            .collect::<Vec<_>>()
            .await;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(Outcome::KeptAlive) => kept += 1,
                Ok(Outcome::Closed) => closed += 1,
                Err(e) => {
                    failed += 1;
                    failures.push(format!("{} round {i}: {e}", case.name));
                }
            }
        }
        eprintln!("{scheme}, {}: of {ROUNDS}, {kept} kept alive, {closed} closed cleanly, {failed} failed", case.name);
    }
    assert!(failures.is_empty(), "{} of {} rounds failed:\n{}", failures.len(), ROUNDS * cases.len(), failures.join("\n"));
}

/// A refused small POST on each face (and once chunked), a 2 MB body, GET and DELETE with bodies.
async fn cases(srv: &TestServer) -> Vec<Case> {
    let em = srv.em(Plan::Standard).await;
    let keys = &em.app.keys;
    let lc_bad = [("X-LC-Id", keys.leancloud.app_id.as_str()), ("X-LC-Key", "wrong,master"), ("Content-Type", "application/json")];
    let master = format!("{},master", keys.leancloud.master_key);
    let lc_master = [("X-LC-Id", keys.leancloud.app_id.as_str()), ("X-LC-Key", master.as_str()), ("Content-Type", "application/json")];
    let em_path = |p: &str| format!("/{}/{}{p}", keys.easemob.org_name, keys.easemob.app_name);
    let bearer = format!("Bearer {}", em.token);
    let small = || Body::Sized(json_of(2000));
    let em_bad = [("Authorization", "Bearer wrong"), ("Content-Type", "application/json")];
    vec![
        Case::new("LeanCloud 401, small POST", "POST", "/1.2/rtm/conversations".into(), &lc_bad, small(), 401),
        Case::new(
            "MaxIM bad token, small POST",
            "POST",
            "/message/send".into(),
            &[("app_id", keys.maxim.app_id.as_str()), ("access-token", "wrong"), ("Content-Type", "application/json")],
            small(),
            200,
        ),
        Case::new("Easemob 401, small POST", "POST", em_path("/messages/users"), &em_bad, small(), 401),
        Case::new("Easemob 401, small chunked POST", "POST", em_path("/messages/users"), &em_bad, Body::Chunked(json_of(2000)), 401),
        Case::new("413, 2 MB body", "POST", "/1.2/rtm/conversations".into(), &lc_master, Body::Sized(json_of(2 * 1024 * 1024)), 413),
        // the client is still sending when the answer comes, and reads only when it is done
        Case::new(
            "413, 4 MB body sent slowly, whole before reading",
            "POST",
            "/1.2/rtm/conversations".into(),
            &lc_master,
            Body::Paced(json_of(4 << 20)),
            413,
        )
        .body_first(),
        Case::new(
            "Easemob 401, a body that stops half-way",
            "POST",
            em_path("/messages/users"),
            &em_bad,
            Body::Stalled(json_of(2000)),
            401,
        )
        .parallel(),
        Case::new("GET with a body", "GET", "/healthz".into(), &[("Content-Type", "application/json")], small(), 200),
        Case::new(
            "DELETE with a body",
            "DELETE",
            em_path("/users/nobody"),
            &[("Authorization", bearer.as_str()), ("Content-Type", "application/json")],
            small(),
            404,
        ),
    ]
}

#[tokio::test]
async fn an_early_answer_leaves_the_connection_usable_or_closes_it_cleanly() {
    let srv = TestServer::start().await;
    let cases = cases(&srv).await;
    check("http", &Target::plain(srv.addr()), &cases).await;
    srv.stop().await;
}

#[tokio::test]
async fn an_early_answer_over_tls_too() {
    let (srv, cert) = TestServer::start_tls().await;
    let cases = cases(&srv).await;
    check("https", &Target::tls(srv.addr(), cert), &cases).await;
    srv.stop().await;
}
