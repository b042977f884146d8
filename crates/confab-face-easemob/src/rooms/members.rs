//! Every member-list endpoint of groups and chat rooms (members, admins, blocks, allowlists,
//! mutes) from one table: each [`List`] says its path segment, which engine operation adds,
//! removes and lists, its path forms and its answer's field names; [`routes`] serves the table
//! for a [`Family`] with one set of generic handlers.

use axum::extract::State;
use confab_engine::conv::GroupCall;
use confab_engine::limits::{bucket, Bucket};
use confab_engine::model::{App, Conversation, Member, Role};
use confab_engine::{Actor, Engine, Quota, Quotas};
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use super::{conv_for, conv_of, existing_user, Family};
use crate::auth::Need;
use crate::auth::{Body, Caller, EmState, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, username};
use crate::Routes;

/// Most users one batch call may name.
pub const BATCH_MAX: usize = 60;

/// Which engine list an endpoint works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Membership (`add_members` / `remove_members`).
    Members,
    /// `Role::Admin` (`set_role`).
    Admins,
    /// The conversation's blocklist (`block_members` / `unblock_members`): blocked users leave
    /// and cannot come back.
    Blocks,
    /// The member allowlist (`allowlisted`): may speak while everyone is muted.
    Allow,
    /// Speech mutes with an expiry (`mute_members`).
    Mutes,
}

/// One member list as the vendor exposes it.
#[derive(Debug)]
pub struct List {
    pub op: Op,
    /// Path segment after the conversation id.
    pub seg: &'static str,
    /// Rate buckets: the group's and the chat room's.
    pub buckets: (Bucket, Bucket),
    /// `action` of one added / removed user's result row (None: the list's rows carry none).
    pub add_action: Option<&'static str>,
    pub remove_action: Option<&'static str>,
    /// `POST {seg}/{username}` adds one user.
    pub add_one_path: bool,
    /// `POST {seg}` with this body field names one user (admins: `newadmin`); otherwise the
    /// body is `{"usernames": [...]}`.
    pub add_body_one: Option<&'static str>,
    /// `DELETE {seg}/{u1},{u2}` answers an array even for one user.
    pub remove_always_array: bool,
    /// The name of a batch call's users in its `invalid_parameter` text.
    pub batch_word: &'static str,
}

pub const LISTS: &[List] = &[
    List {
        op: Op::Members,
        seg: "users",
        buckets: (bucket::EM_CHATGROUPS_USERS, bucket::EM_CHATROOMS_USERS),
        add_action: Some("add_member"),
        remove_action: Some("remove_member"),
        add_one_path: true,
        add_body_one: None,
        remove_always_array: false,
        batch_word: "usernames",
    },
    List {
        op: Op::Admins,
        seg: "admin",
        buckets: (bucket::EM_CHATGROUPS_ADMIN, bucket::EM_CHATROOMS_ADMIN),
        add_action: None,
        remove_action: None,
        add_one_path: false,
        add_body_one: Some("newadmin"),
        remove_always_array: false,
        batch_word: "admins",
    },
    List {
        op: Op::Blocks,
        seg: "blocks/users",
        buckets: (bucket::EM_CHATGROUPS_BLOCKS, bucket::EM_CHATROOMS_BLOCKS),
        add_action: Some("add_blocks"),
        remove_action: Some("remove_blocks"),
        add_one_path: true,
        add_body_one: None,
        remove_always_array: false,
        batch_word: "userNames",
    },
    List {
        op: Op::Allow,
        seg: "white/users",
        buckets: (bucket::EM_CHATGROUPS_WHITE, bucket::EM_CHATROOMS_WHITE),
        add_action: Some("add_user_whitelist"),
        remove_action: Some("remove_user_whitelist"),
        add_one_path: true,
        add_body_one: None,
        remove_always_array: true,
        batch_word: "usernames",
    },
    List {
        op: Op::Mutes,
        seg: "mute",
        buckets: (bucket::EM_CHATGROUPS_MUTE, bucket::EM_CHATROOMS_MUTE),
        add_action: None,
        remove_action: None,
        add_one_path: false,
        add_body_one: None,
        remove_always_array: true,
        batch_word: "userNames",
    },
];

