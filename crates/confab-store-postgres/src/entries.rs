//! Keyed collections (`entries` table): `EntryStore`.
//!
//! A put is one transaction that holds, until it commits, an advisory lock on each collection it
//! writes (`LockClass::Entries`, by app, namespace and key): what the embedded store's single
//! writer guaranteed. Under it, the rule's checks (is the item there, whose is it, how many items
//! are live) and the writes they decide see no other put in between, on any node; and an item's
//! `seq` is the engine's, raised if need be above the collection's highest, so that it is unique
//! and increasing in the collection's commit order whatever the nodes' clocks say. The rows a put
//! replaces are locked too (`FOR UPDATE`), in the order a delete locks them: a delete, which
//! takes no advisory lock, waits for the put or the put for it, and neither deadlocks the other.

use std::collections::HashMap;

use super::*;
use crate::filter::Builder;
use confab_engine::entries::Overwrite;

const COLS: &str = "ns, key, item, value, owner, seq, created_at, updated_at, expires_at";

fn entry_row(r: &Row) -> Result<Entry> {
    Ok(Entry {
        ns: get(r, 0)?,
        key: get(r, 1)?,
        item: get(r, 2)?,
        value: json(r, 3)?,
        owner: get(r, 4)?,
        seq: get(r, 5)?,
        created_at: get(r, 6)?,
        updated_at: get(r, 7)?,
        expires_at: get(r, 8)?,
    })
}

fn is_live(e: &Entry, now: i64) -> bool {
    e.expires_at.is_none_or(|t| t > now)
}

// ---------------------------------------------------------------- queries

/// `WHERE …` for a filter; `live` keeps only entries not expired at `now`. Only the parts the
/// filter has are written: each shape is a statement of its own, planned for its indexes.
fn filter(b: &mut Builder, app: i64, f: &EntryFilter, now: i64, live: bool) {
    b.push(" WHERE app = ").int(app).push(" AND ns = ").text(&f.ns);
    if let Some(k) = &f.key {
        b.push(" AND key = ").text(k);
    }
    if let Some(items) = &f.items {
        b.push(" AND item = ANY(").texts(items).push(")");
    }
    if let Some(o) = &f.owner {
        b.push(" AND owner = ").text(o);
    }
    if live {
        b.push(" AND (expires_at IS NULL OR expires_at > ").int(now).push(")");
    }
}

/// Live entries a query selects, by `seq`.
async fn select(c: &impl Conn, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
    let mut b = Builder::new(&format!("SELECT {COLS} FROM entries"));
    filter(&mut b, app, &q.filter, now, true);
    if let Some(after) = q.after {
        b.push(if q.desc { " AND seq < " } else { " AND seq > " }).int(after);
    }
    b.push(if q.desc { " ORDER BY seq DESC" } else { " ORDER BY seq" });
    b.limit(q.limit.max(0));
    map_rows(&c.rows(b.sql(), &b.args()).await?, entry_row)
}

/// Delete what a filter matches, expired entries included; the live ones deleted, by `seq`.
/// The rows are locked in key order first, as a put locks them.
async fn delete(c: &impl Conn, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
    let mut b = Builder::new("DELETE FROM entries e USING (SELECT ns, key, item FROM entries");
    filter(&mut b, app, f, now, false);
    b.push(" ORDER BY ns, key, item FOR UPDATE) l WHERE e.app = ").int(app);
    b.push(" AND e.ns = l.ns AND e.key = l.key AND e.item = l.item");
    b.push(" RETURNING e.ns, e.key, e.item, e.value, e.owner, e.seq, e.created_at, e.updated_at, e.expires_at");
    let mut gone = map_rows(&c.rows(b.sql(), &b.args()).await?, entry_row)?;
    gone.retain(|e| is_live(e, now));
    gone.sort_by_key(|e| e.seq);
    Ok(gone)
}

async fn stats(c: &impl Conn, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
    let mut b = Builder::new("SELECT COUNT(*), COALESCE(SUM(octet_length(item) + octet_length(value)), 0)::BIGINT FROM entries");
    filter(&mut b, app, f, now, true);
    let r = c.one(b.sql(), &b.args()).await?;
    Ok(EntryStats { count: get(&r, 0)?, bytes: get(&r, 1)? })
}

// ---------------------------------------------------------------- puts

/// Hold, until the transaction ends, the advisory lock of each collection the entries write to.
/// A collection's lock is a hash of its name, so two may share one (they then wait for each
/// other, no worse); the locks are taken in the order of their hashes, the same on every node,
/// so that two puts never each hold one the other waits for.
async fn lock_collections(tx: &impl Conn, app: i64, entries: &[Entry]) -> Result<()> {
    let names: Vec<String> = entries.iter().map(|e| format!("{app}\u{1f}{}\u{1f}{}", e.ns, e.key)).collect();
    let rows = tx.rows("SELECT DISTINCT hashtext(n) AS h FROM unnest($1::TEXT[]) AS n ORDER BY h", &[&names]).await?;
    for r in &rows {
        let hash: i32 = get(r, 0)?;
        tx.exec("SELECT pg_advisory_xact_lock($1::INT, $2::INT)", &[&(LockClass::Entries as i32), &hash]).await?;
    }
    Ok(())
}

/// Lock the rows of the items the entries name that exist, in key order (as a delete does).
async fn lock_rows(tx: &impl Conn, app: i64, entries: &[Entry]) -> Result<()> {
    let ns: Vec<&str> = entries.iter().map(|e| e.ns.as_str()).collect();
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let items: Vec<&str> = entries.iter().map(|e| e.item.as_str()).collect();
    tx.rows(
        "SELECT 1 FROM entries WHERE app = $1 AND (ns, key, item) IN (SELECT * FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[]))
         ORDER BY ns, key, item FOR UPDATE",
        &[&app, &ns, &keys, &items],
    )
    .await
    .map(drop)
}

