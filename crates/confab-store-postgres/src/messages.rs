//! Messages, history, cursors, unread counts, patches and broadcasts: `MessageStore`.
//!
//! Inserts go through the writer lanes (`lanes.rs`), which keep their queued order; what one
//! insert does is [`insert_queued`]. The other writes run on a connection of their own, each in
//! one transaction that locks the row it reads before changing it (what the embedded store's
//! single writer gives by itself).

use super::*;
use crate::outbox::insert_outbox;
use crate::unread;

/// SQL text built at run time and its parameters, numbered as they are bound (`$1`, `$2`, …).
#[derive(Default)]
struct Query {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    /// Bind a parameter; its placeholder (`$n`), to be written where it is used (once or more).
    fn param(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    /// Bind a parameter where the text stands now.
    fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> &mut Self {
        let p = self.param(v);
        self.push(&p)
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// ` AND (the message aliased m is visible to the user $n)`: a message to everyone unless the
/// user hid it, a restricted one if the user is among its recipients (and has not hidden it).
fn visible_to(user: &str) -> String {
    format!(
        " AND ((NOT m.restricted AND NOT EXISTS (SELECT 1 FROM message_users mu
                 WHERE mu.app = m.app AND mu.msg = m.id AND NOT mu.visible AND mu.user_id = {user}))
            OR (m.restricted AND EXISTS (SELECT 1 FROM message_users mu
                 WHERE mu.app = m.app AND mu.msg = m.id AND mu.visible AND mu.user_id = {user})))"
    )
}

/// A `LIMIT` as the embedded store reads it: a negative one is no limit (`LIMIT NULL`).
fn limit_of(limit: i64) -> Option<i64> {
    (limit >= 0).then_some(limit)
}

/// Store one queued message in the lane's transaction `tx`: take the conversation's next
/// sequence number, raising the timestamp to the conversation's last one (timestamps never
/// decrease along the sequence), advance the conversation's last-message time, and keep the
/// outbox items with it. The `UPDATE` holds the conversation's row until the commit, so that
/// the conversation's inserts are numbered one at a time on every node.
pub(crate) async fn insert_queued(tx: &impl Conn, msg: &Message, outbox: &[OutboxItem]) -> Result<Message> {
    let row = tx
        .row(
            "UPDATE conversations SET last_seq = last_seq + 1, last_ts = GREATEST(last_ts, $3), last_message_at = GREATEST(last_ts, $3)
             WHERE app = $1 AND id = $2 RETURNING last_seq, last_ts",
            &[&msg.app, &msg.conv, &msg.timestamp],
        )
        .await?
        .ok_or(Error::ConversationNotFound)?;
    let m = Message { seq: get(&row, 0)?, timestamp: get(&row, 1)?, ..msg.clone() };
    insert_message(tx, &m).await?;
    insert_outbox(tx, outbox).await?;
    Ok(m)
}

/// A message with its recipients; with `for_update`, its row locked until the transaction ends.
async fn load_message(c: &impl Conn, app: i64, id: i64, for_update: bool) -> Result<Option<Message>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = c.row(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = $1 AND m.id = $2{lock}"), &[&app, &id]).await?;
    match row {
        Some(r) => Ok(Some(with_audience(c, msg_row(&r)?).await?)),
        None => Ok(None),
    }
}

/// Write a message's changeable fields as they now are.
async fn write_message(c: &impl Conn, m: &Message) -> Result<()> {
    let (bin, body) = content_sql(&m.content);
    let mentions = if m.mentions.is_empty() { None } else { Some(to_json(&m.mentions)?) };
    let patched_at = m.recalled_at.max(m.edited_at);
    c.exec(
        "UPDATE messages SET bin = $3, body = $4, mtype = $5, edited_at = $6, recalled_at = $7, ack_at = $8, patched_at = $9,
         mention_all = $10, mentions = $11 WHERE app = $1 AND id = $2",
        &[&m.app, &m.id, &bin, &body, &m.mtype, &m.edited_at, &m.recalled_at, &m.ack_at, &patched_at, &m.mention_all, &mentions],
    )
    .await
    .map(drop)
}

