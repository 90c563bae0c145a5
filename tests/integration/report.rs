//! The daily report on both engines: the text staff read, and the HTML page with its charts,
//! self-contained, with names from the data escaped.

use chrono::NaiveDate;
use revisit::config::Backend;

use crate::harness::*;

crate::on_both_backends!(
    the_daily_report_writes_a_self_contained_page_with_charts,
    remembered_dashboard_facts_give_way_to_the_next_write,
);

async fn the_daily_report_writes_a_self_contained_page_with_charts(backend: Backend) {
    let reports = tempfile::tempdir().unwrap();
    let dir = reports.path().display().to_string();
    let env = TestEnv::new(backend, &[("REVISIT__APP__REPORTS_DIR", &dir)]).await;
    let institutions =
        r#"[{"institution_code":"BJ-HA-001","name":"北京<华安>医疗美容诊所","status":"active"}]"#;
    let orders = r#"[{"order_number":"BJ-HA-001-O1","customer_code":"BJ-HA-001-C1","order_date":"2026-01-15",
        "total_amount":2520.0,"items":[{"item_type":"project","item_code":"PRJ-001","item_name":"水光针",
        "quantity":1,"unit_price":2800.0,"discount":0.9,"actual_price":2520.0}]}]"#;
    let tree = write_tree(&[
        ("common/institutions.json", institutions),
        ("common/projects.json", PROJECTS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "张丽", "1990-05-15", "13800138000")]),
        ),
        ("BJ-HA-001/consumption_records.json", orders),
    ]);
    import_tree(&env, tree.path()).await;
    let date = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
    let (text, path) = revisit::handlers::report_daily::build(&env.app, date)
        .await
        .unwrap();
    assert!(text.contains("【回访日报】2026年01月31日"), "{text}");
    assert_eq!(path, reports.path().join("daily-2026-01-31.html"));
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    assert!(
        page.contains("北京&lt;华安&gt;医疗美容诊所"),
        "names are escaped"
    );
    assert!(!page.contains("<华安>"));
    assert!(page.contains("¥2,520.00"), "the year's revenue");
    assert!(page.contains("水光针"), "the top project is named");
    assert!(
        !page.contains("<script") && !page.contains("src=") && !page.contains("href="),
        "nothing is fetched when the page opens"
    );
    assert!(
        !page.contains("13800138000") && !page.contains("张丽"),
        "no personal data"
    );
    // Built again, the page is replaced whole, and no temporary file is left behind.
    revisit::handlers::report_daily::build(&env.app, date)
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
}

/// The API serves the dashboard's facts again while nothing changed; a captured write makes the
/// very next request ask the store.
async fn remembered_dashboard_facts_give_way_to_the_next_write(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let one = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "张丽", "1990-05-15", "13800138000")]),
        ),
    ]);
    import_tree(&env, one.path()).await;
    let window =
        revisit::domain::dashboard::Window::new(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap());
    let (first, _) = revisit::analytics::facts(env.app.dashboard_sources(), &window)
        .await
        .unwrap();
    let (again, _) = revisit::analytics::facts(env.app.dashboard_sources(), &window)
        .await
        .unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "nothing changed: served again"
    );
    let next_day = revisit::domain::dashboard::Window::new(window.as_of.succ_opt().unwrap());
    let (other_day, _) = revisit::analytics::facts(env.app.dashboard_sources(), &next_day)
        .await
        .unwrap();
    assert!(
        !std::sync::Arc::ptr_eq(&first, &other_day),
        "another date is asked anew"
    );

    let two = write_tree(&[(
        "BJ-HA-001/customers.json",
        &customers_json(&[("BJ-HA-001-C2", "王芳", "1992-03-01", "13900139000")]),
    )]);
    import_tree(&env, two.path()).await;
    let (d, _) =
        revisit::analytics::dashboard(env.app.dashboard_sources(), Some("BJ-HA-001"), window.as_of)
            .await
            .unwrap();
    assert_eq!(d.customers, 2, "the write is seen at once");
}
