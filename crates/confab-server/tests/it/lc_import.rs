//! `confab import leancloud`, the real binary, from a LeanCloud stand-in served here (LeanCloud's
//! shapes, ids, paging and master-key auth, with 429s now and then) and from its data export,
//! into a running server's data directory; then the LeanCloud face by the old ids.

use std::process::Output;
use std::time::Duration;

use crate::common::*;
use confab_engine::model::Plan;
use confab_engine::NewApp;
use confab_leancloud_standin::{
    write_export_tar_gz, ConvKind as Lc, Dataset, DatasetSpec, ExportOptions, Faults, MalformedLine, StandInServer,
};
use serde_json::{json, Value};

/// The binary, with none of the caller's confab settings leaking in.
fn confab() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"));
    for var in ["CONFAB_DATA_DIR", "CONFAB_LISTEN", "CONFAB_DATABASE_URL", "RUST_LOG", "CONFAB_SOURCE_MASTER_KEY"] {
        c.env_remove(var);
    }
    c.stdin(std::process::Stdio::null()).kill_on_drop(true);
    c
}

/// A server, and an app in it with the stand-in's LeanCloud keys (the migration's first step).
pub(crate) async fn target(ds: &Dataset) -> (TestServer, LcApp) {
    let srv = TestServer::start().await;
    let app = srv
        .engine()
        .apps()
        .create_app(NewApp {
            name: "moved".into(),
            plan: Plan::Standard,
            leancloud_app_id: Some(ds.app_id().into()),
            leancloud_app_key: Some(ds.app_key().into()),
            leancloud_master_key: Some(ds.master_key().into()),
        })
        .await
        .unwrap();
    srv.engine().apps().set_app_limit("moved", "rates.lc.message.per_minute", "100000").await.unwrap();
    let lc = LcApp { app, base: srv.base.clone(), http: srv.http.clone() };
    (srv, lc)
}

/// `confab import leancloud --app moved --json ARGS…` on the server's store.
pub(crate) async fn import(srv: &TestServer, args: &[&str]) -> Output {
    let mut c = confab();
    c.args(["import", "leancloud", "--app", "moved", "--json"]).args(srv.store_args()).args(args);
    tokio::time::timeout(Duration::from_secs(300), c.output()).await.expect("the import finishes").expect("the import runs")
}

pub(crate) fn live<'a>(standin: &'a str, ds: &'a Dataset) -> Vec<&'a str> {
    vec!["--server", standin, "--source-app-id", ds.app_id(), "--source-master-key", ds.master_key()]
}

/// The summary of an import that succeeded.
#[track_caller]
pub(crate) fn summary(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the import failed: {}\n{text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

/// The fields of a history record an import must keep.
fn essentials(r: &Value) -> Value {
    json!({
        "msg-id": r["msg-id"], "timestamp": r["timestamp"], "from": r["from"], "data": r["data"], "bin": r["bin"],
        "recall": r.get("recall").cloned().unwrap_or(json!(false)), "patch": r.get("patch-timestamp").is_some(),
    })
}

/// A whole history over confab's LeanCloud REST API, oldest first, 1,000 at a time.
async fn confab_history(app: &LcApp, path: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let mut q = format!("{path}?reversed=true&limit=1000");
        if let Some(last) = out.last() {
            q += &format!("&timestamp={}&msgid={}", last["timestamp"], urlencoding::encode(last["msg-id"].as_str().unwrap()));
        }
        let page = app.get(&q).await;
        let page = page.ok().as_array().unwrap_or_else(|| panic!("{q}: {:?}", page.body)).clone();
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            return out;
        }
    }
}

