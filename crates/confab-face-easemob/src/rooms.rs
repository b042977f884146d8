//! Groups and chat rooms (§3.6–§3.9): management, and the one generic mechanism behind every
//! member-list endpoint (`members.rs`).
//!
//! A group is an engine group conversation (`ConvKind::Normal`, not unique); its id is the
//! conversation id as a decimal string, as the other faces render it.

pub mod chatrooms;
pub mod files;
pub mod members;
pub mod requests;

use axum::extract::State;
use confab_engine::conv::GroupCall;
use confab_engine::limits::{bucket, Bucket};
use confab_engine::model::{App, ConvKind, ConvSettings, Conversation, Member, Role};
use confab_engine::query::{ConvQuery, Field, Filter, Op, Scalar};
use confab_engine::{Actor, Engine, Error, NewConversation, Quotas};
use confab_engine::{ConvUpdate, SettingsChange};
use confab_routes::{delete, get, post, put};
use serde_json::{json, Map, Value};

use crate::auth::Need;
use crate::auth::{Admin, Body, Caller, Ctx, EmState, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, username};
use crate::Routes;

/// Most ids one details call may name.
pub const DETAILS_MAX_IDS: usize = 100;
/// A group's member cap when the request names none (the owner included).
pub const GROUP_MAXUSERS_DEFAULT: i64 = 200;

/// Which of the two conversation families a path is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Group,
    Room,
}

impl Family {
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Group => "/chatgroups",
            Family::Room => "/chatrooms",
        }
    }
    pub fn id_param(self) -> &'static str {
        match self {
            Family::Group => "group_id",
            Family::Room => "chatroom_id",
        }
    }
    /// The id's name in answers (`groupid`, `chatroomid`).
    pub fn id_field(self) -> &'static str {
        match self {
            Family::Group => "groupid",
            Family::Room => "chatroomid",
        }
    }
    pub fn kind(self) -> ConvKind {
        match self {
            Family::Group => ConvKind::Normal,
            Family::Room => ConvKind::Chatroom,
        }
    }
    /// Rate bucket of one endpoint of the family: the group's or the chat room's.
    pub fn bucket(self, group: Bucket, room: Bucket) -> Bucket {
        match self {
            Family::Group => group,
            Family::Room => room,
        }
    }
    pub fn not_found(self, id: &str) -> EmError {
        match self {
            Family::Group => EmError::new(
                axum::http::StatusCode::NOT_FOUND,
                "service_resource_not_found",
                "com.easemob.group.exception.ServiceResourceNotFoundException",
                format!("do not find this group:{id}"),
            ),
            Family::Room => EmError::new(
                axum::http::StatusCode::NOT_FOUND,
                "service_resource_not_found",
                "com.easemob.group.exception.ServiceResourceNotFoundException",
                format!("do not find this chatroom:{id}"),
            ),
        }
    }
}

/// The conversation of the family a path (or one listed id) names.
pub async fn conv_of(engine: &Engine, app: &App, fam: Family, id: &str) -> EmResult<Conversation> {
    let n: i64 = id.trim().parse().map_err(|_| fam.not_found(id))?;
    let conv = engine.conversations().conversation(app, n, Some(fam.kind())).await.map_err(|_| fam.not_found(id))?;
    if fam == Family::Group && conv.unique {
        return Err(fam.not_found(id));
    }
    Ok(conv)
}

/// A user that must exist: 404 `resource_not_found` "username X doesn't exist!" otherwise.
pub async fn existing_user(engine: &Engine, app: &App, raw: &str) -> EmResult<String> {
    let missing = || EmError::not_found(format!("username {raw} doesn't exist!"));
    let name = username(raw).map_err(|_| missing())?;
    engine.users().get_user(app, &name).await.map_err(|_| missing())?;
    Ok(name)
}

pub fn routes() -> Routes {
    use Need::{App, AppOrUser, Token};
    let mut r: Routes = vec![
        post("/chatgroups", Token, create_group),
        get("/chatgroups", App, list_groups),
        get("/chatgroups/{group_id}", Token, group_details),
        put("/chatgroups/{group_id}", Token, update_group),
        get("/publicchatgroups", Token, public_groups),
        get("/chatgroups/user/{username}/joined_count", AppOrUser, joined_groups_count),
        delete("/chatgroups/{group_id}", Token, delete_group),
        delete("/chatgroups/{group_id}/quit", Token, quit_group),
        get("/chatgroups/user/{username}", AppOrUser, joined_groups_current),
        get("/users/{username}/joined_chatgroups", AppOrUser, joined_groups_legacy),
        post("/chatgroups/{group_id}/disable", App, disable_group),
        post("/chatgroups/{group_id}/enable", App, enable_group),
    ];
    r.extend(files::routes());
    r.extend(requests::routes());
    r.extend(chatrooms::routes());
    for fam in [Family::Group, Family::Room] {
        r.extend(family_routes(fam));
        r.extend(members::routes(fam));
    }
    r
}

