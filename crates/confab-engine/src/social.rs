//! A user's relations and settings kept in keyed entries: contacts (mutual), the user blocklist
//! (enforced when a one-to-one message is sent), user metadata (size-capped per user and per
//! app), presence statuses and subscriptions, and push tasks handed to the bus for delivery.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

pub use crate::push_task::PushTask;

use crate::bus::{Bus, ContactNews, Event};
use crate::collections::Collections;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Put, PutRule};
use crate::error::{Error, Result};
use crate::hooks::{After, ContactOp};
use crate::ids::Stamps;
use crate::model::{App, ConvKind, Conversation};
use crate::presence::Presence;
use crate::store::Store;
use crate::teller::Teller;

/// Contact requests one user may have waiting for their answer.
pub const CONTACT_REQUESTS_MAX: i64 = 500;
/// Longest message a contact request may carry.
pub const CONTACT_REASON_MAX_BYTES: usize = 1024;
/// How long a contact request waits for its answer.
pub const CONTACT_REQUEST_TTL_MS: i64 = 30 * 24 * 3600 * 1000;

/// A contact request waiting for its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactRequest {
    /// Who asked.
    pub from: String,
    pub reason: Option<String>,
    /// Unix ms of the request.
    pub at: i64,
}

/// A limit of 0 means unlimited.
fn cap(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

/// One user's presence: custom status per device resource, the last ext, when it last changed.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceInfo {
    pub user: String,
    /// Unix ms of the last status change or login (0 if never).
    pub last_time: i64,
    pub ext: String,
    /// Device resource -> status (`"0"` offline, `"1"` online, others custom).
    pub status: BTreeMap<String, String>,
}

/// The social service: a user's contacts, blocklist, metadata, presence statuses and
/// subscriptions, and push tasks. Built by `Engine::new`, reached as `engine.social()`.
///
/// It holds only what it uses, and its dependencies are explicit:
/// * `store`: users (`get_user`, `get_users`) and conversation members (the blocklist check);
/// * `presence`: the live sessions `presence_info` reports;
/// * `bus`: online users hear of contact requests and their answers;
/// * `stamps`: the engine's clock and id generator (subscription ends, push task ids);
/// * `collections`: the keyed-collections service all of its data lives in;
/// * `teller`: the narrow part of the engine that tells the app's code (contact changes, push
///   tasks) — the hooks, the outbox and its bell — rather than the whole `Engine`.
pub struct Social {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) presence: Arc<dyn Presence>,
    /// Online users hear of their contacts (`Event::Contact`).
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) stamps: Stamps,
    pub(crate) collections: Arc<Collections>,
    pub(crate) teller: Teller,
}

impl Social {
    async fn get_user(&self, app: &App, id: &str) -> Result<()> {
        self.store.get_user(app.id, id).await?.ok_or_else(|| Error::UserNotFound(id.to_string())).map(drop)
    }

    // ------------------------------------------------------------------ contacts

    /// Make two users friends of each other. Each side's friend count is capped by the app's
    /// contact quota (`em_max_contacts`, the plan's); over it: `TooMany { what: "contacts" }`.
    pub async fn add_contact(&self, app: &App, owner: &str, friend: &str) -> Result<()> {
        if owner == friend {
            return Err(Error::invalid("a user cannot add themself as a friend"));
        }
        self.get_user(app, owner).await?;
        self.get_user(app, friend).await?;
        let rule = PutRule { max_items: cap(app.limits.em_max_contacts), ..Default::default() };
        let max = app.limits.em_max_contacts.max(0) as usize;
        let a = self.collections.put(app, vec![Entry::new(ns::CONTACTS, owner, friend, Value::Null)], rule).await?;
        if a == [Put::Full] {
            return Err(Error::too_many("contacts", max));
        }
        let b = self.collections.put(app, vec![Entry::new(ns::CONTACTS, friend, owner, Value::Null)], rule).await?;
        if b == [Put::Full] {
            if a == [Put::Added] {
                self.collections.delete(app, &EntryFilter::collection(ns::CONTACTS, owner).items(vec![friend.to_string()])).await?;
            }
            return Err(Error::too_many("contacts", max));
        }
        if a == [Put::Added] || b == [Put::Added] {
            self.teller.tell(app, After::Contact { op: ContactOp::Added, owner, others: &[friend.to_string()] }).await;
            self.news(app, owner, friend, ContactNews::Added, None);
            self.news(app, friend, owner, ContactNews::Added, None);
        }
        // a request either had of the other is answered
        self.forget_requests(app, owner, friend).await?;
        Ok(())
    }

