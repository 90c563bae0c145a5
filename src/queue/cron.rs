//! Cron producers: enqueue the periodic work of [`revisit_jobs::CRON_SCHEDULES`].
//!
//! Every worker daemon runs the producers, and each tick is still enqueued exactly once: a tick
//! is claimed by inserting `(schedule, fire_time)` into `cron_ticks`, and only the transaction
//! that inserted the row enqueues the job, in that same transaction. A second daemon's insert
//! waits on the first and then finds the row.
//!
//! Missed ticks (no daemon was running): with `cron.missed = "once"` the latest tick of each
//! schedule within the past 24 hours is claimed at start-up, so it runs once, late; with
//! `"skip"` it is dropped. Only a schedule that has claimed a tick before can miss one: the first
//! start of a fresh database catches nothing up.
//!
//! A claim that fails (the database restarting) is tried again with backoff until the
//! schedule's next tick, so a short outage at 09:00 does not cost the day's greetings. The job a
//! tick makes carries the tick's date (the scan's day, the report's day), so a tick claimed late
//! (a catch-up at start-up, a retry past midnight) works on the day it was meant for.

use std::str::FromStr;

use std::future::Future;

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
            let Some(tick) = latest_tick(&p.schedule, tz, now) else {
                continue;
            };
            // A tick from before this schedule ever ran here (a database created minutes ago, a
            // schedule new in this version) was not missed: catching it up would make the first
            // start of a fresh deployment send the day's messages for real at once.
            match app.store.cron_ran_before(p.def.name, tick).await {
                Ok(true) => claim_and_log(app, p, tz, tick, &mut stop).await,
                Ok(false) => info!(
                    schedule = p.def.name,
                    %tick,
                    "not catching up a tick from before this schedule first ran here"
                ),
                Err(e) => {
                    warn!(schedule = p.def.name, error = %e, "could not tell whether a tick was missed; not catching it up")
                }
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
                claim_and_log(app, p, tz, when, &mut stop).await;
            }
        }
    }
}

async fn claim_and_log(
    app: &App,
    p: &Parsed<'_>,
    tz: Tz,
    tick: DateTime<Utc>,
    stop: &mut watch::Receiver<bool>,
) {
    let def = p.def;
    // Worth retrying until the schedule's next tick; after that, the next tick does the work.
    let until = p
        .schedule
        .after(&tick.with_timezone(&tz))
        .next()
        .map_or(tick + Duration::hours(1), |t| t.with_timezone(&Utc));
    let outcome = claim_with_retry(
        || claim_tick(app, def, tz, tick),
        until,
        stop,
        |n, e, wait| {
            warn!(schedule = def.name, %tick, try_no = n, error = %e, retry_in_s = wait.as_secs(), "cron tick not claimed yet; trying again")
        },
    )
    .await;
    match outcome {
        Some(Ok(Some(job))) => {
            info!(schedule = def.name, %tick, job_id = %job, "cron tick enqueued")
        }
        Some(Ok(None)) => {}
        Some(Err(e)) => {
            error!(schedule = def.name, %tick, error = %e, "cron tick not enqueued before the next one; this tick is lost")
        }
        None => info!(schedule = def.name, %tick, "shutting down; cron tick left unclaimed"),
    }
}

/// Calls `claim` until it succeeds, backing off from 1 s to 60 s, while the next try would
/// still start before `until`. `None` when `stop` turned true first; the last error when time
/// ran out.
async fn claim_with_retry<T, E, F, Fut>(
    mut claim: F,
    until: DateTime<Utc>,
    stop: &mut watch::Receiver<bool>,
    mut on_retry: impl FnMut(u32, &E, std::time::Duration),
) -> Option<Result<T, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = std::time::Duration::from_secs(1);
    let mut n = 1;
    loop {
        let err = match claim().await {
            Ok(v) => return Some(Ok(v)),
            Err(e) => e,
        };
        if Utc::now() + Duration::from_std(wait).unwrap_or(Duration::MAX) >= until {
            return Some(Err(err));
        }
        on_retry(n, &err, wait);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(60));
        n += 1;
    }
}

