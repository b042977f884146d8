//! LeanCloud IM hooks against LeanCloud's official LeanEngine SDK (`common::leanengine`): every
//! hook fires with the spec's body and headers, each answer field has its effect, failures are
//! harmless (fail open) or refuse (`fail_on_error`), and `_receiversOffline` shapes the push that
//! reaches the app's relay (`common::receiver`).

use std::time::{Duration, Instant};

use crate::common::leanengine::{leanengine_or_skip, master_sign, LeanEngine};
use crate::common::receiver::{Receiver, Reply};
use crate::common::ws::{command, Client};
use crate::common::*;
use confab_engine::model::{AppLookup, Plan};
use confab_face_leancloud::realtime::proto::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    srv: TestServer,
    lc: LcApp,
    le: LeanEngine,
    push: Receiver,
}

/// A server, an app whose hooks are served by LeanEngine (`defined`: None = all 14) and whose
/// pushes go to a receiver; `settings` on top.
async fn setup(test: &str, defined: Option<&[&str]>, settings: &[(&str, &str)]) -> Option<Setup> {
    if !leanengine_or_skip(test) {
        return None;
    }
    let srv = TestServer::start().await;
    let lc = srv.app(Plan::Standard).await;
    let k = lc.app.keys.leancloud.clone();
    let le = LeanEngine::start(&k.app_id, &k.app_key, &k.master_key, &k.hook_key, defined).await;
    let push = Receiver::start().await;
    let push_url = push.url("/push");
    let mut s = vec![("hooks.leancloud.url", le.url()), ("push.webhook_url", push_url.as_str())];
    s.extend_from_slice(settings);
    srv.engine().apps().set_app_settings(&lc.app.name, &s).await.expect("settings");
    Some(Setup { srv, lc, le, push })
}

impl Setup {
    async fn client(&self, peer: &str) -> Client {
        let mut c = Client::connect(&self.srv.base).await;
        c.open(self.lc.app_id(), Some(peer)).await;
        c
    }

    async fn app(&self) -> std::sync::Arc<confab_engine::model::App> {
        self.srv.engine().apps().find_app(&AppLookup::Id(self.lc.app.id)).await.unwrap().unwrap()
    }

    async fn conv_name(&self, cid: &str) -> Option<String> {
        let app = self.app().await;
        self.srv.engine().conversations().conversation(&app, cid.parse().unwrap(), None).await.unwrap().name
    }

    async fn set(&self, settings: &[(&str, &str)]) {
        self.srv.engine().apps().set_app_settings(&self.lc.app.name, settings).await.expect("settings");
    }
}

/// Every call carries the app id, the master sign and the hook key, as LeanCloud's RTM sends.
#[track_caller]
fn assert_signed(call: &Value, lc: &LcApp) {
    let h = &call["headers"];
    assert_eq!(h["x-lc-id"], lc.app_id());
    assert_eq!(h["x-lc-hook-key"], lc.app.keys.leancloud.hook_key.as_str());
    assert_eq!(h["content-type"].as_str().map(|c| c.starts_with("application/json")), Some(true));
    let sign = h["x-lc-sign"].as_str().expect("x-lc-sign");
    let ts: i64 = sign.split(',').nth(1).unwrap().parse().unwrap();
    assert_eq!(sign, master_sign(lc.master_key(), ts));
    assert!(h.get("x-lc-session").is_none());
    assert_eq!(call["path"].as_str().unwrap(), format!("/1.1/functions/{}", call["name"].as_str().unwrap()));
}

fn conv_cmd(op: OpType, c: ConvCommand) -> GenericCommand {
    let mut g = command(CommandType::Conv, Some(op));
    g.conv_message = Some(c);
    g
}

#[track_caller]
fn assert_app_error(r: &GenericCommand, code: i32, app_code: i32, detail: &str) {
    assert_eq!(r.cmd, Some(CommandType::Error as i32), "expected error {code}, got {r:?}");
    let e = r.error_message.as_ref().unwrap();
    assert_eq!((e.code, e.app_code, e.detail.as_deref(), e.app_msg.as_deref()), (code, Some(app_code), Some(detail), Some(detail)));
}

