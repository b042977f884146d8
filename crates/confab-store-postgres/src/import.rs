//! Imports from another service: messages with their own ids, timestamps and foreign ids, put in
//! their places in a conversation's order; conversations created or adopted by foreign id. The
//! embedded store's `import.rs`.
//!
//! An import into a conversation is one transaction that holds, until it commits, an advisory
//! lock on the conversation's id (`LockClass::Imports`: the conversation need not exist yet, and
//! two imports of it, on any node, go one after the other) and, when it exists, its row (`FOR
//! UPDATE`): a message sent meanwhile takes its sequence number by updating that row, so it
//! waits, then numbers after what the import left. Renumbering locks the members whose cursors
//! it moves before the messages it moves, in the order a cursor move locks them.

use std::collections::{BTreeMap, HashSet};

use super::*;
use crate::conversations::load_conversation;

/// Where a message stands in its conversation's order: by timestamp; in one millisecond, the
/// source's messages by their ids (bytewise, as LeanCloud pages them), then ours.
type Key = (i64, bool, String);

fn key(ts: i64, foreign: &Option<String>) -> Key {
    (ts, foreign.is_none(), foreign.clone().unwrap_or_default())
}

fn msg_key(m: &Message) -> Key {
    key(m.timestamp, &m.foreign_id)
}

/// Lock what an import into conversation `conv` writes, until the transaction ends: the
/// conversation's id, and its row if it exists.
async fn lock_conversation(tx: &impl Conn, app: i64, conv: i64) -> Result<()> {
    lock(tx, LockClass::Imports, conv).await?;
    tx.row("SELECT 1 FROM conversations WHERE app = $1 AND id = $2 FOR UPDATE", &[&app, &conv]).await.map(drop)
}

/// The newest stored message of a conversation: (sequence, its key), or (0, None).
async fn newest(c: &impl Conn, app: i64, conv: i64) -> Result<(i64, Option<Key>)> {
    let row =
        c.row("SELECT seq, ts, foreign_id FROM messages WHERE app = $1 AND conv = $2 ORDER BY seq DESC LIMIT 1", &[&app, &conv]).await?;
    match row {
        Some(r) => Ok((get(&r, 0)?, Some(key(get(&r, 1)?, &get(&r, 2)?)))),
        None => Ok((0, None)),
    }
}

/// A stored message with this foreign id.
struct Known {
    id: i64,
    conv: i64,
    seq: i64,
    /// Addressed to some users only.
    restricted: bool,
}

async fn known(c: &impl Conn, app: i64, foreign_id: &str) -> Result<Option<Known>> {
    let row = c.row("SELECT id, conv, seq, restricted FROM messages WHERE app = $1 AND foreign_id = $2", &[&app, &foreign_id]).await?;
    row.map(|r| Ok(Known { id: get(&r, 0)?, conv: get(&r, 1)?, seq: get(&r, 2)?, restricted: get(&r, 3)? })).transpose()
}

/// The same message seen again for other users (a service conversation's history is read user
/// by user): they join its audience.
async fn widen_audience(tx: &impl Conn, app: i64, k: &Known, users: &[String]) -> Result<()> {
    tx.exec(
        "INSERT INTO message_users (app, msg, user_id, visible, conv, seq)
         SELECT $1, $2, u, true, $3, $4 FROM unnest($5::TEXT[]) AS u ON CONFLICT DO NOTHING",
        &[&app, &k.id, &k.conv, &k.seq, &users],
    )
    .await
    .map(drop)
}

