//! `/group/*`: groups are the engine's group conversations. A MaxIM chat room (type 2) is a
//! stored group marked as a chat room (`maxim_type` 2): MaxIM users reach confab over REST only,
//! so a membership that lasts only while online (LeanCloud's chat rooms) would not serve them.

use std::collections::HashMap;

use axum::extract::State;
use confab_engine::model::{ConvKind, ConvSettings, Conversation, Role, User};
use confab_engine::query::MemberQuery;
use confab_engine::{Actor, Error, NewConversation, Outcome};
use serde_json::{json, Map, Value};

use crate::auth::{Body, Caller, Either, Fields, MxState, Params};
use crate::envelope::{code, Data, MxError, MxResult, Reply};
use crate::render;

/// Most users one invite or kick may name.
pub const LIST_MAX: usize = 500;
/// `/group/member_list` page: default and largest.
const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i64 = 1000;

/// The group an id names: a group or chat room conversation of the app.
pub async fn group(s: &MxState, c: &Caller, id: i64) -> MxResult<Conversation> {
    let conv =
        s.engine.conversations().conversation(&c.app, id, None).await.map_err(|_| MxError::new(code::NO_SUCH_GROUP, "no such group"))?;
    match conv.kind {
        ConvKind::Normal | ConvKind::Chatroom => Ok(conv),
        _ => Err(MxError::new(code::NO_SUCH_GROUP, "no such group")),
    }
}

/// Users by their numeric ids; 10000 if one does not exist.
pub async fn users_by_num(s: &MxState, c: &Caller, nums: &[i64]) -> MxResult<Vec<User>> {
    let mut out = Vec::with_capacity(nums.len());
    for n in nums {
        out.push(s.engine.users().user_by_num(&c.app, *n).await?);
    }
    Ok(out)
}

/// Numeric ids of users by string id.
async fn nums(s: &MxState, c: &Caller, ids: &[String]) -> MxResult<HashMap<String, i64>> {
    Ok(s.engine.users().by_ids(&c.app, ids).await?.into_iter().map(|(id, u)| (id, u.num)).collect())
}

async fn info(s: &MxState, c: &Caller, conv: &Conversation) -> MxResult<Value> {
    let q = MemberQuery { roles: Some(vec![Role::Owner]), ..Default::default() };
    let owner = s.engine.conversations().list_members(&c.app, conv, &q).await?.into_iter().next().map(|m| m.user);
    // a chat room has no stored members: its creator owns it
    let owner = owner.or_else(|| conv.creator.clone().filter(|_| conv.kind == ConvKind::Chatroom));
    let owner_num = match owner {
        Some(o) => nums(s, c, std::slice::from_ref(&o)).await?.get(&o).copied(),
        None => None,
    };
    let count = s.engine.conversations().member_count(&c.app, conv).await?;
    let capacity = conv.settings.max_members.unwrap_or(c.app.limits.conversation_max_members);
    Ok(render::group(conv, owner_num, count, capacity))
}

/// `POST /group/create {name, description, avatar, type, user_list, ext}`: the acting user owns it.
pub async fn create(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    let me = c.me()?.clone();
    let group_type = b.opt_i64("type")?.unwrap_or(0);
    if group_type != 0 && group_type != 2 {
        return Err(MxError::param(format!("type {group_type}: 0 (private group) or 2 (chat room)")));
    }
    let invited = users_by_num(&s, &c, &b.ids("user_list", LIST_MAX)?).await?;
    let mut members = vec![me.id.clone()];
    members.extend(invited.into_iter().map(|u| u.id));
    let mut attrs = Map::new();
    if group_type == 2 {
        attrs.insert(render::TYPE_ATTR.into(), json!(2));
    }
    if let Some(ext) = b.opt_str("ext")? {
        attrs.insert("ext".into(), Value::String(ext));
    }
    let new = NewConversation {
        kind: Some(ConvKind::Normal),
        name: b.opt_str("name")?,
        creator: Some(me.id.clone()),
        members,
        attrs,
        settings: ConvSettings { description: b.opt_str("description")?, avatar: b.opt_str("avatar")?, ..Default::default() },
        actor: c.actor(),
        ..Default::default()
    };
    let (conv, _) = s.engine.conversations().create_conversation(&c.app, new).await?;
    Ok(Data::of(info(&s, &c, &conv).await?))
}

/// `GET /group/info?group_id=`.
pub async fn get_info(State(s): State<MxState>, c: Caller, p: Params) -> Reply {
    let conv = group(&s, &c, p.req_i64("group_id")?).await?;
    Ok(Data::of(info(&s, &c, &conv).await?))
}

/// One result per user: `{user_id, result: "success"|"fail", reason}`.
fn results(out: &Outcome, num: &HashMap<String, i64>) -> Vec<Value> {
    let mut v: Vec<Value> = out.done.iter().map(|u| json!({"user_id": num.get(u), "result": "success", "reason": null})).collect();
    v.extend(out.refused.iter().map(|(u, e)| json!({"user_id": num.get(u), "result": "fail", "reason": e.to_string()})));
    v
}

/// `POST /group/invite {group_id, user_list, reason}`: invitees join at once (confab has no
/// pending invitations: every user's `group_confirm` is false).
pub async fn invite(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    let conv = group(&s, &c, b.req_i64("group_id")?).await?;
    let users = users_by_num(&s, &c, &b.ids("user_list", LIST_MAX)?).await?;
    if users.is_empty() {
        return Err(MxError::param("user_list is required"));
    }
    let num: HashMap<String, i64> = users.iter().map(|u| (u.id.clone(), u.num)).collect();
    let out = s.engine.conversations().add_members(&c.app, &conv, users.into_iter().map(|u| u.id).collect(), &c.actor()).await?;
    Ok(Data::of(Value::Array(results(&out, &num))))
}

