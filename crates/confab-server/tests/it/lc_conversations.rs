//! The conversation resources of LeanCloud's IM REST API 1.2 over real HTTP:
//! `/1.2/rtm/conversations`, `/chatrooms`, `/service-conversations` and `/all-conversations`
//! (create, query with the `where` language, update, delete, members, mutes, chat room presence),
//! as docs/leancloud-rest.md describes them.

use std::time::Duration;

use crate::common::*;
use confab_engine::model::Plan;
use confab_engine::time::{iso_ms, parse_iso};
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{json, Value};

const CONVS: &str = "/1.2/rtm/conversations";
const ROOMS: &str = "/1.2/rtm/chatrooms";
const SERVICES: &str = "/1.2/rtm/service-conversations";
const ALL: &str = "/1.2/rtm/all-conversations";

async fn setup() -> (TestServer, LcApp) {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    (srv, app)
}

/// A pause long enough for the server's millisecond clock to move on.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn date(iso: &str) -> Value {
    json!({"__type": "Date", "iso": iso})
}

/// GET `resource` with these parameters.
async fn query(app: &LcApp, resource: &str, params: &[(&str, &str)]) -> Resp {
    if params.is_empty() {
        app.get(resource).await
    } else {
        app.get(&format!("{resource}{}", qs(params))).await
    }
}

/// The objectIds of a successful query's results, in order.
#[track_caller]
fn ids_of(r: &Resp) -> Vec<String> {
    let body = r.ok();
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results in {body:?}"))
        .iter()
        .map(|o| o["objectId"].as_str().expect("objectId").to_string())
        .collect()
}

/// The ids a `where` selects on `resource`, in the default (creation) order.
async fn find(app: &LcApp, resource: &str, w: Value) -> Vec<String> {
    let r = query(app, resource, &[("where", &w.to_string())]).await;
    assert_eq!(r.status, 200, "where {w}: {:?}", r.body);
    ids_of(&r)
}

