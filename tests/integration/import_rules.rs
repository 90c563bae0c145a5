//! Import rules a clinic chain meets in its first month, on both engines: the seed's dated
//! layout (institution from the code's prefix; files leave `pending/`), one bad file not
//! blocking the others, an institution's file never changing another institution's rows, and
//! an older file never undoing a newer one.

use std::{path::Path, time::Duration};

use revisit::{config::Backend, store};
use revisit_jobs::Job;

use crate::harness::*;

crate::on_both_backends!(
    the_seed_s_dated_layout_imports_and_files_leave_pending,
    an_institution_s_file_never_changes_another_institution_s_rows,
    an_older_file_never_undoes_a_newer_one,
    tags_with_quotes_commas_and_backslashes_come_back_as_written,
    a_record_the_database_refuses_is_rejected_and_the_rest_land_without_retries,
    a_corrected_order_s_items_replace_its_old_items,
    a_shared_phone_changes_nothing_another_institution_knows,
    a_file_saved_outside_the_layout_takes_each_institution_from_the_codes,
);

/// A chain's IT person saves an export as `exports/customers.json` and imports it: `exports`
/// is no institution, so each record goes to the institution its code starts with; a record
/// whose code starts with none is rejected with the reason, and the rest land.
async fn a_file_saved_outside_the_layout_takes_each_institution_from_the_codes(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let first = write_tree(&[("common/institutions.json", INSTITUTIONS)]);
    import_tree(&env, first.path()).await;
    let rows = serde_json::json!([
        customer("BJ-HA-001-C1", "张丽", "13800000001"),
        customer("SH-ML-002-C1", "李娜", "13800000002"),
        customer("C-NO-PREFIX", "王芳", "13800000003")
    ])
    .to_string();
    let tree = write_tree(&[("exports/customers.json", &rows)]);
    let batch = import_tree(&env, &tree.path().join("exports/customers.json")).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!((log.inserted, log.rejected), (2, 1), "{:?}", log.errors);
    assert_eq!(log.errors[0].key.as_deref(), Some("C-NO-PREFIX"));
    assert!(
        log.errors[0].message.contains("无法判断"),
        "{:?}",
        log.errors
    );
    let owners: Vec<(String, String)> = env
        .rows(
            "SELECT c.code, i.code FROM customers c JOIN institutions i ON i.id = c.institution_id
             ORDER BY c.code",
        )
        .await;
    assert_eq!(
        owners,
        [
            ("BJ-HA-001-C1".to_owned(), "BJ-HA-001".to_owned()),
            ("SH-ML-002-C1".to_owned(), "SH-ML-002".to_owned())
        ]
    );
}

fn customer(code: &str, name: &str, phone: &str) -> serde_json::Value {
    serde_json::json!({"customer_code": code,
        "person": {"name": name, "gender": "女", "birthday": "1990-03-10", "phone": phone}})
}

/// Runs the hourly incremental check once and waits until `files` files are logged in all.
async fn scan(env: &TestEnv, files: i64) {
    let workers = env.start_workers(vec![
        revisit_jobs::ImportScan::QUEUE,
        revisit_jobs::ImportFile::QUEUE,
    ]);
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
        Duration::from_secs(30),
        "the scan and its imports",
        || async {
            let state = job_state_or_vanished(env, &id, since, Duration::from_secs(5)).await;
            let logged = env.count("SELECT count(*) FROM import_log").await;
            (state.as_deref() == Some("done") && logged == files).then_some(())
        },
    )
    .await;
    workers.stop().await;
}

async fn names(env: &TestEnv) -> Vec<(String, String, String)> {
    env.rows(
        "SELECT c.code, i.code, c.name FROM customers c
         JOIN institutions i ON i.id = c.institution_id ORDER BY c.code",
    )
    .await
}

