//! Push labels (Easemob §3.11): named sets of users a push task can be aimed at. The rules live
//! here, once: a label's name (1–64 of `[A-Za-z0-9_.-]`, case-sensitive) and description (at
//! most 255 characters), at most `em_push_labels_max` labels an app and
//! `em_push_label_users_max` users a label (both counted by the store in the write that adds),
//! at most [`LABEL_BATCH_MAX`] users one call adds or removes, only existing users under a
//! label, a label push aimed at 1 to [`PUSH_LABELS_MAX`] existing labels (the users under all of
//! them). Kept as entries: the labels in `ns::PUSH_LABELS` (key `""`, item = name, value = the
//! description), their users in `ns::PUSH_LABEL_USERS` (key = the label, item = the user).
//! The faces only translate: they read the wire, call these, and render what comes back.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::collections::Collections;
use crate::entries::{ns, Entry, EntryFilter, EntryQuery, Overwrite, Put, PutRule};
use crate::error::Error;
use crate::model::App;
use crate::store::Store;

/// Most users one call may add to or remove from a label.
pub const LABEL_BATCH_MAX: usize = 100;
/// Most labels one label push may name.
pub const PUSH_LABELS_MAX: usize = 5;
/// Longest label description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 255;

/// Why a push-label call was refused; an engine error otherwise.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LabelError {
    /// A field the call named is malformed: `name`, `description`, `usernames`, `targets`.
    #[error("{0} is not valid")]
    Invalid(&'static str),
    /// No label of this name.
    #[error("label {0} does not exist")]
    Missing(String),
    /// A label of this name exists already.
    #[error("label {0} already exists")]
    Exists(String),
    /// The app holds `em_push_labels_max` labels already.
    #[error("label count exceeds limit {0}")]
    TooMany(i64),
    #[error(transparent)]
    Engine(#[from] Error),
}

pub type LabelResult<T> = std::result::Result<T, LabelError>;

/// A label, with how many users are under it.
#[derive(Clone, Debug, PartialEq)]
pub struct PushLabel {
    pub name: String,
    pub description: String,
    pub count: i64,
    pub created_at: i64,
}

/// A user under a label, since when.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelUser {
    pub user: String,
    pub created_at: i64,
}

/// Why a user was not added to a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelUserFail {
    NoSuchUser,
    /// The label holds `em_push_label_users_max` users.
    LabelFull,
}

/// What adding users to a label did: who is under it now (those there already included), and
/// who is not, with why; each in the order asked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelUsersAdded {
    pub added: Vec<String>,
    pub failed: Vec<(String, LabelUserFail)>,
}

/// A page of a listing in insertion order, and the cursor (an entry `seq`) when more remain.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// A label name: 1–64 of `[A-Za-z0-9_.-]` (case-sensitive).
pub fn check_name(name: &str) -> LabelResult<&str> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)) {
        return Err(LabelError::Invalid("name"));
    }
    Ok(name)
}

/// The users of one add or remove: 1 to [`LABEL_BATCH_MAX`].
pub fn check_batch(users: &[String]) -> LabelResult<()> {
    if users.is_empty() || users.len() > LABEL_BATCH_MAX {
        return Err(LabelError::Invalid("usernames"));
    }
    Ok(())
}

/// The labels of one label push: 1 to [`PUSH_LABELS_MAX`].
pub fn check_targets(labels: &[String]) -> LabelResult<()> {
    if labels.is_empty() || labels.len() > PUSH_LABELS_MAX {
        return Err(LabelError::Invalid("targets"));
    }
    Ok(())
}

fn cap(max: i64) -> Option<i64> {
    (max > 0).then_some(max)
}

fn users_of(label: &str) -> EntryFilter {
    EntryFilter::collection(ns::PUSH_LABEL_USERS, label.to_string())
}

