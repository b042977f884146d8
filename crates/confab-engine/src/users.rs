//! Users: who exists, and the accounts, passwords and tokens that let them in.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clients::Clients;
use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::model::{App, Token, TokenKind, User};
use crate::password::{login_keys, Hasher, LoginBackoff};
use crate::quotas::{Quota, Quotas};
use crate::random::{random_hex, random_lower, random_string};
use crate::runtime::{Caches, Invalidate};
use crate::social::Social;
use crate::store::{NewUser, Store};

/// A user account with a login name and password.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    /// The user id; generated (24 hex digits, like a LeanCloud objectId) when None.
    pub id: Option<String>,
    pub username: Option<String>,
    pub password: String,
    pub nickname: Option<String>,
}

/// The users of each app, their accounts, passwords and tokens. It holds the `Store` (users,
/// tokens), the `Caches` (users known to exist, tokens recently read), the `Hasher` (passwords),
/// the `LoginBackoff` (failed logins), the `Stamps` (a new user's number and time, a token's
/// expiry), and the services it depends on: `Social` (a deleted user's relations go with
/// them) and `Clients` (a disabled or deleted user's sessions end).
pub struct Users {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) caches: Arc<Caches>,
    pub(crate) hasher: Arc<Hasher>,
    pub(crate) backoff: Arc<dyn LoginBackoff>,
    pub(crate) stamps: Stamps,
    pub(crate) social: Arc<Social>,
    pub(crate) clients: Arc<Clients>,
}

