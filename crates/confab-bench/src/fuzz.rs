//! `fuzz`: random requests to every route of every face (read from the faces' own route tables),
//! with random path parameters, query strings, credentials and bodies (random JSON, bytes that are
//! not JSON, now and then a body over the size limit), against a running server. It reports the
//! answers by status, every 5xx (there should be none), and the server's resident memory before,
//! at its peak, after, and ten seconds later: what a crowd of bad requests leaves behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use crate::mem::{mb, rss, sample_rss};

#[derive(clap::Args, Clone)]
pub struct FuzzArgs {
    /// The running confab.
    #[arg(long)]
    pub url: String,
    /// The app's keys: the output of `confab app create --json`.
    #[arg(long)]
    pub app_json: std::path::PathBuf,
    #[arg(long)]
    pub server_pid: u32,
    #[arg(long, default_value_t = 40_000)]
    pub requests: usize,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What a request may carry, by face.
struct Keys {
    lc_id: String,
    lc_key: String,
    lc_master: String,
    em_base: String,
    em_token: String,
    mx_app: String,
    mx_admin: String,
    /// Ids that exist (conversations, users), so some requests reach past the lookups.
    ids: Vec<String>,
}

fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> &'a T {
    &v[rng.gen_range(0..v.len())]
}

fn random_string(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => String::new(),
        1 => "x".repeat(rng.gen_range(100..5000)),
        2 => "../../etc/passwd".into(),
        3 => "😀\u{0}\u{202e}名字".into(),
        4 => rng.gen_range(-5i64..i64::MAX).to_string(),
        5 => "{\"$gt\":1}".into(),
        _ => (0..rng.gen_range(1..20)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect(),
    }
}

