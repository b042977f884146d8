//! Silent-mode lists and group shields, on the push settings `push.rs` keeps (keyed collection
//! `push_settings`, per user, items `user:<peer>` and `chatgroup:<group>`), which the offline push
//! rules read (`offline_push.rs`):
//! * `getSilentModeForConversations`: `GET /users/{username}/notification?user=a,b&group=c`:
//!   `data: {user: {a: setting}, group: {c: setting}}` (a setting as
//!   `GET …/notification/{chattype}/{key}` answers it);
//! * `getSilentModeRemindTypeConversations`: `GET /users/{username}/notification/mute/type?limit&cursor`:
//!   the conversations with a remind type other than `DEFAULT`, `data: [{user | group, value}]`,
//!   `cursor` ("" at the end);
//! * `blockGroupMessage` / `unblockGroupMessage`: `POST` / `DELETE /chatgroups/{group_id}/shield`
//!   (a member's own token): the group's remind type becomes `NONE` (no offline push of its
//!   messages) and, unshielded, what it was before.

use axum::extract::State;
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::{Entry, EntryFilter, EntryQuery, PutRule};
use confab_routes::{delete, get, post};
use serde_json::{json, Map, Value};

use super::push::{push_user, setting_data};
use crate::auth::{Caller, EmState, Need, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::rooms::{conv_of, Family};
use crate::users::username;
use crate::Routes;

/// Most conversations one `getSilentModeForConversations` may name, and the mute list's page
/// size range and default.
pub const SILENT_BATCH_MAX: usize = 100;
const PAGE_MAX: i64 = 100;
const PAGE_DEFAULT: i64 = 10;

pub fn routes() -> Routes {
    use Need::{AppOrUser, Token};
    vec![
        get("/users/{username}/notification", AppOrUser, settings_of),
        get("/users/{username}/notification/mute/type", AppOrUser, muted),
        post("/chatgroups/{group_id}/shield", Token, shield),
        delete("/chatgroups/{group_id}/shield", Token, unshield),
    ]
}

fn ids(q: &Params, k: &str) -> Vec<String> {
    q.get(k).unwrap_or_default().split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

/// `GET /users/{username}/notification?user&group`.
async fn settings_of(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_GET).await?;
    let user = push_user(&s, &c, &p).await?;
    let (users, groups) = (ids(&q, "user"), ids(&q, "group"));
    if users.len() + groups.len() > SILENT_BATCH_MAX {
        return Err(EmError::illegal(format!("at most {SILENT_BATCH_MAX} conversations")));
    }
    let users: Vec<String> =
        users.iter().map(|u| username(u).map_err(|_| EmError::illegal(format!("user {u} is not a username")))).collect::<EmResult<_>>()?;
    let items: Vec<String> = users.iter().map(|u| format!("user:{u}")).chain(groups.iter().map(|g| format!("chatgroup:{g}"))).collect();
    let mut kept: Map<String, Value> = Map::new();
    if !items.is_empty() {
        let f = EntryFilter::collection(ns::PUSH_SETTINGS, user.clone()).items(items);
        for e in s.engine.collections().list(&c.app, &EntryQuery::all(f)).await? {
            kept.insert(e.item, e.value);
        }
    }
    let one = |item: String| setting_data(kept.get(&item), false);
    let user_map: Map<String, Value> = users.iter().map(|u| (u.clone(), one(format!("user:{u}")))).collect();
    let group_map: Map<String, Value> = groups.iter().map(|g| (g.clone(), one(format!("chatgroup:{g}")))).collect();
    Ok(c.ctx.envelope(&c.app, "get", "/users").with("data", json!({"user": user_map, "group": group_map})))
}

/// `GET /users/{username}/notification/mute/type?limit&cursor`, oldest setting first.
async fn muted(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_GET).await?;
    let user = push_user(&s, &c, &p).await?;
    let limit = q.int("limit", PAGE_DEFAULT, 1..=PAGE_MAX)?;
    let skip = q.int("cursor", 0, 0..=i64::from(i32::MAX))?;
    let all = s.engine.collections().list(&c.app, &EntryQuery::all(EntryFilter::collection(ns::PUSH_SETTINGS, user.clone()))).await?;
    let rows: Vec<Value> = all
        .iter()
        .filter_map(|e| {
            let kind = e.value.get("type").and_then(Value::as_str).filter(|t| *t != "DEFAULT")?;
            match e.item.split_once(':')? {
                ("user", peer) if peer != user => Some(json!({"user": peer, "value": kind})),
                ("chatgroup", g) => Some(json!({"group": g, "value": kind})),
                _ => None,
            }
        })
        .collect();
    let page: Vec<&Value> = rows.iter().skip(skip as usize).take(limit as usize).collect();
    let next = skip + page.len() as i64;
    let cursor = if next < rows.len() as i64 { next.to_string() } else { String::new() };
    Ok(c.ctx.envelope(&c.app, "get", "/users").with("data", json!(page)).with("cursor", json!(cursor)))
}

/// The group of a shield call and the member it is for (a user's own token; the app token is
/// refused: a shield is one user's).
async fn shield_target(s: &EmState, c: &Caller, p: &P) -> EmResult<(String, String)> {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_SET).await?;
    let user = c.user.as_ref().map(|u| u.id.clone()).ok_or_else(|| EmError::illegal("a group is shielded with the member's own token"))?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    if !s.engine.conversations().is_member(&c.app, &group, &user).await? {
        return Err(EmError::forbidden(format!("user {user} is not a member of group {}", group.id)));
    }
    Ok((user, group.id.to_string()))
}

async fn shielding(s: EmState, c: Caller, p: P, on: bool) -> Reply {
    let (user, group) = shield_target(&s, &c, &p).await?;
    let item = format!("chatgroup:{group}");
    let prev = s.engine.collections().get(&c.app, ns::PUSH_SETTINGS, &user, &item).await?;
    let mut data = setting_data(prev.as_ref().map(|e| &e.value), false);
    let shielded = data.get("shield").is_some();
    match (on, shielded) {
        (true, false) => {
            data["shield"] = data["type"].clone();
            data["type"] = json!("NONE");
        }
        (false, true) => {
            data["type"] = data["shield"].clone();
            if let Some(o) = data.as_object_mut() {
                o.remove("shield");
            }
        }
        _ => {}
    }
    s.engine.collections().put(&c.app, vec![Entry::new(ns::PUSH_SETTINGS, user.clone(), item, data)], PutRule::default()).await?;
    let action = if on { "post" } else { "delete" };
    Ok(c.ctx
        .envelope(&c.app, action, "/chatgroups/shield")
        .with("data", json!({"result": true, "user": user, "group": group, "shield": on})))
}

/// `POST /chatgroups/{group_id}/shield`.
async fn shield(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    shielding(s, c, p, true).await
}

/// `DELETE /chatgroups/{group_id}/shield`.
async fn unshield(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    shielding(s, c, p, false).await
}
