//! Column lists, row mapping and the inserts several domains share; the embedded store's
//! `rows.rs`, in PostgreSQL's types.

use std::collections::HashMap;

use confab_engine::limits::Limits;
use confab_engine::model::*;
use confab_engine::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;

use crate::{pg_err, Conn};

pub const APP_COLS: &str = "id, name, plan, created_at, keys, limits";
pub const USER_COLS: &str = "app, id, num, username, password_hash, nickname, attributes, disabled, created_at, updated_at, last_login_at";
pub const CONV_COLS: &str = "c.app, c.id, c.kind, c.name, c.creator, c.is_unique, c.unique_id, c.attrs, c.settings, \
     c.parent_conv, c.parent_msg, c.created_at, c.updated_at, c.last_message_at, c.last_seq, c.expires_at, c.foreign_id";
pub const MEMBER_COLS: &str = "mb.conv, mb.user_id, mb.role, mb.joined_at, mb.notifications_off, mb.muted_until, \
     mb.allowlisted, mb.read_seq, mb.delivered_seq, mb.hidden, mb.nickname";
pub const MSG_COLS: &str = "m.app, m.id, m.conv, m.seq, m.sender, m.ts, m.bin, m.body, m.mtype, m.ext, m.mention_all, \
     m.mentions, m.priority, m.system, m.restricted, m.push_data, m.from_ip, m.recalled_at, m.edited_at, m.ack_at, m.receipt, \
     m.foreign_id";
pub const BROADCAST_COLS: &str = "app, id, conv, sender, ts, bin, body, valid_till, push";
pub const TOKEN_COLS: &str = "token, app, user_id, kind, created_at, expires_at, device";

/// A stored value the store cannot read back: the database holds what this store did not write.
fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("postgres: a stored {what} does not read back: {e}"))
}

/// JSON kept as `TEXT`.
pub fn json<T: DeserializeOwned>(r: &Row, col: usize) -> Result<T> {
    let s: String = r.try_get(col).map_err(pg_err)?;
    serde_json::from_str(&s).map_err(|e| corrupt("JSON value", e))
}

fn json_opt<T: DeserializeOwned>(r: &Row, col: usize) -> Result<Option<T>> {
    match r.try_get::<_, Option<String>>(col).map_err(pg_err)? {
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| corrupt("JSON value", e)),
        None => Ok(None),
    }
}

/// JSON kept as `JSONB`.
fn jsonb<T: DeserializeOwned>(r: &Row, col: usize) -> Result<T> {
    let Json(v): Json<T> = r.try_get(col).map_err(pg_err)?;
    Ok(v)
}

pub fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// A column by index, its type checked.
pub fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, col: usize) -> Result<T> {
    r.try_get(col).map_err(pg_err)
}

pub fn app_row(r: &Row) -> Result<App> {
    let plan = Plan::parse(&get::<String>(r, 2)?).unwrap_or_default();
    let overrides: Attrs = json(r, 5)?;
    let limits = Limits::resolve(plan, &overrides).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "an app's stored limits do not resolve; using the plan's defaults");
        Limits::for_plan(plan)
    });
    Ok(App { id: get(r, 0)?, name: get(r, 1)?, plan, created_at: get(r, 3)?, keys: json(r, 4)?, limit_overrides: overrides, limits })
}

pub fn user_row(r: &Row) -> Result<User> {
    Ok(User {
        app: get(r, 0)?,
        id: get(r, 1)?,
        num: get(r, 2)?,
        username: get(r, 3)?,
        password_hash: get(r, 4)?,
        nickname: get(r, 5)?,
        attributes: jsonb(r, 6)?,
        disabled: get(r, 7)?,
        created_at: get(r, 8)?,
        updated_at: get(r, 9)?,
        last_login_at: get(r, 10)?,
    })
}

pub fn token_row(r: &Row) -> Result<Token> {
    let kind: String = get(r, 3)?;
    Ok(Token {
        token: get(r, 0)?,
        app: get(r, 1)?,
        user: get(r, 2)?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token kind", &kind))?,
        created_at: get(r, 4)?,
        expires_at: get(r, 5)?,
        device: get(r, 6)?,
    })
}

