//! Offline push settings and templates (§3.10), push labels and push tasks (§3.11). confab talks
//! to no vendor push service: a push is a task the engine hands to the server, which POSTs it to
//! the app's push webhook (`push_webhook_url`).

use axum::extract::State;
use axum::http::StatusCode;
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::model::App;
use confab_engine::push_labels::{self, LabelError, LabelUser, LabelUserFail, PushLabel};
use confab_engine::{Entry, EntryFilter, PushTask, PutRule};
use confab_routes::{delete, get, post, put};
use serde_json::{json, Map, Value};

use super::names_of;
use crate::auth::Need;
use crate::auth::{Admin, Body, Caller, EmState, Params, P};
use crate::envelope::{Answer, EmError, EmResult, Reply};
use crate::users::{decode_cursor, encode_cursor, username};
use crate::Routes;

/// Longest one-shot do-not-disturb, in ms (7 days).
pub const IGNORE_DURATION_MAX: i64 = 604_800_000;
/// Most users one asynchronous single push may name.
pub const PUSH_TARGETS_MAX: usize = 100;

pub fn routes() -> Routes {
    use Need::{App, AppOrUser};
    vec![
        put("/users/{username}/notification/language", AppOrUser, language),
        get("/users/{username}/notification/language", AppOrUser, language_get),
        put("/users/{username}/notification/template", AppOrUser, template_choose),
        get("/users/{username}/notification/template", AppOrUser, template_chosen),
        put("/users/{username}/notification/{chattype}/{key}", AppOrUser, setting_put),
        get("/users/{username}/notification/{chattype}/{key}", AppOrUser, setting_get),
        post("/notification/template", App, template_create),
        get("/notification/template/{name}", App, template_get),
        delete("/notification/template/{name}", App, template_delete),
        post("/push/label", App, label_create),
        get("/push/label", App, label_list),
        get("/push/label/{labelname}", App, label_get),
        delete("/push/label/{labelname}", App, label_delete),
        post("/push/label/{labelname}/user", App, label_add),
        get("/push/label/{labelname}/user", App, label_users),
        delete("/push/label/{labelname}/user", App, label_remove),
        get("/push/label/{labelname}/user/{username}", App, label_user),
        post("/push/single", App, push_single),
        post("/push/list/label", App, push_label),
        post("/push/task", App, push_all),
    ]
}

/// The user of a push-settings path; a missing one is Easemob's 400.
pub(super) async fn push_user(s: &EmState, c: &Caller, p: &P) -> EmResult<String> {
    let name = username(p.get("username")?).map_err(|_| no_user())?;
    s.engine.users().get_user(&c.app, &name).await.map_err(|_| no_user())?;
    c.may_act_for(&name)?;
    Ok(name)
}

fn no_user() -> EmError {
    EmError::new(
        StatusCode::BAD_REQUEST,
        "required_property_not_found",
        "RequiredPropertyNotFoundException",
        "Entity user requires a property named username",
    )
}

fn bad_param(what: &str) -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "illegal_argument", "IllegalArgumentException", format!("parameters is invalid : {what}"))
}

// ---------------------------------------------------------------------- settings

fn setting_item(p: &P) -> EmResult<(String, String, String)> {
    let kind = p.get("chattype")?.to_string();
    if kind != "user" && kind != "chatgroup" {
        return Err(bad_param("chattype"));
    }
    let key = p.get("key")?.to_string();
    if key.is_empty() {
        return Err(bad_param("key"));
    }
    let key = if kind == "user" { key.to_lowercase() } else { key };
    Ok((format!("{kind}:{key}"), kind, key))
}

pub(super) fn setting_data(v: Option<&Value>, app_wide: bool) -> Value {
    let d = json!({"type": if app_wide { "ALL" } else { "DEFAULT" }, "ignoreDuration": 0, "ignoreInterval": ""});
    let mut d = d.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(o)) = v {
        for (k, v) in o {
            d.insert(k.clone(), v.clone());
        }
    }
    Value::Object(d)
}

