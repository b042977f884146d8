//! LeanCloud's data export: a `.tar.gz`, or a directory, of JSON Lines files, one class per file.
//! Where the files sit inside the archive is not documented, so every entry is looked at and a
//! class's files are found by name: `_Conversation.jsonl`, `_Conversation.json`,
//! `_Conversation.0.jsonl`… (case-sensitive). A file may also hold a JSON array, or one
//! `{"results": […]}` object per line: the two forms LeanCloud's own import takes.
//!
//! Rows stream through a bounded channel from a blocking reader, so an export of any size is
//! read in constant memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::ImportError;

/// One row of a class, or a line that is not one.
#[derive(Debug)]
pub enum Row {
    Ok(Map<String, Value>),
    Bad { file: String, line: usize, error: String },
}

#[derive(Clone, Debug)]
pub struct Export {
    path: PathBuf,
    archive: bool,
}

/// Whether `name` (a file's base name) holds `class`.
fn holds(name: &str, class: &str) -> bool {
    let Some(rest) = name.strip_prefix(class) else { return false };
    let Some(rest) = rest.strip_prefix('.') else { return false };
    let ext_ok = rest.ends_with("jsonl") || rest.ends_with("json");
    // `_Conversation.0.jsonl`: a part number before the extension
    let middle = rest.trim_end_matches("jsonl").trim_end_matches("json").trim_end_matches('.');
    ext_ok && (middle.is_empty() || middle.chars().all(|c| c.is_ascii_digit()))
}

impl Export {
    /// An export at `path`: a directory, or a `.tar.gz` (checked to be one before anything is
    /// written).
    pub fn open(path: &Path) -> Result<Export, ImportError> {
        let meta = std::fs::metadata(path).map_err(|e| ImportError::Export(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            return Ok(Export { path: path.to_path_buf(), archive: false });
        }
        let mut magic = [0u8; 2];
        File::open(path).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| ImportError::Export(format!("{}: {e}", path.display())))?;
        if magic != [0x1f, 0x8b] {
            return Err(ImportError::Export(format!("{}: neither a directory nor a .tar.gz archive", path.display())));
        }
        Ok(Export { path: path.to_path_buf(), archive: true })
    }

    /// The rows of a class, read in a blocking task.
    pub fn rows(&self, class: &'static str) -> mpsc::Receiver<Row> {
        let (tx, rx) = mpsc::channel(1024);
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = if me.archive { me.read_archive(class, &tx) } else { me.read_dir(&me.path, class, &tx) };
            if let Err(e) = result {
                let _ = tx.blocking_send(Row::Bad { file: me.path.display().to_string(), line: 0, error: e.to_string() });
            }
        });
        rx
    }

    fn read_dir(&self, dir: &Path, class: &str, tx: &mpsc::Sender<Row>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.read_dir(&p, class, tx)?;
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| holds(n, class)) {
                read_rows(BufReader::new(File::open(&p)?), &p.display().to_string(), tx)?;
            }
        }
        Ok(())
    }

    fn read_archive(&self, class: &str, tx: &mpsc::Sender<Row>) -> std::io::Result<()> {
        let gz = flate2::read::GzDecoder::new(File::open(&self.path)?);
        let mut archive = tar::Archive::new(gz);
        for entry in archive.entries()? {
            let entry = entry?;
            let name = entry.path()?.to_path_buf();
            let base = name.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if entry.header().entry_type().is_file() && holds(&base, class) {
                read_rows(BufReader::new(entry), &name.display().to_string(), tx)?;
            }
        }
        Ok(())
    }
}

