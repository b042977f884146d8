//! The connection discipline: one writer thread that commits queued writes in groups, and read
//! connections in two lanes. A lookup (a read by a key, whose work does not grow with the data)
//! runs at once on the caller's thread: handing it to a blocking thread cost more than the read
//! (two thread switches and a wake-up against microseconds of SQLite work; on the group send
//! path, half of the server's time). Every other read (lists, history, counts, queries) runs in
//! a blocking task, within the query lane's slots. A lookup never waits for those slots, so a
//! burst of long reads never queues a token check or `/healthz`.
//!
//! On request ([`Pool::count_work`]) each operation's SQLite work is counted: the virtual machine
//! steps its statements take (SQLite's progress callback, called on every step), by operation name.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use confab_engine::{Error, Result};
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{oneshot, Semaphore};

/// Most writes committed in one transaction, by default.
pub const DEFAULT_MAX_GROUP: usize = 512;

type Completer = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut Counted) -> (bool, Completer) + Send>;

/// What one kind of store operation has cost since counting began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpWork {
    /// Operations run.
    pub calls: u64,
    /// SQLite virtual machine steps their statements took, in all.
    pub vm_steps: u64,
}

/// The work counter: off unless asked for (counting calls back into Rust on every VM step).
#[derive(Default)]
struct Work {
    on: AtomicBool,
    ops: Mutex<BTreeMap<&'static str, OpWork>>,
}

impl Work {
    fn add(&self, op: &'static str, steps: u64) {
        let mut ops = self.ops.lock();
        let w = ops.entry(op).or_default();
        w.calls += 1;
        w.vm_steps += steps;
    }
}

/// A connection with its step counter, fed by SQLite's progress callback while counting is on.
pub(crate) struct Counted {
    conn: Connection,
    steps: Arc<AtomicU64>,
    counting: bool,
}

impl Counted {
    fn new(conn: Connection) -> Counted {
        Counted { conn, steps: Arc::new(AtomicU64::new(0)), counting: false }
    }

    /// Run `f`, recording its steps under `op` when the pool counts.
    fn run<T>(&mut self, work: &Work, op: &'static str, f: impl FnOnce(&Connection) -> T) -> T {
        let on = work.on.load(Ordering::Relaxed);
        if on != self.counting {
            if on {
                let steps = self.steps.clone();
                self.conn.progress_handler(
                    1,
                    Some(move || {
                        steps.fetch_add(1, Ordering::Relaxed);
                        false
                    }),
                );
            } else {
                self.conn.progress_handler(0, None::<fn() -> bool>);
            }
            self.counting = on;
        }
        let before = self.steps.load(Ordering::Relaxed);
        let r = f(&self.conn);
        if on {
            work.add(op, self.steps.load(Ordering::Relaxed) - before);
        }
        r
    }
}

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("sqlite: {e}"))
}

