//! `/rtm/conversations`, `/rtm/chatrooms`, `/rtm/service-conversations` and
//! `/rtm/all-conversations`: one set of handlers, told the kind by the route.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use confab_engine::model::{ConvKind, Conversation, Member};
use confab_engine::query::ConvQuery;
use confab_engine::{Actor, NewConversation};
use confab_engine::{AttrOp, ConvUpdate};
use rand::seq::SliceRandom;
use serde_json::{json, Map, Value};

use crate::error::{LcError, LcResult};
use crate::extract::{Body, Client, Fields, LcState, Master, Params};
use crate::query::{canonical, conv_query, invalid_key, valid_key};
use crate::render;

pub type Reply = LcResult<Json<Value>>;

/// Fields the server maintains; a request may not set them.
const SERVER_FIELDS: &[&str] = &["objectId", "createdAt", "updatedAt", "lm", "tr", "sys", "temp", "uniqueId", "mu", "m", "unique", "c"];

fn server_field(k: &str) -> LcError {
    let hint = match k {
        "m" => " Use the /members API.",
        "mu" => " Use the /mutes API.",
        _ => "",
    };
    LcError::param(format!("Field '{k}' cannot be set here.{hint}"))
}

/// A conversation the caller names by path, of the route's kind. A thread (an Easemob group
/// message's thread) is, to LeanCloud, a normal conversation.
pub async fn lookup(s: &LcState, c: &Client, id: &str, kind: Option<ConvKind>) -> LcResult<Conversation> {
    let conv = crate::extract::find_conversation(&s.engine, &c.app, id).await?;
    match kind {
        Some(ConvKind::Normal) if conv.kind == ConvKind::Thread => Ok(conv),
        Some(k) if k != conv.kind => Err(confab_engine::Error::WrongKind { expected: k }.into()),
        _ => Ok(conv),
    }
}

pub fn render_with(conv: &Conversation, members: Option<&Vec<Member>>) -> Value {
    let members = members.map(Vec::as_slice).unwrap_or_default();
    let m: Vec<String> = members.iter().map(|x| x.user.clone()).collect();
    let mu: Vec<String> = members.iter().filter(|x| x.notifications_off).map(|x| x.user.clone()).collect();
    render::conversation(conv, &m, &mu)
}

async fn query(s: &LcState, c: &Client, q: ConvQuery) -> Reply {
    let (convs, count) = s.engine.conversations().query_conversations(&c.app, &q).await?;
    let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
    let members = s.engine.conversations().members_of(&c.app, &ids).await?;
    let results: Vec<Value> = convs.iter().map(|cv| render_with(cv, members.get(&cv.id))).collect();
    let mut out = json!({ "results": results });
    if let Some(n) = count {
        out["count"] = json!(n);
    }
    Ok(Json(out))
}

pub async fn list(State(s): State<LcState>, Extension(kind): Extension<ConvKind>, Master(c): Master, p: Params) -> Reply {
    query(&s, &c, conv_query(&p, Some(vec![kind]))?).await
}

pub async fn list_all(State(s): State<LcState>, Master(c): Master, p: Params) -> Reply {
    query(&s, &c, conv_query(&p, None)?).await
}

pub async fn create(State(s): State<LcState>, Extension(kind): Extension<ConvKind>, Master(c): Master, Body(b): Body) -> Reply {
    let name = b.opt_str("name")?;
    let creator = b.opt_str("c")?;
    // `m` and `unique` mean something for normal conversations only; LeanCloud ignores them
    // for chat rooms and service conversations.
    let (members, unique) =
        if kind == ConvKind::Normal { (b.opt_strs("m", None)?.unwrap_or_default(), b.flag("unique")?) } else { (vec![], false) };
    if b.get("attr").is_some_and(|v| !v.is_object()) {
        return Err(LcError::wrong_type("attr", "an object"));
    }
    let attrs = custom_fields(b, &["name", "c", "m", "unique"])?;
    let new = NewConversation { kind: Some(kind), name, creator, members, unique, attrs, ..Default::default() };
    let (conv, _) = s.engine.conversations().create_conversation(&c.app, new).await?;
    Ok(Json(match kind {
        ConvKind::Normal => {
            let members = s.engine.conversations().members_of(&c.app, &[conv.id]).await?;
            render_with(&conv, members.get(&conv.id))
        }
        _ => json!({"objectId": crate::extract::cid(&conv), "createdAt": confab_engine::time::iso_ms(conv.created_at)}),
    }))
}

/// An `{"__op": …}` value, or a plain value to set.
fn attr_op(k: &str, v: Value) -> LcResult<AttrOp> {
    let op = match v.get("__op") {
        None => return Ok(AttrOp::Set(canonical(v)?)),
        Some(Value::String(op)) => op.clone(),
        Some(_) => return Err(LcError::wrong_type(&format!("{k}.__op"), "a string")),
    };
    let objects = || -> LcResult<Vec<Value>> {
        match v.get("objects") {
            Some(Value::Array(a)) => a.iter().cloned().map(canonical).collect(),
            _ => Err(LcError::wrong_type(&format!("{k}.objects"), "an array")),
        }
    };
    Ok(match op.as_str() {
        "Delete" => AttrOp::Delete,
        "Increment" | "Decrement" => {
            let n = match v.get("amount") {
                None | Some(Value::Null) => 1.into(),
                Some(Value::Number(n)) => n.clone(),
                Some(_) => return Err(LcError::wrong_type(&format!("{k}.amount"), "a number")),
            };
            if op == "Increment" {
                AttrOp::Increment(n)
            } else {
                let neg = match n.as_i64() {
                    Some(i) => serde_json::Number::from(-i),
                    None => serde_json::Number::from_f64(-n.as_f64().unwrap_or(0.0)).unwrap_or_else(|| 0.into()),
                };
                AttrOp::Increment(neg)
            }
        }
        "Add" => AttrOp::Add(objects()?),
        "AddUnique" => AttrOp::AddUnique(objects()?),
        "Remove" => AttrOp::Remove(objects()?),
        other => return Err(LcError::param(format!("Unsupported operation '{other}' on '{k}'."))),
    })
}

