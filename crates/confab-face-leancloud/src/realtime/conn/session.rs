//! `session`: open (login, catching up), close, refresh its token, who is online.

use confab_engine::model::*;
use confab_engine::sessions::NewSession;
use confab_engine::{random_lower, Offline};

use super::{rt, ConnState, Reply, RtError, Session};
use crate::realtime::proto::*;
use crate::realtime::push::{self, command};
use crate::realtime::SessionHandle;
use crate::sign;

/// Most conversations a login's unread notification lists, and patches it replays.
const UNREAD_AT_LOGIN: i64 = 50;
const PATCHES_AT_LOGIN: i64 = 100;
/// Most ids an online query may name.
const ONLINE_QUERY_MAX: usize = 20;

impl ConnState {
    pub(super) async fn session_cmd(&mut self, op: Option<OpType>, cmd: &GenericCommand) -> Reply {
        match op {
            Some(OpType::Open) => self.open(cmd).await,
            Some(OpType::Close) => {
                let idx = self.session_index(cmd)?;
                let s = self.sessions.remove(idx);
                self.gw.end_session(&s.handle, true, &Offline::Logout).await;
                Ok(Some(command(CommandType::Session, Some(OpType::Closed))))
            }
            Some(OpType::Refresh) => {
                let s = self.session(cmd)?;
                let token = self.issue_token(&s.app, &s.handle).await?;
                let old = s.handle.token.lock().replace(token.clone());
                if let Some(old) = old {
                    let _ = self.gw.engine.users().revoke_token(&old).await;
                }
                let mut r = command(CommandType::Session, Some(OpType::Refreshed));
                r.session_message =
                    Some(SessionCommand { st: Some(token), st_ttl: Some(self.gw.settings.st_ttl_secs as i32), ..Default::default() });
                Ok(Some(r))
            }
            Some(OpType::Query) => {
                let s = self.session(cmd)?;
                let ids = cmd.session_message.as_ref().map(|m| m.session_peer_ids.clone()).unwrap_or_default();
                if ids.len() > ONLINE_QUERY_MAX {
                    return Err(rt(4200, "at most 20 ids"));
                }
                let online = self.gw.engine.clients().check_online(&s.app, &ids).await?;
                let mut r = command(CommandType::Session, Some(OpType::QueryResult));
                r.session_message = Some(SessionCommand { online_session_peer_ids: online, ..Default::default() });
                Ok(Some(r))
            }
            _ => Err(rt(4114, "UNSUPPORTED_COMMAND")),
        }
    }

    async fn issue_token(&self, app: &App, h: &SessionHandle) -> Result<String, RtError> {
        let now = self.gw.engine.now();
        let token = Token {
            token: random_lower(32),
            app: app.id,
            user: Some(h.user.clone()),
            kind: TokenKind::LcRealtime,
            created_at: now,
            expires_at: Some(now + self.gw.settings.st_ttl_secs * 1000),
            device: Some(format!("{}\u{1f}{}", h.tag.clone().unwrap_or_default(), h.device.clone().unwrap_or_default())),
        };
        self.gw.engine.users().put_token(&token).await?;
        Ok(token.token)
    }

