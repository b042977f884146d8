//! A group's or chat room's shared files (§3.6.11–§3.6.14): the record in the conversation's
//! `GROUP_FILES` collection (keyed by its id: groups and rooms share the id space), the bytes in
//! an engine blob. A user token lists, downloads and uploads as a member (a chat room: one in
//! it), and deletes as the owner, an admin or the uploader (the engine's `GroupCall` rules).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_engine::conv::GroupCall;
use confab_engine::entries::ns;
use confab_engine::limits::bucket;
use confab_engine::{Entry, EntryFilter, EntryQuery, Put, PutRule};
use confab_routes::{delete, get, post};
use serde_json::{json, Value};

use super::{conv_for, conv_of, owner_of, role_refusal, Family};
use crate::auth::Need;
use crate::auth::{Caller, EmState, Params, P};
use crate::envelope::{EmError, EmResult, Reply};
use crate::Routes;

pub fn routes() -> Routes {
    let mut r = Routes::new();
    for fam in [Family::Group, Family::Room] {
        let base = format!("{}/{{{}}}/share_files", fam.prefix(), fam.id_param());
        let one = format!("{base}/{{file_id}}");
        r.push(get(base.clone(), Need::Token, move |st: State<EmState>, c: Caller, p: P, q: Params| list(fam, st, c, p, q)));
        r.push(post(base, Need::Token, move |st: State<EmState>, c: Caller, p: P, h: HeaderMap, b: Bytes| upload(fam, st, c, p, h, b)));
        r.push(get(one.clone(), Need::Token, move |st: State<EmState>, c: Caller, p: P| download(fam, st, c, p)));
        r.push(delete(one, Need::Token, move |st: State<EmState>, c: Caller, p: P| remove(fam, st, c, p)));
    }
    r
}

fn file_required() -> EmError {
    EmError::new(StatusCode::BAD_REQUEST, "illegal_argument", "IllegalArgumentException", "file must be provided.")
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The `file` part of a `multipart/form-data` body: its file name and bytes.
pub fn multipart_file(headers: &HeaderMap, body: &[u8]) -> EmResult<(String, Vec<u8>)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(file_required());
    }
    let boundary =
        ct.split(';').map(str::trim).find_map(|p| p.strip_prefix("boundary=")).map(|b| b.trim_matches('"')).ok_or_else(file_required)?;
    let delim = format!("--{boundary}").into_bytes();
    let mut at = find(body, &delim, 0).ok_or_else(file_required)?;
    loop {
        let start = at + delim.len();
        if body.get(start..start + 2) == Some(b"--") {
            return Err(file_required());
        }
        let next = find(body, &delim, start).ok_or_else(file_required)?;
        let part = &body[start..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(h_end) = find(part, b"\r\n\r\n", 0) {
            let heads = String::from_utf8_lossy(&part[..h_end]).to_string();
            let disposition = heads.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition")).unwrap_or("");
            let param = |k: &str| {
                disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix(&format!("{k}=")))
                    .map(|v| v.trim_matches('"').to_string())
            };
            if param("name").as_deref() == Some("file") {
                let name = param("filename").filter(|n| !n.is_empty()).unwrap_or_else(|| "file".into());
                return Ok((name, part[h_end + 4..].to_vec()));
            }
        }
        at = next;
    }
}

fn record(gid: &str, e: &Entry) -> Value {
    let mut v = e.value.clone();
    v["file_id"] = json!(e.item);
    v["created"] = json!(e.created_at);
    let _ = gid;
    v
}

/// `GET /chatgroups/{group_id}/share_files?pagenum&pagesize`: `pagesize` 1–1000 (default 1000),
/// `pagenum` from 1, oldest first.
pub async fn list(fam: Family, State(s): State<EmState>, c: Caller, p: P, q: Params) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_SHARE_FILES_LIST).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Files).await?;
    let size = q.int("pagesize", 1000, 1..=1000)?;
    let num = q.int("pagenum", 1, 0..=i64::MAX / 1001)?.max(1) - 1;
    let gid = conv.id.to_string();
    let all = s.engine.collections().list(&app, &EntryQuery::all(EntryFilter::collection(ns::GROUP_FILES, gid.clone()))).await?;
    let data: Vec<Value> = all.iter().skip((size * num) as usize).take(size as usize).map(|e| record(&gid, e)).collect();
    Ok(ctx.envelope(&app, "get", fam.prefix()).with("entities", json!([])).with("count", json!(data.len())).with("data", json!(data)))
}

