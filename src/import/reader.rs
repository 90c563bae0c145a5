//! Reading one import file in two streaming passes, in bounded memory, off the async runtime.
//!
//! Pass one ([`check`]) validates every record and finds duplicates, keeping only the errors
//! (the first [`MAX_REPORTED_ERRORS`] in detail), the indexes to skip and the file's hash: a
//! file that cannot be read to its end (truncated, not JSON, not UTF-8) is refused whole before
//! anything is written. Pass two ([`send`]) reads the file again and hands its valid records to
//! the store in chunks through a bounded channel, so at most a few chunks are in memory
//! whatever the file's size. If the file changed between the passes, the last chunk says so
//! and the store throws the file's writes away (or, on SQLite, the retry writes it again).
//!
//! Memory stays bounded whatever the input: a record larger than
//! [`json_stream::MAX_RECORD_BYTES`] is stopped as it is read, rejected on its own, and
//! skipped by every later read (pass one starts again once per such record, at most
//! [`MAX_OVERSIZED`] times); a chunk holds at most [`CHUNK_RECORDS`] records and
//! [`CHUNK_BYTES`] of their text.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use revisit_jobs::ImportKind;
use tokio::sync::mpsc;
use tracing::info;

use crate::{
    domain::{
        json_stream::{self, ReadStop, Skips, for_each_record_skipping},
        records::{FileError, RecordError, Records, duplicate_error, validate},
    },
    store::{Chunk, MAX_REPORTED_ERRORS},
};

/// Records per chunk: one statement (PostgreSQL) or one short transaction (SQLite) each.
pub const CHUNK_RECORDS: usize = 5000;
/// Bytes of record text per chunk, whatever the records' sizes.
pub const CHUNK_BYTES: usize = 8 << 20;
/// Records over the size limit that one file may have before it is refused whole.
pub const MAX_OVERSIZED: usize = 20;

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
    /// Where the records over the size limit stand, read as `null` by every pass.
    oversized: Skips,
}

fn open(path: &Path) -> Result<File, FileError> {
    File::open(path).map_err(|e| FileError {
        path: path.display().to_string(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "文件不存在".to_owned(),
            _ => format!("无法读取：{e}"),
        },
    })
}

/// Pass one: validates every record of `path` as `kind`. Blocking.
pub fn check(path: &Path, kind: ImportKind) -> Result<Checked, FileError> {
    check_within(path, kind, json_stream::MAX_RECORD_BYTES)
}

/// [`check`] with records of at most `limit` bytes.
fn check_within(path: &Path, kind: ImportKind, limit: u64) -> Result<Checked, FileError> {
    let file_error = |message: String| FileError {
        path: path.display().to_string(),
        message,
    };
    let mut oversized = Skips::default();
    let mut oversized_at: Vec<usize> = Vec::new();
    loop {
        let file = open(path)?;
        let mut checked = Checked {
            oversized: oversized.clone(),
            ..Checked::default()
        };
        let mut first_of: HashMap<String, usize> = HashMap::new();
        // One rejected record, with every problem it has.
        let reject = |checked: &mut Checked, errors: Vec<RecordError>| {
            checked.rejected += 1;
            for e in errors {
                checked.skip.insert(e.record);
                if checked.errors.len() < MAX_REPORTED_ERRORS {
                    checked.errors.push(e);
                }
            }
        };
        let read = for_each_record_skipping(file, &oversized, limit, |index, value| {
            if oversized_at.contains(&index) {
                let e = json_stream::oversized(index);
                return reject(&mut checked, vec![RecordError::whole(index, e.0)]);
            }
            match validate(kind, index, value) {
                Ok(record) => match first_of.get(record.key()) {
                    Some(first) => reject(
                        &mut checked,
                        vec![duplicate_error(kind, index, record.key(), *first)],
                    ),
                    None => {
                        first_of.insert(record.key().to_owned(), index);
                    }
                },
                Err(e) => reject(&mut checked, e),
            }
        });
        match read {
            Ok(summary) => {
                checked.total = summary.records;
                checked.sha256 = summary.sha256;
                return Ok(checked);
            }
            Err(ReadStop::File(e)) => return Err(file_error(e.0)),
            Err(ReadStop::Oversized { record, from }) => {
                if oversized_at.len() >= MAX_OVERSIZED {
                    return Err(file_error(format!(
                        "超过 {MAX_OVERSIZED} 条记录大于 {} MB（最后一条是第 {} 条），不像是系统导出的文件，整个文件未导入",
                        json_stream::MAX_RECORD_BYTES >> 20,
                        record + 1
                    )));
                }
                let range = record_range(path, from).map_err(|e| {
                    file_error(format!(
                        "第 {} 条记录大于 {} MB，且读不到它的结尾（{e}），整个文件未导入",
                        record + 1,
                        json_stream::MAX_RECORD_BYTES >> 20
                    ))
                })?;
                oversized.add(range);
                oversized_at.push(record);
            }
        }
    }
}

