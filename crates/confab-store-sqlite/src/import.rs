//! Imports from another service: messages with their own ids, timestamps and foreign ids, put in
//! their places in a conversation's order; conversations created or adopted by foreign id.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use confab_engine::model::*;
use confab_engine::store::{ImportStore, Imported};
use confab_engine::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::filter::Builder;
use crate::pool::sql_err;
use crate::rows::{insert_conversation, insert_member, insert_message, CONV_COLS, MSG_COLS};
use crate::{query_all, Cached, SqliteStore};
use rusqlite::types::Value as Sql;

/// Where a message stands in its conversation's order: by timestamp; in one millisecond, the
/// source's messages by their ids (bytewise, as LeanCloud pages them), then ours.
type Key = (i64, bool, String);

fn key(ts: i64, foreign: &Option<String>) -> Key {
    (ts, foreign.is_none(), foreign.clone().unwrap_or_default())
}

/// The newest stored message of a conversation: (sequence, its key), or (0, None).
fn newest(c: &Connection, app: i64, conv: i64) -> Result<(i64, Option<Key>)> {
    c.prepare_cached_row(
        "SELECT seq, ts, foreign_id FROM messages WHERE app = ?1 AND conv = ?2 ORDER BY seq DESC LIMIT 1",
        params![app, conv],
        |r| Ok((r.get(0)?, Some(key(r.get(1)?, &r.get(2)?)))),
    )
    .optional()
    .map_err(sql_err)
    .map(|r| r.unwrap_or((0, None)))
}