/// The endpoints groups and chat rooms share: the announcement and mute-all (a user token within
/// the engine's role rules: reading is a member's, the rest the owner's or an admin's).
fn family_routes(fam: Family) -> Routes {
    let at = |seg: &str| format!("{}/{{{}}}/{seg}", fam.prefix(), fam.id_param());
    vec![
        get(at("announcement"), Need::Token, move |st: State<EmState>, c: Caller, p: P| get_announcement(fam, st, c, p)),
        post(at("announcement"), Need::Token, move |st: State<EmState>, c: Caller, p: P, b: Body| set_announcement(fam, st, c, p, b)),
        post(at("ban"), Need::Token, move |st: State<EmState>, c: Caller, p: P| set_ban(fam, st, c, p, true)),
        delete(at("ban"), Need::Token, move |st: State<EmState>, c: Caller, p: P| set_ban(fam, st, c, p, false)),
    ]
}

/// An engine refusal of a group or chat room call in Easemob's words: 403 `forbidden_op`, with
/// the rule's text (`NotAllowed`) or "not a member" (`NotMember`).
pub fn role_refusal(fam: Family, e: Error) -> EmError {
    match (fam, e) {
        (Family::Group, e @ (Error::NotMember | Error::ConversationFull { .. })) => group_rule(e),
        (Family::Room, Error::NotMember) => EmError::forbidden("user is not in this chatroom!"),
        (_, e) => e.into(),
    }
}

/// The conversation of the path, once the caller may make `call` on it (the engine's
/// `check_group_call`): a missing one is the family's 404, a refusal 403 `forbidden_op`.
pub async fn conv_for(s: &EmState, c: &Caller, p: &P, fam: Family, call: GroupCall<'_>) -> EmResult<Conversation> {
    let conv = conv_of(&s.engine, &c.app, fam, p.get(fam.id_param())?).await?;
    s.engine.conversations().check_group_call(&c.app, &conv, &c.actor(), call).await.map_err(|e| role_refusal(fam, e))?;
    Ok(conv)
}

// ---------------------------------------------------------------------- fields

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> EmResult<Option<&'a str>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EmError::invalid_parameter(format!("{k} must be a string"))),
    }
}

fn bool_of(o: &Map<String, Value>, k: &str) -> EmResult<Option<bool>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(EmError::invalid_parameter(format!("{k} must be a boolean"))),
    }
}

fn int_of(o: &Map<String, Value>, k: &str) -> EmResult<Option<i64>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| EmError::invalid_parameter(format!("{k} must be an integer"))),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| EmError::invalid_parameter(format!("{k} must be an integer"))),
        Some(_) => Err(EmError::invalid_parameter(format!("{k} must be an integer"))),
    }
}

fn check_len(v: &str, max: usize, what: &str) -> EmResult<()> {
    if v.chars().count() > max {
        return Err(EmError::invalid_parameter(format!("{what} length is too big")));
    }
    Ok(())
}

/// The member cap a request asks for, within the plan's cap.
fn maxusers(app: &App, v: i64) -> EmResult<i64> {
    if v < 1 {
        return Err(EmError::invalid_parameter("maxusers must be positive"));
    }
    let cap = app.limits.em_group_max_members;
    if cap > 0 && v > cap {
        return Err(EmError::exceed_limit(format!("maxusers {v} is greater than the app's limit {cap}")));
    }
    Ok(v)
}

// ---------------------------------------------------------------------- counting

/// Every group (non-unique group conversation), optionally only those `member` belongs to.
fn groups_query(member: Option<&str>) -> ConvQuery {
    let mut conds = vec![Filter::Cond(Field::Unique, Op::Eq(Scalar::Bool(false)))];
    if let Some(u) = member {
        conds.push(Filter::Cond(Field::Members, Op::Eq(Scalar::Str(u.to_string()))));
    }
    ConvQuery { kinds: Some(vec![ConvKind::Normal]), filter: Filter::And(conds), ..Default::default() }
}