/// The comparison a history bound makes: `older_than` is the upper end, `newer_than` the lower.
fn bound_op(upper: bool, inclusive: bool) -> &'static str {
    match (upper, inclusive) {
        (true, false) => "<",
        (true, true) => "<=",
        (false, false) => ">",
        (false, true) => ">=",
    }
}

/// Restrict `q` to the history scope; the conversation, when the scope is one.
fn scope_filter(q: &mut Query, scope: &HistoryScope) -> Option<i64> {
    match scope {
        HistoryScope::Conv(conv) => {
            q.push(" AND m.conv = ").bind(*conv);
            Some(*conv)
        }
        HistoryScope::ConvAs { conv, user } => {
            q.push(" AND m.conv = ").bind(*conv);
            let user = q.param(user.clone());
            q.push(&visible_to(&user));
            Some(*conv)
        }
        HistoryScope::Sender(u) => {
            q.push(" AND m.sender = ").bind(u.clone());
            None
        }
        HistoryScope::App => None,
    }
}

/// Restrict `q` to one end of a history range. Within a conversation a message's position is
/// its sequence number (found by the bound's id); elsewhere (or if the message is not in the
/// conversation) it is the timestamp, ties broken by id when the bound names a message.
async fn bound_filter(c: &impl Conn, q: &mut Query, app: i64, conv: Option<i64>, bound: &Bound, upper: bool) -> Result<()> {
    let op = bound_op(upper, bound.inclusive);
    match (conv, bound.id) {
        (Some(conv), Some(id)) => {
            let row = c.row("SELECT seq FROM messages WHERE app = $1 AND id = $2 AND conv = $3", &[&app, &id, &conv]).await?;
            match row {
                Some(r) => q.push(&format!(" AND m.seq {op} ")).bind(get::<i64>(&r, 0)?),
                None => q.push(&format!(" AND m.ts {op} ")).bind(bound.timestamp),
            };
        }
        (None, Some(id)) => {
            let (ts, id) = (q.param(bound.timestamp), q.param(id));
            q.push(&format!(" AND (m.ts, m.id) {op} ({ts}::BIGINT, {id}::BIGINT)"));
        }
        (_, None) => {
            q.push(&format!(" AND m.ts {op} ")).bind(bound.timestamp);
        }
    }
    Ok(())
}

/// A member's cursor (the column `col` of `members mb`) as a time: the timestamp of the newest
/// message at or before it.
fn cursor_time(col: &str) -> String {
    format!(
        "(SELECT m.ts FROM messages m WHERE m.app = mb.app AND m.conv = mb.conv AND m.seq <= mb.{col}
          ORDER BY m.seq DESC LIMIT 1)"
    )
}

#[async_trait]
impl MessageStore for PgStore {
    // ---------------------------------------------------------------- messages

    fn queue_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> Queued<Message> {
        self.lanes.queue(msg, outbox)
    }

    async fn get_message(&self, app: i64, id: i64) -> Result<Option<Message>> {
        load_message(&self.client().await?, app, id, false).await
    }