    /// `session open`: a first login (with a signature when the app requires one) or a
    /// reconnect with the session token. Answers `opened` with a session token, then pushes what
    /// the client missed: unread counts, edits and recalls, broadcasts.
    async fn open(&mut self, cmd: &GenericCommand) -> Reply {
        let engine = self.gw.engine.clone();
        let sm = cmd.session_message.clone().unwrap_or_default();
        let app_id = cmd.app_id.clone().ok_or_else(|| rt(4100, "APP_NOT_AVAILABLE"))?;
        let app = engine.apps().find_app(&AppLookup::LeanCloud(app_id)).await?.ok_or_else(|| rt(4100, "APP_NOT_AVAILABLE"))?;
        let peer = cmd.peer_id.clone().unwrap_or_else(|| random_lower(16));
        app.validate_user_id(&peer).map_err(|_| rt(4103, "INVALID_LOGIN"))?;
        let now = engine.now();
        let mut resumed: Option<Token> = None;
        if let Some(st) = sm.st.as_deref() {
            match engine.users().check_token(&app, st, TokenKind::LcRealtime).await? {
                Some(t) if t.user.as_deref() == Some(peer.as_str()) => resumed = Some(t),
                _ => return Err(rt(4112, "SESSION_TOKEN_EXPIRED")),
            }
        }
        if resumed.is_none() && app.limits.lc_sign_login {
            let keys = &app.keys.leancloud;
            let ok = match (sm.s.as_deref(), sm.t, sm.n.as_deref()) {
                (Some(s), Some(t), Some(n)) => sign::check(&keys.master_key, &format!("{}:{peer}::{t}:{n}", keys.app_id), s, t, now),
                _ => false,
            };
            if !ok {
                return Err(rt(4102, "SIGNATURE_FAILED"));
            }
        }
        // the same client opening again on this socket replaces its session
        if let Some(pos) = self.sessions.iter().position(|s| s.handle.user == peer) {
            let old = self.sessions.remove(pos);
            self.gw.end_session(&old.handle, false, &Offline::Lost { error: None }).await;
        }
        let (tag, device) = match resumed.as_ref().and_then(|t| t.device.clone()) {
            Some(d) => {
                let (t, dev) = d.split_once('\u{1f}').unwrap_or((&d, ""));
                (Some(t.to_string()).filter(|x| !x.is_empty()), Some(dev.to_string()).filter(|x| !x.is_empty()))
            }
            None => (sm.tag.clone().filter(|t| !t.is_empty()), sm.device_id.clone().filter(|d| !d.is_empty())),
        };
        engine.users().ensure_users(&app, &[&peer]).await?;
        let last_login = engine.users().get_user(&app, &peer).await?.last_login_at;
        let handle = self.gw.open_session(NewSession {
            app: app.id,
            user: peer.clone(),
            tag,
            device,
            ip: self.ip.clone(),
            outlet: self.conn.clone(),
        });
        engine.clients().session_opened(&app, &peer, handle.session_ref(), self.ip.as_deref(), sm.r == Some(true)).await?;
        let (token, ttl) = match resumed {
            // a resumed token keeps its expiry: the client is told what is left of it
            Some(t) => (t.token, t.expires_at.map_or(self.gw.settings.st_ttl_secs, |e| (e - now) / 1000)),
            None => (self.issue_token(&app, &handle).await?, self.gw.settings.st_ttl_secs),
        };
        *handle.token.lock() = Some(token.clone());
        self.sessions.push(Session { handle, app: app.clone(), wills: vec![] });

        let ttl = ttl as i32;
        let mut r = command(CommandType::Session, Some(OpType::Opened));
        r.peer_id = Some(peer.clone());
        r.server_ts = Some(now);
        r.session_message = Some(SessionCommand { st: Some(token), st_ttl: Some(ttl), ..Default::default() });
        self.catch_up(&app, &peer, sm.last_unread_notif_time, sm.last_patch_time, last_login).await?;
        Ok(Some(r))
    }

    /// What a client that logs in missed: unread counts (protocol 3), edits and recalls after
    /// its `lastPatchTime`, and broadcasts sent since it was last here.
    async fn catch_up(
        &mut self,
        app: &App,
        peer: &str,
        notif_time: Option<i64>,
        patch_time: Option<i64>,
        last_login: Option<i64>,
    ) -> Result<(), RtError> {
        let engine = self.gw.engine.clone();
        let now = engine.now();
        let entries = engine.messages().unread_summary(app, peer, notif_time.unwrap_or(0), UNREAD_AT_LOGIN).await?;
        if !entries.is_empty() {
            let convs = entries
                .iter()
                .map(|e| {
                    let cid = crate::extract::render_cid(e.conv, e.kind, e.foreign_id.as_deref());
                    push::unread_tuple(cid, e.count, e.last.as_ref(), e.mentioned)
                })
                .collect();
            let mut u = command(CommandType::Unread, None);
            u.peer_id = Some(peer.to_string());
            u.unread_message = Some(UnreadCommand { convs, notif_time: Some(now) });
            self.after_reply.push(u);
        }
        if let Some(since) = patch_time {
            let msgs = engine.messages().patches_since(app, peer, since, PATCHES_AT_LOGIN).await?;
            if !msgs.is_empty() {
                let mut items = Vec::with_capacity(msgs.len());
                let mut latest = since;
                for m in &msgs {
                    let conv = match engine.conversations().conversation(app, m.conv, None).await {
                        Ok(c) => ConvRef::of(&c),
                        Err(_) => ConvRef { id: m.conv, kind: ConvKind::Normal, foreign_id: None },
                    };
                    latest = latest.max(m.recalled_at.or(m.edited_at).unwrap_or(since));
                    items.push(push::patch_item(m, &conv));
                }
                let mut p = push::patches(items, latest);
                p.peer_id = Some(peer.to_string());
                self.after_reply.push(p);
            }
        }
        // a client new to the app gets every broadcast still valid
        let since = notif_time.or(last_login).unwrap_or(0);
        for b in engine.messages().active_broadcasts(app, since).await? {
            let conv = match engine.conversations().conversation(app, b.conv, None).await {
                Ok(c) => ConvRef::of(&c),
                Err(_) => ConvRef { id: b.conv, kind: ConvKind::Service, foreign_id: None },
            };
            let mut d = push::direct(&Message::new(b.app, b.id, b.conv, b.from.clone(), b.timestamp, b.content.clone()), &conv, now);
            d.peer_id = Some(peer.to_string());
            self.after_reply.push(d);
        }
        Ok(())
    }
}
