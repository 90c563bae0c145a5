//! What the four revisit scans (`reminder.scan`, `checkin.scan`, `cycle.scan`, `winback.scan`)
//! share: the day and institutions they cover, and creating what they found under the frequency
//! cap.

use chrono::{NaiveDate, Utc};
use revisit_jobs::{GreetingGenerate, KindInfo, ScanScope};
use tracing::{info, warn};

use super::{JobCtx, JobError};
use crate::{domain::birthday::local_today, store::NewRevisit};

/// The scan's day and the institutions it covers (those imported; the others are logged).
pub(super) async fn resolve(
    ctx: &JobCtx<'_>,
    scope: &ScanScope,
) -> Result<(NaiveDate, Vec<String>), JobError> {
    let settings = &ctx.app.settings;
    let today = scope
        .today
        .unwrap_or_else(|| local_today(Utc::now(), settings.tz()));
    let wanted = match &scope.institution {
        Some(code) => vec![code.clone()],
        None => settings.app.institutions.clone(),
    };
    let institutions = ctx.app.store.existing_institutions(&wanted).await?;
    for missing in wanted.iter().filter(|w| !institutions.contains(w)) {
        warn!(institution = %missing, "institution not imported; skipped");
    }
    Ok((today, institutions))
}

/// Revisits created per transaction: the first greetings start while a large scan is still
/// creating the rest. A scan retried halfway finds the revisits it created and skips them.
const REVISITS_PER_TRANSACTION: usize = 100;

/// Creates the revisits found (each with its greeting job, a transaction per part), under the
/// frequency cap. A real scan while real sending is off (`revisit sending on` was never run, or
/// `off` since) runs in test mode: whatever asked for it, no customer is contacted.
pub(super) async fn create(
    ctx: &JobCtx<'_>,
    scan: &'static str,
    today: NaiveDate,
    scope: &ScanScope,
    found: &[NewRevisit],
) -> Result<(), JobError> {
    let settings = &ctx.app.settings;
    let attempts = settings
        .policy(&KindInfo::of::<GreetingGenerate>())
        .max_attempts as i32;
    let test_mode = scope.test_mode || !ctx.app.store.sending_live().await?;
    if test_mode && !scope.test_mode {
        info!(
            scan,
            "real sending is off (revisit sending on); this scan runs in test mode"
        );
    }
    let mut done = crate::store::Created::default();
    for part in found.chunks(REVISITS_PER_TRANSACTION) {
        let part = ctx
            .app
            .store
            .create_revisits(part, test_mode, attempts, settings.consent.cap())
            .await?;
        done.created += part.created;
        done.capped += part.capped;
    }
    info!(%today, scan, test_mode, found = found.len(), created = done.created, capped = done.capped, "revisit scan done");
    Ok(())
}
