//! The runtime on a real NATS server (`CONFAB_TEST_NATS_URL`; CI sets it, `.ci/run`): several
//! nodes of one cluster in one process, each its own connection, as separate processes would be.
//! Without the variable there is nothing to run against: the tests say so, and fail when
//! `CONFAB_REQUIRE_NATS` is set (as CI sets it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::bus::{Bus, Event, KickReason};
use confab_engine::limits::{RateLimiter, RateRule};
use confab_engine::model::{Broadcast, Content, Message};
use confab_engine::runtime::{Claim, Dedup, Invalidate, Invalidation};
use confab_engine::{Presence, SessionRef};
use confab_runtime_nats::{NatsRuntime, NODE_TIMEOUT};

fn nats_url() -> Option<String> {
    match std::env::var("CONFAB_TEST_NATS_URL") {
        Ok(u) => Some(u),
        Err(_) => {
            assert!(std::env::var_os("CONFAB_REQUIRE_NATS").is_none(), "CONFAB_REQUIRE_NATS is set but CONFAB_TEST_NATS_URL is not");
            eprintln!("CONFAB_TEST_NATS_URL is not set: no NATS to test against");
            None
        }
    }
}

/// A cluster namespace of its own for a test.
fn fresh_ns() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("t{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

async fn nodes(url: &str, ns: &str, ids: &[u16]) -> Vec<NatsRuntime> {
    let mut out = Vec::new();
    for id in ids {
        out.push(NatsRuntime::connect(url, ns, *id).await.expect("a node connects"));
    }
    out
}

fn session(node: u16, session: u64) -> SessionRef {
    SessionRef { node, session, tag: None, device: None }
}

/// Wait (a few seconds at most) for `check` to hold.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5) + NODE_TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message_to(app: i64, from: &str, recipients: &[&str]) -> Event {
    let msg = Message::new(app, 1, 7, from, 1_000, Content::Text("hi".into()));
    Event::Message {
        app,
        conv: confab_engine::model::ConvRef { id: 7, kind: confab_engine::model::ConvKind::Normal, foreign_id: None },
        msg: Arc::new(msg),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        no_sync: false,
        origin: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_nodes_holding_their_recipients_and_only_those() {
    let Some(url) = nats_url() else { return };
    let ns = fresh_ns();
    let mut cluster = nodes(&url, &ns, &[1, 2, 3]).await;
    let (mut at1, mut at2, mut at3) = (cluster[0].bus().subscribe(), cluster[1].bus().subscribe(), cluster[2].bus().subscribe());
    // bob is on node 2
    cluster[1].presence().session_opened(1, "bob", session(2, 10), 1_000).await.unwrap();
    let p1 = cluster[0].presence();
    eventually("node 1 sees bob online", || {
        let p1 = p1.clone();
        async move { p1.online(1, &["bob".to_string()]).await.unwrap() == vec!["bob".to_string()] }
    })
    .await;
    // alice on node 1 writes to bob: node 1's own gateways hear it, node 2 hears it, node 3 not
    cluster[0].bus().publish(message_to(1, "alice", &["alice", "bob"])).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), at2.recv()).await.expect("node 2 hears it").unwrap();
    assert!(matches!(&*got, Event::Message { recipients, .. } if recipients.contains(&"bob".to_string())));
    assert!(matches!(&*at1.recv().await.unwrap(), Event::Message { .. }), "node 1's own gateways hear it");
    // a broadcast goes to every node; it comes after the message on node 3 if the message went there
    cluster[0].bus().publish(Event::Broadcast { app: 1, broadcast: Arc::new(broadcast()) }).unwrap();
    let first_at_3 = tokio::time::timeout(Duration::from_secs(5), at3.recv()).await.expect("node 3 hears the broadcast").unwrap();
    assert!(matches!(&*first_at_3, Event::Broadcast { .. }), "node 3 holds no recipient of the message: {first_at_3:?}");
    // a kick for bob's session goes to his node
    cluster[2]
        .bus()
        .publish(Event::Kick { app: 1, user: "bob".into(), session: Some(session(2, 10)), reason: KickReason::Conflict })
        .unwrap();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), at2.recv()).await.expect("node 2 hears the kick").unwrap();
        if matches!(&*e, Event::Kick { .. }) {
            break;
        }
    }
    let first = cluster.remove(0);
    drop(cluster);
    first.destroy().await.unwrap();
}

