//! The keyed collections service (types and namespaces in `entries.rs`).

use std::sync::Arc;

use crate::entries::{Entry, EntryFilter, EntryQuery, EntryStats, Put, PutRule};
use crate::error::Result;
use crate::ids::Stamps;
use crate::model::App;
use crate::store::Store;

/// The keyed collections, a service of their own: the store's entries, stamped with the
/// engine's clock and ids. Other services (social, …) hold it as an `Arc<Collections>`.
pub struct Collections {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) stamps: Stamps,
}

impl Collections {
    /// Write entries atomically under `rule`; one outcome per entry, in order.
    pub async fn put(&self, app: &App, mut entries: Vec<Entry>, rule: PutRule) -> Result<Vec<Put>> {
        let now = self.stamps.now();
        for e in &mut entries {
            e.seq = self.stamps.next_id();
            e.created_at = now;
            e.updated_at = now;
        }
        self.store.put_entries(app.id, &entries, rule, now).await
    }

    /// The entries a query selects (expired ones excluded).
    pub async fn list(&self, app: &App, q: &EntryQuery) -> Result<Vec<Entry>> {
        self.store.entries(app.id, q, self.stamps.now()).await
    }

    /// One item of one collection.
    pub async fn get(&self, app: &App, ns: &str, key: &str, item: &str) -> Result<Option<Entry>> {
        let q = EntryQuery::all(EntryFilter::collection(ns, key).items(vec![item.to_string()]));
        Ok(self.list(app, &q).await?.pop())
    }

    /// Delete what a filter matches; the entries deleted (expired ones are purged silently).
    pub async fn delete(&self, app: &App, f: &EntryFilter) -> Result<Vec<Entry>> {
        self.store.delete_entries(app.id, f, self.stamps.now()).await
    }

    pub async fn stats(&self, app: &App, f: &EntryFilter) -> Result<EntryStats> {
        self.store.entry_stats(app.id, f, self.stamps.now()).await
    }
}
