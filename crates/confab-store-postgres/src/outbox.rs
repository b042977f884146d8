//! The outbox: calls to an app's own code kept until made (`confab_engine::hooks`), claimed
//! fairly across apps by every node at once, and the counters of those calls.
//!
//! An item keeps the id the engine gave it (time-ordered, unique across nodes). Nodes claim
//! with `FOR UPDATE SKIP LOCKED`: an item another node is claiming is passed over, never handed
//! out twice, and no claimer waits for another.

use std::collections::BTreeMap;

use super::*;

const COLS: &str = "id, app, sink, name, body, attempts, next_at, created_at, last_error, failed";

fn item_row(r: &Row) -> Result<OutboxItem> {
    let attempts: i64 = get(r, 5)?;
    Ok(OutboxItem {
        id: get(r, 0)?,
        app: get(r, 1)?,
        sink: get(r, 2)?,
        name: get(r, 3)?,
        body: json(r, 4)?,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        next_at: get(r, 6)?,
        created_at: get(r, 7)?,
        last_error: get(r, 8)?,
        failed: get(r, 9)?,
    })
}

/// A count as the database keeps it (`BIGINT`), saturating.
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back (never negative in what this store writes).
fn from_db(r: &Row, col: usize) -> Result<u64> {
    Ok(u64::try_from(get::<i64>(r, col)?).unwrap_or(0))
}

/// A `usize` bound as a `LIMIT`.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Keep items, in one statement: on their own (`outbox_add`) or in the transaction of the
/// message whose sending made them, so that neither is kept without the other.
pub(crate) async fn insert_outbox(c: &impl Conn, items: &[OutboxItem]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let apps: Vec<i64> = items.iter().map(|i| i.app).collect();
    let sinks: Vec<&str> = items.iter().map(|i| i.sink.as_str()).collect();
    let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    let bodies: Vec<String> = items.iter().map(|i| i.body.to_string()).collect();
    let attempts: Vec<i64> = items.iter().map(|i| i64::from(i.attempts)).collect();
    let next_at: Vec<i64> = items.iter().map(|i| i.next_at).collect();
    let created_at: Vec<i64> = items.iter().map(|i| i.created_at).collect();
    let errors: Vec<Option<&str>> = items.iter().map(|i| i.last_error.as_deref()).collect();
    let failed: Vec<bool> = items.iter().map(|i| i.failed).collect();
    c.exec(
        &format!(
            "INSERT INTO outbox ({COLS}) SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
             $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::BOOLEAN[])"
        ),
        &[&ids, &apps, &sinks, &names, &bodies, &attempts, &next_at, &created_at, &errors, &failed],
    )
    .await
    .map(drop)
}

/// Claim due items in one statement: the apps with items that have not failed, found by
/// skipping along the index (one probe per app, as the embedded store does); of each app not
/// in `skip`, its `per_app` longest due items that no other claimer holds; of those, the
/// `limit` longest due, now due again at `lease_until`. The items are returned as they were
/// due, the longest due first.
async fn claim(c: &impl Conn, now: i64, lease_until: i64, per_app: usize, max: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
    let rows = c
        .rows(
            "WITH RECURSIVE apps (app) AS (
                 SELECT MIN(app) FROM outbox WHERE NOT failed
                 UNION ALL
                 SELECT (SELECT MIN(o.app) FROM outbox o WHERE NOT o.failed AND o.app > apps.app) FROM apps WHERE apps.app IS NOT NULL
             ),
             picked AS (
                 SELECT due.id, due.next_at FROM apps CROSS JOIN LATERAL (
                     SELECT o.id, o.next_at FROM outbox o WHERE o.app = apps.app AND NOT o.failed AND o.next_at <= $1
                     ORDER BY o.next_at, o.id LIMIT $3 FOR UPDATE SKIP LOCKED
                 ) due
                 WHERE apps.app IS NOT NULL AND apps.app <> ALL($4::BIGINT[])
                 ORDER BY due.next_at, due.id LIMIT $5
             )
             UPDATE outbox o SET next_at = $2 FROM picked WHERE o.id = picked.id
             RETURNING o.id, o.app, o.sink, o.name, o.body, o.attempts, picked.next_at, o.created_at, o.last_error, o.failed",
            &[&now, &lease_until, &limit(per_app), &skip, &limit(max)],
        )
        .await?;
    let mut out = map_rows(&rows, item_row)?;
    out.sort_by_key(|i| (i.next_at, i.id));
    Ok(out)
}

/// Counters with the same (app, sink, name) added together, in that order: one upsert per row,
/// rows locked in the same order by every node, so two batches never deadlock.
fn merged(stats: &[HookStat]) -> BTreeMap<(i64, &str, &str), HookStat> {
    let mut out: BTreeMap<(i64, &str, &str), HookStat> = BTreeMap::new();
    for s in stats {
        out.entry((s.app, s.sink.as_str(), s.name.as_str())).and_modify(|m| m.merge(s)).or_insert_with(|| s.clone());
    }
    out
}

