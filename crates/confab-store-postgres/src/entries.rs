//! EntryStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl EntryStore for PgStore {
    async fn put_entries(&self, app: i64, entries: &[Entry], rule: PutRule, now: i64) -> Result<Vec<Put>> {
        unimplemented!("EntryStore")
    }
    async fn entries(&self, app: i64, q: &EntryQuery, now: i64) -> Result<Vec<Entry>> {
        unimplemented!("EntryStore")
    }
    async fn delete_entries(&self, app: i64, f: &EntryFilter, now: i64) -> Result<Vec<Entry>> {
        unimplemented!("EntryStore")
    }
    async fn entry_stats(&self, app: i64, f: &EntryFilter, now: i64) -> Result<EntryStats> {
        unimplemented!("EntryStore")
    }
}