    fn news(&self, app: &App, user: &str, peer: &str, news: ContactNews, reason: Option<String>) {
        self.bus.deliver(Event::Contact { app: app.id, user: user.to_string(), peer: peer.to_string(), news, reason });
    }

    async fn forget_requests(&self, app: &App, a: &str, b: &str) -> Result<()> {
        self.collections.delete(app, &EntryFilter::collection(ns::CONTACT_REQUESTS, a).items(vec![b.to_string()])).await?;
        self.collections.delete(app, &EntryFilter::collection(ns::CONTACT_REQUESTS, b).items(vec![a.to_string()])).await?;
        Ok(())
    }

    /// `from` asks `to` to be their contact. The request waits for `to`'s answer (at most
    /// [`CONTACT_REQUESTS_MAX`] per user, for [`CONTACT_REQUEST_TTL_MS`]); `to`, if online,
    /// hears of it now, else when they log in (`contact_requests`). Asking again renews it. A
    /// request to a contact, or to someone who blocked `from`, is dropped without a word (the
    /// asker is not told of a block); when `to` had asked `from` already, they become contacts.
    pub async fn request_contact(&self, app: &App, from: &str, to: &str, reason: Option<&str>) -> Result<()> {
        if from == to {
            return Err(Error::invalid("a user cannot add themself as a friend"));
        }
        self.get_user(app, from).await?;
        self.get_user(app, to).await?;
        if reason.is_some_and(|r| r.len() > CONTACT_REASON_MAX_BYTES) {
            return Err(Error::too_large("reason", CONTACT_REASON_MAX_BYTES));
        }
        if self.collections.get(app, ns::CONTACTS, from, to).await?.is_some() || self.is_blocked_by(app, to, from).await? {
            return Ok(());
        }
        if self.collections.get(app, ns::CONTACT_REQUESTS, from, to).await?.is_some() {
            return self.accept_contact(app, from, to).await;
        }
        let at = self.stamps.now();
        let e = Entry::new(ns::CONTACT_REQUESTS, to, from, json!({"reason": reason, "at": at})).expiring(Some(at + CONTACT_REQUEST_TTL_MS));
        let rule = PutRule { max_items: Some(CONTACT_REQUESTS_MAX), ..Default::default() };
        if self.collections.put(app, vec![e], rule).await? == [Put::Full] {
            return Err(Error::too_many("contact requests", CONTACT_REQUESTS_MAX as usize));
        }
        self.news(app, to, from, ContactNews::Invited, reason.map(str::to_string));
        Ok(())
    }

    /// `user` agrees to `from`'s request: they become contacts (the quota applies), `from`
    /// hears that `user` agreed and both that they have a new contact. `NotAllowed` when
    /// `from` asked nothing (or the request lapsed).
    pub async fn accept_contact(&self, app: &App, user: &str, from: &str) -> Result<()> {
        if self.collections.get(app, ns::CONTACT_REQUESTS, user, from).await?.is_none() {
            return Err(Error::NotAllowed(format!("{from} has not asked {user} to be a contact")));
        }
        self.add_contact(app, user, from).await?;
        self.news(app, from, user, ContactNews::Agreed, None);
        Ok(())
    }

    /// `user` declines `from`'s request: it is forgotten and `from` hears of it. `NotAllowed`
    /// when `from` asked nothing.
    pub async fn decline_contact(&self, app: &App, user: &str, from: &str) -> Result<()> {
        let f = EntryFilter::collection(ns::CONTACT_REQUESTS, user).items(vec![from.to_string()]);
        if self.collections.delete(app, &f).await?.is_empty() {
            return Err(Error::NotAllowed(format!("{from} has not asked {user} to be a contact")));
        }
        self.news(app, from, user, ContactNews::Declined, None);
        Ok(())
    }

    /// The requests waiting for `user`'s answer, oldest first.
    pub async fn contact_requests(&self, app: &App, user: &str) -> Result<Vec<ContactRequest>> {
        let q = EntryQuery::all(EntryFilter::collection(ns::CONTACT_REQUESTS, user));
        let mut out: Vec<ContactRequest> = self
            .collections
            .list(app, &q)
            .await?
            .into_iter()
            .map(|e| ContactRequest {
                reason: e.value.get("reason").and_then(Value::as_str).map(str::to_string),
                at: e.value.get("at").and_then(Value::as_i64).unwrap_or(e.updated_at),
                from: e.item,
            })
            .collect();
        out.sort_by_key(|r| r.at);
        Ok(out)
    }