fn valid_interval(s: &str) -> bool {
    let hm = |x: &str| {
        let (h, m) = x.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(())
    };
    s.is_empty() || s.split_once('-').is_some_and(|(a, b)| hm(a).is_some() && hm(b).is_some())
}

/// `PUT /users/{username}/notification/{chattype}/{key} {type, ignoreInterval, ignoreDuration}`:
/// `chattype=user` with the user's own id is the app-wide setting. `ignoreDuration` is answered
/// as the absolute end (ms).
async fn setting_put(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_SET).await?;
    let user = push_user(&s, &c, &p).await?;
    let (item, kind, key) = setting_item(&p)?;
    let app_wide = kind == "user" && key == user;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let prev = s.engine.collections().get(&c.app, ns::PUSH_SETTINGS, &user, &item).await?;
    let mut data = setting_data(prev.as_ref().map(|e| &e.value), app_wide);
    if let Some(t) = o.get("type") {
        let t = t.as_str().filter(|t| ["DEFAULT", "ALL", "AT", "NONE"].contains(t)).ok_or_else(|| bad_param("type"))?;
        if t == "DEFAULT" && app_wide {
            return Err(bad_param("type"));
        }
        data["type"] = json!(t);
    }
    if let Some(i) = o.get("ignoreInterval") {
        let i = i.as_str().filter(|i| valid_interval(i)).ok_or_else(|| bad_param("ignoreInterval"))?;
        if !app_wide {
            return Err(bad_param("ignoreInterval"));
        }
        data["ignoreInterval"] = json!(i);
    }
    if let Some(d) = o.get("ignoreDuration") {
        let d = d
            .as_i64()
            .or_else(|| d.as_str().and_then(|x| x.parse().ok()))
            .filter(|d| (0..=IGNORE_DURATION_MAX).contains(d))
            .ok_or_else(|| bad_param("ignoreDuration"))?;
        data["ignoreDuration"] = json!(if d == 0 { 0 } else { s.engine.now() + d });
    }
    s.engine.collections().put(&c.app, vec![Entry::new(ns::PUSH_SETTINGS, user.clone(), item, data.clone())], PutRule::default()).await?;
    Ok(c.ctx.envelope(&c.app, "put", "/users").with("data", data))
}

/// `GET /users/{username}/notification/{chattype}/{key}`.
async fn setting_get(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_GET).await?;
    let user = push_user(&s, &c, &p).await?;
    let (item, kind, key) = setting_item(&p)?;
    let e = s.engine.collections().get(&c.app, ns::PUSH_SETTINGS, &user, &item).await?;
    Ok(c.ctx.envelope(&c.app, "get", "/users").with("data", setting_data(e.as_ref().map(|e| &e.value), kind == "user" && key == user)))
}

/// `PUT /users/{username}/notification/language {translationLanguage}`; with no
/// `translationLanguage` a query (the seed's PUT for "get").
async fn language(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_LANGUAGE).await?;
    let user = push_user(&s, &c, &p).await?;
    match b.get("translationLanguage") {
        None => language_of(&s, &c, &user, "put").await,
        Some(Value::String(l)) => {
            if l.chars().count() > 64 {
                return Err(bad_param("translationLanguage"));
            }
            let e = Entry::new(ns::PUSH_SETTINGS, user.clone(), "language", json!(l));
            s.engine.collections().put(&c.app, vec![e], PutRule::default()).await?;
            Ok(c.ctx.envelope(&c.app, "put", "/users").with("data", json!({"language": l})))
        }
        Some(_) => Err(bad_param("translationLanguage")),
    }
}

async fn language_get(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_LANGUAGE).await?;
    let user = push_user(&s, &c, &p).await?;
    language_of(&s, &c, &user, "get").await
}

