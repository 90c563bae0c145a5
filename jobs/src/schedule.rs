//! The periodic work of the seed document, as cron schedules.
//!
//! Expressions have seconds first (`sec min hour day month weekday`) and are read in the configured
//! time zone (Asia/Shanghai by default). The producer that fires them lives in the worker; this is
//! only the table.

/// One periodic producer: what to enqueue, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSchedule {
    /// Stable name; part of the de-duplication key of every tick, so never rename one lightly.
    pub name: &'static str,
    /// Cron expression with seconds.
    pub expression: &'static str,
    /// Queue of the job each tick enqueues (its args are the kind's defaults).
    pub queue: &'static str,
    pub description: &'static str,
}

/// 每日回访 09:00, 增量导入检查 hourly, 健康检查 every 30 minutes, 日报生成 08:00, the
/// projections' change dispatch every minute, and the nightly clean-up of finished job rows at
/// 03:30.
pub const CRON_SCHEDULES: &[CronSchedule] = &[
    CronSchedule {
        name: "birthday-revisit",
        expression: "0 0 9 * * *",
        queue: crate::ReminderScan::QUEUE,
        description: "每日回访：查找即将生日的客户并生成回访话术",
    },
    CronSchedule {
        name: "checkin-revisit",
        expression: "0 0 10 * * *",
        queue: crate::CheckinScan::QUEUE,
        description: "术后回访：治疗后第 1、3、7、30 天等的关怀",
    },
    CronSchedule {
        name: "cycle-reminder",
        expression: "0 30 10 * * *",
        queue: crate::CycleScan::QUEUE,
        description: "疗程提醒：项目周期将到时提醒维养",
    },
    CronSchedule {
        name: "winback",
        expression: "0 0 11 * * *",
        queue: crate::WinbackScan::QUEUE,
        description: "沉睡唤醒：久未到店的客户",
    },
    CronSchedule {
        name: "incremental-import",
        expression: "0 0 * * * *",
        queue: crate::ImportScan::QUEUE,
        description: "增量导入检查：导入待处理的增量数据",
    },
    CronSchedule {
        name: "health-check",
        expression: "0 0,30 * * * *",
        queue: crate::SystemHealth::QUEUE,
        description: "健康检查：检查各存储的状态",
    },
    CronSchedule {
        name: "daily-report",
        expression: "0 0 8 * * *",
        queue: crate::ReportDaily::QUEUE,
        description: "日报生成：生成前一天的统计报告",
    },
    CronSchedule {
        name: "projection-dispatch",
        expression: "0 * * * * *",
        queue: crate::ProjectionDispatch::QUEUE,
        description: "投影同步：把主库的变更分发给分析库等投影",
    },
    CronSchedule {
        name: "job-cleanup",
        expression: "0 30 3 * * *",
        queue: crate::JobsPrune::QUEUE,
        description: "任务清理：删除超过保留期的已完成任务记录",
    },
];

use crate::Job;
