//! A user's relations and settings: contacts and blocklists (§3.4), user metadata (§3.5), offline
//! push settings and templates (§3.10), push labels and tasks (§3.11), presence (§3.12).
//!
//! The rules (friend quota, blocklist size and its enforcement on one-to-one messages, metadata
//! size, subscription caps) are the engine's (`confab_engine::social`); this module translates.

mod member_attrs;
mod presence;
pub(crate) mod push;
mod silent;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use confab_engine::limits::bucket;
use confab_engine::model::App;
use confab_routes::{delete, get, post, put};
use serde_json::{json, Map, Value};

use crate::auth::Need;
use crate::auth::{uuid, Admin, Body, Caller, Ctx, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, entity, user_in_path, username};
use crate::Routes;

/// Most users one block call may name (the blocklist's own cap is the engine's).
pub const BLOCK_BATCH_MAX: usize = 500;
/// Most targets one metadata batch get may name.
pub const METADATA_BATCH_MAX: usize = 100;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, MetadataOwner, Token};
    let mut r: Routes = vec![
        get("/users/{username}/contacts/users", AppOrUser, contacts),
        get("/users/{username}/contacts", AppOrUser, contacts_page),
        post("/users/{username}/contacts/apply", AppOrUser, request_contact),
        post("/users/{username}/contacts/accept/users/{member}", AppOrUser, accept_contact),
        post("/users/{username}/contacts/decline/users/{member}", AppOrUser, decline_contact),
        post("/users/{username}/contacts/users/{member}", AppOrUser, add_contact),
        delete("/users/{username}/contacts/users/{member}", AppOrUser, remove_contact),
        put("/users/{username}/contacts/users/{member}", AppOrUser, set_remark),
        put("/user/{username}/contacts/users/{member}", AppOrUser, set_remark),
        get("/users/{username}/blocks/users", AppOrUser, blocks),
        post("/users/{username}/blocks/users", AppOrUser, block),
        delete("/users/{username}/blocks/users/{member}", AppOrUser, unblock),
        post("/sdk/user/{username}/blocks", AppOrUser, block),
        delete("/sdk/user/{username}/blocks", AppOrUser, unblock_many),
        post("/metadata/user/get", Token, metadata_batch),
        get("/metadata/user/capacity", App, metadata_capacity),
        put("/metadata/user/{username}", MetadataOwner, metadata_set),
        get("/metadata/user/{username}", MetadataOwner, metadata_get),
        delete("/metadata/user/{username}", MetadataOwner, metadata_delete),
    ];
    r.extend(presence::routes());
    r.extend(push::routes());
    r.extend(silent::routes());
    r.extend(member_attrs::routes());
    r
}

/// A list of user names from a JSON array of strings.
pub(crate) fn names_of(v: Option<&Value>, field: &str) -> EmResult<Vec<String>> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(|s| s.trim().to_lowercase()).ok_or_else(|| EmError::illegal(format!("{field} must be strings"))))
            .collect(),
        Some(Value::String(s)) => Ok(s.split(',').map(|x| x.trim().to_lowercase()).filter(|x| !x.is_empty()).collect()),
        _ => Err(EmError::illegal(format!("{field} must be provided"))),
    }
}

/// The Usergrid envelope of a contacts/blocks call: `path` and `uri` name the owner by UUID.
fn owner_envelope(ctx: &Ctx, app: &App, action: &str, owner_num: i64, coll: &str) -> Answer {
    let path = format!("/users/{}/{coll}", uuid(owner_num));
    let base = ctx.uri.split("/users/").next().unwrap_or(&ctx.uri).to_string();
    ctx.envelope(app, action, &path).with("uri", json!(format!("{base}{path}")))
}

fn quota_error(e: confab_engine::Error) -> EmError {
    match &e {
        confab_engine::Error::TooMany { what, .. } if what == "contacts" => EmError::exceed_limit("user contact number exceed limit"),
        confab_engine::Error::TooMany { what, max } if what == "blocked users" => {
            EmError::exceed_limit(format!("user block number exceed limit {max}"))
        }
        _ => e.into(),
    }
}

