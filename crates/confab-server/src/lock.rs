//! One server per data directory: `confab serve` holds an OS file lock on `confab.lock` in it for
//! as long as the process lives. The kernel releases the lock when the process ends, however it
//! ends, so a lock file left by a killed server does not stop the next one. `confab app …`
//! takes no lock: it works beside a running server (SQLite WAL).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "confab.lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Lock `dir` (made if missing) for this process, or say which process holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    pid if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => format!(" (pid {pid})"),
                    _ => String::new(),
                };
                bail!(
                    "another confab server{holder} is already serving the data directory {}: stop it first, or give this one \
                     another --data-dir",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
        // who holds it, for the message above (the lock, not this text, is what counts)
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(DataDirLock { _file: file })
    }
}