async fn the_seed_s_dated_layout_imports_and_files_leave_pending(backend: Backend) {
    let add = serde_json::json!([
        customer("BJ-HA-001-C0001", "张丽", "13800000001"),
        customer("SH-ML-002-C0001", "王芳", "13800000002"),
        customer("GZ-404-C0001", "李娜", "13800000003"),
    ])
    .to_string();
    let root = write_tree(&[
        ("initial/common/institutions.json", INSTITUTIONS),
        ("incremental/pending/2026-01-15/customers_add.json", &add),
        // A broken export (cut short) beside it must not stop the good file.
        (
            "incremental/pending/2026-01-15/products.json",
            r#"[{"product_code":"PRD-1","name":"面膜"},{"product_code":"PRD-2","na"#,
        ),
    ]);
    let import_dir = root.path().display().to_string();
    let env = TestEnv::new(backend, &[("REVISIT__APP__IMPORT_DIR", &import_dir)]).await;
    import_tree(&env, &root.path().join("initial")).await;
    scan(&env, 3).await;
    assert_eq!(
        names(&env).await,
        vec![
            ("BJ-HA-001-C0001".into(), "BJ-HA-001".into(), "张丽".into()),
            ("SH-ML-002-C0001".into(), "SH-ML-002".into(), "王芳".into()),
        ],
        "each record lands at the institution its code names"
    );
    let logs: Vec<(String, i64, String)> = env
        .rows("SELECT path, CAST(rejected AS BIGINT), CAST(errors AS TEXT) FROM import_log ORDER BY id")
        .await;
    let customers = logs
        .iter()
        .find(|l| l.0.ends_with("customers_add.json"))
        .unwrap();
    assert_eq!(customers.1, 1);
    assert!(
        customers.2.contains("GZ-404-C0001") && customers.2.contains("无法判断"),
        "{}",
        customers.2
    );
    let products = logs
        .iter()
        .find(|l| l.0.ends_with("products.json"))
        .unwrap();
    assert!(products.2.contains("文件不完整"), "{}", products.2);
    let inc = root.path().join("incremental");
    assert!(inc.join("processed/2026-01-15/customers_add.json").exists());
    assert!(
        inc.join("processed/2026-01-15/customers_add.errors.json")
            .exists(),
        "rejected records are reported beside the file"
    );
    assert!(inc.join("failed/2026-01-15/products.json").exists());
    let report =
        std::fs::read_to_string(inc.join("failed/2026-01-15/products.errors.json")).unwrap();
    assert!(report.contains("文件不完整"), "{report}");
    assert!(
        !inc.join("pending/2026-01-15").exists(),
        "pending/ is emptied"
    );
    let failed = env.jobs_of(revisit_jobs::ImportFile::QUEUE).await;
    let dead: Vec<_> = failed.iter().filter(|j| j.state == "failed").collect();
    assert_eq!(dead.len(), 1, "the bad file fails for good: {failed:?}");
    assert_eq!(dead[0].attempts, 1, "a data error is not retried");
    // The next check finds nothing to do.
    scan(&env, 3).await;
}