/// An engine error; a group or chat room quota names the app key, as Easemob does.
pub fn over_quota(e: Error, ctx: &Ctx) -> EmError {
    match e {
        Error::OverQuota { quota, .. } => EmError::over_quota(&quota, Some((&ctx.org, &ctx.app_name))),
        e => e.into(),
    }
}

/// The owner and the request's `members` (existing users, each once), at most `max` in all. A
/// chat room's `members`, when given, must name at least one user.
pub async fn first_members(
    engine: &Engine,
    app: &App,
    owner: &str,
    o: &Map<String, Value>,
    max: i64,
    fam: Family,
) -> EmResult<Vec<String>> {
    let mut members = vec![owner.to_string()];
    match o.get("members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if !(a.is_empty() && fam == Family::Room) => {
            for v in a {
                let u = v.as_str().ok_or_else(|| EmError::invalid_parameter("members must be strings"))?;
                let u = existing_user(engine, app, u).await?;
                if !members.contains(&u) {
                    members.push(u);
                }
            }
        }
        Some(_) => return Err(EmError::invalid_parameter("members must be an array of users")),
    }
    if members.len() as i64 > max {
        return Err(EmError::exceed_limit("members size is greater than max user size !"));
    }
    Ok(members)
}

/// The answer of a list: `count` and `data`.
pub fn list_answer<T: serde::Serialize>(ctx: &crate::auth::Ctx, app: &App, path: &str, data: Vec<T>) -> crate::envelope::Answer {
    ctx.envelope(app, "get", path)
        .with("entities", json!([]))
        .with("properties", json!({}))
        .with("count", json!(data.len()))
        .with("data", json!(data))
}

// ---------------------------------------------------------------------- entities

pub fn owner_of(members: &[Member]) -> Option<&str> {
    members.iter().find(|m| m.role == Role::Owner).map(|m| m.user.as_str())
}

fn custom_of(conv: &Conversation) -> Value {
    conv.attrs.get("custom").cloned().unwrap_or(json!(""))
}

/// The details of a group (§3.6.3).
fn group_entity(conv: &Conversation, members: &[Member]) -> Value {
    let s = &conv.settings;
    let rows: Vec<&Member> = members.iter().filter(|m| m.role != Role::Subscriber).collect();
    let affiliations: Vec<Value> =
        rows.iter().map(|m| if m.role == Role::Owner { json!({"owner": m.user}) } else { json!({"member": m.user}) }).collect();
    json!({
        "id": conv.id.to_string(),
        "name": conv.name.clone().unwrap_or_default(),
        "avatar": s.avatar.clone().unwrap_or_default(),
        "description": s.description.clone().unwrap_or_default(),
        "membersonly": s.approval,
        "allowinvites": s.members_invite,
        "invite_need_confirm": conv.attrs.get("invite_need_confirm").and_then(Value::as_bool).unwrap_or(true),
        "maxusers": s.max_members.unwrap_or(GROUP_MAXUSERS_DEFAULT),
        "owner": owner_of(members).unwrap_or_default(),
        "created": conv.created_at,
        "custom": custom_of(conv),
        "mute": s.mute_all,
        "scale": "normal",
        "affiliations_count": rows.len(),
        "disabled": s.disabled,
        "affiliations": affiliations,
        "public": s.public,
    })
}

// ---------------------------------------------------------------------- create / list / get

