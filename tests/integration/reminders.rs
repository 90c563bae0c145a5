//! The birthday scan: the window across the new year and 29 February, and no second greeting.
//! On both backends.

use std::time::Duration;

use chrono::NaiveDate;
use revisit::store::{self, Backend};
use revisit_jobs::{GreetingGenerate, Job, ReminderScan};

use crate::harness::*;

crate::on_both_backends!(
    the_window_crosses_the_new_year_and_keeps_29_february_and_never_greets_twice
);

async fn scan(env: &TestEnv, today: NaiveDate) {
    let scan = ReminderScan {
        institution: None,
        test_mode: true,
        today: Some(today),
    };
    let id = store::enqueue(env.store(), &env.app.settings, &scan, None)
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(20), "the scan", || async {
        let (s, _) = env.store().job_state(&id).await.unwrap().unwrap();
        (s == "done").then_some(())
    })
    .await;
}

async fn revisits(env: &TestEnv) -> Vec<(String, NaiveDate)> {
    env.rows("SELECT c.code, r.occasion_date FROM revisits r JOIN customers c ON c.id = r.customer_id ORDER BY c.code, r.occasion_date")
        .await
}

async fn the_window_crosses_the_new_year_and_keeps_29_february_and_never_greets_twice(
    backend: Backend,
) {
    let env = TestEnv::new(backend, &[]).await;
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
    assert_eq!(
        env.jobs_of(GreetingGenerate::QUEUE).await.len(),
        all.len(),
        "one greeting job per revisit"
    );
    workers.stop().await;
}