impl Users {
    /// Make sure every id names a user, creating those that do not exist (LeanCloud clients
    /// exist as soon as they are named). Users known to exist are remembered, so a busy sender
    /// costs no write.
    pub async fn ensure_users<S: AsRef<str>>(&self, app: &App, ids: &[S]) -> Result<()> {
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref();
            app.validate_user_id(id)?;
            if !self.caches.user_known(app.id, id) {
                users.push(NewUser { id: id.to_string(), num: self.stamps.next_id() });
            }
        }
        if users.is_empty() {
            return Ok(());
        }
        self.store.ensure_users(app.id, &users, self.stamps.now()).await?;
        self.caches.remember_users(app.id, users.into_iter().map(|u| u.id));
        Ok(())
    }

    /// The users among these ids that exist, by id.
    pub async fn by_ids(&self, app: &App, ids: &[String]) -> Result<HashMap<String, User>> {
        Ok(self.store.get_users(app.id, ids).await?.into_iter().map(|u| (u.id.clone(), u)).collect())
    }

    pub async fn get_user(&self, app: &App, id: &str) -> Result<User> {
        self.store.get_user(app.id, id).await?.ok_or_else(|| Error::UserNotFound(id.to_string()))
    }

    /// Write a changed user (nickname, attributes, disabled, password hash).
    pub async fn update_user(&self, app: &App, mut user: User) -> Result<User> {
        user.updated_at = self.stamps.now();
        self.store.update_user(&user).await?;
        let _ = app;
        Ok(user)
    }

    /// Set a user's password (argon2) and revoke the user's tokens of every face (a password change
    /// logs the user out everywhere: a token one face issued is no less the user's).
    pub async fn set_password(&self, app: &App, id: &str, password: &str) -> Result<()> {
        if password.is_empty() || password.len() > 256 {
            return Err(Error::invalid("password must be 1 to 256 bytes"));
        }
        let mut user = self.get_user(app, id).await?;
        user.password_hash = Some(self.hasher.hash(password.to_string()).await?);
        self.update_user(app, user).await?;
        self.revoke_all_user_tokens(app, id).await?;
        Ok(())
    }

    /// Disable (ban) or enable a user. A disabled user cannot log in, and is logged out of every
    /// face: their sessions end and their tokens, whichever face issued them, are revoked.
    pub async fn set_disabled(&self, app: &App, id: &str, disabled: bool) -> Result<User> {
        let mut user = self.get_user(app, id).await?;
        user.disabled = disabled;
        let user = self.update_user(app, user).await?;
        if disabled {
            self.clients.end_sessions_for(app, id, crate::bus::KickReason::Disabled)?;
            self.revoke_all_user_tokens(app, id).await?;
        }
        Ok(user)
    }

    /// Revoke a user's tokens of every kind.
    pub async fn revoke_all_user_tokens(&self, app: &App, user: &str) -> Result<u64> {
        let mut n = 0;
        for kind in [TokenKind::LcSession, TokenKind::LcRealtime, TokenKind::EasemobUser, TokenKind::MaximUser] {
            n += self.store.delete_user_tokens(app.id, user, kind).await?;
        }
        self.caches.invalidate(Invalidate::Tokens);
        Ok(n)
    }

    /// Delete a user, their tokens and memberships; their sessions end.
    pub async fn delete_user(&self, app: &App, id: &str) -> Result<bool> {
        let deleted = self.store.delete_user(app.id, id).await?;
        self.caches.invalidate(Invalidate::User { app: app.id, id: id.to_string() });
        self.social.forget_user_relations(app, id).await?;
        if deleted {
            // the user is gone either way; a session the kick misses fails its next call
            self.clients.end_sessions(app, id);
        }
        Ok(deleted)
    }

    pub async fn count_users(&self, app: &App) -> Result<i64> {
        self.store.count_users(app.id).await
    }

    pub async fn list_users(&self, app: &App, after_num: Option<i64>, limit: i64) -> Result<Vec<User>> {
        self.store.list_users(app.id, after_num, limit).await
    }

    /// The user with this numeric id (MaxIM's `user_id`).
    pub async fn user_by_num(&self, app: &App, num: i64) -> Result<User> {
        self.store.get_user_by_num(app.id, num).await?.ok_or_else(|| Error::UserNotFound(num.to_string()))
    }

    pub async fn create_account(&self, app: &App, new: NewAccount) -> Result<User> {
        self.create_account_with(app, new, Quotas::Uncounted).await
    }

    /// `create_account`; a counted one is refused (`OverQuota(Quota::Users)`) by the store, in
    /// the insert's transaction, when the app holds its plan's users already.
    pub async fn create_account_with(&self, app: &App, new: NewAccount, quotas: Quotas) -> Result<User> {
        let id = new.id.unwrap_or_else(|| random_hex(12));
        app.validate_user_id(&id)?;
        if let Some(u) = &new.username {
            if u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control) {
                return Err(Error::invalid("username must be 1 to 64 printable characters"));
            }
        }
        if new.password.is_empty() || new.password.len() > 256 {
            return Err(Error::invalid("password must be 1 to 256 bytes"));
        }
        // one login name, one user, whichever face made the account: a username may not be
        // another account's id (MaxIM's usernames are ids), nor an id another user's username
        if let Some(u) = &new.username {
            if self.store.get_user(app.id, u).await?.is_some_and(|x| x.password_hash.is_some()) {
                return Err(Error::UserExists(u.clone()));
            }
        }
        if self.store.get_user_by_username(app.id, &id).await?.is_some() {
            return Err(Error::UserExists(id));
        }
        let hash = self.hasher.hash(new.password).await?;
        let now = self.stamps.now();
        let user = User {
            username: new.username,
            password_hash: Some(hash),
            nickname: new.nickname,
            ..User::new(app.id, id, self.stamps.next_id(), now)
        };
        let max = if quotas == Quotas::Counted { crate::quotas::limit(app, &Quota::Users) } else { None };
        self.store.create_user_within(&user, max).await?;
        Ok(user)
    }

    /// Make sure a user exists, creating it without a password if not (Easemob's
    /// `autoCreateUser`); a new user counts against the app's users quota (`OverQuota`), checked
    /// by the store in the insert's transaction.
    pub async fn ensure_user_counted(&self, app: &App, id: &str) -> Result<()> {
        app.validate_user_id(id)?;
        if self.caches.user_known(app.id, id) {
            return Ok(());
        }
        let now = self.stamps.now();
        let user = User::new(app.id, id, self.stamps.next_id(), now);
        match self.store.create_user_within(&user, crate::quotas::limit(app, &Quota::Users)).await {
            Ok(()) | Err(Error::UserExists(_)) => {}
            Err(e) => return Err(e),
        }
        self.caches.remember_users(app.id, [id.to_string()].into_iter());
        Ok(())
    }

    /// Check a login name (username, or the user id) and password: `UserNotFound` if no such
    /// user, `BadCredentials` if the password is wrong. `addr` is the client's address. Failures
    /// back off per login name and per address (`password::LoginBackoff`): while one does, the
    /// attempt is refused (`RateLimited`, with the wait) before any hashing.
    pub async fn check_password(&self, app: &App, login: &str, password: &str, addr: Option<&str>) -> Result<User> {
        let keys = login_keys(login, addr);
        // the counts out of reach: the attempt is refused with that error (no guessing unchecked)
        self.backoff.admit(app.id, &keys, self.stamps.now()).await?;
        let checked = async {
            let user = match self.store.get_user_by_username(app.id, login).await? {
                Some(u) => Some(u),
                None => self.store.get_user(app.id, login).await?,
            };
            let verified = match &user {
                Some(User { password_hash: Some(hash), .. }) => self.hasher.verify(password.to_string(), hash.clone()).await?,
                _ => false,
            };
            Ok::<_, Error>((user, verified))
        };
        let (user, verified) = match checked.await {
            Ok(v) => v,
            Err(e) => {
                if let Err(w) = self.backoff.withdrawn(app.id, &keys, self.stamps.now()).await {
                    tracing::warn!(app = app.id, error = %w, "could not withdraw a login attempt from the back-off");
                }
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if verified => u,
            other => {
                return Err(match other {
                    None => Error::UserNotFound(login.to_string()),
                    Some(_) => Error::BadCredentials,
                });
            }
        };
        // the password was right: a back-off that cannot be told so does not fail the login (the
        // attempt stays counted, as a failed one would)
        if let Err(e) = self.backoff.succeeded(app.id, &keys, self.stamps.now()).await {
            tracing::warn!(app = app.id, error = %e, "could not clear a user's failed logins");
        }
        if user.disabled {
            return Err(Error::Forbidden("user is disabled".into()));
        }
        // an imported LeanCloud hash gives way to argon2id at the first good login (if the
        // hashing queue is full now, at a later one)
        if user.password_hash.as_deref().is_some_and(crate::password::is_legacy) {
            if let Ok(hash) = self.hasher.hash(password.to_string()).await {
                let upgraded = User { password_hash: Some(hash), ..user.clone() };
                if let Err(e) = self.store.update_user(&upgraded).await {
                    tracing::warn!(error = %e, "could not re-hash an imported password");
                }
                return Ok(upgraded);
            }
        }
        Ok(user)
    }

    /// Issue a token for a user (or the app, with `user` None).
    pub async fn issue_token(&self, app: &App, user: Option<&str>, kind: TokenKind, ttl_secs: Option<i64>) -> Result<Token> {
        let now = self.stamps.now();
        let token = Token {
            token: random_lower(25) + &random_string(15),
            app: app.id,
            user: user.map(str::to_string),
            kind,
            created_at: now,
            expires_at: ttl_secs.map(|s| now + s * 1000),
            device: None,
        };
        self.store.put_token(&token).await?;
        Ok(token)
    }

    /// Store a token as given (a face that binds tokens to devices fills `device`).
    pub async fn put_token(&self, token: &Token) -> Result<()> {
        self.store.put_token(token).await
    }

    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        self.store.delete_token(token).await?;
        self.caches.invalidate(Invalidate::Tokens);
        Ok(())
    }

    /// Revoke every token of a kind a user holds (a kicked client must log in again).
    pub async fn revoke_user_tokens(&self, app: &App, user: &str, kind: TokenKind) -> Result<u64> {
        let n = self.store.delete_user_tokens(app.id, user, kind).await?;
        self.caches.invalidate(Invalidate::Tokens);
        Ok(n)
    }

    /// The live token of this kind and app, or None (unknown, expired, or another app's).
    pub async fn check_token(&self, app: &App, token: &str, kind: TokenKind) -> Result<Option<Token>> {
        let (cached, generation) = self.caches.token(token);
        let t = match cached {
            Some(t) => t,
            None => {
                let Some(t) = self.store.get_token(token).await? else { return Ok(None) };
                self.caches.remember_token(generation, token, &t);
                t
            }
        };
        if t.app != app.id || t.kind != kind || t.expires_at.is_some_and(|e| e <= self.stamps.now()) {
            return Ok(None);
        }
        Ok(Some(t))
    }
}
