//! `alert.send`: one staff alert to the WeCom group robot. Held back by the robot's rate limit
//! (the retry waits for a token), retried when WeCom is busy, failed for good when refused.
//!
//! [`enqueue`] is how other handlers raise an alert: nothing happens when no robot is
//! configured, and an alert that cannot be enqueued is logged, never fails the caller's job.

use revisit_jobs::AlertSend;
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{app::App, notify::wecom_robot::RobotError, store::NewJob};

impl Handler for AlertSend {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let Some(robot) = &ctx.app.robot else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "这个 worker 没有配置企业微信机器人（alerts.wecom_robot_url）"
            )));
        };
        match robot.post(&self.text).await {
            Ok(()) => {
                info!(chars = self.text.chars().count(), "staff alert posted");
                Ok(())
            }
            Err(RobotError::Later { after, reason }) => Err(JobError::Retry {
                error: anyhow::anyhow!("告警尚未发出：{reason}"),
                after: Some(after),
            }),
            Err(refused @ RobotError::Refused(_)) => Err(JobError::permanent(refused)),
        }
    }
}

/// Enqueues a staff alert when a robot is configured.
pub async fn enqueue(app: &App, text: String) {
    if app.robot.is_none() {
        return;
    }
    let job = NewJob::of(&app.settings, &AlertSend { text }, None);
    if let Err(e) = app.store.enqueue(job).await {
        warn!(error = %e, "could not enqueue a staff alert");
    }
}
