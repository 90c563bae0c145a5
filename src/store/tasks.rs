//! Scores and staff tasks: the answer to the satisfaction question a check-in asks (by reply or
//! by staff), and the task a low score opens for staff, in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::StoreResult;

/// A score recorded on a revisit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub revisit_id: i64,
    pub institution_id: i64,
    pub occasion_date: NaiveDate,
    /// The task the score opened, when it was low (none when one was open already).
    pub task_id: Option<i64>,
}

/// A task for staff, as lists show it (the name is masked before it leaves the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub institution_id: i64,
    pub institution: String,
    pub customer_code: String,
    pub name: String,
    pub revisit_id: Option<i64>,
    pub kind: String,
    pub note: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
    pub done_note: Option<String>,
}

impl TaskRow {
    pub fn masked(mut self) -> Self {
        self.name = crate::domain::privacy::mask_name(&self.name);
        self
    }
}

/// The columns of a task as lists show it, and its joins; both engines add their `WHERE`.
pub(crate) const TASK_SELECT: &str = "SELECT t.id, t.institution_id, i.code AS institution,
        c.code AS customer_code, c.name, t.revisit_id, t.kind, t.note, t.status, t.created_at,
        t.done_at, t.done_by, t.done_note
    FROM staff_tasks t JOIN customers c ON c.id = t.customer_id
    JOIN institutions i ON i.id = t.institution_id";

/// The note of the task a low score opens.
pub fn low_score_note(score: u8, occasion_date: NaiveDate) -> String {
    format!("客户对 {occasion_date} 的术后回访打了 {score} 分（满分 5 分），请尽快联系了解情况")
}

#[async_trait]
pub trait Tasks: Send + Sync {
    /// Records `score` on the latest real revisit sent to `phone` within `within_days` that
    /// asked for one and has none; a score at or below `low` opens a task. `None`: no question
    /// waits for this number's answer.
    async fn score_by_phone(
        &self,
        phone: &str,
        score: u8,
        within_days: u32,
        low: u8,
    ) -> StoreResult<Option<Scored>>;
    /// Records `score` on revisit `id` (staff, replacing an earlier one); `None` when it does
    /// not exist or asked for no score.
    async fn score_revisit(&self, id: i64, score: u8, low: u8) -> StoreResult<Option<Scored>>;
    /// Tasks, newest first: of one institution with `institution_id`, open ones only with
    /// `open_only`.
    async fn tasks(
        &self,
        institution_id: Option<i64>,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<TaskRow>>;
    /// One task, name masked.
    async fn task(&self, id: i64) -> StoreResult<Option<TaskRow>>;
    /// Closes an open task. Returns whether it was open.
    async fn finish_task(&self, id: i64, by: &str, note: Option<&str>) -> StoreResult<bool>;
}
