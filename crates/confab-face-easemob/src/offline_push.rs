//! Easemob's rules for a message's offline push, applied by the push hand-off
//! (`confab_hooks::push`) when the push is delivered: the message's `ext.em_ignore_notification`,
//! each recipient's push settings (§3.10: the conversation's, else the app-wide one; `NONE`,
//! `AT`, do-not-disturb), the legacy `notification_no_disturbing*` and `notification_ignore_<group>`
//! user fields, and the payload
//! from `ext.em_push_template` (a stored template), `ext.em_push_title`/`em_push_content`, the
//! recipient's chosen template or their `notification_display_style`, with `ext.em_push_ext`
//! passed along.
//!
//! The recipient rules apply to every message whatever face sent it: the users set them. The
//! payload rules apply when the app did not choose the payload itself (a `_receiversOffline`
//! answer, a message's push data) and the message carries Easemob push keys or a recipient
//! chose display style 1 or a template. Times of day are UTC. `docs/hooks.md`, "Easemob
//! traffic", says it all.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use confab_engine::entries::ns;
use confab_engine::model::{App, ConvKind, Conversation, Message, User};
use confab_engine::{Engine, EntryFilter, EntryQuery, Error};
use confab_hooks::push::{MessagePush, PushRules, Shaped};
use serde_json::{json, Value};

use crate::messages::from_engine;
use crate::social::push::chosen_template_item;

/// Most items in one settings query.
const CHUNK: usize = 400;

/// Easemob's push rules, asked by the push sink at delivery.
pub struct EmPushRules {
    pub engine: Arc<Engine>,
}

/// One push setting (`{type, ignoreInterval, ignoreDuration}`), as stored by
/// `PUT /users/{u}/notification/{chattype}/{key}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Setting {
    /// `DEFAULT`, `ALL`, `AT` or `NONE`; None when unset.
    pub kind: Option<String>,
    pub interval: String,
    /// The absolute end of a one-shot do-not-disturb (ms), 0 for none.
    pub until: i64,
}

impl Setting {
    pub fn of(v: &Value) -> Setting {
        Setting {
            kind: v.get("type").and_then(Value::as_str).map(str::to_string),
            interval: v.get("ignoreInterval").and_then(Value::as_str).unwrap_or_default().to_string(),
            until: v.get("ignoreDuration").and_then(Value::as_i64).unwrap_or(0),
        }
    }
}

/// Minutes since midnight UTC at `now` (ms).
fn minute_of_day(now: i64) -> i64 {
    now.div_euclid(60_000).rem_euclid(1440)
}

/// Whether the minute falls in `[start, end)`, wrapping past midnight; equal ends: all day.
fn in_window(minute: i64, start: i64, end: i64) -> bool {
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Less => (start..end).contains(&minute),
        std::cmp::Ordering::Greater => minute >= start || minute < end,
    }
}

