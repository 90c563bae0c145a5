//! `cycle.scan` (疗程提醒): a maintenance reminder for each treatment whose cycle
//! (`projects.cycle_days`) comes round in `followups.cycle_lead_days`, unless the customer has
//! had it again since.

use revisit_jobs::CycleScan;

use super::{Handler, JobCtx, JobError, scan_scope};
use crate::{
    domain::followup::{Occasion, cycle_reminder},
    store::NewRevisit,
};

impl Handler for CycleScan {
    async fn run(&self, ctx: &JobCtx<'_>) -> Result<(), JobError> {
        let (today, institutions) = scan_scope::resolve(ctx, &self.scope).await?;
        let lead = i64::from(ctx.app.settings.followups.cycle_lead_days);
        let treatments = ctx
            .app
            .store
            .treatments_coming_round(&institutions, today, lead)
            .await?;
        let found: Vec<NewRevisit> = treatments
            .into_iter()
            .filter_map(|t| {
                let due = cycle_reminder(t.order_date, i64::from(t.cycle_days?), lead, today)?;
                Some(NewRevisit {
                    customer_id: t.customer_id,
                    person_id: t.person_id,
                    occasion: Occasion::Cycle,
                    occasion_date: due,
                    order_number: Some(t.order_number),
                    item_code: Some(t.item_code),
                    day_offset: None,
                    asks_score: false,
                })
            })
            .collect();
        scan_scope::create(ctx, "cycle", today, &self.scope, &found).await
    }
}