    /// End a friendship, on both sides. Whether they were friends.
    pub async fn remove_contact(&self, app: &App, owner: &str, friend: &str) -> Result<bool> {
        let a = self.collections.delete(app, &EntryFilter::collection(ns::CONTACTS, owner).items(vec![friend.to_string()])).await?;
        let b = self.collections.delete(app, &EntryFilter::collection(ns::CONTACTS, friend).items(vec![owner.to_string()])).await?;
        let removed = !a.is_empty() || !b.is_empty();
        // the remarks each kept on the other go with the friendship
        for (x, y) in [(owner, friend), (friend, owner)] {
            let f = EntryFilter::collection(ns::CONTACT_REMARKS, x).items(vec![y.to_string()]);
            self.collections.delete(app, &f).await?;
        }
        if removed {
            self.teller.tell(app, After::Contact { op: ContactOp::Removed, owner, others: &[friend.to_string()] }).await;
            self.news(app, friend, owner, ContactNews::Removed, None);
        }
        Ok(removed)
    }

    /// A user's friends, in the order they were added.
    pub async fn contacts(&self, app: &App, owner: &str) -> Result<Vec<String>> {
        let q = EntryQuery::all(EntryFilter::collection(ns::CONTACTS, owner));
        Ok(self.collections.list(app, &q).await?.into_iter().map(|e| e.item).collect())
    }

    // ------------------------------------------------------------------ user blocklist

    /// Add users to `owner`'s blocklist (at most `em_max_user_blocks`; over it nothing is added:
    /// `TooMany { what: "blocked users" }`). Every user must exist. Friends stay friends.
    pub async fn block_users(&self, app: &App, owner: &str, users: &[String]) -> Result<()> {
        for u in users {
            if u == owner {
                return Err(Error::invalid("a user cannot block themself"));
            }
            self.get_user(app, u).await?;
        }
        let max = app.limits.em_max_user_blocks;
        let f = EntryFilter::collection(ns::USER_BLOCKS, owner);
        let have: std::collections::HashSet<String> =
            self.collections.list(app, &EntryQuery::all(f.clone())).await?.into_iter().map(|e| e.item).collect();
        let new: std::collections::BTreeSet<&String> = users.iter().filter(|u| !have.contains(*u)).collect();
        if max > 0 && (have.len() + new.len()) as i64 > max {
            return Err(Error::too_many("blocked users", max as usize));
        }
        let entries = users.iter().map(|u| Entry::new(ns::USER_BLOCKS, owner, u.clone(), Value::Null)).collect();
        let rule = PutRule { max_items: cap(max), ..Default::default() };
        let puts = self.collections.put(app, entries, rule).await?;
        if puts.contains(&Put::Full) {
            return Err(Error::too_many("blocked users", max.max(0) as usize));
        }
        let mut blocked: Vec<String> = users.iter().zip(&puts).filter(|(_, p)| **p == Put::Added).map(|(u, _)| u.clone()).collect();
        blocked.dedup();
        if !blocked.is_empty() {
            self.teller.tell(app, After::Contact { op: ContactOp::Blocked, owner, others: &blocked }).await;
        }
        Ok(())
    }

    pub async fn unblock_user(&self, app: &App, owner: &str, user: &str) -> Result<bool> {
        let f = EntryFilter::collection(ns::USER_BLOCKS, owner).items(vec![user.to_string()]);
        let unblocked = !self.collections.delete(app, &f).await?.is_empty();
        if unblocked {
            self.teller.tell(app, After::Contact { op: ContactOp::Unblocked, owner, others: &[user.to_string()] }).await;
        }
        Ok(unblocked)
    }

    /// A page of `owner`'s blocklist, newest first, after the cursor `after` (an entry's `seq`).
    pub async fn blocked_users(&self, app: &App, owner: &str, after: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
        let q = EntryQuery { filter: EntryFilter::collection(ns::USER_BLOCKS, owner), after, limit, desc: true };
        self.collections.list(app, &q).await
    }

    /// Whether `blocker` has blocked `user`.
    pub async fn is_blocked_by(&self, app: &App, blocker: &str, user: &str) -> Result<bool> {
        Ok(self.collections.get(app, ns::USER_BLOCKS, blocker, user).await?.is_some())
    }