/// A stored message with this foreign id: (id, conversation, sequence, restricted to an audience).
fn known(c: &Connection, app: i64, foreign_id: &str) -> Result<Option<(i64, i64, i64, bool)>> {
    c.prepare_cached_row(
        "SELECT id, conv, seq, restricted FROM messages WHERE app = ?1 AND foreign_id = ?2",
        params![app, foreign_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()
    .map_err(sql_err)
}

pub fn import_messages(c: &Connection, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
    let mut seen = HashSet::new();
    let mut fresh = Vec::with_capacity(msgs.len());
    let mut out = Imported::default();
    for m in msgs {
        let stored = match &m.foreign_id {
            Some(f) if seen.contains(f) => Some(None),
            Some(f) => known(c, app, f)?.map(Some),
            None => None,
        };
        match stored {
            None => {
                seen.extend(m.foreign_id.clone());
                fresh.push(Message { app, conv, ..m.clone() });
            }
            // the same message seen again for other users (a service conversation's history is
            // read user by user): they join its audience
            Some(Some((id, conv, seq, true))) => {
                if let Audience::Only(users) = &m.audience {
                    for u in users {
                        c.cached_execute(
                            "INSERT INTO message_users (app, msg, user, visible, conv, seq) VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT DO NOTHING",
                            params![app, id, u, conv, seq],
                        )
                        .map_err(sql_err)?;
                    }
                }
                out.skipped += 1;
            }
            Some(_) => out.skipped += 1,
        }
    }
    if fresh.is_empty() {
        return Ok(out);
    }
    // oldest first; messages of one millisecond keep the order they came in
    fresh.sort_by_key(|m| key(m.timestamp, &m.foreign_id));
    let (last_seq, last) = newest(c, app, conv)?;
    if last.is_none_or(|l| key(fresh[0].timestamp, &fresh[0].foreign_id) > l) {
        for (i, m) in fresh.iter_mut().enumerate() {
            m.seq = last_seq + 1 + i as i64;
            insert_message(c, m)?;
        }
    } else {
        merge(c, app, conv, &mut fresh)?;
    }
    out.inserted = fresh.len() as u64;
    let (seq, last) = newest(c, app, conv)?;
    c.cached_execute(
        "UPDATE conversations SET last_seq = ?3, last_ts = MAX(last_ts, ?4), last_message_at = MAX(COALESCE(last_message_at, 0), ?4)
         WHERE app = ?1 AND id = ?2",
        params![app, conv, seq, last.map_or(0, |k| k.0)],
    )
    .map_err(sql_err)?;
    Ok(out)
}

/// Older messages among stored ones: the stored messages after the first new one are numbered
/// anew together with the new ones, in the order of their keys, and the members' cursors move
/// with the messages they pointed at.
fn merge(c: &Connection, app: i64, conv: i64, fresh: &mut [Message]) -> Result<()> {
    let (first_ts, first_id) = (fresh[0].timestamp, fresh[0].foreign_id.clone());
    // the stored messages before the first new one keep their numbers
    let base: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE app = ?1 AND conv = ?2
               AND (ts < ?3 OR (ts = ?3 AND ?4 IS NOT NULL AND foreign_id IS NOT NULL AND foreign_id < ?4))",
            params![app, conv, first_ts, first_id],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let tail: Vec<(i64, i64, Key)> = {
        let mut st = c
            .prepare_cached("SELECT id, seq, ts, foreign_id FROM messages WHERE app = ?1 AND conv = ?2 AND seq > ?3 ORDER BY seq")
            .map_err(sql_err)?;
        let rows = st.query_map(params![app, conv, base], |r| Ok((r.get(0)?, r.get(1)?, key(r.get(2)?, &r.get(3)?)))).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    // free the numbers after `base`, then hand them out again in the merged order
    for sql in [
        "UPDATE messages SET seq = -seq WHERE app = ?1 AND conv = ?2 AND seq > ?3",
        "UPDATE message_users SET seq = -seq WHERE app = ?1 AND conv = ?2 AND seq > ?3",
    ] {
        c.cached_execute(sql, params![app, conv, base]).map_err(sql_err)?;
    }
    let mut renumbered = BTreeMap::new();
    let (mut i, mut j, mut next) = (0, 0, base + 1);
    while i < tail.len() || j < fresh.len() {
        let stored_first = j == fresh.len() || (i < tail.len() && tail[i].2 < key(fresh[j].timestamp, &fresh[j].foreign_id));
        if stored_first {
            let (id, old, _) = tail[i];
            c.cached_execute("UPDATE messages SET seq = ?3 WHERE app = ?1 AND id = ?2", params![app, id, next]).map_err(sql_err)?;
            c.cached_execute("UPDATE message_users SET seq = ?3 WHERE app = ?1 AND msg = ?2", params![app, id, next]).map_err(sql_err)?;
            renumbered.insert(old, next);
            i += 1;
        } else {
            fresh[j].seq = next;
            insert_message(c, &fresh[j])?;
            j += 1;
        }
        next += 1;
    }
    // a cursor names the newest message it covers: it follows that message (or, between
    // numbers, the newest stored message at or before it)
    let moved = |cursor: i64| renumbered.range(..=cursor).next_back().map_or(cursor, |(_, new)| *new);
    let cursors: Vec<(String, i64, i64)> = {
        let mut st = c
            .prepare_cached(
                "SELECT user, read_seq, delivered_seq FROM members WHERE app = ?1 AND conv = ?2 AND (read_seq > ?3 OR delivered_seq > ?3)",
            )
            .map_err(sql_err)?;
        let rows = st.query_map(params![app, conv, base], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    for (user, read, delivered) in cursors {
        let (read, delivered) = (if read > base { moved(read) } else { read }, if delivered > base { moved(delivered) } else { delivered });
        c.cached_execute(
            "UPDATE members SET read_seq = ?4, delivered_seq = ?5 WHERE app = ?1 AND conv = ?2 AND user = ?3",
            params![app, conv, user, read, delivered],
        )
        .map_err(sql_err)?;
    }
    Ok(())
}

pub(crate) fn conversation_where(c: &Connection, app: i64, col: &str, value: &str) -> Result<Option<Conversation>> {
    c.prepare_cached_row(
        &format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = ?1 AND c.{col} = ?2"),
        params![app, value],
        crate::rows::conv_row,
    )
    .optional()
    .map_err(sql_err)
}

pub fn conversation_by_foreign(c: &Connection, app: i64, foreign_id: &str) -> Result<Option<Conversation>> {
    conversation_where(c, app, "foreign_id", foreign_id)
}

pub fn message_by_foreign(c: &Connection, app: i64, foreign_id: &str) -> Result<Option<Message>> {
    let m = c
        .prepare_cached_row(
            &format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ?1 AND m.foreign_id = ?2"),
            params![app, foreign_id],
            crate::rows::msg_row,
        )
        .optional()
        .map_err(sql_err)?;
    m.map(|m| crate::with_audience(c, m)).transpose()
}

pub fn import_conversation(c: &Connection, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
    let by_foreign = match &conv.foreign_id {
        Some(f) => conversation_by_foreign(c, conv.app, f)?,
        None => None,
    };
    let existing = match (by_foreign, &conv.unique_id) {
        (Some(e), _) => Some(e),
        (None, Some(u)) => conversation_where(c, conv.app, "unique_id", u)?,
        (None, None) => None,
    };
    let (id, created) = match existing {
        Some(e) => {
            if e.foreign_id.is_none() && conv.foreign_id.is_some() {
                c.cached_execute(
                    "UPDATE conversations SET foreign_id = ?3 WHERE app = ?1 AND id = ?2",
                    params![e.app, e.id, conv.foreign_id],
                )
                .map_err(sql_err)?;
            }
            (e.id, false)
        }
        None => {
            insert_conversation(c, conv)?;
            let (seq, ts) = newest(c, conv.app, conv.id)?;
            c.cached_execute(
                "UPDATE conversations SET last_seq = ?3, last_ts = ?4, last_message_at = MAX(COALESCE(last_message_at, 0), ?4)
                 WHERE app = ?1 AND id = ?2",
                params![conv.app, conv.id, seq, ts.map_or(0, |k| k.0)],
            )
            .map_err(sql_err)?;
            (conv.id, true)
        }
    };
    // what was said before the import counts as read: the source's read positions are not
    // exported, and a flood of "99+" on every conversation would help no one
    let (last_seq, _) = newest(c, conv.app, id)?;
    for m in members {
        insert_member(c, conv.app, &Member { conv: id, read_seq: last_seq, delivered_seq: last_seq, ..m.clone() })?;
    }
    let conv = crate::load_conversation(c, conv.app, id)?.ok_or(Error::ConversationNotFound)?;
    Ok((conv, created))
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn conversation_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Conversation>> {
        let f = foreign_id.to_string();
        self.pool.lookup("conversation_by_foreign", move |c| conversation_by_foreign(c, app, &f)).await
    }

    async fn message_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Message>> {
        let f = foreign_id.to_string();
        self.pool.lookup("message_by_foreign", move |c| message_by_foreign(c, app, &f)).await
    }

    async fn conversation_foreign_ids(&self, app: i64, convs: &[i64]) -> Result<Vec<(i64, String)>> {
        let mut b = Builder::default();
        b.push("SELECT id, foreign_id FROM conversations WHERE app = ").bind(Sql::Integer(app));
        b.push(" AND foreign_id IS NOT NULL AND id IN ").list(convs.iter().map(|c| Sql::Integer(*c)));
        self.pool.read("conversation_foreign_ids", move |c| query_all(c, &b, |r| Ok((r.get(0)?, r.get(1)?)))).await
    }

    async fn import_messages(&self, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
        let msgs = msgs.to_vec();
        self.pool.write("import_messages", move |c| import_messages(c, app, conv, &msgs)).await
    }

    async fn import_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
        let (conv, members) = (conv.clone(), members.to_vec());
        self.pool.write("import_conversation", move |c| import_conversation(c, &conv, &members)).await
    }
}
