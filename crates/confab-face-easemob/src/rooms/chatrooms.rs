//! Chat rooms (spec §3.8, §3.9): management, custom attributes and super admins. The member
//! lists, the announcement and mute-all are the groups' generic code (`members.rs`,
//! `rooms::family_routes`).
//!
//! A chat room is an engine chat room conversation: who is in it is presence (a member added
//! here who never connects leaves after the engine's grace), and its standing (owner, admins,
//! mutes, allowlist) is stored. Its id is the conversation id, the same as LeanCloud's.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::conv::GroupCall;
use confab_engine::limits::bucket;
use confab_engine::model::{App, ConvKind, ConvSettings, Conversation, Member};
use confab_engine::query::{ConvQuery, Field};
use confab_engine::ConvUpdate;
use confab_engine::{KeyOutcome, NewConversation, Quotas};
use confab_routes::{delete, get, post, put};
use serde_json::{json, Map, Value};

use super::{
    check_len, conv_for, conv_of, existing_user, first_members, int_of, list_answer, owner_of, role_refusal, str_of, Family,
    DETAILS_MAX_IDS,
};
use crate::auth::Need;
use crate::auth::{Admin, Body, Caller, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, user_in_path, username};
use crate::Routes;

/// A room's member cap when the request names none, and the most it may ask for.
pub const ROOM_MAXUSERS_DEFAULT: i64 = 1000;
pub const ROOM_MAXUSERS_MAX: i64 = 10_000;
/// Longest `custom` of a room.
const ROOM_CUSTOM_MAX_CHARS: usize = 1024;

const ROOM: Family = Family::Room;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, Token};
    vec![
        // a user token: rooms are public (anyone of the app reads them), their owner and admins
        // manage them, super admins create them (the engine's rules)
        post("/chatrooms", Token, create_room),
        get("/chatrooms", Token, list_rooms),
        get("/chatrooms/{chatroom_id}", Token, room_details),
        put("/chatrooms/{chatroom_id}", Token, update_room),
        delete("/chatrooms/{chatroom_id}", Token, delete_room),
        get("/users/{username}/joined_chatrooms", AppOrUser, joined_rooms),
        get("/chatrooms/super_admin", App, super_admins),
        post("/chatrooms/super_admin", App, add_super_admin),
        delete("/chatrooms/super_admin/{username}", App, remove_super_admin),
        post("/metadata/chatroom/{chatroom_id}", Token, get_attributes),
        put("/metadata/chatroom/{chatroom_id}/user/{username}", AppOrUser, set_attributes),
        delete("/metadata/chatroom/{chatroom_id}/user/{username}", AppOrUser, delete_attributes),
        put("/metadata/chatroom/{chatroom_id}/user/{username}/forced", App, force_set_attributes),
        delete("/metadata/chatroom/{chatroom_id}/user/{username}/forced", App, force_delete_attributes),
    ]
}

fn too_long(what: &str, max: impl std::fmt::Display) -> EmError {
    EmError::exceed_limit(format!("{what} cannot exceed to {max}"))
}

/// The member cap a request asks for: 1 to 10,000, and within the app's `em_chatroom_max_members`.
fn room_maxusers(app: &App, v: i64) -> EmResult<i64> {
    let cap = match app.limits.em_chatroom_max_members {
        n if n > 0 => n.min(ROOM_MAXUSERS_MAX),
        _ => ROOM_MAXUSERS_MAX,
    };
    if v < 1 {
        return Err(EmError::invalid_parameter("maxusers must be positive"));
    }
    if v > cap {
        return Err(too_long("maxUsers", cap));
    }
    Ok(v)
}

