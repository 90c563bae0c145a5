//! Rows and results both stores return.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use revisit_jobs::ImportSource;
use serde::Serialize;

use crate::domain::records::{RecordError, Records};

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
    Db(#[from] sqlx::Error),
    /// The folder names an institution that has not been imported.
    #[error("未知的机构 {0}：请先导入 institutions.json")]
    UnknownInstitution(String),
    /// The file could not be read to its end while it was being written (it changed, or
    /// a disk error); nothing of it is kept where the engine allows (see the store).
    #[error("{0}")]
    File(String),
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

/// A database error that retrying cannot fix: a constraint the record breaks, or a value the
/// engine refuses (PostgreSQL's SQLSTATE classes 22, data exception, and 23; SQLite's
/// constraint, too-big and mismatch results).
pub fn is_data_error(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            if !matches!(db.kind(), ErrorKind::Other) {
                return true; // unique, foreign key, not null, check
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return pg.code().starts_with("22") || pg.code().starts_with("23");
            }
            // SQLite's extended result code; its low byte is the primary one.
            db.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 18..=20 | 25))
        }
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// The error for a record the database refused.
pub fn refused(index: usize, key: String, e: &sqlx::Error) -> RecordError {
    let message = match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
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

/// A job's stored error as people read it: without the type name apalis puts in front of a
/// permanent failure ("AbortError: ...").
pub fn readable_job_error(e: String) -> String {
    e.strip_prefix("AbortError: ")
        .map(str::to_owned)
        .unwrap_or(e)
}

/// What one page of change dispatch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Change rows taken (and deleted).
    pub changes: u64,
    /// Sync jobs enqueued.
    pub jobs: u64,
}

/// What a projection still has to receive: changes not dispatched yet (every projection's) and
/// its sync jobs not finished, counted in entity keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionLag {
    pub undispatched: i64,
    pub in_jobs: i64,
    /// When the oldest of those changes was made.
    pub oldest: Option<DateTime<Utc>>,
}

impl ProjectionLag {
    pub fn total(&self) -> i64 {
        self.undispatched + self.in_jobs
    }
}

/// What a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub done_jobs: u64,
    pub dead_jobs: u64,
    pub cron_ticks: u64,
    pub health_checks: u64,
    /// Progress notes of files, left behind only when a note raced its file's end.
    pub progress_notes: u64,
    /// Rows of worker processes unseen for the history's retention (at least a day, so that a
    /// live worker's row is never taken for a dead one's).
    pub dead_workers: u64,
}

/// The least time a worker row must have been unseen before it is pruned.
pub const DEAD_WORKER_FLOOR: std::time::Duration = std::time::Duration::from_secs(86_400);

/// A job state as the CLI shows it. Rows of the job table map to these states:
/// - pending: `Pending`, or `Failed` with attempts left (waiting for its `run_at`, the stored backoff);
/// - running: `Queued` (fetched by a worker) or `Running`;
/// - done: `Done`;
/// - failed (dead): `Killed` (a permanent failure, a crash loop, or cancelled by hand), or `Failed`
///   with no attempts left. Kept with the last error until retried by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    /// The SQL condition on a job row's columns (the same in both dialects).
    pub fn condition(self) -> &'static str {
        match self {
            Self::Pending => {
                "(status = 'Pending' OR (status = 'Failed' AND attempts < max_attempts))"
            }
            Self::Running => "status IN ('Queued', 'Running')",
            Self::Done => "status = 'Done'",
            Self::Failed => {
                "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))"
            }
        }
    }
}

/// A job row's state as staff read it.
pub fn job_state_label(state: &str) -> &str {
    match state {
        "pending" => "等待中",
        "running" => "运行中",
        "done" => "已完成",
        "failed" => "已失败",
        other => other,
    }
}

/// SQL naming a job row's state (`pending`, `running`, `done`, `failed`).
pub const STATE_CASE: &str = "CASE
    WHEN status = 'Done' THEN 'done'
    WHEN status IN ('Queued', 'Running') THEN 'running'
    WHEN status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts) THEN 'failed'
    ELSE 'pending' END";

#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub lock_by: Option<String>,
    pub last_error: Option<String>,
}

use crate::domain::followup::Occasion;