/// `POST /chatgroups/{group_id}/share_files` (multipart, field `file`): at most
/// `em_file_max_bytes`, `em_group_files_max` files a group. `file_owner` is the uploading user
/// (the app token: the owner).
pub async fn upload(fam: Family, State(s): State<EmState>, c: Caller, p: P, headers: HeaderMap, body: Bytes) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_SHARE_FILES_UPLOAD).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Files).await?;
    let (name, bytes) = multipart_file(&headers, &body)?;
    if bytes.len() > app.limits.em_file_max_bytes {
        return Err(EmError::too_large());
    }
    let gid = conv.id.to_string();
    let members = s.engine.conversations().members_of(&app, &[conv.id]).await?;
    let owner = match &c.user {
        Some(u) => u.id.clone(),
        None => owner_of(members.get(&conv.id).map(Vec::as_slice).unwrap_or_default()).unwrap_or_default().to_string(),
    };
    let file_id = confab_engine::random_hex(16);
    let size = bytes.len();
    let value = json!({"file_name": name, "file_owner": owner, "file_size": size});
    let rule = PutRule { max_items: Some(app.limits.em_group_files_max), ..Default::default() };
    let put = s.engine.collections().put(&app, vec![Entry::new(ns::GROUP_FILES, gid.clone(), file_id.clone(), value)], rule).await?;
    if put.first() == Some(&Put::Full) {
        return Err(EmError::exceed_limit(format!("the group holds {} files already", app.limits.em_group_files_max)));
    }
    s.engine.files().put_blob(&app, &format!("gf-{file_id}"), bytes).await?;
    let created = s.engine.collections().get(&app, ns::GROUP_FILES, &gid, &file_id).await?.map(|e| e.created_at).unwrap_or_default();
    let url = format!("{}/{file_id}", ctx.uri.trim_end_matches('/'));
    Ok(ctx.envelope(&app, "post", fam.prefix()).with("entities", json!([])).with(
        "data",
        json!({"file_url": url, "group_id": gid, "file_name": name, "created": created, "file_id": file_id, "file_size": size}),
    ))
}

fn no_file(id: &str) -> EmError {
    EmError::not_found(format!("file {id} does not exist!"))
}

/// `GET /chatgroups/{group_id}/share_files/{file_id}`: the raw bytes.
pub async fn download(fam: Family, State(s): State<EmState>, c: Caller, p: P) -> EmResult<Response> {
    let app = c.app.clone();
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_SHARE_FILES_DOWNLOAD).await?;
    let conv = conv_for(&s, &c, &p, fam, GroupCall::Files).await?;
    let id = p.get("file_id")?;
    let e = s.engine.collections().get(&app, ns::GROUP_FILES, &conv.id.to_string(), id).await?.ok_or_else(|| no_file(id))?;
    let bytes = s.engine.files().blob(&app, &format!("gf-{id}")).await?.ok_or_else(|| no_file(id))?;
    let name = e.value["file_name"].as_str().unwrap_or("file").replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// `DELETE …/share_files/{file_id}`: the owner, an admin, or who uploaded it.
pub async fn remove(fam: Family, State(s): State<EmState>, c: Caller, p: P) -> Reply {
    let (app, ctx) = (c.app.clone(), c.ctx.clone());
    s.engine.apps().rate_check(&app, bucket::EM_CHATGROUPS_SHARE_FILES_DELETE).await?;
    let conv = conv_of(&s.engine, &app, fam, p.get(fam.id_param())?).await?;
    let id = p.get("file_id")?;
    let gid = conv.id.to_string();
    // a stranger is refused before being told whether the file exists
    s.engine.conversations().check_group_call(&app, &conv, &c.actor(), GroupCall::Files).await.map_err(|e| role_refusal(fam, e))?;
    let e = s.engine.collections().get(&app, ns::GROUP_FILES, &gid, id).await?.ok_or_else(|| no_file(id))?;
    let uploader = e.value["file_owner"].as_str().unwrap_or_default();
    s.engine
        .conversations()
        .check_group_call(&app, &conv, &c.actor(), GroupCall::DeleteFile { uploader })
        .await
        .map_err(|e| role_refusal(fam, e))?;
    let gone =
        s.engine.collections().delete(&app, &EntryFilter::collection(ns::GROUP_FILES, gid.clone()).items(vec![id.to_string()])).await?;
    if gone.is_empty() {
        return Err(no_file(id));
    }
    s.engine.files().delete_blob(&app, &format!("gf-{id}")).await?;
    Ok(ctx
        .envelope(&app, "delete", fam.prefix())
        .with("entities", json!([]))
        .with("data", json!({"group_id": gid, "file_id": id, "result": true})))
}
