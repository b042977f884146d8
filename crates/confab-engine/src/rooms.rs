//! Chat room custom attributes (Easemob 聊天室自定义属性) and the app's chat room super admins,
//! kept as entries. An attribute is owned by the member who set it: others may overwrite or
//! delete it only by force (the app's server); one set with `auto_delete` goes when its owner
//! leaves the room (or is removed or blocked). Whatever face changes a room, these rules hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::collections::Collections;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Overwrite, Put, PutRule};
use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::model::{App, ConvKind, Conversation};
use crate::presence::Presence;
use crate::store::Store;

/// Most attributes one call may set or delete.
pub const ROOM_ATTRIBUTES_BATCH_MAX: usize = 10;

/// The outcome of an attribute change: the keys changed, and each refused key with its reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyOutcome {
    pub done: Vec<String>,
    pub failed: Vec<(String, String)>,
}

fn room_key(conv: &Conversation) -> String {
    conv.id.to_string()
}

fn check_batch(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("name at least one attribute"));
    }
    if n > ROOM_ATTRIBUTES_BATCH_MAX {
        return Err(Error::invalid(format!("exceed allowed batch size {ROOM_ATTRIBUTES_BATCH_MAX}")));
    }
    Ok(())
}

/// The rooms service: chat room custom attributes and the app's chat room super admins. Built
/// by `Engine::new`, reached as `engine.rooms()`.
///
/// It holds only what it uses:
/// * `store`: users (a super admin must exist);
/// * `presence`: who is in a room (only a member sets attributes unless forced);
/// * `stamps`: the engine's clock (the presence check);
/// * `collections`: the keyed-collections service the attributes and super admins live in.
pub struct Rooms {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) stamps: Stamps,
    pub(crate) collections: Arc<Collections>,
}

impl Rooms {
    fn check_room(conv: &Conversation) -> Result<()> {
        if conv.kind != ConvKind::Chatroom {
            return Err(Error::WrongKind { expected: ConvKind::Chatroom });
        }
        Ok(())
    }

