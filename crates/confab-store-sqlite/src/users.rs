//! Users and their logins: `UserStore`.

use super::*;

#[async_trait]
impl UserStore for SqliteStore {
    // ---------------------------------------------------------------- users

    async fn ensure_users(&self, app: i64, users: &[NewUser], now: i64) -> Result<()> {
        let users = users.to_vec();
        self.pool
            .write("ensure_users", move |c| {
                let mut st = c
                    .prepare_cached(
                        "INSERT INTO users (app, id, num, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                         ON CONFLICT (app, id) DO NOTHING",
                    )
                    .map_err(sql_err)?;
                for u in &users {
                    st.execute(params![app, u.id, u.num, now]).map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn create_user_within(&self, user: &User, max_users: Option<i64>) -> Result<()> {
        let u = user.clone();
        self.pool
            .write("create_user", move |c| {
                if let Some(max) = max_users {
                    // the writer is the only one: counted and inserted with nothing between
                    let n: i64 =
                        c.prepare_cached_row("SELECT COUNT(*) FROM users WHERE app = ?1", params![u.app], |r| r.get(0)).map_err(sql_err)?;
                    if n >= max {
                        let taken: bool = c
                            .prepare_cached_row(
                                "SELECT EXISTS (SELECT 1 FROM users WHERE app = ?1 AND id = ?2)",
                                params![u.app, u.id],
                                |r| r.get(0),
                            )
                            .map_err(sql_err)?;
                        return Err(if taken { Error::UserExists(u.id.clone()) } else { Error::OverQuota { quota: Quota::Users, max } });
                    }
                }
                let attrs = serde_json::to_string(&u.attributes).map_err(Error::internal)?;
                c.cached_execute(
                    "INSERT INTO users (app, id, num, username, password_hash, nickname, attributes, disabled, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![u.app, u.id, u.num, u.username, u.password_hash, u.nickname, attrs, u.disabled, u.created_at, u.updated_at],
                )
                .map_err(|e| {
                    if is_constraint(&e) {
                        Error::UserExists(u.username.clone().unwrap_or(u.id.clone()))
                    } else {
                        sql_err(e)
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn get_user(&self, app: i64, id: &str) -> Result<Option<User>> {
        let id = id.to_string();
        self.pool
            .lookup("get_user", move |c| {
                c.prepare_cached_row(&format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND id = ?2"), params![app, id], user_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn get_user_by_num(&self, app: i64, num: i64) -> Result<Option<User>> {
        self.pool
            .lookup("get_user_by_num", move |c| {
                c.prepare_cached_row(&format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND num = ?2"), params![app, num], user_row)
                    .optional()
                    .map_err(sql_err)
            })
            .await
    }

    async fn get_users(&self, app: i64, ids: &[String]) -> Result<Vec<User>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {USER_COLS} FROM users WHERE app = ")).bind(Sql::Integer(app));
        b.push(" AND id IN ").list(ids.iter().map(|x| Sql::Text(x.clone())));
        self.pool.read("get_users", move |c| query_all(c, &b, user_row)).await
    }

    async fn get_user_by_username(&self, app: i64, username: &str) -> Result<Option<User>> {
        let name = username.to_string();
        self.pool
            .lookup("get_user_by_username", move |c| {
                c.prepare_cached_row(
                    &format!("SELECT {USER_COLS} FROM users WHERE app = ?1 AND username = ?2"),
                    params![app, name],
                    user_row,
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn record_login(&self, app: i64, user: &str, at: i64) -> Result<()> {
        let user = user.to_string();
        self.pool
            .write("record_login", move |c| {
                c.cached_execute("UPDATE users SET last_login_at = ?3 WHERE app = ?1 AND id = ?2", params![app, user, at])
                    .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn count_users(&self, app: i64) -> Result<i64> {
        self.pool
            .read("count_users", move |c| {
                c.prepare_cached_row("SELECT COUNT(*) FROM users WHERE app = ?1", params![app], |r| r.get(0)).map_err(sql_err)
            })
            .await
    }

    async fn list_users(&self, app: i64, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        let mut b = Builder::default();
        b.push(&format!("SELECT {USER_COLS} FROM users WHERE app = ")).bind(Sql::Integer(app));
        if let Some(n) = after_num {
            b.push(" AND num > ").bind(Sql::Integer(n));
        }
        b.push(" ORDER BY num LIMIT ").bind(Sql::Integer(limit));
        self.pool.read("list_users", move |c| query_all(c, &b, user_row)).await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let u = user.clone();
        self.pool
            .write("update_user", move |c| {
                let attrs = to_json(&u.attributes)?;
                let n = c
                    .cached_execute(
                        "UPDATE users SET username = ?3, password_hash = ?4, nickname = ?5, attributes = ?6, disabled = ?7, updated_at = ?8
                         WHERE app = ?1 AND id = ?2",
                        params![u.app, u.id, u.username, u.password_hash, u.nickname, attrs, u.disabled, u.updated_at],
                    )
                    .map_err(|e| if is_constraint(&e) { Error::UserExists(u.username.clone().unwrap_or_default()) } else { sql_err(e) })?;
                if n == 0 {
                    return Err(Error::UserNotFound(u.id.clone()));
                }
                Ok(())
            })
            .await
    }

    async fn delete_user(&self, app: i64, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.pool
            .write("delete_user", move |c| {
                for sql in ["DELETE FROM tokens WHERE app = ?1 AND user = ?2", "DELETE FROM members WHERE app = ?1 AND user = ?2"] {
                    c.cached_execute(sql, params![app, id]).map_err(sql_err)?;
                }
                Ok(c.cached_execute("DELETE FROM users WHERE app = ?1 AND id = ?2", params![app, id]).map_err(sql_err)? > 0)
            })
            .await
    }

    async fn count_logins_since(&self, app: i64, since: i64) -> Result<i64> {
        self.pool
            .read("count_logins_since", move |c| {
                c.prepare_cached_row("SELECT COUNT(*) FROM users WHERE app = ?1 AND last_login_at >= ?2", params![app, since], |r| r.get(0))
                    .map_err(sql_err)
            })
            .await
    }
}