/// `"HH:MM-HH:MM"` holds `now` (UTC); `""` never.
pub fn interval_holds(interval: &str, now: i64) -> bool {
    let hm = |x: &str| -> Option<i64> {
        let (h, m) = x.trim().split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    };
    let Some((a, b)) = interval.split_once('-') else { return false };
    match (hm(a), hm(b)) {
        (Some(a), Some(b)) => in_window(minute_of_day(now), a, b),
        _ => false,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn hour(v: Option<&Value>) -> Option<i64> {
    let h = match v? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (0..24).contains(&h).then_some(h)
}

/// The legacy do-not-disturb of `PUT /users/{u}` (§3.1.4): `notification_no_disturbing` on,
/// from `notification_no_disturbing_start` to `_end` (whole hours, UTC; equal or absent: all day).
pub fn legacy_quiet(user: &User, now: i64) -> bool {
    let a = &user.attributes;
    if !truthy(a.get("notification_no_disturbing")) {
        return false;
    }
    match (hour(a.get("notification_no_disturbing_start")), hour(a.get("notification_no_disturbing_end"))) {
        (Some(s), Some(e)) => in_window(minute_of_day(now), s * 60, e * 60),
        _ => true,
    }
}

/// The legacy per-group switch (`PUT /users/{u}` `notification_ignore_<group>`, the SDK's
/// `blockGroupMessages`): the user takes no offline push of that group.
pub fn legacy_ignored(user: &User, conv: i64) -> bool {
    truthy(user.attributes.get(&format!("{}{conv}", crate::users::IGNORE_PREFIX)))
}

/// Whether a recipient with these settings is pushed to: the conversation's type (unless
/// `DEFAULT`), else the app-wide one (`ALL` when unset); `NONE` never, `AT` only when
/// mentioned; never while a do-not-disturb holds (the app-wide daily window, or an unexpired
/// one-shot duration of either setting).
pub fn wants(app_wide: &Setting, conv: Option<&Setting>, mentioned: bool, now: i64) -> bool {
    let kind = conv
        .and_then(|c| c.kind.as_deref())
        .filter(|k| *k != "DEFAULT")
        .or(app_wide.kind.as_deref().filter(|k| *k != "DEFAULT"))
        .unwrap_or("ALL");
    let pushed = match kind {
        "NONE" => false,
        "AT" => mentioned,
        _ => true,
    };
    let quiet = interval_holds(&app_wide.interval, now) || app_wide.until > now || conv.is_some_and(|c| c.until > now);
    pushed && !quiet
}

/// The conversation setting's item for a message's recipients: `user:{sender}` one-to-one,
/// `chatgroup:{id}` in a group (a thread: its group's).
fn conv_item(conv: &Conversation, from: &str) -> Option<String> {
    match conv.kind {
        ConvKind::Normal if conv.unique => Some(format!("user:{}", from.to_lowercase())),
        ConvKind::Normal => Some(format!("chatgroup:{}", conv.id)),
        ConvKind::Thread => conv.parent.map(|(g, _)| format!("chatgroup:{g}")),
        _ => None,
    }
}

/// `ext.em_at_list` names the recipient, or is `"all"` (or holds it).
fn at_list_names(ext: &Value, user: &str) -> bool {
    match ext.get("em_at_list") {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("all") || s == user,
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(|s| s == user || s.eq_ignore_ascii_case("all")),
        _ => false,
    }
}

/// A message's text for a push: a text's own, else `[image]`, `[voice]`, `[video]`, `[file]`,
/// `[location]`, `[custom]` (a command: its action).
pub fn summary(kind: &str, body: &Value) -> String {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    match kind {
        "txt" => s("msg"),
        "img" => "[image]".into(),
        "audio" => "[voice]".into(),
        "video" => "[video]".into(),
        "file" => "[file]".into(),
        "loc" => "[location]".into(),
        "cmd" => s("action"),
        _ => "[custom]".into(),
    }
}

fn arg_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A template's pattern with `{0}`… from `args` (a missing one stays as it is) and the built-ins
/// `{$dynamicFrom}`, `{$fromNickname}`, `{$msg}`.
pub fn fill_pattern(pattern: &str, args: &[Value], from_name: &str, msg: &str) -> String {
    let mut out = pattern.replace("{$dynamicFrom}", from_name).replace("{$fromNickname}", from_name).replace("{$msg}", msg);
    for (i, a) in args.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), &arg_text(a));
    }
    out
}

/// A recipient's push settings.
#[derive(Clone, Debug, Default)]
struct Prefs {
    app_wide: Setting,
    conv: Option<Setting>,
    /// The template they chose (`PUT /users/{u}/notification/template`).
    template: Option<String>,
}

/// What a message says about its push, read once per delivery.
struct MessageFacts {
    ext: Value,
    kind: String,
    body: Value,
    mentions: Vec<String>,
    mention_all: bool,
}

impl MessageFacts {
    fn of(m: &Message) -> MessageFacts {
        let (kind, body, ext) = from_engine(m);
        MessageFacts { ext, kind, body, mentions: m.mentions.clone(), mention_all: m.mention_all }
    }
    fn has_push_keys(&self) -> bool {
        ["em_push_template", "em_push_title", "em_push_content", "em_push_ext"].iter().any(|k| self.ext.get(*k).is_some())
    }
    fn mentions(&self, user: &str) -> bool {
        self.mention_all || self.mentions.iter().any(|m| m == user) || at_list_names(&self.ext, user)
    }
}

impl EmPushRules {
    /// Each recipient's app-wide setting, conversation setting and chosen template.
    async fn settings(&self, app: &App, to: &[String], conv_item: Option<&str>) -> confab_engine::Result<HashMap<String, Prefs>> {
        let mut out: HashMap<String, Prefs> = HashMap::new();
        let mut items: Vec<String> = to.iter().flat_map(|u| [format!("user:{u}"), chosen_template_item(u)]).collect();
        if let Some(c) = conv_item {
            items.push(c.to_string());
        }
        for chunk in items.chunks(CHUNK) {
            let f = EntryFilter { ns: ns::PUSH_SETTINGS.to_string(), key: None, items: Some(chunk.to_vec()), owner: None };
            for e in self.engine.collections().list(app, &EntryQuery::all(f)).await? {
                if !to.contains(&e.key) {
                    continue;
                }
                let slot = out.entry(e.key.clone()).or_default();
                if e.item == format!("user:{}", e.key) {
                    slot.app_wide = Setting::of(&e.value);
                } else if e.item == chosen_template_item(&e.key) {
                    slot.template = e.value.as_str().filter(|t| !t.is_empty()).map(str::to_string);
                } else if conv_item == Some(e.item.as_str()) {
                    slot.conv = Some(Setting::of(&e.value));
                }
            }
        }
        Ok(out)
    }

