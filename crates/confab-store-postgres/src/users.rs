//! UserStore (being ported from the embedded store).

use super::*;

#[async_trait]
impl UserStore for PgStore {
    async fn ensure_users(&self, app: i64, users: &[NewUser], now: i64) -> Result<()> {
        unimplemented!("UserStore")
    }
    async fn create_user_within(&self, user: &User, max_users: Option<i64>) -> Result<()> {
        unimplemented!("UserStore")
    }
    async fn get_user(&self, app: i64, id: &str) -> Result<Option<User>> {
        unimplemented!("UserStore")
    }
    async fn get_user_by_num(&self, app: i64, num: i64) -> Result<Option<User>> {
        unimplemented!("UserStore")
    }
    async fn get_users(&self, app: i64, ids: &[String]) -> Result<Vec<User>> {
        unimplemented!("UserStore")
    }
    async fn get_user_by_username(&self, app: i64, username: &str) -> Result<Option<User>> {
        unimplemented!("UserStore")
    }
    async fn record_login(&self, app: i64, user: &str, at: i64) -> Result<()> {
        unimplemented!("UserStore")
    }
    async fn count_users(&self, app: i64) -> Result<i64> {
        unimplemented!("UserStore")
    }
    async fn list_users(&self, app: i64, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        unimplemented!("UserStore")
    }
    async fn update_user(&self, user: &User) -> Result<()> {
        unimplemented!("UserStore")
    }
    async fn delete_user(&self, app: i64, id: &str) -> Result<bool> {
        unimplemented!("UserStore")
    }
    async fn count_logins_since(&self, app: i64, since: i64) -> Result<i64> {
        unimplemented!("UserStore")
    }
}
