//! `confab serve` and `confab app create|list|limits`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use confab_engine::model::{App, Plan};
use confab_engine::NewApp;
use confab_server::{Backing, Config, Opener, Overrides, Server, Signals, Stopped};
use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "confab", version, about = "A self-hosted instant-messaging server that speaks LeanCloud IM, Easemob and MaxIM.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory of the embedded store (default ./confab-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A cluster's shared database, postgres://user@host:port/db (env CONFAB_DATABASE_URL);
    /// without it, the embedded SQLite store in the data directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every API face and the WebSocket gateway on one port.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The cluster's NATS server, nats://host:4222 (env CONFAB_NATS_URL); needs --database-url.
        #[arg(long, value_name = "URL")]
        nats_url: Option<String>,
        /// This node's id in the cluster, 1 to 31, one per node (env CONFAB_NODE_ID; default 1).
        #[arg(long, value_name = "N")]
        node_id: Option<u16>,
        /// Serve TLS (https and wss on the same port) with this certificate chain (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Manage apps (tenants). Works whether or not a server runs on the same data directory.
    App {
        #[command(subcommand)]
        cmd: AppCmd,
    },
    /// Bring another service's app in, with its ids. Works whether or not a server runs on the
    /// same data directory.
    Import {
        #[command(subcommand)]
        cmd: ImportCmd,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// A LeanCloud IM app: conversations from its data export or its REST API, history from its
    /// REST API, every id kept. Run it again to bring what was added since (the cut-over).
    Leancloud {
        #[command(flatten)]
        common: Common,
        /// The confab app to import into, created beforehand with the LeanCloud app's keys.
        #[arg(long)]
        app: String,
        /// LeanCloud's data export: a .tar.gz, or the directory it unpacks to.
        #[arg(long, value_name = "PATH", required_unless_present = "server")]
        export: Option<PathBuf>,
        /// The LeanCloud app's API server, e.g. https://abcd1234.lc-cn-n1-shared.com.
        #[arg(long, value_name = "URL", requires_all = ["source_app_id", "source_master_key"])]
        server: Option<String>,
        /// The LeanCloud app's id.
        #[arg(long, value_name = "ID")]
        source_app_id: Option<String>,
        /// The LeanCloud app's master key.
        #[arg(long, value_name = "KEY", env = "CONFAB_SOURCE_MASTER_KEY", hide_env_values = true)]
        source_master_key: Option<String>,
        /// Read everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Stop at the first malformed export line instead of skipping it.
        #[arg(long)]
        strict: bool,
        /// Conversations read at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print the summary as one JSON object (and no progress).
        #[arg(long)]
        json: bool,
        /// Write each conversation's LeanCloud objectId and its numeric id (the one MaxIM and
        /// Easemob use) to this CSV file.
        #[arg(long, value_name = "FILE")]
        id_map: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AppCmd {
    /// Create an app, with fresh credentials or an existing LeanCloud app's keys.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
        /// `dev` applies the vendors' development-tier limits.
        #[arg(long, default_value = "standard", value_parser = ["dev", "standard"])]
        plan: String,
        /// Keep an existing LeanCloud app id.
        #[arg(long)]
        app_id: Option<String>,
        /// Keep an existing LeanCloud app key.
        #[arg(long)]
        app_key: Option<String>,
        /// Keep an existing LeanCloud master key.
        #[arg(long)]
        master_key: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List apps.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Change an app's settings: limits (`message_max_bytes=10240`, `rates.lc.message.per_minute=9000`),
    /// hooks (`hooks.leancloud.url=…`, `hooks.easemob.secret=…`) and push (`push.webhook_url=…`).
    /// All or nothing; a running server picks them up within 5 seconds.
    Set {
        #[command(flatten)]
        common: Common,
        /// The app's name.
        name: String,
        /// Settings to change.
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
    /// What an app's hooks, callbacks, webhooks and pushes did: calls waiting, calls that failed
    /// for good (with why), and per-call counters (calls, failures, timeouts, latency).
    Hooks {
        #[command(flatten)]
        common: Common,
        /// The app's name.
        name: String,
        /// Try the failed calls again, from their first attempt (a running server makes them
        /// within a second or two).
        #[arg(long)]
        retry_failed: bool,
        /// How many failed calls to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show an app's effective limits, or change them with --set KEY=VALUE.
    Limits {
        #[command(flatten)]
        common: Common,
        /// The app's name.
        name: String,
        /// A limit to set, e.g. `rates.lc.message.per_minute=9000` or `message_max_bytes=10240`.
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

fn app_json(app: &App) -> Value {
    let (lc, mx, em) = (&app.keys.leancloud, &app.keys.maxim, &app.keys.easemob);
    json!({
        "name": app.name,
        "plan": app.plan.as_str(),
        "leancloud": {"app_id": lc.app_id, "app_key": lc.app_key, "master_key": lc.master_key, "hook_key": lc.hook_key},
        "easemob": {"org_name": em.org_name, "app_name": em.app_name, "client_id": em.client_id, "client_secret": em.client_secret},
        "maxim": {"app_id": mx.app_id, "admin_token": mx.admin_token},
    })
}

fn load(common: &Common) -> anyhow::Result<Config> {
    Config::load(&overrides(common))
}

fn overrides(common: &Common) -> Overrides {
    Overrides {
        config: common.config.clone(),
        data_dir: common.data_dir.clone(),
        database_url: common.database_url.clone(),
        ..Default::default()
    }
}

/// The store of `common`'s data directory (or shared database) and an engine over it, for one
/// command (which closes the store when it is done). Its ids are made as `tool_node` on the
/// embedded store, as a free node id on PostgreSQL.
async fn open_engine(common: &Common, tool_node: Option<u16>) -> anyhow::Result<(Backing, std::sync::Arc<confab_engine::Engine>)> {
    let config = load(common)?;
    let backing = Backing::open(&config, Opener::Tool).await?;
    let engine = confab_server::engine(&config, &backing, backing.node_id(&config, tool_node))?;
    Ok((backing, engine))
}

fn init_logging(filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

/// mimalloc rather than glibc's malloc: allocation was an eighth of the server's time in the
/// group fan-out profile (issue 12).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve { common, listen, nats_url, node_id, tls_cert, tls_key } => {
            let o = Overrides { listen, nats_url, node_id, tls_cert, tls_key, ..overrides(&common) };
            let config = Config::load(&o)?;
            init_logging(&config.log);
            let signals = Signals::install().context("installing the signal handlers")?;
            let server = Server::start(&config).await?;
            let scheme = if server.tls { "https" } else { "http" };
            if config.is_postgres() {
                tracing::info!(addr = %server.addr, %scheme, node = config.node_id, "confab is serving, on PostgreSQL");
            } else {
                tracing::info!(addr = %server.addr, %scheme, data_dir = %config.sqlite_dir().display(), "confab is serving");
            }
            match server.run_until_signal(signals).await? {
                Stopped::Gracefully => Ok(()),
                // SQLite's write-ahead log keeps the store whole; what was not committed is lost
                Stopped::Forced(signal) => std::process::exit(signal.exit_code()),
            }
        }
        Cmd::App { cmd } => {
            init_logging("warn");
            app_command(cmd).await
        }
        Cmd::Import { cmd } => {
            init_logging("warn");
            import_command(cmd).await
        }
    }
}

/// The node id of offline tools (`confab import`) on the embedded store: ids they make never meet
/// the server's (node 0), even while one runs on the same data directory. On PostgreSQL a tool
/// claims a node id no running node holds.
const TOOL_NODE: u16 = confab_engine::ids::MAX_NODE;

async fn import_command(cmd: ImportCmd) -> anyhow::Result<()> {
    let ImportCmd::Leancloud { common, app, export, server, source_app_id, source_master_key, dry_run, strict, concurrency, json, id_map } =
        cmd;
    let (backing, engine) = open_engine(&common, Some(TOOL_NODE)).await?;
    let server = server.map(|url| (url, source_app_id.unwrap_or_default(), source_master_key.unwrap_or_default()));
    let opts = confab_import::Options { app, export, server, dry_run, strict, concurrency, id_map };
    let progress = if json { confab_import::Progress::quiet() } else { confab_import::Progress::stderr() };
    let result = confab_import::import_leancloud(engine, opts, progress).await;
    backing.close().await;
    let summary = result.map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let what = if summary.dry_run { "would import" } else { "imported" };
        println!(
            "{what} {} users, {} conversations ({} new, {} already here) and {} messages ({} already here) in {:.1}s ({:.0} messages/s)",
            summary.users,
            summary.conversations,
            summary.conversations_created,
            summary.conversations_updated,
            summary.messages,
            summary.messages_already_here,
            summary.seconds,
            summary.messages_per_second
        );
        if summary.skipped > 0 {
            println!("skipped {} records:", summary.skipped);
            for s in &summary.skipped_lines {
                println!("  {}:{}: {}", s.file, s.line, s.error);
            }
        }
        for w in &summary.warnings {
            println!("warning: {w}");
        }
    }
    Ok(())
}

async fn app_command(cmd: AppCmd) -> anyhow::Result<()> {
    match cmd {
        AppCmd::Create { common, name, plan, app_id, app_key, master_key, json } => {
            let (backing, engine) = open_engine(&common, None).await?;
            let new = NewApp {
                name,
                plan: Plan::parse(&plan).context("plan")?,
                leancloud_app_id: app_id,
                leancloud_app_key: app_key,
                leancloud_master_key: master_key,
            };
            let app = engine.apps().create_app(new).await.map_err(|e| anyhow::anyhow!("cannot create the app: {e}"))?;
            backing.close().await;
            if json {
                println!("{}", app_json(&app));
            } else {
                let lc = &app.keys.leancloud;
                println!("created app '{}' (plan {})", app.name, app.plan.as_str());
                println!("LeanCloud  app id: {}\n           app key: {}\n           master key: {}", lc.app_id, lc.app_key, lc.master_key);
                println!("MaxIM      app_id: {}\n           admin token: {}", app.keys.maxim.app_id, app.keys.maxim.admin_token);
                let em = &app.keys.easemob;
                println!(
                    "Easemob    org/app: {}/{}\n           client id: {}\n           client secret: {}",
                    em.org_name, em.app_name, em.client_id, em.client_secret
                );
            }
            Ok(())
        }
        AppCmd::List { common, json } => {
            let (backing, engine) = open_engine(&common, None).await?;
            let apps = engine.apps().list_apps().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            backing.close().await;
            if json {
                println!("{}", Value::Array(apps.iter().map(app_json).collect()));
            } else {
                for a in apps {
                    println!("{}\t{}\tLeanCloud app id {}", a.name, a.plan.as_str(), a.keys.leancloud.app_id);
                }
            }
            Ok(())
        }
        AppCmd::Set { common, name, settings } => {
            let pairs = key_values(&settings)?;
            let (backing, engine) = open_engine(&common, None).await?;
            let app = engine.apps().set_app_settings(&name, &pairs).await.map_err(|e| anyhow::anyhow!("{e}"));
            backing.close().await;
            let app = app?;
            let all = serde_json::to_value(&app.limits)?;
            for (k, _) in &pairs {
                let path = k.strip_prefix("rates.").and_then(|r| r.rsplit_once('.')).map_or_else(
                    || k.split('.').map(str::to_string).collect::<Vec<_>>(),
                    |(b, w)| vec!["rates".into(), b.into(), w.into()],
                );
                let v = path.iter().try_fold(&all, |v, p| v.get(p)).cloned().unwrap_or(Value::Null);
                println!("{k} = {v}");
            }
            Ok(())
        }
        AppCmd::Hooks { common, name, retry_failed, limit, json } => {
            let (backing, engine) = open_engine(&common, None).await?;
            let report = async {
                let app = engine
                    .apps()
                    .find_app(&confab_engine::model::AppLookup::Name(name.clone()))
                    .await?
                    .ok_or(confab_engine::Error::AppNotFound)?;
                let requeued = if retry_failed { Some(engine.app_code().retry_failed_hooks(&app).await?) } else { None };
                Ok::<_, confab_engine::Error>((requeued, engine.app_code().hook_report(&app, limit).await?))
            }
            .await;
            backing.close().await;
            let (requeued, report) = report.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let mut v = serde_json::to_value(&report)?;
                if let Some(n) = requeued {
                    v["requeued"] = json!(n);
                }
                println!("{v}");
            } else {
                print_hook_report(&name, requeued, &report);
            }
            Ok(())
        }
        AppCmd::Limits { common, name, set } => {
            let pairs = key_values(&set)?;
            let (backing, engine) = open_engine(&common, None).await?;
            let app = if pairs.is_empty() {
                engine
                    .apps()
                    .find_app(&confab_engine::model::AppLookup::Name(name.clone()))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .and_then(|a| a.map(|a| (*a).clone()).with_context(|| format!("no app named '{name}'")))
            } else {
                engine.apps().set_app_settings(&name, &pairs).await.map_err(|e| anyhow::anyhow!("{e}"))
            };
            backing.close().await;
            println!("{}", serde_json::to_string_pretty(&app?.limits)?);
            Ok(())
        }
    }
}

fn print_hook_report(name: &str, requeued: Option<u64>, r: &confab_engine::HookReport) {
    if let Some(n) = requeued {
        println!("requeued {n} failed calls");
    }
    println!("app '{name}': {} calls waiting, {} failed", r.pending, r.failed);
    if !r.stats.is_empty() {
        println!("{:<10} {:<24} {:>8} {:>8} {:>8} {:>8} {:>8}", "sink", "name", "calls", "failed", "timeouts", "avg ms", "max ms");
        for s in &r.stats {
            let avg = s.total_ms.checked_div(s.calls).unwrap_or(0);
            println!("{:<10} {:<24} {:>8} {:>8} {:>8} {:>8} {:>8}", s.sink, s.name, s.calls, s.failures, s.timeouts, avg, s.max_ms);
        }
    }
    for i in &r.failed_items {
        println!("failed {} {}/{}: {} attempts, last error: {}", i.id, i.sink, i.name, i.attempts, i.last_error.as_deref().unwrap_or("-"));
    }
}

/// `KEY=VALUE` arguments, split and trimmed.
fn key_values(args: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    args.iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim(), v.trim())).with_context(|| format!("'{kv}': expected KEY=VALUE")))
        .collect()
}
