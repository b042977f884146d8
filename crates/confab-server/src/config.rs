//! One typed configuration: defaults, then the config file, then environment variables, then
//! command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// Address of the one port that serves every face.
    pub listen: SocketAddr,
    /// The shared database of a cluster (`postgres://…`); empty (or `sqlite:DIR`) means the
    /// embedded SQLite store in `data_dir`.
    pub database_url: String,
    /// The NATS server of a cluster (`nats://host:4222`); empty: this node runs alone (its bus,
    /// presence and counters in process).
    pub nats_url: String,
    /// This node's id: part of every id it makes. Alone on SQLite, 0; a node on PostgreSQL takes
    /// 1–31, unique in its cluster (another node holding it makes this one refuse to start);
    /// when not given there, 1.
    pub node_id: u16,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Serve TLS (https and wss) with this certificate chain (PEM)…
    pub tls_cert: Option<PathBuf>,
    /// …and this private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Password hashes computed at once (argon2id, 19 MiB each); 0: the cores, at most 4.
    pub password_hash_workers: usize,
    /// Password hashes that may wait for a worker before logins are answered 429; 0: 64.
    pub password_hash_queue: usize,
    /// At shutdown, how long requests in flight and WebSockets may take to finish before their
    /// connections are dropped.
    pub shutdown_grace_secs: u64,
    /// Calls to the apps' code kept in the outbox (hooks after the fact, callbacks, pushes):
    /// attempts before one is kept as failed, and the waits between them, doubling from the
    /// first to the longest.
    pub outbox_max_attempts: u32,
    pub outbox_first_retry_ms: u64,
    pub outbox_max_retry_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./confab-data"),
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            database_url: String::new(),
            nats_url: String::new(),
            node_id: 0,
            log: "info".into(),
            max_body_bytes: 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            password_hash_workers: 0,
            password_hash_queue: 0,
            shutdown_grace_secs: 10,
            outbox_max_attempts: 16,
            outbox_first_retry_ms: 1000,
            outbox_max_retry_secs: 3600,
        }
    }
}