/// The rows of one file: JSON Lines (each line an object, or `{"results": […]}`), or a JSON array.
fn read_rows(mut r: impl BufRead, file: &str, tx: &mpsc::Sender<Row>) -> std::io::Result<()> {
    let send = |row: Row| tx.blocking_send(row).map_err(|_| std::io::Error::other("the import stopped reading"));
    let bad = |line: usize, error: String| Row::Bad { file: file.to_string(), line, error };
    // a JSON array: the whole file is one value
    if r.fill_buf()?.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let mut text = String::new();
        r.read_to_string(&mut text)?;
        return match serde_json::from_str::<Vec<Value>>(&text) {
            Ok(rows) => {
                for (i, v) in rows.into_iter().enumerate() {
                    send(match v {
                        Value::Object(o) => Row::Ok(o),
                        _ => bad(i + 1, "not a JSON object".into()),
                    })?;
                }
                Ok(())
            }
            Err(e) => send(bad(e.line(), format!("not a JSON array: {e}"))),
        };
    }
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        n += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut o)) => match o.remove("results") {
                Some(Value::Array(rows)) if o.is_empty() => {
                    for v in rows {
                        send(match v {
                            Value::Object(o) => Row::Ok(o),
                            _ => bad(n, "a result that is not a JSON object".into()),
                        })?;
                    }
                }
                Some(other) => {
                    o.insert("results".into(), other);
                    send(Row::Ok(o))?;
                }
                None => send(Row::Ok(o))?,
            },
            Ok(_) => send(bad(n, "not a JSON object".into()))?,
            Err(e) => send(bad(n, format!("not JSON: {e}")))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_files_are_found_by_name() {
        for yes in ["_Conversation.jsonl", "_Conversation.json", "_Conversation.0.jsonl", "_Conversation.12.json"] {
            assert!(holds(yes, "_Conversation"), "{yes}");
        }
        for no in
            ["_ConversationMemberInfo.jsonl", "_Conversation.csv", "Conversation.jsonl", "_Conversation.x.jsonl", "_conversation.jsonl"]
        {
            assert!(!holds(no, "_Conversation"), "{no}");
        }
    }

    async fn all(rx: &mut mpsc::Receiver<Row>) -> (Vec<Map<String, Value>>, Vec<(String, usize)>) {
        let (mut ok, mut bad) = (vec![], vec![]);
        while let Some(r) = rx.recv().await {
            match r {
                Row::Ok(o) => ok.push(o),
                Row::Bad { file, line, .. } => bad.push((file, line)),
            }
        }
        (ok, bad)
    }

    #[tokio::test]
    async fn lines_arrays_and_results_objects_in_a_directory_with_bad_lines_reported() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("app-1");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            sub.join("_Conversation.0.jsonl"),
            "{\"objectId\":\"a\"}\n\nnot json\n{\"results\":[{\"objectId\":\"b\"},{\"objectId\":\"c\"}]}\n",
        )
        .unwrap();
        std::fs::write(sub.join("_Conversation.1.json"), " [{\"objectId\":\"d\"}, 5]").unwrap();
        std::fs::write(sub.join("_User.jsonl"), "{\"objectId\":\"u\"}\n").unwrap();
        let export = Export::open(dir.path()).unwrap();
        let (ok, bad) = all(&mut export.rows("_Conversation")).await;
        let ids: Vec<&str> = ok.iter().map(|o| o["objectId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(bad.len(), 2);
        assert!(bad[0].0.ends_with("_Conversation.0.jsonl") && bad[0].1 == 3, "{bad:?}");
        assert!(bad[1].0.ends_with("_Conversation.1.json") && bad[1].1 == 2, "{bad:?}");
    }

    #[tokio::test]
    async fn a_tar_gz_is_walked_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let body = b"{\"objectId\":\"x\"}\n{\"objectId\":\"y\"}\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "deep/folder/_Conversation.jsonl", &body[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let (ok, bad) = all(&mut Export::open(&path).unwrap().rows("_Conversation")).await;
        assert_eq!((ok.len(), bad.len()), (2, 0));
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "hello").unwrap();
        assert!(Export::open(&plain).is_err());
        assert!(Export::open(&dir.path().join("missing")).is_err());
    }
}