impl List {
    /// What a user token's call on the list is, for the engine's role rules: reading members
    /// and admins is a member's (anyone's in a public group or a chat room), naming admins the
    /// owner's, the rest the owner's or an admin's. (A group's members are added and removed by
    /// the engine's own group rules, `invite_to_group` and `remove_from_group`.)
    fn call(&self, write: bool) -> GroupCall<'static> {
        match (self.op, write) {
            (Op::Members | Op::Admins, false) => GroupCall::Read,
            (Op::Admins, true) => GroupCall::Own,
            _ => GroupCall::Manage,
        }
    }
}

/// The table's routes for one family, each open to a user token within the engine's role rules
/// ([`List::call`]), and `GET /sdk/{family}/{id}/mute/{username}` (the SDK's
/// `isInGroupMutelist`, `isInChatRoomMutelist`).
pub fn routes(fam: Family) -> Routes {
    let mut r: Routes = Vec::new();
    let need = Need::Token;
    r.push(get(
        format!("/sdk{}/{{{}}}/mute/{{username}}", fam.prefix(), fam.id_param()),
        need,
        move |st: State<EmState>, c: Caller, p: P| is_muted(fam, st, c, p),
    ));
    for list in LISTS {
        let base = format!("{}/{{{}}}/{}", fam.prefix(), fam.id_param(), list.seg);
        let one = format!("{base}/{{username}}");
        if list.op == Op::Allow {
            r.push(get(one.clone(), need, move |st: State<EmState>, c: Caller, p: P| is_allowlisted(fam, st, c, p)));
        }
        r.push(get(base.clone(), need, move |st: State<EmState>, c: Caller, p: P, q: Params| list_h(fam, list, st, c, p, q)));
        r.push(post(base, need, move |st: State<EmState>, c: Caller, p: P, q: Params, b: Body| add_h(fam, list, st, c, p, q, b, false)));
        r.push(delete(one.clone(), need, move |st: State<EmState>, c: Caller, p: P| remove_h(fam, list, st, c, p)));
        if list.add_one_path {
            r.push(post(one, need, move |st: State<EmState>, c: Caller, p: P, q: Params, b: Body| add_h(fam, list, st, c, p, q, b, true)));
        }
    }
    r
}

/// The conversation a change to the list names, once the caller may change it: a group's
/// members by the engine's group rules (checked as each user is added or removed), every other
/// list by [`List::call`].
async fn writable(s: &EmState, c: &Caller, p: &P, fam: Family, list: &List) -> EmResult<Conversation> {
    if fam == Family::Group && list.op == Op::Members {
        return conv_of(&s.engine, &c.app, fam, p.get(fam.id_param())?).await;
    }
    conv_for(s, c, p, fam, list.call(true)).await
}

fn reason(e: &EmError) -> String {
    e.description.clone()
}

/// Every member row of a group, in joined order (chat rooms keep none).
async fn rows(engine: &Engine, app: &App, conv: &Conversation) -> EmResult<Vec<Member>> {
    Ok(engine.conversations().members_of(app, &[conv.id]).await?.remove(&conv.id).unwrap_or_default())
}

/// "Not a member": 403 in a group, 400 in a chat room (as Easemob answers each).
fn not_member(fam: Family, users: &[&str]) -> EmError {
    let e = EmError::forbidden(format!("users [{}] are not members of this group!", users.join(",")));
    match fam {
        Family::Group => e,
        Family::Room => EmError { status: axum::http::StatusCode::BAD_REQUEST, ..e },
    }
}

/// Whether a user is in: a group's member, or present in a chat room (where a stored row is
/// only standing: owner, admin, mute, allowlist).
async fn is_in(engine: &Engine, app: &App, fam: Family, conv: &Conversation, member: Option<&Member>, user: &str) -> EmResult<bool> {
    Ok(match fam {
        Family::Group => member.is_some(),
        Family::Room => engine.conversations().in_room(app, conv, user).await?,
    })
}

/// The id's name in a result row: chat rooms say `id` for membership and `chatroomid` elsewhere.
fn id_field(fam: Family, list: &List) -> &'static str {
    if fam == Family::Room && list.op == Op::Members {
        "id"
    } else {
        fam.id_field()
    }
}

