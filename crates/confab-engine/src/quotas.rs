//! Plan quotas: how many users, groups and chat rooms an app may hold, and how many groups one
//! user may be in (Easemob's editions: `em_max_users`, `em_max_groups`, `em_max_chatrooms`,
//! `em_max_groups_per_user`). The store checks each in the transaction of the write it guards
//! (`UserStore::create_user_within`, `ConversationStore::create_conversation_within`,
//! `ConversationStore::add_members_within`), so creates racing each other never pass a quota
//! together. Which creates count is a parameter of the call ([`Quotas`]): Easemob's do; the other
//! faces' never did.

use std::sync::Arc;

pub use crate::quota::Quota;

use crate::error::{Error, Result};
use crate::model::{App, ConvKind, Conversation};
use crate::query::{ConvQuery, Field, Filter, Op, Scalar};
use crate::store::{ConvQuotas, Store};

/// Whether a create counts against the app's plan quotas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quotas {
    /// It does not (LeanCloud, MaxIM, the engine's own creates).
    #[default]
    Uncounted,
    /// It does (Easemob's REST API).
    Counted,
}

/// Whether a conversation is a group, as the group quotas count them.
pub fn is_group(kind: ConvKind, unique: bool) -> bool {
    kind == ConvKind::Normal && !unique
}

/// The app's limit for a quota; None: unlimited.
pub fn limit(app: &App, quota: &Quota) -> Option<i64> {
    let l = &app.limits;
    match quota {
        Quota::Users => (l.em_max_users > 0).then_some(l.em_max_users),
        Quota::Groups => (l.em_max_groups > 0).then_some(l.em_max_groups),
        // 0: unlimited; below 0: none (the free edition has no chat rooms)
        Quota::Chatrooms => (l.em_max_chatrooms != 0).then_some(l.em_max_chatrooms.max(0)),
        Quota::GroupsPerUser(_) => (l.em_max_groups_per_user > 0).then_some(l.em_max_groups_per_user),
    }
}

/// The quotas a new conversation is checked against by the store.
pub(crate) fn conv_quotas(app: &App, conv: &Conversation, quotas: Quotas) -> ConvQuotas {
    if quotas == Quotas::Uncounted {
        return ConvQuotas::default();
    }
    match conv.kind {
        ConvKind::Chatroom => ConvQuotas { per_app: limit(app, &Quota::Chatrooms), groups_per_member: None },
        k if is_group(k, conv.unique) => {
            ConvQuotas { per_app: limit(app, &Quota::Groups), groups_per_member: limit(app, &Quota::GroupsPerUser(String::new())) }
        }
        _ => ConvQuotas::default(),
    }
}

/// The groups quota of a member added to `conv`, if it counts.
pub(crate) fn member_quota(app: &App, conv: &Conversation, quotas: Quotas) -> Option<i64> {
    (quotas == Quotas::Counted && is_group(conv.kind, conv.unique)).then(|| limit(app, &Quota::GroupsPerUser(String::new()))).flatten()
}

/// Every group, optionally only those `member` belongs to.
fn groups_query(member: Option<&str>) -> ConvQuery {
    let mut conds = vec![Filter::Cond(Field::Unique, Op::Eq(Scalar::Bool(false)))];
    if let Some(u) = member {
        conds.push(Filter::Cond(Field::Members, Op::Eq(Scalar::Str(u.to_string()))));
    }
    ConvQuery { kinds: Some(vec![ConvKind::Normal]), filter: Filter::And(conds), count: true, limit: 0, ..Default::default() }
}

/// The plan quotas service: the look before a write (`check_quota`). Built by `Engine::new`,
/// reached as `engine.quotas()`. It holds only the `store` it counts in. The creates that count
/// do not go through it: the store checks in the write, against the limits the free functions
/// above ([`limit`], `conv_quotas`, `member_quota`) read from the app's plan, so a create path
/// needs no service. (Named `PlanQuotas`: [`Quotas`] says whether a create counts.)
pub struct PlanQuotas {
    pub(crate) store: Arc<dyn Store>,
}

impl PlanQuotas {
    /// Whether `adding` more would fit under a quota now: `OverQuota` if not. A look before the
    /// work, for a call that must refuse as a whole before it starts (an Easemob batch
    /// registration) or before its other checks; the write that adds checks again, atomically.
    pub async fn check_quota(&self, app: &App, quota: &Quota, adding: i64) -> Result<()> {
        let Some(max) = limit(app, quota) else { return Ok(()) };
        let held = match quota {
            Quota::Users => self.store.count_users(app.id).await?,
            Quota::Groups => self.store.query_conversations(app.id, &groups_query(None)).await?.1.unwrap_or(0),
            Quota::GroupsPerUser(u) => self.store.query_conversations(app.id, &groups_query(Some(u))).await?.1.unwrap_or(0),
            Quota::Chatrooms => {
                let q = ConvQuery { kinds: Some(vec![ConvKind::Chatroom]), count: true, limit: 0, ..Default::default() };
                self.store.query_conversations(app.id, &q).await?.1.unwrap_or(0)
            }
        };
        if held + adding > max {
            return Err(Error::OverQuota { quota: quota.clone(), max });
        }
        Ok(())
    }
}