async fn an_institution_s_file_never_changes_another_institution_s_rows(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let sh = serde_json::json!([
        customer("SH-ML-002-C1", "王芳", "13800000002"),
        customer("C-NO-PREFIX", "周婷", "13800000005")
    ])
    .to_string();
    let first = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("SH-ML-002/customers.json", &sh),
    ]);
    import_tree(&env, first.path()).await;
    let before = names(&env).await;
    // BJ's folder names SH's customers: one by its prefix, one by a code SH already has.
    let bj = serde_json::json!([
        customer("SH-ML-002-C1", "改名", "13900000000"),
        customer("C-NO-PREFIX", "改名", "13900000001"),
        customer("BJ-HA-001-C1", "张丽", "13800000001")
    ])
    .to_string();
    let second = write_tree(&[("BJ-HA-001/customers.json", &bj)]);
    let batch = import_tree(&env, second.path()).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!((log.inserted, log.rejected), (1, 2));
    assert!(
        log.errors[0].message.contains("带有机构 SH-ML-002 的前缀"),
        "{:?}",
        log.errors
    );
    assert!(
        log.errors[1].message.contains("属于机构 SH-ML-002"),
        "{:?}",
        log.errors
    );
    let after = names(&env).await;
    for row in &before {
        assert!(
            after.contains(row),
            "SH-ML-002's rows are untouched: {after:?}"
        );
    }
    assert_eq!(after.len(), before.len() + 1);
    // An order of SH's customer in BJ's folder is refused, naming the owner.
    let order = serde_json::json!([{"order_number": "ORD-1", "customer_code": "C-NO-PREFIX",
        "order_date": "2026-01-15", "total_amount": 100.0,
        "items": [{"item_type": "product", "item_code": "PRD-001", "item_name": "面膜",
                   "quantity": 1, "unit_price": 100.0, "actual_price": 100.0}]}])
    .to_string();
    let third = write_tree(&[
        ("common/products.json", PRODUCTS),
        ("BJ-HA-001/consumption_records.json", &order),
    ]);
    let batch = import_tree(&env, third.path()).await;
    let logs = env.store().import_log(&batch).await.unwrap();
    let orders = logs
        .iter()
        .find(|l| l.path.ends_with("consumption_records.json"))
        .unwrap();
    assert_eq!(orders.rejected, 1);
    assert!(
        orders.errors[0].message.contains("属于机构 SH-ML-002"),
        "{:?}",
        orders.errors
    );
    assert_eq!(
        env.count("SELECT count(*) FROM consumption_records").await,
        0
    );
    // A doctor of SH-ML-002 in BJ-HA-001's folder is refused; in the chain's common file, a
    // doctor may move (a transfer).
    let sh_doctor = r#"[{"doctor_code":"DOC-SH","institution_code":"SH-ML-002","name":"王医生"}]"#;
    let common = write_tree(&[("common/doctors.json", sh_doctor)]);
    import_tree(&env, common.path()).await;
    let moved = r#"[{"doctor_code":"DOC-SH","name":"王医生改"}]"#;
    let in_bj = write_tree(&[("BJ-HA-001/doctors.json", moved)]);
    let batch = import_tree(&env, in_bj.path()).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!(log.rejected, 1, "{:?}", log.errors);
    assert!(
        log.errors[0].message.contains("属于机构 SH-ML-002"),
        "{:?}",
        log.errors
    );
    let (owner,): (String,) = env
        .rows::<(String,)>(
            "SELECT i.code FROM doctors d JOIN institutions i ON i.id = d.institution_id",
        )
        .await[0]
        .clone();
    assert_eq!(owner, "SH-ML-002");
}

async fn an_older_file_never_undoes_a_newer_one(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let newer = serde_json::json!([customer("BJ-HA-001-C1", "新名字", "13800000001")]).to_string();
    let older = serde_json::json!([customer("BJ-HA-001-C1", "旧名字", "13800000001")]).to_string();
    let root = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("2026-01-16/customers_update.json", &newer),
        ("2026-01-15/customers_add.json", &older),
    ]);
    import_tree(&env, &root.path().join("common")).await;
    import_tree(&env, &root.path().join("2026-01-16")).await;
    // The older file arrives late (re-sent, or imported by hand).
    let batch = import_tree(&env, &root.path().join("2026-01-15")).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!((log.inserted, log.updated), (0, 0));
    assert_eq!(
        names(&env).await[0].2,
        "新名字",
        "the newer file's name stays"
    );
    assert!(
        Path::new(&log.path).exists(),
        "files outside pending/ stay where they are"
    );
}

async fn tags_with_quotes_commas_and_backslashes_come_back_as_written(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let tags = vec!["说\"好\"的", "a,b", "c\\d", "{x}", "NULL"];
    let mut c = customer("BJ-HA-001-C1", "张丽", "13800000001");
    c["tags"] = serde_json::json!(tags);
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &serde_json::json!([c]).to_string(),
        ),
    ]);
    import_tree(&env, dir.path()).await;
    let (id,): (i64,) = env.rows("SELECT id FROM customers").await[0];
    let ctx = env
        .store()
        .greeting_context(id, chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ctx.tags, tags);
}

