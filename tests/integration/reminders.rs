//! The birthday scan: the window across the new year and 29 February, and no second greeting.

use std::time::Duration;

use chrono::NaiveDate;
use revisit::queue::{EnqueueOptions, enqueue};
use revisit_jobs::{Job, ReminderScan};

use crate::harness::*;

async fn scan(env: &TestEnv, today: NaiveDate) {
    let mut conn = env.pool().acquire().await.unwrap();
    let scan = ReminderScan {
        institution: None,
        test_mode: true,
        today: Some(today),
    };
    let id = enqueue(
        &mut conn,
        &env.app.settings,
        &scan,
        EnqueueOptions::default(),
    )
    .await
    .unwrap()
    .unwrap();
    drop(conn);
    let pool = env.pool().clone();
    eventually(Duration::from_secs(20), "the scan", || {
        let pool = pool.clone();
        let id = id.clone();
        async move {
            let (s, _) = revisit::queue::admin::state_of(&pool, &id)
                .await
                .unwrap()
                .unwrap();
            (s == "done").then_some(())
        }
    })
    .await;
}

async fn revisits(env: &TestEnv) -> Vec<(String, NaiveDate)> {
    sqlx::query_as(
        "SELECT c.code, r.occasion_date FROM revisits r JOIN customers c ON c.id = r.customer_id ORDER BY c.code",
    )
    .fetch_all(env.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_window_crosses_the_new_year_and_keeps_29_february_and_never_greets_twice() {
    let env = TestEnv::new(&[]).await;
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[
                ("BJ-HA-001-C1", "张丽", "1990-01-02", "13800000001"),
                ("BJ-HA-001-C2", "王芳", "1990-12-27", "13800000002"),
                ("BJ-HA-001-C3", "李娜", "1992-02-29", "13800000003"),
                ("BJ-HA-001-C4", "赵敏", "1985-01-05", "13800000004"),
            ]),
        ),
    ]);
    import_tree(&env, dir.path()).await;
    let workers = env.start_workers(vec![ReminderScan::QUEUE]);
    let dec28 = NaiveDate::from_ymd_opt(2026, 12, 28).unwrap();
    scan(&env, dec28).await;
    scan(&env, dec28).await;
    assert_eq!(
        revisits(&env).await,
        vec![(
            "BJ-HA-001-C1".into(),
            NaiveDate::from_ymd_opt(2027, 1, 2).unwrap()
        )],
        "28 Dec + 7 days reaches 4 Jan, not 5 Jan; 27 Dec has passed; a second scan adds nothing"
    );
    scan(&env, NaiveDate::from_ymd_opt(2027, 2, 25).unwrap()).await;
    let all = revisits(&env).await;
    assert!(
        all.contains(&(
            "BJ-HA-001-C3".into(),
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        )),
        "a 29 February birthday is kept on 28 February in a common year: {all:?}"
    );
    let greetings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM apalis.jobs WHERE job_type = 'greeting.generate.v1'",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(greetings, all.len() as i64, "one greeting job per revisit");
    workers.stop().await;
}
