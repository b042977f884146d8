//! Keyed collections (`entries` table): `EntryStore`.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_engine::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Overwrite, Put, PutRule};
use confab_engine::store::EntryStore;
use confab_engine::Result;
use rusqlite::types::Value as Sql;
use rusqlite::{params, Connection, OptionalExtension};

use crate::filter::Builder;
use crate::pool::sql_err;
use crate::{query_all, Cached, SqliteStore};

const COLS: &str = "ns, key, item, value, owner, seq, created_at, updated_at, expires_at";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    let value: String = r.get(3)?;
    Ok(Entry {
        ns: r.get(0)?,
        key: r.get(1)?,
        item: r.get(2)?,
        value: serde_json::from_str(&value).unwrap_or(serde_json::Value::Null),
        owner: r.get(4)?,
        seq: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        expires_at: r.get(8)?,
    })
}

/// `WHERE …` for a filter; `live` keeps only entries not expired at `now`.
fn filter(b: &mut Builder, app: i64, f: &EntryFilter, now: i64, live: bool) {
    b.push(" WHERE app = ").bind(Sql::Integer(app)).push(" AND ns = ").bind(Sql::Text(f.ns.clone()));
    if let Some(k) = &f.key {
        b.push(" AND key = ").bind(Sql::Text(k.clone()));
    }
    if let Some(items) = &f.items {
        b.push(" AND item IN ").list(items.iter().map(|x| Sql::Text(x.clone())));
    }
    if let Some(o) = &f.owner {
        b.push(" AND owner = ").bind(Sql::Text(o.clone()));
    }
    if live {
        b.push(" AND (expires_at IS NULL OR expires_at > ").bind(Sql::Integer(now)).push(")");
    }
}

pub(crate) fn put(c: &Connection, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
    let mut sizes: HashMap<(String, String), i64> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let existing: Option<(Option<String>, Option<i64>)> = c
            .prepare_cached_row(
                "SELECT owner, expires_at FROM entries WHERE app = ?1 AND ns = ?2 AND key = ?3 AND item = ?4",
                params![app, e.ns, e.key, e.item],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql_err)?;
        let live = existing.as_ref().filter(|(_, exp)| exp.is_none_or(|t| t > now));
        let value = e.value.to_string();
        if let Some((owner, _)) = live {
            let outcome = match rule.overwrite {
                Overwrite::Never => Put::Kept,
                Overwrite::IfOwner if owner.is_some() && *owner != e.owner => Put::NotOwner,
                _ => {
                    c.cached_execute(
                        "UPDATE entries SET value = ?5, owner = ?6, updated_at = ?7, expires_at = ?8
                         WHERE app = ?1 AND ns = ?2 AND key = ?3 AND item = ?4",
                        params![app, e.ns, e.key, e.item, value, e.owner, e.updated_at, e.expires_at],
                    )
                    .map_err(sql_err)?;
                    Put::Replaced
                }
            };
            out.push(outcome);
            continue;
        }
        let size_key = (e.ns.clone(), e.key.clone());
        if let Some(max) = rule.max_items {
            let size = match sizes.get(&size_key) {
                Some(n) => *n,
                None => c
                    .prepare_cached_row(
                        "SELECT COUNT(*) FROM entries WHERE app = ?1 AND ns = ?2 AND key = ?3 AND (expires_at IS NULL OR expires_at > ?4)",
                        params![app, e.ns, e.key, now],
                        |r| r.get(0),
                    )
                    .map_err(sql_err)?,
            };
            if size >= max {
                sizes.insert(size_key, size);
                out.push(Put::Full);
                continue;
            }
            sizes.insert(size_key, size + 1);
        }
        if existing.is_some() {
            // an expired leftover: the item starts afresh
            c.cached_execute(
                "DELETE FROM entries WHERE app = ?1 AND ns = ?2 AND key = ?3 AND item = ?4",
                params![app, e.ns, e.key, e.item],
            )
            .map_err(sql_err)?;
        }
        c.cached_execute(
            &format!("INSERT INTO entries (app, {COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![app, e.ns, e.key, e.item, value, e.owner, e.seq, e.created_at, e.updated_at, e.expires_at],
        )
        .map_err(sql_err)?;
        out.push(Put::Added);
    }
    Ok(out)
}

pub(crate) fn select(c: &Connection, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
    let mut b = Builder::default();
    b.push(&format!("SELECT {COLS} FROM entries"));
    filter(&mut b, app, &q.filter, now, true);
    if let Some(after) = q.after {
        b.push(if q.desc { " AND seq < " } else { " AND seq > " }).bind(Sql::Integer(after));
    }
    b.push(if q.desc { " ORDER BY seq DESC" } else { " ORDER BY seq" });
    b.push(" LIMIT ").bind(Sql::Integer(q.limit.max(0)));
    query_all(c, &b, row)
}

pub(crate) fn delete(c: &Connection, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
    let gone = select(c, app, &EntryQuery::all(f.clone()), now)?;
    let mut b = Builder::default();
    b.push("DELETE FROM entries");
    filter(&mut b, app, f, now, false);
    c.execute(&b.sql, rusqlite::params_from_iter(b.params.iter())).map_err(sql_err)?;
    Ok(gone)
}

pub(crate) fn stats(c: &Connection, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
    let mut b = Builder::default();
    b.push("SELECT COUNT(*), COALESCE(SUM(length(CAST(item AS BLOB)) + length(CAST(value AS BLOB))), 0) FROM entries");
    filter(&mut b, app, f, now, true);
    let mut rows = query_all(c, &b, |r| Ok(EntryStats { count: r.get(0)?, bytes: r.get(1)? }))?;
    Ok(rows.pop().unwrap_or_default())
}

/// Most items of a key read as a lookup (on the caller's thread) rather than as a query.
const LOOKUP_ITEMS: usize = 16;

#[async_trait]
impl EntryStore for SqliteStore {
    // ---------------------------------------------------------------- keyed collections

    async fn put_entries(&self, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
        let entries = entries.to_vec();
        self.pool.write("put_entries", move |c| put(c, app, &entries, rule, now)).await
    }

    async fn entries(&self, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
        // entries named by their key and items are rows read by their primary key
        if q.filter.key.is_some() && q.filter.items.as_ref().is_some_and(|i| i.len() <= LOOKUP_ITEMS) {
            return self.pool.lookup("entry", |c| select(c, app, q, now)).await;
        }
        let q = q.clone();
        self.pool.read("entries", move |c| select(c, app, &q, now)).await
    }

    async fn delete_entries(&self, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
        let f = f.clone();
        self.pool.write("delete_entries", move |c| delete(c, app, &f, now)).await
    }

    async fn entry_stats(&self, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
        let f = f.clone();
        self.pool.read("entry_stats", move |c| stats(c, app, &f, now)).await
    }
}
