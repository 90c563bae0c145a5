//! Reading one import file in two streaming passes, in bounded memory, off the async runtime.
//!
//! Pass one ([`check`]) validates every record and finds duplicates, keeping only the errors
//! (the first [`MAX_REPORTED_ERRORS`] in detail), the indexes to skip and the file's hash: a
//! file that cannot be read to its end (truncated, not JSON, not UTF-8) is refused whole before
//! anything is written. Pass two ([`send`]) reads the file again and hands its valid records to
//! the store in chunks through a bounded channel, so at most a few chunks are in memory
//! whatever the file's size. If the file changed between the passes, the last chunk says so
//! and the store throws the file's writes away (or, on SQLite, the retry writes it again).

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use revisit_jobs::ImportKind;
use tokio::sync::mpsc;
use tracing::info;

use crate::{
    domain::{
        json_stream::for_each_record,
        records::{FileError, RecordError, Records, duplicate_error, validate},
    },
    store::{Chunk, MAX_REPORTED_ERRORS},
};

/// Records per chunk: one statement (PostgreSQL) or one short transaction (SQLite) each.
pub const CHUNK_RECORDS: usize = 5000;

/// What pass one found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub total: usize,
    pub sha256: String,
    /// The first rejected records, in detail.
    pub errors: Vec<RecordError>,
    /// How many records were rejected in all.
    pub rejected: usize,
    /// Indexes of the rejected records, skipped by pass two.
    skip: HashSet<usize>,
}

fn open(path: &Path) -> Result<File, FileError> {
    File::open(path).map_err(|e| FileError {
        path: path.display().to_string(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => format!("cannot read: {e}"),
        },
    })
}

/// Pass one: validates every record of `path` as `kind`. Blocking.
pub fn check(path: &Path, kind: ImportKind) -> Result<Checked, FileError> {
    let file = open(path)?;
    let mut checked = Checked::default();
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let reject = |checked: &mut Checked, e: RecordError| {
        checked.rejected += 1;
        checked.skip.insert(e.record);
        if checked.errors.len() < MAX_REPORTED_ERRORS {
            checked.errors.push(e);
        }
    };
    let summary = for_each_record(file, |index, value| match validate(kind, index, value) {
        Ok(record) => match first_of.get(record.key()) {
            Some(first) => reject(
                &mut checked,
                duplicate_error(kind, index, record.key(), *first),
            ),
            None => {
                first_of.insert(record.key().to_owned(), index);
            }
        },
        Err(e) => reject(&mut checked, e),
    })
    .map_err(|e| FileError {
        path: path.display().to_string(),
        message: e.0,
    })?;
    checked.total = summary.records;
    checked.sha256 = summary.sha256;
    Ok(checked)
}

/// Pass two: sends the valid records of `path` in chunks of `chunk_records`. Blocking; stops
/// early when the receiver is gone. The last message is an error if the file could not be
/// read again as it was in pass one.
pub fn send(
    path: &Path,
    kind: ImportKind,
    checked: &Checked,
    chunk_records: usize,
    tx: &mpsc::Sender<Chunk>,
    progress: &AtomicUsize,
) {
    let changed = "the file changed while it was being imported; it will be imported again";
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Err(e.to_string()));
            return;
        }
    };
    let mut chunk = Records::empty(kind);
    let mut sent = 0usize;
    let mut receiver_gone = false;
    let step = (checked.total / 10).max(50_000);
    let read = for_each_record(file, |index, value| {
        if receiver_gone || checked.skip.contains(&index) {
            return;
        }
        // Pass one validated this record; the same bytes validate the same way.
        let Ok(record) = validate(kind, index, value) else {
            return;
        };
        chunk.push(index, record);
        if chunk.len() >= chunk_records {
            sent += chunk.len();
            progress.store(sent, Ordering::Relaxed);
            let full = std::mem::replace(&mut chunk, Records::empty(kind));
            receiver_gone = tx.blocking_send(Ok(full)).is_err();
            if sent / step != (sent - chunk_records) / step {
                info!(file = %path.display(), records = sent, of = checked.total, "importing");
            }
        }
    });
    if receiver_gone {
        return;
    }
    let last = match read {
        Ok(summary) if summary.sha256 == checked.sha256 => Ok(chunk),
        Ok(_) => Err(changed.to_owned()),
        Err(e) => Err(format!("{changed} ({e})")),
    };
    let _ = tx.blocking_send(last);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_two_sends_what_pass_one_accepted_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.json");
        let mut items: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"project_code":"P{i}","name":"项目{i}"}}"#))
            .collect();
        items.push(r#"{"project_code":"P1","name":"重复"}"#.into());
        items.push(r#"{"project_code":"P9"}"#.into());
        std::fs::write(&path, format!("[{}]", items.join(","))).unwrap();
        let checked = check(&path, ImportKind::Projects).unwrap();
        assert_eq!((checked.total, checked.rejected), (7, 2));
        let (tx, mut rx) = mpsc::channel(16);
        send(
            &path,
            ImportKind::Projects,
            &checked,
            2,
            &tx,
            &AtomicUsize::new(0),
        );
        drop(tx);
        let mut sizes = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            sizes.push(chunk.unwrap().len());
        }
        assert_eq!(sizes, vec![2, 2, 1], "5 valid records in chunks of 2");
    }

    #[test]
    fn a_file_that_changed_between_the_passes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.json");
        std::fs::write(&path, r#"[{"project_code":"P1","name":"甲"}]"#).unwrap();
        let checked = check(&path, ImportKind::Projects).unwrap();
        std::fs::write(&path, r#"[{"project_code":"P1","name":"乙"}]"#).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        send(
            &path,
            ImportKind::Projects,
            &checked,
            10,
            &tx,
            &AtomicUsize::new(0),
        );
        drop(tx);
        let last = rx.blocking_recv().unwrap();
        assert!(last.unwrap_err().contains("changed"));
    }
}
