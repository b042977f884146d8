//! MessageStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl MessageStore for PgStore {
    fn queue_message_with(&self, msg: &Message, outbox: &[OutboxItem]) -> Queued<Message> {
        unimplemented!("MessageStore")
    }
    async fn get_message(&self, app: i64, id: i64) -> Result<Option<Message>> {
        unimplemented!("MessageStore")
    }
    async fn update_message(&self, app: i64, id: i64, patch: &MessagePatch) -> Result<Option<Message>> {
        unimplemented!("MessageStore")
    }
    async fn delete_message(&self, app: i64, id: i64) -> Result<bool> {
        unimplemented!("MessageStore")
    }
    async fn hide_message(&self, app: i64, id: i64, user: &str) -> Result<bool> {
        unimplemented!("MessageStore")
    }
    async fn history(&self, app: i64, q: &HistoryQuery) -> Result<Vec<Message>> {
        unimplemented!("MessageStore")
    }
    async fn unread_count(&self, app: i64, user: &str, conv: Option<i64>, bounds: UnreadBounds) -> Result<i64> {
        unimplemented!("MessageStore")
    }
    async fn advance_cursor(&self, app: i64, conv: i64, user: &str, cursor: Cursor, to_seq: i64, now: i64) -> Result<CursorMove> {
        unimplemented!("MessageStore")
    }
    async fn seq_at(&self, app: i64, conv: i64, ts: i64) -> Result<i64> {
        unimplemented!("MessageStore")
    }
    async fn cursor_times(&self, app: i64, conv: i64) -> Result<Vec<CursorTimes>> {
        unimplemented!("MessageStore")
    }
    async fn unread_summary(&self, app: i64, user: &str, since: i64, limit: i64, bounds: UnreadBounds) -> Result<Vec<UnreadEntry>> {
        unimplemented!("MessageStore")
    }
    async fn patches_since(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<Message>> {
        unimplemented!("MessageStore")
    }
    async fn insert_broadcast(&self, b: &Broadcast) -> Result<()> {
        unimplemented!("MessageStore")
    }
    async fn get_broadcast(&self, app: i64, id: i64) -> Result<Option<Broadcast>> {
        unimplemented!("MessageStore")
    }
    async fn update_broadcast(&self, app: i64, id: i64, content: &Content) -> Result<bool> {
        unimplemented!("MessageStore")
    }
    async fn delete_broadcast(&self, app: i64, id: i64) -> Result<bool> {
        unimplemented!("MessageStore")
    }
    async fn list_broadcasts(&self, app: i64, conv: Option<i64>, now: i64, skip: i64, limit: i64) -> Result<Vec<Broadcast>> {
        unimplemented!("MessageStore")
    }
}
