//! Schema and migrations. Each migration runs once, in order, recorded in `user_version`.

use confab_engine::Result;
use rusqlite::Connection;

use crate::pool::sql_err;

const MIGRATIONS: &[&str] = &[
    // 1: apps, users, tokens, conversations, members, messages, broadcasts
    r#"
    CREATE TABLE apps (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        plan TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        lc_app_id TEXT NOT NULL UNIQUE,
        em_org TEXT NOT NULL,
        em_app TEXT NOT NULL,
        mx_app_id TEXT NOT NULL UNIQUE,
        keys TEXT NOT NULL,
        limits TEXT NOT NULL DEFAULT '{}',
        UNIQUE (em_org, em_app)
    );
    CREATE TABLE users (
        app INTEGER NOT NULL,
        id TEXT NOT NULL,
        num INTEGER NOT NULL,
        username TEXT,
        password_hash TEXT,
        nickname TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_login_at INTEGER,
        PRIMARY KEY (app, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX users_num ON users (app, num);
    CREATE UNIQUE INDEX users_username ON users (app, username) WHERE username IS NOT NULL;
    CREATE INDEX users_login ON users (app, last_login_at) WHERE last_login_at IS NOT NULL;
    CREATE TABLE tokens (
        token TEXT PRIMARY KEY,
        app INTEGER NOT NULL,
        user TEXT,
        kind TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        device TEXT
    ) WITHOUT ROWID;
    CREATE TABLE conversations (
        app INTEGER NOT NULL,
        id INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        name TEXT,
        creator TEXT,
        is_unique INTEGER NOT NULL DEFAULT 0,
        unique_id TEXT,
        attrs TEXT NOT NULL DEFAULT '{}',
        settings TEXT NOT NULL DEFAULT '{}',
        parent_conv INTEGER,
        parent_msg INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_message_at INTEGER,
        last_seq INTEGER NOT NULL DEFAULT 0,
        last_ts INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER,
        PRIMARY KEY (app, id)
    );
    CREATE UNIQUE INDEX conversations_unique ON conversations (app, unique_id) WHERE unique_id IS NOT NULL;
    CREATE INDEX conversations_kind ON conversations (app, kind, id);
    CREATE TABLE members (
        app INTEGER NOT NULL,
        conv INTEGER NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        joined_at INTEGER NOT NULL,
        notifications_off INTEGER NOT NULL DEFAULT 0,
        muted_until INTEGER,
        allowlisted INTEGER NOT NULL DEFAULT 0,
        read_seq INTEGER NOT NULL DEFAULT 0,
        delivered_seq INTEGER NOT NULL DEFAULT 0,
        hidden INTEGER NOT NULL DEFAULT 0,
        nickname TEXT,
        PRIMARY KEY (app, conv, user)
    ) WITHOUT ROWID;
    CREATE INDEX members_user ON members (app, user, joined_at, conv);
    CREATE TABLE messages (
        app INTEGER NOT NULL,
        id INTEGER NOT NULL,
        conv INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        sender TEXT NOT NULL,
        ts INTEGER NOT NULL,
        bin INTEGER NOT NULL,
        body BLOB NOT NULL,
        mtype INTEGER NOT NULL,
        ext TEXT,
        mention_all INTEGER NOT NULL,
        mentions TEXT,
        priority INTEGER NOT NULL,
        system INTEGER NOT NULL,
        restricted INTEGER NOT NULL,
        push_data TEXT,
        from_ip TEXT,
        recalled_at INTEGER,
        edited_at INTEGER,
        ack_at INTEGER,
        receipt INTEGER NOT NULL DEFAULT 0,
        patched_at INTEGER,
        PRIMARY KEY (app, id)
    );
    CREATE UNIQUE INDEX messages_seq ON messages (app, conv, seq);
    CREATE INDEX messages_patched ON messages (app, conv, patched_at) WHERE patched_at IS NOT NULL;
    CREATE INDEX messages_sender ON messages (app, sender, ts, id);
    CREATE INDEX messages_ts ON messages (app, ts, id);
    CREATE TABLE message_users (
        app INTEGER NOT NULL,
        msg INTEGER NOT NULL,
        user TEXT NOT NULL,
        visible INTEGER NOT NULL,
        PRIMARY KEY (app, msg, user)
    ) WITHOUT ROWID;
    CREATE TABLE broadcasts (
        app INTEGER NOT NULL,
        id INTEGER NOT NULL,
        conv INTEGER NOT NULL,
        sender TEXT NOT NULL,
        ts INTEGER NOT NULL,
        bin INTEGER NOT NULL,
        body BLOB NOT NULL,
        valid_till INTEGER NOT NULL,
        push TEXT,
        PRIMARY KEY (app, id)
    );
    CREATE INDEX broadcasts_valid ON broadcasts (app, valid_till);
    CREATE TABLE notices (
        app INTEGER NOT NULL,
        user TEXT NOT NULL,
        at INTEGER NOT NULL,
        id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (app, user, at, id)
    ) WITHOUT ROWID;
    CREATE TABLE conv_blocks (
        app INTEGER NOT NULL,
        conv INTEGER NOT NULL,
        user TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (app, conv, user)
    ) WITHOUT ROWID;
    CREATE TABLE entries (
        app INTEGER NOT NULL,
        ns TEXT NOT NULL,
        key TEXT NOT NULL,
        item TEXT NOT NULL,
        value TEXT NOT NULL,
        owner TEXT,
        seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (app, ns, key, item)
    ) WITHOUT ROWID;
    CREATE INDEX entries_seq ON entries (app, ns, key, seq);
    CREATE INDEX entries_item ON entries (app, ns, item, seq);
    "#,
    // 2: unread counts walk indexes from the read cursor (`unread.rs`): each entry of a message's
    // audience knows the message's conversation and sequence number (a user's inbox of messages
    // addressed to them), and the messages that mention someone have an index of their own
    r#"
    ALTER TABLE message_users ADD COLUMN conv INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE message_users ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE message_users SET conv = m.conv, seq = m.seq FROM messages m WHERE m.app = message_users.app AND m.id = message_users.msg;
    CREATE INDEX message_users_inbox ON message_users (app, user, conv, seq) WHERE visible = 1;
    CREATE INDEX messages_mentioning ON messages (app, conv, seq) WHERE mention_all = 1 OR mentions IS NOT NULL;
    "#,
    // 3: conversations and messages imported from another service keep the ids they had there
    r#"
    ALTER TABLE conversations ADD COLUMN foreign_id TEXT;
    ALTER TABLE messages ADD COLUMN foreign_id TEXT;
    CREATE UNIQUE INDEX conversations_foreign ON conversations (app, foreign_id) WHERE foreign_id IS NOT NULL;
    CREATE UNIQUE INDEX messages_foreign ON messages (app, foreign_id) WHERE foreign_id IS NOT NULL;
    "#,
    // 4: calls to the app's own code (hooks, callbacks, pushes) kept until made, and their counters
    r#"
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        app INTEGER NOT NULL,
        sink TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_error TEXT,
        failed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_due ON outbox (app, next_at) WHERE failed = 0;
    CREATE INDEX outbox_app ON outbox (app, failed, id);
    CREATE TABLE hook_stats (
        app INTEGER NOT NULL,
        sink TEXT NOT NULL,
        name TEXT NOT NULL,
        calls INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        timeouts INTEGER NOT NULL,
        total_ms INTEGER NOT NULL,
        max_ms INTEGER NOT NULL,
        b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL,
        b3 INTEGER NOT NULL, b4 INTEGER NOT NULL, b5 INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (app, sink, name)
    ) WITHOUT ROWID;
    "#,
    // 5: a user's tokens by user (`delete_user_tokens`, `delete_user`), not by a scan of the table
    r#"
    CREATE INDEX tokens_user ON tokens (app, user, kind);
    "#,
];

pub fn migrate(conn: &Connection) -> Result<()> {
    // Read the version inside an immediate transaction, so two processes opening a new data
    // directory at once (a server and `confab app create`) never both migrate.
    loop {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
        let step = (|| {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let Some(sql) = MIGRATIONS.get(version as usize) else { return Ok(false) };
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
            Ok(true)
        })();
        match step {
            Ok(more) => {
                conn.execute_batch("COMMIT").map_err(sql_err)?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(sql_err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn a_users_tokens_are_found_by_index() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        for sql in ["DELETE FROM tokens WHERE app = 1 AND user = 'u' AND kind = 'k'", "DELETE FROM tokens WHERE app = 1 AND user = 'u'"] {
            let p = plan(&conn, sql);
            assert!(p.contains("USING INDEX tokens_user") || p.contains("USING COVERING INDEX tokens_user"), "{sql}: {p}");
        }
    }
}