/// What a call on a user's contacts or blocklist makes first: counted against `rate`, the path's
/// owner, whom the caller must be allowed to act for.
async fn path_owner(s: &EmState, c: &Caller, p: &P, rate: confab_engine::limits::Bucket) -> EmResult<confab_engine::model::User> {
    s.engine.apps().rate_check(&c.app, rate).await?;
    let owner = user_in_path(&s.engine, &c.app, p, "username").await?;
    c.may_act_for(&owner.id)?;
    Ok(owner)
}

/// `path_owner`, and the member named with them in the path.
async fn owner_and_member(
    s: &EmState,
    c: &Caller,
    p: &P,
    rate: confab_engine::limits::Bucket,
) -> EmResult<(confab_engine::model::User, confab_engine::model::User)> {
    let owner = path_owner(s, c, p, rate).await?;
    let member = user_in_path(&s.engine, &c.app, p, "member").await?;
    Ok((owner, member))
}

/// The body's `usernames`: at least one, at most `BLOCK_BATCH_MAX`.
fn usernames(b: &Value) -> EmResult<Vec<String>> {
    let names = names_of(b.get("usernames"), "usernames")?;
    if names.is_empty() {
        return Err(EmError::illegal("usernames must be provided"));
    }
    if names.len() > BLOCK_BATCH_MAX {
        return Err(EmError::illegal(format!("usernames size exceeds limit {BLOCK_BATCH_MAX}")));
    }
    Ok(names)
}

// ---------------------------------------------------------------------- contacts

/// `POST /users/{owner}/contacts/users/{friend}`: the two become friends of each other.
async fn add_contact(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (owner, friend) = owner_and_member(&s, &c, &p, bucket::EM_CONTACTS_ADD).await?;
    s.engine.social().add_contact(&c.app, &owner.id, &friend.id).await.map_err(quota_error)?;
    Ok(owner_envelope(&c.ctx, &c.app, "post", owner.num, "contacts").with("entities", json!([entity(&friend)])))
}

/// `DELETE /users/{owner}/contacts/users/{friend}`.
async fn remove_contact(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (owner, friend) = owner_and_member(&s, &c, &p, bucket::EM_CONTACTS_REMOVE).await?;
    s.engine.social().remove_contact(&c.app, &owner.id, &friend.id).await?;
    Ok(owner_envelope(&c.ctx, &c.app, "delete", owner.num, "contacts").with("entities", json!([entity(&friend)])))
}

/// `GET /users/{owner}/contacts/users[?needReturnRemark=true]`: `data` is the friends' names;
/// with `needReturnRemark` (the SDK's `getAllContacts`), `entities` are `{username, remark}`.
async fn contacts(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_CONTACTS_LIST).await?;
    let friends = s.engine.social().contacts(&c.app, &owner.id).await?;
    let entities = if q.get("needReturnRemark") == Some("true") { remarks(&s, &c.app, &owner.id, &friends).await? } else { json!([]) };
    Ok(owner_envelope(&c.ctx, &c.app, "get", owner.num, "contacts")
        .with("entities", entities)
        .with("count", json!(friends.len()))
        .with("data", json!(friends)))
}

/// Contacts as `{username, remark}` (the remark the owner keeps on each, "" if none).
async fn remarks(s: &EmState, app: &App, owner: &str, friends: &[String]) -> EmResult<Value> {
    let kept = s.engine.client_state().contact_remarks(app, owner).await?;
    Ok(json!(friends.iter().map(|f| json!({"username": f, "remark": kept.get(f).cloned().unwrap_or_default()})).collect::<Vec<_>>()))
}