async fn import_messages(tx: &impl Conn, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
    lock_conversation(tx, app, conv).await?;
    let mut seen = HashSet::new();
    let mut fresh = Vec::with_capacity(msgs.len());
    let mut out = Imported::default();
    for m in msgs {
        let stored = match &m.foreign_id {
            Some(f) if seen.contains(f) => Some(None),
            Some(f) => known(tx, app, f).await?.map(Some),
            None => None,
        };
        match stored {
            None => {
                seen.extend(m.foreign_id.clone());
                fresh.push(Message { app, conv, ..m.clone() });
            }
            Some(Some(k)) if k.restricted => {
                if let Audience::Only(users) = &m.audience {
                    widen_audience(tx, app, &k, users).await?;
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
    fresh.sort_by_key(msg_key);
    let (last_seq, last) = newest(tx, app, conv).await?;
    if last.is_none_or(|l| msg_key(&fresh[0]) > l) {
        for (i, m) in (1..).zip(fresh.iter_mut()) {
            m.seq = last_seq + i;
            insert_message(tx, m).await?;
        }
    } else {
        merge(tx, app, conv, &mut fresh).await?;
    }
    out.inserted = fresh.len() as u64;
    let (seq, last) = newest(tx, app, conv).await?;
    tx.exec(
        "UPDATE conversations SET last_seq = $3, last_ts = GREATEST(last_ts, $4),
         last_message_at = GREATEST(COALESCE(last_message_at, 0), $4) WHERE app = $1 AND id = $2",
        &[&app, &conv, &seq, &last.map_or(0, |k| k.0)],
    )
    .await?;
    Ok(out)
}

/// A stored message after the first new one: (id, sequence, key).
type Stored = (i64, i64, Key);

/// The stored messages before the first new one keep their numbers: the highest of them.
async fn merge_base(tx: &impl Conn, app: i64, conv: i64, first: &Message) -> Result<i64> {
    let row = tx
        .one(
            r#"SELECT COALESCE(MAX(seq), 0) FROM messages WHERE app = $1 AND conv = $2
               AND (ts < $3 OR (ts = $3 AND $4::TEXT IS NOT NULL AND foreign_id IS NOT NULL AND foreign_id COLLATE "C" < $4))"#,
            &[&app, &conv, &first.timestamp, &first.foreign_id],
        )
        .await?;
    get(&row, 0)
}

async fn tail(tx: &impl Conn, app: i64, conv: i64, base: i64) -> Result<Vec<Stored>> {
    let rows = tx
        .rows("SELECT id, seq, ts, foreign_id FROM messages WHERE app = $1 AND conv = $2 AND seq > $3 ORDER BY seq", &[&app, &conv, &base])
        .await?;
    map_rows(&rows, |r| Ok((get(r, 0)?, get(r, 1)?, key(get(r, 2)?, &get(r, 3)?))))
}

/// The members' cursors past `base`, their rows locked: (user, read, delivered).
async fn cursors_past(tx: &impl Conn, app: i64, conv: i64, base: i64) -> Result<Vec<(String, i64, i64)>> {
    let rows = tx
        .rows(
            "SELECT user_id, read_seq, delivered_seq FROM members WHERE app = $1 AND conv = $2 AND (read_seq > $3 OR delivered_seq > $3)
             ORDER BY user_id FOR UPDATE",
            &[&app, &conv, &base],
        )
        .await?;
    map_rows(&rows, |r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
}

/// Older messages among stored ones: the stored messages after the first new one are numbered
/// anew together with the new ones, in the order of their keys, and the members' cursors move
/// with the messages they pointed at.
async fn merge(tx: &impl Conn, app: i64, conv: i64, fresh: &mut [Message]) -> Result<()> {
    let base = merge_base(tx, app, conv, &fresh[0]).await?;
    let cursors = cursors_past(tx, app, conv, base).await?;
    let tail = tail(tx, app, conv, base).await?;
    // free the numbers after `base`, then hand them out again in the merged order
    for sql in [
        "UPDATE messages SET seq = -seq WHERE app = $1 AND conv = $2 AND seq > $3",
        "UPDATE message_users SET seq = -seq WHERE app = $1 AND conv = $2 AND seq > $3",
    ] {
        tx.exec(sql, &[&app, &conv, &base]).await?;
    }
    let renumbered = number_merged(&tail, fresh, base);
    renumber(tx, app, &tail, &renumbered).await?;
    for m in fresh.iter() {
        insert_message(tx, m).await?;
    }
    // a cursor names the newest message it covers: it follows that message (or, between
    // numbers, the newest stored message at or before it)
    let moved = |cursor: i64| if cursor > base { renumbered.range(..=cursor).next_back().map_or(cursor, |(_, new)| *new) } else { cursor };
    for (user, read, delivered) in cursors {
        tx.exec(
            "UPDATE members SET read_seq = $4, delivered_seq = $5 WHERE app = $1 AND conv = $2 AND user_id = $3",
            &[&app, &conv, &user, &moved(read), &moved(delivered)],
        )
        .await?;
    }
    Ok(())
}

/// Number the stored tail and the new messages after `base` in the order of their keys (a stored
/// message first on a tie): the new messages' `seq` is set; returns the stored ones' old number
/// to new.
fn number_merged(tail: &[Stored], fresh: &mut [Message], base: i64) -> BTreeMap<i64, i64> {
    let mut renumbered = BTreeMap::new();
    let (mut i, mut j, mut next) = (0, 0, base + 1);
    while i < tail.len() || j < fresh.len() {
        let stored_first = j == fresh.len() || (i < tail.len() && tail[i].2 < msg_key(&fresh[j]));
        if stored_first {
            renumbered.insert(tail[i].1, next);
            i += 1;
        } else {
            fresh[j].seq = next;
            j += 1;
        }
        next += 1;
    }
    renumbered
}

/// Give the stored messages (and their recipients' rows) their new numbers, in one statement each.
async fn renumber(tx: &impl Conn, app: i64, tail: &[Stored], renumbered: &BTreeMap<i64, i64>) -> Result<()> {
    let ids: Vec<i64> = tail.iter().map(|t| t.0).collect();
    let seqs: Vec<i64> = tail.iter().map(|t| renumbered.get(&t.1).copied().unwrap_or(t.1)).collect();
    for sql in [
        "UPDATE messages m SET seq = n.seq FROM unnest($2::BIGINT[], $3::BIGINT[]) AS n (id, seq) WHERE m.app = $1 AND m.id = n.id",
        "UPDATE message_users mu SET seq = n.seq FROM unnest($2::BIGINT[], $3::BIGINT[]) AS n (id, seq) WHERE mu.app = $1 AND mu.msg = n.id",
    ] {
        tx.exec(sql, &[&app, &ids, &seqs]).await?;
    }
    Ok(())
}

/// The conversation whose `col` is `value`; with `for_update`, its row locked.
async fn conversation_where(c: &impl Conn, app: i64, col: &str, value: &str, for_update: bool) -> Result<Option<Conversation>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = c.row(&format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = $1 AND c.{col} = $2{lock}"), &[&app, &value]).await?;
    row.as_ref().map(conv_row).transpose()
}

/// The conversation an import adopts, its row locked: the one with its foreign id, or for a
/// unique conversation, the one with its unique id.
async fn adopted(tx: &impl Conn, conv: &Conversation) -> Result<Option<Conversation>> {
    if let Some(f) = &conv.foreign_id {
        if let Some(c) = conversation_where(tx, conv.app, "foreign_id", f, true).await? {
            return Ok(Some(c));
        }
    }
    match &conv.unique_id {
        Some(u) => conversation_where(tx, conv.app, "unique_id", u, true).await,
        None => Ok(None),
    }
}

/// Create an imported conversation: its history may be stored already, its last sequence and
/// time are read from it.
async fn create(tx: &impl Conn, conv: &Conversation) -> Result<()> {
    insert_conversation(tx, conv).await?;
    let (seq, last) = newest(tx, conv.app, conv.id).await?;
    tx.exec(
        "UPDATE conversations SET last_seq = $3, last_ts = $4, last_message_at = GREATEST(COALESCE(last_message_at, 0), $4)
         WHERE app = $1 AND id = $2",
        &[&conv.app, &conv.id, &seq, &last.map_or(0, |k| k.0)],
    )
    .await
    .map(drop)
}

async fn import_conversation(tx: &impl Conn, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
    lock(tx, LockClass::Imports, conv.id).await?;
    let (id, created) = match adopted(tx, conv).await? {
        Some(e) => {
            if e.foreign_id.is_none() && conv.foreign_id.is_some() {
                tx.exec("UPDATE conversations SET foreign_id = $3 WHERE app = $1 AND id = $2", &[&e.app, &e.id, &conv.foreign_id]).await?;
            }
            (e.id, false)
        }
        None => {
            create(tx, conv).await?;
            (conv.id, true)
        }
    };
    // what was said before the import counts as read: the source's read positions are not
    // exported, and a flood of "99+" on every conversation would help no one
    let (last_seq, _) = newest(tx, conv.app, id).await?;
    for m in members {
        insert_member(tx, conv.app, &Member { conv: id, read_seq: last_seq, delivered_seq: last_seq, ..m.clone() }).await?;
    }
    let conv = load_conversation(tx, conv.app, id).await?.ok_or(Error::ConversationNotFound)?;
    Ok((conv, created))
}

#[async_trait]
impl ImportStore for PgStore {
    async fn conversation_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Conversation>> {
        conversation_where(&self.client().await?, app, "foreign_id", foreign_id, false).await
    }

    async fn message_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Message>> {
        let c = self.client().await?;
        let row = c.row(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = $1 AND m.foreign_id = $2"), &[&app, &foreign_id]).await?;
        match row {
            Some(r) => Ok(Some(with_audience(&c, msg_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    async fn conversation_foreign_ids(&self, app: i64, convs: &[i64]) -> Result<Vec<(i64, String)>> {
        let rows = self
            .client()
            .await?
            .rows("SELECT id, foreign_id FROM conversations WHERE app = $1 AND foreign_id IS NOT NULL AND id = ANY($2)", &[&app, &convs])
            .await?;
        map_rows(&rows, |r| Ok((get(r, 0)?, get(r, 1)?)))
    }

    async fn import_messages(&self, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let out = import_messages(&tx, app, conv, msgs).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn import_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let out = import_conversation(&tx, conv, members).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }
}
