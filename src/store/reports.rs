//! Reports and health: the daily report, the dashboard's facts from the primary store, and the
//! health checks workers record.

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

use super::StoreResult;
use crate::domain::dashboard::{DashboardFacts, Window};

/// The latest health check a worker recorded: when, and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRecord {
    pub checked_at: chrono::DateTime<chrono::Utc>,
    pub results: serde_json::Value,
}

#[async_trait]
pub trait Reports: Send + Sync {
    async fn daily_report(&self, date: NaiveDate, tz: Tz) -> StoreResult<DailyReport>;
    /// The dashboard's facts for `window`, computed from the primary store.
    async fn dashboard_facts(&self, window: &Window) -> StoreResult<DashboardFacts>;
    async fn save_report(&self, report: &DailyReport, text: &str) -> StoreResult<()>;
    async fn record_health(&self, healthy: bool, results: serde_json::Value) -> StoreResult<()>;
    /// The latest check a worker recorded (`system.health`): when, and its lines.
    async fn latest_health(&self) -> StoreResult<Option<HealthRecord>>;
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
