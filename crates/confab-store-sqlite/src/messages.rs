//! Messages, history, cursors, unread counts, patches and broadcasts: `MessageStore`.

use super::*;

#[async_trait]
impl MessageStore for SqliteStore {
    // ---------------------------------------------------------------- messages

    fn queue_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> confab_engine::store::Queued<Message> {
        let mut m = msg.clone();
        let outbox = outbox.to_vec();
        self.pool.queue("insert_message", move |c| {
            let (last_seq, last_ts): (i64, i64) = c
                .prepare_cached_row("SELECT last_seq, last_ts FROM conversations WHERE app = ?1 AND id = ?2", params![m.app, m.conv], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql_err)?
                .ok_or(Error::ConversationNotFound)?;
            m.seq = last_seq + 1;
            m.timestamp = m.timestamp.max(last_ts);
            insert_message(c, &m)?;
            c.cached_execute(
                "UPDATE conversations SET last_seq = ?3, last_ts = ?4, last_message_at = ?4 WHERE app = ?1 AND id = ?2",
                params![m.app, m.conv, m.seq, m.timestamp],
            )
            .map_err(sql_err)?;
            outbox::add(c, &outbox)?;
            Ok(m)
        })
    }

    async fn get_message(&self, app: i64, id: i64) -> Result<Option<Message>> {
        self.pool.lookup("get_message", move |c| load_message(c, app, id)).await
    }

    async fn update_message(&self, app: i64, id: i64, patch: &MessagePatch) -> Result<Option<Message>> {
        let patch = patch.clone();
        self.pool
            .write("update_message", move |c| {
                let Some(mut m) = load_message(c, app, id)? else { return Ok(None) };
                patch.apply(&mut m);
                let (bin, body) = content_sql(&m.content);
                let mentions = if m.mentions.is_empty() { None } else { Some(to_json(&m.mentions)?) };
                c.cached_execute(
                    "UPDATE messages SET bin = ?3, body = ?4, mtype = ?5, edited_at = ?6, recalled_at = ?7, ack_at = ?8, patched_at = ?9,
                     mention_all = ?10, mentions = ?11
                     WHERE app = ?1 AND id = ?2",
                    params![
                        app,
                        id,
                        bin,
                        body,
                        m.mtype,
                        m.edited_at,
                        m.recalled_at,
                        m.ack_at,
                        m.recalled_at.max(m.edited_at),
                        m.mention_all,
                        mentions
                    ],
                )
                .map_err(sql_err)?;
                Ok(Some(m))
            })
            .await
    }

    async fn delete_message(&self, app: i64, id: i64) -> Result<bool> {
        self.pool
            .write("delete_message", move |c| {
                c.cached_execute("DELETE FROM message_users WHERE app = ?1 AND msg = ?2", params![app, id]).map_err(sql_err)?;
                Ok(c.cached_execute("DELETE FROM messages WHERE app = ?1 AND id = ?2", params![app, id]).map_err(sql_err)? > 0)
            })
            .await
    }

