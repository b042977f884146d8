//! Password logins under attack, over real HTTP on every face: a flood is answered 429 with
//! `Retry-After` beyond a bounded queue instead of growing memory, and failed logins back off per
//! user (refused before any hashing) until the wait has passed.

use std::time::Duration;

use crate::common::*;
use confab_engine::model::Plan;
use serde_json::{json, Value};

/// A login over one face: (status, body, Retry-After).
async fn login(srv: &TestServer, app: &EmApp, face: &str, user: &str, password: &str) -> Resp {
    let lc = srv.lc_of(app);
    let req = match face {
        "leancloud" => srv
            .http
            .post(format!("{}/1.1/login", srv.base))
            .header("X-LC-Id", lc.app_id())
            .header("X-LC-Key", lc.app_key())
            .json(&json!({"username": user, "password": password})),
        "easemob" => {
            srv.http.post(format!("{}/token", app.base)).json(&json!({"grant_type": "password", "username": user, "password": password}))
        }
        "maxim" => srv
            .http
            .post(format!("{}/token/user", srv.base))
            .header("app_id", &app.app.keys.maxim.app_id)
            .json(&json!({"name": user, "password": password})),
        other => panic!("no face {other}"),
    };
    Resp::read(req.send().await.expect("request")).await
}

/// Register `user` with `password` through `face`.
async fn register(srv: &TestServer, app: &EmApp, face: &str, user: &str, password: &str) {
    let ok = match face {
        "leancloud" => {
            let lc = srv.lc_of(app);
            let r = srv
                .http
                .post(format!("{}/1.1/users", srv.base))
                .header("X-LC-Id", lc.app_id())
                .header("X-LC-Key", lc.app_key())
                .json(&json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap();
            r.status().is_success()
        }
        "easemob" => app.post("/users", json!({"username": user, "password": password})).await.status == 200,
        "maxim" => {
            let r = srv
                .http
                .post(format!("{}/user/register/v2", srv.base))
                .header("app_id", &app.app.keys.maxim.app_id)
                .json(&json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["code"] == 200
        }
        other => panic!("no face {other}"),
    };
    assert!(ok, "register {user} through {face}");
}

/// A successful login in the face's own terms (MaxIM answers HTTP 200 with a body code).
fn logged_in(face: &str, r: &Resp) -> bool {
    r.status == 200 && (face != "maxim" || r.body["code"] == 200)
}

/// A wrong password in the face's own terms.
#[track_caller]
fn wrong_password(face: &str, r: &Resp) {
    match face {
        "leancloud" => r.assert_error(400, 210),
        "easemob" => assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_grant")), "{:?}", r.body),
        _ => assert_eq!((r.status, r.body["code"].as_i64()), (200, Some(10002)), "{:?}", r.body),
    }
}

/// Refused for now, in the face's own terms, with how long to wait.
#[track_caller]
fn backing_off(face: &str, r: &Resp) -> u64 {
    match face {
        "maxim" => {
            assert_eq!((r.status, r.body["code"].as_i64()), (200, Some(429)), "{:?}", r.body);
            r.retry_after.expect("Retry-After beside MaxIM's 429 code")
        }
        "leancloud" => {
            assert_eq!(r.body["code"], 429, "{:?}", r.body);
            r.assert_retry_after()
        }
        _ => {
            r.em_error(429, "reach_limit");
            r.assert_retry_after()
        }
    }
}

#[tokio::test]
async fn failed_logins_back_off_per_user_on_every_face_then_the_right_password_works() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    for face in ["leancloud", "easemob", "maxim"] {
        // (MaxIM usernames may not start with "maxim")
        let (user, other) = (format!("victim_of_{face}"), format!("bystander_of_{face}"));
        register(&srv, &app, face, &user, "the-right-one").await;
        register(&srv, &app, face, &other, "hers").await;
        for i in 0..5 {
            wrong_password(face, &login(&srv, &app, face, &user, &format!("guess-{i}")).await);
        }
        // the sixth attempt waits, even with the right password: nothing is hashed
        let wait = backing_off(face, &login(&srv, &app, face, &user, "the-right-one").await);
        assert!((1..=2).contains(&wait), "{face}: the first wait is a second, got {wait}");
        // another user of the same address is not held back
        assert!(logged_in(face, &login(&srv, &app, face, &other, "hers").await), "{face}: the bystander logs in");
        // after the wait, the right password works, and forgives the failures
        srv.advance(Duration::from_secs(wait));
        let r = login(&srv, &app, face, &user, "the-right-one").await;
        assert!(logged_in(face, &r), "{face}: {:?}", r.body);
        wrong_password(face, &login(&srv, &app, face, &user, "guess-again").await);
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_flood_of_logins_is_answered_429_beyond_the_bounded_queue() {
    // one hash at a time and two waiting: the rest of a burst is refused at once, not queued
    let srv = TestServer::start_with(|c| {
        c.password_hash_workers = 1;
        c.password_hash_queue = 2;
    })
    .await;
    let app = srv.em(Plan::Standard).await;
    // distinct users (fewer than an address's allowance), so the refusals are the queue's
    let users: Vec<String> = (0..12).map(|i| format!("flooded_{i}")).collect();
    for u in &users {
        register(&srv, &app, "leancloud", u, "pw").await;
    }
    let answers = futures_util::future::join_all(users.iter().map(|u| login(&srv, &app, "leancloud", u, "wrong"))).await;
    let refused: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    for r in &answers {
        if r.status != 429 {
            wrong_password("leancloud", r);
        }
    }
    for r in &refused {
        assert_eq!(r.assert_retry_after(), 1, "a full queue: retry in a second");
    }
    assert!(!refused.is_empty(), "12 logins at once with room for 3: some are refused");
    assert!(answers.len() - refused.len() >= 3, "the admitted ones were checked");
    // nothing was lost: once the burst has passed, every user logs in
    for u in &users {
        assert!(logged_in("leancloud", &login(&srv, &app, "leancloud", u, "pw").await), "{u}");
    }
    srv.stop().await;
}