/// The push labels service. Built by `Engine::new`, reached as `engine.push_labels()`.
///
/// It holds only what it uses:
/// * `store`: users (only existing users go under a label);
/// * `collections`: the keyed-collections service the labels and their users live in.
pub struct PushLabels {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) collections: Arc<Collections>,
}

impl PushLabels {
    async fn label_entry(&self, app: &App, name: &str) -> LabelResult<Entry> {
        self.collections.get(app, ns::PUSH_LABELS, "", name).await?.ok_or_else(|| LabelError::Missing(name.to_string()))
    }

    async fn label_of(&self, app: &App, e: Entry) -> LabelResult<PushLabel> {
        let count = self.collections.stats(app, &users_of(&e.item)).await?.count;
        Ok(PushLabel { description: e.value.as_str().unwrap_or("").to_string(), name: e.item, count, created_at: e.created_at })
    }

    /// A page of entries in insertion order, after `after`, at most `limit`.
    async fn label_page(&self, app: &App, filter: EntryFilter, after: Option<i64>, limit: i64) -> LabelResult<(Vec<Entry>, Option<i64>)> {
        let mut v = self.collections.list(app, &EntryQuery { filter, after, limit: limit + 1, desc: false }).await?;
        let more = v.len() as i64 > limit;
        v.truncate(limit.max(0) as usize);
        let next = if more { v.last().map(|e| e.seq) } else { None };
        Ok((v, next))
    }

