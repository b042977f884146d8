//! confab's embedded store: SQLite (bundled), WAL, one writer thread with group commit, readers
//! in parallel. See `pool.rs` for the connection discipline and `filter.rs` for queries.
#![forbid(unsafe_code)]

mod apps;
mod blobs;
mod conversations;
mod entries;
mod filter;
mod functions;
mod import;
mod messages;
mod outbox;
mod pool;
mod rows;
mod schema;
mod unread;
mod users;

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use confab_engine::hooks::OutboxItem;
use confab_engine::model::*;
use confab_engine::query::*;
use confab_engine::quotas::Quota;
use confab_engine::store::ConvQuotas;
use confab_engine::store::{AppStore, ConvPatch, ConversationStore, MemberPatch, MessagePatch, MessageStore, NewUser, Store, UserStore};
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

/// The SQLite store: every domain trait of the seam, one module each (`apps.rs`, `users.rs`,
/// `conversations.rs`, `messages.rs`, `import.rs`, `entries.rs`, `outbox.rs`). The bytes of
/// uploaded files are not in it: see [`FileBlobs`].
pub struct SqliteStore {
    pool: Pool,
}

pub use crate::blobs::{FileBlobs, BLOB_DIR};

/// Tuning of the SQLite store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most writes the writer commits in one transaction (1 turns group commit off).
    pub max_group: usize,
    /// Queries (lists, history, counts) that run at once, each on a blocking thread. Lookups by
    /// a key (apps, users, tokens, conversations, members, messages) run on the caller's thread
    /// and take none of these, so that a burst of long queries never holds up a token check or
    /// `/healthz`.
    pub readers: usize,
    /// Acknowledge a write only once it is on disk (`synchronous = FULL`). Group commit makes
    /// this cheap; turn it off only where losing the last writes to a power cut is acceptable.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2).clamp(4, 16);
        StoreOptions { max_group: pool::DEFAULT_MAX_GROUP, readers, durable: true }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database in `dir`, migrating it to the current schema.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        Self::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        let pool = Pool::new(&dir.join(DB_FILE), options.readers, options.max_group, options.durable)?;
        Ok(SqliteStore { pool })
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

    /// Commit what is queued and stop the writer (blocking; `Store::close` is the same, awaited).
    pub fn close(&self) {
        self.pool.close();
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) {
        self.pool.close_async().await;
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