/// A customer whose stored birthday (solar, or lunar when they keep one) may fall in the window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BirthdayCandidate {
    pub customer_id: i64,
    pub person_id: i64,
    pub birthday: Option<NaiveDate>,
    /// [`crate::domain::lunar::LunarBirthday::code`].
    pub lunar_birthday: Option<i16>,
}

/// A revisit to create: the customer it is made for (the institution they visited last), the
/// person it is unique for, the occasion and its date, and what a follow-up is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevisit {
    pub customer_id: i64,
    pub person_id: i64,
    pub occasion: Occasion,
    pub occasion_date: NaiveDate,
    /// The order and item (project) a check-in or reminder follows.
    pub order_number: Option<String>,
    pub item_code: Option<String>,
    /// Days after the treatment, for a check-in.
    pub day_offset: Option<i32>,
    /// The message asks for a score of 1–5 (one check-in of a treatment).
    pub asks_score: bool,
}

impl NewRevisit {
    pub fn birthday(customer_id: i64, person_id: i64, occasion_date: NaiveDate) -> Self {
        Self {
            customer_id,
            person_id,
            occasion: Occasion::Birthday,
            occasion_date,
            order_number: None,
            item_code: None,
            day_offset: None,
            asks_score: false,
        }
    }
}

/// What creating revisits did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Created {
    pub created: u32,
    /// Left for a later day by the frequency cap.
    pub capped: u32,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Revisit {
    pub id: i64,
    pub customer_id: i64,
    pub occasion: String,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: String,
    pub message: Option<String>,
    pub generated_by: Option<String>,
    pub model: Option<String>,
    pub channel: Option<String>,
    pub send_key: String,
    pub send_attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub person_id: i64,
    /// An earlier delivery try was cut off and may have arrived; a person should check.
    pub delivery_uncertain: bool,
    /// `pending` while a real message waits for staff approval; `approved`, `rejected`; NULL
    /// when none was asked for.
    pub approval: Option<String>,
    /// What a follow-up is about (see [`NewRevisit`]).
    pub order_number: Option<String>,
    pub item_code: Option<String>,
    pub day_offset: Option<i32>,
    pub asks_score: bool,
    pub score: Option<i16>,
    /// The channel's reference of a submitted message (a WeCom broadcast task's msgid).
    pub channel_ref: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

/// Whom a message may go to.
#[derive(Debug, Clone)]
pub enum Recipient {
    Reachable(crate::domain::outgoing::Outgoing),
    /// The person asked not to be contacted at all (`opted_out` at any institution), or the
    /// customer is gone.
    OptedOut,
    /// The number is suppressed for this channel (the suppression's channel: it or `*`).
    Unsubscribed {
        channel: String,
        source: String,
    },
}

/// (institution code, customer code, name, phone, opted out anywhere, the suppression's channel
/// and source if any) of a revisit's customer, as both engines read it.
/// What the recipient query reads: the customer, whether they opted out anywhere, the
/// suppression of their number for the channel (its channel and source), their WeCom contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RecipientRow {
    pub institution: String,
    pub customer: String,
    pub name: String,
    pub phone: String,
    pub opted_out: bool,
    pub suppressed: Option<String>,
    pub source: Option<String>,
    pub wecom_external_userid: Option<String>,
    pub wecom_userid: Option<String>,
}

/// The recipient query's columns and joins, with `$1`/`?1` the customer and `$2`/`?2` the
/// channel written by each engine.
pub(crate) const RECIPIENT_SELECT: &str = "SELECT i.code AS institution, c.code AS customer,
        c.name, p.phone,
        EXISTS (SELECT 1 FROM customers o WHERE o.person_id = p.id AND o.opted_out) AS opted_out,
        s.channel AS suppressed, s.source, c.wecom_external_userid, c.wecom_userid
    FROM customers c JOIN persons p ON p.id = c.person_id
    JOIN institutions i ON i.id = c.institution_id";

