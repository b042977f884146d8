//! The outbox: calls to an app's own code kept until made (`confab_engine::hooks`), claimed
//! fairly across apps, and the counters of those calls.

use async_trait::async_trait;
use confab_engine::hooks::OutboxItem;
use confab_engine::store::{HookStat, OutboxStore};
use confab_engine::Result;
use rusqlite::{params, Connection, OptionalExtension};

use crate::pool::sql_err;
use crate::{Cached, SqliteStore};

const COLS: &str = "id, app, sink, name, body, attempts, next_at, created_at, last_error, failed";

fn item(r: &rusqlite::Row) -> rusqlite::Result<OutboxItem> {
    let body: String = r.get(4)?;
    Ok(OutboxItem {
        id: r.get(0)?,
        app: r.get(1)?,
        sink: r.get(2)?,
        name: r.get(3)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        attempts: r.get(5)?,
        next_at: r.get(6)?,
        created_at: r.get(7)?,
        last_error: r.get(8)?,
        failed: r.get(9)?,
    })
}

pub fn add(c: &Connection, items: &[OutboxItem]) -> Result<()> {
    let mut st = c
        .prepare_cached(
            "INSERT INTO outbox (id, app, sink, name, body, attempts, next_at, created_at, last_error, failed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(sql_err)?;
    for i in items {
        st.execute(params![i.id, i.app, i.sink, i.name, i.body.to_string(), i.attempts, i.next_at, i.created_at, i.last_error, i.failed])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Due items, at most `per_app` of each app (apps found by skipping along the index, each
/// app's due items by one index range), the longest due first.
pub fn claim(c: &Connection, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
    let mut out = Vec::new();
    let mut after = i64::MIN;
    loop {
        let next: Option<i64> = c
            .prepare_cached_row("SELECT MIN(app) FROM outbox WHERE failed = 0 AND app > ?1", params![after], |r| r.get(0))
            .optional()
            .map_err(sql_err)?
            .flatten();
        let Some(app) = next else { break };
        after = app;
        if skip.contains(&app) {
            continue;
        }
        let mut st = c
            .prepare_cached(&format!(
                "SELECT {COLS} FROM outbox WHERE app = ?1 AND failed = 0 AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3"
            ))
            .map_err(sql_err)?;
        let rows = st.query_map(params![app, now, per_app as i64], item).map_err(sql_err)?;
        for r in rows {
            out.push(r.map_err(sql_err)?);
        }
    }
    out.sort_by_key(|i| (i.next_at, i.id));
    out.truncate(limit);
    let mut st = c.prepare_cached("UPDATE outbox SET next_at = ?2 WHERE id = ?1").map_err(sql_err)?;
    for i in &out {
        st.execute(params![i.id, lease_until]).map_err(sql_err)?;
    }
    Ok(out)
}

pub fn done(c: &Connection, ids: &[i64]) -> Result<()> {
    let mut st = c.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(sql_err)?;
    for id in ids {
        st.execute(params![id]).map_err(sql_err)?;
    }
    Ok(())
}

pub fn retry(c: &Connection, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
    c.cached_execute(
        "UPDATE outbox SET attempts = ?2, next_at = ?3, last_error = ?4, failed = ?5 WHERE id = ?1",
        params![id, attempts, next_at, error, failed],
    )
    .map_err(sql_err)?;
    Ok(())
}

pub fn list(c: &Connection, app: i64, failed: bool, limit: usize) -> Result<Vec<OutboxItem>> {
    let mut st =
        c.prepare_cached(&format!("SELECT {COLS} FROM outbox WHERE app = ?1 AND failed = ?2 ORDER BY id LIMIT ?3")).map_err(sql_err)?;
    let rows = st.query_map(params![app, failed, limit as i64], item).map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

pub fn counts(c: &Connection, app: i64) -> Result<(i64, i64)> {
    c.prepare_cached_row(
        "SELECT COALESCE(SUM(failed = 0), 0), COALESCE(SUM(failed = 1), 0) FROM outbox WHERE app = ?1",
        params![app],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(sql_err)
}

pub fn requeue_failed(c: &Connection, app: i64, now: i64) -> Result<u64> {
    let n = c
        .cached_execute("UPDATE outbox SET failed = 0, attempts = 0, next_at = ?2 WHERE app = ?1 AND failed = 1", params![app, now])
        .map_err(sql_err)?;
    Ok(n as u64)
}

pub fn stats_add(c: &Connection, stats: &[HookStat]) -> Result<()> {
    let mut st = c
        .prepare_cached(
            "INSERT INTO hook_stats (app, sink, name, calls, failures, timeouts, total_ms, max_ms, b0, b1, b2, b3, b4, b5, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT (app, sink, name) DO UPDATE SET calls = calls + excluded.calls, failures = failures + excluded.failures, \
             timeouts = timeouts + excluded.timeouts, total_ms = total_ms + excluded.total_ms, max_ms = MAX(max_ms, excluded.max_ms), \
             b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, b4 = b4 + excluded.b4, \
             b5 = b5 + excluded.b5, updated_at = MAX(updated_at, excluded.updated_at)",
        )
        .map_err(sql_err)?;
    for s in stats {
        let n = |v: u64| v as i64;
        let b = s.buckets.map(n);
        st.execute(params![
            s.app,
            s.sink,
            s.name,
            n(s.calls),
            n(s.failures),
            n(s.timeouts),
            n(s.total_ms),
            n(s.max_ms),
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            b[5],
            s.updated_at
        ])
        .map_err(sql_err)?;
    }
    Ok(())
}

pub fn stats(c: &Connection, app: i64) -> Result<Vec<HookStat>> {
    let mut st = c
        .prepare_cached(
            "SELECT app, sink, name, calls, failures, timeouts, total_ms, max_ms, b0, b1, b2, b3, b4, b5, updated_at \
             FROM hook_stats WHERE app = ?1 ORDER BY sink, name",
        )
        .map_err(sql_err)?;
    let rows = st
        .query_map(params![app], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(HookStat {
                app: r.get(0)?,
                sink: r.get(1)?,
                name: r.get(2)?,
                calls: n(3)?,
                failures: n(4)?,
                timeouts: n(5)?,
                total_ms: n(6)?,
                max_ms: n(7)?,
                buckets: [n(8)?, n(9)?, n(10)?, n(11)?, n(12)?, n(13)?],
                updated_at: r.get(14)?,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_add(&self, items: &[OutboxItem]) -> Result<()> {
        let items = items.to_vec();
        self.pool.write("outbox_add", move |c| add(c, &items)).await
    }

    async fn outbox_claim(&self, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
        let skip = skip.to_vec();
        self.pool.write("outbox_claim", move |c| claim(c, now, lease_until, per_app, limit, &skip)).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.pool.write("outbox_done", move |c| done(c, &ids)).await
    }

    async fn outbox_retry(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
        let error = error.to_string();
        self.pool.write("outbox_retry", move |c| retry(c, id, attempts, next_at, &error, failed)).await
    }

    async fn outbox_list(&self, app: i64, failed: bool, limit: usize) -> Result<Vec<OutboxItem>> {
        self.pool.read("outbox_list", move |c| list(c, app, failed, limit)).await
    }

    async fn outbox_counts(&self, app: i64) -> Result<(i64, i64)> {
        self.pool.read("outbox_counts", move |c| counts(c, app)).await
    }

    async fn outbox_requeue_failed(&self, app: i64, now: i64) -> Result<u64> {
        self.pool.write("outbox_requeue_failed", move |c| requeue_failed(c, app, now)).await
    }

    async fn hook_stats_add(&self, stats: &[HookStat]) -> Result<()> {
        let stats = stats.to_vec();
        self.pool.write("hook_stats_add", move |c| stats_add(c, &stats)).await
    }

    async fn hook_stats(&self, app: i64) -> Result<Vec<HookStat>> {
        self.pool.read("hook_stats", move |c| stats(c, app)).await
    }
}