    async fn hide_message(&self, app: i64, id: i64, user: &str) -> Result<bool> {
        let user = user.to_string();
        self.pool
            .write("hide_message", move |c| {
                let found: Option<(bool, i64, i64)> = c
                    .query_row("SELECT restricted, conv, seq FROM messages WHERE app = ?1 AND id = ?2", params![app, id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()
                    .map_err(sql_err)?;
                Ok(match found {
                    None => false,
                    Some((true, _, _)) => {
                        c.cached_execute(
                            "DELETE FROM message_users WHERE app = ?1 AND msg = ?2 AND user = ?3 AND visible = 1",
                            params![app, id, user],
                        )
                        .map_err(sql_err)?
                            > 0
                    }
                    Some((false, conv, seq)) => {
                        c.cached_execute(
                            "INSERT INTO message_users (app, msg, user, visible, conv, seq) VALUES (?1, ?2, ?3, 0, ?4, ?5)
                             ON CONFLICT DO NOTHING",
                            params![app, id, user, conv, seq],
                        )
                        .map_err(sql_err)?
                            > 0
                    }
                })
            })
            .await
    }

    async fn history(&self, app: i64, q: &HistoryQuery) -> Result<Vec<Message>> {
        let q = q.clone();
        self.pool
            .read("history", move |c| {
                let mut b = Builder::default();
                b.push(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ")).bind(Sql::Integer(app));
                let conv = match &q.scope {
                    HistoryScope::Conv(conv) | HistoryScope::ConvAs { conv, .. } => {
                        b.push(" AND m.conv = ").bind(Sql::Integer(*conv));
                        Some(*conv)
                    }
                    HistoryScope::Sender(u) => {
                        b.push(" AND m.sender = ").bind(Sql::Text(u.clone()));
                        None
                    }
                    HistoryScope::App => None,
                };
                if let HistoryScope::ConvAs { user, .. } = &q.scope {
                    visible_to(&mut b, user);
                }
                if let Some(t) = q.mtype {
                    b.push(" AND m.mtype = ").bind(Sql::Integer(t));
                }
                for (bound, upper) in [(&q.older_than, true), (&q.newer_than, false)] {
                    let Some(bound) = bound else { continue };
                    let sym = match (upper, bound.inclusive) {
                        (true, false) => "<",
                        (true, true) => "<=",
                        (false, false) => ">",
                        (false, true) => ">=",
                    };
                    match (conv, bound.id) {
                        (Some(conv), Some(id)) => {
                            // within a conversation, a message position is its sequence number
                            let seq: Option<i64> = c
                                .query_row(
                                    "SELECT seq FROM messages WHERE app = ?1 AND id = ?2 AND conv = ?3",
                                    params![app, id, conv],
                                    |r| r.get(0),
                                )
                                .optional()
                                .map_err(sql_err)?;
                            match seq {
                                Some(seq) => b.push(&format!(" AND m.seq {sym} ")).bind(Sql::Integer(seq)),
                                None => b.push(&format!(" AND m.ts {sym} ")).bind(Sql::Integer(bound.timestamp)),
                            };
                        }
                        (None, Some(id)) => {
                            b.push(&format!(" AND (m.ts, m.id) {sym} ("))
                                .bind(Sql::Integer(bound.timestamp))
                                .push(", ")
                                .bind(Sql::Integer(id))
                                .push(")");
                        }
                        (_, None) => {
                            b.push(&format!(" AND m.ts {sym} ")).bind(Sql::Integer(bound.timestamp));
                        }
                    }
                }
                let dir = if q.ascending { "ASC" } else { "DESC" };
                if conv.is_some() {
                    b.push(&format!(" ORDER BY m.seq {dir}"));
                } else {
                    b.push(&format!(" ORDER BY m.ts {dir}, m.id {dir}"));
                }
                b.push(" LIMIT ").bind(Sql::Integer(q.limit));
                query_all(c, &b, msg_row)?.into_iter().map(|m| with_audience(c, m)).collect()
            })
            .await
    }

    async fn unread_count(&self, app: i64, user: &str, conv: Option<i64>, bounds: UnreadBounds) -> Result<i64> {
        let user = user.to_string();
        self.pool.read("unread_count", move |c| unread::total(c, app, &user, conv, bounds)).await
    }

    // ---------------------------------------------------------------- cursors, unread, patches

    async fn advance_cursor(&self, app: i64, conv: i64, user: &str, cursor: Cursor, to_seq: i64, now: i64) -> Result<CursorMove> {
        let user = user.to_string();
        self.pool
            .write("advance_cursor", move |c| {
                let m = get_member(c, app, conv, &user)?.ok_or(Error::NotMember)?;
                let from = match cursor {
                    Cursor::Read => m.read_seq,
                    Cursor::Delivered => m.delivered_seq,
                };
                if to_seq <= from {
                    return Ok(CursorMove { from_seq: from, to_seq: from, receipts: vec![] });
                }
                let (read, delivered) = match cursor {
                    Cursor::Read => (to_seq, m.delivered_seq.max(to_seq)),
                    Cursor::Delivered => (m.read_seq, to_seq),
                };
                c.cached_execute(
                    "UPDATE members SET read_seq = ?4, delivered_seq = ?5 WHERE app = ?1 AND conv = ?2 AND user = ?3",
                    params![app, conv, user, read, delivered],
                )
                .map_err(sql_err)?;
                if delivered > m.delivered_seq {
                    c.cached_execute(
                        "UPDATE messages SET ack_at = ?6 WHERE app = ?1 AND conv = ?2 AND seq > ?3 AND seq <= ?4 AND sender <> ?5
                         AND ack_at IS NULL",
                        params![app, conv, m.delivered_seq, delivered, user, now],
                    )
                    .map_err(sql_err)?;
                }
                let mut b = Builder::default();
                b.push(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ")).bind(Sql::Integer(app));
                b.push(" AND m.conv = ").bind(Sql::Integer(conv));
                b.push(" AND m.seq > ").bind(Sql::Integer(from)).push(" AND m.seq <= ").bind(Sql::Integer(to_seq));
                b.push(" AND m.receipt = 1 AND m.sender <> ").bind(Sql::Text(user.clone())).push(" ORDER BY m.seq");
                let receipts = query_all(c, &b, msg_row)?;
                Ok(CursorMove { from_seq: from, to_seq, receipts })
            })
            .await
    }

    async fn seq_at(&self, app: i64, conv: i64, ts: i64) -> Result<i64> {
        self.pool
            .read("seq_at", move |c| {
                c.prepare_cached_row(
                    "SELECT seq FROM messages WHERE app = ?1 AND conv = ?2 AND ts <= ?3 ORDER BY seq DESC LIMIT 1",
                    params![app, conv, ts],
                    |r| r.get(0),
                )
                .optional()
                .map(|s| s.unwrap_or(0))
                .map_err(sql_err)
            })
            .await
    }

    async fn cursor_times(&self, app: i64, conv: i64) -> Result<Vec<CursorTimes>> {
        self.pool
            .read("cursor_times", move |c| {
                let at = |col: &str| {
                    format!(
                        "(SELECT m.ts FROM messages m WHERE m.app = mb.app AND m.conv = mb.conv AND m.seq <= mb.{col}
                          ORDER BY m.seq DESC LIMIT 1)"
                    )
                };
                let mut b = Builder::default();
                b.push(&format!("SELECT mb.user, {}, {} FROM members mb WHERE mb.app = ", at("read_seq"), at("delivered_seq")))
                    .bind(Sql::Integer(app));
                b.push(" AND mb.conv = ").bind(Sql::Integer(conv)).push(" AND mb.role <> 'subscriber' ORDER BY mb.user");
                query_all(c, &b, |r| Ok(CursorTimes { user: r.get(0)?, read_at: r.get(1)?, delivered_at: r.get(2)? }))
            })
            .await
    }

    async fn unread_summary(&self, app: i64, user: &str, since: i64, limit: i64, bounds: UnreadBounds) -> Result<Vec<UnreadEntry>> {
        let user = user.to_string();
        self.pool.read("unread_summary", move |c| unread::summary(c, app, &user, since, limit, bounds)).await
    }

    async fn patches_since(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<Message>> {
        let mut b = Builder::default();
        // the member's conversations, then in each only what changed after `since` (the partial
        // index of patched messages): the work follows the changes, not the history
        b.push(&format!(
            "SELECT {MSG_COLS} FROM members mb CROSS JOIN messages m INDEXED BY messages_patched
             ON m.app = mb.app AND m.conv = mb.conv WHERE mb.app = "
        ))
        .bind(Sql::Integer(app));
        b.push(" AND mb.user = ").bind(Sql::Text(user.to_string()));
        b.push(" AND m.patched_at > ").bind(Sql::Integer(since));
        visible_to(&mut b, user);
        b.push(" ORDER BY m.patched_at, m.id LIMIT ").bind(Sql::Integer(limit));
        self.pool.read("patches_since", move |c| query_all(c, &b, msg_row)).await
    }

    // ---------------------------------------------------------------- broadcasts

    async fn insert_broadcast(&self, bc: &Broadcast) -> Result<()> {
        let bc = bc.clone();
        self.pool
            .write("insert_broadcast", move |c| {
                let (bin, body) = content_sql(&bc.content);
                let push = bc.push.as_ref().map(|p| p.to_string());
                c.cached_execute(
                    "INSERT INTO broadcasts (app, id, conv, sender, ts, bin, body, valid_till, push) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![bc.app, bc.id, bc.conv, bc.from, bc.timestamp, bin, body, bc.valid_till, push],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn get_broadcast(&self, app: i64, id: i64) -> Result<Option<Broadcast>> {
        self.pool
            .lookup("get_broadcast", move |c| {
                c.prepare_cached_row(
                    &format!("SELECT {BROADCAST_COLS} FROM broadcasts WHERE app = ?1 AND id = ?2"),
                    params![app, id],
                    broadcast_row,
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn update_broadcast(&self, app: i64, id: i64, content: &Content) -> Result<bool> {
        let (bin, body) = content_sql(content);
        self.pool
            .write("update_broadcast", move |c| {
                Ok(c.cached_execute("UPDATE broadcasts SET bin = ?3, body = ?4 WHERE app = ?1 AND id = ?2", params![app, id, bin, body])
                    .map_err(sql_err)?
                    > 0)
            })
            .await
    }

    async fn delete_broadcast(&self, app: i64, id: i64) -> Result<bool> {
        self.pool
            .write("delete_broadcast", move |c| {
                Ok(c.cached_execute("DELETE FROM broadcasts WHERE app = ?1 AND id = ?2", params![app, id]).map_err(sql_err)? > 0)
            })
            .await
    }

    async fn list_broadcasts(&self, app: i64, conv: Option<i64>, now: i64, skip: i64, limit: i64) -> Result<Vec<Broadcast>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {BROADCAST_COLS} FROM broadcasts WHERE app = ")).bind(Sql::Integer(app));
        b.push(" AND valid_till > ").bind(Sql::Integer(now));
        if let Some(conv) = conv {
            b.push(" AND conv = ").bind(Sql::Integer(conv));
        }
        b.push(" ORDER BY id DESC LIMIT ").bind(Sql::Integer(limit)).push(" OFFSET ").bind(Sql::Integer(skip));
        self.pool.read("list_broadcasts", move |c| query_all(c, &b, broadcast_row)).await
    }
}
