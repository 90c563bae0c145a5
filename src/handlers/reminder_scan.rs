//! `reminder.scan`: customers with a birthday (solar, or lunar if they keep one) in the window get a revisit and a greeting job,
//! all in one transaction. The revisit's unique key makes a repeated scan a no-op.

use revisit_jobs::{ReminderScan, ScanScope};

use super::{Handler, JobCtx, JobError, scan_scope};
use crate::{domain::birthday::BirthdayWindow, store::NewRevisit};

impl Handler for ReminderScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let scope = ScanScope {
            institution: self.institution.clone(),
            test_mode: self.test_mode,
            today: self.today,
        };
        let (today, institutions) = scan_scope::resolve(ctx, &scope).await?;
        let window = BirthdayWindow::new(today, ctx.app.settings.reminders.days_ahead);
        let candidates = ctx
            .app
            .store
            .birthday_candidates(&institutions, &window)
            .await?;
        let found: Vec<NewRevisit> = candidates
            .iter()
            .filter_map(|c| {
                window
                    .kept_on(c.birthday, c.lunar_birthday)
                    .map(|date| NewRevisit::birthday(c.customer_id, c.person_id, date))
            })
            .collect();
        scan_scope::create(ctx, "birthday", today, &scope, &found).await
    }
}
