//! The stand-in over real HTTP: auth, paging, faults, scan, listings, kinds, appending.

use std::sync::Arc;
use std::time::Duration;

use confab_leancloud_standin::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Api {
    server: StandInServer,
    http: reqwest::Client,
}

impl Api {
    async fn start(ds: Arc<Dataset>) -> Api {
        Api::with(ds, Faults::default()).await
    }

    async fn with(ds: Arc<Dataset>, faults: Faults) -> Api {
        let server = StandInServer::start_with(ds, faults).await.unwrap();
        Api { server, http: reqwest::Client::new() }
    }

    fn ds(&self) -> &Arc<Dataset> {
        self.server.dataset()
    }

    fn request(&self, path: &str, query: &[(&str, String)]) -> reqwest::RequestBuilder {
        let mut r = self.http.get(format!("{}{path}", self.server.url())).query(query);
        for (k, v) in self.server.master_headers() {
            r = r.header(k, v);
        }
        r
    }

    async fn try_get(&self, path: &str, query: &[(&str, String)]) -> reqwest::Result<(StatusCode, Value)> {
        let r = self.request(path, query).send().await?;
        let status = r.status();
        Ok((status, r.json().await?))
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> (StatusCode, Value) {
        self.try_get(path, query).await.unwrap()
    }

    /// GET, retrying 429s (as an importer does); the answer must be 200.
    async fn ok(&self, path: &str, query: &[(&str, String)]) -> Value {
        for _ in 0..20 {
            let (s, v) = self.get(path, query).await;
            if s == StatusCode::TOO_MANY_REQUESTS {
                continue;
            }
            assert_eq!(s, StatusCode::OK, "{path} {query:?}: {v}");
            return v;
        }
        panic!("{path}: still 429");
    }

    /// Walk a history endpoint to its end, `limit` at a time, resuming from the last message.
    async fn walk(&self, path: &str, limit: usize, reversed: bool, extra: &[(&str, String)]) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            q.extend(extra.iter().cloned());
            if reversed {
                q.push(("reversed", "true".into()));
            }
            if let Some(last) = out.last() {
                q.retain(|(k, _)| *k != "timestamp");
                q.push(("timestamp", last["timestamp"].to_string()));
                q.push(("msgid", last["msg-id"].as_str().unwrap().to_string()));
            }
            let page = self.ok(path, &q).await;
            let page = page.as_array().unwrap();
            if page.is_empty() {
                return out;
            }
            assert!(page.len() <= limit);
            out.extend(page.iter().cloned());
        }
    }
}

fn records(it: impl Iterator<Item = Message>) -> Vec<Value> {
    it.map(|m| m.record()).collect()
}

/// Equal lists, or a short account of the first difference.
fn same(got: &[Value], want: &[Value]) {
    if let Some(k) = (0..got.len().max(want.len())).find(|k| got.get(*k) != want.get(*k)) {
        panic!("{} vs {} records; first difference at {k}:\n got {:?}\nwant {:?}", got.len(), want.len(), got.get(k), want.get(k));
    }
}

fn small() -> DatasetSpec {
    DatasetSpec::default()
}

