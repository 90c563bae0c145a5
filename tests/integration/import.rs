//! Import: bad records are named by file, record and field; the valid ones land; a second
//! import of the same files changes nothing. On both backends.

use revisit::{config::Backend, store};
use revisit_jobs::Job;

use crate::harness::*;

crate::on_both_backends!(
    bad_records_are_reported_and_valid_ones_land_and_reimport_changes_nothing,
    a_file_for_an_unknown_institution_fails_without_writing,
    the_incremental_check_imports_new_files_once,
);

async fn bad_records_are_reported_and_valid_ones_land_and_reimport_changes_nothing(
    backend: Backend,
) {
    let env = TestEnv::new(backend, &[]).await;
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
        ("common/projects.json", PROJECTS),
        ("common/products.json", PRODUCTS),
        ("BJ-HA-001/customers.json", customers),
        ("BJ-HA-001/consumption_records.json", records),
    ]);
    let batch = import_tree(&env, dir.path()).await;
    let logs1 = env.store().import_log(&batch).await.unwrap();
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
    assert!(cons.errors[0].message.contains("没有客户 BJ-HA-001-C9"));
    assert_eq!(env.count("SELECT count(*) FROM consumption_items").await, 1);
    if backend == Backend::Postgres {
        // The record landed in its institution's partition, created when the institution was inserted.
        let in_partition = env
            .count(
                "SELECT count(*) FROM consumption_records r JOIN institutions i ON i.id = r.institution_id
                 WHERE r.tableoid::regclass::text = 'consumption_records_i' || i.id",
            )
            .await;
        assert_eq!(in_partition, 1);
    }

    let sql = "SELECT code, CAST(updated_at AS TEXT) FROM customers ORDER BY code";
    let before: Vec<(String, String)> = env.rows(sql).await;
    let batch2 = import_tree(&env, dir.path()).await;
    for l in env.store().import_log(&batch2).await.unwrap() {
        assert_eq!(
            (l.inserted, l.updated),
            (0, 0),
            "{} changed on re-import",
            l.path
        );
        assert!(l.unchanged > 0 || l.rejected > 0);
    }
    let after: Vec<(String, String)> = env.rows(sql).await;
    assert_eq!(before, after, "a re-import must not touch unchanged rows");
}

async fn a_file_for_an_unknown_institution_fails_without_writing(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    // In the layout's place for an institution's folder: the folder names the institution.
    // (A folder elsewhere is just where the file was saved; see import_rules.)
    let dir = write_tree(&[(
        "institutions/XX-999/customers.json",
        &customers_json(&[("XX-999-C1", "张丽", "1990-05-15", "13800138000")]),
    )]);
    let workers = env.start_workers(vec![revisit_jobs::ImportFile::QUEUE]);
    let plan = revisit::import::layout::plan(dir.path()).unwrap();
    let job = revisit_jobs::ImportFile {
        source: plan[0].clone(),
        then: vec![],
        batch: "bad".into(),
    };
    let id = store::enqueue(env.store(), &env.app.settings, &job, None)
        .await
        .unwrap()
        .unwrap();
    let err = eventually(
        std::time::Duration::from_secs(20),
        "the import to fail",
        || async {
            match env.store().job_state(&id).await.unwrap() {
                Some(s) if s.state == "failed" => s.last_error,
                _ => None,
            }
        },
    )
    .await;
    assert!(err.contains("未知的机构 XX-999"), "{err}");
    assert_eq!(
        env.job(&id).await.attempts,
        1,
        "a permanent failure is not retried"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM persons").await,
        0,
        "nothing half-written"
    );
    assert_eq!(env.jobs_of(revisit_jobs::ImportFile::QUEUE).await.len(), 1);
    // Logged with its reason, so that `import --wait` and the report see it.
    let log = env.store().import_log("bad").await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].errors[0].field, "(file)");
    assert!(
        log[0].errors[0].message.contains("XX-999"),
        "{:?}",
        log[0].errors
    );
    workers.stop().await;
}

async fn the_incremental_check_imports_new_files_once(backend: Backend) {
    let root = write_tree(&[
        ("initial/common/institutions.json", INSTITUTIONS),
        (
            "incremental/pending/2026-01-15/BJ-HA-001/customers_add.json",
            &customers_json(&[("BJ-HA-001-C7", "韩梅", "1995-01-20", "13800000007")]),
        ),
        (
            "incremental/pending/2026-01-16/BJ-HA-001/customers_update.json",
            &customers_json(&[("BJ-HA-001-C7", "韩梅梅", "1995-01-20", "13800000007")]),
        ),
    ]);
    let import_dir = root.path().display().to_string();
    let env = TestEnv::new(backend, &[("REVISIT__APP__IMPORT_DIR", &import_dir)]).await;
    import_tree(&env, &root.path().join("initial")).await;
    let workers = env.start_workers(vec![
        revisit_jobs::ImportScan::QUEUE,
        revisit_jobs::ImportFile::QUEUE,
    ]);
    let scan = |n: usize| {
        let env = &env;
        async move {
            let id = store::enqueue(
                env.store(),
                &env.app.settings,
                &revisit_jobs::ImportScan {},
                None,
            )
            .await
            .unwrap()
            .unwrap();
            let since = std::time::Instant::now();
            eventually(
                std::time::Duration::from_secs(20),
                "the scan and its imports",
                || async {
                    let state =
                        job_state_or_vanished(env, &id, since, std::time::Duration::from_secs(5))
                            .await;
                    let logged = env.count("SELECT count(*) FROM import_log").await;
                    (state.as_deref() == Some("done") && logged as usize == n).then_some(())
                },
            )
            .await;
        }
    };
    // One initial file, then the two dated folders, oldest first.
    scan(3).await;
    let (name,): (String,) = env
        .rows::<(String,)>("SELECT name FROM customers WHERE code = 'BJ-HA-001-C7'")
        .await[0]
        .clone();
    assert_eq!(name, "韩梅梅", "the later folder's update wins");
    // Nothing new: a second check imports nothing.
    scan(3).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.count("SELECT count(*) FROM import_log").await, 3);
    workers.stop().await;
}