async fn language_of(s: &EmState, c: &Caller, user: &str, action: &str) -> Reply {
    let e = s.engine.collections().get(&c.app, ns::PUSH_SETTINGS, user, "language").await?;
    let l = e.and_then(|e| e.value.as_str().map(str::to_string)).unwrap_or_default();
    Ok(c.ctx.envelope(&c.app, action, "/users").with("data", json!({"language": l})))
}

// ---------------------------------------------------------------------- templates

/// The item under which a user's chosen push template is kept (in `ns::PUSH_SETTINGS`, keyed by
/// the user).
pub fn chosen_template_item(user: &str) -> String {
    format!("template:{user}")
}

/// `PUT /users/{username}/notification/template {templateName}`: the template the user's pushes
/// use (a stored one; `""` for none again). `data: {templateName}`.
async fn template_choose(State(s): State<EmState>, c: Caller, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_SET).await?;
    let user = push_user(&s, &c, &p).await?;
    let name = b.get("templateName").and_then(Value::as_str).ok_or_else(|| bad_param("templateName"))?;
    let item = chosen_template_item(&user);
    if name.is_empty() {
        s.engine.collections().delete(&c.app, &EntryFilter::collection(ns::PUSH_SETTINGS, user.clone()).items(vec![item])).await?;
    } else {
        s.engine.collections().get(&c.app, ns::PUSH_TEMPLATES, "", name).await?.ok_or_else(|| template_missing(name))?;
        let e = Entry::new(ns::PUSH_SETTINGS, user.clone(), item, json!(name));
        s.engine.collections().put(&c.app, vec![e], PutRule::default()).await?;
    }
    Ok(c.ctx.envelope(&c.app, "put", "/users").with("data", json!({"templateName": name})))
}

/// `GET /users/{username}/notification/template`: `data: {templateName}` (`""` when none).
async fn template_chosen(State(s): State<EmState>, c: Caller, p: P) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_NOTIFICATION_GET).await?;
    let user = push_user(&s, &c, &p).await?;
    let e = s.engine.collections().get(&c.app, ns::PUSH_SETTINGS, &user, &chosen_template_item(&user)).await?;
    let name = e.and_then(|e| e.value.as_str().map(str::to_string)).unwrap_or_default();
    Ok(c.ctx.envelope(&c.app, "get", "/users").with("data", json!({"templateName": name})))
}

fn template_data(e: &Entry) -> Value {
    json!({
        "name": e.item,
        "createAt": e.created_at,
        "updateAt": e.updated_at,
        "title_pattern": e.value.get("title_pattern").cloned().unwrap_or(Value::Null),
        "content_pattern": e.value.get("content_pattern").cloned().unwrap_or(Value::Null),
    })
}

fn template_missing(name: &str) -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "EntityNotFoundException", "EntityNotFoundException", format!("{name} template is not exist"))
}

/// `POST /notification/template {name, title_pattern, content_pattern}`: a template of that name
/// is replaced.
async fn template_create(State(s): State<EmState>, Admin { app, ctx }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_TEMPLATE_CREATE).await?;
    let o = b.as_object().ok_or_else(EmError::bad_body)?;
    let name = o.get("name").and_then(Value::as_str).ok_or_else(|| bad_param("name"))?;
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad_param("name"));
    }
    let mut v = Map::new();
    for k in ["title_pattern", "content_pattern"] {
        match o.get(k) {
            Some(Value::String(x)) => {
                v.insert(k.to_string(), json!(x));
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(bad_param(k)),
        }
    }
    if v.is_empty() {
        return Err(bad_param("title_pattern"));
    }
    let e = Entry::new(ns::PUSH_TEMPLATES, "", name, Value::Object(v));
    s.engine.collections().put(&app, vec![e], PutRule::default()).await?;
    let e = s.engine.collections().get(&app, ns::PUSH_TEMPLATES, "", name).await?.ok_or_else(|| template_missing(name))?;
    Ok(ctx.envelope(&app, "post", "/notification/template").with("data", template_data(&e)))
}