/// The pushes the relay got, by message id.
fn pushes(push: &Receiver) -> Vec<Value> {
    push.calls_to("/push").into_iter().map(|c| c.body).collect()
}

#[tokio::test]
async fn message_received_drops_rewrites_and_narrows() {
    let Some(s) = setup("message_received_drops_rewrites_and_narrows", None, &[]).await else { return };
    let cid = s.lc.conversation(json!({"name": "g", "c": "Tom", "m": ["Tom", "Jerry", "Spike"]})).await;
    let mut tom = s.client("Tom").await;
    let mut jerry = s.client("Jerry").await;
    let mut spike = s.client("Spike").await;
    s.le.script(
        "_messageReceived",
        json!([
            {"return": {"drop": true, "code": 123, "detail": "blocked"}},
            {"return": {"content": "a ** b", "code": 7, "detail": "masked"}},
            {"return": {"toPeers": ["Spike", "Stranger"]}},
        ]),
        None,
    )
    .await;

    // drop: the sender's ack carries 4402 and the app's code and text; nobody gets it
    let r = tom.send_text(None, &cid, "forbidden").await;
    let ack = r.ack_message.as_ref().expect("an ack");
    assert_eq!((ack.code, ack.app_code, ack.app_msg.as_deref()), (Some(4402), Some(123), Some("blocked")), "{r:?}");
    let calls = s.le.wait_calls("_messageReceived", 1, WAIT).await;
    assert_signed(&calls[0], &s.lc);
    let p = &calls[0]["params"];
    assert_eq!(p["fromPeer"], "Tom");
    assert_eq!(p["convId"], cid.as_str());
    let mut to: Vec<String> = strs(&p["toPeers"]);
    to.sort();
    assert_eq!(to, ["Jerry", "Spike"]);
    assert_eq!(
        (p["content"].as_str(), &p["bin"], &p["transient"], &p["receipt"], &p["system"]),
        (Some("forbidden"), &json!(false), &json!(false), &json!(false), &json!(false))
    );
    assert_eq!(p["sourceIP"], "127.0.0.1");
    assert!((p["timestamp"].as_i64().unwrap() - now_ms()).abs() < 60_000);

    // content replaced: recipients get the new content, the sender hears why (patchCode/patchReason)
    let r = tom.send_text(None, &cid, "a XX b").await;
    assert_eq!(r.ack_message.as_ref().unwrap().code, None, "{r:?}");
    let d = jerry.direct_push().await;
    assert_eq!(d.direct_message.unwrap().msg.as_deref(), Some("a ** b"));
    let patch = loop {
        let p = tom.push().await;
        if p.cmd == Some(CommandType::Patch as i32) {
            break p;
        }
    };
    assert_eq!(patch.op, Some(OpType::Modify as i32));
    let item = &patch.patch_message.unwrap().patches[0];
    assert_eq!((item.data.as_deref(), item.patch_code, item.patch_reason.as_deref()), (Some("a ** b"), Some(7), Some("masked")));
    let history = s.lc.get(&format!("/1.2/rtm/conversations/{cid}/messages")).await;
    assert_eq!(history.ok()[0]["data"], "a ** b");

    // toPeers narrows delivery (a name that is no member is ignored)
    spike.direct_push().await; // the rewritten one
    tom.send_text(None, &cid, "only spike").await;
    assert_eq!(spike.direct_push().await.direct_message.unwrap().msg.as_deref(), Some("only spike"));
    jerry.no_direct().await;
}