async fn a_record_the_database_refuses_is_rejected_and_the_rest_land_without_retries(
    backend: Backend,
) {
    let env = TestEnv::new(backend, &[]).await;
    // A rule only the database knows (as a byte the engine refuses would be): it refuses C2.
    let sql = match backend {
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_c2() RETURNS trigger AS $$ BEGIN
                 IF NEW.code = 'BJ-HA-001-C2' THEN
                     RAISE EXCEPTION 'invalid byte sequence' USING ERRCODE = '22021';
                 END IF;
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_c2 BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION refuse_c2()",
        ],
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_c2 BEFORE INSERT ON customers WHEN NEW.code = 'BJ-HA-001-C2'
             BEGIN SELECT RAISE(ABORT, 'invalid byte sequence'); END",
        ],
    };
    for q in sql {
        match &env.app.pool {
            revisit::store::DbPool::Postgres(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(q))
                    .execute(p)
                    .await
                    .unwrap();
            }
            revisit::store::DbPool::Sqlite(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(q))
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
    }
    let rows = serde_json::json!([
        customer("BJ-HA-001-C1", "张丽", "13800000001"),
        customer("BJ-HA-001-C2", "王芳", "13800000002"),
        customer("BJ-HA-001-C3", "李娜", "13800000003"),
    ])
    .to_string();
    let dir = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("BJ-HA-001/customers.json", &rows),
    ]);
    let batch = import_tree(&env, dir.path()).await;
    let log = env
        .store()
        .import_log(&batch)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.path.ends_with("customers.json"))
        .unwrap();
    assert_eq!((log.inserted, log.rejected), (2, 1), "{:?}", log.errors);
    assert_eq!(log.errors[0].record, 1);
    assert!(
        log.errors[0].message.contains("数据库拒绝了这条记录"),
        "{:?}",
        log.errors
    );
    let jobs = env.jobs_of(revisit_jobs::ImportFile::QUEUE).await;
    assert!(
        jobs.iter().all(|j| j.state == "done" && j.attempts == 1),
        "no retry of the whole file: {jobs:?}"
    );
}

async fn a_corrected_order_s_items_replace_its_old_items(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let item = |code: &str, price: f64| {
        serde_json::json!({"item_type": "product", "item_code": code, "item_name": "面膜",
            "quantity": 1, "unit_price": price, "actual_price": price})
    };
    let order = |items: Vec<serde_json::Value>, total: f64| {
        serde_json::json!([{"order_number": "BJ-HA-001-ORD-1", "customer_code": "BJ-HA-001-C1",
            "order_date": "2026-01-15", "total_amount": total, "items": items}])
        .to_string()
    };
    let customers =
        serde_json::json!([customer("BJ-HA-001-C1", "张丽", "13800000001")]).to_string();
    let first = order(vec![item("PRD-001", 100.0), item("PRD-001", 50.0)], 150.0);
    let root = write_tree(&[
        ("first/common/institutions.json", INSTITUTIONS),
        ("first/common/products.json", PRODUCTS),
        ("first/BJ-HA-001/customers.json", &customers),
        ("first/BJ-HA-001/consumption_records.json", &first),
        (
            "second/BJ-HA-001/consumption_records.json",
            &order(vec![item("PRD-001", 80.0)], 80.0),
        ),
    ]);
    import_tree(&env, &root.path().join("first")).await;
    let items = "SELECT line_no, actual_price_cents FROM consumption_items ORDER BY line_no";
    assert_eq!(
        env.rows::<(i32, i64)>(items).await,
        vec![(1, 10_000), (2, 5_000)]
    );
    let batch = import_tree(&env, &root.path().join("second")).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!((log.inserted, log.updated), (0, 1), "{:?}", log.errors);
    assert_eq!(
        env.rows::<(i32, i64)>(items).await,
        vec![(1, 8_000)],
        "the old second line is gone"
    );
}

