//! Column lists, row mapping and inserts.

use confab_engine::limits::Limits;
use confab_engine::model::*;
use confab_engine::{Error, Result};
use rusqlite::types::{Type, Value as Sql};
use rusqlite::{params, Connection, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::pool::sql_err;
use crate::Cached;

pub const APP_COLS: &str = "id, name, plan, created_at, keys, limits";
pub const USER_COLS: &str = "app, id, num, username, password_hash, nickname, attributes, disabled, created_at, updated_at, last_login_at";
pub const CONV_COLS: &str = "c.app, c.id, c.kind, c.name, c.creator, c.is_unique, c.unique_id, c.attrs, c.settings, \
     c.parent_conv, c.parent_msg, c.created_at, c.updated_at, c.last_message_at, c.last_seq, c.expires_at, c.foreign_id";
pub const MEMBER_COLS: &str = "mb.conv, mb.user, mb.role, mb.joined_at, mb.notifications_off, mb.muted_until, \
     mb.allowlisted, mb.read_seq, mb.delivered_seq, mb.hidden, mb.nickname";
pub const MSG_COLS: &str = "m.app, m.id, m.conv, m.seq, m.sender, m.ts, m.bin, m.body, m.mtype, m.ext, m.mention_all, \
     m.mentions, m.priority, m.system, m.restricted, m.push_data, m.from_ip, m.recalled_at, m.edited_at, m.ack_at, m.receipt, \
     m.foreign_id";
pub const BROADCAST_COLS: &str = "app, id, conv, sender, ts, bin, body, valid_till, push";

fn bad(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, Box::new(e))
}

fn json<T: DeserializeOwned>(r: &Row, col: usize) -> rusqlite::Result<T> {
    let s: String = r.get(col)?;
    serde_json::from_str(&s).map_err(|e| bad(col, e))
}

fn json_opt<T: DeserializeOwned>(r: &Row, col: usize) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<String>>(col)? {
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| bad(col, e)),
        None => Ok(None),
    }
}

pub fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

pub fn app_row(r: &Row) -> rusqlite::Result<App> {
    let plan = Plan::parse(&r.get::<_, String>(2)?).unwrap_or_default();
    let overrides: Attrs = json(r, 5)?;
    let limits = Limits::resolve(plan, &overrides).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "an app's stored limits do not resolve; using the plan's defaults");
        Limits::for_plan(plan)
    });
    Ok(App { id: r.get(0)?, name: r.get(1)?, plan, created_at: r.get(3)?, keys: json(r, 4)?, limit_overrides: overrides, limits })
}

pub fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        app: r.get(0)?,
        id: r.get(1)?,
        num: r.get(2)?,
        username: r.get(3)?,
        password_hash: r.get(4)?,
        nickname: r.get(5)?,
        attributes: json(r, 6)?,
        disabled: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        last_login_at: r.get(10)?,
    })
}

pub fn token_row(r: &Row) -> rusqlite::Result<Token> {
    let kind: String = r.get(3)?;
    Ok(Token {
        token: r.get(0)?,
        app: r.get(1)?,
        user: r.get(2)?,
        kind: TokenKind::parse(&kind).ok_or_else(|| bad(3, std::fmt::Error))?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
        device: r.get(6)?,
    })
}

pub fn conv_row(r: &Row) -> rusqlite::Result<Conversation> {
    let kind: i64 = r.get(2)?;
    let parent = match (r.get::<_, Option<i64>>(9)?, r.get::<_, Option<i64>>(10)?) {
        (Some(c), Some(m)) => Some((c, m)),
        _ => None,
    };
    Ok(Conversation {
        app: r.get(0)?,
        id: r.get(1)?,
        kind: ConvKind::from_code(kind).ok_or_else(|| bad(2, std::fmt::Error))?,
        name: r.get(3)?,
        creator: r.get(4)?,
        unique: r.get(5)?,
        unique_id: r.get(6)?,
        attrs: json(r, 7)?,
        settings: json(r, 8)?,
        parent,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        last_message_at: r.get(13)?,
        last_seq: r.get(14)?,
        expires_at: r.get(15)?,
        foreign_id: r.get(16)?,
    })
}

pub fn member_row(r: &Row) -> rusqlite::Result<Member> {
    let role: String = r.get(2)?;
    Ok(Member {
        conv: r.get(0)?,
        user: r.get(1)?,
        role: Role::parse(&role).ok_or_else(|| bad(2, std::fmt::Error))?,
        joined_at: r.get(3)?,
        notifications_off: r.get(4)?,
        muted_until: r.get(5)?,
        allowlisted: r.get(6)?,
        read_seq: r.get(7)?,
        delivered_seq: r.get(8)?,
        hidden: r.get(9)?,
        nickname: r.get(10)?,
    })
}

fn content(r: &Row, bin_col: usize) -> rusqlite::Result<Content> {
    let bin: bool = r.get(bin_col)?;
    Ok(match r.get::<_, Sql>(bin_col + 1)? {
        Sql::Blob(b) if bin => Content::Binary(b),
        Sql::Blob(b) => Content::Text(String::from_utf8_lossy(&b).into_owned()),
        Sql::Text(s) => Content::Text(s),
        _ => Content::Text(String::new()),
    })
}

