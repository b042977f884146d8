//! `lc-import`: `confab import leancloud` (the real binary, a process of its own) from a LeanCloud
//! stand-in served by this process: messages a second, and the importer's resident memory
//! throughout (it streams: a page of 1,000 messages at a time, whatever the history's size).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_leancloud_standin::{Dataset, DatasetSpec, StandInServer};
use serde_json::Value;

use crate::mem::{mb, rss};

#[derive(clap::Args, Clone)]
pub struct ImportArgs {
    /// Messages in the one big conversation.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Ordinary conversations of `--small` messages beside it.
    #[arg(long, default_value_t = 20)]
    pub conversations: usize,
    #[arg(long, default_value_t = 500)]
    pub small: u64,
    /// The confab binary (build it with `cargo build --release -p confab-server`).
    #[arg(long, default_value = "target/release/confab")]
    pub confab: PathBuf,
    /// Conversations read at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

pub async fn lc_import(a: ImportArgs) -> anyhow::Result<()> {
    let confab = std::fs::canonicalize(&a.confab).with_context(|| format!("no confab binary at {}", a.confab.display()))?;
    let spec = DatasetSpec {
        groups: a.conversations,
        messages_per_conversation: a.small,
        big_groups: vec![a.messages],
        unique_pairs: 0,
        chat_rooms: 0,
        services: 0,
        ..Default::default()
    };
    let ds = Dataset::generate(spec);
    let standin = StandInServer::start(ds.clone()).await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let out = tokio::process::Command::new(&confab)
        .args(["app", "create", "--name", "moved", "--app-id", ds.app_id(), "--app-key", ds.app_key(), "--master-key", ds.master_key()])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "app create: {}", String::from_utf8_lossy(&out.stderr));
    let total: u64 = ds.conversations().iter().map(|c| c.message_count).sum();
    let start = Instant::now();
    let mut child = tokio::process::Command::new(&confab)
        .args(["import", "leancloud", "--app", "moved", "--json", "--concurrency", &a.concurrency.to_string(), "--data-dir"])
        .arg(&data)
        .args(["--server", &standin.url(), "--source-app-id", ds.app_id(), "--source-master-key", ds.master_key()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let pid = child.id().context("the import's pid")?;
    let mut peak = 0;
    let mut samples = Vec::new();
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut s).await.map(|_| s)
    });
    loop {
        if let Ok((r, _)) = rss(pid) {
            peak = peak.max(r);
            samples.push((start.elapsed().as_secs(), r));
        }
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "the import failed: {status}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = start.elapsed();
    let summary: Value = serde_json::from_str(reader.await??.trim())?;
    let db = std::fs::metadata(data.join("confab.db")).map_or(0, |m| m.len());
    println!(
        "lc-import: {} messages in {} conversations ({total} at the source) in {:.1}s = {:.0} messages/s; importer RSS peak {:.1} MB; database {:.0} MB",
        summary["messages"],
        summary["conversations"],
        took.as_secs_f64(),
        summary["messages"].as_f64().unwrap_or(0.0) / took.as_secs_f64(),
        mb(peak),
        mb(db)
    );
    let step = (samples.len() / 10).max(1);
    let line: Vec<String> = samples.iter().step_by(step).map(|(t, r)| format!("{t}s {:.0} MB", mb(*r))).collect();
    println!("lc-import: importer RSS over time: {}", line.join(", "));
    Ok(())
}
