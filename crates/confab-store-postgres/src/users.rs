//! Users and their logins: `UserStore`.

use super::*;
use tokio_postgres::types::Json;

#[async_trait]
impl UserStore for PgStore {
    // ---------------------------------------------------------------- users

    async fn ensure_users(&self, app: i64, users: &[NewUser], now: i64) -> Result<()> {
        // in one order (by id), whoever calls: two calls inserting some of the same users in
        // different orders would each wait on a row the other inserted, a deadlock
        let mut users: Vec<&NewUser> = users.iter().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let nums: Vec<i64> = users.iter().map(|u| u.num).collect();
        self.writer()
            .await?
            .exec(
                "INSERT INTO users (app, id, num, created_at, updated_at)
                 SELECT $1, u.id, u.num, $4, $4 FROM unnest($2::TEXT[], $3::BIGINT[]) WITH ORDINALITY AS u (id, num, i)
                 ORDER BY u.i
                 ON CONFLICT (app, id) DO NOTHING",
                &[&app, &ids, &nums, &now],
            )
            .await
            .map(drop)
    }

    async fn create_user_within(&self, u: &User, max_users: Option<i64>) -> Result<()> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        if let Some(max) = max_users {
            // every node counting this app's users waits here: counted and inserted with none between
            lock(&tx, LockClass::Users, u.app).await?;
            let n: i64 = tx.one("SELECT COUNT(*) FROM users WHERE app = $1", &[&u.app]).await?.get(0);
            if n >= max {
                let taken = tx.row("SELECT 1 FROM users WHERE app = $1 AND id = $2", &[&u.app, &u.id]).await?.is_some();
                return Err(if taken { Error::UserExists(u.id.clone()) } else { Error::OverQuota { quota: Quota::Users, max } });
            }
        }
        tx.exec_pg(
            "INSERT INTO users (app, id, num, username, password_hash, nickname, attributes, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &u.app,
                &u.id,
                &u.num,
                &u.username,
                &u.password_hash,
                &u.nickname,
                &Json(&u.attributes),
                &u.disabled,
                &u.created_at,
                &u.updated_at,
            ],
        )
        .await
        .map_err(|e| if is_unique(&e) { Error::UserExists(u.username.clone().unwrap_or(u.id.clone())) } else { pg_err(e) })?;
        tx.commit().await.map_err(pg_err)
    }

    async fn get_user(&self, app: i64, id: &str) -> Result<Option<User>> {
        let row = self.client().await?.row(&format!("SELECT {USER_COLS} FROM users WHERE app = $1 AND id = $2"), &[&app, &id]).await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn get_user_by_num(&self, app: i64, num: i64) -> Result<Option<User>> {
        let row = self.client().await?.row(&format!("SELECT {USER_COLS} FROM users WHERE app = $1 AND num = $2"), &[&app, &num]).await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn get_users(&self, app: i64, ids: &[String]) -> Result<Vec<User>> {
        let rows =
            self.client().await?.rows(&format!("SELECT {USER_COLS} FROM users WHERE app = $1 AND id = ANY($2)"), &[&app, &ids]).await?;
        map_rows(&rows, user_row)
    }

    async fn get_user_by_username(&self, app: i64, username: &str) -> Result<Option<User>> {
        let row = self
            .client()
            .await?
            .row(&format!("SELECT {USER_COLS} FROM users WHERE app = $1 AND username = $2"), &[&app, &username])
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn record_login(&self, app: i64, user: &str, at: i64) -> Result<()> {
        self.writer().await?.exec("UPDATE users SET last_login_at = $3 WHERE app = $1 AND id = $2", &[&app, &user, &at]).await.map(drop)
    }

    async fn count_users(&self, app: i64) -> Result<i64> {
        Ok(self.client().await?.one("SELECT COUNT(*) FROM users WHERE app = $1", &[&app]).await?.get(0))
    }

    async fn list_users(&self, app: i64, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        let rows = self
            .client()
            .await?
            .rows(
                &format!("SELECT {USER_COLS} FROM users WHERE app = $1 AND ($2::BIGINT IS NULL OR num > $2) ORDER BY num LIMIT $3"),
                &[&app, &after_num, &limit.max(0)],
            )
            .await?;
        map_rows(&rows, user_row)
    }

    async fn update_user(&self, u: &User) -> Result<()> {
        let n = self
            .writer()
            .await?
            .exec_pg(
                "UPDATE users SET username = $3, password_hash = $4, nickname = $5, attributes = $6, disabled = $7, updated_at = $8
                 WHERE app = $1 AND id = $2",
                &[&u.app, &u.id, &u.username, &u.password_hash, &u.nickname, &Json(&u.attributes), &u.disabled, &u.updated_at],
            )
            .await
            .map_err(|e| if is_unique(&e) { Error::UserExists(u.username.clone().unwrap_or_default()) } else { pg_err(e) })?;
        if n == 0 {
            return Err(Error::UserNotFound(u.id.clone()));
        }
        Ok(())
    }

    async fn delete_user(&self, app: i64, id: &str) -> Result<bool> {
        let mut c = self.writer().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        for sql in ["DELETE FROM tokens WHERE app = $1 AND user_id = $2", "DELETE FROM members WHERE app = $1 AND user_id = $2"] {
            tx.exec(sql, &[&app, &id]).await?;
        }
        let deleted = tx.exec("DELETE FROM users WHERE app = $1 AND id = $2", &[&app, &id]).await? > 0;
        tx.commit().await.map_err(pg_err)?;
        Ok(deleted)
    }

    async fn count_logins_since(&self, app: i64, since: i64) -> Result<i64> {
        Ok(self.client().await?.one("SELECT COUNT(*) FROM users WHERE app = $1 AND last_login_at >= $2", &[&app, &since]).await?.get(0))
    }
}
