//! `confab import leancloud`: a LeanCloud IM app moved into confab, LeanCloud's ids kept.
//!
//! Conversations come from the app's data export (`export.rs`) or, over the REST API with the
//! master key, from the live app (`source.rs`); history only ever from the REST API (it is in no
//! export). Each conversation's history is read oldest first, 1,000 messages a page, and stored
//! as it comes (`Engine::import_messages`: each message keeps its msg-id and timestamp); the
//! conversation itself is created once its history is in, so nothing half-imported shows as a
//! finished conversation. After each page a checkpoint records where the conversation got to:
//! an interrupted run resumes there, and a later run (the cut-over, just before the app moves)
//! brings exactly what was added since. Messages already here are recognised by their msg-id.
#![forbid(unsafe_code)]

pub mod export;
mod map;
mod progress;
pub mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use confab_engine::model::{App, Audience, ConvKind, Message, Role};
use confab_engine::{Engine, ImportedConversation};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::export::{Export, Row};
pub use crate::progress::Progress;
use crate::source::{After, Source};

/// The checkpoints' key (`entries::ns::IMPORTS`).
const SOURCE: &str = "leancloud";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    App(String),
    #[error("the source refused the credentials: {0}")]
    Auth(String),
    #[error("the source: {0}")]
    Source(String),
    #[error("the source answered {status}: {what}")]
    Refused { status: u16, what: String },
    #[error("the export: {0}")]
    Export(String),
    #[error("{file}:{line}: {error} (--strict stops at the first bad line)")]
    BadLine { file: String, line: usize, error: String },
    #[error(transparent)]
    Engine(#[from] confab_engine::Error),
}

/// Where the app's data comes from.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The confab app (created beforehand, with the LeanCloud app's keys).
    pub app: String,
    /// LeanCloud's data export: a `.tar.gz` or a directory.
    pub export: Option<PathBuf>,
    /// The live app's REST API: (base URL, app id, master key).
    pub server: Option<(String, String, String)>,
    /// Read everything, write nothing.
    pub dry_run: bool,
    /// Stop at the first malformed export line instead of skipping it.
    pub strict: bool,
    /// Conversations read at once.
    pub concurrency: usize,
    /// Write `objectId,id` lines here: each imported conversation's LeanCloud id and the numeric
    /// id MaxIM and Easemob know it by.
    pub id_map: Option<PathBuf>,
}

/// A line of the export that was skipped.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub error: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub app: String,
    pub dry_run: bool,
    /// `_User` accounts created (or given to a user known only by id).
    pub users: u64,
    /// Conversations read from the source, created here, and found here already.
    pub conversations: u64,
    pub conversations_created: u64,
    pub conversations_updated: u64,
    /// Messages stored, and messages found here already (a run again).
    pub messages: u64,
    pub messages_already_here: u64,
    /// Export lines (and source records) skipped, and the first of them.
    pub skipped: u64,
    pub skipped_lines: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub seconds: f64,
    pub messages_per_second: f64,
}

/// Most skipped lines listed in the summary (all are counted).
const SKIPPED_LISTED: usize = 100;

#[derive(Default)]
struct Counts {
    users: AtomicU64,
    conversations: AtomicU64,
    created: AtomicU64,
    updated: AtomicU64,
    messages: AtomicU64,
    already: AtomicU64,
    skipped: AtomicU64,
}

struct Run {
    id_map: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    engine: Arc<Engine>,
    app: Arc<App>,
    source: Option<Source>,
    opts: Options,
    counts: Counts,
    skipped: Mutex<Vec<Skipped>>,
    progress: Progress,
}

fn skipped_lines(run: &Run) -> Vec<Skipped> {
    run.skipped.lock().clone()
}