impl Recipient {
    pub(crate) fn of(r: &Revisit, row: Option<RecipientRow>) -> Self {
        match row {
            None => Self::OptedOut,
            Some(row) if row.opted_out => Self::OptedOut,
            Some(RecipientRow {
                suppressed: Some(channel),
                source,
                ..
            }) => Self::Unsubscribed {
                channel,
                source: source.unwrap_or_default(),
            },
            Some(row) => Self::Reachable(crate::domain::outgoing::Outgoing {
                revisit_id: r.id,
                send_key: r.send_key.clone(),
                institution_code: row.institution,
                customer_code: row.customer,
                name: row.name,
                phone: row.phone,
                occasion: r.occasion.clone(),
                occasion_date: r.occasion_date,
                message: r.message.clone().unwrap_or_default(),
                wecom_external_userid: row.wecom_external_userid,
                wecom_userid: row.wecom_userid,
            }),
        }
    }
}

/// A generated greeting to save.
#[derive(Debug, Clone, Copy)]
pub struct SavedGreeting<'a> {
    pub revisit_id: i64,
    pub message: &'a str,
    pub generated_by: &'a str,
    pub model: Option<&'a str>,
    pub channel: &'a str,
    /// What the compliance check did (a rewrite, the template instead), if anything.
    pub compliance: Option<&'a str>,
    /// Not before this time (quiet hours); at once when `None`.
    pub send_at: Option<DateTime<Utc>>,
    /// The institution wants a person to approve the message first: it is saved waiting, and
    /// its sending is enqueued by the approval.
    pub needs_approval: bool,
}

/// The columns of a [`RevisitView`] and their joins; each query adds its `WHERE` (the same SQL on
/// both engines).
pub(crate) const REVISIT_VIEW_SELECT: &str = "SELECT r.id, i.code AS institution,
        c.code AS customer_code, c.name, p.phone, r.occasion, r.occasion_date, r.test_mode,
        r.status, r.generated_by, r.message, r.last_error
    FROM revisits r JOIN customers c ON c.id = r.customer_id
    JOIN persons p ON p.id = c.person_id JOIN institutions i ON i.id = c.institution_id";

/// A revisit with the customer's masked identity, for the CLI and the demo.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct RevisitView {
    pub id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    pub occasion: String,
    pub occasion_date: NaiveDate,
    pub test_mode: bool,
    pub status: String,
    pub generated_by: Option<String>,
    pub message: Option<String>,
    pub last_error: Option<String>,
}

impl RevisitView {
    pub fn masked(mut self) -> Self {
        self.name = crate::domain::privacy::mask_name(&self.name);
        self.phone = crate::domain::privacy::mask_phone(&self.phone);
        self
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

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct InstitutionDay {
    pub code: String,
    pub name: String,
    pub created: i64,
    pub sent: i64,
    pub test_shown: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Waiting for a person: staff approval, or a WeCom broadcast task not confirmed yet.
    pub awaiting_staff: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DailyReport {
    pub date: NaiveDate,
    pub institutions: Vec<InstitutionDay>,
    pub import_files: i64,
    pub import_inserted: i64,
    pub import_updated: i64,
    pub import_rejected: i64,
    pub new_customers: i64,
    pub dead_jobs: i64,
}

impl DailyReport {
    /// The report as clinic staff read it.
    pub fn render(&self) -> String {
        let mut s = format!("【回访日报】{}\n", self.date.format("%Y年%m月%d日"));
        for i in &self.institutions {
            let awaiting = if i.awaiting_staff > 0 {
                format!("，待员工审批或确认 {} 条", i.awaiting_staff)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "· {}（{}）：新建回访 {} 条，已发送 {} 条，测试展示 {} 条，失败 {} 条，跳过 {} 条{awaiting}\n",
                i.name, i.code, i.created, i.sent, i.test_shown, i.failed, i.skipped
            ));
        }
        s.push_str(&format!(
            "· 数据导入：{} 个文件，新增 {} 条，更新 {} 条，拒绝 {} 条；新客户 {} 位\n",
            self.import_files,
            self.import_inserted,
            self.import_updated,
            self.import_rejected,
            self.new_customers
        ));
        if self.dead_jobs > 0 {
            s.push_str(&format!(
                "· ⚠️ 失败任务 {} 个，请用 `revisit jobs list --status failed` 查看并重试\n",
                self.dead_jobs
            ));
        } else {
            s.push_str("· 任务运行正常，无失败任务\n");
        }
        s
    }
}
