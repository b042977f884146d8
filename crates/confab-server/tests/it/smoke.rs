//! The README walk-through, over real HTTP: create a conversation, send, read history.

use crate::common::*;
use confab_engine::model::Plan;
use serde_json::json;

#[tokio::test]
async fn create_send_and_read_history() {
    let srv = TestServer::start().await;
    let app = srv.app(Plan::Standard).await;
    let r =
        app.post("/1.2/rtm/conversations", json!({"name": "My First Conversation", "m": ["BillGates", "SteveJobs"], "unique": true})).await;
    let conv = r.ok();
    assert_eq!(conv["uniqueId"], "6c7b0e5afcae9aa1139a0afa25833dec");
    assert_eq!(conv["m"], json!(["BillGates", "SteveJobs"]));
    let id = conv["objectId"].as_str().unwrap().to_string();
    let (mid, ts) = app.send(&id, "BillGates", "hello").await;
    let h = app.get(&format!("/1.2/rtm/conversations/{id}/messages")).await;
    let h = h.ok().as_array().unwrap().clone();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["msg-id"], mid);
    assert_eq!(h[0]["timestamp"], ts);
    assert_eq!(h[0]["data"], "hello");
    assert_eq!(h[0]["from"], "BillGates");
    assert_eq!(h[0]["conv-id"], id);
    srv.stop().await;
}
