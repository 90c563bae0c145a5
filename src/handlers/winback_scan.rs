//! `winback.scan` (沉睡唤醒): a message to each customer whose last completed visit was
//! `followups.winback_days` ago (within the catch-up days, so a long-lapsed chain is not
//! messaged all at once when the feature is turned on).

use chrono::Duration;
use revisit_jobs::WinbackScan;

use super::{Handler, JobCtx, JobError, scan_scope};
use crate::{
    domain::followup::{CATCH_UP_DAYS, Occasion, winback_due},
    store::NewRevisit,
};

impl Handler for WinbackScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let (today, institutions) = scan_scope::resolve(ctx, &self.scope).await?;
        let days = i64::from(ctx.app.settings.followups.winback_days);
        if days == 0 {
            return Ok(());
        }
        let to = today - Duration::days(days);
        let visits = ctx
            .app
            .store
            .last_visits_between(&institutions, to - Duration::days(CATCH_UP_DAYS), to)
            .await?;
        let found: Vec<NewRevisit> = visits
            .into_iter()
            .filter_map(|v| {
                Some(NewRevisit {
                    occasion_date: winback_due(v.last_visit, days, today)?,
                    customer_id: v.customer_id,
                    person_id: v.person_id,
                    occasion: Occasion::Winback,
                    order_number: None,
                    item_code: None,
                    day_offset: None,
                    asks_score: false,
                })
            })
            .collect();
        scan_scope::create(ctx, "winback", today, &self.scope, &found).await
    }
}
