//! Apps and the credentials issued in them: `AppStore`.

use super::*;

#[async_trait]
impl AppStore for SqliteStore {
    // ---------------------------------------------------------------- apps

    async fn create_app(&self, app: &App) -> Result<()> {
        let app = app.clone();
        self.pool
            .write("create_app", move |c| {
                let keys = serde_json::to_string(&app.keys).map_err(Error::internal)?;
                let limits = serde_json::to_string(&app.limit_overrides).map_err(Error::internal)?;
                c.cached_execute(
                    "INSERT INTO apps (id, name, plan, created_at, lc_app_id, em_org, em_app, mx_app_id, keys, limits)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        app.id,
                        app.name,
                        app.plan.as_str(),
                        app.created_at,
                        app.keys.leancloud.app_id,
                        app.keys.easemob.org_name,
                        app.keys.easemob.app_name,
                        app.keys.maxim.app_id,
                        keys,
                        limits
                    ],
                )
                .map_err(|e| {
                    if is_constraint(&e) {
                        Error::invalid("an app with this name or these keys exists already")
                    } else {
                        sql_err(e)
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn set_app_limits(&self, app: i64, overrides: &Attrs) -> Result<()> {
        let limits = serde_json::to_string(overrides).map_err(Error::internal)?;
        self.pool
            .write("set_app_limits", move |c| {
                let n = c.cached_execute("UPDATE apps SET limits = ?1 WHERE id = ?2", params![limits, app]).map_err(sql_err)?;
                if n == 0 {
                    return Err(Error::AppNotFound);
                }
                Ok(())
            })
            .await
    }

    async fn find_app(&self, lookup: &AppLookup) -> Result<Option<App>> {
        let (cond, args): (&str, Vec<String>) = match lookup {
            AppLookup::Id(id) => ("id = ?1", vec![id.to_string()]),
            AppLookup::LeanCloud(id) => ("lc_app_id = ?1", vec![id.clone()]),
            AppLookup::Easemob { org, app } => ("em_org = ?1 AND em_app = ?2", vec![org.clone(), app.clone()]),
            AppLookup::Maxim(id) => ("mx_app_id = ?1", vec![id.clone()]),
            AppLookup::Name(n) => ("name = ?1", vec![n.clone()]),
        };
        let sql = format!("SELECT {APP_COLS} FROM apps WHERE {cond}");
        self.pool
            .lookup("find_app", move |c| c.prepare_cached_row(&sql, params_from_iter(args.iter()), app_row).optional().map_err(sql_err))
            .await
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        self.pool
            .read("list_apps", |c| {
                let mut b = Builder::default();
                b.push(&format!("SELECT {APP_COLS} FROM apps ORDER BY created_at, id"));
                query_all(c, &b, app_row)
            })
            .await
    }

    // ---------------------------------------------------------------- tokens

    async fn put_token(&self, token: &Token) -> Result<()> {
        let t = token.clone();
        self.pool
            .write("put_token", move |c| {
                c.cached_execute(
                    "INSERT OR REPLACE INTO tokens (token, app, user, kind, created_at, expires_at, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![t.token, t.app, t.user, t.kind.as_str(), t.created_at, t.expires_at, t.device],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn get_token(&self, token: &str) -> Result<Option<Token>> {
        let token = token.to_string();
        self.pool
            .lookup("get_token", move |c| {
                c.prepare_cached_row(
                    "SELECT token, app, user, kind, created_at, expires_at, device FROM tokens WHERE token = ?1",
                    params![token],
                    token_row,
                )
                .optional()
                .map_err(sql_err)
            })
            .await
    }

    async fn delete_token(&self, token: &str) -> Result<()> {
        let token = token.to_string();
        self.pool
            .write("delete_token", move |c| {
                c.cached_execute("DELETE FROM tokens WHERE token = ?1", params![token]).map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn delete_user_tokens(&self, app: i64, user: &str, kind: TokenKind) -> Result<u64> {
        let user = user.to_string();
        self.pool
            .write("delete_user_tokens", move |c| {
                let n = c
                    .execute("DELETE FROM tokens WHERE app = ?1 AND user = ?2 AND kind = ?3", params![app, user, kind.as_str()])
                    .map_err(sql_err)?;
                Ok(n as u64)
            })
            .await
    }
}