fn broadcast() -> Broadcast {
    Broadcast {
        app: 1,
        id: 2,
        conv: 7,
        from: "admin".into(),
        content: Content::Text("to all".into()),
        timestamp: 1_000,
        valid_till: 9_000,
        push: None,
        transient: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_one_for_the_cluster_and_a_dead_nodes_sessions_vanish() {
    let Some(url) = nats_url() else { return };
    let ns = fresh_ns();
    let mut cluster = nodes(&url, &ns, &[1, 2]).await;
    let (p1, p2) = (cluster[0].presence(), cluster[1].presence());
    p1.session_opened(5, "ann", session(1, 1), 1_000).await.unwrap();
    p2.session_opened(5, "ann", session(2, 2), 1_000).await.unwrap();
    let mut both = p2.sessions(5, "ann").await.unwrap();
    both.sort();
    assert_eq!(both, vec![session(1, 1), session(2, 2)], "each node sees the sessions on both");
    // chat rooms: ann joins on node 1, node 2 counts her
    p1.room_join(5, 70, "ann", 1_000).await.unwrap();
    assert_eq!(p2.room_members(5, 70, 10, 1_000).await.unwrap(), vec!["ann".to_string()]);
    assert_eq!(p2.rooms_of(5, "ann", 1_000).await.unwrap(), vec![70]);
    // node 1 dies (no goodbye): its session goes when its heartbeat is missed
    let dead = cluster.remove(0);
    drop(dead);
    let p = p2.clone();
    eventually("node 1's session is gone", || {
        let p = p.clone();
        async move { p.sessions(5, "ann").await.unwrap() == vec![session(2, 2)] }
    })
    .await;
    // ann's session on node 2 keeps her online and in the room
    assert_eq!(p2.online(5, &["ann".to_string()]).await.unwrap(), vec!["ann".to_string()]);
    assert!(p2.in_room(5, 70, "ann", 2_000).await.unwrap());
    // her last session closes: offline, in the room for the grace, then not
    p2.session_closed(5, "ann", &session(2, 2), 3_000).await.unwrap();
    assert!(p2.sessions(5, "ann").await.unwrap().is_empty());
    assert_eq!(p2.room_count(5, 70, 3_000).await.unwrap(), 0);
    assert!(p2.in_room(5, 70, "ann", 3_000 + 60_000).await.unwrap());
    assert!(!p2.in_room(5, 70, "ann", 3_000 + confab_engine::presence::ROOM_GRACE_MS).await.unwrap());
    cluster.remove(0).destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_run_once_are_one_for_the_cluster() {
    let Some(url) = nats_url() else { return };
    let ns = fresh_ns();
    let mut cluster = nodes(&url, &ns, &[1, 2]).await;
    let (r1, r2) = (cluster[0].rate_limiter(), cluster[1].rate_limiter());
    let rule = RateRule::minute(10);
    // 24 calls from two nodes at once: the cluster admits 10, not 10 per node
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..24 {
        let r: Arc<dyn RateLimiter> = if i % 2 == 0 { r1.clone() } else { r2.clone() };
        calls.spawn(async move { r.check(9, "lc.message", rule, 50_000).await.is_ok() });
    }
    let mut admitted = 0;
    while let Some(ok) = calls.join_next().await {
        admitted += usize::from(ok.unwrap());
    }
    assert_eq!(admitted, 10);
    // and the refusal says how long to wait
    let err = r2.check(9, "lc.message", rule, 51_000).await.unwrap_err();
    assert!(matches!(err, confab_engine::Error::RateLimited { .. }), "{err:?}");
    // run once: the first node runs it, the second sees it running, then its result
    let (d1, d2) = (cluster[0].dedup(), cluster[1].dedup());
    assert_eq!(d1.claim(9, "tx-1", 1_000, 60_000).await.unwrap(), Claim::First);
    assert_eq!(d2.claim(9, "tx-1", 1_001, 60_000).await.unwrap(), Claim::Running);
    d1.finish(9, "tx-1", Some(&serde_json::json!({"ok": 1})), 60_000).await.unwrap();
    assert_eq!(d2.claim(9, "tx-1", 1_002, 60_000).await.unwrap(), Claim::Done(serde_json::json!({"ok": 1})));
    // after its window it may run again
    assert_eq!(d2.claim(9, "tx-1", 60_001, 120_000).await.unwrap(), Claim::First);
    // invalidations cross
    let mut heard = cluster[1].invalidation().subscribe();
    cluster[0].invalidation().publish(Invalidate::Apps);
    let what = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await.expect("node 2 hears it").unwrap();
    assert_eq!(what, Invalidate::Apps);
    let last = cluster.remove(1);
    drop(cluster);
    last.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_allowance_is_leased_in_parts_and_never_passed() {
    let Some(url) = nats_url() else { return };
    let ns = fresh_ns();
    let mut cluster = nodes(&url, &ns, &[1, 2, 3]).await;
    // 3,000 a minute: leases of 30; three nodes try 4,500 calls at once, 1,500 each
    let rule = RateRule::minute(3_000);
    assert_eq!(confab_runtime_nats::lease_size(rule), 30);
    let mut calls = tokio::task::JoinSet::new();
    for node in &cluster {
        let r: Arc<dyn RateLimiter> = node.rate_limiter();
        calls.spawn(async move {
            let mut admitted = 0u32;
            for _ in 0..1_500 {
                admitted += u32::from(r.check(4, "lc.message", rule, 70_000).await.is_ok());
            }
            admitted
        });
    }
    let mut admitted = 0;
    while let Some(n) = calls.join_next().await {
        admitted += n.unwrap();
    }
    // never more than the allowance (no call went through uncounted under contention), and short
    // of it by at most the leases the nodes hold unspent
    assert!(admitted <= 3_000, "admitted {admitted}");
    assert!(admitted >= 3_000 - 3 * 30, "admitted {admitted}");
    // a small allowance is exact: one unit at a time
    assert_eq!(confab_runtime_nats::lease_size(RateRule::minute(100)), 1);
    let last = cluster.remove(0);
    drop(cluster);
    last.destroy().await.unwrap();
}
