//! Import: writing a file's valid records (with its log and the next job, see each engine), and
//! what the import log and progress say.

use std::collections::HashMap;

use async_trait::async_trait;
use revisit_jobs::ImportSource;

use super::{NewJob, StoreError, StoreResult};
use crate::domain::records::{RecordError, Records};

/// The file of a batch being imported now: how many of its records have gone to the writer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileProgress {
    pub path: String,
    pub done: i64,
    pub total: i64,
}

#[async_trait]
pub trait Imports: Send + Sync {
    /// Writes a file's valid records as they arrive in `chunks`, logs the file, and enqueues
    /// `next`. PostgreSQL does it all in one transaction. SQLite commits chunk by chunk, so that
    /// no write lock is held for long, and logs the file and enqueues `next` last; a file cut
    /// off halfway is written again in full by the retry (every write is an idempotent upsert).
    /// A chunk the database refuses is written record by record, and the records it refuses
    /// become rejected records. `Err(File)` when a chunk says the file broke off.
    async fn import_file(
        &self,
        file: &FileImport<'_>,
        chunks: &mut tokio::sync::mpsc::Receiver<Chunk>,
        next: Option<NewJob>,
    ) -> Result<Imported, WriteError>;
    /// Whether this path with this content was imported before.
    async fn file_imported(&self, path: &str, sha256: &str) -> StoreResult<bool>;
    /// Files of a batch imported so far.
    async fn import_progress(&self, batch: &str) -> StoreResult<i64>;
    /// Notes how many of a file's records have gone to the writer (seen at once, outside the
    /// file's transaction).
    async fn note_file_progress(
        &self,
        batch: &str,
        path: &str,
        done: i64,
        total: i64,
    ) -> StoreResult<()>;
    /// (path, done, total) of the file of `batch` being imported now, if any.
    async fn file_progress(&self, batch: &str) -> StoreResult<Option<FileProgress>>;
    /// The error of a dead import job of this batch, if any.
    async fn dead_import_error(&self, batch: &str) -> StoreResult<Option<String>>;
    async fn import_log(&self, batch: &str) -> StoreResult<Vec<ImportLogRow>>;
}

/// What an import did with a file's valid records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserted: u32,
    pub updated: u32,
    pub unchanged: u32,
}

impl Counts {
    /// `Some(true)`: inserted, `Some(false)`: updated, `None`: unchanged.
    pub fn add(&mut self, outcome: Option<bool>) {
        match outcome {
            Some(true) => self.inserted += 1,
            Some(false) => self.updated += 1,
            None => self.unchanged += 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Db(#[from] StoreError),
    /// The folder names an institution that has not been imported.
    #[error("未知的机构 {0}：请先导入 institutions.json")]
    UnknownInstitution(String),
    /// The file could not be read to its end while it was being written (it changed, or
    /// a disk error); nothing of it is kept where the engine allows (see the store).
    #[error("{0}")]
    File(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// One chunk of a file's valid records, or why the file could not be read to its end.
pub type Chunk = Result<Records, String>;

/// At most this many rejected records are kept in detail in the import log (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// A file being imported, as the import log records it.
#[derive(Debug, Clone, Copy)]
pub struct FileImport<'a> {
    pub batch: &'a str,
    pub source: &'a ImportSource,
    pub sha256: &'a str,
    /// Records in the file.
    pub total: usize,
    /// Records rejected while reading (invalid, duplicates): the first ones in detail...
    pub read_errors: &'a [RecordError],
    /// ...and how many in all.
    pub read_rejected: usize,
    /// The file's place in time (see [`crate::import::layout::source_seq`]): an older file never
    /// overwrites a row written by a newer one.
    pub source_seq: i32,
}

/// What writing a file did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    pub counts: Counts,
    /// Records the store rejected while writing (unknown references, another institution's
    /// rows, values the database refuses).
    pub errors: Vec<RecordError>,
}

impl Imported {
    /// Adds what one chunk did.
    pub fn add(&mut self, counts: Counts, errors: Vec<RecordError>) {
        self.counts.inserted += counts.inserted;
        self.counts.updated += counts.updated;
        self.counts.unchanged += counts.unchanged;
        self.errors.extend(errors);
    }
}

/// The import log's error list for a file: read and write rejections in file order, at most
/// [`MAX_REPORTED_ERRORS`] of them.
pub fn reported_errors(read: &[RecordError], written: &[RecordError]) -> Vec<RecordError> {
    let mut all: Vec<RecordError> = read.iter().chain(written).cloned().collect();
    all.sort_by_key(|e| e.record);
    all.truncate(MAX_REPORTED_ERRORS);
    all
}

/// What the writers of both engines need to know about the file they write: the institutions
/// known before it, the folder's institution, and its source sequence.
#[derive(Debug, Clone)]
pub struct WriteContext {
    pub institutions: HashMap<String, i64>,
    /// The institution whose folder the file sits in, checked to exist.
    pub folder: Option<(String, i64)>,
    pub source_seq: i32,
}

impl WriteContext {
    /// `Err` names the folder's institution when it is not known. A store raises it only when
    /// the file has records to write: a file logged as failed needs no context.
    ///
    /// A folder that is no known institution and does not stand where the layout puts one
    /// (`institutions/<code>/`, `pending/<date>/<code>/`) is just where the file was saved
    /// (`exports/customers.json`): each record's institution comes from its code's prefix.
    pub fn new(
        institutions: HashMap<String, i64>,
        folder: Option<&str>,
        path: &str,
        source_seq: i32,
    ) -> Result<Self, String> {
        let folder = match folder {
            Some(code) => match institutions.get(code) {
                Some(id) => Some((code.to_owned(), *id)),
                None if crate::domain::ownership::in_institution_slot(path) => {
                    return Err(code.to_owned());
                }
                None => None,
            },
            None => None,
        };
        Ok(Self {
            institutions,
            folder,
            source_seq,
        })
    }

    /// (code, id) of the institution a record with `code` belongs to; see
    /// [`crate::domain::ownership::owner`].
    pub fn owner(&self, code: &str) -> Result<(String, i64), String> {
        let folder = self.folder.as_ref().map(|(c, _)| c.as_str());
        let inst = crate::domain::ownership::owner(
            code,
            folder,
            self.institutions.keys().map(String::as_str),
        )?;
        Ok((inst.to_owned(), self.institutions[inst]))
    }

    /// The code of institution `id`.
    pub fn code_of(&self, id: i64) -> &str {
        self.institutions
            .iter()
            .find(|(_, v)| **v == id)
            .map_or("?", |(k, _)| k.as_str())
    }
}

/// The error for a record the database refused.
pub fn refused(index: usize, key: String, e: &StoreError) -> RecordError {
    let message = e
        .database_message()
        .map_or_else(|| e.to_string(), str::to_owned);
    RecordError {
        record: index,
        key: Some(key),
        field: "(record)".into(),
        message: format!(
            "数据库拒绝了这条记录：{}",
            crate::domain::privacy::mask_digit_runs(&message)
        ),
    }
}

/// One file of an import, as logged.
#[derive(Debug, Clone)]
pub struct ImportLogRow {
    pub path: String,
    pub total: i32,
    pub inserted: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub rejected: i32,
    pub errors: Vec<RecordError>,
}