#[tokio::test]
async fn message_sent_receivers_offline_and_push() {
    let Some(s) = setup("message_sent_receivers_offline_and_push", None, &[]).await else { return };
    let cid = s.lc.conversation(json!({"c": "Tom", "m": ["Tom", "Jerry", "Spike", "Tyke"]})).await;
    // Jerry turns the conversation's notifications off, then everyone but Tyke is offline
    let mut jerry = s.client("Jerry").await;
    let r = jerry.request(conv_cmd(OpType::Mute, ConvCommand { cid: Some(cid.clone()), ..Default::default() })).await;
    assert_eq!(r.op, Some(OpType::Updated as i32), "{r:?}");
    let mute = s.le.wait_calls("_conversationUpdate", 1, WAIT).await;
    assert_eq!(mute[0]["params"], json!({"initBy": "Jerry", "convId": cid, "mute": true}));
    drop(jerry);
    // Jerry is offline once the app heard so
    s.le.wait_calls("_clientOffline", 1, WAIT).await;
    let _tyke = s.client("Tyke").await;
    s.le.script(
        "_receiversOffline",
        json!([
            {"return": {}},
            {"return": {"force": true, "pushMessage": {"alert": "forced"}}},
            {"return": {"skip": true}},
            {"return": {"offlinePeers": ["Spike"], "pushMessage": "{\"alert\":\"to spike\"}"}},
        ]),
        None,
    )
    .await;
    // REST sends with the master key: no _messageReceived, but _messageSent and _receiversOffline
    let (m1, _) = s.lc.send(&cid, "Tom", "one").await;
    s.le.wait_calls("_receiversOffline", 1, WAIT).await;
    let (m2, _) = s.lc.send(&cid, "Tom", "two").await;
    s.le.wait_calls("_receiversOffline", 2, WAIT).await;
    let (m3, _) = s.lc.send(&cid, "Tom", "three").await;
    s.le.wait_calls("_receiversOffline", 3, WAIT).await;
    let r =
        s.lc.post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": "Tom", "message": "@Spike four", "mention_client_ids": ["Spike", "Tyke"]}),
        )
        .await;
    let m4 = r.ok()["msg-id"].as_str().unwrap().to_string();

    let offline = s.le.wait_calls("_receiversOffline", 4, WAIT).await;
    assert_signed(&offline[0], &s.lc);
    let p = &offline[0]["params"];
    let mut peers = strs(&p["offlinePeers"]);
    peers.sort();
    assert_eq!(peers, ["Jerry", "Spike"]);
    assert_eq!((p["fromPeer"].as_str(), p["convId"].as_str(), p["content"].as_str()), (Some("Tom"), Some(cid.as_str()), Some("one")));
    assert_eq!((&p["mentionAll"], &p["mentionOfflinePeers"]), (&json!(false), &json!([])));
    assert_eq!(offline[3]["params"]["mentionOfflinePeers"], json!(["Spike"]));

    let sent = s.le.wait_calls("_messageSent", 4, WAIT).await;
    assert_signed(&sent[0], &s.lc);
    let p = &sent[0]["params"];
    assert_eq!(p["msgId"], m1.as_str());
    assert_eq!(p["onlinePeers"], json!(["Tyke"]));
    assert_eq!((p["content"].as_str(), &p["bin"], &p["transient"]), (Some("one"), &json!(false), &json!(false)));
    assert!(s.le.calls("_messageReceived").await.is_empty(), "REST sends with the master key do not ask _messageReceived");

    // pushes: m1 skips the muted Jerry, m2 forces, m3 skipped, m4 narrowed to Spike
    let got = eventually(10, || async {
        let p = pushes(&s.push);
        (p.len() >= 3).then_some(p)
    })
    .await;
    let by = |m: &str| got.iter().find(|p| p["msgId"] == m).cloned();
    let one = by(&m1).expect("m1 pushed");
    assert_eq!(one["to"], json!(["Spike"]));
    assert_eq!(one["payload"], json!({"alert": "您有新的消息", "badge": "Increment"}));
    let two = by(&m2).expect("m2 pushed");
    assert_eq!(sorted_strs(&two["to"]), ["Jerry", "Spike"]);
    assert_eq!(two["payload"], json!({"alert": "forced"}));
    let four = by(&m4).expect("m4 pushed");
    assert_eq!((&four["to"], &four["payload"]), (&json!(["Spike"]), &json!({"alert": "to spike"})));
    assert!(by(&m3).is_none(), "skip: no push");
}

