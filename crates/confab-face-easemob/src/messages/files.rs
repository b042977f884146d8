//! Chat files (`/chatfiles`, spec §3.3.5–6) and the hourly history export (`/chatmessages`,
//! §3.3.7).

use std::collections::HashMap;
use std::io::Write;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::model::{App, ConvKind, Message};
use confab_engine::query::{Bound, HistoryQuery, HistoryScope};
use confab_engine::{Entry, PutRule};
use confab_routes::{get, post};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{chat_type, payload};
use crate::auth::Need;
use crate::auth::{ct_eq, Admin, AppOf, Caller, EmState, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::Routes;

/// Uploaded files are kept this many days (Easemob's default).
pub const FILE_TTL_DAYS: i64 = 7;
/// The largest request `/chatfiles` reads; the app's `em_file_max_bytes` decides below it.
const UPLOAD_BODY_MAX: usize = 100 * 1024 * 1024;
/// How long a history download link stays valid, in seconds.
const EXPORT_LINK_SECS: i64 = 3600;
/// Most messages one hour's export holds.
const EXPORT_MAX: usize = 200_000;

pub fn routes() -> Routes {
    vec![
        post("/chatfiles", Need::Token, upload).map(|h| h.layer(DefaultBodyLimit::max(UPLOAD_BODY_MAX))),
        get("/chatfiles/{file_id}", Need::Link, download),
        get("/chatmessages/{time}", Need::App, export),
        get("/chatmessages/{time}/download", Need::Link, export_file),
    ]
}

fn no_file() -> EmError {
    EmError::new(StatusCode::NOT_FOUND, "entity_not_found", "EntityNotFoundException", "file may not exists")
}

fn file_too_large() -> EmError {
    EmError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file exceeding maximum limit",
        "FileSizeExceededException",
        "the file size exceeds the maximum limit.",
    )
}

/// One part of a `multipart/form-data` body: its field name, file name, type and bytes.
struct Part<'a> {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// A header parameter (`name="file"`) of a part's Content-Disposition.
fn disposition_param(line: &str, key: &str) -> Option<String> {
    line.split(';').map(str::trim).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of a multipart body with the given boundary.
fn multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<Part<'a>> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let Some(mut pos) = find(body, delim.as_bytes(), 0) else { return parts };
    loop {
        let start = pos + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(head_end) = find(body, b"\r\n\r\n", start) else { break };
        let head = String::from_utf8_lossy(&body[start..head_end]);
        let data_start = head_end + 4;
        let Some(next) = find(body, format!("\r\n{delim}").as_bytes(), data_start) else { break };
        let (mut name, mut filename, mut content_type) = (String::new(), None, None);
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name").unwrap_or_default();
                filename = disposition_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part { name, filename, content_type, data: &body[data_start..next] });
        pos = next + 2;
    }
    parts
}

fn header_str<'a>(h: &'a HeaderMap, k: &str) -> Option<&'a str> {
    h.get(k).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `POST /chatfiles`: a `multipart/form-data` upload (part `file`). `restrict-access: true`
