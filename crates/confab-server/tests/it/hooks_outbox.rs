//! The push hand-off and the outbox behind every call after the fact, over real HTTP: a message to
//! offline members reaches the app's relay signed, in LeanCloud's payload priority; a relay that
//! fails, is down, is slow or answers garbage delays pushes and never loses them, across a
//! restart; failed calls are kept, listed and requeued (`confab app hooks`); counters are kept.

use std::time::{Duration, Instant};

use crate::common::receiver::{Call, Receiver, Reply};
use crate::common::*;
use confab_engine::model::Plan;
use confab_server::{Config, Server};
use hmac::Mac;
use serde_json::{json, Value};

const RELAY: &str = "/push";
const SECRET: &str = "relay-secret";
const WAIT: Duration = Duration::from_secs(15);

/// A server whose outbox retries quickly.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.outbox_first_retry_ms = 100;
        c.outbox_max_retry_secs = 1;
        c.shutdown_grace_secs = 1;
    })
    .await
}

async fn app_with_relay(srv: &TestServer, relay: &Receiver) -> LcApp {
    let app = srv.app(Plan::Standard).await;
    let url = relay.url(RELAY);
    let app = srv
        .engine()
        .apps()
        .set_app_settings(&app.app.name, &[("push.webhook_url", &url), ("push.secret", SECRET)])
        .await
        .expect("settings");
    LcApp { app, base: srv.base.clone(), http: srv.http.clone() }
}

/// What the relay checks: `X-Confab-Signature: v1=hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
#[track_caller]
fn assert_signed(call: &Call, secret: &str) {
    let ts = call.header("x-confab-timestamp").expect("a timestamp header");
    let ts_ms: i64 = ts.parse().expect("a number of ms");
    assert!((ts_ms - now_ms()).abs() < 60_000, "the timestamp is now: {ts}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&call.raw);
    let want = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(call.header("x-confab-signature"), Some(want.as_str()), "signature over the exact body");
}

fn to(call: &Call) -> Vec<String> {
    serde_json::from_value(call.body["to"].clone()).expect("to: a list of client ids")
}

#[tokio::test]
async fn offline_members_get_a_signed_push_in_leanclouds_payload_priority() {
    let srv = server().await;
    let relay = Receiver::start().await;
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "trio", "m": ["tom", "jerry", "spike"]})).await;

    // nobody is online: one push for the message, naming both other members, with the template
    let (msg_id, ts) = app.send(&conv, "tom", "hello").await;
    let calls = relay.wait_calls(RELAY, 1, WAIT).await;
    let c = &calls[0];
    assert_signed(c, SECRET);
    let b = &c.body;
    assert_eq!(b["kind"], "message");
    assert_eq!(b["convId"], conv.as_str());
    assert_eq!(b["msgId"], msg_id.as_str());
    assert_eq!(b["from"], "tom");
    assert_eq!(b["timestamp"], ts);
    assert_eq!(b["app"], app.app.name.as_str());
    assert_eq!(b["appId"], app.app_id());
    assert!(b["id"].as_str().is_some_and(|s| !s.is_empty()), "an id the relay can deduplicate by: {b}");
    let mut who = to(c);
    who.sort();
    assert_eq!(who, ["jerry", "spike"], "the sender is never pushed to");
    assert_eq!(b["payload"], json!({"alert": "您有新的消息", "badge": "Increment"}), "the app's default template");

    // the message's own push data comes before the template
    let push_data = json!({"alert": "tom: dinner?", "sound": "default"});
    let r = app
        .post(
            &format!("/1.2/rtm/conversations/{conv}/messages"),
            json!({"from_client": "tom", "message": "dinner?", "push_data": push_data}),
        )
        .await;
    r.ok();
    let calls = relay.wait_calls(RELAY, 2, WAIT).await;
    assert_eq!(calls[1].body["payload"], push_data);

    // a template of the app's own, with its placeholders filled
    srv.engine()
        .apps()
        .set_app_settings(&app.app.name, &[("push.template", r#"{"alert":"${fromClientId} wrote in ${convId}","badge":1}"#)])
        .await
        .expect("template");
    app.send(&conv, "jerry", "hi").await;
    let calls = relay.wait_calls(RELAY, 3, WAIT).await;
    assert_eq!(calls[2].body["payload"], json!({"alert": format!("jerry wrote in {conv}"), "badge": 1}));
    srv.stop().await;
}

#[tokio::test]
async fn online_members_and_members_who_muted_the_conversation_get_no_push() {
    let srv = server().await;
    let relay = Receiver::start().await;
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "four", "m": ["tom", "jerry", "spike", "tyke"]})).await;

    // jerry is online on a real WebSocket; tyke turned the conversation's notifications off
    let mut jerry = crate::common::ws::Client::connect(&srv.base).await;
    jerry.open(app.app_id(), Some("jerry")).await;
    app.post(&format!("/1.2/rtm/conversations/{conv}/mutes"), json!({"client_ids": ["tyke"]})).await.ok();

    app.send(&conv, "tom", "hello").await;
    let calls = relay.wait_calls(RELAY, 1, WAIT).await;
    assert_eq!(to(&calls[0]), ["spike"], "online jerry and muting tyke are left out");

    // a message to online members only makes no push at all
    let pair = app.conversation(json!({"name": "pair", "m": ["tom", "jerry"]})).await;
    app.send(&pair, "tom", "you are online").await;
    // a push would be in the outbox with the message: once nothing is pending, it was made or not
    nothing_pending(&srv, &app).await;
    assert_eq!(relay.calls_to(RELAY).len(), 1, "no push for online jerry: {:?}", relay.calls_to(RELAY));
    srv.stop().await;
}

