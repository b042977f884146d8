//! Users: who exists, and the accounts, passwords and tokens that let them in.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::ids::Stamps;
use crate::model::{App, User};
use crate::runtime::Caches;
use crate::store::{NewUser, Store};

/// The users of each app. It holds the `Store` (users), the `Caches` (users known to exist) and
/// the `Stamps` (a new user's number and time).
pub struct Users {
    store: Arc<dyn Store>,
    caches: Arc<Caches>,
    stamps: Stamps,
}

impl Users {
    pub(crate) fn new(store: Arc<dyn Store>, caches: Arc<Caches>, stamps: Stamps) -> Self {
        Users { store, caches, stamps }
    }

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
}