/// `PUT /users/{owner}/contacts/users/{friend} {remark}` (the SDK's `setContactRemark`): the
/// remark the owner keeps on a contact (at most 100 characters; "" clears it). Not a contact:
/// 403 `forbidden_op`.
async fn set_remark(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let (owner, friend) = owner_and_member(&s, &c, &p, bucket::EM_CONTACTS_ADD).await?;
    let remark = match b.get("remark") {
        Some(Value::String(r)) => r.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(EmError::illegal("remark must be a string")),
    };
    s.engine.client_state().set_contact_remark(&c.app, &owner.id, &friend.id, &remark).await.map_err(|e| match e {
        confab_engine::Error::NotAllowed(m) => EmError::forbidden(m),
        e => e.into(),
    })?;
    Ok(owner_envelope(&c.ctx, &c.app, "put", owner.num, "contacts")
        .with("entities", json!([]))
        .with("status", json!("ok"))
        .with("data", json!({"username": friend.id, "remark": remark})))
}

/// `GET /users/{owner}/contacts?limit&cursor` (the SDK's `getContactsWithCursor`): `data` is
/// `{contacts: [{username, remark}], cursor}`, `limit` 1–50 (default 20), in the order they
/// were added; `cursor` is "" on the last page.
async fn contacts_page(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_CONTACTS_LIST).await?;
    let limit = q.int("limit", 20, 1..=50)? as usize;
    let skip = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cur) => decode_cursor(cur).filter(|n| *n >= 0).ok_or_else(|| EmError::illegal("cursor is not valid"))? as usize,
    };
    let friends = s.engine.social().contacts(&c.app, &owner.id).await?;
    let page: Vec<String> = friends.iter().skip(skip).take(limit).cloned().collect();
    let cursor = if skip + page.len() < friends.len() { encode_cursor((skip + page.len()) as i64) } else { String::new() };
    Ok(owner_envelope(&c.ctx, &c.app, "get", owner.num, "contacts")
        .with("entities", json!([]))
        .with("data", json!({"contacts": remarks(&s, &c.app, &owner.id, &page).await?, "cursor": cursor})))
}

/// A contact request's answer to a user who asked nothing.
fn no_request(e: confab_engine::Error) -> EmError {
    match e {
        confab_engine::Error::NotAllowed(m) => EmError::forbidden(m),
        e => quota_error(e),
    }
}

/// `POST /users/{owner}/contacts/apply {usernames: [to], reason}` (the SDK's `addContact`): each
/// named user is asked (the engine keeps the request until they answer, and tells them).
async fn request_contact(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_CONTACTS_ADD).await?;
    let names = usernames(&b)?;
    let reason = match b.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.as_str()),
        Some(_) => return Err(EmError::illegal("reason must be a string")),
    };
    let mut asked = Vec::with_capacity(names.len());
    for n in &names {
        let to = username(n).map_err(|_| EmError::user_not_found())?;
        s.engine.social().request_contact(&c.app, &owner.id, &to, reason).await.map_err(quota_error)?;
        asked.push(to);
    }
    Ok(owner_envelope(&c.ctx, &c.app, "post", owner.num, "contacts").with("entities", json!([])).with("data", json!(asked)))
}

/// `POST /users/{owner}/contacts/accept/users/{from}`: `from`'s request is agreed to.
async fn accept_contact(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (owner, from) = owner_and_member(&s, &c, &p, bucket::EM_CONTACTS_ADD).await?;
    s.engine.social().accept_contact(&c.app, &owner.id, &from.id).await.map_err(no_request)?;
    Ok(owner_envelope(&c.ctx, &c.app, "post", owner.num, "contacts").with("entities", json!([entity(&from)])))
}

/// `POST /users/{owner}/contacts/decline/users/{from}`: `from`'s request is declined.
async fn decline_contact(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (owner, from) = owner_and_member(&s, &c, &p, bucket::EM_CONTACTS_REMOVE).await?;
    s.engine.social().decline_contact(&c.app, &owner.id, &from.id).await.map_err(no_request)?;
    Ok(owner_envelope(&c.ctx, &c.app, "post", owner.num, "contacts").with("entities", json!([entity(&from)])))
}

// ---------------------------------------------------------------------- blocklist

