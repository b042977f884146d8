//! Conversations, members, blocklists and notices: `ConversationStore`.

use super::*;

#[async_trait]
impl ConversationStore for SqliteStore {
    // ---------------------------------------------------------------- conversations

    async fn create_conversation_within(
        &self,
        conv: &Conversation,
        members: &[Member],
        quotas: ConvQuotas,
    ) -> Result<(Conversation, bool)> {
        let conv = conv.clone();
        let members = members.to_vec();
        self.pool
            .write("create_conversation", move |c| {
                if let Some(uid) = &conv.unique_id {
                    let existing: Option<i64> = c
                        .query_row("SELECT id FROM conversations WHERE app = ?1 AND unique_id = ?2", params![conv.app, uid], |r| r.get(0))
                        .optional()
                        .map_err(sql_err)?;
                    if let Some(id) = existing {
                        return Ok((load_conversation(c, conv.app, id)?.ok_or(Error::ConversationNotFound)?, false));
                    }
                }
                // the writer is the only one: what is counted here is what the insert adds to
                if let Some(max) = quotas.per_app {
                    let group = conv.kind == ConvKind::Normal && !conv.unique;
                    let n: i64 = c
                        .prepare_cached_row(
                            "SELECT COUNT(*) FROM conversations WHERE app = ?1 AND kind = ?2 AND (?3 = 0 OR is_unique = 0)",
                            params![conv.app, conv.kind.code(), group],
                            |r| r.get(0),
                        )
                        .map_err(sql_err)?;
                    if n >= max {
                        let quota = if conv.kind == ConvKind::Chatroom { Quota::Chatrooms } else { Quota::Groups };
                        return Err(Error::OverQuota { quota, max });
                    }
                }
                insert_conversation(c, &conv)?;
                for m in &members {
                    insert_member(c, conv.app, m)?;
                }
                if let Some(max) = quotas.groups_per_member {
                    for m in members.iter().filter(|m| m.role != Role::Subscriber) {
                        check_groups_of(c, conv.app, &m.user, max)?;
                    }
                }
                Ok((conv, true))
            })
            .await
    }

    async fn get_conversation(&self, app: i64, id: i64) -> Result<Option<Conversation>> {
        self.pool.lookup("get_conversation", move |c| load_conversation(c, app, id)).await
    }

    async fn conversation_by_unique(&self, app: i64, unique_id: &str) -> Result<Option<Conversation>> {
        let u = unique_id.to_string();
        self.pool.lookup("conversation_by_unique", move |c| crate::import::conversation_where(c, app, "unique_id", &u)).await
    }

    async fn query_conversations(&self, app: i64, q: &ConvQuery) -> Result<(Vec<Conversation>, Option<i64>)> {
        let mut wh = Builder::default();
        wh.push(" WHERE c.app = ").bind(Sql::Integer(app));
        if let Some(kinds) = &q.kinds {
            let list: Vec<String> = kinds.iter().map(|k| k.code().to_string()).collect();
            wh.push(&format!(" AND c.kind IN ({})", if list.is_empty() { "NULL".into() } else { list.join(", ") }));
        }
        wh.push(" AND ");
        filter::compile(&q.filter, &mut wh)?;
        let mut order = Vec::new();
        for (f, desc) in &q.order {
            order.push(format!("{} {}", filter::order_expr(f)?, if *desc { "DESC" } else { "ASC" }));
        }
        order.push("c.id ASC".into());
        let mut sel = Builder::default();
        sel.push(&format!("SELECT {CONV_COLS} FROM conversations c"));
        sel.sql.push_str(&wh.sql);
        sel.params.extend(wh.params.iter().cloned());
        sel.push(&format!(" ORDER BY {} LIMIT ", order.join(", "))).bind(Sql::Integer(q.limit)).push(" OFFSET ").bind(Sql::Integer(q.skip));
        let count = q.count.then(|| {
            let mut cnt = Builder::default();
            cnt.push("SELECT COUNT(*) FROM conversations c");
            cnt.sql.push_str(&wh.sql);
            cnt.params = wh.params.clone();
            cnt
        });
        let none_wanted = q.limit == 0;
        self.pool
            .read("query_conversations", move |c| {
                let rows = if none_wanted { Vec::new() } else { query_all(c, &sel, conv_row)? };
                let total = match count {
                    Some(cnt) => Some(query_all(c, &cnt, |r| r.get::<_, i64>(0))?.into_iter().next().unwrap_or(0)),
                    None => None,
                };
                Ok((rows, total))
            })
            .await
    }

