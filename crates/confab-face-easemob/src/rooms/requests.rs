//! Joining a group and inviting into it (spec §12.4): `joinGroup`, `inviteUsersToGroup`, and
//! the answers to what waits — `acceptGroupJoinRequest` / `rejectGroupJoinRequest`
//! (`apply_verify`) and `acceptGroupInvite` / `rejectGroupInvite` (`invite_verify`). The rules
//! and what is kept are the engine's (`conv/group_requests.rs`); whom they concern hears `MUC`
//! events (`APPLY`, `APPLY_ACCEPT`, `APPLY_DECLINE`, `INVITE`, `INVITE_ACCEPT`,
//! `INVITE_DECLINE`: `msync/muc.rs`). Answering what nobody asked (or what lapsed) is refused
//! 403 `forbidden_op`, as a contact request's answer is.

use axum::extract::State;
use confab_engine::conv::group_requests::Joining;
use confab_engine::limits::bucket;
use confab_engine::Error;
use confab_routes::post;
use serde_json::{json, Map, Value};

use super::{conv_of, existing_user, group_rule, members, over_quota, the_user, Family};
use crate::auth::{Body, Caller, EmState, Need, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::Routes;

pub fn routes() -> Routes {
    vec![
        post("/chatgroups/{group_id}/invite", Need::Token, invite_to_group),
        post("/chatgroups/{group_id}/apply", Need::Token, join_group),
        post("/chatgroups/{group_id}/apply_verify", Need::Token, answer_join_request),
        post("/chatgroups/{group_id}/invite_verify", Need::Token, answer_invitation),
    ]
}

/// A group rule refused, or a quota: the words the SDK maps.
fn refused(e: Error, c: &Caller) -> EmError {
    match e {
        Error::NotMember | Error::ConversationFull { .. } | Error::NotAllowed(_) => group_rule(e),
        e => over_quota(e, &c.ctx),
    }
}

/// An optional string field (`reason`, `message`): absent or null is none.
fn text_of<'a>(o: &'a Map<String, Value>, k: &str) -> EmResult<Option<&'a str>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
        Some(_) => Err(EmError::invalid_parameter(format!("{k} must be a string"))),
    }
}

/// A required boolean field (`verifyResult`); `"true"` / `"false"` are read too.
fn flag_of(o: &Map<String, Value>, k: &str) -> EmResult<bool> {
    match o.get(k) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(EmError::invalid_parameter(format!("{k} must be true or false"))),
    }
}

/// `POST /chatgroups/{group_id}/invite {usernames[, reason]}` (the SDK's `inviteUsersToGroup`):
/// within the engine's group rules (owner and admins; members when the group lets them). The
/// users join at once when the app's server invites or the group's `invite_need_confirm` is
/// false; otherwise each is asked (`INVITE`) and joins when they accept. `newmembers` lists the
/// users invited (or already members).
async fn invite_to_group(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_USERS).await?;
    let conv = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let raw = crate::social::names_of(b.get("usernames"), "usernames")?;
    if raw.is_empty() || raw.len() > members::BATCH_MAX {
        return Err(EmError::invalid_parameter(format!("usernames must name 1 to {} users", members::BATCH_MAX)));
    }
    let reason = match b.as_object() {
        Some(o) => text_of(o, "reason")?.map(str::to_string),
        None => None,
    };
    let mut users = Vec::with_capacity(raw.len());
    for u in &raw {
        users.push(existing_user(&s.engine, &c.app, u).await?);
    }
    let (out, _waiting) =
        s.engine.conversations().invite_users(&c.app, &conv, users, reason.as_deref(), &c.actor()).await.map_err(|e| refused(e, &c))?;
    Ok(c.ctx
        .envelope(&c.app, "post", "/chatgroups")
        .with("entities", json!([]))
        .with("data", json!({"newmembers": out.done, "groupid": conv.id.to_string(), "action": "invite"})))
}

/// `POST /chatgroups/{group_id}/apply {message}` (the SDK's `joinGroup`): the user joins a
/// public group that needs no approval; one that needs approval keeps the request and its owner
/// and admins hear `APPLY` with the message (`result` false: not joined yet). A private group
/// refuses.
async fn join_group(State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_USERS).await?;
    let user = the_user(&c)?;
    let conv = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let message = match b.0.as_object() {
        Some(o) => text_of(o, "message")?.map(str::to_string),
        None => None,
    };
    let joining = s.engine.conversations().apply_to_group(&c.app, &conv, &user, message.as_deref()).await.map_err(|e| match e {
        Error::ConversationFull { .. } => group_rule(e),
        e => over_quota(e, &c.ctx),
    })?;
    Ok(c.ctx
        .envelope(&c.app, "post", "/chatgroups")
        .with("entities", json!([]))
        .with("data", json!({"groupid": conv.id.to_string(), "action": "apply", "result": joining == Joining::Joined, "user": user})))
}

/// `POST /chatgroups/{group_id}/apply_verify {applicant, verifyResult, reason}` (the SDK's
/// `acceptGroupJoinRequest` / `rejectGroupJoinRequest`): the owner or an admin (or the app's
/// server) answers. Accepted, the applicant joins and hears `APPLY_ACCEPT`, the members
/// `PRESENCE`; rejected, the applicant hears `APPLY_DECLINE` with the reason.
async fn answer_join_request(State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_USERS).await?;
    let conv = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let o = b.obj()?;
    let Some(raw) = o.get("applicant").and_then(Value::as_str) else {
        return Err(EmError::invalid_parameter("applicant must name a user"));
    };
    let applicant = existing_user(&s.engine, &c.app, raw).await?;
    let accept = flag_of(o, "verifyResult")?;
    let reason = text_of(o, "reason")?;
    s.engine
        .conversations()
        .answer_join_request(&c.app, &conv, &applicant, accept, reason, &c.actor())
        .await
        .map_err(|e| refused(e, &c))?;
    Ok(c.ctx.envelope(&c.app, "post", "/chatgroups").with("entities", json!([])).with(
        "data",
        json!({"groupid": conv.id.to_string(), "action": "apply_verify", "result": true, "applicant": applicant, "verifyResult": accept}),
    ))
}

/// `POST /chatgroups/{group_id}/invite_verify {invitee, verifyResult}` (the SDK's
/// `acceptGroupInvite` / `rejectGroupInvite`): the invitee (or the app's server for them)
/// answers. Accepted, they join: the inviter hears `INVITE_ACCEPT`, the members `PRESENCE`;
/// rejected, the inviter hears `INVITE_DECLINE`.
async fn answer_invitation(State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_USERS).await?;
    let conv = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let o = b.obj()?;
    let Some(raw) = o.get("invitee").and_then(Value::as_str) else {
        return Err(EmError::invalid_parameter("invitee must name a user"));
    };
    let invitee = existing_user(&s.engine, &c.app, raw).await?;
    let accept = flag_of(o, "verifyResult")?;
    s.engine.conversations().answer_invitation(&c.app, &conv, &invitee, accept, &c.actor()).await.map_err(|e| refused(e, &c))?;
    Ok(c.ctx.envelope(&c.app, "post", "/chatgroups").with("entities", json!([])).with(
        "data",
        json!({"groupid": conv.id.to_string(), "action": "invite_verify", "result": true, "invitee": invitee, "verifyResult": accept}),
    ))
}
