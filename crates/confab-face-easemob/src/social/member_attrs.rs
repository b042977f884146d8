//! Group member attributes (the SDK's `setGroupMemberAttributes`, `getGroupMemberAttributes`,
//! `getGroupMembersAttributes`; specs/easemob-msync.md §12.4, easemob-rest.md §3.7): the rules
//! and limits are the engine's (`confab_engine::client_state`: a member sets their own, the
//! group's owner or an admin anyone's; keys ≤16 bytes, values ≤512, 4 KB per member, an empty
//! value deletes; members read). Kept in the keyed collection `group_member_attributes`.
//!
//! * `PUT /sdk/metadata/chatgroup/{group_id}/user/{username} {metaData}` (user token) and `PUT
//!   /metadata/chatgroup/{group_id}/user/{username}` (app token): `data` the member's attributes;
//! * `POST /sdk/metadata/chatgroup/{group_id}/get {targets, properties}` (user token) and `POST
//!   /metadata/chatgroup/{group_id}/get` (app token): `data: {member: {key: value}}`;
//! * `GET /metadata/chatgroup/{group_id}/user/{username}` (app token): `data` one member's.
//!
//! The envelope is the member-attribute family's: `{timestamp, data, duration}`. Errors:
//! 400 `metadata_error` for sizes, 403 `forbidden_op` for rights.

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::limits::bucket;
use confab_engine::Error;
use confab_routes::{get, post, put};
use serde_json::{json, Value};

use crate::auth::{Body, Caller, EmState, Need, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::rooms::{conv_of, existing_user, Family};
use crate::users::username;
use crate::Routes;

pub fn routes() -> Routes {
    use Need::{App, Token};
    vec![
        put("/sdk/metadata/chatgroup/{group_id}/user/{username}", Token, set),
        post("/sdk/metadata/chatgroup/{group_id}/get", Token, read),
        put("/metadata/chatgroup/{group_id}/user/{username}", App, set),
        get("/metadata/chatgroup/{group_id}/user/{username}", App, read_one),
        post("/metadata/chatgroup/{group_id}/get", App, read),
    ]
}

fn metadata_error(description: impl Into<String>) -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "metadata_error", "MetadataException", description)
}

fn rule_error(e: Error) -> EmError {
    match e {
        Error::Invalid(m) => metadata_error(m),
        Error::NotMember => EmError::forbidden("user is not a member of the group"),
        Error::NotAllowed(m) => EmError::forbidden(m),
        e => e.into(),
    }
}

fn data(v: Value) -> Answer {
    Answer::bare(json!({"data": v}))
}

/// `PUT …/chatgroup/{group_id}/user/{username} {metaData}`.
async fn set(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_SET).await?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let member = existing_user(&s.engine, &c.app, p.get("username")?).await?;
    let attrs = b.get("metaData").and_then(Value::as_object).ok_or_else(|| metadata_error("metaData must be an object"))?;
    let by = c.user.as_ref().map(|u| u.id.as_str());
    let now = s.engine.client_state().set_member_attributes(&c.app, &group, by, &member, attrs).await.map_err(rule_error)?;
    Ok(data(json!(now)))
}

/// Names from a JSON array of strings (or none).
fn strings(v: Option<&Value>, field: &str) -> EmResult<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| metadata_error(format!("{field} must be strings")))).collect()
        }
        Some(_) => Err(metadata_error(format!("{field} must be an array"))),
    }
}

/// `POST …/chatgroup/{group_id}/get {targets, properties}`.
async fn read(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_GET).await?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let targets: Vec<String> = strings(b.get("targets"), "targets")?
        .iter()
        .map(|t| username(t).map_err(|_| metadata_error(format!("target {t} is not a username"))))
        .collect::<EmResult<_>>()?;
    let keys = strings(b.get("properties"), "properties")?;
    let reader = c.user.as_ref().map(|u| u.id.as_str());
    let got = s.engine.client_state().member_attributes(&c.app, &group, reader, &targets, &keys).await.map_err(rule_error)?;
    Ok(data(json!(got)))
}

/// `GET /metadata/chatgroup/{group_id}/user/{username}` (app token).
async fn read_one(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_METADATA_GET).await?;
    let group = conv_of(&s.engine, &c.app, Family::Group, p.get("group_id")?).await?;
    let member = existing_user(&s.engine, &c.app, p.get("username")?).await?;
    let mut got =
        s.engine.client_state().member_attributes(&c.app, &group, None, std::slice::from_ref(&member), &[]).await.map_err(rule_error)?;
    Ok(data(json!(got.remove(&member).unwrap_or_default())))
}
