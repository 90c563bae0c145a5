//! Cron producers: several daemons, one enqueue per tick.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use revisit::{
    config::Backend,
    queue::cron::{claim_tick, run_producers},
};
use revisit_jobs::{CronSchedule, Job, SystemHealth};
use tokio::sync::watch;

use crate::harness::*;

const EVERY_SECOND: &[CronSchedule] = &[CronSchedule {
    name: "test-every-second",
    expression: "* * * * * *",
    queue: SystemHealth::QUEUE,
    description: "test",
}];

crate::on_both_backends!(
    two_producers_claiming_the_same_tick_enqueue_once,
    two_running_producers_enqueue_each_tick_exactly_once,
    a_fresh_database_catches_up_no_tick_but_a_missed_one_runs_once,
);

/// An hourly schedule whose latest tick is always in the past hour.
const HOURLY: &[CronSchedule] = &[CronSchedule {
    name: "test-hourly",
    expression: "0 0 * * * *",
    queue: SystemHealth::QUEUE,
    description: "test",
}];

/// Issue #25 item 1: the first start of a fresh deployment must not run the day's ticks that
/// fell before it existed (a birthday scan would send for real at once); a tick missed by a
/// deployment that ran before is still caught up, once.
async fn a_fresh_database_catches_up_no_tick_but_a_missed_one_runs_once(backend: Backend) {
    let env = TestEnv::new(backend, &[("REVISIT__CRON__ENABLED", "true")]).await;
    let run = |env: &TestEnv| {
        let app = env.app.clone();
        async move {
            let (stop, rx) = watch::channel(false);
            let producers = tokio::spawn(async move { run_producers(&app, HOURLY, rx).await });
            tokio::time::sleep(Duration::from_millis(700)).await;
            stop.send(true).unwrap();
            producers.await.unwrap();
        }
    };
    run(&env).await;
    assert!(
        env.jobs_of(SystemHealth::QUEUE).await.is_empty(),
        "a fresh database ran a tick from before it existed"
    );
    // The schedule ran here before (a day ago): the tick no daemon claimed is caught up, once.
    let earlier = Utc::now() - chrono::Duration::days(1);
    claim_tick(&env.app, &HOURLY[0], env.app.settings.tz(), earlier)
        .await
        .unwrap()
        .unwrap();
    run(&env).await;
    run(&env).await;
    assert_eq!(
        env.jobs_of(SystemHealth::QUEUE).await.len(),
        2,
        "yesterday's and the missed one"
    );
}

async fn two_producers_claiming_the_same_tick_enqueue_once(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let tick = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
    let (a, b) = tokio::join!(
        claim_tick(&env.app, &EVERY_SECOND[0], env.app.settings.tz(), tick),
        claim_tick(&env.app, &EVERY_SECOND[0], env.app.settings.tz(), tick)
    );
    let claimed = [a.unwrap(), b.unwrap()];
    assert_eq!(
        claimed.iter().filter(|c| c.is_some()).count(),
        1,
        "{claimed:?}"
    );
    assert_eq!(env.jobs_of(SystemHealth::QUEUE).await.len(), 1);
}

async fn two_running_producers_enqueue_each_tick_exactly_once(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let (stop, rx) = watch::channel(false);
    let a = {
        let app = env.app.clone();
        let rx = rx.clone();
        tokio::spawn(async move { run_producers(&app, EVERY_SECOND, rx).await })
    };
    let b = {
        let app = env.app.clone();
        tokio::spawn(async move { run_producers(&app, EVERY_SECOND, rx).await })
    };
    // A fresh database catches up no tick, so every tick here is a live one; a claim slowed by a
    // loaded machine may let one pass, which the next producer start would not repeat.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    stop.send(true).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    let ticks = env.count("SELECT count(*) FROM cron_ticks").await;
    let distinct = env
        .count("SELECT count(DISTINCT fire_time) FROM cron_ticks")
        .await;
    let jobs = env.jobs_of(SystemHealth::QUEUE).await.len() as i64;
    assert!(ticks >= 2, "only {ticks} ticks in 4.5 s");
    assert_eq!(ticks, distinct);
    assert_eq!(jobs, ticks, "one job per tick, however many producers");
}
