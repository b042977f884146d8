//! AppStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl AppStore for PgStore {
    async fn create_app(&self, app: &App) -> Result<()> {
        unimplemented!("AppStore")
    }
    async fn set_app_limits(&self, app: i64, overrides: &Attrs) -> Result<()> {
        unimplemented!("AppStore")
    }
    async fn find_app(&self, lookup: &AppLookup) -> Result<Option<App>> {
        unimplemented!("AppStore")
    }
    async fn list_apps(&self) -> Result<Vec<App>> {
        unimplemented!("AppStore")
    }
    async fn put_token(&self, token: &Token) -> Result<()> {
        unimplemented!("AppStore")
    }
    async fn get_token(&self, token: &str) -> Result<Option<Token>> {
        unimplemented!("AppStore")
    }
    async fn delete_token(&self, token: &str) -> Result<()> {
        unimplemented!("AppStore")
    }
    async fn delete_user_tokens(&self, app: i64, user: &str, kind: TokenKind) -> Result<u64> {
        unimplemented!("AppStore")
    }
}