async fn template_get(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_TEMPLATE_GET).await?;
    let name = p.get("name")?;
    let e = s.engine.collections().get(&app, ns::PUSH_TEMPLATES, "", name).await?.ok_or_else(|| template_missing(name))?;
    Ok(ctx.envelope(&app, "get", "/notification/template").with("data", template_data(&e)))
}

async fn template_delete(State(s): State<EmState>, Admin { app, ctx }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_TEMPLATE_DELETE).await?;
    let name = p.get("name")?;
    let f = EntryFilter::collection(ns::PUSH_TEMPLATES, "").items(vec![name.to_string()]);
    let e = s.engine.collections().delete(&app, &f).await?.pop().ok_or_else(|| template_missing(name))?;
    Ok(ctx.envelope(&app, "delete", "/notification/template").with("data", template_data(&e)))
}

// ---------------------------------------------------------------------- labels
//
// The rules (names, counts, batch sizes, who may be under a label) are the engine's
// (`confab_engine::push_labels`); here only the wire.

fn data(v: Value) -> Answer {
    Answer::bare(json!({"data": v}))
}

fn label_missing(name: &str) -> EmError {
    EmError::not_found(format!("label {name} does not exist"))
}

/// The one place a push-label refusal becomes an Easemob answer.
fn label_err(e: LabelError) -> EmError {
    match e {
        LabelError::Invalid(field) => bad_param(field),
        LabelError::Missing(name) => label_missing(&name),
        LabelError::Exists(name) => EmError::illegal(format!("label {name} already exists")),
        LabelError::TooMany(max) => EmError::exceed_limit(format!("label count exceeds limit {max}")),
        LabelError::Engine(e) => e.into(),
    }
}

fn label_json(l: &PushLabel) -> Value {
    json!({"name": l.name, "description": l.description, "count": l.count, "createdAt": l.created_at})
}

fn label_user_json(u: &LabelUser) -> Value {
    json!({"username": u.user, "created": u.created_at})
}

/// `POST /push/label {name, description}`.
async fn label_create(State(s): State<EmState>, Admin { app, .. }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_CREATE).await?;
    let name = b.get("name").and_then(Value::as_str).ok_or_else(|| bad_param("name"))?;
    push_labels::check_name(name).map_err(label_err)?;
    let desc = match b.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(bad_param("description")),
    };
    let l = s.engine.push_labels().create_push_label(&app, name, desc).await.map_err(label_err)?;
    Ok(data(json!({"name": l.name, "description": l.description, "createdAt": l.created_at})))
}

async fn label_get(State(s): State<EmState>, Admin { app, .. }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_GET).await?;
    let l = s.engine.push_labels().push_label(&app, p.get("labelname")?).await.map_err(label_err)?;
    Ok(data(label_json(&l)))
}

/// A page's `limit` 1–100 (default `default`) and `cursor`.
fn page_params(q: &Params, default: i64) -> EmResult<(Option<i64>, i64)> {
    let limit = q.int("limit", default, 1..=100)?;
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| bad_param("cursor"))?),
    };
    Ok((after, limit))
}

fn with_cursor(a: Answer, next: Option<i64>) -> Answer {
    match next {
        Some(seq) => a.with("cursor", json!(encode_cursor(seq))),
        None => a,
    }
}

/// `GET /push/label?limit&cursor`.
async fn label_list(State(s): State<EmState>, Admin { app, .. }: Admin, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_LIST).await?;
    let (after, limit) = page_params(&q, 100)?;
    let page = s.engine.push_labels().push_labels(&app, after, limit).await.map_err(label_err)?;
    Ok(with_cursor(data(json!(page.items.iter().map(label_json).collect::<Vec<_>>())), page.next))
}

