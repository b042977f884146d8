//! A node that loses NATS keeps serving, and comes back when NATS does: a NATS server of the
//! test's own (Debian's `nats-server`, with JetStream, on a free port), killed and started again
//! under the running nodes. Without `nats-server` there is nothing to run: the test says so, and
//! fails when `CONFAB_REQUIRE_NATS` is set (as CI sets it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::bus::{Bus, Event};
use confab_engine::limits::{RateLimiter, RateRule};
use confab_engine::model::{Content, ConvKind, ConvRef, Message};
use confab_engine::{Presence, SessionRef};
use confab_runtime_nats::NatsRuntime;

/// A NATS server of this test's own; killed when dropped.
struct OwnNats {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl OwnNats {
    fn start() -> Option<OwnNats> {
        if std::process::Command::new("nats-server").arg("--version").output().is_err() {
            assert!(std::env::var_os("CONFAB_REQUIRE_NATS").is_none(), "CONFAB_REQUIRE_NATS is set but nats-server is not installed");
            eprintln!("nats-server is not installed: nothing to run");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let dir = std::env::temp_dir().join(format!("confab-outage-{}-{port}", std::process::id()));
        let mut nats = OwnNats { port, dir, child: None };
        nats.run();
        Some(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and store directory, and wait until it answers.
    fn run(&mut self) {
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn to(app: i64, user: &str) -> Event {
    Event::Message {
        app,
        conv: ConvRef { id: 7, kind: ConvKind::Normal, foreign_id: None },
        msg: Arc::new(Message::new(app, 1, 7, "sender", 1_000, Content::Text("hi".into()))),
        recipients: vec![user.to_string()],
        no_sync: false,
        origin: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_nats_keeps_serving_and_reconnects() {
    let Some(mut nats) = OwnNats::start() else { return };
    let (a, b) =
        (NatsRuntime::connect(&nats.url(), "outage", 1).await.unwrap(), NatsRuntime::connect(&nats.url(), "outage", 2).await.unwrap());
    let mut heard_on_a = a.bus().subscribe();
    a.presence().session_opened(1, "ann", SessionRef { node: 1, session: 1, tag: None, device: None }, 1_000).await.unwrap();
    let limiter = a.rate_limiter();
    limiter.check(1, "lc.message", RateRule::minute(1_000), 1_000).await.unwrap();

    nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // REST goes on: the rate limit admits rather than failing every call, and does not wait
    let started = Instant::now();
    limiter.check(1, "lc.message", RateRule::minute(1_000), 2_000).await.expect("admitted while NATS is away");
    assert!(started.elapsed() < Duration::from_secs(1), "no wait for a timeout: {:?}", started.elapsed());
    // this node's own sessions still hear its events
    let _ = a.bus().publish(to(1, "ann"));
    let got = tokio::time::timeout(Duration::from_secs(2), heard_on_a.recv()).await.expect("heard in process").unwrap();
    assert!(matches!(&*got, Event::Message { .. }));
    // presence says at once that it cannot answer
    let started = Instant::now();
    assert!(a.presence().sessions(1, "ann").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));

    // NATS is back: the nodes reconnect by themselves, and events cross again
    nats.run();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // b routes an event to ann's node once it sees her online (its mirror catches up too)
        let _ = b.bus().publish(to(1, "ann"));
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), heard_on_a.recv()).await {
            if matches!(&*e, Event::Message { .. }) && a.presence().sessions(1, "ann").await.is_ok() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the nodes never came back");
    }
    assert_eq!(a.presence().sessions(1, "ann").await.unwrap().len(), 1, "presence kept what it held");
    drop(b);
    a.destroy().await.unwrap();
}
