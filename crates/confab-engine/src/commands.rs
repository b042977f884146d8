//! Engine command types: what a face builds to ask for a change. The store's patch types
//! (`store::ConvPatch`, `store::MemberPatch`) stay inside the engine, which turns a command into
//! one after its checks and the app's hooks.

use serde_json::Value;

use crate::model::ConvSettings;

/// A change to one custom field.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrOp {
    Set(Value),
    Delete,
    /// Add a number (a missing field counts as 0).
    Increment(serde_json::Number),
    /// Append to an array (a missing field counts as empty).
    Add(Vec<Value>),
    /// Append the values the array does not hold yet.
    AddUnique(Vec<Value>),
    /// Remove every occurrence of the values from an array.
    Remove(Vec<Value>),
}

/// The settings a change sets; those left None keep their value. Applied field by field in the
/// store's write, so two changes of different settings made at once both hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingsChange {
    pub description: Option<String>,
    pub announcement: Option<String>,
    pub avatar: Option<String>,
    pub max_members: Option<i64>,
    pub public: Option<bool>,
    pub approval: Option<bool>,
    pub members_invite: Option<bool>,
    pub mute_all: Option<bool>,
    pub disabled: Option<bool>,
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        *self == SettingsChange::default()
    }

    /// The change without the settings that already hold these values (a change that changes
    /// nothing is none: no notice, no hook).
    pub fn changes_from(&self, s: &ConvSettings) -> SettingsChange {
        let mut after = s.clone();
        self.apply(&mut after);
        fn keep<T: Clone, B: PartialEq>(v: &Option<T>, before: &B, after: &B) -> Option<T> {
            v.clone().filter(|_| before != after)
        }
        SettingsChange {
            description: keep(&self.description, &s.description, &after.description),
            announcement: keep(&self.announcement, &s.announcement, &after.announcement),
            avatar: keep(&self.avatar, &s.avatar, &after.avatar),
            max_members: keep(&self.max_members, &s.max_members, &after.max_members),
            public: keep(&self.public, &s.public, &after.public),
            approval: keep(&self.approval, &s.approval, &after.approval),
            members_invite: keep(&self.members_invite, &s.members_invite, &after.members_invite),
            mute_all: keep(&self.mute_all, &s.mute_all, &after.mute_all),
            disabled: keep(&self.disabled, &s.disabled, &after.disabled),
        }
    }

    pub fn apply(&self, s: &mut ConvSettings) {
        fn set<T: Clone>(to: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *to = v.clone();
            }
        }
        fn set_some<T: Clone>(to: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                *to = v.clone();
            }
        }
        set_some(&mut s.description, &self.description);
        set_some(&mut s.announcement, &self.announcement);
        set_some(&mut s.avatar, &self.avatar);
        set_some(&mut s.max_members, &self.max_members);
        set(&mut s.public, &self.public);
        set(&mut s.approval, &self.approval);
        set(&mut s.members_invite, &self.members_invite);
        set(&mut s.mute_all, &self.mute_all);
        set(&mut s.disabled, &self.disabled);
    }
}

/// A change to a conversation (`Conversations::update_conversation`): its name, custom fields
/// (each at a path, `["attr", "color"]`), settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvUpdate {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    pub attrs: Vec<(Vec<String>, AttrOp)>,
    pub settings: SettingsChange,
}

impl ConvUpdate {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.attrs.is_empty() && self.settings.is_empty()
    }

    /// A change of the name only.
    pub fn name(name: impl Into<String>) -> Self {
        ConvUpdate { name: Some(Some(name.into())), ..Default::default() }
    }

    /// A change of settings only.
    pub fn settings(settings: SettingsChange) -> Self {
        ConvUpdate { settings, ..Default::default() }
    }

    /// Set a custom field.
    pub fn set_attr(mut self, path: &[&str], value: Value) -> Self {
        self.attrs.push((path.iter().map(|p| p.to_string()).collect(), AttrOp::Set(value)));
        self
    }
}