/// `POST /chatgroups`: `owner` and `public` are required; `members` exclude the owner. A user
/// token (the SDK's `createGroup`) creates a group the user owns (`owner`, if given, must be
/// them); the SDK's `desc` and `approval` are `description` and `membersonly`.
pub async fn create_group(State(s): State<EmState>, c: Caller, b: Body) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_CREATE).await?;
    let o = b.obj()?;
    let l = &app.limits;
    let public = bool_of(o, "public")?.ok_or_else(|| EmError::invalid_parameter("group must contain public field!"))?;
    let owner_raw = match (str_of(o, "owner")?, &c.user) {
        (None, Some(u)) => u.id.clone(),
        (Some(raw), Some(u)) if username(raw).ok().as_deref() != Some(u.id.as_str()) => {
            return Err(EmError::forbidden("a user creates groups they own"));
        }
        (Some(raw), _) => raw.to_string(),
        (None, None) => return Err(EmError::invalid_parameter("owner must be provided")),
    };
    let owner = existing_user(&s.engine, &app, &owner_raw).await?;
    let name = str_of(o, "groupname")?.map(str::to_string);
    let description = str_of(o, "description")?.or(str_of(o, "desc")?).map(str::to_string);
    let avatar = str_of(o, "avatar")?.map(str::to_string);
    let custom = str_of(o, "custom")?.map(str::to_string);
    check_len(name.as_deref().unwrap_or(""), l.em_name_max_chars, "groupname")?;
    check_len(description.as_deref().unwrap_or(""), l.em_description_max_chars, "description")?;
    check_len(avatar.as_deref().unwrap_or(""), l.em_avatar_max_chars, "avatar")?;
    check_len(custom.as_deref().unwrap_or(""), l.em_custom_max_chars, "custom")?;
    let max = maxusers(
        &app,
        int_of(o, "maxusers")?.unwrap_or(GROUP_MAXUSERS_DEFAULT.min(if l.em_group_max_members > 0 {
            l.em_group_max_members
        } else {
            i64::MAX
        })),
    )?;
    let membersonly = bool_of(o, "membersonly")?.or(bool_of(o, "approval")?).unwrap_or(false);
    // public groups start with invitations by members off
    let allowinvites = bool_of(o, "allowinvites")?.unwrap_or(false) && !public;
    let invite_need_confirm = bool_of(o, "invite_need_confirm")?.unwrap_or(true);
    let members = first_members(&s.engine, &app, &owner, o, max, Family::Group).await?;
    let mut attrs = Map::new();
    attrs.insert("invite_need_confirm".into(), json!(invite_need_confirm));
    if let Some(c) = custom {
        attrs.insert("custom".into(), json!(c));
    }
    let settings = ConvSettings {
        description,
        avatar,
        max_members: Some(max),
        public,
        approval: membersonly,
        members_invite: allowinvites,
        ..Default::default()
    };
    // the app's groups, then each member's, counted by the store as it inserts
    let quotas = Quotas::Counted;
    let new = NewConversation {
        kind: Some(ConvKind::Normal),
        name,
        creator: Some(owner),
        members,
        attrs,
        settings,
        quotas,
        ..Default::default()
    };
    let (conv, _) = s.engine.conversations().create_conversation(&app, new).await.map_err(|e| over_quota(e, &ctx))?;
    Ok(ctx.envelope(&app, "post", "/chatgroups").with("entities", json!([])).with("data", json!({"groupid": conv.id.to_string()})))
}