/// Two histories the same, or where they first differ.
#[track_caller]
fn same_history(got: &[Value], want: &[Value], what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|i| got.get(*i) != want.get(*i)) {
        panic!(
            "{what}: {} messages here, {} at the source; first difference at {i}:\n  here:   {:?}\n  source: {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Every conversation of the stand-in is in confab by its objectId, with its members, and every
/// message of its history with its msg-id, timestamp, sender and content, in the same order.
async fn assert_all_imported(app: &LcApp, ds: &Dataset) {
    let mut checked = 0;
    for c in ds.conversations().into_iter().filter(|c| c.kind != Lc::Temporary) {
        let found = app.get(&format!("/1.2/rtm/all-conversations{}", qs(&[("where", &json!({"objectId": c.id}).to_string())]))).await;
        let found = &found.ok()["results"];
        assert_eq!(found.as_array().map(Vec::len), Some(1), "conversation {} by its objectId: {found}", c.id);
        let row = &found[0];
        assert_eq!(row["objectId"], c.id);
        assert_eq!(row["name"], json!(c.name));
        if matches!(c.kind, Lc::Group | Lc::Unique) {
            let mut m: Vec<String> = strs(&row["m"]);
            m.sort();
            let mut want = c.members.clone();
            want.sort();
            assert_eq!(m, want, "members of {}", c.id);
        }
        if c.kind == Lc::Unique {
            assert_eq!(row["uniqueId"], json!(c.unique_id));
        }
        let want: Vec<Value>;
        let got: Vec<Value>;
        if c.kind == Lc::Service {
            for s in &c.subscribers {
                let want: Vec<Value> = ds.subscriber_messages(&c.id, &s.client_id).map(|m| essentials(&m.record())).collect();
                let path = format!("/1.2/rtm/service-conversations/{}/subscribers/{}/messages", c.id, s.client_id);
                let got: Vec<Value> = confab_history(app, &path).await.iter().map(essentials).collect();
                same_history(&got, &want, &format!("what {} received in {}", s.client_id, c.id));
            }
            checked += 1;
            continue;
        } else {
            want = ds.messages(&c.id).map(|m| essentials(&m.record())).collect();
            got = confab_history(app, &format!("/1.2/rtm/{}/{}/messages", c.kind.resource(), c.id)).await.iter().map(essentials).collect();
        }
        same_history(&got, &want, &format!("history of {}", c.id));
        checked += 1;
    }
    assert!(checked >= 10, "every kind of conversation was checked ({checked})");
}

fn spec() -> DatasetSpec {
    DatasetSpec { seed: 7, messages_per_conversation: 1_150, ..Default::default() }
}

#[tokio::test]
async fn a_live_import_keeps_every_id_then_the_cut_over_brings_only_what_is_new() {
    let ds = Dataset::generate(spec());
    // every fifth request is refused with 429 (at once: Retry-After 0) and must be tried again
    let faults = Faults { throttle_every: Some(5), retry_after_secs: Some(0), ..Default::default() };
    let standin = StandInServer::start_with(ds.clone(), faults).await.unwrap();
    let (srv, app) = target(&ds).await;
    let url = standin.url();

    let first = summary(&import(&srv, &live(&url, &ds)).await);
    let convs = ds.conversations().into_iter().filter(|c| c.kind != Lc::Temporary).count() as u64;
    assert_eq!(first["conversations"], convs);
    assert_eq!(first["conversations_created"], convs);
    assert_eq!(first["skipped"], 0, "{first}");
    assert!(standin.stats().routes.values().map(|r| r.throttled).sum::<u64>() >= 5, "the 429s were met, and retried");
    assert_all_imported(&app, &ds).await;

    // history pages across the boundary: a message sent here after the import follows the
    // imported ones, and paging back from it by (timestamp, msg-id) reaches the old ones
    let group = ds.conversation_ids(Lc::Group)[0].clone();
    let (new_id, new_ts) = app.send(&group, "tom", "after the move").await;
    let newest = app.get(&format!("/1.2/rtm/conversations/{group}/messages?limit=2")).await;
    let newest = newest.ok().as_array().unwrap().clone();
    assert_eq!((newest[0]["msg-id"].as_str(), newest[0]["timestamp"].as_i64()), (Some(new_id.as_str()), Some(new_ts)));
    let last_old = ds.messages(&group).last().unwrap();
    assert_eq!(newest[1]["msg-id"], last_old.msg_id);
    let before = app
        .get(&format!(
            "/1.2/rtm/conversations/{group}/messages?limit=1&timestamp={}&msgid={}",
            last_old.timestamp,
            urlencoding::encode(&last_old.msg_id)
        ))
        .await;
    let previous = ds.messages(&group).nth(ds.message_count(&group) as usize - 2).unwrap();
    assert_eq!(before.ok()[0]["msg-id"], previous.msg_id);

    // the cut-over: 25 new messages at the source, and a second run brings exactly those
    let added = ds.append(&group, 25).unwrap();
    let second = summary(&import(&srv, &live(&url, &ds)).await);
    assert_eq!((second["messages"].as_u64(), second["conversations_created"].as_u64()), (Some(25), Some(0)), "{second}");
    let hist = confab_history(&app, &format!("/1.2/rtm/conversations/{group}/messages")).await;
    let ids: Vec<&str> = hist.iter().map(|m| m["msg-id"].as_str().unwrap()).collect();
    for m in &added {
        assert_eq!(ids.iter().filter(|i| **i == m.msg_id).count(), 1, "{} once", m.msg_id);
    }
    assert_eq!(hist.len() as u64, ds.message_count(&group) + 1, "everything once, and ours");
    // and a third run finds nothing new
    let third = summary(&import(&srv, &live(&url, &ds)).await);
    assert_eq!(third["messages"], 0, "{third}");
    srv.stop().await;
}

#[tokio::test]
async fn an_interrupted_import_resumes_where_it_stopped() {
    // (no service conversations: their histories, read subscriber by subscriber, meet the same
    // messages again by design, which would blur what this counts)
    let ds = Dataset::generate(DatasetSpec { seed: 8, groups: 6, services: 0, messages_per_conversation: 3_000, ..Default::default() });
    // slow enough to be caught in the middle
    let faults = Faults { delay: Some(Duration::from_millis(30)), ..Default::default() };
    let standin = StandInServer::start_with(ds.clone(), faults).await.unwrap();
    let (srv, app) = target(&ds).await;
    let url = standin.url();
    let mut c = confab();
    c.args(["import", "leancloud", "--app", "moved", "--json", "--concurrency", "2"]).args(srv.store_args()).args(live(&url, &ds));
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // killed once some history is in
    let group = ds.conversation_ids(Lc::Group)[0].clone();
    eventually(120, || async {
        let n = srv.store().message_by_foreign(app.app.id, &ds.messages(&group).nth(1500).unwrap().msg_id).await.unwrap();
        n.map(|_| ())
    })
    .await;
    child.kill().await.unwrap();
    let partial = app.get("/1.2/rtm/all-conversations?limit=1000").await;
    let done_before = partial.ok()["results"].as_array().unwrap().len();
    let rest = summary(&import(&srv, &live(&url, &ds)).await);
    // two conversations at a time: at most a page of each was stored but not yet checkpointed
    assert!(rest["messages_already_here"].as_u64().unwrap() <= 2 * 1000, "only the pages in flight came twice: {rest}");
    assert!((rest["conversations_created"].as_u64().unwrap() as usize) + done_before >= ds.conversations().len() - 1, "{rest}");
    assert_all_imported(&app, &ds).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_wrong_master_key_or_url_writes_nothing() {
    let ds = Dataset::generate(DatasetSpec { seed: 9, ..Default::default() });
    let standin = StandInServer::start(ds.clone()).await.unwrap();
    let (srv, app) = target(&ds).await;
    let url = standin.url();
    let out = import(&srv, &["--server", &url, "--source-app-id", ds.app_id(), "--source-master-key", "not-the-key"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the app id and master key"), "{err}");
    let out =
        import(&srv, &["--server", "http://127.0.0.1:9", "--source-app-id", ds.app_id(), "--source-master-key", ds.master_key()]).await;
    assert!(!out.status.success(), "nothing listens there");
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    let convs = app.get("/1.2/rtm/all-conversations").await;
    assert_eq!(convs.ok()["results"], json!([]), "nothing was written");
    let users = srv.engine().users().count_users(&app.app).await.unwrap();
    assert_eq!(users, 0);
    srv.stop().await;
}

#[tokio::test]
async fn an_export_with_history_from_the_server_and_a_malformed_line() {
    let ds = Dataset::generate(DatasetSpec { seed: 10, messages_per_conversation: 40, ..Default::default() });
    let standin = StandInServer::start(ds.clone()).await.unwrap();
    let (srv, app) = target(&ds).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("export.tar.gz");
    let opts = ExportOptions {
        split: vec!["_Conversation".into()],
        malformed: vec![MalformedLine { class: "_Conversation".into(), line: 3 }],
        ..Default::default()
    };
    let manifest = write_export_tar_gz(&ds, &archive, &opts).unwrap();
    let bad = manifest.malformed();
    assert_eq!(bad.len(), 1);
    let archive_arg = archive.to_str().unwrap();
    let url = standin.url();

    // --strict stops at it, having written nothing of the conversations after it
    let mut args = vec!["--export", archive_arg, "--strict"];
    args.extend(live(&url, &ds));
    let out = import(&srv, &args).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!(":{}:", bad[0].1)), "names the line: {err}");

    // without it, the line is reported and skipped, and everything else comes in
    let mut args = vec!["--export", archive_arg];
    args.extend(live(&url, &ds));
    let s = summary(&import(&srv, &args).await);
    assert_eq!(s["skipped"], 1, "{s}");
    let line = &s["skipped_lines"][0];
    assert!(line["file"].as_str().unwrap().ends_with(&bad[0].0) && line["line"] == bad[0].1, "{line} vs {bad:?}");
    // the _SysMessage rows (users' messages to the service conversations) came in too
    let services = ds.conversation_ids(Lc::Service);
    let sys = ds.rows("_SysMessage").unwrap();
    let from = sys[0]["from"].as_str().unwrap();
    let conv = sys[0]["conv"]["objectId"].as_str().unwrap();
    assert!(services.iter().any(|s| s == conv));
    let theirs = confab_history(&app, &format!("/1.2/rtm/service-conversations/{conv}/subscribers/{from}/messages")).await;
    assert!(theirs.iter().any(|m| m["msg-id"] == sys[0]["msgId"]), "a user's own message to the service, in their history");
    srv.stop().await;
}

#[tokio::test]
async fn an_export_alone_brings_the_conversations_and_a_dry_run_writes_nothing() {
    let ds = Dataset::generate(DatasetSpec { seed: 11, ..Default::default() });
    let (srv, app) = target(&ds).await;
    let dir = tempfile::tempdir().unwrap();
    confab_leancloud_standin::write_export_dir(&ds, dir.path(), &ExportOptions::default()).unwrap();
    let export = dir.path().to_str().unwrap();
    let dry = summary(&import(&srv, &["--export", export, "--dry-run"]).await);
    assert_eq!((dry["dry_run"].as_bool(), dry["conversations_created"].as_u64()), (Some(true), Some(0)));
    assert_eq!(app.get("/1.2/rtm/all-conversations").await.ok()["results"], json!([]));
    let map = dir.path().join("ids.csv");
    let s = summary(&import(&srv, &["--export", export, "--id-map", map.to_str().unwrap()]).await);
    let convs = ds.conversations().into_iter().filter(|c| c.kind != Lc::Temporary).count() as u64;
    assert_eq!(s["conversations_created"], convs);
    let group = &ds.conversation_ids(Lc::Group)[0];
    let r = app.get(&format!("/1.2/rtm/conversations{}", qs(&[("where", &json!({"objectId": group}).to_string())]))).await;
    assert_eq!(r.ok()["results"][0]["objectId"], json!(group));
    // the id map names the numeric id the other faces use: Easemob finds the group by it
    let ids = std::fs::read_to_string(&map).unwrap();
    assert_eq!(ids.lines().count() as u64, convs + 1, "a header and a line a conversation");
    let num = ids.lines().find_map(|l| l.strip_prefix(&format!("{group},"))).expect("the group's line").to_string();
    let em = srv.em_of(&app).await;
    let g = em.get(&format!("/chatgroups/{num}")).await;
    assert_eq!(g.ok()["data"][0]["id"], json!(num), "{:?}", g.body);
    // the app's _User accounts: the same passwords log in (LeanCloud's hash, re-hashed with
    // argon2id at the first login), and the sessions LeanCloud had issued still work
    assert_eq!(s["users"].as_u64(), Some(ds.users().len() as u64));
    let user = &ds.users()[0];
    let me = app
        .call(
            reqwest::Method::GET,
            "/1.1/users/me",
            Auth::Headers(vec![
                ("X-LC-Id".into(), app.app_id().into()),
                ("X-LC-Key".into(), app.app_key().into()),
                ("X-LC-Session".into(), user.session_token.clone()),
            ]),
            None,
        )
        .await;
    assert_eq!((me.status, me.body["objectId"].as_str()), (200, Some(user.object_id.as_str())), "{:?}", me.body);
    let login = |password: &str| {
        app.call(reqwest::Method::POST, "/1.1/login", Auth::AppKey, Some(json!({"username": user.username, "password": password})))
    };
    login("not it").await.assert_error(400, 210);
    let ok = login(&user.password).await;
    assert_eq!(ok.ok()["objectId"], json!(user.object_id));
    let stored = srv.engine().users().get_user(&app.app, &user.object_id).await.unwrap();
    assert!(stored.password_hash.unwrap().starts_with("$argon2id$"), "re-hashed at the first login");
    assert_eq!(login(&user.password).await.status, 200, "and the same password works after");
    srv.stop().await;
}