/// Open a connection. `durable` makes every commit reach the disk before it is acknowledged
/// (`synchronous = FULL`); otherwise a power loss may lose the last commits (never corrupt).
pub(crate) fn open(path: &Path, durable: bool) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql_err)?;
    let sync = if durable { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    ))
    .map_err(sql_err)?;
    crate::functions::register(&conn).map_err(sql_err)?;
    // every query shape the store uses stays prepared (rusqlite keeps 16 by default)
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Run a statement that takes no parameters through the statement cache (the writer's
/// transaction control: parsed once, not once per write).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

/// Roll a failed write back to its savepoint.
fn undo(conn: &Connection) {
    let _ = run(conn, "ROLLBACK TO job").and_then(|_| run(conn, "RELEASE job"));
}

pub(crate) struct Pool {
    path: PathBuf,
    writer: Mutex<Option<std_mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Idle read connections, shared by both lanes (the query slots bound how many queries run;
    /// lookups take one each, on the threads that make them).
    readers: Arc<Mutex<Vec<Counted>>>,
    query_slots: Arc<Semaphore>,
    work: Arc<Work>,
}

impl Pool {
    /// At most `readers` queries at once; lookups open what connections they need besides.
    pub fn new(path: &Path, readers: usize, max_group: usize, durable: bool) -> Result<Pool> {
        let conn = open(path, durable)?;
        crate::schema::migrate(&conn)?;
        let work = Arc::new(Work::default());
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || writer_loop(Counted::new(conn), rx, max_group.max(1)))
            .map_err(Error::internal)?;
        Ok(Pool {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            query_slots: Arc::new(Semaphore::new(readers.max(1))),
            work,
        })
    }

    /// Count each operation's work from now on (or stop counting).
    pub fn count_work(&self, on: bool) {
        self.work.on.store(on, Ordering::Relaxed);
    }

    /// The work counted so far, by operation; with `reset`, counting starts again from zero.
    pub fn work(&self, reset: bool) -> BTreeMap<&'static str, OpWork> {
        let mut ops = self.work.ops.lock();
        if reset {
            std::mem::take(&mut *ops)
        } else {
            ops.clone()
        }
    }

    /// Run `f` (the operation `op`) in the writer's current transaction (inside its own
    /// savepoint). The result is returned only once the transaction has committed.
    pub async fn write<T: Send + 'static>(&self, op: &'static str, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        self.queue(op, f).await
    }

    /// [`Pool::write`], queued for the writer before this returns (writes run in the order they
    /// are queued); the future completes when it is committed.
    pub fn queue<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> confab_engine::store::Queued<T> {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let work = self.work.clone();
        let job: Job = Box::new(move |conn| {
            let r = conn.run(&work, op, f);
            let ok = r.is_ok();
            let done: Completer = Box::new(move |commit| {
                let _ = tx.send(commit.and(r));
            });
            (ok, done)
        });
        let queued = match self.writer.lock().clone() {
            None => Err(Error::internal("store is closed")),
            Some(sender) => sender.send(job).map_err(|_| Error::internal("store writer has stopped")),
        };
        Box::pin(async move {
            queued?;
            rx.await.map_err(|_| Error::internal("store writer dropped a write"))?
        })
    }

    /// Run `f` (the operation `op`) on a read connection of the query lane, in a blocking task.
    pub async fn read<T: Send + 'static>(&self, op: &'static str, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let permit = self.query_slots.clone().acquire_owned().await.map_err(Error::internal)?;
        let (readers, path, work) = (self.readers.clone(), self.path.clone(), self.work.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            read_on(&readers, &path, &work, op, f)
        })
        .await
        .map_err(Error::internal)?
    }

    /// Like [`Pool::read`], for a read by a key whose work does not grow with the data (one row
    /// or a few; one conversation's members): run now, on the caller's thread. A panic in `f`
    /// is an error, as it is for `read`.
    pub async fn lookup<T>(&self, op: &'static str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        catch_unwind(AssertUnwindSafe(|| read_on(&self.readers, &self.path, &self.work, op, f)))
            .unwrap_or_else(|_| Err(Error::internal(format!("sqlite: the lookup {op} panicked"))))
    }

    /// Stop the writer after it has committed everything queued.
    pub fn close(&self) {
        self.writer.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// `close`, waiting for the writer on a blocking task rather than on the caller's thread.
    pub async fn close_async(&self) {
        self.writer.lock().take();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}

/// `f` on an idle read connection (a new one when none is idle), given back afterwards.
fn read_on<T>(
    readers: &Mutex<Vec<Counted>>,
    path: &Path,
    work: &Work,
    op: &'static str,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let popped = readers.lock().pop();
    let mut conn = match popped {
        Some(c) => c,
        None => Counted::new(open(path, false)?),
    };
    let r = conn.run(work, op, f);
    readers.lock().push(conn);
    r
}

fn writer_loop(mut counted: Counted, rx: std_mpsc::Receiver<Job>, max_group: usize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let begin = run(&counted.conn, "BEGIN IMMEDIATE").map_err(sql_err);
        if let Err(e) = begin {
            tracing::error!(error = %e, "sqlite: cannot begin a write transaction");
            for job in jobs {
                // run nothing; each caller learns the failure
                drop(job);
            }
            continue;
        }
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            if run(&counted.conn, "SAVEPOINT job").is_err() {
                continue;
            }
            match catch_unwind(AssertUnwindSafe(|| job(&mut counted))) {
                Ok((ok, completer)) => {
                    if ok {
                        let _ = run(&counted.conn, "RELEASE job");
                    } else {
                        undo(&counted.conn);
                    }
                    done.push(completer);
                }
                Err(_) => {
                    tracing::error!("sqlite: a write panicked; it was rolled back");
                    undo(&counted.conn);
                }
            }
        }
        let commit = run(&counted.conn, "COMMIT").map_err(sql_err);
        if commit.is_err() {
            let _ = run(&counted.conn, "ROLLBACK");
        }
        for c in done {
            c(commit.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Condvar};

    use super::*;

    /// Hold a read connection until `gate` opens, after meeting the others at `started`.
    fn hold(started: Arc<Barrier>, gate: Arc<(std::sync::Mutex<bool>, Condvar)>) -> impl FnOnce(&Connection) -> Result<()> {
        move |_| {
            started.wait();
            let (open, cv) = &*gate;
            let mut open = open.lock().map_err(Error::internal)?;
            while !*open {
                open = cv.wait(open).map_err(Error::internal)?;
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_do_not_wait_for_busy_query_readers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Arc::new(Pool::new(&dir.path().join("lanes.db"), 2, 16, false).expect("pool"));
        let started = Arc::new(Barrier::new(3));
        let gate = Arc::new((std::sync::Mutex::new(false), Condvar::new()));
        let mut busy = Vec::new();
        for _ in 0..2 {
            let (pool, started, gate) = (pool.clone(), started.clone(), gate.clone());
            busy.push(tokio::spawn(async move { pool.read("long", hold(started, gate)).await }));
        }
        // both query readers are taken
        let s = started.clone();
        tokio::task::spawn_blocking(move || s.wait()).await.expect("join");
        // a lookup still runs: it takes no query slot (the timeout only keeps a failure from hanging)
        let one = pool.lookup("short", |c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(sql_err));
        let one = tokio::time::timeout(Duration::from_secs(30), one).await;
        let (open, cv) = &*gate;
        *open.lock().expect("gate") = true;
        cv.notify_all();
        assert_eq!(one.expect("the lookup was held up behind the long reads").expect("lookup"), 1);
        for b in busy {
            b.await.expect("join").expect("read");
        }
    }
}