/// One customer's profile as the institution keeps it: name, gender, birthday.
async fn profile(env: &TestEnv, code: &str) -> (String, Option<String>, Option<String>) {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = env
        .rows("SELECT code, name, gender, CAST(birthday AS TEXT) FROM customers ORDER BY code")
        .await;
    let r = rows
        .into_iter()
        .find(|r| r.0 == code)
        .unwrap_or_else(|| panic!("{code} is imported"));
    (r.1, r.2, r.3)
}

/// Security review, finding 1: a staff upload at BJ with the phone of an SH customer renamed
/// her, cleared her gender and showed her birthday on BJ's new row. What each institution knows
/// is its own; the phone only joins them, and an opt-out protects the person everywhere while
/// saying where it came from.
async fn a_shared_phone_changes_nothing_another_institution_knows(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let sh = serde_json::json!([{"customer_code": "SH-ML-002-C1",
        "person": {"name": "吕静", "gender": "女", "birthday": "1990-05-01",
                   "lunar_birthday": "三月初七", "phone": "18500008274"}}])
    .to_string();
    let first = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        ("SH-ML-002/customers.json", &sh),
    ]);
    import_tree(&env, first.path()).await;
    assert_eq!(candidates(&env).await.len(), 1, "三月初七 is 2026-04-23");
    let bj = serde_json::json!([{"customer_code": "BJ-HA-001-C9",
        "person": {"name": "生日快乐", "phone": "185-0000-8274"}, "opted_out": true}])
    .to_string();
    let second = write_tree(&[("BJ-HA-001/customers.json", &bj)]);
    let batch = import_tree(&env, second.path()).await;
    let log = &env.store().import_log(&batch).await.unwrap()[0];
    assert_eq!((log.inserted, log.rejected), (1, 0), "{:?}", log.errors);

    assert_eq!(
        profile(&env, "SH-ML-002-C1").await,
        ("吕静".into(), Some("女".into()), Some("1990-05-01".into())),
        "SH's customer is as SH sent her"
    );
    assert_eq!(
        profile(&env, "BJ-HA-001-C9").await,
        ("生日快乐".into(), None, None),
        "BJ's row holds only what BJ sent: no birthday it never had"
    );
    let lunar: Vec<(String, Option<i64>)> = env
        .rows("SELECT code, CAST(lunar_birthday AS BIGINT) FROM customers ORDER BY code")
        .await;
    assert_eq!(lunar[0], ("BJ-HA-001-C9".into(), None));
    assert!(lunar[1].1.is_some(), "SH's lunar birthday stays SH's");
    assert_eq!(env.count("SELECT count(*) FROM persons").await, 1);
    assert_eq!(
        env.count("SELECT count(*) FROM customers WHERE person_shared")
            .await,
        2,
        "both rows know their person has another"
    );

    // The opt-out BJ recorded protects the person at SH too, and says it came from elsewhere.
    let sh_inst = env.store().institution("SH-ML-002").await.unwrap().unwrap();
    let at_sh = env
        .store()
        .customer_detail(sh_inst.id, "SH-ML-002-C1")
        .await
        .unwrap()
        .unwrap()
        .customer;
    assert!(!at_sh.opted_out && at_sh.opted_out_elsewhere, "{at_sh:?}");
    assert!(
        candidates(&env).await.is_empty(),
        "opted out at BJ: not greeted at SH"
    );
}

/// Who the birthday scan of 2026-04-20 (seven days ahead) would greet, at every institution.
async fn candidates(env: &TestEnv) -> Vec<revisit::store::BirthdayCandidate> {
    let window = revisit::domain::birthday::BirthdayWindow::new(
        chrono::NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(),
        7,
    );
    env.store()
        .birthday_candidates(&["SH-ML-002".into(), "BJ-HA-001".into()], &window)
        .await
        .unwrap()
}