/// Shorten a text for a message.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Move a LeanCloud app's conversations and history into the confab app `opts.app`.
pub async fn import_leancloud(engine: Arc<Engine>, opts: Options, progress: Progress) -> Result<Summary, ImportError> {
    let started = Instant::now();
    if opts.export.is_none() && opts.server.is_none() {
        return Err(ImportError::App("nothing to import: give --export, --server, or both".into()));
    }
    let app = engine
        .apps().find_app(&confab_engine::model::AppLookup::Name(opts.app.clone()))
        .await?
        .ok_or_else(|| ImportError::App(format!("no app named '{}': create it first with the LeanCloud app's keys (confab app create --name {} --app-id … --app-key … --master-key …)", opts.app, opts.app)))?;
    // everything that can be checked is checked before the first write
    let export = opts.export.as_deref().map(Export::open).transpose()?;
    let source = match &opts.server {
        Some((url, id, key)) => {
            let s = Source::new(url, id, key)?;
            s.probe().await?;
            Some(s)
        }
        None => None,
    };
    let mut warnings = Vec::new();
    if let Some((_, id, _)) = &opts.server {
        if *id != app.keys.leancloud.app_id {
            warnings.push(format!(
                "the confab app's LeanCloud app id ({}) is not the source's ({id}): clients that keep the source's keys will not find it",
                app.keys.leancloud.app_id
            ));
        }
    }
    let id_map = match &opts.id_map {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| ImportError::App(format!("{}: {e}", p.display())))?;
            let mut w = std::io::BufWriter::new(f);
            std::io::Write::write_all(&mut w, b"objectId,id\n").map_err(|e| ImportError::App(e.to_string()))?;
            Some(Mutex::new(w))
        }
        None => None,
    };
    let run = Arc::new(Run { id_map, engine, app, source, opts, counts: Counts::default(), skipped: Mutex::new(Vec::new()), progress });
    run.users(export.as_ref()).await?;
    let roles = run.roles(export.as_ref()).await?;
    run.conversations(export.as_ref(), Arc::new(roles)).await?;
    if let Some(e) = &export {
        run.sys_messages(e).await?;
    }
    run.progress.finish();
    if let Some(w) = &run.id_map {
        std::io::Write::flush(&mut *w.lock()).map_err(|e| ImportError::App(e.to_string()))?;
    }
    let c = &run.counts;
    let seconds = started.elapsed().as_secs_f64();
    let messages = c.messages.load(Ordering::Relaxed);
    Ok(Summary {
        app: run.opts.app.clone(),
        dry_run: run.opts.dry_run,
        users: c.users.load(Ordering::Relaxed),
        conversations: c.conversations.load(Ordering::Relaxed),
        conversations_created: c.created.load(Ordering::Relaxed),
        conversations_updated: c.updated.load(Ordering::Relaxed),
        messages,
        messages_already_here: c.already.load(Ordering::Relaxed),
        skipped: c.skipped.load(Ordering::Relaxed),
        skipped_lines: skipped_lines(&run),
        warnings,
        seconds,
        messages_per_second: if seconds > 0.0 { messages as f64 / seconds } else { 0.0 },
    })
}

impl Run {
    /// A line or record that could not be imported: counted and listed, or (`--strict`) the end.
    fn skip(&self, file: &str, line: usize, error: String) -> Result<(), ImportError> {
        if self.opts.strict {
            return Err(ImportError::BadLine { file: file.to_string(), line, error });
        }
        self.counts.skipped.fetch_add(1, Ordering::Relaxed);
        self.progress.note(&format!("skipped {file}:{line}: {error}"));
        let mut s = self.skipped.lock();
        if s.len() < SKIPPED_LISTED {
            s.push(Skipped { file: file.to_string(), line, error });
        }
        Ok(())
    }