/// The one conversation with this id, as a query renders it.
async fn fetch_one(app: &LcApp, resource: &str, id: &str) -> Value {
    let r = query(app, resource, &[("where", &json!({"objectId": id}).to_string())]).await;
    let results = r.ok()["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 1, "exactly one {id} in {results:?}");
    results[0].clone()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

async fn count(app: &LcApp, resource: &str) -> i64 {
    let r = query(app, resource, &[("limit", "0"), ("count", "1")]).await;
    r.ok()["count"].as_i64().expect("count")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn members_list(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

// ============================================================================ create

#[tokio::test]
async fn create_conversation_answers_the_whole_object() {
    let (srv, app) = setup().await;
    let r = app
        .post(
            CONVS,
            json!({
                "name": "Team",
                "c": "alice",
                "m": ["alice", "bob"],
                "attr": {"color": "red", "nested": {"k": [1, 2]}},
                "level": 3,
                "tags": ["x", "y"],
                "born": {"__type": "Date", "iso": "2020-05-26T14:42:31.482+08:00"},
            }),
        )
        .await;
    let conv = r.ok().clone();
    let id = conv["objectId"].as_str().expect("objectId").to_string();
    assert!(id.parse::<i64>().is_ok(), "decimal id, got {id}");
    assert_eq!(conv["name"], "Team");
    assert_eq!(conv["c"], "alice");
    assert_eq!(conv["m"], json!(["alice", "bob"]));
    assert_eq!(conv["unique"], false, "REST default of unique is false");
    assert!(conv.get("uniqueId").is_none(), "no uniqueId unless unique: {conv}");
    assert_eq!(conv["attr"], json!({"color": "red", "nested": {"k": [1, 2]}}));
    assert_eq!(conv["level"], 3);
    assert_eq!(conv["tags"], json!(["x", "y"]));
    // Dates are stored in canonical UTC form
    assert_eq!(conv["born"], date("2020-05-26T06:42:31.482Z"));
    let created = conv["createdAt"].as_str().expect("createdAt as a plain string");
    assert!(parse_iso(created).is_some(), "ISO createdAt {created}");
    assert_eq!(conv["createdAt"], conv["updatedAt"]);
    assert!(conv.get("tr").is_none() && conv.get("sys").is_none() && conv.get("mu").is_none() && conv.get("lm").is_none());
    // a query returns the same object
    assert_eq!(fetch_one(&app, CONVS, &id).await, conv);
    srv.stop().await;
}

#[tokio::test]
async fn unique_conversations_by_member_set() {
    let (srv, app) = setup().await;
    // the seed's example
    let r = app.post(CONVS, json!({"name": "My First Conversation", "m": ["BillGates", "SteveJobs"], "unique": true})).await;
    let first = r.ok().clone();
    assert_eq!(first["uniqueId"], "6c7b0e5afcae9aa1139a0afa25833dec");
    assert_eq!(first["unique"], true);
    assert_eq!(first["name"], "My First Conversation");
    assert_eq!(first["m"], json!(["BillGates", "SteveJobs"]));
    let id = first["objectId"].as_str().unwrap().to_string();

    // the same set in another order: the same conversation, unchanged
    let again = app.post(CONVS, json!({"name": "other name", "m": ["SteveJobs", "BillGates"], "unique": true})).await;
    let again = again.ok();
    assert_eq!(again["objectId"], id.as_str());
    assert_eq!(again["uniqueId"], "6c7b0e5afcae9aa1139a0afa25833dec");
    assert_eq!(again["name"], "My First Conversation");

    // a different set: a new conversation, uniqueId = md5 of the sorted ids concatenated
    let three = app.post(CONVS, json!({"m": ["carol", "BillGates", "SteveJobs"], "unique": true})).await;
    let three = three.ok();
    assert_ne!(three["objectId"], id.as_str());
    assert_eq!(three["uniqueId"], md5_hex("BillGatesSteveJobscarol"));
    let single = app.post(CONVS, json!({"m": ["BillGates"], "unique": true})).await;
    assert_ne!(single.ok()["objectId"], id.as_str());
    assert_eq!(single.ok()["uniqueId"], md5_hex("BillGates"));

    // without unique: always a new conversation
    let plain = app.post(CONVS, json!({"m": ["BillGates", "SteveJobs"]})).await;
    let plain = plain.ok();
    assert_ne!(plain["objectId"], id.as_str());
    assert_eq!(plain["unique"], false);
    assert!(plain.get("uniqueId").is_none());

    assert_eq!(count(&app, CONVS).await, 4);
    srv.stop().await;
}

#[tokio::test]
async fn chatrooms_and_service_conversations_answer_id_and_time() {
    let (srv, app) = setup().await;
    for (resource, flag) in [(ROOMS, "tr"), (SERVICES, "sys")] {
        let r = app
            .post(resource, json!({"name": "Lobby", "c": "admin", "m": ["a", "b"], "unique": true, "attr": {"topic": "x"}, "level": 7}))
            .await;
        let body = r.ok().clone();
        assert_eq!(keys(&body), s(&["createdAt", "objectId"]), "{resource} create answer {body}");
        let id = body["objectId"].as_str().unwrap().to_string();
        assert!(id.parse::<i64>().is_ok());
        assert!(parse_iso(body["createdAt"].as_str().unwrap()).is_some());

        let o = fetch_one(&app, resource, &id).await;
        assert_eq!(o["name"], "Lobby");
        assert_eq!(o["c"], "admin");
        assert_eq!(o["attr"], json!({"topic": "x"}));
        assert_eq!(o["level"], 7);
        assert_eq!(o[flag], true, "{resource} carries {flag}: {o}");
        assert_eq!(o["createdAt"], body["createdAt"]);
        // m and unique are ignored for these kinds
        assert!(o.get("m").is_none(), "no members on {resource}: {o}");
        assert!(o.get("uniqueId").is_none());
    }
    srv.stop().await;
}

#[tokio::test]
async fn create_refuses_bad_fields_and_creates_nothing() {
    let (srv, app) = setup().await;
    for resource in [CONVS, ROOMS, SERVICES] {
        for field in ["objectId", "createdAt", "updatedAt", "lm", "tr", "sys", "temp", "uniqueId", "mu"] {
            app.post(resource, json!({"name": "x", field: "1"})).await.assert_error(400, 1);
        }
        // custom key names: a letter, then letters, digits or underscores
        for bad in ["1abc", "a-b", "_x", "a b", "a.b", "$set", "ключ"] {
            app.post(resource, json!({"name": "x", bad: 1})).await.assert_error(400, 105);
        }
        // nested keys may not contain $ or .
        app.post(resource, json!({"attr": {"$x": 1}})).await.assert_error(400, 121);
        app.post(resource, json!({"attr": {"a.b": 1}})).await.assert_error(400, 121);
        app.post(resource, json!({"extra": {"ok": {"$deep": 1}}})).await.assert_error(400, 121);
        app.post(resource, json!({"list": [1, {"$k": 1}]})).await.assert_error(400, 121);
        // wrong types
        app.post(resource, json!({"attr": "red"})).await.assert_error(400, 111);
        app.post(resource, json!({"name": 5})).await.assert_error(400, 111);
        app.post(resource, json!({"c": ["a"]})).await.assert_error(400, 111);
        // not a JSON object
        app.call_raw(Method::POST, resource, b"{\"name\":".to_vec()).await.assert_error(400, 107);
        app.call_raw(Method::POST, resource, b"[1,2]".to_vec()).await.assert_error(400, 107);
        // a client key is not enough
        app.call(Method::POST, resource, Auth::AppKey, Some(json!({"name": "x"}))).await.assert_error(403, 119);
        app.call(Method::POST, resource, Auth::None, Some(json!({"name": "x"}))).await.assert_error(401, 401);
        assert_eq!(count(&app, resource).await, 0, "nothing created on {resource}");
    }
    app.post(CONVS, json!({"m": "alice"})).await.assert_error(400, 111);
    app.post(CONVS, json!({"m": ["alice", 3]})).await.assert_error(400, 111);
    app.post(CONVS, json!({"m": ["a"], "unique": "yes"})).await.assert_error(400, 111);
    assert_eq!(count(&app, ALL).await, 0);
    srv.stop().await;
}

#[tokio::test]
async fn create_caps_members_at_500() {
    let (srv, app) = setup().await;
    let too_many = members_list(501, "u");
    app.post(CONVS, json!({"name": "big", "m": too_many})).await.assert_error(400, 4304);
    app.post(CONVS, json!({"name": "big", "m": too_many, "unique": true})).await.assert_error(400, 4304);
    assert_eq!(count(&app, CONVS).await, 0, "nothing created");
    // duplicates are one member: 500 distinct ids among 501 entries fit
    let mut with_dup = members_list(500, "u");
    with_dup.push("u000".into());
    let r = app.post(CONVS, json!({"name": "full", "m": with_dup})).await;
    assert_eq!(r.ok()["m"].as_array().unwrap().len(), 500);
    assert_eq!(count(&app, CONVS).await, 1);
    srv.stop().await;
}

// ============================================================================ query

/// Conversations of every kind to query over.
struct Fixture {
    srv: TestServer,
    app: LcApp,
    a: String,
    b: String,
    c: String,
    d: String,
    room: String,
    svc: String,
    created: Vec<String>,
}

impl Fixture {
    async fn new() -> Fixture {
        let (srv, app) = setup().await;
        let mut created = Vec::new();
        let bodies = [
            (json!({
                "name": "alpha", "c": "u1", "m": ["u1", "u2"], "attr": {"color": "red", "n": 1}, "level": 1,
                "tags": ["x", "y"], "born": date("2020-01-01T00:00:00.000Z"), "title": "Hello World", "rank": "b",
            })),
            (json!({
                "name": "Beta", "c": "u2", "m": ["u2", "u3", "u4"], "attr": {"color": "blue", "n": 2}, "level": 5,
                "tags": ["y"], "born": date("2021-06-01T08:00:00+08:00"), "title": "hello there", "rank": "a",
            })),
            (json!({"name": "gamma", "c": "u1", "m": ["u5"], "unique": true, "level": 10, "tags": [], "rank": "c"})),
            (json!({"m": [], "level": "ten"})),
        ];
        let mut ids = Vec::new();
        for body in bodies {
            let r = app.post(CONVS, body).await;
            let o = r.ok();
            ids.push(o["objectId"].as_str().unwrap().to_string());
            created.push(o["createdAt"].as_str().unwrap().to_string());
            tick().await;
        }
        let r = app.post(ROOMS, json!({"name": "room1", "level": 3, "m": ["u1"], "rank": "d"})).await;
        let room = r.ok()["objectId"].as_str().unwrap().to_string();
        created.push(r.ok()["createdAt"].as_str().unwrap().to_string());
        tick().await;
        let r = app.post(SERVICES, json!({"name": "svc1", "level": 4})).await;
        let svc = r.ok()["objectId"].as_str().unwrap().to_string();
        created.push(r.ok()["createdAt"].as_str().unwrap().to_string());
        let [a, b, c, d]: [String; 4] = ids.try_into().unwrap();
        Fixture { srv, app, a, b, c, d, room, svc, created }
    }

    fn ids(&self, which: &[&str]) -> Vec<String> {
        which
            .iter()
            .map(|w| match *w {
                "a" => self.a.clone(),
                "b" => self.b.clone(),
                "c" => self.c.clone(),
                "d" => self.d.clone(),
                "room" => self.room.clone(),
                "svc" => self.svc.clone(),
                other => panic!("no {other}"),
            })
            .collect()
    }

    /// Assert that `where` on /conversations selects exactly these, in creation order.
    async fn expect(&self, w: Value, which: &[&str]) {
        self.expect_on(CONVS, w, which).await
    }

    async fn expect_on(&self, resource: &str, w: Value, which: &[&str]) {
        let got = find(&self.app, resource, w.clone()).await;
        assert_eq!(got, self.ids(which), "where {w} on {resource}: expected {which:?}");
    }
}

#[tokio::test]
async fn query_equality_on_builtin_and_custom_fields() {
    let f = Fixture::new().await;
    f.expect(json!({"objectId": f.a}), &["a"]).await;
    f.expect(json!({"objectId": "not-a-number"}), &[]).await;
    f.expect(json!({"objectId": f.room}), &[]).await; // a chat room is not a conversation
    f.expect(json!({"name": "Beta"}), &["b"]).await;
    f.expect(json!({"name": "beta"}), &[]).await;
    f.expect(json!({"c": "u1"}), &["a", "c"]).await;
    // on arrays, equality means "contains"
    f.expect(json!({"m": "u2"}), &["a", "b"]).await;
    f.expect(json!({"m": "nobody"}), &[]).await;
    f.expect(json!({"unique": true}), &["c"]).await;
    f.expect(json!({"unique": false}), &["a", "b", "d"]).await;
    f.expect(json!({"uniqueId": md5_hex("u5")}), &["c"]).await;
    f.expect(json!({"tags": "y"}), &["a", "b"]).await;
    f.expect(json!({"tags": "x"}), &["a"]).await;
    f.expect(json!({"level": 5}), &["b"]).await;
    f.expect(json!({"level": "ten"}), &["d"]).await;
    f.expect(json!({"level": "5"}), &[]).await; // only values of the same type match
    f.expect(json!({"attr.color": "red"}), &["a"]).await;
    f.expect(json!({"attr.n": 2}), &["b"]).await;
    f.expect(json!({"attr": {"color": "blue", "n": 2}}), &["b"]).await;
    f.expect(json!({"name": "alpha", "c": "u1"}), &["a"]).await;
    f.expect(json!({"name": "alpha", "c": "u2"}), &[]).await;

    // tr and sys through all-conversations
    f.expect_on(ALL, json!({"tr": true}), &["room"]).await;
    f.expect_on(ALL, json!({"sys": true}), &["svc"]).await;
    f.expect_on(ALL, json!({"tr": false}), &["a", "b", "c", "d", "svc"]).await;
    f.expect_on(ALL, json!({"level": 3}), &["room"]).await;
    f.expect_on(ALL, json!({"name": "svc1"}), &["svc"]).await;
    f.expect_on(ALL, json!({"objectId": f.room}), &["room"]).await;
    f.expect_on(ROOMS, json!({"name": "room1"}), &["room"]).await;
    f.expect_on(ROOMS, json!({"name": "alpha"}), &[]).await;
    f.expect_on(SERVICES, json!({"level": 4}), &["svc"]).await;
    f.srv.stop().await;
}

#[tokio::test]
async fn query_operators() {
    let f = Fixture::new().await;
    // $ne (also matches conversations lacking the field)
    f.expect(json!({"name": {"$ne": "alpha"}}), &["b", "c", "d"]).await;
    f.expect(json!({"level": {"$ne": 5}}), &["a", "c", "d"]).await;
    f.expect(json!({"m": {"$ne": "u2"}}), &["c", "d"]).await;
    f.expect(json!({"attr.color": {"$ne": "red"}}), &["b", "c", "d"]).await;
    f.expect(json!({"unique": {"$ne": true}}), &["a", "b", "d"]).await;
    // comparisons, only between values of the same type
    f.expect(json!({"level": {"$lt": 5}}), &["a"]).await;
    f.expect(json!({"level": {"$lte": 5}}), &["a", "b"]).await;
    f.expect(json!({"level": {"$gt": 1}}), &["b", "c"]).await;
    f.expect(json!({"level": {"$gte": 10}}), &["c"]).await;
    f.expect(json!({"level": {"$gt": "a"}}), &["d"]).await;
    f.expect(json!({"level": {"$gt": 1, "$lt": 10}}), &["b"]).await;
    f.expect(json!({"attr.n": {"$gte": 1.5}}), &["b"]).await;
    f.expect(json!({"name": {"$gt": "alpha"}}), &["c"]).await;
    f.expect(json!({"name": {"$lt": "alpha"}}), &["b"]).await;
    f.expect(json!({"name": {"$lte": "alpha"}}), &["a", "b"]).await;
    f.expect(json!({"name": {"$gte": "b"}}), &["c"]).await;
    f.expect(json!({"c": {"$gt": "u1"}}), &["b"]).await;
    f.expect(json!({"objectId": {"$gt": f.b}}), &["c", "d"]).await;
    f.expect_on(ALL, json!({"level": {"$lt": 5}}), &["a", "room", "svc"]).await;
    // $in / $nin
    f.expect(json!({"name": {"$in": ["alpha", "gamma", "zeta"]}}), &["a", "c"]).await;
    f.expect(json!({"level": {"$in": [1, 10]}}), &["a", "c"]).await;
    f.expect(json!({"m": {"$in": ["u3", "u5"]}}), &["b", "c"]).await;
    f.expect(json!({"tags": {"$in": ["x", "q"]}}), &["a"]).await;
    f.expect(json!({"objectId": {"$in": [f.a, f.d, f.room]}}), &["a", "d"]).await;
    f.expect(json!({"name": {"$nin": ["alpha", "gamma"]}}), &["b", "d"]).await;
    f.expect(json!({"level": {"$nin": [1, 10]}}), &["b", "d"]).await;
    f.expect(json!({"m": {"$nin": ["u2"]}}), &["c", "d"]).await;
    f.expect(json!({"tags": {"$nin": ["y"]}}), &["c", "d"]).await;
    f.expect(json!({"uniqueId": {"$nin": [md5_hex("u5")]}}), &["a", "b", "d"]).await;
    // $all
    f.expect(json!({"m": {"$all": ["u2", "u3"]}}), &["b"]).await;
    f.expect(json!({"m": {"$all": ["u2"]}}), &["a", "b"]).await;
    f.expect(json!({"tags": {"$all": ["x", "y"]}}), &["a"]).await;
    f.expect(json!({"tags": {"$all": ["y"]}}), &["a", "b"]).await;
    // $size
    f.expect(json!({"m": {"$size": 3}}), &["b"]).await;
    f.expect(json!({"m": {"$size": 0}}), &["d"]).await;
    f.expect(json!({"tags": {"$size": 1}}), &["b"]).await;
    f.expect(json!({"tags": {"$size": 0}}), &["c"]).await;
    // $exists
    f.expect(json!({"born": {"$exists": true}}), &["a", "b"]).await;
    f.expect(json!({"born": {"$exists": false}}), &["c", "d"]).await;
    f.expect(json!({"name": {"$exists": false}}), &["d"]).await;
    f.expect(json!({"name": {"$exists": true}}), &["a", "b", "c"]).await;
    f.expect(json!({"attr.color": {"$exists": true}}), &["a", "b"]).await;
    f.expect(json!({"uniqueId": {"$exists": true}}), &["c"]).await;
    f.expect(json!({"c": {"$exists": false}}), &["d"]).await;
    f.expect_on(ALL, json!({"m": {"$exists": false}}), &["room", "svc"]).await;
    // $regex, with $options
    f.expect(json!({"name": {"$regex": "^a"}}), &["a"]).await;
    f.expect(json!({"name": {"$regex": "^b"}}), &[]).await;
    f.expect(json!({"name": {"$regex": "^b", "$options": "i"}}), &["b"]).await;
    f.expect(json!({"name": {"$regex": "MM", "$options": "i"}}), &["c"]).await;
    f.expect(json!({"title": {"$regex": "^hello"}}), &["b"]).await;
    f.expect(json!({"title": {"$regex": "^hello", "$options": "i"}}), &["a", "b"]).await;
    f.expect(json!({"attr.color": {"$regex": "^r"}}), &["a"]).await;
    f.expect(json!({"m": {"$regex": "^u[34]$"}}), &["b"]).await;
    f.expect(json!({"tags": {"$regex": "x"}}), &["a"]).await;
    f.expect(json!({"c": {"$regex": "2$"}}), &["b"]).await;
    f.expect(json!({"level": {"$regex": "t"}}), &["d"]).await; // only strings match a pattern
    f.srv.stop().await;
}

#[tokio::test]
async fn query_compound_conditions() {
    let f = Fixture::new().await;
    f.expect(json!({"$or": [{"name": "alpha"}, {"level": 5}]}), &["a", "b"]).await;
    f.expect(json!({"$or": [{"m": "u5"}, {"name": {"$exists": false}}]}), &["c", "d"]).await;
    f.expect(json!({"$and": [{"c": "u1"}, {"level": {"$gt": 1}}]}), &["c"]).await;
    f.expect(json!({"$and": [{"c": "u1"}, {"level": {"$gt": 100}}]}), &[]).await;
    // a top-level array is an implicit $and
    f.expect(json!([{"c": "u1"}, {"m": "u1"}]), &["a"]).await;
    f.expect(json!([{"tags": "y"}, {"$or": [{"level": 1}, {"level": 5}]}]), &["a", "b"]).await;
    // $or nested in $and, alongside a plain key
    f.expect(json!({"m": "u2", "$and": [{"$or": [{"attr.color": "blue"}, {"rank": "z"}]}]}), &["b"]).await;
    f.expect_on(ALL, json!({"$or": [{"tr": true}, {"sys": true}]}), &["room", "svc"]).await;
    f.srv.stop().await;
}

#[tokio::test]
async fn query_dates() {
    let f = Fixture::new().await;
    let [ca, cb, cc, cd] = [&f.created[0], &f.created[1], &f.created[2], &f.created[3]];
    assert!(ca < cb && cb < cc && cc < cd, "distinct creation times {:?}", f.created);
    // built-in dates compare with Date values
    f.expect(json!({"createdAt": {"$gt": date(ca)}}), &["b", "c", "d"]).await;
    f.expect(json!({"createdAt": {"$gte": date(ca)}}), &["a", "b", "c", "d"]).await;
    f.expect(json!({"createdAt": {"$lt": date(cc)}}), &["a", "b"]).await;
    f.expect(json!({"createdAt": {"$lte": date(cc)}}), &["a", "b", "c"]).await;
    f.expect(json!({"createdAt": date(cb)}), &["b"]).await;
    f.expect(json!({"createdAt": {"$gt": date(cb), "$lt": date(cd)}}), &["c"]).await;
    // an ISO string or a number of milliseconds works too
    f.expect(json!({"createdAt": {"$lte": cb}}), &["a", "b"]).await;
    f.expect(json!({"createdAt": {"$gte": parse_iso(cc).unwrap()}}), &["c", "d"]).await;
    // the same instant written with an offset
    let b_ms = parse_iso(cb).unwrap();
    let b_plus8 = chrono_offset(b_ms);
    f.expect(json!({"createdAt": date(&b_plus8)}), &["b"]).await;
    f.expect_on(ALL, json!({"createdAt": {"$gt": date(cd)}}), &["room", "svc"]).await;

    // updatedAt moves with an update
    tick().await;
    let r = f.app.put(&format!("{CONVS}/{}", f.b), json!({"rank": "bb"})).await;
    let upd = r.ok()["updatedAt"].as_str().unwrap().to_string();
    assert!(upd.as_str() > f.created[5].as_str());
    f.expect(json!({"updatedAt": {"$gt": date(cd)}}), &["b"]).await;
    f.expect(json!({"updatedAt": date(&upd)}), &["b"]).await;
    f.expect(json!({"updatedAt": {"$lt": date(&upd)}}), &["a", "c", "d"]).await;

    // lm: the last message time
    f.expect(json!({"lm": {"$exists": true}}), &[]).await;
    let (_, ts) = f.app.send(&f.c, "u5", "hi").await;
    let c = fetch_one(&f.app, CONVS, &f.c).await;
    assert_eq!(c["lm"], date(&iso_ms(ts)), "lm is a Date: {c}");
    f.expect(json!({"lm": {"$exists": true}}), &["c"]).await;
    f.expect(json!({"lm": {"$gte": date(&iso_ms(ts))}}), &["c"]).await;
    f.expect(json!({"lm": {"$gt": date(&iso_ms(ts))}}), &[]).await;
    f.expect(json!({"lm": {"$lt": date("2100-01-01T00:00:00.000Z")}}), &["c"]).await;
    f.expect(json!({"lm": {"$gte": ts}}), &["c"]).await;
    f.expect(json!({"lm": c["lm"].clone()}), &["c"]).await;

    // a custom Date field compares in time order, whatever offset either side was written in
    f.expect(json!({"born": {"$gt": date("2020-06-01T00:00:00.000Z")}}), &["b"]).await;
    f.expect(json!({"born": {"$lt": date("2021-06-01T00:00:00.000Z")}}), &["a"]).await;
    f.expect(json!({"born": {"$lte": date("2021-06-01T00:00:00.000Z")}}), &["a", "b"]).await;
    f.expect(json!({"born": {"$gte": date("2020-01-01T08:00:00+08:00")}}), &["a", "b"]).await;
    f.expect(json!({"born": date("2021-06-01T00:00:00Z")}), &["b"]).await;
    f.expect(json!({"born": date("2021-06-01T00:00:00.001Z")}), &[]).await;
    let b = fetch_one(&f.app, CONVS, &f.b).await;
    assert_eq!(b["born"], date("2021-06-01T00:00:00.000Z"));
    // a bad Date is refused
    let r = query(&f.app, CONVS, &[("where", &json!({"createdAt": {"$gt": date("yesterday")}}).to_string())]).await;
    r.assert_error(400, 1);
    f.srv.stop().await;
}

/// `ms` as an ISO string in +08:00.
fn chrono_offset(ms: i64) -> String {
    let utc = iso_ms(ms + 8 * 3600 * 1000);
    // "YYYY-MM-DDTHH:MM:SS.mmmZ" of the local time, with the offset instead of Z
    format!("{}+08:00", utc.trim_end_matches('Z'))
}

#[tokio::test]
async fn query_order() {
    let f = Fixture::new().await;
    let order = |o: &'static str| {
        let app = &f.app;
        async move { ids_of(&query(app, CONVS, &[("order", o)]).await) }
    };
    // default: creation order
    assert_eq!(ids_of(&query(&f.app, CONVS, &[]).await), f.ids(&["a", "b", "c", "d"]));
    assert_eq!(ids_of(&query(&f.app, ALL, &[]).await), f.ids(&["a", "b", "c", "d", "room", "svc"]));
    assert_eq!(order("name").await, f.ids(&["d", "b", "a", "c"]), "missing name first, then byte order");
    assert_eq!(order("-name").await, f.ids(&["c", "a", "b", "d"]));
    assert_eq!(order("-createdAt").await, f.ids(&["d", "c", "b", "a"]));
    assert_eq!(order("createdAt").await, f.ids(&["a", "b", "c", "d"]));
    // ties broken by creation order
    assert_eq!(order("c").await, f.ids(&["d", "a", "c", "b"]));
    assert_eq!(order("-c").await, f.ids(&["b", "a", "c", "d"]));
    assert_eq!(order("-c,-name").await, f.ids(&["b", "c", "a", "d"]));
    // custom fields
    assert_eq!(order("rank").await, f.ids(&["d", "b", "a", "c"]));
    assert_eq!(order("-rank").await, f.ids(&["c", "a", "b", "d"]));
    assert_eq!(order("-attr.n").await, f.ids(&["b", "a", "c", "d"]));
    let numeric = query(&f.app, CONVS, &[("where", r#"{"level":{"$gte":0}}"#), ("order", "-level")]).await;
    assert_eq!(ids_of(&numeric), f.ids(&["c", "b", "a"]), "numbers order numerically");
    let numeric = query(&f.app, CONVS, &[("where", r#"{"level":{"$gte":0}}"#), ("order", "level")]).await;
    assert_eq!(ids_of(&numeric), f.ids(&["a", "b", "c"]));
    let r = query(&f.app, ALL, &[("order", "-level"), ("where", r#"{"level":{"$lt":6}}"#)]).await;
    assert_eq!(ids_of(&r), f.ids(&["b", "svc", "room", "a"]));
    // member lists cannot be ordered by
    query(&f.app, CONVS, &[("order", "m")]).await.assert_error(400, 1);
    query(&f.app, CONVS, &[("order", "a-b")]).await.assert_error(400, 105);
    f.srv.stop().await;
}

#[tokio::test]
async fn each_resource_lists_its_own_kind() {
    let f = Fixture::new().await;
    assert_eq!(ids_of(&query(&f.app, CONVS, &[]).await), f.ids(&["a", "b", "c", "d"]));
    assert_eq!(ids_of(&query(&f.app, ROOMS, &[]).await), f.ids(&["room"]));
    assert_eq!(ids_of(&query(&f.app, SERVICES, &[]).await), f.ids(&["svc"]));
    let all = query(&f.app, ALL, &[]).await;
    let all = all.ok()["results"].as_array().unwrap().clone();
    assert_eq!(all.len(), 6);
    for o in &all {
        let id = o["objectId"].as_str().unwrap();
        if id == f.room {
            assert_eq!(o["tr"], true, "{o}");
            assert!(o.get("sys").is_none() && o.get("m").is_none(), "{o}");
        } else if id == f.svc {
            assert_eq!(o["sys"], true, "{o}");
            assert!(o.get("tr").is_none() && o.get("m").is_none(), "{o}");
        } else {
            assert!(o.get("tr").is_none() && o.get("sys").is_none(), "{o}");
            assert!(o["m"].is_array(), "{o}");
        }
    }
    // members come with each normal conversation, in the order they joined
    let b = &all[1];
    assert_eq!(b["m"], json!(["u2", "u3", "u4"]));
    assert_eq!(b["attr"], json!({"color": "blue", "n": 2}));
    // the other kinds' objects cannot be reached through the wrong resource
    assert!(find(&f.app, ROOMS, json!({"objectId": f.a})).await.is_empty());
    assert!(find(&f.app, SERVICES, json!({"objectId": f.room})).await.is_empty());
    // every query needs the master key
    f.app.call(Method::GET, CONVS, Auth::AppKey, None).await.assert_error(403, 119);
    f.app.call(Method::GET, ALL, Auth::AppKey, None).await.assert_error(403, 119);
    f.srv.stop().await;
}

#[tokio::test]
async fn query_count_skip_and_limit() {
    let f = Fixture::new().await;
    let r = query(&f.app, CONVS, &[("limit", "0"), ("count", "1")]).await;
    assert_eq!(r.ok(), &json!({"results": [], "count": 4}));
    let r = query(&f.app, CONVS, &[("where", r#"{"m":"u2"}"#), ("count", "1"), ("limit", "1")]).await;
    assert_eq!(r.ok()["count"], 2, "count ignores limit");
    assert_eq!(ids_of(&r), f.ids(&["a"]));
    let r = query(&f.app, ALL, &[("limit", "0"), ("count", "true")]).await;
    assert_eq!(r.ok()["count"], 6);
    let r = query(&f.app, CONVS, &[]).await;
    assert!(r.ok().get("count").is_none(), "no count unless asked");
    // skip + limit page through every result exactly once
    let mut seen = Vec::new();
    for skip in 0..5 {
        let page = ids_of(&query(&f.app, ALL, &[("skip", &(skip * 2).to_string()), ("limit", "2")]).await);
        assert!(page.len() <= 2);
        seen.extend(page);
    }
    assert_eq!(seen, f.ids(&["a", "b", "c", "d", "room", "svc"]));
    let page = ids_of(&query(&f.app, CONVS, &[("skip", "1"), ("limit", "2"), ("order", "-createdAt")]).await);
    assert_eq!(page, f.ids(&["c", "b"]));
    assert!(ids_of(&query(&f.app, CONVS, &[("skip", "10")]).await).is_empty());
    query(&f.app, CONVS, &[("skip", "-1")]).await.assert_error(400, 1);
    query(&f.app, CONVS, &[("limit", "many")]).await.assert_error(400, 111);
    f.srv.stop().await;
}

#[tokio::test]
async fn query_errors() {
    let f = Fixture::new().await;
    let bad = |w: &'static str| {
        let app = &f.app;
        async move { query(app, CONVS, &[("where", w)]).await }
    };
    bad("{\"name\":").await.assert_error(400, 107);
    bad("not json").await.assert_error(400, 107);
    bad("\"name\"").await.assert_error(400, 1);
    bad(r#"{"name":{"$near":[1,2]}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$select":{"query":{"className":"X","where":{}},"key":"k"}}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$dontSelect":{"query":{"className":"X","where":{}},"key":"k"}}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$inQuery":{"className":"X","where":{}}}}"#).await.assert_error(400, 1);
    bad(r#"{"$relatedTo":{"object":{"__type":"Pointer","className":"X","objectId":"1"},"key":"k"}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$in":"alpha"}}"#).await.assert_error(400, 1);
    bad(r#"{"m":{"$size":"3"}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$exists":"yes"}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$regex":"("}}"#).await.assert_error(400, 1);
    bad(r#"{"name":{"$regex":"a","$options":"q"}}"#).await.assert_error(400, 1);
    bad(r#"{"$or":{"name":"a"}}"#).await.assert_error(400, 1);
    bad(r#"{"$nor":[{"name":"a"}]}"#).await.assert_error(400, 1);
    bad(r#"{"m":{"$lt":"x"}}"#).await.assert_error(400, 1);
    bad(r#"{"m":{"$in":[1]}}"#).await.assert_error(400, 1);
    bad(r#"{"createdAt":true}"#).await.assert_error(400, 1);
    bad(r#"{"a-b":1}"#).await.assert_error(400, 105);
    bad(r#"{"attr.$x":1}"#).await.assert_error(400, 105);
    // nothing broke: an ordinary query still works
    f.expect(json!({"name": "alpha"}), &["a"]).await;
    f.srv.stop().await;
}

#[tokio::test]
async fn query_limit_default_and_coercion() {
    let (srv, app) = setup().await;
    let mut all = Vec::new();
    for i in 0..105 {
        all.push(app.conversation(json!({"name": format!("n{i:03}"), "i": i})).await);
    }
    let first_100: Vec<String> = all[..100].to_vec();
    assert_eq!(ids_of(&query(&app, CONVS, &[]).await), first_100, "limit defaults to 100, creation order");
    assert_eq!(ids_of(&query(&app, CONVS, &[("limit", "5000")]).await), first_100, "out of range: coerced to 100");
    assert_eq!(ids_of(&query(&app, CONVS, &[("limit", "-1")]).await), first_100);
    assert_eq!(ids_of(&query(&app, CONVS, &[("limit", "1000")]).await), all);
    assert_eq!(ids_of(&query(&app, CONVS, &[("limit", "101")]).await), all[..101].to_vec());
    assert_eq!(ids_of(&query(&app, ALL, &[("limit", "1001")]).await).len(), 100);
    assert_eq!(ids_of(&query(&app, CONVS, &[("skip", "100")]).await), all[100..].to_vec());
    let r = query(&app, CONVS, &[("limit", "0"), ("count", "1")]).await;
    assert_eq!(r.ok(), &json!({"results": [], "count": 105}));
    // paging with skip and limit walks every conversation exactly once
    let mut seen = Vec::new();
    let mut skip = 0;
    loop {
        let page = ids_of(&query(&app, CONVS, &[("skip", &skip.to_string()), ("limit", "20")]).await);
        if page.is_empty() {
            break;
        }
        skip += page.len();
        seen.extend(page);
    }
    assert_eq!(seen, all);
    // the same with a where and a descending order
    let mut seen = Vec::new();
    for skip in (0..60).step_by(7) {
        let p = [("where", r#"{"i":{"$gte":50}}"#), ("order", "-i"), ("skip", &skip.to_string()), ("limit", "7")];
        seen.extend(ids_of(&query(&app, CONVS, &p).await));
    }
    let mut want: Vec<String> = all[50..].to_vec();
    want.reverse();
    assert_eq!(seen, want);
    srv.stop().await;
}

// ============================================================================ update

#[tokio::test]
async fn update_fields_and_operations() {
    let (srv, app) = setup().await;
    let created = app
        .post(CONVS, json!({"name": "old", "m": ["a", "b"], "attr": {"color": "red", "size": 1}, "n": 1, "tags": ["a"], "gone": true}))
        .await;
    let created = created.ok().clone();
    let id = created["objectId"].as_str().unwrap().to_string();
    let path = format!("{CONVS}/{id}");

    tick().await;
    let r = app.put(&path, json!({"name": "new"})).await;
    let answer = r.ok().clone();
    assert_eq!(keys(&answer), s(&["objectId", "updatedAt"]));
    assert_eq!(answer["objectId"], id.as_str());
    let u1 = answer["updatedAt"].as_str().unwrap().to_string();
    assert!(u1.as_str() > created["updatedAt"].as_str().unwrap(), "updatedAt advances: {u1}");
    let o = fetch_one(&app, CONVS, &id).await;
    assert_eq!(o["name"], "new");
    assert_eq!(o["updatedAt"], u1.as_str());
    assert_eq!(o["createdAt"], created["createdAt"], "createdAt stays");
    assert_eq!(o["m"], json!(["a", "b"]));

    // dotted paths change one key of an object
    tick().await;
    let r = app.put(&path, json!({"attr.color": "blue", "attr.shape": "round"})).await;
    let u2 = r.ok()["updatedAt"].as_str().unwrap().to_string();
    assert!(u2 > u1, "updatedAt advances again");
    let o = fetch_one(&app, CONVS, &id).await;
    assert_eq!(o["attr"], json!({"color": "blue", "size": 1, "shape": "round"}));
    // a whole attr replaces it
    app.put(&path, json!({"attr": {"only": 1}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["attr"], json!({"only": 1}));

    // operations
    app.put(&path, json!({"n": {"__op": "Increment", "amount": 5}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["n"], 6);
    app.put(&path, json!({"n": {"__op": "Increment"}, "fresh": {"__op": "Increment", "amount": 2}})).await.ok();
    let o = fetch_one(&app, CONVS, &id).await;
    assert_eq!(o["n"], 7);
    assert_eq!(o["fresh"], 2, "a missing field counts as 0");
    app.put(&path, json!({"n": {"__op": "Decrement", "amount": 3}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["n"], 4);
    app.put(&path, json!({"tags": {"__op": "Add", "objects": ["b", "a"]}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["tags"], json!(["a", "b", "a"]));
    app.put(&path, json!({"tags": {"__op": "AddUnique", "objects": ["a", "c"]}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["tags"], json!(["a", "b", "a", "c"]));
    app.put(&path, json!({"tags": {"__op": "Remove", "objects": ["a"]}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["tags"], json!(["b", "c"]));
    app.put(&path, json!({"list": {"__op": "AddUnique", "objects": [1, 1, 2]}})).await.ok();
    assert_eq!(fetch_one(&app, CONVS, &id).await["list"], json!([1, 2]));
    app.put(&path, json!({"gone": {"__op": "Delete"}, "attr.only": {"__op": "Delete"}})).await.ok();
    let o = fetch_one(&app, CONVS, &id).await;
    assert!(o.get("gone").is_none(), "{o}");
    assert_eq!(o["attr"], json!({}));
    app.put(&path, json!({"name": {"__op": "Delete"}})).await.ok();
    assert!(fetch_one(&app, CONVS, &id).await.get("name").is_none());

    // custom values: Dates canonical, queryable
    app.put(&path, json!({"when": date("2022-02-02T10:00:00+02:00"), "name": "again"})).await.ok();
    let o = fetch_one(&app, CONVS, &id).await;
    assert_eq!(o["when"], date("2022-02-02T08:00:00.000Z"));
    assert_eq!(find(&app, CONVS, json!({"when": {"$gte": date("2022-02-02T08:00:00Z")}})).await, vec![id.clone()]);

    // bad operations
    app.put(&path, json!({"tags": {"__op": "Add", "objects": "x"}})).await.assert_error(400, 111);
    app.put(&path, json!({"tags": {"__op": "Explode"}})).await.assert_error(400, 1);
    app.put(&path, json!({"n": {"__op": "Increment", "amount": "5"}})).await.assert_error(400, 111);
    app.put(&path, json!({"n": {"__op": "Decrement", "amount": [1]}})).await.assert_error(400, 111);
    app.put(&path, json!({"attr": "red"})).await.assert_error(400, 111);
    app.put(&path, json!({"name": 3})).await.assert_error(400, 111);
    assert_eq!(fetch_one(&app, CONVS, &id).await, o, "failed updates change nothing");
    srv.stop().await;
}

#[tokio::test]
async fn update_refuses_members_and_server_fields() {
    let (srv, app) = setup().await;
    let id = app.conversation(json!({"name": "keep", "m": ["a", "b"]})).await;
    let path = format!("{CONVS}/{id}");
    let before = fetch_one(&app, CONVS, &id).await;
    for field in ["m", "mu"] {
        let r = app.put(&path, json!({"name": "changed", field: ["x"]})).await;
        r.assert_error(400, 1);
    }
    let r = app.put(&path, json!({"m": {"__op": "Add", "objects": ["x"]}})).await;
    r.assert_error(400, 1);
    for field in ["objectId", "createdAt", "updatedAt", "lm", "tr", "sys", "temp", "uniqueId", "unique"] {
        app.put(&path, json!({field: "1"})).await.assert_error(400, 1);
    }
    app.put(&path, json!({"a-b": 1})).await.assert_error(400, 105);
    app.put(&path, json!({"attr.$x": 1})).await.assert_error(400, 105);
    app.put(&path, json!({"attr..x": 1})).await.assert_error(400, 105);
    app.put(&path, json!({"attr": {"$x": 1}})).await.assert_error(400, 121);
    app.put(&path, json!({"attr.k": {"a.b": 1}})).await.assert_error(400, 121);
    app.call_raw(Method::PUT, &path, b"nope".to_vec()).await.assert_error(400, 107);
    app.call(Method::PUT, &path, Auth::AppKey, Some(json!({"name": "x"}))).await.assert_error(403, 119);
    assert_eq!(fetch_one(&app, CONVS, &id).await, before, "nothing changed");
    srv.stop().await;
}

#[tokio::test]
async fn update_and_delete_name_the_right_conversation() {
    let (srv, app) = setup().await;
    let conv = app.conversation(json!({"name": "c"})).await;
    let room = app.post(ROOMS, json!({"name": "r"})).await.ok()["objectId"].as_str().unwrap().to_string();
    let svc = app.post(SERVICES, json!({"name": "s"})).await.ok()["objectId"].as_str().unwrap().to_string();
    let unknown = (conv.parse::<i64>().unwrap() + 1_000_000).to_string();
    for method in [Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| json!({"name": "x"}));
        let call = |p: String| {
            let (app, m, b) = (&app, method.clone(), body.clone());
            async move { app.call(m, &p, Auth::Master, b).await }
        };
        call(format!("{CONVS}/{unknown}")).await.assert_error(404, 4303);
        call(format!("{CONVS}/abc")).await.assert_error(404, 4303);
        call(format!("{CONVS}/5eccba570d3a42c5fd4e25c3")).await.assert_error(404, 4303);
        call(format!("{ROOMS}/xyz")).await.assert_error(404, 4303);
        call(format!("{CONVS}/{room}")).await.assert_error(400, 4314);
        call(format!("{CONVS}/{svc}")).await.assert_error(400, 4314);
        call(format!("{ROOMS}/{conv}")).await.assert_error(400, 4316);
        call(format!("{ROOMS}/{svc}")).await.assert_error(400, 4316);
        call(format!("{SERVICES}/{conv}")).await.assert_error(400, 4313);
        call(format!("{SERVICES}/{room}")).await.assert_error(400, 4313);
    }
    // nothing changed or went away
    assert_eq!(fetch_one(&app, CONVS, &conv).await["name"], "c");
    assert_eq!(fetch_one(&app, ROOMS, &room).await["name"], "r");
    assert_eq!(fetch_one(&app, SERVICES, &svc).await["name"], "s");
    // each resource updates its own kind
    app.put(&format!("{ROOMS}/{room}"), json!({"name": "r2", "topic": "t"})).await.ok();
    app.put(&format!("{SERVICES}/{svc}"), json!({"name": "s2"})).await.ok();
    let r = fetch_one(&app, ROOMS, &room).await;
    assert_eq!((r["name"].clone(), r["topic"].clone(), r["tr"].clone()), (json!("r2"), json!("t"), json!(true)));
    assert_eq!(fetch_one(&app, SERVICES, &svc).await["name"], "s2");
    srv.stop().await;
}

// ============================================================================ delete

#[tokio::test]
async fn delete_removes_the_conversation_and_its_history() {
    let (srv, app) = setup().await;
    let doomed = app.conversation(json!({"name": "doomed", "m": ["a", "b"]})).await;
    let kept = app.conversation(json!({"name": "kept", "m": ["a", "b"]})).await;
    app.send(&doomed, "a", "one").await;
    app.send(&doomed, "b", "two").await;
    let (kept_msg, _) = app.send(&kept, "a", "stays").await;
    assert_eq!(app.get(&format!("{CONVS}/{doomed}/messages")).await.ok().as_array().unwrap().len(), 2);

    let r = app.delete(&format!("{CONVS}/{doomed}"), None).await;
    assert_eq!(r.ok(), &json!({}));
    assert!(find(&app, CONVS, json!({"objectId": doomed})).await.is_empty());
    assert!(find(&app, ALL, json!({"name": "doomed"})).await.is_empty());
    assert!(find(&app, CONVS, json!({"m": "a"})).await == vec![kept.clone()], "its members are gone too");
    // its history is gone, the other conversation's is not
    app.get(&format!("{CONVS}/{doomed}/messages")).await.assert_error(404, 4303);
    let everything = app.get("/1.2/rtm/messages").await;
    let everything = everything.ok().as_array().unwrap().clone();
    assert_eq!(everything.len(), 1, "{everything:?}");
    assert_eq!(everything[0]["msg-id"], kept_msg.as_str());
    let from_b = app.get("/1.2/rtm/clients/b/messages").await;
    assert_eq!(from_b.ok(), &json!([]));
    // deleting again: gone
    app.delete(&format!("{CONVS}/{doomed}"), None).await.assert_error(404, 4303);
    app.get(&format!("{CONVS}/{doomed}/members")).await.assert_error(404, 4303);

    // chat rooms and service conversations delete through their own resource
    let room = app.post(ROOMS, json!({"name": "r"})).await.ok()["objectId"].as_str().unwrap().to_string();
    let svc = app.post(SERVICES, json!({"name": "s"})).await.ok()["objectId"].as_str().unwrap().to_string();
    assert_eq!(app.delete(&format!("{ROOMS}/{room}"), None).await.ok(), &json!({}));
    assert_eq!(app.delete(&format!("{SERVICES}/{svc}"), None).await.ok(), &json!({}));
    assert_eq!(ids_of(&query(&app, ALL, &[]).await), vec![kept.clone()]);
    app.call(Method::DELETE, &format!("{CONVS}/{kept}"), Auth::AppKey, None).await.assert_error(403, 119);
    assert_eq!(count(&app, CONVS).await, 1);
    srv.stop().await;
}

// ============================================================================ members

#[tokio::test]
async fn members_in_joining_order() {
    let (srv, app) = setup().await;
    // Members named in one call join at the same moment; only their set is asserted here
    // (the store breaks such ties by client id).
    let batch = app.post(CONVS, json!({"m": ["zed", "amy", "zed"]})).await;
    let mut m: Vec<String> = serde_json::from_value(batch.ok()["m"].clone()).unwrap();
    m.sort();
    assert_eq!(m, s(&["amy", "zed"]), "duplicates dropped");

    let created = app.post(CONVS, json!({"m": ["zed"]})).await;
    let created = created.ok().clone();
    let id = created["objectId"].as_str().unwrap().to_string();
    let path = format!("{CONVS}/{id}/members");
    assert_eq!(app.get(&path).await.ok(), &json!({"result": ["zed"]}));

    tick().await;
    let r = app.post(&path, json!({"client_ids": ["mia"]})).await;
    let answer = r.ok().clone();
    assert_eq!(keys(&answer), s(&["objectId", "updatedAt"]));
    assert_eq!(answer["objectId"], id.as_str());
    assert!(answer["updatedAt"].as_str().unwrap() > created["updatedAt"].as_str().unwrap(), "updatedAt advances");
    for who in [json!(["amy"]), json!(["bob", "amy", "bob"]), json!(["abe"])] {
        tick().await;
        app.post(&path, json!({"client_ids": who})).await.ok();
    }
    let order = json!(["zed", "mia", "amy", "bob", "abe"]);
    assert_eq!(app.get(&path).await.ok(), &json!({"result": order}), "joining order, no duplicates");
    assert_eq!(fetch_one(&app, CONVS, &id).await["m"], order);

    tick().await;
    let r = app.delete(&path, Some(json!({"client_ids": ["amy", "nobody"]}))).await;
    assert_eq!(r.ok()["objectId"], id.as_str());
    assert_eq!(app.get(&path).await.ok(), &json!({"result": ["zed", "mia", "bob", "abe"]}));
    assert_eq!(find(&app, CONVS, json!({"m": "amy"})).await, vec![batch.ok()["objectId"].as_str().unwrap().to_string()]);
    assert_eq!(find(&app, CONVS, json!({"m": "mia"})).await, vec![id.clone()]);
    // rejoining goes to the end
    tick().await;
    app.post(&path, json!({"client_ids": ["amy"]})).await.ok();
    assert_eq!(app.get(&path).await.ok()["result"], json!(["zed", "mia", "bob", "abe", "amy"]));
    // clients named for the first time come into existence: one can send at once
    app.send(&id, "abe", "hi from abe").await;
    srv.stop().await;
}

#[tokio::test]
async fn members_bad_requests() {
    let (srv, app) = setup().await;
    let id = app.conversation(json!({"m": ["a"]})).await;
    let path = format!("{CONVS}/{id}/members");
    for method in [Method::POST, Method::DELETE] {
        let call = |b: Option<Value>| app.call(method.clone(), &path, Auth::Master, b);
        call(Some(json!({}))).await.assert_error(400, 1);
        call(None).await.assert_error(400, 1);
        call(Some(json!({"client_ids": "b"}))).await.assert_error(400, 111);
        call(Some(json!({"client_ids": [1, 2]}))).await.assert_error(400, 111);
        call(Some(json!({"client_ids": {"b": 1}}))).await.assert_error(400, 111);
        call(Some(json!({"client_ids": []}))).await.assert_error(400, 1);
        call(Some(json!({"client_ids": [""]}))).await.assert_error(400, 1);
        call(Some(json!({"client_ids": ["x".repeat(65)]}))).await.assert_error(400, 1);
        app.call(method.clone(), &path, Auth::AppKey, Some(json!({"client_ids": ["b"]}))).await.assert_error(403, 119);
    }
    assert_eq!(app.get(&path).await.ok(), &json!({"result": ["a"]}));
    // unknown, non-numeric and wrong-kind ids
    let room = app.post(ROOMS, json!({})).await.ok()["objectId"].as_str().unwrap().to_string();
    let svc = app.post(SERVICES, json!({})).await.ok()["objectId"].as_str().unwrap().to_string();
    for verb in [Method::GET, Method::POST, Method::DELETE] {
        let body = (verb != Method::GET).then(|| json!({"client_ids": ["x"]}));
        let call = |p: String| {
            let (app, m, b) = (&app, verb.clone(), body.clone());
            async move { app.call(m, &format!("{CONVS}/{p}/members"), Auth::Master, b).await }
        };
        call("abc".into()).await.assert_error(404, 4303);
        call("123456789".into()).await.assert_error(404, 4303);
        call(room.clone()).await.assert_error(400, 4314);
        call(svc.clone()).await.assert_error(400, 4314);
    }
    srv.stop().await;
}

#[tokio::test]
async fn members_cap_adds_no_one() {
    let (srv, app) = setup().await;
    let start = members_list(499, "m");
    let id = app.conversation(json!({"m": start})).await;
    let path = format!("{CONVS}/{id}/members");
    let before = fetch_one(&app, CONVS, &id).await;
    app.post(&path, json!({"client_ids": ["x1", "x2"]})).await.assert_error(400, 4304);
    let after = app.get(&path).await;
    let after = after.ok()["result"].as_array().unwrap().clone();
    assert_eq!(after.len(), 499);
    assert!(!after.contains(&json!("x1")), "no one added");
    assert_eq!(fetch_one(&app, CONVS, &id).await, before, "conversation untouched");
    // members already in do not count twice; the 500th fits
    app.post(&path, json!({"client_ids": ["m000", "x1"]})).await.ok();
    assert_eq!(app.get(&path).await.ok()["result"].as_array().unwrap().len(), 500);
    app.post(&path, json!({"client_ids": ["x2"]})).await.assert_error(400, 4304);
    // adding someone already in a full conversation is harmless
    app.post(&path, json!({"client_ids": ["x1"]})).await.ok();
    // after someone leaves, there is room again
    app.delete(&path, Some(json!({"client_ids": ["m001"]}))).await.ok();
    app.post(&path, json!({"client_ids": ["x2"]})).await.ok();
    let m = app.get(&path).await;
    let m = m.ok()["result"].as_array().unwrap().clone();
    assert_eq!(m.len(), 500);
    assert_eq!(m.last().unwrap(), "x2");
    srv.stop().await;
}

// ============================================================================ mutes

#[tokio::test]
async fn mutes_are_listed_and_shown_as_mu() {
    let (srv, app) = setup().await;
    let created = app.post(CONVS, json!({"m": ["a", "b", "c"]})).await.ok().clone();
    let id = created["objectId"].as_str().unwrap().to_string();
    let other = app.conversation(json!({"m": ["a"]})).await;
    let path = format!("{CONVS}/{id}/mutes");
    assert_eq!(app.get(&path).await.ok(), &json!({"result": []}));
    assert!(fetch_one(&app, CONVS, &id).await.get("mu").is_none());

    tick().await;
    let r = app.post(&path, json!({"client_ids": ["c", "a"]})).await;
    let answer = r.ok().clone();
    assert_eq!(keys(&answer), s(&["objectId", "updatedAt"]));
    assert_eq!(answer["objectId"], id.as_str());
    assert!(answer["updatedAt"].as_str().unwrap() > created["updatedAt"].as_str().unwrap());
    let mut listed: Vec<String> = serde_json::from_value(app.get(&path).await.ok()["result"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, s(&["a", "c"]));
    let o = fetch_one(&app, CONVS, &id).await;
    let mut mu: Vec<String> = serde_json::from_value(o["mu"].clone()).unwrap();
    mu.sort();
    assert_eq!(mu, s(&["a", "c"]));
    assert_eq!(o["m"], json!(["a", "b", "c"]), "muting does not change membership");
    assert_eq!(find(&app, CONVS, json!({"mu": "a"})).await, vec![id.clone()]);
    assert_eq!(find(&app, CONVS, json!({"mu": "b"})).await, Vec::<String>::new());
    assert_eq!(find(&app, CONVS, json!({"mu": {"$exists": false}})).await, vec![other.clone()]);

    // a non-member: 4317, and nothing changes
    app.post(&path, json!({"client_ids": ["b", "stranger"]})).await.assert_error(400, 4317);
    app.delete(&path, Some(json!({"client_ids": ["a", "stranger"]}))).await.assert_error(400, 4317);
    let mut listed: Vec<String> = serde_json::from_value(app.get(&path).await.ok()["result"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, s(&["a", "c"]));

    app.delete(&path, Some(json!({"client_ids": ["a"]}))).await.ok();
    assert_eq!(app.get(&path).await.ok(), &json!({"result": ["c"]}));
    assert_eq!(fetch_one(&app, CONVS, &id).await["mu"], json!(["c"]));
    app.delete(&path, Some(json!({"client_ids": ["c"]}))).await.ok();
    assert_eq!(app.get(&path).await.ok(), &json!({"result": []}));
    assert!(fetch_one(&app, CONVS, &id).await.get("mu").is_none());

    // a member who leaves is no longer muted
    app.post(&path, json!({"client_ids": ["b"]})).await.ok();
    app.delete(&format!("{CONVS}/{id}/members"), Some(json!({"client_ids": ["b"]}))).await.ok();
    assert_eq!(app.get(&path).await.ok(), &json!({"result": []}));

    // bad requests and wrong ids
    app.post(&path, json!({})).await.assert_error(400, 1);
    app.post(&path, json!({"client_ids": "a"})).await.assert_error(400, 111);
    app.get(&format!("{CONVS}/abc/mutes")).await.assert_error(404, 4303);
    let room = app.post(ROOMS, json!({})).await.ok()["objectId"].as_str().unwrap().to_string();
    app.get(&format!("{CONVS}/{room}/mutes")).await.assert_error(400, 4314);
    app.post(&format!("{CONVS}/{room}/mutes"), json!({"client_ids": ["a"]})).await.assert_error(400, 4314);
    srv.stop().await;
}

// ============================================================================ chat rooms

#[tokio::test]
async fn chatroom_presence_without_clients() {
    let (srv, app) = setup().await;
    let room = app.post(ROOMS, json!({"name": "lobby"})).await.ok()["objectId"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("{ROOMS}/{room}/members")).await.ok(), &json!({"result": []}));
    assert_eq!(app.get(&format!("{ROOMS}/{room}/members/online-count")).await.ok(), &json!({"result": 0}));
    let conv = app.conversation(json!({"m": ["a"]})).await;
    let svc = app.post(SERVICES, json!({})).await.ok()["objectId"].as_str().unwrap().to_string();
    for id in [&conv, &svc] {
        app.get(&format!("{ROOMS}/{id}/members")).await.assert_error(400, 4316);
        app.get(&format!("{ROOMS}/{id}/members/online-count")).await.assert_error(400, 4316);
    }
    app.get(&format!("{ROOMS}/abc/members")).await.assert_error(404, 4303);
    app.get(&format!("{ROOMS}/987654321/members/online-count")).await.assert_error(404, 4303);
    app.call(Method::GET, &format!("{ROOMS}/{room}/members"), Auth::AppKey, None).await.assert_error(403, 119);
    srv.stop().await;
}