/// makes downloads need the returned `share-secret`.
async fn upload(
    State(s): State<EmState>,
    c: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Reply {
    s.engine.apps().rate_check(&c.app, bucket::EM_CHATFILES_UPLOAD).await?;
    let body =
        body.map_err(|e| if e.status() == StatusCode::PAYLOAD_TOO_LARGE { file_too_large() } else { EmError::illegal(e.body_text()) })?;
    let ctype = header_str(&headers, "content-type").unwrap_or_default();
    if !ctype.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(EmError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "web_application",
            "javax.ws.rs.NotSupportedException",
            "Unsupported Media Type",
        ));
    }
    let boundary = disposition_param(ctype, "boundary").ok_or_else(|| EmError::illegal("file must be provided."))?;
    let parts = multipart(&body, &boundary);
    let file = parts.iter().find(|p| p.name == "file" && p.filename.is_some()).or_else(|| parts.iter().find(|p| p.name == "file"));
    let file = file.ok_or_else(|| EmError::illegal("file must be provided."))?;
    if file.data.len() > c.app.limits.em_file_max_bytes {
        return Err(file_too_large());
    }
    let restricted = header_str(&headers, "restrict-access").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let h = confab_engine::random_hex(16);
    let id = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    let secret = confab_engine::random_string(10);
    s.engine.files().put_blob(&c.app, &id, file.data.to_vec()).await?;
    let now = s.engine.now();
    let record = json!({
        "filename": file.filename.clone().unwrap_or_else(|| id.clone()),
        "content_type": file.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
        "size": file.data.len(),
        "restricted": restricted,
        "secret": secret,
        "uploader": c.user.as_ref().map(|u| u.id.clone()),
    });
    let entry = Entry::new(ns::FILES, "", id.clone(), record).expiring(Some(now + FILE_TTL_DAYS * 86_400_000));
    s.engine.collections().put(&c.app, vec![entry], PutRule::default()).await?;
    let mut ent = json!({"uuid": id, "type": "chatfile"});
    ent["share-secret"] = json!(secret);
    Ok(c.ctx.envelope(&c.app, "post", "/chatfiles").with("entities", json!([ent])))
}

/// `GET /chatfiles/{file_id}`: the bytes (`thumbnail: true` is accepted; confab makes no
/// thumbnails and answers the original). A restricted file needs its `share-secret` (header or
/// query).
async fn download(State(s): State<EmState>, AppOf { app, .. }: AppOf, p: P, q: Params, headers: HeaderMap) -> Result<Response, EmError> {
    s.engine.apps().rate_check(&app, bucket::EM_CHATFILES_DOWNLOAD).await?;
    let id = p.get("file_id")?.to_string();
    let rec = s.engine.collections().get(&app, ns::FILES, "", &id).await?.ok_or_else(no_file)?;
    if rec.value["restricted"].as_bool() == Some(true) {
        let given = header_str(&headers, "share-secret").or(q.get("share-secret")).unwrap_or_default();
        if !ct_eq(given, rec.value["secret"].as_str().unwrap_or_default()) {
            return Err(EmError::bad_token());
        }
    }
    let bytes = s.engine.files().blob(&app, &id).await?.ok_or_else(no_file)?;
    let ctype = rec.value["content_type"].as_str().unwrap_or("application/octet-stream").to_string();
    Ok(([(header::CONTENT_TYPE, ctype)], bytes).into_response())
}

