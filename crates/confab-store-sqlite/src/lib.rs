//! confab's embedded store: SQLite (bundled), WAL, one writer thread with group commit, readers
//! in parallel. See `pool.rs` for the connection discipline and `filter.rs` for queries.
#![forbid(unsafe_code)]

mod entries;
mod filter;
mod functions;
mod import;
mod outbox;
mod pool;
mod rows;
mod schema;
mod unread;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use confab_engine::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Put, PutRule};
use confab_engine::hooks::OutboxItem;
use confab_engine::model::*;
use confab_engine::query::*;
use confab_engine::store::{ConvPatch, HookStat, Imported, MemberPatch, MessagePatch, NewUser, Store};
use confab_engine::{Error, Result};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::filter::Builder;
use crate::pool::{sql_err, Pool};
use crate::rows::*;

pub use crate::pool::OpWork;

/// One-row queries and executes through the connection's statement cache.
trait Cached {
    fn prepare_cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Cached for Connection {
    fn prepare_cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "confab.db";

pub struct SqliteStore {
    pool: Pool,
    /// Where uploaded files' bytes live: `<data dir>/blobs/<app>/<id>`.
    blobs: PathBuf,
}

/// Directory of the blobs inside the data directory.
pub const BLOB_DIR: &str = "blobs";

/// Tuning of the SQLite store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most writes the writer commits in one transaction (1 turns group commit off).
    pub max_group: usize,
    /// Read connections for queries (lists, history, counts).
    pub readers: usize,
    /// Read connections for lookups of a row by its key (apps, users, tokens, conversations,
    /// members, messages): a lane of their own, so that a burst of long queries never holds up
    /// a token check or `/healthz`.
    pub lookup_readers: usize,
    /// Acknowledge a write only once it is on disk (`synchronous = FULL`). Group commit makes
    /// this cheap; turn it off only where losing the last writes to a power cut is acceptable.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2).clamp(4, 16);
        StoreOptions { max_group: pool::DEFAULT_MAX_GROUP, readers, lookup_readers: (readers / 2).max(2), durable: true }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database in `dir`, migrating it to the current schema.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        Self::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        let pool = Pool::new(&dir.join(DB_FILE), options.readers, options.lookup_readers, options.max_group, options.durable)?;
        Ok(SqliteStore { pool, blobs: dir.join(BLOB_DIR) })
    }

    /// Count the work of every store operation from now on (`false`: stop). Counting costs CPU
    /// (SQLite calls back on every virtual machine step): it is for tests and measurements.
    pub fn count_work(&self, on: bool) {
        self.pool.count_work(on);
    }