#[tokio::test]
async fn undefined_receivers_offline_pushes_the_default() {
    let defined: &[&str] = &["_messageSent"];
    let Some(s) = setup("undefined_receivers_offline_pushes_the_default", Some(defined), &[]).await else { return };
    let cid = s.lc.conversation(json!({"c": "Tom", "m": ["Tom", "Jerry"]})).await;
    let r =
        s.lc.post(
            &format!("/1.2/rtm/conversations/{cid}/messages"),
            json!({"from_client": "Tom", "message": "x", "push_data": "{\"alert\":\"own\"}"}),
        )
        .await;
    let m = r.ok()["msg-id"].as_str().unwrap().to_string();
    let p = s.push.wait_calls("/push", 1, WAIT).await;
    assert_eq!((p[0].body["msgId"].as_str(), &p[0].body["payload"]), (Some(m.as_str()), &json!({"alert": "own"})));
    s.le.wait_calls("_messageSent", 1, WAIT).await;
    // the undefined hooks were never called (LeanEngine records only calls that reach a function)
    let defined_calls = s.le.calls("_receiversOffline").await;
    assert!(defined_calls.is_empty());
}

#[tokio::test]
async fn conversation_hooks_reject_and_replace() {
    let Some(s) = setup("conversation_hooks_reject_and_replace", None, &[]).await else { return };
    let mut tom = s.client("Tom").await;
    s.le.script("_conversationStart", json!([{"return": {"reject": true, "code": 1234, "detail": "need 3"}}]), None).await;
    let attr = |v: Value| Some(JsonObjectMessage { data: v.to_string() });
    let start = ConvCommand { m: vec!["Jerry".into()], attr: attr(json!({"name": "T&J", "color": "red"})), ..Default::default() };
    let r = tom.request(conv_cmd(OpType::Start, start.clone())).await;
    assert_app_error(&r, 4305, 1234, "need 3");
    let r = tom.request(conv_cmd(OpType::Start, start)).await;
    assert_eq!(r.op, Some(OpType::Started as i32), "{r:?}");
    let cid = r.conv_message.unwrap().cid.unwrap();
    let calls = s.le.wait_calls("_conversationStart", 2, WAIT).await;
    assert_signed(&calls[1], &s.lc);
    let p = &calls[1]["params"];
    assert_eq!((&p["initBy"], &p["attr"]), (&json!("Tom"), &json!({"name": "T&J", "color": "red"})));
    assert_eq!(sorted_strs(&p["members"]), ["Jerry", "Tom"]);
    let started = s.le.wait_calls("_conversationStarted", 1, WAIT).await;
    assert_eq!(started[0]["params"], json!({"convId": cid}));

    // add and remove: rejected, then done (and told)
    let reject = json!({"return": {"reject": true, "code": 55, "detail": "no"}});
    s.le.script("_conversationAdd", json!([reject]), None).await;
    s.le.script("_conversationRemove", json!([reject]), None).await;
    let m = |who: &str| ConvCommand { cid: Some(cid.clone()), m: vec![who.into()], ..Default::default() };
    assert_app_error(&tom.request(conv_cmd(OpType::Add, m("Spike"))).await, 4305, 55, "no");
    assert_eq!(tom.request(conv_cmd(OpType::Add, m("Spike"))).await.op, Some(OpType::Added as i32));
    let add = s.le.wait_calls("_conversationAdd", 2, WAIT).await;
    assert_eq!(add[1]["params"], json!({"initBy": "Tom", "members": ["Spike"], "convId": cid}));
    let added = s.le.wait_calls("_conversationAdded", 1, WAIT).await;
    assert_eq!(added[0]["params"], json!({"initBy": "Tom", "members": ["Spike"], "convId": cid}));
    assert_app_error(&tom.request(conv_cmd(OpType::Remove, m("Spike"))).await, 4305, 55, "no");
    assert_eq!(tom.request(conv_cmd(OpType::Remove, m("Spike"))).await.op, Some(OpType::Removed as i32));
    let removed = s.le.wait_calls("_conversationRemoved", 1, WAIT).await;
    assert_eq!(removed[0]["params"], json!({"initBy": "Tom", "members": ["Spike"], "convId": cid}));

    // update: rejected; then the hook's attr replaces the request's
    s.le.script("_conversationUpdate", json!([reject, {"return": {"attr": {"name": "forced"}, "mute": true}}]), None).await;
    let upd = ConvCommand { cid: Some(cid.clone()), attr: attr(json!({"name": "mine"})), ..Default::default() };
    assert_app_error(&tom.request(conv_cmd(OpType::Update, upd.clone())).await, 4305, 55, "no");
    assert_eq!(tom.request(conv_cmd(OpType::Update, upd)).await.op, Some(OpType::Updated as i32));
    let calls = s.le.wait_calls("_conversationUpdate", 2, WAIT).await;
    assert_eq!(calls[1]["params"], json!({"initBy": "Tom", "convId": cid, "attr": {"name": "mine"}}));
    assert_eq!(s.conv_name(&cid).await.as_deref(), Some("forced"));

    // mute: the hook's `mute` replaces the request's
    s.le.script("_conversationUpdate", json!([{"return": {"mute": false}}]), None).await;
    let r = tom.request(conv_cmd(OpType::Mute, ConvCommand { cid: Some(cid.clone()), ..Default::default() })).await;
    assert_eq!(r.op, Some(OpType::Updated as i32));
    let app = s.app().await;
    let conv = s.srv.engine().conversations().conversation(&app, cid.parse().unwrap(), None).await.unwrap();
    assert!(s.srv.engine().conversations().notifications_off(&app, &conv).await.unwrap().is_empty(), "the hook said not muted");
}