/// `DELETE /push/label/{labelname}`: the label and its users.
async fn label_delete(State(s): State<EmState>, Admin { app, .. }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_DELETE).await?;
    s.engine.push_labels().delete_push_label(&app, p.get("labelname")?).await.map_err(label_err)?;
    Ok(data(json!("success")))
}

/// A request's own fault (a bad body or page), answered only once the label is known to exist:
/// a missing label is the answer before it.
async fn after_label<T>(s: &EmState, app: &App, label: &str, r: EmResult<T>) -> EmResult<T> {
    if r.is_err() {
        s.engine.push_labels().push_label(app, label).await.map_err(label_err)?;
    }
    r
}

/// The `usernames` of an add or remove.
async fn label_batch(s: &EmState, app: &App, label: &str, b: &Value) -> EmResult<Vec<String>> {
    after_label(s, app, label, names_of(b.get("usernames"), "usernames").map_err(|_| bad_param("usernames"))).await
}

/// `POST /push/label/{labelname}/user {usernames}`: `{success, fail}`.
async fn label_add(State(s): State<EmState>, Admin { app, .. }: Admin, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_ADD).await?;
    let label = p.get("labelname")?;
    let names = label_batch(&s, &app, label, &b).await?;
    let out = s.engine.push_labels().add_push_label_users(&app, label, names).await.map_err(label_err)?;
    let fail: Map<String, Value> = out
        .failed
        .into_iter()
        .map(|(u, why)| {
            let why = match why {
                LabelUserFail::NoSuchUser => "user not exist",
                LabelUserFail::LabelFull => "label user count exceeds limit",
            };
            (u, json!(why))
        })
        .collect();
    Ok(data(json!({"success": out.added, "fail": fail})))
}

/// `GET /push/label/{labelname}/user/{username}`: no `data` when the user is not under it.
async fn label_user(State(s): State<EmState>, Admin { app, .. }: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_USER).await?;
    let name = p.get("username")?.to_lowercase();
    Ok(match s.engine.push_labels().push_label_user(&app, p.get("labelname")?, &name).await.map_err(label_err)? {
        Some(u) => data(label_user_json(&u)),
        None => Answer::bare(json!({})),
    })
}

/// `GET /push/label/{labelname}/user?limit&cursor`.
async fn label_users(State(s): State<EmState>, Admin { app, .. }: Admin, p: P, q: Params) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_USERS).await?;
    let label = p.get("labelname")?;
    let (after, limit) = after_label(&s, &app, label, page_params(&q, 100)).await?;
    let page = s.engine.push_labels().push_label_users(&app, label, after, limit).await.map_err(label_err)?;
    Ok(with_cursor(data(json!(page.items.iter().map(label_user_json).collect::<Vec<_>>())), page.next))
}

/// `DELETE /push/label/{labelname}/user {usernames}`: `{success, fail}`.
async fn label_remove(State(s): State<EmState>, Admin { app, .. }: Admin, p: P, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL_REMOVE).await?;
    let label = p.get("labelname")?;
    let names = label_batch(&s, &app, label, &b).await?;
    let (gone, absent) = s.engine.push_labels().remove_push_label_users(&app, label, names).await.map_err(label_err)?;
    let fail: Map<String, Value> = absent.into_iter().map(|n| (n, json!("user not in label"))).collect();
    Ok(data(json!({"success": gone, "fail": fail})))
}

// ---------------------------------------------------------------------- push tasks

/// `pushMessage`: an object; `title` ≤32, `subTitle` ≤10, `content` ≤100 characters, `ext` ≤10
/// pairs and ≤1024 characters. Vendor objects pass through.
fn push_message(b: &Value) -> EmResult<Value> {
    let m = b.get("pushMessage").and_then(Value::as_object).ok_or_else(|| bad_param("pushMessage"))?;
    for (k, max) in [("title", 32), ("subTitle", 10), ("content", 100)] {
        match m.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(x)) if x.chars().count() <= max => {}
            Some(_) => return Err(bad_param(k)),
        }
    }
    if let Some(ext) = m.get("ext") {
        let o = ext.as_object().ok_or_else(|| bad_param("ext"))?;
        if o.len() > 10 || ext.to_string().chars().count() > 1024 {
            return Err(bad_param("ext"));
        }
    }
    Ok(Value::Object(m.clone()))
}

