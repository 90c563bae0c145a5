//! `reminder.scan`: customers with a birthday in the window get a revisit and a greeting job,
//! both in one transaction. The revisit's unique key makes a repeated scan a no-op.

use chrono::Utc;
use revisit_jobs::{GreetingGenerate, ReminderScan};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    db::{customers, revisits},
    domain::birthday::{local_today, upcoming, window_month_days},
    queue::{EnqueueOptions, enqueue},
};

impl Handler for ReminderScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let settings = &ctx.app.settings;
        let today = self
            .today
            .unwrap_or_else(|| local_today(Utc::now(), settings.tz()));
        let days = settings.reminders.days_ahead;
        let wanted = match &self.institution {
            Some(code) => vec![code.clone()],
            None => settings.app.institutions.clone(),
        };
        let institutions = customers::existing_institutions(&ctx.app.pool, &wanted).await?;
        for missing in wanted.iter().filter(|w| !institutions.contains(w)) {
            warn!(institution = %missing, "institution not imported; skipped");
        }
        let candidates = customers::birthday_candidates(
            &ctx.app.pool,
            &institutions,
            &window_month_days(today, days),
        )
        .await?;

        let mut tx = ctx.app.pool.begin().await?;
        let mut created = 0;
        for c in &candidates {
            let Some(when) = upcoming(c.birthday, today, days) else {
                continue;
            };
            if let Some(id) =
                revisits::create(&mut tx, c.customer_id, "birthday", when, self.test_mode).await?
            {
                let job = GreetingGenerate { revisit_id: id };
                enqueue(
                    &mut tx,
                    settings,
                    &job,
                    EnqueueOptions::keyed(format!("revisit-{id}")),
                )
                .await?;
                created += 1;
            }
        }
        tx.commit().await?;
        info!(%today, days_ahead = days, test_mode = self.test_mode, candidates = candidates.len(), created, "birthday scan done");
        Ok(())
    }
}