fn owner_op() -> EmError {
    EmError::forbidden("forbidden operation on group owner!")
}

// ---------------------------------------------------------------------- list

async fn list_h(fam: Family, list: &'static List, State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, fam.bucket(list.buckets.0, list.buckets.1)).await?;
    let conv = conv_for(&s, &c, &p, fam, list.call(false)).await?;
    let _ = actor;
    let now = s.engine.now();
    let env = ctx.envelope(&app, "get", fam.prefix()).with("entities", json!([]));
    let mut next = None;
    let data: Vec<Value> = match list.op {
        Op::Members => {
            // the SDK's `getGroupMembers` pages by `limit` and `cursor`, `listGroupMember` by
            // `pagenum` and `pagesize`
            let cursor_form = q.get("limit").is_some() || q.get("cursor").is_some();
            let (size, skip) = if cursor_form {
                let limit = q.int("limit", 50, 1..=1000)?;
                let skip = match q.get("cursor").filter(|x| !x.is_empty() && *x != "null" && *x != "undefined") {
                    None => 0,
                    Some(x) => decode_cursor(x).filter(|n| *n >= 0).ok_or_else(|| EmError::invalid_parameter("cursor is not valid"))?,
                };
                (limit, skip)
            } else {
                let size = q.int("pagesize", 1000, 1..=1000)?;
                let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
                (size, size * num)
            };
            let with_time = q.get("joined_time") == Some("true");
            let all: Vec<Member> = if fam == Family::Room {
                // the owner first, then who is in the room
                let mut all: Vec<Member> = rows(&s.engine, &app, &conv).await?.into_iter().filter(|m| m.role == Role::Owner).collect();
                let owners: Vec<String> = all.iter().map(|m| m.user.clone()).collect();
                let present = s.engine.conversations().room_roster(&app, &conv).await?;
                all.extend(present.into_iter().filter(|u| !owners.contains(u)).map(|u| Member::new(conv.id, u, Role::Member, 0)));
                all
            } else {
                rows(&s.engine, &app, &conv).await?
            };
            let all: Vec<Member> = all.into_iter().filter(|m| m.role != Role::Subscriber).collect();
            if cursor_form && ((skip + size) as usize) < all.len() {
                next = Some(encode_cursor(skip + size));
            }
            all.into_iter()
                .skip(skip as usize)
                .take(size as usize)
                .map(|m| {
                    // the cursor form names admins as such (the SDK reads the role from the key)
                    let mut v = match m.role {
                        Role::Owner => json!({"owner": m.user}),
                        Role::Admin if cursor_form => json!({"admin": m.user}),
                        _ => json!({"member": m.user}),
                    };
                    if with_time {
                        v["joined_time"] = json!(m.joined_at);
                    }
                    v
                })
                .collect()
        }
        Op::Admins => rows(&s.engine, &app, &conv).await?.into_iter().filter(|m| m.role == Role::Admin).map(|m| json!(m.user)).collect(),
        Op::Allow => rows(&s.engine, &app, &conv).await?.into_iter().filter(|m| m.allowlisted).map(|m| json!(m.user)).collect(),
        Op::Mutes => rows(&s.engine, &app, &conv)
            .await?
            .into_iter()
            .filter_map(|m| m.muted_until.filter(|t| *t > now).map(|t| json!({"expire": expire(t), "user": m.user})))
            .collect(),
        Op::Blocks => s.engine.conversations().blocked_members(&app, &conv, None, 10_000).await?.into_iter().map(|u| json!(u)).collect(),
    };
    let env = env.with("count", json!(data.len())).with("data", json!(data));
    Ok(match next {
        Some(cursor) => env.with("cursor", json!(cursor)),
        None => env,
    })
}

/// `GET {family}/{id}/white/users/{username}` (the SDK's `isInGroupAllowlist`): `data:
/// {member, white}`; a user asks about themself, the owner or an admin about anyone.
async fn is_allowlisted(fam: Family, State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, fam.bucket(bucket::EM_CHATGROUPS_WHITE, bucket::EM_CHATROOMS_WHITE)).await?;
    let raw = p.get("username")?;
    let user = username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::AskAbout { user: &user }).await?;
    let white = s.engine.conversations().member(&c.app, &conv, &user).await.map(|m| m.allowlisted).unwrap_or(false);
    Ok(c.ctx.envelope(&c.app, "get", fam.prefix()).with("entities", json!([])).with("data", json!({"member": user, "white": white})))
}