    async fn update_conversation(&self, app: i64, id: i64, patch: &ConvPatch, now: i64) -> Result<Conversation> {
        let patch = patch.clone();
        self.pool
            .write("update_conversation", move |c| {
                let mut conv = load_conversation(c, app, id)?.ok_or(Error::ConversationNotFound)?;
                patch.apply(&mut conv, now);
                c.cached_execute(
                    "UPDATE conversations SET name = ?3, creator = ?4, attrs = ?5, settings = ?6, updated_at = ?7 WHERE app = ?1 AND id = ?2",
                    params![app, id, conv.name, conv.creator, to_json(&conv.attrs)?, to_json(&conv.settings)?, conv.updated_at],
                )
                .map_err(sql_err)?;
                Ok(conv)
            })
            .await
    }

    async fn delete_conversation(&self, app: i64, id: i64) -> Result<bool> {
        self.pool
            .write("delete_conversation", move |c| {
                c.cached_execute(
                    "DELETE FROM message_users WHERE app = ?1 AND msg IN (SELECT id FROM messages WHERE app = ?1 AND conv = ?2)",
                    params![app, id],
                )
                .map_err(sql_err)?;
                for table in ["messages", "members", "broadcasts", "conv_blocks"] {
                    c.cached_execute(&format!("DELETE FROM {table} WHERE app = ?1 AND conv = ?2"), params![app, id]).map_err(sql_err)?;
                }
                Ok(c.cached_execute("DELETE FROM conversations WHERE app = ?1 AND id = ?2", params![app, id]).map_err(sql_err)? > 0)
            })
            .await
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
        let members = members.to_vec();
        self.pool
            .write("add_members", move |c| {
                let last_seq: i64 = c
                    .query_row("SELECT last_seq FROM conversations WHERE app = ?1 AND id = ?2", params![app, conv], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)?
                    .ok_or(Error::ConversationNotFound)?;
                let mut added = Vec::new();
                for m in &members {
                    // a newcomer has nothing unread: what was said before they joined is history
                    let m = Member { read_seq: m.read_seq.max(last_seq), delivered_seq: m.delivered_seq.max(last_seq), ..m.clone() };
                    if insert_member(c, app, &m)? {
                        added.push(m.user.clone());
                    }
                }
                if let Some(max) = max {
                    let n: i64 = c
                        .query_row(
                            "SELECT COUNT(*) FROM members WHERE app = ?1 AND conv = ?2 AND role <> 'subscriber'",
                            params![app, conv],
                            |r| r.get(0),
                        )
                        .map_err(sql_err)?;
                    if n > max {
                        return Err(Error::ConversationFull { max });
                    }
                }
                if let Some(max) = groups_per_member {
                    for u in &added {
                        check_groups_of(c, app, u, max)?;
                    }
                }
                if !added.is_empty() {
                    touch(c, app, conv, now)?;
                }
                Ok(added)
            })
            .await
    }

    async fn remove_members(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        let users = users.to_vec();
        self.pool
            .write("remove_members", move |c| {
                conv_exists(c, app, conv)?;
                let mut removed = Vec::new();
                for u in users {
                    if c.cached_execute("DELETE FROM members WHERE app = ?1 AND conv = ?2 AND user = ?3", params![app, conv, u])
                        .map_err(sql_err)?
                        > 0
                    {
                        removed.push(u);
                    }
                }
                if !removed.is_empty() {
                    touch(c, app, conv, now)?;
                }
                Ok(removed)
            })
            .await
    }

    async fn get_member(&self, app: i64, conv: i64, user: &str) -> Result<Option<Member>> {
        let user = user.to_string();
        self.pool.lookup("get_member", move |c| get_member(c, app, conv, &user)).await
    }

