//! Conversations, members, blocklists and notices: `ConversationStore`, the embedded store's
//! `conversations.rs` on PostgreSQL.
//!
//! Where the embedded store relies on its single writer, this one locks: a change inside one
//! conversation (its members counted against `max`, its fields patched, its deletion) holds the
//! conversation's row (`FOR UPDATE`), which a message's insert takes too; a count checked against
//! a plan quota (an app's groups or chat rooms, a user's groups) holds the app's advisory lock
//! of the conversations class ([`lock`]), always before any conversation's row, so that the
//! two never wait on each other in a circle.

use tokio_postgres::types::Json;

use super::*;
use crate::filter::{self, query_err, Builder};

#[async_trait]
impl ConversationStore for PgStore {
    // ---------------------------------------------------------------- conversations

    async fn create_conversation_within(
        &self,
        conv: &Conversation,
        members: &[Member],
        quotas: ConvQuotas,
    ) -> Result<(Conversation, bool)> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if let Some(uid) = &conv.unique_id {
            if let Some(found) = conversation_by_unique_id(&tx, conv.app, uid).await? {
                return Ok((found, false));
            }
        }
        let created = match insert_new(&tx, conv, members, quotas).await {
            Ok(()) => tx.commit().await.map_err(pg_err),
            Err(e) => {
                drop(tx); // rolled back
                Err(e)
            }
        };
        let Err(e) = created else { return Ok((conv.clone(), true)) };
        // a unique conversation another node created meanwhile (the unique index refused this
        // one's insert, or it commits first): that one is the answer, counted against nothing
        if let Some(uid) = &conv.unique_id {
            if let Some(winner) = conversation_by_unique_id(&client, conv.app, uid).await? {
                return Ok((winner, false));
            }
        }
        Err(e)
    }

    async fn get_conversation(&self, app: i64, id: i64) -> Result<Option<Conversation>> {
        load_conversation(&self.client().await?, app, id).await
    }

    async fn conversation_by_unique(&self, app: i64, unique_id: &str) -> Result<Option<Conversation>> {
        conversation_by_unique_id(&self.client().await?, app, unique_id).await
    }

    async fn query_conversations(&self, app: i64, q: &ConvQuery) -> Result<(Vec<Conversation>, Option<i64>)> {
        let mut b = Builder::new(&format!("SELECT {CONV_COLS} FROM conversations c"));
        let from = b.sql().len();
        b.push(" WHERE c.app = ").int(app);
        if let Some(kinds) = &q.kinds {
            let codes: Vec<i64> = kinds.iter().map(|k| k.code()).collect();
            b.push(" AND c.kind = ANY(").bind(codes, "BIGINT[]").push(")");
        }
        b.push(" AND ");
        filter::compile(&q.filter, &mut b)?;
        let (where_sql, where_args) = (b.sql()[from..].to_string(), b.bound());
        b.push(" ORDER BY ");
        for (f, desc) in &q.order {
            filter::order_by(f, *desc, &mut b)?;
            b.push(", ");
        }
        b.push("c.id ASC").limit(q.limit).push(" OFFSET ").int(q.skip.max(0));

        // the statements differ with every filter: prepared unnamed, not kept in the cache
        let client = self.client().await?;
        let rows = if q.limit == 0 { Vec::new() } else { client.query(b.sql(), &b.args()).await.map_err(query_err)? };
        let total = match q.count {
            true => {
                let sql = format!("SELECT COUNT(*) FROM conversations c{where_sql}");
                let row = client.query_one(sql.as_str(), &b.args_upto(where_args)).await.map_err(query_err)?;
                Some(get::<i64>(&row, 0)?)
            }
            false => None,
        };
        Ok((map_rows(&rows, conv_row)?, total))
    }

    async fn update_conversation(&self, app: i64, id: i64, patch: &ConvPatch, now: i64) -> Result<Conversation> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row =
            tx.row(&format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = $1 AND c.id = $2 FOR UPDATE"), &[&app, &id]).await?;
        let mut conv = conv_row(&row.ok_or(Error::ConversationNotFound)?)?;
        patch.apply(&mut conv, now);
        let settings = to_json(&conv.settings)?;
        tx.exec(
            "UPDATE conversations SET name = $3, creator = $4, attrs = $5, settings = $6, updated_at = $7 WHERE app = $1 AND id = $2",
            &[&app, &id, &conv.name, &conv.creator, &Json(&conv.attrs), &settings, &conv.updated_at],
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(conv)
    }

    async fn delete_conversation(&self, app: i64, id: i64) -> Result<bool> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // held until the end: a message inserted meanwhile waits, then finds no conversation
        tx.row("SELECT 1 FROM conversations WHERE app = $1 AND id = $2 FOR UPDATE", &[&app, &id]).await?;
        tx.exec("DELETE FROM message_users WHERE app = $1 AND msg IN (SELECT id FROM messages WHERE app = $1 AND conv = $2)", &[&app, &id])
            .await?;
        for table in ["messages", "members", "broadcasts", "conv_blocks"] {
            tx.exec(&format!("DELETE FROM {table} WHERE app = $1 AND conv = $2"), &[&app, &id]).await?;
        }
        let deleted = tx.exec("DELETE FROM conversations WHERE app = $1 AND id = $2", &[&app, &id]).await? > 0;
        tx.commit().await.map_err(pg_err)?;
        Ok(deleted)
    }

    // ---------------------------------------------------------------- members

    async fn add_members_within(
        &self,
        app: i64,
        conv: i64,
        members: &[Member],
        max: Option<i64>,
        groups_per_member: Option<i64>,
        now: i64,
    ) -> Result<Vec<String>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if groups_per_member.is_some() {
            lock(&tx, LockClass::Conversations, app).await?;
        }
        let last_seq = lock_conversation(&tx, app, conv).await?;
        let mut added = Vec::new();
        for m in members {
            // a newcomer has nothing unread: what was said before they joined is history
            let m = Member { read_seq: m.read_seq.max(last_seq), delivered_seq: m.delivered_seq.max(last_seq), ..m.clone() };
            if insert_member(&tx, app, &m).await? {
                added.push(m.user);
            }
        }
        if let Some(max) = max {
            let n: i64 = get(
                &tx.one("SELECT COUNT(*) FROM members WHERE app = $1 AND conv = $2 AND role <> 'subscriber'", &[&app, &conv]).await?,
                0,
            )?;
            if n > max {
                return Err(Error::ConversationFull { max });
            }
        }
        if let Some(max) = groups_per_member {
            for u in &added {
                check_groups_of(&tx, app, u, max).await?;
            }
        }
        if !added.is_empty() {
            touch(&tx, app, conv, now).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(added)
    }

    async fn remove_members(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        lock_conversation(&tx, app, conv).await?;
        let rows = tx
            .rows("DELETE FROM members WHERE app = $1 AND conv = $2 AND user_id = ANY($3) RETURNING user_id", &[&app, &conv, &users])
            .await?;
        let removed = in_given_order(users, &rows, false)?;
        if !removed.is_empty() {
            touch(&tx, app, conv, now).await?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(removed)
    }

    async fn get_member(&self, app: i64, conv: i64, user: &str) -> Result<Option<Member>> {
        let client = self.client().await?;
        let row = client
            .row(
                &format!("SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = $1 AND mb.conv = $2 AND mb.user_id = $3"),
                &[&app, &conv, &user],
            )
            .await?;
        row.as_ref().map(member_row).transpose()
    }

    async fn list_members(&self, app: i64, conv: i64, q: &MemberQuery) -> Result<Vec<Member>> {
        let mut b = Builder::new(&format!("SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = "));
        b.int(app).push(" AND mb.conv = ").int(conv);
        role_filter(&mut b, q.roles.as_deref());
        if let Some(users) = &q.users {
            b.push(" AND mb.user_id = ANY(").texts(users).push(")");
        }
        if q.notifications_off {
            b.push(" AND mb.notifications_off");
        }
        if let Some(t) = q.muted_at {
            b.push(" AND mb.muted_until > ").int(t);
        }
        if let Some(after) = &q.after {
            b.push(" AND mb.user_id > ").text(after);
        }
        b.push(" ORDER BY mb.user_id");
        if let Some(limit) = q.limit {
            b.limit(limit);
        }
        let rows = self.client().await?.rows(b.sql(), &b.args()).await?;
        map_rows(&rows, member_row)
    }

    async fn member_lists(&self, app: i64, convs: &[i64]) -> Result<Vec<Member>> {
        let rows = self
            .client()
            .await?
            .rows(
                &format!(
                    "SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = $1 AND mb.conv = ANY($2) AND mb.role <> 'subscriber'
                     ORDER BY mb.conv, mb.joined_at, mb.user_id"
                ),
                &[&app, &convs],
            )
            .await?;
        map_rows(&rows, member_row)
    }

    async fn member_ids(&self, app: i64, conv: i64) -> Result<Vec<String>> {
        let rows = self
            .client()
            .await?
            .rows("SELECT user_id FROM members WHERE app = $1 AND conv = $2 AND role <> 'subscriber' ORDER BY user_id", &[&app, &conv])
            .await?;
        map_rows(&rows, |r| get(r, 0))
    }

    async fn count_members(&self, app: i64, conv: i64, roles: Option<&[Role]>) -> Result<i64> {
        let mut b = Builder::new("SELECT COUNT(*) FROM members mb WHERE mb.app = ");
        b.int(app).push(" AND mb.conv = ").int(conv);
        role_filter(&mut b, roles);
        get(&self.client().await?.one(b.sql(), &b.args()).await?, 0)
    }

    async fn update_members(&self, app: i64, conv: i64, users: &[String], patch: &MemberPatch) -> Result<Vec<String>> {
        // one statement: each member's row is read and written under its own lock, so a cursor
        // raised meanwhile is never lowered
        let role = patch.role.map(|r| r.as_str());
        let (set_muted, muted_until) = (patch.muted_until.is_some(), patch.muted_until.flatten());
        let (set_nickname, nickname) = (patch.nickname.is_some(), patch.nickname.clone().flatten());
        let rows = self
            .writer()
            .await?
            .rows(
                "UPDATE members SET role = COALESCE($4::TEXT, role), notifications_off = COALESCE($5::BOOLEAN, notifications_off),
                 muted_until = CASE WHEN $6::BOOLEAN THEN $7::BIGINT ELSE muted_until END,
                 allowlisted = COALESCE($8::BOOLEAN, allowlisted), read_seq = GREATEST(read_seq, $9::BIGINT),
                 delivered_seq = GREATEST(delivered_seq, $10::BIGINT), hidden = COALESCE($11::BOOLEAN, hidden),
                 nickname = CASE WHEN $12::BOOLEAN THEN $13::TEXT ELSE nickname END
                 WHERE app = $1 AND conv = $2 AND user_id = ANY($3) RETURNING user_id",
                &[
                    &app,
                    &conv,
                    &users,
                    &role,
                    &patch.notifications_off,
                    &set_muted,
                    &muted_until,
                    &patch.allowlisted,
                    &patch.read_seq,
                    &patch.delivered_seq,
                    &patch.hidden,
                    &set_nickname,
                    &nickname,
                ],
            )
            .await?;
        in_given_order(users, &rows, true)
    }

    async fn user_memberships(&self, app: i64, user: &str, q: &MembershipQuery) -> Result<Vec<Member>> {
        let mut b = Builder::new(&format!(
            "SELECT {MEMBER_COLS} FROM members mb JOIN conversations c ON c.app = mb.app AND c.id = mb.conv WHERE mb.app = "
        ));
        b.int(app).push(" AND mb.user_id = ").text(user);
        if let Some(role) = q.role {
            b.push(" AND mb.role = ").text(role.as_str());
        }
        if let Some(kind) = q.kind {
            b.push(" AND c.kind = ").int(kind.code());
        }
        let (sym, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some((at, conv)) = q.after {
            b.push(&format!(" AND (mb.joined_at, mb.conv) {sym} (")).int(at).push(", ").int(conv).push(")");
        }
        b.push(&format!(" ORDER BY mb.joined_at {dir}, mb.conv {dir}")).limit(q.limit);
        let rows = self.client().await?.rows(b.sql(), &b.args()).await?;
        map_rows(&rows, member_row)
    }

    // ---------------------------------------------------------------- blocklists

    async fn block_users(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        lock_conversation(&tx, app, conv).await?;
        tx.exec("DELETE FROM members WHERE app = $1 AND conv = $2 AND user_id = ANY($3)", &[&app, &conv, &users]).await?;
        let rows = tx
            .rows(
                "INSERT INTO conv_blocks (app, conv, user_id, at) SELECT DISTINCT $1::BIGINT, $2::BIGINT, u, $4::BIGINT FROM unnest($3::TEXT[]) AS u
                 ON CONFLICT DO NOTHING RETURNING user_id",
                &[&app, &conv, &users, &now],
            )
            .await?;
        tx.commit().await.map_err(pg_err)?;
        in_given_order(users, &rows, false)
    }

    async fn unblock_users(&self, app: i64, conv: i64, users: &[String]) -> Result<Vec<String>> {
        let rows = self
            .writer()
            .await?
            .rows("DELETE FROM conv_blocks WHERE app = $1 AND conv = $2 AND user_id = ANY($3) RETURNING user_id", &[&app, &conv, &users])
            .await?;
        in_given_order(users, &rows, false)
    }

    async fn blocked_users(&self, app: i64, conv: i64, among: Option<&[String]>, after: Option<&str>, limit: i64) -> Result<Vec<String>> {
        let mut b = Builder::new("SELECT user_id FROM conv_blocks WHERE app = ");
        b.int(app).push(" AND conv = ").int(conv);
        if let Some(among) = among {
            b.push(" AND user_id = ANY(").texts(among).push(")");
        }
        if let Some(after) = after {
            b.push(" AND user_id > ").text(after);
        }
        b.push(" ORDER BY user_id").limit(limit);
        let rows = self.client().await?.rows(b.sql(), &b.args()).await?;
        map_rows(&rows, |r| get(r, 0))
    }

    // ---------------------------------------------------------------- notices

    async fn add_notices(&self, app: i64, users: &[String], notice: &ConvNotice) -> Result<()> {
        let body = to_json(notice)?;
        self.writer()
            .await?
            .exec(
                "INSERT INTO notices (app, user_id, at, id, body) SELECT DISTINCT $1::BIGINT, u, $3::BIGINT, $4::BIGINT, $5::TEXT
                 FROM unnest($2::TEXT[]) AS u ON CONFLICT DO NOTHING",
                &[&app, &users, &notice.at, &notice.id, &body],
            )
            .await?;
        Ok(())
    }

    async fn notices(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<ConvNotice>> {
        let mut b = Builder::new("SELECT body FROM notices WHERE app = ");
        b.int(app).push(" AND user_id = ").text(user).push(" AND at > ").int(since);
        b.push(" ORDER BY at, id").limit(limit);
        let rows = self.client().await?.rows(b.sql(), &b.args()).await?;
        rows.iter().map(|r| serde_json::from_str(&get::<String>(r, 0)?).map_err(Error::internal)).collect()
    }
}

/// A conversation by its key.
pub(crate) async fn load_conversation(c: &impl Conn, app: i64, id: i64) -> Result<Option<Conversation>> {
    let row = c.row(&format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = $1 AND c.id = $2"), &[&app, &id]).await?;
    row.as_ref().map(conv_row).transpose()
}

/// The conversation created with this unique id.
pub(crate) async fn conversation_by_unique_id(c: &impl Conn, app: i64, unique_id: &str) -> Result<Option<Conversation>> {
    let row = c.row(&format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = $1 AND c.unique_id = $2"), &[&app, &unique_id]).await?;
    row.as_ref().map(conv_row).transpose()
}

/// Lock a conversation's row until the transaction ends (`ConversationNotFound` if there is
/// none); its last sequence number.
async fn lock_conversation(tx: &impl Conn, app: i64, conv: i64) -> Result<i64> {
    let row = tx.row("SELECT last_seq FROM conversations WHERE app = $1 AND id = $2 FOR UPDATE", &[&app, &conv]).await?;
    get(&row.ok_or(Error::ConversationNotFound)?, 0)
}

/// The writes of a new conversation and its first members, refused (`OverQuota`) if a plan quota
/// would be passed. The counts are made under the app's lock, so that conversations created at
/// once on any node are counted one after the other.
async fn insert_new(tx: &impl Conn, conv: &Conversation, members: &[Member], quotas: ConvQuotas) -> Result<()> {
    if quotas.per_app.is_some() || quotas.groups_per_member.is_some() {
        lock(tx, LockClass::Conversations, conv.app).await?;
    }
    if let Some(max) = quotas.per_app {
        check_per_app(tx, conv, max).await?;
    }
    insert_conversation(tx, conv).await?;
    for m in members {
        insert_member(tx, conv.app, m).await?;
    }
    if let Some(max) = quotas.groups_per_member {
        for m in members.iter().filter(|m| m.role != Role::Subscriber) {
            check_groups_of(tx, conv.app, &m.user, max).await?;
        }
    }
    Ok(())
}

/// Before inserting `conv`: refuses (`OverQuota`) if its app holds `max` conversations of its
/// kind already (for a group, the normal conversations that are not unique).
async fn check_per_app(tx: &impl Conn, conv: &Conversation, max: i64) -> Result<()> {
    let group = conv.kind == ConvKind::Normal && !conv.unique;
    let row = tx
        .one(
            "SELECT COUNT(*) FROM conversations WHERE app = $1 AND kind = $2 AND (NOT $3::BOOLEAN OR NOT is_unique)",
            &[&conv.app, &conv.kind.code(), &group],
        )
        .await?;
    if get::<i64>(&row, 0)? >= max {
        let quota = if conv.kind == ConvKind::Chatroom { Quota::Chatrooms } else { Quota::Groups };
        return Err(Error::OverQuota { quota, max });
    }
    Ok(())
}

/// After a write that made `user` a member: refuses (`OverQuota`, and the transaction rolls
/// back) if they are now in more than `max` groups (normal conversations, not unique).
async fn check_groups_of(tx: &impl Conn, app: i64, user: &str, max: i64) -> Result<()> {
    let row = tx
        .one(
            "SELECT COUNT(*) FROM members m JOIN conversations c ON c.app = m.app AND c.id = m.conv
             WHERE m.app = $1 AND m.user_id = $2 AND m.role <> 'subscriber' AND c.kind = $3 AND NOT c.is_unique",
            &[&app, &user, &ConvKind::Normal.code()],
        )
        .await?;
    if get::<i64>(&row, 0)? > max {
        return Err(Error::OverQuota { quota: Quota::GroupsPerUser(user.to_string()), max });
    }
    Ok(())
}

/// A conversation changed at `now`.
async fn touch(tx: &impl Conn, app: i64, conv: i64, now: i64) -> Result<()> {
    tx.exec("UPDATE conversations SET updated_at = $3 WHERE app = $1 AND id = $2", &[&app, &conv, &now]).await?;
    Ok(())
}

/// Members of these roles (None: every role but subscriber), for members aliased `mb`.
fn role_filter(b: &mut Builder, roles: Option<&[Role]>) {
    match roles {
        None => {
            b.push(" AND mb.role <> 'subscriber'");
        }
        Some(roles) => {
            let names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
            b.push(" AND mb.role = ANY(").texts(&names).push(")");
        }
    }
}

/// The user ids a statement returned (`RETURNING user_id`), in the order the caller gave them,
/// as the embedded store, which changes them one by one, returns them. With `repeats`, a user
/// given twice is returned twice (an update applies twice); without, once (a delete or an insert
/// happens once).
fn in_given_order(given: &[String], rows: &[Row], repeats: bool) -> Result<Vec<String>> {
    let mut done: std::collections::HashSet<String> = map_rows(rows, |r| get(r, 0))?.into_iter().collect();
    let mut out = Vec::with_capacity(done.len());
    for u in given {
        let hit = if repeats { done.contains(u) } else { done.remove(u) };
        if hit {
            out.push(u.clone());
        }
    }
    Ok(out)
}