    /// A stored template as `{title, content}`, its patterns filled; None if there is none of
    /// that name.
    async fn templated(
        &self,
        app: &App,
        name: &str,
        args: Option<&Value>,
        from_name: &str,
        msg: &str,
    ) -> confab_engine::Result<Option<Value>> {
        let Some(e) = self.engine.collections().get(app, ns::PUSH_TEMPLATES, "", name).await? else { return Ok(None) };
        let args = |k: &str| args.and_then(|t| t.get(k)).and_then(Value::as_array).cloned().unwrap_or_default();
        let pattern = |k: &str| e.value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Some(json!({
            "title": fill_pattern(&pattern("title_pattern"), &args("title_args"), from_name, msg),
            "content": fill_pattern(&pattern("content_pattern"), &args("content_args"), from_name, msg),
        })))
    }
}

fn with_push_ext(mut payload: Value, facts: &MessageFacts) -> Value {
    if let (Value::Object(o), Some(x)) = (&mut payload, facts.ext.get("em_push_ext")) {
        o.insert("em_push_ext".into(), x.clone());
    }
    payload
}

#[async_trait]
impl PushRules for EmPushRules {
    async fn shape(&self, app: &App, push: &MessagePush) -> Result<Vec<Shaped>, String> {
        let e = |e: Error| e.to_string();
        let facts = match self.engine.messages().message(app, push.msg).await {
            Ok(m) => Some(MessageFacts::of(&m)),
            Err(Error::MessageNotFound) => None,
            Err(x) => return Err(e(x)),
        };
        if facts.as_ref().is_some_and(|f| f.ext.get("em_ignore_notification").is_some_and(|v| truthy(Some(v)))) {
            return Ok(vec![]);
        }
        let conv = match self.engine.conversations().conversation(app, push.conv, None).await {
            Ok(c) => Some(c),
            Err(Error::ConversationNotFound) => None,
            Err(x) => return Err(e(x)),
        };
        let item = conv.as_ref().and_then(|c| conv_item(c, &push.from));
        let settings = self.settings(app, &push.to, item.as_deref()).await.map_err(e)?;
        let users = self.engine.users().by_ids(app, &push.to).await.map_err(e)?;
        let now = self.engine.now();

        let none = Prefs::default();
        let style_one =
            |u: &str| users.get(u).and_then(|u| u.attributes.get("notification_display_style")).and_then(Value::as_i64) == Some(1);
        let mut out: Vec<Shaped> = Vec::new();
        // the payload of each (display style 1?, chosen template), made when first needed
        let mut made: HashMap<(bool, Option<String>), Value> = HashMap::new();
        let mut from_name: Option<String> = None;
        for u in &push.to {
            let prefs = settings.get(u).unwrap_or(&none);
            let mentioned = facts.as_ref().is_some_and(|f| f.mentions(u));
            let legacy_off = users.get(u).is_some_and(|x| legacy_quiet(x, now) || legacy_ignored(x, push.conv));
            if !wants(&prefs.app_wide, prefs.conv.as_ref(), mentioned, now) || legacy_off {
                continue;
            }
            let payload = match &facts {
                Some(f) if !push.decided && (f.has_push_keys() || style_one(u) || prefs.template.is_some()) => {
                    let choice = (style_one(u), prefs.template.clone());
                    match made.get(&choice) {
                        Some(p) => p.clone(),
                        None => {
                            if from_name.is_none() {
                                from_name = Some(self.name_of(app, &push.from).await);
                            }
                            let name = from_name.as_deref().unwrap_or_default();
                            let p = self.payload(app, push, f, name, &choice).await.map_err(e)?;
                            made.insert(choice, p.clone());
                            p
                        }
                    }
                }
                _ => push.payload.clone(),
            };
            match out.iter_mut().find(|s| s.payload == payload) {
                Some(s) => s.to.push(u.clone()),
                None => out.push(Shaped { to: vec![u.clone()], payload }),
            }
        }
        Ok(out)
    }
}

