//! The dataset as LeanCloud's data export: one JSON Lines file per class, in a directory or a
//! `.tar.gz`, with optional faults (a malformed line, a class split over two files).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::dataset::{Dataset, BASE_EPOCH_MS, CLASSES};

/// A malformed line to put into a class's file(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedLine {
    pub class: String,
    /// Its 1-based position among the class's lines (across its files when split); past the end,
    /// it is the last line.
    pub line: usize,
}

/// How to write the export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The folder the files are in, inside the archive or under the directory: `None` is the
    /// app id (the default), `Some("")` none at all.
    pub folder: Option<String>,
    /// Classes to write (default: `_Conversation`, `_ConversationMemberInfo`, `_SysMessage`, `_User`).
    pub classes: Vec<String>,
    /// Classes written as two files, `<class>.0.jsonl` and `<class>.1.jsonl` (half the rows each).
    pub split: Vec<String>,
    pub malformed: Vec<MalformedLine>,
    /// Whether `_User` rows carry `sessionToken` (UNCONFIRMED that the export has it).
    pub session_tokens: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            folder: None,
            classes: CLASSES.iter().map(|c| c.to_string()).collect(),
            split: Vec::new(),
            malformed: Vec::new(),
            session_tokens: true,
        }
    }
}

/// One file of the export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportFile {
    /// Relative path with `/` (the archive entry name), e.g. `<app id>/_Conversation.jsonl`.
    pub path: String,
    pub class: String,
    /// Rows (well-formed lines) in it.
    pub rows: usize,
    /// 1-based line numbers of the malformed lines in it.
    pub malformed: Vec<usize>,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportManifest {
    pub files: Vec<ExportFile>,
}

impl ExportManifest {
    /// Every malformed line as (file path, 1-based line): what an importer should report.
    pub fn malformed(&self) -> Vec<(String, usize)> {
        self.files.iter().flat_map(|f| f.malformed.iter().map(move |l| (f.path.clone(), *l))).collect()
    }

    /// Rows written for a class (all its files).
    pub fn rows(&self, class: &str) -> usize {
        self.files.iter().filter(|f| f.class == class).map(|f| f.rows).sum()
    }
}

/// The text of a malformed line: a row cut off in the middle of a string.
pub const MALFORMED: &str = r#"{"objectId":"000000000000000000000000","name":"cut off"#;

fn build(ds: &Dataset, opts: &ExportOptions) -> io::Result<Vec<(ExportFile, Vec<u8>)>> {
    let folder = opts.folder.clone().unwrap_or_else(|| ds.app_id().to_string());
    let prefix = if folder.is_empty() { String::new() } else { format!("{}/", folder.trim_end_matches('/')) };
    let mut out = Vec::new();
    for class in &opts.classes {
        let rows = ds
            .export_rows(class, opts.session_tokens)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no class {class} in the dataset")))?;
        // lines: None marks a malformed one
        let mut lines: Vec<Option<String>> = rows.iter().map(|r| Some(r.to_string())).collect();
        let mut bad: Vec<usize> = opts.malformed.iter().filter(|m| &m.class == class).map(|m| m.line.max(1)).collect();
        bad.sort_unstable();
        for at in bad {
            let at = (at - 1).min(lines.len());
            lines.insert(at, None);
        }
        let parts: Vec<(String, &[Option<String>])> = if opts.split.contains(class) {
            let half = lines.len().div_ceil(2);
            vec![(format!("{class}.0.jsonl"), &lines[..half]), (format!("{class}.1.jsonl"), &lines[half..])]
        } else {
            vec![(format!("{class}.jsonl"), &lines[..])]
        };
        for (name, part) in parts {
            let mut body = Vec::new();
            let mut file = ExportFile { path: format!("{prefix}{name}"), class: class.clone(), rows: 0, malformed: Vec::new() };
            for (k, line) in part.iter().enumerate() {
                match line {
                    Some(l) => {
                        file.rows += 1;
                        body.extend_from_slice(l.as_bytes());
                    }
                    None => {
                        file.malformed.push(k + 1);
                        body.extend_from_slice(MALFORMED.as_bytes());
                    }
                }
                body.push(b'\n');
            }
            out.push((file, body));
        }
    }
    Ok(out)
}

