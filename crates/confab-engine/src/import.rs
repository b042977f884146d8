//! Imports from another service (a LeanCloud app's conversations and history): conversations and
//! messages keep the ids they had there (`foreign_id`) beside the numeric ids every face can use,
//! and their timestamps. An importer (`confab-import`) translates the source's records; the rules
//! of where they go live here.

use std::sync::Arc;

use crate::collections::Collections;
use crate::error::{Error, Result};
use crate::ids::Stamps;
use crate::model::*;
use crate::store::{Imported, Store};
use crate::users::Users;

/// A conversation as the source had it.
#[derive(Clone, Debug)]
pub struct ImportedConversation {
    pub foreign_id: String,
    pub kind: ConvKind,
    pub name: Option<String>,
    pub creator: Option<String>,
    pub unique: bool,
    pub unique_id: Option<String>,
    pub attrs: Attrs,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_message_at: Option<i64>,
    /// Members (subscribers of a service conversation), with their roles.
    pub members: Vec<(String, Role)>,
    /// Members who turned notifications off (LeanCloud `mu`).
    pub muted: Vec<String>,
}

/// A user account as the source had it (LeanCloud `_User`).
#[derive(Clone, Debug, Default)]
pub struct ImportedUser {
    /// The user's id (the LeanCloud objectId: an IM client id when the app logged into IM as users).
    pub id: String,
    pub username: Option<String>,
    /// LeanCloud's `(salt, password hash)`: the same password logs in here.
    pub password: Option<(String, String)>,
    /// A session token the source had issued: the session stays valid.
    pub session_token: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Imports: records of another service kept with their old ids. It holds the `Store` (users,
/// tokens, conversations and messages written as the source had them), `Stamps` (new numeric
/// ids), and the services it calls: `Users` (a sender exists once named) and `Collections` (an
/// import's checkpoints are entries).
pub struct Imports {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) stamps: Stamps,
    pub(crate) users: Arc<Users>,
    pub(crate) collections: Arc<Collections>,
}

impl Imports {
    /// An imported user: created, or — if the user exists without a password (made when named in
    /// a conversation or a message) — given the account. (Whether anything was written.)
    pub async fn import_user(&self, app: &App, u: ImportedUser) -> Result<bool> {
        app.validate_user_id(&u.id)?;
        let hash = u.password.as_ref().map(|(salt, hash)| crate::password::leancloud_hash(salt, hash));
        let written = match self.store.get_user(app.id, &u.id).await? {
            Some(existing) if existing.password_hash.is_some() => false,
            Some(existing) => {
                let user = User { username: u.username.clone(), password_hash: hash, updated_at: u.updated_at, ..existing };
                self.store.update_user(&user).await?;
                true
            }
            None => {
                let user = User {
                    username: u.username.clone(),
                    password_hash: hash,
                    updated_at: u.updated_at,
                    ..User::new(app.id, u.id.clone(), self.stamps.next_id(), u.created_at)
                };
                self.store.create_user(&user).await?;
                true
            }
        };
        if let Some(t) = u.session_token {
            if self.store.get_token(&t).await?.is_none() {
                let token = Token {
                    token: t,
                    app: app.id,
                    user: Some(u.id.clone()),
                    kind: TokenKind::LcSession,
                    created_at: u.created_at,
                    expires_at: None,
                    device: None,
                };
                self.store.put_token(&token).await?;
            }
        }
        Ok(written)
    }

    /// Where an import got to for one item of a source (`entries::ns::IMPORTS`).
    pub async fn import_checkpoint(&self, app: &App, source: &str, item: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.collections.get(app, crate::entries::ns::IMPORTS, source, item).await?.map(|e| e.value))
    }

    pub async fn save_import_checkpoint(&self, app: &App, source: &str, item: &str, value: serde_json::Value) -> Result<()> {
        let e = crate::entries::Entry::new(crate::entries::ns::IMPORTS, source, item, value);
        self.collections.put(app, vec![e], crate::entries::PutRule::default()).await?;
        Ok(())
    }