// ---------------------------------------------------------------------- history export

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start (Unix ms) of the UTC hour `yyyyMMddHH` names.
fn hour_start(t: &str) -> Option<i64> {
    if t.len() != 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().ok();
    let (y, m, d, h) = (n(0, 4)?, n(4, 6)?, n(6, 8)?, n(8, 10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=days_in[(m - 1) as usize]).contains(&d) || h > 23 {
        return None;
    }
    Some((days_from_civil(y, m, d) * 24 + h) * 3_600_000)
}

fn appkey(app: &App) -> String {
    format!("{}#{}", app.keys.easemob.org_name, app.keys.easemob.app_name)
}

fn link_signature(app: &App, time: &str, expires: i64) -> String {
    hex::encode(Sha256::digest(format!("{}:{}:{time}:{expires}", app.keys.easemob.client_secret, app.id).as_bytes()))
}

/// The stored messages of one hour, oldest first.
async fn hour_messages(s: &EmState, app: &App, start: i64) -> EmResult<Vec<Message>> {
    let mut out = Vec::new();
    let mut after = Bound { timestamp: start, id: None, inclusive: true };
    loop {
        let q = HistoryQuery {
            scope: HistoryScope::App,
            older_than: Some(Bound { timestamp: start + 3_600_000, id: None, inclusive: false }),
            newer_than: Some(after.clone()),
            ascending: true,
            limit: app.limits.history_max_limit,
            mtype: None,
        };
        let page = s.engine.messages().history(app, &q).await?;
        let full = page.len() as i64 >= app.limits.history_max_limit;
        if let Some(last) = page.last() {
            after = Bound { timestamp: last.timestamp, id: Some(last.id), inclusive: false };
        }
        out.extend(page);
        if !full || out.len() >= EXPORT_MAX {
            break;
        }
    }
    out.retain(|m| m.recalled_at.is_none());
    Ok(out)
}

/// One history line per message:
/// `{msg_id, timestamp, direction, to, from, chat_type, payload: {bodies, ext, from, to}}`.
pub async fn history_lines(s: &EmState, app: &App, msgs: &[Message]) -> EmResult<Vec<Value>> {
    let mut convs: HashMap<i64, (String, bool, Vec<String>, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        if let std::collections::hash_map::Entry::Vacant(slot) = convs.entry(m.conv) {
            let Ok(conv) = s.engine.conversations().conversation(app, m.conv, None).await else { continue };
            let members = s.engine.conversations().members(app, &conv).await?;
            let direct = conv.kind == ConvKind::Normal && conv.unique;
            slot.insert((chat_type(&conv).to_string(), direct, members, conv.id));
        }
        let (kind, direct, members, id) = &convs[&m.conv];
        let to = if *direct { members.iter().find(|u| **u != m.from).cloned().unwrap_or_default() } else { id.to_string() };
        out.push(json!({
            "msg_id": m.id.to_string(),
            "timestamp": m.timestamp,
            "direction": "outgoing",
            "to": to,
            "from": m.from,
            "chat_type": kind,
            "payload": payload(m, &to),
        }));
    }
    Ok(out)
}

/// `GET /chatmessages/{time}`: a link to the hour's messages, a gzip file of JSON lines.
async fn export(State(s): State<EmState>, a: Admin, p: P) -> Reply {
    s.engine.apps().rate_check(&a.app, bucket::EM_CHATMESSAGES).await?;
    let time = p.get("time")?.to_string();
    let start =
        hour_start(&time).ok_or_else(|| EmError::illegal(format!("illegal arguments: appkey: {}, time: {time}", appkey(&a.app))))?;
    let not_stored = || {
        EmError::new(
            StatusCode::NOT_FOUND,
            "storage_object_not_found",
            "StorageObjectNotFoundException",
            format!("Failed to find chat message history download url for appkey: {}, time: {time}", appkey(&a.app)),
        )
    };
    if start > s.engine.now() || hour_messages(&s, &a.app, start).await?.is_empty() {
        return Err(not_stored());
    }
    let expires = s.engine.now() / 1000 + EXPORT_LINK_SECS;
    let base = a.ctx.uri.split('?').next().unwrap_or_default().trim_end_matches('/').to_string();
    let url = format!("{base}/download?Expires={expires}&Signature={}", link_signature(&a.app, &time, expires));
    Ok(a.ctx.envelope(&a.app, "get", &format!("/chatmessages/{time}")).with("entities", json!([])).with("data", json!([{"url": url}])))
}

/// The file a `/chatmessages/{time}` link names (no token: the link is signed and short-lived).
async fn export_file(State(s): State<EmState>, AppOf { app, .. }: AppOf, p: P, q: Params) -> Result<Response, EmError> {
    let time = p.get("time")?.to_string();
    let start = hour_start(&time).ok_or_else(no_file)?;
    let expires: i64 = q.get("Expires").and_then(|e| e.parse().ok()).ok_or_else(EmError::bad_token)?;
    let sig = q.get("Signature").unwrap_or_default();
    if !ct_eq(sig, &link_signature(&app, &time, expires)) || expires < s.engine.now() / 1000 {
        return Err(EmError::new(
            StatusCode::FORBIDDEN,
            "forbidden_op",
            "AccessDeniedException",
            "the download link is invalid or expired",
        ));
    }
    let msgs = hour_messages(&s, &app, start).await?;
    let lines = history_lines(&s, &app, &msgs).await?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        let _ = writeln!(gz, "{l}");
    }
    let bytes = gz.finish().map_err(|e| EmError::from(confab_engine::Error::Internal(e.to_string())))?;
    let name = format!("attachment; filename=\"{time}.gz\"");
    Ok(([(header::CONTENT_TYPE, "application/gzip".to_string()), (header::CONTENT_DISPOSITION, name)], bytes).into_response())
}
