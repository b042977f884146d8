//! The writer lanes of message inserts: what keeps `queue_message_with`'s promise (inserts
//! queued in an order commit in that order, whatever order their futures are awaited in).
//!
//! An insert is queued on a lane when `queue_message_with` is called, before any future is
//! polled; the lane is chosen by the message's conversation, so one conversation's inserts are
//! queued, committed and numbered in the order they were made, while other conversations' go on
//! in parallel on the other lanes. A lane's task takes what is queued (at most [`MAX_GROUP`]) and
//! commits it in one transaction (group commit), each insert inside a savepoint: one that fails
//! (its conversation is gone) fails only its own future. The futures complete after the commit.
//!
//! Across nodes the order of one conversation's inserts is the order their transactions reach
//! the conversation's row: the `UPDATE` that assigns the next sequence number holds it until
//! the commit. A transaction of several conversations locks their rows first, in one order
//! (`ORDER BY app, id`), so that two nodes' batches never wait for each other.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use confab_engine::hooks::OutboxItem;
use confab_engine::model::Message;
use confab_engine::store::Queued;
use confab_engine::{Error, Result};
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{pg_err, Conn};

/// How many lanes commit inserts at once, each on a connection of its own while it commits.
/// More lanes let more conversations' inserts commit side by side, at the cost of connections
/// taken from the pool; one conversation's inserts always go to the same lane.
pub const LANES: usize = 4;

/// Most inserts a lane commits in one transaction: large enough that a burst costs a few
/// commits, small enough that the first insert's sender does not wait long for the last.
pub const MAX_GROUP: usize = 64;

/// One queued insert and where its outcome goes.
struct Insert {
    msg: Message,
    outbox: Vec<OutboxItem>,
    done: oneshot::Sender<Result<Message>>,
}

/// The lanes: a queue and a task each.
pub(crate) struct Lanes {
    /// The lanes' queues; `None` once closed (the tasks then commit what is queued and stop).
    queues: Mutex<Option<Vec<mpsc::UnboundedSender<Insert>>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A lock that a panic elsewhere never makes unusable (what it guards stays consistent: a
/// vector swapped whole).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lanes {
    /// Start the lanes' tasks (on the current runtime), committing through `pool`.
    pub fn start(pool: &Pool) -> Lanes {
        let mut queues = Vec::with_capacity(LANES);
        let mut tasks = Vec::with_capacity(LANES);
        for _ in 0..LANES {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(tx);
            tasks.push(tokio::spawn(run_lane(pool.clone(), rx)));
        }
        Lanes { queues: Mutex::new(Some(queues)), tasks: Mutex::new(tasks) }
    }

    /// Queue an insert on its conversation's lane now; the future completes once it is
    /// committed (or has failed).
    pub fn queue(&self, msg: &Message, outbox: &[OutboxItem]) -> Queued<Message> {
        let (done, outcome) = oneshot::channel();
        let insert = Insert { msg: msg.clone(), outbox: outbox.to_vec(), done };
        let queued = match &*locked(&self.queues) {
            None => Err(Error::internal("postgres: the store is closed")),
            Some(queues) => {
                queues[lane_of(msg.app, msg.conv)].send(insert).map_err(|_| Error::internal("postgres: a message writer has stopped"))
            }
        };
        Box::pin(async move {
            queued?;
            outcome.await.map_err(|_| Error::internal("postgres: a message writer dropped an insert"))?
        })
    }

    /// Stop accepting inserts and wait until what is queued is committed. Calling it again does
    /// nothing.
    pub async fn close(&self) {
        locked(&self.queues).take();
        let tasks = std::mem::take(&mut *locked(&self.tasks));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "postgres: a message writer ended abnormally");
            }
        }
    }
}

/// The lane of a conversation: the same for all its inserts, spread over the lanes.
fn lane_of(app: i64, conv: i64) -> usize {
    let mut h = DefaultHasher::new();
    (app, conv).hash(&mut h);
    (h.finish() % LANES as u64) as usize
}

/// A lane's task: commit what is queued, a group at a time, until the queue is closed and empty.
async fn run_lane(pool: Pool, mut queue: mpsc::UnboundedReceiver<Insert>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(insert) => group.push(insert),
                Err(_) => break,
            }
        }
        let outcomes = match commit_group(&pool, &group).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::warn!(error = %e, inserts = group.len(), "postgres: a group of message inserts failed");
                vec![Err(e); group.len()]
            }
        };
        for (insert, outcome) in group.into_iter().zip(outcomes) {
            // the caller may have stopped waiting: its insert stands all the same
            let _ = insert.done.send(outcome);
        }
    }
}

/// Commit a group in one transaction: the outcome of each insert, or the error that failed them
/// all (no connection, the commit failed).
async fn commit_group(pool: &Pool, group: &[Insert]) -> Result<Vec<Result<Message>>> {
    let mut client = pool.get().await.map_err(pg_err)?;
    let mut tx = client.transaction().await.map_err(pg_err)?;
    let outcomes = if let [one] = group {
        // alone, an insert needs no savepoint: if it fails, nothing is committed
        vec![crate::messages::insert_queued(&tx, &one.msg, &one.outbox).await]
    } else {
        lock_conversations(&tx, group).await?;
        let mut outcomes = Vec::with_capacity(group.len());
        for insert in group {
            outcomes.push(insert_in_savepoint(&mut tx, insert).await?);
        }
        outcomes
    };
    if outcomes.iter().any(Result::is_ok) {
        tx.commit().await.map_err(pg_err)?;
    }
    Ok(outcomes)
}

/// Lock the rows of a group's conversations, in one order on every node (an `UPDATE` of each,
/// in the group's order, could wait for another node's group that waits for this one).
async fn lock_conversations(tx: &Transaction<'_>, group: &[Insert]) -> Result<()> {
    let mut keys: Vec<(i64, i64)> = group.iter().map(|i| (i.msg.app, i.msg.conv)).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() < 2 {
        return Ok(());
    }
    let (apps, ids): (Vec<i64>, Vec<i64>) = keys.into_iter().unzip();
    tx.exec(
        "SELECT c.app, c.id FROM conversations c JOIN unnest($1::BIGINT[], $2::BIGINT[]) AS k (app, id)
         ON c.app = k.app AND c.id = k.id ORDER BY c.app, c.id FOR UPDATE OF c",
        &[&apps, &ids],
    )
    .await
    .map(drop)
}

/// One insert of a group, in a savepoint: if it fails, what it wrote is undone and the others
/// stand. The outer error is the transaction's (it cannot go on).
async fn insert_in_savepoint(tx: &mut Transaction<'_>, insert: &Insert) -> Result<Result<Message>> {
    let sp = tx.savepoint("message").await.map_err(pg_err)?;
    let outcome = crate::messages::insert_queued(&sp, &insert.msg, &insert.outbox).await;
    match outcome {
        Ok(_) => sp.commit().await.map_err(pg_err)?,
        Err(_) => sp.rollback().await.map_err(pg_err)?,
    }
    Ok(outcome)
}
