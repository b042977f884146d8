//! How a service takes the app's code along (`hooks.rs`) without holding the engine.

use std::sync::{Arc, OnceLock};

use crate::error::Result;
use crate::hooks::{After, Before, Hooks, OutboxItem, Verdict, NO_HOOKS};
use crate::ids::Stamps;
use crate::model::App;
use crate::store::Store;

/// The narrow part of the engine a service needs to take the app's code along: ask it before an
/// action, tell it after one. A service holds a `Teller` (cheap to clone) rather than the
/// `Engine`: the hooks (set once, after the engine is built, so shared through the `OnceLock`),
/// the store's outbox the calls go to and the bell its runner waits on, and the stamps that give
/// each call its id and time.
#[derive(Clone)]
pub(crate) struct Teller {
    pub(crate) hooks: Arc<OnceLock<Arc<dyn Hooks>>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bell: Arc<tokio::sync::Notify>,
    pub(crate) stamps: Stamps,
}

impl Teller {
    /// The app's code; `NoHooks` until the server sets it.
    pub(crate) fn hooks(&self) -> &dyn Hooks {
        self.hooks.get().map_or(&NO_HOOKS as &dyn Hooks, |h| &**h)
    }

    /// Ask the hooks before a user's action (`by`, when it is a user's); the app's own server is
    /// never asked.
    pub(crate) async fn ask(&self, app: &App, action: Option<Before<'_>>) -> Result<Verdict> {
        match action {
            Some(action) if self.hooks().active(app) => self.hooks().before(app, action).await,
            _ => Ok(Verdict::Go),
        }
    }

    /// The calls `what` makes, ready for the outbox (ids, app and times set).
    pub(crate) fn calls_for(&self, app: &App, what: &After<'_>) -> Vec<OutboxItem> {
        if !self.hooks().active(app) {
            return vec![];
        }
        let now = self.stamps.now();
        let mut items = self.hooks().after(app, what);
        for i in &mut items {
            i.id = self.stamps.next_id();
            i.app = app.id;
            i.created_at = now;
            i.next_at = now;
        }
        items
    }

    /// Tell the app's code that `what` happened: its calls go to the outbox. The action has
    /// happened already, so a failure to keep them is logged, not returned.
    pub(crate) async fn tell(&self, app: &App, what: After<'_>) {
        let items = self.calls_for(app, &what);
        if items.is_empty() {
            return;
        }
        match self.store.outbox_add(&items).await {
            Ok(()) => self.bell.notify_one(),
            Err(e) => tracing::error!(app = app.id, error = %e, "could not keep the app's hook calls"),
        }
    }
}