    /// A room's attributes: every one, or those named (unknown names are left out).
    pub async fn room_attributes(&self, app: &App, conv: &Conversation, keys: Option<Vec<String>>) -> Result<BTreeMap<String, String>> {
        Self::check_room(conv)?;
        let mut f = EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv));
        f.items = keys;
        let entries = self.collections.list(app, &EntryQuery::all(f)).await?;
        Ok(entries.into_iter().map(|e| (e.item, e.value["v"].as_str().unwrap_or_default().to_string())).collect())
    }

    /// Set attributes as `user`, who must be in the room unless `forced`. Without force a key
    /// another member set is refused; each key is checked on its own (name length and charset
    /// `[a-zA-Z0-9_.-]`, value length, the room's `em_room_attributes_max`), at most
    /// [`ROOM_ATTRIBUTES_BATCH_MAX`] a call.
    pub async fn set_room_attributes(
        &self,
        app: &App,
        conv: &Conversation,
        user: &str,
        pairs: Vec<(String, String)>,
        auto_delete: bool,
        forced: bool,
    ) -> Result<KeyOutcome> {
        Self::check_room(conv)?;
        check_batch(pairs.len())?;
        if !forced && !self.presence.in_room(app.id, conv.id, user, self.stamps.now()).await? {
            return Err(Error::NotMember);
        }
        let l = &app.limits;
        let mut out = KeyOutcome::default();
        let mut entries = Vec::new();
        for (k, v) in pairs {
            let reason = if k.is_empty() || k.chars().count() > l.em_room_attribute_key_max_chars {
                Some(format!("properties key '{k}' is exceeding maximum limit {}", l.em_room_attribute_key_max_chars))
            } else if !k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
                Some(format!("properties key '{k}' may hold only a-z A-Z 0-9 _ - ."))
            } else if v.chars().count() > l.em_room_attribute_value_max_chars {
                Some(format!("properties value of '{k}' is exceeding maximum limit {}", l.em_room_attribute_value_max_chars))
            } else {
                None
            };
            match reason {
                Some(r) => out.failed.push((k, r)),
                None => entries
                    .push(Entry::new(ns::ROOM_ATTRIBUTES, room_key(conv), k, json!({"v": v, "auto_delete": auto_delete})).owned_by(user)),
            }
        }
        let keys: Vec<String> = entries.iter().map(|e| e.item.clone()).collect();
        let rule = PutRule {
            overwrite: if forced { Overwrite::Always } else { Overwrite::IfOwner },
            max_items: (l.em_room_attributes_max > 0).then_some(l.em_room_attributes_max),
        };
        let puts = if entries.is_empty() { vec![] } else { self.collections.put(app, entries, rule).await? };
        for (k, put) in keys.into_iter().zip(puts) {
            match put {
                Put::Added | Put::Replaced | Put::Kept => out.done.push(k),
                Put::NotOwner => out.failed.push((k, "others are not allowed to be set".into())),
                Put::Full => out.failed.push((k, format!("the room has the most attributes it may have: {}", l.em_room_attributes_max))),
            }
        }
        Ok(out)
    }

    /// Delete attributes as `user`: without force only the user's own keys.
    pub async fn delete_room_attributes(
        &self,
        app: &App,
        conv: &Conversation,
        user: &str,
        keys: Vec<String>,
        forced: bool,
    ) -> Result<KeyOutcome> {
        Self::check_room(conv)?;
        check_batch(keys.len())?;
        let f = EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv)).items(keys.clone());
        let existing: BTreeMap<String, Option<String>> =
            self.collections.list(app, &EntryQuery::all(f.clone())).await?.into_iter().map(|e| (e.item, e.owner)).collect();
        let mut out = KeyOutcome::default();
        let mut deletable = Vec::new();
        for k in keys {
            match existing.get(&k) {
                None => out.failed.push((k, "the attribute does not exist".into())),
                Some(owner) if !forced && owner.as_deref() != Some(user) => {
                    out.failed.push((k, "others are not allowed to be deleted".into()))
                }
                Some(_) => deletable.push(k),
            }
        }
        if !deletable.is_empty() {
            self.collections.delete(app, &EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv)).items(deletable.clone())).await?;
        }
        out.done = deletable;
        Ok(out)
    }

    /// A user left a room: their attributes set with `auto_delete` go.
    pub(crate) async fn forget_room_attributes(&self, app: &App, conv: &Conversation, users: &[String]) -> Result<()> {
        for u in users {
            let f = EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv)).owner(u.clone());
            let gone: Vec<String> = self
                .collections
                .list(app, &EntryQuery::all(f))
                .await?
                .into_iter()
                .filter(|e| e.value["auto_delete"] == Value::Bool(true))
                .map(|e| e.item)
                .collect();
            if !gone.is_empty() {
                self.collections.delete(app, &EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv)).items(gone)).await?;
            }
        }
        Ok(())
    }

    /// A deleted room's attributes go with it.
    pub(crate) async fn forget_room(&self, app: &App, conv: &Conversation) -> Result<()> {
        self.collections.delete(app, &EntryFilter::collection(ns::ROOM_ATTRIBUTES, room_key(conv))).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ super admins

    /// Make a user a chat room super admin of the app (may create chat rooms from a client).
    pub async fn add_room_super_admin(&self, app: &App, user: &str) -> Result<()> {
        self.store.get_user(app.id, user).await?.ok_or_else(|| Error::UserNotFound(user.to_string()))?;
        self.collections.put(app, vec![Entry::new(ns::ROOM_SUPER_ADMINS, "", user, Value::Null)], PutRule::default()).await?;
        Ok(())
    }

    /// Whether the user was a super admin.
    pub async fn remove_room_super_admin(&self, app: &App, user: &str) -> Result<bool> {
        let f = EntryFilter::collection(ns::ROOM_SUPER_ADMINS, "").items(vec![user.to_string()]);
        Ok(!self.collections.delete(app, &f).await?.is_empty())
    }

    /// The super admins, in the order they were made; `skip` passed over, at most `limit`.
    pub async fn room_super_admins(&self, app: &App, skip: i64, limit: i64) -> Result<Vec<String>> {
        let q = EntryQuery { limit: skip.saturating_add(limit), ..EntryQuery::all(EntryFilter::collection(ns::ROOM_SUPER_ADMINS, "")) };
        Ok(self.collections.list(app, &q).await?.into_iter().skip(skip.max(0) as usize).map(|e| e.item).collect())
    }

    pub async fn is_room_super_admin(&self, app: &App, user: &str) -> Result<bool> {
        Ok(self.collections.get(app, ns::ROOM_SUPER_ADMINS, "", user).await?.is_some())
    }
}
