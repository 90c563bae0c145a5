//! Cron producers: enqueue the periodic work of [`revisit_jobs::CRON_SCHEDULES`].
//!
//! Every worker daemon runs the producers, and each tick is still enqueued exactly once: a tick
//! is claimed by inserting `(schedule, fire_time)` into `cron_ticks`, and only the transaction
//! that inserted the row enqueues the job, in that same transaction. A second daemon's insert
//! waits on the first and then finds the row.
//!
//! Missed ticks (no daemon was running): with `cron.missed = "once"` the latest tick of each
//! schedule within the past 24 hours is claimed at start-up, so it runs once, late; with
//! `"skip"` it is dropped.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use revisit_jobs::CronSchedule;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::{
    app::App,
    config::{MissedTicks, Settings},
    store::NewJob,
};

/// A schedule with its parsed expression.
struct Parsed<'a> {
    def: &'a CronSchedule,
    schedule: cron::Schedule,
}

fn parse(schedules: &[CronSchedule]) -> anyhow::Result<Vec<Parsed<'_>>> {
    schedules
        .iter()
        .map(|def| {
            cron::Schedule::from_str(def.expression)
                .map(|schedule| Parsed { def, schedule })
                .map_err(|e| anyhow::anyhow!("cron schedule {}: {e}", def.name))
        })
        .collect()
}

/// The latest tick at or before `now`, looking back at most 24 hours.
fn latest_tick(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let from = (now - Duration::hours(24)).with_timezone(&tz);
    schedule
        .after(&from)
        .take_while(|t| t.with_timezone(&Utc) <= now)
        .last()
        .map(|t| t.with_timezone(&Utc))
}

/// Runs the producers until `stop` turns true.
pub async fn run_producers(app: &App, schedules: &[CronSchedule], mut stop: watch::Receiver<bool>) {
    let parsed = match parse(schedules) {
        Ok(p) => p,
        Err(e) => {
            error!(error = %e, "cron producers not started");
            return;
        }
    };
    let tz = app.settings.tz();
    if app.settings.cron.missed == MissedTicks::Once {
        let now = Utc::now();
        for p in &parsed {
            if let Some(tick) = latest_tick(&p.schedule, tz, now) {
                claim_and_log(app, p.def, tick).await;
            }
        }
    }
    loop {
        let now = Utc::now();
        let next = parsed
            .iter()
            .filter_map(|p| {
                p.schedule
                    .after(&now.with_timezone(&tz))
                    .next()
                    .map(|t| (t.with_timezone(&Utc), p))
            })
            .min_by_key(|(t, _)| *t);
        let Some((when, _)) = next else {
            warn!("no cron schedule has a future tick");
            return;
        };
        let wait = (when - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for p in &parsed {
            if p.schedule
                .after(&(when - Duration::seconds(1)).with_timezone(&tz))
                .next()
                .map(|t| t.with_timezone(&Utc))
                == Some(when)
            {
                claim_and_log(app, p.def, when).await;
            }
        }
    }
}

async fn claim_and_log(app: &App, def: &CronSchedule, tick: DateTime<Utc>) {
    match claim_tick(app, def, tick).await {
        Ok(Some(job)) => info!(schedule = def.name, %tick, job_id = %job, "cron tick enqueued"),
        Ok(None) => {}
        Err(e) => error!(schedule = def.name, %tick, error = %e, "cron tick not enqueued"),
    }
}

/// Claims one tick and enqueues its job. Returns the job id, or `None` when another producer
/// had already claimed the tick.
pub async fn claim_tick(
    app: &App,
    def: &CronSchedule,
    tick: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    let key = Some(format!("cron:{}:{}", def.name, tick.to_rfc3339()));
    let job = default_job(&app.settings, def.queue, key).ok_or_else(|| {
        sqlx::Error::Protocol(format!(
            "cron schedule {} names queue {}, which has no default args",
            def.name, def.queue
        ))
    })?;
    app.store.claim_cron_tick(def.name, tick, job).await
}

/// The job of a queue with its default args.
fn default_job(settings: &Settings, queue: &str, key: Option<String>) -> Option<NewJob> {
    use revisit_jobs::*;
    Some(match queue {
        q if q == ReminderScan::QUEUE => NewJob::of(settings, &ReminderScan::default(), key),
        q if q == ImportScan::QUEUE => NewJob::of(settings, &ImportScan::default(), key),
        q if q == SystemHealth::QUEUE => NewJob::of(settings, &SystemHealth::default(), key),
        q if q == ReportDaily::QUEUE => NewJob::of(settings, &ReportDaily::default(), key),
        q if q == JobsPrune::QUEUE => NewJob::of(settings, &JobsPrune::default(), key),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn schedules_parse_and_fire_in_shanghai_time() {
        let parsed = parse(revisit_jobs::CRON_SCHEDULES).unwrap();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let birthday = parsed
            .iter()
            .find(|p| p.def.name == "birthday-revisit")
            .unwrap();
        // 00:30 UTC is 08:30 in Shanghai: the next 09:00 there is 01:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 0, 30, 0).unwrap();
        let next = birthday
            .schedule
            .after(&now.with_timezone(&tz))
            .next()
            .unwrap();
        assert_eq!(
            next.with_timezone(&Utc),
            Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap()
        );
    }

    #[test]
    fn every_schedule_has_a_default_job() {
        let settings = Settings::load_from(None, &[]).unwrap();
        for s in revisit_jobs::CRON_SCHEDULES {
            assert!(
                default_job(&settings, s.queue, None).is_some(),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn latest_tick_finds_the_missed_one() {
        let parsed = parse(revisit_jobs::CRON_SCHEDULES).unwrap();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let report = parsed
            .iter()
            .find(|p| p.def.name == "daily-report")
            .unwrap();
        // 10:00 Shanghai: today's 08:00 tick was missed.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 2, 0, 0).unwrap();
        assert_eq!(
            latest_tick(&report.schedule, tz, now),
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap())
        );
    }
}