    /// Every row of a class: from the export if given, else from the source.
    async fn each_row<F, Fut>(&self, export: Option<&Export>, class: &'static str, mut f: F) -> Result<(), ImportError>
    where
        F: FnMut(Map<String, Value>, String, usize) -> Fut,
        Fut: std::future::Future<Output = Result<(), ImportError>>,
    {
        if let Some(e) = export {
            let mut rows = e.rows(class);
            let mut n = 0;
            while let Some(row) = rows.recv().await {
                n += 1;
                match row {
                    Row::Ok(o) => f(o, class.to_string(), n).await?,
                    Row::Bad { file, line, error } => self.skip(&file, line, error)?,
                }
            }
            return Ok(());
        }
        let Some(source) = &self.source else { return Ok(()) };
        let mut cursor: Option<String> = None;
        let mut n = 0;
        loop {
            let (rows, next) = source.scan(class, cursor.as_deref()).await?;
            for row in rows {
                n += 1;
                f(row, format!("/1.1/scan/classes/{class}"), n).await?;
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(()),
            }
        }
    }

    /// `_User` accounts, before the conversations name their ids.
    async fn users(&self, export: Option<&Export>) -> Result<(), ImportError> {
        self.each_row(export, "_User", |row, file, line| async move {
            match map::user(&row) {
                Ok(u) if self.opts.dry_run => {
                    let _ = u;
                    self.counts.users.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Ok(u) => match self.engine.imports().import_user(&self.app, u).await {
                    Ok(written) => {
                        self.counts.users.fetch_add(written as u64, Ordering::Relaxed);
                        Ok(())
                    }
                    Err(confab_engine::Error::Internal(e)) => Err(ImportError::Engine(confab_engine::Error::Internal(e))),
                    Err(e) => self.skip(&file, line, e.to_string()),
                },
                Err(e) => self.skip(&file, line, e),
            }
        })
        .await
    }

    /// Member roles, by conversation objectId and client id (few: only Owners and Managers).
    async fn roles(&self, export: Option<&Export>) -> Result<HashMap<String, HashMap<String, Role>>, ImportError> {
        let mut roles: HashMap<String, HashMap<String, Role>> = HashMap::new();
        let out = &mut roles;
        self.each_row(export, "_ConversationMemberInfo", |row, file, line| {
            let r = map::member_role(&row);
            let res = match r {
                Ok((cid, client, role)) => {
                    out.entry(cid).or_default().insert(client, role);
                    Ok(())
                }
                Err(e) => self.skip(&file, line, e),
            };
            async move { res }
        })
        .await?;
        Ok(roles)
    }

    /// Every conversation, `concurrency` at a time.
    async fn conversations(
        self: &Arc<Self>,
        export: Option<&Export>,
        roles: Arc<HashMap<String, HashMap<String, Role>>>,
    ) -> Result<(), ImportError> {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        let tasks = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let failed: Arc<Mutex<Option<ImportError>>> = Arc::default();
        let none = HashMap::new();
        self.each_row(export, "_Conversation", |row, file, line| {
            let parsed = row.get("objectId").and_then(Value::as_str).map(|id| map::conversation(&row, roles.get(id).unwrap_or(&none)));
            let me = self.clone();
            let (slots, tasks, failed) = (slots.clone(), tasks.clone(), failed.clone());
            async move {
                if let Some(e) = failed.lock().take() {
                    return Err(e);
                }
                let conv = match parsed {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return me.skip(&file, line, e),
                    None => return me.skip(&file, line, "no objectId".into()),
                };
                me.counts.conversations.fetch_add(1, Ordering::Relaxed);
                let permit = slots.acquire_owned().await.map_err(|e| ImportError::App(e.to_string()))?;
                tasks.lock().spawn(async move {
                    let id = conv.foreign_id.clone();
                    if let Err(e) = me.conversation(conv).await {
                        let e = match e {
                            ImportError::Refused { status: 404, what } => {
                                // gone at the source while we read it: say so, carry on
                                me.progress.note(&format!("conversation {id}: {what}"));
                                drop(permit);
                                return;
                            }
                            e => e,
                        };
                        failed.lock().get_or_insert(e);
                    }
                    me.progress.conversation_done();
                    drop(permit);
                });
                Ok(())
            }
        })
        .await?;
        let mut set = std::mem::take(&mut *tasks.lock());
        while let Some(r) = set.join_next().await {
            r.map_err(|e| ImportError::App(format!("an import task failed: {e}")))?;
        }
        let first = failed.lock().take();
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One conversation: its history (from the source), then the conversation (created, or, if
    /// it exists, given the members it lacks).
    async fn conversation(&self, conv: ImportedConversation) -> Result<(), ImportError> {
        let (engine, app) = (&self.engine, &self.app);
        let (mut id, exists) = engine.imports().import_target(app, &conv.foreign_id, conv.unique_id.as_deref()).await?;
        let checkpoint = engine.imports().import_checkpoint(app, SOURCE, &conv.foreign_id).await?;
        if !exists {
            // a run that stopped before creating it chose its id already
            if let Some(saved) = checkpoint.as_ref().and_then(|c| c.get("id")).and_then(Value::as_i64) {
                id = saved;
            }
        }
        let mut conv = conv;
        if let Some(source) = &self.source {
            let path = |kind: &str| format!("/1.2/rtm/{kind}/{}/messages", urlencoding::encode(&conv.foreign_id));
            match conv.kind {
                ConvKind::Service => {
                    let subscribers = source.subscribers(&conv.foreign_id).await?;
                    for s in &subscribers {
                        let p = format!(
                            "/1.2/rtm/service-conversations/{}/subscribers/{}/messages",
                            urlencoding::encode(&conv.foreign_id),
                            urlencoding::encode(s)
                        );
                        self.history(source, id, &conv.foreign_id, &p, Some(s)).await?;
                    }
                    conv.members.extend(subscribers.into_iter().map(|s| (s, Role::Subscriber)));
                }
                ConvKind::Chatroom => self.history(source, id, &conv.foreign_id, &path("chatrooms"), None).await?,
                _ => self.history(source, id, &conv.foreign_id, &path("conversations"), None).await?,
            }
        }
        if self.opts.dry_run {
            return Ok(());
        }
        let foreign = conv.foreign_id.clone();
        let (stored, created) = engine.imports().import_conversation(app, id, conv).await?;
        if let Some(w) = &self.id_map {
            std::io::Write::write_all(&mut *w.lock(), format!("{foreign},{}\n", stored.id).as_bytes())
                .map_err(|e| ImportError::App(e.to_string()))?;
        }
        let counter = if created { &self.counts.created } else { &self.counts.updated };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A history walk, oldest first from the checkpoint, a page at a time; `subscriber` for a
    /// service conversation's per-user history (its messages are addressed to that user).
    async fn history(&self, source: &Source, id: i64, conv: &str, path: &str, subscriber: Option<&String>) -> Result<(), ImportError> {
        let (engine, app) = (&self.engine, &self.app);
        let item = match subscriber {
            Some(s) => format!("{conv}\u{1f}{s}"),
            None => conv.to_string(),
        };
        let saved = engine.imports().import_checkpoint(app, SOURCE, &item).await?;
        let mut after: After = saved.as_ref().and_then(|c| Some((c.get("ts")?.as_i64()?, c.get("msg")?.as_str()?.to_string())));
        loop {
            let page = source.history(path, &after).await?;
            let n = page.len();
            let mut batch: Vec<Message> = Vec::with_capacity(n);
            for (i, r) in page.iter().enumerate() {
                let audience = subscriber.map_or(Audience::All, |s| Audience::Only(vec![s.clone()]));
                match map::message(r, audience) {
                    Ok(m) => batch.push(m),
                    Err(e) => self.skip(path, i + 1, format!("{e}: {}", clip(&r.to_string())))?,
                }
            }
            let last = page.last().and_then(|r| Some((r.get("timestamp")?.as_i64()?, r.get("msg-id")?.as_str()?.to_string())));
            if !self.opts.dry_run && !batch.is_empty() {
                let done = engine.imports().import_messages(app, id, batch).await?;
                self.counts.messages.fetch_add(done.inserted, Ordering::Relaxed);
                self.counts.already.fetch_add(done.skipped, Ordering::Relaxed);
                self.progress.messages(done.inserted + done.skipped);
            } else {
                self.counts.messages.fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.progress.messages(batch.len() as u64);
            }
            if let Some((ts, msg)) = &last {
                if !self.opts.dry_run {
                    engine.imports().save_import_checkpoint(app, SOURCE, &item, json!({"id": id, "ts": ts, "msg": msg})).await?;
                }
                after = last.clone();
            }
            if n < source::PAGE {
                return Ok(());
            }
        }
    }

    /// Users' messages to service conversations (`_SysMessage`, only in the export), addressed
    /// to the app and their sender.
    async fn sys_messages(&self, export: &Export) -> Result<(), ImportError> {
        let mut batch: Vec<(String, Message)> = Vec::new();
        let mut rows = export.rows("_SysMessage");
        while let Some(row) = rows.recv().await {
            match row {
                Row::Ok(o) => match map::sys_message(&o) {
                    Ok(m) => batch.push(m),
                    Err(e) => self.skip("_SysMessage", 0, e)?,
                },
                Row::Bad { file, line, error } => self.skip(&file, line, error)?,
            }
            if batch.len() >= source::PAGE {
                self.store_sys(std::mem::take(&mut batch)).await?;
            }
        }
        self.store_sys(batch).await
    }

    async fn store_sys(&self, batch: Vec<(String, Message)>) -> Result<(), ImportError> {
        let mut by_conv: HashMap<String, Vec<Message>> = HashMap::new();
        for (c, m) in batch {
            by_conv.entry(c).or_default().push(m);
        }
        for (cid, msgs) in by_conv {
            let n = msgs.len() as u64;
            if self.opts.dry_run {
                self.counts.messages.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            let conv = match self.engine.imports().conversation_by_foreign(&self.app, &cid).await {
                Ok(c) => c,
                Err(_) => {
                    self.skip("_SysMessage", 0, format!("{n} messages to conversation {cid}, which is not imported"))?;
                    continue;
                }
            };
            let done = self.engine.imports().import_messages(&self.app, conv.id, msgs).await?;
            self.counts.messages.fetch_add(done.inserted, Ordering::Relaxed);
            self.counts.already.fetch_add(done.skipped, Ordering::Relaxed);
            self.progress.messages(done.inserted + done.skipped);
        }
        Ok(())
    }
}