pub fn conv_row(r: &Row) -> Result<Conversation> {
    let kind: i64 = get(r, 2)?;
    let parent = match (get::<Option<i64>>(r, 9)?, get::<Option<i64>>(r, 10)?) {
        (Some(c), Some(m)) => Some((c, m)),
        _ => None,
    };
    Ok(Conversation {
        app: get(r, 0)?,
        id: get(r, 1)?,
        kind: ConvKind::from_code(kind).ok_or_else(|| corrupt("conversation kind", kind))?,
        name: get(r, 3)?,
        creator: get(r, 4)?,
        unique: get(r, 5)?,
        unique_id: get(r, 6)?,
        attrs: jsonb(r, 7)?,
        settings: json(r, 8)?,
        parent,
        created_at: get(r, 11)?,
        updated_at: get(r, 12)?,
        last_message_at: get(r, 13)?,
        last_seq: get(r, 14)?,
        expires_at: get(r, 15)?,
        foreign_id: get(r, 16)?,
    })
}

pub fn member_row(r: &Row) -> Result<Member> {
    let role: String = get(r, 2)?;
    Ok(Member {
        conv: get(r, 0)?,
        user: get(r, 1)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        joined_at: get(r, 3)?,
        notifications_off: get(r, 4)?,
        muted_until: get(r, 5)?,
        allowlisted: get(r, 6)?,
        read_seq: get(r, 7)?,
        delivered_seq: get(r, 8)?,
        hidden: get(r, 9)?,
        nickname: get(r, 10)?,
    })
}

/// A body: bytes, with `bin` saying whether they are binary or UTF-8 text.
fn content(r: &Row, bin_col: usize) -> Result<Content> {
    let bin: bool = get(r, bin_col)?;
    let bytes: Vec<u8> = get(r, bin_col + 1)?;
    Ok(if bin { Content::Binary(bytes) } else { Content::Text(String::from_utf8(bytes).map_err(|e| corrupt("text body", e))?) })
}

/// `(bin, body)` of a content.
pub fn content_sql(c: &Content) -> (bool, &[u8]) {
    match c {
        Content::Text(s) => (false, s.as_bytes()),
        Content::Binary(b) => (true, b.as_slice()),
    }
}

pub fn msg_row(r: &Row) -> Result<Message> {
    let restricted: bool = get(r, 14)?;
    Ok(Message {
        app: get(r, 0)?,
        id: get(r, 1)?,
        conv: get(r, 2)?,
        seq: get(r, 3)?,
        from: get(r, 4)?,
        timestamp: get(r, 5)?,
        content: content(r, 6)?,
        mtype: get(r, 8)?,
        ext: json_opt(r, 9)?,
        mention_all: get(r, 10)?,
        mentions: json_opt(r, 11)?.unwrap_or_default(),
        priority: Priority::from_code(get(r, 12)?),
        system: get(r, 13)?,
        transient: false,
        audience: if restricted { Audience::Only(vec![]) } else { Audience::All },
        push_data: get(r, 15)?,
        from_ip: get(r, 16)?,
        recalled_at: get(r, 17)?,
        edited_at: get(r, 18)?,
        ack_at: get(r, 19)?,
        receipt: get(r, 20)?,
        foreign_id: get(r, 21)?,
    })
}

pub fn broadcast_row(r: &Row) -> Result<Broadcast> {
    Ok(Broadcast {
        app: get(r, 0)?,
        id: get(r, 1)?,
        conv: get(r, 2)?,
        from: get(r, 3)?,
        timestamp: get(r, 4)?,
        content: content(r, 5)?,
        valid_till: get(r, 7)?,
        push: json_opt(r, 8)?,
        transient: false,
    })
}

/// Rows mapped, or the first error.
pub fn map_rows<T>(rows: &[Row], f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

pub async fn insert_conversation(c: &impl Conn, conv: &Conversation) -> Result<()> {
    let attrs = Json(&conv.attrs);
    let settings = to_json(&conv.settings)?;
    let (parent_conv, parent_msg) = (conv.parent.map(|p| p.0), conv.parent.map(|p| p.1));
    let params: [&(dyn ToSql + Sync); 17] = [
        &conv.app,
        &conv.id,
        &conv.kind.code(),
        &conv.name,
        &conv.creator,
        &conv.unique,
        &conv.unique_id,
        &attrs,
        &settings,
        &parent_conv,
        &parent_msg,
        &conv.created_at,
        &conv.updated_at,
        &conv.last_message_at,
        &conv.last_seq,
        &conv.expires_at,
        &conv.foreign_id,
    ];
    c.exec(
        "INSERT INTO conversations (app, id, kind, name, creator, is_unique, unique_id, attrs, settings, parent_conv,
         parent_msg, created_at, updated_at, last_message_at, last_seq, last_ts, expires_at, foreign_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17)",
        &params,
    )
    .await?;
    Ok(())
}

