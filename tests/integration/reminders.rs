//! The birthday scan: the window across the new year and 29 February, and no second greeting.
//! On both backends.

use std::time::Duration;

use chrono::NaiveDate;
use revisit::{config::Backend, store};
use revisit_jobs::{GreetingGenerate, Job, ReminderScan};

use crate::harness::*;

crate::on_both_backends!(
    the_window_crosses_the_new_year_and_keeps_29_february_and_never_greets_twice,
    a_person_at_two_institutions_gets_one_greeting_even_when_their_last_visit_moves,
    opting_out_at_one_institution_stops_greetings_from_every_institution,
    a_lunar_birthday_is_kept_on_its_day_this_year_instead_of_the_solar_one,
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
    let since = std::time::Instant::now();
    eventually(Duration::from_secs(20), "the scan", || async {
        let state = job_state_or_vanished(env, &id, since, Duration::from_secs(5)).await;
        (state.as_deref() == Some("done")).then_some(())
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

fn customer(code: &str, phone: &str, opted_out: bool) -> serde_json::Value {
    serde_json::json!({"customer_code": code, "opted_out": opted_out,
        "person": {"name": "周婷", "gender": "女", "birthday": "1990-03-10", "phone": phone}})
}

fn order(number: &str, customer: &str, date: &str) -> String {
    serde_json::json!([{"order_number": number, "customer_code": customer, "order_date": date,
        "items": [{"item_type": "project", "item_code": "PRJ-001", "item_name": "水光针", "quantity": 1,
                   "unit_price": 2800.0, "discount": 1.0, "actual_price": 2800.0}],
        "total_amount": 2800.0, "payment_method": "现金", "status": "completed"}])
    .to_string()
}

const PROJECTS: &str =
    r#"[{"project_code":"PRJ-001","name":"水光针","category":"注射","standard_price":2800.0}]"#;

async fn a_person_at_two_institutions_gets_one_greeting_even_when_their_last_visit_moves(
    backend: Backend,
) {
    let env = TestEnv::new(backend, &[]).await;
    let bj = serde_json::json!([customer("BJ-HA-001-C1", "13800000009", false)]).to_string();
    let sh = serde_json::json!([customer("SH-ML-002-C1", "13800000009", false)]).to_string();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("common/projects.json", PROJECTS),
        ("BJ-HA-001/customers.json", &bj),
        ("SH-ML-002/customers.json", &sh),
        (
            "BJ-HA-001/consumption_records.json",
            &order("BJ-HA-001-ORD-1", "BJ-HA-001-C1", "2026-01-01"),
        ),
    ]);
    import_tree(&env, dir.path()).await;
    let workers = env.start_workers(vec![ReminderScan::QUEUE]);
    let mar5 = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
    scan(&env, mar5).await;
    let birthday = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    assert_eq!(
        revisits(&env).await,
        vec![("BJ-HA-001-C1".into(), birthday)],
        "greeted by the institution visited last"
    );
    // The next day the person visits the other institution; the window still holds the birthday.
    let later = write_tree(&[(
        "SH-ML-002/consumption_records.json",
        &order("SH-ML-002-ORD-1", "SH-ML-002-C1", "2026-03-05"),
    )]);
    workers.stop().await;
    import_tree(&env, later.path()).await;
    let workers = env.start_workers(vec![ReminderScan::QUEUE]);
    scan(&env, NaiveDate::from_ymd_opt(2026, 3, 6).unwrap()).await;
    assert_eq!(
        revisits(&env).await,
        vec![("BJ-HA-001-C1".into(), birthday)],
        "one greeting per person and occasion, whichever institution they visited last"
    );
    assert_eq!(env.jobs_of(GreetingGenerate::QUEUE).await.len(), 1);
    workers.stop().await;
}

async fn opting_out_at_one_institution_stops_greetings_from_every_institution(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let bj = serde_json::json!([customer("BJ-HA-001-C1", "13800000009", false)]).to_string();
    let sh = serde_json::json!([customer("SH-ML-002-C1", "13800000009", true)]).to_string();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &bj),
        ("SH-ML-002/customers.json", &sh),
    ]);
    import_tree(&env, dir.path()).await;
    let workers = env.start_workers(vec![ReminderScan::QUEUE]);
    scan(&env, NaiveDate::from_ymd_opt(2026, 3, 5).unwrap()).await;
    assert_eq!(
        revisits(&env).await,
        vec![],
        "the person opted out at SH-ML-002, so BJ-HA-001 does not greet them either"
    );
    workers.stop().await;
}

fn lunar_customer(code: &str, phone: &str, solar: &str, lunar: Option<&str>) -> serde_json::Value {
    let mut person =
        serde_json::json!({"name": "陈静", "gender": "女", "birthday": solar, "phone": phone});
    if let Some(l) = lunar {
        person["lunar_birthday"] = l.into();
    }
    serde_json::json!({"customer_code": code, "person": person})
}

async fn a_lunar_birthday_is_kept_on_its_day_this_year_instead_of_the_solar_one(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let customers = serde_json::json!([
        // 正月初一 2026 is 17 February.
        lunar_customer(
            "BJ-HA-001-C1",
            "13800000011",
            "1990-03-01",
            Some("正月初一")
        ),
        // 腊月三十: lunar 2025's twelfth month has 29 days, so it is kept on 廿九, 16 February.
        lunar_customer("BJ-HA-001-C2", "13800000012", "1990-03-02", Some("12-30")),
        // 正月初二 is 18 February: outside 10–17 February.
        lunar_customer(
            "BJ-HA-001-C3",
            "13800000013",
            "1990-03-03",
            Some("正月初二")
        ),
        // A solar birthday in the window, but the person keeps 八月十五: not now.
        lunar_customer(
            "BJ-HA-001-C4",
            "13800000014",
            "1990-02-12",
            Some("八月十五")
        ),
        // A solar birthday in the window and no lunar one: greeted as before.
        lunar_customer("BJ-HA-001-C5", "13800000015", "1990-02-12", None),
    ])
    .to_string();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &customers),
    ]);
    import_tree(&env, dir.path()).await;
    let workers = env.start_workers(vec![ReminderScan::QUEUE]);
    scan(&env, NaiveDate::from_ymd_opt(2026, 2, 10).unwrap()).await;
    let day = |d| NaiveDate::from_ymd_opt(2026, 2, d).unwrap();
    assert_eq!(
        revisits(&env).await,
        vec![
            ("BJ-HA-001-C1".into(), day(17)),
            ("BJ-HA-001-C2".into(), day(16)),
            ("BJ-HA-001-C5".into(), day(12)),
        ]
    );
    // 中秋 2026 is 25 September: the person who keeps 八月十五 is greeted then, once.
    scan(&env, NaiveDate::from_ymd_opt(2026, 9, 20).unwrap()).await;
    scan(&env, NaiveDate::from_ymd_opt(2026, 9, 21).unwrap()).await;
    let all = revisits(&env).await;
    assert!(
        all.contains(&(
            "BJ-HA-001-C4".into(),
            NaiveDate::from_ymd_opt(2026, 9, 25).unwrap()
        )),
        "{all:?}"
    );
    assert_eq!(all.len(), 4, "{all:?}");
    workers.stop().await;
}
