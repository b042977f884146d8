//! Cache invalidations for a cluster: what one node's engine changes (an app's settings, revoked
//! tokens, a deleted user) is said on `<ns>.invalidate`, and every other node's engine drops its
//! copies. Said at most once, like every event on the bus: the caches also expire by themselves
//! within seconds (`confab_engine::runtime`).

use std::sync::Arc;

use confab_engine::runtime::{Invalidate, Invalidation};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::bus::Outgoing;
use crate::kv::nats_err;

#[derive(Serialize, Deserialize)]
struct Said {
    node: u16,
    what: Invalidate,
}

pub struct NatsInvalidation {
    local: broadcast::Sender<Invalidate>,
    out: mpsc::Sender<Outgoing>,
    subject: String,
    me: u16,
}

impl NatsInvalidation {
    pub(crate) async fn start(
        client: &async_nats::Client,
        ns: &str,
        me: u16,
        out: mpsc::Sender<Outgoing>,
    ) -> confab_engine::Result<(Arc<NatsInvalidation>, JoinHandle<()>)> {
        let subject = format!("{ns}.invalidate");
        let (local, _) = broadcast::channel(1024);
        let mut heard = client.subscribe(subject.clone()).await.map_err(nats_err)?;
        let to_local = local.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = heard.next().await {
                match serde_json::from_slice::<Said>(&msg.payload) {
                    Ok(said) if said.node != me => {
                        let _ = to_local.send(said.what);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "nats: an invalidation does not read"),
                }
            }
        });
        Ok((Arc::new(NatsInvalidation { local, out, subject, me }), task))
    }
}

impl Invalidation for NatsInvalidation {
    fn publish(&self, what: Invalidate) {
        if let Ok(bytes) = serde_json::to_vec(&Said { node: self.me, what: what.clone() }) {
            if self.out.try_send(Outgoing { subjects: vec![self.subject.clone()], bytes: bytes.into() }).is_err() {
                tracing::warn!("nats: an invalidation was not sent (NATS is not taking events); caches expire within seconds");
            }
        }
        let _ = self.local.send(what);
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidate> {
        self.local.subscribe()
    }
}
