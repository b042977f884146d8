//! Roaming history: `POST /users/{username}/messageroaming`, the SDK's `getHistoryMessages`
//! (specs/easemob-msync.md §12.2). The caller's own view of one conversation (what the engine's
//! history shows that user: messages addressed to others, hidden or cleared ones are left out,
//! recalled ones too), each message as the msync gateway delivers it: `data.msgs[].msg` is the
//! base64 of its encoded `Meta` (`msync::encoded_metas`, the gateway's own encoding).
//!
//! Request `{queue: "<peer>@easemob.com" | "<group>@conference.easemob.com", start, pull_number,
//! is_positive, msgType, startTime, endTime, userId}`:
//! * `start`: -1 (or empty) for the newest (`is_positive` false, the default: newest first,
//!   going back) or the oldest (`is_positive` true: oldest first, going forward); a message id
//!   (the `next_key` of the page before) to go on after it, that message left out;
//! * `pull_number`: 1 to [`ROAMING_PAGE_MAX`] (default 20);
//! * `msgType`: comma-separated types (`txt,img,…`), `userId`: one sender (groups), `startTime`
//!   / `endTime`: Unix ms, both ends included;
//! * answer `data: {msgs, next_key, is_last}`; `next_key` goes on from the last message looked
//!   at. A call looks at most [`ROAMING_SCAN_MAX`] messages: a narrow filter may answer fewer
//!   than asked with `is_last` false.
//!
//! Only a conversation the caller is in: a group the caller is not a member of (a chat room the
//! caller is not present in) is refused 403, a peer the caller never talked with has no history
//! (an empty last page). Threads are not served yet (404, as an unknown group).

use axum::extract::State;
use base64::Engine as _;
use confab_engine::limits::bucket;
use confab_engine::model::{ConvKind, Conversation, Message};
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};
use serde_json::{json, Map, Value};

use super::{from_engine, str_of};
use crate::auth::{Body, Caller, EmState, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::users::{user_in_path, username};

/// `pull_number` range and default.
pub const ROAMING_PAGE_MAX: i64 = 50;
const ROAMING_PAGE_DEFAULT: i64 = 20;
/// Most messages one call looks at (filters by type, sender or time skip the others).
pub const ROAMING_SCAN_MAX: usize = 1000;

/// The conversation a `queue` names for `user`: None when a peer and the user never talked.
async fn conversation(s: &EmState, c: &Caller, user: &str, queue: &str) -> EmResult<Option<Conversation>> {
    let (name, group) = match queue.split_once('@') {
        Some((n, domain)) => (n.trim(), domain.contains("conference")),
        None => (queue.trim(), false),
    };
    if !group {
        let peer = username(name).map_err(|_| EmError::illegal(format!("queue {queue} names no user")))?;
        return Ok(s.engine.conversations().find_direct_conversation(&c.app, user, &peer).await?);
    }
    let missing = || {
        EmError::new(
            axum::http::StatusCode::NOT_FOUND,
            "service_resource_not_found",
            "com.easemob.group.exception.ServiceResourceNotFoundException",
            format!("do not find this group:{name}"),
        )
    };
    let id: i64 = name.parse().map_err(|_| missing())?;
    let conv = s.engine.conversations().conversation(&c.app, id, None).await.map_err(|_| missing())?;
    // groups and chat rooms (threads have no msync encoding yet)
    if !matches!(conv.kind, ConvKind::Normal | ConvKind::Temporary | ConvKind::Chatroom) || conv.unique {
        return Err(missing());
    }
    // a chat room's members are the users present
    match s.engine.conversations().member(&c.app, &conv, user).await {
        Ok(_) => Ok(Some(conv)),
        Err(confab_engine::Error::NotMember) => Err(EmError::forbidden(format!("user {user} is not a member of group {id}"))),
        Err(e) => Err(e.into()),
    }
}

/// A time bound of the request (Unix ms); absent, null, -1 or 0: none.
fn time(o: &Map<String, Value>, k: &str) -> EmResult<Option<i64>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let t = str_of(Some(v)).filter(|t| !t.is_empty()).map(|t| t.parse::<i64>());
            match t {
                None => Ok(None),
                Some(Ok(t)) => Ok(Some(t).filter(|t| *t > 0)),
                Some(Err(_)) => Err(EmError::illegal(format!("{k} must be a time in ms"))),
            }
        }
    }
}