/// `GET /sdk/{family}/{id}/mute/{username}` (the SDK's `isInGroupMutelist`,
/// `isInChatRoomMutelist`): `data` is whether the user is muted now (a mute that lapsed is
/// not). A user asks about themself, the owner or an admin about anyone.
async fn is_muted(fam: Family, State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, fam.bucket(bucket::EM_CHATGROUPS_MUTE, bucket::EM_CHATROOMS_MUTE)).await?;
    let raw = p.get("username")?;
    let user = username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::AskAbout { user: &user }).await?;
    let now = s.engine.now();
    let member = s.engine.conversations().member(&c.app, &conv, &user).await.ok();
    let muted = member.and_then(|m| m.muted_until).is_some_and(|t| t > now);
    Ok(c.ctx.envelope(&c.app, "get", fam.prefix()).with("entities", json!([])).with("data", json!(muted)))
}

/// A mute's expiry as answered: -1 for "until lifted".
fn expire(t: i64) -> i64 {
    if t == i64::MAX {
        -1
    } else {
        t
    }
}

// ---------------------------------------------------------------------- add

fn batch_users(list: &List, v: Option<&Value>) -> EmResult<Vec<String>> {
    let a = match v {
        Some(Value::Array(a)) => a,
        _ => return Err(EmError::invalid_parameter("usernames must be provided")),
    };
    if a.is_empty() {
        return Err(EmError::invalid_parameter("usernames must not be empty"));
    }
    if a.len() > BATCH_MAX {
        return Err(EmError::invalid_parameter(format!("{} size is more than max limit : {BATCH_MAX}", list.batch_word)));
    }
    a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| EmError::invalid_parameter("usernames must be strings"))).collect()
}

#[allow(clippy::too_many_arguments)]
async fn add_h(
    fam: Family,
    list: &'static List,
    State(s): State<EmState>,
    c: Caller,
    p: P,
    _q: Params,
    Body(b): Body,
    path_one: bool,
) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, fam.bucket(list.buckets.0, list.buckets.1)).await?;
    let conv = writable(&s, &c, &p, fam, list).await?;
    let gid = conv.id.to_string();
    let env = ctx.envelope(&app, "post", fam.prefix()).with("entities", json!([]));
    // one user: in the path, or the body's single field
    let one = if path_one {
        Some(p.get("username")?.to_string())
    } else if let Some(f) = list.add_body_one {
        Some(b.get(f).and_then(Value::as_str).ok_or_else(|| EmError::invalid_parameter(format!("{f} must be provided")))?.to_string())
    } else {
        None
    };
    let duration = if list.op == Op::Mutes {
        let d = match b.get("mute_duration") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(x)) => x.trim().parse().ok(),
            _ => None,
        };
        let d = d
            .filter(|d| *d > 0 || *d == -1)
            .ok_or_else(|| EmError::invalid_parameter("mute_duration must be a positive number of milliseconds or -1"))?;
        Some(d)
    } else {
        None
    };
    if let Some(u) = one {
        let u = existing_user(&s.engine, &app, &u).await?;
        let until = add_one(&s.engine, &app, fam, list, &conv, &u, duration, &actor).await?;
        let data = match list.op {
            Op::Admins => json!({"result": "success", "newadmin": u}),
            _ => json!({"result": true, id_field(fam, list): gid, "action": list.add_action, "user": u}),
        };
        let _ = until;
        return Ok(env.with("data", data));
    }
    let users = batch_users(list, b.get("usernames"))?;
    let mut results = Vec::new();
    for raw in &users {
        let r = match existing_user(&s.engine, &app, raw).await {
            Ok(u) => add_one(&s.engine, &app, fam, list, &conv, &u, duration, &actor).await.map(|until| (u, until)),
            Err(e) => Err(e),
        };
        results.push((raw.to_lowercase(), r));
    }
    let data = match list.op {
        Op::Members => {
            let added: Vec<&String> = results.iter().filter(|(_, r)| r.is_ok()).map(|(u, _)| u).collect();
            if added.is_empty() {
                // every user failed: the first reason is the call's
                return Err(results.into_iter().find_map(|(_, r)| r.err()).unwrap_or_else(|| EmError::invalid_parameter("no user added")));
            }
            json!({"newmembers": added, id_field(fam, list): gid, "action": "add_member"})
        }
        Op::Mutes => json!(results
            .iter()
            .map(|(u, r)| match r {
                Ok((_, until)) => json!({"result": true, "expire": expire(until.unwrap_or(i64::MAX)), "user": u}),
                Err(e) => json!({"result": false, "reason": reason(e), "user": u}),
            })
            .collect::<Vec<_>>()),
        _ => json!(results
            .iter()
            .map(|(u, r)| {
                let mut v = json!({"result": r.is_ok(), "action": list.add_action, "user": u, id_field(fam, list): gid});
                if let Err(e) = r {
                    v["reason"] = json!(reason(e));
                }
                v
            })
            .collect::<Vec<_>>()),
    };
    Ok(env.with("data", data))
}

