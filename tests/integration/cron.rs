//! Cron producers: several daemons, one enqueue per tick.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use revisit::queue::cron::{claim_tick, run_producers};
use revisit_jobs::{CronSchedule, Job, SystemHealth};
use tokio::sync::watch;

use crate::harness::*;

const EVERY_SECOND: &[CronSchedule] = &[CronSchedule {
    name: "test-every-second",
    expression: "* * * * * *",
    queue: SystemHealth::QUEUE,
    description: "test",
}];

#[tokio::test]
async fn two_producers_claiming_the_same_tick_enqueue_once() {
    let env = TestEnv::new(&[]).await;
    let tick = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
    let (a, b) = tokio::join!(
        claim_tick(&env.app, &EVERY_SECOND[0], tick),
        claim_tick(&env.app, &EVERY_SECOND[0], tick)
    );
    let claimed = [a.unwrap(), b.unwrap()];
    assert_eq!(
        claimed.iter().filter(|c| c.is_some()).count(),
        1,
        "{claimed:?}"
    );
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(jobs, 1);
}

#[tokio::test]
async fn two_running_producers_enqueue_each_tick_exactly_once() {
    let env = TestEnv::new(&[]).await;
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
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stop.send(true).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    let (ticks, distinct, jobs): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM cron_ticks), (SELECT count(DISTINCT fire_time) FROM cron_ticks),
                (SELECT count(*) FROM apalis.jobs WHERE job_type = $1)",
    )
    .bind(SystemHealth::QUEUE)
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert!(ticks >= 3, "only {ticks} ticks in 3.5 s");
    assert_eq!(ticks, distinct);
    assert_eq!(jobs, ticks, "one job per tick, however many producers");
}