/// `POST /users/{username}/messageroaming`.
pub(super) async fn roaming(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    let user = user_in_path(&s.engine, &c.app, &p, "username").await?;
    c.may_act_for(&user.id)?;
    s.engine.apps().rate_check(&c.app, bucket::EM_MESSAGE_ROAMING).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let queue = match o.get("queue") {
        Some(Value::String(q)) if !q.trim().is_empty() => q.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => return Err(EmError::illegal("queue can't be empty")),
        Some(_) => return Err(EmError::illegal("queue must be a string: <user>@easemob.com or <group>@conference.easemob.com")),
    };
    let limit = match o.get("pull_number") {
        None | Some(Value::Null) => ROAMING_PAGE_DEFAULT,
        Some(v) => str_of(Some(v))
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| (1..=ROAMING_PAGE_MAX).contains(n))
            .ok_or_else(|| EmError::illegal(format!("pull_number must be 1 to {ROAMING_PAGE_MAX}")))?,
    };
    let down = match o.get("is_positive") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(d)) => *d,
        Some(Value::String(d)) => d == "true",
        Some(_) => return Err(EmError::bad_body()),
    };
    let types: Vec<String> =
        str_of(o.get("msgType")).unwrap_or_default().split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    let sender = str_of(o.get("userId")).filter(|u| !u.trim().is_empty()).map(|u| u.trim().to_lowercase());
    let (start_t, end_t) = (time(o, "startTime")?, time(o, "endTime")?);
    let Some(conv) = conversation(&s, &c, &user.id, &queue).await? else { return Ok(answer(&c, vec![], None)) };
    // the cursor: the message the page goes on after
    let cursor = match str_of(o.get("start")).map(|x| x.trim().to_string()).filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => {
            let id = x.parse::<i64>().map_err(|_| EmError::illegal("start must be -1 or a message id"))?;
            if id <= 0 {
                None
            } else {
                let m = s.engine.messages().message(&c.app, id).await.ok().filter(|m| m.conv == conv.id);
                let m = m.ok_or_else(|| EmError::illegal(format!("start {id} is not a message of this conversation")))?;
                Some(Bound { timestamp: m.timestamp, id: Some(m.id), inclusive: false })
            }
        }
    };
    let at = |t: i64| Bound { timestamp: t, id: None, inclusive: true };
    // the end the page starts from (the newer end going back, the older going forward), and the far end
    let mut from = cursor.or_else(|| if down { start_t.map(at) } else { end_t.map(at) });
    let far = if down { end_t.map(at) } else { start_t.map(at) };
    let wanted = |m: &Message| {
        m.recalled_at.is_none()
            && start_t.is_none_or(|t| m.timestamp >= t)
            && end_t.is_none_or(|t| m.timestamp <= t)
            && sender.as_ref().is_none_or(|u| m.from == *u)
            && (types.is_empty() || types.contains(&from_engine(m).0))
    };
    let filtered = sender.is_some() || !types.is_empty();
    let batch = if filtered { 100 } else { limit + 1 }.min(c.app.limits.history_max_limit);
    let (mut out, mut more, mut scanned, mut last) = (Vec::new(), false, 0usize, None);
    'scan: loop {
        let q = HistoryQuery {
            scope: HistoryScope::ConvAs { conv: conv.id, user: user.id.clone() },
            older_than: if down { far.clone() } else { from.clone() },
            newer_than: if down { from.clone() } else { far.clone() },
            ascending: down,
            limit: batch,
            mtype: None,
        };
        let got = s.engine.messages().history(&c.app, &q).await?;
        let n = got.len() as i64;
        for m in got {
            if out.len() as i64 == limit {
                more = true;
                break 'scan;
            }
            scanned += 1;
            last = Some(m.id);
            from = Some(Bound { timestamp: m.timestamp, id: Some(m.id), inclusive: false });
            if wanted(&m) {
                out.push(m);
            }
        }
        if n < batch {
            break;
        }
        if scanned >= ROAMING_SCAN_MAX {
            more = true;
            break;
        }
    }
    let metas = crate::msync::encoded_metas(&s.engine, &c.app, &user.id, conv, &out).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let msgs: Vec<Value> = metas.iter().map(|m| json!({"msg": b64.encode(m)})).collect();
    Ok(answer(&c, msgs, last.filter(|_| more)))
}

fn answer(c: &Caller, msgs: Vec<Value>, next: Option<i64>) -> crate::envelope::Answer {
    let data = json!({"msgs": msgs, "next_key": next.map(|n| n.to_string()).unwrap_or_default(), "is_last": next.is_none()});
    c.ctx.envelope(&c.app, "post", "/users/messageroaming").with("entities", json!([])).with("data", data)
}