/// `GET /users/{owner}/blocks/users?pageSize&cursor`: newest first; `pageSize` 1–50; with no
/// `pageSize`, up to 500 entries. `cursor` continues (absent on the last page).
async fn blocks(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_BLOCKS).await?;
    let limit = if q.get("pageSize").is_some() { q.int("pageSize", 50, 1..=50)? } else { 500 };
    let after = match q.get("cursor") {
        None => None,
        Some(cur) => Some(decode_cursor(cur).ok_or_else(|| EmError::illegal("cursor is not valid"))?),
    };
    let mut page = s.engine.social().blocked_users(&c.app, &owner.id, after, limit + 1).await?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    let names: Vec<&str> = page.iter().map(|e| e.item.as_str()).collect();
    let mut a = owner_envelope(&c.ctx, &c.app, "get", owner.num, "blocks")
        .with("entities", json!([]))
        .with("count", json!(names.len()))
        .with("data", json!(names));
    if more {
        if let Some(last) = page.last() {
            a = a.with("cursor", json!(encode_cursor(last.seq)));
        }
    }
    Ok(a)
}

/// `POST /users/{owner}/blocks/users {usernames}` (also `/sdk/user/{owner}/blocks`, the SDK's
/// `addUsersToBlocklist`): every named user must exist.
async fn block(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_BLOCKS).await?;
    let names = usernames(&b)?;
    let mut ids = Vec::with_capacity(names.len());
    for n in &names {
        let id = username(n).map_err(|_| EmError::user_not_found())?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    s.engine.social().block_users(&c.app, &owner.id, &ids).await.map_err(quota_error)?;
    Ok(owner_envelope(&c.ctx, &c.app, "post", owner.num, "blocks").with("entities", json!([])).with("data", json!(ids)))
}

/// `DELETE /sdk/user/{owner}/blocks {usernames}` (the SDK's `removeUserFromBlocklist`).
async fn unblock_many(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let owner = path_owner(&s, &c, &p, bucket::EM_BLOCKS).await?;
    let names = names_of(b.get("usernames"), "usernames")?;
    if names.len() > BLOCK_BATCH_MAX {
        return Err(EmError::illegal(format!("usernames size exceeds limit {BLOCK_BATCH_MAX}")));
    }
    let mut done = Vec::with_capacity(names.len());
    for n in &names {
        let id = username(n).map_err(|_| EmError::user_not_found())?;
        s.engine.social().unblock_user(&c.app, &owner.id, &id).await?;
        done.push(id);
    }
    Ok(owner_envelope(&c.ctx, &c.app, "delete", owner.num, "blocks").with("entities", json!([])).with("data", json!(done)))
}

/// `DELETE /users/{owner}/blocks/users/{blocked}`.
async fn unblock(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (owner, blocked) = owner_and_member(&s, &c, &p, bucket::EM_BLOCKS).await?;
    s.engine.social().unblock_user(&c.app, &owner.id, &blocked.id).await?;
    Ok(owner_envelope(&c.ctx, &c.app, "delete", owner.num, "blocks").with("entities", json!([entity(&blocked)])))
}

// ---------------------------------------------------------------------- user metadata

/// Length caps of the conventional metadata keys (characters); `gender` is 0, 1 or 2.
const METADATA_KEYS: &[(&str, usize)] = &[("nickname", 64), ("avatarurl", 256), ("phone", 32), ("mail", 64), ("sign", 256), ("birth", 64)];

fn metadata_error(e: confab_engine::Error) -> EmError {
    match &e {
        confab_engine::Error::TooLarge { what, max } if what == "user metadata" => EmError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "ForbiddenException",
            format!("size of metadata for this single user exceeds the user defined limit, {max}Bytes"),
        ),
        confab_engine::Error::TooLarge { what, max } if what == "app metadata" => EmError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "ForbiddenException",
            format!("total size of user metadata for this app exceeds the user defined limit, {max}Bytes"),
        ),
        _ => e.into(),
    }
}

pub(crate) fn metadata_auth() -> EmError {
    EmError::new(StatusCode::UNAUTHORIZED, "metadata_error", "MetadataException", "auth error")
}

