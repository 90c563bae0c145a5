//! `checkin.scan` (术后回访): a check-in for each treatment whose check-in day has come (the
//! project's `followup_days`, or its category's defaults), within the catch-up days.

use std::collections::BTreeSet;

use chrono::Duration;
use revisit_jobs::CheckinScan;

use super::{Handler, JobCtx, JobError, scan_scope};
use crate::{
    domain::followup::{
        CATCH_UP_DAYS, Occasion, all_default_followup_days, asks_score, checkin_days, checkin_due,
        parse_days,
    },
    store::NewRevisit,
};

impl Handler for CheckinScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let (today, institutions) = scan_scope::resolve(ctx, &self.scope).await?;
        let store = &ctx.app.store;
        let satisfaction_day = i64::from(ctx.app.settings.followups.satisfaction_day);
        // Every check-in day any project may use, and so every treatment date to read.
        let mut days: BTreeSet<i64> = all_default_followup_days().collect();
        for text in store.project_followup_days().await? {
            days.extend(parse_days(&text).unwrap_or_default());
        }
        let dates: Vec<_> = days
            .iter()
            .flat_map(|d| (0..=CATCH_UP_DAYS).map(move |k| today - Duration::days(d + k)))
            .collect();
        let treatments = store.treatments_on(&institutions, &dates).await?;
        let found: Vec<NewRevisit> = treatments
            .into_iter()
            .filter_map(|t| {
                let days = checkin_days(t.followup_days.as_deref(), t.category.as_deref());
                let (due, offset) = checkin_due(t.order_date, &days, today)?;
                let asks = asks_score(&days, offset, satisfaction_day);
                Some(NewRevisit {
                    customer_id: t.customer_id,
                    person_id: t.person_id,
                    occasion: Occasion::Checkin,
                    occasion_date: due,
                    order_number: Some(t.order_number),
                    item_code: Some(t.item_code),
                    day_offset: Some(offset as i32),
                    asks_score: asks,
                })
            })
            .collect();
        scan_scope::create(ctx, "checkin", today, &self.scope, &found).await
    }
}
