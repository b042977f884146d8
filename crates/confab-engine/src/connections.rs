//! A gateway's open connections, so that a shutdown can close every one of them (and any that
//! opens meanwhile) and wait until they are gone. Each realtime gateway (LeanCloud's, msync) holds
//! one; how a connection closes for the shutdown is the gateway's ([`Shutdown`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A connection a shutdown can close (with the gateway's own words: LeanCloud's 1001).
pub trait Shutdown: Send + Sync + 'static {
    fn shut_down(&self);
}

/// The open connections of one gateway, by id.
pub struct Connections<C> {
    open: Mutex<HashMap<u64, Arc<C>>>,
    closing: AtomicBool,
    gone: Notify,
}

impl<C> Default for Connections<C> {
    fn default() -> Self {
        Connections { open: Mutex::new(HashMap::new()), closing: AtomicBool::new(false), gone: Notify::new() }
    }
}

impl<C: Shutdown> Connections<C> {
    /// A connection opened: it is closed at shutdown (at once if that has begun).
    pub fn opened(&self, id: u64, conn: &Arc<C>) {
        self.open.lock().insert(id, conn.clone());
        if self.closing.load(Ordering::SeqCst) {
            conn.shut_down();
        }
    }

    /// A connection is gone.
    pub fn closed(&self, id: u64) {
        let mut open = self.open.lock();
        open.remove(&id);
        if open.is_empty() {
            self.gone.notify_waiters();
        }
    }

    /// Shutdown: close every connection, and any that opens from now on; returns once all are
    /// closed.
    pub async fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        loop {
            let gone = self.gone.notified();
            let open: Vec<Arc<C>> = self.open.lock().values().cloned().collect();
            if open.is_empty() {
                return;
            }
            for c in open {
                c.shut_down();
            }
            gone.await;
        }
    }
}
