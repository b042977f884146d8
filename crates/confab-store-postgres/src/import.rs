//! ImportStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl ImportStore for PgStore {
    async fn conversation_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Conversation>> {
        unimplemented!("ImportStore")
    }
    async fn message_by_foreign(&self, app: i64, foreign_id: &str) -> Result<Option<Message>> {
        unimplemented!("ImportStore")
    }
    async fn conversation_foreign_ids(&self, app: i64, convs: &[i64]) -> Result<Vec<(i64, String)>> {
        unimplemented!("ImportStore")
    }
    async fn import_messages(&self, app: i64, conv: i64, msgs: &[Message]) -> Result<Imported> {
        unimplemented!("ImportStore")
    }
    async fn import_conversation(&self, conv: &Conversation, members: &[Member]) -> Result<(Conversation, bool)> {
        unimplemented!("ImportStore")
    }
}