impl EmPushRules {
    /// The sender's push nickname, else their id.
    async fn name_of(&self, app: &App, from: &str) -> String {
        match self.engine.users().get_user(app, from).await {
            Ok(u) => u.nickname.filter(|n| !n.is_empty()).unwrap_or(u.id),
            Err(_) => from.to_string(),
        }
    }

    /// A message's Easemob payload for a recipient of this (display style 1?, chosen template):
    /// the message's template, else its own title and content, else the recipient's template,
    /// else (style 1) the sender's name and the message's text or (style 0) the app's payload;
    /// with `em_push_ext`.
    async fn payload(
        &self,
        app: &App,
        push: &MessagePush,
        f: &MessageFacts,
        from_name: &str,
        (style_one, chosen): &(bool, Option<String>),
    ) -> confab_engine::Result<Value> {
        let msg = summary(&f.kind, &f.body);
        let own = f.ext.get("em_push_template");
        if let Some(name) = own.and_then(|t| t.get("name")).and_then(Value::as_str) {
            if let Some(t) = self.templated(app, name, own, from_name, &msg).await? {
                return Ok(with_push_ext(t, f));
            }
        }
        let (title, content) = (f.ext.get("em_push_title").and_then(Value::as_str), f.ext.get("em_push_content").and_then(Value::as_str));
        let named = json!({"title": title.unwrap_or(from_name), "content": content.unwrap_or(&msg)});
        if title.is_some() || content.is_some() {
            return Ok(with_push_ext(named, f));
        }
        if let Some(name) = chosen {
            if let Some(t) = self.templated(app, name, None, from_name, &msg).await? {
                return Ok(with_push_ext(t, f));
            }
        }
        Ok(with_push_ext(if *style_one { named } else { push.payload.clone() }, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: Option<&str>, interval: &str, until: i64) -> Setting {
        Setting { kind: kind.map(str::to_string), interval: interval.into(), until }
    }

    const NOON: i64 = 12 * 3_600_000 + 19_700 * 86_400_000;

    #[test]
    fn the_conversation_setting_comes_first_default_follows_the_app_wide_one() {
        let all = s(Some("ALL"), "", 0);
        assert!(wants(&all, None, false, NOON));
        assert!(wants(&Setting::default(), None, false, NOON), "unset is ALL");
        assert!(!wants(&s(Some("NONE"), "", 0), None, false, NOON));
        assert!(!wants(&all, Some(&s(Some("NONE"), "", 0)), false, NOON));
        assert!(wants(&s(Some("NONE"), "", 0), Some(&s(Some("ALL"), "", 0)), false, NOON));
        assert!(!wants(&s(Some("NONE"), "", 0), Some(&s(Some("DEFAULT"), "", 0)), false, NOON));
        assert!(!wants(&s(Some("AT"), "", 0), None, false, NOON));
        assert!(wants(&s(Some("AT"), "", 0), None, true, NOON));
    }

    #[test]
    fn do_not_disturb_windows_and_durations() {
        let all = |i: &str, until| s(Some("ALL"), i, until);
        assert!(!wants(&all("11:00-13:00", 0), None, true, NOON));
        assert!(wants(&all("13:00-11:00", 0), None, true, NOON), "wraps past midnight, noon is outside");
        assert!(!wants(&all("22:00-12:30", 0), None, true, NOON));
        assert!(!wants(&all("08:00-08:00", 0), None, true, NOON), "equal ends: all day");
        assert!(wants(&all("", 0), None, true, NOON));
        assert!(!wants(&all("", NOON + 1), None, true, NOON));
        assert!(wants(&all("", NOON), None, true, NOON), "expired");
        assert!(!wants(&all("", 0), Some(&s(Some("ALL"), "", NOON + 1)), true, NOON), "the conversation's duration");
    }

    #[test]
    fn templates_fill_args_and_built_ins() {
        let args = [json!("a"), json!(2)];
        assert_eq!(fill_pattern("{0}-{1}-{2} {$fromNickname}: {$msg}", &args, "Tom", "hi"), "a-2-{2} Tom: hi");
        let many: Vec<Value> = (0..11).map(|i| json!(format!("x{i}"))).collect();
        assert_eq!(fill_pattern("{10}{1}", &many, "", ""), "x10x1");
    }

    #[test]
    fn at_lists() {
        assert!(at_list_names(&json!({"em_at_list": ["bob"]}), "bob"));
        assert!(at_list_names(&json!({"em_at_list": "all"}), "bob"));
        assert!(at_list_names(&json!({"em_at_list": "ALL"}), "bob"));
        assert!(!at_list_names(&json!({"em_at_list": ["carol"]}), "bob"));
        assert!(!at_list_names(&json!({}), "bob"));
    }
}
