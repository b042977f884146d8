//! Apps and the credentials issued in them: `AppStore`.

use super::*;

#[async_trait]
impl AppStore for PgStore {
    // ---------------------------------------------------------------- apps

    async fn create_app(&self, app: &App) -> Result<()> {
        let keys = to_json(&app.keys)?;
        let limits = to_json(&app.limit_overrides)?;
        let k = &app.keys;
        self.writer()
            .await?
            .exec_pg(
                "INSERT INTO apps (id, name, plan, created_at, lc_app_id, em_org, em_app, mx_app_id, keys, limits)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &app.id,
                    &app.name,
                    &app.plan.as_str(),
                    &app.created_at,
                    &k.leancloud.app_id,
                    &k.easemob.org_name,
                    &k.easemob.app_name,
                    &k.maxim.app_id,
                    &keys,
                    &limits,
                ],
            )
            .await
            .map_err(|e| if is_unique(&e) { Error::invalid("an app with this name or these keys exists already") } else { pg_err(e) })?;
        Ok(())
    }

    async fn set_app_limits(&self, app: i64, overrides: &Attrs) -> Result<()> {
        let limits = to_json(overrides)?;
        let n = self.writer().await?.exec("UPDATE apps SET limits = $1 WHERE id = $2", &[&limits, &app]).await?;
        if n == 0 {
            return Err(Error::AppNotFound);
        }
        Ok(())
    }

    async fn find_app(&self, lookup: &AppLookup) -> Result<Option<App>> {
        let c = self.client().await?;
        let row = match lookup {
            AppLookup::Id(id) => c.row(&format!("SELECT {APP_COLS} FROM apps WHERE id = $1"), &[id]).await?,
            AppLookup::LeanCloud(id) => c.row(&format!("SELECT {APP_COLS} FROM apps WHERE lc_app_id = $1"), &[id]).await?,
            AppLookup::Easemob { org, app } => {
                c.row(&format!("SELECT {APP_COLS} FROM apps WHERE em_org = $1 AND em_app = $2"), &[org, app]).await?
            }
            AppLookup::Maxim(id) => c.row(&format!("SELECT {APP_COLS} FROM apps WHERE mx_app_id = $1"), &[id]).await?,
            AppLookup::Name(n) => c.row(&format!("SELECT {APP_COLS} FROM apps WHERE name = $1"), &[n]).await?,
        };
        row.as_ref().map(app_row).transpose()
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        let rows = self.client().await?.rows(&format!("SELECT {APP_COLS} FROM apps ORDER BY created_at, id"), &[]).await?;
        map_rows(&rows, app_row)
    }

    // ---------------------------------------------------------------- tokens

    async fn put_token(&self, t: &Token) -> Result<()> {
        self.writer()
            .await?
            .exec(
                "INSERT INTO tokens (token, app, user_id, kind, created_at, expires_at, device) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (token) DO UPDATE SET app = EXCLUDED.app, user_id = EXCLUDED.user_id, kind = EXCLUDED.kind,
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, device = EXCLUDED.device",
                &[&t.token, &t.app, &t.user, &t.kind.as_str(), &t.created_at, &t.expires_at, &t.device],
            )
            .await
            .map(drop)
    }

    async fn get_token(&self, token: &str) -> Result<Option<Token>> {
        let row = self.client().await?.row(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE token = $1"), &[&token]).await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn delete_token(&self, token: &str) -> Result<()> {
        self.writer().await?.exec("DELETE FROM tokens WHERE token = $1", &[&token]).await.map(drop)
    }

    async fn delete_user_tokens(&self, app: i64, user: &str, kind: TokenKind) -> Result<u64> {
        self.writer().await?.exec("DELETE FROM tokens WHERE app = $1 AND user_id = $2 AND kind = $3", &[&app, &user, &kind.as_str()]).await
    }
}