/// Add one existing user to the list; for mutes, the expiry. A user (`actor`) adds to a
/// group's members within the engine's group rules (`invite_to_group`).
#[allow(clippy::too_many_arguments)]
async fn add_one(
    engine: &Engine,
    app: &App,
    fam: Family,
    list: &List,
    conv: &Conversation,
    user: &str,
    duration: Option<i64>,
    actor: &Actor,
) -> EmResult<Option<i64>> {
    let member = engine.conversations().member(app, conv, user).await.ok();
    let is_room = fam == Family::Room;
    match list.op {
        Op::Members => {
            if is_in(engine, app, fam, conv, member.as_ref(), user).await? {
                return Err(EmError::forbidden(format!("can not join this group, reason:user: {user} already in group: {}\n", conv.id)));
            }
            // a group's quota of groups per user: looked at before the other checks, and
            // counted again by the store as it inserts
            let quotas = if is_room { Quotas::Uncounted } else { Quotas::Counted };
            if !is_room {
                engine.quotas().check_quota(app, &Quota::GroupsPerUser(user.to_string()), 1).await?;
            }
            if actor.user().is_some() && !is_room {
                engine.conversations().invite_to_group(app, conv, vec![user.to_string()], actor).await?;
                return Ok(None);
            }
            engine.conversations().add_members_with(app, conv, vec![user.to_string()], &Actor::Admin, quotas).await?;
            Ok(None)
        }
        Op::Admins => {
            let m = member.ok_or_else(|| EmError::not_found(format!("user: {user} doesn't exist in group: {}", conv.id)))?;
            if m.role == Role::Owner {
                return Err(owner_op());
            }
            if m.role != Role::Admin {
                let admins = engine.conversations().member_roles(app, conv).await?.iter().filter(|m| m.role == Role::Admin).count() as i64;
                if admins >= app.limits.em_max_admins {
                    return Err(EmError::exceed_limit(format!("the number of admins exceeds the limit {}", app.limits.em_max_admins)));
                }
                engine.conversations().set_role(app, conv, user, Role::Admin, actor).await?;
            }
            Ok(None)
        }
        Op::Blocks => {
            match &member {
                None if !is_room => return Err(not_member(fam, &[user])),
                Some(m) if m.role == Role::Owner => return Err(owner_op()),
                _ => {}
            }
            let out = engine.conversations().block_members(app, conv, vec![user.to_string()], actor).await?;
            if let Some((_, e)) = out.refused.into_iter().next() {
                return Err(e.into());
            }
            Ok(None)
        }
        Op::Allow => {
            if member.is_none() {
                return Err(not_member(fam, &[user]));
            }
            engine.conversations().set_allowlisted(app, conv, vec![user.to_string()], true, actor).await?;
            Ok(None)
        }
        Op::Mutes => {
            match &member {
                None => return Err(not_member(fam, &[user])),
                Some(m) if m.role == Role::Owner => return Err(owner_op()),
                _ => {}
            }
            let until = match duration {
                Some(d) if d > 0 => Some(engine.now().saturating_add(d)),
                _ => None,
            };
            let out = engine.conversations().mute_members(app, conv, vec![user.to_string()], true, until, actor).await?;
            if let Some((_, e)) = out.refused.into_iter().next() {
                return Err(e.into());
            }
            Ok(Some(until.unwrap_or(i64::MAX)))
        }
    }
}