    /// A new label. `Exists` if the name is taken; `TooMany` if the app holds its plan's labels
    /// (counted by the store in the write).
    pub async fn create_push_label(&self, app: &App, name: &str, description: Option<String>) -> LabelResult<PushLabel> {
        let name = check_name(name)?;
        let description = description.unwrap_or_default();
        if description.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(LabelError::Invalid("description"));
        }
        let max = app.limits.em_push_labels_max;
        let rule = PutRule { overwrite: Overwrite::Never, max_items: cap(max) };
        match self.collections.put(app, vec![Entry::new(ns::PUSH_LABELS, "", name, json!(description))], rule).await?.as_slice() {
            [Put::Kept] => return Err(LabelError::Exists(name.to_string())),
            [Put::Full] => return Err(LabelError::TooMany(max)),
            _ => {}
        }
        let e = self.label_entry(app, name).await?;
        Ok(PushLabel { name: name.to_string(), description, count: 0, created_at: e.created_at })
    }

    /// One label, with its count of users.
    pub async fn push_label(&self, app: &App, name: &str) -> LabelResult<PushLabel> {
        let e = self.label_entry(app, name).await?;
        self.label_of(app, e).await
    }

    /// The app's labels in creation order, after the cursor `after`, at most `limit`.
    pub async fn push_labels(&self, app: &App, after: Option<i64>, limit: i64) -> LabelResult<Page<PushLabel>> {
        let (page, next) = self.label_page(app, EntryFilter::collection(ns::PUSH_LABELS, ""), after, limit).await?;
        let mut items = Vec::with_capacity(page.len());
        for e in page {
            items.push(self.label_of(app, e).await?);
        }
        Ok(Page { items, next })
    }

    /// Delete a label and its users.
    pub async fn delete_push_label(&self, app: &App, name: &str) -> LabelResult<()> {
        let e = self.label_entry(app, name).await?;
        self.collections.delete(app, &users_of(&e.item)).await?;
        self.collections.delete(app, &EntryFilter::collection(ns::PUSH_LABELS, "").items(vec![e.item])).await?;
        Ok(())
    }

    /// Put existing users under a label (at most `em_push_label_users_max` under one, counted by
    /// the store in the write); one outcome each.
    pub async fn add_push_label_users(&self, app: &App, label: &str, users: Vec<String>) -> LabelResult<LabelUsersAdded> {
        let label = self.label_entry(app, label).await?.item;
        check_batch(&users)?;
        let known: HashSet<String> = self.store.get_users(app.id, &users).await?.into_iter().map(|u| u.id).collect();
        let mut out = LabelUsersAdded::default();
        let mut entries = Vec::new();
        for u in users {
            if known.contains(&u) {
                entries.push(Entry::new(ns::PUSH_LABEL_USERS, label.clone(), u, Value::Null));
            } else {
                out.failed.push((u, LabelUserFail::NoSuchUser));
            }
        }
        let rule = PutRule { overwrite: Overwrite::Never, max_items: cap(app.limits.em_push_label_users_max) };
        let asked: Vec<String> = entries.iter().map(|e| e.item.clone()).collect();
        for (u, r) in asked.into_iter().zip(self.collections.put(app, entries, rule).await?) {
            if r == Put::Full {
                out.failed.push((u, LabelUserFail::LabelFull));
            } else {
                out.added.push(u);
            }
        }
        Ok(out)
    }

    /// Take users from under a label: (those removed, those that were not under it).
    pub async fn remove_push_label_users(&self, app: &App, label: &str, users: Vec<String>) -> LabelResult<(Vec<String>, Vec<String>)> {
        let label = self.label_entry(app, label).await?.item;
        check_batch(&users)?;
        let gone: Vec<String> =
            self.collections.delete(app, &users_of(&label).items(users.clone())).await?.into_iter().map(|e| e.item).collect();
        let absent = users.into_iter().filter(|u| !gone.contains(u)).collect();
        Ok((gone, absent))
    }

    /// One user under a label, if they are.
    pub async fn push_label_user(&self, app: &App, label: &str, user: &str) -> LabelResult<Option<LabelUser>> {
        let label = self.label_entry(app, label).await?.item;
        let e = self.collections.get(app, ns::PUSH_LABEL_USERS, &label, user).await?;
        Ok(e.map(|e| LabelUser { user: e.item, created_at: e.created_at }))
    }

    /// The users under a label in the order they were put there, after `after`, at most `limit`.
    pub async fn push_label_users(&self, app: &App, label: &str, after: Option<i64>, limit: i64) -> LabelResult<Page<LabelUser>> {
        let label = self.label_entry(app, label).await?.item;
        let (page, next) = self.label_page(app, users_of(&label), after, limit).await?;
        Ok(Page { items: page.into_iter().map(|e| LabelUser { user: e.item, created_at: e.created_at }).collect(), next })
    }

    /// Who a label push reaches: the users under every one of `labels` (1 to
    /// [`PUSH_LABELS_MAX`], each existing), in the first label's order.
    pub async fn push_label_audience(&self, app: &App, labels: &[String]) -> LabelResult<Vec<String>> {
        check_targets(labels)?;
        let mut users: Option<Vec<String>> = None;
        for l in labels {
            self.label_entry(app, l).await?;
            let these: Vec<String> = self.collections.list(app, &EntryQuery::all(users_of(l))).await?.into_iter().map(|e| e.item).collect();
            users = Some(match users {
                None => these,
                Some(prev) => prev.into_iter().filter(|u| these.contains(u)).collect(),
            });
        }
        Ok(users.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_batches_and_targets() {
        assert!(check_name("post-90s_a.b").is_ok());
        for bad in ["", "bad name!", "ü", &"x".repeat(65)] {
            assert_eq!(check_name(bad), Err(LabelError::Invalid("name")), "{bad:?}");
        }
        let users = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
        assert!(check_batch(&users(LABEL_BATCH_MAX)).is_ok());
        assert_eq!(check_batch(&users(0)), Err(LabelError::Invalid("usernames")));
        assert_eq!(check_batch(&users(LABEL_BATCH_MAX + 1)), Err(LabelError::Invalid("usernames")));
        assert!(check_targets(&users(PUSH_LABELS_MAX)).is_ok());
        assert_eq!(check_targets(&users(0)), Err(LabelError::Invalid("targets")));
        assert_eq!(check_targets(&users(PUSH_LABELS_MAX + 1)), Err(LabelError::Invalid("targets")));
    }
}