fn strategy(b: &Value) -> EmResult<i64> {
    match b.get("strategy") {
        None | Some(Value::Null) => Ok(2),
        Some(v) => v.as_i64().filter(|s| (0..=3).contains(s)).ok_or_else(|| bad_param("strategy")),
    }
}

fn task(target: &str, users: Vec<String>, labels: Vec<String>, strategy: i64, message: Value) -> PushTask {
    PushTask { id: 0, target: target.into(), users, labels, strategy, message, created_at: 0 }
}

/// `POST /push/single {targets, async, strategy, pushMessage}`: one status per target; unknown
/// users `FAIL`.
async fn push_single(State(s): State<EmState>, Admin { app, .. }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_SINGLE).await?;
    let targets = names_of(b.get("targets"), "targets").map_err(|_| bad_param("targets"))?;
    let is_async = match b.get("async") {
        None | Some(Value::Null) => true,
        Some(v) => v.as_bool().ok_or_else(|| bad_param("async"))?,
    };
    if targets.is_empty() || targets.len() > PUSH_TARGETS_MAX || (!is_async && targets.len() != 1) {
        return Err(bad_param("targets"));
    }
    let (strategy, message) = (strategy(&b)?, push_message(&b)?);
    let known = s.engine.users().by_ids(&app, &targets).await?;
    let users: Vec<String> = targets.iter().filter(|t| known.contains_key(*t)).cloned().collect();
    if !users.is_empty() {
        s.engine.social().push_task(&app, task("single", users, vec![], strategy, message)).await?;
    }
    let out: Vec<Value> = targets
        .iter()
        .map(|t| match (known.contains_key(t), is_async) {
            (false, _) => json!({"id": t, "pushStatus": "FAIL", "desc": "user not exist."}),
            (true, true) => json!({"id": t, "pushStatus": "ASYNC_SUCCESS", "desc": "async success."}),
            (true, false) => json!({"id": t, "pushStatus": "SUCCESS", "desc": "success."}),
        })
        .collect();
    Ok(data(json!(out)))
}

/// `POST /push/list/label {targets, strategy, pushMessage}`: to the users under every named
/// label (the intersection); `data.taskId`.
async fn push_label(State(s): State<EmState>, Admin { app, .. }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_LABEL).await?;
    let labels: Vec<String> = match b.get("targets") {
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| bad_param("targets"))).collect::<EmResult<_>>()?
        }
        _ => return Err(bad_param("targets")),
    };
    push_labels::check_targets(&labels).map_err(label_err)?;
    let (strategy, message) = (strategy(&b)?, push_message(&b)?);
    let users = s.engine.push_labels().push_label_audience(&app, &labels).await.map_err(label_err)?;
    let id = s.engine.social().push_task(&app, task("label", users, labels, strategy, message)).await?;
    Ok(data(json!({"taskId": id})))
}

/// `POST /push/task {strategy, pushMessage}`: to every user of the app (the task names no
/// users; the webhook's receiver fans out). `data` is the task id.
async fn push_all(State(s): State<EmState>, Admin { app, .. }: Admin, Body(b): Body) -> Reply {
    s.engine.apps().rate_check(&app, bucket::EM_PUSH_TASK).await?;
    let (strategy, message) = (strategy(&b)?, push_message(&b)?);
    let id = s.engine.social().push_task(&app, task("app", vec![], vec![], strategy, message)).await?;
    Ok(data(json!(id)))
}