/// Everyone in a room as affiliation rows: the owner first, then who is in it.
async fn affiliations(s: &EmState, app: &App, conv: &Conversation, rows: &[Member]) -> EmResult<Vec<Value>> {
    let owner = owner_of(rows);
    let mut out: Vec<Value> = owner.iter().map(|o| json!({"owner": o})).collect();
    for u in s.engine.conversations().room_roster(app, conv).await? {
        if Some(u.as_str()) != owner {
            out.push(json!({"member": u}));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------- create / list / get

/// `POST /chatrooms`: `name`, `description` and `owner` are required; the owner and `members`
/// are in the room at once. A user token: a chat room super admin creates a room they own
/// (`owner`, if given, must be them).
async fn create_room(State(s): State<EmState>, c: Caller, b: Body) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_CREATE).await?;
    s.engine.conversations().check_may_create_room(&app, &c.actor()).await?;
    let o = b.obj()?;
    let l = &app.limits;
    let name = str_of(o, "name")?
        .or(str_of(o, "title")?)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| EmError::invalid_parameter("chatroom must contain title/name field!"))?
        .to_string();
    let description = str_of(o, "description")?.unwrap_or_default().to_string();
    let owner_raw = match (str_of(o, "owner")?, &c.user) {
        (Some(raw), _) => raw,
        (None, Some(u)) => u.id.as_str(),
        (None, None) => return Err(EmError::invalid_parameter("owner must be provided")),
    };
    let owner = existing_user(&s.engine, &app, owner_raw).await?;
    if c.user.as_ref().is_some_and(|u| u.id != owner) {
        return Err(EmError::forbidden("a user creates chatrooms they own: owner must be the user"));
    }
    if name.chars().count() > l.em_name_max_chars {
        return Err(too_long("title", l.em_name_max_chars));
    }
    if description.chars().count() > l.em_description_max_chars {
        return Err(too_long("desc", l.em_description_max_chars));
    }
    let custom = str_of(o, "custom")?.map(str::to_string);
    check_len(custom.as_deref().unwrap_or(""), ROOM_CUSTOM_MAX_CHARS, "custom")?;
    let max = room_maxusers(&app, int_of(o, "maxusers")?.unwrap_or(ROOM_MAXUSERS_DEFAULT))?;
    let members = first_members(&s.engine, &app, &owner, o, max, ROOM).await?;
    let mut attrs = Map::new();
    if let Some(c) = custom {
        attrs.insert("custom".into(), json!(c));
    }
    let settings = ConvSettings { description: Some(description), max_members: Some(max), ..Default::default() };
    let new = NewConversation {
        kind: Some(ConvKind::Chatroom),
        name: Some(name),
        creator: Some(owner),
        members,
        attrs,
        settings,
        // the app's chat rooms (`em_max_chatrooms`), counted by the store as it inserts
        quotas: Quotas::Counted,
        ..Default::default()
    };
    let (conv, _) = s.engine.conversations().create_conversation(&app, new).await.map_err(|e| super::over_quota(e, &ctx))?;
    Ok(ctx.envelope(&app, "post", "/chatrooms").with("entities", json!([])).with("data", json!({"id": conv.id.to_string()})))
}

/// `GET /chatrooms?limit&cursor`: newest first, `limit` 1–1000 (default 10), `cursor` while
/// more remain; or `?pagenum&pagesize` (the SDK's `getChatRooms`: `pagenum` from 1, `pagesize`
/// 1–1000). Any token of the app: rooms are public.
async fn list_rooms(State(s): State<EmState>, c: Caller, q: Params) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_LIST).await?;
    let (limit, skip) = if q.get("pagenum").is_some() || q.get("pagesize").is_some() {
        let size = q.int("pagesize", 10, 1..=1000)?;
        let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
        (size, size * num)
    } else {
        let limit = q.int("limit", 10, 1..=1000)?;
        let skip = match q.get("cursor") {
            None => 0,
            Some(c) => decode_cursor(c).filter(|n| *n >= 0).ok_or_else(|| EmError::invalid_parameter("cursor is not valid"))?,
        };
        (limit, skip)
    };
    let query =
        ConvQuery { kinds: Some(vec![ConvKind::Chatroom]), order: vec![(Field::Id, true)], skip, limit: limit + 1, ..Default::default() };
    let (mut convs, _) = s.engine.conversations().query_conversations(&app, &query).await?;
    let more = convs.len() as i64 > limit;
    convs.truncate(limit as usize);
    let owners = s.engine.conversations().members_of(&app, &convs.iter().map(|c| c.id).collect::<Vec<_>>()).await?;
    let mut data = Vec::with_capacity(convs.len());
    for c in &convs {
        let rows = owners.get(&c.id).map(Vec::as_slice).unwrap_or_default();
        data.push(json!({
            "id": c.id.to_string(),
            "name": c.name.clone().unwrap_or_default(),
            "owner": owner_of(rows).unwrap_or_default(),
            "affiliations_count": affiliations(&s, &app, c, rows).await?.len(),
            "disabled": c.settings.disabled,
        }));
    }
    let mut a = list_answer(&ctx, &app, "/chatrooms", data);
    if more {
        a = a.with("cursor", json!(encode_cursor(skip + limit)));
    }
    Ok(a)
}

