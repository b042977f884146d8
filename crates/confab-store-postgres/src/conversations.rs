//! ConversationStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl ConversationStore for PgStore {
    async fn create_conversation_within(
        &self,
        conv: &Conversation,
        members: &[Member],
        quotas: ConvQuotas,
    ) -> Result<(Conversation, bool)> {
        unimplemented!("ConversationStore")
    }
    async fn get_conversation(&self, app: i64, id: i64) -> Result<Option<Conversation>> {
        unimplemented!("ConversationStore")
    }
    async fn conversation_by_unique(&self, app: i64, unique_id: &str) -> Result<Option<Conversation>> {
        unimplemented!("ConversationStore")
    }
    async fn query_conversations(&self, app: i64, q: &ConvQuery) -> Result<(Vec<Conversation>, Option<i64>)> {
        unimplemented!("ConversationStore")
    }
    async fn update_conversation(&self, app: i64, id: i64, patch: &ConvPatch, now: i64) -> Result<Conversation> {
        unimplemented!("ConversationStore")
    }
    async fn delete_conversation(&self, app: i64, id: i64) -> Result<bool> {
        unimplemented!("ConversationStore")
    }
    async fn add_members_within(
        &self,
        app: i64,
        conv: i64,
        members: &[Member],
        max: Option<i64>,
        groups_per_member: Option<i64>,
        now: i64,
    ) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn remove_members(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn get_member(&self, app: i64, conv: i64, user: &str) -> Result<Option<Member>> {
        unimplemented!("ConversationStore")
    }
    async fn list_members(&self, app: i64, conv: i64, q: &MemberQuery) -> Result<Vec<Member>> {
        unimplemented!("ConversationStore")
    }
    async fn member_lists(&self, app: i64, convs: &[i64]) -> Result<Vec<Member>> {
        unimplemented!("ConversationStore")
    }
    async fn member_ids(&self, app: i64, conv: i64) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn count_members(&self, app: i64, conv: i64, roles: Option<&[Role]>) -> Result<i64> {
        unimplemented!("ConversationStore")
    }
    async fn update_members(&self, app: i64, conv: i64, users: &[String], patch: &MemberPatch) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn user_memberships(&self, app: i64, user: &str, q: &MembershipQuery) -> Result<Vec<Member>> {
        unimplemented!("ConversationStore")
    }
    async fn block_users(&self, app: i64, conv: i64, users: &[String], now: i64) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn unblock_users(&self, app: i64, conv: i64, users: &[String]) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn blocked_users(&self, app: i64, conv: i64, among: Option<&[String]>, after: Option<&str>, limit: i64) -> Result<Vec<String>> {
        unimplemented!("ConversationStore")
    }
    async fn add_notices(&self, app: i64, users: &[String], notice: &ConvNotice) -> Result<()> {
        unimplemented!("ConversationStore")
    }
    async fn notices(&self, app: i64, user: &str, since: i64, limit: i64) -> Result<Vec<ConvNotice>> {
        unimplemented!("ConversationStore")
    }
}