/// `GET /chatgroups?limit&cursor`: newest first, `limit` 1–1000 (default 10).
pub async fn list_groups(State(s): State<EmState>, Admin { app, ctx }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_LIST).await?;
    let limit = q.int("limit", 10, 1..=1000)?;
    let skip = match q.get("cursor") {
        None => 0,
        Some(c) => decode_cursor(c).filter(|n| *n >= 0).ok_or_else(|| EmError::invalid_parameter("cursor is not valid"))?,
    };
    let mut query = groups_query(None);
    query.order = vec![(Field::Id, true)];
    query.skip = skip;
    query.limit = limit + 1;
    let (mut convs, _) = s.engine.conversations().query_conversations(&app, &query).await?;
    let more = convs.len() as i64 > limit;
    convs.truncate(limit as usize);
    let ids: Vec<i64> = convs.iter().map(|c| c.id).collect();
    let members = s.engine.conversations().members_of(&app, &ids).await?;
    let data: Vec<Value> = convs
        .iter()
        .map(|c| {
            let ms = members.get(&c.id).map(Vec::as_slice).unwrap_or_default();
            json!({
                "owner": owner_of(ms).unwrap_or_default(),
                "groupid": c.id.to_string(),
                "affiliations": ms.iter().filter(|m| m.role != Role::Subscriber).count(),
                "type": "group",
                "lastModified": c.updated_at.to_string(),
                "created": c.created_at,
                "groupname": c.name.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut a =
        ctx.envelope(&app, "get", "/chatgroups").with("entities", json!([])).with("count", json!(data.len())).with("data", json!(data));
    if more {
        a = a.with("cursor", json!(encode_cursor(skip + limit)));
    }
    Ok(a)
}

/// `GET /chatgroups/{group_ids}`: one id or up to 100, comma-separated. A user sees the groups
/// they are in and public ones (the engine's `check_may_see_group`).
pub async fn group_details(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_GET).await?;
    let ids: Vec<&str> = p.get("group_id")?.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
    if ids.is_empty() {
        return Err(Family::Group.not_found(""));
    }
    if ids.len() > DETAILS_MAX_IDS {
        return Err(EmError::invalid_parameter(format!("group ids size is more than max limit : {DETAILS_MAX_IDS}")));
    }
    let mut convs = Vec::new();
    for id in &ids {
        let conv = conv_of(&s.engine, &app, Family::Group, id).await?;
        s.engine.conversations().check_may_see_group(&app, &conv, &actor).await?;
        convs.push(conv);
    }
    let members = s.engine.conversations().members_of(&app, &convs.iter().map(|c| c.id).collect::<Vec<_>>()).await?;
    let data: Vec<Value> = convs.iter().map(|c| group_entity(c, members.get(&c.id).map(Vec::as_slice).unwrap_or_default())).collect();
    Ok(ctx
        .envelope(&app, "get", "/chatgroups")
        .with("entities", json!([]))
        .with("count", json!(data.len()))
        .with("properties", json!({}))
        .with("data", json!(data)))
}

/// Fields of `PUT /chatgroups/{id}`.
const FIELDS: &[&str] = &[
    "groupname",
    "avatar",
    "description",
    "maxusers",
    "membersonly",
    "allowinvites",
    "invite_need_confirm",
    "custom",
    "public",
    "newowner",
];

/// Fields of `PUT /chatgroups/{id}` a user token may change (the SDK's `modifyGroup`,
/// `changeGroupOwner`); the rest are the app server's.
const USER_GROUP_FIELDS: &[&str] = &["groupname", "avatar", "description", "custom", "newowner"];

/// `PUT /chatgroups/{group_id}`: the fields given, each answered `true`; `newowner` hands the
/// group over. A user token: the owner or an admin changes the name, description, avatar and
/// custom data, the owner alone hands the group over (the engine's `GroupCall` rules).
pub async fn update_group(State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    let (app, ctx, actor) = (c.app.clone(), c.ctx.clone(), c.actor());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_UPDATE).await?;
    let o = b.obj()?;
    let call = if o.contains_key("newowner") { GroupCall::Own } else { GroupCall::Manage };
    let conv = conv_for(&s, &c, &p, Family::Group, call).await?;
    if actor != Actor::Admin {
        let theirs: Vec<&str> = o.keys().map(String::as_str).filter(|k| FIELDS.contains(k) && !USER_GROUP_FIELDS.contains(k)).collect();
        if !theirs.is_empty() {
            return Err(EmError::forbidden(format!("[{}] are changed by the app server only", theirs.join(", "))));
        }
    }
    let l = &app.limits;
    let unknown: Vec<&str> = o.keys().map(String::as_str).filter(|k| !FIELDS.contains(k)).collect();
    if !unknown.is_empty() {
        return Err(EmError::invalid_parameter(format!("some of [{}] are not valid fields", unknown.join(", "))));
    }
    let mut data = Map::new();
    if let Some(raw) = str_of(o, "newowner")? {
        let new_owner = username(raw).map_err(|_| EmError::forbidden(format!("user: {raw} doesn't exist in group: {}", conv.id)))?;
        match s.engine.conversations().transfer_owner(&app, &conv, &new_owner, &actor).await {
            Ok(()) => {}
            Err(confab_engine::Error::NotMember) => {
                return Err(EmError::forbidden(format!("user: {raw} doesn't exist in group: {}", conv.id)));
            }
            Err(e) => return Err(e.into()),
        }
        data.insert("newowner".into(), json!(true));
    }
    let mut patch = ConvUpdate::default();
    if let Some(n) = str_of(o, "groupname")? {
        check_len(n, l.em_name_max_chars, "groupname")?;
        patch.name = Some(Some(n.to_string()));
        data.insert("groupname".into(), json!(true));
    }
    if let Some(v) = str_of(o, "description")? {
        check_len(v, l.em_description_max_chars, "description")?;
        patch.settings.description = Some(v.to_string());
        data.insert("description".into(), json!(true));
    }
    if let Some(v) = str_of(o, "avatar")? {
        check_len(v, l.em_avatar_max_chars, "avatar")?;
        patch.settings.avatar = Some(v.to_string());
        data.insert("avatar".into(), json!(true));
    }
    if let Some(v) = str_of(o, "custom")? {
        check_len(v, l.em_custom_max_chars, "custom")?;
        patch = patch.set_attr(&["custom"], json!(v));
        data.insert("custom".into(), json!(true));
    }
    if let Some(v) = int_of(o, "maxusers")? {
        let v = maxusers(&app, v)?;
        if v < s.engine.conversations().member_count(&app, &conv).await? {
            return Err(EmError::invalid_parameter("maxusers is less than the group's members"));
        }
        patch.settings.max_members = Some(v);
        data.insert("maxusers".into(), json!(true));
    }
    if let Some(v) = bool_of(o, "membersonly")? {
        patch.settings.approval = Some(v);
        data.insert("membersonly".into(), json!(true));
    }
    if let Some(v) = bool_of(o, "allowinvites")? {
        patch.settings.members_invite = Some(v);
        data.insert("allowinvites".into(), json!(true));
    }
    if let Some(v) = bool_of(o, "public")? {
        patch.settings.public = Some(v);
        data.insert("public".into(), json!(true));
    }
    if let Some(v) = bool_of(o, "invite_need_confirm")? {
        patch = patch.set_attr(&["invite_need_confirm"], json!(v));
        data.insert("invite_need_confirm".into(), json!(true));
    }
    if !patch.is_empty() {
        s.engine.conversations().update_conversation(&app, conv.id, Some(ConvKind::Normal), &patch, &actor).await.map_err(group_rule)?;
    }
    Ok(ctx.envelope(&app, "put", "/chatgroups").with("entities", json!([])).with("data", Value::Object(data)))
}

/// `DELETE /chatgroups/{group_id}`: the app's server, or the group's owner (the SDK's
/// `destroyGroup`); the members hear `DESTROY`.
pub async fn delete_group(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_DELETE).await?;
    let conv = conv_of(&s.engine, &app, Family::Group, p.get("group_id")?).await?;
    s.engine.conversations().delete_conversation(&app, conv.id, Some(ConvKind::Normal), &c.actor()).await.map_err(group_rule)?;
    Ok(ctx
        .envelope(&app, "delete", "/chatgroups")
        .with("entities", json!([]))
        .with("data", json!({"success": true, "groupid": conv.id.to_string()})))
}