/// Claims one tick and enqueues its job. Returns the job id, or `None` when another producer
/// had already claimed the tick.
pub async fn claim_tick(
    app: &App,
    def: &CronSchedule,
    tz: Tz,
    tick: DateTime<Utc>,
) -> Result<Option<String>, crate::store::StoreError> {
    let key = Some(format!("cron:{}:{}", def.name, tick.to_rfc3339()));
    let local_day = tick.with_timezone(&tz).date_naive();
    let job = tick_job(&app.settings, def.queue, local_day, key).ok_or_else(|| {
        crate::store::StoreError::protocol(format!(
            "cron schedule {} names queue {}, which has no default args",
            def.name, def.queue
        ))
    })?;
    app.store.claim_cron_tick(def.name, tick, job).await
}

/// The job of a tick on `local_day` (in the configured time zone): the scan of that day, the
/// report of the day before; the other kinds take their default args.
fn tick_job(
    settings: &Settings,
    queue: &str,
    local_day: chrono::NaiveDate,
    key: Option<String>,
) -> Option<NewJob> {
    use revisit_jobs::*;
    Some(match queue {
        q if let Some(occasion) = super::scans::occasion_of(q) => {
            let scope = ScanScope {
                today: Some(local_day),
                ..ScanScope::default()
            };
            let (mut job, _) = super::scans::scan_job(settings, occasion, scope);
            job.key = key;
            job
        }
        q if q == ImportScan::QUEUE => NewJob::of(settings, &ImportScan::default(), key),
        q if q == SystemHealth::QUEUE => NewJob::of(settings, &SystemHealth::default(), key),
        q if q == ReportDaily::QUEUE => NewJob::of(
            settings,
            &ReportDaily {
                date: local_day.pred_opt(),
            },
            key,
        ),
        q if q == JobsPrune::QUEUE => NewJob::of(settings, &JobsPrune::default(), key),
        q if q == ProjectionDispatch::QUEUE => {
            NewJob::of(settings, &ProjectionDispatch::default(), key)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use revisit_jobs::Job;

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
    fn every_schedule_has_a_job_and_it_carries_the_tick_s_day() {
        let settings = Settings::load_from(None, &[]).unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        for s in revisit_jobs::CRON_SCHEDULES {
            assert!(
                tick_job(&settings, s.queue, day, None).is_some(),
                "{}",
                s.name
            );
        }
        let scan = tick_job(&settings, revisit_jobs::ReminderScan::QUEUE, day, None).unwrap();
        let scan: revisit_jobs::ReminderScan = serde_json::from_slice(&scan.payload).unwrap();
        assert_eq!(scan.today, Some(day), "the scan works on the tick's day");
        let report = tick_job(&settings, revisit_jobs::ReportDaily::QUEUE, day, None).unwrap();
        let report: revisit_jobs::ReportDaily = serde_json::from_slice(&report.payload).unwrap();
        assert_eq!(
            report.date,
            chrono::NaiveDate::from_ymd_opt(2026, 2, 28),
            "the 08:00 report covers the day before the tick, however late it runs"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_claim_is_retried_until_the_next_tick() {
        let (_tx, mut stop) = watch::channel(false);
        let mut calls = 0;
        let got = claim_with_retry(
            || {
                calls += 1;
                let n = calls;
                async move { if n < 4 { Err("db restarting") } else { Ok(n) } }
            },
            Utc::now() + Duration::hours(1),
            &mut stop,
            |_, _, _| {},
        )
        .await;
        assert_eq!(got, Some(Ok(4)), "three short failures, then the claim");
        // With no time left before the next tick, the error is given up at once.
        let mut tries = 0;
        let got: Option<Result<(), &str>> = claim_with_retry(
            || {
                tries += 1;
                async { Err("down") }
            },
            Utc::now(),
            &mut stop,
            |_, _, _| {},
        )
        .await;
        assert_eq!((got, tries), (Some(Err("down")), 1));
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