pub fn content_sql(c: &Content) -> (bool, Sql) {
    match c {
        Content::Text(s) => (false, Sql::Text(s.clone())),
        Content::Binary(b) => (true, Sql::Blob(b.clone())),
    }
}

pub fn msg_row(r: &Row) -> rusqlite::Result<Message> {
    let restricted: bool = r.get(14)?;
    Ok(Message {
        app: r.get(0)?,
        id: r.get(1)?,
        conv: r.get(2)?,
        seq: r.get(3)?,
        from: r.get(4)?,
        timestamp: r.get(5)?,
        content: content(r, 6)?,
        mtype: r.get(8)?,
        ext: json_opt(r, 9)?,
        mention_all: r.get(10)?,
        mentions: json_opt(r, 11)?.unwrap_or_default(),
        priority: Priority::from_code(r.get(12)?),
        system: r.get(13)?,
        transient: false,
        audience: if restricted { Audience::Only(vec![]) } else { Audience::All },
        push_data: r.get(15)?,
        from_ip: r.get(16)?,
        recalled_at: r.get(17)?,
        edited_at: r.get(18)?,
        ack_at: r.get(19)?,
        receipt: r.get(20)?,
        foreign_id: r.get(21)?,
    })
}

pub fn broadcast_row(r: &Row) -> rusqlite::Result<Broadcast> {
    Ok(Broadcast {
        app: r.get(0)?,
        id: r.get(1)?,
        conv: r.get(2)?,
        from: r.get(3)?,
        timestamp: r.get(4)?,
        content: content(r, 5)?,
        valid_till: r.get(7)?,
        push: json_opt(r, 8)?,
        transient: false,
    })
}

pub fn insert_conversation(c: &Connection, conv: &Conversation) -> Result<()> {
    c.cached_execute(
        "INSERT INTO conversations (app, id, kind, name, creator, is_unique, unique_id, attrs, settings, parent_conv,
         parent_msg, created_at, updated_at, last_message_at, last_seq, last_ts, expires_at, foreign_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0, ?16, ?17)",
        params![
            conv.app,
            conv.id,
            conv.kind.code(),
            conv.name,
            conv.creator,
            conv.unique,
            conv.unique_id,
            to_json(&conv.attrs)?,
            to_json(&conv.settings)?,
            conv.parent.map(|p| p.0),
            conv.parent.map(|p| p.1),
            conv.created_at,
            conv.updated_at,
            conv.last_message_at,
            conv.last_seq,
            conv.expires_at,
            conv.foreign_id
        ],
    )
    .map_err(sql_err)?;
    Ok(())
}

/// Insert a member unless present; true if inserted.
pub fn insert_member(c: &Connection, app: i64, m: &Member) -> Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT INTO members (app, conv, user, role, joined_at, notifications_off, muted_until, allowlisted, read_seq,
             delivered_seq, hidden, nickname) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (app, conv, user) DO NOTHING",
        )
        .map_err(sql_err)?
        .execute(params![
            app,
            m.conv,
            m.user,
            m.role.as_str(),
            m.joined_at,
            m.notifications_off,
            m.muted_until,
            m.allowlisted,
            m.read_seq,
            m.delivered_seq,
            m.hidden,
            m.nickname
        ])
        .map_err(sql_err)?;
    Ok(n > 0)
}

pub fn insert_message(c: &Connection, m: &Message) -> Result<()> {
    let (bin, body) = content_sql(&m.content);
    let ext = m.ext.as_ref().map(to_json).transpose()?;
    let mentions = if m.mentions.is_empty() { None } else { Some(to_json(&m.mentions)?) };
    c.prepare_cached(
        "INSERT INTO messages (app, id, conv, seq, sender, ts, bin, body, mtype, ext, mention_all, mentions, priority,
         system, restricted, push_data, from_ip, recalled_at, edited_at, ack_at, receipt, patched_at, foreign_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
    )
    .map_err(sql_err)?
    .execute(params![
        m.app,
        m.id,
        m.conv,
        m.seq,
        m.from,
        m.timestamp,
        bin,
        body,
        m.mtype,
        ext,
        m.mention_all,
        mentions,
        m.priority.code(),
        m.system,
        matches!(m.audience, Audience::Only(_)),
        m.push_data,
        m.from_ip,
        m.recalled_at,
        m.edited_at,
        m.ack_at,
        m.receipt,
        m.recalled_at.max(m.edited_at),
        m.foreign_id
    ])
    .map_err(sql_err)?;
    if let Audience::Only(users) = &m.audience {
        let mut st = c
            .prepare_cached(
                "INSERT INTO message_users (app, msg, user, visible, conv, seq) VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT DO NOTHING",
            )
            .map_err(sql_err)?;
        for u in users {
            st.execute(params![m.app, m.id, u, m.conv, m.seq]).map_err(sql_err)?;
        }
    }
    Ok(())
}