/// `POST /group/apply {group_id, reason}`: join a group that takes members without approval.
pub async fn apply(State(s): State<MxState>, c: Caller, b: Body) -> Reply {
    let me = c.me()?.clone();
    let conv = group(&s, &c, b.req_i64("group_id")?).await?;
    if conv.settings.approval {
        let reason = "this group approves members; applications wait for an admin, which confab does not support yet";
        return Ok(Data::of(json!({"user_id": me.num, "result": "fail", "reason": reason})));
    }
    if s.engine.conversations().is_member(&c.app, &conv, &me.id).await? {
        return Err(MxError::new(code::ALREADY_MEMBER, "already a member"));
    }
    s.engine.conversations().add_members(&c.app, &conv, vec![me.id.clone()], &Actor::User(me.id.clone())).await?;
    Ok(Data::of(json!({"user_id": me.num, "result": "success", "reason": null})))
}

/// `GET /group/member_list?group_id&cursor&limit`: members by user id; `cursor` continues
/// after the last page (absent on the last page).
pub async fn member_list(State(s): State<MxState>, c: Caller, p: Params) -> Reply {
    let conv = group(&s, &c, p.req_i64("group_id")?).await?;
    if let Some(me) = &c.user {
        s.engine.conversations().member(&c.app, &conv, &me.id).await?;
    }
    let limit = p.opt_i64("limit")?.filter(|l| *l > 0).unwrap_or(PAGE_DEFAULT).min(PAGE_MAX);
    let q = MemberQuery { after: p.opt_str("cursor")?.filter(|c| !c.is_empty()), limit: Some(limit + 1), ..Default::default() };
    let mut rows = s.engine.conversations().list_members(&c.app, &conv, &q).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let ids: Vec<String> = rows.iter().map(|m| m.user.clone()).collect();
    let num = nums(&s, &c, &ids).await?;
    let data: Vec<Value> = rows.iter().map(|m| render::member(m, num.get(&m.user).copied().unwrap_or(0))).collect();
    let total = s.engine.conversations().member_count(&c.app, &conv).await?;
    let mut reply = Data::of(Value::Array(data)).with("total", json!(total)).with("version", json!(0));
    if more {
        reply = reply.with("cursor", json!(ids.last()));
    }
    Ok(reply)
}

/// `POST|DELETE /group/leave?group_id=`: the owner cannot leave (20004; MaxIM has the owner hand
/// the group over first).
pub async fn leave(State(s): State<MxState>, c: Caller, p: Params, b: Body) -> Reply {
    let me = c.me()?.clone();
    let conv = group(&s, &c, Either(&b, &p).req_i64("group_id")?).await?;
    if s.engine.conversations().member(&c.app, &conv, &me.id).await?.role == Role::Owner {
        return Err(MxError::new(code::OWNER_CANNOT_LEAVE, "the owner cannot leave the group"));
    }
    s.engine.conversations().remove_members(&c.app, &conv, vec![me.id.clone()], &Actor::User(me.id)).await?;
    Ok(Data::of(json!(true)))
}

/// `POST|DELETE /group/kick {group_id, user_list}`: the owner or an admin removes members.
pub async fn kick(State(s): State<MxState>, c: Caller, p: Params, b: Body) -> Reply {
    let e = Either(&b, &p);
    let conv = group(&s, &c, e.req_i64("group_id")?).await?;
    let users = users_by_num(&s, &c, &e.ids("user_list", LIST_MAX)?).await?;
    if users.is_empty() {
        return Err(MxError::param("user_list is required"));
    }
    // the owner cannot kick themself out either (as with leave)
    if let Some(me) = c.user.as_ref().filter(|me| users.iter().any(|u| u.id == me.id)) {
        if s.engine.conversations().member(&c.app, &conv, &me.id).await.is_ok_and(|m| m.role == Role::Owner) {
            return Err(MxError::new(code::OWNER_CANNOT_LEAVE, "the owner cannot leave the group"));
        }
    }
    let out = s.engine.conversations().remove_members(&c.app, &conv, users.into_iter().map(|u| u.id).collect(), &c.actor()).await?;
    if let Some((_, e)) = out.refused.into_iter().next() {
        return Err(e.into());
    }
    Ok(Data::of(json!(true)))
}

/// `POST|DELETE /group/destroy?group_id=`: the owner (or the admin token) dissolves the group.
pub async fn destroy(State(s): State<MxState>, c: Caller, p: Params, b: Body) -> Reply {
    let conv = group(&s, &c, Either(&b, &p).req_i64("group_id")?).await?;
    // a chat room has no stored members: its creator owns it
    let actor = match &c.user {
        Some(me) if conv.kind == ConvKind::Chatroom && conv.creator.as_deref() == Some(me.id.as_str()) => Actor::Admin,
        _ => c.actor(),
    };
    s.engine.conversations().delete_conversation(&c.app, conv.id, None, &actor).await.map_err(|e| match e {
        Error::NotAllowed(m) => MxError::new(code::NEEDS_OWNER, m),
        e => e.into(),
    })?;
    Ok(Data::of(json!(true)))
}