/// Wait until the app has no call waiting in the outbox (each is made, or kept as failed).
async fn nothing_pending(srv: &TestServer, app: &LcApp) {
    eventually(10, || async {
        let r = srv.engine().app_code().hook_report(&app.app, 10).await.expect("report");
        (r.pending == 0).then_some(())
    })
    .await;
}

/// Longer than the outbox's poll (1 s): a call due by then has been made.
const ONE_POLL: Duration = Duration::from_millis(1500);

/// Wait until the app's pending push has `n` failed attempts on record.
async fn attempts_recorded(srv: &TestServer, app: &LcApp, n: u32) {
    let (store, app_id) = (srv.store(), app.app.id);
    eventually(10, || {
        let store = store.clone();
        async move { store.outbox_list(app_id, false, 10).await.unwrap().iter().any(|i| i.attempts >= n).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_failing_relay_gets_the_push_again_until_it_takes_it_once() {
    // waits of a minute, doubling: the test moves the server's time on instead of waiting
    let srv = TestServer::start_with(|c| {
        c.outbox_first_retry_ms = 60_000;
        c.outbox_max_retry_secs = 3600;
        c.shutdown_grace_secs = 1;
    })
    .await;
    let relay = Receiver::start().await;
    relay.script(RELAY, vec![Reply::status(500), Reply::status(503), Reply::ok(json!({}))]);
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "pair", "m": ["tom", "jerry"]})).await;
    app.send(&conv, "tom", "hello").await;
    relay.wait_calls(RELAY, 1, WAIT).await;
    // the clock moves only once the failure is recorded (its next try is set from that time)
    attempts_recorded(&srv, &app, 1).await;

    // a wait before trying again: not before the first wait is over, then at once
    // (margins of seconds: real time passes too)
    srv.advance(Duration::from_secs(50));
    tokio::time::sleep(ONE_POLL).await;
    assert_eq!(relay.calls_to(RELAY).len(), 1, "tried again before the wait was over");
    srv.advance(Duration::from_secs(11));
    relay.wait_calls(RELAY, 2, WAIT).await;
    attempts_recorded(&srv, &app, 2).await;
    // the wait doubles: a minute more is not enough, two are
    srv.advance(Duration::from_secs(60));
    tokio::time::sleep(ONE_POLL).await;
    assert_eq!(relay.calls_to(RELAY).len(), 2, "the second wait is not shorter than twice the first");
    srv.advance(Duration::from_secs(61));
    let calls = relay.wait_calls(RELAY, 3, WAIT).await;
    assert_eq!(calls[0].body["id"], calls[2].body["id"], "the same push, tried again");

    // taken once: nothing is left to make
    nothing_pending(&srv, &app).await;
    assert_eq!(relay.calls_to(RELAY).len(), 3, "taken once, made no more");

    // the counters: three calls, two failures
    let report = eventually(10, || async {
        let r = srv.engine().app_code().hook_report(&app.app, 10).await.expect("report");
        r.stats.iter().find(|s| s.sink == "push" && s.name == "message" && s.calls >= 3).cloned()
    })
    .await;
    assert_eq!((report.calls, report.failures, report.timeouts), (3, 2, 0));
    let report = srv.engine().app_code().hook_report(&app.app, 10).await.unwrap();
    assert_eq!((report.pending, report.failed), (0, 0));
    srv.stop().await;
}

#[tokio::test]
async fn bad_relay_answers_are_retried_and_harm_nothing() {
    let srv = server().await;
    let relay = Receiver::start().await;
    // an endless answer, garbage with 200 (fine: the relay's body means nothing), a redirect
    relay.script(RELAY, vec![Reply::raw(200, "x".repeat(2 << 20)), Reply::raw(302, ""), Reply::raw(200, "<html>not json")]);
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "pair", "m": ["tom", "jerry"]})).await;
    app.send(&conv, "tom", "hello").await;
    let calls = relay.wait_calls(RELAY, 3, WAIT).await;
    assert_eq!(calls[0].body["id"], calls[2].body["id"]);
    // the server serves on
    let (_, _) = app.send(&conv, "jerry", "still here").await;
    relay.wait_calls(RELAY, 4, WAIT).await;
    let r = srv.engine().app_code().hook_report(&app.app, 10).await.unwrap();
    assert_eq!((r.pending, r.failed), (0, 0), "everything delivered in the end");
    srv.stop().await;
}