    /// A one-to-one message from a user the recipient blocked is refused, whoever sends it.
    pub(crate) async fn check_not_blocked(&self, app: &App, conv: &Conversation, from: &str) -> Result<()> {
        if conv.kind != ConvKind::Normal || !conv.unique {
            return Ok(());
        }
        // two reads by key, on every one-to-one send: the two members, then whether the other
        // one blocked the sender
        let members = self.store.member_ids(app.id, conv.id).await?;
        if members.len() != 2 || !members.iter().any(|m| m == from) {
            return Ok(());
        }
        match members.iter().find(|m| *m != from) {
            Some(other) if self.is_blocked_by(app, other, from).await? => Err(Error::Forbidden(format!("{from} is blocked by {other}"))),
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ user metadata

    /// Set metadata fields of a user (merged with what is there). The user's fields together
    /// (key and value bytes) stay within `em_metadata_user_max_bytes`, the app's within
    /// `em_metadata_app_max_bytes`: `TooLarge { what: "user metadata" | "app metadata" }`.
    pub async fn set_metadata(&self, app: &App, user: &str, fields: &[(String, String)]) -> Result<()> {
        if fields.iter().any(|(k, _)| k.is_empty()) {
            return Err(Error::invalid("a metadata key must not be empty"));
        }
        let mut merged: BTreeMap<String, String> = self.metadata(app, user).await?.into_iter().collect();
        let before: i64 = merged.iter().map(|(k, v)| (k.len() + v.len()) as i64).sum();
        for (k, v) in fields {
            merged.insert(k.clone(), v.clone());
        }
        let after: i64 = merged.iter().map(|(k, v)| (k.len() + v.len()) as i64).sum();
        let max = app.limits.em_metadata_user_max_bytes;
        if max > 0 && after > max {
            return Err(Error::too_large("user metadata", max as usize));
        }
        let app_max = app.limits.em_metadata_app_max_bytes;
        if app_max > 0 && after > before && self.metadata_bytes(app).await? + (after - before) > app_max {
            return Err(Error::too_large("app metadata", app_max as usize));
        }
        let entries = fields.iter().map(|(k, v)| Entry::new(ns::USER_METADATA, user, k.clone(), json!(v))).collect();
        self.collections.put(app, entries, PutRule::default()).await?;
        Ok(())
    }

    /// A user's metadata fields, by key.
    pub async fn metadata(&self, app: &App, user: &str) -> Result<Vec<(String, String)>> {
        let q = EntryQuery::all(EntryFilter::collection(ns::USER_METADATA, user));
        let mut v: Vec<(String, String)> = self
            .collections
            .list(app, &q)
            .await?
            .into_iter()
            .map(|e| (e.item, e.value.as_str().map(str::to_string).unwrap_or_else(|| e.value.to_string())))
            .collect();
        v.sort();
        Ok(v)
    }

    pub async fn delete_metadata(&self, app: &App, user: &str) -> Result<bool> {
        Ok(!self.collections.delete(app, &EntryFilter::collection(ns::USER_METADATA, user)).await?.is_empty())
    }

    /// Bytes of every user's metadata in the app.
    pub async fn metadata_bytes(&self, app: &App) -> Result<i64> {
        let f = EntryFilter { ns: ns::USER_METADATA.to_string(), ..Default::default() };
        Ok(self.collections.stats(app, &f).await?.bytes)
    }

    // ------------------------------------------------------------------ presence

    /// Set a user's status on one device resource, with its ext (≤ `em_presence_ext_max_bytes`).
    pub async fn set_presence(&self, app: &App, user: &str, resource: &str, status: &str, ext: &str) -> Result<()> {
        let max = app.limits.em_presence_ext_max_bytes;
        if ext.len() > max {
            return Err(Error::too_large("ext", max));
        }
        if resource.is_empty() || status.is_empty() {
            return Err(Error::invalid("resource and status are required"));
        }
        let e = Entry::new(ns::PRESENCE_STATUS, user, resource, json!({"status": status, "ext": ext}));
        self.collections.put(app, vec![e], PutRule::default()).await?;
        Ok(())
    }

    /// The presence of users: each live session (LeanCloud SDK, …) is a resource online (`"1"`)
    /// unless a status was set for it; statuses set through REST are kept per resource.
    pub async fn presence_info(&self, app: &App, users: &[String]) -> Result<Vec<PresenceInfo>> {
        let known: std::collections::HashMap<String, crate::model::User> =
            self.store.get_users(app.id, users).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let mut info = PresenceInfo { user: u.clone(), last_time: 0, ext: String::new(), status: BTreeMap::new() };
            if let Some(user) = known.get(u) {
                info.last_time = user.last_login_at.unwrap_or(0);
            }
            let mut latest = 0;
            for e in self.collections.list(app, &EntryQuery::all(EntryFilter::collection(ns::PRESENCE_STATUS, u.clone()))).await? {
                let status = e.value.get("status").and_then(Value::as_str).unwrap_or("0").to_string();
                if e.updated_at >= latest {
                    latest = e.updated_at;
                    info.ext = e.value.get("ext").and_then(Value::as_str).unwrap_or("").to_string();
                }
                info.status.insert(e.item, status);
            }
            info.last_time = info.last_time.max(latest);
            for s in self.presence.sessions(app.id, u).await? {
                let resource = s.device.clone().or(s.tag.clone()).unwrap_or_else(|| format!("session_{}_{}", s.node, s.session));
                info.status.entry(resource).or_insert_with(|| "1".to_string());
            }
            out.push(info);
        }
        Ok(out)
    }

    /// Subscribe `user` to the presence of `targets` for `expiry_secs` (renewing any
    /// subscription there is). At most `em_presence_subscriptions_max` live subscriptions.
    /// The subscriptions' ends, in the order of `targets`.
    pub async fn subscribe_presence(&self, app: &App, user: &str, targets: &[String], expiry_secs: i64) -> Result<Vec<i64>> {
        if targets.iter().any(|t| t == user) {
            return Err(Error::invalid("you can't sub yourself"));
        }
        let until = self.stamps.now() + expiry_secs * 1000;
        let max = app.limits.em_presence_subscriptions_max;
        let entries =
            targets.iter().map(|t| Entry::new(ns::PRESENCE_SUBSCRIPTIONS, user, t.clone(), Value::Null).expiring(Some(until))).collect();
        let done = self.collections.put(app, entries, PutRule { max_items: cap(max), ..Default::default() }).await?;
        if done.contains(&Put::Full) {
            return Err(Error::too_many("presence subscriptions", max.max(0) as usize));
        }
        Ok(targets.iter().map(|_| until).collect())
    }

    pub async fn unsubscribe_presence(&self, app: &App, user: &str, targets: &[String]) -> Result<()> {
        self.collections.delete(app, &EntryFilter::collection(ns::PRESENCE_SUBSCRIPTIONS, user).items(targets.to_vec())).await?;
        Ok(())
    }

    /// A user's live subscriptions, oldest first: `(total, page)`; `page` is 1-based.
    pub async fn presence_subscriptions(&self, app: &App, user: &str, page: i64, size: i64) -> Result<(i64, Vec<Entry>)> {
        let all = self.collections.list(app, &EntryQuery::all(EntryFilter::collection(ns::PRESENCE_SUBSCRIPTIONS, user))).await?;
        let total = all.len() as i64;
        let skip = ((page.max(1) - 1) * size).max(0) as usize;
        Ok((total, all.into_iter().skip(skip).take(size.max(0) as usize).collect()))
    }

    // ------------------------------------------------------------------ push tasks

    /// Hand a push task to the app's push relay (`PushSettings::webhook_url`; with none set
    /// the task goes nowhere), through the outbox. Its id.
    pub async fn push_task(&self, app: &App, mut task: PushTask) -> Result<i64> {
        task.id = self.stamps.next_id();
        task.created_at = self.stamps.now();
        self.teller.tell(app, crate::hooks::After::PushTask { task: &task }).await;
        Ok(task.id)
    }

    // ------------------------------------------------------------------ cleanup

    /// Forget a deleted user's relations: their contacts (both sides), blocklists (theirs and
    /// entries naming them), metadata, presence, push settings and label memberships.
    pub(crate) async fn forget_user_relations(&self, app: &App, user: &str) -> Result<()> {
        for n in [
            ns::CONTACTS,
            ns::CONTACT_REQUESTS,
            ns::USER_BLOCKS,
            ns::USER_METADATA,
            ns::PRESENCE_STATUS,
            ns::PRESENCE_SUBSCRIPTIONS,
            ns::PUSH_SETTINGS,
        ] {
            self.collections.delete(app, &EntryFilter::collection(n, user)).await?;
        }
        for n in [ns::CONTACTS, ns::CONTACT_REQUESTS, ns::USER_BLOCKS, ns::PRESENCE_SUBSCRIPTIONS, ns::PUSH_LABEL_USERS] {
            let f = EntryFilter { ns: n.to_string(), key: None, items: Some(vec![user.to_string()]), owner: None };
            self.collections.delete(app, &f).await?;
        }
        Ok(())
    }
}