/// A header value (visible ASCII; random strings may not be one).
fn random_token(rng: &mut StdRng) -> String {
    (0..rng.gen_range(0..80)).map(|_| rng.gen_range(b'!'..=b'~') as char).collect()
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 2 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.gen_range(-1_000_000i64..1_000_000_000_000)),
        3 => json!(rng.gen::<f64>() * 1e6),
        4 => json!(random_string(rng)),
        5 => Value::Array((0..rng.gen_range(0..6)).map(|_| random_json(rng, depth + 1)).collect()),
        _ => {
            const KEYS: &[&str] = &[
                "from_client",
                "message",
                "m",
                "name",
                "username",
                "password",
                "users",
                "list",
                "to",
                "from",
                "type",
                "body",
                "msg",
                "where",
                "limit",
                "client_id",
                "user_id",
                "group_id",
                "target",
                "members",
                "usernames",
                "grant_type",
                "attr",
                "ttl",
                "transient",
                "unique",
                "content",
                "ext",
                "conv_id",
            ];
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..8) {
                m.insert(pick(rng, KEYS).to_string(), random_json(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// A body that could pass: the fields the faces' calls take, with plausible values (new users
/// with passwords among them, so password hashing is part of the load).
fn plausible(rng: &mut StdRng, keys: &Keys) -> Value {
    let name: String = (0..rng.gen_range(4..12)).map(|_| rng.gen_range(b'a'..=b'z') as char).collect();
    let id = pick(rng, &keys.ids).clone();
    json!({
        "username": name, "password": random_string(rng), "name": name,
        "list": (0..rng.gen_range(0..4)).map(|i| json!({"username": format!("{name}{i}"), "password": "pw"})).collect::<Vec<_>>(),
        "m": [id, "alice"], "from_client": "alice", "from": "alice", "to": [id], "message": random_string(rng),
        "type": "txt", "body": {"msg": random_string(rng)}, "grant_type": "password", "targets": [id],
    })
}

/// A path from a route pattern: `{org}`/`{app}` as the app's, every other parameter an existing
/// id or something random.
fn fill(rng: &mut StdRng, pattern: &str, keys: &Keys) -> String {
    let em = keys.em_base.trim_start_matches('/');
    let (org, app) = em.split_once('/').unwrap_or((em, ""));
    pattern
        .split('/')
        .map(|seg| match seg {
            "{org}" => org.to_string(),
            "{app}" => app.to_string(),
            s if s.starts_with('{') => {
                let v = if rng.gen_bool(0.6) { pick(rng, &keys.ids).clone() } else { random_string(rng) };
                urlencoding::encode(&v).into_owned()
            }
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub async fn fuzz(a: FuzzArgs) -> anyhow::Result<()> {
    let app: Value = serde_json::from_str(&std::fs::read_to_string(&a.app_json)?)?;
    let s = |p: &str| app.pointer(p).and_then(Value::as_str).map(str::to_string).with_context(|| format!("{p} in the app's JSON"));
    let base = a.url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(a.concurrency).build()?;
    let em_base = format!("/{}/{}", s("/easemob/org_name")?, s("/easemob/app_name")?);
    let grant =
        json!({"grant_type": "client_credentials", "client_id": s("/easemob/client_id")?, "client_secret": s("/easemob/client_secret")?});
    let r: Value = http.post(format!("{base}{em_base}/token")).json(&grant).send().await?.json().await?;
    let mut keys = Keys {
        lc_id: s("/leancloud/app_id")?,
        lc_key: s("/leancloud/app_key")?,
        lc_master: s("/leancloud/master_key")?,
        em_base,
        em_token: r["access_token"].as_str().context("an Easemob app token")?.to_string(),
        mx_app: s("/maxim/app_id")?,
        mx_admin: s("/maxim/admin_token")?,
        ids: vec!["alice".into(), "bob".into()],
    };
    // a few things that exist
    for u in ["alice", "bob"] {
        let _ = http
            .post(format!("{base}{}/users", keys.em_base))
            .bearer_auth(&keys.em_token)
            .json(&json!({"username": u, "password": "pw"}))
            .send()
            .await?;
    }
    let r: Value = http
        .post(format!("{base}/1.2/rtm/conversations"))
        .header("X-LC-Id", &keys.lc_id)
        .header("X-LC-Key", format!("{},master", keys.lc_master))
        .json(&json!({"name": "fuzz", "m": ["alice", "bob"]}))
        .send()
        .await?
        .json()
        .await?;
    keys.ids.push(r["objectId"].as_str().context("a conversation")?.to_string());

    let routes: Vec<(String, String)> = confab_face_leancloud::routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .chain(confab_face_maxim::routes().into_iter().map(|r| (r.method.to_string(), r.path)))
        .chain(confab_face_easemob::routes().into_iter().map(|r| (r.method.to_string(), r.path)))
        .collect();
    let (keys, routes) = (Arc::new(keys), Arc::new(routes));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss(a.server_pid)?;
    let (stop, sampler) = sample_rss(a.server_pid, Duration::from_millis(100));
    let statuses: Arc<Mutex<BTreeMap<u16, usize>>> = Arc::default();
    let server_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(a.concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.requests {
        let permit = slots.clone().acquire_owned().await?;
        let mut rng = StdRng::seed_from_u64(a.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let (keys, routes, http, base) = (keys.clone(), routes.clone(), http.clone(), base.clone());
        let (statuses, server_errors) = (statuses.clone(), server_errors.clone());
        tasks.spawn(async move {
            let (method, pattern) = pick(&mut rng, &routes).clone();
            let mut path = fill(&mut rng, &pattern, &keys);
            if rng.gen_bool(0.3) {
                let q = random_json(&mut rng, 2).to_string();
                path += &format!("?limit={}&where={}&cursor={}", rng.gen_range(-5..2000), urlencoding::encode(&q), random_string(&mut rng));
            }
            let method = if rng.gen_bool(0.05) { "PATCH".to_string() } else { method };
            let mut req =
                http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET), format!("{base}{path}"));
            // half the time the credential the face expects, the rest anything
            let face = if path.starts_with("/1.") {
                1
            } else if path.starts_with(&keys.em_base) {
                4
            } else {
                7
            };
            req = match if rng.gen_bool(0.5) { face + rng.gen_range(0..2) } else { rng.gen_range(0..9) } {
                0 => req,
                1 => req.header("X-LC-Id", &keys.lc_id).header("X-LC-Key", &keys.lc_key),
                2 => req.header("X-LC-Id", &keys.lc_id).header("X-LC-Key", format!("{},master", keys.lc_master)),
                3 => req.header("X-LC-Id", &keys.lc_id).header("X-LC-Key", random_token(&mut rng)),
                4 => req.bearer_auth(&keys.em_token),
                5 => req.bearer_auth(random_token(&mut rng)),
                6 => req.header("app_id", &keys.mx_app).header("access-token", &keys.mx_admin).header("user_id", random_token(&mut rng)),
                7 => req.header("app_id", &keys.mx_app).header("access-token", &keys.mx_admin),
                _ => req.header("app_id", &keys.mx_app).header("access-token", random_token(&mut rng)),
            };
            let body: Vec<u8> = match rng.gen_range(0..50) {
                0 => vec![b'{'; rng.gen_range(1_000_000..2_500_000)],
                1..=4 => (0..rng.gen_range(1..2000)).map(|_| rng.gen::<u8>()).collect(),
                5..=9 => Vec::new(),
                10..=29 => plausible(&mut rng, &keys).to_string().into_bytes(),
                _ => random_json(&mut rng, 0).to_string().into_bytes(),
            };
            let body_len = body.len();
            req = req.header("Content-Type", "application/json").body(body);
            let status = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    if status >= 500 {
                        server_errors.lock().push(format!("{method} {path} → {status} {}", text.chars().take(200).collect::<String>()));
                    }
                    status
                }
                Err(e) => {
                    let mut errors = server_errors.lock();
                    if errors.iter().filter(|e| e.starts_with("no answer")).count() < 5 {
                        errors.push(format!("no answer: {method} {path} ({} body bytes): {e:?}", body_len));
                    }
                    0
                }
            };
            *statuses.lock().entry(status).or_default() += 1;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let took = start.elapsed();
    let after = rss(a.server_pid)?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = rss(a.server_pid)?;
    let _ = stop.send(true);
    let peak = sampler.await?.iter().map(|(_, r)| *r).max().unwrap_or(0);
    println!(
        "fuzz: {} requests over {} routes, {} at a time, in {:.1}s; answers by status {:?} (0: no answer)",
        a.requests,
        routes.len(),
        a.concurrency,
        took.as_secs_f64(),
        statuses.lock()
    );
    let errors = server_errors.lock();
    let fives = errors.iter().filter(|e| !e.starts_with("no answer")).count();
    println!("fuzz: {fives} answers 5xx; examples of 5xx and of requests without an answer:");
    for e in errors.iter().take(15) {
        println!("  {}", e.chars().take(400).collect::<String>());
    }
    println!(
        "fuzz: server RSS {:.1} MB before, peak {:.1} MB, {:.1} MB after, {:.1} MB ten seconds later",
        mb(before.0),
        mb(peak),
        mb(after.0),
        mb(later.0)
    );
    Ok(())
}