async fn add_stat(tx: &impl Conn, s: &HookStat) -> Result<()> {
    let b = s.buckets.map(to_db);
    tx.exec(
        "INSERT INTO hook_stats (app, sink, name, calls, failures, timeouts, total_ms, max_ms, b0, b1, b2, b3, b4, b5, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (app, sink, name) DO UPDATE SET calls = hook_stats.calls + excluded.calls,
             failures = hook_stats.failures + excluded.failures, timeouts = hook_stats.timeouts + excluded.timeouts,
             total_ms = hook_stats.total_ms + excluded.total_ms, max_ms = GREATEST(hook_stats.max_ms, excluded.max_ms),
             b0 = hook_stats.b0 + excluded.b0, b1 = hook_stats.b1 + excluded.b1, b2 = hook_stats.b2 + excluded.b2,
             b3 = hook_stats.b3 + excluded.b3, b4 = hook_stats.b4 + excluded.b4, b5 = hook_stats.b5 + excluded.b5,
             updated_at = GREATEST(hook_stats.updated_at, excluded.updated_at)",
        &[
            &s.app,
            &s.sink,
            &s.name,
            &to_db(s.calls),
            &to_db(s.failures),
            &to_db(s.timeouts),
            &to_db(s.total_ms),
            &to_db(s.max_ms),
            &b[0],
            &b[1],
            &b[2],
            &b[3],
            &b[4],
            &b[5],
            &s.updated_at,
        ],
    )
    .await
    .map(drop)
}

fn stat_row(r: &Row) -> Result<HookStat> {
    Ok(HookStat {
        app: get(r, 0)?,
        sink: get(r, 1)?,
        name: get(r, 2)?,
        calls: from_db(r, 3)?,
        failures: from_db(r, 4)?,
        timeouts: from_db(r, 5)?,
        total_ms: from_db(r, 6)?,
        max_ms: from_db(r, 7)?,
        buckets: [from_db(r, 8)?, from_db(r, 9)?, from_db(r, 10)?, from_db(r, 11)?, from_db(r, 12)?, from_db(r, 13)?],
        updated_at: get(r, 14)?,
    })
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn outbox_add(&self, items: &[OutboxItem]) -> Result<()> {
        insert_outbox(&self.writer().await?, items).await
    }

    async fn outbox_claim(&self, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
        claim(&self.writer().await?, now, lease_until, per_app, limit, skip).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<()> {
        self.writer().await?.exec("DELETE FROM outbox WHERE id = ANY($1)", &[&ids]).await.map(drop)
    }

    async fn outbox_retry(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
        self.writer()
            .await?
            .exec(
                "UPDATE outbox SET attempts = $2, next_at = $3, last_error = $4, failed = $5 WHERE id = $1",
                &[&id, &i64::from(attempts), &next_at, &error, &failed],
            )
            .await
            .map(drop)
    }

    async fn outbox_list(&self, app: i64, failed: bool, max: usize) -> Result<Vec<OutboxItem>> {
        let rows = self
            .client()
            .await?
            .rows(&format!("SELECT {COLS} FROM outbox WHERE app = $1 AND failed = $2 ORDER BY id LIMIT $3"), &[&app, &failed, &limit(max)])
            .await?;
        map_rows(&rows, item_row)
    }

    async fn outbox_counts(&self, app: i64) -> Result<(i64, i64)> {
        let r = self
            .client()
            .await?
            .one("SELECT COUNT(*) FILTER (WHERE NOT failed), COUNT(*) FILTER (WHERE failed) FROM outbox WHERE app = $1", &[&app])
            .await?;
        Ok((get(&r, 0)?, get(&r, 1)?))
    }

    async fn outbox_requeue_failed(&self, app: i64, now: i64) -> Result<u64> {
        self.writer()
            .await?
            .exec("UPDATE outbox SET failed = false, attempts = 0, next_at = $2 WHERE app = $1 AND failed", &[&app, &now])
            .await
    }

    async fn hook_stats_add(&self, stats: &[HookStat]) -> Result<()> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        for s in merged(stats).values() {
            add_stat(&tx, s).await?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn hook_stats(&self, app: i64) -> Result<Vec<HookStat>> {
        let rows = self
            .client()
            .await?
            .rows(
                "SELECT app, sink, name, calls, failures, timeouts, total_ms, max_ms, b0, b1, b2, b3, b4, b5, updated_at
                 FROM hook_stats WHERE app = $1 ORDER BY sink, name",
                &[&app],
            )
            .await?;
        map_rows(&rows, stat_row)
    }
}