pub async fn update(
    State(s): State<LcState>,
    Extension(kind): Extension<ConvKind>,
    Master(c): Master,
    Path(id): Path<String>,
    Body(b): Body,
) -> Reply {
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    let patch = patch_from(b)?;
    let conv = s.engine.conversations().update_conversation(&c.app, conv.id, Some(kind), &patch, &Actor::Admin).await?;
    Ok(Json(updated(&conv)))
}

/// The change an update names: `name`, custom fields and dotted paths into them, set or
/// operated on with `__op`. Server-maintained fields are refused. (REST `PUT` bodies and the
/// realtime `conv update` share this.)
pub fn patch_from(body: Map<String, Value>) -> LcResult<ConvUpdate> {
    let mut patch = ConvUpdate::default();
    for (k, v) in body {
        if k == "name" {
            patch.name = Some(match v {
                Value::String(n) => Some(n),
                Value::Null => None,
                v if v.get("__op").and_then(Value::as_str) == Some("Delete") => None,
                _ => return Err(LcError::wrong_type("name", "a string")),
            });
            continue;
        }
        if SERVER_FIELDS.contains(&k.as_str()) {
            return Err(server_field(&k));
        }
        let path: Vec<String> = k.split('.').map(str::to_string).collect();
        if !path.iter().all(|p| valid_key(p)) {
            return Err(invalid_key(&k));
        }
        if path[0] == "attr" && path.len() == 1 && !matches!(v, Value::Object(_)) {
            return Err(LcError::wrong_type("attr", "an object"));
        }
        let op = attr_op(&k, v)?;
        patch.attrs.push((path, op));
    }
    Ok(patch)
}

/// Custom fields of a new conversation: every key that is not a built-in, checked.
pub fn custom_fields(body: Map<String, Value>, builtins: &[&str]) -> LcResult<Map<String, Value>> {
    let mut attrs = Map::new();
    for (k, v) in body {
        if builtins.contains(&k.as_str()) {
            continue;
        }
        if SERVER_FIELDS.contains(&k.as_str()) {
            return Err(server_field(&k));
        }
        if !valid_key(&k) {
            return Err(invalid_key(&k));
        }
        attrs.insert(k, canonical(v)?);
    }
    Ok(attrs)
}

pub fn updated(conv: &Conversation) -> Value {
    json!({"updatedAt": confab_engine::time::iso_ms(conv.updated_at), "objectId": crate::extract::cid(conv)})
}

pub async fn delete(State(s): State<LcState>, Extension(kind): Extension<ConvKind>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(kind)).await?;
    s.engine.conversations().delete_conversation(&c.app, conv.id, Some(kind), &Actor::Admin).await?;
    Ok(Json(json!({})))
}

// ---------------------------------------------------------------------- members and mutes

pub async fn members(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Normal)).await?;
    Ok(Json(json!({"result": s.engine.conversations().members(&c.app, &conv).await?})))
}

async fn change_members(s: LcState, c: Client, id: String, b: Body, add: bool) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Normal)).await?;
    let ids = b.req_strs("client_ids", None)?;
    if add {
        s.engine.conversations().add_members(&c.app, &conv, ids, &Actor::Admin).await?;
    } else {
        s.engine.conversations().remove_members(&c.app, &conv, ids, &Actor::Admin).await?;
    }
    Ok(Json(updated(&s.engine.conversations().conversation(&c.app, conv.id, None).await?)))
}

pub async fn add_members(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    change_members(s, c, id, b, true).await
}

pub async fn remove_members(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    change_members(s, c, id, b, false).await
}

pub async fn mutes(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Normal)).await?;
    Ok(Json(json!({"result": s.engine.conversations().notifications_off(&c.app, &conv).await?})))
}

async fn change_mutes(s: LcState, c: Client, id: String, b: Body, off: bool) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Normal)).await?;
    let ids = b.req_strs("client_ids", None)?;
    s.engine.conversations().set_notifications(&c.app, &conv, ids, off, &Actor::Admin).await?;
    Ok(Json(updated(&s.engine.conversations().conversation(&c.app, conv.id, None).await?)))
}

pub async fn add_mutes(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    change_mutes(s, c, id, b, true).await
}

pub async fn remove_mutes(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>, b: Body) -> Reply {
    change_mutes(s, c, id, b, false).await
}

/// How many of a chat room's present members `/members` returns, picked at random.
const ROOM_SAMPLE: usize = 50;

pub async fn room_members(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Chatroom)).await?;
    let mut all = s.engine.conversations().room_members(&c.app, &conv, usize::MAX).await?;
    all.shuffle(&mut rand::thread_rng());
    all.truncate(ROOM_SAMPLE);
    Ok(Json(json!({"result": all})))
}

pub async fn room_count(State(s): State<LcState>, Master(c): Master, Path(id): Path<String>) -> Reply {
    let conv = lookup(&s, &c, &id, Some(ConvKind::Chatroom)).await?;
    Ok(Json(json!({"result": s.engine.conversations().room_count(&c.app, &conv).await?})))
}