#[tokio::test]
async fn auth_is_the_master_key_or_401() {
    let api = Api::start(Dataset::generate(small())).await;
    let ds = api.ds().clone();
    let url = format!("{}/1.2/rtm/all-conversations", api.server.url());
    let unauthorized = json!({"code": 401, "error": "Unauthorized."});
    let ts = "1453014943466";
    let sign = |key: &str| {
        use md5::Digest;
        hex::encode(md5::Md5::digest(format!("{ts}{key}").as_bytes()))
    };
    let cases: Vec<(Vec<(&str, String)>, StatusCode)> = vec![
        (vec![], StatusCode::UNAUTHORIZED),
        (vec![("X-LC-Id", ds.app_id().into())], StatusCode::UNAUTHORIZED),
        (vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Key", ds.app_key().into())], StatusCode::UNAUTHORIZED),
        (vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Key", ds.master_key().into())], StatusCode::UNAUTHORIZED),
        (vec![("X-LC-Id", "other-app".into()), ("X-LC-Key", format!("{},master", ds.master_key()))], StatusCode::UNAUTHORIZED),
        (vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Key", format!("{},master", ds.master_key()))], StatusCode::OK),
        (vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Sign", format!("{},{ts},master", sign(ds.master_key())))], StatusCode::OK),
        (vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Sign", format!("{},{ts}", sign(ds.app_key())))], StatusCode::UNAUTHORIZED),
        (
            vec![("X-LC-Id", ds.app_id().into()), ("X-LC-Sign", format!("{},{ts},master", sign(ds.master_key()).to_uppercase()))],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (headers, want) in cases {
        let mut r = api.http.get(&url);
        for (k, v) in &headers {
            r = r.header(*k, v);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), want, "{headers:?}");
        if want == StatusCode::UNAUTHORIZED {
            assert_eq!(r.json::<Value>().await.unwrap(), unauthorized);
        }
    }
    assert_eq!(api.server.stats().route(routes::ALL_CONVERSATIONS).unauthorized, 7);
}

#[tokio::test]
async fn history_walks_every_message_once_both_ways() {
    let ds = Dataset::generate(DatasetSpec { messages_per_conversation: 2_345, same_ms_every: 4, ..small() });
    let api = Api::start(ds.clone()).await;
    for kind in [ConvKind::Group, ConvKind::Unique, ConvKind::ChatRoom] {
        let id = &ds.conversation_ids(kind)[0];
        let path = format!("/1.2/rtm/{}/{id}/messages", kind.resource());
        let oldest_first = records(ds.messages(id));
        let newest_first = records(ds.messages_newest_first(id));
        same(&api.walk(&path, 1000, true, &[]).await, &oldest_first);
        same(&api.walk(&path, 1000, false, &[]).await, &newest_first);
        same(&api.walk(&path, 333, false, &[]).await, &newest_first);
    }
    // a service conversation, per subscriber
    let sys = &ds.conversation_ids(ConvKind::Service)[0];
    for s in ds.subscribers(sys) {
        let path = format!("/1.2/rtm/service-conversations/{sys}/subscribers/{}/messages", urlencoding_path(&s.client_id));
        let got = api.walk(&path, 1000, true, &[]).await;
        assert_eq!(got, records(ds.subscriber_messages(sys, &s.client_id)));
        assert!(got.iter().all(|r| r["conv-id"] == json!(subscriber_log_id(sys, &s.client_id)) && r["to"] == json!(sys)));
    }
    // limit: default 100, at most 1000
    let g = &ds.conversation_ids(ConvKind::Group)[0];
    let path = format!("/1.2/rtm/conversations/{g}/messages");
    assert_eq!(api.ok(&path, &[]).await.as_array().unwrap().len(), 100);
    assert_eq!(api.ok(&path, &[("limit", "5000".into())]).await.as_array().unwrap().len(), 1000);
}

/// Percent-encode a path segment (client ids here have `@` and non-ASCII characters).
fn urlencoding_path(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn an_unencoded_plus_in_msgid_is_a_space() {
    let ds = Dataset::generate(small());
    let api = Api::start(ds.clone()).await;
    let g = &ds.conversation_ids(ConvKind::Group)[0];
    let all: Vec<Message> = ds.messages(g).collect();
    let m = all.iter().find(|m| m.msg_id.contains('+')).unwrap();
    let path = format!("/1.2/rtm/conversations/{g}/messages");
    let encoded =
        api.ok(&path, &[("timestamp", m.timestamp.to_string()), ("msgid", m.msg_id.clone()), ("include_start", "true".into())]).await;
    assert_eq!(encoded[0]["msg-id"], json!(m.msg_id));
    let raw = format!("{}{path}?timestamp={}&msgid={}&include_start=true", api.server.url(), m.timestamp, m.msg_id);
    let mut r = api.http.get(raw);
    for (h, v) in api.server.master_headers() {
        r = r.header(h, v);
    }
    let wrong: Value = r.send().await.unwrap().json().await.unwrap();
    assert!(wrong.as_array().unwrap().first().is_none_or(|x| x["msg-id"] != json!(m.msg_id)));
}

#[tokio::test]
async fn app_wide_history_and_one_senders() {
    let ds = Dataset::generate(DatasetSpec { services: 0, temporary: 2, messages_per_conversation: 300, ..small() });
    let api = Api::start(ds.clone()).await;
    let expected = records(ds.app_messages());
    assert_eq!(expected.len(), ds.conversations().iter().map(|c| c.message_count as usize).sum::<usize>());
    same(&api.walk(routes::APP_MESSAGES, 1000, true, &[]).await, &expected);
    let newest: Vec<Value> = expected.iter().rev().cloned().collect();
    same(&api.walk(routes::APP_MESSAGES, 777, false, &[]).await, &newest);
    // temporary conversations: messages, no row
    let tmp = &ds.conversation_ids(ConvKind::Temporary)[0];
    assert!(tmp.starts_with("_tmp:"));
    assert!(expected.iter().any(|r| r["conv-id"] == json!(tmp) && r["to"] == json!(tmp)));
    assert!(ds.rows("_Conversation").unwrap().iter().all(|r| r["objectId"] != json!(tmp)));
    // one sender
    let client = ds.conversation(&ds.conversation_ids(ConvKind::Group)[0]).unwrap().members[0].clone();
    let path = format!("/1.2/rtm/clients/{}/messages", urlencoding_path(&client));
    let mine = api.walk(&path, 1000, true, &[]).await;
    assert!(!mine.is_empty());
    assert_eq!(mine, expected.iter().filter(|r| r["from"] == json!(client)).cloned().collect::<Vec<_>>());
}

#[tokio::test]
async fn app_wide_history_copies_service_messages_per_subscriber() {
    let ds = Dataset::generate(DatasetSpec { groups: 0, unique_pairs: 0, chat_rooms: 0, services: 1, ..small() });
    let api = Api::start(ds.clone()).await;
    let sys = &ds.conversation_ids(ConvKind::Service)[0];
    let per_user: usize = ds.subscribers(sys).iter().map(|s| ds.subscriber_messages(sys, &s.client_id).count()).sum();
    let all = api.ok(routes::APP_MESSAGES, &[("limit", "1000".into()), ("reversed", "true".into())]).await;
    assert_eq!(all.as_array().unwrap().len(), per_user);
    assert_eq!(all, json!(records(ds.app_messages())));
}

#[tokio::test]
async fn wrong_kinds_and_unknown_ids() {
    let ds = Dataset::generate(small());
    let api = Api::start(ds.clone()).await;
    let room = &ds.conversation_ids(ConvKind::ChatRoom)[0];
    let group = &ds.conversation_ids(ConvKind::Group)[0];
    let sys = &ds.conversation_ids(ConvKind::Service)[0];
    let cases = [
        (format!("/1.2/rtm/conversations/{room}/messages"), 400, json!({"code": 4314, "error": "NORMAL_CONVERSATION_REQUIRED"})),
        (format!("/1.2/rtm/conversations/{sys}/messages"), 400, json!({"code": 4314, "error": "NORMAL_CONVERSATION_REQUIRED"})),
        (format!("/1.2/rtm/chatrooms/{group}/messages"), 400, json!({"code": 4316, "error": "TRANSIENT_CONVERSATION_REQUIRED"})),
        (
            format!("/1.2/rtm/service-conversations/{group}/subscribers/x/messages"),
            400,
            json!({"code": 4313, "error": "SYSTEM_CONVERSATION_REQUIRED"}),
        ),
        (
            format!("/1.2/rtm/service-conversations/{group}/subscribers"),
            400,
            json!({"code": 4313, "error": "SYSTEM_CONVERSATION_REQUIRED"}),
        ),
        ("/1.2/rtm/conversations/5a5ecde6c3422b738c8779d7/messages".into(), 200, json!([])),
        (format!("/1.2/rtm/service-conversations/{sys}/subscribers/nobody/messages"), 200, json!([])),
        ("/1.2/rtm/conversations/5a5ecde6c3422b738c8779d7/mutes".into(), 404, json!({"code": 4303, "error": "CONVERSATION_NOT_FOUND"})),
        (format!("/1.2/rtm/conversations/{room}/mutes"), 400, json!({"code": 4314, "error": "NORMAL_CONVERSATION_REQUIRED"})),
        ("/1.1/scan/classes/Nope".into(), 404, json!({"code": 101, "error": "Class or object doesn't exists."})),
        ("/1.2/rtm/nothing-here".into(), 404, json!({"code": 404, "error": "Not Found"})),
    ];
    for (path, status, body) in cases {
        assert_eq!(api.get(&path, &[]).await, (StatusCode::from_u16(status).unwrap(), body), "{path}");
    }
    let path = format!("/1.2/rtm/conversations/{group}/messages");
    for bad in [vec![("msgid", "abc")], vec![("timestamp", "soon")], vec![("reversed", "yes")], vec![("till_msgid", "abc")]] {
        let q: Vec<(&str, String)> = bad.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (s, v) = api.get(&path, &q).await;
        assert_eq!((s, &v["code"]), (StatusCode::BAD_REQUEST, &json!(1)), "{bad:?}");
    }
}

#[tokio::test]
async fn conversations_scan_mutes_subscribers() {
    let ds = Dataset::generate(DatasetSpec { groups: 12, subscribers_per_service: 7, ..small() });
    let api = Api::start(ds.clone()).await;
    // scan: objectId order, a cursor until a short page
    for class in CLASSES {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = vec![("limit", "3".to_string())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = api.ok(&format!("/1.1/scan/classes/{class}"), &q).await;
            pages += 1;
            rows.extend(page["results"].as_array().unwrap().iter().cloned());
            match &page["cursor"] {
                Value::Null => break,
                Value::String(c) => cursor = Some(c.clone()),
                other => panic!("cursor {other}"),
            }
        }
        assert_eq!(rows, ds.api_rows(class).unwrap(), "{class}");
        assert_eq!(pages, rows.len() / 3 + 1, "{class}");
    }
    let users = ds.api_rows("_User").unwrap();
    assert!(users.iter().all(|u| u.get("password").is_none() && u.get("salt").is_none() && u.get("sessionToken").is_none()));
    let q = [("where", json!({"tr": true}).to_string()), ("limit", "1000".into())];
    let rooms = api.ok("/1.1/scan/classes/_Conversation", &q).await;
    assert_eq!(rooms["results"].as_array().unwrap().len(), 2);
    assert_eq!(rooms["cursor"], Value::Null);
    assert_eq!(api.get("/1.1/scan/classes/_User", &[("cursor", "!!".into())]).await.0, StatusCode::BAD_REQUEST);

    // all-conversations: every kind; skip and limit; where
    let all = ds.api_rows("_Conversation").unwrap();
    let got = api.ok(routes::ALL_CONVERSATIONS, &[("limit", "1000".into())]).await;
    assert_eq!(got, json!({"results": all}));
    let got = api.ok(routes::ALL_CONVERSATIONS, &[("skip", "2".into()), ("limit", "3".into())]).await;
    assert_eq!(got["results"], json!(all[2..5]));
    assert_eq!(api.ok(routes::ALL_CONVERSATIONS, &[]).await["results"].as_array().unwrap().len(), all.len().min(100));
    let member = ds.conversation(&ds.conversation_ids(ConvKind::Group)[0]).unwrap().members[1].clone();
    let got = api.ok(routes::ALL_CONVERSATIONS, &[("where", json!({"m": member}).to_string())]).await;
    let want: Vec<&Value> = all.iter().filter(|r| r["m"].as_array().is_some_and(|m| m.contains(&json!(member)))).collect();
    assert_eq!(got["results"], json!(want));
    assert_eq!(api.get(routes::ALL_CONVERSATIONS, &[("where", "{nope".into())]).await.1["code"], json!(107));
    let sys_list = api.ok(routes::SERVICE_CONVERSATIONS, &[]).await;
    assert_eq!(sys_list["results"].as_array().unwrap().len(), 2);
    assert!(api.ok(routes::CONVERSATIONS, &[]).await["results"].as_array().unwrap().iter().all(|r| r.get("m").is_some()));
    let unique = api.ok(routes::ALL_CONVERSATIONS, &[("where", json!({"unique": true}).to_string())]).await;
    for r in unique["results"].as_array().unwrap() {
        let m: Vec<String> = serde_json::from_value(r["m"].clone()).unwrap();
        assert_eq!(r["uniqueId"], json!(unique_id(&m)));
    }

    // mutes, members
    for c in ds.conversations().iter().filter(|c| c.kind == ConvKind::Group) {
        assert_eq!(api.ok(&format!("/1.2/rtm/conversations/{}/mutes", c.id), &[]).await, json!({"result": c.mutes}));
        assert_eq!(api.ok(&format!("/1.2/rtm/conversations/{}/members", c.id), &[]).await, json!({"result": c.members}));
    }

    // subscribers: client-id order, paged by client_id, at most 50
    let sys = &ds.conversation_ids(ConvKind::Service)[0];
    let subs = ds.subscribers(sys);
    let mut got: Vec<Value> = Vec::new();
    loop {
        let mut q = vec![("limit", "2".to_string())];
        if let Some(last) = got.last() {
            q.push(("client_id", last["subscriber"].as_str().unwrap().to_string()));
        }
        let page = api.ok(&format!("/1.2/rtm/service-conversations/{sys}/subscribers"), &q).await;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        got.extend(page);
    }
    let want: Vec<Value> = subs.iter().map(|s| json!({"timestamp": s.subscribed_at, "subscriber": s.client_id, "conv_id": sys})).collect();
    assert_eq!(got, want);
    assert_eq!(api.ok(&format!("/1.2/rtm/service-conversations/{sys}/subscribers/count"), &[]).await, json!({"count": 7}));
}

#[tokio::test]
async fn throttling_every_nth_and_at_random() {
    let ds = Dataset::generate(small());
    let faults = Faults { throttle_every: Some(3), retry_after_secs: Some(2), ..Default::default() };
    let api = Api::with(ds.clone(), faults).await;
    let g = ds.conversation_ids(ConvKind::Group)[0].clone();
    let path = format!("/1.2/rtm/conversations/{g}/messages");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = api.request(&path, &[]).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "2");
            assert_eq!(r.json::<Value>().await.unwrap(), json!({"code": 429, "error": "Too many requests."}));
        }
    }
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
    let walked = api.walk(&path, 7, true, &[]).await;
    assert_eq!(walked, records(ds.messages(&g)));
    let stats = api.server.stats();
    let c = stats.route(routes::CONVERSATION_MESSAGES);
    assert_eq!(c.throttled, c.requests / 3);
    assert!(c.throttled >= 6, "{c:?}");

    // a seeded fraction, only on one route, no Retry-After
    let draw = |seed| Faults {
        throttle_fraction: Some(0.5),
        throttle_seed: seed,
        only_routes: Some(vec![routes::CONVERSATION_MESSAGES.to_string()]),
        ..Default::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        api.server.set_faults(draw(42));
        let mut s = Vec::new();
        for _ in 0..40 {
            let r = api.request(&path, &[]).send().await.unwrap();
            assert!(r.headers().get("retry-after").is_none());
            s.push(r.status().as_u16());
        }
        runs.push(s);
    }
    assert_eq!(runs[0], runs[1], "the same seed throttles the same requests");
    let n429 = runs[0].iter().filter(|s| **s == 429).count();
    assert!((8..=32).contains(&n429), "{n429}");
    for _ in 0..10 {
        assert_eq!(api.get(routes::ALL_CONVERSATIONS, &[]).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn failing_and_healing() {
    let ds = Dataset::generate(small());
    let api = Api::with(ds.clone(), Faults { delay: Some(Duration::from_millis(5)), ..Default::default() }).await;
    let path = routes::ALL_CONVERSATIONS;
    assert_eq!(api.get(path, &[]).await.0, StatusCode::OK);
    api.server.fail(FailMode::Http500);
    assert_eq!(
        api.get(path, &[]).await,
        (StatusCode::INTERNAL_SERVER_ERROR, json!({"code": 1, "error": "Internal server error. No information available."}))
    );
    api.server.heal();
    assert_eq!(api.get(path, &[]).await.0, StatusCode::OK);

    api.server.fail(FailMode::Refuse);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = api.try_get(path, &[]).await.unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    // a fresh client: the port is closed
    let fresh = reqwest::Client::new().get(format!("{}{path}", api.server.url())).send().await.unwrap_err();
    assert!(fresh.is_connect(), "{fresh:?}");
    api.server.heal();
    let mut ok = false;
    for _ in 0..100 {
        if let Ok((s, _)) = api.try_get(path, &[]).await {
            ok = s == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "listens again on the same port");

    // after N requests: the N+1th is dropped on its (kept-alive) connection
    api.server.set_faults(Faults { fail_after: Some((3, FailMode::Refuse)), ..Default::default() });
    for _ in 0..3 {
        assert_eq!(api.get(path, &[]).await.0, StatusCode::OK);
    }
    assert!(api.try_get(path, &[]).await.is_err());
    assert_eq!(api.server.failing(), Some(FailMode::Refuse));
    api.server.heal();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut ok = false;
    for _ in 0..100 {
        if let Ok((s, _)) = api.try_get(path, &[]).await {
            ok = s == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
    assert!(api.server.stats().total_failed() >= 2);
}

#[tokio::test]
async fn cut_over_pulls_exactly_the_appended_messages() {
    let ds = Dataset::generate(small());
    let api = Api::start(ds.clone()).await;
    let g = ds.conversation_ids(ConvKind::Group)[0].clone();
    let sys = ds.conversation_ids(ConvKind::Service)[0].clone();
    let path = format!("/1.2/rtm/conversations/{g}/messages");
    // first run: everything up to T0
    let t0 = now_ms();
    let first = api.walk(&path, 1000, false, &[("timestamp", t0.to_string())]).await;
    assert_eq!(first.len() as u64, ds.message_count(&g));
    // while it was "down": new messages, a new conversation, a per-user service message
    let added = ds.append(&g, 30).unwrap();
    let sub = ds.subscribers(&sys)[0].client_id.clone();
    let to_one = ds
        .append_message(
            &sys,
            NewMessage { from: "sys-admin-0".into(), data: "only for you".into(), bin: false, audience: Audience::Only(vec![sub.clone()]) },
        )
        .unwrap();
    let new_conv = ds
        .add_conversation(NewConversation {
            kind: ConvKind::Group,
            name: Some("late".into()),
            members: vec!["late-a".into(), "late-b".into()],
            messages: 5,
        })
        .unwrap();
    // cut-over: (T0, T1); `timestamp` excludes its own millisecond, and the last append may be
    // stamped in this very millisecond
    let t1 = now_ms() + 1;
    let second = api.walk(&path, 1000, false, &[("timestamp", t1.to_string()), ("till_timestamp", t0.to_string())]).await;
    let want: Vec<Value> = added.iter().rev().map(Message::record).collect();
    same(&second, &want);
    let sub_path = format!("/1.2/rtm/service-conversations/{sys}/subscribers/{}/messages", urlencoding_path(&sub));
    let got = api.ok(&sub_path, &[("timestamp", t1.to_string()), ("till_timestamp", t0.to_string())]).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    assert_eq!(got[0]["msg-id"], json!(to_one.msg_id));
    assert_eq!(got[0]["data"], json!("only for you"));
    let other = &ds.subscribers(&sys)[1].client_id;
    let other_path = format!("/1.2/rtm/service-conversations/{sys}/subscribers/{}/messages", urlencoding_path(other));
    assert_eq!(api.ok(&other_path, &[("till_timestamp", t0.to_string())]).await, json!([]));
    let rows = api.ok(routes::ALL_CONVERSATIONS, &[("where", json!({"name": "late"}).to_string())]).await;
    assert_eq!(rows["results"][0]["objectId"], json!(new_conv));
    same(&api.walk(&format!("/1.2/rtm/conversations/{new_conv}/messages"), 1000, true, &[]).await, &records(ds.messages(&new_conv)));
    // the app-wide pull of the cut-over sees all of it (the service message once per recipient: once)
    let app = api.walk(routes::APP_MESSAGES, 1000, false, &[("timestamp", t1.to_string()), ("till_timestamp", t0.to_string())]).await;
    assert_eq!(app.len(), 30 + 1 + 5);
}

#[tokio::test]
async fn a_million_messages_page_anywhere() {
    let ds =
        Dataset::generate(DatasetSpec { groups: 0, unique_pairs: 0, chat_rooms: 0, services: 0, big_groups: vec![1_000_000], ..small() });
    let api = Api::start(ds.clone()).await;
    let g = ds.conversation_ids(ConvKind::Group)[0].clone();
    assert_eq!(ds.message_count(&g), 1_000_000);
    let path = format!("/1.2/rtm/conversations/{g}/messages");
    let newest = api.ok(&path, &[("limit", "1000".into())]).await;
    assert_eq!(newest[0], ds.message_at(&g, 999_999).unwrap().record());
    assert_eq!(newest[999], ds.message_at(&g, 999_000).unwrap().record());
    for start in [0u64, 123_456, 500_000, 999_000] {
        let m = ds.message_at(&g, start).unwrap();
        let q = [
            ("reversed", "true".to_string()),
            ("limit", "1000".into()),
            ("timestamp", m.timestamp.to_string()),
            ("msgid", m.msg_id.clone()),
            ("include_start", "true".into()),
        ];
        let page = api.ok(&path, &q).await;
        let page = page.as_array().unwrap();
        assert_eq!(page.len(), 1000);
        for (k, r) in page.iter().enumerate() {
            assert_eq!(*r, ds.message_at(&g, start + k as u64).unwrap().record());
        }
    }
}