/// `GET /chatrooms/{chatroom_ids}`: one id or up to 100, comma-separated; `data` is an array.
async fn room_details(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_GET).await?;
    let ids: Vec<&str> = p.get("chatroom_id")?.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
    if ids.is_empty() {
        return Err(ROOM.not_found(""));
    }
    if ids.len() > DETAILS_MAX_IDS {
        return Err(EmError::invalid_parameter(format!("chatroom ids size is more than max limit : {DETAILS_MAX_IDS}")));
    }
    let mut convs = Vec::new();
    for id in &ids {
        let conv = conv_of(&s.engine, &app, ROOM, id).await?;
        s.engine.conversations().check_group_call(&app, &conv, &c.actor(), GroupCall::Read).await.map_err(|e| role_refusal(ROOM, e))?;
        convs.push(conv);
    }
    let rows = s.engine.conversations().members_of(&app, &convs.iter().map(|c| c.id).collect::<Vec<_>>()).await?;
    let mut data = Vec::with_capacity(convs.len());
    for c in &convs {
        let rows = rows.get(&c.id).map(Vec::as_slice).unwrap_or_default();
        let affiliations = affiliations(&s, &app, c, rows).await?;
        data.push(json!({
            "id": c.id.to_string(),
            "name": c.name.clone().unwrap_or_default(),
            "description": c.settings.description.clone().unwrap_or_default(),
            "membersonly": false,
            "allowinvites": false,
            "maxusers": c.settings.max_members.unwrap_or(ROOM_MAXUSERS_DEFAULT),
            "owner": owner_of(rows).unwrap_or_default(),
            "created": c.created_at,
            "custom": c.attrs.get("custom").cloned().unwrap_or(json!("")),
            "mute": c.settings.mute_all,
            "disabled": c.settings.disabled,
            "affiliations_count": affiliations.len(),
            "affiliations": affiliations,
            "public": true,
        }));
    }
    Ok(list_answer(&ctx, &app, "/chatrooms", data))
}

/// `PUT /chatrooms/{chatroom_id}`: `name` (or `groupname`), `description`, `maxusers` (answered as `groupname`,
/// `description`, `maxusers`), or `newowner` to hand the room over. A user token: the owner or
/// an admin changes the room, the owner alone hands it over.
async fn update_room(State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_UPDATE).await?;
    let o = b.obj()?;
    let call = if o.contains_key("newowner") { GroupCall::Own } else { GroupCall::Manage };
    let conv = conv_for(&s, &c, &p, ROOM, call).await?;
    let l = &app.limits;
    // `groupname` is the SDK's (`modifyChatRoom`), `name` the REST API's
    const FIELDS: &[&str] = &["name", "groupname", "description", "maxusers", "newowner"];
    let unknown: Vec<&str> = o.keys().map(String::as_str).filter(|k| !FIELDS.contains(k)).collect();
    if !unknown.is_empty() {
        return Err(EmError::invalid_parameter(format!("some of [{}] are not valid fields", unknown.join(", "))));
    }
    let mut data = Map::new();
    let mut patch = ConvUpdate::default();
    if let Some(n) = str_of(o, "name")?.or(str_of(o, "groupname")?) {
        if n.chars().count() > l.em_name_max_chars {
            return Err(too_long("title", l.em_name_max_chars));
        }
        patch.name = Some(Some(n.to_string()));
        data.insert("groupname".into(), json!(true));
    }
    if let Some(d) = str_of(o, "description")? {
        if d.chars().count() > l.em_description_max_chars {
            return Err(too_long("desc", l.em_description_max_chars));
        }
        patch.settings.description = Some(d.to_string());
        data.insert("description".into(), json!(true));
    }
    if let Some(v) = int_of(o, "maxusers")? {
        let v = room_maxusers(&app, v)?;
        if (s.engine.conversations().room_roster(&app, &conv).await?.len() as i64) > v {
            return Err(EmError::forbidden("current user count is larger than the maxUsers that you want to update !"));
        }
        patch.settings.max_members = Some(v);
        data.insert("maxusers".into(), json!(true));
    }
    if let Some(raw) = str_of(o, "newowner")? {
        let not_in = || EmError::forbidden(format!("user: {raw} doesn't exist in chatroom: {}", conv.id));
        let new_owner = username(raw).map_err(|_| not_in())?;
        match s.engine.conversations().transfer_owner(&app, &conv, &new_owner, &actor).await {
            Ok(()) => {}
            Err(confab_engine::Error::NotMember) => return Err(not_in()),
            Err(e) => return Err(e.into()),
        }
        data.insert("newowner".into(), json!(true));
    }
    if !patch.is_empty() {
        s.engine
            .conversations()
            .update_conversation(&app, conv.id, Some(ConvKind::Chatroom), &patch, &actor)
            .await
            .map_err(|e| role_refusal(ROOM, e))?;
    }
    Ok(ctx.envelope(&app, "put", "/chatrooms").with("entities", json!([])).with("data", Value::Object(data)))
}

