//! `reminder.scan`: customers with a birthday (solar, or lunar if they keep one) in the window get a revisit and a greeting job,
//! all in one transaction. The revisit's unique key makes a repeated scan a no-op.

use chrono::Utc;
use revisit_jobs::{GreetingGenerate, KindInfo, ReminderScan};
use tracing::{info, warn};

use super::{Handler, JobCtx, JobError};
use crate::{
    domain::birthday::{BirthdayWindow, local_today},
    store::NewRevisit,
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
        let store = &ctx.app.store;
        let institutions = store.existing_institutions(&wanted).await?;
        for missing in wanted.iter().filter(|w| !institutions.contains(w)) {
            warn!(institution = %missing, "institution not imported; skipped");
        }
        let window = BirthdayWindow::new(today, days);
        let candidates = store.birthday_candidates(&institutions, &window).await?;
        let found: Vec<NewRevisit> = candidates
            .iter()
            .filter_map(|c| {
                window
                    .kept_on(c.birthday, c.lunar_birthday)
                    .map(|date| NewRevisit::birthday(c.customer_id, c.person_id, date))
            })
            .collect();
        let attempts = settings
            .policy(&KindInfo::of::<GreetingGenerate>())
            .max_attempts as i32;
        let done = store
            .create_revisits(&found, self.test_mode, attempts, settings.consent.cap())
            .await?;
        let (created, capped) = (done.created, done.capped);
        info!(%today, days_ahead = days, test_mode = self.test_mode, candidates = candidates.len(), created, capped, "birthday scan done");
        Ok(())
    }
}