#[tokio::test]
async fn failures_fail_open_unless_fail_on_error() {
    let Some(s) = setup("failures_fail_open_unless_fail_on_error", None, &[("hooks.leancloud.timeout_ms", "500")]).await else { return };
    let cid = s.lc.conversation(json!({"c": "Tom", "m": ["Tom", "Jerry"]})).await;
    let mut tom = s.client("Tom").await;
    let mut jerry = s.client("Jerry").await;
    s.le.script(
        "_messageReceived",
        json!([
            {"delayMs": 3000, "return": {"drop": true}},
            {"crash": "boom"},
            {"throw": {"code": 9, "message": "thrown"}},
            {"delayMs": 3000, "return": {"drop": true}},
            {"crash": "boom"},
        ]),
        None,
    )
    .await;
    // a slow hook (past the 500 ms), a 500, a thrown error: delivered unchanged
    for text in ["slow", "crash", "thrown"] {
        let t = Instant::now();
        let r = tom.send_text(None, &cid, text).await;
        assert_eq!(r.ack_message.as_ref().unwrap().code, None, "{text}: {r:?}");
        assert!(t.elapsed() < Duration::from_millis(2500), "{text} waited {:?}", t.elapsed());
        assert_eq!(jerry.direct_push().await.direct_message.unwrap().msg.as_deref(), Some(text));
    }
    // fail closed: refused (4402, no app code)
    s.set(&[("hooks.leancloud.fail_on_error", "true")]).await;
    for text in ["slow", "crash"] {
        let r = tom.send_text(None, &cid, text).await;
        let ack = r.ack_message.as_ref().unwrap();
        assert_eq!((ack.code, ack.app_code), (Some(4402), None), "{text}: {r:?}");
    }
    jerry.no_direct().await;
}