/// The fields of a set call: `application/x-www-form-urlencoded` (the documented form), or a
/// JSON object of strings.
fn metadata_fields(headers: &HeaderMap, body: &Bytes) -> EmResult<Vec<(String, String)>> {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let text = std::str::from_utf8(body).map_err(|_| EmError::illegal("the body is not UTF-8"))?;
    let trimmed = text.trim_start();
    let pairs: Vec<(String, String)> = if ct.contains("json") || trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| EmError::json_parse(format!("Unexpected character: {e}")))?;
        let o = v.as_object().ok_or_else(EmError::bad_body)?;
        o.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                _ => Err(EmError::illegal(format!("{k} must be a string"))),
            })
            .collect::<EmResult<_>>()?
    } else {
        form_pairs(text)
    };
    for (k, v) in &pairs {
        if k == "gender" && !["0", "1", "2"].contains(&v.as_str()) {
            return Err(EmError::illegal("gender must be 0, 1 or 2"));
        }
        if let Some((_, max)) = METADATA_KEYS.iter().find(|(n, _)| n == k) {
            if v.chars().count() > *max {
                return Err(EmError::illegal(format!("{k} is longer than {max}")));
            }
        }
    }
    if pairs.is_empty() {
        return Err(EmError::illegal("no metadata to set"));
    }
    Ok(pairs)
}

/// `a=1&b=2` decoded (`+` is a space).
pub(crate) fn form_pairs(text: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                },
                x => out.push(x),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn metadata_object(fields: Vec<(String, String)>) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<_, _>>())
}

/// `PUT /metadata/user/{username}`: `data` holds the pairs set.
async fn metadata_set(State(s): State<EmState>, c: Caller, p: P, headers: HeaderMap, body: Bytes) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_SET).await?;
    let u = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id).map_err(|_| metadata_auth())?;
    let fields = metadata_fields(&headers, &body)?;
    s.engine.social().set_metadata(&c.app, &u.id, &fields).await.map_err(metadata_error)?;
    Ok(Answer::bare(json!({"data": metadata_object(fields)})))
}

/// `GET /metadata/user/{username}`: every pair, `{}` when none.
async fn metadata_get(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_GET).await?;
    let name = username(p.get("username")?).map_err(|_| EmError::user_not_found())?;
    c.may_act_for(&name).map_err(|_| metadata_auth())?;
    Ok(Answer::bare(json!({"data": metadata_object(s.engine.social().metadata(&c.app, &name).await?)})))
}

/// `DELETE /metadata/user/{username}`: `true`, also when there was nothing.
async fn metadata_delete(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_DELETE).await?;
    let name = username(p.get("username")?).map_err(|_| EmError::user_not_found())?;
    c.may_act_for(&name).map_err(|_| metadata_auth())?;
    s.engine.social().delete_metadata(&c.app, &name).await?;
    Ok(Answer::bare(json!({"data": true})))
}

/// `POST /metadata/user/get {targets, properties}`: at most 100 targets; users without
/// metadata are omitted; `properties` (optional) selects keys.
async fn metadata_batch(State(s): State<EmState>, c: Caller, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_BATCH).await?;
    let targets = names_of(b.get("targets"), "targets")?;
    if targets.len() > METADATA_BATCH_MAX {
        return Err(EmError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "BadRequestException",
            format!("exceed allowed batch size {METADATA_BATCH_MAX}"),
        ));
    }
    let props: Option<Vec<String>> = match b.get("properties") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| x.as_str().map(str::to_string).ok_or_else(|| EmError::illegal("properties must be strings")))
                .collect::<EmResult<_>>()?,
        ),
        Some(_) => return Err(EmError::illegal("properties must be an array")),
    };
    let mut data = Map::new();
    for t in targets {
        let mut fields = s.engine.social().metadata(&c.app, &t).await?;
        if let Some(keep) = &props {
            fields.retain(|(k, _)| keep.contains(k));
        }
        if !fields.is_empty() {
            data.insert(t, metadata_object(fields));
        }
    }
    Ok(Answer::bare(json!({"data": data})))
}

/// `GET /metadata/user/capacity`: the bytes of every user's metadata in the app (app token).
async fn metadata_capacity(State(s): State<EmState>, Admin { app, .. }: Admin) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_METADATA_CAPACITY).await?;
    Ok(Answer::bare(json!({"data": s.engine.social().metadata_bytes(&app).await?})))
}