    async fn list_members(&self, app: i64, conv: i64, q: &MemberQuery) -> Result<Vec<Member>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = ")).bind(Sql::Integer(app));
        b.push(" AND mb.conv = ").bind(Sql::Integer(conv));
        role_filter(&mut b, q.roles.as_deref());
        if let Some(users) = &q.users {
            b.push(" AND mb.user IN ").list(users.iter().map(|x| Sql::Text(x.clone())));
        }
        if q.notifications_off {
            b.push(" AND mb.notifications_off = 1");
        }
        if let Some(t) = q.muted_at {
            b.push(" AND mb.muted_until > ").bind(Sql::Integer(t));
        }
        if let Some(after) = &q.after {
            b.push(" AND mb.user > ").bind(Sql::Text(after.clone()));
        }
        b.push(" ORDER BY mb.user");
        if let Some(limit) = q.limit {
            b.push(" LIMIT ").bind(Sql::Integer(limit));
        }
        self.pool.read("list_members", move |c| query_all(c, &b, member_row)).await
    }

    async fn member_lists(&self, app: i64, convs: &[i64]) -> Result<Vec<Member>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = ")).bind(Sql::Integer(app));
        b.push(" AND mb.role <> 'subscriber' AND mb.conv IN ").list(convs.iter().map(|c| Sql::Integer(*c)));
        b.push(" ORDER BY mb.conv, mb.joined_at, mb.user");
        self.pool.read("member_lists", move |c| query_all(c, &b, member_row)).await
    }

    async fn member_ids(&self, app: i64, conv: i64) -> Result<Vec<String>> {
        self.pool
            .lookup("member_ids", move |c| {
                let mut st = c
                    .prepare_cached("SELECT user FROM members WHERE app = ?1 AND conv = ?2 AND role <> 'subscriber' ORDER BY user")
                    .map_err(sql_err)?;
                let ids = st.query_map(params![app, conv], |r| r.get::<_, String>(0)).map_err(sql_err)?;
                ids.collect::<rusqlite::Result<Vec<String>>>().map_err(sql_err)
            })
            .await
    }

    async fn count_members(&self, app: i64, conv: i64, roles: Option<&[Role]>) -> Result<i64> {
        let mut b = Builder::default();
        b.push("SELECT COUNT(*) FROM members mb WHERE mb.app = ").bind(Sql::Integer(app));
        b.push(" AND mb.conv = ").bind(Sql::Integer(conv));
        role_filter(&mut b, roles);
        self.pool.read("count_members", move |c| Ok(query_all(c, &b, |r| r.get::<_, i64>(0))?.into_iter().next().unwrap_or(0))).await
    }

    async fn update_members(&self, app: i64, conv: i64, users: &[String], patch: &MemberPatch) -> Result<Vec<String>> {
        let users = users.to_vec();
        let patch = patch.clone();
        self.pool
            .write("update_members", move |c| {
                let mut updated = Vec::new();
                for u in users {
                    let Some(mut m) = get_member(c, app, conv, &u)? else { continue };
                    patch.apply(&mut m);
                    c.cached_execute(
                        "UPDATE members SET role = ?4, notifications_off = ?5, muted_until = ?6, allowlisted = ?7, read_seq = ?8,
                         delivered_seq = ?9, hidden = ?10, nickname = ?11 WHERE app = ?1 AND conv = ?2 AND user = ?3",
                        params![
                            app,
                            conv,
                            u,
                            m.role.as_str(),
                            m.notifications_off,
                            m.muted_until,
                            m.allowlisted,
                            m.read_seq,
                            m.delivered_seq,
                            m.hidden,
                            m.nickname
                        ],
                    )
                    .map_err(sql_err)?;
                    updated.push(u);
                }
                Ok(updated)
            })
            .await
    }

    async fn user_memberships(&self, app: i64, user: &str, q: &MembershipQuery) -> Result<Vec<Member>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {MEMBER_COLS} FROM members mb JOIN conversations c ON c.app = mb.app AND c.id = mb.conv WHERE mb.app = "))
            .bind(Sql::Integer(app));
        b.push(" AND mb.user = ").bind(Sql::Text(user.to_string()));
        if let Some(role) = q.role {
            b.push(" AND mb.role = ").bind(Sql::Text(role.as_str().into()));
        }
        if let Some(kind) = q.kind {
            b.push(" AND c.kind = ").bind(Sql::Integer(kind.code()));
        }
        let (sym, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
        if let Some((at, conv)) = q.after {
            b.push(&format!(" AND (mb.joined_at, mb.conv) {sym} (")).bind(Sql::Integer(at)).push(", ").bind(Sql::Integer(conv)).push(")");
        }
        b.push(&format!(" ORDER BY mb.joined_at {dir}, mb.conv {dir} LIMIT ")).bind(Sql::Integer(q.limit));
        self.pool.read("user_memberships", move |c| query_all(c, &b, member_row)).await
    }

    // ---------------------------------------------------------------- notices

    async fn add_notices(&self, app: i64, users: &[String], notice: &ConvNotice) -> Result<()> {
        let users = users.to_vec();
        let body = to_json(notice)?;
        let (at, id) = (notice.at, notice.id);
        self.pool
            .write("add_notices", move |c| {
                let mut st = c
                    .prepare_cached("INSERT INTO notices (app, user, at, id, body) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING")
                    .map_err(sql_err)?;
                for u in &users {
                    st.execute(params![app, u, at, id, body]).map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn notices(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<ConvNotice>> {
        let user = user.to_string();
        self.pool
            .read("notices", move |c| {
                let mut b = Builder::default();
                b.push("SELECT body FROM notices WHERE app = ").bind(Sql::Integer(app));
                b.push(" AND user = ").bind(Sql::Text(user)).push(" AND at > ").bind(Sql::Integer(since));
                b.push(" ORDER BY at, id LIMIT ").bind(Sql::Integer(limit));
                let bodies = query_all(c, &b, |r| r.get::<_, String>(0))?;
                bodies.iter().map(|s| serde_json::from_str(s).map_err(Error::internal)).collect()
            })
            .await
    }

    // ---------------------------------------------------------------- blocklists

    async fn block_users(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        let users = users.to_vec();
        self.pool
            .write("block_users", move |c| {
                conv_exists(c, app, conv)?;
                let mut blocked = Vec::new();
                for u in users {
                    c.cached_execute("DELETE FROM members WHERE app = ?1 AND conv = ?2 AND user = ?3", params![app, conv, u])
                        .map_err(sql_err)?;
                    let n = c
                        .execute(
                            "INSERT INTO conv_blocks (app, conv, user, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                            params![app, conv, u, now],
                        )
                        .map_err(sql_err)?;
                    if n > 0 {
                        blocked.push(u);
                    }
                }
                Ok(blocked)
            })
            .await
    }

    async fn unblock_users(&self, app: i64, conv: i64, users: &[String]) -> Result<Vec<String>> {
        let users = users.to_vec();
        self.pool
            .write("unblock_users", move |c| {
                let mut done = Vec::new();
                for u in users {
                    if c.cached_execute("DELETE FROM conv_blocks WHERE app = ?1 AND conv = ?2 AND user = ?3", params![app, conv, u])
                        .map_err(sql_err)?
                        > 0
                    {
                        done.push(u);
                    }
                }
                Ok(done)
            })
            .await
    }

    async fn blocked_users(&self, app: i64, conv: i64, among: Option<&[String]>, after: Option<&str>, limit: i64) -> Result<Vec<String>> {
        let mut b = Builder::default();
        b.push("SELECT user FROM conv_blocks WHERE app = ").bind(Sql::Integer(app));
        b.push(" AND conv = ").bind(Sql::Integer(conv));
        if let Some(among) = among {
            b.push(" AND user IN ").list(among.iter().map(|x| Sql::Text(x.clone())));
        }
        if let Some(after) = after {
            b.push(" AND user > ").bind(Sql::Text(after.to_string()));
        }
        b.push(" ORDER BY user LIMIT ").bind(Sql::Integer(limit));
        self.pool.read("blocked_users", move |c| query_all(c, &b, |r| r.get::<_, String>(0))).await
    }
}

/// After a write that made `user` a member: refuses (`OverQuota`, and the write's savepoint
/// rolls back) if they are now in more than `max` groups (normal conversations, not unique).
fn check_groups_of(c: &Connection, app: i64, user: &str, max: i64) -> Result<()> {
    let n: i64 = c
        .prepare_cached_row(
            "SELECT COUNT(*) FROM members m CROSS JOIN conversations c ON c.app = m.app AND c.id = m.conv
             WHERE m.app = ?1 AND m.user = ?2 AND m.role <> 'subscriber' AND c.kind = ?3 AND c.is_unique = 0",
            params![app, user, ConvKind::Normal.code()],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    if n > max {
        return Err(Error::OverQuota { quota: Quota::GroupsPerUser(user.to_string()), max });
    }
    Ok(())
}