#[tokio::test]
async fn bad_answers_are_harmless() {
    if !leanengine_or_skip("bad_answers_are_harmless") {
        return;
    }
    // a hook server that answers badly (no LeanEngine can): the receiver, scripted
    let srv = TestServer::start().await;
    let lc = srv.app(Plan::Standard).await;
    let hooks = Receiver::start().await;
    let url = hooks.url("");
    srv.engine().apps().set_app_settings(&lc.app.name, &[("hooks.leancloud.url", url.as_str())]).await.unwrap();
    let huge = format!("{{\"result\":{{\"content\":\"{}\"}}}}", "x".repeat(200 * 1024));
    hooks.script(
        "/1.1/functions/_messageReceived",
        vec![Reply::raw(200, "not json"), Reply::raw(200, huge), Reply::raw(200, "[1,2]"), Reply::raw(200, "{\"result\":{\"drop\":true}}")],
    );
    let cid = lc.conversation(json!({"c": "Tom", "m": ["Tom", "Jerry"]})).await;
    let mut tom = Client::connect(&srv.base).await;
    tom.open(lc.app_id(), Some("Tom")).await;
    let mut jerry = Client::connect(&srv.base).await;
    jerry.open(lc.app_id(), Some("Jerry")).await;
    for text in ["malformed", "huge", "array"] {
        let r = tom.send_text(None, &cid, text).await;
        assert_eq!(r.ack_message.as_ref().unwrap().code, None, "{text}: {r:?}");
        assert_eq!(jerry.direct_push().await.direct_message.unwrap().msg.as_deref(), Some(text));
    }
    // the same server answering well is obeyed
    let r = tom.send_text(None, &cid, "dropped").await;
    assert_eq!(r.ack_message.as_ref().unwrap().code, Some(4402));
    // metadatas was asked (the receiver answered {} without a list: every hook assumed defined)
    assert!(!hooks.calls_to("/1.1/functions/_ops/metadatas").is_empty());
    let m = &hooks.calls_to("/1.1/functions/_ops/metadatas")[0];
    assert!(m.header("x-lc-sign").unwrap().ends_with(",master"));
}

#[tokio::test]
async fn message_update_rejects_and_rewrites_edits() {
    let Some(s) = setup("message_update_rejects_and_rewrites_edits", None, &[]).await else { return };
    let cid = s.lc.conversation(json!({"c": "Tom", "m": ["Tom", "Jerry"]})).await;
    let mut tom = s.client("Tom").await;
    let mut jerry = s.client("Jerry").await;
    let r = tom.send_text(None, &cid, "first").await;
    let ack = r.ack_message.unwrap();
    let (mid, t) = (ack.uid.unwrap(), ack.t.unwrap());
    jerry.direct_push().await;
    s.le.script(
        "_messageUpdate",
        json!([{"return": {"drop": true, "code": 77, "detail": "no edits"}}, {"return": {"content": "edited by app"}}]),
        None,
    )
    .await;
    let patch = |data: Option<&str>, recall: bool| {
        let mut g = command(CommandType::Patch, Some(OpType::Modify));
        let item = PatchItem {
            cid: Some(cid.clone()),
            mid: Some(mid.clone()),
            timestamp: Some(t),
            data: data.map(str::to_string),
            recall: Some(recall),
            ..Default::default()
        };
        g.patch_message = Some(PatchCommand { patches: vec![item], ..Default::default() });
        g
    };
    assert_app_error(&tom.request(patch(Some("second"), false)).await, 4405, 77, "no edits");
    let r = tom.request(patch(Some("second"), false)).await;
    assert_eq!(r.op, Some(OpType::Modified as i32), "{r:?}");
    let got = loop {
        let p = jerry.push().await;
        if p.cmd == Some(CommandType::Patch as i32) {
            break p;
        }
    };
    assert_eq!(got.patch_message.unwrap().patches[0].data.as_deref(), Some("edited by app"));
    // the editor hears of the change too
    let mine = loop {
        let p = tom.push().await;
        if p.cmd == Some(CommandType::Patch as i32) {
            break p;
        }
    };
    assert_eq!(mine.patch_message.unwrap().patches[0].data.as_deref(), Some("edited by app"), "the editor sees the app's text");
    let calls = s.le.wait_calls("_messageUpdate", 2, WAIT).await;
    assert_signed(&calls[0], &s.lc);
    let p = &calls[1]["params"];
    assert_eq!(
        (p["msgId"].as_str(), p["content"].as_str(), &p["recall"], &p["timestamp"]),
        (Some(mid.as_str()), Some("second"), &json!(false), &json!(t))
    );
    assert_eq!((p["fromPeer"].as_str(), p["convId"].as_str(), &p["toPeers"]), (Some("Tom"), Some(cid.as_str()), &json!(["Jerry"])));
    // a recall asks too
    assert_eq!(tom.request(patch(None, true)).await.op, Some(OpType::Modified as i32));
    let calls = s.le.wait_calls("_messageUpdate", 3, WAIT).await;
    assert_eq!((&calls[2]["params"]["recall"], &calls[2]["params"]["content"]), (&json!(true), &json!("edited by app")));
}