/// Write the export as files under `dir` (created if missing).
pub fn write_export_dir(ds: &Dataset, dir: &Path, opts: &ExportOptions) -> io::Result<ExportManifest> {
    let mut manifest = ExportManifest::default();
    for (file, body) in build(ds, opts)? {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, body)?;
        manifest.files.push(file);
    }
    Ok(manifest)
}

/// Write the export as a gzip-compressed tar archive at `path` (a folder entry first, then the files).
pub fn write_export_tar_gz(ds: &Dataset, path: &Path, opts: &ExportOptions) -> io::Result<ExportManifest> {
    let files = build(ds, opts)?;
    let mut tar = tar::Builder::new(GzEncoder::new(fs::File::create(path)?, Compression::default()));
    let mtime = (BASE_EPOCH_MS / 1000) as u64 + 90 * 86_400;
    let mut dirs: Vec<String> = Vec::new();
    let mut manifest = ExportManifest::default();
    for (file, body) in files {
        if let Some((dir, _)) = file.path.rsplit_once('/') {
            if !dirs.iter().any(|d| d == dir) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(mtime);
                tar.append_data(&mut h, format!("{dir}/"), io::empty())?;
                dirs.push(dir.to_string());
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        h.set_mtime(mtime);
        tar.append_data(&mut h, &file.path, body.as_slice())?;
        manifest.files.push(file);
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, DatasetSpec};
    use flate2::read::GzDecoder;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// Every file of an archive: path → lines.
    fn read_tar_gz(path: &Path) -> BTreeMap<String, Vec<String>> {
        let mut ar = tar::Archive::new(GzDecoder::new(fs::File::open(path).unwrap()));
        let mut out = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = e.path().unwrap().to_string_lossy().to_string();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            out.insert(name, s.lines().map(str::to_string).collect());
        }
        out
    }

    #[test]
    fn export_round_trip_tar_gz() {
        let ds = Dataset::generate(DatasetSpec::default());
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("export.tar.gz");
        let m = write_export_tar_gz(&ds, &path, &ExportOptions::default()).unwrap();
        let files = read_tar_gz(&path);
        let app = ds.app_id();
        assert_eq!(files.keys().cloned().collect::<Vec<_>>(), CLASSES.iter().map(|c| format!("{app}/{c}.jsonl")).collect::<Vec<_>>());
        for class in CLASSES {
            let lines = &files[&format!("{app}/{class}.jsonl")];
            let parsed: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(parsed, ds.rows(class).unwrap(), "{class}");
            assert_eq!(m.rows(class), parsed.len());
            assert!(!parsed.is_empty(), "{class}");
        }
        let users: Vec<Value> = files[&format!("{app}/_User.jsonl")].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(users.iter().all(|u| u["password"].is_string() && u["salt"].is_string() && u["sessionToken"].is_string()));
        assert!(m.malformed().is_empty());
    }

    #[test]
    fn export_faults_in_a_directory() {
        let ds = Dataset::generate(DatasetSpec::default());
        let tmp = tempfile::tempdir().unwrap();
        let opts = ExportOptions {
            folder: Some(String::new()),
            split: vec!["_Conversation".into()],
            malformed: vec![MalformedLine { class: "_Conversation".into(), line: 9 }],
            session_tokens: false,
            ..Default::default()
        };
        let m = write_export_dir(&ds, tmp.path(), &opts).unwrap();
        let convs = ds.rows("_Conversation").unwrap();
        let half = (convs.len() + 1).div_ceil(2);
        assert_eq!(m.malformed(), vec![("_Conversation.1.jsonl".to_string(), 9 - half)]);
        let mut back = Vec::new();
        for name in ["_Conversation.0.jsonl", "_Conversation.1.jsonl"] {
            let text = fs::read_to_string(tmp.path().join(name)).unwrap();
            for (k, line) in text.lines().enumerate() {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => back.push(v),
                    Err(_) => assert_eq!((name.to_string(), k + 1), m.malformed()[0]),
                }
            }
        }
        assert_eq!(back, convs);
        let users = fs::read_to_string(tmp.path().join("_User.jsonl")).unwrap();
        assert!(!users.contains("sessionToken") && users.contains("\"salt\""));
    }
}