/// Stop the server and start a new one on the same data directory.
async fn restart(srv: &mut TestServer, settings: impl FnOnce(&mut Config)) {
    srv.server.take().expect("running").shutdown().await.expect("clean shutdown");
    start_again(srv, settings).await;
}

/// Start a server again on a stopped one's data directory.
async fn start_again(srv: &mut TestServer, settings: impl FnOnce(&mut Config)) {
    let mut config = srv.config_again();
    settings(&mut config);
    let server = Server::start(&config).await.expect("the server starts again");
    srv.base = format!("http://{}", server.addr);
    srv.server = Some(server);
}

#[tokio::test]
async fn pushes_waiting_at_a_stop_are_made_after_the_restart() {
    let mut srv = server().await;
    let relay = Receiver::start().await;
    let addr = relay.addr;
    // the first call hangs past the shutdown: it is cut short and released, not left leased
    relay.script(RELAY, vec![Reply::ok(json!({})).after(Duration::from_secs(30))]);
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "pair", "m": ["tom", "jerry"]})).await;
    app.send(&conv, "tom", "in flight at the stop").await;
    relay.wait_calls(RELAY, 1, WAIT).await;
    relay.stop().await;
    // the relay is down: these wait in the outbox
    app.send(&conv, "tom", "while the relay is down").await;
    app.send(&conv, "jerry", "also while it is down").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    restart(&mut srv, |c| {
        c.outbox_first_retry_ms = 100;
        c.outbox_max_retry_secs = 1;
    })
    .await;
    let relay = Receiver::start_on(addr).await;
    let calls = relay.wait_calls(RELAY, 3, WAIT).await;
    let mut texts: Vec<String> = calls.iter().map(|c| c.body["from"].as_str().unwrap().to_string()).collect();
    texts.sort();
    assert_eq!(texts, ["jerry", "tom", "tom"], "all three pushes, the cut-short one included, well before its lease");
    srv.stop().await;
}