#[tokio::test]
async fn client_online_and_offline_with_reasons() {
    let Some(s) = setup("client_online_and_offline_with_reasons", None, &[]).await else { return };
    let tom = s.client("Tom").await;
    let on = s.le.wait_calls("_clientOnline", 1, WAIT).await;
    assert_signed(&on[0], &s.lc);
    assert_eq!(on[0]["params"], json!({"peerId": "Tom", "sourceIP": "127.0.0.1", "reconnect": 0}));
    // logout
    let mut tom = tom;
    let r = tom.request(command(CommandType::Session, Some(OpType::Close))).await;
    assert_eq!(r.op, Some(OpType::Closed as i32));
    let off = s.le.wait_calls("_clientOffline", 1, WAIT).await;
    assert_eq!(off[0]["params"], json!({"peerId": "Tom", "closeCode": 1, "closeMsg": "logout", "sourceIP": "127.0.0.1"}));
    // connection lost: no sourceIP
    let jerry = s.client("Jerry").await;
    drop(jerry);
    let off = s.le.wait_calls("_clientOffline", 2, WAIT).await;
    assert_eq!(off[1]["params"], json!({"peerId": "Jerry", "closeCode": 2, "closeMsg": "connection lost"}));
    // kicked by the REST API
    let mut spike = s.client("Spike").await;
    s.lc.post("/1.2/rtm/clients/Spike/kick", json!({"reason": "bye"})).await.ok();
    let closed = spike.push().await;
    assert_eq!(closed.op, Some(OpType::Closed as i32), "{closed:?}");
    let off = s.le.wait_calls("_clientOffline", 3, WAIT).await;
    assert_eq!(off[2]["params"], json!({"peerId": "Spike", "closeCode": 4, "closeMsg": "bye", "sourceIP": "127.0.0.1"}));
    // a tag conflict
    let open_tagged = |device: &str| {
        crate::common::ws::open_cmd(
            s.lc.app_id(),
            Some("Tyke"),
            SessionCommand { tag: Some("mobile".into()), device_id: Some(device.into()), ..Default::default() },
        )
    };
    let mut a = Client::connect(&s.srv.base).await;
    a.request(open_tagged("d1")).await;
    let mut b = Client::connect(&s.srv.base).await;
    b.request(open_tagged("d2")).await;
    let off = s.le.wait_calls("_clientOffline", 4, WAIT).await;
    assert_eq!(
        off[3]["params"],
        json!({"peerId": "Tyke", "closeCode": 3, "closeMsg": "SESSION_CONFLICT", "sourceIP": "127.0.0.1", "tag": "mobile"})
    );
    let on = s.le.wait_calls("_clientOnline", 5, WAIT).await;
    assert_eq!(on[4]["params"]["tag"], "mobile");
}

#[tokio::test]
async fn rtm_client_sign_may_refuse() {
    let Some(s) = setup("rtm_client_sign_may_refuse", None, &[]).await else { return };
    let r = s.lc.call(reqwest::Method::POST, "/1.1/users", Auth::AppKey, Some(json!({"username": "tom", "password": "pw"}))).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let user = r.body.clone();
    let token = user["sessionToken"].as_str().unwrap().to_string();
    let path = format!("/1.2/rtm/clients/sign?session_token={token}");
    let sign = || s.lc.call(reqwest::Method::GET, &path, Auth::AppKey, None);
    let r = sign().await;
    assert!(r.ok()["signature"].is_string());
    let calls = s.le.wait_calls("_rtmClientSign", 1, WAIT).await;
    assert_signed(&calls[0], &s.lc);
    let p = &calls[0]["params"];
    assert_eq!((&p["objectId"], &p["username"], &p["sessionToken"]), (&user["objectId"], &json!("tom"), &json!(token)));
    for k in ["email", "phone", "createdAt", "updatedAt", "emailVerified", "mobilePhoneVerified"] {
        assert!(p.get(k).is_some(), "{k} in {p}");
    }
    s.le.script("_rtmClientSign", json!([{"return": false}]), None).await;
    sign().await.assert_error(403, 142);
    // refused no more
    sign().await.ok();
}