// ---------------------------------------------------------------------- remove

async fn remove_h(fam: Family, list: &'static List, State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, fam.bucket(list.buckets.0, list.buckets.1)).await?;
    let conv = writable(&s, &c, &p, fam, list).await?;
    let gid = conv.id.to_string();
    let env = ctx.envelope(&app, "delete", fam.prefix()).with("entities", json!([]));
    let raw: Vec<String> = p.get("username")?.split(',').map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty()).collect();
    if raw.is_empty() {
        return Err(EmError::invalid_parameter("usernames must be provided"));
    }
    if raw.len() > BATCH_MAX {
        return Err(EmError::invalid_parameter(format!("{} size is more than max limit : {BATCH_MAX}", list.batch_word)));
    }
    let single = raw.len() == 1 && !list.remove_always_array;
    let mut results = Vec::new();
    for u in &raw {
        results.push((u.clone(), remove_one(&s.engine, &app, fam, list, &conv, u, &actor).await));
    }
    if single {
        let (u, r) = results.remove(0);
        r?;
        let data = match list.op {
            Op::Admins => json!({"result": "success", "oldadmin": u}),
            _ => json!({"result": true, "action": list.remove_action, "user": u, id_field(fam, list): gid}),
        };
        return Ok(env.with("data", data));
    }
    let data: Vec<Value> = results
        .iter()
        .map(|(u, r)| {
            let mut v = match list.op {
                Op::Mutes => json!({"result": r.is_ok(), "user": u}),
                _ => json!({"result": r.is_ok(), "action": list.remove_action, "user": u, id_field(fam, list): gid}),
            };
            if let Err(e) = r {
                v["reason"] = json!(reason(e));
            }
            v
        })
        .collect();
    Ok(env.with("data", json!(data)))
}

/// Remove one user from the list. A user (`actor`) removes a group's members within the
/// engine's group rules (`remove_from_group`).
async fn remove_one(engine: &Engine, app: &App, fam: Family, list: &List, conv: &Conversation, raw: &str, actor: &Actor) -> EmResult<()> {
    let user = username(raw).map_err(|_| EmError::not_found(format!("username {raw} doesn't exist!")))?;
    let member = engine.conversations().member(app, conv, &user).await.ok();
    match list.op {
        Op::Members => {
            if !is_in(engine, app, fam, conv, member.as_ref(), &user).await? {
                return Err(not_member(fam, &[user.as_str()]));
            }
            if member.is_some_and(|m| m.role == Role::Owner) {
                return Err(owner_op());
            }
            if actor.user().is_some() && fam == Family::Group {
                let out = engine.conversations().remove_from_group(app, conv, vec![user], actor).await?;
                if let Some((_, e)) = out.refused.into_iter().next() {
                    return Err(e.into());
                }
                return Ok(());
            }
            engine.conversations().remove_members(app, conv, vec![user], actor).await?;
        }
        Op::Admins => {
            if member.map(|m| m.role) != Some(Role::Admin) {
                return Err(EmError::forbidden(format!("user:{user} is not admin of group:{}", conv.id)));
            }
            engine.conversations().set_role(app, conv, &user, Role::Member, actor).await?;
        }
        Op::Blocks => {
            engine.conversations().unblock_members(app, conv, vec![user], actor).await?;
        }
        Op::Allow => {
            if member.is_none() {
                return Err(not_member(fam, &[user.as_str()]));
            }
            engine.conversations().set_allowlisted(app, conv, vec![user], false, actor).await?;
        }
        Op::Mutes => {
            if member.is_none() {
                return Err(not_member(fam, &[user.as_str()]));
            }
            engine.conversations().mute_members(app, conv, vec![user], false, None, actor).await?;
        }
    }
    Ok(())
}
