//! Import: bad records are named by file, record and field; the valid ones land; a second
//! import of the same files changes nothing.

use revisit::domain::records::RecordError;
use revisit_jobs::Job;

use crate::harness::*;

#[derive(sqlx::FromRow)]
struct Log {
    path: String,
    inserted: i32,
    updated: i32,
    unchanged: i32,
    rejected: i32,
    errors: sqlx::types::Json<Vec<RecordError>>,
}

async fn logs(env: &TestEnv, batch: &str) -> Vec<Log> {
    sqlx::query_as("SELECT path, inserted, updated, unchanged, rejected, errors FROM import_log WHERE batch = $1 ORDER BY id")
        .bind(batch)
        .fetch_all(env.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_records_are_reported_and_valid_ones_land_and_reimport_changes_nothing() {
    let env = TestEnv::new(&[]).await;
    let customers = r#"[
      {"customer_code":"BJ-HA-001-C1","person":{"name":"张丽","gender":"女","birthday":"1990-05-15","phone":"13800138000"}},
      {"customer_code":"BJ-HA-001-C2","person":{"name":"王芳","gender":"女","birthday":"1990-02-30","phone":"13800138001"}},
      {"customer_code":"BJ-HA-001-C3","person":{"gender":"女","birthday":"1991-01-01","phone":"13800138002"}},
      {"customer_code":"BJ-HA-001-C4","person":{"name":"赵敏","gender":"女","birthday":"1992-03-03","phone":"13800138003"}}
    ]"#;
    let records = r#"[
      {"order_number":"O-1","customer_code":"BJ-HA-001-C1","order_date":"2026-01-15","total_amount":2520.0,
       "items":[{"item_type":"project","item_code":"PRJ-001","item_name":"水光针","quantity":1,"unit_price":2800.0,"discount":0.9,"actual_price":2520.0,"doctor_code":"DOC-1"}]},
      {"order_number":"O-2","customer_code":"BJ-HA-001-C9","order_date":"2026-01-16","total_amount":100.0,
       "items":[{"item_type":"product","item_code":"PRD-001","item_name":"面膜","quantity":1,"unit_price":100.0,"actual_price":100.0}]},
      {"order_number":"O-3","customer_code":"BJ-HA-001-C4","order_date":"2026-13-01","total_amount":100.0,
       "items":[{"item_type":"product","item_code":"PRD-001","item_name":"面膜","quantity":1,"unit_price":100.0,"actual_price":100.0}]}
    ]"#;
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("common/doctors.json", DOCTORS),
        ("BJ-HA-001/customers.json", customers),
        ("BJ-HA-001/consumption_records.json", records),
    ]);
    let batch = import_tree(&env, dir.path()).await;
    let logs1 = logs(&env, &batch).await;
    let cust = logs1
        .iter()
        .find(|l| l.path.ends_with("customers.json"))
        .unwrap();
    assert_eq!((cust.inserted, cust.rejected), (2, 2));
    let fields: Vec<(usize, &str)> = cust
        .errors
        .iter()
        .map(|e| (e.record, e.field.as_str()))
        .collect();
    assert_eq!(fields, vec![(1, "person.birthday"), (2, "person.name")]);
    assert_eq!(cust.errors[0].key.as_deref(), Some("BJ-HA-001-C2"));
    let cons = logs1
        .iter()
        .find(|l| l.path.ends_with("consumption_records.json"))
        .unwrap();
    assert_eq!((cons.inserted, cons.rejected), (1, 2));
    let fields: Vec<(usize, &str)> = cons
        .errors
        .iter()
        .map(|e| (e.record, e.field.as_str()))
        .collect();
    assert_eq!(fields, vec![(1, "customer_code"), (2, "order_date")]);
    assert!(
        cons.errors[0]
            .message
            .contains("unknown customer BJ-HA-001-C9")
    );

    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM consumption_items")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(items, 1);
    // The record landed in its institution's partition, created when the institution was inserted.
    let in_partition: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM consumption_records r JOIN institutions i ON i.id = r.institution_id
         WHERE r.tableoid::regclass::text = 'consumption_records_i' || i.id",
    )
    .fetch_one(env.pool())
    .await
    .unwrap();
    assert_eq!(in_partition, 1);

    let before: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT code, updated_at FROM customers ORDER BY code")
            .fetch_all(env.pool())
            .await
            .unwrap();
    let batch2 = import_tree(&env, dir.path()).await;
    for l in logs(&env, &batch2).await {
        assert_eq!(
            (l.inserted, l.updated),
            (0, 0),
            "{} changed on re-import",
            l.path
        );
        assert!(l.unchanged > 0 || l.rejected > 0);
    }
    let after: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT code, updated_at FROM customers ORDER BY code")
            .fetch_all(env.pool())
            .await
            .unwrap();
    assert_eq!(before, after, "a re-import must not touch unchanged rows");
}

#[tokio::test]
async fn a_file_for_an_unknown_institution_fails_without_writing() {
    let env = TestEnv::new(&[]).await;
    let dir = write_tree(&[(
        "XX-999/customers.json",
        &customers_json(&[("XX-999-C1", "张丽", "1990-05-15", "13800138000")]),
    )]);
    let workers = env.start_workers(vec![revisit_jobs::ImportFile::QUEUE]);
    let (batch, files) = {
        let plan = revisit::layout::plan(dir.path()).unwrap();
        let job = revisit_jobs::ImportFile {
            source: plan[0].clone(),
            then: vec![],
            batch: "bad".into(),
        };
        let mut conn = env.pool().acquire().await.unwrap();
        let id = revisit::queue::enqueue(&mut conn, &env.app.settings, &job, Default::default())
            .await
            .unwrap()
            .unwrap();
        (id, plan.len())
    };
    assert_eq!(files, 1);
    let pool = env.pool().clone();
    let err = eventually(
        std::time::Duration::from_secs(20),
        "the import to fail",
        || {
            let pool = pool.clone();
            let id = batch.clone();
            async move {
                match revisit::queue::admin::state_of(&pool, &id).await.unwrap() {
                    Some((s, e)) if s == "failed" => e,
                    _ => None,
                }
            }
        },
    )
    .await;
    assert!(err.contains("institution XX-999 is not known"), "{err}");
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM apalis.jobs WHERE id = $1")
        .bind(&batch)
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(attempts, 1, "a permanent failure is not retried");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM persons")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing half-written");
    workers.stop().await;
}