/// `DELETE /chatrooms/{chatroom_id}`: the app's server, or the room's owner (the SDK's
/// `destroyChatRoom`).
async fn delete_room(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_DELETE).await?;
    let raw = p.get("chatroom_id")?;
    let conv = conv_of(&s.engine, &app, ROOM, raw).await.map_err(|_| EmError::not_found(format!("grpID {raw} does not exist!")))?;
    s.engine.conversations().check_group_call(&app, &conv, &c.actor(), GroupCall::Own).await.map_err(|e| role_refusal(ROOM, e))?;
    s.engine
        .conversations()
        .delete_conversation(&app, conv.id, Some(ConvKind::Chatroom), &c.actor())
        .await
        .map_err(|e| role_refusal(ROOM, e))?;
    Ok(ctx
        .envelope(&app, "delete", "/chatrooms")
        .with("entities", json!([]))
        .with("data", json!({"success": true, "id": conv.id.to_string()})))
}

/// `GET /users/{username}/joined_chatrooms?pagenum&pagesize`: the rooms the user is in, by id;
/// `pagesize` 1–1000 (default 1000), `pagenum` from 1. A user token may ask for itself.
async fn joined_rooms(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_JOINED_CHATROOMS).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let size = q.int("pagesize", 1000, 1..=1000)?;
    let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
    let ids = s.engine.conversations().rooms_of(&c.app, &u.id).await?;
    let mut data = Vec::new();
    for id in ids.into_iter().skip((size * num) as usize).take(size as usize) {
        // a room deleted since is not listed
        if let Ok(r) = s.engine.conversations().conversation(&c.app, id, Some(ConvKind::Chatroom)).await {
            data.push(json!({"id": r.id.to_string(), "name": r.name.unwrap_or_default(), "disabled": r.settings.disabled.to_string()}));
        }
    }
    Ok(list_answer(&c.ctx, &c.app, "/users", data))
}

// ---------------------------------------------------------------------- super admins

/// `GET /chatrooms/super_admin?pagenum&pagesize`: `pagesize` 1–1000 (default 10), `pagenum` from 1.
async fn super_admins(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_SUPER_ADMIN).await?;
    let size = q.int("pagesize", 10, 1..=1000)?;
    let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
    let data = s.engine.rooms().room_super_admins(&app, size * num, size).await?;
    Ok(list_answer(&ctx, &app, "/chatrooms", data))
}

/// `POST /chatrooms/super_admin {superadmin}`.
async fn add_super_admin(State(s): State<EmState>, Admin { app, ctx }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_SUPER_ADMIN).await?;
    let raw = b.get("superadmin").and_then(Value::as_str).ok_or_else(|| EmError::invalid_parameter("superadmin must be provided"))?;
    let user = existing_user(&s.engine, &app, raw).await?;
    s.engine.rooms().add_room_super_admin(&app, &user).await?;
    Ok(ctx.envelope(&app, "post", "/chatrooms").with("entities", json!([])).with("data", json!({"result": "success", "resource": ""})))
}

/// `DELETE /chatrooms/super_admin/{superAdmin}`: answered `newSuperAdmin`, as Easemob names it.
async fn remove_super_admin(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATROOMS_SUPER_ADMIN).await?;
    let raw = p.get("username")?;
    let user = username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))?;
    if !s.engine.rooms().remove_room_super_admin(&app, &user).await? {
        return Err(EmError::not_found(format!("user {user} is not a chatroom super admin")));
    }
    Ok(ctx
        .envelope(&app, "delete", "/chatrooms")
        .with("entities", json!([]))
        .with("properties", json!({}))
        .with("data", json!({"newSuperAdmin": user, "resource": ""})))
}

// ---------------------------------------------------------------------- custom attributes

/// The short envelope of the attribute endpoints: `{uri, timestamp, action, data}`.
fn attr_answer(c: &Caller, action: &str, data: Value) -> Answer {
    let mut a = Answer::bare(
        json!({"uri": c.ctx.uri.split("/metadata/").next().map(|b| format!("{b}/metadata/chatroom")), "action": action, "data": data}),
    );
    if action == "delete" {
        a = a.with("status", json!("ok"));
    }
    a
}