// ---------------------------------------------------------------------- the SDK's group calls

/// A group rule refused (`NotAllowed`, `NotMember`): 403 `forbidden_op` with the rule's words;
/// a full group in the words the SDK maps to `GROUP_MEMBERS_FULL`.
fn group_rule(e: Error) -> EmError {
    match e {
        Error::NotMember => EmError::forbidden("user is not a member of this group!"),
        Error::ConversationFull { .. } => EmError::forbidden("group member list is full!"),
        e => e.into(),
    }
}

/// The user of a user token (these calls are the user's own).
fn the_user(c: &Caller) -> EmResult<String> {
    c.user.as_ref().map(|u| u.id.clone()).ok_or_else(|| EmError::forbidden("this call is a user's: use the user's token"))
}

/// `DELETE /chatgroups/{group_id}/quit` (the SDK's `leaveGroup`): the owner cannot quit.
async fn quit_group(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_USERS).await?;
    let user = the_user(&c)?;
    let conv = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    s.engine.conversations().leave_group(&c.app, &conv, &user).await.map_err(group_rule)?;
    Ok(c.ctx.envelope(&c.app, "delete", "/chatgroups").with("entities", json!([])).with("data", json!({"result": true})))
}

// ---------------------------------------------------------------------- public groups, counts

/// `GET /publicchatgroups?limit&cursor` (the SDK's `getPublicGroups`): the public groups, newest
/// first, `limit` 1–1000 (default 10), `cursor` while more remain. Rows carry `id` and `name`
/// (what the SDK maps) besides the `groupid` and `groupname` of the other group lists.
async fn public_groups(State(s): State<EmState>, c: Caller, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATGROUPS_LIST).await?;
    let limit = q.int("limit", 10, 1..=1000)?;
    let mut at = match q.get("cursor").filter(|x| !x.is_empty() && *x != "null" && *x != "undefined") {
        None => 0,
        Some(x) => decode_cursor(x).filter(|n| *n >= 0).ok_or_else(|| EmError::invalid_parameter("cursor is not valid"))?,
    };
    // the cursor counts every group, public or not: the store has no filter on settings
    const SCAN: i64 = 500;
    let (mut found, mut more) = (Vec::new(), false);
    'scan: loop {
        let mut query = groups_query(None);
        query.order = vec![(Field::Id, true)];
        query.skip = at;
        query.limit = SCAN;
        let (convs, _) = s.engine.conversations().query_conversations(&c.app, &query).await?;
        let n = convs.len() as i64;
        for g in convs {
            if g.settings.public {
                if found.len() as i64 == limit {
                    more = true;
                    break 'scan;
                }
                found.push(g);
            }
            at += 1;
        }
        if n < SCAN {
            break;
        }
    }
    let members = s.engine.conversations().members_of(&c.app, &found.iter().map(|g| g.id).collect::<Vec<_>>()).await?;
    let data: Vec<Value> = found
        .iter()
        .map(|g| {
            let ms = members.get(&g.id).map(Vec::as_slice).unwrap_or_default();
            let name = g.name.clone().unwrap_or_default();
            json!({
                "id": g.id.to_string(),
                "name": name,
                "groupid": g.id.to_string(),
                "groupname": name,
                "owner": owner_of(ms).unwrap_or_default(),
                "affiliations": ms.iter().filter(|m| m.role != Role::Subscriber).count(),
                "public": true,
                "created": g.created_at,
            })
        })
        .collect();
    let mut a = list_answer(&c.ctx, &c.app, "/publicchatgroups", data);
    if more {
        a = a.with("cursor", json!(encode_cursor(at)));
    }
    Ok(a)
}