    /// The conversation imported with this foreign id.
    pub async fn conversation_by_foreign(&self, app: &App, foreign_id: &str) -> Result<Conversation> {
        self.store.conversation_by_foreign(app.id, foreign_id).await?.ok_or(Error::ConversationNotFound)
    }

    /// The message imported with this foreign id.
    pub async fn message_by_foreign(&self, app: &App, foreign_id: &str) -> Result<Message> {
        self.store.message_by_foreign(app.id, foreign_id).await?.ok_or(Error::MessageNotFound)
    }

    /// The foreign ids of those of these conversations that have one (to name the conversations
    /// of a history that spans several).
    pub async fn conversation_foreign_ids(&self, app: &App, convs: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
        let mut ids = convs.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(self.store.conversation_foreign_ids(app.id, &ids).await?.into_iter().collect())
    }

    /// The numeric id an imported conversation has or will have: that of the conversation with
    /// its foreign id, or of the unique conversation of the same members (one made here before
    /// the import: the history joins it), or a new one. (Id, whether it exists.)
    pub async fn import_target(&self, app: &App, foreign_id: &str, unique_id: Option<&str>) -> Result<(i64, bool)> {
        if let Some(c) = self.store.conversation_by_foreign(app.id, foreign_id).await? {
            return Ok((c.id, true));
        }
        if let Some(u) = unique_id {
            let q = crate::query::ConvQuery {
                kinds: Some(vec![ConvKind::Normal]),
                filter: crate::query::Filter::Cond(
                    crate::query::Field::UniqueId,
                    crate::query::Op::Eq(crate::query::Scalar::Str(u.into())),
                ),
                limit: 1,
                ..Default::default()
            };
            if let Some(c) = self.store.query_conversations(app.id, &q).await?.0.into_iter().next() {
                return Ok((c.id, true));
            }
        }
        Ok((self.stamps.next_id(), false))
    }

    /// Store messages made at the source into conversation `conv` (whose row may not exist yet:
    /// an imported conversation becomes visible once its history is in). Each keeps its
    /// timestamp and foreign id and gets a numeric id; one whose foreign id is here already is
    /// skipped, so an import can run again. Senders become users. Nothing is delivered.
    pub async fn import_messages(&self, app: &App, conv: i64, mut msgs: Vec<Message>) -> Result<Imported> {
        let mut senders: Vec<&str> = msgs.iter().map(|m| m.from.as_str()).collect();
        senders.sort_unstable();
        senders.dedup();
        for s in &senders {
            app.validate_user_id(s)?;
        }
        self.users.ensure_users(app, &senders).await?;
        for m in &mut msgs {
            if m.foreign_id.is_none() {
                return Err(Error::invalid("an imported message needs its foreign id"));
            }
            m.id = self.stamps.next_id();
            m.app = app.id;
            m.conv = conv;
            m.transient = false;
        }
        self.store.import_messages(app.id, conv, &msgs).await
    }

    /// Create an imported conversation under the id `import_target` gave, once its history is
    /// in; or, if it exists (an import running again), give it the members it lacks. Members'
    /// read cursors start after the imported history.
    pub async fn import_conversation(&self, app: &App, id: i64, c: ImportedConversation) -> Result<(Conversation, bool)> {
        let mut everyone: Vec<&str> = c.members.iter().map(|(u, _)| u.as_str()).collect();
        everyone.extend(c.creator.as_deref());
        for u in &everyone {
            app.validate_user_id(u)?;
        }
        self.users.ensure_users(app, &everyone).await?;
        let conv = Conversation {
            app: app.id,
            id,
            kind: c.kind,
            name: c.name,
            creator: c.creator,
            unique: c.unique,
            unique_id: c.unique_id,
            attrs: c.attrs,
            settings: ConvSettings::default(),
            parent: None,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_message_at: c.last_message_at,
            last_seq: 0,
            expires_at: None,
            foreign_id: Some(c.foreign_id),
        };
        let members: Vec<Member> = c
            .members
            .iter()
            .map(|(user, role)| Member { notifications_off: c.muted.contains(user), ..Member::new(id, user.clone(), *role, c.created_at) })
            .collect();
        self.store.import_conversation(&conv, &members).await
    }
}