fn outcome(o: KeyOutcome) -> Value {
    let errors: Map<String, Value> = o.failed.into_iter().map(|(k, r)| (k, json!(r))).collect();
    json!({"successKeys": o.done, "errorKeys": errors})
}

fn keys_of(b: &Value) -> EmResult<Option<Vec<String>>> {
    match b.get("keys") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| k.as_str().map(str::to_string).ok_or_else(|| EmError::invalid_parameter("keys must be strings")))
            .collect::<EmResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(EmError::invalid_parameter("keys must be an array")),
    }
}

/// An engine refusal of an attribute call in Easemob's words: a batch too big is 400, a user not
/// in the room 401 `MetadataException`.
fn attr_error(e: confab_engine::Error) -> EmError {
    match e {
        confab_engine::Error::NotMember => {
            EmError::new(StatusCode::UNAUTHORIZED, "unauthorized", "MetadataException", "user is not in chatroom")
        }
        confab_engine::Error::Invalid(m) => EmError::invalid_parameter(m),
        e => e.into(),
    }
}

/// `POST /metadata/chatroom/{chatroom_id} {keys?}`: the named attributes, or every one (a user
/// token: of a room its user is in).
async fn get_attributes(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_CHATROOM_GET).await?;
    let conv = conv_of(&s.engine, &c.app, ROOM, p.get("chatroom_id")?).await?;
    // a user token reads the attributes of a room its user is in
    if let Some(u) = &c.user {
        if !s.engine.conversations().in_room(&c.app, &conv, &u.id).await? {
            return Err(attr_error(confab_engine::Error::NotMember));
        }
    }
    let keys = keys_of(&b)?.filter(|k| !k.is_empty());
    let attrs = s.engine.rooms().room_attributes(&c.app, &conv, keys).await?;
    Ok(attr_answer(&c, "post", json!(attrs)))
}

/// The acting member of an attribute call: a user token acts only as itself; force takes the
/// app token.
async fn attr_call(s: &EmState, c: &Caller, p: &P, forced: bool) -> EmResult<(Conversation, String)> {
    if forced && !c.is_admin() {
        return Err(EmError::admin_required());
    }
    let conv = conv_of(&s.engine, &c.app, ROOM, p.get("chatroom_id")?).await?;
    let raw = p.get("username")?;
    let user = username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))?;
    c.may_act_for(&user)?;
    Ok((conv, user))
}

async fn set_with(s: EmState, c: Caller, p: P, b: Value, forced: bool) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_CHATROOM_SET).await?;
    let (conv, user) = attr_call(&s, &c, &p, forced).await?;
    let pairs: Vec<(String, String)> = match b.get("metaData") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok((k.clone(), v.clone())),
                _ => Err(EmError::invalid_parameter(format!("the value of {k} must be a string"))),
            })
            .collect::<EmResult<_>>()?,
        _ => return Err(EmError::invalid_parameter("metaData must be an object")),
    };
    let auto_delete = match b.get("autoDelete") {
        None | Some(Value::Null) => true,
        Some(Value::String(x)) if x == "DELETE" => true,
        Some(Value::String(x)) if x == "NO_DELETE" => false,
        Some(_) => return Err(EmError::invalid_parameter("autoDelete is DELETE or NO_DELETE")),
    };
    let out = s.engine.rooms().set_room_attributes(&c.app, &conv, &user, pairs, auto_delete, forced).await.map_err(attr_error)?;
    Ok(attr_answer(&c, "put", outcome(out)))
}

async fn delete_with(s: EmState, c: Caller, p: P, b: Value, forced: bool) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_CHATROOM_DELETE).await?;
    let (conv, user) = attr_call(&s, &c, &p, forced).await?;
    let keys = keys_of(&b)?.ok_or_else(|| EmError::invalid_parameter("keys must be provided"))?;
    let out = s.engine.rooms().delete_room_attributes(&c.app, &conv, &user, keys, forced).await.map_err(attr_error)?;
    Ok(attr_answer(&c, "delete", outcome(out)))
}

/// `PUT /metadata/chatroom/{id}/user/{username} {metaData, autoDelete}`: each key's outcome.
async fn set_attributes(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    set_with(s, c, p, b, false).await
}

async fn force_set_attributes(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    set_with(s, c, p, b, true).await
}

/// `DELETE /metadata/chatroom/{id}/user/{username} {keys}`: only the user's own keys.
async fn delete_attributes(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    delete_with(s, c, p, b, false).await
}

async fn force_delete_attributes(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    delete_with(s, c, p, b, true).await
}
