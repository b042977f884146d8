//! `xmpp-fanout`: the same group fan-out as `ws-fanout`, through ejabberd's MUC.
//!
//! `--conversations` MUC rooms (`g{g}@conference.{domain}`) of `--members` occupants each, every
//! occupant its own XMPP client connection (plaintext c2s, SASL ANONYMOUS). In every room member 0
//! sends groupchat messages as fast as its `--window` allows; MUC reflects each message to its
//! sender too, and that echo returns a window slot. Every other member receives each message; the
//! body is the send time, so a receiver measures send → receive.
//!
//! Without `--addr` the bench starts its own ejabberd ([`Ejabberd`], Debian's package:
//! `apt-get install ejabberd`) with the config in [`CONFIG`]: c2s on a free port of 127.0.0.1 without
//! TLS, anonymous logins, no traffic shaping, MUC without MAM or history. With `--addr` (and
//! `--domain`) it runs against a server already running, which must allow SASL ANONYMOUS, plaintext,
//! and room creation at `conference.{domain}`.
//!
//! The client is a minimal one over raw TCP: it writes stanzas as text and scans the byte stream
//! for what it waits on (a load generator, not an XMPP library).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::fanout::{FanoutRun, Topology};

/// The domain of the bench's own ejabberd.
const DOMAIN: &str = "bench.local";

/// The bench's ejabberd config (`{PORT}` is filled in): plaintext c2s on 127.0.0.1, anonymous
/// SASL (no registration), no shapers anywhere (the stock config's `normal` shaper would hold each
/// client to 3,000 B/s), a large process queue limit, and MUC without MAM, history or rate limits.
pub(crate) const CONFIG: &str = r#"loglevel: warning
log_rotate_count: 0
hosts:
  - bench.local
auth_method: [anonymous]
anonymous_protocol: sasl_anon
allow_multiple_connections: true
max_fsm_queue: 1000000
listen:
  -
    port: {PORT}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: all
    starttls: false
    starttls_required: false
shaper_rules:
  c2s_shaper: none
  s2s_shaper: none
access_rules:
  c2s:
    allow: all
modules:
  mod_muc:
    host: conference.bench.local
    access: all
    access_create: all
    access_persistent: all
    history_size: 0
    max_users: 10000
    max_users_presence: 10000
    max_user_conferences: 1000
    min_message_interval: 0
    min_presence_interval: 0
    room_shaper: none
    user_message_shaper: none
    user_presence_shaper: none
    default_room_options:
      mam: false
      persistent: false
      logging: false
      max_users: 10000
"#;

