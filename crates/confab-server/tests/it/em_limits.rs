//! Easemob face over real HTTP: every family's endpoints count against rate buckets of their own,
//! configurable per app, and answer `429 reach_limit` past them (the seed's per-endpoint rates).

use crate::common::*;
use confab_engine::model::Plan;
use serde_json::json;

#[tokio::test]
async fn every_family_has_its_own_rate_bucket() {
    let srv = TestServer::start().await;
    let app = srv.em(Plan::Standard).await;
    app.users(&["alice", "bob"]).await;
    let r = app.post("/messages/users", json!({"from": "alice", "to": ["bob"], "type": "txt", "body": {"msg": "hi"}})).await;
    let msg = r.body["data"]["bob"].as_str().unwrap().to_string();
    // the history export names an hour as yyyyMMddHH (UTC)
    let hour: String = confab_engine::time::iso_ms(now_ms())[..13].chars().filter(char::is_ascii_digit).collect();
    let table: Vec<(&str, String)> = vec![
        ("em.users.get", "/users/alice".into()),
        ("em.contacts.list", "/users/alice/contacts/users".into()),
        ("em.blocks", "/users/alice/blocks/users".into()),
        ("em.metadata.get", "/metadata/user/alice".into()),
        ("em.mutes.list", "/mutes".into()),
        ("em.user_channels", "/user/alice/user_channels".into()),
        ("em.chatmessages", format!("/chatmessages/{hour}")),
        ("em.chatgroups.list", "/chatgroups".into()),
        ("em.chatrooms.list", "/chatrooms".into()),
        ("em.chatrooms.super_admin", "/chatrooms/super_admin".into()),
        ("em.notification.language", "/users/alice/notification/language".into()),
        ("em.push.label_list", "/push/label".into()),
        ("em.presence.sublist", "/users/alice/presence/sublist".into()),
        ("em.reaction.list", format!("/reaction/user/alice?msgIdList={msg}")),
        ("em.thread.list", "/thread".into()),
    ];
    for (bucket, path) in &table {
        srv.engine().apps().set_app_limit(&app.app.name, &format!("rates.{bucket}.per_second"), "1").await.expect("limit");
        let first = app.get(path).await;
        assert_ne!(first.status, 429, "{bucket}: the first call passes ({path}): {:?}", first.body);
        let mut limited = None;
        for _ in 0..5 {
            let r = app.get(path).await;
            if r.status == 429 {
                limited = Some(r);
                break;
            }
        }
        let limited = limited.unwrap_or_else(|| panic!("{bucket}: no 429 from {path}"));
        limited.em_error(429, "reach_limit");
        limited.assert_retry_after();
    }
    srv.stop().await;
}
