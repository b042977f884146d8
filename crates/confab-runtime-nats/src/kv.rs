//! The one piece every shared state of the runtime goes through: a JetStream key-value bucket of
//! JSON values, each changed by compare-and-set ([`Shared::update`]): read the value and its
//! revision, apply the change (the same rule a single process applies in memory), write it back
//! only if nobody wrote in between, else read again. Nodes never lock each other out; a change
//! that loses the race is made again on what won.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::{stream, Context};
use base64::Engine as _;
use confab_engine::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Writes lost to another node's before one is given up (each retry reads the newest value).
const MAX_TRIES: usize = 64;

pub(crate) fn nats_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("nats: {e}"))
}

/// NATS cannot be reached now.
pub(crate) fn unreachable() -> Error {
    nats_err("not connected (reconnecting)")
}

/// A key-value bucket of JSON values.
#[derive(Clone)]
pub(crate) struct Shared {
    kv: kv::Store,
    client: async_nats::Client,
}

impl Shared {
    /// The bucket `name`, made if missing (by whichever node comes first). Values older than
    /// `max_age` (zero: none) are dropped by the server.
    ///
    /// The bucket's stream is made as `create_key_value` would make it, but directly: that call
    /// first reads the account's details in a shape NATS servers before 2.10 do not send.
    pub async fn open(client: &async_nats::Client, js: &Context, name: &str, max_age: Duration) -> Result<Shared> {
        let config = stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            // a write's de-duplication window may not outlast its values
            duplicate_window: if max_age.is_zero() { Duration::from_secs(120) } else { max_age.min(Duration::from_secs(120)) },
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        if let Err(made) = js.get_or_create_stream(config).await {
            tracing::debug!(error = %made, bucket = name, "nats: making the bucket (another node may have)");
        }
        let kv = js.get_key_value(name).await.map_err(|e| nats_err(format!("bucket {name}: {e}")))?;
        Ok(Shared { kv, client: client.clone() })
    }

    /// Whether NATS is connected now. While it is not, every call fails at once ([`unreachable`])
    /// rather than waiting for a timeout.
    pub fn reachable(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn check(&self) -> Result<()> {
        if self.reachable() {
            Ok(())
        } else {
            Err(unreachable())
        }
    }

    pub fn store(&self) -> &kv::Store {
        &self.kv
    }

    /// The value at `key`, if there is one.
    pub async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.check()?;
        match self.kv.entry(key).await.map_err(nats_err)? {
            Some(e) if e.operation == Operation::Put => decode(&e.value).map(Some),
            _ => Ok(None),
        }
    }

    /// Put `value` at `key`, whatever was there.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.check()?;
        self.kv.put(key, encode(value)?).await.map_err(nats_err).map(drop)
    }

    /// Change the value at `key` (the default when there is none) with `f`, atomically: `f` may
    /// run more than once, each time on the newest value, and what it returned the last time is
    /// returned. When `f` leaves the value equal to the default, the key is deleted (a user gone
    /// offline leaves nothing behind); when it leaves it as it was, nothing is written.
    pub async fn update<T, R>(&self, key: &str, mut f: impl FnMut(&mut T) -> R) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default + PartialEq + Clone,
    {
        self.check()?;
        for attempt in 0..MAX_TRIES {
            let (mut value, revision) = match self.kv.entry(key).await.map_err(nats_err)? {
                Some(e) if e.operation == Operation::Put => (decode::<T>(&e.value)?, Some(e.revision)),
                Some(e) => (T::default(), Some(e.revision)),
                None => (T::default(), None),
            };
            let before = value.clone();
            let out = f(&mut value);
            if value == before && revision.is_some() {
                // nothing changed: nothing to write (a refused call, a user already there)
                return Ok(out);
            }
            let written = if value == T::default() {
                match revision {
                    // nothing there, nothing to write
                    None => return Ok(out),
                    Some(r) => self
                        .kv
                        .delete_expect_revision(key, Some(r))
                        .await
                        .map_err(|e| Write::of(e.kind() == UpdateErrorKind::WrongLastRevision, e)),
                }
            } else {
                let bytes = encode(&value)?;
                match revision {
                    Some(r) => self
                        .kv
                        .update(key, bytes, r)
                        .await
                        .map(drop)
                        .map_err(|e| Write::of(e.kind() == UpdateErrorKind::WrongLastRevision, e)),
                    None => {
                        self.kv.create(key, bytes).await.map(drop).map_err(|e| Write::of(e.kind() == CreateErrorKind::AlreadyExists, e))
                    }
                }
            };
            match written {
                Ok(()) => return Ok(out),
                // another node wrote first: read what it wrote and apply the change to that, after
                // a pause that grows with the contention (so that the writers spread out)
                Err(Write::Lost) => tokio::time::sleep(Duration::from_micros(backoff_us(attempt))).await,
                Err(Write::Failed(e)) => return Err(e),
            }
        }
        Err(nats_err(format!("{key}: changed by other nodes {MAX_TRIES} times in a row")))
    }
}

/// The pause after `attempt` lost writes: up to 50 µs more each time, with jitter, at most 5 ms.
fn backoff_us(attempt: usize) -> u64 {
    let jitter = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64) % 50;
    (attempt as u64 * 50 + jitter).min(5_000)
}

/// Why a compare-and-set write did not happen.
enum Write {
    /// Another write came first (a newer revision, or the key created meanwhile).
    Lost,
    Failed(Error),
}

impl Write {
    fn of(lost: bool, e: impl std::fmt::Display) -> Write {
        if lost {
            Write::Lost
        } else {
            Write::Failed(nats_err(e))
        }
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<bytes::Bytes> {
    serde_json::to_vec(v).map(bytes::Bytes::from).map_err(Error::internal)
}

pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| nats_err(format!("a value does not read back: {e}")))
}

/// A key-value key (or subject token) for any text: `[-_A-Za-z0-9]` only, never empty.
pub(crate) fn token(s: &str) -> String {
    format!("t{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s))
}