    /// The work counted so far, by operation (the `Store` method's name); with `reset`, the
    /// counts start again from zero.
    pub fn work(&self, reset: bool) -> BTreeMap<&'static str, OpWork> {
        self.pool.work(reset)
    }

    /// Commit what is queued and stop the writer.
    pub fn close(&self) {
        self.pool.close();
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn conv_exists(conn: &Connection, app: i64, conv: i64) -> Result<()> {
    conn.prepare_cached_row("SELECT 1 FROM conversations WHERE app = ?1 AND id = ?2", params![app, conv], |_| Ok(()))
        .optional()
        .map_err(sql_err)?
        .ok_or(Error::ConversationNotFound)
}

pub(crate) fn load_conversation(conn: &Connection, app: i64, id: i64) -> Result<Option<Conversation>> {
    conn.prepare_cached_row(&format!("SELECT {CONV_COLS} FROM conversations c WHERE c.app = ?1 AND c.id = ?2"), params![app, id], conv_row)
        .optional()
        .map_err(sql_err)
}

fn load_message(conn: &Connection, app: i64, id: i64) -> Result<Option<Message>> {
    let msg = conn
        .query_row(&format!("SELECT {MSG_COLS} FROM messages m WHERE m.app = ?1 AND m.id = ?2"), params![app, id], msg_row)
        .optional()
        .map_err(sql_err)?;
    match msg {
        Some(m) => Ok(Some(with_audience(conn, m)?)),
        None => Ok(None),
    }
}

/// Fill in the recipients of a restricted message.
pub(crate) fn with_audience(conn: &Connection, mut m: Message) -> Result<Message> {
    if let Audience::Only(users) = &mut m.audience {
        let mut st = conn
            .prepare_cached("SELECT user FROM message_users WHERE app = ?1 AND msg = ?2 AND visible = 1 ORDER BY user")
            .map_err(sql_err)?;
        *users = st.query_map(params![m.app, m.id], |r| r.get(0)).map_err(sql_err)?.collect::<rusqlite::Result<_>>().map_err(sql_err)?;
    }
    Ok(m)
}

fn query_all<T>(conn: &Connection, b: &Builder, f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(&b.sql).map_err(sql_err)?;
    let rows = st.query_map(params_from_iter(b.params.iter()), f).map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(sql_err)
}

/// `(visible to user)` for messages aliased `m`.
fn visible_to(b: &mut Builder, user: &str) {
    b.push(" AND ((m.restricted = 0 AND NOT EXISTS (SELECT 1 FROM message_users mu WHERE mu.app = m.app AND mu.msg = m.id AND mu.visible = 0 AND mu.user = ")
        .bind(Sql::Text(user.to_string()))
        .push(")) OR (m.restricted = 1 AND EXISTS (SELECT 1 FROM message_users mu WHERE mu.app = m.app AND mu.msg = m.id AND mu.visible = 1 AND mu.user = ")
        .bind(Sql::Text(user.to_string()))
        .push(")))");
}

#[async_trait]
impl Store for SqliteStore {
    // ---------------------------------------------------------------- apps

    async fn create_app(&self, app: &App) -> Result<()> {
        let app = app.clone();
        self.pool
            .write("create_app", move |c| {
                let keys = serde_json::to_string(&app.keys).map_err(Error::internal)?;
                let limits = serde_json::to_string(&app.limit_overrides).map_err(Error::internal)?;
                c.cached_execute(
                    "INSERT INTO apps (id, name, plan, created_at, lc_app_id, em_org, em_app, mx_app_id, keys, limits)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        app.id,
                        app.name,
                        app.plan.as_str(),
                        app.created_at,
                        app.keys.leancloud.app_id,
                        app.keys.easemob.org_name,
                        app.keys.easemob.app_name,
                        app.keys.maxim.app_id,
                        keys,
                        limits
                    ],
                )
                .map_err(|e| {
                    if is_constraint(&e) {
                        Error::invalid("an app with this name or these keys exists already")
                    } else {
                        sql_err(e)
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn set_app_limits(&self, app: i64, overrides: &Attrs) -> Result<()> {
        let limits = serde_json::to_string(overrides).map_err(Error::internal)?;
        self.pool
            .write("set_app_limits", move |c| {
                let n = c.cached_execute("UPDATE apps SET limits = ?1 WHERE id = ?2", params![limits, app]).map_err(sql_err)?;
                if n == 0 {
                    return Err(Error::AppNotFound);
                }
                Ok(())
            })
            .await
    }

    async fn find_app(&self, lookup: &AppLookup) -> Result<Option<App>> {
        let (cond, args): (&str, Vec<String>) = match lookup {
            AppLookup::Id(id) => ("id = ?1", vec![id.to_string()]),
            AppLookup::LeanCloud(id) => ("lc_app_id = ?1", vec![id.clone()]),
            AppLookup::Easemob { org, app } => ("em_org = ?1 AND em_app = ?2", vec![org.clone(), app.clone()]),
            AppLookup::Maxim(id) => ("mx_app_id = ?1", vec![id.clone()]),
            AppLookup::Name(n) => ("name = ?1", vec![n.clone()]),
        };
        let sql = format!("SELECT {APP_COLS} FROM apps WHERE {cond}");
        self.pool
            .lookup("find_app", move |c| c.prepare_cached_row(&sql, params_from_iter(args.iter()), app_row).optional().map_err(sql_err))
            .await
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        self.pool
            .read("list_apps", |c| {
                let mut b = Builder::default();
                b.push(&format!("SELECT {APP_COLS} FROM apps ORDER BY created_at, id"));
                query_all(c, &b, app_row)
            })
            .await
    }

    // ---------------------------------------------------------------- users and tokens

    async fn ensure_users(&self, app: i64, users: &[NewUser], now: i64) -> Result<()> {
        let users = users.to_vec();
        self.pool
            .write("ensure_users", move |c| {
                let mut st = c
                    .prepare_cached(
                        "INSERT INTO users (app, id, num, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                         ON CONFLICT (app, id) DO NOTHING",
                    )
                    .map_err(sql_err)?;
                for u in &users {
                    st.execute(params![app, u.id, u.num, now]).map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        self.pool
            .write("create_user", move |c| {
                let attrs = serde_json::to_string(&u.attributes).map_err(Error::internal)?;
                c.cached_execute(
                    "INSERT INTO users (app, id, num, username, password_hash, nickname, attributes, disabled, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![u.app, u.id, u.num, u.username, u.password_hash, u.nickname, attrs, u.disabled, u.created_at, u.updated_at],
                )
                .map_err(|e| {
                    if is_constraint(&e) {
                        Error::UserExists(u.username.clone().unwrap_or(u.id.clone()))
                    } else {
                        sql_err(e)
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn get_user(&self, app: i64, id: &str) -> Result<Option<User>> {
        let id = id.to_string();
        self.pool
            .lookup("get_user", move |c| {
                c.prepare_cached_row(&format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND id = ?2"), params![app, id], user_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn get_user_by_num(&self, app: i64, num: i64) -> Result<Option<User>> {
        self.pool
            .lookup("get_user_by_num", move |c| {
                c.prepare_cached_row(&format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND num = ?2"), params![app, num], user_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn get_users(&self, app: i64, ids: &[String]) -> Result<Vec<User>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {USER_COLS} FROM users WHERE app = ")).bind(Sql::Integer(app));
        b.push(" AND id IN ").list(ids.iter().map(|x| Sql::Text(x.clone())));
        self.pool.read("get_users", move |c| query_all(c, &b, user_row)).await
    }

    async fn get_user_by_username(&self, app: i64, username: &str) -> Result<Option<User>> {
        let name = username.to_string();
        self.pool
            .lookup("get_user_by_username", move |c| {
                c.prepare_cached_row(
                    &format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND username = ?2"),
                    params![app, name],
                    user_row,
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn record_login(&self, app: i64, user: &str, at: i64) -> Result<()> {
        let user = user.to_string();
        self.pool
            .write("record_login", move |c| {
                c.cached_execute("UPDATE users SET last_login_at = ?3 WHERE app = ?1 AND id = ?2", params![app, user, at])
                    .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn count_users(&self, app: i64) -> Result<i64> {
        self.pool
            .read("count_users", move |c| {
                c.prepare_cached_row("SELECT COUNT(*) FROM users WHERE app = ?1", params![app], |r| r.get(0)).map_err(sql_err)
            })
            .await
    }

    async fn list_users(&self, app: i64, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {USER_COLS} FROM users WHERE app = ")).bind(Sql::Integer(app));
        if let Some(n) = after_num {
            b.push(" AND num > ").bind(Sql::Integer(n));
        }
        b.push(" ORDER BY num LIMIT ").bind(Sql::Integer(limit));
        self.pool.read("list_users", move |c| query_all(c, &b, user_row)).await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        self.pool
            .write("update_user", move |c| {
                let attrs = to_json(&u.attributes)?;
                let n = c
                    .cached_execute(
                        "UPDATE users SET username = ?3, password_hash = ?4, nickname = ?5, attributes = ?6, disabled = ?7, updated_at = ?8
                         WHERE app = ?1 AND id = ?2",
                        params![u.app, u.id, u.username, u.password_hash, u.nickname, attrs, u.disabled, u.updated_at],
                    )
                    .map_err(|e| if is_constraint(&e) { Error::UserExists(u.username.clone().unwrap_or_default()) } else { sql_err(e) })?;
                if n == 0 {
                    return Err(Error::UserNotFound(u.id.clone()));
                }
                Ok(())
            })
            .await
    }

    async fn delete_user(&self, app: i64, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.pool
            .write("delete_user", move |c| {
                for sql in ["DELETE FROM tokens WHERE app = ?1 AND user = ?2", "DELETE FROM members WHERE app = ?1 AND user = ?2"] {
                    c.cached_execute(sql, params![app, id]).map_err(sql_err)?;
                }
                Ok(c.cached_execute("DELETE FROM users WHERE app = ?1 AND id = ?2", params![app, id]).map_err(sql_err)? > 0)
            })
            .await
    }

    async fn count_logins_since(&self, app: i64, since: i64) -> Result<i64> {
        self.pool
            .read("count_logins_since", move |c| {
                c.prepare_cached_row("SELECT COUNT(*) FROM users WHERE app = ?1 AND last_login_at >= ?2", params![app, since], |r| r.get(0))
                    .map_err(sql_err)
            })
            .await
    }

    async fn put_token(&self, token: &Token) -> Result<()> {
        let t = token.clone();
        self.pool
            .write("put_token", move |c| {
                c.cached_execute(
                    "INSERT OR REPLACE INTO tokens (token, app, user, kind, created_at, expires_at, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![t.token, t.app, t.user, t.kind.as_str(), t.created_at, t.expires_at, t.device],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn get_token(&self, token: &str) -> Result<Option<Token>> {
        let token = token.to_string();
        self.pool
            .lookup("get_token", move |c| {
                c.prepare_cached_row(
                    "SELECT token, app, user, kind, created_at, expires_at, device FROM tokens WHERE token = ?1",
                    params![token],
                    token_row,
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn delete_token(&self, token: &str) -> Result<()> {
        let token = token.to_string();
        self.pool
            .write("delete_token", move |c| {
                c.cached_execute("DELETE FROM tokens WHERE token = ?1", params![token]).map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn delete_user_tokens(&self, app: i64, user: &str, kind: TokenKind) -> Result<u64> {
        let user = user.to_string();
        self.pool
            .write("delete_user_tokens", move |c| {
                let n = c
                    .execute("DELETE FROM tokens WHERE app = ?1 AND user = ?2 AND kind = ?3", params![app, user, kind.as_str()])
                    .map_err(sql_err)?;
                Ok(n as u64)
            })
            .await
    }

    // ---------------------------------------------------------------- conversations

    async fn create_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
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
                insert_conversation(c, &conv)?;
                for m in &members {
                    insert_member(c, conv.app, m)?;
                }
                Ok((conv, true))
            })
            .await
    }

    async fn get_conversation(&self, app: i64, id: i64) -> Result<Option<Conversation>> {
        self.pool.lookup("get_conversation", move |c| load_conversation(c, app, id)).await
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

    async fn add_members(&self, app: i64, conv: i64, members: &[Member], max: Option<i64>, now: i64) -> Result<Vec<String>> {
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

    // ---------------------------------------------------------------- messages

    async fn insert_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> Result<Message> {
        let mut m = msg.clone();
        let outbox = outbox.to_vec();
        self.pool
            .write("insert_message", move |c| {
                let (last_seq, last_ts): (i64, i64) = c
                    .query_row("SELECT last_seq, last_ts FROM conversations WHERE app = ?1 AND id = ?2", params![m.app, m.conv], |r| {
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
            .await
    }

    async fn conversation_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Conversation>> {
        let f = foreign_id.to_string();
        self.pool.lookup("conversation_by_foreign", move |c| import::conversation_by_foreign(c, app, &f)).await
    }

    async fn message_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Message>> {
        let f = foreign_id.to_string();
        self.pool.lookup("message_by_foreign", move |c| import::message_by_foreign(c, app, &f)).await
    }

    async fn conversation_foreign_ids(&self, app: i64, convs: &[i64]) -> Result<Vec<(i64, String)>> {
        let mut b = Builder::default();
        b.push("SELECT id, foreign_id FROM conversations WHERE app = ").bind(Sql::Integer(app));
        b.push(" AND foreign_id IS NOT NULL AND id IN ").list(convs.iter().map(|c| Sql::Integer(*c)));
        self.pool.read("conversation_foreign_ids", move |c| query_all(c, &b, |r| Ok((r.get(0)?, r.get(1)?)))).await
    }

    async fn import_messages(&self, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
        let msgs = msgs.to_vec();
        self.pool.write("import_messages", move |c| import::import_messages(c, app, conv, &msgs)).await
    }

    async fn import_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
        let (conv, members) = (conv.clone(), members.to_vec());
        self.pool.write("import_conversation", move |c| import::import_conversation(c, &conv, &members)).await
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

    // ---------------------------------------------------------------- keyed collections and blobs

    async fn put_entries(&self, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
        let entries = entries.to_vec();
        self.pool.write("put_entries", move |c| entries::put(c, app, &entries, rule, now)).await
    }

    async fn entries(&self, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
        let q = q.clone();
        self.pool.read("entries", move |c| entries::select(c, app, &q, now)).await
    }

    async fn delete_entries(&self, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
        let f = f.clone();
        self.pool.write("delete_entries", move |c| entries::delete(c, app, &f, now)).await
    }

    async fn entry_stats(&self, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
        let f = f.clone();
        self.pool.read("entry_stats", move |c| entries::stats(c, app, &f, now)).await
    }

    async fn outbox_add(&self, items: &[OutboxItem]) -> Result<()> {
        let items = items.to_vec();
        self.pool.write("outbox_add", move |c| outbox::add(c, &items)).await
    }

    async fn outbox_claim(&self, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
        let skip = skip.to_vec();
        self.pool.write("outbox_claim", move |c| outbox::claim(c, now, lease_until, per_app, limit, &skip)).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.pool.write("outbox_done", move |c| outbox::done(c, &ids)).await
    }

    async fn outbox_retry(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
        let error = error.to_string();
        self.pool.write("outbox_retry", move |c| outbox::retry(c, id, attempts, next_at, &error, failed)).await
    }

    async fn outbox_list(&self, app: i64, failed: bool, limit: usize) -> Result<Vec<OutboxItem>> {
        self.pool.read("outbox_list", move |c| outbox::list(c, app, failed, limit)).await
    }

    async fn outbox_counts(&self, app: i64) -> Result<(i64, i64)> {
        self.pool.read("outbox_counts", move |c| outbox::counts(c, app)).await
    }

    async fn outbox_requeue_failed(&self, app: i64, now: i64) -> Result<u64> {
        self.pool.write("outbox_requeue_failed", move |c| outbox::requeue_failed(c, app, now)).await
    }

    async fn hook_stats_add(&self, stats: &[HookStat]) -> Result<()> {
        let stats = stats.to_vec();
        self.pool.write("hook_stats_add", move |c| outbox::stats_add(c, &stats)).await
    }

    async fn hook_stats(&self, app: i64) -> Result<Vec<HookStat>> {
        self.pool.read("hook_stats", move |c| outbox::stats(c, app)).await
    }

    async fn put_blob(&self, app: i64, id: &str, bytes: Vec<u8>) -> Result<()> {
        entries::put_blob(self.blobs.clone(), app, id.to_string(), bytes).await
    }

    async fn get_blob(&self, app: i64, id: &str) -> Result<Option<Vec<u8>>> {
        entries::get_blob(self.blobs.clone(), app, id.to_string()).await
    }

    async fn delete_blob(&self, app: i64, id: &str) -> Result<bool> {
        entries::delete_blob(self.blobs.clone(), app, id.to_string()).await
    }
}

fn role_filter(b: &mut Builder, roles: Option<&[Role]>) {
    match roles {
        None => {
            b.push(" AND mb.role <> 'subscriber'");
        }
        Some(roles) => {
            let list: Vec<String> = roles.iter().map(|r| format!("'{}'", r.as_str())).collect();
            b.push(&format!(" AND mb.role IN ({})", if list.is_empty() { "NULL".into() } else { list.join(", ") }));
        }
    }
}

fn touch(c: &Connection, app: i64, conv: i64, now: i64) -> Result<()> {
    c.cached_execute("UPDATE conversations SET updated_at = ?3 WHERE app = ?1 AND id = ?2", params![app, conv, now]).map_err(sql_err)?;
    Ok(())
}

fn get_member(c: &Connection, app: i64, conv: i64, user: &str) -> Result<Option<Member>> {
    c.prepare_cached_row(
        &format!("SELECT {MEMBER_COLS} FROM members mb WHERE mb.app = ?1 AND mb.conv = ?2 AND mb.user = ?3"),
        params![app, conv, user],
        member_row,
    )
    .optional()
    .map_err(sql_err)
}