#[tokio::test]
async fn a_slow_relay_holds_up_only_its_own_app() {
    let srv = server().await;
    let slow = Receiver::start().await;
    slow.script(RELAY, vec![Reply::ok(json!({})).after(Duration::from_secs(4))]);
    let fast = Receiver::start().await;
    let a = app_with_relay(&srv, &slow).await;
    let b = app_with_relay(&srv, &fast).await;
    let ca = a.conversation(json!({"name": "a", "m": ["tom", "jerry"]})).await;
    let cb = b.conversation(json!({"name": "b", "m": ["tom", "jerry"]})).await;

    // app A's relay takes 4 s a call: 40 pushes wait on it, 16 at a time
    let started = Instant::now();
    for i in 0..40 {
        a.send(&ca, "tom", &format!("a{i}")).await;
    }
    assert!(started.elapsed() < Duration::from_secs(4), "sending does not wait for pushes: {:?}", started.elapsed());
    slow.wait_calls(RELAY, 16, WAIT).await;

    // app B is not held up by A's slow relay
    let sent = Instant::now();
    b.send(&cb, "tom", "b0").await;
    fast.wait_calls(RELAY, 1, WAIT).await;
    assert!(sent.elapsed() < Duration::from_secs(2), "B's push came in {:?}, while A's relay hangs", sent.elapsed());
    assert!(slow.calls_to(RELAY).len() <= 16, "A has at most 16 calls in flight");
    srv.stop().await;
}

#[tokio::test]
async fn failed_calls_are_kept_listed_by_the_cli_and_requeued() {
    let mut srv = TestServer::start_with(|c| {
        c.outbox_first_retry_ms = 50;
        c.outbox_max_retry_secs = 1;
        c.outbox_max_attempts = 2;
    })
    .await;
    let relay = Receiver::start().await;
    relay.script(RELAY, vec![Reply::status(500)]);
    let app = app_with_relay(&srv, &relay).await;
    let conv = app.conversation(json!({"name": "pair", "m": ["tom", "jerry"]})).await;
    app.send(&conv, "tom", "hello").await;
    relay.wait_calls(RELAY, 2, WAIT).await;
    let report = eventually(10, || async {
        let r = srv.engine().app_code().hook_report(&app.app, 10).await.unwrap();
        (r.failed == 1).then_some(r)
    })
    .await;
    assert_eq!(report.pending, 0);
    let item = &report.failed_items[0];
    assert_eq!((item.sink.as_str(), item.name.as_str(), item.attempts), ("push", "message", 2));
    assert_eq!(item.last_error.as_deref(), Some("the relay answered 500"));
    // however long the server waits
    srv.advance(Duration::from_secs(24 * 3600));
    tokio::time::sleep(ONE_POLL).await;
    assert_eq!(relay.calls_to(RELAY).len(), 2, "a failed call is not tried again by itself");

    // the CLI lists it, with the counters, and requeues it on request
    srv.server.take().unwrap().shutdown().await.unwrap();
    let place = srv.store_args();
    let name = app.app.name.clone();
    let out: Value = serde_json::from_str(&crate::cli::ok_on(&place, &["app", "hooks", &name, "--json"]).await).expect("JSON");
    assert_eq!((out["pending"].as_i64(), out["failed"].as_i64()), (Some(0), Some(1)));
    assert_eq!(out["failed_items"][0]["last_error"], "the relay answered 500");
    let stat = out["stats"].as_array().unwrap().iter().find(|s| s["sink"] == "push").expect("push counters").clone();
    assert_eq!((stat["calls"].as_u64(), stat["failures"].as_u64()), (Some(2), Some(2)));
    let text = crate::cli::ok_on(&place, &["app", "hooks", &name]).await;
    assert!(
        text.contains("0 calls waiting, 1 failed") && text.contains("push/message: 2 attempts, last error: the relay answered 500"),
        "{text}"
    );
    let out: Value = serde_json::from_str(&crate::cli::ok_on(&place, &["app", "hooks", &name, "--retry-failed", "--json"]).await).unwrap();
    assert_eq!((out["requeued"].as_u64(), out["pending"].as_i64(), out["failed"].as_i64()), (Some(1), Some(1), Some(0)));

    // the relay mends; the next start makes the requeued call
    relay.script(RELAY, vec![Reply::ok(json!({}))]);
    start_again(&mut srv, |_| {}).await;
    relay.wait_calls(RELAY, 3, WAIT).await;
    let app = srv.engine().apps().find_app(&confab_engine::model::AppLookup::Name(name)).await.unwrap().unwrap();
    let r = eventually(10, || async {
        let r = srv.engine().app_code().hook_report(&app, 10).await.unwrap();
        (r.pending == 0).then_some(r)
    })
    .await;
    assert_eq!(r.failed, 0);
    srv.stop().await;
}