/// Insert a member unless present; true if inserted.
pub async fn insert_member(c: &impl Conn, app: i64, m: &Member) -> Result<bool> {
    let role = m.role.as_str();
    let n = c
        .exec(
            "INSERT INTO members (app, conv, user_id, role, joined_at, notifications_off, muted_until, allowlisted, read_seq,
             delivered_seq, hidden, nickname) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (app, conv, user_id) DO NOTHING",
            &[
                &app,
                &m.conv,
                &m.user,
                &role,
                &m.joined_at,
                &m.notifications_off,
                &m.muted_until,
                &m.allowlisted,
                &m.read_seq,
                &m.delivered_seq,
                &m.hidden,
                &m.nickname,
            ],
        )
        .await?;
    Ok(n > 0)
}

pub async fn insert_message(c: &impl Conn, m: &Message) -> Result<()> {
    let (bin, body) = content_sql(&m.content);
    let ext = m.ext.as_ref().map(to_json).transpose()?;
    let mentions = if m.mentions.is_empty() { None } else { Some(to_json(&m.mentions)?) };
    let restricted = matches!(m.audience, Audience::Only(_));
    let priority = m.priority.code();
    let patched_at = m.recalled_at.max(m.edited_at);
    let params: [&(dyn ToSql + Sync); 23] = [
        &m.app,
        &m.id,
        &m.conv,
        &m.seq,
        &m.from,
        &m.timestamp,
        &bin,
        &body,
        &m.mtype,
        &ext,
        &m.mention_all,
        &mentions,
        &priority,
        &m.system,
        &restricted,
        &m.push_data,
        &m.from_ip,
        &m.recalled_at,
        &m.edited_at,
        &m.ack_at,
        &m.receipt,
        &patched_at,
        &m.foreign_id,
    ];
    c.exec(
        "INSERT INTO messages (app, id, conv, seq, sender, ts, bin, body, mtype, ext, mention_all, mentions, priority,
         system, restricted, push_data, from_ip, recalled_at, edited_at, ack_at, receipt, patched_at, foreign_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        &params,
    )
    .await?;
    if let Audience::Only(users) = &m.audience {
        c.exec(
            "INSERT INTO message_users (app, msg, user_id, visible, conv, seq)
             SELECT $1, $2, u, true, $3, $4 FROM unnest($5::TEXT[]) AS u ON CONFLICT DO NOTHING",
            &[&m.app, &m.id, &m.conv, &m.seq, users],
        )
        .await?;
    }
    Ok(())
}

/// Fill in the recipients of a restricted message (`msg_row` reads it with none).
pub async fn with_audience(c: &impl Conn, mut m: Message) -> Result<Message> {
    with_audiences(c, std::slice::from_mut(&mut m)).await?;
    Ok(m)
}

/// Fill in the recipients of the restricted messages among `msgs`, in one query for all of them
/// (a page of history is one round trip more, not one per message). Recipients are in bytewise
/// order, as the embedded store gives them.
pub async fn with_audiences(c: &impl Conn, msgs: &mut [Message]) -> Result<()> {
    let restricted: Vec<&Message> = msgs.iter().filter(|m| matches!(m.audience, Audience::Only(_))).collect();
    if restricted.is_empty() {
        return Ok(());
    }
    let apps: Vec<i64> = restricted.iter().map(|m| m.app).collect();
    let ids: Vec<i64> = restricted.iter().map(|m| m.id).collect();
    let rows = c
        .rows(
            r#"SELECT mu.app, mu.msg, mu.user_id FROM unnest($1::BIGINT[], $2::BIGINT[]) AS k (app, msg)
               JOIN message_users mu ON mu.app = k.app AND mu.msg = k.msg
               WHERE mu.visible ORDER BY mu.user_id COLLATE "C""#,
            &[&apps, &ids],
        )
        .await?;
    let mut audiences: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for r in &rows {
        audiences.entry((get(r, 0)?, get(r, 1)?)).or_default().push(get(r, 2)?);
    }
    for m in msgs {
        if let Audience::Only(users) = &mut m.audience {
            *users = audiences.remove(&(m.app, m.id)).unwrap_or_default();
        }
    }
    Ok(())
}