/// `GET /chatgroups/user/{username}/joined_count` (the SDK's `getJoinedGroupsCount`): `data` is
/// the number of groups the user is in.
async fn joined_groups_count(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_JOINED_CHATGROUPS).await?;
    let u = crate::users::user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&u.id)?;
    let mut q = groups_query(Some(&u.id));
    q.limit = 1;
    q.count = true;
    let (_, total) = s.engine.conversations().query_conversations(&c.app, &q).await?;
    Ok(c.ctx.envelope(&c.app, "get", "/chatgroups").with("entities", json!([])).with("data", json!(total.unwrap_or(0))))
}

// ---------------------------------------------------------------------- joined groups

async fn joined(s: &EmState, c: &Caller, p: &P, pagesize: i64, pagenum: i64) -> EmResult<(String, Vec<Conversation>, i64)> {
    let u = crate::users::user_in_path(&s.engine, &c.app, p, "username").await?;
    c.may_act_for(&u.id)?;
    let mut q = groups_query(Some(&u.id));
    q.order = vec![(Field::Id, true)];
    q.skip = pagesize * pagenum;
    q.limit = pagesize;
    q.count = true;
    let (convs, total) = s.engine.conversations().query_conversations(&c.app, &q).await?;
    Ok((u.id, convs, total.unwrap_or(0)))
}

/// `GET /users/{username}/joined_chatgroups?pagesize&pagenum`: `data:[{groupid, groupname}]`.
/// `pagenum` counts from 1 (0 is read as 1).
pub async fn joined_groups_legacy(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_JOINED_CHATGROUPS).await?;
    let size = q.int("pagesize", 1000, 1..=1000)?;
    let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
    let (_, convs, _) = joined(&s, &c, &p, size, num).await?;
    let data: Vec<Value> =
        convs.iter().map(|g| json!({"groupid": g.id.to_string(), "groupname": g.name.clone().unwrap_or_default()})).collect();
    Ok(c.ctx.envelope(&c.app, "get", "/users").with("entities", json!([])).with("count", json!(data.len())).with("data", json!(data)))
}

/// `GET /chatgroups/user/{username}?pagesize&pagenum`: `pagesize` 1–20 (default 5), `pagenum`
/// from 0; `entities` hold the groups and `total` counts them all.
pub async fn joined_groups_current(State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_JOINED_CHATGROUPS).await?;
    let size = q.int("pagesize", 5, 1..=20)?;
    let num = q.int("pagenum", 0, 0..=i64::MAX / 21)?;
    let (_, convs, total) = joined(&s, &c, &p, size, num).await?;
    let members = s.engine.conversations().members_of(&c.app, &convs.iter().map(|g| g.id).collect::<Vec<_>>()).await?;
    let entities: Vec<Value> = convs
        .iter()
        .map(|g| {
            let ms = members.get(&g.id).map(Vec::as_slice).unwrap_or_default();
            json!({
                "name": g.name.clone().unwrap_or_default(),
                "avatar": g.settings.avatar.clone().unwrap_or_default(),
                "owner": owner_of(ms).unwrap_or_default(),
                "id": g.id.to_string(),
                "groupId": g.id.to_string(),
                "description": g.settings.description.clone().unwrap_or_default(),
                "disabled": g.settings.disabled,
                "public": g.settings.public,
                "allowinvites": g.settings.members_invite,
                "membersonly": g.settings.approval,
                "maxusers": g.settings.max_members.unwrap_or(GROUP_MAXUSERS_DEFAULT),
                "created": g.created_at,
            })
        })
        .collect();
    Ok(c.ctx.envelope(&c.app, "get", "/chatgroups").with("entities", json!(entities)).with("total", json!(total)))
}

