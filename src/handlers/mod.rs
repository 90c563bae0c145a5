//! One file per job kind: what a worker does with the args from `revisit-jobs`.
//!
//! A handler does one unit of work and says how it ended: done, failed for good (bad data, an
//! opted-out customer: never retried), or worth retrying (a store or the LLM is down). The loop
//! around it, with its backoff and bookkeeping, is in [`crate::queue::worker`].

pub mod alert_send;
mod checkin_scan;
mod cycle_scan;
mod greeting_generate;
mod import_file;
mod import_scan;
mod jobs_prune;
mod message_send;
mod noop;
mod projection_dispatch;
pub mod projection_rebuild;
mod projection_sync;
mod reminder_scan;
pub mod report_daily;
mod scan_scope;
mod system_health;
mod wecom_confirm;
mod winback_scan;

pub use system_health::{CheckResult, describe_lag, run_checks};

use std::{future::Future, time::Duration};

use revisit_jobs::Job;

use crate::app::App;

/// How a job attempt failed.
#[derive(Debug)]
pub enum JobError {
    /// Try again after the backoff (or `after`, when the peer said how long to wait).
    Retry {
        error: anyhow::Error,
        after: Option<Duration>,
    },
    /// Trying again will not help.
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn retry(error: impl Into<anyhow::Error>) -> Self {
        Self::Retry {
            error: error.into(),
            after: None,
        }
    }

    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(error.into())
    }
}

/// Waits at a shared rate limit, if there is one. A limit too busy to pass within a minute
/// sends the job back to the queue for when it should be free.
pub async fn through_gate(
    gate: Option<&crate::store::rate_limits::Gate>,
) -> Result<Option<crate::store::rate_limits::Pass>, JobError> {
    let Some(gate) = gate else {
        return Ok(None);
    };
    gate.enter().await.map(Some).map_err(|e| {
        let after = e
            .downcast_ref::<crate::store::rate_limits::Busy>()
            .map(|b| b.retry_after);
        JobError::Retry { error: e, after }
    })
}

/// A store error is retried when retrying can help (the store is restarting, another writer got
/// in the way); bad data is not: the job fails for good with the database's reason.
impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        let retryable = e.is_retryable();
        let words = e.kind().words();
        let e = anyhow::Error::new(e).context(words);
        if retryable {
            Self::retry(e)
        } else {
            Self::permanent(e)
        }
    }
}

/// What a handler knows about the attempt it runs.
pub struct JobCtx<'a> {
    pub app: &'a App,
    pub job_id: &'a str,
    /// 1-based.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// The work of one job kind.
pub trait Handler: Job {
    fn run(&self, ctx: &JobCtx<'_>) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when the job is dead (out of attempts, or failed permanently: `permanent`),
    /// to record the failure where people look for it (e.g. the revisit's status).
    fn on_dead(
        &self,
        _ctx: &JobCtx<'_>,
        _error: &str,
        _permanent: bool,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, StoreErrorKind};

    /// A database that is down is waited for; bad data fails the job for good, never retried.
    #[test]
    fn a_store_error_is_retried_only_when_retrying_can_help() {
        let down = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(JobError::from(down), JobError::Retry { .. }));
        let bad = StoreError::from(sqlx::Error::Decode("a status no revisit has".into()));
        assert_eq!(bad.kind(), StoreErrorKind::Data);
        match JobError::from(bad) {
            JobError::Permanent(e) => {
                assert!(
                    format!("{e:#}").starts_with("数据不符合数据库的规则"),
                    "{e:#}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