/// What one put knows of the collections it writes: their live sizes and highest `seq`, read
/// once each and kept up to date as it goes.
#[derive(Default)]
struct Seen<'a> {
    sizes: HashMap<(&'a str, &'a str), i64>,
    seqs: HashMap<(&'a str, &'a str), i64>,
}

impl<'a> Seen<'a> {
    async fn size(&mut self, tx: &impl Conn, app: i64, e: &'a Entry, now: i64) -> Result<i64> {
        let at = (e.ns.as_str(), e.key.as_str());
        if let Some(n) = self.sizes.get(&at) {
            return Ok(*n);
        }
        let row = tx
            .one(
                "SELECT COUNT(*) FROM entries WHERE app = $1 AND ns = $2 AND key = $3 AND (expires_at IS NULL OR expires_at > $4)",
                &[&app, &e.ns, &e.key, &now],
            )
            .await?;
        let n = get(&row, 0)?;
        self.sizes.insert(at, n);
        Ok(n)
    }

    fn grown(&mut self, e: &'a Entry) {
        *self.sizes.entry((e.ns.as_str(), e.key.as_str())).or_default() += 1;
    }

    /// The `seq` of a new item: the engine's, or above the collection's highest if that is not
    /// lower (another node's clock ahead of this one's, or an id made before one committed since).
    async fn next_seq(&mut self, tx: &impl Conn, app: i64, e: &'a Entry) -> Result<i64> {
        let at = (e.ns.as_str(), e.key.as_str());
        let highest = match self.seqs.get(&at) {
            Some(s) => *s,
            None => {
                let row = tx
                    .one("SELECT COALESCE(MAX(seq), 0) FROM entries WHERE app = $1 AND ns = $2 AND key = $3", &[&app, &e.ns, &e.key])
                    .await?;
                get(&row, 0)?
            }
        };
        let seq = e.seq.max(highest.saturating_add(1));
        self.seqs.insert(at, seq);
        Ok(seq)
    }
}

/// The owner of an item and whether it is live, if the item is stored.
async fn stored(tx: &impl Conn, app: i64, e: &Entry, now: i64) -> Result<Option<(Option<String>, bool)>> {
    let row = tx
        .row("SELECT owner, expires_at FROM entries WHERE app = $1 AND ns = $2 AND key = $3 AND item = $4", &[&app, &e.ns, &e.key, &e.item])
        .await?;
    let Some(r) = row else { return Ok(None) };
    let expires_at: Option<i64> = get(&r, 1)?;
    Ok(Some((get(&r, 0)?, expires_at.is_none_or(|t| t > now))))
}

/// Replace a live item's value, owner, time and expiry; it keeps its `seq` and `created_at`.
async fn replace(tx: &impl Conn, app: i64, e: &Entry) -> Result<()> {
    let value = e.value.to_string();
    tx.exec(
        "UPDATE entries SET value = $5, owner = $6, updated_at = $7, expires_at = $8 WHERE app = $1 AND ns = $2 AND key = $3 AND item = $4",
        &[&app, &e.ns, &e.key, &e.item, &value, &e.owner, &e.updated_at, &e.expires_at],
    )
    .await
    .map(drop)
}

async fn insert(tx: &impl Conn, app: i64, e: &Entry, seq: i64) -> Result<()> {
    let value = e.value.to_string();
    tx.exec(
        &format!("INSERT INTO entries (app, {COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[&app, &e.ns, &e.key, &e.item, &value, &e.owner, &seq, &e.created_at, &e.updated_at, &e.expires_at],
    )
    .await
    .map(drop)
}

/// Write the entries one after the other under the rule (a later entry sees what an earlier one
/// did), in a transaction that holds the locks of their collections and rows.
async fn put(tx: &impl Conn, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
    lock_collections(tx, app, entries).await?;
    lock_rows(tx, app, entries).await?;
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let existing = stored(tx, app, e, now).await?;
        if let Some((owner, true)) = &existing {
            let outcome = match rule.overwrite {
                Overwrite::Never => Put::Kept,
                Overwrite::IfOwner if owner.is_some() && *owner != e.owner => Put::NotOwner,
                _ => {
                    replace(tx, app, e).await?;
                    Put::Replaced
                }
            };
            out.push(outcome);
            continue;
        }
        if let Some(max) = rule.max_items {
            if seen.size(tx, app, e, now).await? >= max {
                out.push(Put::Full);
                continue;
            }
        }
        if existing.is_some() {
            // an expired leftover: the item starts afresh
            tx.exec("DELETE FROM entries WHERE app = $1 AND ns = $2 AND key = $3 AND item = $4", &[&app, &e.ns, &e.key, &e.item]).await?;
        }
        let seq = seen.next_seq(tx, app, e).await?;
        insert(tx, app, e, seq).await?;
        seen.grown(e);
        out.push(Put::Added);
    }
    Ok(out)
}

#[async_trait]
impl EntryStore for PgStore {
    // ---------------------------------------------------------------- keyed collections

    async fn put_entries(&self, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
        if entries.is_empty() {
            return Ok(vec![]);
        }
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let out = put(&tx, app, entries, rule, now).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(out)
    }

    async fn entries(&self, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
        select(&self.client().await?, app, q, now).await
    }

    async fn delete_entries(&self, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
        delete(&self.writer().await?, app, f, now).await
    }

    async fn entry_stats(&self, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
        stats(&self.client().await?, app, f, now).await
    }
}