/// Where the record that begins at or after byte `from` (counted after any UTF-8 byte-order
/// mark) stands in the file.
fn record_range(path: &Path, from: u64) -> std::io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 3];
    let read = file.read(&mut head)?;
    let bom = if read == 3 && head == [0xEF, 0xBB, 0xBF] {
        3
    } else {
        0
    };
    file.seek(SeekFrom::Start(bom + from))?;
    let (start, end) = json_stream::element_range(file, 0)?;
    Ok((from + start, from + end))
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
    let mut chunk_bytes = 0usize;
    let read = for_each_record_skipping(
        file,
        &checked.oversized,
        json_stream::MAX_RECORD_BYTES,
        |index, value| {
            if receiver_gone || checked.skip.contains(&index) {
                return;
            }
            // Pass one validated this record; the same bytes validate the same way.
            let Ok(record) = validate(kind, index, value) else {
                return;
            };
            chunk.push(index, record);
            chunk_bytes += value.get().len();
            if chunk.len() >= chunk_records || chunk_bytes >= CHUNK_BYTES {
                let before = sent;
                sent += chunk.len();
                chunk_bytes = 0;
                progress.store(sent, Ordering::Relaxed);
                let full = std::mem::replace(&mut chunk, Records::empty(kind));
                receiver_gone = tx.blocking_send(Ok(full)).is_err();
                if sent / step != before / step {
                    info!(file = %path.display(), records = sent, of = checked.total, "importing");
                }
            }
        },
    );
    if receiver_gone {
        return;
    }
    let last = match read {
        Ok(summary) if summary.sha256 == checked.sha256 => Ok(chunk),
        Ok(_) | Err(ReadStop::Oversized { .. }) => Err(changed.to_owned()),
        Err(ReadStop::File(e)) => Err(format!("{changed} ({e})")),
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

    /// Sends `path` through pass two and returns the codes of the projects that arrived.
    fn sent_codes(path: &Path, checked: &Checked) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(64);
        send(
            path,
            ImportKind::Projects,
            checked,
            2,
            &tx,
            &AtomicUsize::new(0),
        );
        drop(tx);
        let mut codes = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            let Records::Projects(rows) = chunk.unwrap() else {
                panic!("projects")
            };
            codes.extend(rows.into_iter().map(|(_, p)| p.code));
        }
        codes
    }

    #[test]
    fn a_record_over_the_size_limit_is_rejected_alone_and_the_rest_imported() {
        let dir = tempfile::tempdir().unwrap();
        let huge = "\\\"很长".repeat((json_stream::MAX_RECORD_BYTES / 4) as usize);
        for (name, bom, records) in [
            (
                "middle.json",
                false,
                vec![
                    r#"{"project_code":"P1","name":"甲"}"#.to_owned(),
                    format!(r#"{{"project_code":"P2","name":"{huge}"}}"#),
                    r#"{"project_code":"P3","name":"丙"}"#.to_owned(),
                    format!(r#"["{huge}", {{"a": [1, 2]}}]"#),
                    r#"{"project_code":"P4","name":"丁"}"#.to_owned(),
                ],
            ),
            (
                "last_with_bom.json",
                true,
                vec![
                    r#"{"project_code":"P1","name":"甲"}"#.to_owned(),
                    format!(r#""{huge}""#),
                ],
            ),
        ] {
            let path = dir.path().join(name);
            let mut bytes = if bom { vec![0xEF, 0xBB, 0xBF] } else { vec![] };
            bytes.extend_from_slice(format!("[\n  {}\n]\n", records.join(",\n  ")).as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            let checked = check(&path, ImportKind::Projects).unwrap();
            let big: Vec<usize> = (0..records.len())
                .filter(|i| records[*i].len() as u64 > json_stream::MAX_RECORD_BYTES)
                .collect();
            assert_eq!(checked.total, records.len(), "{name}");
            assert_eq!(checked.rejected, big.len(), "{name}: {:?}", checked.errors);
            for (e, index) in checked.errors.iter().zip(&big) {
                assert_eq!((e.record, e.field.as_str()), (*index, "(record)"));
                assert!(e.message.contains("超过 1 MB"), "{}", e.message);
            }
            assert_eq!(
                checked.sha256,
                crate::domain::records::sha256_hex(&bytes),
                "the fingerprint is of the file as it is"
            );
            let want: Vec<String> = ["P1", "P3", "P4"]
                .iter()
                .filter(|c| records.iter().any(|r| r.contains(*c)))
                .map(|c| c.to_string())
                .collect();
            assert_eq!(sent_codes(&path, &checked), want, "{name}");
        }
    }

    #[test]
    fn a_file_of_oversized_records_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.json");
        let big = format!(r#""{}""#, "x".repeat(100));
        let items = vec![big; MAX_OVERSIZED + 1];
        std::fs::write(&path, format!("[{}]", items.join(","))).unwrap();
        let e = check_within(&path, ImportKind::Projects, 64).unwrap_err();
        assert!(e.message.contains("超过 20 条记录"), "{}", e.message);
        // Twenty such records are each rejected, and the file is read.
        let items = vec![format!(r#""{}""#, "x".repeat(100)); MAX_OVERSIZED];
        std::fs::write(&path, format!("[{}]", items.join(","))).unwrap();
        let checked = check_within(&path, ImportKind::Projects, 64).unwrap();
        assert_eq!(checked.rejected, MAX_OVERSIZED);
    }
}
