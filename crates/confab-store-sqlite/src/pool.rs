//! The connection discipline: one writer thread that commits queued writes in groups, and a
//! pool of read connections used from blocking tasks.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
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
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completer) + Send>;

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
    readers: Arc<Mutex<Vec<Connection>>>,
    read_slots: Arc<Semaphore>,
}

impl Pool {
    pub fn new(path: &Path, readers: usize, max_group: usize, durable: bool) -> Result<Pool> {
        let conn = open(path, durable)?;
        crate::schema::migrate(&conn)?;
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_group.max(1)))
            .map_err(Error::internal)?;
        Ok(Pool {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(Semaphore::new(readers.max(1))),
        })
    }

    /// Run `f` in the writer's current transaction (inside its own savepoint). The result is
    /// returned only once the transaction has committed.
    pub async fn write<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let r = f(conn);
            let ok = r.is_ok();
            let done: Completer = Box::new(move |commit| {
                let _ = tx.send(commit.and(r));
            });
            (ok, done)
        });
        let sender = self.writer.lock().clone().ok_or_else(|| Error::internal("store is closed"))?;
        sender.send(job).map_err(|_| Error::internal("store writer has stopped"))?;
        rx.await.map_err(|_| Error::internal("store writer dropped a write"))?
    }

    /// Run `f` on a read connection in a blocking task.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let permit = self.read_slots.clone().acquire_owned().await.map_err(Error::internal)?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match readers.lock().pop() {
                Some(c) => c,
                None => open(&path, false)?,
            };
            let r = f(&conn);
            readers.lock().push(conn);
            r
        })
        .await
        .map_err(Error::internal)?
    }

    /// Stop the writer after it has committed everything queued.
    pub fn close(&self) {
        self.writer.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(conn: Connection, rx: std_mpsc::Receiver<Job>, max_group: usize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let begin = run(&conn, "BEGIN IMMEDIATE").map_err(sql_err);
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
            if run(&conn, "SAVEPOINT job").is_err() {
                continue;
            }
            match catch_unwind(AssertUnwindSafe(|| job(&conn))) {
                Ok((ok, completer)) => {
                    if ok {
                        let _ = run(&conn, "RELEASE job");
                    } else {
                        undo(&conn);
                    }
                    done.push(completer);
                }
                Err(_) => {
                    tracing::error!("sqlite: a write panicked; it was rolled back");
                    undo(&conn);
                }
            }
        }
        let commit = run(&conn, "COMMIT").map_err(sql_err);
        if commit.is_err() {
            let _ = run(&conn, "ROLLBACK");
        }
        for c in done {
            c(commit.clone());
        }
    }
}
