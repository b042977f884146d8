//! Clients: who is online, their realtime sessions opening and closing, kicks, logins.

use std::sync::Arc;

use crate::bus::{Bus, Event, KickReason};
use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::model::App;
use crate::presence::{Presence, SessionRef};
use crate::store::Store;
use crate::teller::Teller;
use crate::time::utc_day_start;

/// The clients service. It holds `Presence` (the sessions open now), the `Bus` (kicks), the
/// `Store` (logins), the `Stamps` (the clock) and a `Teller` (a session opened or closed).
pub struct Clients {
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) stamps: Stamps,
    pub(crate) teller: Teller,
}

impl Clients {
    /// Which of these users are online; at most `check_online_max` ids.
    pub async fn check_online(&self, app: &App, ids: &[String]) -> Result<Vec<String>> {
        if ids.len() > app.limits.check_online_max {
            return Err(Error::too_many("client ids", app.limits.check_online_max));
        }
        self.online(app, ids).await
    }

    /// Which of these users have a session open now.
    pub async fn online(&self, app: &App, ids: &[String]) -> Result<Vec<String>> {
        self.presence.online(app.id, ids).await
    }

    /// A user's sessions open now, on every node (each with its device, when known).
    pub async fn sessions(&self, app: &App, user: &str) -> Result<Vec<SessionRef>> {
        app.validate_user_id(user)?;
        self.presence.sessions(app.id, user).await
    }

    /// End every session of a user. The reason is at most `kick_reason_max_chars` characters.
    pub async fn kick(&self, app: &App, user: &str, reason: Option<String>) -> Result<()> {
        app.validate_user_id(user)?;
        if let Some(r) = &reason {
            if r.chars().count() > app.limits.kick_reason_max_chars {
                return Err(Error::too_large("reason", app.limits.kick_reason_max_chars));
            }
        }
        // nothing is stored: the app hears the failure and may ask again
        let kick = Event::Kick { app: app.id, user: user.to_string(), session: None, reason: KickReason::ByApp(reason) };
        self.bus.publish(kick).map_err(Error::internal)
    }

    /// End every session of a user, for a reason of the engine's own (a password change, …):
    /// each gateway tells its clients in its own words.
    pub fn end_sessions_for(&self, app: &App, user: &str, reason: KickReason) -> Result<()> {
        let kick = Event::Kick { app: app.id, user: user.to_string(), session: None, reason };
        self.bus.publish(kick).map_err(Error::internal)
    }

    /// One session per device (Easemob's resource): the user's other sessions on the device of
    /// `session` give way to it (kicked, `KickReason::Replaced` with the new login's extension),
    /// wherever they are. Presence out of reach: an error (the new session does not open).
    pub async fn replace_device(&self, app: &App, user: &str, session: &SessionRef, ext: Option<String>) -> Result<()> {
        let Some(device) = session.device.as_deref() else { return Ok(()) };
        for old in self.presence.sessions(app.id, user).await? {
            if old.device.as_deref() == Some(device) && old != *session {
                let reason = KickReason::Replaced(ext.clone());
                self.bus.deliver(Event::Kick { app: app.id, user: user.to_string(), session: Some(old), reason });
            }
        }
        Ok(())
    }

    /// A realtime session opened (`ip`: the client's address; `reconnect`: the client came
    /// back on its own). Single-device login: another session of the user with the same tag on
    /// another device gives way (it is kicked for a conflict). Counts as a login today.
    pub async fn session_opened(&self, app: &App, user: &str, session: SessionRef, ip: Option<&str>, reconnect: bool) -> Result<()> {
        if let Some(tag) = session.tag.as_deref().filter(|t| !t.is_empty() && *t != "default") {
            // presence out of reach: the session does not open (the client retries), rather than
            // open without the single-device rule
            for old in self.presence.sessions(app.id, user).await? {
                if old.tag.as_deref() == Some(tag) && old.device != session.device && old != session {
                    // logged on failure: the new session is not refused for the old one's sake
                    self.bus.deliver(Event::Kick { app: app.id, user: user.to_string(), session: Some(old), reason: KickReason::Conflict });
                }
            }
        }
        self.presence.session_opened(app.id, user, session.clone(), self.stamps.now()).await?;
        self.teller.tell(app, crate::hooks::After::Online { user, session: &session, ip, reconnect }).await;
        self.record_login(app, user).await
    }

    /// A realtime session ended, and why.
    pub async fn session_closed(&self, app: &App, user: &str, session: &SessionRef, ip: Option<&str>, why: &crate::hooks::Offline) {
        self.forget_session(app.id, user, session).await;
        self.teller.tell(app, crate::hooks::After::Offline { user, session, ip, why }).await;
    }

    /// A realtime session ended: presence forgets it (all `session_closed` does when the app is
    /// gone). The session is gone whatever presence answers: a failure is logged, and a cluster's
    /// presence lets the session's entry expire with its heartbeats.
    pub async fn forget_session(&self, app: i64, user: &str, session: &SessionRef) {
        if let Err(e) = self.presence.session_closed(app, user, session, self.stamps.now()).await {
            tracing::warn!(app, user, error = %e, "presence could not forget a closed session");
        }
    }

    pub async fn record_login(&self, app: &App, user: &str) -> Result<()> {
        self.store.record_login(app.id, user, self.stamps.now()).await
    }

    /// (users online now, distinct users who logged in today, UTC).
    pub async fn stats(&self, app: &App) -> Result<(i64, i64)> {
        let online = self.presence.online_count(app.id).await? as i64;
        let today = self.store.count_logins_since(app.id, utc_day_start(self.stamps.now())).await?;
        Ok((online, today))
    }

    /// End every session of a user who is gone (deleted): delivered, a failure only logged.
    pub(crate) fn end_sessions(&self, app: &App, user: &str) {
        self.bus.deliver(Event::Kick { app: app.id, user: user.to_string(), session: None, reason: KickReason::Removed });
    }
}
