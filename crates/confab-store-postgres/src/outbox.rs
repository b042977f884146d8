//! OutboxStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl OutboxStore for PgStore {
    async fn outbox_add(&self, items: &[OutboxItem]) -> Result<()> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_claim(&self, now: i64, lease_until: i64, per_app: usize, limit: usize, skip: &[i64]) -> Result<Vec<OutboxItem>> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_done(&self, ids: &[i64]) -> Result<()> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_retry(&self, id: i64, attempts: u32, next_at: i64, error: &str, failed: bool) -> Result<()> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_list(&self, app: i64, failed: bool, limit: usize) -> Result<Vec<OutboxItem>> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_counts(&self, app: i64) -> Result<(i64, i64)> {
        unimplemented!("OutboxStore")
    }
    async fn outbox_requeue_failed(&self, app: i64, now: i64) -> Result<u64> {
        unimplemented!("OutboxStore")
    }
    async fn hook_stats_add(&self, stats: &[HookStat]) -> Result<()> {
        unimplemented!("OutboxStore")
    }
    async fn hook_stats(&self, app: i64) -> Result<Vec<HookStat>> {
        unimplemented!("OutboxStore")
    }
}