/// Command-line values that override the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub node_id: Option<u16>,
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<Config> {
        Self::load_with_env(o, |k| std::env::var(k).ok())
    }

    pub fn load_with_env(o: &Overrides, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let mut c = match &o.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = env("CONFAB_DATA_DIR").filter(|v| !v.is_empty()) {
            c.data_dir = v.into();
        }
        if let Some(v) = env("CONFAB_LISTEN").filter(|v| !v.is_empty()) {
            c.listen = v.parse().with_context(|| format!("CONFAB_LISTEN: not an address: {v}"))?;
        }
        if let Some(v) = env("CONFAB_DATABASE_URL") {
            c.database_url = v;
        }
        if let Some(v) = env("CONFAB_NATS_URL") {
            c.nats_url = v;
        }
        if let Some(v) = env("CONFAB_NODE_ID").filter(|v| !v.is_empty()) {
            c.node_id = v.parse().with_context(|| format!("CONFAB_NODE_ID: not a node id: {v}"))?;
        }
        if let Some(v) = env("CONFAB_SHUTDOWN_GRACE_SECS").filter(|v| !v.is_empty()) {
            c.shutdown_grace_secs = v.parse().with_context(|| format!("CONFAB_SHUTDOWN_GRACE_SECS: not a number of seconds: {v}"))?;
        }
        if let Some(v) = &o.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &o.listen {
            c.listen = v.parse().with_context(|| format!("--listen: not an address: {v}"))?;
        }
        if let Some(v) = &o.database_url {
            c.database_url = v.clone();
        }
        if let Some(v) = &o.nats_url {
            c.nats_url = v.clone();
        }
        if let Some(v) = o.node_id {
            c.node_id = v;
        }
        if c.is_postgres() && c.node_id == 0 && o.node_id.is_none() {
            c.node_id = 1;
        }
        if o.tls_cert.is_some() {
            c.tls_cert = o.tls_cert.clone();
        }
        if o.tls_key.is_some() {
            c.tls_key = o.tls_key.clone();
        }
        c.check()?;
        Ok(c)
    }

    fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.node_id > confab_engine::ids::MAX_NODE {
            bail!("node_id must be 0 to {}", confab_engine::ids::MAX_NODE);
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("TLS needs both tls_cert and tls_key");
        }
        if !self.database_url.is_empty() && !self.database_url.starts_with("sqlite:") && !self.is_postgres() {
            bail!("database_url: postgres://… (a cluster's shared database), sqlite:DIR, or empty (the embedded store in data_dir)");
        }
        if self.is_postgres() && !confab_store_postgres::NODE_IDS.contains(&self.node_id) {
            bail!("node_id: a node on PostgreSQL takes 1 to 31");
        }
        if !self.nats_url.is_empty() {
            if !self.is_postgres() {
                bail!("nats_url: the nodes of a cluster share a PostgreSQL database: give database_url (postgres://…) too");
            }
            if !self.nats_url.starts_with("nats://") && !self.nats_url.starts_with("tls://") {
                bail!("nats_url: nats://host:port");
            }
        }
        Ok(())
    }

    /// Whether the store is a shared PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://")
    }

    /// How passwords are hashed: the defaults, with the configured workers and queue.
    pub fn hash_settings(&self) -> confab_engine::password::HashSettings {
        let d = confab_engine::password::HashSettings::default();
        let or = |v: usize, d: usize| if v == 0 { d } else { v };
        confab_engine::password::HashSettings {
            workers: or(self.password_hash_workers, d.workers),
            queue: or(self.password_hash_queue, d.queue),
            ..d
        }
    }

    /// How long shutdown waits for requests in flight and WebSockets.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn outbox_settings(&self) -> confab_hooks::OutboxSettings {
        confab_hooks::OutboxSettings {
            max_attempts: self.outbox_max_attempts.max(1),
            first_retry: std::time::Duration::from_millis(self.outbox_first_retry_ms.max(1)),
            max_retry: std::time::Duration::from_secs(self.outbox_max_retry_secs.max(1)),
            ..Default::default()
        }
    }

    /// The directory the SQLite store uses.
    pub fn sqlite_dir(&self) -> PathBuf {
        match self.database_url.strip_prefix("sqlite:") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir.trim_start_matches("//")),
            _ => self.data_dir.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("confab-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("confab.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:9000\"\nnode_id = 3\n").unwrap();
        let o = Overrides { config: Some(file.clone()), ..Default::default() };
        let c = Config::load_with_env(&o, |_| None).unwrap();
        assert_eq!((c.data_dir.to_str().unwrap(), c.listen.port(), c.node_id), ("/from/file", 9000, 3));
        let env = |k: &str| (k == "CONFAB_LISTEN").then(|| "127.0.0.1:9001".to_string());
        assert_eq!(Config::load_with_env(&o, env).unwrap().listen.port(), 9001);
        let o = Overrides { listen: Some("127.0.0.1:9002".into()), ..o };
        assert_eq!(Config::load_with_env(&o, env).unwrap().listen.port(), 9002);
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(Config::load_with_env(&Overrides { config: Some(file), ..Default::default() }, |_| None).is_err());
        let grace = |k: &str| (k == "CONFAB_SHUTDOWN_GRACE_SECS").then(|| "2".to_string());
        assert_eq!(Config::load_with_env(&Overrides::default(), grace).unwrap().shutdown_grace_secs, 2);
        let no_grace = |k: &str| (k == "CONFAB_SHUTDOWN_GRACE_SECS").then(|| "soon".to_string());
        assert!(Config::load_with_env(&Overrides::default(), no_grace).is_err());
        // PostgreSQL: a node id 1–31, 1 when not given; NATS only beside PostgreSQL
        let pg = |k: &str| (k == "CONFAB_DATABASE_URL").then(|| "postgres://db/confab".to_string());
        let c = Config::load_with_env(&Overrides::default(), pg).unwrap();
        assert!(c.is_postgres());
        assert_eq!(c.node_id, 1);
        let node = |id: u16| Overrides { node_id: Some(id), ..Default::default() };
        assert_eq!(Config::load_with_env(&node(7), pg).unwrap().node_id, 7);
        assert!(Config::load_with_env(&node(32), pg).is_err());
        assert!(Config::load_with_env(&node(0), pg).is_err());
        let mysql = |k: &str| (k == "CONFAB_DATABASE_URL").then(|| "mysql://x".to_string());
        assert!(Config::load_with_env(&Overrides::default(), mysql).is_err());
        let nats_alone = Overrides { nats_url: Some("nats://127.0.0.1:4222".into()), ..Default::default() };
        let err = Config::load_with_env(&nats_alone, |_| None).unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let cluster = Overrides { database_url: Some("postgres://db/confab".into()), ..nats_alone };
        assert_eq!(Config::load_with_env(&cluster, |_| None).unwrap().nats_url, "nats://127.0.0.1:4222");
    }
}
