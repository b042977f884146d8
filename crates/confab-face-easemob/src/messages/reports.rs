//! Reports and read lists (specs/easemob-msync.md §12.2, §12.4):
//! * `reportMessage`: `POST /user/{username}/moderation/report/message/{msg_id} {username,
//!   reportType, reportReason}`: a user reports a message they can see. Kept for the app's
//!   operator (keyed collection `message_reports`), who reads them with the app token at `GET
//!   /moderation/reports?limit&cursor`.
//! * `getGroupMsgReadUser`: `GET /chatgroups/{group_id}/acks/{msg_id}?limit&key`: the members
//!   whose read cursor passed a group message (its sender left out), for a member of the group.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::Error;
use confab_routes::{get, post};
use serde_json::{json, Value};

use super::str_of;
use crate::auth::{Admin, Body, Caller, EmState, Need, Params, P};
use crate::envelope::{EmError, Reply};
use crate::rooms::{conv_of, Family};
use crate::users::{decode_cursor, encode_cursor, user_in_path};
use crate::Routes;

/// Page size range of the read list (the SDK asks for 500) and of the reports.
const READERS_MAX: i64 = 500;
const REPORTS_PAGE_MAX: i64 = 100;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, Token};
    vec![
        post("/user/{username}/moderation/report/message/{msg_id}", AppOrUser, report),
        get("/moderation/reports", App, reports),
        get("/chatgroups/{group_id}/acks/{msg_id}", Token, read_by),
    ]
}

fn no_message() -> EmError {
    EmError::new(StatusCode::NOT_FOUND, "resource_not_found", "MessageNotFoundException", "message not found")
}

/// `POST /user/{username}/moderation/report/message/{msg_id}`.
async fn report(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_DEFAULT).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let kind = str_of(o.get("reportType"))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| EmError::illegal("reportType cannot be null or empty"))?;
    let reason = str_of(o.get("reportReason")).unwrap_or_default();
    let msg: i64 = p.get("msg_id")?.trim().parse().map_err(|_| no_message())?;
    s.engine.client_state().report_message(&c.app, &user.id, msg, &kind, &reason).await.map_err(|e| match e {
        Error::MessageNotFound | Error::ConversationNotFound | Error::NotMember => no_message(),
        e => e.into(),
    })?;
    Ok(c.ctx.envelope(&c.app, "post", "/user/moderation/report/message").with("entities", json!([])).with("data", json!({"result": "ok"})))
}

/// `GET /moderation/reports?limit&cursor` (the app token): the reports, oldest first, `entities:
/// [{msg, conv, from, reporter, type, reason, at}]`, a cursor while more remain.
async fn reports(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_DEFAULT).await?;
    let limit = q.int("limit", REPORTS_PAGE_MAX, 1..=REPORTS_PAGE_MAX)?;
    let after = q.get("cursor").map(|k| decode_cursor(k).ok_or_else(|| EmError::illegal("cursor is not valid"))).transpose()?;
    let mut rows = s.engine.client_state().message_reports(&app, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut a = ctx
        .envelope(&app, "get", "/moderation/reports")
        .with("entities", json!(rows.iter().map(|e| e.value.clone()).collect::<Vec<Value>>()));
    if more {
        if let Some(last) = rows.last() {
            a = a.with("cursor", json!(encode_cursor(last.seq)));
        }
    }
    Ok(a.with("count", json!(rows.len())))
}

/// `GET /chatgroups/{group_id}/acks/{msg_id}?limit&key`: `data` the readers' ids in joining
/// order, `count` how many on this page, `key` where the next page starts ("" at the end).
async fn read_by(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_DEFAULT).await?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let msg: i64 = p.get("msg_id")?.trim().parse().map_err(|_| no_message())?;
    let limit = q.int("limit", READERS_MAX, 1..=READERS_MAX)?;
    // the SDK sends `key=undefined` for the first page
    let skip = match q.get("key").map(str::trim) {
        None | Some("undefined" | "null") => 0,
        Some(k) => k.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| EmError::illegal("key must be where the last page ended"))?,
    };
    let reader = c.user.as_ref().map(|u| u.id.as_str());
    let all = s.engine.client_state().read_by(&c.app, &group, reader, msg).await.map_err(|e| match e {
        Error::NotMember => EmError::forbidden(format!("user {} is not a member of group {}", reader.unwrap_or_default(), group.id)),
        Error::MessageNotFound => no_message(),
        e => e.into(),
    })?;
    let page: Vec<&String> = all.iter().skip(skip as usize).take(limit as usize).collect();
    let next = skip + page.len() as i64;
    let key = if next < all.len() as i64 { next.to_string() } else { String::new() };
    Ok(c.ctx
        .envelope(&c.app, "get", "/chatgroups/acks")
        .with("entities", json!([]))
        .with("data", json!(page))
        .with("count", json!(page.len()))
        .with("key", json!(key)))
}