// ---------------------------------------------------------------------- mute everyone

/// `POST|DELETE {family}/{id}/ban`: mute everyone but the owner, admins and allowlisted members
/// (the engine's send path decides), or lift it.
async fn set_ban(fam: Family, State(s): State<EmState>, c: Caller, p: P, on: bool) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, fam.bucket(bucket::EM_CHATGROUPS_BAN, bucket::EM_CHATROOMS_BAN)).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Manage).await?;
    let patch = ConvUpdate::settings(SettingsChange { mute_all: Some(on), ..Default::default() });
    s.engine
        .conversations()
        .update_conversation(&app, conv.id, Some(fam.kind()), &patch, &c.actor())
        .await
        .map_err(|e| role_refusal(fam, e))?;
    let action = if on { "post" } else { "delete" };
    Ok(ctx.envelope(&app, action, fam.prefix()).with("entities", json!([])).with("data", json!({"mute": on})))
}

// ---------------------------------------------------------------------- disable / enable

async fn set_disabled(s: &EmState, app: &App, p: &P, on: bool) -> EmResult<()> {
    let conv = conv_of(&s.engine, app, Family::Group, p.get("group_id")?).await?;
    let patch = ConvUpdate::settings(SettingsChange { disabled: Some(on), ..Default::default() });
    s.engine.conversations().update_conversation(app, conv.id, Some(ConvKind::Normal), &patch, &Actor::Admin).await?;
    Ok(())
}

/// `POST /chatgroups/{group_id}/disable`: the group refuses every message until enabled (the
/// engine's send path).
pub async fn disable_group(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_DISABLE).await?;
    set_disabled(&s, &app, &p, true).await?;
    Ok(ctx
        .envelope(&app, "post", "/chatgroups")
        .with("entities", json!([]))
        .with("properties", json!({}))
        .with("data", json!({"disabled": true})))
}

pub async fn enable_group(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_ENABLE).await?;
    set_disabled(&s, &app, &p, false).await?;
    Ok(ctx
        .envelope(&app, "post", "/chatgroups")
        .with("entities", json!([]))
        .with("properties", json!({}))
        .with("data", json!({"disabled": false})))
}

// ---------------------------------------------------------------------- announcement

async fn get_announcement(fam: Family, State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, fam.bucket(bucket::EM_CHATGROUPS_ANNOUNCEMENT_GET, bucket::EM_CHATROOMS_ANNOUNCEMENT_GET)).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Read).await?;
    Ok(ctx
        .envelope(&app, "get", fam.prefix())
        .with("entities", json!([]))
        .with("count", json!(0))
        .with("data", json!({"announcement": conv.settings.announcement.clone().unwrap_or_default()})))
}

/// `POST {family}/{id}/announcement {announcement}`: at most `em_announcement_max_chars`.
async fn set_announcement(fam: Family, State(s): State<EmState>, c: Caller, p: P, b: Body) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, fam.bucket(bucket::EM_CHATGROUPS_ANNOUNCEMENT_SET, bucket::EM_CHATROOMS_ANNOUNCEMENT_SET)).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Manage).await?;
    let text = match b.obj()?.get("announcement") {
        Some(Value::String(t)) => t.clone(),
        None | Some(Value::Null) => return Err(EmError::illegal("announcement is null")),
        Some(_) => return Err(EmError::illegal("announcement must be a string")),
    };
    if text.chars().count() > app.limits.em_announcement_max_chars {
        // groups answer `FORBIDDEN`, chat rooms `forbidden_op`, with the same text
        let e = EmError::forbidden("announce info length exceeds limit!");
        return Err(if fam == Family::Group { EmError { error: "FORBIDDEN".into(), ..e } } else { e });
    }
    let patch = ConvUpdate::settings(SettingsChange { announcement: Some(text), ..Default::default() });
    s.engine
        .conversations()
        .update_conversation(&app, conv.id, Some(fam.kind()), &patch, &c.actor())
        .await
        .map_err(|e| role_refusal(fam, e))?;
    Ok(ctx
        .envelope(&app, "post", fam.prefix())
        .with("entities", json!([]))
        .with("data", json!({"id": conv.id.to_string(), "result": true})))
}