    async fn update_message(&self, app: i64, id: i64, patch: &MessagePatch) -> Result<Option<Message>> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // locked while patched: two patches at once both apply
        let Some(mut m) = load_message(&tx, app, id, true).await? else { return Ok(None) };
        patch.apply(&mut m);
        write_message(&tx, &m).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(m))
    }

    async fn delete_message(&self, app: i64, id: i64) -> Result<bool> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // the message first: a hide_message holding its row is waited for, and what it kept goes too
        let deleted = tx.exec("DELETE FROM messages WHERE app = $1 AND id = $2", &[&app, &id]).await? > 0;
        tx.exec("DELETE FROM message_users WHERE app = $1 AND msg = $2", &[&app, &id]).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(deleted)
    }

    async fn hide_message(&self, app: i64, id: i64, user: &str) -> Result<bool> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // shared lock: the message is not deleted before what hides it is kept
        let row = tx.row("SELECT restricted, conv, seq FROM messages WHERE app = $1 AND id = $2 FOR SHARE", &[&app, &id]).await?;
        let Some(row) = row else { return Ok(false) };
        let (restricted, conv, seq): (bool, i64, i64) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
        let changed = if restricted {
            // one of its recipients no more
            tx.exec("DELETE FROM message_users WHERE app = $1 AND msg = $2 AND user_id = $3 AND visible", &[&app, &id, &user]).await?
        } else {
            tx.exec(
                "INSERT INTO message_users (app, msg, user_id, visible, conv, seq) VALUES ($1, $2, $3, false, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&app, &id, &user, &conv, &seq],
            )
            .await?
        };
        tx.commit().await.map_err(pg_err)?;
        Ok(changed > 0)
    }

    async fn history(&self, app: i64, hq: &HistoryQuery) -> Result<Vec<Message>> {
        let c = self.client().await?;
        let mut q = Query::default();
        q.push(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ")).bind(app);
        let conv = scope_filter(&mut q, &hq.scope);
        if let Some(t) = hq.mtype {
            q.push(" AND m.mtype = ").bind(t);
        }
        for (bound, upper) in [(&hq.older_than, true), (&hq.newer_than, false)] {
            if let Some(bound) = bound {
                bound_filter(&c, &mut q, app, conv, bound, upper).await?;
            }
        }
        let dir = if hq.ascending { "ASC" } else { "DESC" };
        if conv.is_some() {
            q.push(&format!(" ORDER BY m.seq {dir}"));
        } else {
            q.push(&format!(" ORDER BY m.ts {dir}, m.id {dir}"));
        }
        q.push(" LIMIT ").bind(limit_of(hq.limit));
        let rows = c.rows(&q.sql, &q.params()).await?;
        let mut msgs = map_rows(&rows, msg_row)?;
        with_audiences(&c, &mut msgs).await?;
        Ok(msgs)
    }

    async fn unread_count(&self, app: i64, user: &str, conv: Option<i64>, bounds: UnreadBounds) -> Result<i64> {
        let mut c = self.client().await?;
        unread::total(&mut c, app, user, conv, bounds).await
    }

    // ---------------------------------------------------------------- cursors, unread, patches

    async fn advance_cursor(&self, app: i64, conv: i64, user: &str, cursor: Cursor, to_seq: i64, now: i64) -> Result<CursorMove> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // locked until the commit: two moves at once never take a cursor back
        let row = tx
            .row(
                "SELECT read_seq, delivered_seq FROM members WHERE app = $1 AND conv = $2 AND user_id = $3 FOR UPDATE",
                &[&app, &conv, &user],
            )
            .await?
            .ok_or(Error::NotMember)?;
        let (read_seq, delivered_seq): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
        let from = match cursor {
            Cursor::Read => read_seq,
            Cursor::Delivered => delivered_seq,
        };
        if to_seq <= from {
            return Ok(CursorMove { from_seq: from, to_seq: from, receipts: vec![] });
        }
        let (read, delivered) = match cursor {
            Cursor::Read => (to_seq, delivered_seq.max(to_seq)),
            Cursor::Delivered => (read_seq, to_seq),
        };
        tx.exec(
            "UPDATE members SET read_seq = $4, delivered_seq = $5 WHERE app = $1 AND conv = $2 AND user_id = $3",
            &[&app, &conv, &user, &read, &delivered],
        )
        .await?;
        if delivered > delivered_seq {
            tx.exec(
                "UPDATE messages SET ack_at = $6 WHERE app = $1 AND conv = $2 AND seq > $3 AND seq <= $4 AND sender <> $5
                 AND ack_at IS NULL",
                &[&app, &conv, &delivered_seq, &delivered, &user, &now],
            )
            .await?;
        }
        let rows = tx
            .rows(
                &format!(
                    "SELECT {MSG_COLS} FROM messages m WHERE m.app = $1 AND m.conv = $2 AND m.seq > $3 AND m.seq <= $4
                     AND m.receipt AND m.sender <> $5 ORDER BY m.seq"
                ),
                &[&app, &conv, &from, &to_seq, &user],
            )
            .await?;
        let receipts = map_rows(&rows, msg_row)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(CursorMove { from_seq: from, to_seq, receipts })
    }

    async fn seq_at(&self, app: i64, conv: i64, ts: i64) -> Result<i64> {
        let row = self
            .client()
            .await?
            .row("SELECT seq FROM messages WHERE app = $1 AND conv = $2 AND ts <= $3 ORDER BY seq DESC LIMIT 1", &[&app, &conv, &ts])
            .await?;
        row.map_or(Ok(0), |r| get(&r, 0))
    }

    async fn cursor_times(&self, app: i64, conv: i64) -> Result<Vec<CursorTimes>> {
        let sql = format!(
            r#"SELECT mb.user_id, {}, {} FROM members mb WHERE mb.app = $1 AND mb.conv = $2 AND mb.role <> 'subscriber'
               ORDER BY mb.user_id COLLATE "C""#,
            cursor_time("read_seq"),
            cursor_time("delivered_seq")
        );
        let rows = self.client().await?.rows(&sql, &[&app, &conv]).await?;
        map_rows(&rows, |r| Ok(CursorTimes { user: get(r, 0)?, read_at: get(r, 1)?, delivered_at: get(r, 2)? }))
    }

    async fn unread_summary(&self, app: i64, user: &str, since: i64, limit: i64, bounds: UnreadBounds) -> Result<Vec<UnreadEntry>> {
        let mut c = self.client().await?;
        unread::summary(&mut c, app, user, since, limit, bounds).await
    }

    async fn patches_since(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<Message>> {
        // the member's conversations, then in each only what changed after `since` (the partial
        // index of patched messages): the work follows the changes, not the history
        let sql = format!(
            "SELECT {MSG_COLS} FROM members mb JOIN messages m ON m.app = mb.app AND m.conv = mb.conv
             WHERE mb.app = $1 AND mb.user_id = $2 AND m.patched_at > $3{} ORDER BY m.patched_at, m.id LIMIT $4",
            visible_to("$2")
        );
        let rows = self.client().await?.rows(&sql, &[&app, &user, &since, &limit_of(limit)]).await?;
        map_rows(&rows, msg_row)
    }

    // ---------------------------------------------------------------- broadcasts

    async fn insert_broadcast(&self, bc: &Broadcast) -> Result<()> {
        let (bin, body) = content_sql(&bc.content);
        let push = bc.push.as_ref().map(|p| p.to_string());
        self.writer()
            .await?
            .exec(
                "INSERT INTO broadcasts (app, id, conv, sender, ts, bin, body, valid_till, push) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&bc.app, &bc.id, &bc.conv, &bc.from, &bc.timestamp, &bin, &body, &bc.valid_till, &push],
            )
            .await
            .map(drop)
    }

    async fn get_broadcast(&self, app: i64, id: i64) -> Result<Option<Broadcast>> {
        let row =
            self.client().await?.row(&format!("SELECT {BROADCAST_COLS} FROM broadcasts WHERE app = $1 AND id = $2"), &[&app, &id]).await?;
        row.as_ref().map(broadcast_row).transpose()
    }

    async fn update_broadcast(&self, app: i64, id: i64, content: &Content) -> Result<bool> {
        let (bin, body) = content_sql(content);
        let n = self
            .writer()
            .await?
            .exec("UPDATE broadcasts SET bin = $3, body = $4 WHERE app = $1 AND id = $2", &[&app, &id, &bin, &body])
            .await?;
        Ok(n > 0)
    }

    async fn delete_broadcast(&self, app: i64, id: i64) -> Result<bool> {
        Ok(self.writer().await?.exec("DELETE FROM broadcasts WHERE app = $1 AND id = $2", &[&app, &id]).await? > 0)
    }

    async fn list_broadcasts(&self, app: i64, conv: Option<i64>, now: i64, skip: i64, limit: i64) -> Result<Vec<Broadcast>> {
        let mut q = Query::default();
        q.push(&format!("SELECT {BROADCAST_COLS} FROM broadcasts WHERE app = ")).bind(app);
        q.push(" AND valid_till > ").bind(now);
        if let Some(conv) = conv {
            q.push(" AND conv = ").bind(conv);
        }
        q.push(" ORDER BY id DESC LIMIT ").bind(limit_of(limit)).push(" OFFSET ").bind(skip.max(0));
        let rows = self.client().await?.rows(&q.sql, &q.params()).await?;
        map_rows(&rows, broadcast_row)
    }
}