/// The service-conversation web hook (服务号消息回调): a user's message to a service conversation
/// reaches `hooks.leancloud.service_url` as `_SysMessage` records in an array, retried until
/// taken; the app's own messages to it are not called back. No LeanEngine needed.
#[tokio::test]
async fn service_conversation_messages_reach_the_web_hook() {
    let srv = TestServer::start_with(|c| c.outbox_first_retry_ms = 100).await;
    let lc = srv.app(Plan::Standard).await;
    let hook = Receiver::start().await;
    hook.script("/svc", vec![Reply::status(500), Reply::ok(json!({}))]);
    srv.engine().apps().set_app_settings(&lc.app.name, &[("hooks.leancloud.service_url", &hook.url("/svc"))]).await.expect("settings");
    let svc = lc.post("/1.2/rtm/service-conversations", json!({"name": "support"})).await.ok()["objectId"].as_str().unwrap().to_string();
    lc.post(&format!("/1.2/rtm/service-conversations/{svc}/subscribers"), json!({"client_id": "Tom"})).await.ok();

    lc.post(&format!("/1.2/rtm/service-conversations/{svc}/subscribers"), json!({"client_id": "Jerry"})).await.ok();
    let mut tom = Client::connect(&srv.base).await;
    tom.open(lc.app_id(), Some("Tom")).await;
    let mut jerry = Client::connect(&srv.base).await;
    jerry.open(lc.app_id(), Some("Jerry")).await;
    let mut spike = Client::connect(&srv.base).await;
    spike.open(lc.app_id(), Some("Spike")).await;
    let refused = spike.send_text(None, &svc, "not subscribed").await;
    assert!(refused.error_message.is_some() || refused.ack_message.as_ref().is_some_and(|a| a.code.is_some()), "{refused:?}");
    let before = now_ms();
    let reply = tom.send_text(None, &svc, "help!").await;
    let ack = reply.ack_message.clone().unwrap_or_else(|| panic!("an ack: {reply:?}"));
    let calls = hook.wait_calls("/svc", 2, WAIT).await;
    assert_eq!(calls[0].raw, calls[1].raw, "the same record, tried again after a 500");
    let records = calls[1].body.as_array().expect("an array of records");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["conv"], json!({"__type": "Pointer", "className": "_Conversation", "objectId": svc}));
    assert_eq!((r["msgId"].as_str(), r["from"].as_str(), r["data"].as_str()), (ack.uid.as_deref(), Some("Tom"), Some("help!")));
    assert_eq!((&r["bin"], &r["fromIp"]), (&json!(false), &json!("127.0.0.1")));
    let ts = r["timestamp"].as_i64().expect("timestamp");
    assert!(ts >= before - 1000 && Some(ts) == ack.t, "the message's time: {r}");
    assert_eq!(r["createdAt"]["__type"], "Date");
    assert!(calls[1].header("x-lc-key").is_none() && calls[1].header("x-lc-sign").is_none(), "no keys travel to the web hook");
    jerry.no_direct().await; // a subscriber's message is for the service, not for the other subscribers

    // the app's own message to its subscribers is not called back
    lc.post(
        &format!("/1.2/rtm/service-conversations/{svc}/messages"),
        json!({"from_client": "support", "message": "hello", "to_clients": ["Tom"]}),
    )
    .await
    .ok();
    // a call would be in the outbox with the message: once nothing is pending, it was made or not
    eventually(10, || async { (srv.engine().app_code().hook_report(&lc.app, 10).await.expect("report").pending == 0).then_some(()) }).await;
    assert_eq!(hook.calls_to("/svc").len(), 2);
    srv.stop().await;
}