/// A private ejabberd: its own config, spool, logs, Erlang node name and cookie in a temp dir;
/// stopped (and waited for) on drop.
pub(crate) struct Ejabberd {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Ejabberd {
    pub fn start() -> anyhow::Result<Ejabberd> {
        let lib = PathBuf::from("/usr/lib/x86_64-linux-gnu");
        // Debian's package puts ejabberd's Erlang applications there (`ejabberd-23.01`, …)
        let installed =
            std::fs::read_dir(&lib).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("ejabberd-"))).unwrap_or(false);
        anyhow::ensure!(installed, "ejabberd is not installed (apt-get install ejabberd)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("spool"))?;
        std::fs::create_dir_all(d.join("log"))?;
        std::fs::write(d.join("ejabberd.yml"), CONFIG.replace("{PORT}", &port.to_string()))?;
        let out = std::fs::File::create(d.join("erl.out"))?;
        let nonce = format!("{}x{}", std::process::id(), rand::random::<u32>());
        let child = Command::new("erl")
            .current_dir(d)
            .env("EJABBERD_CONFIG_PATH", d.join("ejabberd.yml"))
            .env("EJABBERD_LOG_PATH", d.join("log/ejabberd.log"))
            .env("ERL_LIBS", &lib)
            .env("ERL_CRASH_DUMP", d.join("log/erl_crash.dump"))
            .env("HOME", d)
            .args(["-sname", &format!("confabbench{nonce}"), "-setcookie", &format!("c{nonce}")])
            .args(["+K", "true", "+P", "250000", "-noinput", "-mnesia", "dir"])
            .arg(format!("\"{}\"", d.join("spool").display()))
            .args(["-s", "ejabberd"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("erl (apt-get install ejabberd)")?;
        let mut e = Ejabberd { child, addr: format!("127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = e.child.try_wait()? {
                let out = std::fs::read_to_string(e.dir.path().join("erl.out")).unwrap_or_default();
                let log = std::fs::read_to_string(e.dir.path().join("log/ejabberd.log")).unwrap_or_default();
                anyhow::bail!("ejabberd exited ({status}):\n{out}\n{log}");
            }
            if std::net::TcpStream::connect(&e.addr).is_ok() {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "ejabberd did not listen on {} within 60 s", e.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", e.pid())).unwrap_or_default();
        anyhow::ensure!(comm.trim() == "beam.smp", "ejabberd's process {} is {comm:?}, not beam.smp", e.pid());
        Ok(e)
    }

    /// Where its c2s listens (`127.0.0.1:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn domain(&self) -> &str {
        DOMAIN
    }

    /// The OS pid of its `beam.smp` (`erl` execs into it), for its CPU time in /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        // SIGTERM: the Erlang VM shuts down in order (init:stop); SIGKILL if it takes too long
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn fanout(addr: Option<String>, domain: Option<String>, topo: Topology) -> anyhow::Result<()> {
    let (server, addr, domain) = match addr {
        Some(a) => (None, a, domain.unwrap_or_else(|| DOMAIN.to_string())),
        None => {
            let e = Ejabberd::start()?;
            let (a, d) = (e.addr().to_string(), e.domain().to_string());
            (Some(e), a, d)
        }
    };
    // (the server's and the generator's CPU: `fanout-rig`, over the sending span)
    fanout_on(&addr, &domain, &topo).await?.print("ejabberd-muc", &topo);
    drop(server);
    Ok(())
}

/// The position of `needle` in `hay`, if any.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let j = i + hay[i..hay.len() + 1 - needle.len()].iter().position(|&b| b == first)?;
        if hay[j..].starts_with(needle) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

/// A status code element (`<status code='110'/>`), whichever quotes the server writes.
fn has_status(hay: &[u8], code: &str) -> bool {
    find(hay, format!("code='{code}'").as_bytes()).is_some() || find(hay, format!("code=\"{code}\"").as_bytes()).is_some()
}

/// One XMPP client connection: the socket and what has been read but not yet consumed.
struct Client {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn send(&mut self, s: &str) -> anyhow::Result<()> {
        self.sock.write_all(s.as_bytes()).await?;
        Ok(())
    }

    /// Read until `done(buf)` gives the end of what is awaited; that much leaves the buffer and
    /// is returned.
    async fn until(&mut self, what: &str, done: impl Fn(&[u8]) -> Option<usize>) -> anyhow::Result<Vec<u8>> {
        match self.within(what, Duration::from_secs(30), done).await? {
            Some(got) => Ok(got),
            None => anyhow::bail!("{what}: no answer in 30 s; got {}", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// [`Client::until`], or `None` if `wait` passes first.
    async fn within(&mut self, what: &str, wait: Duration, done: impl Fn(&[u8]) -> Option<usize>) -> anyhow::Result<Option<Vec<u8>>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = done(&self.buf) {
                return Ok(Some(self.buf.drain(..end).collect()));
            }
            if find(&self.buf, b"</stream:stream>").is_some() || find(&self.buf, b"<stream:error").is_some() {
                anyhow::bail!("{what}: the server closed the stream: {}", String::from_utf8_lossy(&self.buf));
            }
            let mut chunk = [0u8; 16384];
            let Ok(n) = tokio::time::timeout_at(deadline, self.sock.read(&mut chunk)).await else { return Ok(None) };
            let n = n?;
            anyhow::ensure!(n > 0, "{what}: connection closed; got {}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read through the end of `tag` (e.g. `</stream:features>`).
    async fn through(&mut self, what: &str, tag: &str) -> anyhow::Result<Vec<u8>> {
        let tag = tag.as_bytes().to_vec();
        self.until(what, move |b| find(b, &tag).map(|i| i + tag.len())).await
    }

    async fn open_stream(&mut self, domain: &str) -> anyhow::Result<Vec<u8>> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ))
        .await?;
        self.through("stream features", "</stream:features>").await
    }

    /// Connect, log in anonymously, bind a resource, open a session if asked to, send initial
    /// presence.
    async fn login(addr: &str, domain: &str) -> anyhow::Result<Client> {
        let sock = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        sock.set_nodelay(true)?;
        let mut c = Client { sock, buf: Vec::with_capacity(16384) };
        let features = c.open_stream(domain).await?;
        anyhow::ensure!(
            find(&features, b">ANONYMOUS<").is_some(),
            "the server does not offer SASL ANONYMOUS: {}",
            String::from_utf8_lossy(&features)
        );
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>").await?;
        let answer = c
            .until("SASL", |b| {
                let i = find(b, b"<success").or_else(|| find(b, b"<failure"))?;
                let end = find(&b[i..], b"/>").map(|j| i + j + 2);
                let close = find(&b[i..], b"</success>").map(|j| i + j + 10).or_else(|| find(&b[i..], b"</failure>").map(|j| i + j + 10));
                match (end, close) {
                    (Some(e), Some(c)) => Some(e.min(c)),
                    (e, c) => e.or(c),
                }
            })
            .await?;
        anyhow::ensure!(find(&answer, b"<success").is_some(), "SASL ANONYMOUS failed: {}", String::from_utf8_lossy(&answer));
        let features = c.open_stream(domain).await?;
        c.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>").await?;
        let bound = c.through("resource bind", "</iq>").await?;
        anyhow::ensure!(find(&bound, b"type='result'").is_some(), "bind failed: {}", String::from_utf8_lossy(&bound));
        if find(&features, b"urn:ietf:params:xml:ns:xmpp-session").is_some() {
            c.send("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>").await?;
            c.until("session", |b| {
                let i = find(b, b"id='sess'")?;
                find(&b[i..], b"/>").map(|j| i + j + 2)
            })
            .await?;
        }
        c.send("<presence/>").await?;
        Ok(c)
    }

    /// Join `room` as `nick`, waiting for the room's presence for us (status 110); a room we
    /// created (status 201) is locked until its owner submits the instant-room form.
    async fn join(&mut self, room: &str, nick: &str) -> anyhow::Result<()> {
        let mut attempts = 0;
        let joined = loop {
            // A join that reaches a room just as its last occupant leaves (the rooms of a run that
            // just ended) goes unanswered: ejabberd drops it with the stopping room. Ask again.
            attempts += 1;
            self.send(&format!(
                "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
            ))
            .await?;
            let answer = self
                .within("join", Duration::from_secs(2), |b| {
                    if let Some(i) = find(b, b"type='error'") {
                        return Some(i);
                    }
                    let i = find(b, b"code='110'").or_else(|| find(b, b"code=\"110\""))?;
                    find(&b[i..], b"</presence>").map(|j| i + j + 11)
                })
                .await?;
            match answer {
                Some(joined) => break joined,
                None if attempts < 15 => continue,
                None => anyhow::bail!("joining {room}: no answer in 30 s; got {}", String::from_utf8_lossy(&self.buf)),
            }
        };
        if find(&joined, b"type='error'").is_some() {
            // the rest of the error stanza, for the message
            let rest = self.through("join error", "</presence>").await.unwrap_or_default();
            anyhow::bail!("joining {room} failed: {}{}", String::from_utf8_lossy(&joined), String::from_utf8_lossy(&rest));
        }
        if has_status(&joined, "201") {
            self.send(&format!(
                "<iq type='set' to='{room}' id='unlock'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ))
            .await?;
            let r = self.until("unlock", |b| find(b, b"id='unlock'").map(|i| i + 11)).await?;
            // the answer's own tag: from the last `<iq` before its id
            let iq = &r[r.windows(3).rposition(|w| w == b"<iq").unwrap_or(0)..];
            anyhow::ensure!(find(iq, b"type='error'").is_none(), "unlocking {room} failed: {}", String::from_utf8_lossy(iq));
        }
        Ok(())
    }
}

/// Read `sock` until `stop` or its end, handing `f` each groupchat body as it arrives (`buf`:
/// what was read before and not yet parsed).
async fn read_bodies(sock: &mut (impl tokio::io::AsyncRead + Unpin), mut buf: Vec<u8>, stop: Instant, mut f: impl FnMut(u64)) {
    let mut chunk = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout_at(stop.into(), sock.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        bodies(&mut buf, &mut f);
    }
}

/// Message bodies (the send time in µs) found in the stream: each complete `<body>…</body>` in
/// `buf` is passed to `f`; what cannot hold a complete body any more is dropped.
fn bodies(buf: &mut Vec<u8>, mut f: impl FnMut(u64)) {
    let mut pos = 0;
    loop {
        let Some(i) = find(&buf[pos..], b"<body>") else {
            pos = buf.len().saturating_sub(5).max(pos);
            break;
        };
        let s = pos + i + 6;
        let Some(j) = find(&buf[s..], b"</body>") else {
            pos += i;
            break;
        };
        if let Some(t) = std::str::from_utf8(&buf[s..s + j]).ok().and_then(|t| t.parse::<u64>().ok()) {
            f(t);
        }
        pos = s + j + 7;
    }
    buf.drain(..pos);
}

/// One fan-out run through the MUC of the XMPP server at `addr` (rooms at `conference.{domain}`).
pub(crate) async fn fanout_on(addr: &str, domain: &str, topo: &Topology) -> anyhow::Result<FanoutRun> {
    let Topology { groups, members, window, seconds, .. } = *topo;
    anyhow::ensure!(members >= 2, "a group needs a sender and at least one receiver");
    let start = Instant::now();
    // occupants of an earlier run may still be leaving; a fresh nickname never conflicts with them
    let run = rand::random::<u32>();
    let mut setup = tokio::task::JoinSet::new();
    for g in 0..groups {
        let (addr, domain) = (addr.to_string(), domain.to_string());
        setup.spawn(async move {
            let room = format!("g{g}@conference.{domain}");
            let mut clients = Vec::with_capacity(members);
            for m in 0..members {
                let mut c = Client::login(&addr, &domain).await.with_context(|| format!("log in g{g}m{m}"))?;
                c.join(&room, &format!("m{m}-{run:08x}")).await.with_context(|| format!("g{g}m{m} joins {room}"))?;
                clients.push(c);
            }
            anyhow::Ok((room, clients))
        });
    }
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    while let Some(r) = setup.join_next().await {
        let (room, mut clients) = r??;
        receivers.extend(clients.drain(1..));
        senders.push((room, clients.pop().context("member 0")?));
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = deadline + Duration::from_secs(2);
    let mut tasks = tokio::task::JoinSet::new();
    for c in receivers {
        let delivered = delivered.clone();
        tasks.spawn(async move {
            let Client { mut sock, buf } = c;
            let mut lat = Vec::new();
            read_bodies(&mut sock, buf, stop, |sent| {
                lat.push((start.elapsed().as_micros() as u64).saturating_sub(sent) as u32);
                delivered.fetch_add(1, Ordering::Relaxed);
            })
            .await;
            let _ = sock.write_all(b"</stream:stream>").await;
            (lat, 0u64)
        });
    }
    let began = Instant::now();
    for (room, c) in senders {
        tasks.spawn(async move {
            let Client { sock, buf } = c;
            let (mut rd, mut wr) = sock.into_split();
            let slots = Arc::new(Semaphore::new(window));
            let echoes = slots.clone();
            let reader = tokio::spawn(async move {
                let mut n = 0u64;
                read_bodies(&mut rd, buf, stop, |_| {
                    n += 1;
                    echoes.add_permits(1);
                })
                .await;
                n
            });
            while Instant::now() < deadline {
                let Ok(permit) = slots.acquire().await else { break };
                permit.forget();
                let m = format!("<message to='{room}' type='groupchat'><body>{}</body></message>", start.elapsed().as_micros());
                if wr.write_all(m.as_bytes()).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let echoed = reader.await.unwrap_or(0);
            let _ = wr.write_all(b"</stream:stream>").await;
            (Vec::new(), echoed)
        });
    }
    crate::fanout::gather(tasks, &delivered, began, seconds).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_found_across_reads() {
        let stream = b"<presence from='r/a'/><message type='groupchat'><body>12</body></message><message><subject/></message><message type='groupchat'><body>345</body></message>";
        for split in 0..stream.len() {
            let (mut buf, mut got) = (Vec::new(), Vec::new());
            for part in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(part);
                bodies(&mut buf, |t| got.push(t));
            }
            assert_eq!(got, [12, 345], "split at {split}");
            assert!(buf.len() < 16, "what is left cannot hold a body: {:?}", String::from_utf8_lossy(&buf));
        }
    }

    #[test]
    fn find_finds_the_first_occurrence() {
        assert_eq!(find(b"aab<bo<body>", b"<body>"), Some(6));
        assert_eq!(find(b"<bod", b"<body>"), None);
        assert_eq!(find(b"", b"<"), None);
        assert!(has_status(b"<status code=\"201\"/>", "201") && has_status(b"<status code='110'/>", "110"));
    }
}
